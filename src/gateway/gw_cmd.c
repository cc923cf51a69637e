/*
 * gw_cmd: what device frames mean — authentication, the commands of
 * protocol/Protocol.jce, and what the gateway sends back (responses,
 * pushes) in each transport: raw TCP (length-prefixed Package), WebSocket
 * binary (one Package per message) and WebSocket text (the same package as
 * JSON, docs/gateway.md).  The bytes of those frames are built in
 * gw_frame.c.
 *
 * A request is decoded the same way from JCE or JSON into the generated
 * struct, handled once, and answered through reply(), which picks the
 * encoding from the connection's transport.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>

#include "Protocol.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/net.h"
#include "core/token.h"
#include "gateway/gw_int.h"
#include "jce/jce_json.h"
#include "ops/metrics_herald.h"
#include "ops/ops_mem.h"

#define GW_CMD_RATE 20
#define GW_CMD_BURST 40

/* ---- names ------------------------------------------------------------------ */

static const char *const cmd_names[] = {
    [herald_CMD_HELLO] = "hello",
    [herald_CMD_HEARTBEAT] = "heartbeat",
    [herald_CMD_PUSH] = "push",
    [herald_CMD_ACK] = "ack",
    [herald_CMD_SUBSCRIBE] = "subscribe",
    [herald_CMD_UNSUBSCRIBE] = "unsubscribe",
    [herald_CMD_SYNC] = "sync",
    [herald_CMD_KICK] = "kick",
    [herald_CMD_BYE] = "bye",
};
#define NCMD ((int)(sizeof cmd_names / sizeof cmd_names[0]))

static int cmd_by_name(jce_str_t s) {
    for (int i = 1; i < NCMD; i++)
        if (cmd_names[i] && strlen(cmd_names[i]) == s.len &&
            !memcmp(cmd_names[i], s.data, s.len))
            return i;
    return 0;
}

const char *gw_err_name(int code) {
    switch (code) {
    case herald_ERR_OK: return "ok";
    case herald_ERR_BAD_PREFACE: return "bad_preface";
    case herald_ERR_BAD_VERSION: return "bad_version";
    case herald_ERR_FRAME_TOO_LARGE: return "frame_too_large";
    case herald_ERR_BAD_PACKAGE: return "bad_package";
    case herald_ERR_UNKNOWN_CMD: return "unknown_cmd";
    case herald_ERR_NOT_AUTHED: return "not_authed";
    case herald_ERR_BAD_TOKEN: return "bad_token";
    case herald_ERR_TOKEN_EXPIRED: return "token_expired";
    case herald_ERR_RATE_LIMITED: return "rate_limited";
    case herald_ERR_DUPLICATE_LOGIN: return "duplicate_login";
    case herald_ERR_SLOW_CONSUMER: return "slow_consumer";
    case herald_ERR_DRAINING: return "draining";
    case herald_ERR_HEARTBEAT_TIMEOUT: return "heartbeat_timeout";
    case herald_ERR_SERVER: return "server_error";
    case herald_ERR_BAD_TOPIC: return "bad_topic";
    case herald_ERR_TOO_MANY_TOPICS: return "too_many_topics";
    case herald_ERR_ALREADY_AUTHED: return "already_authed";
    case herald_ERR_BAD_REQUEST: return "bad_request";
    case herald_ERR_OVERLOADED: return "overloaded";
    case herald_ERR_TOO_MANY_CONNS: return "too_many_conns";
    case herald_ERR_TOKEN_TOO_LONG: return "token_too_long";
    case herald_ERR_TOKEN_REVOKED: return "token_revoked";
    }
    return "error";
}

/* ---- replies ------------------------------------------------------------------- */

static int send_frame(gw_conn_t *c, gw_buf_t *b) {
    if (!b) {
        gw_conn_close(c, herald_ERR_SERVER);
        return -1;
    }
    int rc = gw_conn_send_buf(c, b);
    gw_buf_unref(b);
    return rc;
}

int gw_send_package(gw_conn_t *c, int cmd, int req_id, int ret,
                    const uint8_t *body, size_t body_len) {
    return send_frame(
        c, gw_package_frame(c->transport, cmd, req_id, ret, body, body_len));
}

/* How a response body is written in either encoding. */
typedef struct body_ops {
    void (*enc)(const void *v, jce_out_t *o);
    json_t *(*json)(const void *v);
} body_ops_t;

#define BODY_OPS(T)                                                            \
    static void enc_##T(const void *v, jce_out_t *o) {                         \
        herald_##T##_encode(v, o);                                             \
    }                                                                          \
    static json_t *json_##T(const void *v) { return herald_##T##_to_json(v); } \
    static const body_ops_t ops_##T = {enc_##T, json_##T};

