/*
 * What `herald bench` (cli_bench.c) measures on the server and prints:
 * memory and CPU samples of the --pid processes (/proc), and the report,
 * human lines then one `RESULT key=value ...` line that bench/run.sh
 * collects.  Kept apart from the run because it only reads the numbers the
 * run gathered: what is printed can change without touching the run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench_stat.h"
#include "cli/cli_bench_int.h"

/* ---- sampling the server -------------------------------------------------- */

static long status_field(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    size_t kl = strlen(key);
    long v = -1, sum = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl)) {
            sum += strtol(line + kl, NULL, 10);
            v = sum;
        }
    fclose(f);
    return v;
}

static long sockstat_tcp_pages(void) {
    FILE *f = fopen("/proc/net/sockstat", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f)) {
        char *m = strstr(line, " mem ");
        if (!strncmp(line, "TCP:", 4) && m) v = strtol(m + 5, NULL, 10);
    }
    fclose(f);
    return v;
}

sample_t cli_bench_take_sample(const bench_opts_t *o) {
    sample_t s = {0, 0, 0, 0, sockstat_tcp_pages(), 0, o->npids > 0};
    for (int i = 0; i < o->npids; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/status", o->pids[i]);
        long rss = status_field(path, "VmRSS:");
        s.anon_kb += status_field(path, "RssAnon:");
        snprintf(path, sizeof path, "/proc/%d/smaps_rollup", o->pids[i]);
        long pc = status_field(path, "Private_Clean:");
        long pd = status_field(path, "Private_Dirty:");
        long cpu = bench_proc_cpu_ticks(o->pids[i]);
        long long ns = bench_proc_cpu_ns(o->pids[i]);
        s.cpu_ns = ns < 0 || s.cpu_ns < 0 ? -1 : s.cpu_ns + ns;
        if (rss < 0 || cpu < 0) s.ok = false;
        s.rss_kb += rss;
        s.priv_kb += (pc > 0 ? pc : 0) + (pd > 0 ? pd : 0);
        s.cpu_ticks += cpu;
    }
    return s;
}

/* ---- report ---------------------------------------------------------------------- */

static const char *target_name(const bench_opts_t *o) {
    return o->target == BENCH_MQTT    ? "mosquitto"
           : o->target == BENCH_NCHAN ? "nchan"
                                      : "herald";
}

/* Returns the exit code: 0, or 1 if a connection failed or a delivery is
 * missing (the numbers are then not comparable). */
