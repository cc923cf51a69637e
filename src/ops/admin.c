/*
 * ops_admin: the admin listener behind admin.h.  One thread, one ev loop,
 * one request per connection.  Besides serving, the thread takes a
 * snapshot of the dashboard's figures every second into a ring, so
 * /api/stats can answer rates and windowed quantiles without any state in
 * the hot path: the registry only ever counts up.
 */
#include "ops/admin.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "ev/ev.h"
#include "ev/lpause.h"
#include "gateway/http.h"
#include "ops/assets.h"
#include "ops/metrics.h"
#include "ops/metrics_herald.h"
#include "ops/ops_mem.h"

#define CONN_TIMEOUT_MS 10000
#define TICK_MS 1000
#define RING 64 /* snapshots kept: a bit over a minute */
#define RATE_WINDOW_MS 5000
#define QUANT_WINDOW_MS 60000
#define MSG_ID_MAX 128

/* The dashboard's figures at one instant (counters only grow). */
typedef struct snap {
    uint64_t t_ms;
    uint64_t pushes, deliveries, acks, connects, disconnects;
    uint64_t cmd[MH_NCMDS][5];
    metrics_hist_t written, acked;
} snap_t;

typedef struct aconn {
    ev_io_t io;
    ev_timer_t timer;
    struct ops_admin *a;
    struct aconn *prev, *next;
    http_req_t req;
    uint16_t inlen;
    bool responding;
    metrics_buf_t out;
    size_t outoff;
    char in[HTTP_MAX_HEAD];
} aconn_t;

struct ops_admin {
    ops_admin_config_t cfg;
    char host[64];
    int port;
    int lfd;
    ev_loop_t *loop;
    ev_io_t lio;
    lpause_t lpause; /* the listener's back-off, out of descriptors */
    ev_async_t stop_async;
    ev_timer_t tick;
    pthread_t thread;
    bool started;
    atomic_bool draining;
    aconn_t *conns;
    int nconns;
    snap_t ring[RING];
    unsigned ring_n; /* snapshots taken; the newest is ring[(n-1)%RING] */
};

void ops_admin_config_defaults(ops_admin_config_t *c) {
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = OPS_ADMIN_PORT;
}

/* ---- snapshots ------------------------------------------------------------ */

static uint64_t mono_ms(void) { return mh_mono_us() / 1000; }

static void snap_take(snap_t *s) {
    memset(s, 0, sizeof *s);
    s->t_ms = mono_ms();
    s->pushes = metrics_counter_sum(M_PUSHES);
    s->deliveries = metrics_counter_sum(M_DELIVERIES);
    s->acks = metrics_counter_sum(M_ACKS);
    s->connects = metrics_counter_sum(M_CONNECTS);
    s->disconnects = metrics_counter_sum(M_DISCONNECTS);
    for (unsigned c = 0; c < MH_NCMDS; c++)
        for (unsigned r = 0; r < 5; r++)
            s->cmd[c][r] = metrics_counter_get(M_DEVICE_CMDS, c, r);
    metrics_hist_get(M_DELIVERY_WRITTEN, UINT32_MAX, UINT32_MAX, &s->written);
    metrics_hist_get(M_DELIVERY_ACKED, UINT32_MAX, UINT32_MAX, &s->acked);
}

static void on_tick(ev_loop_t *loop, ev_timer_t *t) {
    ops_admin_t *a = ev_container_of(t, ops_admin_t, tick);
    snap_take(&a->ring[a->ring_n % RING]);
    a->ring_n++;
    ev_timer_start(loop, &a->tick, TICK_MS);
}

/* The oldest snapshot taken at or after now - window (the newest one if
 * all are older). */
static const snap_t *snap_since(const ops_admin_t *a, uint64_t now,
                                uint64_t window) {
    unsigned kept = a->ring_n < RING ? a->ring_n : RING;
    const snap_t *best = &a->ring[(a->ring_n - 1) % RING];
    for (unsigned k = 1; k <= kept; k++) {
        const snap_t *s = &a->ring[(a->ring_n - k) % RING];
        if (s->t_ms + window < now) break;
        best = s;
    }
    return best;
}