BODY_OPS(HelloRsp)
BODY_OPS(HeartbeatRsp)
BODY_OPS(AckRsp)
BODY_OPS(SubscribeRsp)
BODY_OPS(UnsubscribeRsp)
BODY_OPS(SyncRsp)

static json_t *json_error(int cmd, int req_id, int code, const char *msg) {
    json_t *j = json_pack("{s:s, s:i, s:s}", "cmd", "error", "code", code,
                          "message", msg ? msg : gw_err_name(code));
    if (j && cmd > 0 && cmd < NCMD && cmd_names[cmd])
        json_object_set_new(j, "for", json_string(cmd_names[cmd]));
    if (j && req_id) json_object_set_new(j, "reqId", json_integer(req_id));
    return j;
}

/* The ret of the last answer on this thread, for the command metrics. */
static __thread int last_ret;

/* Answers a request: the same cmd and reqId, ret, and the body (NULL ops
 * for none).  JSON errors are {"cmd":"error","code":..,"message":..}. */
static int reply(gw_conn_t *c, int cmd, int req_id, int ret,
                 const body_ops_t *ops, const void *body, const char *msg) {
    last_ret = ret;
    if (c->transport == GW_WS_JSON) {
        json_t *j;
        if (ret) {
            j = json_error(cmd, req_id, ret, msg);
        } else {
            /* cmd, reqId and ret first, then the response's fields */
            j = json_pack("{s:s}", "cmd", cmd_names[cmd]);
            if (j && req_id)
                json_object_set_new(j, "reqId", json_integer(req_id));
            if (j) json_object_set_new(j, "ret", json_integer(0));
            json_t *fields = ops ? ops->json(body) : NULL;
            if (j && fields) json_object_update(j, fields);
            json_decref(fields);
        }
        return send_frame(c, gw_json_frame(j));
    }
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    if (ops) ops->enc(body, &o);
    int rc = o.err ? (gw_conn_close(c, herald_ERR_SERVER), -1)
                   : gw_send_package(c, cmd, req_id, ret, o.buf, o.len);
    jce_out_free(&o);
    return rc;
}

/* After an answer that ends the session: a WebSocket also gets a close
 * frame; then the connection lingers until the peer goes. */
static int close_after(gw_conn_t *c, int code) {
    if (c->state >= GW_S_CLOSING) return -1;
    if (c->transport == GW_WS_JSON || c->transport == GW_WS_JCE) {
        uint8_t fr[2 + WS_MAX_CONTROL];
        const char *why = gw_err_name(code);
        size_t n = ws_close_frame(fr, code ? WS_CLOSE_POLICY : WS_CLOSE_NORMAL,
                                  why, strlen(why));
        if (gw_conn_send(c, fr, n) < 0) return -1;
    }
    gw_conn_linger(c, code);
    return -1;
}

/* ---- pushes -------------------------------------------------------------------- */

static bool has_topic(const gw_topics_t *t, const char *topic) {
    for (uint32_t i = 0; t && i < t->n; i++)
        if (!strcmp(t->t[i], topic)) return true;
    return false;
}

int gw_push_to_conn(gw_conn_t *c, const gw_pmsg_t *pm, gw_buf_t *fmt[3],
                    bool batch) {
    const gw_msg_t *m = &pm->m;
    if (!c->dev || (c->state != GW_S_YYB && c->state != GW_S_WS)) return 0;
    if (m->topic && !has_topic(c->topics, m->topic)) return 0;
    int f = c->transport == GW_TCP ? 0 : c->transport == GW_WS_JCE ? 1 : 2;
    if (!fmt[f]) {
        fmt[f] =
            f == 2 ? gw_push_frame_json(m) : gw_push_frame_jce(m, c->transport);
        if (fmt[f]) fmt[f]->backlog = m->backlog; /* paced, see gw_out.c */
    }
    if (!fmt[f]) return -1;
    if ((batch ? gw_batch_send(c, fmt[f]) : gw_conn_send_buf(c, fmt[f])) < 0)
        return -1;
    if (m->timeline == 0 && m->seq > c->dev->inbox_sent)
        c->dev->inbox_sent = m->seq;
    else if (m->timeline == 1 && m->seq > c->dev->bcast_sent)
        c->dev->bcast_sent = m->seq;
    else if (m->timeline == 2 && m->need_ack)
        c->dev->online_sent++;
    atomic_fetch_add_explicit(&c->w->pushes_written, 1, memory_order_relaxed);
    metrics_inc(M_DELIVERIES, 0, 0);
    if (m->sent_at_ms > 0) {
        int64_t us = (int64_t)mh_wall_us() - m->sent_at_ms * 1000;
        metrics_observe(M_DELIVERY_WRITTEN, 0, 0, us > 0 ? (uint64_t)us : 0);
        if (m->timeline == 0 && m->need_ack && m->seq > 0 &&
            !c->dev->ack_wait_at) {
            c->dev->ack_wait_seq = (uint32_t)m->seq;
            c->dev->ack_wait_at = (uint32_t)m->sent_at_ms | 1; /* never 0 */
        }
    }
    return 1;
}

