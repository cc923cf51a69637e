/*
 * push_http.c: the HTTP/1.1 server of the push API, one thread with its own
 * ev loop.  Requests go to push_api_handle() in push_api.c.
 *
 * A connection keeps one input buffer (head + Content-Length body, at most
 * HTTP_MAX_HEAD + max_body; between requests only its first 2 KiB stay)
 * and one output buffer.  Requests are answered strictly in order, so
 * pipelining is safe; reading pauses while too much output is queued.
 * Chunked bodies are refused (411): the API's bodies are small and their
 * length is always known to the sender.
 *
 * A push that waits for the store parks its connection (`waiting`): the
 * request was copied into a push_call_t and consumed, later requests stay
 * buffered, and the store's done callback posts the call to this thread's
 * mailbox (ev_async), where the answer is queued and processing resumes.
 * A connection closed while waiting is freed only when its call returns.
 *
 * Timeouts: a request must arrive whole within head_timeout of its first
 * byte (a client trickling its head is cut with 408); an idle keep-alive
 * connection is closed after idle_timeout.  After an error answer the
 * connection is closed "lingering": our side is shut for writing and what
 * the client still sends is read and dropped for a moment, so the kernel
 * does not reset the connection before the client has read the answer.
 *
 * Admission: at most max_conns connections (more are answered 503 at
 * accept), and at most a share of them per client address (max_conns_per_ip,
 * half of max_conns by default; more are answered 429), counted in a
 * gw_limit table.  Without the share, 1,100 slowloris connections from one
 * address held all 1,024 places and every other client got 503.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/net.h"
#include "ev/ev.h"
#include "ev/lpause.h"
#include "gateway/gw_limit.h"
#include "ops/metrics_herald.h"
#include "push/push_int.h"

#define OUT_PAUSE (256u * 1024) /* queued output that pauses reading */
#define LINGER_MS 2000
#define ACCEPT_BATCH 64

typedef struct hconn hconn_t;

struct push_http {
    push_service_t *ps;
    ev_loop_t *loop;
    ev_io_t lio;
    lpause_t lpause; /* the listener's back-off when out of descriptors */
    ev_async_t stop;
    pthread_t thread;
    bool thread_started;
    hconn_t *conns;  /* open connections (for shutdown) */
    hconn_t *dead;   /* closed, freed before the loop sleeps */
    ev_async_t done; /* push calls back from the store */
    pthread_mutex_t mbox_mu;
    push_call_t *mbox;
    int nconns;
    size_t in_limit;
    gw_iptab_t *iptab; /* connections per client address (its share) */
    int share;
};

struct hconn {
    ev_io_t io;
    ev_timer_t timer;
    push_http_t *h;
    hconn_t *prev, *next;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off, out_cap;
    http_req_t req;
    uint64_t body_len;
    uint64_t req_start; /* ev time of a partial request's first byte, or 0 */
    uint64_t began_us;  /* the request being answered: parsed at (µs) */
    bool head_done;
    bool closing;   /* answer what is queued, then linger and close */
    bool lingering; /* write side shut, draining input until EOF/timer */
    bool paused;    /* too much output queued: stopped reading */
    bool readable;  /* input may wait in the socket (edge not yet drained) */
    bool dead;
    bool waiting; /* a push call is out at the store */
    bool zombie;  /* closed while waiting: freed by the call's return */
    bool wait_ka; /* the parked request's keep-alive and HEAD */
    bool wait_head;
    gw_ipent_t *ip; /* its address's count; NULL: not counted */
};

/* ---- connection life ------------------------------------------------------ */

static void conn_close(hconn_t *c) {
    if (c->dead) return;
    push_http_t *h = c->h;
    ev_del(h->loop, &c->io);
    ev_timer_stop(h->loop, &c->timer);
    close(c->io.fd);
    c->dead = true;
    if (c->ip) gw_iptab_put(h->iptab, c->ip);
    c->ip = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->next = h->dead;
    h->dead = c;
    h->nconns--;
}

