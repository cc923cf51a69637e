/*
 * pload_api.c: the API side of push_load (pload.h): pushSingleDevice
 * requests over HTTP/1.1 keep-alive (POST /v1/push/device) or TARS
 * (generated client stub + trpc framing), one in flight per connection,
 * and the bookkeeping of their answers.
 *
 * A request is small and at most one is in flight per connection, so it
 * always fits the socket's send buffer: a short send means the connection
 * is broken, not that it must be retried.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "PushAPI.h"
#include "bench/bench_wire.h"
#include "bench/pload.h"
#include "core/clock.h"
#include "core/net.h"
#include "rpc/trpc.h"

#define SERVANT "herald.PushServer.PushAPIObj"
#define TARS_TIMEOUT_MS 5000

void pload_error(pload_worker_t *w, const char *fmt, ...) {
    if (w->first_err[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->first_err, sizeof w->first_err, fmt, ap);
    va_end(ap);
}

/* ---- payload marker -------------------------------------------------------- */

size_t pload_payload(char *out, size_t cap, size_t size, uint32_t run, long dev,
                     uint64_t seq, uint64_t t0) {
    char mark[96];
    int m = snprintf(mark, sizeof mark,
                     "#L%" PRIu32 ".%ld.%" PRIu64 ".%" PRIu64 "#", run, dev,
                     seq, t0);
    size_t n = size > (size_t)m ? size : (size_t)m;
    if (m < 0 || n + 1 > cap) return 0;
    memcpy(out, mark, (size_t)m);
    memset(out + m, 'x', n - (size_t)m);
    out[n] = '\0';
    return n;
}

/* Reads decimal digits at *p (at most 20) followed by `stop`. */
static bool read_num(const uint8_t **p, const uint8_t *end, char stop,
                     uint64_t *v) {
    const uint8_t *s = *p;
    uint64_t x = 0;
    int digits = 0;
    while (s < end && *s >= '0' && *s <= '9' && digits < 20) {
        x = x * 10 + (uint64_t)(*s++ - '0');
        digits++;
    }
    if (!digits || s >= end || *s != stop) return false;
    *v = x;
    *p = s + 1;
    return true;
}

int pload_payload_parse(const uint8_t *p, size_t n, pload_mark_t *m) {
    const uint8_t *end = p + n;
    uint64_t run;
    if (n < 2 || p[0] != '#' || p[1] != 'L') return -1;
    p += 2;
    if (!read_num(&p, end, '.', &run) || run > UINT32_MAX ||
        !read_num(&p, end, '.', &m->dev) || !read_num(&p, end, '.', &m->seq) ||
        !read_num(&p, end, '#', &m->t0))
        return -1;
    m->run = (uint32_t)run;
    return 0;
}

/* ---- set-up ---------------------------------------------------------------- */

/* Connects connection i (blocking: a loopback connect is immediate), then
 * makes it non-blocking and registers it.  0 or a negative errno. */
static int conn_open(pload_worker_t *w, long i) {
    pload_conn_t *c = &w->c[i];
    int rc =
        net_connect_tcp(w->o->api_host, w->o->api_port, NULL, false, &c->fd);
    if (rc < 0) return rc;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
    if ((rc = net_set_nonblock(c->fd, true)) < 0 ||
        (rc = net_set_nodelay(c->fd, true)) < 0)
        return rc;
    return epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) ? -errno : 0;
}

int pload_api_open(pload_worker_t *w) {
    const pload_opts_t *o = w->o;
    w->req_cap = (size_t)o->payload + 2048;
    w->c = calloc((size_t)w->nc, sizeof *w->c);
    w->idle = calloc((size_t)w->nc, sizeof *w->idle);
    w->req = malloc(w->req_cap);
    w->arena = jce_arena_new(0);
    jce_out_init(&w->args, JCE_POLICY_CPP);
    jce_out_init(&w->frame, JCE_POLICY_CPP);
    if (!w->c || !w->idle || !w->req || !w->arena) {
        pload_error(w, "out of memory");
        return -1;
    }
    for (long i = 0; i < w->nc; i++) w->c[i].fd = -1;
    for (long i = 0; i < w->nc; i++) {
        int rc = conn_open(w, i);
        if (rc < 0) {
            pload_error(w, "connect to the API at %s:%d: %s", o->api_host,
                        o->api_port, strerror(-rc));
            return -1;
        }
        w->idle[w->nidle++] = i;
    }
    return 0;
}

