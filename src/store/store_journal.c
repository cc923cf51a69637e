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
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"

/* ---- journal records ----------------------------------------------------- */

/* A journal file: a header (magic, version, u64 generation), then records
 * from JHEAD on.  Files are reused, not truncated: a data fdatasync that
 * must not also change the file size costs half as much here (160 vs 310
 * us).  So a healthy file is always a whole number of JGROW blocks.
 *
 * A record (version 2), 8-byte aligned:
 *   u32 RMAGIC, u32 body length, u32 index, u32 CRC-32
 *   body: i64 seq, created, expires; i32 ttl; u8 need_ack; u16 app,
 *         device and msg_id lengths; u32 payload length; the four
 *         strings' bytes; zeros to the next multiple of 8.
 * The CRC covers the file's generation, the first 12 header bytes and
 * the body, so a record of an earlier use of the file fails it like a
 * torn one.  The index counts records within the generation from 0: a
 * replay that skips a damaged record resynchronises on the next magic
 * whose CRC holds and knows from the gap how many it lost.
 *
 * CRC-32 is zlib's: a library has it, and for records of this size it
 * catches every burst up to 32 bits as CRC-32C would; the journal's
 * 10 MB/s at 50k pushes/s makes the speed difference moot.
 *
 * Version 1 files (FNV-1a, no magic, no index: herald before schema 4)
 * are still replayed, stopping at the first bad record as they did. */
#define JHEAD 16
#define JMAGIC 0x544f4848u /* "HHOT" */
#define JVER 2
#define JGROW (1 << 20)
#define RMAGIC 0x43455248u /* "HREC" */
#define REC_HEAD 16
#define REC_ALIGN 8
#define REC_FIXED (8 * 3 + 4 + 1 + 2 * 3 + 4)
#define REC_BODY_MAX (REC_FIXED + 3 * 65535 + HOT_PAYLOAD_MAX)

static uint32_t rec_crc(uint64_t gen, const uint8_t *head, const uint8_t *b,
                        uint32_t len) {
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, (const Bytef *)&gen, 8);
    c = crc32(c, head, 12);
    return (uint32_t)crc32_z(c, b, len);
}

static size_t rec_size(uint32_t body) {
    return ((size_t)REC_HEAD + body + REC_ALIGN - 1) & ~(size_t)(REC_ALIGN - 1);
}

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
    int i = h->cur;
    const hot_dev_t *d = e->dev;
    uint16_t al = (uint16_t)d->app_len;
    uint16_t dl = (uint16_t)strlen(d->key + d->app_len + 1);
    uint16_t il = (uint16_t)strlen(e->msg_id);
    uint32_t pl = (uint32_t)e->payload_len;
    uint32_t body = REC_FIXED + al + dl + il + pl;
    size_t size = rec_size(body);
    if (jbuf_reserve(h, size) < 0) return STORE_E_NOMEM;
    if (!h->jlen) { /* the batch's first record */
        h->batch_off = h->off[i];
        h->batch_idx = h->idx[i];
    }
    uint8_t *head = h->jbuf + h->jlen, *b = head + REC_HEAD, *p = b;
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
    memset(p, 0, (size_t)(head + size - p));
    uint32_t magic = RMAGIC, idx = h->idx[i]++;
    memcpy(head, &magic, 4);
    memcpy(head + 4, &body, 4);
    memcpy(head + 8, &idx, 4);
    uint32_t crc = rec_crc(h->gen[i], head, b, body);
    memcpy(head + 12, &crc, 4);
    h->jlen += size;
    return 0;
}

/* ENOSPC/EDQUOT become STORE_E_NOSPACE: the caller knows nothing landed. */
static int write_at(int fd, const uint8_t *p, size_t n, off_t off) {
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == ENOSPC || errno == EDQUOT))
            return STORE_E_NOSPACE;
        if (w <= 0) return STORE_E_IO;
        p += w;
        off += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Zeros up to a JGROW boundary past `need`, synced once, so that record
 * writes land on allocated blocks.  A full disk fails here, before any
 * record of the batch is written. */