static json_t *json_num(double v) {
    return isnan(v) ? json_null() : json_real(v);
}

static double rate(uint64_t now_v, uint64_t then_v, uint64_t dt_ms) {
    return dt_ms ? (double)(now_v - then_v) * 1000.0 / (double)dt_ms : 0;
}

static json_t *latency_json(const metrics_hist_t *now_h,
                            const metrics_hist_t *then_h) {
    metrics_hist_t d;
    metrics_hist_sub(now_h, then_h, &d);
    json_t *j = json_object();
    json_object_set_new(j, "p50",
                        json_num(metrics_hist_quantile(&d, 0.5) / 1e3));
    json_object_set_new(j, "p99",
                        json_num(metrics_hist_quantile(&d, 0.99) / 1e3));
    json_object_set_new(j, "count", json_integer((json_int_t)d.count));
    return j;
}

static json_t *commands_json(const snap_t *now, const snap_t *then) {
    json_t *j = json_object();
    for (unsigned c = 0; c < MH_NCMDS; c++) {
        uint64_t total = 0, errors = 0, all = 0;
        for (unsigned r = 0; r < 5; r++) {
            uint64_t d = now->cmd[c][r] - then->cmd[c][r];
            total += d;
            all += now->cmd[c][r];
            if (r != MH_RES_OK) errors += d;
        }
        json_t *o = json_object();
        json_object_set_new(o, "total", json_integer((json_int_t)all));
        json_object_set_new(o, "window", json_integer((json_int_t)total));
        json_object_set_new(o, "errors", json_integer((json_int_t)errors));
        json_object_set_new(o, "error_rate",
                            total ? json_real((double)errors / (double)total)
                                  : json_real(0));
        json_object_set_new(j, metrics_label_value(M_DEVICE_CMDS, 0, c), o);
    }
    return j;
}

