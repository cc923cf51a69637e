/*
 * push_http_load: closed-loop load on POST /v1/push/device over HTTP/1.1
 * keep-alive, one blocking connection per thread, each waiting for its
 * answer before the next request (so latency is the API's, durable commit
 * included).  Prints pushes/s and latency percentiles.
 *
 *   push_http_load HOST PORT API_KEY CONNS SECONDS [DEVICES] [TTL]
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

#include "core/clock.h"
#include "core/net.h"

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

static int read_answer(int fd, char *buf, size_t cap, int *status) {
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = 0;
        char *e = strstr(buf, "\r\n\r\n");
        if (!e)
            continue;
        const char *cl = strcasestr(buf, "content-length:");
        size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0;
        if (len >= (size_t)(e + 4 - buf) + body) {
            *status = atoi(buf + 9);
            return 0;
        }
    }
}

static void *run(void *arg) {
    worker_t *w = arg;
    int fd;
    if (net_connect_tcp(g_host, g_port, NULL, false, &fd) < 0) {
        w->errors++;
        return NULL;
    }
    (void)net_set_nodelay(fd, true);
    char req[1024], buf[4096];
    while (!atomic_load(&g_stop)) {
        char body[160];
        int bl = snprintf(body, sizeof body,
                          "{\"deviceId\":\"bench%ld\",\"payload\":\"hello "
                          "bench\",\"ttl\":%d}",
                          (w->n * 31 + w->id) % g_devices, g_ttl);
        int rl = snprintf(req, sizeof req,
                          "POST /v1/push/device HTTP/1.1\r\nHost: b\r\n"
                          "Authorization: Bearer %s\r\nContent-Length: %d\r\n"
                          "\r\n%s",
                          g_key, bl, body);
        uint64_t t0 = clock_mono_us();
        int st = 0;
        if (write(fd, req, (size_t)rl) != rl ||
            read_answer(fd, buf, sizeof buf, &st) < 0) {
            w->errors++;
            break;
        }
        if (st != 200)
            w->errors++;
        if (w->n == (long)w->cap) {
            w->cap = w->cap ? w->cap * 2 : 65536;
            w->lat_us = realloc(w->lat_us, w->cap * sizeof *w->lat_us);
            if (!w->lat_us)
                break;
        }
        w->lat_us[w->n++] = (uint32_t)(clock_mono_us() - t0);
    }
    close(fd);
    return NULL;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: push_http_load HOST PORT API_KEY CONNS "
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
