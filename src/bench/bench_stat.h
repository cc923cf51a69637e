/*
 * bench_stat: the arithmetic the load generators share (`herald bench`,
 * bench/push_load.c): latency samples in microseconds with their
 * percentiles, and the CPU time a process has used so far.
 */
#ifndef HERALD_BENCH_STAT_H
#define HERALD_BENCH_STAT_H

#include <stddef.h>
#include <stdint.h>

/* A growable array of latency samples (µs).  Zero-initialise; free with
 * bench_lat_free. */
typedef struct bench_lat {
    uint32_t *v;
    size_t n, cap;
} bench_lat_t;

/* Makes room for `more` samples past n.  0 or -1 (out of memory). */
int bench_lat_reserve(bench_lat_t *l, size_t more);
/* Appends one sample, clamped to UINT32_MAX.  0 or -1 (out of memory: the
 * sample is lost). */
int bench_lat_add(bench_lat_t *l, uint64_t us);
/* Appends every sample of from.  0 or -1 (out of memory). */
int bench_lat_append(bench_lat_t *l, const bench_lat_t *from);
void bench_lat_sort(bench_lat_t *l);
/* The p-quantile (0..1, nearest rank) of sorted samples; 0 when empty. */
uint32_t bench_lat_pct(const bench_lat_t *l, double p);
void bench_lat_free(bench_lat_t *l);

/* utime + stime of a process in clock ticks (/proc/PID/stat: counts the
 * threads that already exited too), or -1. */
long bench_proc_cpu_ticks(int pid);
/* CPU time of every live thread in ns (/proc/PID/task/TID/schedstat, the
 * scheduler's exact accounting), or -1 if schedstat is not available. */
long long bench_proc_cpu_ns(int pid);

#endif
