/*
 * ops_admin: the admin HTTP listener (DESIGN.md §5), on its own thread and
 * event loop, by default on 127.0.0.1:9100 only (never public unless the
 * operator says so).
 *
 *   GET /metrics            Prometheus text 0.0.4 (metrics_render)
 *   GET /healthz            200 "ok" while the process answers
 *   GET /readyz             200 {"ready":true}, or 503 {"ready":false,
 *                           "reason":...} when draining, listeners are
 *                           down, memory is over its watermark
 *                           ("overloaded"), or the store is unreachable
 *   GET /dashboard[/FILE]   the live dashboard page and its assets,
 *                           embedded in the binary (no internet needed)
 *   GET /api/stats          JSON snapshot for the dashboard: connections,
 *                           pushes/s, deliveries/s, p50/p99 delivery
 *                           latency, error rate per device command
 *   GET /api/messages/ID    a message's timeline from the push service's
 *                           callback (501 while none is set, 404 unknown)
 *
 * Each connection serves one request and closes (Connection: close): the
 * admin port sees a scrape every few seconds, not traffic worth keep-alive.
 */
#ifndef HERALD_OPS_ADMIN_H
#define HERALD_OPS_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

struct ops_mem;

#define OPS_ADMIN_PORT 9100
#define OPS_ADMIN_MAX_CONNS 64

typedef struct ops_admin_config {
    const char *host; /* default "127.0.0.1" */
    int port;         /* default OPS_ADMIN_PORT; 0 = any free port */
    void *ctx;        /* passed to the callbacks */
    /* All optional; called on the admin thread, so they must be
     * thread-safe and quick. */
    /* 0 if the store answers, else negative with a short reason in why. */
    int (*store_ready)(void *ctx, char *why, size_t cap);
    /* Whether the device and API listeners are up. */
    bool (*listeners_up)(void *ctx);
    /* The timeline of message id as a malloc'd JSON text in *json_out.
     * 0, -ENOENT (unknown id) or another negative errno. */
    int (*message_timeline)(void *ctx, const char *msg_id, char **json_out);
    /* The memory watermark (borrowed; NULL = none): /readyz answers 503
     * "overloaded" while it is crossed. */
    const struct ops_mem *mem;
} ops_admin_config_t;

void ops_admin_config_defaults(ops_admin_config_t *c);

typedef struct ops_admin ops_admin_t;

/* NULL on out-of-memory; cfg is copied (host included).  Registers
 * herald's metric families (metrics_herald_init). */
ops_admin_t *ops_admin_new(const ops_admin_config_t *cfg);
/* Binds and starts the thread.  0 or a negative errno. */
int ops_admin_start(ops_admin_t *a);
/* The bound port (useful with port 0), -1 before start. */
int ops_admin_port(const ops_admin_t *a);
/* /readyz answers 503 "draining" from now on (any thread). */
void ops_admin_set_draining(ops_admin_t *a, bool draining);
/* Stops the thread and closes every connection; harmless twice. */
void ops_admin_stop(ops_admin_t *a);
void ops_admin_free(ops_admin_t *a);

#endif
