/*
 * push.c: the app registry, the gateway callbacks and the service's life
 * cycle.  The HTTP API lives in push_http.c, the gateway-backed sink in
 * push_gw.c (kept apart so unit tests can run the API without a gateway).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/token.h"
#include "ev/ev.h"
#include "push/push_int.h"

const char *push_strerror(int err) {
    switch (err) {
    case PUSH_E_OK: return "ok";
    case PUSH_E_NOMEM: return "out of memory";
    case PUSH_E_INVALID: return "invalid app name, secret, key or spec";
    case PUSH_E_EXISTS: return "app or API key already registered";
    case PUSH_E_STATE: return "wrong life-cycle state";
    case PUSH_E_SYS: return "system call failed";
    default: return "unknown push error";
    }
}

void push_config_defaults(push_config_t *c) {
    memset(c, 0, sizeof *c);
    c->http_host = "127.0.0.1";
    c->http_port = 8080;
    c->max_payload = 4096;
    /* Room for a multi push naming PUSH_MAX_DEVICES ids of the longest
     * form (128 chars, quoted, comma) plus 64 KiB for the rest; the input
     * buffer grows only as far as a request needs. */
    c->max_body = PUSH_MAX_DEVICES * (128 + 4) + 65536;
    c->head_timeout = 10;
    c->idle_timeout = 60;
    c->max_conns = 1024;
    c->max_ttl = 30 * 86400;
    c->tars_port = -1; /* herald serve turns it on (10000) */
    c->tars_max_conns = 64;
    c->tars_idle_timeout = 60;

    c->rate_app = 100000;
}

/* The store's done()s answer API calls: each wakes the HTTP or TARS loop
 * that made it.  Held around a batch, each loop is woken once. */
static void store_batch(void *ctx, bool begin) {
    (void)ctx;
    if (begin) ev_async_hold();
    else ev_async_flush();
}

push_service_t *push_service_new(const push_config_t *cfg) {
    push_service_t *ps = calloc(1, sizeof *ps);
    if (!ps) return NULL;
    if (cfg)
        ps->cfg = *cfg;
    else
        push_config_defaults(&ps->cfg);
    ps->host = strdup(ps->cfg.http_host ? ps->cfg.http_host : "127.0.0.1");
    if (!ps->host) {
        free(ps);
        return NULL;
    }
    ps->cfg.http_host = ps->host;
    ps->cfg.tars_host = NULL; /* the caller's string may not outlive us */
    if (cfg && cfg->tars_host && !(ps->tars_host = strdup(cfg->tars_host))) {
        free(ps->host);
        free(ps);
        return NULL;
    }
    ps->cfg.tars_host = ps->tars_host ? ps->tars_host : ps->host;
    ps->tars_port = -1;
    ps->gwi.ctx = ps;
    ps->gwi.app_secret = push_gw_app_secret;
    ps->gwi.online = push_gw_online;
    ps->gwi.offline = push_gw_offline;
    ps->gwi.ack = push_gw_ack;
    ps->gwi.sync = push_gw_sync;
    ps->gwi.drained = push_gw_drained;
    ps->gwi.revoked = push_gw_revoked;
    ps->gwi.fetch = push_gw_fetch;
    ps->gwi.acked = push_gw_acked;
    ps->http_port = -1;
    pthread_rwlock_init(&ps->reg_mu, NULL);
    if (ps->cfg.store) store_set_done_hook(ps->cfg.store, store_batch, NULL);
    return ps;
}

/* ---- registry ------------------------------------------------------------ */