/* ---- authentication -------------------------------------------------------------- */

const char *gw_auth_message(int code) {
    switch (code) {
    case herald_ERR_TOKEN_EXPIRED: return "token expired";
    case herald_ERR_TOKEN_TOO_LONG:
        return "token lifetime over the server's maximum (token-max-ttl)";
    case herald_ERR_TOKEN_REVOKED:
        return "token issued before the device's tokens were revoked";
    default: return "token rejected";
    }
}

/*
 * A refused login, counted by reason and logged with the peer's address,
 * at most one line a second (a flood of bad tokens must not flood the
 * log; the line after a quiet spell says how many were held back).  The
 * app and device are named only once the signature held: before that
 * they are whatever a stranger typed.  Never the token itself.
 */
static void auth_refused(gw_conn_t *c, int code, const token_view_t *v,
                         bool signed_ok) {
    static log_limit_t lim = LOG_LIMIT_INIT(1000);
    metrics_inc(M_AUTH_FAILURES, mh_auth_idx(code), 0);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char addr[64] = "?";
    if (getpeername(c->io.fd, (struct sockaddr *)&ss, &sl) == 0)
        (void)net_addr_str(&ss, addr, sizeof addr);
    if (signed_ok)
        log_limited(&lim, LOG_LEVEL_WARN, "device login refused",
                    "reason=%s addr=%s app=%.*s device=%.*s", gw_err_name(code),
                    addr, (int)v->app_len, v->app, (int)v->dev_len, v->dev);
    else
        log_limited(&lim, LOG_LEVEL_WARN, "device login refused",
                    "reason=%s addr=%s", gw_err_name(code), addr);
}

/* After the signature: the lifetime (a leaked token stays useful for a
 * bounded time only), then the device's revocation, both from memory. */
static int auth_policy(gw_t *gw, const token_view_t *v, const char *app,
                       int64_t now, int64_t *issued) {
    int64_t max = __atomic_load_n(&gw->cfg.token_max_ttl, __ATOMIC_RELAXED);
    if (max > 0 && token_lifetime(v, now) > max)
        return herald_ERR_TOKEN_TOO_LONG;
    *issued = token_issued_at(v, max);
    if (!gw->svc.revoked) return 0;
    char dev[TOKEN_ID_MAX + 1];
    memcpy(dev, v->dev, v->dev_len);
    dev[v->dev_len] = 0;
    int64_t before = gw->svc.revoked(gw->svc.ctx, app, dev);
    return before > 0 && *issued < before ? herald_ERR_TOKEN_REVOKED : 0;
}

int gw_auth_token(gw_conn_t *c, const char *tok, size_t len, gw_dev_t **out) {
    gw_t *gw = c->w->gw;
    token_view_t v;
    *out = NULL;
    if (token_parse(tok, len, &v) < 0 || !gw->svc.app_secret) {
        auth_refused(c, herald_ERR_BAD_TOKEN, &v, false);
        return herald_ERR_BAD_TOKEN;
    }
    char app[TOKEN_APP_MAX + 1];
    memcpy(app, v.app, v.app_len);
    app[v.app_len] = 0;
    uint8_t secret[512];
    int sl = gw->svc.app_secret(gw->svc.ctx, app, secret, sizeof secret);
    int64_t now = (int64_t)time(NULL), issued = 0;
    int rc =
        sl < 0 ? TOKEN_ERR_BAD_SIG : token_verify(&v, secret, (size_t)sl, now);
    memset(secret, 0, sizeof secret);
    int code = rc == TOKEN_ERR_EXPIRED ? herald_ERR_TOKEN_EXPIRED
               : rc < 0                ? herald_ERR_BAD_TOKEN
                                       : auth_policy(gw, &v, app, now, &issued);
    if (code) {
        auth_refused(c, code, &v, rc == 0 || rc == TOKEN_ERR_EXPIRED);
        return code;
    }
    gw_dev_t *d = calloc(1, sizeof *d + v.dev_len + 1);
    if (!d || !(d->app = gw_app_intern(gw, v.app, v.app_len))) {
        free(d);
        return herald_ERR_SERVER;
    }
    d->len = v.dev_len;
    memcpy(d->name, v.dev, v.dev_len);
    d->name[v.dev_len] = 0;
    d->issued_s = issued;
    *out = d;
    return 0;
}

