/*
 * push_sync.c: the push service's own thread, for work the gateway workers
 * must not do themselves because it touches SQLite:
 *
 *   - a device came online: register it (DEVICE_SEEN, durable), then send
 *     it, oldest first and in batches, its inbox after max(acked cursor,
 *     HELLO inboxSeq) and the app's broadcasts after max(cursor, HELLO
 *     broadcastSeq).  Messages stored while this runs are also routed live
 *     (the device is registered in the gateway before the callback), so
 *     nothing falls between the two; a message may come twice, which
 *     at-least-once allows (clients dedupe by msgId);
 *   - acks: cumulative STORE_OP_ACK requests, fire-and-forget;
 *   - status counts (routed/written, from live pushes and from the rows
 *     these syncs send) summed per message in memory and
 *     flushed every FLUSH_MS as one STORE_OP_STATUS per message and event,
 *     so a broadcast to many devices costs a few writes, not one each.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "ops/metrics_herald.h"
#include "push/push_int.h"

#define FLUSH_MS 100
#define BATCH 256
#define MAX_JOBS 100000
#define STATUS_SLOTS 1024

enum { JOB_ONLINE = 1, JOB_ACK = 2 };

typedef struct job {
    struct job *next;
    int type;
    int64_t a, b;     /* cursors (online) or acked seqs (ack) */
    char *device;     /* points into app's buffer */
    char app[];
} job_t;

typedef struct status_ent {
    char msg_id[64];
    long count[STORE_EV_COUNT];
} status_ent_t;

struct push_sync {
    push_service_t *ps;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t *head, *tail;
    long njobs;
    bool stop;
    store_reader_t *rd;
    pthread_mutex_t st_mu;
    status_ent_t *st;     /* STATUS_SLOTS entries, open addressing */
    int st_used;
};

/* ---- job queue ------------------------------------------------------- */

static void enqueue(push_sync_t *s, int type, const gw_device_t *d,
                    int64_t a, int64_t b) {
    size_t al = strlen(d->app) + 1, dl = strlen(d->device) + 1;
    job_t *j = malloc(sizeof *j + al + dl);
    if (!j)
        return;
    j->next = NULL;
    j->type = type;
    j->a = a;
    j->b = b;
    memcpy(j->app, d->app, al);
    j->device = j->app + al;
    memcpy(j->device, d->device, dl);
    pthread_mutex_lock(&s->mu);
    if (s->njobs >= MAX_JOBS || s->stop) {
        /* Overloaded: an ack lost is resent by the device's next ack, a
         * sync lost happens on its next connect. */
        bool full = !s->stop;
        pthread_mutex_unlock(&s->mu);
        if (full)
            metrics_inc(M_QUEUE_DROPPED, MH_DROP_SYNC, 0);
        if (type == JOB_ONLINE)
            push_sync_done(s->ps, j->app, j->device, NULL, NULL);
        free(j);
        return;
    }
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->njobs++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void push_sync_online(push_service_t *ps, const gw_device_t *d) {
    if (ps->sync)
        enqueue(ps->sync, JOB_ONLINE, d, d->inbox_seq, d->broadcast_seq);
}

void push_sync_ack(push_service_t *ps, const gw_device_t *d, int64_t iseq,
                   int64_t bseq) {
    if (ps->sync)
        enqueue(ps->sync, JOB_ACK, d, iseq, bseq);
}

/* ---- status aggregation ---------------------------------------------- */

void push_status_add(push_service_t *ps, const char *msg_id, int event,
                     long count) {
    push_sync_t *s = ps->sync;
    if (!s || event < 0 || event >= STORE_EV_COUNT)
        return;
    size_t n = strlen(msg_id);
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)msg_id[i]) * 16777619u;
    pthread_mutex_lock(&s->st_mu);
    for (int probe = 0; probe < STATUS_SLOTS; probe++) {
        status_ent_t *e = &s->st[(h + (uint32_t)probe) % STATUS_SLOTS];
        if (!e->msg_id[0]) {
            if (s->st_used >= STATUS_SLOTS * 3 / 4) {
                /* full until the next flush: drop the count */
                metrics_inc(M_QUEUE_DROPPED, MH_DROP_STATUS, 0);
                break;
            }
            snprintf(e->msg_id, sizeof e->msg_id, "%s", msg_id);
            s->st_used++;
        }
        if (!strcmp(e->msg_id, msg_id)) {
            e->count[event] += count;
            break;
        }
    }
    pthread_mutex_unlock(&s->st_mu);
}

