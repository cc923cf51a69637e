/*
 * The SQLite backend's submission queue: requests become jobs (from a
 * free list: no allocation per push), wait in two FIFOs, and the writer
 * takes them a batch at a time (store_writer.c runs them).
 */
#include "store/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"

/* A job from the free list, which grows JOB_CHUNK at a time (under mu);
 * NULL without memory. */
#define JOB_CHUNK 256

static store_job_t *job_get(store_sq_t *st) {
    if (!st->free_jobs) {
        void **chunks = realloc(st->job_chunks,
                                (size_t)(st->n_chunks + 1) * sizeof *chunks);
        store_job_t *c = calloc(JOB_CHUNK, sizeof *c);
        if (chunks) st->job_chunks = chunks;
        if (!chunks || !c) {
            free(c);
            return NULL;
        }
        chunks[st->n_chunks++] = c;
        for (int i = 0; i < JOB_CHUNK; i++) {
            c[i].next = st->free_jobs;
            st->free_jobs = &c[i];
        }
    }
    store_job_t *j = st->free_jobs;
    st->free_jobs = j->next;
    return j;
}

void store__jobs_put(store_sq_t *st, store_job_t **jobs, int n) {
    for (int i = 0; i < n; i++) {
        jobs[i]->req = NULL;
        jobs[i]->next = st->free_jobs;
        st->free_jobs = jobs[i];
    }
}

int store_sq_submit(store_sq_t *st, store_req_t *req) {
    int rc = 0;
    uint64_t now_us = clock_mono_us();
    pthread_mutex_lock(&st->mu);
    store_job_t *j = NULL;
    if (st->closing) {
        rc = STORE_E_CLOSED;
    } else if (st->queued >= st->cfg.max_queue) {
        rc = STORE_E_FULL;
    } else if (!(j = job_get(st))) {
        rc = STORE_E_NOMEM;
    } else {
        *j = (store_job_t){.req = req, .submit_us = now_us};
        bool lo = req->op == STORE_OP_STATUS || req->op == STORE_OP_ACK;
        store_job_t **head = lo ? &st->lo_head : &st->head;
        store_job_t **tail = lo ? &st->lo_tail : &st->tail;
        if (*tail)
            (*tail)->next = j;
        else
            *head = j;
        *tail = j;
        if (lo) st->lo_queued++;
        /* Only an idle writer needs a wake-up; a busy one drains the queue
         * before it sleeps again. */
        if (st->queued++ == 0) pthread_cond_signal(&st->cv);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void store_sq_pause(store_sq_t *st, bool paused) {
    pthread_mutex_lock(&st->mu);
    st->paused = paused;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

void store_sq_stats(store_sq_t *st, store_stats_t *out) {
    pthread_mutex_lock(&st->mu);
    *out = st->stats;
    out->queue_depth = st->queued;
    out->dropped = atomic_load_explicit(&st->dropped, memory_order_relaxed);
    out->commit_ms_avg =
        st->stats.commits ? st->commit_ms_total / st->stats.commits : 0;
    pthread_mutex_unlock(&st->mu);
}
/*
 * Bookkeeping per transaction, at most.  Status counts and acks come from
 * the push service in one burst per 100 ms window (thousands under load);
 * taken in one transaction they made every push queued behind them wait
 * for all of it, the p99 of the push API (30 ms at 28k pushes/s; 14 ms
 * with 256 per transaction, 8-9 ms with 64).  A backlog past LO_BACKLOG
 * (the writer falling behind) is taken LO_CATCHUP at a time so the queue
 * stays bounded.  They still run in their own FIFO order (an ack before
 * the next sighting of its device).
 */
#define LO_PER_BATCH 64
#define LO_BACKLOG 8192
#define LO_CATCHUP 1024

static int take_from(store_job_t **head, store_job_t **tail,
                     store_job_t **batch, int n, int max) {
    while (*head && n < max) {
        batch[n++] = *head;
        *head = (*head)->next;
    }
    if (!*head) *tail = NULL;
    return n;
}

/* Sleeps until work, closing, or the next sweep; returns up to max_batch
 * requests detached from the queues (0 when it is time to sweep or stop):
 * pushes first, then up to LO_PER_BATCH bookkeeping requests. */
int store__take_batch(store_sq_t *st, store_job_t **batch, uint64_t next_sweep,
                      bool *stop) {
    int n = 0;
    pthread_mutex_lock(&st->mu);
    while (!st->closing && st->fold_asked == st->fold_done &&
           (st->paused || (!st->head && !st->lo_head))) {
        uint64_t now = clock_mono_ms();
        uint64_t due = store__pend_next_due(st); /* writer-only state */
        uint64_t hot = store__hot_next_due(st);
        if (hot && (!due || hot < due)) due = hot;
        if (due && due < st->retry_at) due = st->retry_at; /* backing off */
        if (due && due < next_sweep) next_sweep = due;
        if (now >= next_sweep && !st->paused) break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t wait = st->paused ? 1000 : next_sweep - now;
        ts.tv_sec += (time_t)(wait / 1000);
        ts.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        int rc = pthread_cond_timedwait(&st->cv, &st->mu, &ts);
        if (rc != 0 && rc != ETIMEDOUT) break;
    }
    if (!st->paused) {
        int max = st->cfg.max_batch;
        n = take_from(&st->head, &st->tail, batch, 0, max);
        int lo = st->lo_queued > LO_BACKLOG ? LO_CATCHUP : LO_PER_BATCH;
        int n_hi = n;
        n = take_from(&st->lo_head, &st->lo_tail, batch, n,
                      n + lo < max ? n + lo : max);
        st->lo_queued -= n - n_hi;
        st->queued -= n;
    }
    *stop = st->closing && !st->head && !st->lo_head && n == 0;
    pthread_mutex_unlock(&st->mu);
    return n;
}