static bool key_valid(const char *k, size_t n) {
    if (n == 0 || n > PUSH_KEY_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (k[i] <= ' ' || k[i] > '~') return false;
    return true;
}

static push_app_t *find_app(const push_service_t *ps, const char *name) {
    for (int i = 0; i < ps->napps; i++)
        if (!strcmp(ps->apps[i].name, name)) return &ps->apps[i];
    return NULL;
}

/* The key's slot, or -1.  Every candidate of the same length is compared
 * in full, so timing tells an attacker nothing about how much of a key was
 * right.  Caller holds reg_mu. */
static int find_key(const push_service_t *ps, const char *key, size_t len) {
    int found = -1;
    for (int i = 0; i < ps->nkeys; i++) {
        const push_key_t *k = &ps->keys[i];
        if (k->len == len && !CRYPTO_memcmp(k->key, key, len) && found < 0)
            found = i;
    }
    return found;
}

static int add_key(push_service_t *ps, int app_idx, const char *key) {
    size_t n = strlen(key);
    int i = find_key(ps, key, n);
    if (i >= 0) return ps->keys[i].app == app_idx ? 0 : PUSH_E_EXISTS;
    push_key_t *nk = realloc(ps->keys, (ps->nkeys + 1) * sizeof *nk);
    if (!nk) return PUSH_E_NOMEM;
    ps->keys = nk;
    nk[ps->nkeys].key = strdup(key);
    if (!nk[ps->nkeys].key) return PUSH_E_NOMEM;
    nk[ps->nkeys].len = n;
    nk[ps->nkeys].app = app_idx;
    ps->nkeys++;
    return 0;
}

static int set_secret(push_app_t *a, const char *secret, size_t slen) {
    uint8_t *s = malloc(slen);
    if (!s) return PUSH_E_NOMEM;
    memcpy(s, secret, slen);
    if (a->secret) {
        OPENSSL_cleanse(a->secret, a->secret_len);
        free(a->secret);
    }
    a->secret = s;
    a->secret_len = slen;
    return 0;
}

static int new_app(push_service_t *ps, const char *name, const char *secret,
                   size_t slen) {
    push_app_t *na = realloc(ps->apps, (ps->napps + 1) * sizeof *na);
    if (!na) return PUSH_E_NOMEM;
    ps->apps = na;
    push_app_t *a = &na[ps->napps];
    memset(a, 0, sizeof *a);
    if (!(a->name = strdup(name)) || set_secret(a, secret, slen) < 0) {
        free(a->name);
        return PUSH_E_NOMEM;
    }
    return ps->napps++;
}

static void free_app(push_app_t *a) {
    OPENSSL_cleanse(a->secret, a->secret_len);
    free(a->secret);
    free(a->name);
}

/* push_app_add (replace false) and push_app_put (true), under reg_mu. */
static int app_add(push_service_t *ps, const char *name, const char *secret,
                   const char *api_key, bool replace) {
    if (!name || !secret || !api_key || !token_app_valid(name, strlen(name)))
        return PUSH_E_INVALID;
    size_t slen = strlen(secret);
    if (slen == 0 || slen > PUSH_SECRET_MAX ||
        !key_valid(api_key, strlen(api_key)))
        return PUSH_E_INVALID;
    push_app_t *a = find_app(ps, name);
    if (a) {
        int idx = (int)(a - ps->apps);
        if (a->secret_len == slen && !memcmp(a->secret, secret, slen))
            return add_key(ps, idx, api_key);
        /* Without replace, never a silent secret swap. */
        if (!replace) return PUSH_E_EXISTS;
        int i = find_key(ps, api_key, strlen(api_key));
        if (i >= 0 && ps->keys[i].app != idx) return PUSH_E_EXISTS;
        int rc = set_secret(a, secret, slen);
        return rc < 0 ? rc : add_key(ps, idx, api_key);
    }
    if (find_key(ps, api_key, strlen(api_key)) >= 0) return PUSH_E_EXISTS;
    int idx = new_app(ps, name, secret, slen);
    if (idx < 0) return idx;
    int rc = add_key(ps, idx, api_key);
    if (rc < 0) free_app(&ps->apps[--ps->napps]);
    return rc;
}

int push_app_add(push_service_t *ps, const char *name, const char *secret,
                 const char *api_key) {
    pthread_rwlock_wrlock(&ps->reg_mu);
    int rc = app_add(ps, name, secret, api_key, false);
    pthread_rwlock_unlock(&ps->reg_mu);
    return rc;
}

int push_app_put(push_service_t *ps, const char *name, const char *secret,
                 const char *api_key) {
    pthread_rwlock_wrlock(&ps->reg_mu);
    int rc = app_add(ps, name, secret, api_key, true);
    pthread_rwlock_unlock(&ps->reg_mu);
    return rc;
}

void push_app_drop_key(push_service_t *ps, const char *api_key) {
    pthread_rwlock_wrlock(&ps->reg_mu);
    int i = find_key(ps, api_key, strlen(api_key));
    if (i >= 0) {
        OPENSSL_cleanse(ps->keys[i].key, ps->keys[i].len);
        free(ps->keys[i].key);
        ps->keys[i] = ps->keys[--ps->nkeys];
    }
    pthread_rwlock_unlock(&ps->reg_mu);
}

int push_app_add_spec(push_service_t *ps, const char *spec) {
    const char *c1 = spec ? strchr(spec, ':') : NULL;
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2 || c1 == spec || c2 == c1 + 1 || !c2[1]) return PUSH_E_INVALID;
    char name[TOKEN_APP_MAX + 1], secret[PUSH_SECRET_MAX + 1];
    size_t nl = (size_t)(c1 - spec), sl = (size_t)(c2 - c1 - 1);
    if (nl > TOKEN_APP_MAX || sl > PUSH_SECRET_MAX) return PUSH_E_INVALID;
    memcpy(name, spec, nl);
    name[nl] = 0;
    memcpy(secret, c1 + 1, sl);
    secret[sl] = 0;
    int rc = push_app_add(ps, name, secret, c2 + 1);
    OPENSSL_cleanse(secret, sizeof secret);
    return rc;
}

