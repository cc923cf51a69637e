/*
 * The hot inbox: single-device pushes held in memory, made durable by an
 * append-only journal beside the SQLite file, and written to SQLite
 * ("folded") in bulk once they are HOT_AGE_MS old (writer thread only).
 *
 * Why: a push to an online device is usually acked within milliseconds.
 * Through SQLite alone it cost about eight statements and seven B-tree
 * changes (message row, seq head, inbox row; on the ack the seq head, the
 * inbox delete and the status update), half the server's CPU per push.
 * Held here, the ack lands in memory first, and the fold writes one
 * message row with its final status and no inbox row at all; a push still
 * unacked at fold time gets its inbox row then.  The journal is a plain
 * file because what it needs (append, fdatasync, replay after a crash) is
 * a few lines of C, while an SQLite table for it would cost the very
 * B-tree work the hot inbox exists to avoid.
 *
 * Invariants:
 *  - a hot push's done() runs only after its journal record is on disk
 *    (fdatasync), as a SQLite push's runs only after its commit;
 *  - everything else sees SQLite only: a request the hot path does not
 *    take folds every hot push first (store_writer.c), and a reader asks
 *    the writer to fold all (store__hot_barrier) before reading;
 *  - the journal files (PATH-hot0, PATH-hot1, used in turn) are emptied
 *    only after every record in them is folded and the WAL is fsynced;
 *  - replaying a record is idempotent (INSERT OR IGNORE, seqs only move
 *    forward, an acked or expired record gets no inbox row), so a crash at
 *    any point replays at most what is already there.
 *
 * Acks held in memory are not journaled: after a crash, a push acked but
 * not yet folded comes back unacked and is delivered again, which clients
 * drop by message id (DESIGN.md §4: at least once).
 */
#include "store/store_hot_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"

#define HOT_AGE_MS 300 /* below store_pend.c's PEND_MS (500) */
#define HOT_MAX 65536  /* entries held before a full fold */
/* A fold waits for HOT_FOLD_MIN old pushes (or HOT_LATE_MS past due):
 * each fold commit rewrites the tail pages of the messages table and its
 * sweep index, so 25-push folds (one per writer loop at 35k pushes/s)
 * wrote each page several times over.  128 took ~10 % off the store
 * writer's CPU per push; HOT_FOLD_MAX bounds one fold's time (a fold
 * holds the writer, so a long one would show in push latency). */
#define HOT_FOLD_MIN 128
#define HOT_FOLD_MAX 1024
#define HOT_LATE_MS 50 /* AGE + LATE stays below PEND_MS */
#define DEV_BUCKETS_MIN 1024u
#define DEV_CACHE_MAX 200000u /* idle devices dropped past this */

/* ---- device cache ------------------------------------------------------- */

static uint32_t dev_hash(const char *app, const char *dev) {
    uint32_t h = core_fnv1a(CORE_FNV1A_INIT, app, strlen(app) + 1);
    return core_fnv1a(h, dev, strlen(dev));
}

static hot_dev_t *dev_find(store_hot_t *h, const char *app, const char *dev,
                           uint32_t hash) {
    for (hot_dev_t *d = h->buckets[hash & (h->nbuckets - 1)]; d; d = d->hnext)
        if (d->hash == hash && !strcmp(d->key, app) &&
            !strcmp(d->key + d->app_len + 1, dev))
            return d;
    return NULL;
}

static void dev_unlink(store_hot_t *h, hot_dev_t *d) {
    hot_dev_t **p = &h->buckets[d->hash & (h->nbuckets - 1)];
    while (*p != d) p = &(*p)->hnext;
    *p = d->hnext;
    h->ndev--;
}

/* Drops cached devices with nothing hot and nothing to write back. */
static void dev_trim(store_hot_t *h) {
    for (uint32_t i = 0; i < h->nbuckets; i++) {
        for (hot_dev_t **p = &h->buckets[i]; *p;) {
            hot_dev_t *d = *p;
            if (!d->first && !d->dirty) {
                *p = d->hnext;
                h->ndev--;
                free(d);
            } else {
                p = &d->hnext;
            }
        }
    }
}

