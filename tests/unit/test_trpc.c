/*
 * Unit tests for src/rpc: frame codec, server dispatch against the frames
 * captured in tars-wire §2.5, client encode/decode helpers and trpc_call.
 */
#include <ctype.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "Hello.h"
#include "PushAPI.h"
#include "RequestF.h"
#include "rpc/trpc.h"
#include "test.h"

/* ---- helpers ---- */

/* Bytes from a spec of hex pairs and 'quoted ascii' ('|' and spaces are
 * ignored), so captured frames can be written as tars-wire shows them. */
static size_t spec_bytes(const char *spec, uint8_t *out, size_t cap) {
    size_t n = 0;
    for (const char *s = spec; *s && n < cap;) {
        if (*s == '\'') {
            for (s++; *s && *s != '\'' && n < cap; s++) out[n++] = (uint8_t)*s;
            if (*s) s++;
        } else if (isxdigit((unsigned char)s[0]) &&
                   isxdigit((unsigned char)s[1])) {
            unsigned v;
            sscanf(s, "%2x", &v);
            out[n++] = (uint8_t)v;
            s += 2;
        } else {
            s++;
        }
    }
    return n;
}

/* The packet of `spec` behind its 4-byte length prefix. */
static size_t frame_of(const char *spec, uint8_t *out, size_t cap) {
    size_t n = spec_bytes(spec, out + 4, cap - 4) + 4;
    out[0] = (uint8_t)(n >> 24);
    out[1] = (uint8_t)(n >> 16);
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    return n;
}

/* Hex text of a framed spec, for CHECK_HEX. */
static const char *frame_hex(const char *spec) {
    static char hex[8192];
    uint8_t b[2048];
    size_t n = frame_of(spec, b, sizeof b);
    for (size_t i = 0; i < n; i++) snprintf(hex + 3 * i, 4, "%02x ", b[i]);
    hex[n ? 3 * n - 1 : 0] = '\0';
    return hex;
}

#define SERVANT "'Test.HelloServer.HelloObj'"
#define HDR_V1(reqid) "10 01 2c 3c 40 " reqid " 56 19 " SERVANT

/* ---- a Test.Hello impl as tars-wire §2.5 describes ---- */

typedef struct counts {
    int hello, ping;
} counts_t;

static jce_str_t arena_cat(jce_arena_t *a, const char *pre, jce_str_t s) {
    size_t n = strlen(pre) + s.len;
    char *p = jce_arena_alloc(a, n ? n : 1);
    if (!p) return (jce_str_t){"", 0};
    memcpy(p, pre, strlen(pre));
    if (s.len) memcpy(p + strlen(pre), s.data, s.len);
    return (jce_str_t){p, (uint32_t)n};
}

static int32_t hello_test(jce_call_t *call, int32_t id, jce_str_t s,
                          jce_str_t *r, Test_Pair *p) {
    if (call->ctx) ((counts_t *)call->ctx)->hello++;
    *r = arena_cat(call->arena, "hi ", s);
    char *up = jce_arena_alloc(call->arena, s.len ? s.len : 1);
    for (uint32_t i = 0; up && i < s.len; i++)
        up[i] = (char)toupper((unsigned char)s.data[i]);
    p->a = id * 2;
    p->b = (jce_str_t){up ? up : "", up ? s.len : 0};
    p->c = Test_GREEN;
    return 0;
}

static void hello_ping(jce_call_t *call) {
    if (call->ctx) ((counts_t *)call->ctx)->ping++;
}

static const Test_Hello_impl hello_impl = {
    .testHello = hello_test,
    .ping = hello_ping,
};

static trpc_server_t *hello_server(void) {
    trpc_server_t *srv = trpc_server_new();
    if (srv && trpc_server_add(srv, "Test.HelloServer.HelloObj",
                               &Test_Hello_interface, &hello_impl) < 0) {
        trpc_server_free(srv);
        return NULL;
    }
    return srv;
}

/* Runs one framed spec through a fresh server; reply and counts out. */
static int run_spec(const char *spec, jce_out_t *reply, counts_t *cnt) {
    uint8_t f[2048];
    size_t n = frame_of(spec, f, sizeof f);
    trpc_server_t *srv = hello_server();
    if (!srv) return -1000;
    int rc = trpc_server_handle(srv, f, n, cnt, reply);
    trpc_server_free(srv);
    return rc;
}

/* ---- frames ---- */

TEST(frame_check_lengths) {
    uint8_t b[16] = {0, 0, 0, 5, 0x10};
    uint32_t n = 0;
    CHECK_EQ_INT(trpc_frame_check(b, 0, 0, &n), 0);
    CHECK_EQ_INT(trpc_frame_check(b, 3, 0, &n), 0);
    CHECK_EQ_INT(trpc_frame_check(b, 4, 0, &n), 0);
    CHECK_EQ_INT(trpc_frame_check(b, 5, 0, &n), 1);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(trpc_frame_check(b, 16, 0, &n), 1); /* pipelined rest */
    CHECK_EQ_INT(n, 5);
    b[3] = 4; /* shorter than the minimum */
    CHECK_EQ_INT(trpc_frame_check(b, 4, 0, &n), TRPC_ERR_FRAME);
    b[3] = 0;
    CHECK_EQ_INT(trpc_frame_check(b, 4, 0, &n), TRPC_ERR_FRAME);
    /* over the default 10 MiB: refused from the prefix alone */
    uint8_t big[4] = {0x00, 0xa0, 0x00, 0x01};
    CHECK_EQ_INT(trpc_frame_check(big, 4, 0, &n), TRPC_ERR_FRAME);
    uint8_t max[4] = {0x00, 0xa0, 0x00, 0x00};
    CHECK_EQ_INT(trpc_frame_check(max, 4, 0, &n), 0);
    /* an explicit max */
    uint8_t b100[4] = {0, 0, 0, 100};
    CHECK_EQ_INT(trpc_frame_check(b100, 4, 99, &n), TRPC_ERR_FRAME);
    CHECK_EQ_INT(trpc_frame_check(b100, 4, 100, &n), 0);
    uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
    CHECK_EQ_INT(trpc_frame_check(huge, 4, 0, &n), TRPC_ERR_FRAME);
}