/* The registry is const to readers, but its lock is not. */
static pthread_rwlock_t *reg_lock(const push_service_t *ps) {
    return &((push_service_t *)ps)->reg_mu;
}

int push_app_count(const push_service_t *ps) {
    pthread_rwlock_rdlock(reg_lock(ps));
    int n = ps->napps;
    pthread_rwlock_unlock(reg_lock(ps));
    return n;
}

/* Names are never freed before push_service_free, so the pointer stays
 * valid after the lock is let go. */
const char *push_app_by_key(const push_service_t *ps, const char *key,
                            size_t key_len) {
    pthread_rwlock_rdlock(reg_lock(ps));
    int i = find_key(ps, key, key_len);
    const char *name = i >= 0 ? ps->apps[ps->keys[i].app].name : NULL;
    pthread_rwlock_unlock(reg_lock(ps));
    return name;
}

int push_app_secret(const push_service_t *ps, const char *app, uint8_t *out,
                    size_t cap) {
    pthread_rwlock_rdlock(reg_lock(ps));
    const push_app_t *a = find_app(ps, app);
    int n = -1;
    if (a && a->secret_len <= cap) {
        memcpy(out, a->secret, a->secret_len);
        n = (int)a->secret_len;
    }
    pthread_rwlock_unlock(reg_lock(ps));
    return n;
}

/* ---- gateway callbacks ---------------------------------------------------- */

int push_gw_app_secret(void *ctx, const char *app, uint8_t *out, size_t cap) {
    int n = push_app_secret(ctx, app, out, cap);
    return n >= 0 ? n : push_auth_secret(ctx, app, out, cap);
}

void push_gw_online(void *ctx, const gw_device_t *d) {
    push_service_t *ps = ctx;
    push_auth_saw(ps, d->app, d->device);
    push_sync_online(ps, d, push_online_set(ps, d, true));
    atomic_fetch_add_explicit(&ps->n_online, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ps->n_online_ev, 1, memory_order_relaxed);
}

void push_gw_offline(void *ctx, const gw_device_t *d, int reason) {
    push_service_t *ps = ctx;
    (void)reason;
    push_online_set(ps, d, false);
    atomic_fetch_sub_explicit(&ps->n_online, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ps->n_offline_ev, 1, memory_order_relaxed);
}

void push_gw_ack(void *ctx, const gw_device_t *d, int64_t inbox_seq,
                 int64_t broadcast_seq) {
    push_service_t *ps = ctx;
    if (inbox_seq > 0 || broadcast_seq > 0)
        push_sync_ack(ps, d, inbox_seq, broadcast_seq);
    atomic_fetch_add_explicit(&ps->n_acks, 1, memory_order_relaxed);
}

/* Like a connect without the registration: the store's cursors and the
 * device's, whichever is further. */
void push_gw_sync(void *ctx, const gw_device_t *d, int64_t inbox_seq,
                  int64_t broadcast_seq) {
    gw_device_t q = *d;
    q.inbox_seq = inbox_seq;
    q.broadcast_seq = broadcast_seq;
    push_sync_online(ctx, &q, push_online_hold(ctx, d->app, d->device));
}

int64_t push_gw_revoked(void *ctx, const char *app, const char *dev) {
    return push_revoked_before(ctx, app, dev);
}

/* A page of a device's backlog has drained: its sync goes on. */
void push_gw_drained(void *ctx, uint64_t token, bool ok) {
    push_sync_resume(ctx, token, ok);
}