void gw_conn_authed(gw_conn_t *c, gw_dev_t *dev) {
    gw_t *gw = c->w->gw;
    c->dev = dev;
    if (c->ephemeral) {
        /* One HTTP request: it must not kick the device's connection nor
         * count as online. */
        c->offline_told = true;
        return;
    }
    atomic_fetch_add(&dev->app->online, 1);
    atomic_fetch_add_explicit(&c->w->authed_now, 1, memory_order_relaxed);
    c->rl_tokens = GW_CMD_BURST; /* a full bucket from the first command */
    c->rl_tick = (uint16_t)(ev_now_ms(c->w->loop) / (1000 / GW_CMD_RATE));
    metrics_inc(M_CONNECTS, mh_transport_idx(c->transport), 0);
    metrics_gauge_add(M_CONNECTIONS, mh_transport_idx(c->transport), 0, 1);
    gw_conn_set_idle(c, gw_idle_for(gw, c->hb));
    gw_reg_add(gw, c);
    if (gw->svc.online) {
        gw_device_t d = {.app = dev->app->name,
                         .device = dev->name,
                         .transport = c->transport,
                         .inbox_seq = dev->inbox_seq,
                         .broadcast_seq = dev->broadcast_seq};
        gw->svc.online(gw->svc.ctx, &d);
    }
}

/* sid: the session's id, for logs on both sides (worker, slot, generation:
 * unique within this process). */
static void hello_rsp(gw_conn_t *c, herald_HelloRsp *r, char sid[40]) {
    herald_HelloRsp_init(r);
    r->deviceId = jce_str_from(c->dev->name);
    r->idleTimeout = gw_idle_for(c->w->gw, c->hb);
    gw_config_t *cfg = &c->w->gw->cfg; /* the range may change: reload */
    r->heartbeatMin = __atomic_load_n(&cfg->hb_min, __ATOMIC_RELAXED);
    r->heartbeatMax = __atomic_load_n(&cfg->hb_max, __ATOMIC_RELAXED);
    r->serverTime = (int64_t)clock_wall_ms();
    snprintf(sid, 40, "%d-%u-%u", c->w->idx, c->slot, c->gen);
    r->sessionId = jce_str_from(sid);
}

int gw_cmd_ws_hello(gw_conn_t *c) {
    herald_HelloRsp r;
    char sid[40];
    hello_rsp(c, &r, sid);
    return reply(c, herald_CMD_HELLO, 0, 0, &ops_HelloRsp, &r, NULL);
}

/* ---- topics ----------------------------------------------------------------------- */

static bool topic_valid(jce_str_t s) {
    if (s.len == 0 || s.len > GW_TOPIC_MAX) return false;
    for (uint32_t i = 0; i < s.len; i++) {
        char ch = s.data[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || strchr("_-:@./", ch)))
            return false;
    }
    return true;
}

void gw_topics_free(gw_topics_t *t) {
    for (uint32_t i = 0; t && i < t->n; i++) free(t->t[i]);
    free(t);
}

static int topic_add(gw_conn_t *c, jce_str_t s) {
    if (!topic_valid(s)) return herald_ERR_BAD_TOPIC;
    char name[GW_TOPIC_MAX + 1];
    memcpy(name, s.data, s.len);
    name[s.len] = 0;
    if (has_topic(c->topics, name)) return 0;
    if (!c->topics && !(c->topics = calloc(1, sizeof *c->topics)))
        return herald_ERR_SERVER;
    if (c->topics->n >= GW_MAX_TOPICS) return herald_ERR_TOO_MANY_TOPICS;
    if (!(c->topics->t[c->topics->n] = strdup(name))) return herald_ERR_SERVER;
    c->topics->n++;
    return 0;
}

static bool topic_del(gw_conn_t *c, jce_str_t s) {
    gw_topics_t *t = c->topics;
    for (uint32_t i = 0; t && i < t->n; i++) {
        if (strlen(t->t[i]) == s.len && !memcmp(t->t[i], s.data, s.len)) {
            free(t->t[i]);
            t->t[i] = t->t[--t->n];
            return true;
        }
    }
    return false;
}

/* Subscribes to each topic; the refused ones go into rej (arena). */
static void subscribe(gw_conn_t *c, const jcev_string *topics,
                      jcem_string_int32 *rej) {
    jce_arena_t *a = c->w->arena;
    memset(rej, 0, sizeof *rej);
    if (!topics->n) return;
    rej->keys = jce_arena_alloc(a, topics->n * sizeof *rej->keys);
    rej->vals = jce_arena_alloc(a, topics->n * sizeof *rej->vals);
    if (!rej->keys || !rej->vals) return;
    for (uint32_t i = 0; i < topics->n; i++) {
        int code = topic_add(c, topics->items[i]);
        if (code) {
            rej->keys[rej->n] = topics->items[i];
            rej->vals[rej->n++] = code;
        }
    }
}