/* ---- server: tars-wire §2.5 ---- */

#define HELLO_V1_REQ                                             \
    HDR_V1("0b")                                                 \
    " 66 09 'testHello' 7d 00 00 07 10 07 26 03 'abc' 81 0b b8 " \
    "98 0c a8 0c"

TEST(request_frame_is_the_captured_one) {
    uint8_t f[256];
    size_t n = frame_of(HELLO_V1_REQ, f, sizeof f);
    CHECK_EQ_INT(n, 66);
    CHECK_HEX(f, 4, "00 00 00 42");
}

TEST(v1_testHello) {
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    counts_t cnt = {0, 0};
    CHECK_EQ_INT(run_spec(HELLO_V1_REQ, &reply, &cnt), 0);
    CHECK_EQ_INT(cnt.hello, 1);
    /* C++ form of the §2.5 response with reqid 11 and c written (an enum
     * is always written under the C++ policy). */
    CHECK_HEX(reply.buf, reply.len,
              frame_hex("10 01 2c 30 0b 4c 5c 6d 00 00 14 0c 36 06 'hi abc' "
                        "4a 00 0e 16 03 'ABC' 20 05 0b 78 0c"));

    /* and the client side reads it back */
    jce_arena_t *a = jce_arena_new(0);
    trpc_response_t r;
    CHECK_EQ_INT(trpc_response_decode(reply.buf, reply.len, a, &r), 0);
    CHECK_EQ_INT(r.version, 1);
    CHECK_EQ_INT(r.req_id, 11);
    CHECK_EQ_INT(r.ret, 0);
    int32_t ret = -1;
    jce_str_t rs;
    Test_Pair p;
    CHECK_EQ_INT(Test_Hello_testHello_result(r.body.data, r.body.len, 1, a,
                                             &ret, &rs, &p),
                 0);
    CHECK_EQ_INT(ret, 0);
    CHECK(jce_str_eq(rs, JCE_STR_LIT("hi abc")));
    CHECK_EQ_INT(p.a, 14);
    CHECK(jce_str_eq(p.b, JCE_STR_LIT("ABC")));
    CHECK_EQ_INT(p.c, Test_GREEN);
    jce_arena_free(a);
    jce_out_free(&reply);
}

TEST(v1_unknown_function) {
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    CHECK_EQ_INT(
        run_spec(HDR_V1("0c") " 66 04 'nope' 7d 00 0c 81 0b b8 98 0c a8 0c",
                 &reply, NULL),
        0);
    /* As the JS server's answer up to status; then our non-empty desc. */
    CHECK(reply.len > 21);
    CHECK_HEX(reply.buf + 4, 13, "10 01 2c 30 0c 4c 50 fd 6d 00 0c 78 0c");
    jce_arena_t *a = jce_arena_new(0);
    trpc_response_t r;
    CHECK_EQ_INT(trpc_response_decode(reply.buf, reply.len, a, &r), 0);
    CHECK_EQ_INT(r.ret, -3);
    CHECK_EQ_INT(r.req_id, 12);
    CHECK_EQ_INT(r.body.len, 0);
    CHECK(r.desc.len > 0);
    jce_arena_free(a);
    jce_out_free(&reply);
}

TEST(v1_unknown_servant) {
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    CHECK_EQ_INT(run_spec("10 01 2c 3c 40 0c 56 03 'A.B' 66 04 'ping' 7d 00 0c "
                          "8c 98 0c a8 0c",
                          &reply, NULL),
                 0);
    jce_arena_t *a = jce_arena_new(0);
    trpc_response_t r;
    CHECK_EQ_INT(trpc_response_decode(reply.buf, reply.len, a, &r), 0);
    CHECK_EQ_INT(r.ret, JCE_RPC_NO_SERVANT);
    jce_arena_free(a);
    jce_out_free(&reply);
}

TEST(v1_tars_ping) {
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    CHECK_EQ_INT(
        run_spec(
            HDR_V1("0d") " 66 09 'tars_ping' 7d 00 0c 81 0b b8 98 0c a8 0c",
            &reply, NULL),
        0);
    CHECK_HEX(reply.buf, reply.len,
              "00 00 00 10 10 01 2c 30 0d 4c 5c 6d 00 0c 78 0c");
    jce_out_free(&reply);
}