static int dev_grow(store_hot_t *h) {
    uint32_t nb = h->nbuckets * 2;
    hot_dev_t **b = calloc(nb, sizeof *b);
    if (!b) return STORE_E_NOMEM;
    for (uint32_t i = 0; i < h->nbuckets; i++) {
        for (hot_dev_t *d = h->buckets[i], *next; d; d = next) {
            next = d->hnext;
            d->hnext = b[d->hash & (nb - 1)];
            b[d->hash & (nb - 1)] = d;
        }
    }
    free(h->buckets);
    h->buckets = b;
    h->nbuckets = nb;
    return 0;
}

/* The cached device, loaded from its SQLite row on a miss.  NULL with *rc
 * 0: the device is not registered (the SQL path registers it). */
static hot_dev_t *dev_get(store_sq_t *st, const char *app, const char *dev,
                          int *rc) {
    store_hot_t *h = st->hot;
    uint32_t hash = dev_hash(app, dev);
    hot_dev_t *d = dev_find(h, app, dev, hash);
    *rc = 0;
    if (d) return d;
    sqlite3_stmt *s = store__w(st, W_DEV_GET);
    if (!s) {
        *rc = STORE_E_IO;
        return NULL;
    }
    sqlite3_bind_text(s, 1, app, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, dev, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        size_t al = strlen(app), dl = strlen(dev);
        d = calloc(1, sizeof *d + al + dl + 2);
        if (d) {
            d->last_seq = sqlite3_column_int64(s, 0);
            d->acked = sqlite3_column_int64(s, 1);
            d->cursor = sqlite3_column_int64(s, 2);
            d->sql_max = d->last_seq; /* nothing hot: any row is in SQL */
            d->sql_acked = d->acked;
            d->hash = hash;
            d->app_len = al;
            memcpy(d->key, app, al + 1);
            memcpy(d->key + al + 1, dev, dl + 1);
        } else {
            *rc = STORE_E_NOMEM;
        }
    } else if (step != SQLITE_DONE) {
        *rc = store__sql_err(st->db, step, "hot device");
    }
    sqlite3_reset(s);
    if (!d) return NULL;
    if (h->ndev >= DEV_CACHE_MAX) dev_trim(h);
    if (h->ndev >= h->nbuckets && dev_grow(h) < 0) {
        free(d);
        *rc = STORE_E_NOMEM;
        return NULL;
    }
    d->hnext = h->buckets[hash & (h->nbuckets - 1)];
    h->buckets[hash & (h->nbuckets - 1)] = d;
    h->ndev++;
    return d;
}

/* What readers test before asking for a fold: pushes held, or device
 * rows behind their cache. */
static void publish(store_sq_t *st) {
    atomic_store(&st->hot_n, st->hot->n + (st->hot->dirty ? 1 : 0));
}

static void dev_mark_dirty(store_sq_t *st, hot_dev_t *d) {
    store_hot_t *h = st->hot;
    if (d->dirty) return;
    d->dirty = true;
    d->dirty_next = h->dirty;
    h->dirty = d;
    publish(st);
}

void store__hot_forget(store_sq_t *st, const char *app, const char *dev) {
    store_hot_t *h = st->hot;
    if (!h || !app || !dev) return;
    pthread_mutex_lock(&h->mu);
    hot_dev_t *d = dev_find(h, app, dev, dev_hash(app, dev));
    /* Only called after a full fold: nothing hot, nothing dirty. */
    if (d && !d->first && !d->dirty) {
        dev_unlink(h, d);
        free(d);
    }
    pthread_mutex_unlock(&h->mu);
}

void store__hot_lock(store_sq_t *st, bool lock) {
    if (!st->hot) return;
    if (lock)
        pthread_mutex_lock(&st->hot->mu);
    else
        pthread_mutex_unlock(&st->hot->mu);
}

/* Copies one entry into a row; 0 or STORE_E_NOMEM. */
static int row_of(const hot_ent_t *e, store_row_t *row) {
    memset(row, 0, sizeof *row);
    row->msg_id = strdup(e->msg_id);
    row->payload = malloc(e->payload_len ? e->payload_len : 1);
    if (!row->msg_id || !row->payload) return STORE_E_NOMEM;
    memcpy(row->payload, e->payload, e->payload_len);
    row->payload_len = e->payload_len;
    row->seq = e->seq;
    row->need_ack = e->need_ack;
    row->created_ms = e->created;
    row->expires_ms = e->expires;
    return 0;
}

