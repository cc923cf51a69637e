/* bench_stat.c: see bench_stat.h. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_stat.h"

int bench_lat_reserve(bench_lat_t *l, size_t more) {
    if (l->cap - l->n >= more) return 0;
    size_t nc = l->cap ? l->cap : 4096;
    while (nc - l->n < more) nc *= 2;
    uint32_t *nv = realloc(l->v, nc * sizeof *nv);
    if (!nv) return -1;
    l->v = nv;
    l->cap = nc;
    return 0;
}

int bench_lat_add(bench_lat_t *l, uint64_t us) {
    if (l->n == l->cap && bench_lat_reserve(l, 1) < 0) return -1;
    l->v[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    return 0;
}

int bench_lat_append(bench_lat_t *l, const bench_lat_t *from) {
    if (bench_lat_reserve(l, from->n) < 0) return -1;
    if (from->n) memcpy(l->v + l->n, from->v, from->n * sizeof *from->v);
    l->n += from->n;
    return 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void bench_lat_sort(bench_lat_t *l) {
    if (l->n) qsort(l->v, l->n, sizeof *l->v, cmp_u32);
}

uint32_t bench_lat_pct(const bench_lat_t *l, double p) {
    if (!l->n) return 0;
    size_t i = (size_t)(p * (double)(l->n - 1) + 0.5);
    return l->v[i < l->n ? i : l->n - 1];
}

void bench_lat_free(bench_lat_t *l) {
    free(l->v);
    *l = (bench_lat_t){0};
}

long bench_proc_cpu_ticks(int pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the ")" of comm: state is field 3; utime 14, stime 15. */
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2)
        return -1;
    return (long)(ut + st);
}

long long bench_proc_cpu_ns(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    long long sum = 0;
    bool any = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sp[300];
        snprintf(sp, sizeof sp, "/proc/%d/task/%s/schedstat", pid, e->d_name);
        FILE *f = fopen(sp, "r");
        long long ns;
        if (f && fscanf(f, "%lld", &ns) == 1) {
            sum += ns;
            any = true;
        }
        if (f) fclose(f);
    }
    closedir(d);
    return any ? sum : -1;
}
