/*
 * push_api.c: the HTTP/JSON push API's requests (docs/api.md), without
 * sockets: a parsed head and a complete body in, a status and a JSON body
 * out.  push_http.c does the connection work around it.
 *
 * Order of checks, so every client gets the most useful error first:
 * path (404), method (405), API key (401), JSON (400), fields (400/413).
 *
 * DELETE /v1/devices/{id}/tokens (a device's token revocation) is not a
 * push: it runs on the revoke thread (push_revoke.c), answered like a
 * push that waited for the store.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <math.h>
#include <openssl/rand.h>

#include "PushAPI.h"
#include "core/b64.h"
#include "core/clock.h"
#include "core/token.h"
#include "gateway/http.h"
#include "ops/metrics_herald.h"
#include "push/push_int.h"

#define ID_FIELD_MAX 128 /* requestId, collapseKey */

static void set_body(push_api_resp_t *out, int status, json_t *j) {
    out->status = status;
    free(out->body);
    out->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    out->body_len = out->body ? strlen(out->body) : 0;
    json_decref(j);
}

static int fail(push_api_resp_t *out, int status, const char *code,
                const char *message) {
    set_body(
        out, status,
        json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message));
    return status;
}

int push_api_error(push_api_resp_t *out, int status, const char *code,
                   const char *message) {
    return fail(out, status, code, message);
}

void push_api_resp_free(push_api_resp_t *out) {
    free(out->body);
    out->body = NULL;
    out->body_len = 0;
}

/* 24 hex digits: 48 bits of wall-clock ms (ids sort by time), 32 bits of
 * per-process randomness, 16 bits of a counter (unique within the ms). */
void push_msg_id(char out[PUSH_MSG_ID_LEN + 1]) {
    static atomic_uint counter;
    static uint32_t node;
    static atomic_int node_set;
    if (!atomic_load(&node_set)) {
        uint32_t n;
        if (RAND_bytes((unsigned char *)&n, sizeof n) != 1)
            n = (uint32_t)getpid() * 2654435761u;
        node = n;
        atomic_store(&node_set, 1);
    }
    unsigned c = atomic_fetch_add(&counter, 1) & 0xffffu;
    uint64_t ms = clock_wall_ms() & 0xffffffffffffull;
    /* 12 + 8 + 4 hex digits, by hand: snprintf was a visible share. */
    static const char hex[] = "0123456789abcdef";
    for (int i = 11; i >= 0; i--, ms >>= 4) out[i] = hex[ms & 15];
    uint32_t nd = node;
    for (int i = 19; i >= 12; i--, nd >>= 4) out[i] = hex[nd & 15];
    for (int i = 23; i >= 20; i--, c >>= 4) out[i] = hex[c & 15];
    out[24] = 0;
}

/* ---- request pieces ------------------------------------------------------ */

static bool auth_app(push_service_t *ps, const http_req_t *r, const char *buf,
                     char app[64], int *unknown_device) {
    const http_header_t *h = http_find_header(r, buf, "authorization");
    if (!h) return false;
    const char *v = buf + h->value.off;
    size_t n = h->value.len;
    if (n < 7 || strncasecmp(v, "Bearer ", 7)) return false;
    v += 7;
    n -= 7;
    while (n && *v == ' ') v++, n--;
    return n && push_auth_key(ps, v, n, app, unknown_device) == 0;
}

static int ret_status(int ret, const char **code) {
    switch (ret) {
    case PUSH_RET_INVALID: *code = "invalid_argument"; return 400;
    case PUSH_RET_TTL: *code = "invalid_argument"; return 400;
    case PUSH_RET_TOO_MANY_DEVICES: *code = "too_many_devices"; return 400;
    case PUSH_RET_UNKNOWN_DEVICE: *code = "unknown_device"; return 404;
    case PUSH_RET_UNAUTHORIZED: *code = "unauthorized"; return 401;
    case PUSH_RET_PAYLOAD_TOO_LARGE: *code = "payload_too_large"; return 413;
    case PUSH_RET_RATE_LIMITED: *code = "rate_limited"; return 429;
    case PUSH_RET_OVERLOADED: *code = "overloaded"; return 503;
    case PUSH_RET_STORE: *code = "store_error"; return 500;
    default: *code = "internal"; return 500;
    }
}

