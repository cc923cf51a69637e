/*
 * The SQLite backend's entry in the store's backend table
 * (store_backend.h): each wrapper only names the backend's own types,
 * so the public API can hold the store and its readers opaquely.
 */
#include "store/store_int.h"

static int b_open(const store_config_t *cfg, void **be) {
    store_sq_t *st = NULL;
    int rc = store_sq_open(cfg, &st);
    *be = st;
    return rc;
}
static void b_close(void *be) { store_sq_close(be); }
static int b_submit(void *be, store_req_t *req) {
    return store_sq_submit(be, req);
}
static void b_count(void *be, const char *id, int ev, long n) {
    store_sq_count(be, id, ev, n);
}
static void b_done_hook(void *be, void (*fn)(void *, bool), void *ctx) {
    store_sq_set_done_hook(be, fn, ctx);
}
static void b_observer(void *be, store_observe_fn fn, void *ctx) {
    store_sq_set_observer(be, fn, ctx);
}
static void b_pause(void *be, bool paused) { store_sq_pause(be, paused); }
static void b_stats(void *be, store_stats_t *out) { store_sq_stats(be, out); }
static int b_fault(const void *be) { return store_sq_fault(be); }
static int b_reader_new(void *be, void **r) {
    store_sq_reader_t *rd = NULL;
    int rc = store_sq_reader_new(be, &rd);
    *r = rd;
    return rc;
}
static void b_reader_free(void *r) { store_sq_reader_free(r); }
static int b_ping(void *r) { return store_sq_ping(r); }
static int b_inbox_fetch(void *r, const char *app, const char *dev,
                         int64_t after, uint32_t limit, int64_t now,
                         store_rows_t *out) {
    return store_sq_inbox_fetch(r, app, dev, after, limit, now, out);
}
static int b_bcast_fetch(void *r, const char *app, int64_t after,
                         uint32_t limit, int64_t now, store_rows_t *out) {
    return store_sq_bcast_fetch(r, app, after, limit, now, out);
}
static int b_device_info(void *r, const char *app, const char *dev,
                         store_device_info_t *out) {
    return store_sq_device_info(r, app, dev, out);
}
static int b_device_count(void *r, const char *app, int64_t *out) {
    return store_sq_device_count(r, app, out);
}
static int b_device_known(void *r, const char *app, const char *dev,
                          bool *known) {
    return store_sq_device_known(r, app, dev, known);
}
static int b_status_get(void *r, const char *id, store_status_t *out) {
    return store_sq_status_get(r, id, out);
}
static int b_app_create(void *be, const char *name, int ud, store_app_t *app,
                        char *key, size_t cap) {
    return store_sq_app_create(be, name, ud, app, key, cap);
}
static int b_app_rotate_key(void *be, const char *name, char *key, size_t cap) {
    return store_sq_app_rotate_key(be, name, key, cap);
}
static int b_app_put(void *be, const char *name, const char *secret,
                     const char *key) {
    return store_sq_app_put(be, name, secret, key);
}
static int b_app_revoke_key(void *be, const char *name, const char *key) {
    return store_sq_app_revoke_key(be, name, key);
}
static int b_app_set_unknown(void *be, const char *name, int mode) {
    return store_sq_app_set_unknown_device(be, name, mode);
}
static int b_app_get(void *r, const char *name, store_app_t *out) {
    return store_sq_app_get(r, name, out);
}
static int b_app_by_key(void *r, const char *key, store_app_t *out) {
    return store_sq_app_by_key(r, key, out);
}
static int b_app_list(void *r, void (*fn)(void *, const store_app_t *, int),
                      void *ctx) {
    return store_sq_app_list(r, fn, ctx);
}
static int b_device_revoke(void *be, const char *app, const char *dev,
                           int64_t before_s, int64_t *out) {
    return store_sq_device_revoke(be, app, dev, before_s, out);
}
static int b_revocations(void *r, int64_t since_s,
                         void (*fn)(void *, const char *, const char *,
                                    int64_t),
                         void *ctx) {
    return store_sq_revocations(r, since_s, fn, ctx);
}

const store_backend_t store_sqlite_backend = {
    .name = "sqlite",
    .open = b_open,
    .close = b_close,
    .submit = b_submit,
    .count = b_count,
    .set_done_hook = b_done_hook,
    .set_observer = b_observer,
    .pause = b_pause,
    .stats = b_stats,
    .fault = b_fault,
    .reader_new = b_reader_new,
    .reader_free = b_reader_free,
    .ping = b_ping,
    .inbox_fetch = b_inbox_fetch,
    .bcast_fetch = b_bcast_fetch,
    .device_info = b_device_info,
    .device_count = b_device_count,
    .device_known = b_device_known,
    .status_get = b_status_get,
    .app_create = b_app_create,
    .app_rotate_key = b_app_rotate_key,
    .app_put = b_app_put,
    .app_revoke_key = b_app_revoke_key,
    .app_set_unknown_device = b_app_set_unknown,
    .app_get = b_app_get,
    .app_by_key = b_app_by_key,
    .app_list = b_app_list,
    .device_revoke = b_device_revoke,
    .revocations = b_revocations,
};
