/*
 * The hot inbox's journal (store_hot.c says why it exists): two files,
 * PATH-hot0 and PATH-hot1, written in turn.  This file holds the record
 * format, the batch's write and fdatasync through io_uring, the replay
 * after a crash and the owner's lock.
 */
#include "store/store_hot_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"

/* ---- journal records ----------------------------------------------------- */

/* A journal file: a header (magic, version, u64 generation), then records
 * from JHEAD on.  Files are reused, not truncated: a data fdatasync that
 * must not also change the file size costs half as much here (160 vs 310
 * us).  A record's checksum is seeded with its file's generation, so
 * records of an earlier use of the file end the replay like a torn one.
 *
 * A record: u32 body length, u32 FNV-1a of the body, then the body:
 * i64 seq, created, expires; i32 ttl; u8 need_ack; u16 app, device and
 * msg_id lengths; u32 payload length; the four strings' bytes. */
#define REC_HEAD 8
#define JHEAD 16
#define JMAGIC 0x544f4848u /* "HHOT" */
#define JGROW (1 << 20)

static uint32_t rec_sum(uint64_t gen, const uint8_t *b, uint32_t len) {
    return core_fnv1a(core_fnv1a(CORE_FNV1A_INIT, &gen, 8), b, len);
}
#define REC_FIXED (8 * 3 + 4 + 1 + 2 * 3 + 4)

static int jbuf_reserve(store_hot_t *h, size_t n) {
    if (h->jlen + n <= h->jcap) return 0;
    size_t cap = h->jcap ? h->jcap : 65536;
    while (cap < h->jlen + n) cap *= 2;
    uint8_t *b = realloc(h->jbuf, cap);
    if (!b) return STORE_E_NOMEM;
    h->jbuf = b;
    h->jcap = cap;
    return 0;
}

static uint8_t *put_bytes(uint8_t *p, const void *v, size_t n) {
    memcpy(p, v, n);
    return p + n;
}

int store__journal_add(store_hot_t *h, const hot_ent_t *e) {
    uint64_t gen = h->gen[h->cur];
    const hot_dev_t *d = e->dev;
    uint16_t al = (uint16_t)d->app_len;
    uint16_t dl = (uint16_t)strlen(d->key + d->app_len + 1);
    uint16_t il = (uint16_t)strlen(e->msg_id);
    uint32_t pl = (uint32_t)e->payload_len;
    uint32_t body = REC_FIXED + al + dl + il + pl;
    if (jbuf_reserve(h, REC_HEAD + body) < 0) return STORE_E_NOMEM;
    uint8_t *p = h->jbuf + h->jlen + REC_HEAD, *b = p;
    uint8_t na = e->need_ack;
    p = put_bytes(p, &e->seq, 8);
    p = put_bytes(p, &e->created, 8);
    p = put_bytes(p, &e->expires, 8);
    p = put_bytes(p, &e->ttl, 4);
    p = put_bytes(p, &na, 1);
    p = put_bytes(p, &al, 2);
    p = put_bytes(p, &dl, 2);
    p = put_bytes(p, &il, 2);
    p = put_bytes(p, &pl, 4);
    p = put_bytes(p, d->key, al);
    p = put_bytes(p, d->key + d->app_len + 1, dl);
    p = put_bytes(p, e->msg_id, il);
    p = put_bytes(p, e->payload, pl);
    uint32_t sum = rec_sum(gen, b, body);
    memcpy(h->jbuf + h->jlen, &body, 4);
    memcpy(h->jbuf + h->jlen + 4, &sum, 4);
    h->jlen += REC_HEAD + body;
    return 0;
}