/* The body's fields, as the strict JSON reader left them: which were
 * there (not null) and which had the wrong type.  Checked in the order
 * below whatever their order in the body, so every client gets the same
 * error for the same body. */
typedef struct body {
    const herald_HttpPushBody *b;
    uint64_t seen, bad;
} body_t;

static bool bad_type(const body_t *b, uint64_t field, const char *msg,
                     push_api_resp_t *resp) {
    if (!(b->bad & field)) return false;
    fail(resp, 400, "invalid_argument", msg);
    return true;
}

/* ttl is a JSON number (read as a double, as every JSON reader may): an
 * integral one within int64 is an integer, 86400.0 too. */
static bool int_value(double d, int64_t *out) {
    if (d != floor(d) || d < -9.0e18 || d > 9.0e18) return false;
    *out = (int64_t)d;
    return true;
}

/* The message fields of every push body into c (copied). */
static bool read_msg(push_call_t *c, const body_t *bd, push_api_resp_t *resp) {
    const herald_HttpPushBody *b = bd->b;
    int64_t ttl = 86400;
    if ((bd->bad & herald_HttpPushBody_JSON_ttl) ||
        ((bd->seen & herald_HttpPushBody_JSON_ttl) && !int_value(b->ttl, &ttl)))
        return fail(resp, 400, "invalid_argument", "ttl must be an integer"),
               false;
    if (bad_type(bd, herald_HttpPushBody_JSON_needAck,
                 "needAck must be true or false", resp) ||
        bad_type(bd, herald_HttpPushBody_JSON_requestId,
                 "requestId must be a string", resp) ||
        bad_type(bd, herald_HttpPushBody_JSON_collapseKey,
                 "collapseKey must be a string", resp) ||
        bad_type(bd, herald_HttpPushBody_JSON_payload,
                 "payload must be a string", resp) ||
        bad_type(bd, herald_HttpPushBody_JSON_payloadB64,
                 "payloadB64 must be a string", resp))
        return false;
    bool text = bd->seen & herald_HttpPushBody_JSON_payload;
    bool b64 = bd->seen & herald_HttpPushBody_JSON_payloadB64;
    if (text && b64)
        return fail(resp, 400, "invalid_argument",
                    "give payload or payloadB64, not both"),
               false;
    uint8_t *raw = NULL;
    const uint8_t *pl = (const uint8_t *)b->payload.data;
    size_t pl_n = b->payload.len;
    if (b64) {
        size_t n = b->payloadB64.len;
        raw = malloc(B64_DEC_MAX(n) + 1);
        if (!raw) return fail(resp, 500, "internal", "out of memory"), false;
        if (b64_decode(raw, B64_DEC_MAX(n) + 1, b->payloadB64.data, n, &pl_n) !=
            0) {
            free(raw);
            return fail(resp, 400, "invalid_argument",
                        "payloadB64 is not valid padded base64"),
                   false;
        }
        pl = raw;
    }
    /* The reader let no NUL into a string, and absent strings are empty. */
    int ret = push_call_set_msg(
        c,
        (bd->seen & herald_HttpPushBody_JSON_requestId) ? b->requestId.data
                                                        : NULL,
        b->requestId.len,
        (bd->seen & herald_HttpPushBody_JSON_collapseKey) ? b->collapseKey.data
                                                          : NULL,
        b->collapseKey.len, pl, pl_n, ttl, b->needAck);
    free(raw);
    return ret == PUSH_RET_OK;
}

static bool read_targets(push_call_t *c, const body_t *bd,
                         push_api_resp_t *resp) {
    const herald_HttpPushBody *b = bd->b;
    if (c->op == PUSH_OP_SINGLE) {
        if (bd->bad & herald_HttpPushBody_JSON_deviceId)
            return fail(resp, 400, "invalid_argument",
                        "deviceId must be a string"),
                   false;
        if (!(bd->seen & herald_HttpPushBody_JSON_deviceId))
            return fail(resp, 400, "invalid_argument", "deviceId is missing"),
                   false;
        return push_call_add_device(c, b->deviceId.data, b->deviceId.len) ==
               PUSH_RET_OK;
    }
    if (c->op != PUSH_OP_MULTI) return true;
    if (bd->bad & herald_HttpPushBody_JSON_deviceIds)
        return fail(resp, 400, "invalid_argument",
                    "deviceIds must be an array of strings"),
               false;
    if (!(bd->seen & herald_HttpPushBody_JSON_deviceIds))
        return fail(resp, 400, "invalid_argument", "deviceIds is missing"),
               false;
    if (b->deviceIds.n > PUSH_MAX_DEVICES)
        return fail(resp, 400, "too_many_devices",
                    "at most 10000 deviceIds per call"),
               false;
    for (uint32_t i = 0; i < b->deviceIds.n; i++) {
        const jce_str_t *d = &b->deviceIds.items[i];
        if (push_call_add_device(c, d->data, d->len) != PUSH_RET_OK)
            return false;
    }
    return true;
}