TEST(tars_ping_v3_and_unknown_servant) {
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    jce_arena_t *a = jce_arena_new(0);
    trpc_response_t r;
    CHECK_EQ_INT(run_spec("10 03 2c 3c 40 13 56 19 " SERVANT
                          " 66 09 'tars_ping' "
                          "7d 00 00 02 08 0c 8c 98 0c a8 0c",
                          &reply, NULL),
                 0);
    CHECK_EQ_INT(trpc_response_decode(reply.buf, reply.len, a, &r), 0);
    CHECK_EQ_INT(r.version, 3);
    CHECK_EQ_INT(r.ret, 0);
    CHECK_HEX(r.body.data, r.body.len, "08 0c");
    /* a ping names a servant like any call; an unknown one is -4 */
    CHECK_EQ_INT(run_spec("10 01 2c 3c 40 14 56 03 'A.B' 66 09 'tars_ping' "
                          "7d 00 0c 8c 98 0c a8 0c",
                          &reply, NULL),
                 0);
    CHECK_EQ_INT(trpc_response_decode(reply.buf, reply.len, a, &r), 0);
    CHECK_EQ_INT(r.ret, JCE_RPC_NO_SERVANT);
    jce_arena_free(a);
    jce_out_free(&reply);
}

TEST(v1_void_ping) {
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    counts_t cnt = {0, 0};
    CHECK_EQ_INT(
        run_spec(HDR_V1("0e") " 66 04 'ping' 7d 00 0c 81 0b b8 98 0c a8 0c",
                 &reply, &cnt),
        0);
    CHECK_EQ_INT(cnt.ping, 1);
    CHECK_HEX(reply.buf, reply.len,
              "00 00 00 10 10 01 2c 30 0e 4c 5c 6d 00 0c 78 0c");
    jce_out_free(&reply);
}

TEST(oneway_runs_but_never_answers) {
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    jce_out_raw(&reply, "junk", 4); /* must be cleared */
    counts_t cnt = {0, 0};
    CHECK_EQ_INT(run_spec("10 01 20 01 3c 40 0f 56 19 " SERVANT
                          " 66 09 'testHello' 7d 00 00 07 10 07 26 03 'abc' "
                          "81 0b b8 98 0c a8 0c",
                          &reply, &cnt),
                 0);
    CHECK_EQ_INT(cnt.hello, 1);
    CHECK_EQ_INT(reply.len, 0);
    /* not even on errors */
    CHECK_EQ_INT(run_spec("10 01 20 01 3c 40 0f 56 19 " SERVANT
                          " 66 04 'nope' 7d 00 0c 8c 98 0c a8 0c",
                          &reply, &cnt),
                 0);
    CHECK_EQ_INT(reply.len, 0);
    jce_out_free(&reply);
}

TEST(v1_missing_require_arg) {
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    counts_t cnt = {0, 0};
    CHECK_EQ_INT(run_spec(HDR_V1("10") " 66 09 'testHello' 7d 00 00 02 10 07 "
                                       "81 0b b8 98 0c a8 0c",
                          &reply, &cnt),
                 0);
    CHECK_EQ_INT(cnt.hello, 0);
    jce_arena_t *a = jce_arena_new(0);
    trpc_response_t r;
    CHECK_EQ_INT(trpc_response_decode(reply.buf, reply.len, a, &r), 0);
    CHECK_EQ_INT(r.ret, -1);
    CHECK_EQ_INT(r.body.len, 0);
    CHECK(
        memmem(r.desc.data, r.desc.len, "require field not exist, tag:2", 30));
    jce_arena_free(a);
    jce_out_free(&reply);
}

TEST(unsupported_version) {
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    CHECK_EQ_INT(run_spec("10 05 2c 3c 40 10 56 19 " SERVANT
                          " 66 04 'ping' 7d 00 0c 8c 98 0c a8 0c",
                          &reply, NULL),
                 0);
    jce_arena_t *a = jce_arena_new(0);
    tars_ResponsePacket rsp;
    jce_in_t in;
    jce_in_init(&in, reply.buf + 4, reply.len - 4, a);
    CHECK_EQ_INT(tars_ResponsePacket_decode(&rsp, &in), 0);
    CHECK_EQ_INT(rsp.iVersion, 5);
    CHECK_EQ_INT(rsp.iRet, -1);
    CHECK(rsp.sResultDesc.len > 0);
    jce_arena_free(a);
    jce_out_free(&reply);
}

#define HELLO_V3_REQ                                                           \
    "10 03 2c 3c 40 11 56 19 " SERVANT " 66 09 'testHello' 7d 00 00 19 "       \
    "08 00 02 06 02 'id' 1d 00 00 02 00 07 06 01 's' 1d 00 00 05 06 03 'abc' " \
    "81 0b b8 98 0c a8 0c"

/* Finds a status entry of a decoded RequestPacket. */
static const jce_str_t *status_of(const tars_RequestPacket *p, const char *k) {
    for (uint32_t i = 0; i < p->status.n; i++)
        if (jce_str_eq(p->status.keys[i], jce_str_from(k)))
            return &p->status.vals[i];
    return NULL;
}

