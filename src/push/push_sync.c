/*
 * push_sync.c: the push service's own thread, for work the gateway workers
 * must not do themselves because it touches SQLite:
 *
 *   - a device came online: register it (DEVICE_SEEN, durable), then send
 *     it, oldest first and in batches, its inbox after max(acked cursor,
 *     HELLO inboxSeq) and the app's broadcasts after max(cursor, HELLO
 *     broadcastSeq), then the inbox rows stored meanwhile.  Messages
 *     stored while this runs are also routed live (the device is
 *     registered in the gateway before the callback), so nothing falls
 *     between the two; a message may come twice, which at-least-once
 *     allows (clients dedupe by msgId);
 *   - flow control: the backlog goes out in pages of PAGE_BYTES, and
 *     after each page the job parks until the device's connection has
 *     written it (gw_push_mark, answered by push_sync_resume), while the
 *     thread syncs other devices.  Written all at once, a 10 MB backlog
 *     got a healthy device on a slow network cut as a slow consumer
 *     (1 MB/s: 42 cuts in 19 s, never caught up); paced, it gets
 *     everything at its own speed, and the slow-consumer cut is left to
 *     live pushes;
 *   - a SYNC of a short-lived request (POST /v1/yyb): registered like a
 *     connect, then at most `limit` rows are read and handed back in one
 *     answer (sink.sync_answer) instead of being pushed;
 *   - acks: cumulative, so only the highest cursors per device within a
 *     window matter: kept per device in memory and sent every FLUSH_MS as
 *     one STORE_OP_ACK each, fire-and-forget (a device acking every push
 *     of a busy stream costs one store request per window, not per push;
 *     an ack lost in a crash means a redelivery, which clients dedupe);
 *   - status counts (routed/written of live pushes and of the rows these
 *     syncs send) go straight to the store's table of them (store_count),
 *     which sums them per message, so a broadcast to many devices costs
 *     one write, not one each.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "ops/metrics_herald.h"
#include "push/push_agg.h"
#include "push/push_int.h"

#define FLUSH_MS 100
#define BATCH 256               /* rows per store fetch */
#define PAGE_BYTES (64u * 1024) /* sent before waiting for a drain */
#define ROW_COST 64             /* a row's framing, for the page count */
#define PARK_BUCKETS 1024
#define MAX_JOBS 100000
#define MAX_ACK_KEYS (1u << 20)    /* devices per window */

/* Where a device's sync is: registering it, then its inbox, the app's
 * broadcasts, and the inbox rows stored meanwhile (live inbox pushes are
 * held for the sync while it runs, so they come from the store). */
enum { PH_SEEN, PH_INBOX, PH_BCAST, PH_TAIL };

/* A device that came online, to register and sync (acks no longer queue
 * here: they are merged per device, see push_sync_ack).  Between pages it
 * waits in the parked table under its mark's token. */
typedef struct job {
    struct job *next;
    int64_t a, b;      /* the cursors HELLO gave, then where each starts */
    uint64_t gen;      /* the online entry's hold it ends (0: none) */
    uint64_t id;       /* its mark's token while parked; 0: not parked */
    int phase;         /* PH_* */
    int64_t after;     /* the current timeline: last seq sent */
    int64_t inbox;     /* the inbox's last seq sent; -1: unknown (gone) */
    store_rows_t rows; /* fetched for the current timeline */
    uint32_t next_row; /* the first of rows not sent yet */
    bool fetched;      /* rows is from the current timeline */
    bool more;         /* the store has rows after `rows` */
    bool ok;           /* the last mark's answer */
    size_t page;       /* bytes sent since the last mark */
    uint64_t answer;   /* a short-lived SYNC's token: rows go back in one
                         answer (0: a connect's sync, rows are pushed) */
    uint32_t limit;    /* ... and how many at most */
    char *device;      /* points into app's buffer */
    char app[];
} job_t;

struct push_sync {
    push_service_t *ps;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t *head, *tail;
    long njobs;
    bool stop;
    store_reader_t *rd;
    push_agg_t *acks, *acks_out; /* under mu / sync thread's */
    atomic_long dropped;             /* acks a full table lost */
    job_t *parked[PARK_BUCKETS];     /* under mu, by id */
    uint64_t last_id;                /* under mu */
};

static void job_free(job_t *j) {
    store_rows_free(&j->rows);
    free(j);
}