static const char *state_name(int st) {
    switch (st) {
    case PUSH_ST_WRITTEN: return "written";
    case PUSH_ST_STORED: return "stored";
    case PUSH_ST_DROPPED: return "dropped";
    default: return "duplicate";
    }
}

/* The answer of a completed call; frees it. */
/*
 * The answer to nearly every call, written without building a JSON tree:
 * at tens of thousands of pushes per second jansson's pack, object and
 * dump allocations were a visible share of the API thread.  Both strings
 * need no escaping: msgId is hex, the state a fixed name.
 */
static int single_body(push_api_resp_t *out, const char *msg_id,
                       const char *state) {
    char buf[128];
    if (strlen(msg_id) + strlen(state) + 24 > sizeof buf) return -1;
    char *p = stpcpy(buf, "{\"msgId\":\"");
    p = stpcpy(p, msg_id);
    p = stpcpy(p, "\",\"state\":\"");
    p = stpcpy(stpcpy(p, state), "\"}");
    int n = (int)(p - buf);
    free(out->body);
    out->body = strdup(buf);
    if (!out->body) return -1;
    out->status = 200;
    out->body_len = (size_t)n;
    return 0;
}

/* The answer of DELETE /v1/devices/{id}/tokens. */
static void revoke_body(push_call_t *c, push_api_resp_t *resp) {
    resp->route1 = 0; /* "other" */
    if (c->ret != PUSH_RET_OK) {
        const char *code;
        int st = ret_status(c->ret, &code);
        fail(resp, st, code, c->err[0] ? c->err : code);
    } else {
        set_body(resp, 200,
                 json_pack("{s:s,s:I,s:b}", "deviceId", c->devices[0],
                           "revokedBefore", (json_int_t)c->revoked_before,
                           "online", c->online > 0));
    }
    push_call_free(c);
}

void push_api_finish(push_call_t *c, push_api_resp_t *resp) {
    if (c->op == PUSH_OP_REVOKE) {
        revoke_body(c, resp);
        return;
    }
    /* enum push_op 1..4 lines up with MH_ROUTE_PUSH_DEVICE..PUSH_ALL. */
    resp->route1 = (unsigned)c->op;
    if (c->ret != PUSH_RET_OK) {
        const char *code;
        int st = ret_status(c->ret, &code);
        if (c->ret == PUSH_RET_STORE &&
            (!c->ps->cfg.store || c->store_unavailable))
            code = "store_unavailable", st = 503;
        fail(resp, st, code, c->err[0] ? c->err : code);
        push_call_free(c);
        return;
    }
    if (c->op == PUSH_OP_SINGLE && !c->duplicate &&
        single_body(resp, c->msg_id, state_name(c->state)) == 0) {
        push_call_free(c);
        return;
    }
    json_t *j = json_pack("{s:s}", "msgId", c->msg_id);
    if (c->duplicate) json_object_set_new(j, "duplicate", json_true());
    switch (c->op) {
    case PUSH_OP_SINGLE:
        json_object_set_new(j, "state", json_string(state_name(c->state)));
        break;
    case PUSH_OP_MULTI: {
        json_object_set_new(j, "online", json_integer(c->online));
        json_object_set_new(j, "stored", json_integer(c->stored));
        json_object_set_new(j, "duplicates", json_integer(c->n_dup));
        json_t *rej = json_object();
        for (uint32_t i = 0; i < c->n_rejected; i++)
            json_object_set_new(rej, c->rejected[i],
                                json_integer(c->rej_codes[i]));
        json_object_set_new(j, "rejected", rej);
        break;
    }
    case PUSH_OP_ONLINE:
        json_object_set_new(j, "targeted", json_integer(c->targeted));
        break;
    default: json_object_set_new(j, "online", json_integer(c->online)); break;
    }
    set_body(resp, 200, j);
    push_call_free(c);
}

