/*
 * ops_mem: the memory watermark's sampler thread (see ops_mem.h).
 */
#include "ops/ops_mem.h"

#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "ops/metrics_herald.h"

#define TRIM_EVERY_MS 250
#define CLEAR_PCT 90 /* hysteresis: cleared at or below this share of high */

struct ops_mem {
    uint64_t high, low;
    int interval_ms;
    atomic_bool over;
    atomic_uint_fast64_t rss;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

/* ---- reading the kernel's figures ----------------------------------------- */

uint64_t ops_mem_rss(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size, pages;
    int n = f ? fscanf(f, "%lu %lu", &size, &pages) : 0;
    if (f) fclose(f);
    long ps = sysconf(_SC_PAGESIZE);
    return n == 2 && ps > 0 ? (uint64_t)pages * (uint64_t)ps : 0;
}

/* A number of bytes in a file (a cgroup limit); 0 for "max" or unreadable. */
static uint64_t read_u64_file(const char *path) {
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    if (f && fscanf(f, "%llu", &v) != 1) v = 0;
    if (f) fclose(f);
    return (uint64_t)v;
}

/* This process's cgroup limit: v2 ("0::/path" -> memory.max) or v1 (the
 * line whose controllers include "memory" -> memory.limit_in_bytes).
 * "Unlimited" reads as a huge number; the caller takes the minimum with
 * physical RAM. */
static uint64_t cgroup_limit(void) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return 0;
    char line[512], path[640];
    uint64_t lim = 0;
    while (!lim && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        const char *ctrls = c1 + 1, *cg = c2 + 1;
        if (!strcmp(line, "0") && !*ctrls) {
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max",
                     strcmp(cg, "/") ? cg : "");
        } else if (strstr(ctrls, "memory")) {
            snprintf(path, sizeof path,
                     "/sys/fs/cgroup/memory%s/memory.limit_in_bytes",
                     strcmp(cg, "/") ? cg : "");
        } else {
            continue;
        }
        lim = read_u64_file(path);
    }
    fclose(f);
    return lim;
}

uint64_t ops_mem_limit(const char **from) {
    long pages = sysconf(_SC_PHYS_PAGES), ps = sysconf(_SC_PAGESIZE);
    uint64_t phys = pages > 0 && ps > 0 ? (uint64_t)pages * (uint64_t)ps : 0;
    uint64_t cg = cgroup_limit();
    if (cg && (!phys || cg < phys)) {
        if (from) *from = "cgroup limit";
        return cg;
    }
    if (from) *from = "physical memory";
    return phys;
}

int ops_mem_parse_size(const char *s, uint64_t *out) {
    if (!s || !isdigit((unsigned char)*s)) return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -EINVAL;
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case 0: break;
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: return -EINVAL;
    }
    if (shift) {
        end++;
        if (toupper((unsigned char)*end) == 'I') end++;
        if (toupper((unsigned char)*end) == 'B') end++;
    }
    if (*end || (shift && v > (UINT64_MAX >> shift))) return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

/* ---- the sampler ------------------------------------------------------------ */

static double read_over(void *ctx, unsigned a, unsigned b) {
    return ops_mem_over(ctx) ? 1 : 0;
}

static double read_high(void *ctx, unsigned a, unsigned b) {
    return (double)ops_mem_high(ctx);
}

/* One sample: sets or clears the flag, trimming the heap while over. */
static void sample(ops_mem_t *m, uint64_t *last_trim) {
    uint64_t rss = ops_mem_rss();
    bool was = atomic_load_explicit(&m->over, memory_order_relaxed);
    if (rss > m->high || (was && rss > m->low)) {
        uint64_t now = clock_mono_ms();
        if (now - *last_trim >= TRIM_EVERY_MS) {
            /* Freed chunks inside the heaps go back to the kernel only
             * when asked; without this RSS could stay high after the
             * flood and the flag never clear. */
            (void)malloc_trim(0); /* 1 if memory was released: no error */
            *last_trim = now;
            rss = ops_mem_rss();
        }
    }
    bool over = was ? rss > m->low : rss > m->high;
    atomic_store_explicit(&m->rss, rss, memory_order_relaxed);
    if (over == was) return;
    atomic_store_explicit(&m->over, over, memory_order_relaxed);
    if (over)
        log_warn("memory above the high watermark: refusing new work",
                 "rss=%llu high=%llu", (unsigned long long)rss,
                 (unsigned long long)m->high);
    else
        log_info("memory back under the watermark: accepting new work",
                 "rss=%llu high=%llu", (unsigned long long)rss,
                 (unsigned long long)m->high);
}

static void *sampler_main(void *arg) {
    ops_mem_t *m = arg;
    uint64_t last_trim = 0;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)m->interval_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        int rc = pthread_cond_timedwait(&m->cv, &m->mu, &ts);
        if (m->stop) break;
        if (rc != 0 && rc != ETIMEDOUT) continue;
        pthread_mutex_unlock(&m->mu);
        sample(m, &last_trim);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

ops_mem_t *ops_mem_new(uint64_t high, int interval_ms) {
    ops_mem_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->high = high;
    m->low = high / 100 * CLEAR_PCT;
    m->interval_ms = interval_ms > 0 ? interval_ms : OPS_MEM_INTERVAL_MS;
    atomic_init(&m->over, false);
    atomic_init(&m->rss, 0);
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    return m;
}

int ops_mem_start(ops_mem_t *m) {
    if (!m || m->started) return -EINVAL;
    (void)metrics_herald_init(); /* static storage: cannot fail here */
    (void)metrics_set_reader(M_OVERLOADED, read_over, m);
    (void)metrics_set_reader(M_MEMORY_HIGH, read_high, m);
    if (!m->high) return 0;
    int rc = pthread_create(&m->thread, NULL, sampler_main, m);
    if (rc) return -rc;
    m->started = true;
    return 0;
}

void ops_mem_free(ops_mem_t *m) {
    if (!m) return;
    (void)metrics_set_reader(M_OVERLOADED, NULL, NULL);
    (void)metrics_set_reader(M_MEMORY_HIGH, NULL, NULL);
    if (m->started) {
        pthread_mutex_lock(&m->mu);
        m->stop = true;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->thread, NULL);
    }
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

bool ops_mem_over(const ops_mem_t *m) {
    return m && atomic_load_explicit(&m->over, memory_order_relaxed);
}

uint64_t ops_mem_high(const ops_mem_t *m) { return m ? m->high : 0; }

uint64_t ops_mem_last_rss(const ops_mem_t *m) {
    return m ? atomic_load_explicit(&m->rss, memory_order_relaxed) : 0;
}