static void free_req(store_req_t *r, int rc) {
    (void)rc; /* status counts and acks are best effort */
    free(r);
}

static void submit_status(push_sync_t *s, const char *msg_id, int ev,
                          long count) {
    size_t n = strlen(msg_id) + 1;
    store_req_t *r = calloc(1, sizeof *r + n);
    if (!r)
        return;
    char *id = (char *)(r + 1);
    memcpy(id, msg_id, n);
    r->op = STORE_OP_STATUS;
    r->msg.msg_id = id;
    r->event = ev;
    r->count = count;
    r->done = free_req;
    if (store_submit(s->ps->cfg.store, r) < 0) {
        metrics_inc(M_QUEUE_DROPPED, MH_DROP_STORE, 0);
        free(r);
    }
}

static void flush_status(push_sync_t *s) {
    status_ent_t *old, *fresh = calloc(STATUS_SLOTS, sizeof *fresh);
    if (!fresh)
        return;
    pthread_mutex_lock(&s->st_mu);
    old = s->st;
    int used = s->st_used;
    s->st = fresh;
    s->st_used = 0;
    pthread_mutex_unlock(&s->st_mu);
    for (int i = 0; used && i < STATUS_SLOTS; i++)
        for (int ev = 0; old[i].msg_id[0] && ev < STORE_EV_COUNT; ev++)
            if (old[i].count[ev])
                submit_status(s, old[i].msg_id, ev, old[i].count[ev]);
    free(old);
}

/* ---- jobs ------------------------------------------------------------- */

static void do_ack(push_sync_t *s, const job_t *j) {
    size_t al = strlen(j->app) + 1, dl = strlen(j->device) + 1;
    store_req_t *r = calloc(1, sizeof *r + al + dl);
    if (!r)
        return;
    char *app = (char *)(r + 1), *dev = app + al;
    memcpy(app, j->app, al);
    memcpy(dev, j->device, dl);
    r->op = STORE_OP_ACK;
    r->msg.app = app;
    r->device = dev;
    r->seq = j->a;
    r->bseq = j->b;
    r->done = free_req;
    if (store_submit(s->ps->cfg.store, r) < 0) {
        metrics_inc(M_QUEUE_DROPPED, MH_DROP_STORE, 0);
        free(r);
    }
}

static bool send_rows(push_sync_t *s, const job_t *j, const store_rows_t *rw,
                      int64_t *after) {
    for (uint32_t i = 0; i < rw->n; i++) {
        const store_row_t *row = &rw->rows[i];
        gw_msg_t g = {
            .msg_id = row->msg_id,
            .seq = row->seq,
            .timeline = row->timeline,
            .payload = row->payload,
            .payload_len = row->payload_len,
            .need_ack = row->need_ack,
            .sent_at_ms = (int64_t)clock_wall_ms(),
        };
        if (s->ps->sink.device(s->ps->sink.ctx, j->app, j->device, &g) <= 0)
            return false; /* gone again: its next connect syncs */
        /* Queued on the device's connection: count it like a live push. */
        push_status_add(s->ps, row->msg_id, STORE_EV_ROUTED, 1);
        push_status_add(s->ps, row->msg_id, STORE_EV_WRITTEN, 1);
        *after = row->seq;
    }
    return true;
}

/* Sends the timeline after `after`; returns the last seq sent (or after),
 * or -1 when the device went away. */