static int grow(store_hot_t *h, int i, off_t need) {
    static const uint8_t zero[65536];
    if (need <= h->size[i]) return 0;
    off_t to = (need + JGROW - 1) / JGROW * JGROW;
    for (off_t at = h->size[i]; at < to; at += (off_t)sizeof zero) {
        int rc = write_at(h->fd[i], zero, sizeof zero, at);
        if (rc < 0) return rc;
    }
    if (h->sync && fdatasync(h->fd[i]) < 0)
        return errno == ENOSPC ? STORE_E_NOSPACE : STORE_E_IO;
    h->size[i] = to;
    return 0;
}

/* Starts file i over under a new generation (its old records die). */
int store__journal_restart(store_hot_t *h, int i, uint64_t gen) {
    uint8_t head[JHEAD];
    uint32_t magic = JMAGIC, ver = JVER;
    memcpy(head, &magic, 4);
    memcpy(head + 4, &ver, 4);
    memcpy(head + 8, &gen, 8);
    int rc = grow(h, i, JHEAD);
    if (rc == 0) rc = write_at(h->fd[i], head, JHEAD, 0);
    if (rc < 0) return rc;
    h->gen[i] = gen;
    h->off[i] = h->synced_off[i] = JHEAD;
    h->idx[i] = h->synced_idx[i] = h->db_idx[i] = 0;
    h->stale_end[i] = 0;
    return 0;
}

int store__journal_row(store_sq_t *st, int i, uint64_t gen, bool in_use) {
    sqlite3_stmt *s = store__w(st, W_JOURNAL_SET);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int(s, 1, i);
    sqlite3_bind_int64(s, 2, (int64_t)gen);
    sqlite3_bind_int64(s, 3, JHEAD);
    sqlite3_bind_int(s, 4, in_use);
    return store__step(st, s);
}

int store__journal_note_ends(store_sq_t *st) {
    store_hot_t *h = st->hot;
    for (int i = 0; i < 2; i++) {
        if (h->synced_idx[i] == h->db_idx[i]) continue;
        sqlite3_stmt *s = store__w(st, W_JOURNAL_END);
        if (!s) return STORE_E_IO;
        sqlite3_bind_int(s, 1, i);
        sqlite3_bind_int64(s, 2, (int64_t)h->synced_off[i]);
        sqlite3_bind_int64(s, 3, h->synced_idx[i]);
        int rc = store__step(st, s);
        if (rc < 0) return rc;
        /* Read back only after the commit: a rollback leaves it stale,
         * which merely writes it again. */
        h->db_idx[i] = h->synced_idx[i];
    }
    return 0;
}

/* ---- the batch's write ------------------------------------------------------ */

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

static int sync_now(store_sq_t *st, int i) {
    store_hot_t *h = st->hot;
    int rc = write_at(h->fd[i], h->jbuf, h->wlen, h->batch_off);
    if (rc == 0 && st->cfg.synchronous_full && fdatasync(h->fd[i]) < 0)
        rc = STORE_E_IO;
    return rc;
}

/*
 * The batch is on disk (rc 0) or not.  On success its records count as
 * synced.  On failure nothing of it counts: the file's offset and index go
 * back to where the batch began, so the next batch takes its place, and
 * the bytes it may have left (a failed fdatasync says nothing of what
 * landed) are zeroed by the next write of the file (stale_end).  The
 * pushes themselves are the writer's to rescue or discard (hot_durable in
 * store_writer.c); h->unsynced still hides them from readers.
 */