int store__hot_fetch(store_sq_t *st, const char *app, const char *dev,
                     int64_t after, uint32_t limit, int64_t now,
                     store_rows_t *out, int64_t *drop_to) {
    store_hot_t *h = st->hot;
    memset(out, 0, sizeof *out);
    *drop_to = 0;
    if (!h || !app || !dev) return 0;
    int rc = 0;
    pthread_mutex_lock(&h->mu);
    hot_dev_t *d = dev_find(h, app, dev, dev_hash(app, dev));
    if (d) *drop_to = d->drop_to;
    for (hot_ent_t *e = d ? d->first : NULL; e && rc == 0; e = e->dnext) {
        /* Not on disk yet: its push is not acknowledged, and a crash now
         * would hand its seq to another message. */
        if (e == h->unsynced) break;
        if (e->seq <= after || e->at_acked || e->at_dropped ||
            (now && e->expires <= now))
            continue;
        if (out->n == limit) {
            out->more = true;
            break;
        }
        if (!out->rows && !(out->rows = calloc(limit, sizeof *out->rows))) {
            rc = STORE_E_NOMEM;
            break;
        }
        rc = row_of(e, &out->rows[out->n++]);
    }
    pthread_mutex_unlock(&h->mu);
    if (rc < 0) store_rows_free(out);
    return rc;
}

/* inbox_max: appending seq drops the device's held pushes up to
 * seq - inbox_max that are not acked; SQLite's rows follow at the next
 * fold (fold_dev), readers skip them at once (store__hot_fetch). */
static void inbox_cap(store_sq_t *st, hot_dev_t *d, int64_t seq, int64_t now) {
    long max = st->cfg.inbox_max;
    if (max <= 0 || seq - d->acked <= max) return;
    int64_t cut = seq - max;
    if (cut <= d->drop_to) return;
    hot_ent_t *e = d->drop_next ? d->drop_next : d->first;
    for (; e && e->seq <= cut; e = e->dnext) {
        if (e->seq <= d->drop_to || e->at_acked || e->at_dropped) continue;
        e->at_dropped = now;
        atomic_fetch_add(&st->dropped, 1);
    }
    d->drop_next = e;
    d->drop_to = cut;
}

/* ---- the fast paths -------------------------------------------------------- */

bool store__hot_append(store_sq_t *st, store_req_t *req, int64_t now, int *rc,
                       void **hot) {
    store_hot_t *h = st->hot;
    const store_msg_t *m = &req->msg;
    if (!h || req->op != STORE_OP_INBOX_APPEND ||
        req->kind != STORE_KIND_SINGLE || req->n_devices != 1 ||
        !req->devices || !store__name_ok(m->app) ||
        !store__name_ok(m->msg_id) ||
        strlen(m->msg_id) >= sizeof((hot_ent_t *)0)->msg_id ||
        !req->devices[0] || !*req->devices[0] ||
        strlen(req->devices[0]) > UINT16_MAX ||
        (m->request_id && *m->request_id) ||
        (m->collapse_key && *m->collapse_key) || m->ttl <= 0 ||
        m->payload_len > HOT_PAYLOAD_MAX || (m->payload_len && !m->payload) ||
        h->n >= HOT_MAX)
        return false;
    hot_dev_t *d = dev_get(st, m->app, req->devices[0], rc);
    if (!d) return *rc < 0; /* unknown: the SQL path registers it */
    hot_ent_t *e = malloc(sizeof *e + m->payload_len);
    if (!e) {
        *rc = STORE_E_NOMEM;
        return true;
    }
    memset(e, 0, sizeof *e);
    e->dev = d;
    e->seq = d->last_seq + 1;
    e->created = m->created_ms > 0 ? m->created_ms : now;
    e->expires = e->created + (int64_t)m->ttl * 1000;
    e->ttl = m->ttl;
    e->need_ack = m->need_ack;
    e->file = (uint8_t)h->cur;
    e->born_ms = clock_mono_ms();
    memcpy(e->msg_id, m->msg_id, strlen(m->msg_id) + 1); /* length checked */
    e->payload_len = m->payload_len;
    if (m->payload_len) memcpy(e->payload, m->payload, m->payload_len);
    if ((*rc = store__journal_add(h, e)) < 0) {
        free(e);
        return true;
    }
    inbox_cap(st, d, e->seq, now);
    d->last_seq = e->seq;
    dev_mark_dirty(st, d);
    if (d->last)
        d->last->dnext = e;
    else
        d->first = e;
    d->last = e;
    if (!d->ack_next) d->ack_next = e;
    if (!h->unsynced) h->unsynced = e;
    if (h->tail)
        h->tail->next = e;
    else
        h->head = e;
    h->tail = e;
    h->n++;
    h->live[e->file]++;
    publish(st);
    if (req->seqs) req->seqs[0] = e->seq;
    *hot = e; /* until its done(): folds come after */
    return true;
}