/* ---- operations ---------------------------------------------------------- */

/* "unknownDevice": "store" | "reject" overrides the app's setting for
 * this request (single and multi-device pushes). */
static bool read_unknown(push_call_t *c, const body_t *bd,
                         push_api_resp_t *resp) {
    if (!(bd->seen & herald_HttpPushBody_JSON_unknownDevice)) return true;
    jce_str_t s = bd->b->unknownDevice;
    bool ok = !(bd->bad & herald_HttpPushBody_JSON_unknownDevice);
    if (ok && jce_str_eq(s, JCE_STR_LIT("store"))) {
        c->unknown_device = STORE_UNKNOWN_STORE;
        return true;
    }
    if (ok && jce_str_eq(s, JCE_STR_LIT("reject"))) {
        c->unknown_device = STORE_UNKNOWN_REJECT;
        return true;
    }
    fail(resp, 400, "invalid_argument",
         "unknownDevice must be \"store\" or \"reject\"");
    return false;
}

static int op_push(push_service_t *ps, int op, const char *app,
                   int unknown_device, const body_t *body,
                   push_api_resp_t *resp, push_reply_fn reply, void *ctx) {
    push_call_t *c = push_call_new(ps, op, app);
    if (!c) return fail(resp, 500, "internal", "out of memory");
    c->unknown_device = unknown_device;
    resp->status = 0;
    if (!read_targets(c, body, resp) || !read_msg(c, body, resp) ||
        !read_unknown(c, body, resp)) {
        if (resp->status == 0) /* the call said why */
            push_api_finish(c, resp);
        else
            push_call_free(c);
        return resp->status;
    }
    c->reply = reply;
    c->reply_ctx = ctx;
    if (push_call_run(c) == 0) return 0;
    if (!ps->cfg.store && c->ret == PUSH_RET_OK && op == PUSH_OP_SINGLE &&
        c->ttl > 0 && c->online == 0) {
        /* No store: an offline device cannot keep the message. */
        push_call_set_err(c, PUSH_RET_STORE,
                          "device offline and no store configured");
    }
    push_api_finish(c, resp);
    return resp->status;
}

static bool path_is(const http_req_t *r, const char *buf, const char *p) {
    size_t n = strlen(p);
    return r->path.len == n && !memcmp(buf + r->path.off, p, n);
}

/* "/v1/messages/ID" -> ID (into out); false if the path is not one. */
static bool path_arg(const http_req_t *r, const char *buf, const char *prefix,
                     char *out, size_t cap) {
    size_t n = strlen(prefix), len = r->path.len;
    const char *p = buf + r->path.off;
    if (len <= n || memcmp(p, prefix, n) || len - n >= cap) return false;
    memcpy(out, p + n, len - n);
    out[len - n] = 0;
    return token_id_valid(out, len - n);
}

/* A read the store could not answer now (disk full: hot pushes cannot be
 * folded for it; a writer too slow) is a 503 to retry, not a 500. */
static int store_read_failed(push_api_resp_t *resp, int rc) {
    if (rc == STORE_E_NOSPACE || rc == STORE_E_TIMEOUT)
        return fail(resp, 503, "store_unavailable", herald_strerror(rc));
    return fail(resp, 500, "store_error", herald_strerror(rc));
}

static int get_message(push_service_t *ps, const char *app, const char *id,
                       push_api_resp_t *resp) {
    store_status_t st;
    int rc = push_auth_status(ps, id, &st);
    if (rc == STORE_E_NOTFOUND || (rc == 0 && strcmp(st.app, app)))
        return fail(resp, 404, "not_found", "no such message");
    if (rc < 0) return store_read_failed(resp, rc);
    char buf[1024];
    int n = store_status_format(id, &st, buf, sizeof buf);
    char *body = n > 0 ? strdup(buf) : NULL;
    if (!body) return fail(resp, 500, "internal", "out of memory");
    free(resp->body);
    resp->status = 200;
    resp->body = body;
    resp->body_len = (size_t)n;
    return 200;
}

static const char *transport_name(int t) {
    return t == GW_TCP       ? "tcp"
           : t == GW_WS_JSON ? "ws-json"
           : t == GW_WS_JCE  ? "ws-jce"
                             : "unknown";
}