static int batch_end(store_sq_t *st, int rc, bool wrote) {
    static log_limit_t lim = LOG_LIMIT_INIT(1000);
    store_hot_t *h = st->hot;
    int i = h->cur;
    if (rc == 0) {
        h->off[i] = h->batch_off + (off_t)h->jlen;
        h->synced_off[i] = h->off[i];
        h->synced_idx[i] = h->idx[i];
        if (h->stale_end[i] <= h->batch_off + (off_t)h->wlen)
            h->stale_end[i] = 0;
        pthread_mutex_lock(&h->mu);
        h->unsynced = NULL;
        pthread_mutex_unlock(&h->mu);
    } else {
        off_t end = h->batch_off + (off_t)h->wlen;
        if (wrote && end > h->stale_end[i]) h->stale_end[i] = end;
        h->off[i] = h->batch_off;
        h->idx[i] = h->batch_idx;
        log_limited(&lim, LOG_LEVEL_ERROR, "hot journal write failed",
                    "err=\"%s\"", herald_strerror(rc));
    }
    /* A full disk shows at the grow; a write into allocated blocks says
     * nothing about free space, so only an I/O error is news there. */
    if (rc < 0 || atomic_load(&st->fault_journal) == STORE_E_IO)
        store__fault_note(st, &st->fault_journal, rc);
    h->jlen = h->wlen = 0;
    h->inflight = 0;
    return rc;
}

/* An outcome known at once (no ring, or a failure before the write):
 * kept for the wait, which ends every batch. */
static int done_now(store_hot_t *h, int rc, bool wrote) {
    h->inflight = -1;
    h->batch_rc = rc;
    h->batch_wrote = wrote;
    return rc;
}

int store__hot_sync_start(store_sq_t *st) {
    store_hot_t *h = st->hot;
    if (!h || !h->jlen || h->inflight) return 0;
    if (!h->ring_tried) ring_init(h);
    int i = h->cur;
    /* What a failed write may have left past this batch goes too. */
    off_t end = h->batch_off + (off_t)h->jlen;
    size_t pad = h->stale_end[i] > end ? (size_t)(h->stale_end[i] - end) : 0;
    h->wlen = h->jlen;
    if (jbuf_reserve(h, pad) < 0) return done_now(h, STORE_E_NOMEM, false);
    memset(h->jbuf + h->jlen, 0, pad);
    h->wlen = h->jlen + pad;
    off_t size0 = h->size[i];
    int rc = grow(h, i, h->batch_off + (off_t)h->wlen);
    if (h->size[i] != size0 || rc < 0) /* a grow ran: it knows the disk */
        store__fault_note(st, &st->fault_journal, rc);
    if (rc < 0) return done_now(h, rc, false);
    struct io_uring_sqe *w = NULL, *f = NULL;
    if (h->ring_ok) {
        w = io_uring_get_sqe(&h->ring);
        f = st->cfg.synchronous_full ? io_uring_get_sqe(&h->ring) : NULL;
    }
    if (w && (f || !st->cfg.synchronous_full)) {
        io_uring_prep_write(w, h->fd[i], h->jbuf, (unsigned)h->wlen,
                            (uint64_t)h->batch_off);
        io_uring_sqe_set_data64(w, h->wlen);
        if (f) {
            w->flags |= IOSQE_IO_LINK; /* the flush only after the write */
            io_uring_prep_fsync(f, h->fd[i], IORING_FSYNC_DATASYNC);
            io_uring_sqe_set_data64(f, 0);
        }
        int want = f ? 2 : 1;
        if (io_uring_submit(&h->ring) == want) {
            h->inflight = want;
            return 0;
        }
        return done_now(h, STORE_E_IO, true);
    }
    return done_now(h, sync_now(st, i), true); /* no ring here: in place */
}

int store__hot_sync_wait(store_sq_t *st) {
    store_hot_t *h = st->hot;
    if (!h || !h->inflight) return 0;
    if (h->inflight < 0) {
        h->inflight = 0;
        return batch_end(st, h->batch_rc, h->batch_wrote);
    }
    int rc = 0;
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
            rc = cqe->res == -ENOSPC ? STORE_E_NOSPACE : STORE_E_IO;
        io_uring_cqe_seen(&h->ring, cqe);
        h->inflight--;
    }
    return batch_end(st, rc, true);
}