TEST(v3_testHello) {
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    CHECK_EQ_INT(run_spec(HELLO_V3_REQ, &reply, NULL), 0);
    jce_arena_t *a = jce_arena_new(0);
    tars_RequestPacket p;
    jce_in_t in;
    jce_in_init(&in, reply.buf + 4, reply.len - 4, a);
    CHECK_EQ_INT(tars_RequestPacket_decode(&p, &in), 0);
    CHECK_EQ_INT(p.iVersion, 3);
    CHECK_EQ_INT(p.iRequestId, 17);
    CHECK(jce_str_eq(p.sServantName, JCE_STR_LIT("Test.HelloServer.HelloObj")));
    CHECK(jce_str_eq(p.sFuncName, JCE_STR_LIT("testHello")));
    const jce_str_t *code = status_of(&p, "STATUS_RESULT_CODE");
    CHECK(code && jce_str_eq(*code, JCE_STR_LIT("0")));

    jce_tup_t tup;
    CHECK_EQ_INT(jce_tup_parse(p.sBuffer.data, p.sBuffer.len, a, &tup), 0);
    const jce_tup_entry_t *e;
    jce_in_t v;
    int32_t ret = -1;
    CHECK((e = jce_tup_find(&tup, "")) != NULL);
    jce_tup_open(e, a, &v);
    CHECK_EQ_INT(jce_get_int32(&v, 0, true, &ret), 1);
    CHECK_EQ_INT(ret, 0);
    CHECK((e = jce_tup_find(&tup, "r")) != NULL);
    CHECK_HEX(e->value.data, e->value.len, "06 06 68 69 20 61 62 63");
    CHECK((e = jce_tup_find(&tup, "p")) != NULL);
    CHECK_HEX(e->value.data, e->value.len, "0a 00 0e 16 03 41 42 43 20 05 0b");

    /* the generic client decoder sees the same */
    trpc_response_t r;
    CHECK_EQ_INT(trpc_response_decode(reply.buf, reply.len, a, &r), 0);
    CHECK_EQ_INT(r.version, 3);
    CHECK_EQ_INT(r.req_id, 17);
    CHECK_EQ_INT(r.ret, 0);
    jce_str_t rs;
    Test_Pair pair;
    CHECK_EQ_INT(Test_Hello_testHello_result(r.body.data, r.body.len, 3, a,
                                             &ret, &rs, &pair),
                 0);
    CHECK(jce_str_eq(rs, JCE_STR_LIT("hi abc")));
    CHECK_EQ_INT(pair.a, 14);
    jce_arena_free(a);
    jce_out_free(&reply);
}

TEST(v3_error_carries_code_and_empty_map) {
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    CHECK_EQ_INT(run_spec("10 03 2c 3c 40 12 56 19 " SERVANT
                          " 66 04 'nope' 7d 00 00 02 08 0c 8c 98 0c a8 0c",
                          &reply, NULL),
                 0);
    jce_arena_t *a = jce_arena_new(0);
    trpc_response_t r;
    CHECK_EQ_INT(trpc_response_decode(reply.buf, reply.len, a, &r), 0);
    CHECK_EQ_INT(r.version, 3);
    CHECK_EQ_INT(r.ret, -3);
    CHECK_HEX(r.body.data, r.body.len, "08 0c");
    jce_arena_free(a);
    jce_out_free(&reply);
}

/* ---- deferred answers (trpc_server_handle_async) ---- */

static int32_t hello_later(jce_call_t *call, int32_t id, jce_str_t s,
                           jce_str_t *r, Test_Pair *p) {
    if (call->ctx) ((counts_t *)call->ctx)->hello++;
    jce_call_defer(call);
    return -5; /* ignored: nothing is encoded now */
}

static const Test_Hello_impl later_impl = {.testHello = hello_later};

static trpc_server_t *later_server(void) {
    trpc_server_t *srv = trpc_server_new();
    if (srv && trpc_server_add(srv, "Test.HelloServer.HelloObj",
                               &Test_Hello_interface, &later_impl) < 0) {
        trpc_server_free(srv);
        return NULL;
    }
    return srv;
}

/* The answer a deferring impl gives later is the immediate one, byte for
 * byte, in both versions. */
TEST(deferred_answer_matches_immediate) {
    const char *specs[2] = {HELLO_V1_REQ, HELLO_V3_REQ};
    jce_out_t now, later, body;
    jce_out_init(&now, JCE_POLICY_CPP);
    jce_out_init(&later, JCE_POLICY_CPP);
    jce_out_init(&body, JCE_POLICY_CPP);
    trpc_server_t *srv = later_server();
    CHECK(srv != NULL);
    for (int i = 0; srv && i < 2; i++) {
        uint8_t f[2048];
        size_t n = frame_of(specs[i], f, sizeof f);
        CHECK_EQ_INT(run_spec(specs[i], &now, NULL), 0);
        counts_t cnt = {0, 0};
        trpc_req_t rq;
        memset(&rq, 0xff, sizeof rq);
        jce_out_raw(&later, "junk", 4); /* cleared */
        CHECK_EQ_INT(trpc_server_handle_async(srv, f, n, &cnt, &later, &rq),
                     HERALD_EINPROGRESS);
        CHECK_EQ_INT(cnt.hello, 1);
        CHECK_EQ_INT(later.len, 0);
        CHECK_EQ_INT(rq.version, i ? 3 : 1);
        CHECK_EQ_INT(rq.packet_type, TRPC_NORMAL);
        CHECK_EQ_INT(rq.req_id, i ? 17 : 11);
        CHECK(rq.servant && !strcmp(rq.servant, "Test.HelloServer.HelloObj"));
        CHECK(rq.func && !strcmp(rq.func, "testHello"));
        /* another call in between: the server keeps nothing of the first */
        CHECK_EQ_INT(run_spec(HDR_V1("0d") " 66 09 'tars_ping' 7d 00 0c 81 0b "
                                           "b8 98 0c a8 0c",
                              &body, NULL),
                     0);
        Test_Pair p;
        Test_Pair_init(&p);
        p.a = 14;
        p.b = JCE_STR_LIT("ABC");
        jce_out_reset(&body);
        Test_Hello_testHello_reply(&body, rq.version, 0, JCE_STR_LIT("hi abc"),
                                   &p);
        CHECK_EQ_INT(trpc_reply_encode(&rq, JCE_RPC_OK, NULL, &body, &later),
                     0);
        CHECK_EQ_INT(later.len, now.len);
        CHECK(later.len == now.len && !memcmp(later.buf, now.buf, now.len));
    }
    trpc_server_free(srv);
    jce_out_free(&now);
    jce_out_free(&later);
    jce_out_free(&body);
}

