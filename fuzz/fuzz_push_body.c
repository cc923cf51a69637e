/*
 * libFuzzer target for the push API's JSON body: the strict reader
 * (src/jce/jce_json.c) through HttpPushBody's generated table, exactly as
 * push_api.c reads it, differential against jansson (fuzz/json_oracle.h):
 *   - the same texts are accepted and refused (with the stated
 *     exceptions: herald's depth and number-length limits, NUL bytes,
 *     integers beyond int64);
 *   - for an accepted text, every field is present (seen), of the wrong
 *     type (bad) or absent exactly as in jansson's tree, and what the
 *     reader decoded equals jansson's value: strings byte for byte, the
 *     ttl as the same double, needAck, each deviceId.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "PushAPI.h"
#include "json_oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A field's jansson value, NULL when absent or null (absent to the API). */
static const json_t *member(const json_t *j, const char *k) {
    const json_t *v = json_object_get(j, k);
    return json_is_null(v) ? NULL : v;
}

static void check_str(const json_t *j, const char *k, uint64_t bit,
                      const jce_json_res_t *res, jce_str_t s) {
    const json_t *v = member(j, k);
    if (!!(res->seen & bit) != (v != NULL)) abort();
    if (!v) {
        if (s.len) abort();
        return;
    }
    if (!!(res->bad & bit) != !json_is_string(v)) abort();
    if (json_is_string(v) && !oracle_same_str(v, s)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static jce_arena_t *a;
    if (!a && !(a = jce_arena_new(0))) return 0;
    jce_arena_reset(a);
    herald_HttpPushBody b;
    jce_json_res_t res;
    int rc = herald_HttpPushBody_from_json_text(&b, (const char *)data, size, a,
                                                &res);
    if ((res.reason != 0) != (rc == JCE_ERR_BAD_VALUE || rc == JCE_ERR_NOMEM))
        abort();
    if (!res.reason && (rc == 0) != (!res.top && !res.bad)) abort();
    json_t *j = oracle_check(data, size, &res);
    if (!j) return 0;
    if (res.top != !json_is_object(j)) abort();
    if (res.top) {
        json_decref(j);
        return 0;
    }
#define F(name) #name, herald_HttpPushBody_JSON_##name, &res, b.name
    check_str(j, F(deviceId));
    check_str(j, F(payload));
    check_str(j, F(payloadB64));
    check_str(j, F(requestId));
    check_str(j, F(collapseKey));
    check_str(j, F(unknownDevice));
#undef F
    const json_t *v = member(j, "ttl");
    uint64_t bit = herald_HttpPushBody_JSON_ttl;
    if (!!(res.seen & bit) != (v != NULL) ||
        (v && !!(res.bad & bit) != !json_is_number(v)) ||
        (v && json_is_number(v) && b.ttl != json_number_value(v)) ||
        (!v && b.ttl != 86400))
        abort();
    v = member(j, "needAck");
    bit = herald_HttpPushBody_JSON_needAck;
    if (!!(res.seen & bit) != (v != NULL) ||
        (v && !!(res.bad & bit) != !json_is_boolean(v)) ||
        (v && json_is_boolean(v) && b.needAck != json_is_true(v)) ||
        (!v && !b.needAck))
        abort();
    v = member(j, "deviceIds");
    bit = herald_HttpPushBody_JSON_deviceIds;
    if (!!(res.seen & bit) != (v != NULL)) abort();
    if (v) {
        bool ok = json_is_array(v);
        for (size_t i = 0; ok && i < json_array_size(v); i++)
            ok = json_is_string(json_array_get(v, i));
        if (!!(res.bad & bit) != !ok) abort();
        if (ok && b.deviceIds.n != json_array_size(v)) abort();
        for (size_t i = 0; ok && i < b.deviceIds.n; i++)
            if (!oracle_same_str(json_array_get(v, i), b.deviceIds.items[i]))
                abort();
    }
    json_decref(j);
    return 0;
}
