/*
 * push_tars_load: push_http_load's twin over TARS RPC: closed-loop
 * pushSingleDevice calls (iVersion 1, generated client stub + trpc_call),
 * one blocking connection per thread.  Prints pushes/s and latency
 * percentiles.
 *
 *   push_tars_load HOST PORT API_KEY CONNS SECONDS [DEVICES] [TTL] [DEPTH]
 *
 * Targets devices bench0..bench(DEVICES-1) (default 1000, mostly offline:
 * each push is stored).  DEPTH > 1 pipelines: each connection writes DEPTH
 * calls back to back, then reads their DEPTH answers (in whatever order
 * they come) before the next batch; a call's latency runs from its batch's
 * write to its answer.
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
static int g_port, g_devices = 1000, g_ttl = 86400, g_depth = 1;
static atomic_int g_stop;

/* Appends the request frame of call number k of w to frame. */
static int encode_call(worker_t *w, long k, jce_out_t *args, jce_out_t *frame) {
    char dev[32];
    snprintf(dev, sizeof dev, "bench%ld", (k * 31 + w->id) % g_devices);
    herald_PushSingleDeviceReq q;
    herald_PushSingleDeviceReq_init(&q);
    q.apiKey = jce_str_from(g_key);
    q.deviceId = jce_str_from(dev);
    q.msg.payload.data = (const uint8_t *)"hello bench";
    q.msg.payload.len = 11;
    q.msg.ttl = g_ttl;
    args->len = 0;
    herald_PushAPI_pushSingleDevice_args(args, 1, &q);
    return trpc_request_encode(frame, 1, TRPC_NORMAL, (int32_t)(k + 1),
                               "herald.PushServer.PushAPIObj",
                               "pushSingleDevice", args, 5000);
}

/* 0 when an answer says ret 0, 1 for another ret. */
static int check_answer(const trpc_response_t *r, jce_arena_t *a) {
    int32_t ret = -1;
    herald_PushSingleDeviceRsp o;
    if (r->ret != 0 || herald_PushAPI_pushSingleDevice_result(
                           r->body.data, r->body.len, 1, a, &ret, &o) < 0)
        return 1;
    return ret == 0 ? 0 : 1;
}

static bool record(worker_t *w, uint64_t us) {
    if (w->n == (long)w->cap) {
        w->cap = w->cap ? w->cap * 2 : 65536;
        w->lat_us = realloc(w->lat_us, w->cap * sizeof *w->lat_us);
        if (!w->lat_us)
            return false;
    }
    w->lat_us[w->n++] = (uint32_t)us;
    return true;
}

/* One call; 0 when it answered ret 0. */
static int call_once(int fd, worker_t *w, jce_out_t *args, jce_out_t *frame,
                     jce_out_t *rbuf, jce_arena_t *a) {
    frame->len = 0;
    jce_arena_reset(a);
    trpc_response_t r;
    if (encode_call(w, w->n, args, frame) < 0 ||
        trpc_call(fd, frame, (int32_t)(w->n + 1), 5000, rbuf, a, &r) < 0)
        return -1;
    return check_answer(&r, a);
}

static bool write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* g_depth calls back to back, then their answers; -1 on a broken
 * connection. */
static int call_batch(int fd, worker_t *w, jce_out_t *args, jce_out_t *frame,
                      jce_arena_t *a) {
    uint8_t buf[65536];
    size_t len = 0;
    frame->len = 0;
    for (long k = 0; k < g_depth; k++)
        if (encode_call(w, w->n + k, args, frame) < 0)
            return -1;
    uint64_t t0 = clock_mono_us();
    if (!write_all(fd, frame->buf, frame->len))
        return -1;
    for (int got = 0; got < g_depth;) {
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        size_t off = 0;
        uint32_t flen;
        int rc;
        while ((rc = trpc_frame_check(buf + off, len - off, 0, &flen)) == 1) {
            trpc_response_t r;
            jce_arena_reset(a);
            if (trpc_response_decode(buf + off, flen, a, &r) < 0)
                return -1;
            w->errors += check_answer(&r, a);
            if (!record(w, clock_mono_us() - t0))
                return -1;
            off += flen;
            got++;
        }
        if (rc < 0)
            return -1;
        memmove(buf, buf + off, len - off);
        len -= off;
    }
    return 0;
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
    while (a && g_depth > 1 && !atomic_load(&g_stop)) {
        if (call_batch(fd, w, &args, &frame, a) < 0) {
            w->errors++;
            break;
        }
    }
    while (a && g_depth == 1 && !atomic_load(&g_stop)) {
        uint64_t t0 = clock_mono_us();
        int rc = call_once(fd, w, &args, &frame, &rbuf, a);
        if (rc < 0) {
            w->errors++;
            break;
        }
        if (rc > 0)
            w->errors++;
        if (!record(w, clock_mono_us() - t0))
            break;
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
                        "SECONDS [DEVICES] [TTL] [DEPTH]\n");
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
    if (argc > 8)
        g_depth = atoi(argv[8]);
    if (conns < 1 || secs < 1 || g_devices < 1 || g_depth < 1 ||
        g_depth > 512)
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
           "p99 %u max %u  (conns %d, depth %d, ttl %d)\n",
           total, el, (double)total / el, errors, PCT(0.50), PCT(0.99),
           PCT(1.0), conns, g_depth, g_ttl);
    free(all);
    free(w);
    return errors ? 1 : 0;
}