static int get_device(push_service_t *ps, const char *app, const char *dev,
                      push_api_resp_t *resp) {
    store_device_info_t di;
    int rc = push_auth_device(ps, app, dev, &di);
    if (rc < 0) return store_read_failed(resp, rc);
    int tr = 0;
    int64_t since = 0;
    bool on = push_online_get(ps, app, dev, &tr, &since);
    json_t *j = json_pack("{s:s,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I}", "deviceId",
                          dev, "online", on, "known", di.known || on,
                          "firstSeen", (json_int_t)di.first_seen_ms, "lastSeen",
                          (json_int_t)di.last_seen_ms, "inboxDepth",
                          (json_int_t)di.inbox_depth, "inboxLastSeq",
                          (json_int_t)di.inbox_last_seq, "lastAckedSeq",
                          (json_int_t)di.inbox_acked, "broadcastCursor",
                          (json_int_t)di.bcast_cursor);
    json_object_set_new(j, "since", on ? json_integer(since) : json_null());
    json_object_set_new(j, "transport",
                        on ? json_string(transport_name(tr)) : json_null());
    set_body(resp, 200, j);
    return 200;
}

/* "/v1/devices/ID/tokens" -> ID (into out); false if the path is not
 * one. */
static bool tokens_path(const http_req_t *r, const char *buf, char *out,
                        size_t cap) {
    static const char pre[] = "/v1/devices/", suf[] = "/tokens";
    size_t pn = sizeof pre - 1, sn = sizeof suf - 1, len = r->path.len;
    const char *p = buf + r->path.off;
    if (len <= pn + sn || memcmp(p, pre, pn) || memcmp(p + len - sn, suf, sn) ||
        len - pn - sn >= cap)
        return false;
    size_t n = len - pn - sn;
    memcpy(out, p + pn, n);
    out[n] = 0;
    return token_id_valid(out, n);
}

/* Tokens of the device issued before now are refused from now on, and its
 * connection is closed (push_revoke.c). */
static int handle_revoke(push_service_t *ps, const http_req_t *r,
                         const char *buf, const char *dev,
                         push_api_resp_t *resp, push_reply_fn reply,
                         void *ctx) {
    if (r->method != HTTP_M_DELETE) {
        resp->allow_delete = true;
        return fail(resp, 405, "method_not_allowed", "use DELETE");
    }
    char app[64];
    if (!auth_app(ps, r, buf, app, NULL))
        return fail(resp, 401, "unauthorized",
                    "missing or unknown API key (Authorization: Bearer KEY)");
    push_call_t *c = push_call_new(ps, PUSH_OP_REVOKE, app);
    if (!c) return fail(resp, 500, "internal", "out of memory");
    if (push_call_add_device(c, dev, strlen(dev)) == PUSH_RET_OK) {
        c->reply = reply;
        c->reply_ctx = ctx;
        if (push_revoke_call(c) == 0) return 0;
    }
    push_api_finish(c, resp);
    return resp->status;
}

static int handle_get(push_service_t *ps, const http_req_t *r, const char *buf,
                      bool is_msg, const char *arg, push_api_resp_t *resp) {
    if (r->method != HTTP_M_GET && r->method != HTTP_M_HEAD) {
        resp->allow_get = true;
        return fail(resp, 405, "method_not_allowed", "use GET");
    }
    char app[64];
    if (!auth_app(ps, r, buf, app, NULL))
        return fail(resp, 401, "unauthorized",
                    "missing or unknown API key (Authorization: Bearer KEY)");
    if (is_msg) resp->route1 = MH_ROUTE_MESSAGE + 1;
    return is_msg ? get_message(ps, app, arg, resp)
                  : get_device(ps, app, arg, resp);
}

/* The body's strings live in an arena of the calling thread (the HTTP
 * loop, or a test's) until the call has copied them; it goes with the
 * thread. */
static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_drop(void *a) { jce_arena_free(a); }

static void arena_key_make(void) {
    if (pthread_key_create(&arena_key, arena_drop) != 0) abort();
}

static jce_arena_t *body_arena(void) {
    (void)pthread_once(&arena_once, arena_key_make); /* cannot fail here */
    jce_arena_t *a = pthread_getspecific(arena_key);
    if (!a && (a = jce_arena_new(0)) && pthread_setspecific(arena_key, a)) {
        jce_arena_free(a);
        a = NULL;
    }
    return a;
}

