/*
 * push_auth.c: what the API threads ask about apps and devices.
 *
 * - API keys: with a store, the store is the truth.  A key found there is
 *   cached for KEY_TTL_MS; after that it is checked again, so a key revoked
 *   by `herald app rotate-key` (another process on the same file) stops
 *   working within seconds while hot keys cost no SQLite read per call.  A
 *   new key misses the cache and is found at once.  Without a store the
 *   in-memory registry of push.c answers.
 * - Per-app token buckets for the rate limit.
 * - The table of devices online here (from the gateway callbacks), for
 *   GET /v1/devices/{id}.
 * - One store reader shared by the HTTP and TARS threads under a mutex for
 *   the rare reads (key misses, status and device queries).
 * - Whether a device ever connected, for apps that refuse pushes to
 *   unknown devices: online here, or a positive answer cached (a device
 *   once known stays known), or a point read on a reader of its own.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/clock.h"
#include "core/hash.h"
#include "ops/metrics_herald.h"
#include "ops/ops_mem.h"
#include "push/push_int.h"

#define KEY_TTL_MS 3000
#define KEY_SLOTS 256
#define RATE_SLOTS 256
#define ONLINE_BUCKETS 4096
#define KNOWN_SLOTS 2048
#define DEV_KEY_MAX 196 /* "app\0device\0": 64 + 129 */

typedef struct key_slot {
    char key[PUSH_KEY_MAX + 1];
    size_t len;
    char app[64];
    int unknown_device; /* the app's policy, refreshed with the key */
    int64_t checked_ms;
} key_slot_t;

/* A device known to have connected (direct-mapped; a miss only costs a
 * read). */
typedef struct known_slot {
    uint16_t len;
    char key[DEV_KEY_MAX];
} known_slot_t;

typedef struct rate_slot {
    char app[64];
    double tokens;
    int64_t last_us;
} rate_slot_t;

typedef struct online_ent {
    struct online_ent *next;
    int conns;           /* a duplicate login overlaps the old connection */
    int syncs;           /* syncs in flight: live inbox routing held */
    uint64_t gen;        /* tells this entry from a later one of the key */
    int64_t synced_upto; /* the last inbox seq a sync sent */
    int transport;
    int64_t since_ms;
    char key[]; /* "app\0device\0" */
} online_ent_t;

struct push_auth {
    pthread_mutex_t mu; /* keys, reader */
    store_reader_t *rd;
    /* Status and device reads make the store writer fold every hot push
     * first (one writer cycle or more): on their own connection, so a
     * gateway HELLO's key lookup on rd never waits behind one. */
    pthread_mutex_t fold_mu;
    store_reader_t *fold_rd;
    key_slot_t keys[KEY_SLOTS];
    pthread_mutex_t rate_mu;
    rate_slot_t rates[RATE_SLOTS];
    pthread_mutex_t on_mu;
    online_ent_t *online[ONLINE_BUCKETS];
    uint64_t last_gen; /* under on_mu */
    /* Unknown-device checks: their own reader, so a push's check never
     * waits behind a key miss or a HELLO's secret lookup on rd. */
    pthread_mutex_t known_mu;
    store_reader_t *known_rd;
    known_slot_t *known; /* KNOWN_SLOTS */
};

int push_auth_new(push_service_t *ps) {
    push_auth_t *a = calloc(1, sizeof *a);
    if (!a) return PUSH_E_NOMEM;
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->rate_mu, NULL);
    pthread_mutex_init(&a->on_mu, NULL);
    pthread_mutex_init(&a->fold_mu, NULL);
    pthread_mutex_init(&a->known_mu, NULL);
    if (!(a->known = calloc(KNOWN_SLOTS, sizeof *a->known))) {
        free(a);
        return PUSH_E_NOMEM;
    }
    if (ps->cfg.store && (store_reader_new(ps->cfg.store, &a->rd) < 0 ||
                          store_reader_new(ps->cfg.store, &a->fold_rd) < 0 ||
                          store_reader_new(ps->cfg.store, &a->known_rd) < 0)) {
        if (a->rd) store_reader_free(a->rd);
        if (a->fold_rd) store_reader_free(a->fold_rd);
        free(a->known);
        free(a);
        return PUSH_E_SYS;
    }
    ps->auth = a;
    return 0;
}

