/*
 * store: the public API (store.h) over a backend (store_backend.h).  What
 * every backend shares lives here: the error names, the config defaults,
 * the result structs' helpers, the one JSON form of a status record, and
 * the blocking submit on top of the asynchronous one.  Everything else is
 * forwarded to the backend the config names (SQLite: store_sq_*.c).
 */
#include "store/store_backend.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store {
    const store_backend_t *b;
    void *be;
};

struct store_reader {
    const store_backend_t *b;
    void *r;
};

static const store_backend_t *const backends[] = {&store_sqlite_backend};

void store_config_defaults(store_config_t *c) {
    memset(c, 0, sizeof *c);
    c->path = "herald.db";
    c->max_batch = 4096;
    c->max_queue = 200000;
    c->sweep_interval_ms = 1000;
    c->idem_window_s = 86400;
    c->synchronous_full = true;
    c->hot_file_max = 8L << 20;
    c->inbox_max = 10000;
}

/* ---- open and close --------------------------------------------------- */

/* What the last failed store_open on this thread said in words. */
static _Thread_local char open_why[512];

void store_open_why(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(open_why, sizeof open_why, fmt, ap);
    va_end(ap);
}

const char *store_open_error(int rc) {
    return open_why[0] ? open_why : herald_strerror(rc);
}

