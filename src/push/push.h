/*
 * push: the push service, first slice (DESIGN.md §1 "push service").
 *
 * Owns three things:
 *   - the app registry (push_app_*): application name, token secret and API
 *     keys, in memory, filled before start (`herald serve --app
 *     NAME:SECRET:APIKEY`);
 *   - the HTTP/JSON push API (docs/api.md) on its own port and thread, with
 *     its own ev loop: POST /v1/push/device and POST /v1/push/online, which
 *     authenticate the caller by API key and hand messages to the gateway;
 *   - the gateway's gw_service_t (push_service_gw_iface): app secret lookup
 *     for token checks, online/offline/ack counters.
 *
 * With cfg.store set (herald serve always sets it) it also owns durable
 * delivery: the four PushAPI operations (push_ops.c) answered after the
 * store's group commit, over HTTP (push_http.c) and TARS (push_tars.c);
 * API keys looked up in the store (push_auth.c); device sync on connect,
 * acks and status counts on a service thread (push_sync.c).  Without a
 * store (unit tests) pushes are online-only, as in the first slice.
 *
 * Life cycle, as `herald serve` uses it:
 *
 *     push_config_t pc; push_config_defaults(&pc); ...
 *     push_service_t *ps = push_service_new(&pc);
 *     push_app_add_spec(ps, "test:SECRET:KEY");            (per --app)
 *     gw_t *gw = gw_new(&gc, push_service_gw_iface(ps));
 *     gw_start(gw);
 *     push_service_start(ps, gw);          binds, starts the HTTP thread
 *     ... push_service_http_port(ps) ...
 *     push_service_stop(ps);               stops the HTTP thread first,
 *     gw_drain(gw, ms); gw_free(gw);       so nobody pushes into a freed gw
 *     push_service_free(ps);
 *
 * Threads: the registry is guarded by a read-write lock: gateway workers
 * read it at each device login, `herald serve` writes it at start and on
 * a reload (SIGHUP).  The gw_service_t callbacks run on gateway workers
 * and only touch atomics and short locks.
 */
#ifndef HERALD_PUSH_H
#define HERALD_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/gw.h"

struct ops_mem;

enum push_err {
    PUSH_E_OK = 0,
    PUSH_E_NOMEM = -1,   /* out of memory */
    PUSH_E_INVALID = -2, /* bad name, secret, key or spec */
    PUSH_E_EXISTS = -3,  /* app name or API key already registered */
    PUSH_E_STATE = -4,   /* called in the wrong life-cycle state */
    PUSH_E_SYS = -5,     /* a system call failed (see the log) */
};
const char *push_strerror(int err);

#define PUSH_SECRET_MAX 256 /* bytes of an app's token secret */
#define PUSH_KEY_MAX 256    /* bytes of an API key */

typedef struct push_config {
    const char *http_host;     /* default "127.0.0.1" (safe first run) */
    int http_port;             /* default 8080; 0 = any free port */
    uint32_t max_payload;      /* bytes of a message payload; default 4096 */
    uint32_t max_body;         /* bytes of a request body; default 1,385,536 */
    int head_timeout;          /* seconds to send a request head (HTTP) or a
                               whole frame (TARS); default 10 */
    int idle_timeout;          /* seconds a keep-alive conn may idle; 60 */
    int max_conns;             /* HTTP connections at once; default 1024 */
    int max_conns_per_ip;      /* of them from one address; 0 = half */
    int max_ttl;               /* seconds; default 30 days */
    struct store *store;       /* borrowed; NULL = no storage (online only) */
    const char *tars_host;     /* default: http_host */
    int tars_port;             /* default 10000; 0 = any; -1 = no TARS */
    int tars_max_conns;        /* TARS connections open at once; 64 */
    int tars_max_conns_per_ip; /* of them from one address; 0 = half */
    int tars_idle_timeout;     /* seconds without a call; 60 (0 = none) */

    double rate_app;           /* pushes per second per app; default 100000 */
    double burst;              /* bucket size; default = rate_app */
    const struct ops_mem *mem; /* memory watermark (borrowed): pushes get
                                  503 overloaded while it is crossed */
} push_config_t;

void push_config_defaults(push_config_t *c);

typedef struct push_service push_service_t;

/* NULL on out-of-memory.  cfg is copied (http_host included). */
push_service_t *push_service_new(const push_config_t *cfg);

/* ---- app registry ------------------------------------------------------ */

/* Registers an app with its token secret and one API key; call again with
 * the same name and secret to add another key.  name must be a valid app
 * name (token_app_valid), secret 1..PUSH_SECRET_MAX bytes, api_key
 * 1..PUSH_KEY_MAX printable non-space ASCII.  Any thread, any time.  0 or
 * a negative push_err. */
int push_app_add(push_service_t *ps, const char *name, const char *secret,
                 const char *api_key);
