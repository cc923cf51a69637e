/*
 * metrics: herald's metrics registry, rendered as Prometheus text (0.0.4).
 *
 * Families are counters, gauges or histograms with at most two labels whose
 * values are fixed at registration (e.g. cmd x result).  Every child exists
 * from the start, so the hot path never looks anything up: the caller names
 * the family by a small integer id and each label by its value's index, and
 * the update is one relaxed atomic add.
 *
 * Counters and histograms are sharded: each thread adds into one of
 * METRICS_SHARDS copies of the slot array (picked once per thread), so the
 * gateway's workers do not bounce one cache line between cores; a scrape
 * sums the shards.  Gauges live in shard 0 only (a set is not summable).
 * Callback gauges are read at scrape time (process RSS, fds, ...).
 *
 * Histograms take microseconds and are rendered in seconds, with fixed
 * log-scale buckets from 50 us to 10 s (METRICS_BUCKETS_US).
 *
 * Threads: register before the threads that update start (registration is
 * not synchronised with updates); updates from any thread; render and
 * callbacks are serialised by a mutex on the cold path.  Updates to an id
 * that was never registered, or with label indexes out of range, are
 * dropped, so code can count before (or without) a registry being set up.
 */
#ifndef HERALD_OPS_METRICS_H
#define HERALD_OPS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define METRICS_MAX_FAMILIES 128
#define METRICS_MAX_SLOTS 8192 /* per shard, over all families */
#define METRICS_SHARDS 8
#define METRICS_MAX_LABELS 2
#define METRICS_NBUCKETS 17 /* finite bounds; +Inf comes on top */

typedef enum metrics_kind {
    METRICS_COUNTER = 1,
    METRICS_GAUGE = 2,
    METRICS_HISTOGRAM = 3,
    METRICS_GAUGE_FN = 4,   /* a gauge read through a callback at scrape */
    METRICS_COUNTER_FN = 5, /* a counter kept elsewhere, read at scrape */
} metrics_kind_t;

/* Upper bounds of the histogram buckets, in microseconds. */
extern const uint64_t METRICS_BUCKETS_US[METRICS_NBUCKETS];

/* Scrape-time value of a METRICS_*_FN child (label indexes a, b).
 * Return NaN to leave the child out of this scrape. */
typedef double (*metrics_read_fn)(void *ctx, unsigned a, unsigned b);

typedef struct metrics_def {
    const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]* */
    const char *help;
    metrics_kind_t kind;
    /* label names (NULL = fewer labels) and their NULL-terminated value
     * lists; the strings must outlive the registry (string literals) */
    const char *labels[METRICS_MAX_LABELS];
    const char *const *values[METRICS_MAX_LABELS];
    metrics_read_fn read; /* METRICS_*_FN only; may be set later */
    void *ctx;
} metrics_def_t;

/* Registers family `id` (0 <= id < METRICS_MAX_FAMILIES).  def is copied,
 * its strings are borrowed.  0 or a negative metrics_err. */
int metrics_register(int id, const metrics_def_t *def);
/* Whether id is registered. */
bool metrics_registered(int id);
/* Sets (or clears, fn NULL) a callback family's reader.  Serialised with
 * render, so after it returns the old ctx is no longer used. */
int metrics_set_reader(int id, metrics_read_fn fn, void *ctx);
/* Forgets every family and value (tests). */
void metrics_reset(void);

/* ---- hot path ----------------------------------------------------------- */
void metrics_add(int id, unsigned a, unsigned b, uint64_t n);
static inline void metrics_inc(int id, unsigned a, unsigned b) {
    metrics_add(id, a, b, 1);
}
void metrics_gauge_set(int id, unsigned a, unsigned b, int64_t v);
void metrics_gauge_add(int id, unsigned a, unsigned b, int64_t delta);
void metrics_observe(int id, unsigned a, unsigned b, uint64_t us);
/* Index of the bucket a value falls in (METRICS_NBUCKETS = +Inf). */
unsigned metrics_bucket_of(uint64_t us);

/* ---- reading ------------------------------------------------------------ */
uint64_t metrics_counter_get(int id, unsigned a, unsigned b);
/* Sum of a counter over every child. */
uint64_t metrics_counter_sum(int id);
int64_t metrics_gauge_get(int id, unsigned a, unsigned b);
int64_t metrics_gauge_sum(int id);

/* A histogram's state: per-bucket counts (not cumulative; the last one is
 * +Inf), their total and the sum of observed microseconds. */
typedef struct metrics_hist {
    uint64_t bucket[METRICS_NBUCKETS + 1];
    uint64_t count;
    uint64_t sum_us;
} metrics_hist_t;
/* One child (a, b), or every child merged when a == b == UINT32_MAX. */
void metrics_hist_get(int id, unsigned a, unsigned b, metrics_hist_t *out);
/* out = x - y, bucket by bucket (a window between two snapshots). */
void metrics_hist_sub(const metrics_hist_t *x, const metrics_hist_t *y,
                      metrics_hist_t *out);
/* Estimated q-quantile in microseconds (linear within the bucket, like
 * Prometheus' histogram_quantile); NaN when empty. */
double metrics_hist_quantile(const metrics_hist_t *h, double q);

/* Number of values of label k of family id (1 when it has no such label),
 * and the value names (NULL out of range). */
unsigned metrics_label_count(int id, unsigned k);
const char *metrics_label_value(int id, unsigned k, unsigned i);

/* ---- rendering ---------------------------------------------------------- */
/* A growable text buffer; oom is sticky. */
typedef struct metrics_buf {
    char *p;
    size_t len, cap;
    bool oom;
} metrics_buf_t;
void metrics_buf_printf(metrics_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void metrics_buf_free(metrics_buf_t *b);

/* Appends every family in Prometheus text format 0.0.4 (families in id
 * order, HELP/TYPE lines, escaped label values).  0 or METRICS_E_NOMEM. */
int metrics_render(metrics_buf_t *b);

#endif
