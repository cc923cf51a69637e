/*
 * push_api.c: the HTTP/JSON push API's requests (docs/api.md), without
 * sockets: a parsed head and a complete body in, a status and a JSON body
 * out.  push_http.c does the connection work around it.
 *
 * Order of checks, so every client gets the most useful error first:
 * path (404), method (405), API key (401), JSON (400), fields (400/413).
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "core/b64.h"
#include "core/clock.h"
#include "core/token.h"
#include "gateway/http.h"
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
    set_body(out, status,
             json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
                       message));
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
    snprintf(out, PUSH_MSG_ID_LEN + 1, "%012" PRIx64 "%08" PRIx32 "%04x", ms,
             node, c);
}

/* ---- request pieces ------------------------------------------------------ */

static const char *auth_app(const push_service_t *ps, const http_req_t *r,
                            const char *buf) {
    const http_header_t *h = http_find_header(r, buf, "authorization");
    if (!h)
        return NULL;
    const char *v = buf + h->value.off;
    size_t n = h->value.len;
    if (n < 7 || strncasecmp(v, "Bearer ", 7))
        return NULL;
    v += 7;
    n -= 7;
    while (n && *v == ' ')
        v++, n--;
    return n ? push_app_by_key(ps, v, n) : NULL;
}

/* What every push call carries, decoded from the JSON body.  Strings borrow
 * from the json_t; payload is owned when it came from payloadB64. */
typedef struct api_msg {
    const char *device;
    const char *request_id;
    const char *collapse_key;
    const uint8_t *payload;
    size_t payload_len;
    uint8_t *payload_owned;
    int64_t ttl;
    bool need_ack;
} api_msg_t;

