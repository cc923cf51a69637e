/*
 * trpc: frame codec and the generic TARS RPC server (see trpc.h).
 *
 * The server keeps one arena and one scratch output buffer and resets both
 * on every call, so a call allocates nothing once they have grown to the
 * working size, and nothing a call decoded can outlive it.
 */
#include "rpc/trpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "RequestF.h"

#define STATUS_RESULT_CODE "STATUS_RESULT_CODE"
#define STATUS_RESULT_DESC "STATUS_RESULT_DESC"

typedef struct servant {
    char *name;
    size_t name_len;
    const jce_interface_t *itf;
    const void *impl;
} servant_t;

struct trpc_server {
    servant_t *servants;
    size_t n_servants;
    jce_arena_t *arena; /* per call, reset at the start of each */
    jce_out_t body;     /* the reply's sBuffer, reused */
};

/* ---- frames ---- */

static uint32_t load_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

int trpc_frame_check(const uint8_t *buf, size_t len, uint32_t max,
                     uint32_t *frame_len) {
    if (max == 0) max = TRPC_MAX_FRAME_DEFAULT;
    if (len < 4) return 0;
    uint32_t n = load_be32(buf);
    if (n < TRPC_MIN_FRAME || n > max) return TRPC_ERR_FRAME;
    if (len < n) return 0;
    *frame_len = n;
    return 1;
}

/* Reserves the 4-byte prefix; frame_close fills it once the packet is in. */
static size_t frame_open(jce_out_t *o) { return jce_out_reserve(o, 4); }

static void frame_close(jce_out_t *o, size_t off) {
    if (o->err) return;
    size_t n = o->len - off;
    if (n > UINT32_MAX) {
        o->err = JCE_ERR_LIMIT;
        return;
    }
    uint8_t *p = o->buf + off;
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
}

/* TUP versions (2 complex, 3 simple) are answered RequestPacket-shaped;
 * everything else, even an unsupported version, as a ResponsePacket. */
static bool is_tup(int version) {
    return version == 2 || version == JCE_RPC_TUP;
}

/* ---- server ---- */

trpc_server_t *trpc_server_new(void) {
    trpc_server_t *srv = calloc(1, sizeof *srv);
    if (!srv) return NULL;
    srv->arena = jce_arena_new(0);
    if (!srv->arena) {
        free(srv);
        return NULL;
    }
    jce_out_init(&srv->body, JCE_POLICY_CPP);
    return srv;
}

void trpc_server_free(trpc_server_t *srv) {
    if (!srv) return;
    for (size_t i = 0; i < srv->n_servants; i++) free(srv->servants[i].name);
    free(srv->servants);
    jce_arena_free(srv->arena);
    jce_out_free(&srv->body);
    free(srv);
}

static const servant_t *find_servant(const trpc_server_t *srv, jce_str_t name) {
    for (size_t i = 0; i < srv->n_servants; i++) {
        const servant_t *s = &srv->servants[i];
        if (s->name_len == name.len &&
            memcmp(s->name, name.data, name.len) == 0)
            return s;
    }
    return NULL;
}

int trpc_server_add(trpc_server_t *srv, const char *servant,
                    const jce_interface_t *itf, const void *impl) {
    if (!srv || !servant || !*servant || !itf) return TRPC_ERR_ARG;
    if (find_servant(srv, jce_str_from(servant))) return TRPC_ERR_EXISTS;
    servant_t *grown =
        realloc(srv->servants, (srv->n_servants + 1) * sizeof *grown);
    if (!grown) return TRPC_ERR_NOMEM;
    srv->servants = grown;
    servant_t *s = &grown[srv->n_servants];
    s->name = strdup(servant);
    if (!s->name) return TRPC_ERR_NOMEM;
    s->name_len = strlen(servant);
    s->itf = itf;
    s->impl = impl;
    srv->n_servants++;
    return 0;
}

/* What the dispatch produced, before it is wrapped into a reply packet. */
typedef struct outcome {
    int32_t ret;
    jce_bytes_t body;
    const char *desc;
} outcome_t;

/* "<what>: <name>" into call->desc, the name cut to keep it readable. */
static void set_desc(jce_call_t *call, const char *what, jce_str_t name) {
    int n = name.len > 64 ? 64 : (int)name.len;
    snprintf(call->desc, sizeof call->desc, "%s: %.*s", what, n,
             name.data ? name.data : "");
}