/* ---- job queue ------------------------------------------------------- */

static int enqueue(push_sync_t *s, const gw_device_t *d, int64_t a, int64_t b,
                   uint64_t gen, uint64_t answer, uint32_t limit) {
    size_t al = strlen(d->app) + 1, dl = strlen(d->device) + 1;
    job_t *j = calloc(1, sizeof *j + al + dl);
    if (!j && answer) return -1;
    if (!j) { /* no sync now (the next connect's); no hold either */
        push_sync_done(s->ps, d->app, d->device, gen, NULL, NULL);
        return -1;
    }
    j->answer = answer;
    j->limit = limit;
    j->phase = PH_SEEN;
    j->inbox = -1;
    j->a = a;
    j->b = b;
    j->gen = gen;
    memcpy(j->app, d->app, al);
    j->device = j->app + al;
    memcpy(j->device, d->device, dl);
    pthread_mutex_lock(&s->mu);
    if (s->njobs >= MAX_JOBS || s->stop) {
        /* Overloaded: the sync happens on its next connect; its live
         * pushes must not wait for one that never runs. */
        bool full = !s->stop;
        pthread_mutex_unlock(&s->mu);
        if (full) metrics_inc(M_QUEUE_DROPPED, MH_DROP_SYNC, 0);
        if (!answer)
            push_sync_done(s->ps, j->app, j->device, j->gen, NULL, NULL);
        free(j);
        return -1;
    }
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->njobs++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void push_sync_online(push_service_t *ps, const gw_device_t *d, uint64_t gen) {
    if (ps->sync)
        (void)enqueue(ps->sync, d, d->inbox_seq, d->broadcast_seq, gen, 0, 0);
}

int push_sync_fetch(push_service_t *ps, const gw_device_t *d, uint32_t limit,
                    uint64_t token) {
    return ps->sync && token ? enqueue(ps->sync, d, d->inbox_seq,
                                       d->broadcast_seq, 0, token, limit)
                             : -1;
}

/* Keyed "app\0device". */
void push_sync_ack(push_service_t *ps, const gw_device_t *d, int64_t iseq,
                   int64_t bseq) {
    push_sync_t *s = ps->sync;
    if (!s) return;
    char key[2 * 130];
    int n = snprintf(key, sizeof key, "%s%c%s", d->app, 0, d->device);
    if (n < 0 || (size_t)n >= sizeof key) return;
    pthread_mutex_lock(&s->mu);
    if (!s->stop && (push_agg_put(s->acks, key, (size_t)n, 0, iseq) < 0 ||
                     push_agg_put(s->acks, key, (size_t)n, 1, bseq) < 0)) {
        atomic_fetch_add(&s->dropped, 1); /* its next ack carries it */
        metrics_inc(M_QUEUE_DROPPED, MH_DROP_SYNC, 0);
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- status counts --------------------------------------------------- */

/* The store sums them (store_count, its one table for status counts):
 * routed/written wait there for the message's ack, to be written with
 * it in one update. */
void push_status_add(push_service_t *ps, const char *msg_id, int event,
                     long count) {
    if (ps->cfg.store) store_count(ps->cfg.store, msg_id, event, count);
}

static void free_req(store_req_t *r, store_done_t *d) {
    (void)d; /* acks are best effort */
    free(r);
}

/* ---- acks ------------------------------------------------------------- */

static void submit_ack(void *ctx, const char *key, size_t len,
                       const int64_t *seqs) {
    push_sync_t *s = ctx;
    store_req_t *r = calloc(1, sizeof *r + len + 1);
    if (!r) return;
    char *app = memcpy(r + 1, key, len);
    app[len] = 0;
    r->op = STORE_OP_ACK;
    r->msg.app = app;
    r->device = app + strlen(app) + 1;
    r->seq = seqs[0];
    r->bseq = seqs[1];
    r->done = free_req;
    if (store_submit(s->ps->cfg.store, r) < 0) {
        metrics_inc(M_QUEUE_DROPPED, MH_DROP_STORE, 0);
        free(r);
    }
}

/* Before a sync too: the store must see a device's acks before the
 * DEVICE_SEEN that reads its cursors (requests run in FIFO order). */
static void flush_acks(push_sync_t *s) {
    pthread_mutex_lock(&s->mu);
    push_agg_t *full = s->acks;
    s->acks = s->acks_out;
    s->acks_out = full;
    pthread_mutex_unlock(&s->mu);
    long dropped = atomic_exchange(&s->dropped, 0);
    push_agg_drain(full, submit_ack, s);
    if (dropped) log_warn("acks dropped: table full", "n=%ld", dropped);
}

/* One row to the device's connection as a backlog push; false when the
 * device has no connection here (its next connect syncs). */
static bool send_row(push_sync_t *s, const job_t *j, const store_row_t *row) {
    gw_msg_t g = {
        .msg_id = row->msg_id,
        .seq = row->seq,
        .timeline = row->timeline,
        .payload = row->payload,
        .payload_len = row->payload_len,
        .need_ack = row->need_ack,
        .sent_at_ms = (int64_t)clock_wall_ms(),
        .backlog = true,
    };
    if (s->ps->sink.device(s->ps->sink.ctx, j->app, j->device, &g) <= 0)
        return false;
    /* Queued on the device's connection: count it like a live push. */
    push_status_add(s->ps, row->msg_id, STORE_EV_ROUTED, 1);
    push_status_add(s->ps, row->msg_id, STORE_EV_WRITTEN, 1);
    return true;
}

static int fetch(push_sync_t *s, const job_t *j, int timeline, int64_t after,
                 store_rows_t *rw) {
    int64_t now = (int64_t)clock_wall_ms();
    int rc =
        timeline == 0
            ? store_inbox_fetch(s->rd, j->app, j->device, after, BATCH, now, rw)
            : store_bcast_fetch(s->rd, j->app, after, BATCH, now, rw);
    if (rc < 0)
        log_warn("device sync read failed", "app=%s device=%s err=%s", j->app,
                 j->device, herald_strerror(rc));
    return rc;
}

/* Sends the rest of the inbox after `after` without waiting (the final
 * fetch under the online table's lock: only what was stored since the
 * last page); returns the last seq sent, or -1 when the device went. */
static int64_t send_rest(push_sync_t *s, const job_t *j, int64_t after) {
    for (;;) {
        store_rows_t rw = {0};
        if (fetch(s, j, 0, after, &rw) < 0) return -1;
        bool ok = true;
        for (uint32_t i = 0; ok && i < rw.n; i++)
            if ((ok = send_row(s, j, &rw.rows[i]))) after = rw.rows[i].seq;
        bool more = rw.more && rw.n > 0;
        store_rows_free(&rw);
        if (!ok) return -1;
        if (!more) return after;
    }
}

typedef struct last_fetch {
    push_sync_t *s;
    const job_t *j;
    int64_t after;
} last_fetch_t;

static int64_t fetch_last(void *ctx) {
    last_fetch_t *lf = ctx;
    return lf->after >= 0 ? send_rest(lf->s, lf->j, lf->after) : -1;
}

/* The job is over (done, device gone, or stopped): its hold ends, after
 * a last fetch of the inbox when it got that far. */
static void finish(push_sync_t *s, job_t *j) {
    last_fetch_t lf = {s, j, j->inbox};
    /* Always: a failed sync must not hold live messages forever. */
    push_sync_done(s->ps, j->app, j->device, j->gen, fetch_last, &lf);
    job_free(j);
}

static job_t **park_slot(push_sync_t *s, uint64_t id) {
    job_t **pp = &s->parked[id % PARK_BUCKETS];
    while (*pp && (*pp)->id != id) pp = &(*pp)->next;
    return pp;
}

/* Parks j until its page has drained.  false: the mark was not taken
 * (the device has no connection here). */
static bool park(push_sync_t *s, job_t *j) {
    pthread_mutex_lock(&s->mu);
    j->id = ++s->last_id;
    j->next = s->parked[j->id % PARK_BUCKETS];
    s->parked[j->id % PARK_BUCKETS] = j;
    uint64_t id = j->id;
    pthread_mutex_unlock(&s->mu);
    metrics_gauge_add(M_SYNC_WAITING, 0, 0, 1);
    /* Outside the lock: the answer may come (on a gateway worker) before
     * this returns, and it takes the lock. */
    if (s->ps->sink.mark(s->ps->sink.ctx, j->app, j->device, id) > 0)
        return true;
    pthread_mutex_lock(&s->mu);
    job_t **pp = park_slot(s, id);
    if (*pp) /* no answer comes for a refused mark */
        *pp = j->next;
    j->id = 0;
    j->next = NULL;
    pthread_mutex_unlock(&s->mu);
    metrics_gauge_add(M_SYNC_WAITING, 0, 0, -1);
    return false;
}

enum { STEP_PARKED, STEP_DONE, STEP_GONE };

/* Sends the current timeline from j->after until a page is full (then
 * parks: STEP_PARKED), the timeline is done (STEP_DONE), or the device or
 * the store failed (STEP_GONE). */
static int send_page(push_sync_t *s, job_t *j) {
    int timeline = j->phase == PH_BCAST ? 1 : 0;
    for (;;) {
        if (j->next_row == j->rows.n) {
            bool end = j->fetched && !j->more;
            store_rows_free(&j->rows);
            j->next_row = 0;
            j->fetched = false;
            if (end) return STEP_DONE;
            if (fetch(s, j, timeline, j->after, &j->rows) < 0) return STEP_GONE;
            j->fetched = true;
            j->more = j->rows.more && j->rows.n > 0;
            if (j->rows.n == 0) continue; /* end */
        }
        const store_row_t *row = &j->rows.rows[j->next_row++];
        if (!send_row(s, j, row))
            return STEP_GONE; /* gone again: its next connect syncs */
        j->after = row->seq;
        j->page += row->payload_len + ROW_COST;
        if (j->page >= PAGE_BYTES && s->ps->sink.mark) {
            j->page = 0;
            return park(s, j) ? STEP_PARKED : STEP_GONE;
        }
    }
}

/* DEVICE_SEEN (durable): the store's cursors for the device.  false: the
 * store failed, nothing to send. */
static bool device_seen(push_sync_t *s, job_t *j) {
    store_req_t r;
    memset(&r, 0, sizeof r);
    r.op = STORE_OP_DEVICE_SEEN;
    r.msg.app = j->app;
    r.device = j->device;
    int rc = store_submit_wait(s->ps->cfg.store, &r);
    if (rc < 0) {
        log_warn("device seen failed", "app=%s device=%s err=%s", j->app,
                 j->device, herald_strerror(rc));
        return false;
    }
    j->a = r.inbox_acked > j->a ? r.inbox_acked : j->a;
    j->b = r.bcast_cursor > j->b ? r.bcast_cursor : j->b;
    j->after = j->a;
    j->phase = PH_INBOX;
    return true;
}

/* A short-lived SYNC's rows, inbox then broadcasts, at most j->limit,
 * answered at once.  A store that failed answers more=true: sync again. */
static void answer_job(push_sync_t *s, job_t *j, bool seen) {
    store_rows_t in = {0}, bc = {0};
    int64_t now = (int64_t)clock_wall_ms();
    bool ok =
        seen &&
        store_inbox_fetch(s->rd, j->app, j->device, j->a, j->limit, now, &in) ==
            0 &&
        (in.n == j->limit || store_bcast_fetch(s->rd, j->app, j->b,
                                               j->limit - in.n, now, &bc) == 0);
    uint32_t n = ok ? in.n + bc.n : 0;
    gw_msg_t *g = n ? calloc(n, sizeof *g) : NULL;
    if (n && !g) ok = false, n = 0;
    for (uint32_t i = 0; i < n; i++) {
        const store_row_t *row = i < in.n ? &in.rows[i] : &bc.rows[i - in.n];
        g[i] = (gw_msg_t){.msg_id = row->msg_id,
                          .seq = row->seq,
                          .timeline = row->timeline,
                          .payload = row->payload,
                          .payload_len = row->payload_len,
                          .need_ack = row->need_ack,
                          .sent_at_ms = row->created_ms};
        /* In the answer: as delivered as a pushed row. */
        push_status_add(s->ps, row->msg_id, STORE_EV_ROUTED, 1);
        push_status_add(s->ps, row->msg_id, STORE_EV_WRITTEN, 1);
    }
    bool more = !ok || in.more || bc.more || (in.n == j->limit && ok);
    s->ps->sink.sync_answer(s->ps->sink.ctx, j->answer, g, n, more);
    free(g);
    store_rows_free(&in);
    store_rows_free(&bc);
    job_free(j);
}

/* Runs j until it parks (the thread goes on with other jobs) or ends. */
static void run_job(push_sync_t *s, job_t *j, bool stop) {
    if (j->answer) {
        answer_job(s, j, !stop && device_seen(s, j));
        return;
    }
    if (j->phase == PH_SEEN ? !device_seen(s, j) : !j->ok || stop) {
        j->inbox = -1; /* gone, failed or stopping: no last fetch */
        finish(s, j);
        return;
    }
    for (;;) {
        int st = send_page(s, j);
        if (st == STEP_PARKED) return;
        if (st == STEP_GONE) {
            j->inbox = -1;
            break;
        }
        if (j->phase == PH_BCAST) { /* then the inbox stored meanwhile */
            j->phase = PH_TAIL;
            j->after = j->inbox;
            continue;
        }
        j->inbox = j->after;
        if (j->phase == PH_TAIL) break;
        j->phase = PH_BCAST;
        j->after = j->b;
    }
    finish(s, j);
}

void push_sync_resume(push_service_t *ps, uint64_t token, bool ok) {
    push_sync_t *s = ps->sync;
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    job_t **pp = park_slot(s, token);
    job_t *j = *pp;
    if (j) {
        metrics_gauge_add(M_SYNC_WAITING, 0, 0, -1);
        *pp = j->next;
        j->id = 0;
        j->ok = ok;
        j->next = NULL;
        if (s->stop) { /* the thread is gone or going: drop it */
            job_free(j);
        } else {
            if (s->tail)
                s->tail->next = j;
            else
                s->head = j;
            s->tail = j; /* not counted in njobs: never refused */
            pthread_cond_signal(&s->cv);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

static void *sync_main(void *arg) {
    push_sync_t *s = arg;
    (void)pthread_setname_np(pthread_self(), "herald-sync"); /* top -H */
    uint64_t next_flush = clock_mono_ms() + FLUSH_MS;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stop) {
            uint64_t now = clock_mono_ms();
            if (now >= next_flush) break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t wait = next_flush - now;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        job_t *batch = s->head;
        s->head = s->tail = NULL;
        s->njobs = 0;
        bool stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        bool fresh = false; /* a new device (not a sync going on) */
        for (job_t *j = batch; j && !fresh; j = j->next)
            fresh = j->phase == PH_SEEN;
        if (fresh) flush_acks(s);
        while (batch) {
            job_t *j = batch;
            batch = j->next;
            j->next = NULL;
            run_job(s, j, stop); /* parks it, or finishes and frees it */
        }
        if (clock_mono_ms() >= next_flush || stop) {
            flush_acks(s);
            next_flush = clock_mono_ms() + FLUSH_MS;
        }
        pthread_mutex_lock(&s->mu);
        if (stop && !s->head) break;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void free_tables(push_sync_t *s) {
    push_agg_free(s->acks);
    push_agg_free(s->acks_out);
}

int push_sync_start(push_service_t *ps) {
    push_sync_t *s = calloc(1, sizeof *s);
    if (!s) return -12;
    s->ps = ps;
    s->acks = push_agg_new(2, PUSH_AGG_MAX, MAX_ACK_KEYS);
    s->acks_out = push_agg_new(2, PUSH_AGG_MAX, MAX_ACK_KEYS);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    bool mem = s->acks && s->acks_out;
    int rc = mem ? store_reader_new(ps->cfg.store, &s->rd) : -12;
    if (rc == 0 &&
        (rc = -pthread_create(&s->thread, NULL, sync_main, s)) == 0) {
        ps->sync = s;
        return 0;
    }
    if (s->rd) store_reader_free(s->rd);
    free_tables(s);
    free(s);
    return rc < 0 ? rc : -5;
}

/* Stops the thread but keeps the struct: gateway callbacks may still come
 * (they are dropped) until the gateway is freed; push_sync_free then. */
void push_sync_stop(push_service_t *ps) {
    push_sync_t *s = ps->sync;
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    bool was = s->stop;
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!was) pthread_join(s->thread, NULL);
}

void push_sync_free(push_service_t *ps) {
    push_sync_t *s = ps->sync;
    if (!s) return;
    push_sync_stop(ps);
    ps->sync = NULL;
    for (job_t *j = s->head, *n; j; j = n) {
        n = j->next;
        job_free(j);
    }
    for (int i = 0; i < PARK_BUCKETS; i++) /* waiting for a drain */
        for (job_t *j = s->parked[i], *n; j; j = n) {
            n = j->next;
            metrics_gauge_add(M_SYNC_WAITING, 0, 0, -1);
            job_free(j);
        }
    store_reader_free(s->rd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free_tables(s);
    free(s);
}