/* "NAME:SECRET:APIKEY" (the --app flag).  SECRET may not hold ':'; the key
 * is everything after the second ':'.  0 or a negative push_err. */
int push_app_add_spec(push_service_t *ps, const char *spec);
/* Like push_app_add, but an existing app's secret is replaced (a reload
 * that changed it): tokens signed with the old secret stop working. */
int push_app_put(push_service_t *ps, const char *name, const char *secret,
                 const char *api_key);
/* Forgets an API key of the registry (a reload dropped it); no-op if
 * unknown.  The store's copy is revoked by the caller. */
void push_app_drop_key(push_service_t *ps, const char *api_key);
/* Number of registered apps. */
int push_app_count(const push_service_t *ps);
/* The app an API key belongs to (its name, owned by ps), or NULL.  Compares
 * keys in constant time per candidate. */
const char *push_app_by_key(const push_service_t *ps, const char *key,
                            size_t key_len);
/* Copies the app's secret into out; its length, or -1 if unknown or cap
 * too small.  (What gw_service_t.app_secret does.) */
int push_app_secret(const push_service_t *ps, const char *app, uint8_t *out,
                    size_t cap);

/* ---- running ------------------------------------------------------------ */

/* The limits a reload may change (SIGHUP), from any thread: rate_app and
 * burst (0 = rate_app) of every app's token bucket, including buckets
 * already in use (their tokens are capped at the new burst at once), and
 * max_payload for the next push.  max_payload must fit the request body
 * limit fixed at start (push_config_t.max_body). */
void push_service_set_limits(push_service_t *ps, double rate_app, double burst,
                             uint32_t max_payload);
/* Drops the API-key cache, so a key revoked in the store stops working at
 * once instead of within its cache lifetime (3 s). */
void push_service_forget_keys(push_service_t *ps);

/* The gateway callbacks, bound to ps; valid until push_service_free. */
const gw_service_t *push_service_gw_iface(push_service_t *ps);

/* Binds the HTTP port and starts its thread; pushes go to gw (borrowed,
 * must outlive push_service_stop).  0 or a negative errno. */
int push_service_start(push_service_t *ps, gw_t *gw);

/* Where pushes go: the gateway in production (push_service_start wraps
 * gw_push_device/gw_push_online in one), a recorder in unit tests, a
 * cluster router later.  Same contracts as the gw_push_* functions: called
 * from the HTTP thread, must only enqueue. */
typedef struct push_sink {
    void *ctx;
    /* 1 if the device is connected (message queued), 0 if not. */
    int (*device)(void *ctx, const char *app, const char *device,
                  const gw_msg_t *m);
    /* Devices of the app targeted now. */
    long (*online)(void *ctx, const char *app, const gw_msg_t *m);
    /* Flow control of a device's stored backlog (gw_push_mark): 1 if the
     * mark was queued behind the pushes sent so far, and the service's
     * drained callback (push_service_gw_iface) follows; 0 if not.  NULL:
     * the connect-time sync sends without waiting. */
    int (*mark)(void *ctx, const char *app, const char *device, uint64_t token);
    /* The device's tokens issued before before_s were revoked: close its
     * connection if its token is one of them (gw_revoke_device).  1 if
     * it has a connection, 0 if not.  NULL: nothing to close. */
    int (*revoke)(void *ctx, const char *app, const char *device,
                  int64_t before_s);
    /* The stored messages a short-lived request's SYNC asked for
     * (gw_sync_answer).  NULL: such a SYNC is answered empty. */
    void (*sync_answer)(void *ctx, uint64_t token, const gw_msg_t *msgs,
                        uint32_t n, bool more);
} push_sink_t;
/* push_service_start with any sink (copied).  0 or a negative errno. */
int push_service_start_sink(push_service_t *ps, const push_sink_t *sink);
/* The bound TARS port, or -1 (not started or disabled). */
int push_service_tars_port(const push_service_t *ps);
/* After a failed start: which listener failed ("push API" or "TARS")
 * and the port it was given. */
const char *push_service_start_failed(const push_service_t *ps, int *port);
/* The bound HTTP port (useful with http_port 0), or -1 before start. */
int push_service_http_port(const push_service_t *ps);
/* Stops the HTTP thread and closes its connections.  Any thread except the
 * HTTP thread; harmless if not started or already stopped. */
void push_service_stop(push_service_t *ps);
/* Stops if needed, then frees. */
void push_service_free(push_service_t *ps);

/* Counters (monotonic unless said; read with relaxed atomics). */
typedef struct push_stats {
    long online; /* devices online now (online - offline events) */
    long online_events;
    long offline_events;
    long acks;
    long http_requests;
    long http_errors; /* answered 4xx/5xx */
    long pushes;      /* accepted push calls */
    long delivered;   /* devices a push was handed to */
} push_stats_t;
void push_service_stats(const push_service_t *ps, push_stats_t *out);

#endif