/* Finds servant and method and runs it; the sBuffer it writes is left in
 * srv->body.  info gets the names found. */
static int32_t dispatch(trpc_server_t *srv, const tars_RequestPacket *req,
                        void *ctx, jce_call_t *call, trpc_req_t *info) {
    call->version = req->iVersion;
    call->args = req->sBuffer.data;
    call->args_len = req->sBuffer.len;
    call->arena = srv->arena;
    call->out = &srv->body;
    call->ctx = ctx;
    call->desc[0] = '\0';
    call->deferred = false;

    if (req->iVersion != JCE_RPC_TARS && req->iVersion != JCE_RPC_TUP) {
        snprintf(call->desc, sizeof call->desc, "unsupported iVersion %d",
                 (int)req->iVersion);
        return JCE_RPC_DECODE_ERR;
    }
    const servant_t *s = find_servant(srv, req->sServantName);
    if (!s) {
        set_desc(call, "no such servant", req->sServantName);
        return JCE_RPC_NO_SERVANT;
    }
    info->servant = s->name;
    /* Built in for every servant, as in TarsCpp's Servant::dispatch: an
     * empty sBuffer, or an empty map for TUP peers that decode one. */
    if (jce_str_eq(req->sFuncName, JCE_STR_LIT("tars_ping"))) {
        info->func = "tars_ping";
        if (req->iVersion == JCE_RPC_TUP) jce_tup_put_begin(call->out, 0);
        return JCE_RPC_OK;
    }
    const jce_method_t *m =
        jce_interface_find(s->itf, req->sFuncName.data, req->sFuncName.len);
    if (!m) {
        set_desc(call, "no such function", req->sFuncName);
        return JCE_RPC_NO_FUNC;
    }
    info->func = m->name;
    int32_t ret = m->fn(s->impl, call);
    if (ret == JCE_RPC_OK && call->out->err) {
        snprintf(call->desc, sizeof call->desc, "encode error: %s",
                 herald_strerror(call->out->err));
        ret = JCE_RPC_ENCODE_ERR;
    }
    if (ret == JCE_RPC_NO_FUNC && !call->desc[0])
        set_desc(call, "function not implemented", req->sFuncName);
    return ret;
}

/* The request fields an answer repeats.  Names as the request spelled them
 * (immediate answers) or as registered (deferred ones): the same bytes
 * whenever the call reached a method. */
typedef struct reply_head {
    int16_t version;
    int32_t req_id;
    int32_t msg_type;
    jce_str_t servant;
    jce_str_t func;
} reply_head_t;

static void encode_v1_reply(const reply_head_t *h, const outcome_t *oc,
                            jce_out_t *reply) {
    tars_ResponsePacket rsp;
    tars_ResponsePacket_init(&rsp);
    rsp.iVersion = h->version;
    rsp.cPacketType = TRPC_NORMAL;
    rsp.iRequestId = h->req_id;
    rsp.iMessageType = h->msg_type;
    rsp.iRet = oc->ret;
    rsp.sBuffer = oc->body;
    rsp.sResultDesc = jce_str_from(oc->desc);
    tars_ResponsePacket_encode(&rsp, reply);
}

/* TUP answers are RequestPacket-shaped (tars-wire §2.4).  Both status keys
 * are always written, as the JS server does; keys are in memcmp order so
 * the map is also what C++ would write. */
static void encode_v3_reply(const reply_head_t *h, const outcome_t *oc,
                            jce_out_t *reply) {
    char code[16];
    snprintf(code, sizeof code, "%d", (int)oc->ret);
    jce_str_t keys[2] = {JCE_STR_LIT(STATUS_RESULT_CODE),
                         JCE_STR_LIT(STATUS_RESULT_DESC)};
    jce_str_t vals[2] = {jce_str_from(code), jce_str_from(oc->desc)};

    tars_RequestPacket rsp;
    tars_RequestPacket_init(&rsp);
    rsp.iVersion = h->version;
    rsp.cPacketType = TRPC_NORMAL;
    rsp.iMessageType = h->msg_type;
    rsp.iRequestId = h->req_id;
    rsp.sServantName = h->servant;
    rsp.sFuncName = h->func;
    rsp.sBuffer = oc->body;
    rsp.status.keys = keys;
    rsp.status.vals = vals;
    rsp.status.n = 2;
    tars_RequestPacket_encode(&rsp, reply);
}

/* No partial results on an error.  A TUP client decodes sBuffer as a map
 * even then (@tars/rpc throws on an empty one), so it gets {}. */