/*
 * The hot part of a cumulative ack happens here, in memory.  Inbox rows of
 * the device in SQLite (pushes folded before their ack) or a broadcast
 * cursor to move leave the request to the SQL path as well (false), which
 * removes those rows; store__hot_acked then records how far it got.
 */
bool store__hot_ack(store_sq_t *st, store_req_t *req, int64_t now, int *rc) {
    store_hot_t *h = st->hot;
    if (!h || req->op != STORE_OP_ACK || !store__name_ok(req->msg.app) ||
        !req->device || !*req->device)
        return false;
    hot_dev_t *d = dev_find(h, req->msg.app, req->device,
                            dev_hash(req->msg.app, req->device));
    if (!d) return false; /* nothing hot: SQLite has all of it */
    int64_t acked = req->seq < d->last_seq ? req->seq : d->last_seq;
    if (acked > d->acked) {
        hot_ent_t *e = d->ack_next;
        for (; e && e->seq <= acked; e = e->dnext) {
            if (e->at_acked || e->at_dropped) continue;
            e->at_acked = now; /* its delivery counts wait in store_pend */
        }
        d->ack_next = e;
        d->acked = acked;
        dev_mark_dirty(st, d);
    }
    if ((d->sql_acked < d->sql_max && req->seq > d->sql_acked) ||
        req->bseq > d->cursor)
        return false;
    req->inbox_acked = d->acked;
    req->bcast_cursor = d->cursor;
    *rc = 0;
    return true;
}

void store__hot_acked(store_sq_t *st, store_req_t *req) {
    store_hot_t *h = st->hot;
    if (!h || req->op != STORE_OP_ACK || !req->device) return;
    hot_dev_t *d = dev_find(h, req->msg.app, req->device,
                            dev_hash(req->msg.app, req->device));
    if (!d) return;
    pthread_mutex_lock(&h->mu);
    if (req->inbox_acked > d->sql_acked) d->sql_acked = req->inbox_acked;
    if (req->inbox_acked > d->acked) d->acked = req->inbox_acked;
    d->cursor = req->bcast_cursor;
    req->inbox_acked = d->acked; /* the hot part counts too */
    pthread_mutex_unlock(&h->mu);
}

/* ---- folding into SQLite ---------------------------------------------------- */

/* The message row with the status the push reached: its ack and drop are
 * here, its delivery counts in store_pend (taken: a rollback puts them
 * back, store__pend_settle). */
static int fold_one(store_sq_t *st, const hot_ent_t *e) {
    const hot_dev_t *d = e->dev;
    store_pend_ent_t held = {0};
    (void)store__pend_take(st, e->msg_id, &held);
    hot_row_t r = {.msg_id = e->msg_id,
                   .app = d->key,
                   .dev = d->key + d->app_len + 1,
                   .payload = e->payload,
                   .payload_len = (uint32_t)e->payload_len,
                   .ttl = e->ttl,
                   .need_ack = e->need_ack,
                   .seq = e->seq,
                   .created = e->created,
                   .expires = e->expires,
                   .at_delivered = held.at,
                   .routed = held.n[STORE_EV_ROUTED],
                   .written = held.n[STORE_EV_WRITTEN],
                   .at_acked = e->at_acked,
                   .at_dropped = e->at_dropped};
    return store__hot_write_row(st, &r, !e->at_acked && !e->at_dropped);
}