int store__journal_probe(store_sq_t *st) {
    store_hot_t *h = st->hot;
    if (!h || h->inflight) return 0;
    int i = h->cur;
    off_t size0 = h->size[i];
    int rc = grow(h, i, (h->off[i] > h->size[i] ? h->off[i] : h->size[i]) + 1);
    if (rc < 0 || h->size[i] != size0)
        store__fault_note(st, &st->fault_journal, rc);
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
static int replay_one(store_sq_t *st, const uint8_t *b, uint32_t len,
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

/* What journal_files says of a file (have: a row exists). */
typedef struct jrow {
    bool have, in_use;
    uint64_t gen;
    int64_t end_off, end_idx;
} jrow_t;

/* What replaying one file found. */
typedef struct jscan {
    long recovered;  /* records replayed */
    long lost;       /* records known lost: index gaps, short of end_idx */
    bool maybe_lost; /* missing or truncated: how many is unknown */
    bool bad_header;
    long skipped; /* bytes passed over between good records */
} jscan_t;

static int row_get(store_sq_t *st, int i, jrow_t *r) {
    memset(r, 0, sizeof *r);
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT gen, end_off, end_idx, in_use FROM"
                                " journal_files WHERE file=?1",
                                -1, &s, NULL);
    if (rc != SQLITE_OK) return store__sql_err(st->db, rc, "journal row");
    sqlite3_bind_int(s, 1, i);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        r->have = true;
        r->gen = (uint64_t)sqlite3_column_int64(s, 0);
        r->end_off = sqlite3_column_int64(s, 1);
        r->end_idx = sqlite3_column_int64(s, 2);
        r->in_use = sqlite3_column_int(s, 3) != 0;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE
               ? 0
               : store__sql_err(st->db, rc, "journal row");
}

/* A version 1 file: FNV-1a records, no magic: stops at the first bad one
 * (only a herald older than schema 4 wrote these). */
static int replay_v1(store_sq_t *st, const uint8_t *buf, off_t got,
                     uint64_t gen, int64_t now, jscan_t *sc) {
    for (off_t off = JHEAD; off + 8 <= got;) {
        uint32_t len, sum;
        memcpy(&len, buf + off, 4);
        memcpy(&sum, buf + off + 4, 4);
        if (len > (uint64_t)(got - off - 8) ||
            core_fnv1a(core_fnv1a(CORE_FNV1A_INIT, &gen, 8), buf + off + 8,
                       len) != sum)
            break;
        int rc = replay_one(st, buf + off + 8, len, now);
        if (rc == STORE_E_INVALID) break;
        if (rc < 0) return rc;
        off += 8 + len;
        sc->recovered++;
    }
    return 0;
}

/* A whole, current record at off: its body length and index. */
static bool rec_ok(const uint8_t *buf, off_t size, off_t off, uint64_t gen,
                   uint32_t *len, uint32_t *idx) {
    uint32_t magic, crc;
    memcpy(&magic, buf + off, 4);
    if (magic != RMAGIC) return false;
    memcpy(len, buf + off + 4, 4);
    memcpy(idx, buf + off + 8, 4);
    memcpy(&crc, buf + off + 12, 4);
    return *len <= REC_BODY_MAX && (off_t)rec_size(*len) <= size - off &&
           rec_crc(gen, buf + off, buf + off + REC_HEAD, *len) == crc;
}

/*
 * Every record of generation gen that its own CRC vouches for, wherever
 * it is: after a bad stretch the scan moves on 8 bytes at a time to the
 * next magic whose CRC holds.  Indexes tell what a bad stretch cost;
 * bytes past the last good record are the file's unused tail (zeros, or
 * records of an earlier use), never counted.
 */
static int replay_v2(store_sq_t *st, const uint8_t *buf, off_t size,
                     uint64_t gen, int64_t now, jscan_t *sc,
                     uint32_t *next_out) {
    uint32_t next = 0;
    off_t bad_from = -1;
    for (off_t off = JHEAD; off + REC_HEAD <= size;) {
        uint32_t len, idx;
        if (!rec_ok(buf, size, off, gen, &len, &idx)) {
            if (bad_from < 0) bad_from = off;
            off += REC_ALIGN;
            continue;
        }
        off_t at = off;
        off += (off_t)rec_size(len);
        if (idx < next) continue; /* left by a failed batch, overwritten */
        if (bad_from >= 0) sc->skipped += (long)(at - bad_from);
        bad_from = -1;
        sc->lost += (long)(idx - next);
        next = idx + 1;
        int rc = replay_one(st, buf + at + REC_HEAD, len, now);
        if (rc == STORE_E_INVALID) {
            sc->lost++; /* its CRC holds, its fields do not: not ours */
            continue;
        }
        if (rc < 0) return rc;
        sc->recovered++;
    }
    *next_out = next;
    return 0;
}

/* Replays one journal file into the open transaction and says what it
 * found in *sc. */
static int replay_file(store_sq_t *st, store_hot_t *h, int i, const jrow_t *row,
                       int64_t now, jscan_t *sc) {
    memset(sc, 0, sizeof *sc);
    off_t size = lseek(h->fd[i], 0, SEEK_END);
    if (size < 0) return STORE_E_IO;
    h->size[i] = size;
    bool expect = row->have ? row->in_use : true; /* no row: trust the file */
    if (h->missing[i] || size < JHEAD) {
        sc->maybe_lost = expect && row->have;
        return 0;
    }
    if (size % JGROW) sc->maybe_lost = expect; /* cut short by someone */
    uint8_t *buf = malloc((size_t)size);
    if (!buf) return STORE_E_NOMEM;
    int rc = pread(h->fd[i], buf, (size_t)size, 0) == size ? 0 : STORE_E_IO;
    uint32_t magic = 0, ver = 0;
    uint64_t hgen = 0;
    memcpy(&magic, buf, 4);
    memcpy(&ver, buf + 4, 4);
    memcpy(&hgen, buf + 8, 8);
    bool head_ok = magic == JMAGIC && (ver == 1 || ver == JVER);
    uint64_t gen = row->have ? row->gen : hgen;
    if (head_ok && ver == JVER && hgen != gen && row->have) head_ok = false;
    h->gen[i] = gen;
    if (rc == 0 && head_ok && ver == 1) {
        rc = replay_v1(st, buf, size, hgen, now, sc);
    } else if (rc == 0 && (head_ok || row->have)) {
        /* A damaged header does not hide the records: the row names
         * their generation. */
        sc->bad_header = !head_ok && expect;
        uint32_t next = 0;
        rc = replay_v2(st, buf, size, gen, now, sc, &next);
        if (rc == 0 && expect && row->have && next < row->end_idx)
            sc->lost += (long)(row->end_idx - next); /* the tail is gone */
    }
    free(buf);
    return rc;
}

static void say_damage(const store_sq_t *st, int i, const jscan_t *sc) {
    const char *what = sc->bad_header && !sc->lost && !sc->maybe_lost
                           ? "hot journal header damaged; records recovered"
                           : "hot journal damaged";
    log_error(what,
              "path=\"%s-hot%d\" recovered=%ld lost=%ld lost_unknown=%s"
              " skipped_bytes=%ld header=%s",
              st->path, i, sc->recovered, sc->lost,
              sc->maybe_lost ? "yes" : "no", sc->skipped,
              sc->bad_header ? "bad" : "ok");
}

int store__journal_replay(store_sq_t *st, store_hot_t *h) {
    int64_t now = (int64_t)clock_wall_ms();
    jscan_t sc[2];
    jrow_t row[2];
    long n = 0;
    bool loss = false;
    uint64_t gen = 0;
    int rc = store__exec(st->db, "BEGIN IMMEDIATE");
    for (int i = 0; rc == 0 && i < 2; i++) {
        rc = row_get(st, i, &row[i]);
        if (rc == 0) rc = replay_file(st, h, i, &row[i], now, &sc[i]);
        if (rc < 0) break;
        n += sc[i].recovered;
        if (sc[i].lost || sc[i].maybe_lost || sc[i].bad_header)
            say_damage(st, i, &sc[i]);
        loss = loss || sc[i].lost || sc[i].maybe_lost;
        if (h->gen[i] > gen) gen = h->gen[i];
        if (row[i].gen > gen) gen = row[i].gen;
    }
    if (rc == 0 && loss && !st->cfg.accept_journal_loss) {
        log_error("store not opened: acknowledged pushes may be lost",
                  "path=\"%s\" hint=\"start with --accept-journal-loss to"
                  " recover what is readable and go on\"",
                  st->path);
        rc = STORE_E_JOURNAL;
    }
    if (loss && rc == 0)
        log_error("hot journal loss accepted",
                  "path=\"%s\" recovered=%ld"
                  " lost=%ld",
                  st->path, n, sc[0].lost + sc[1].lost);
    /* New generations, named in journal_files before the headers. */
    gen++;
    if (rc == 0) rc = store__journal_row(st, 0, gen, true);
    if (rc == 0) rc = store__journal_row(st, 1, gen + 1, false);
    if (rc == 0) rc = store__exec(st->db, "COMMIT"); /* FULL: durable */
    if (rc < 0) {
        if (!sqlite3_get_autocommit(st->db))
            (void)store__exec(st->db, "ROLLBACK");
        return rc;
    }
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
 *
 * A live owner is told apart from a dying one at once, so a second
 * `herald serve` fails at once instead of after 10 s: the owner also holds
 * a POSIX record lock on PATH-hot0, which the kernel drops when the
 * process dies (io_uring's reference to the file does not keep it), and
 * F_GETLK names its pid.  POSIX locks do not conflict within a process,
 * so this process's own journals are remembered by device and inode.
 */
#define LOCK_WAIT_MS 10000
#define OWNED_MAX 16

static pthread_mutex_t owned_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    dev_t dev;
    ino_t ino;
} owned[OWNED_MAX];

static bool owned_here(int fd, bool add, bool del) {
    struct stat sb;
    if (fstat(fd, &sb) < 0) return false;
    bool found = false;
    pthread_mutex_lock(&owned_mu);
    for (int i = 0; i < OWNED_MAX && !found; i++) {
        if (owned[i].ino == sb.st_ino && owned[i].dev == sb.st_dev) {
            found = true;
            if (del) owned[i].ino = 0;
        }
    }
    for (int i = 0; add && !found && i < OWNED_MAX; i++) {
        if (!owned[i].ino) {
            owned[i].dev = sb.st_dev;
            owned[i].ino = sb.st_ino;
            break;
        }
    }
    pthread_mutex_unlock(&owned_mu);
    return found;
}

/* The pid of another live process owning the journal, or 0. */
static long live_owner(int fd) {
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) return fl.l_pid;
    return 0;
}

bool store__journal_lock(store_sq_t *st, store_hot_t *h) {
    uint64_t t0 = clock_mono_ms();
    bool said = false;
    for (;;) {
        if (flock(h->fd[0], LOCK_EX | LOCK_NB) == 0) {
            if (flock(h->fd[1], LOCK_EX | LOCK_NB) == 0) {
                struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
                (void)fcntl(h->fd[0], F_SETLK, &fl); /* only a hint */
                (void)owned_here(h->fd[0], true, false);
                h->owner = true;
                return true;
            }
            (void)flock(h->fd[0], LOCK_UN);
        }
        if (!st->cfg.exclusive || clock_mono_ms() - t0 >= LOCK_WAIT_MS)
            return false;
        long pid = live_owner(h->fd[0]);
        if (pid || owned_here(h->fd[0], false, false)) {
            log_error("store in use by another herald serve",
                      "path=\"%s\" pid=%ld", st->path,
                      pid ? pid : (long)getpid());
            return false;
        }
        if (!said) {
            log_info("hot journal locked by a process that ended; waiting"
                     " for its last writes",
                     "path=\"%s\"", st->path);
            said = true;
        }
        usleep(10 * 1000);
    }
}

void store__journal_unlock(store_hot_t *h) {
    if (h->owner && h->fd[0] >= 0) (void)owned_here(h->fd[0], false, true);
    h->owner = false;
}
