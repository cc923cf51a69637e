/*
 * metrics: the registry behind metrics.h.  Storage is static (no
 * allocation on any path but rendering): METRICS_SHARDS arrays of 64-bit
 * slots, each family owning a contiguous range [base, base + children *
 * per_child) in every shard.  Counter child = 1 slot, gauge = 1 slot (shard
 * 0 only), histogram child = METRICS_NBUCKETS + 1 bucket slots + 1 sum slot.
 */
#include "ops/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HSLOTS (METRICS_NBUCKETS + 2) /* buckets, +Inf, sum */

const uint64_t METRICS_BUCKETS_US[METRICS_NBUCKETS] = {
    50,    100,    250,    500,    1000,    2500,    5000,    10000,    25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

typedef struct family {
    metrics_def_t def;
    unsigned n[METRICS_MAX_LABELS]; /* values per label, 1 if none */
    unsigned nlabels;
    uint32_t base, children, per_child;
    bool used;
} family_t;

/* Each shard starts on its own cache line so two threads in different
 * shards never write the same line. */
typedef struct shard {
    _Alignas(64) _Atomic uint64_t v[METRICS_MAX_SLOTS];
} shard_t;

static shard_t shards[METRICS_SHARDS];
static family_t fams[METRICS_MAX_FAMILIES];
static uint32_t next_slot;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint shard_next;
static __thread int tl_shard = -1;

static shard_t *my_shard(void) {
    if (tl_shard < 0)
        tl_shard = (int)(atomic_fetch_add_explicit(&shard_next, 1,
                                                   memory_order_relaxed) %
                         METRICS_SHARDS);
    return &shards[tl_shard];
}

static bool name_valid(const char *s, bool label) {
    if (!s || !*s) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     c == '_' || (!label && c == ':');
        if (!alpha && !(p > s && c >= '0' && c <= '9')) return false;
    }
    return true;
}

static unsigned count_values(const char *const *v) {
    unsigned n = 0;
    while (v[n]) n++;
    return n;
}

/* Fills f's label shape from def; METRICS_E_INVALID if malformed. */
static int shape(family_t *f, const metrics_def_t *def) {
    f->nlabels = 0;
    for (unsigned k = 0; k < METRICS_MAX_LABELS; k++) {
        f->n[k] = 1;
        if (!def->labels[k]) continue;
        if (k != f->nlabels || !name_valid(def->labels[k], true) ||
            !strcmp(def->labels[k], "le") || !def->values[k])
            return METRICS_E_INVALID;
        f->n[k] = count_values(def->values[k]);
        if (f->n[k] == 0) return METRICS_E_INVALID;
        f->nlabels++;
    }
    return 0;
}

static bool is_fn(metrics_kind_t k) {
    return k == METRICS_GAUGE_FN || k == METRICS_COUNTER_FN;
}