TEST(deferred_errors_and_oneway) {
    jce_out_t reply, body;
    jce_out_init(&reply, JCE_POLICY_CPP);
    jce_out_init(&body, JCE_POLICY_CPP);
    jce_arena_t *a = jce_arena_new(0);
    trpc_response_t r;
    trpc_req_t rq = {
        .version = 1, .req_id = 5, .servant = "S.S.O", .func = "testHello"};
    /* the work failed as a whole: a framework code, no results */
    CHECK_EQ_INT(
        trpc_reply_encode(&rq, JCE_RPC_UNKNOWN_ERR, "gone", &body, &reply), 0);
    CHECK_EQ_INT(trpc_response_decode(reply.buf, reply.len, a, &r), 0);
    CHECK_EQ_INT(r.req_id, 5);
    CHECK_EQ_INT(r.ret, JCE_RPC_UNKNOWN_ERR);
    CHECK(jce_str_eq(r.desc, JCE_STR_LIT("gone")));
    CHECK_EQ_INT(r.body.len, 0);
    /* v3 gets the empty map its clients need */
    rq.version = 3;
    CHECK_EQ_INT(
        trpc_reply_encode(&rq, JCE_RPC_UNKNOWN_ERR, NULL, NULL, &reply), 0);
    CHECK_EQ_INT(trpc_response_decode(reply.buf, reply.len, a, &r), 0);
    CHECK_EQ_INT(r.ret, JCE_RPC_UNKNOWN_ERR);
    CHECK_HEX(r.body.data, r.body.len, "08 0c");
    /* an encoder error in the body is an encode error, not garbage */
    rq.version = 1;
    body.err = JCE_ERR_NOMEM;
    CHECK_EQ_INT(trpc_reply_encode(&rq, JCE_RPC_OK, NULL, &body, &reply), 0);
    CHECK_EQ_INT(trpc_response_decode(reply.buf, reply.len, a, &r), 0);
    CHECK_EQ_INT(r.ret, JCE_RPC_ENCODE_ERR);
    CHECK_EQ_INT(r.body.len, 0);
    /* one-way: the work runs (deferred) and nothing is ever written */
    trpc_server_t *srv = later_server();
    uint8_t f[256];
    size_t n = frame_of("10 01 20 01 3c 40 0f 56 19 " SERVANT
                        " 66 09 'testHello' 7d 00 00 07 10 07 26 03 'abc' "
                        "81 0b b8 98 0c a8 0c",
                        f, sizeof f);
    counts_t cnt = {0, 0};
    CHECK_EQ_INT(trpc_server_handle_async(srv, f, n, &cnt, &reply, &rq),
                 HERALD_EINPROGRESS);
    CHECK_EQ_INT(cnt.hello, 1);
    CHECK_EQ_INT(rq.packet_type, TRPC_ONEWAY);
    jce_out_reset(&body);
    jce_out_raw(&reply, "junk", 4);
    CHECK_EQ_INT(trpc_reply_encode(&rq, JCE_RPC_OK, NULL, &body, &reply), 0);
    CHECK_EQ_INT(reply.len, 0);
    /* a synchronous server cannot wait: the deferring impl gets -99 */
    n = frame_of(HELLO_V1_REQ, f, sizeof f);
    CHECK_EQ_INT(trpc_server_handle(srv, f, n, &cnt, &reply), 0);
    CHECK_EQ_INT(trpc_response_decode(reply.buf, reply.len, a, &r), 0);
    CHECK_EQ_INT(r.ret, JCE_RPC_UNKNOWN_ERR);
    CHECK_EQ_INT(r.req_id, 11);
    trpc_server_free(srv);
    jce_arena_free(a);
    jce_out_free(&reply);
    jce_out_free(&body);
}

/* Immediate answers report what they ran, for the caller's metrics. */
TEST(async_reports_func_and_code) {
    trpc_server_t *srv = hello_server();
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    uint8_t f[256];
    trpc_req_t rq;
    size_t n = frame_of(HDR_V1("0d") " 66 09 'tars_ping' 7d 00 0c 81 0b b8 98 "
                                     "0c a8 0c",
                        f, sizeof f);
    CHECK_EQ_INT(trpc_server_handle_async(srv, f, n, NULL, &reply, &rq), 0);
    CHECK(rq.func && !strcmp(rq.func, "tars_ping"));
    CHECK_EQ_INT(rq.ret, 0);
    CHECK_EQ_INT(rq.req_id, 13);
    CHECK(reply.len > 0);
    n = frame_of(HDR_V1("0c") " 66 04 'nope' 7d 00 0c 81 0b b8 98 0c a8 0c", f,
                 sizeof f);
    CHECK_EQ_INT(trpc_server_handle_async(srv, f, n, NULL, &reply, &rq), 0);
    CHECK(rq.func == NULL && rq.servant != NULL);
    CHECK_EQ_INT(rq.ret, JCE_RPC_NO_FUNC);
    n = frame_of(HELLO_V1_REQ, f, sizeof f);
    CHECK_EQ_INT(trpc_server_handle_async(srv, f, n, NULL, &reply, &rq), 0);
    CHECK(rq.func && !strcmp(rq.func, "testHello"));
    CHECK_EQ_INT(rq.ret, 0);
    n = frame_of(HDR_V1("10") " 66 09 'testHello' 7d 00 00 02 10 07 81 0b b8 "
                              "98 0c a8 0c",
                 f, sizeof f);
    CHECK_EQ_INT(trpc_server_handle_async(srv, f, n, NULL, &reply, &rq), 0);
    CHECK_EQ_INT(rq.ret, JCE_RPC_DECODE_ERR);
    trpc_server_free(srv);
    jce_out_free(&reply);
}

