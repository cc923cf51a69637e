/*
 * ops_store: the store behind the admin listener (see ops_store.h).
 */
#include "ops/ops_store.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/metrics_herald.h"

struct ops_store {
    store_t *st;
    store_reader_t *rd;
};

static double read_queue(void *ctx, unsigned a, unsigned b) {
    if (a != MH_Q_STORE) return NAN;
    store_stats_t s;
    store_stats(ctx, &s);
    return (double)s.queue_depth;
}

static double read_expired(void *ctx, unsigned a, unsigned b) {
    store_stats_t s;
    store_stats(ctx, &s);
    return (double)s.expired;
}

static double read_dropped(void *ctx, unsigned a, unsigned b) {
    store_stats_t s;
    store_stats(ctx, &s);
    return (double)s.dropped;
}

static double read_rows(void *ctx, unsigned a, unsigned b) {
    store_stats_t s;
    store_stats(ctx, &s);
    return (double)s.rows_written;
}

static double read_disk_full(void *ctx, unsigned a, unsigned b) {
    return store_fault(ctx) == STORE_E_NOSPACE;
}

static double read_fault(void *ctx, unsigned a, unsigned b) {
    return store_fault(ctx) != 0;
}

static double read_commits(void *ctx, unsigned a, unsigned b) {
    store_stats_t s;
    store_stats(ctx, &s);
    return (double)s.commits;
}

_Static_assert((int)STORE_OBS_APPEND == (int)MH_STORE_APPEND &&
                   (int)STORE_OBS_FETCH == (int)MH_STORE_FETCH &&
                   (int)STORE_OBS_ACK == (int)MH_STORE_ACK &&
                   (int)STORE_OBS_EXPIRE == (int)MH_STORE_EXPIRE &&
                   (int)STORE_OBS_OTHER == (int)MH_STORE_OTHER,
               "store_obs and mh_store_op must line up");

/* The store's operations into the latency histogram and error counter. */
static void observe(void *ctx, int obs, uint64_t usec, bool failed) {
    (void)ctx;
    metrics_observe(M_STORE_LATENCY, (unsigned)obs, 0, usec);
    if (failed) metrics_inc(M_STORE_ERRORS, (unsigned)obs, 0);
}

ops_store_t *ops_store_new(store_t *st) {
    ops_store_t *os = calloc(1, sizeof *os);
    if (!os) return NULL;
    os->st = st;
    (void)metrics_herald_init();
    (void)metrics_set_reader(M_QUEUE_DEPTH, read_queue, st);
    (void)metrics_set_reader(M_EXPIRIES, read_expired, st);
    (void)metrics_set_reader(M_STORE_ROWS, read_rows, st);
    (void)metrics_set_reader(M_STORE_COMMITS, read_commits, st);
    (void)metrics_set_reader(M_STORE_DISK_FULL, read_disk_full, st);
    (void)metrics_set_reader(M_INBOX_DROPPED, read_dropped, st);
    (void)metrics_set_reader(M_STORE_FAULT, read_fault, st);
    store_set_observer(st, observe, NULL);
    return os;
}

void ops_store_free(ops_store_t *os) {
    if (!os) return;
    store_set_observer(os->st, NULL, NULL);
    (void)metrics_set_reader(M_QUEUE_DEPTH, NULL, NULL);
    (void)metrics_set_reader(M_EXPIRIES, NULL, NULL);
    (void)metrics_set_reader(M_STORE_ROWS, NULL, NULL);
    (void)metrics_set_reader(M_STORE_COMMITS, NULL, NULL);
    (void)metrics_set_reader(M_STORE_DISK_FULL, NULL, NULL);
    (void)metrics_set_reader(M_INBOX_DROPPED, NULL, NULL);
    (void)metrics_set_reader(M_STORE_FAULT, NULL, NULL);
    store_reader_free(os->rd);
    free(os);
}

static int reader(ops_store_t *os) {
    return os->rd ? 0 : store_reader_new(os->st, &os->rd);
}

/* Never waits for the writer: /readyz runs on the admin thread, which
 * also answers /healthz and /metrics.  A store that cannot write is not
 * ready (it refuses durable pushes); one that answers a read is. */
int ops_store_ready(void *ctx, char *why, size_t cap) {
    ops_store_t *os = ctx;
    int rc = store_fault(os->st);
    if (rc < 0) {
        snprintf(why, cap, "store: %s", herald_strerror(rc));
        return -EROFS;
    }
    rc = reader(os);
    if (rc == 0) rc = store_ping(os->rd);
    if (rc == 0) return 0;
    snprintf(why, cap, "store: %s", herald_strerror(rc));
    return -EIO;
}

int ops_store_timeline(void *ctx, const char *msg_id, char **json_out) {
    ops_store_t *os = ctx;
    store_status_t s;
    int rc = reader(os);
    if (rc == 0) rc = store_status_get(os->rd, msg_id, &s);
    if (rc == STORE_E_NOTFOUND) return -ENOENT;
    if (rc == STORE_E_NOSPACE || rc == STORE_E_TIMEOUT) return -EAGAIN;
    if (rc < 0) return -EIO;
    char buf[1024];
    int n = store_status_format(msg_id, &s, buf, sizeof buf);
    if (n < 0) return -EIO;
    *json_out = strdup(buf);
    return *json_out ? 0 : -ENOMEM;
}
