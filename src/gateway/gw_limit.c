/*
 * gw_limit: the accept-rate bucket and the per-address connection table
 * (see gw_limit.h).
 */
#include "gateway/gw_limit.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

/* ---- accept rate (GCRA) -------------------------------------------------------
 *
 * The bucket is kept as one time, `tat`: when the bucket would be full
 * again.  A take at `now` is allowed if tat - now stays within the burst's
 * tolerance, and moves tat one interval later.  Same answers as a token
 * bucket of `burst` tokens refilled at `per_s`, but a single word. */

void gw_rate_init(gw_rate_t *r, double per_s, double burst) {
    atomic_init(&r->tat, 0);
    r->interval = r->tolerance = 0;
    if (per_s <= 0) return;
    if (burst < 1) burst = per_s < 1 ? 1 : per_s;
    double iv = 1e9 / per_s;
    r->interval = iv < 1 ? 1 : (uint64_t)iv;
    r->tolerance = (uint64_t)((burst - 1) * (double)r->interval);
}

bool gw_rate_take(gw_rate_t *r, uint64_t now) {
    if (!r->interval) return true;
    uint64_t tat = atomic_load_explicit(&r->tat, memory_order_relaxed);
    for (;;) {
        uint64_t base = tat > now ? tat : now;
        if (base - now > r->tolerance) return false;
        if (atomic_compare_exchange_weak_explicit(
                &r->tat, &tat, base + r->interval, memory_order_relaxed,
                memory_order_relaxed))
            return true;
    }
}

/* ---- connections per address ------------------------------------------------- */

#define STRIPES 64
#define BUCKETS0 16 /* per stripe at first; doubles as addresses come */

struct gw_ipent {
    struct gw_ipent *next;
    uint64_t hash;
    uint32_t count;
    uint8_t key[16];
};

typedef struct stripe {
    pthread_mutex_t mu;
    gw_ipent_t **tab;
    uint32_t mask; /* buckets - 1 */
    uint32_t n;    /* addresses held */
} stripe_t;

struct gw_iptab {
    uint32_t limit;
    uint64_t seed[2];
    stripe_t s[STRIPES];
};

/* The counting key: an IPv4 address as its IPv4-mapped IPv6 form (so both
 * spellings of one client count together), an IPv6 address cut to /64. */
static int ip_key(const struct sockaddr *sa, uint8_t key[16]) {
    memset(key, 0, 16);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &v4->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family != AF_INET6) return -EAFNOSUPPORT;
    const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
                                       0, 0, 0, 0, 0xff, 0xff};
    memcpy(key, a, memcmp(a, mapped, 12) ? 8 : 16);
    return 0;
}

/* murmur3's finaliser over each keyed half: cheap, and with a secret seed
 * a client cannot aim many addresses at one chain. */
static uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static uint64_t key_hash(const gw_iptab_t *t, const uint8_t key[16]) {
    uint64_t lo, hi;
    memcpy(&lo, key, 8);
    memcpy(&hi, key + 8, 8);
    return mix(lo ^ t->seed[0]) ^ mix(hi ^ t->seed[1]) * 31;
}

gw_iptab_t *gw_iptab_new(uint32_t limit) {
    gw_iptab_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->limit = limit ? limit : 1;
    if (RAND_bytes((unsigned char *)t->seed, sizeof t->seed) != 1)
        t->seed[0] = (uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < STRIPES; i++) {
        stripe_t *s = &t->s[i];
        pthread_mutex_init(&s->mu, NULL);
        s->mask = BUCKETS0 - 1;
        if (!(s->tab = calloc(BUCKETS0, sizeof *s->tab))) {
            gw_iptab_free(t);
            return NULL;
        }
    }
    return t;
}

void gw_iptab_free(gw_iptab_t *t) {
    if (!t) return;
    for (int i = 0; i < STRIPES; i++) {
        stripe_t *s = &t->s[i];
        for (uint32_t b = 0; s->tab && b <= s->mask; b++)
            for (gw_ipent_t *e = s->tab[b], *nx; e; e = nx) {
                nx = e->next;
                free(e);
            }
        free(s->tab);
        pthread_mutex_destroy(&s->mu);
    }
    free(t);
}

static stripe_t *stripe_of(gw_iptab_t *t, uint64_t h) {
    return &t->s[h % STRIPES];
}

static gw_ipent_t **bucket_of(stripe_t *s, uint64_t h) {
    return &s->tab[(h / STRIPES) & s->mask];
}

static gw_ipent_t **find(stripe_t *s, uint64_t h, const uint8_t key[16]) {
    gw_ipent_t **pp = bucket_of(s, h);
    while (*pp && ((*pp)->hash != h || memcmp((*pp)->key, key, 16)))
        pp = &(*pp)->next;
    return pp;
}

/* Doubles a stripe's buckets; on OOM keeps the longer chains. */
static void grow(stripe_t *s) {
    uint32_t nb = (s->mask + 1) * 2;
    gw_ipent_t **tab = calloc(nb, sizeof *tab);
    if (!tab) return;
    for (uint32_t b = 0; b <= s->mask; b++)
        for (gw_ipent_t *e = s->tab[b], *nx; e; e = nx) {
            nx = e->next;
            gw_ipent_t **to = &tab[(e->hash / STRIPES) & (nb - 1)];
            e->next = *to;
            *to = e;
        }
    free(s->tab);
    s->tab = tab;
    s->mask = nb - 1;
}

int gw_iptab_take(gw_iptab_t *t, const struct sockaddr *sa, gw_ipent_t **out) {
    uint8_t key[16];
    *out = NULL;
    if (!sa || ip_key(sa, key) < 0) return -EAFNOSUPPORT;
    uint64_t h = key_hash(t, key);
    stripe_t *s = stripe_of(t, h);
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    gw_ipent_t **pp = find(s, h, key), *e = *pp;
    if (e && e->count >= t->limit) {
        rc = GW_IPTAB_OVER;
    } else if (e) {
        e->count++;
        *out = e;
    } else if (!(e = malloc(sizeof *e))) {
        rc = -ENOMEM;
    } else {
        e->next = NULL;
        e->hash = h;
        e->count = 1;
        memcpy(e->key, key, 16);
        *pp = e;
        *out = e;
        if (++s->n > (s->mask + 1) * 2) grow(s);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void gw_iptab_put(gw_iptab_t *t, gw_ipent_t *e) {
    if (!e) return;
    stripe_t *s = stripe_of(t, e->hash);
    pthread_mutex_lock(&s->mu);
    if (--e->count == 0) {
        gw_ipent_t **pp = bucket_of(s, e->hash);
        while (*pp != e) pp = &(*pp)->next;
        *pp = e->next;
        s->n--;
        free(e);
    }
    pthread_mutex_unlock(&s->mu);
}

uint32_t gw_iptab_count(gw_iptab_t *t, const struct sockaddr *sa) {
    uint8_t key[16];
    if (!sa || ip_key(sa, key) < 0) return 0;
    uint64_t h = key_hash(t, key);
    stripe_t *s = stripe_of(t, h);
    pthread_mutex_lock(&s->mu);
    gw_ipent_t *e = *find(s, h, key);
    uint32_t n = e ? e->count : 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

uint32_t gw_iptab_size(gw_iptab_t *t) {
    uint32_t n = 0;
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_lock(&t->s[i].mu);
        n += t->s[i].n;
        pthread_mutex_unlock(&t->s[i].mu);
    }
    return n;
}
