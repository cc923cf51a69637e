/*
 * gw_http: a connection that began with an HTTP request — reading its
 * head, the WebSocket upgrade at /v1/ws, the short-lived POST /v1/yyb, and
 * the JSON error answers.  Separate from gw_conn.c because it runs at most
 * once per connection, before any frame: the frame loops stay in gw_conn.c.
 *
 * The head is read into gw_http_t (c->aux) directly; gw_conn.c detects the
 * method's first byte and hands over the bytes it has already read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "Protocol.h"
#include "core/token.h"
#include "gateway/gw_int.h"
#include "ops/ops_mem.h"

/* ---- HTTP head and WebSocket upgrade ----------------------------------------- */

static void http_reply(gw_conn_t *c, int status, const char *reason,
                       const char *body) {
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     status, reason, strlen(body), body);
    if (n > 0 && (size_t)n < sizeof buf && gw_conn_send(c, buf, (size_t)n) < 0)
        return;
    gw_conn_linger(c, 0);
}

void gw_http_error(gw_conn_t *c, int status, int code, const char *msg) {
    char body[256];
    const char *reason = status == 400   ? "Bad Request"
                         : status == 401 ? "Unauthorized"
                         : status == 404 ? "Not Found"
                         : status == 408 ? "Request Timeout"
                         : status == 414 ? "URI Too Long"
                         : status == 431 ? "Request Header Fields Too Large"
                         : status == 501 ? "Not Implemented"
                         : status == 503 ? "Service Unavailable"
                         : status == 505 ? "HTTP Version Not Supported"
                                         : "Error";
    snprintf(body, sizeof body,
             "{\"error\":\"%s\",\"code\":%d,\"message\":\"%s\"}\n",
             gw_err_name(code), code, msg);
    http_reply(c, status, reason, body);
}

/* Token from ?token= or Authorization: Bearer. */
static int find_token(const http_req_t *r, const char *buf, char *tok,
                      size_t cap) {
    int n = http_query_param(r, buf, "token", tok, cap);
    if (n >= 0) return n;
    const http_header_t *h = http_find_header(r, buf, "Authorization");
    if (!h) return -1;
    const char *v = buf + h->value.off;
    size_t vl = h->value.len;
    if (vl < 8 || strncasecmp(v, "Bearer ", 7)) return -1;
    v += 7;
    vl -= 7;
    while (vl && *v == ' ') v++, vl--;
    if (vl >= cap) return -1;
    memcpy(tok, v, vl);
    tok[vl] = 0;
    return (int)vl;
}

static int yyb_post_start(gw_conn_t *c);
static int yyb_post_run(gw_conn_t *c);

/* A complete head: upgrade to WebSocket, or answer and close. */
static int http_head_done(gw_conn_t *c) {
    gw_http_t *h = c->aux;
    const http_req_t *r = &h->req;
    const char *path = h->buf + r->path.off;
    size_t plen = r->path.len;
    if (plen == 7 && !memcmp(path, "/v1/yyb", 7)) return yyb_post_start(c);
    if (!(plen == 6 && !memcmp(path, "/v1/ws", 6))) {
        gw_http_error(c, 404, herald_ERR_BAD_REQUEST,
                      "no such path; WebSocket is at /v1/ws");
        return -1;
    }
    if (ops_mem_over(c->w->gw->cfg.mem)) {
        /* admitted before the watermark was crossed: still new work */
        gw_refuse_count(GW_R_MEMORY);
        gw_refuse_http(c, GW_R_MEMORY);
        return -1;
    }
    ws_handshake_t hs;
    int rc = ws_handshake_check(r, h->buf, &hs);
    if (rc < 0) {
        char out[512];
        int n = ws_handshake_reject(out, sizeof out, rc);
        if (n > 0) (void)gw_conn_send(c, out, (size_t)n);
        if (c->state != GW_S_DEAD) gw_conn_linger(c, 0);
        return -1;
    }
    char tok[TOKEN_MAX];
    int tl = find_token(r, h->buf, tok, sizeof tok);
    gw_dev_t *dev = NULL;
    /* No token is a refused login too: counted and logged as one. */
    int code =
        gw_auth_token(c, tl < 0 ? "" : tok, tl < 0 ? 0 : (size_t)tl, &dev);
    if (code) {
        gw_http_error(c, 401, code,
                      tl < 0
                          ? "token missing (?token= or Authorization: Bearer)"
                          : gw_auth_message(code));
        return -1;
    }
    char out[256];
    int n = ws_handshake_response(out, sizeof out, h->buf + hs.key.off,
                                  hs.key.len, hs.jce);
    if (n < 0 || gw_conn_send(c, out, (size_t)n) < 0) {
        free(dev);
        if (c->state != GW_S_DEAD) gw_conn_close(c, herald_ERR_SERVER);
        return -1;
    }
    /* Bytes that followed the head are the first WebSocket frames. */
    size_t rest = h->len - r->head_len;
    uint8_t *tail = c->w->rbuf;
    memcpy(tail, h->buf + r->head_len, rest);
    free(h);
    c->aux = NULL;
    c->aux_http = false;
    c->state = GW_S_WS;
    c->transport = hs.jce ? GW_WS_JCE : GW_WS_JSON;
    ws_parser_init(&c->p.ws);
    c->p.ws.max_msg = c->w->gw->cfg.max_frame;
    gw_conn_authed(c, dev);
    if (gw_cmd_ws_hello(c) < 0) return -1;
    if (!rest) return 0;
    size_t used = 0;
    rc = gw_conn_ws_input(c, tail, rest, &used);
    if (rc < 0) return -1;
    return gw_conn_keep_tail(c, tail, rest, used);
}

