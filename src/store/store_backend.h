/*
 * store_backend: the seam between the store's public API (store.h, what
 * push/ and the CLI call) and a backend that keeps the data: SQLite in
 * one file today (store_sq_*.c), Redis Cluster next.  store.c forwards
 * every public call to the backend the config names; a backend fills one
 * store_backend_t and is listed in store.c.
 *
 * The contract each entry must keep is docs/store.md "Backend contract";
 * in short: a write request's done() runs exactly once, on a thread of the
 * backend's, only once its effect is durable (or failed), in submission
 * order per queue; reads never wait unbounded for writes; errors are
 * store_err codes.  `be` is the backend's store, `r` its reader (one per
 * thread), both opaque here.
 */
#ifndef HERALD_STORE_BACKEND_H
#define HERALD_STORE_BACKEND_H

#include "store/store.h"

typedef struct store_backend {
    const char *name; /* store_config_t.backend */
    int (*open)(const store_config_t *cfg, void **be);
    void (*close)(void *be);
    /* writes */
    int (*submit)(void *be, store_req_t *req);
    void (*count)(void *be, const char *msg_id, int event, long n);
    void (*set_done_hook)(void *be, void (*fn)(void *ctx, bool begin),
                          void *ctx);
    void (*set_observer)(void *be, store_observe_fn fn, void *ctx);
    void (*pause)(void *be, bool paused);
    void (*stats)(void *be, store_stats_t *out);
    int (*fault)(const void *be);
    /* reads */
    int (*reader_new)(void *be, void **r);
    void (*reader_free)(void *r);
    int (*ping)(void *r);
    int (*inbox_fetch)(void *r, const char *app, const char *device,
                       int64_t after, uint32_t limit, int64_t now_ms,
                       store_rows_t *out);
    int (*bcast_fetch)(void *r, const char *app, int64_t after, uint32_t limit,
                       int64_t now_ms, store_rows_t *out);
    int (*device_info)(void *r, const char *app, const char *device,
                       store_device_info_t *out);
    int (*device_count)(void *r, const char *app, int64_t *out);
    int (*device_known)(void *r, const char *app, const char *device,
                        bool *known);
    int (*status_get)(void *r, const char *msg_id, store_status_t *out);
    /* applications and revocations (rare, synchronous) */
    int (*app_create)(void *be, const char *name, int unknown_device,
                      store_app_t *app, char *key_out, size_t cap);
    int (*app_rotate_key)(void *be, const char *name, char *key_out,
                          size_t cap);
    int (*app_put)(void *be, const char *name, const char *secret,
                   const char *api_key);
    int (*app_revoke_key)(void *be, const char *name, const char *api_key);
    int (*app_set_unknown_device)(void *be, const char *name, int mode);
    int (*app_get)(void *r, const char *name, store_app_t *out);
    int (*app_by_key)(void *r, const char *api_key, store_app_t *out);
    int (*app_list)(void *r,
                    void (*fn)(void *ctx, const store_app_t *app, int n_keys),
                    void *ctx);
    int (*device_revoke)(void *be, const char *app, const char *device,
                         int64_t before_s, int64_t *out);
    int (*revocations)(void *r, int64_t since_s,
                       void (*fn)(void *ctx, const char *app,
                                  const char *device, int64_t before_s),
                       void *ctx);
} store_backend_t;

/* The SQLite backend (store_sq_backend.c). */
extern const store_backend_t store_sqlite_backend;

/* The rows' own strings and payloads, not the array (store_rows_free
 * frees both). */
void store_rows_free_items(store_rows_t *rows);

/* For a backend's open: what store_open_error() says of the failure on
 * this thread (a path and the system's reason; printf format). */
void store_open_why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