void pload_api_close(pload_worker_t *w) {
    for (long i = 0; w->c && i < w->nc; i++)
        if (w->c[i].fd >= 0) close(w->c[i].fd);
    free(w->c);
    free(w->idle);
    free(w->req);
    jce_out_free(&w->args);
    jce_out_free(&w->frame);
    if (w->arena) jce_arena_free(w->arena);
    free(w->flags);
    w->c = NULL;
}

static void conn_fail(pload_worker_t *w, pload_conn_t *c, const char *why) {
    if (c->busy) { /* the push in flight has no answer */
        w->err++;
        w->busy--;
        c->busy = false;
    }
    pload_error(w, "API connection: %s", why);
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->dead = true;
}

/* ---- requests -------------------------------------------------------------- */

static size_t http_request(pload_worker_t *w, const char *dev,
                           const char *payload) {
    char body[PLOAD_PAYLOAD_MAX + 512];
    int n = snprintf(body, sizeof body,
                     "{\"deviceId\":\"%s\",\"payload\":\"%s\",\"ttl\":%ld}",
                     dev, payload, w->o->ttl);
    if (n < 0 || (size_t)n >= sizeof body) return 0;
    return bench_http_post(w->req, w->req_cap, "bench", "/v1/push/device",
                           w->o->key, "application/json", body, (size_t)n);
}

static size_t tars_request(pload_worker_t *w, const char *dev,
                           const char *payload, size_t plen, int32_t id) {
    herald_PushSingleDeviceReq q;
    herald_PushSingleDeviceReq_init(&q);
    q.apiKey = jce_str_from(w->o->key);
    q.deviceId = jce_str_from(dev);
    q.msg.payload.data = (const uint8_t *)payload;
    q.msg.payload.len = (uint32_t)plen;
    q.msg.ttl = (int32_t)w->o->ttl;
    jce_out_reset(&w->args);
    jce_out_reset(&w->frame);
    herald_PushAPI_pushSingleDevice_args(&w->args, 1, &q);
    if (w->args.err ||
        trpc_request_encode(&w->frame, 1, TRPC_NORMAL, id, SERVANT,
                            "pushSingleDevice", &w->args, TARS_TIMEOUT_MS) < 0)
        return 0;
    return w->frame.len;
}

/* The TARS request id of push seq: positive, one per push in flight. */
static int32_t tars_id(uint64_t seq) { return (int32_t)(seq % INT32_MAX) + 1; }

static int flags_reserve(pload_worker_t *w, uint64_t seq) {
    if (seq < w->flags_cap) return 0;
    size_t nc = w->flags_cap ? w->flags_cap * 2 : 65536;
    uint8_t *nf = realloc(w->flags, nc);
    if (!nf) return -1;
    memset(nf + w->flags_cap, 0, nc - w->flags_cap);
    w->flags = nf;
    w->flags_cap = nc;
    return 0;
}

void pload_api_send(pload_worker_t *w, pload_conn_t *c, uint64_t t0) {
    const pload_opts_t *o = w->o;
    uint64_t seq = w->seq;
    long dev = w->dev_next;
    char id[160], payload[PLOAD_PAYLOAD_MAX + 1];
    snprintf(id, sizeof id, "%s%ld", o->prefix, dev);
    size_t pl = pload_payload(payload, sizeof payload, (size_t)o->payload,
                              o->run, dev, seq, t0);
    size_t n = !pl || flags_reserve(w, seq) < 0 ? 0
               : o->proto == PLOAD_HTTP
                   ? http_request(w, id, payload)
                   : tars_request(w, id, payload, pl, tars_id(seq));
    const void *buf = o->proto == PLOAD_HTTP ? (const void *)w->req
                                             : (const void *)w->frame.buf;
    if (!n) {
        w->err++;
        conn_fail(w, c, "cannot build a request (payload too large?)");
        return;
    }
    ssize_t sent = send(c->fd, buf, n, MSG_NOSIGNAL);
    if (sent != (ssize_t)n) {
        w->err++; /* the push was never sent */
        conn_fail(w, c, sent < 0 ? strerror(errno) : "short send");
        return;
    }
    w->seq++;
    w->sent++;
    w->dev_next = dev + 1 < w->dev_hi ? dev + 1 : w->dev_lo;
    c->busy = true;
    c->seq = seq;
    c->t0 = t0;
    w->busy++;
}

/* ---- answers --------------------------------------------------------------- */

enum { ANS_WRITTEN = 1, ANS_STORED, ANS_OTHER };