/* A device row, and SQLite's inbox rows that inbox_max dropped since. */
static int fold_dev(store_sq_t *st, hot_dev_t *d) {
    const char *dev = d->key + d->app_len + 1;
    if (d->drop_to > d->sql_trimmed && d->sql_max > d->sql_acked) {
        int rc = store__inbox_trim(st, d->key, dev, d->drop_to,
                                   (int64_t)clock_wall_ms());
        if (rc < 0) return rc;
        d->sql_trimmed = d->drop_to; /* a rollback: trimmed again later */
    }
    return store__hot_write_dev(st, d->key, dev, d->last_seq, d->acked);
}

/* Frees the first n entries, folded by a committed transaction. */
static void drop_folded(store_sq_t *st, long n) {
    store_hot_t *h = st->hot;
    pthread_mutex_lock(&h->mu);
    while (n-- > 0 && h->head) {
        hot_ent_t *e = h->head;
        hot_dev_t *d = e->dev;
        if (!e->at_acked && e->seq > d->sql_max) d->sql_max = e->seq;
        d->first = e->dnext;
        if (!d->first) d->last = NULL;
        if (d->ack_next == e) d->ack_next = e->dnext;
        if (d->drop_next == e) d->drop_next = e->dnext;
        h->head = e->next;
        if (!h->head) h->tail = NULL;
        h->live[e->file]--;
        h->n--;
        free(e);
    }
    pthread_mutex_unlock(&h->mu);
    publish(st);
}

/* At least n entries are old and on disk (walks at most n). */
static bool aged_at_least(const store_hot_t *h, uint64_t now, int n) {
    for (const hot_ent_t *e = h->head; n > 0; e = e->next, n--)
        if (!e || e == h->unsynced || e->born_ms + HOT_AGE_MS > now)
            return false;
    return true;
}

/*
 * HOT_OLD folds the pushes older than HOT_AGE_MS, once HOT_FOLD_MIN of
 * them are (or the oldest is HOT_LATE_MS overdue).  A device's row (its seq
 * head and ack) is written with them only when one of them gets an inbox
 * row (an SQL ack of it reads the row); otherwise rows wait for HOT_DEVS,
 * which writes every device row behind its cache, before a journal file
 * is reused (store__hot_rotate) and in every HOT_ALL.  One row per device
 * per reuse instead of one per fold: most folds would touch as many
 * devices as pushes.  HOT_RESCUE is HOT_ALL for a batch whose journal
 * write failed: its pushes are folded too (the caller commits with an
 * fsync, so SQLite holds them durably instead).
 *
 * Every fold also tells journal_files how far the files' records are on
 * disk: replay's lower bound, by which a file cut short or damaged at its
 * end is noticed.
 */
long store__hot_fold(store_sq_t *st, int mode) {
    static log_limit_t lim = LOG_LIMIT_INIT(1000);
    store_hot_t *h = st->hot;
    if (!h || (!h->head && !h->dirty)) return 0;
    uint64_t now = clock_mono_ms();
    if (mode == HOT_OLD && h->n < HOT_MAX / 2 &&
        (!h->head || h->head->born_ms + HOT_AGE_MS > now ||
         (h->head->born_ms + HOT_AGE_MS + HOT_LATE_MS > now &&
          !aged_at_least(h, now, HOT_FOLD_MIN))))
        return 0;
    long n = 0, rows = 0;
    int rc = store__exec(st->db, "BEGIN IMMEDIATE");
    for (hot_ent_t *e = h->head; rc == 0 && mode != HOT_DEVS && e;
         e = e->next) {
        if (mode == HOT_OLD &&
            (e->born_ms + HOT_AGE_MS > now || n >= HOT_FOLD_MAX))
            break;
        /* not on disk yet: readers wait */
        if (e == h->unsynced && mode != HOT_RESCUE) break;
        if ((rc = fold_one(st, e)) < 0) break;
        n++;
        rows += e->at_acked ? 1 : 2;
        if (!e->at_acked && mode == HOT_OLD && (rc = fold_dev(st, e->dev)) == 0)
            rows++;
    }
    for (hot_dev_t *d = h->dirty; rc == 0 && mode != HOT_OLD && d;
         d = d->dirty_next)
        if ((rc = fold_dev(st, d)) == 0) rows++;
    if (rc == 0) rc = store__journal_note_ends(st);
    if (rc == 0) rc = store__exec(st->db, "COMMIT");
    store__pend_settle(st, rc == 0); /* the delivery counts fold_one took */
    if (rc < 0) {
        if (!sqlite3_get_autocommit(st->db))
            (void)store__exec(st->db, "ROLLBACK");
        h->db_idx[0] = h->db_idx[1] = UINT32_MAX; /* unknown: write again */
        log_limited(&lim, LOG_LEVEL_WARN, "hot fold failed; retried later",
                    "err=\"%s\"", herald_strerror(rc));
        return rc;
    }
    if (mode == HOT_RESCUE) {
        pthread_mutex_lock(&h->mu);
        h->unsynced = NULL; /* in SQLite now: readers may see them */
        pthread_mutex_unlock(&h->mu);
    }
    while (mode != HOT_OLD && h->dirty) {
        h->dirty->dirty = false;
        h->dirty = h->dirty->dirty_next;
    }
    drop_folded(st, n); /* publishes */
    return rows;
}