static char *stats_json(ops_admin_t *a) {
    snap_t now;
    snap_take(&now);
    const snap_t *r = snap_since(a, now.t_ms, RATE_WINDOW_MS);
    const snap_t *q = snap_since(a, now.t_ms, QUANT_WINDOW_MS);
    uint64_t dt = now.t_ms - r->t_ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *j = json_object();
    json_object_set_new(
        j, "ts",
        json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
    json_object_set_new(j, "connections",
                        json_integer(metrics_gauge_sum(M_CONNECTIONS)));
    json_t *tot = json_object();
    json_object_set_new(tot, "pushes", json_integer((json_int_t)now.pushes));
    json_object_set_new(tot, "deliveries",
                        json_integer((json_int_t)now.deliveries));
    json_object_set_new(tot, "acks", json_integer((json_int_t)now.acks));
    json_object_set_new(tot, "connects",
                        json_integer((json_int_t)now.connects));
    json_object_set_new(tot, "disconnects",
                        json_integer((json_int_t)now.disconnects));
    json_object_set_new(j, "totals", tot);
    json_object_set_new(j, "pushes_per_s",
                        json_real(rate(now.pushes, r->pushes, dt)));
    json_object_set_new(j, "deliveries_per_s",
                        json_real(rate(now.deliveries, r->deliveries, dt)));
    json_object_set_new(j, "acks_per_s",
                        json_real(rate(now.acks, r->acks, dt)));
    json_object_set_new(j, "window_s",
                        json_real((double)(now.t_ms - q->t_ms) / 1e3));
    json_object_set_new(j, "delivery_latency_ms",
                        latency_json(&now.written, &q->written));
    json_object_set_new(j, "acked_latency_ms",
                        latency_json(&now.acked, &q->acked));
    json_object_set_new(j, "commands", commands_json(&now, q));
    json_object_set_new(j, "draining", json_boolean(atomic_load(&a->draining)));
    json_object_set_new(j, "overloaded",
                        json_boolean(ops_mem_over(a->cfg.mem)));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* ---- connections ---------------------------------------------------------- */

static void conn_free(aconn_t *c) {
    ops_admin_t *a = c->a;
    (void)ev_del(a->loop, &c->io);
    ev_timer_stop(a->loop, &c->timer);
    close(c->io.fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    a->nconns--;
    metrics_buf_free(&c->out);
    free(c);
}

/* Writes what is pending; frees c when done or on error.  Handlers call
 * nothing on c after this. */
static void conn_flush(aconn_t *c) {
    while (c->outoff < c->out.len) {
        ssize_t n = send(c->io.fd, c->out.p + c->outoff, c->out.len - c->outoff,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->outoff += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!(c->io.events & EV_WRITE) &&
                ev_mod(c->a->loop, &c->io, EV_WRITE) < 0)
                break;
            return;
        }
        break;
    }
    conn_free(c);
}

static const char *status_text(int st) {
    switch (st) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* Queues a whole response (head and body, no body for HEAD) and sends. */
static void respond(aconn_t *c, int st, const char *type, const void *body,
                    size_t len) {
    bool head_only = c->req.method == HTTP_M_HEAD;
    metrics_buf_printf(&c->out,
                       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                       "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                       "X-Content-Type-Options: nosniff\r\n"
                       "Connection: close\r\n\r\n",
                       st, status_text(st), type, len);
    if (!head_only && len) {
        if (!c->out.oom && c->out.cap - c->out.len < len) {
            size_t cap = c->out.len + len;
            char *p = realloc(c->out.p, cap);
            if (!p)
                c->out.oom = true;
            else {
                c->out.p = p;
                c->out.cap = cap;
            }
        }
        if (!c->out.oom) {
            memcpy(c->out.p + c->out.len, body, len);
            c->out.len += len;
        }
    }
    if (c->out.oom) {
        conn_free(c);
        return;
    }
    c->responding = true;
    conn_flush(c);
}

static void respond_json(aconn_t *c, int st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void respond_json(aconn_t *c, int st, const char *fmt, ...) {
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof body) n = sizeof body - 1;
    respond(c, st, "application/json", body, (size_t)n);
}

static void serve_metrics(aconn_t *c) {
    metrics_buf_t b = {0};
    if (metrics_render(&b) < 0) {
        metrics_buf_free(&b);
        respond_json(c, 500, "{\"error\":\"out of memory\"}");
        return;
    }
    respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    metrics_buf_free(&b);
}

/* Copies a reason without characters that would break the JSON string. */
static void json_safe(char *s) {
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20) *s = ' ';
}

static void serve_readyz(aconn_t *c) {
    ops_admin_t *a = c->a;
    char why[128] = "";
    const char *reason = NULL;
    if (atomic_load(&a->draining)) {
        reason = "draining";
    } else if (a->cfg.listeners_up && !a->cfg.listeners_up(a->cfg.ctx)) {
        reason = "listeners down";
    } else if (ops_mem_over(a->cfg.mem)) {
        /* a balancer should send new devices elsewhere meanwhile */
        reason = "overloaded";
        snprintf(why, sizeof why, "rss %llu, memory-high %llu",
                 (unsigned long long)ops_mem_last_rss(a->cfg.mem),
                 (unsigned long long)ops_mem_high(a->cfg.mem));
    } else if (a->cfg.store_ready) {
        int rc = a->cfg.store_ready(a->cfg.ctx, why, sizeof why);
        if (rc == -EROFS)
            reason = "store cannot write";
        else if (rc < 0)
            reason = "store unreachable";
    }
    if (!reason) {
        respond_json(c, 200, "{\"ready\":true}");
        return;
    }
    json_safe(why);
    respond_json(c, 503, "{\"ready\":false,\"reason\":\"%s\"%s%s%s}", reason,
                 why[0] ? ",\"detail\":\"" : "", why, why[0] ? "\"" : "");
}

static void serve_stats(aconn_t *c) {
    char *s = stats_json(c->a);
    if (!s) {
        respond_json(c, 500, "{\"error\":\"out of memory\"}");
        return;
    }
    respond(c, 200, "application/json", s, strlen(s));
    free(s);
}

static bool msg_id_valid(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
              (*s >= 'A' && *s <= 'Z') || *s == '-' || *s == '_' || *s == '.' ||
              *s == ':'))
            return false;
    return true;
}