/* ---- commands ---------------------------------------------------------------------- */

/* The request body, from either encoding. */
typedef struct req_src {
    const uint8_t *jce;
    size_t jce_len;
    const char *json; /* non-NULL for WebSocket text: the whole message */
    size_t json_len;
} req_src_t;

typedef int (*dec_jce_fn)(void *v, jce_in_t *in);
typedef int (*dec_json_fn)(void *v, const char *buf, size_t len, jce_arena_t *a,
                           jce_json_res_t *res);

static int decode(gw_conn_t *c, const req_src_t *src, dec_jce_fn dj,
                  dec_json_fn dn, void *v) {
    if (src->json) {
        jce_json_res_t res;
        return dn(v, src->json, src->json_len, c->w->arena, &res) < 0 ? -1 : 0;
    }
    jce_in_t in;
    jce_in_init(&in, src->jce, src->jce_len, c->w->arena);
    return dj(v, &in) < 0 ? -1 : 0;
}

/* Typed wrappers, so no function is called through a cast pointer. */
#define DEC_OPS(T)                                                          \
    static int dj_##T(void *v, jce_in_t *in) {                              \
        return herald_##T##_decode(v, in);                                  \
    }                                                                       \
    static int dn_##T(void *v, const char *buf, size_t len, jce_arena_t *a, \
                      jce_json_res_t *res) {                                \
        return herald_##T##_from_json_text(v, buf, len, a, res);            \
    }
DEC_OPS(HelloReq)
DEC_OPS(HeartbeatReq)
DEC_OPS(AckReq)
DEC_OPS(SubscribeReq)
DEC_OPS(UnsubscribeReq)
DEC_OPS(SyncReq)
#define DECODE(T, v) decode(c, src, dj_##T, dn_##T, v)

static int bad_package(gw_conn_t *c, int cmd, int req_id) {
    if (reply(c, cmd, req_id, herald_ERR_BAD_PACKAGE, NULL, NULL,
              "body did not decode") < 0)
        return -1;
    return close_after(c, herald_ERR_BAD_PACKAGE);
}

static int cmd_hello(gw_conn_t *c, int req_id, const req_src_t *src) {
    if (c->dev)
        return reply(c, herald_CMD_HELLO, req_id, herald_ERR_ALREADY_AUTHED,
                     NULL, NULL, NULL);
    herald_HelloReq q;
    if (DECODE(HelloReq, &q) < 0)
        return bad_package(c, herald_CMD_HELLO, req_id);
    gw_dev_t *dev;
    /* Overloaded since this connection was admitted: still new work. */
    bool over = ops_mem_over(c->w->gw->cfg.mem);
    int code = c->w->draining ? herald_ERR_DRAINING
               : over         ? herald_ERR_OVERLOADED
                      : gw_auth_token(c, q.token.data, q.token.len, &dev);
    if (over && !c->w->draining) gw_refuse_count(GW_R_MEMORY);
    if (code) {
        if (reply(c, herald_CMD_HELLO, req_id, code, NULL, NULL,
                  over || c->w->draining ? NULL : gw_auth_message(code)) < 0)
            return -1;
        return close_after(c, code);
    }
    c->hb = (uint16_t)gw_clamp_hb(c->w->gw, q.heartbeat);
    dev->inbox_seq = q.inboxSeq;
    dev->broadcast_seq = q.broadcastSeq;
    gw_conn_authed(c, dev);
    jcem_string_int32 rej;
    subscribe(c, &q.topics, &rej); /* refusals are not reported in HelloRsp */
    herald_HelloRsp r;
    char sid[40];
    hello_rsp(c, &r, sid);
    return reply(c, herald_CMD_HELLO, req_id, 0, &ops_HelloRsp, &r, NULL);
}

static int cmd_heartbeat(gw_conn_t *c, int req_id, const req_src_t *src) {
    herald_HeartbeatReq q;
    if (DECODE(HeartbeatReq, &q) < 0)
        return bad_package(c, herald_CMD_HEARTBEAT, req_id);
    c->hb = (uint16_t)gw_clamp_hb(c->w->gw, q.interval);
    gw_conn_set_idle(c, gw_idle_for(c->w->gw, c->hb));
    herald_HeartbeatRsp r;
    herald_HeartbeatRsp_init(&r);
    r.idleTimeout = gw_idle_for(c->w->gw, c->hb);
    r.serverTime = (int64_t)clock_wall_ms();
    return reply(c, herald_CMD_HEARTBEAT, req_id, 0, &ops_HeartbeatRsp, &r,
                 NULL);
}

