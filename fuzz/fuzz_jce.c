/*
 * libFuzzer target for the JCE decoder.  Every input goes through
 * jce_validate and then through the generated decoder of every struct of
 * the contract files (Protocol, PushAPI, RequestF).  Whatever decodes must
 * re-encode under both policies to bytes that decode again; the js-policy
 * round trip must give an equal value (unless a NaN makes the value unequal
 * to itself) and the very same bytes a second time, and to_json/from_json
 * must give the value back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jce/jce.h"
#include "jce/jce_type.h"

#if __has_include("Protocol.h")
#include "Protocol.h"
#define HAVE_PROTOCOL 1
#endif
#if __has_include("PushAPI.h")
#include "PushAPI.h"
#define HAVE_PUSHAPI 1
#endif
#if __has_include("RequestF.h")
#include "RequestF.h"
#define HAVE_REQUESTF 1
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const jce_type_info_t *const *const tables[] = {
#ifdef HAVE_PROTOCOL
    Protocol_types,
#endif
#ifdef HAVE_PUSHAPI
    PushAPI_types,
#endif
#ifdef HAVE_REQUESTF
    RequestF_types,
#endif
    NULL,
};

static void die(const jce_type_info_t *t, const char *what, int err) {
    fprintf(stderr, "%s: %s (%d %s)\n", t->name, what, err, herald_strerror(err));
    abort();
}

static int decode(const jce_type_info_t *t, void *v, const void *buf,
                  size_t len, jce_arena_t *a) {
    jce_in_t in;
    jce_in_init(&in, buf, len, a);
    return t->decode(v, &in);
}

static void encode(const jce_type_info_t *t, const void *v, int policy,
                   jce_out_t *o) {
    jce_out_init(o, policy);
    t->encode(v, o);
    if (o->err) die(t, "re-encode failed", o->err);
}

static void roundtrip(const jce_type_info_t *t, const void *v, void *w,
                      void *x) {
    jce_arena_t *a = jce_arena_new(0);
    jce_out_t js, cpp, js2;
    encode(t, v, JCE_POLICY_JS, &js);
    encode(t, v, JCE_POLICY_CPP, &cpp);
    int r = decode(t, w, js.buf, js.len, a);
    if (r < 0) die(t, "js re-encoding does not decode", r);
    /* A NaN float makes a value unequal to itself; the byte comparison
     * below still covers such values. */
    if (t->equal(v, v) && !t->equal(v, w))
        die(t, "js round trip changed the value", 0);
    encode(t, w, JCE_POLICY_JS, &js2);
    if (js2.len != js.len || memcmp(js2.buf, js.buf, js.len) != 0)
        die(t, "js encoding not stable", 0);
    r = decode(t, x, cpp.buf, cpp.len, a);
    if (r < 0) die(t, "cpp re-encoding does not decode", r);
    if (jce_validate(js.buf, js.len, NULL) < 0 ||
        jce_validate(cpp.buf, cpp.len, NULL) < 0)
        die(t, "re-encoding does not validate", 0);
    jce_out_free(&js);
    jce_out_free(&cpp);
    jce_out_free(&js2);
    jce_arena_free(a);
}

/* JSON is the other face of every struct (WebSocket text frames, the
 * HTTP API): to_json then from_json must give the value back.  Values that
 * JSON cannot carry (NaN, infinities, strings that are not UTF-8) make to_json return NULL. */
static void json_roundtrip(const jce_type_info_t *t, const void *v, void *w) {
    json_t *j = t->to_json(v);
    if (!j) return;
    jce_arena_t *a = jce_arena_new(0);
    int r = t->from_json(w, j, a);
    if (r < 0) die(t, "from_json rejects to_json output", r);
    /* Compare JSON forms, not values: a JCE map may repeat a key on the
     * wire, which a JSON object folds into one entry (as C++ std::map
     * does), so the value may shrink while its JSON form must not move. */
    json_t *j2 = t->to_json(w);
    /* Dumped text, not json_equal(): jansson's json_equal looks object keys
     * up as C strings, so it misses keys holding NUL bytes. */
    size_t f = JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY;
    char *d1 = json_dumps(j, f), *d2 = j2 ? json_dumps(j2, f) : NULL;
    if (!d1 || !d2 || strcmp(d1, d2) != 0)
        die(t, "json round trip changed the value", 0);
    free(d1);
    free(d2);
    json_decref(j2);
    json_decref(j);
    jce_arena_free(a);
}

static void try_type(const jce_type_info_t *t, const uint8_t *data, size_t size,
                     jce_arena_t *a) {
    void *v = calloc(3, t->size);
    if (!v) return;
    if (decode(t, v, data, size, a) == 0) {
        roundtrip(t, v, (char *)v + t->size, (char *)v + 2 * t->size);
        json_roundtrip(t, v, (char *)v + t->size);
    }
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t pos;
    if (jce_validate(data, size, &pos) < 0 && pos > size) abort();
    jce_arena_t *a = jce_arena_new(0);
    if (!a) return 0;
    for (size_t i = 0; tables[i]; i++)
        for (const jce_type_info_t *const *t = tables[i]; *t; t++) {
            jce_arena_reset(a);
            try_type(*t, data, size, a);
        }
    jce_arena_free(a);
    return 0;
}