int store_open(const store_config_t *cfg, store_t **out) {
    open_why[0] = 0;
    const char *name =
        cfg && cfg->backend && *cfg->backend ? cfg->backend : "sqlite";
    const store_backend_t *b = NULL;
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (!strcmp(backends[i]->name, name)) b = backends[i];
    if (!b) {
        store_open_why("no store backend named '%.64s'", name);
        return STORE_E_INVALID;
    }
    store_t *st = calloc(1, sizeof *st);
    if (!st) return STORE_E_NOMEM;
    st->b = b;
    int rc = b->open(cfg, &st->be);
    if (rc < 0) {
        free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void store_close(store_t *st) {
    if (!st) return;
    st->b->close(st->be);
    free(st);
}

/* ---- writes ------------------------------------------------------------- */

int store_submit(store_t *st, store_req_t *req) {
    return st->b->submit(st->be, req);
}

void store_count(store_t *st, const char *msg_id, int event, long n) {
    if (st) st->b->count(st->be, msg_id, event, n);
}

void store_set_done_hook(store_t *st, void (*fn)(void *ctx, bool begin),
                         void *ctx) {
    st->b->set_done_hook(st->be, fn, ctx);
}

void store_set_observer(store_t *st, store_observe_fn fn, void *ctx) {
    st->b->set_observer(st->be, fn, ctx);
}

void store_pause(store_t *st, bool paused) { st->b->pause(st->be, paused); }

void store_stats(store_t *st, store_stats_t *out) { st->b->stats(st->be, out); }

int store_fault(const store_t *st) { return st->b->fault(st->be); }

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
};

static void wait_done(store_req_t *req, store_done_t *d) {
    struct waiter *w = req->data;
    pthread_mutex_lock(&w->mu);
    w->rc = d->rc;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* The caller's done/data are put back afterwards and done is not called:
 * the return value is the result. */
int store_submit_wait(store_t *st, store_req_t *req) {
    struct waiter w = {.done = false, .rc = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    store_done_fn done = req->done;
    void *data = req->data;
    req->done = wait_done;
    req->data = &w;
    int rc = store_submit(st, req);
    if (rc == 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = w.rc;
    }
    req->done = done;
    req->data = data;
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

/* ---- reads -------------------------------------------------------------- */

int store_reader_new(store_t *st, store_reader_t **out) {
    store_reader_t *r = calloc(1, sizeof *r);
    if (!r) return STORE_E_NOMEM;
    r->b = st->b;
    int rc = st->b->reader_new(st->be, &r->r);
    if (rc < 0) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void store_reader_free(store_reader_t *r) {
    if (!r) return;
    r->b->reader_free(r->r);
    free(r);
}

int store_ping(store_reader_t *r) { return r->b->ping(r->r); }

int store_inbox_fetch(store_reader_t *r, const char *app, const char *device,
                      int64_t after, uint32_t limit, int64_t now_ms,
                      store_rows_t *out) {
    return r->b->inbox_fetch(r->r, app, device, after, limit, now_ms, out);
}

int store_bcast_fetch(store_reader_t *r, const char *app, int64_t after,
                      uint32_t limit, int64_t now_ms, store_rows_t *out) {
    return r->b->bcast_fetch(r->r, app, after, limit, now_ms, out);
}

int store_device_info(store_reader_t *r, const char *app, const char *device,
                      store_device_info_t *out) {
    return r->b->device_info(r->r, app, device, out);
}

int store_device_count(store_reader_t *r, const char *app, int64_t *out) {
    return r->b->device_count(r->r, app, out);
}

int store_device_known(store_reader_t *r, const char *app, const char *device,
                       bool *known) {
    return r->b->device_known(r->r, app, device, known);
}

int store_status_get(store_reader_t *r, const char *msg_id,
                     store_status_t *out) {
    return r->b->status_get(r->r, msg_id, out);
}

/* ---- applications and revocations ------------------------------------- */

int store_app_create(store_t *st, const char *name, int unknown_device,
                     store_app_t *app, char *key_out, size_t cap) {
    return st->b->app_create(st->be, name, unknown_device, app, key_out, cap);
}

int store_app_rotate_key(store_t *st, const char *name, char *key_out,
                         size_t cap) {
    return st->b->app_rotate_key(st->be, name, key_out, cap);
}

int store_app_put(store_t *st, const char *name, const char *secret,
                  const char *api_key) {
    return st->b->app_put(st->be, name, secret, api_key);
}

int store_app_revoke_key(store_t *st, const char *name, const char *api_key) {
    return st->b->app_revoke_key(st->be, name, api_key);
}

int store_app_set_unknown_device(store_t *st, const char *name, int mode) {
    return st->b->app_set_unknown_device(st->be, name, mode);
}

int store_app_get(store_reader_t *r, const char *name, store_app_t *out) {
    return r->b->app_get(r->r, name, out);
}

int store_app_by_key(store_reader_t *r, const char *api_key, store_app_t *out) {
    return r->b->app_by_key(r->r, api_key, out);
}

int store_app_list(store_reader_t *r,
                   void (*fn)(void *ctx, const store_app_t *app, int n_keys),
                   void *ctx) {
    return r->b->app_list(r->r, fn, ctx);
}

int store_device_revoke(store_t *st, const char *app, const char *device,
                        int64_t before_s, int64_t *out) {
    return st->b->device_revoke(st->be, app, device, before_s, out);
}

int store_revocations(store_reader_t *r, int64_t since_s,
                      void (*fn)(void *ctx, const char *app, const char *device,
                                 int64_t before_s),
                      void *ctx) {
    return r->b->revocations(r->r, since_s, fn, ctx);
}

/* ---- what every backend's results share ---------------------------------- */

void store_rows_free_items(store_rows_t *rows) {
    for (uint32_t i = 0; i < rows->n; i++) {
        free(rows->rows[i].msg_id);
        free(rows->rows[i].payload);
        free(rows->rows[i].collapse_key);
    }
}

void store_rows_free(store_rows_t *rows) {
    if (!rows) return;
    store_rows_free_items(rows);
    free(rows->rows);
    memset(rows, 0, sizeof *rows);
}

const char *store_event_name(int ev) {
    static const char *const names[STORE_EV_COUNT] = {
        [STORE_EV_ACCEPTED] = "accepted", [STORE_EV_STORED] = "stored",
        [STORE_EV_ROUTED] = "routed",     [STORE_EV_WRITTEN] = "written",
        [STORE_EV_ACKED] = "acked",       [STORE_EV_EXPIRED] = "expired",
        [STORE_EV_DROPPED] = "dropped",
    };
    return ev >= 0 && ev < STORE_EV_COUNT ? names[ev] : "unknown";
}

/* s as a JSON string body: app names and message ids are plain ASCII by
 * their rules, but a record is the store's, so escape what JSON needs. */
static size_t json_str(char *out, size_t cap, const char *s) {
    size_t n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : NULL;
        char u[8];
        if (!esc && c < 0x20) {
            snprintf(u, sizeof u, "\\u%04x", c);
            esc = u;
        }
        size_t k = esc ? strlen(esc) : 1;
        if (n + k < cap) memcpy(out + n, esc ? esc : (const char *)&c, k);
        n += k;
    }
    return n;
}

int store_status_format(const char *msg_id, const store_status_t *s, char *out,
                        size_t cap) {
    static const char *const kinds[] = {"unknown", "single", "multi", "online",
                                        "all"};
    const char *kind = s->kind >= STORE_KIND_SINGLE && s->kind <= STORE_KIND_ALL
                           ? kinds[s->kind]
                           : kinds[0];
    char id[160], app[160];
    if (json_str(id, sizeof id, msg_id) >= sizeof id ||
        json_str(app, sizeof app, s->app) >= sizeof app)
        return -1;
    id[json_str(id, sizeof id, msg_id)] = 0;
    app[json_str(app, sizeof app, s->app)] = 0;
    int n = snprintf(out, cap,
                     "{\"msgId\":\"%s\",\"app\":\"%s\",\"kind\":\"%s\","
                     "\"ttl\":%d,\"targets\":%lld,\"timeline\":{",
                     id, app, kind, (int)s->ttl, (long long)s->targets);
    for (int e = 0; n >= 0 && (size_t)n < cap && e < STORE_EV_COUNT; e++)
        n += snprintf(out + n, cap - (size_t)n,
                      "%s\"%s\":{\"at\":%lld,\"count\":%lld}", e ? "," : "",
                      store_event_name(e), (long long)s->at_ms[e],
                      (long long)s->count[e]);
    if (n >= 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, "}}");
    return n >= 0 && (size_t)n < cap ? n : -1;
}