/* The answer to c's push: ok with its state, or an error (already
 * recorded in first_err). */
static void answered(pload_worker_t *w, pload_conn_t *c, bool ok, int state) {
    bool win = w->now >= w->sh->t_warm && w->now < w->sh->t_end;
    c->busy = false;
    w->busy--;
    if (!ok) {
        w->err++;
        return;
    }
    w->ok++;
    if (w->now < w->sh->t_warm) w->warm_ok++;
    if (win) {
        w->win_ok++;
        /* Out of memory loses the sample, not the run. */
        (void)bench_lat_add(&w->lat, w->now - c->t0);
    }
    if (state == ANS_WRITTEN) {
        w->written++;
        if (!(w->flags[c->seq] & PLOAD_F_DELIV))
            w->outstanding++; /* its delivery has not come yet */
        w->flags[c->seq] |= PLOAD_F_WRITTEN;
    } else {
        if (state == ANS_STORED)
            w->stored++;
        else
            w->other_state++;
    }
}

/* Bytes of one HTTP answer at c->in, 0 if incomplete, -1 if malformed. */
static long http_answer(pload_worker_t *w, pload_conn_t *c) {
    bench_http_rsp_t r;
    int rc = bench_http_head(c->in, c->in_len, &r);
    if (rc <= 0) return rc;
    if (r.content_length < 0 || r.chunked) return -1;
    size_t total = r.head_len + (size_t)r.content_length;
    if (total > sizeof c->in) return -1;
    if (c->in_len < total) return 0;
    const char *body = (const char *)c->in + r.head_len;
    size_t bl = (size_t)r.content_length;
    if (r.status != 200) {
        pload_error(w, "HTTP %d: %.*s", r.status, (int)bl, body);
        answered(w, c, false, 0);
    } else if (memmem(body, bl, "\"state\":\"written\"", 17)) {
        answered(w, c, true, ANS_WRITTEN);
    } else {
        answered(w, c, true,
                 memmem(body, bl, "\"state\":\"stored\"", 16) ? ANS_STORED
                                                              : ANS_OTHER);
    }
    return (long)total;
}

static long tars_answer(pload_worker_t *w, pload_conn_t *c) {
    uint32_t flen;
    int rc = trpc_frame_check(c->in, c->in_len, sizeof c->in, &flen);
    if (rc <= 0) return rc < 0 ? -1 : 0;
    trpc_response_t r;
    herald_PushSingleDeviceRsp rsp;
    int32_t ret = -1;
    jce_arena_reset(w->arena);
    if (trpc_response_decode(c->in, flen, w->arena, &r) < 0) return -1;
    if (r.req_id != tars_id(c->seq)) return -1;
    if (r.ret != 0) {
        pload_error(w, "TARS framework ret %d: %.*s", (int)r.ret,
                    (int)r.desc.len, r.desc.data ? r.desc.data : "");
        answered(w, c, false, 0);
    } else if (herald_PushAPI_pushSingleDevice_result(
                   r.body.data, r.body.len, 1, w->arena, &ret, &rsp) < 0 ||
               ret != 0) {
        pload_error(w, "pushSingleDevice returned %d", (int)ret);
        answered(w, c, false, 0);
    } else {
        answered(w, c, true,
                 rsp.state == herald_MSG_WRITTEN  ? ANS_WRITTEN
                 : rsp.state == herald_MSG_STORED ? ANS_STORED
                                                  : ANS_OTHER);
    }
    return (long)flen;
}

void pload_api_readable(pload_worker_t *w, pload_conn_t *c) {
    ssize_t r = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r <= 0) {
        conn_fail(w, c, r == 0 ? "closed by the server" : strerror(errno));
        return;
    }
    c->in_len += (size_t)r;
    long used = !c->busy                    ? -1
                : w->o->proto == PLOAD_HTTP ? http_answer(w, c)
                                            : tars_answer(w, c);
    if (used < 0) {
        conn_fail(w, c, c->busy ? "malformed answer" : "unexpected bytes");
        return;
    }
    if (!used) return;
    /* One request in flight: nothing may follow its answer. */
    if ((size_t)used != c->in_len) {
        conn_fail(w, c, "unexpected bytes after an answer");
        return;
    }
    c->in_len = 0;
    if (w->o->rate > 0 || w->now >= w->sh->t_end)
        w->idle[w->nidle++] = c - w->c;
    else
        pload_api_send(w, c, clock_mono_us());
}