static void fail_body(int version, outcome_t *oc) {
    static const uint8_t empty_tup[] = {0x08, 0x0c};
    bool tup = is_tup(version);
    oc->body.data = tup ? empty_tup : NULL;
    oc->body.len = tup ? sizeof empty_tup : 0;
}

static int encode_reply(const reply_head_t *h, outcome_t *oc,
                        jce_out_t *reply) {
    if (oc->ret != JCE_RPC_OK) fail_body(h->version, oc);
    int policy = reply->policy;
    reply->policy = JCE_POLICY_CPP;
    size_t off = frame_open(reply);
    if (is_tup(h->version))
        encode_v3_reply(h, oc, reply);
    else
        encode_v1_reply(h, oc, reply);
    frame_close(reply, off);
    reply->policy = policy;
    return reply->err ? TRPC_ERR_ENCODE : 0;
}

int trpc_server_handle_async(trpc_server_t *srv, const uint8_t *frame,
                             size_t len, void *ctx, jce_out_t *reply,
                             trpc_req_t *info_out) {
    jce_out_reset(reply);
    uint32_t flen = 0;
    if (trpc_frame_check(frame, len, UINT32_MAX, &flen) != 1 || flen != len)
        return TRPC_ERR_FRAME;

    jce_arena_reset(srv->arena);
    jce_out_reset(&srv->body);
    srv->body.policy = JCE_POLICY_CPP;

    tars_RequestPacket req;
    jce_in_t in;
    jce_in_init(&in, frame + 4, len - 4, srv->arena);
    if (tars_RequestPacket_decode(&req, &in) < 0) return TRPC_ERR_DECODE;

    trpc_req_t info = {.version = req.iVersion,
                       .packet_type = req.cPacketType,
                       .req_id = req.iRequestId,
                       .msg_type = req.iMessageType};
    jce_call_t call;
    memset(&call, 0, sizeof call);
    outcome_t oc;
    oc.ret = dispatch(srv, &req, ctx, &call, &info);
    if (call.deferred) {
        if (info_out) {
            *info_out = info;
            return HERALD_EINPROGRESS;
        }
        snprintf(call.desc, sizeof call.desc,
                 "answer deferred on a synchronous server");
        oc.ret = JCE_RPC_UNKNOWN_ERR;
    }
    info.ret = oc.ret;
    if (info_out) *info_out = info;
    if (req.cPacketType == TRPC_ONEWAY) return 0; /* never answered */

    oc.desc = oc.ret == JCE_RPC_OK ? "" : call.desc;
    oc.body.data = srv->body.buf;
    oc.body.len = (uint32_t)srv->body.len;
    if (srv->body.len > UINT32_MAX) oc.ret = JCE_RPC_ENCODE_ERR;
    reply_head_t h = {req.iVersion, req.iRequestId, req.iMessageType,
                      req.sServantName, req.sFuncName};
    return encode_reply(&h, &oc, reply);
}

int trpc_server_handle(trpc_server_t *srv, const uint8_t *frame, size_t len,
                       void *ctx, jce_out_t *reply) {
    return trpc_server_handle_async(srv, frame, len, ctx, reply, NULL);
}

int trpc_reply_encode(const trpc_req_t *req, int32_t ret, const char *desc,
                      const jce_out_t *body, jce_out_t *reply) {
    jce_out_reset(reply);
    if (!req) return TRPC_ERR_ARG;
    if (req->packet_type == TRPC_ONEWAY) return 0;
    char why[64];
    outcome_t oc = {ret, {NULL, 0}, ret == JCE_RPC_OK ? "" : desc ? desc : ""};
    if (ret == JCE_RPC_OK && body && body->err) {
        snprintf(why, sizeof why, "encode error: %s", herald_strerror(body->err));
        oc.ret = JCE_RPC_ENCODE_ERR;
        oc.desc = why;
    } else if (ret == JCE_RPC_OK && body && body->len > UINT32_MAX) {
        oc.ret = JCE_RPC_ENCODE_ERR;
        oc.desc = "encode error: answer too large";
    } else if (body) {
        oc.body.data = body->buf;
        oc.body.len = (uint32_t)body->len;
    }
    reply_head_t h = {req->version, req->req_id, req->msg_type,
                      jce_str_from(req->servant ? req->servant : ""),
                      jce_str_from(req->func ? req->func : "")};
    return encode_reply(&h, &oc, reply);
}

/* ---- client ---- */