/* ---- POST /v1/yyb: the short-lived form (DESIGN.md §3) ----------------------
 *
 * Body: the preface and one or more frames, exactly as on a raw TCP
 * connection; the answer (200, application/octet-stream) has the same
 * layout.  The device authenticates with ?token= / Authorization: Bearer,
 * or with a HELLO as the first package.  Such a request is never
 * registered: it neither kicks the device's connection nor counts as
 * online.  Framing errors answer 400 with a JSON error.
 *
 * A SYNC here cannot be followed by pushes (the answer ends the
 * exchange), so its SyncRsp carries the stored messages: the service
 * reads them on its own thread (gw_service_t.fetch) while the exchange
 * pauses at that package, and gw_http_sync_done resumes it. */

static int yyb_post_start(gw_conn_t *c) {
    gw_http_t *h = c->aux;
    uint64_t len = 0;
    if (h->req.method != HTTP_M_POST) {
        gw_http_error(c, 405, herald_ERR_BAD_REQUEST, "use POST");
        return -1;
    }
    int rc = http_content_length(&h->req, h->buf, &len);
    if (rc <= 0) {
        gw_http_error(c, rc == 0 ? 411 : 400, herald_ERR_BAD_REQUEST,
                      "Content-Length required");
        return -1;
    }
    if (len < YYB_PREFACE_LEN + YYB_FRAME_MIN ||
        len > (uint64_t)c->w->gw->cfg.max_frame * 4 + YYB_PREFACE_LEN) {
        gw_http_error(c, len < YYB_PREFACE_LEN ? 400 : 413,
                      herald_ERR_BAD_REQUEST,
                      "body must be a preface and frames");
        return -1;
    }
    if (!(h->body = malloc(len))) {
        gw_conn_close(c, herald_ERR_SERVER);
        return -1;
    }
    h->body_len = (uint32_t)len;
    size_t extra = h->len - h->req.head_len;
    if (extra > len) extra = len;
    memcpy(h->body, h->buf + h->req.head_len, extra);
    h->body_have = (uint32_t)extra;
    /* curl and others wait a second for this before a larger body */
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (extra < len &&
        http_header_has_token(&h->req, h->buf, "Expect", "100-continue"))
        return gw_conn_send(c, cont, sizeof cont - 1);
    return 0;
}