void push_auth_free(push_service_t *ps) {
    push_auth_t *a = ps->auth;
    if (!a) return;
    if (a->rd) store_reader_free(a->rd);
    if (a->fold_rd) store_reader_free(a->fold_rd);
    if (a->known_rd) store_reader_free(a->known_rd);
    free(a->known);
    for (int i = 0; i < ONLINE_BUCKETS; i++)
        while (a->online[i]) {
            online_ent_t *e = a->online[i];
            a->online[i] = e->next;
            free(e);
        }
    OPENSSL_cleanse(a->keys, sizeof a->keys);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->rate_mu);
    pthread_mutex_destroy(&a->on_mu);
    pthread_mutex_destroy(&a->fold_mu);
    pthread_mutex_destroy(&a->known_mu);
    free(a);
    ps->auth = NULL;
}

static uint32_t hash(const char *p, size_t n) {
    return core_fnv1a(CORE_FNV1A_INIT, p, n);
}

/* ---- keys ---------------------------------------------------------------- */

int push_auth_key(push_service_t *ps, const char *key, size_t len, char app[64],
                  int *unknown_device) {
    push_auth_t *a = ps->auth;
    int policy_;
    if (!unknown_device) unknown_device = &policy_;
    *unknown_device = STORE_UNKNOWN_STORE;
    if (!a || !a->rd) {
        const char *name = push_app_by_key(ps, key, len);
        if (!name) return -1;
        snprintf(app, 64, "%s", name);
        return 0;
    }
    if (len == 0 || len > PUSH_KEY_MAX) return -1;
    key_slot_t *s = &a->keys[hash(key, len) % KEY_SLOTS];
    int64_t now = (int64_t)clock_mono_ms();
    int rc = -1;
    pthread_mutex_lock(&a->mu);
    if (s->len == len && !CRYPTO_memcmp(s->key, key, len) &&
        now - s->checked_ms < KEY_TTL_MS) {
        snprintf(app, 64, "%s", s->app);
        *unknown_device = s->unknown_device;
        rc = 0;
    } else {
        char k[PUSH_KEY_MAX + 1];
        memcpy(k, key, len);
        k[len] = 0;
        store_app_t sa;
        if (store_app_by_key(a->rd, k, &sa) == 0) {
            memcpy(s->key, k, len + 1);
            s->len = len;
            snprintf(s->app, sizeof s->app, "%s", sa.name);
            s->unknown_device = sa.unknown_device;
            s->checked_ms = now;
            snprintf(app, 64, "%s", sa.name);
            *unknown_device = sa.unknown_device;
            rc = 0;
        } else if (s->len == len && !CRYPTO_memcmp(s->key, key, len)) {
            s->len = 0; /* revoked: forget it */
        }
        OPENSSL_cleanse(&sa, sizeof sa);
        OPENSSL_cleanse(k, sizeof k);
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

/* Rare: once per device login of an app not given with --app. */
int push_auth_secret(push_service_t *ps, const char *app, uint8_t *out,
                     size_t cap) {
    push_auth_t *a = ps->auth;
    if (!a || !a->rd) return -1;
    store_app_t sa;
    pthread_mutex_lock(&a->mu);
    int rc = store_app_get(a->rd, app, &sa);
    pthread_mutex_unlock(&a->mu);
    if (rc < 0) return -1;
    size_t n = strlen(sa.secret);
    int ret = n <= cap ? (int)n : -1;
    if (ret > 0) memcpy(out, sa.secret, n);
    OPENSSL_cleanse(&sa, sizeof sa);
    return ret;
}

int push_auth_status(push_service_t *ps, const char *msg_id,
                     store_status_t *out) {
    push_auth_t *a = ps->auth;
    if (!a || !a->fold_rd) return STORE_E_NOTFOUND;
    pthread_mutex_lock(&a->fold_mu);
    int rc = store_status_get(a->fold_rd, msg_id, out);
    pthread_mutex_unlock(&a->fold_mu);
    return rc;
}

int push_auth_device(push_service_t *ps, const char *app, const char *dev,
                     store_device_info_t *out) {
    push_auth_t *a = ps->auth;
    memset(out, 0, sizeof *out);
    if (!a || !a->fold_rd) return 0;
    pthread_mutex_lock(&a->fold_mu);
    int rc = store_device_info(a->fold_rd, app, dev, out);
    pthread_mutex_unlock(&a->fold_mu);
    return rc == STORE_E_NOTFOUND ? 0 : rc;
}

/* ---- rate limits ------------------------------------------------------- */

/* rate_app and burst are read under rate_mu: a reload changes them. */
bool push_rate_take(push_service_t *ps, const char *app) {
    push_auth_t *a = ps->auth;
    if (!a) return true;
    size_t n = strlen(app);
    rate_slot_t *s = &a->rates[hash(app, n) % RATE_SLOTS];
    int64_t now = (int64_t)clock_mono_us();
    bool ok = true;
    pthread_mutex_lock(&a->rate_mu);
    double rate = ps->cfg.rate_app, burst = ps->cfg.burst;
    if (burst < 1) burst = rate < 1 ? 1 : rate;
    if (rate > 0 && strcmp(s->app, app)) {
        /* Slot taken by another app (or new): two apps sharing a slot share
         * a bucket only until one of them is quiet; acceptable for a
         * limiter whose job is to stop floods. */
        snprintf(s->app, sizeof s->app, "%s", app);
        s->tokens = burst;
        s->last_us = now;
    }
    if (rate > 0) {
        s->tokens += (double)(now - s->last_us) * rate / 1e6;
        if (s->tokens > burst) /* a lowered burst applies at once */
            s->tokens = burst;
        s->last_us = now;
        ok = s->tokens >= 1;
        if (ok) s->tokens -= 1;
    }
    pthread_mutex_unlock(&a->rate_mu);
    return ok;
}

void push_service_set_limits(push_service_t *ps, double rate_app, double burst,
                             uint32_t max_payload) {
    push_auth_t *a = ps->auth;
    if (a) pthread_mutex_lock(&a->rate_mu);
    ps->cfg.rate_app = rate_app;
    ps->cfg.burst = burst;
    if (a) pthread_mutex_unlock(&a->rate_mu);
    /* Read without a lock by the API threads (push_call_set_msg). */
    __atomic_store_n(&ps->cfg.max_payload, max_payload, __ATOMIC_RELAXED);
}

void push_service_forget_keys(push_service_t *ps) {
    push_auth_t *a = ps->auth;
    if (!a) return;
    pthread_mutex_lock(&a->mu);
    OPENSSL_cleanse(a->keys, sizeof a->keys);
    pthread_mutex_unlock(&a->mu);
}

int push_admit(push_service_t *ps, const char *app) {
    if (ops_mem_over(ps->cfg.mem)) {
        metrics_inc(M_REFUSED, MH_REF_PUSH, MH_REF_MEMORY);
        return PUSH_RET_OVERLOADED;
    }
    if (!push_rate_take(ps, app)) {
        metrics_inc(M_REFUSED, MH_REF_PUSH, MH_REF_RATE_LIMIT);
        return PUSH_RET_RATE_LIMITED;
    }
    return PUSH_RET_OK;
}

/* ---- online table -------------------------------------------------------- */

static size_t make_key(char *buf, size_t cap, const char *app,
                       const char *dev) {
    int n = snprintf(buf, cap, "%s%c%s", app, 0, dev);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n + 1;
}

/* Every sync in flight holds the device's live pushes, each counted: with
 * a duplicate login, or a SYNC command during a connect-time sync, the
 * first sync to end must not release pushes the other has yet to send (a
 * live seq acked first would delete the rows it is about to fetch).  A
 * sync ends only a hold of its own entry's generation, never one of a
 * later connection's entry. */
uint64_t push_online_set(push_service_t *ps, const gw_device_t *d, bool on) {
    push_auth_t *a = ps->auth;
    char k[300];
    size_t n = a ? make_key(k, sizeof k, d->app, d->device) : 0;
    if (!n) return 0;
    uint64_t gen = 0;
    online_ent_t **pp = &a->online[hash(k, n) % ONLINE_BUCKETS];
    pthread_mutex_lock(&a->on_mu);
    while (*pp && memcmp((*pp)->key, k, n)) pp = &(*pp)->next;
    if (on) {
        online_ent_t *e = *pp;
        if (!e && (e = calloc(1, sizeof *e + n))) {
            memcpy(e->key, k, n);
            e->gen = ++a->last_gen;
            *pp = e;
        }
        if (e) {
            e->conns++;
            if (ps->sync) e->syncs++;
            e->transport = d->transport;
            e->since_ms = (int64_t)clock_wall_ms();
            gen = e->gen;
        }
    } else if (*pp && --(*pp)->conns <= 0) {
        online_ent_t *e = *pp;
        *pp = e->next;
        free(e);
    }
    pthread_mutex_unlock(&a->on_mu);
    return gen;
}

static online_ent_t *find_ent(push_auth_t *a, const char *k, size_t n) {
    online_ent_t *e = a->online[hash(k, n) % ONLINE_BUCKETS];
    while (e && memcmp(e->key, k, n)) e = e->next;
    return e;
}

uint64_t push_online_hold(push_service_t *ps, const char *app,
                          const char *dev) {
    push_auth_t *a = ps->auth;
    char k[300];
    size_t n = a ? make_key(k, sizeof k, app, dev) : 0;
    if (!n || !ps->sync) return 0;
    pthread_mutex_lock(&a->on_mu);
    online_ent_t *e = find_ent(a, k, n);
    uint64_t gen = 0;
    if (e) {
        e->syncs++;
        gen = e->gen;
    }
    pthread_mutex_unlock(&a->on_mu);
    return gen;
}

/* A push committed before the sync's last fetch but routed after the hold
 * ended (its done() runs a little after its commit) was sent by the sync
 * already; sending it live too was a duplicate. */
static bool sent_by_sync(const online_ent_t *e, const gw_msg_t *m) {
    return m->timeline == 0 && m->seq > 0 && m->seq <= e->synced_upto;
}

/* Why hold live inbox messages while a device is synced: acks are
 * cumulative, so a live seq 101 overtaking synced 3..100 would be acked
 * first and delete 3..100 from the store before they reached the device.
 * While a sync is in flight, live messages are left to it (it fetches
 * them: their commit precedes this check); push_sync_done() sends the last
 * rows and ends the hold under the same lock, so later live messages queue
 * behind everything fetched. */
int push_route_device(push_service_t *ps, const char *app, const char *dev,
                      const gw_msg_t *m) {
    push_auth_t *a = ps->auth;
    char k[300];
    size_t n = a ? make_key(k, sizeof k, app, dev) : 0;
    if (!n) return ps->sink.device(ps->sink.ctx, app, dev, m);
    pthread_mutex_lock(&a->on_mu);
    online_ent_t *e = find_ent(a, k, n);
    /* No entry: offline, or registered in the gateway but not yet told to
     * us (the online callback follows the registration).  Routing it live
     * then could let its ack overtake the sync and lose older messages (as
     * above), or deliver it twice; stored, the coming sync sends it. */
    int rc = !e ? 0
             : e->syncs > 0 || sent_by_sync(e, m)
                 ? 1
                 : ps->sink.device(ps->sink.ctx, app, dev, m);
    pthread_mutex_unlock(&a->on_mu);
    return rc;
}

void push_sync_done(push_service_t *ps, const char *app, const char *dev,
                    uint64_t gen, int64_t (*last)(void *ctx), void *ctx) {
    push_auth_t *a = ps->auth;
    char k[300];
    size_t n = a ? make_key(k, sizeof k, app, dev) : 0;
    if (!n) return;
    pthread_mutex_lock(&a->on_mu);
    int64_t upto = last ? last(ctx) : -1;
    online_ent_t *e = find_ent(a, k, n);
    if (e && gen && e->gen == gen) {
        if (e->syncs > 0) e->syncs--;
        if (upto > e->synced_upto) e->synced_upto = upto;
    }
    pthread_mutex_unlock(&a->on_mu);
}

bool push_online_syncing(push_service_t *ps, const char *app, const char *dev) {
    push_auth_t *a = ps->auth;
    char k[300];
    size_t n = a ? make_key(k, sizeof k, app, dev) : 0;
    if (!n) return false;
    pthread_mutex_lock(&a->on_mu);
    online_ent_t *e = find_ent(a, k, n);
    bool syncing = e && e->syncs > 0;
    pthread_mutex_unlock(&a->on_mu);
    return syncing;
}

bool push_online_get(push_service_t *ps, const char *app, const char *dev,
                     int *transport, int64_t *since_ms) {
    push_auth_t *a = ps->auth;
    char k[300];
    size_t n = a ? make_key(k, sizeof k, app, dev) : 0;
    if (!n) return false;
    bool found = false;
    pthread_mutex_lock(&a->on_mu);
    for (online_ent_t *e = a->online[hash(k, n) % ONLINE_BUCKETS]; e;
         e = e->next)
        if (!memcmp(e->key, k, n)) {
            *transport = e->transport;
            *since_ms = e->since_ms;
            found = true;
            break;
        }
    pthread_mutex_unlock(&a->on_mu);
    return found;
}

/* ---- devices that ever connected ------------------------------------------ */

/* A device that logs in is known from that moment: its sighting commits
 * a little later (the sync thread's DEVICE_SEEN), and a device that left
 * before it did was refused as unknown (a loaded make test caught it). */
void push_auth_saw(push_service_t *ps, const char *app, const char *dev) {
    push_auth_t *a = ps->auth;
    char k[DEV_KEY_MAX];
    size_t n = a && a->known ? make_key(k, sizeof k, app, dev) : 0;
    if (!n) return;
    known_slot_t *s = &a->known[hash(k, n) % KNOWN_SLOTS];
    pthread_mutex_lock(&a->known_mu);
    memcpy(s->key, k, n);
    s->len = (uint16_t)n;
    pthread_mutex_unlock(&a->known_mu);
}

/* Online here, or connected before (the store's sighting, or
 * push_auth_saw before it commits).  Known once, known for good: devices
 * rows are never deleted, so positive answers are cached. */
int push_auth_known(push_service_t *ps, const char *app, const char *dev,
                    bool *known) {
    push_auth_t *a = ps->auth;
    char k[DEV_KEY_MAX];
    size_t n = a ? make_key(k, sizeof k, app, dev) : 0;
    *known = false;
    if (!n) return 0;
    pthread_mutex_lock(&a->on_mu);
    *known = find_ent(a, k, n) != NULL;
    pthread_mutex_unlock(&a->on_mu);
    if (*known || !a->known_rd) return 0;
    known_slot_t *s = &a->known[hash(k, n) % KNOWN_SLOTS];
    int rc = 0;
    pthread_mutex_lock(&a->known_mu);
    if (s->len == n && !memcmp(s->key, k, n)) {
        *known = true;
    } else if ((rc = store_device_known(a->known_rd, app, dev, known)) == 0 &&
               *known) {
        memcpy(s->key, k, n);
        s->len = (uint16_t)n;
    }
    pthread_mutex_unlock(&a->known_mu);
    return rc;
}