/* An ack covers what the device was sent on this connection, no more:
 * a cursor beyond it (2^63-1) is cut to the highest seq written here, the
 * same value the store records (it clamps to the seqs it assigned, which
 * every seq written here is).  Seqs a device had before it connected are
 * covered by its next ack of a newer one (acks are cumulative).
 * POST /v1/yyb is sent no pushes, so it cannot know the device's head: its
 * ack goes on as given (the store clamps it) and its AckRsp carries no
 * cursors (GET /v1/devices/{id} shows what was recorded). */
static int64_t ack_clamp(int64_t want, int64_t sent) {
    return want > sent ? sent : want;
}

/* A msgId as the push service makes them (24 hex digits): anything else
 * was never sent. */
static bool msg_id_like(jce_str_t s) {
    if (s.len != 24) return false;
    for (uint32_t i = 0; i < s.len; i++)
        if (!((s.data[i] >= '0' && s.data[i] <= '9') ||
              (s.data[i] >= 'a' && s.data[i] <= 'f')))
            return false;
    return true;
}

/* Online-only messages acked by id (they have no seq): each counts once
 * in its message's status (herald trace shows acked), up to as many as
 * the connection was sent. */
static void ack_ids(gw_conn_t *c, const jcev_string *ids) {
    gw_t *gw = c->w->gw;
    gw_dev_t *dv = c->dev;
    for (uint32_t i = 0; gw->svc.acked && i < ids->n; i++) {
        if (dv->online_acked == dv->online_sent) return;
        if (!msg_id_like(ids->items[i])) continue;
        char id[25];
        memcpy(id, ids->items[i].data, 24);
        id[24] = 0;
        dv->online_acked++;
        gw->svc.acked(gw->svc.ctx, dv->app->name, id);
    }
}

static int cmd_ack(gw_conn_t *c, int req_id, const req_src_t *src) {
    herald_AckReq q;
    if (DECODE(AckReq, &q) < 0) return bad_package(c, herald_CMD_ACK, req_id);
    if (q.inboxSeq < 0 || q.broadcastSeq < 0)
        return reply(c, herald_CMD_ACK, req_id, herald_ERR_BAD_REQUEST, NULL,
                     NULL, NULL);
    gw_t *gw = c->w->gw;
    gw_dev_t *dv = c->dev;
    int64_t in =
        c->ephemeral ? q.inboxSeq : ack_clamp(q.inboxSeq, dv->inbox_sent);
    int64_t bc = c->ephemeral ? q.broadcastSeq
                              : ack_clamp(q.broadcastSeq, dv->bcast_sent);
    if (in > dv->inbox_acked) dv->inbox_acked = in;
    if (bc > dv->bcast_acked) dv->bcast_acked = bc;
    if (in > dv->inbox_seq) dv->inbox_seq = in;
    if (dv->ack_wait_at && (int32_t)((uint32_t)in - dv->ack_wait_seq) >= 0) {
        uint32_t ms = (uint32_t)clock_wall_ms() - dv->ack_wait_at;
        metrics_observe(M_DELIVERY_ACKED, 0, 0, (uint64_t)ms * 1000);
        dv->ack_wait_at = 0;
    }
    if (bc > dv->broadcast_seq) dv->broadcast_seq = bc;
    atomic_fetch_add_explicit(&c->w->acks, 1, memory_order_relaxed);
    ack_ids(c, &q.msgIds);
    if (gw->svc.ack) {
        gw_device_t d = {.app = dv->app->name,
                         .device = dv->name,
                         .transport = c->transport,
                         .inbox_seq = dv->inbox_seq,
                         .broadcast_seq = dv->broadcast_seq};
        gw->svc.ack(gw->svc.ctx, &d, in > 0 ? in : -1, bc > 0 ? bc : -1);
    }
    /* reqId 0: one-way (docs/protocol.md).  A device acking every push
     * of a busy stream would otherwise get as many answers as pushes, a
     * write here and a read there each, for cursors it already knows. */
    if (req_id == 0) {
        last_ret = 0;
        return 0;
    }
    herald_AckRsp r;
    herald_AckRsp_init(&r);
    if (!c->ephemeral) {
        r.inboxSeq = dv->inbox_acked;
        r.broadcastSeq = dv->bcast_acked;
    }
    return reply(c, herald_CMD_ACK, req_id, 0, &ops_AckRsp, &r, NULL);
}

static int cmd_subscribe(gw_conn_t *c, int req_id, const req_src_t *src) {
    herald_SubscribeReq q;
    if (DECODE(SubscribeReq, &q) < 0)
        return bad_package(c, herald_CMD_SUBSCRIBE, req_id);
    herald_SubscribeRsp r;
    herald_SubscribeRsp_init(&r);
    subscribe(c, &q.topics, &r.rejected);
    int ret = r.rejected.n == q.topics.n && q.topics.n ? r.rejected.vals[0] : 0;
    if (ret)
        return reply(c, herald_CMD_SUBSCRIBE, req_id, ret, NULL, NULL, NULL);
    return reply(c, herald_CMD_SUBSCRIBE, req_id, 0, &ops_SubscribeRsp, &r,
                 NULL);
}

