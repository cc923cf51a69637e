/*
 * The strict JSON reader of the IDL's structs (src/jce/jce_json.c), through
 * the tables jce2c generates: what it refuses and why, how fields of the
 * wrong type are reported, and what it reads into the struct.
 */
#include <string.h>

#include "Protocol.h"
#include "PushAPI.h"
#include "jce/jce_json.h"
#include "test.h"

static jce_arena_t *arena(void) {
    static jce_arena_t *a;
    if (!a) a = jce_arena_new(0);
    jce_arena_reset(a);
    return a;
}

static int body(const char *in, size_t n, herald_HttpPushBody *b,
                jce_json_res_t *res) {
    return herald_HttpPushBody_from_json_text(b, in, n ? n : strlen(in),
                                              arena(), res);
}

/* Each refused with its reason (these were the push body's cases when a
 * pre-scan held cJSON to strict JSON; they hold every JSON input now). */
TEST(body_parse_is_strict_json) {
    static const struct {
        const char *in;
        size_t n;
        int want;
    } cases[] = {
        {"{\"a\":\"x\\u0000y\"}", 0, JCE_JSON_E_NUL},
        {"{\"a\":\"x\\u0zzzy\"}", 0, JCE_JSON_E_SYNTAX},
        {"{\"a\":\"x\\u12\"}", 0, JCE_JSON_E_SYNTAX},
        {"{\"a\":\"\xff\"}", 0, JCE_JSON_E_UTF8},
        {"{\"a\":\"\xc3\"}", 0, JCE_JSON_E_UTF8},
        {"{\"a\":\"x\x01y\"}", 0, JCE_JSON_E_CONTROL},
        {"{\"a\":\"x\ny\"}", 0, JCE_JSON_E_CONTROL},
        {"\f{\"a\":1}", 0, JCE_JSON_E_CONTROL},
        {"{\"a\":1}\0", 8, JCE_JSON_E_CONTROL},
        {"{\"a\":1,\"a\":2}", 0, JCE_JSON_E_DUPLICATE},
        {"{\"o\":{\"k\":1,\"k\":1}}", 0, JCE_JSON_E_DUPLICATE},
        {"{\"a\":01}", 0, JCE_JSON_E_NUMBER},
        {"{\"a\":+1}", 0, JCE_JSON_E_NUMBER},
        {"{\"a\":1.}", 0, JCE_JSON_E_NUMBER},
        {"{\"a\":.5}", 0, JCE_JSON_E_NUMBER},
        {"{\"a\":1e}", 0, JCE_JSON_E_NUMBER},
        {"{\"a\":1e999}", 0, JCE_JSON_E_RANGE},
        {"\xef\xbb\xbf{\"a\":1}", 0, JCE_JSON_E_SYNTAX},
        {"{\"a\":1} x", 0, JCE_JSON_E_SYNTAX},
        {"{\"a\":1", 0, JCE_JSON_E_SYNTAX},
        {"{\"a\":\"x", 0, JCE_JSON_E_SYNTAX},
        {"", 0, JCE_JSON_E_SYNTAX},
        {" {\"a\":[1,-2.5e-3,true,null],\"b\":\"caf\\u00e9\"}\r\n", 0,
         JCE_JSON_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        herald_HttpPushBody b;
        jce_json_res_t res;
        int rc = body(cases[i].in, cases[i].n, &b, &res);
        if (res.reason != cases[i].want)
            fprintf(stderr, "  case %zu: %d, want %d\n", i, res.reason,
                    cases[i].want);
        CHECK_EQ_INT(res.reason, cases[i].want);
        CHECK((rc == 0) == (res.reason == JCE_JSON_OK));
    }
    /* 65 levels: one over the limit, refused before the reader recurses
     * further. */
    char deep[200] = "";
    for (int i = 0; i < 65; i++) strcat(deep, "[");
    herald_HttpPushBody b;
    jce_json_res_t res;
    body(deep, 0, &b, &res);
    CHECK_EQ_INT(res.reason, JCE_JSON_E_DEPTH);
    /* The escape decodes; the string is whole. */
    const char *ok = "{\"payload\":\"caf\\u00e9 \\ud83d\\ude00\"}";
    CHECK_EQ_INT(body(ok, 0, &b, &res), 0);
    CHECK(
        b.payload.len == strlen("caf\xc3\xa9 \xf0\x9f\x98\x80") &&
        !memcmp(b.payload.data, "caf\xc3\xa9 \xf0\x9f\x98\x80", b.payload.len));
}

/* What jansson let through in device frames and the reader refuses, and
 * escapes and surrogates that must pair. */
TEST(refusals_beyond_rfc) {
    static const struct {
        const char *in;
        int want;
    } cases[] = {
        {"{\"a\":\"\\ud800\"}", JCE_JSON_E_SYNTAX},        /* lone high */
        {"{\"a\":\"\\udc00\"}", JCE_JSON_E_SYNTAX},        /* lone low */
        {"{\"a\":\"\\ud800\\u0041\"}", JCE_JSON_E_SYNTAX}, /* bad pair */
        {"{\"a\":\"\xed\xa0\x80\"}", JCE_JSON_E_UTF8},     /* surrogate */
        {"{\"a\":\"\xc0\xaf\"}", JCE_JSON_E_UTF8},         /* overlong */
        {"{\"a\":\"\xf4\x90\x80\x80\"}", JCE_JSON_E_UTF8}, /* > U+10FFFF */
        {"{\"a\":\"\\x\"}", JCE_JSON_E_SYNTAX},
        {"{\"a\":1,\"\\u0061\":2}", JCE_JSON_E_DUPLICATE}, /* same key */
        {"{\"deviceId\":\"d\",\"deviceId\":\"d\"}", JCE_JSON_E_DUPLICATE},
        {"{\"a\":[{\"k\":1},{\"k\":1,\"k\":2}]}", JCE_JSON_E_DUPLICATE},
        {"{\"a\":tru}", JCE_JSON_E_SYNTAX},
        {"{\"a\":1,}", JCE_JSON_E_SYNTAX},
        {"{\"a\":[1,]}", JCE_JSON_E_SYNTAX},
        {"{\"a\" 1}", JCE_JSON_E_SYNTAX},
        {"{\"a\":-}", JCE_JSON_E_NUMBER},
        {"{\"a\":1.5.5}", JCE_JSON_E_NUMBER},
        {"{\"a\":"
         "1234567890123456789012345678901234567890123456789012345678901234}",
         JCE_JSON_E_NUMBER_LONG},
        {"{\"a\":1e-999,\"b\":\"\xe2\x82\xac\",\"c\":\"\\/\"}", JCE_JSON_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        herald_HttpPushBody b;
        jce_json_res_t res;
        body(cases[i].in, 0, &b, &res);
        if (res.reason != cases[i].want)
            fprintf(stderr, "  case %zu: %d, want %d\n", i, res.reason,
                    cases[i].want);
        CHECK_EQ_INT(res.reason, cases[i].want);
    }
    /* 64 levels is within the limit. */
    char deep[300] = "{\"a\":";
    for (int i = 0; i < 63; i++) strcat(deep, "[");
    for (int i = 0; i < 63; i++) strcat(deep, "]");
    strcat(deep, "}");
    herald_HttpPushBody b;
    jce_json_res_t res;
    CHECK_EQ_INT(body(deep, 0, &b, &res), 0);
}

/* A field of the wrong type does not stop the reader: every one is in
 * bad, every present one in seen, and a later refusal of the text still
 * wins. */
TEST(field_errors_are_all_reported) {
    herald_HttpPushBody b;
    jce_json_res_t res;
    int rc = body("{\"ttl\":\"x\",\"deviceId\":5,\"payload\":\"p\","
                  "\"needAck\":null,\"deviceIds\":[\"a\",1]}",
                  0, &b, &res);
    CHECK_EQ_INT(rc, JCE_ERR_TYPE);
    CHECK_EQ_INT(res.reason, 0);
    CHECK(res.bad ==
          (herald_HttpPushBody_JSON_ttl | herald_HttpPushBody_JSON_deviceId |
           herald_HttpPushBody_JSON_deviceIds));
    CHECK(res.seen ==
          (res.bad | herald_HttpPushBody_JSON_payload)); /* null: absent */
    CHECK(b.needAck && b.ttl == 86400);
    CHECK(b.payload.len == 1 && b.payload.data[0] == 'p');
    rc = body("{\"ttl\":\"x\",\"a\":01}", 0, &b, &res);
    CHECK_EQ_INT(rc, JCE_ERR_BAD_VALUE);
    CHECK_EQ_INT(res.reason, JCE_JSON_E_NUMBER);
    rc = body("[1]", 0, &b, &res);
    CHECK(rc == JCE_ERR_TYPE && res.top && !res.reason);
    CHECK(b.needAck && b.ttl == 86400);
}

/* Numbers: integers exactly (int64 edges), reals for double fields. */
TEST(numbers_and_ranges) {
    herald_AckReq q;
    jce_json_res_t res;
    const char *t = "{\"inboxSeq\":9223372036854775807,"
                    "\"broadcastSeq\":-9223372036854775808}";
    CHECK_EQ_INT(herald_AckReq_from_json_text(&q, t, strlen(t), arena(), &res),
                 0);
    CHECK(q.inboxSeq == INT64_MAX && q.broadcastSeq == INT64_MIN);
    t = "{\"inboxSeq\":9223372036854775808}";
    CHECK_EQ_INT(herald_AckReq_from_json_text(&q, t, strlen(t), arena(), &res),
                 JCE_ERR_LIMIT);
    t = "{\"inboxSeq\":1.0}";
    CHECK_EQ_INT(herald_AckReq_from_json_text(&q, t, strlen(t), arena(), &res),
                 JCE_ERR_TYPE);
    herald_HeartbeatReq h;
    t = "{\"interval\":2147483648}";
    CHECK_EQ_INT(
        herald_HeartbeatReq_from_json_text(&h, t, strlen(t), arena(), &res),
        JCE_ERR_LIMIT);
    herald_HttpPushBody b;
    CHECK_EQ_INT(body("{\"ttl\":1e2}", 0, &b, &res), 0);
    CHECK(b.ttl == 100.0);
    CHECK_EQ_INT(body("{\"ttl\":-0.5}", 0, &b, &res), 0);
    CHECK(b.ttl == -0.5);
}

/* Containers and base64 through the generated tables. */
TEST(containers) {
    herald_HelloReq q;
    jce_json_res_t res;
    const char *t = "{\"token\":\"tk\",\"topics\":[\"a\",\"b\\u0063\"]}";
    CHECK_EQ_INT(
        herald_HelloReq_from_json_text(&q, t, strlen(t), arena(), &res), 0);
    CHECK(q.topics.n == 2 && jce_str_eq(q.topics.items[1], JCE_STR_LIT("bc")));
    CHECK(q.heartbeat == 60); /* the IDL default */
    t = "{\"heartbeat\":30}";
    CHECK_EQ_INT(
        herald_HelloReq_from_json_text(&q, t, strlen(t), arena(), &res),
        JCE_ERR_REQUIRE); /* token is require */
    t = "{\"token\":null}";
    CHECK_EQ_INT(
        herald_HelloReq_from_json_text(&q, t, strlen(t), arena(), &res),
        JCE_ERR_REQUIRE);
    herald_PushMultiDeviceRsp m;
    t = "{\"ret\":0,\"rejected\":{\"x\":1,\"y\":2}}";
    CHECK_EQ_INT(herald_PushMultiDeviceRsp_from_json_text(&m, t, strlen(t),
                                                          arena(), &res),
                 0);
    CHECK(m.rejected.n == 2 && m.rejected.vals[1] == 2 &&
          jce_str_eq(m.rejected.keys[0], JCE_STR_LIT("x")));
    t = "{\"ret\":0,\"rejected\":{\"x\":1,\"x\":2}}";
    CHECK_EQ_INT(herald_PushMultiDeviceRsp_from_json_text(&m, t, strlen(t),
                                                          arena(), &res),
                 JCE_ERR_BAD_VALUE);
    CHECK_EQ_INT(res.reason, JCE_JSON_E_DUPLICATE);
    herald_PushSingleDeviceReq r;
    t = "{\"apiKey\":\"k\",\"deviceId\":\"d\",\"msg\":{\"payload\":\"AQID+g=="
        "\"}}";
    CHECK_EQ_INT(herald_PushSingleDeviceReq_from_json_text(&r, t, strlen(t),
                                                           arena(), &res),
                 0);
    CHECK(r.msg.payload.len == 4 && r.msg.payload.data[3] == 0xfa);
    CHECK(r.msg.ttl == 86400 && r.msg.needAck);
    t = "{\"apiKey\":\"k\",\"deviceId\":\"d\",\"msg\":{\"payload\":\"AQI*\"}}";
    CHECK_EQ_INT(herald_PushSingleDeviceReq_from_json_text(&r, t, strlen(t),
                                                           arena(), &res),
                 JCE_ERR_BAD_VALUE);
    CHECK(res.bad == herald_PushSingleDeviceReq_JSON_msg && !res.reason);
}

/* Many keys: the duplicate check sorts past 16 of them. */
TEST(many_keys) {
    char t[4096] = "{";
    for (int i = 0; i < 200; i++)
        sprintf(t + strlen(t), "%s\"k%d\":%d", i ? "," : "", i, i);
    strcat(t, "}");
    herald_HttpPushBody b;
    jce_json_res_t res;
    CHECK_EQ_INT(body(t, 0, &b, &res), 0);
    strcpy(t + strlen(t) - 1, ",\"k77\":0}");
    body(t, 0, &b, &res);
    CHECK_EQ_INT(res.reason, JCE_JSON_E_DUPLICATE);
}