int metrics_register(int id, const metrics_def_t *def) {
    if (id < 0 || id >= METRICS_MAX_FAMILIES || !def ||
        !name_valid(def->name, false) || def->kind < METRICS_COUNTER ||
        def->kind > METRICS_COUNTER_FN)
        return METRICS_E_INVALID;
    family_t f = {.def = *def};
    int rc = shape(&f, def);
    if (rc < 0) return rc;
    f.children = f.n[0] * f.n[1];
    f.per_child = def->kind == METRICS_HISTOGRAM ? HSLOTS
                  : is_fn(def->kind)             ? 0
                                                 : 1;
    pthread_mutex_lock(&mu);
    if (fams[id].used) {
        rc = METRICS_E_EXISTS;
    } else if (f.children * f.per_child > METRICS_MAX_SLOTS - next_slot) {
        rc = METRICS_E_FULL;
    } else {
        f.base = next_slot;
        next_slot += f.children * f.per_child;
        f.used = true;
        fams[id] = f;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

bool metrics_registered(int id) {
    return id >= 0 && id < METRICS_MAX_FAMILIES && fams[id].used;
}

int metrics_set_reader(int id, metrics_read_fn fn, void *ctx) {
    if (!metrics_registered(id) || !is_fn(fams[id].def.kind))
        return METRICS_E_INVALID;
    pthread_mutex_lock(&mu);
    fams[id].def.read = fn;
    fams[id].def.ctx = ctx;
    pthread_mutex_unlock(&mu);
    return 0;
}

void metrics_reset(void) {
    pthread_mutex_lock(&mu);
    memset(fams, 0, sizeof fams);
    for (unsigned s = 0; s < METRICS_SHARDS; s++)
        for (uint32_t i = 0; i < next_slot; i++)
            atomic_store_explicit(&shards[s].v[i], 0, memory_order_relaxed);
    next_slot = 0;
    pthread_mutex_unlock(&mu);
}

/* The child's first slot, or -1 if id/kind/labels do not match. */
static inline long slot_of(int id, unsigned a, unsigned b, metrics_kind_t k) {
    if ((unsigned)id >= METRICS_MAX_FAMILIES) return -1;
    const family_t *f = &fams[id];
    if (!f->used || f->def.kind != k || a >= f->n[0] || b >= f->n[1]) return -1;
    return (long)f->base + (long)((a * f->n[1] + b) * f->per_child);
}

void metrics_add(int id, unsigned a, unsigned b, uint64_t n) {
    long s = slot_of(id, a, b, METRICS_COUNTER);
    if (s >= 0)
        atomic_fetch_add_explicit(&my_shard()->v[s], n, memory_order_relaxed);
}

void metrics_gauge_set(int id, unsigned a, unsigned b, int64_t v) {
    long s = slot_of(id, a, b, METRICS_GAUGE);
    if (s >= 0)
        atomic_store_explicit(&shards[0].v[s], (uint64_t)v,
                              memory_order_relaxed);
}

void metrics_gauge_add(int id, unsigned a, unsigned b, int64_t delta) {
    long s = slot_of(id, a, b, METRICS_GAUGE);
    if (s >= 0)
        atomic_fetch_add_explicit(&shards[0].v[s], (uint64_t)delta,
                                  memory_order_relaxed);
}

unsigned metrics_bucket_of(uint64_t us) {
    /* Binary search over 17 bounds: 5 compares. */
    unsigned lo = 0, hi = METRICS_NBUCKETS;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (us <= METRICS_BUCKETS_US[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void metrics_observe(int id, unsigned a, unsigned b, uint64_t us) {
    long s = slot_of(id, a, b, METRICS_HISTOGRAM);
    if (s < 0) return;
    shard_t *sh = my_shard();
    atomic_fetch_add_explicit(&sh->v[s + metrics_bucket_of(us)], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&sh->v[s + HSLOTS - 1], us, memory_order_relaxed);
}

static uint64_t sum_shards(long s) {
    uint64_t t = 0;
    for (unsigned i = 0; i < METRICS_SHARDS; i++)
        t += atomic_load_explicit(&shards[i].v[s], memory_order_relaxed);
    return t;
}

uint64_t metrics_counter_get(int id, unsigned a, unsigned b) {
    long s = slot_of(id, a, b, METRICS_COUNTER);
    return s < 0 ? 0 : sum_shards(s);
}

uint64_t metrics_counter_sum(int id) {
    if (!metrics_registered(id)) return 0;
    uint64_t t = 0;
    for (unsigned a = 0; a < fams[id].n[0]; a++)
        for (unsigned b = 0; b < fams[id].n[1]; b++)
            t += metrics_counter_get(id, a, b);
    return t;
}

int64_t metrics_gauge_get(int id, unsigned a, unsigned b) {
    long s = slot_of(id, a, b, METRICS_GAUGE);
    return s < 0 ? 0
                 : (int64_t)atomic_load_explicit(&shards[0].v[s],
                                                 memory_order_relaxed);
}

int64_t metrics_gauge_sum(int id) {
    if (!metrics_registered(id)) return 0;
    int64_t t = 0;
    for (unsigned a = 0; a < fams[id].n[0]; a++)
        for (unsigned b = 0; b < fams[id].n[1]; b++)
            t += metrics_gauge_get(id, a, b);
    return t;
}

static void hist_add_child(long s, metrics_hist_t *out) {
    for (unsigned i = 0; i <= METRICS_NBUCKETS; i++) {
        uint64_t n = sum_shards(s + i);
        out->bucket[i] += n;
        out->count += n;
    }
    out->sum_us += sum_shards(s + HSLOTS - 1);
}

void metrics_hist_get(int id, unsigned a, unsigned b, metrics_hist_t *out) {
    memset(out, 0, sizeof *out);
    if (!metrics_registered(id) || fams[id].def.kind != METRICS_HISTOGRAM)
        return;
    const family_t *f = &fams[id];
    if (a == UINT32_MAX && b == UINT32_MAX) {
        for (uint32_t c = 0; c < f->children; c++)
            hist_add_child((long)(f->base + c * HSLOTS), out);
        return;
    }
    long s = slot_of(id, a, b, METRICS_HISTOGRAM);
    if (s >= 0) hist_add_child(s, out);
}

void metrics_hist_sub(const metrics_hist_t *x, const metrics_hist_t *y,
                      metrics_hist_t *out) {
    for (unsigned i = 0; i <= METRICS_NBUCKETS; i++)
        out->bucket[i] = x->bucket[i] - y->bucket[i];
    out->count = x->count - y->count;
    out->sum_us = x->sum_us - y->sum_us;
}

double metrics_hist_quantile(const metrics_hist_t *h, double q) {
    if (h->count == 0) return NAN;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    double rank = q * (double)h->count;
    uint64_t cum = 0;
    for (unsigned i = 0; i <= METRICS_NBUCKETS; i++) {
        uint64_t n = h->bucket[i];
        if (n && (double)(cum + n) >= rank) {
            /* +Inf has no upper bound: answer the highest finite one. */
            if (i == METRICS_NBUCKETS)
                return (double)METRICS_BUCKETS_US[METRICS_NBUCKETS - 1];
            double lo = i ? (double)METRICS_BUCKETS_US[i - 1] : 0;
            double hi = (double)METRICS_BUCKETS_US[i];
            return lo + (hi - lo) * (rank - (double)cum) / (double)n;
        }
        cum += n;
    }
    return (double)METRICS_BUCKETS_US[METRICS_NBUCKETS - 1];
}

unsigned metrics_label_count(int id, unsigned k) {
    if (!metrics_registered(id) || k >= METRICS_MAX_LABELS) return 0;
    return fams[id].n[k];
}

const char *metrics_label_value(int id, unsigned k, unsigned i) {
    if (!metrics_registered(id) || k >= fams[id].nlabels || i >= fams[id].n[k])
        return NULL;
    return fams[id].def.values[k][i];
}

/* ---- rendering ---------------------------------------------------------- */

void metrics_buf_printf(metrics_buf_t *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap - b->len <= (size_t)n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

void metrics_buf_free(metrics_buf_t *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Appends s escaped: help text escapes \ and newline, label values also ". */
static void put_escaped(metrics_buf_t *b, const char *s, bool quote) {
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            metrics_buf_printf(b, "\\\\");
        else if (*p == '\n')
            metrics_buf_printf(b, "\\n");
        else if (*p == '"' && quote)
            metrics_buf_printf(b, "\\\"");
        else
            metrics_buf_printf(b, "%c", *p);
    }
}

/* `{l1="v1",l2="v2"` without the closing brace (le may follow), or
 * nothing at all when the family has no labels and le is NULL. */
static void put_labels(metrics_buf_t *b, const family_t *f, unsigned a,
                       unsigned c, const char *le) {
    if (f->nlabels == 0 && !le) return;
    unsigned idx[2] = {a, c};
    metrics_buf_printf(b, "{");
    for (unsigned k = 0; k < f->nlabels; k++) {
        metrics_buf_printf(b, "%s%s=\"", k ? "," : "", f->def.labels[k]);
        put_escaped(b, f->def.values[k][idx[k]], true);
        metrics_buf_printf(b, "\"");
    }
    if (le) metrics_buf_printf(b, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    metrics_buf_printf(b, "}");
}

static void render_hist_child(metrics_buf_t *b, const family_t *f, unsigned a,
                              unsigned c) {
    metrics_hist_t h;
    memset(&h, 0, sizeof h);
    hist_add_child((long)f->base + (long)((a * f->n[1] + c) * HSLOTS), &h);
    uint64_t cum = 0;
    char le[32];
    for (unsigned i = 0; i <= METRICS_NBUCKETS; i++) {
        cum += h.bucket[i];
        if (i < METRICS_NBUCKETS)
            snprintf(le, sizeof le, "%g", (double)METRICS_BUCKETS_US[i] / 1e6);
        else
            snprintf(le, sizeof le, "+Inf");
        metrics_buf_printf(b, "%s_bucket", f->def.name);
        put_labels(b, f, a, c, le);
        metrics_buf_printf(b, " %" PRIu64 "\n", cum);
    }
    metrics_buf_printf(b, "%s_sum", f->def.name);
    put_labels(b, f, a, c, NULL);
    metrics_buf_printf(b, " %" PRIu64 ".%06" PRIu64 "\n", h.sum_us / 1000000,
                       h.sum_us % 1000000);
    metrics_buf_printf(b, "%s_count", f->def.name);
    put_labels(b, f, a, c, NULL);
    metrics_buf_printf(b, " %" PRIu64 "\n", h.count);
}

static void render_child(metrics_buf_t *b, const family_t *f, unsigned a,
                         unsigned c) {
    long s = (long)f->base + (long)((a * f->n[1] + c) * f->per_child);
    switch (f->def.kind) {
    case METRICS_COUNTER:
        metrics_buf_printf(b, "%s", f->def.name);
        put_labels(b, f, a, c, NULL);
        metrics_buf_printf(b, " %" PRIu64 "\n", sum_shards(s));
        break;
    case METRICS_GAUGE:
        metrics_buf_printf(b, "%s", f->def.name);
        put_labels(b, f, a, c, NULL);
        metrics_buf_printf(b, " %" PRId64 "\n",
                           (int64_t)atomic_load_explicit(&shards[0].v[s],
                                                         memory_order_relaxed));
        break;
    case METRICS_GAUGE_FN:
    case METRICS_COUNTER_FN: {
        double v = f->def.read ? f->def.read(f->def.ctx, a, c) : NAN;
        if (isnan(v)) break;
        metrics_buf_printf(b, "%s", f->def.name);
        put_labels(b, f, a, c, NULL);
        metrics_buf_printf(b, " %.17g\n", v);
        break;
    }
    case METRICS_HISTOGRAM: render_hist_child(b, f, a, c); break;
    }
}

static const char *type_name(metrics_kind_t k) {
    switch (k) {
    case METRICS_COUNTER:
    case METRICS_COUNTER_FN: return "counter";
    case METRICS_HISTOGRAM: return "histogram";
    default: return "gauge";
    }
}

int metrics_render(metrics_buf_t *b) {
    pthread_mutex_lock(&mu);
    for (int id = 0; id < METRICS_MAX_FAMILIES; id++) {
        const family_t *f = &fams[id];
        if (!f->used) continue;
        /* A callback family with no reader yet says nothing at all. */
        if (is_fn(f->def.kind) && !f->def.read) continue;
        metrics_buf_printf(b, "# HELP %s ", f->def.name);
        put_escaped(b, f->def.help ? f->def.help : "", false);
        metrics_buf_printf(b, "\n# TYPE %s %s\n", f->def.name,
                           type_name(f->def.kind));
        for (unsigned a = 0; a < f->n[0]; a++)
            for (unsigned c = 0; c < f->n[1]; c++) render_child(b, f, a, c);
    }
    pthread_mutex_unlock(&mu);
    return b->oom ? METRICS_E_NOMEM : 0;
}