int trpc_request_encode(jce_out_t *o, int version, int packet_type,
                        int32_t req_id, const char *servant, const char *func,
                        const jce_out_t *args, int32_t timeout_ms) {
    if (!o || !servant || !func || version < INT16_MIN || version > INT16_MAX ||
        packet_type < INT8_MIN || packet_type > INT8_MAX)
        return TRPC_ERR_ARG;
    tars_RequestPacket req;
    tars_RequestPacket_init(&req);
    req.iVersion = (int16_t)version;
    req.cPacketType = (int8_t)packet_type;
    req.iRequestId = req_id;
    req.sServantName = jce_str_from(servant);
    req.sFuncName = jce_str_from(func);
    if (args) {
        if (args->len > UINT32_MAX) return TRPC_ERR_ARG;
        req.sBuffer.data = args->buf;
        req.sBuffer.len = (uint32_t)args->len;
    }
    req.iTimeout = timeout_ms;
    size_t off = frame_open(o);
    tars_RequestPacket_encode(&req, o);
    frame_close(o, off);
    return o->err;
}

static const jce_str_t *status_get(const jcem_string_string *m,
                                   const char *key) {
    jce_str_t k = jce_str_from(key);
    for (uint32_t i = 0; i < m->n; i++)
        if (jce_str_eq(m->keys[i], k)) return &m->vals[i];
    return NULL;
}

/* Strict decimal int32, as STATUS_RESULT_CODE carries. */
static int parse_code(jce_str_t s, int32_t *v) {
    size_t i = 0;
    bool neg = false;
    if (s.len > 0 && (s.data[0] == '-' || s.data[0] == '+')) {
        neg = s.data[0] == '-';
        i = 1;
    }
    if (i == s.len) return TRPC_ERR_DECODE;
    int64_t n = 0;
    for (; i < s.len; i++) {
        if (s.data[i] < '0' || s.data[i] > '9') return TRPC_ERR_DECODE;
        n = n * 10 + (s.data[i] - '0');
        if (n > (int64_t)INT32_MAX + 1) return TRPC_ERR_DECODE;
    }
    if (neg) n = -n;
    if (n > INT32_MAX || n < INT32_MIN) return TRPC_ERR_DECODE;
    *v = (int32_t)n;
    return 0;
}

static int decode_v1_response(jce_in_t *in, trpc_response_t *r) {
    tars_ResponsePacket rsp;
    if (tars_ResponsePacket_decode(&rsp, in) < 0) return TRPC_ERR_DECODE;
    r->version = rsp.iVersion;
    r->packet_type = rsp.cPacketType;
    r->req_id = rsp.iRequestId;
    r->ret = rsp.iRet;
    r->body = rsp.sBuffer;
    r->desc = rsp.sResultDesc;
    return 0;
}

static int decode_tup_response(jce_in_t *in, trpc_response_t *r) {
    tars_RequestPacket rsp;
    if (tars_RequestPacket_decode(&rsp, in) < 0) return TRPC_ERR_DECODE;
    r->version = rsp.iVersion;
    r->packet_type = rsp.cPacketType;
    r->req_id = rsp.iRequestId;
    r->body = rsp.sBuffer;
    r->ret = 0;
    const jce_str_t *code = status_get(&rsp.status, STATUS_RESULT_CODE);
    if (code && parse_code(*code, &r->ret) < 0) return TRPC_ERR_DECODE;
    const jce_str_t *desc = status_get(&rsp.status, STATUS_RESULT_DESC);
    r->desc = desc ? *desc : (jce_str_t){"", 0};
    return 0;
}

int trpc_response_decode(const uint8_t *frame, size_t len, jce_arena_t *a,
                         trpc_response_t *r) {
    uint32_t flen = 0;
    if (trpc_frame_check(frame, len, UINT32_MAX, &flen) != 1 || flen != len)
        return TRPC_ERR_FRAME;
    memset(r, 0, sizeof *r);
    r->desc = (jce_str_t){"", 0};

    /* Both shapes carry iVersion at tag 1; it decides which one this is. */
    jce_in_t in;
    int16_t version = 0;
    jce_in_init(&in, frame + 4, len - 4, a);
    if (jce_get_int16(&in, 1, true, &version) < 0) return TRPC_ERR_DECODE;

    jce_in_init(&in, frame + 4, len - 4, a);
    if (is_tup(version)) return decode_tup_response(&in, r);
    return decode_v1_response(&in, r);
}
