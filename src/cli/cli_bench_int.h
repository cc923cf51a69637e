/*
 * cli_bench_int: what the files of `herald bench` share, and nothing
 * outside them uses: cli_bench.c (options, the worker processes and their
 * records, the run), cli_bench_push.c (publishers, the broadcast and
 * unicast phases) and cli_bench_report.c (sampling the server, the report).
 */
#ifndef HERALD_CLI_BENCH_INT_H
#define HERALD_CLI_BENCH_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench/bench.h"
#include "bench/bench_stat.h"

typedef struct sample {
    long rss_kb;      /* VmRSS */
    long anon_kb;     /* RssAnon: heap and stacks, without mapped files */
    long priv_kb;     /* Private_Clean + Private_Dirty */
    long cpu_ticks;   /* utime + stime */
    long tcp_pages;   /* /proc/net/sockstat TCP mem */
    long long cpu_ns; /* schedstat of every thread; -1 if unknown */
    bool ok;
} sample_t;

typedef struct worker {
    pid_t pid;
    int up, down; /* parent's ends */
    long ready, failed, closed;
    uint64_t t_first, t_last;
    bool conn, end;
} worker_t;

typedef struct run {
    bench_opts_t *o;
    worker_t *w;
    long nw;
    uint64_t *t_pub;  /* per message: publish time */
    uint64_t *m_last; /* per message: last receipt (final) */
    uint64_t *m_first;
    uint64_t *m_count;
    long *m_done;    /* workers done with the message */
    bench_lat_t lat; /* unicast latencies from every worker */
    long uni_sent, uni_ok, uni_err;
    uint64_t uni_t0, uni_t1;
    long long gen_ns; /* workers' CPU over the broadcast phase; -1 unknown */
} run_t;

/* cli_bench.c: reads the workers' records for up to ms milliseconds or
 * until done(R) holds. */
void cli_bench_pump(run_t *R, long ms, bool (*done)(const run_t *));

/* cli_bench_push.c: publish o->msgs broadcasts one at a time, waiting for
 * each to arrive; push to random devices at o->uni_rate for o->uni_secs. */
void cli_bench_broadcast_phase(run_t *R);
void cli_bench_unicast_phase(run_t *R);

/* cli_bench_report.c: the server's memory and CPU now (--pid); the report
 * on stdout and the exit code (0, or 1 if a connection failed or a
 * delivery is missing). */
sample_t cli_bench_take_sample(const bench_opts_t *o);
int cli_bench_report(run_t *R, const sample_t *s0, const sample_t *s1,
                     const sample_t *c0, const sample_t *c1);

#endif