/* Online-only messages have no timeline for the store's ACK to walk:
 * their acks are status counts, summed like routed/written. */
void push_gw_acked(void *ctx, const char *app, const char *msg_id) {
    (void)app;
    push_status_add(ctx, msg_id, STORE_EV_ACKED, 1);
}

int push_gw_fetch(void *ctx, const gw_device_t *d, int64_t inbox_seq,
                  int64_t broadcast_seq, uint32_t limit, uint64_t token) {
    push_service_t *ps = ctx;
    if (!ps->sink.sync_answer) return -1;
    gw_device_t q = *d;
    q.inbox_seq = inbox_seq;
    q.broadcast_seq = broadcast_seq;
    return push_sync_fetch(ps, &q, limit, token);
}

const gw_service_t *push_service_gw_iface(push_service_t *ps) {
    return &ps->gwi;
}

void push_service_stats(const push_service_t *ps, push_stats_t *out) {
    push_service_t *m = (push_service_t *)ps; /* atomics need non-const */
    memset(out, 0, sizeof *out);
    out->online = atomic_load_explicit(&m->n_online, memory_order_relaxed);
    out->online_events =
        atomic_load_explicit(&m->n_online_ev, memory_order_relaxed);
    out->offline_events =
        atomic_load_explicit(&m->n_offline_ev, memory_order_relaxed);
    out->acks = atomic_load_explicit(&m->n_acks, memory_order_relaxed);
    out->http_requests = atomic_load_explicit(&m->n_http, memory_order_relaxed);
    out->http_errors =
        atomic_load_explicit(&m->n_http_err, memory_order_relaxed);
    out->pushes = atomic_load_explicit(&m->n_pushes, memory_order_relaxed);
    out->delivered =
        atomic_load_explicit(&m->n_delivered, memory_order_relaxed);
}

/* ---- life cycle ------------------------------------------------------------ */

int push_service_start_sink(push_service_t *ps, const push_sink_t *sink) {
    if (ps->started) return -EALREADY;
    ps->sink = *sink;
    int rc = ps->auth ? 0 : push_auth_new(ps);
    if (rc < 0) return rc == PUSH_E_NOMEM ? -ENOMEM : -EIO;
    if (ps->cfg.store && !ps->sync && (rc = push_sync_start(ps)) < 0) return rc;
    if (!ps->revoke && (rc = push_revoke_start(ps)) < 0) return rc;
    ps->started = true;
    if ((rc = push_http_start(ps)) < 0) {
        ps->started = false;
        ps->start_failed = "push API";
        return rc;
    }
    if (ps->cfg.tars_port >= 0 && (rc = push_tars_start(ps)) < 0) {
        push_http_stop(ps);
        ps->started = false;
        ps->start_failed = "TARS";
        return rc;
    }
    return 0;
}

const char *push_service_start_failed(const push_service_t *ps, int *port) {
    bool tars = ps->start_failed && !strcmp(ps->start_failed, "TARS");
    *port = tars ? ps->cfg.tars_port : ps->cfg.http_port;
    return ps->start_failed ? ps->start_failed : "push API";
}

int push_service_tars_port(const push_service_t *ps) { return ps->tars_port; }

int push_service_http_port(const push_service_t *ps) { return ps->http_port; }

/* Both API loops finish the calls waiting for the store before they stop,
 * so every accepted push (and revocation) is answered; then the threads
 * behind them stop. */
void push_service_stop(push_service_t *ps) {
    if (!ps || !ps->started) return;
    push_tars_stop(ps);
    push_http_stop(ps);
    push_revoke_stop(ps);
    push_sync_stop(ps);
    ps->started = false;
}

void push_service_free(push_service_t *ps) {
    if (!ps) return;
    push_service_stop(ps);
    push_sync_free(ps);
    push_revoke_free(ps);
    push_auth_free(ps);
    for (int i = 0; i < ps->napps; i++) free_app(&ps->apps[i]);
    for (int i = 0; i < ps->nkeys; i++) {
        OPENSSL_cleanse(ps->keys[i].key, ps->keys[i].len);
        free(ps->keys[i].key);
    }
    free(ps->apps);
    free(ps->keys);
    free(ps->host);
    free(ps->tars_host);
    pthread_rwlock_destroy(&ps->reg_mu);
    free(ps);
}