static void serve_message(aconn_t *c, const char *p, size_t n) {
    ops_admin_t *a = c->a;
    char id[MSG_ID_MAX + 1];
    int len = http_pct_decode(p, n, id, sizeof id);
    if (len <= 0 || !msg_id_valid(id)) {
        respond_json(c, 400, "{\"error\":\"bad message id\"}");
        return;
    }
    if (!a->cfg.message_timeline) {
        respond_json(c, 501, "{\"error\":\"message tracing not available\"}");
        return;
    }
    char *json = NULL;
    int rc = a->cfg.message_timeline(a->cfg.ctx, id, &json);
    if (rc == -ENOENT) {
        respond_json(c, 404, "{\"error\":\"unknown message id\"}");
    } else if (rc < 0 || !json) {
        respond_json(c, 503, "{\"error\":\"timeline unavailable\"}");
    } else {
        respond(c, 200, "application/json", json, strlen(json));
    }
    free(json);
}

static void serve_asset(aconn_t *c, const char *name) {
    const ops_asset_t *as = ops_asset_find(name);
    if (!as) {
        respond_json(c, 404, "{\"error\":\"not found\"}");
        return;
    }
    respond(c, 200, as->type, as->data, as->len);
}

static bool path_is(const char *p, size_t n, const char *lit) {
    return n == strlen(lit) && !memcmp(p, lit, n);
}

static bool path_has_prefix(const char *p, size_t n, const char *lit) {
    size_t l = strlen(lit);
    return n > l && !memcmp(p, lit, l);
}

static void route(aconn_t *c) {
    const char *p = c->in + c->req.path.off;
    size_t n = c->req.path.len;
    if (c->req.method != HTTP_M_GET && c->req.method != HTTP_M_HEAD) {
        respond_json(c, 405, "{\"error\":\"GET only\"}");
    } else if (path_is(p, n, "/metrics")) {
        serve_metrics(c);
    } else if (path_is(p, n, "/healthz")) {
        respond(c, 200, "text/plain; charset=utf-8", "ok\n", 3);
    } else if (path_is(p, n, "/readyz")) {
        serve_readyz(c);
    } else if (path_is(p, n, "/api/stats")) {
        serve_stats(c);
    } else if (path_has_prefix(p, n, "/api/messages/")) {
        size_t l = strlen("/api/messages/");
        serve_message(c, p + l, n - l);
    } else if (path_is(p, n, "/dashboard") || path_is(p, n, "/dashboard/") ||
               path_is(p, n, "/")) {
        serve_asset(c, "index.html");
    } else if (path_has_prefix(p, n, "/dashboard/")) {
        size_t l = strlen("/dashboard/");
        char name[64];
        /* Flat names only: no '/' so no walking anywhere. */
        if (n - l >= sizeof name || memchr(p + l, '/', n - l)) {
            respond_json(c, 404, "{\"error\":\"not found\"}");
            return;
        }
        memcpy(name, p + l, n - l);
        name[n - l] = 0;
        serve_asset(c, name);
    } else {
        respond_json(c, 404, "{\"error\":\"not found\"}");
    }
}

static void on_conn(ev_loop_t *loop, ev_io_t *io, unsigned revents) {
    aconn_t *c = io->data;
    if (c->responding) {
        conn_flush(c);
        return;
    }
    ssize_t n = read(io->fd, c->in + c->inlen, sizeof c->in - c->inlen);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        conn_free(c);
        return;
    }
    c->inlen += (uint16_t)n;
    int rc = http_parse(&c->req, c->in, c->inlen);
    if (rc == HTTP_AGAIN) {
        if (c->inlen == sizeof c->in)
            respond_json(c, 431, "{\"error\":\"head too large\"}");
        return;
    }
    if (rc < 0) {
        respond_json(c, http_err_status(rc), "{\"error\":\"%s\"}",
                     http_strerror(rc));
        return;
    }
    route(c);
}

static void on_conn_timeout(ev_loop_t *loop, ev_timer_t *t) {
    conn_free(ev_container_of(t, aconn_t, timer));
}