static bool opt_string(json_t *body, const char *key, size_t max,
                       const char **out, push_api_resp_t *resp) {
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v))
        return true;
    char msg[96];
    if (!json_is_string(v)) {
        snprintf(msg, sizeof msg, "%s must be a string", key);
        fail(resp, 400, "invalid_argument", msg);
        return false;
    }
    if (max && json_string_length(v) > max) {
        snprintf(msg, sizeof msg, "%s longer than %zu bytes", key, max);
        fail(resp, 400, "invalid_argument", msg);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static bool read_payload(const push_service_t *ps, json_t *body, api_msg_t *m,
                         push_api_resp_t *resp) {
    json_t *t = json_object_get(body, "payload");
    json_t *b = json_object_get(body, "payloadB64");
    if (t && json_is_null(t))
        t = NULL;
    if (b && json_is_null(b))
        b = NULL;
    if (t && b)
        return fail(resp, 400, "invalid_argument",
                    "give payload or payloadB64, not both"),
               false;
    if ((t && !json_is_string(t)) || (b && !json_is_string(b)))
        return fail(resp, 400, "invalid_argument",
                    "payload and payloadB64 must be strings"),
               false;
    if (t) {
        m->payload = (const uint8_t *)json_string_value(t);
        m->payload_len = json_string_length(t);
    } else if (b) {
        size_t n = json_string_length(b);
        m->payload_owned = malloc(B64_DEC_MAX(n) + 1);
        if (!m->payload_owned)
            return fail(resp, 500, "internal", "out of memory"), false;
        if (b64_decode(m->payload_owned, B64_DEC_MAX(n) + 1,
                       json_string_value(b), n, &m->payload_len) != 0)
            return fail(resp, 400, "invalid_argument",
                        "payloadB64 is not valid padded base64"),
                   false;
        m->payload = m->payload_owned;
    }
    if (m->payload_len > ps->cfg.max_payload) {
        char msg[96];
        snprintf(msg, sizeof msg, "payload is %zu bytes, the limit is %u",
                 m->payload_len, ps->cfg.max_payload);
        return fail(resp, 413, "payload_too_large", msg), false;
    }
    return true;
}

static bool read_msg(const push_service_t *ps, json_t *body, bool need_device,
                     api_msg_t *m, push_api_resp_t *resp) {
    memset(m, 0, sizeof *m);
    m->ttl = 86400;
    m->need_ack = true;
    if (need_device) {
        json_t *d = json_object_get(body, "deviceId");
        if (!d || json_is_null(d))
            return fail(resp, 400, "invalid_argument", "deviceId is missing"),
                   false;
        if (!json_is_string(d) ||
            !token_id_valid(json_string_value(d), json_string_length(d)))
            return fail(resp, 400, "invalid_argument",
                        "deviceId must be 1..128 characters of "
                        "[A-Za-z0-9_:@-]"),
                   false;
        m->device = json_string_value(d);
    }
    json_t *ttl = json_object_get(body, "ttl");
    if (ttl && !json_is_null(ttl)) {
        if (!json_is_integer(ttl))
            return fail(resp, 400, "invalid_argument",
                        "ttl must be an integer"),
                   false;
        m->ttl = json_integer_value(ttl);
        if (m->ttl < 0 || m->ttl > ps->cfg.max_ttl) {
            char msg[96];
            snprintf(msg, sizeof msg, "ttl must be 0..%d seconds",
                     ps->cfg.max_ttl);
            return fail(resp, 400, "invalid_argument", msg), false;
        }
    }
    json_t *ack = json_object_get(body, "needAck");
    if (ack && !json_is_null(ack)) {
        if (!json_is_boolean(ack))
            return fail(resp, 400, "invalid_argument",
                        "needAck must be true or false"),
                   false;
        m->need_ack = json_is_true(ack);
    }
    if (!opt_string(body, "requestId", ID_FIELD_MAX, &m->request_id, resp) ||
        !opt_string(body, "collapseKey", ID_FIELD_MAX, &m->collapse_key,
                    resp))
        return false;
    return read_payload(ps, body, m, resp);
}

static void to_gw_msg(const api_msg_t *m, const char *msg_id, int timeline,
                      gw_msg_t *g) {
    memset(g, 0, sizeof *g);
    g->msg_id = msg_id;
    g->timeline = timeline;
    g->payload = m->payload;
    g->payload_len = m->payload_len;
    g->need_ack = m->need_ack;
    g->sent_at_ms = (int64_t)clock_wall_ms();
}

/* ---- operations ---------------------------------------------------------- */

static int op_device(push_service_t *ps, const char *app, json_t *body,
                     push_api_resp_t *resp) {
    api_msg_t m;
    if (!read_msg(ps, body, true, &m, resp)) {
        free(m.payload_owned);
        return resp->status;
    }
    char id[PUSH_MSG_ID_LEN + 1];
    push_msg_id(id);
    gw_msg_t g;
    /* Nothing is stored yet, so the message has no inbox seq: it travels
     * as online-only and the device acks it by id. */
    to_gw_msg(&m, id, 2, &g);
    int on = ps->sink.device(ps->sink.ctx, app, m.device, &g);
    free(m.payload_owned);
    atomic_fetch_add_explicit(&ps->n_pushes, 1, memory_order_relaxed);
    if (on > 0) {
        atomic_fetch_add_explicit(&ps->n_delivered, 1, memory_order_relaxed);
        set_body(resp, 200,
                 json_pack("{s:s,s:s}", "msgId", id, "state", "written"));
    } else if (m.ttl == 0) {
        set_body(resp, 200,
                 json_pack("{s:s,s:s}", "msgId", id, "state", "dropped"));
    } else {
        fail(resp, 503, "store_unavailable",
             "device offline and no store configured yet");
    }
    return resp->status;
}

static int op_online(push_service_t *ps, const char *app, json_t *body,
                     push_api_resp_t *resp) {
    api_msg_t m;
    if (!read_msg(ps, body, false, &m, resp)) {
        free(m.payload_owned);
        return resp->status;
    }
    char id[PUSH_MSG_ID_LEN + 1];
    push_msg_id(id);
    gw_msg_t g;
    to_gw_msg(&m, id, 2, &g);
    long n = ps->sink.online(ps->sink.ctx, app, &g);
    free(m.payload_owned);
    atomic_fetch_add_explicit(&ps->n_pushes, 1, memory_order_relaxed);
    if (n > 0)
        atomic_fetch_add_explicit(&ps->n_delivered, n, memory_order_relaxed);
    set_body(resp, 200,
             json_pack("{s:s,s:I}", "msgId", id, "targeted", (json_int_t)n));
    return resp->status;
}

static bool path_is(const http_req_t *r, const char *buf, const char *p) {
    size_t n = strlen(p);
    return r->path.len == n && !memcmp(buf + r->path.off, p, n);
}

int push_api_handle(push_service_t *ps, const http_req_t *r, const char *buf,
                    const char *body, size_t body_len, push_api_resp_t *resp) {
    int (*op)(push_service_t *, const char *, json_t *, push_api_resp_t *);
    resp->allow_post = resp->allow_get = false;
    if (path_is(r, buf, "/healthz")) {
        if (r->method != HTTP_M_GET && r->method != HTTP_M_HEAD) {
            resp->allow_get = true;
            return fail(resp, 405, "method_not_allowed", "use GET");
        }
        set_body(resp, 200, json_pack("{s:b}", "ok", 1));
        return 200;
    }
    if (path_is(r, buf, "/v1/push/device"))
        op = op_device;
    else if (path_is(r, buf, "/v1/push/online"))
        op = op_online;
    else
        return fail(resp, 404, "not_found", "no such endpoint");
    if (r->method != HTTP_M_POST) {
        resp->allow_post = true;
        return fail(resp, 405, "method_not_allowed", "use POST");
    }
    const char *app = auth_app(ps, r, buf);
    if (!app)
        return fail(resp, 401, "unauthorized",
                    "missing or unknown API key (Authorization: Bearer KEY)");
    json_error_t jerr;
    json_t *j = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return fail(resp, 400, "bad_json", "body is not valid JSON");
    if (!json_is_object(j)) {
        json_decref(j);
        return fail(resp, 400, "bad_json", "body must be a JSON object");
    }
    int st = op(ps, app, j, resp);
    json_decref(j);
    return st;
}