/* Folds commit without an fsync; records may leave the journal once the
 * WAL holding their fold is on disk (a checkpoint syncs what it copies
 * out of the WAL, so what is no longer there is on disk too). */
static int wal_sync(store_sq_t *st) {
    store_hot_t *h = st->hot;
    if (!st->cfg.synchronous_full) return 0;
    if (h->walfd < 0) {
        char wal[4096];
        snprintf(wal, sizeof wal, "%s-wal", st->path);
        h->walfd = open(wal, O_RDONLY | O_CLOEXEC);
    }
    return h->walfd >= 0 && fdatasync(h->walfd) == 0 ? 0 : STORE_E_IO;
}

/* Empties the idle journal file when everything in it is folded and
 * durable, and makes it the one written next.  journal_files names the
 * new generation first, synced with the WAL, then the header follows. */
void store__hot_rotate(store_sq_t *st) {
    store_hot_t *h = st->hot;
    if (!h || h->inflight || h->off[h->cur] < st->cfg.hot_file_max ||
        h->live[!h->cur])
        return;
    int other = !h->cur;
    uint64_t gen = (h->gen[0] > h->gen[1] ? h->gen[0] : h->gen[1]) + 1;
    if (store__hot_fold(st, HOT_DEVS) < 0 ||
        store__journal_row(st, other, gen, true) < 0 || wal_sync(st) < 0)
        return;
    if (store__journal_restart(h, other, gen) == 0) h->cur = other;
}

void store__hot_discard(store_sq_t *st) {
    store_hot_t *h = st->hot;
    if (!h || !h->unsynced) return;
    pthread_mutex_lock(&h->mu);
    hot_ent_t *first = h->unsynced, *keep = NULL;
    for (hot_ent_t *e = h->head; e && e != first; e = e->next) keep = e;
    /* The batch's entries are the newest: the end of each of their
     * devices' lists. */
    for (hot_ent_t *e = first; e; e = e->next) e->doomed = true;
    for (hot_ent_t *e = first; e; e = e->next) {
        hot_dev_t *d = e->dev;
        if (!d->last || !d->last->doomed) continue; /* cut already */
        hot_ent_t *last = NULL;
        for (hot_ent_t *x = d->first; x && !x->doomed; x = x->dnext) last = x;
        if (last)
            last->dnext = NULL;
        else
            d->first = NULL;
        d->last = last;
        if (d->ack_next && d->ack_next->doomed) d->ack_next = NULL;
        if (d->drop_next && d->drop_next->doomed) d->drop_next = NULL;
    }
    long n = 0;
    for (hot_ent_t *e = first, *next; e; e = next) {
        next = e->next;
        h->live[e->file]--;
        h->n--;
        free(e);
        n++;
    }
    if (keep)
        keep->next = NULL;
    else
        h->head = NULL;
    h->tail = keep;
    h->unsynced = NULL;
    pthread_mutex_unlock(&h->mu);
    publish(st);
    log_warn("hot pushes not stored: journal write failed", "pushes=%ld", n);
}

uint64_t store__hot_next_due(const store_sq_t *st) {
    const store_hot_t *h = st->hot;
    return h && h->head ? h->head->born_ms + HOT_AGE_MS + HOT_LATE_MS : 0;
}

/* ---- barrier for readers ------------------------------------------------------ */