TEST(undecodable_packets_fail) {
    trpc_server_t *srv = hello_server();
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    uint8_t f[256];
    size_t n = frame_of(HELLO_V1_REQ, f, sizeof f);
    /* truncated: the prefix no longer matches */
    CHECK_EQ_INT(trpc_server_handle(srv, f, n - 1, NULL, &reply),
                 TRPC_ERR_FRAME);
    /* a consistent frame whose packet stops after iRequestId */
    size_t m = frame_of("10 01 2c 3c 40 0b", f, sizeof f);
    CHECK(trpc_server_handle(srv, f, m, NULL, &reply) < 0);
    CHECK_EQ_INT(reply.len, 0);
    /* a frame whose packet body is cut inside the servant string */
    m = frame_of("10 01 2c 3c 40 0b 56 19 'Test'", f, sizeof f);
    CHECK(trpc_server_handle(srv, f, m, NULL, &reply) < 0);
    /* bad lengths */
    uint8_t four[5] = {0, 0, 0, 4, 0x10};
    CHECK_EQ_INT(trpc_server_handle(srv, four, 5, NULL, &reply),
                 TRPC_ERR_FRAME);
    CHECK_EQ_INT(trpc_server_handle(srv, four, 3, NULL, &reply),
                 TRPC_ERR_FRAME);
    /* the server still works afterwards */
    n = frame_of(HELLO_V1_REQ, f, sizeof f);
    CHECK_EQ_INT(trpc_server_handle(srv, f, n, NULL, &reply), 0);
    CHECK(reply.len > 0);
    trpc_server_free(srv);
    jce_out_free(&reply);
}

TEST(server_add_rejects_duplicates) {
    trpc_server_t *srv = hello_server();
    CHECK(srv != NULL);
    CHECK_EQ_INT(trpc_server_add(srv, "Test.HelloServer.HelloObj",
                                 &Test_Hello_interface, &hello_impl),
                 TRPC_ERR_EXISTS);
    CHECK_EQ_INT(trpc_server_add(srv, "", &Test_Hello_interface, &hello_impl),
                 TRPC_ERR_ARG);
    trpc_server_free(srv);
}

/* A NULL slot in the impl table is "no such function" (-3). */
TEST(null_impl_is_no_func) {
    static const Test_Hello_impl partial = {.testHello = hello_test};
    trpc_server_t *srv = trpc_server_new();
    CHECK(srv != NULL);
    CHECK_EQ_INT(trpc_server_add(srv, "Test.HelloServer.HelloObj",
                                 &Test_Hello_interface, &partial),
                 0);
    uint8_t f[256];
    size_t n =
        frame_of(HDR_V1("0e") " 66 04 'ping' 7d 00 0c 81 0b b8 98 0c a8 0c", f,
                 sizeof f);
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    CHECK_EQ_INT(trpc_server_handle(srv, f, n, NULL, &reply), 0);
    jce_arena_t *a = jce_arena_new(0);
    trpc_response_t r;
    CHECK_EQ_INT(trpc_response_decode(reply.buf, reply.len, a, &r), 0);
    CHECK_EQ_INT(r.ret, JCE_RPC_NO_FUNC);
    jce_arena_free(a);
    jce_out_free(&reply);
    trpc_server_free(srv);
}

/* ---- client helpers ---- */

TEST(request_encode_matches_capture) {
    jce_out_t args, o;
    jce_out_init(&args, JCE_POLICY_CPP);
    jce_out_init(&o, JCE_POLICY_CPP);
    Test_Hello_testHello_args(&args, 1, 7, JCE_STR_LIT("abc"));
    CHECK_HEX(args.buf, args.len, "10 07 26 03 61 62 63");
    CHECK_EQ_INT(trpc_request_encode(&o, 1, TRPC_NORMAL, 11,
                                     "Test.HelloServer.HelloObj", "testHello",
                                     &args, 3000),
                 0);
    CHECK_HEX(o.buf, o.len, frame_hex(HELLO_V1_REQ));
    /* a second frame is appended, not overwritten */
    size_t first = o.len;
    CHECK_EQ_INT(
        trpc_request_encode(&o, 1, TRPC_ONEWAY, 12, "A.B.C", "f", NULL, 0), 0);
    uint32_t fl = 0;
    CHECK_EQ_INT(trpc_frame_check(o.buf + first, o.len - first, 0, &fl), 1);
    CHECK_EQ_INT(fl, o.len - first);
    jce_out_free(&args);
    jce_out_free(&o);
}

TEST(response_decode_js_v1_capture) {
    uint8_t f[256];
    size_t n =
        frame_of("10 01 2c 30 0b 4c 5c 6d 00 00 14 0c 36 06 68 69 20 61 62 63 "
                 "4a 00 0e 16 03 41 42 43 20 05 0b 78 0c 86 00 98 0c",
                 f, sizeof f);
    CHECK_EQ_INT(n, 41);
    jce_arena_t *a = jce_arena_new(0);
    trpc_response_t r;
    CHECK_EQ_INT(trpc_response_decode(f, n, a, &r), 0);
    CHECK_EQ_INT(r.version, 1);
    CHECK_EQ_INT(r.req_id, 11);
    CHECK_EQ_INT(r.ret, 0);
    CHECK_EQ_INT(r.body.len, 20);
    CHECK_EQ_INT(r.desc.len, 0);
    CHECK_EQ_INT(trpc_response_decode(f, n - 1, a, &r), TRPC_ERR_FRAME);
    jce_arena_free(a);
}