static void http_reply_bin(gw_conn_t *c, const uint8_t *p, size_t len) {
    char head[160];
    int n =
        snprintf(head, sizeof head,
                 "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                 len);
    if (gw_conn_send(c, head, (size_t)n) < 0 || gw_conn_send(c, p, len) < 0)
        return;
    gw_conn_linger(c, 0);
}

/* The exchange's start: the header token, the answer's preface. */
static int yyb_post_begin(gw_conn_t *c) {
    gw_http_t *h = c->aux;
    gw_worker_t *w = c->w;
    char tok[TOKEN_MAX];
    c->ephemeral = true;
    int tl = find_token(&h->req, h->buf, tok, sizeof tok);
    if (tl >= 0) {
        gw_dev_t *dev = NULL;
        int code = gw_auth_token(c, tok, (size_t)tl, &dev);
        if (code) {
            gw_http_error(c, 401, code, gw_auth_message(code));
            return -1;
        }
        gw_conn_authed(c, dev);
    }
    jce_out_init(&h->cap, JCE_POLICY_CPP);
    h->running = true;
    uint8_t pre[YYB_PREFACE_LEN];
    yyb_preface(pre, YYB_VERSION);
    jce_out_raw(&h->cap, pre, sizeof pre);
    yyb_reader_init(&h->rd, true);
    h->rd.max_frame = w->gw->cfg.max_frame;
    h->off = h->frames = 0;
    return 0;
}

/* Handles the body's packages from where they stand; answers and closes
 * (-1), or pauses at a SYNC waiting for its messages (0). */
static int yyb_post_run(gw_conn_t *c) {
    gw_http_t *h = c->aux;
    gw_worker_t *w = c->w;
    if (!h->running && yyb_post_begin(c) < 0) return -1;
    if (h->waiting) return 0; /* more input meanwhile: not ours to read */
    h->capture = &h->cap;
    c->transport = GW_TCP;
    int rc = 0;
    do {
        yyb_frame_t f;
        size_t n;
        rc = yyb_feed(&h->rd, h->body + h->off, h->body_len - h->off, &n, &f);
        h->off += (uint32_t)n;
        if (rc != YYB_FRAME) break;
        h->frames++;
        atomic_fetch_add_explicit(&w->frames_in, 1, memory_order_relaxed);
        (void)gw_cmd_jce(c, f.data, f.len);
    } while (!h->stop && !h->waiting && c->state == GW_S_HTTP);
    jce_arena_reset(w->arena);
    if (c->state != GW_S_HTTP) return -1; /* closed meanwhile */
    h->capture = NULL;
    c->transport = 0;
    if (h->waiting) return 0;
    if (rc < 0 || (!h->stop && h->off < h->body_len) || h->frames == 0) {
        int code = rc < 0 ? yyb_err_code(rc) : herald_ERR_BAD_PACKAGE;
        gw_http_error(c, 400, code,
                      rc < 0 ? yyb_strerror(rc) : "truncated frame");
        return -1;
    }
    if (h->cap.err) {
        gw_conn_close(c, herald_ERR_SERVER);
        return -1;
    }
    http_reply_bin(c, h->cap.buf, h->cap.len);
    return -1;
}

void gw_http_wait(gw_conn_t *c, int req_id) {
    gw_http_t *h = c->aux;
    h->waiting = true;
    h->wait_req = req_id;
}

void gw_http_sync_done(gw_conn_t *c, const uint8_t *body, size_t len) {
    gw_http_t *h = c->state == GW_S_HTTP && c->aux_http ? c->aux : NULL;
    if (!h || !h->waiting) return;
    h->waiting = false;
    h->capture = &h->cap;
    c->transport = GW_TCP;
    int rc =
        body ? gw_send_package(c, herald_CMD_SYNC, h->wait_req, 0, body, len)
             : gw_send_package(c, herald_CMD_SYNC, h->wait_req,
                               herald_ERR_SERVER, NULL, 0);
    if (rc < 0 || c->state != GW_S_HTTP) return;
    (void)yyb_post_run(c);
}

/* Reads into the head buffer (then a POST body) directly; -1 if the
 * connection closed or is closing. */
int gw_http_read(gw_conn_t *c) {
    gw_http_t *h = c->aux;
    for (;;) {
        if (h->body) {
            if (h->body_have == h->body_len) return yyb_post_run(c);
            ssize_t n = read(c->io.fd, h->body + h->body_have,
                             h->body_len - h->body_have);
            if (n > 0) {
                h->body_have += (uint32_t)n;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
            gw_conn_close(c, 0);
            return -1;
        }
        int rc = http_parse(&h->req, h->buf, h->len);
        if (rc == HTTP_DONE) {
            rc = http_head_done(c);
            if (rc < 0 || c->state != GW_S_HTTP) return rc;
            continue; /* a POST body follows */
        }
        if (rc < 0) {
            gw_http_error(c, http_err_status(rc), herald_ERR_BAD_REQUEST,
                          http_strerror(rc));
            return -1;
        }
        if (h->len >= sizeof h->buf) {
            gw_http_error(c, 431, herald_ERR_BAD_REQUEST,
                          "request head too large");
            return -1;
        }
        ssize_t n = read(c->io.fd, h->buf + h->len, sizeof h->buf - h->len);
        if (n > 0) {
            h->len += (uint16_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
        gw_conn_close(c, 0);
        return -1;
    }
}