/* A reader runs on some caller's event loop (the push API's, the admin
 * port's): it must never wait unbounded.  When SQLite already cannot
 * write (a full disk) no fold can succeed, so it does not wait at all;
 * otherwise the writer answers within one cycle, and BARRIER_MS bounds a
 * writer stuck in a long commit. */
#define BARRIER_MS 2000

int store__hot_barrier(store_sq_t *st) {
    if (!atomic_load(&st->hot_n)) return 0;
    int rc = atomic_load_explicit(&st->fault_sql, memory_order_relaxed);
    if (rc) return rc;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += BARRIER_MS / 1000;
    pthread_mutex_lock(&st->mu);
    uint64_t t = ++st->fold_asked;
    pthread_cond_broadcast(&st->cv);
    while (rc == 0 && st->fold_done < t && st->thread_started)
        if (pthread_cond_timedwait(&st->fold_cv, &st->mu, &until) == ETIMEDOUT)
            rc = STORE_E_TIMEOUT;
    if (rc == 0 && st->fold_done >= t) rc = st->fold_rc;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- open and close ---------------------------------------------------------- */

int store__hot_open(store_sq_t *st) {
    store_hot_t *h = calloc(1, sizeof *h);
    if (!h) return STORE_E_NOMEM;
    h->fd[0] = h->fd[1] = h->walfd = -1;
    h->sync = st->cfg.synchronous_full;
    pthread_mutex_init(&h->mu, NULL);
    h->nbuckets = DEV_BUCKETS_MIN;
    h->buckets = calloc(h->nbuckets, sizeof *h->buckets);
    int rc = h->buckets ? 0 : STORE_E_NOMEM;
    for (int i = 0; rc == 0 && i < 2; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s-hot%d", st->path, i);
        h->fd[i] = open(p, O_RDWR | O_CLOEXEC);
        if (h->fd[i] < 0 && errno == ENOENT) { /* replay asks if it should */
            h->missing[i] = true;
            h->fd[i] = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        }
        if (h->fd[i] < 0) rc = STORE_E_IO;
    }
    if (rc == 0 && !store__journal_lock(st, h)) {
        store__hot_free(h);
        return st->cfg.exclusive ? STORE_E_LOCKED : 0;
    }
    if (rc == 0) rc = store__journal_replay(st, h);
    if (rc < 0) {
        log_error("hot journal unusable", "path=\"%s\" err=\"%s\"", st->path,
                  herald_strerror(rc));
        store__hot_free(h);
        return rc;
    }
    st->hot = h;
    return 0;
}

/* After the writer folded everything and stopped. */
void store__hot_free(store_hot_t *h) {
    if (!h) return;
    store__journal_unlock(h);
    while (h->head) {
        hot_ent_t *e = h->head;
        h->head = e->next;
        free(e);
    }
    for (uint32_t i = 0; h->buckets && i < h->nbuckets; i++) {
        for (hot_dev_t *d = h->buckets[i], *next; d; d = next) {
            next = d->hnext;
            free(d);
        }
    }
    free(h->buckets);
    free(h->jbuf);
    if (h->ring_ok) io_uring_queue_exit(&h->ring);
    pthread_mutex_destroy(&h->mu);
    for (int i = 0; i < 2; i++)
        if (h->fd[i] >= 0) close(h->fd[i]);
    if (h->walfd >= 0) close(h->walfd);
    free(h);
}

/* Everything folded with an fsync: the journal can go, and
 * journal_files says neither file holds anything. */
void store__hot_close(store_sq_t *st) {
    store_hot_t *h = st->hot;
    if (!h) return;
    uint64_t gen = (h->gen[0] > h->gen[1] ? h->gen[0] : h->gen[1]) + 1;
    if (store__hot_fold(st, HOT_ALL) < 0 || h->head ||
        store__journal_row(st, 0, gen, false) < 0 ||
        store__journal_row(st, 1, gen + 1, false) < 0 || wal_sync(st) < 0) {
        log_warn("hot journal kept for replay at the next open", NULL);
        return;
    }
    if (store__journal_restart(h, 0, gen) < 0 ||
        store__journal_restart(h, 1, gen + 1) < 0 ||
        store__journal_flush(h) < 0)
        log_warn("hot journal not emptied (replayed at the next open)", NULL);
}
