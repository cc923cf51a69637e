/*
 * bench_store: durable single-device pushes through the store's group
 * commit.  One thread submits N INBOX_APPEND requests (each with a
 * requestId, 64-byte payload, devices round-robin) as fast as the queue
 * takes them; done() records submit-to-durable latency.  Prints requests/s,
 * commits, requests per commit, rows written per request and latency
 * percentiles.
 *
 *   bench_store [N=200000] [DEVICES=10000] [full|normal] [DIR=/tmp] [RATE]
 *
 * BENCH_STORE_GROUP=B: submit B requests while the writer is paused, then
 * wait for them, so every commit holds exactly B requests (the batch a
 * server sees at a given concurrency); with `perf stat -e instructions`
 * this compares store changes without the machine's noise.
 * BENCH_STORE_NO_REQID=1: no requestId (no idempotency lookup), like the
 * push API benchmark's requests.
 *
 * Without RATE the submitter is unpaced (throughput; latency then measures
 * queueing).  With RATE (requests/s) it paces itself, so the latency
 * percentiles are those a caller sees at that load.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "store/store.h"

static uint64_t *submit_us, *lat_us;
static store_req_t *reqs;
static atomic_long n_done, n_fail;

static void on_done(store_req_t *req, store_done_t *d) {
    size_t i = (size_t)(req - reqs);
    lat_us[i] = clock_mono_us() - submit_us[i];
    if (d->rc != 0) atomic_fetch_add(&n_fail, 1);
    atomic_fetch_add(&n_done, 1);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 200000;
    long ndev = argc > 2 ? atol(argv[2]) : 10000;
    bool full = argc > 3 ? strcmp(argv[3], "normal") != 0 : true;
    const char *dir = argc > 4 ? argv[4] : "/tmp";
    double rate = argc > 5 ? atof(argv[5]) : 0;
    const char *ge = getenv("BENCH_STORE_GROUP");
    long group = ge ? atol(ge) : 0;
    bool no_reqid = getenv("BENCH_STORE_NO_REQID") != NULL;
    char tmpl[256], path[300];
    snprintf(tmpl, sizeof tmpl, "%s/bench-store-XXXXXX", dir);
    if (n <= 0 || ndev <= 0 || !mkdtemp(tmpl)) {
        fprintf(stderr,
                "usage: bench_store [N] [DEVICES] [full|normal] [DIR]\n");
        return 2;
    }
    snprintf(path, sizeof path, "%s/b.db", tmpl);
    log_set_level(LOG_LEVEL_WARN);

    reqs = calloc((size_t)n, sizeof *reqs);
    submit_us = calloc((size_t)n, sizeof *submit_us);
    lat_us = calloc((size_t)n, sizeof *lat_us);
    char(*ids)[24] = calloc((size_t)n, sizeof *ids);
    char(*devs)[32] = calloc((size_t)ndev, sizeof *devs);
    const char **devp = calloc((size_t)ndev, sizeof *devp);
    int64_t *seqs = calloc((size_t)n, sizeof *seqs);
    if (!reqs || !submit_us || !lat_us || !ids || !devs || !devp || !seqs)
        return 2;
    static uint8_t payload[64];
    memset(payload, 'p', sizeof payload);
    for (long d = 0; d < ndev; d++) {
        snprintf(devs[d], sizeof devs[d], "device-%06ld", d);
        devp[d] = devs[d];
    }
    int64_t now = (int64_t)clock_wall_ms();
    for (long i = 0; i < n; i++) {
        store_req_t *r = &reqs[i];
        snprintf(ids[i], sizeof ids[i], "m%016lx", (unsigned long)i);
        r->op = STORE_OP_INBOX_APPEND;
        r->kind = STORE_KIND_SINGLE;
        r->msg = (store_msg_t){.app = "bench",
                               .msg_id = ids[i],
                               .request_id = no_reqid ? NULL : ids[i],
                               .payload = payload,
                               .payload_len = sizeof payload,
                               .ttl = 86400,
                               .need_ack = true,
                               .created_ms = now};
        r->devices = &devp[i % ndev];
        r->n_devices = 1;
        r->seqs = &seqs[i];
        r->done = on_done;
    }

    store_config_t c;
    store_config_defaults(&c);
    c.path = path;
    c.synchronous_full = full;
    store_t *st;
    if (store_open(&c, &st) != 0) return 1;
    uint64_t t0 = clock_mono_us();
    long full_waits = 0;
    for (long i = 0; i < n; i++) {
        if (group > 0 && i % group == 0) {
            while (atomic_load(&n_done) < i) usleep(50);
            store_pause(st, true);
        }
        if (rate > 0) {
            uint64_t due = t0 + (uint64_t)((double)i * 1e6 / rate);
            /* Sleep in steps rather than spin: the submitter must not
             * take the writer's core on a small machine. */
            while (clock_mono_us() < due) usleep(250);
        }
        submit_us[i] = clock_mono_us();
        while (store_submit(st, &reqs[i]) == STORE_E_FULL) {
            full_waits++;
            usleep(100);
            submit_us[i] = clock_mono_us();
        }
        if (group > 0 && (i % group == group - 1 || i == n - 1))
            store_pause(st, false);
    }
    while (atomic_load(&n_done) < n) usleep(1000);
    double secs = (double)(clock_mono_us() - t0) / 1e6;
    store_stats_t s;
    store_stats(st, &s);
    store_close(st);

    qsort(lat_us, (size_t)n, sizeof *lat_us, cmp_u64);
    printf("bench_store: %ld durable single-device pushes, %ld devices, "
           "synchronous=%s, %s\n",
           n, ndev, full ? "FULL" : "NORMAL", rate > 0 ? "paced" : "unpaced");
    if (rate > 0) printf("  offered rate %.0f/s\n", rate);
    printf("  %.0f requests/s (%.2f s), %ld failed, %ld queue-full waits\n",
           (double)n / secs, secs, atomic_load(&n_fail), full_waits);
    printf("  %ld commits, %.1f requests/commit, %.2f ms/commit avg, "
           "%.2f rows written/request\n",
           s.commits, (double)s.requests / (double)(s.commits ? s.commits : 1),
           s.commit_ms_avg, (double)s.rows_written / (double)n);
    printf("  submit->durable latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
           (double)lat_us[n / 2] / 1000, (double)lat_us[n * 99 / 100] / 1000,
           (double)lat_us[n - 1] / 1000);
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[320];
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
    rmdir(tmpl);
    free(reqs);
    free(submit_us);
    free(lat_us);
    free(ids);
    free(devs);
    free(devp);
    free(seqs);
    return atomic_load(&n_fail) ? 1 : 0;
}
