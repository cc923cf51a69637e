/*
 * push_tars_load: push_http_load's twin over TARS RPC: closed-loop
 * pushSingleDevice calls (iVersion 1, generated client stub + trpc_call),
 * one blocking connection per thread.  Prints pushes/s and latency
 * percentiles.
 *
 *   push_tars_load HOST PORT API_KEY CONNS SECONDS [DEVICES] [TTL]
 *
 * Targets devices bench0..bench(DEVICES-1) (default 1000, mostly offline:
 * each push is stored).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "PushAPI.h"
#include "core/clock.h"
#include "core/net.h"
#include "rpc/trpc.h"

typedef struct worker {
    pthread_t th;
    int id;
    long n, errors;
    uint32_t *lat_us;
    size_t cap;
} worker_t;

static const char *g_host, *g_key;
static int g_port, g_devices = 1000, g_ttl = 86400;
static atomic_int g_stop;

/* One call; 0 when it answered ret 0. */
static int call_once(int fd, worker_t *w, jce_out_t *args, jce_out_t *frame,
                     jce_out_t *rbuf, jce_arena_t *a) {
    char dev[32];
    snprintf(dev, sizeof dev, "bench%ld", (w->n * 31 + w->id) % g_devices);
    herald_PushSingleDeviceReq q;
    herald_PushSingleDeviceReq_init(&q);
    q.apiKey = jce_str_from(g_key);
    q.deviceId = jce_str_from(dev);
    q.msg.payload.data = (const uint8_t *)"hello bench";
    q.msg.payload.len = 11;
    q.msg.ttl = g_ttl;
    args->len = 0;
    frame->len = 0;
    jce_arena_reset(a);
    herald_PushAPI_pushSingleDevice_args(args, 1, &q);
    int32_t id = (int32_t)(w->n + 1);
    trpc_response_t r;
    if (trpc_request_encode(frame, 1, TRPC_NORMAL, id,
                            "herald.PushServer.PushAPIObj",
                            "pushSingleDevice", args, 5000) < 0 ||
        trpc_call(fd, frame, id, 5000, rbuf, a, &r) < 0)
        return -1;
    int32_t ret = -1;
    herald_PushSingleDeviceRsp o;
    if (r.ret != 0 || herald_PushAPI_pushSingleDevice_result(
                          r.body.data, r.body.len, 1, a, &ret, &o) < 0)
        return 1;
    return ret == 0 ? 0 : 1;
}

static void *run(void *arg) {
    worker_t *w = arg;
    int fd;
    if (net_connect_tcp(g_host, g_port, NULL, false, &fd) < 0) {
        w->errors++;
        return NULL;
    }
    (void)net_set_nodelay(fd, true);
    jce_out_t args, frame, rbuf;
    jce_out_init(&args, JCE_POLICY_CPP);
    jce_out_init(&frame, JCE_POLICY_CPP);
    jce_out_init(&rbuf, JCE_POLICY_CPP);
    jce_arena_t *a = jce_arena_new(0);
    while (a && !atomic_load(&g_stop)) {
        uint64_t t0 = clock_mono_us();
        int rc = call_once(fd, w, &args, &frame, &rbuf, a);
        if (rc < 0) {
            w->errors++;
            break;
        }
        if (rc > 0)
            w->errors++;
        if (w->n == (long)w->cap) {
            w->cap = w->cap ? w->cap * 2 : 65536;
            w->lat_us = realloc(w->lat_us, w->cap * sizeof *w->lat_us);
            if (!w->lat_us)
                break;
        }
        w->lat_us[w->n++] = (uint32_t)(clock_mono_us() - t0);
    }
    jce_arena_free(a);
    jce_out_free(&args);
    jce_out_free(&frame);
    jce_out_free(&rbuf);
    close(fd);
    return NULL;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: push_tars_load HOST PORT API_KEY CONNS "
                        "SECONDS [DEVICES] [TTL]\n");
        return 2;
    }
    g_host = argv[1];
    g_port = atoi(argv[2]);
    g_key = argv[3];
    int conns = atoi(argv[4]), secs = atoi(argv[5]);
    if (argc > 6)
        g_devices = atoi(argv[6]);
    if (argc > 7)
        g_ttl = atoi(argv[7]);
    if (conns < 1 || secs < 1 || g_devices < 1)
        return 2;
    worker_t *w = calloc((size_t)conns, sizeof *w);
    if (!w)
        return 1;
    uint64_t t0 = clock_mono_us();
    for (int i = 0; i < conns; i++) {
        w[i].id = i;
        pthread_create(&w[i].th, NULL, run, &w[i]);
    }
    sleep((unsigned)secs);
    atomic_store(&g_stop, 1);
    long total = 0, errors = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(w[i].th, NULL);
        total += w[i].n;
        errors += w[i].errors;
    }
    double el = (double)(clock_mono_us() - t0) / 1e6;
    uint32_t *all = malloc((size_t)(total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < conns; i++) {
        if (all && w[i].n)
            memcpy(all + k, w[i].lat_us, (size_t)w[i].n * sizeof *all);
        k += (size_t)w[i].n;
        free(w[i].lat_us);
    }
    if (all && total)
        qsort(all, (size_t)total, sizeof *all, cmp_u32);
#define PCT(p) (all && total ? all[(size_t)((double)(total - 1) * (p))] : 0)
    printf("pushes %ld in %.1f s: %.0f/s  errors %ld  latency us p50 %u "
           "p99 %u max %u  (conns %d, ttl %d)\n",
           total, el, (double)total / el, errors, PCT(0.50), PCT(0.99),
           PCT(1.0), conns, g_ttl);
    free(all);
    free(w);
    return errors ? 1 : 0;
}