static int64_t sync_timeline(push_sync_t *s, const job_t *j, int timeline,
                             int64_t after) {
    int64_t now = (int64_t)clock_wall_ms();
    for (;;) {
        store_rows_t rw = {0};
        int rc = timeline == 0
                     ? store_inbox_fetch(s->rd, j->app, j->device, after,
                                         BATCH, now, &rw)
                     : store_bcast_fetch(s->rd, j->app, after, BATCH, now,
                                         &rw);
        if (rc < 0) {
            log_warn("device sync read failed", "app=%s device=%s err=%s",
                     j->app, j->device, store_strerror(rc));
            return -1;
        }
        bool ok = send_rows(s, j, &rw, &after);
        bool more = rw.more && rw.n > 0;
        store_rows_free(&rw);
        if (!ok)
            return -1;
        if (!more)
            return after;
    }
}

typedef struct last_fetch {
    push_sync_t *s;
    const job_t *j;
    int64_t after;
} last_fetch_t;

static void fetch_last(void *ctx) {
    last_fetch_t *lf = ctx;
    if (lf->after >= 0)
        (void)sync_timeline(lf->s, lf->j, 0, lf->after);
}

static void do_online(push_sync_t *s, const job_t *j) {
    store_req_t r;
    memset(&r, 0, sizeof r);
    r.op = STORE_OP_DEVICE_SEEN;
    r.msg.app = j->app;
    r.device = j->device;
    int rc = store_submit_wait(s->ps->cfg.store, &r);
    last_fetch_t lf = {s, j, -1};
    if (rc < 0) {
        log_warn("device seen failed", "app=%s device=%s err=%s", j->app,
                 j->device, store_strerror(rc));
    } else {
        int64_t inbox = r.inbox_acked > j->a ? r.inbox_acked : j->a;
        int64_t bcast = r.bcast_cursor > j->b ? r.bcast_cursor : j->b;
        lf.after = sync_timeline(s, j, 0, inbox);
        (void)sync_timeline(s, j, 1, bcast); /* -1: gone, next connect */
    }
    /* Always: a failed sync must not hold live messages forever. */
    push_sync_done(s->ps, j->app, j->device, fetch_last, &lf);
}

static void run_job(push_sync_t *s, job_t *j) {
    if (j->type == JOB_ONLINE)
        do_online(s, j);
    else
        do_ack(s, j);
    free(j);
}

static void *sync_main(void *arg) {
    push_sync_t *s = arg;
    uint64_t next_flush = clock_mono_ms() + FLUSH_MS;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stop) {
            uint64_t now = clock_mono_ms();
            if (now >= next_flush)
                break;
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
        while (batch) {
            job_t *j = batch;
            batch = j->next;
            run_job(s, j);
        }
        if (clock_mono_ms() >= next_flush || stop) {
            flush_status(s);
            next_flush = clock_mono_ms() + FLUSH_MS;
        }
        pthread_mutex_lock(&s->mu);
        if (stop && !s->head)
            break;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int push_sync_start(push_service_t *ps) {
    push_sync_t *s = calloc(1, sizeof *s);
    if (!s)
        return -12;
    s->ps = ps;
    s->st = calloc(STATUS_SLOTS, sizeof *s->st);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->st_mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int rc = s->st ? store_reader_new(ps->cfg.store, &s->rd) : -12;
    if (rc == 0 && (rc = -pthread_create(&s->thread, NULL, sync_main, s)) ==
                       0) {
        ps->sync = s;
        return 0;
    }
    if (s->rd)
        store_reader_free(s->rd);
    free(s->st);
    free(s);
    return rc < 0 ? rc : -5;
}

/* Stops the thread but keeps the struct: gateway callbacks may still come
 * (they are dropped) until the gateway is freed; push_sync_free then. */
void push_sync_stop(push_service_t *ps) {
    push_sync_t *s = ps->sync;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    bool was = s->stop;
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!was)
        pthread_join(s->thread, NULL);
}

void push_sync_free(push_service_t *ps) {
    push_sync_t *s = ps->sync;
    if (!s)
        return;
    push_sync_stop(ps);
    ps->sync = NULL;
    for (job_t *j = s->head, *n; j; j = n) {
        n = j->next;
        free(j);
    }
    store_reader_free(s->rd);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->st_mu);
    pthread_cond_destroy(&s->cv);
    free(s->st);
    free(s);
}