int cli_bench_report(run_t *R, const sample_t *s0, const sample_t *s1,
                     const sample_t *c0, const sample_t *c1) {
    bench_opts_t *o = R->o;
    long ready = 0, failed = 0, closed = 0;
    uint64_t tf = UINT64_MAX, tl = 0;
    for (long i = 0; i < R->nw; i++) {
        worker_t *w = &R->w[i];
        ready += w->ready;
        failed += w->failed;
        closed += w->closed;
        if (w->t_first && w->t_first < tf) tf = w->t_first;
        if (w->t_last > tl) tl = w->t_last;
    }
    double conn_s = tl > tf && tf != UINT64_MAX ? (double)(tl - tf) / 1e6 : 0;
    double rate = conn_s > 0 ? (double)ready / conn_s : 0;
    const char *tr = o->target == BENCH_MQTT             ? "mqtt"
                     : o->target == BENCH_NCHAN || o->ws ? "ws"
                                                         : "tcp";
    long tick = sysconf(_SC_CLK_TCK);
    double per = ready > 0 ? (double)ready : 1;
    printf("\n== herald bench: %s (%s), %ld connections, %ld workers ==\n",
           target_name(o), tr, o->conns, R->nw);
    printf("connect+auth      %ld ok, %ld failed, %.3f s, %.0f conn/s\n", ready,
           failed, conn_s, rate);
    double rss_b = 0, anon_b = 0, priv_b = 0, ks_b = 0;
    bool mem = s0->ok && s1->ok;
    if (mem) {
        rss_b = (double)(s1->rss_kb - s0->rss_kb) * 1024 / per;
        priv_b = (double)(s1->priv_kb - s0->priv_kb) * 1024 / per;
        anon_b = (double)(s1->anon_kb - s0->anon_kb) * 1024 / per;
        printf("server memory     RSS %ld -> %ld KiB: %.0f B/conn; RssAnon "
               "%ld -> %ld KiB: %.0f B/conn; Private (smaps_rollup) %ld -> "
               "%ld KiB: %.0f B/conn\n",
               s0->rss_kb, s1->rss_kb, rss_b, s0->anon_kb, s1->anon_kb, anon_b,
               s0->priv_kb, s1->priv_kb, priv_b);
    } else {
        printf("server memory     n/a (no --pid)\n");
    }
    ks_b = (double)(s1->tcp_pages - s0->tcp_pages) * 4096 / per;
    printf("kernel TCP memory %ld -> %ld pages: %.0f B/conn (both ends, "
           "/proc/net/sockstat)\n",
           s0->tcp_pages, s1->tcp_pages, ks_b);

    uint64_t delivered = 0, fan_max = 0, fan_sum = 0;
    long complete = 0;
    for (long m = 0; m < o->msgs; m++) {
        uint64_t f =
            R->m_last[m] > R->t_pub[m] ? R->m_last[m] - R->t_pub[m] : 0;
        delivered += R->m_count[m];
        if (R->m_count[m] >= (uint64_t)ready && ready) {
            complete++;
            fan_sum += f;
            if (f > fan_max) fan_max = f;
        }
        printf("broadcast %-3ld     %" PRIu64 "/%ld received, first %.2f ms, "
               "last %.2f ms after publish\n",
               m, R->m_count[m], ready,
               R->m_first[m] > R->t_pub[m]
                   ? (double)(R->m_first[m] - R->t_pub[m]) / 1e3
                   : 0,
               (double)f / 1e3);
    }
    long missing = (long)((uint64_t)ready * (uint64_t)o->msgs - delivered);
    double dps =
        fan_sum ? (double)(ready * complete) / ((double)fan_sum / 1e6) : 0;
    double cpu_us = -1;
    if (o->msgs && c0->ok && c1->ok && delivered)
        cpu_us =
            c0->cpu_ns >= 0 && c1->cpu_ns >= 0
                ? (double)(c1->cpu_ns - c0->cpu_ns) / 1e3 / (double)delivered
                : (double)(c1->cpu_ticks - c0->cpu_ticks) * 1e6 / (double)tick /
                      (double)delivered;
    if (o->msgs) {
        printf("fan-out           max %.2f ms, avg %.2f ms over %ld complete "
               "messages; %ld missing deliveries\n",
               (double)fan_max / 1e3,
               complete ? (double)fan_sum / 1e3 / (double)complete : 0,
               complete, missing);
        printf("deliveries/s      %.0f\n", dps);
        if (R->gen_ns >= 0 && delivered)
            printf("load generator    %.1f ms CPU over the broadcast phase "
                   "(%.2f us per delivery, on the same cores)\n",
                   (double)R->gen_ns / 1e6,
                   (double)R->gen_ns / 1e3 / (double)delivered);
        if (cpu_us >= 0)
            printf("server CPU        %.2f us per delivered message (%.1f ms "
                   "over the broadcast phase)\n",
                   cpu_us, cpu_us * (double)delivered / 1e3);
    }
    bench_lat_sort(&R->lat);
    uint32_t p50 = bench_lat_pct(&R->lat, .5), p90 = bench_lat_pct(&R->lat, .9),
             p99 = bench_lat_pct(&R->lat, .99), mx = bench_lat_pct(&R->lat, 1);
    double uni_rate =
        R->uni_t1 > R->uni_t0
            ? (double)R->uni_sent / ((double)(R->uni_t1 - R->uni_t0) / 1e6)
            : 0;
    if (R->uni_sent) {
        printf("unicast           %ld sent (%.0f/s), %ld accepted, %ld errors, "
               "%zu received\n",
               R->uni_sent, uni_rate, R->uni_ok, R->uni_err, R->lat.n);
        printf("unicast latency   p50 %u us, p90 %u us, p99 %u us, max %u us\n",
               p50, p90, p99, mx);
    }
    if (closed)
        printf("closed by server  %ld connections during the run\n", closed);
    printf("RESULT target=%s transport=%s conns=%ld procs=%ld connected=%ld "
           "failed=%ld connect_s=%.3f connect_rate=%.0f",
           target_name(o), tr, o->conns, R->nw, ready, failed, conn_s, rate);
    if (mem)
        printf(" rss_per_conn=%.0f anon_per_conn=%.0f private_per_conn=%.0f",
               rss_b, anon_b, priv_b);
    printf(" ksock_per_conn=%.0f msgs=%ld payload=%ld delivered=%" PRIu64
           " missing=%ld fanout_ms_max=%.2f deliveries_per_s=%.0f",
           ks_b, o->msgs, o->payload, delivered, missing, (double)fan_max / 1e3,
           dps);
    if (cpu_us >= 0) printf(" cpu_us_per_delivery=%.2f", cpu_us);
    if (o->msgs && R->gen_ns >= 0 && delivered)
        printf(" gen_cpu_us_per_delivery=%.2f",
               (double)R->gen_ns / 1e3 / (double)delivered);
    if (R->uni_sent)
        printf(" uni_sent=%ld uni_rate=%.0f uni_recv=%zu uni_p50_us=%u "
               "uni_p90_us=%u uni_p99_us=%u uni_max_us=%u",
               R->uni_sent, uni_rate, R->lat.n, p50, p90, p99, mx);
    printf(" closed=%ld\n", closed);
    fflush(stdout);
    return ready == 0 || failed || missing ? 1 : 0;
}