static void accept_one(ops_admin_t *a, int fd) {
    aconn_t *c = a->nconns < OPS_ADMIN_MAX_CONNS ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        close(fd);
        return;
    }
    c->a = a;
    http_req_init(&c->req);
    ev_io_init(&c->io, fd, on_conn, c);
    if (ev_add(a->loop, &c->io, EV_READ) < 0) {
        close(fd);
        free(c);
        return;
    }
    ev_timer_init(&c->timer, on_conn_timeout);
    ev_timer_start(a->loop, &c->timer, CONN_TIMEOUT_MS);
    c->next = a->conns;
    if (a->conns) a->conns->prev = c;
    a->conns = c;
    a->nconns++;
}

static void on_accept(ev_loop_t *loop, ev_io_t *io, unsigned revents) {
    ops_admin_t *a = io->data;
    for (int i = 0; i < 16; i++) {
        int fd;
        int rc = net_accept(a->lfd, &fd, NULL);
        if (rc == -EAGAIN || lpause_fault(&a->lpause, rc)) return;
        if (rc < 0) continue;
        lpause_ok(&a->lpause);
        accept_one(a, fd);
    }
}

/* ---- life cycle ----------------------------------------------------------- */

static void on_stop(ev_loop_t *loop, ev_async_t *as) { ev_stop(loop); }

static void *admin_main(void *arg) {
    ops_admin_t *a = arg;
    (void)pthread_setname_np(pthread_self(), "herald-admin"); /* top -H */
    int rc = ev_run(a->loop);
    if (rc < 0) log_error("admin loop failed", "err=%d", rc);
    return NULL;
}

ops_admin_t *ops_admin_new(const ops_admin_config_t *cfg) {
    if (metrics_herald_init() < 0) return NULL;
    ops_admin_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->cfg = *cfg;
    snprintf(a->host, sizeof a->host, "%s",
             cfg->host && *cfg->host ? cfg->host : "127.0.0.1");
    a->cfg.host = a->host;
    a->port = -1;
    a->lfd = -1;
    return a;
}

int ops_admin_start(ops_admin_t *a) {
    if (a->started) return -EALREADY;
    int rc = net_listen_tcp(a->host, a->cfg.port, 64, false, &a->lfd);
    if (rc < 0) return rc;
    a->port = net_local_port(a->lfd);
    a->loop = ev_loop_new(64);
    if (!a->loop) {
        rc = -ENOMEM;
        goto fail;
    }
    ev_io_init(&a->lio, a->lfd, on_accept, a);
    lpause_init(&a->lpause, a->loop, &a->lio, LPAUSE_ADMIN);
    if ((rc = ev_add(a->loop, &a->lio, EV_READ)) < 0 ||
        (rc = ev_async_init(a->loop, &a->stop_async, on_stop, a)) < 0)
        goto fail;
    snap_take(&a->ring[0]);
    a->ring_n = 1;
    ev_timer_init(&a->tick, on_tick);
    ev_timer_start(a->loop, &a->tick, TICK_MS);
    if ((rc = -pthread_create(&a->thread, NULL, admin_main, a)) < 0) goto fail;
    a->started = true;
    return 0;
fail:
    if (a->loop) {
        ev_loop_free(a->loop);
        a->loop = NULL;
    }
    close(a->lfd);
    a->lfd = -1;
    a->port = -1;
    return rc;
}

int ops_admin_port(const ops_admin_t *a) { return a ? a->port : -1; }

void ops_admin_set_draining(ops_admin_t *a, bool draining) {
    if (a) atomic_store(&a->draining, draining);
}

void ops_admin_stop(ops_admin_t *a) {
    if (!a || !a->started) return;
    ev_async_send(&a->stop_async);
    pthread_join(a->thread, NULL);
    a->started = false;
    while (a->conns) conn_free(a->conns);
    lpause_stop(&a->lpause);
    (void)ev_del(a->loop, &a->lio);
    ev_async_close(a->loop, &a->stop_async);
    ev_loop_free(a->loop);
    a->loop = NULL;
    close(a->lfd);
    a->lfd = -1;
}

void ops_admin_free(ops_admin_t *a) {
    if (!a) return;
    ops_admin_stop(a);
    free(a);
}