TEST(response_decode_js_v3_capture) {
    uint8_t f[512];
    size_t n = frame_of("10 03 2c 3c 40 11 56 19 " SERVANT " 66 09 'testHello' "
                        "7d 00 00 2b 08 00 03 06 00 1d 00 00 01 0c "
                        "06 01 72 1d 00 00 08 06 06 68 69 20 61 62 63 "
                        "06 01 70 1d 00 00 0b 0a 00 0e 16 03 41 42 43 20 05 0b "
                        "8c 98 0c a8 00 02 06 12 'STATUS_RESULT_CODE' 16 01 30 "
                        "06 12 'STATUS_RESULT_DESC' 16 00",
                        f, sizeof f);
    CHECK_EQ_INT(n, 146);
    jce_arena_t *a = jce_arena_new(0);
    trpc_response_t r;
    CHECK_EQ_INT(trpc_response_decode(f, n, a, &r), 0);
    CHECK_EQ_INT(r.version, 3);
    CHECK_EQ_INT(r.req_id, 17);
    CHECK_EQ_INT(r.ret, 0);
    CHECK_EQ_INT(r.body.len, 0x2b);
    int32_t ret = -1;
    jce_str_t rs;
    Test_Pair p;
    CHECK_EQ_INT(Test_Hello_testHello_result(r.body.data, r.body.len, 3, a,
                                             &ret, &rs, &p),
                 0);
    CHECK(jce_str_eq(rs, JCE_STR_LIT("hi abc")));
    CHECK_EQ_INT(p.c, 5);
    /* a non-numeric code is a decode error, not a silent 0 */
    n = frame_of("10 03 2c 3c 40 11 56 00 66 00 7d 00 0c 8c 98 0c "
                 "a8 00 01 06 12 'STATUS_RESULT_CODE' 16 01 'x'",
                 f, sizeof f);
    CHECK_EQ_INT(trpc_response_decode(f, n, a, &r), TRPC_ERR_DECODE);
    n = frame_of("10 03 2c 3c 40 11 56 00 66 00 7d 00 0c 8c 98 0c "
                 "a8 00 01 06 12 'STATUS_RESULT_CODE' 16 02 '-3'",
                 f, sizeof f);
    CHECK_EQ_INT(trpc_response_decode(f, n, a, &r), 0);
    CHECK_EQ_INT(r.ret, -3);
    jce_arena_free(a);
}

/* ---- PushAPI through the generic server, both versions ---- */

/* Every empty device id is rejected with code 7. */
static int32_t multi_impl(jce_call_t *call,
                          const herald_PushMultiDeviceReq *req,
                          herald_PushMultiDeviceRsp *rsp) {
    uint32_t n = req->deviceIds.n;
    rsp->rejected.keys =
        jce_arena_alloc(call->arena, (n + 1) * sizeof(jce_str_t));
    rsp->rejected.vals =
        jce_arena_alloc(call->arena, (n + 1) * sizeof(int32_t));
    if (!rsp->rejected.keys || !rsp->rejected.vals) return JCE_RPC_UNKNOWN_ERR;
    for (uint32_t i = 0; i < n; i++) {
        if (req->deviceIds.items[i].len) continue;
        rsp->rejected.keys[rsp->rejected.n] = req->deviceIds.items[i];
        rsp->rejected.vals[rsp->rejected.n++] = 7;
        break;
    }
    rsp->online = (int32_t)n;
    rsp->msgId = req->msg.requestId;
    return 3; /* the method's own return value, not the framework code */
}

static const herald_PushAPI_impl push_impl = {.pushMultiDevice = multi_impl};

TEST(pushapi_multi_v1_and_v3) {
    trpc_server_t *srv = trpc_server_new();
    CHECK(srv != NULL);
    CHECK_EQ_INT(trpc_server_add(srv, "herald.PushServer.PushAPIObj",
                                 &herald_PushAPI_interface, &push_impl),
                 0);
    jce_str_t ids[3] = {JCE_STR_LIT("a"), JCE_STR_LIT(""), JCE_STR_LIT("b")};
    herald_PushMultiDeviceReq req;
    herald_PushMultiDeviceReq_init(&req);
    req.apiKey = JCE_STR_LIT("key");
    req.deviceIds.items = ids;
    req.deviceIds.n = 3;
    req.msg.requestId = JCE_STR_LIT("rq-1");
    jce_out_t args, frame, reply;
    jce_out_init(&args, JCE_POLICY_CPP);
    jce_out_init(&frame, JCE_POLICY_CPP);
    jce_out_init(&reply, JCE_POLICY_CPP);
    jce_arena_t *a = jce_arena_new(0);
    int ok = 1;
    for (int version = 1; version <= 3 && ok; version += 2) {
        jce_out_reset(&args);
        jce_out_reset(&frame);
        herald_PushAPI_pushMultiDevice_args(&args, version, &req);
        int enc = trpc_request_encode(
            &frame, version, TRPC_NORMAL, 40 + version,
            "herald.PushServer.PushAPIObj", "pushMultiDevice", &args, 0);
        trpc_response_t r;
        herald_PushMultiDeviceRsp rsp;
        int32_t ret = -1;
        ok = enc == 0 &&
             trpc_server_handle(srv, frame.buf, frame.len, NULL, &reply) == 0 &&
             trpc_response_decode(reply.buf, reply.len, a, &r) == 0 &&
             r.version == version && r.req_id == 40 + version && r.ret == 0 &&
             herald_PushAPI_pushMultiDevice_result(
                 r.body.data, r.body.len, version, a, &ret, &rsp) == 0 &&
             ret == 3 && rsp.online == 3 &&
             jce_str_eq(rsp.msgId, JCE_STR_LIT("rq-1")) &&
             rsp.rejected.n == 1 && rsp.rejected.keys[0].len == 0 &&
             rsp.rejected.vals[0] == 7;
        if (!ok) fprintf(stderr, "  version %d failed\n", version);
    }
    /* the other three ops have no impl: -3 */
    jce_out_reset(&frame);
    int rc = trpc_request_encode(&frame, 1, TRPC_NORMAL, 50,
                                 "herald.PushServer.PushAPIObj",
                                 "pushAllDevice", &args, 0);
    trpc_response_t r;
    if (rc == 0)
        rc = trpc_server_handle(srv, frame.buf, frame.len, NULL, &reply);
    int rc2 = rc == 0 ? trpc_response_decode(reply.buf, reply.len, a, &r) : rc;
    jce_arena_free(a);
    jce_out_free(&args);
    jce_out_free(&frame);
    jce_out_free(&reply);
    trpc_server_free(srv);
    CHECK(ok);
    CHECK_EQ_INT(rc2, 0);
    CHECK_EQ_INT(r.ret, JCE_RPC_NO_FUNC);
}