static int cmd_unsubscribe(gw_conn_t *c, int req_id, const req_src_t *src) {
    herald_UnsubscribeReq q;
    if (DECODE(UnsubscribeReq, &q) < 0)
        return bad_package(c, herald_CMD_UNSUBSCRIBE, req_id);
    herald_UnsubscribeRsp r;
    herald_UnsubscribeRsp_init(&r);
    for (uint32_t i = 0; i < q.topics.n; i++)
        r.count += topic_del(c, q.topics.items[i]);
    return reply(c, herald_CMD_UNSUBSCRIBE, req_id, 0, &ops_UnsubscribeRsp, &r,
                 NULL);
}

/* The gateway holds no store: the service reads it on its own thread and
 * sends what is stored after the device's cursors as pushes (acked like
 * any other); the answer here only confirms the request. */
/* A SyncReq's limit: 1..SYNC_LIMIT_MAX, the IDL's 100 when absent. */
#define SYNC_LIMIT_MAX 1000

static int cmd_sync(gw_conn_t *c, int req_id, const req_src_t *src) {
    herald_SyncReq q;
    if (DECODE(SyncReq, &q) < 0) return bad_package(c, herald_CMD_SYNC, req_id);
    gw_t *gw = c->w->gw;
    gw_device_t d = {.app = c->dev->app->name,
                     .device = c->dev->name,
                     .transport = c->transport,
                     .inbox_seq = c->dev->inbox_seq,
                     .broadcast_seq = c->dev->broadcast_seq};
    int64_t in = q.inboxSeq > 0 ? q.inboxSeq : 0;
    int64_t bc = q.broadcastSeq > 0 ? q.broadcastSeq : 0;
    /* POST /v1/yyb: no pushes can follow the answer, so the answer
     * carries the messages (the exchange waits for the store). */
    if (c->ephemeral && c->aux_http && gw->svc.fetch) {
        uint32_t limit = q.limit > 0 && q.limit <= SYNC_LIMIT_MAX
                             ? (uint32_t)q.limit
                         : q.limit > 0 ? SYNC_LIMIT_MAX
                                       : 100;
        if (gw->svc.fetch(gw->svc.ctx, &d, in, bc, limit, gw_conn_token(c)) ==
            0) {
            last_ret = 0;
            gw_http_wait(c, req_id);
            return 0;
        }
    } else if (gw->svc.sync) {
        gw->svc.sync(gw->svc.ctx, &d, in, bc);
    }
    herald_SyncRsp r;
    herald_SyncRsp_init(&r);
    return reply(c, herald_CMD_SYNC, req_id, 0, &ops_SyncRsp, &r, NULL);
}

/* Per-device command limit: GW_CMD_RATE/s, bursts of GW_CMD_BURST, kept
 * in two fields of the connection (no lock: one worker owns it).  ACKs are
 * exempt: they are cumulative, a refused one would only make the device
 * get messages again, and a reconnect sync can legitimately bring many. */

static bool cmd_allowed(gw_conn_t *c) {
    /* 16-bit ticks wrap after ~55 min; a wrapped difference only refills
     * less, never more, than it should. */
    uint16_t now = (uint16_t)(ev_now_ms(c->w->loop) / (1000 / GW_CMD_RATE));
    uint16_t add = (uint16_t)(now - c->rl_tick);
    if (add) {
        uint32_t t = (uint32_t)c->rl_tokens + add;
        c->rl_tokens = (uint8_t)(t > GW_CMD_BURST ? GW_CMD_BURST : t);
        c->rl_tick = now;
    }
    if (!c->rl_tokens) return false;
    c->rl_tokens--;
    return true;
}

static int dispatch_cmd(gw_conn_t *c, int cmd, int req_id,
                        const req_src_t *src) {
    if (cmd == herald_CMD_HELLO) return cmd_hello(c, req_id, src);
    if (!c->dev) {
        if (reply(c, cmd, req_id, herald_ERR_NOT_AUTHED, NULL, NULL,
                  "hello first") < 0)
            return -1;
        return close_after(c, herald_ERR_NOT_AUTHED);
    }
    if (cmd != herald_CMD_ACK && !cmd_allowed(c))
        return reply(c, cmd, req_id, herald_ERR_RATE_LIMITED, NULL, NULL,
                     "too many commands");
    switch (cmd) {
    case herald_CMD_HEARTBEAT: return cmd_heartbeat(c, req_id, src);
    case herald_CMD_ACK: return cmd_ack(c, req_id, src);
    case herald_CMD_SUBSCRIBE: return cmd_subscribe(c, req_id, src);
    case herald_CMD_UNSUBSCRIBE: return cmd_unsubscribe(c, req_id, src);
    case herald_CMD_SYNC: return cmd_sync(c, req_id, src);
    case herald_CMD_BYE: return close_after(c, 0);
    }
    return reply(c, cmd, req_id, herald_ERR_UNKNOWN_CMD, NULL, NULL,
                 "unknown command");
}