static int write_at(int fd, const uint8_t *p, size_t n, off_t off) {
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return STORE_E_IO;
        p += w;
        off += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Zeros up to a JGROW boundary past `need`, synced once, so that record
 * writes land on allocated blocks. */
static int grow(store_hot_t *h, int i, off_t need) {
    static const uint8_t zero[65536];
    if (need <= h->size[i]) return 0;
    off_t to = (need + JGROW - 1) / JGROW * JGROW;
    for (off_t at = h->size[i]; at < to; at += (off_t)sizeof zero)
        if (write_at(h->fd[i], zero, sizeof zero, at) < 0) return STORE_E_IO;
    if (h->sync && fdatasync(h->fd[i]) < 0) return STORE_E_IO;
    h->size[i] = to;
    return 0;
}

/* Starts file i over under a new generation (its old records die). */
int store__journal_restart(store_hot_t *h, int i, uint64_t gen) {
    uint8_t head[JHEAD];
    uint32_t magic = JMAGIC, ver = 1;
    memcpy(head, &magic, 4);
    memcpy(head + 4, &ver, 4);
    memcpy(head + 8, &gen, 8);
    if (grow(h, i, JHEAD) < 0 || write_at(h->fd[i], head, JHEAD, 0) < 0)
        return STORE_E_IO;
    h->gen[i] = gen;
    h->off[i] = JHEAD;
    return 0;
}

static int sync_now(store_t *st, int i) {
    store_hot_t *h = st->hot;
    int rc = write_at(h->fd[i], h->jbuf, h->jlen, h->off[i]);
    if (rc == 0 && st->cfg.synchronous_full && fdatasync(h->fd[i]) < 0)
        rc = STORE_E_IO;
    return rc;
}

/*
 * The ring is set up by the writer, its only user, with COOP_TASKRUN:
 * otherwise io_uring signals completions to the task that set it up by
 * interrupting it, and a blocking socket read with a timeout there fails
 * with EINTR (test_push's client did, when store_open ran on its thread).
 */
static void ring_init(store_hot_t *h) {
    h->ring_tried = true;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_COOP_TASKRUN;
    h->ring_ok = io_uring_queue_init_params(4, &h->ring, &p) == 0;
    if (!h->ring_ok) /* an older kernel: in place (sync_now) instead */
        log_info("hot journal writes without io_uring", NULL);
}

int store__hot_sync_start(store_t *st) {
    store_hot_t *h = st->hot;
    if (!h || !h->jlen || h->inflight) return 0;
    if (!h->ring_tried) ring_init(h);
    int i = h->cur;
    int rc = grow(h, i, h->off[i] + (off_t)h->jlen);
    struct io_uring_sqe *w = NULL, *f = NULL;
    if (rc == 0 && h->ring_ok) {
        w = io_uring_get_sqe(&h->ring);
        f = st->cfg.synchronous_full ? io_uring_get_sqe(&h->ring) : NULL;
    }
    if (rc == 0 && w && (f || !st->cfg.synchronous_full)) {
        io_uring_prep_write(w, h->fd[i], h->jbuf, (unsigned)h->jlen,
                            (uint64_t)h->off[i]);
        io_uring_sqe_set_data64(w, h->jlen);
        if (f) {
            w->flags |= IOSQE_IO_LINK; /* the flush only after the write */
            io_uring_prep_fsync(f, h->fd[i], IORING_FSYNC_DATASYNC);
            io_uring_sqe_set_data64(f, 0);
        }
        int want = f ? 2 : 1;
        if (io_uring_submit(&h->ring) == want) {
            h->inflight = want;
            h->off[i] += (off_t)h->jlen;
            return 0;
        }
        rc = STORE_E_IO;
    }
    if (rc == 0) rc = sync_now(st, i); /* no ring here: in place */
    h->off[i] += (off_t)h->jlen;
    h->jlen = 0;
    pthread_mutex_lock(&h->mu);
    h->unsynced = NULL;
    pthread_mutex_unlock(&h->mu);
    if (rc < 0) h->inflight = -1; /* reported by the wait */
    return rc;
}

int store__hot_sync_wait(store_t *st) {
    store_hot_t *h = st->hot;
    if (!h || !h->inflight) return 0;
    int rc = 0;
    if (h->inflight < 0) {
        rc = STORE_E_IO;
    } else {
        while (h->inflight > 0) {
            struct io_uring_cqe *cqe;
            int w = io_uring_wait_cqe(&h->ring, &cqe);
            if (w == -EINTR) continue;
            if (w < 0) { /* the ring is unusable: give up on it */
                rc = STORE_E_IO;
                h->ring_ok = false;
                break;
            }
            uint64_t want = io_uring_cqe_get_data64(cqe);
            if (cqe->res < 0 || (want && (uint64_t)cqe->res != want))
                rc = STORE_E_IO;
            io_uring_cqe_seen(&h->ring, cqe);
            h->inflight--;
        }
    }
    if (rc < 0)
        log_error("hot journal write failed", NULL);
    h->inflight = 0;
    h->jlen = 0;
    pthread_mutex_lock(&h->mu);
    h->unsynced = NULL;
    pthread_mutex_unlock(&h->mu);
    return rc;
}


int store__journal_flush(store_hot_t *h) {
    for (int i = 0; h->sync && i < 2; i++)
        if (fdatasync(h->fd[i]) < 0) return STORE_E_IO;
    return 0;
}

/* ---- replay and the owner's lock ----------------------------------------- */

/* One record back into SQLite: its message row (unless there), its inbox
 * row if it is live and beyond the device's ack, its device's seq head. */
static int replay_one(store_t *st, const uint8_t *b, uint32_t len,
                      int64_t now) {
    if (len < REC_FIXED) return STORE_E_INVALID;
    hot_row_t r = {0};
    uint16_t al, dl, il;
    const uint8_t *p = b;
    memcpy(&r.seq, p, 8), p += 8;
    memcpy(&r.created, p, 8), p += 8;
    memcpy(&r.expires, p, 8), p += 8;
    memcpy(&r.ttl, p, 4), p += 4;
    r.need_ack = *p++ != 0;
    memcpy(&al, p, 2), p += 2;
    memcpy(&dl, p, 2), p += 2;
    memcpy(&il, p, 2), p += 2;
    memcpy(&r.payload_len, p, 4), p += 4;
    if ((uint64_t)REC_FIXED + al + dl + il + r.payload_len != len || !al ||
        !dl || !il || al >= 64 || il >= 40 || r.payload_len > HOT_PAYLOAD_MAX)
        return STORE_E_INVALID;
    char app[64], msg_id[40], *dev = malloc((size_t)dl + 1);
    if (!dev) return STORE_E_NOMEM;
    memcpy(app, p, al), app[al] = 0, p += al;
    memcpy(dev, p, dl), dev[dl] = 0, p += dl;
    memcpy(msg_id, p, il), msg_id[il] = 0, p += il;
    r.app = app;
    r.dev = dev;
    r.msg_id = msg_id;
    r.payload = p;
    int rc = store__hot_write_row(st, &r, r.expires > now);
    if (rc == 0) rc = store__hot_write_dev(st, app, dev, r.seq, 0);
    free(dev);
    return rc;
}

/* Replays one journal file; the number of records, or an error.  A torn
 * or damaged record ends the file: nothing after it was acknowledged. */
static long replay_file(store_t *st, store_hot_t *h, int i, int64_t now) {
    off_t size = lseek(h->fd[i], 0, SEEK_END);
    if (size < 0) return STORE_E_IO;
    h->size[i] = size;
    if (size < JHEAD) return 0;
    uint8_t *buf = malloc((size_t)size);
    if (!buf) return STORE_E_NOMEM;
    ssize_t got = pread(h->fd[i], buf, (size_t)size, 0);
    long n = 0;
    int rc = got == size ? 0 : STORE_E_IO;
    uint32_t magic = 0;
    uint64_t gen = 0;
    if (rc == 0) {
        memcpy(&magic, buf, 4);
        memcpy(&gen, buf + 8, 8);
        if (magic == JMAGIC) h->gen[i] = gen;
    }
    for (off_t off = JHEAD; rc == 0 && magic == JMAGIC && off + REC_HEAD <= got;) {
        uint32_t len, sum;
        memcpy(&len, buf + off, 4);
        memcpy(&sum, buf + off + 4, 4);
        /* The end of what was written (or a torn or stale record). */
        if (len > (uint64_t)(got - off - REC_HEAD) ||
            rec_sum(gen, buf + off + REC_HEAD, len) != sum)
            break;
        rc = replay_one(st, buf + off + REC_HEAD, len, now);
        if (rc == STORE_E_INVALID) {
            log_warn("hot journal record invalid", "at=%ld", (long)off);
            rc = 0;
            break;
        }
        off += REC_HEAD + len;
        n++;
    }
    free(buf);
    return rc < 0 ? rc : n;
}

int store__journal_replay(store_t *st, store_hot_t *h) {
    int64_t now = (int64_t)clock_wall_ms();
    long n = 0;
    int rc = store__exec(st->db, "BEGIN IMMEDIATE");
    for (int i = 0; rc == 0 && i < 2; i++) {
        long k = replay_file(st, h, i, now);
        if (k < 0) rc = (int)k;
        else n += k;
    }
    if (rc == 0) rc = store__exec(st->db, "COMMIT"); /* FULL: durable */
    if (rc < 0) {
        if (!sqlite3_get_autocommit(st->db))
            (void)store__exec(st->db, "ROLLBACK");
        return rc;
    }
    /* New generations: what was replayed is dead. */
    uint64_t gen = (h->gen[0] > h->gen[1] ? h->gen[0] : h->gen[1]) + 1;
    if (store__journal_restart(h, 1, gen + 1) < 0 ||
        store__journal_restart(h, 0, gen) < 0 || store__journal_flush(h) < 0)
        return STORE_E_IO;
    h->cur = 0;
    if (n) log_info("hot journal replayed", "pushes=%ld", n);
    return 0;
}

/*
 * One process owns the journal (its cache of seq heads is only right while
 * nobody else appends); another opener, `herald app` beside a running
 * server, writes through SQLite only.  Both files are locked: a killed
 * owner's io_uring requests still in flight keep its open files, and so
 * its locks, until the kernel has finished them, and no replay may start
 * before a dead owner's last write has landed.  So an exclusive opener
 * (herald serve) waits up to LOCK_WAIT_MS for a lock held that way.
 */
#define LOCK_WAIT_MS 10000

bool store__journal_lock(store_t *st, store_hot_t *h) {
    uint64_t t0 = clock_mono_ms();
    bool said = false;
    for (;;) {
        if (flock(h->fd[0], LOCK_EX | LOCK_NB) == 0) {
            if (flock(h->fd[1], LOCK_EX | LOCK_NB) == 0) return true;
            (void)flock(h->fd[0], LOCK_UN);
        }
        if (!st->cfg.exclusive || clock_mono_ms() - t0 >= LOCK_WAIT_MS)
            return false;
        if (!said) {
            log_info("hot journal locked; waiting", "path=\"%s\"", st->path);
            said = true;
        }
        usleep(10 * 1000);
    }
}