/* ---- trpc_call over a socketpair, with a server thread ---- */

typedef struct peer {
    int fd;
    int frames;
} peer_t;

/* Answers each request after first sending a stray answer with another
 * request id, which trpc_call must drop. */
static void *peer_main(void *arg) {
    peer_t *pe = arg;
    trpc_server_t *srv = hello_server();
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    uint8_t buf[4096];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(pe->fd, buf + len, sizeof buf - len);
        if (r <= 0) break;
        len += (size_t)r;
        uint32_t fl;
        while (trpc_frame_check(buf, len, 0, &fl) == 1) {
            uint8_t s[64];
            size_t sn = frame_of("10 01 2c 32 7f ff ff ff 4c 5c 6d 00 0c 78 0c",
                                 s, sizeof s);
            if (write(pe->fd, s, sn) != (ssize_t)sn) break;
            if (trpc_server_handle(srv, buf, fl, NULL, &reply) == 0 &&
                write(pe->fd, reply.buf, reply.len) != (ssize_t)reply.len)
                break;
            pe->frames++;
            memmove(buf, buf + fl, len - fl);
            len -= fl;
        }
    }
    jce_out_free(&reply);
    trpc_server_free(srv);
    return NULL;
}

TEST(call_roundtrip) {
    int sv[2];
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    peer_t pe = {sv[1], 0};
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, peer_main, &pe), 0);

    jce_out_t args, req, rbuf;
    jce_out_init(&args, JCE_POLICY_CPP);
    jce_out_init(&req, JCE_POLICY_CPP);
    jce_out_init(&rbuf, JCE_POLICY_CPP);
    jce_arena_t *a = jce_arena_new(0);
    int ok = 1;
    for (int32_t id = 1; id <= 3 && ok; id++) {
        jce_out_reset(&args);
        jce_out_reset(&req);
        Test_Hello_testHello_args(&args, 1, id, JCE_STR_LIT("xy"));
        int rc = trpc_request_encode(&req, 1, TRPC_NORMAL, 100 + id,
                                     "Test.HelloServer.HelloObj", "testHello",
                                     &args, 1000);
        trpc_response_t r;
        if (rc == 0) rc = trpc_call(sv[0], &req, 100 + id, 2000, &rbuf, a, &r);
        int32_t ret = -1;
        jce_str_t rs;
        Test_Pair p;
        ok = rc == 0 && r.req_id == 100 + id && r.ret == 0 &&
             Test_Hello_testHello_result(r.body.data, r.body.len, 1, a, &ret,
                                         &rs, &p) == 0 &&
             p.a == 2 * id && jce_str_eq(rs, JCE_STR_LIT("hi xy"));
    }
    close(sv[0]);
    pthread_join(th, NULL);
    close(sv[1]);
    jce_arena_free(a);
    jce_out_free(&args);
    jce_out_free(&req);
    jce_out_free(&rbuf);
    CHECK(ok);
    CHECK_EQ_INT(pe.frames, 3);
}

TEST(call_times_out) {
    int sv[2];
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    jce_out_t req, rbuf;
    jce_out_init(&req, JCE_POLICY_CPP);
    jce_out_init(&rbuf, JCE_POLICY_CPP);
    int enc =
        trpc_request_encode(&req, 1, TRPC_NORMAL, 5, "A.B.C", "f", NULL, 50);
    jce_arena_t *a = jce_arena_new(0);
    trpc_response_t r;
    int rc = trpc_call(sv[0], &req, 5, 50, &rbuf, a, &r);
    close(sv[1]);
    int rc2 = trpc_call(sv[0], &req, 5, 50, &rbuf, a, &r);
    close(sv[0]);
    jce_arena_free(a);
    jce_out_free(&req);
    jce_out_free(&rbuf);
    CHECK_EQ_INT(enc, 0);
    CHECK_EQ_INT(rc, TRPC_ERR_TIMEOUT);
    CHECK(rc2 == TRPC_ERR_CLOSED || rc2 == TRPC_ERR_IO);
}