/* dispatch_cmd, counted: by command and result, with its latency. */
static int dispatch(gw_conn_t *c, int cmd, int req_id, const req_src_t *src) {
    uint64_t t0 = mh_mono_us();
    last_ret = 0;
    int rc = dispatch_cmd(c, cmd, req_id, src);
    unsigned ci = mh_cmd_idx(cmd);
    metrics_inc(M_DEVICE_CMDS, ci, mh_result_idx(last_ret));
    metrics_observe(M_DEVICE_CMD_LATENCY, ci, 0, mh_mono_us() - t0);
    if (last_ret == 0 && cmd == herald_CMD_HEARTBEAT)
        metrics_inc(M_HEARTBEATS, 0, 0);
    if (last_ret == 0 && cmd == herald_CMD_ACK) metrics_inc(M_ACKS, 0, 0);
    return rc;
}

int gw_cmd_jce(gw_conn_t *c, const uint8_t *p, size_t len) {
    herald_Package pk;
    jce_in_t in;
    jce_in_init(&in, p, len, c->w->arena);
    if (herald_Package_decode(&pk, &in) < 0) {
        if (reply(c, 0, 0, herald_ERR_BAD_PACKAGE, NULL, NULL,
                  "package did not decode") < 0)
            return -1;
        return close_after(c, herald_ERR_BAD_PACKAGE);
    }
    req_src_t src = {.jce = pk.body.data, .jce_len = pk.body.len};
    return dispatch(c, pk.cmd, pk.reqId, &src);
}

/* An error frame names the request it answers ("for", protocol.md §3.3):
 * an unknown command by the name it came with (at most 32 bytes of it). */
static int unknown_json(gw_conn_t *c, jce_str_t name, int req_id) {
    last_ret = herald_ERR_UNKNOWN_CMD;
    json_t *j =
        json_error(0, req_id, herald_ERR_UNKNOWN_CMD, "unknown command");
    if (j)
        json_object_set_new(
            j, "for", json_stringn(name.data, name.len < 32 ? name.len : 32));
    return send_frame(c, gw_json_frame(j));
}

/* The JSON form of a Package's head (protocol.md §3.3): the command by
 * its name, which no IDL struct holds, and reqId; the body's fields sit
 * beside them and are read again as the command's struct. */
typedef struct json_head {
    jce_str_t cmd;
    int64_t req_id;
} json_head_t;

static void json_head_init(void *v) { memset(v, 0, sizeof(json_head_t)); }

static const jce_json_field_t json_head_fields[] = {
    {"cmd", 3, offsetof(json_head_t, cmd), false, &jce_json_string},
    {"reqId", 5, offsetof(json_head_t, req_id), false, &jce_json_int64},
};
static const jce_json_type_t json_head_type = {
    JCE_JSON_STRUCT, sizeof(json_head_t), NULL, NULL,
    json_head_init,  json_head_fields,    2};

/* A text message: held to the push API's strictness (jce/jce_json.h: a
 * key twice, \u0000, bytes that are not UTF-8 ... end the session as a
 * package that does not decode). */
int gw_cmd_json(gw_conn_t *c, const uint8_t *p, size_t len) {
    json_head_t h;
    jce_json_res_t res;
    int rc = jce_json_decode(&json_head_type, &h, (const char *)p, len,
                             c->w->arena, 0, &res);
    if (rc == JCE_ERR_NOMEM) {
        gw_conn_close(c, herald_ERR_SERVER);
        return -1;
    }
    if (res.reason || res.top || (res.bad & 1) || !(res.seen & 1)) {
        if (reply(c, 0, 0, herald_ERR_BAD_PACKAGE, NULL, NULL,
                  res.reason ? herald_strerror(res.reason)
                             : "expected a JSON object with \"cmd\"") < 0)
            return -1;
        return close_after(c, herald_ERR_BAD_PACKAGE);
    }
    /* a reqId that is not an integer is no reqId, as before */
    int req_id = (res.bad & 2) ? 0 : (int)h.req_id;
    int cmd = cmd_by_name(h.cmd);
    req_src_t src = {.json = (const char *)p, .json_len = len};
    return cmd ? dispatch(c, cmd, req_id, &src)
               : unknown_json(c, h.cmd, req_id);
}