/*
 * The body, read by the strict JSON reader jce2c generates for
 * HttpPushBody (jce/jce_json.h) straight into the struct: no tree, and
 * what the text breaks (400 bad_json, naming why) is told before any
 * field's type (400 invalid_argument).
 */
static int read_body(push_service_t *ps, int op, const char *app,
                     int unknown_device, const char *text, size_t len,
                     push_api_resp_t *resp, push_reply_fn reply, void *ctx) {
    jce_arena_t *arena = body_arena();
    if (!arena) return fail(resp, 500, "internal", "out of memory");
    herald_HttpPushBody b;
    jce_json_res_t res;
    int rc = herald_HttpPushBody_from_json_text(&b, text, len, arena, &res);
    int st;
    if (rc == JCE_ERR_NOMEM)
        st = fail(resp, 500, "internal", "out of memory");
    else if (res.reason)
        st = fail(resp, 400, "bad_json", herald_strerror(res.reason));
    else if (res.top)
        st = fail(resp, 400, "bad_json", "body must be a JSON object");
    else
        st = op_push(ps, op, app, unknown_device,
                     &(body_t){&b, res.seen, res.bad}, resp, reply, ctx);
    jce_arena_reset(arena);
    return st;
}

int push_api_handle_async(push_service_t *ps, const http_req_t *r,
                          const char *buf, const char *body, size_t body_len,
                          push_api_resp_t *resp, push_reply_fn reply,
                          void *ctx) {
    int op;
    char arg[160];
    resp->allow_post = resp->allow_get = resp->allow_delete = false;
    if (path_is(r, buf, "/healthz")) {
        if (r->method != HTTP_M_GET && r->method != HTTP_M_HEAD) {
            resp->allow_get = true;
            return fail(resp, 405, "method_not_allowed", "use GET");
        }
        set_body(resp, 200, json_pack("{s:b}", "ok", 1));
        return 200;
    }
    if (tokens_path(r, buf, arg, sizeof arg))
        return handle_revoke(ps, r, buf, arg, resp, reply, ctx);
    if (path_arg(r, buf, "/v1/messages/", arg, sizeof arg))
        return handle_get(ps, r, buf, true, arg, resp);
    if (path_arg(r, buf, "/v1/devices/", arg, sizeof arg))
        return handle_get(ps, r, buf, false, arg, resp);
    if (path_is(r, buf, "/v1/push/device"))
        op = PUSH_OP_SINGLE;
    else if (path_is(r, buf, "/v1/push/devices"))
        op = PUSH_OP_MULTI;
    else if (path_is(r, buf, "/v1/push/online"))
        op = PUSH_OP_ONLINE;
    else if (path_is(r, buf, "/v1/push/all"))
        op = PUSH_OP_ALL;
    else
        return fail(resp, 404, "not_found", "no such endpoint");
    if (r->method != HTTP_M_POST) {
        resp->allow_post = true;
        return fail(resp, 405, "method_not_allowed", "use POST");
    }
    char app[64];
    int unknown_device;
    if (!auth_app(ps, r, buf, app, &unknown_device))
        return fail(resp, 401, "unauthorized",
                    "missing or unknown API key (Authorization: Bearer KEY)");
    switch (push_admit(ps, app)) {
    case PUSH_RET_OVERLOADED:
        resp->route1 = (unsigned)op; /* == MH_ROUTE_* + 1 */
        return fail(resp, 503, "overloaded",
                    "server memory above its high watermark, retry later");
    case PUSH_RET_RATE_LIMITED:
        resp->route1 = (unsigned)op;
        return fail(resp, 429, "rate_limited",
                    "the application's push rate limit is exhausted");
    }
    return read_body(ps, op, app, unknown_device, body, body_len, resp, reply,
                     ctx);
}

/* ---- synchronous form (unit tests, tools) ------------------------------- */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    push_call_t *done;
} waiter_t;

static void wake(push_call_t *c) {
    waiter_t *w = c->reply_ctx;
    pthread_mutex_lock(&w->mu);
    w->done = c;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int push_api_handle(push_service_t *ps, const http_req_t *r, const char *buf,
                    const char *body, size_t body_len, push_api_resp_t *resp) {
    waiter_t w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL};
    int st = push_api_handle_async(ps, r, buf, body, body_len, resp, wake, &w);
    if (st != 0) return st;
    pthread_mutex_lock(&w.mu);
    while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    push_api_finish(w.done, resp);
    return resp->status;
}
