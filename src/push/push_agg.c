/*
 * push_agg.c: open addressing over entry indexes; entries and key bytes in
 * flat arrays so that draining and refilling a window allocates nothing
 * once the table has reached its working size.
 */
#include "push/push_agg.h"

#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

typedef struct agg_ent {
    uint32_t hash;
    uint32_t klen;
    size_t koff; /* into keys */
} agg_ent_t;

struct push_agg {
    int nvals;
    enum push_agg_op op;
    uint32_t max_keys;
    uint32_t *slots; /* entry index + 1; 0 = empty */
    uint32_t nslots; /* power of two */
    agg_ent_t *ents;
    int64_t *vals;   /* nvals per entry */
    uint32_t n, cap; /* entries used / allocated */
    char *keys;
    size_t keys_len, keys_cap;
};

push_agg_t *push_agg_new(int nvals, enum push_agg_op op, uint32_t max_keys) {
    push_agg_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->nvals = nvals;
    a->op = op;
    a->max_keys = max_keys;
    a->nslots = 64;
    a->slots = calloc(a->nslots, sizeof *a->slots);
    if (!a->slots) {
        free(a);
        return NULL;
    }
    return a;
}

void push_agg_free(push_agg_t *a) {
    if (!a) return;
    free(a->slots);
    free(a->ents);
    free(a->vals);
    free(a->keys);
    free(a);
}

uint32_t push_agg_count(const push_agg_t *a) { return a->n; }

static void place(push_agg_t *a, uint32_t idx) {
    uint32_t mask = a->nslots - 1;
    for (uint32_t i = a->ents[idx].hash & mask;; i = (i + 1) & mask) {
        if (!a->slots[i]) {
            a->slots[i] = idx + 1;
            return;
        }
    }
}

/* Keeps the load under 1/2 and room for one more entry and key. */
static int reserve(push_agg_t *a, size_t klen) {
    if ((a->n + 1) * 2 > a->nslots) {
        uint32_t *s = calloc((size_t)a->nslots * 2, sizeof *s);
        if (!s) return -1;
        free(a->slots);
        a->slots = s;
        a->nslots *= 2;
        for (uint32_t i = 0; i < a->n; i++) place(a, i);
    }
    if (a->n == a->cap) {
        uint32_t nc = a->cap ? a->cap * 2 : 32;
        agg_ent_t *e = realloc(a->ents, nc * sizeof *e);
        if (!e) return -1;
        a->ents = e;
        int64_t *v =
            realloc(a->vals, (size_t)nc * (size_t)a->nvals * sizeof *v);
        if (!v) return -1;
        a->vals = v;
        a->cap = nc;
    }
    if (a->keys_len + klen > a->keys_cap) {
        size_t nc = a->keys_cap ? a->keys_cap * 2 : 4096;
        while (nc < a->keys_len + klen) nc *= 2;
        char *k = realloc(a->keys, nc);
        if (!k) return -1;
        a->keys = k;
        a->keys_cap = nc;
    }
    return 0;
}

static int64_t *find_or_add(push_agg_t *a, const char *key, size_t klen) {
    uint32_t h = core_fnv1a(CORE_FNV1A_INIT, key, klen), mask = a->nslots - 1;
    for (uint32_t i = h & mask; a->slots[i]; i = (i + 1) & mask) {
        agg_ent_t *e = &a->ents[a->slots[i] - 1];
        if (e->hash == h && e->klen == klen &&
            !memcmp(a->keys + e->koff, key, klen))
            return a->vals + (size_t)(a->slots[i] - 1) * (size_t)a->nvals;
    }
    if (a->n >= a->max_keys || reserve(a, klen) < 0) return NULL;
    uint32_t idx = a->n++;
    a->ents[idx] =
        (agg_ent_t){.hash = h, .klen = (uint32_t)klen, .koff = a->keys_len};
    memcpy(a->keys + a->keys_len, key, klen);
    a->keys_len += klen;
    int64_t *v = a->vals + (size_t)idx * (size_t)a->nvals;
    for (int j = 0; j < a->nvals; j++)
        v[j] = a->op == PUSH_AGG_ADD ? 0 : INT64_MIN;
    place(a, idx);
    return v;
}

int push_agg_put(push_agg_t *a, const char *key, size_t klen, int slot,
                 int64_t v) {
    if (slot < 0 || slot >= a->nvals) return -1;
    int64_t *vals = find_or_add(a, key, klen);
    if (!vals) return -1;
    if (a->op == PUSH_AGG_ADD)
        vals[slot] += v;
    else if (v > vals[slot])
        vals[slot] = v;
    return 0;
}

void push_agg_drain(push_agg_t *a, push_agg_fn fn, void *ctx) {
    for (uint32_t i = 0; i < a->n; i++)
        fn(ctx, a->keys + a->ents[i].koff, a->ents[i].klen,
           a->vals + (size_t)i * (size_t)a->nvals);
    if (a->n) memset(a->slots, 0, a->nslots * sizeof *a->slots);
    a->n = 0;
    a->keys_len = 0;
}
