/*
 * libFuzzer target for device JSON (WebSocket text frames, docs/protocol.md
 * §3.3): the strict reader (src/jce/jce_json.c) through the frame's head
 * and every request struct of Protocol.jce, as gw_cmd.c reads them,
 * differential against jansson (fuzz/json_oracle.h):
 *   - the same texts are accepted and refused (with the stated
 *     exceptions), and every struct gives the same verdict on the text;
 *   - for an accepted object, each field is present (seen) exactly when
 *     jansson has it non-null, refused (bad) exactly when jansson's value
 *     does not fit the field's type (integers by range), and otherwise
 *     decoded to jansson's value (compared through the generated
 *     to_json).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "Protocol.h"
#include "json_oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef json_t *(*to_json_fn)(const void *v);
#define T(S) \
    static json_t *tj_##S(const void *v) { return herald_##S##_to_json(v); }
T(HelloReq)
T(HeartbeatReq)
T(AckReq)
T(SubscribeReq)
T(UnsubscribeReq)
T(SyncReq)
#undef T

static const struct {
    const jce_json_type_t *t;
    to_json_fn to_json;
} reqs[] = {
    {&herald_HelloReq_json, tj_HelloReq},
    {&herald_HeartbeatReq_json, tj_HeartbeatReq},
    {&herald_AckReq_json, tj_AckReq},
    {&herald_SubscribeReq_json, tj_SubscribeReq},
    {&herald_UnsubscribeReq_json, tj_UnsubscribeReq},
    {&herald_SyncReq_json, tj_SyncReq},
};

/* Whether jansson's v fits type t (the kinds request structs use). */
static bool fits(const json_t *v, const jce_json_type_t *t) {
    json_int_t x = json_integer_value(v);
    switch (t->kind) {
    case JCE_JSON_STRING: return json_is_string(v);
    case JCE_JSON_BOOL: return json_is_boolean(v);
    case JCE_JSON_INT32:
        return json_is_integer(v) && x >= INT32_MIN && x <= INT32_MAX;
    case JCE_JSON_INT64: return json_is_integer(v);
    case JCE_JSON_VECTOR:
        if (!json_is_array(v)) return false;
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!fits(json_array_get(v, i), t->a)) return false;
        return true;
    }
    abort(); /* a request struct grew a field kind this target must learn */
}

/* A frame's head, as gw_cmd.c reads it. */
typedef struct head {
    jce_str_t cmd;
    int64_t req_id;
} head_t;
static void head_init(void *v) { memset(v, 0, sizeof(head_t)); }
static const jce_json_field_t head_fields[] = {
    {"cmd", 3, offsetof(head_t, cmd), false, &jce_json_string},
    {"reqId", 5, offsetof(head_t, req_id), false, &jce_json_int64},
};
static const jce_json_type_t head_type = {
    JCE_JSON_STRUCT, sizeof(head_t), NULL, NULL, head_init, head_fields, 2};

static void check_fields(const json_t *j, const jce_json_type_t *t,
                         const jce_json_res_t *res, json_t *mine) {
    for (unsigned i = 0; i < t->n_fields; i++) {
        const jce_json_field_t *f = &t->fields[i];
        const json_t *v = json_object_get(j, f->name);
        if (json_is_null(v)) v = NULL;
        uint64_t bit = UINT64_C(1) << i;
        if (!!(res->seen & bit) != (v != NULL)) abort();
        if (!v) continue;
        bool ok = fits(v, f->type);
        if (!!(res->bad & bit) == ok) abort();
        if (ok && mine && !json_equal(json_object_get(mine, f->name), v))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static jce_arena_t *a;
    if (!a && !(a = jce_arena_new(0))) return 0;
    jce_arena_reset(a);
    head_t h;
    jce_json_res_t res;
    (void)jce_json_decode(&head_type, &h, (const char *)data, size, a, 0, &res);
    json_t *j = oracle_check(data, size, &res);
    if (j && res.top != !json_is_object(j)) abort();
    if (j && !res.top) {
        check_fields(j, &head_type, &res, NULL);
        const json_t *c = json_object_get(j, "cmd");
        if (json_is_string(c) && !oracle_same_str(c, h.cmd)) abort();
        const json_t *r = json_object_get(j, "reqId");
        if (json_is_integer(r) && h.req_id != json_integer_value(r)) abort();
    }
    for (size_t k = 0; k < sizeof reqs / sizeof reqs[0]; k++) {
        union {
            herald_HelloReq hello;
            herald_HeartbeatReq hb;
            herald_AckReq ack;
            herald_SubscribeReq sub;
            herald_UnsubscribeReq unsub;
            herald_SyncReq sync;
        } v;
        jce_json_res_t r2;
        int rc =
            jce_json_decode(reqs[k].t, &v, (const char *)data, size, a, 0, &r2);
        if (r2.reason != res.reason && r2.reason != JCE_JSON_E_NOMEM &&
            res.reason != JCE_JSON_E_NOMEM)
            abort(); /* the text's verdict depends on the struct */
        if (!j || res.top) continue;
        json_t *mine = rc == 0 ? reqs[k].to_json(&v) : NULL;
        if (rc == 0 && !mine) abort();
        check_fields(j, reqs[k].t, &r2, mine);
        json_decref(mine);
    }
    json_decref(j);
    return 0;
}