static void conn_free(hconn_t *c) {
    free(c->in);
    free(c->out);
    free(c);
}

static void reap(ev_loop_t *loop, void *data) {
    push_http_t *h = data;
    (void)loop;
    while (h->dead) {
        hconn_t *c = h->dead;
        h->dead = c->next;
        if (c->waiting)
            c->zombie = true;
        else
            conn_free(c);
    }
}

static void begin_linger(hconn_t *c) {
    c->lingering = true;
    (void)shutdown(c->io.fd, SHUT_WR); /* the peer may be gone already */
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    ev_timer_start(c->h->loop, &c->timer, LINGER_MS);
}

/* ---- output --------------------------------------------------------------- */

static bool out_append(hconn_t *c, const void *p, size_t n) {
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 512;
        while (cap < c->out_len + n) cap *= 2;
        char *nb = realloc(c->out, cap);
        if (!nb) return false;
        c->out = nb;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return true;
}

static const char *reason_phrase(int st) {
    switch (st) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* Decimal digits of v at p; returns the end. */
static char *put_uint(char *p, size_t v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

/* Built with stpcpy, not snprintf: formatting was ~1.5 % of the CPU of a
 * push over HTTP (this head, the body, the message id). */
static void queue_response(hconn_t *c, const push_api_resp_t *r, bool close,
                           bool head_only) {
    char hd[384];
    char *p = stpcpy(hd, "HTTP/1.1 ");
    p = put_uint(p, (size_t)r->status);
    *p++ = ' ';
    p = stpcpy(p, reason_phrase(r->status));
    p = stpcpy(p, "\r\nContent-Type: application/json\r\nContent-Length: ");
    p = put_uint(p, r->body_len);
    p = stpcpy(p, "\r\n");
    if (r->status == 401) p = stpcpy(p, "WWW-Authenticate: Bearer\r\n");
    if (r->allow_post)
        p = stpcpy(p, "Allow: POST\r\n");
    else if (r->allow_get)
        p = stpcpy(p, "Allow: GET, HEAD\r\n");
    else if (r->allow_delete)
        p = stpcpy(p, "Allow: DELETE\r\n");
    if (r->status == 429 || r->status == 503)
        p = stpcpy(p, "Retry-After: 1\r\n");
    if (close) p = stpcpy(p, "Connection: close\r\n");
    p = stpcpy(p, "\r\n");
    int n = (int)(p - hd);
    if (!out_append(c, hd, (size_t)n) ||
        (!head_only && !out_append(c, r->body, r->body_len))) {
        conn_close(c);
        return;
    }
    push_service_t *ps = c->h->ps;
    unsigned route = r->route1 ? r->route1 - 1 : MH_ROUTE_OTHER;
    metrics_inc(M_HTTP_REQUESTS, route, mh_status_idx(r->status));
    /* Parsed to answered: a parked push's durable commit included. */
    if (c->began_us)
        metrics_observe(M_HTTP_LATENCY, route, 0,
                        clock_mono_us() - c->began_us);
    c->began_us = 0;
    atomic_fetch_add_explicit(&ps->n_http, 1, memory_order_relaxed);
    if (r->status >= 400)
        atomic_fetch_add_explicit(&ps->n_http_err, 1, memory_order_relaxed);
}

/* Answers with an error and closes (after lingering). */
static void reply_error(hconn_t *c, int status, const char *code,
                        const char *msg) {
    push_api_resp_t r = {0};
    push_api_error(&r, status, code, msg);
    queue_response(c, &r, true, false);
    push_api_resp_free(&r);
    c->closing = true;
}

static void flush_out(hconn_t *c) {
    while (!c->dead && c->out_off < c->out_len) {
        ssize_t n =
            write(c->io.fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return; /* edge-triggered: EV_WRITE comes when there is room */
        } else {
            conn_close(c);
            return;
        }
    }
    if (c->dead) return;
    c->out_len = c->out_off = 0;
    if (c->out_cap > 4096) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    if (c->closing && !c->lingering) begin_linger(c);
}

/* ---- requests ----------------------------------------------------------- */

static bool keep_alive(const http_req_t *r, const char *buf) {
    if (http_header_has_token(r, buf, "connection", "close")) return false;
    if (r->version == 10)
        return http_header_has_token(r, buf, "connection", "keep-alive");
    return true;
}

/* The head just completed: checks what decides how to read the body. */
static bool head_checks(hconn_t *c) {
    const http_req_t *r = &c->req;
    if (http_find_header(r, c->in, "transfer-encoding")) {
        reply_error(c, 411, "length_required",
                    "send the body with Content-Length (no chunked)");
        return false;
    }
    uint64_t len = 0;
    int rc = http_content_length(r, c->in, &len);
    if (rc < 0) {
        reply_error(c, 400, "bad_request", "bad Content-Length");
        return false;
    }
    if (len > c->h->ps->cfg.max_body) {
        reply_error(c, 413, "body_too_large", "request body over the limit");
        return false;
    }
    c->body_len = len;
    if (len > 0 && c->in_len < r->head_len + len &&
        http_header_has_token(r, c->in, "expect", "100-continue")) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (!out_append(c, cont, sizeof cont - 1)) {
            conn_close(c);
            return false;
        }
    }
    return true;
}

static void on_call_done(push_call_t *call) {
    hconn_t *c = call->reply_ctx;
    push_http_t *h = c->h;
    pthread_mutex_lock(&h->mbox_mu);
    call->next = h->mbox;
    h->mbox = call;
    pthread_mutex_unlock(&h->mbox_mu);
    ev_async_send(&h->done);
}

static void answer(hconn_t *c) {
    const char *buf = c->in;
    c->began_us = clock_mono_us();
    push_api_resp_t r = {0};
    bool ka = keep_alive(&c->req, buf);
    if (push_api_handle_async(c->h->ps, &c->req, buf, buf + c->req.head_len,
                              (size_t)c->body_len, &r, on_call_done, c) == 0) {
        c->waiting = true;
        c->wait_ka = ka;
        c->wait_head = c->req.method == HTTP_M_HEAD;
        return;
    }
    queue_response(c, &r, !ka, c->req.method == HTTP_M_HEAD);
    push_api_resp_free(&r);
    if (!ka) c->closing = true;
}

static void consume(hconn_t *c, size_t n) {
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
    c->head_done = false;
    c->body_len = 0;
    c->req_start = 0;
    http_req_init(&c->req);
}

/* Answers every complete request in the buffer, in order. */
static void process(hconn_t *c) {
    while (!c->dead && !c->closing && !c->waiting && c->in_len > 0) {
        if (!c->head_done) {
            int rc = http_parse(&c->req, c->in, c->in_len);
            if (rc == HTTP_AGAIN) return;
            if (rc < 0) {
                reply_error(c, http_err_status(rc), "bad_request",
                            http_strerror(rc));
                return;
            }
            c->head_done = true;
            if (!head_checks(c)) return;
        }
        size_t need = c->req.head_len + (size_t)c->body_len;
        if (c->in_len < need) return;
        answer(c);
        consume(c, need);
    }
    if (!c->dead && c->out_len - c->out_off > OUT_PAUSE) c->paused = true;
}

static void arm_timer(hconn_t *c) {
    ev_loop_t *loop = c->h->loop;
    const push_config_t *cfg = &c->h->ps->cfg;
    if (c->dead || c->lingering) return;
    if (c->in_len > 0) {
        if (!c->req_start) {
            c->req_start = ev_now_ms(loop);
            ev_timer_start(loop, &c->timer, (uint64_t)cfg->head_timeout * 1000);
        }
    } else {
        c->req_start = 0;
        /* Between requests: keep the first 2 KiB buffer (a busy keep-alive
         * connection would malloc and free it per request, ~2 % of this
         * thread's CPU), drop one grown for a large body. */
        if (c->in && c->in_cap > 2048) {
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
        ev_timer_start(loop, &c->timer, (uint64_t)cfg->idle_timeout * 1000);
    }
}

static bool grow_in(hconn_t *c) {
    size_t limit = c->h->in_limit;
    if (c->in_cap >= limit) return false;
    size_t cap = c->in_cap ? c->in_cap * 2 : 2048;
    if (cap > limit) cap = limit;
    char *nb = realloc(c->in, cap);
    if (!nb) return false;
    c->in = nb;
    c->in_cap = cap;
    return true;
}

static void drain_lingering(hconn_t *c) {
    char sink[4096];
    for (;;) {
        ssize_t n = read(c->io.fd, sink, sizeof sink);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        conn_close(c);
        return;
    }
}

/*
 * Reads until the socket is drained.  A read shorter than asked drains it
 * as surely as EAGAIN does (TCP hands over all it has), and with EPOLLET a
 * byte arriving later raises a new edge; so `readable` drops there and the
 * calls after each answer (finish_call) cost no read(2) that would only
 * say EAGAIN.  That was two wasted syscalls per keep-alive request.
 */
static void do_read(hconn_t *c) {
    while (c->readable && !c->dead && !c->paused && !c->closing) {
        if (c->in_len == c->in_cap && !grow_in(c)) {
            /* A full buffer always holds a complete head and body (the
             * limit fits the largest allowed), so process() consumed or
             * refused it already; reaching here means out of memory. */
            reply_error(c, 500, "internal", "out of memory");
            break;
        }
        size_t want = c->in_cap - c->in_len;
        ssize_t n = read(c->io.fd, c->in + c->in_len, want);
        if (n > 0) {
            c->in_len += (size_t)n;
            if ((size_t)n < want) c->readable = false;
            process(c);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            c->readable = false;
            break;
        } else {
            /* EOF or error: answers for requests already read still go
             * out if the peer only shut its write side. */
            if (c->out_len == c->out_off) {
                conn_close(c);
                return;
            }
            c->closing = true;
            break;
        }
    }
    if (!c->dead) flush_out(c);
    arm_timer(c);
}

static void on_io(ev_loop_t *loop, ev_io_t *io, unsigned revents) {
    hconn_t *c = io->data;
    (void)loop;
    if (c->lingering) {
        drain_lingering(c);
        return;
    }
    if (revents & (EV_READ | EV_ERROR)) {
        c->readable = true;
        do_read(c);
    }
    if (c->dead || !(revents & EV_WRITE)) return;
    flush_out(c);
    if (!c->dead && c->paused && c->out_off == c->out_len) {
        c->paused = false;
        process(c); /* requests already buffered go first */
        do_read(c);
    }
}

static void on_timer(ev_loop_t *loop, ev_timer_t *t) {
    hconn_t *c = ev_container_of(t, hconn_t, timer);
    (void)loop;
    if (c->lingering || c->in_len == 0) {
        if (!c->lingering) metrics_inc(M_API_TIMEOUTS, MH_API_HTTP, MH_TO_IDLE);
        conn_close(c);
        return;
    }
    /* A request did not arrive whole in time (slow or stuck client). */
    metrics_inc(M_API_TIMEOUTS, MH_API_HTTP, MH_TO_HEAD);
    c->paused = false;
    reply_error(c, 408, "request_timeout", "request not received in time");
    flush_out(c);
}

/* ---- listener and thread ------------------------------------------------ */

#define BUSY_BODY                                      \
    "{\"error\":{\"code\":\"overloaded\",\"message\":" \
    "\"too many API connections\"}}\n"
#define SHARE_BODY                                         \
    "{\"error\":{\"code\":\"too_many_conns\",\"message\":" \
    "\"too many API connections from this address\"}}\n"

/* At max_conns (503), or the client address at its share of it (429):
 * answered before the request is read (a client that writes its request
 * first still reads this), then closed. */
static void refuse(int fd, bool per_ip) {
    char buf[320];
    const char *body = per_ip ? SHARE_BODY : BUSY_BODY;
    int n =
        snprintf(buf, sizeof buf,
                 "HTTP/1.1 %s\r\n"
                 "Content-Type: application/json\r\nRetry-After: 1\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 per_ip ? "429 Too Many Requests" : "503 Service Unavailable",
                 strlen(body), body);
    metrics_inc(M_REFUSED, MH_REF_PUSH,
                per_ip ? MH_REF_PER_IP : MH_REF_MAX_CONNS);
    (void)!write(fd, buf, (size_t)n); /* best effort: closing anyway */
    close(fd);
}

/* Room for one more connection from peer: 0 with *ip counted (NULL when
 * the address could not be), or 1 (503: the cap) / 2 (429: the share). */
static int admit(push_http_t *h, const struct sockaddr_storage *peer,
                 gw_ipent_t **ip) {
    *ip = NULL;
    if (h->nconns >= h->ps->cfg.max_conns) return 1;
    if (gw_iptab_take(h->iptab, (const struct sockaddr *)peer, ip) !=
        GW_IPTAB_OVER)
        return 0; /* -ENOMEM, another family: admitted, not counted */
    static log_limit_t lim = LOG_LIMIT_INIT(10000);
    char addr[64];
    log_limited(
        &lim, LOG_LEVEL_WARN, "api connection refused: address at its share",
        "peer=%s share=%d max=%d", net_addr_str(peer, addr, sizeof addr),
        h->share, h->ps->cfg.max_conns);
    return 2;
}

static void on_accept(ev_loop_t *loop, ev_io_t *io, unsigned revents) {
    push_http_t *h = io->data;
    (void)revents;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd;
        struct sockaddr_storage peer;
        int rc = net_accept(io->fd, &fd, &peer);
        if (rc == -EAGAIN || lpause_fault(&h->lpause, rc)) return;
        if (rc < 0) continue;
        lpause_ok(&h->lpause);
        gw_ipent_t *ip;
        int why = admit(h, &peer, &ip);
        hconn_t *c = why ? NULL : calloc(1, sizeof *c);
        if (!c) {
            if (ip) gw_iptab_put(h->iptab, ip);
            refuse(fd, why == 2);
            continue;
        }
        c->ip = ip;
        (void)net_set_nodelay(fd, true); /* small answers, send at once */
        c->h = h;
        c->readable = true; /* a request may be in before the first edge */
        http_req_init(&c->req);
        ev_io_init(&c->io, fd, on_io, c);
        ev_timer_init(&c->timer, on_timer);
        if (ev_add(loop, &c->io, EV_READ | EV_WRITE | EV_ET) < 0) {
            if (c->ip) gw_iptab_put(h->iptab, c->ip);
            close(fd);
            free(c);
            continue;
        }
        c->next = h->conns;
        if (h->conns) h->conns->prev = c;
        h->conns = c;
        h->nconns++;
        ev_timer_start(loop, &c->timer,
                       (uint64_t)h->ps->cfg.head_timeout * 1000);
    }
}

static void do_read(hconn_t *c);

static void finish_call(push_http_t *h, push_call_t *call) {
    hconn_t *c = call->reply_ctx;
    push_api_resp_t r = {0};
    push_api_finish(call, &r);
    c->waiting = false;
    if (c->dead) {
        if (c->zombie) conn_free(c);
        push_api_resp_free(&r);
        return;
    }
    queue_response(c, &r, !c->wait_ka, c->wait_head);
    push_api_resp_free(&r);
    if (c->dead) return;
    if (!c->wait_ka) c->closing = true;
    process(c);
    do_read(c);
    (void)h;
}

/* Calls back from the store, oldest first (the mailbox is a stack). */
static void on_done(ev_loop_t *loop, ev_async_t *a) {
    push_http_t *h = a->data;
    (void)loop;
    pthread_mutex_lock(&h->mbox_mu);
    push_call_t *list = h->mbox;
    h->mbox = NULL;
    pthread_mutex_unlock(&h->mbox_mu);
    push_call_t *rev = NULL;
    while (list) {
        push_call_t *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev) {
        push_call_t *n = rev->next;
        finish_call(h, rev);
        rev = n;
    }
}

static void on_stop(ev_loop_t *loop, ev_async_t *a) {
    (void)a;
    ev_stop(loop);
}

static void *http_main(void *arg) {
    push_http_t *h = arg;
    (void)pthread_setname_np(pthread_self(), "herald-http"); /* top -H */
    int rc = ev_run(h->loop);
    if (rc < 0) log_error("push api loop failed", "err=%d", rc);
    while (h->conns) conn_close(h->conns);
    reap(h->loop, h);
    return NULL;
}

static void http_free(push_http_t *h) {
    lpause_stop(&h->lpause);
    if (h->lio.fd >= 0) {
        ev_del(h->loop, &h->lio);
        close(h->lio.fd);
    }
    if (h->stop.io.fd > 0) ev_async_close(h->loop, &h->stop);
    if (h->done.io.fd > 0) ev_async_close(h->loop, &h->done);
    pthread_mutex_destroy(&h->mbox_mu);
    ev_loop_free(h->loop);
    gw_iptab_free(h->iptab); /* after the connections: they hold entries */
    free(h);
}

int push_http_start(push_service_t *ps) {
    push_http_t *h = calloc(1, sizeof *h);
    if (!h) return -ENOMEM;
    h->ps = ps;
    h->lio.fd = -1;
    h->in_limit = HTTP_MAX_HEAD + (size_t)ps->cfg.max_body;
    pthread_mutex_init(&h->mbox_mu, NULL);
    h->share = push_ip_share(ps->cfg.max_conns, ps->cfg.max_conns_per_ip);
    h->loop = ev_loop_new(256);
    h->iptab = gw_iptab_new((uint32_t)h->share);
    if (!h->loop || !h->iptab) {
        if (h->loop) ev_loop_free(h->loop);
        gw_iptab_free(h->iptab);
        free(h);
        return -ENOMEM;
    }
    int fd, rc = net_listen_tcp(ps->cfg.http_host, ps->cfg.http_port, 511,
                                false, &fd);
    if (rc < 0) {
        http_free(h);
        return rc;
    }
    ev_io_init(&h->lio, fd, on_accept, h);
    lpause_init(&h->lpause, h->loop, &h->lio, LPAUSE_API);
    if ((rc = ev_add(h->loop, &h->lio, EV_READ)) < 0 ||
        (rc = ev_async_init(h->loop, &h->stop, on_stop, h)) < 0 ||
        (rc = ev_async_init(h->loop, &h->done, on_done, h)) < 0) {
        http_free(h);
        return rc;
    }
    ev_set_before_sleep(h->loop, reap, h);
    ps->http_port = net_local_port(fd);
    if ((rc = pthread_create(&h->thread, NULL, http_main, h)) != 0) {
        ps->http_port = -1;
        http_free(h);
        return -rc;
    }
    h->thread_started = true;
    ps->http = h;
    log_info("push api listening", "host=%s port=%d", ps->cfg.http_host,
             ps->http_port);
    return 0;
}

void push_http_stop(push_service_t *ps) {
    push_http_t *h = ps->http;
    if (!h) return;
    /* Answer what the store still owes before the loop goes away. */
    for (int i = 0; i < 10000 && atomic_load(&ps->inflight) > 0; i++)
        usleep(1000);
    ev_async_send(&h->stop);
    pthread_join(h->thread, NULL);
    http_free(h);
    ps->http = NULL;
    ps->http_port = -1;
}
