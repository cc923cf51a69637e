/* Unit tests: src/gateway/http.c (request-head parser and helpers). */
#include <stdint.h>
#include <string.h>

#include "gateway/http.h"
#include "test.h"

/* Feeds s as the caller would: a growing prefix of one buffer, in chunks
 * of `step` bytes (0 = random 1..17), until DONE or an error. */
static int feed(http_req_t *r, const char *s, size_t n, size_t step,
                unsigned *seed) {
    http_req_init(r);
    size_t have = 0;
    int rc = HTTP_AGAIN;
    while (rc == HTTP_AGAIN && have < n) {
        size_t k = step ? step : 1 + (*seed = *seed * 1103515245 + 12345) % 17;
        have = have + k > n ? n : have + k;
        rc = http_parse(r, s, have);
    }
    return rc;
}

/* Parses s whole, byte by byte and in random splits; all three must agree
 * on the result and (if DONE) on every offset. */
static int parse_all_ways(const char *s, http_req_t *out) {
    size_t n = strlen(s);
    static http_req_t a, b;
    unsigned seed = 7;
    int rc = feed(out, s, n, n ? n : 1, &seed);
    int rc1 = feed(&a, s, n, 1, &seed);
    if (rc1 != rc) return 100 + rc1;
    for (int i = 0; i < 20; i++) {
        int rc2 = feed(&b, s, n, 0, &seed);
        if (rc2 != rc) return 200 + rc2;
        if (rc == HTTP_DONE &&
            (b.head_len != out->head_len || b.nheaders != out->nheaders ||
             memcmp(b.headers, out->headers,
                    sizeof b.headers[0] * b.nheaders) ||
             memcmp(&b.target, &out->target, sizeof b.target)))
            return 300;
    }
    if (rc == HTTP_DONE &&
        (a.head_len != out->head_len || a.nheaders != out->nheaders ||
         memcmp(a.headers, out->headers, sizeof a.headers[0] * a.nheaders)))
        return 400;
    return rc;
}

#define SPAN_IS(buf, sp, lit) \
    ((sp).len == strlen(lit) && memcmp((buf) + (sp).off, (lit), (sp).len) == 0)

static const char WS_REQ[] = "GET /v1/ws?token=demo.dev.1.abc&x=1 HTTP/1.1\r\n"
                             "Host: 127.0.0.1:7100\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: keep-alive, Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n"
                             "X-Empty:\r\n"
                             "X-Spaces: \t padded value \t \r\n"
                             "\r\n";

TEST(http_websocket_upgrade_request) {
    http_req_t r;
    CHECK_EQ_INT(parse_all_ways(WS_REQ, &r), HTTP_DONE);
    CHECK_EQ_INT(r.head_len, strlen(WS_REQ));
    CHECK_EQ_INT(r.method, HTTP_M_GET);
    CHECK_EQ_INT(r.version, 11);
    CHECK(SPAN_IS(WS_REQ, r.method_s, "GET"));
    CHECK(SPAN_IS(WS_REQ, r.target, "/v1/ws?token=demo.dev.1.abc&x=1"));
    CHECK(SPAN_IS(WS_REQ, r.path, "/v1/ws"));
    CHECK(SPAN_IS(WS_REQ, r.query, "token=demo.dev.1.abc&x=1"));
    CHECK_EQ_INT(r.nheaders, 7);
    CHECK(SPAN_IS(WS_REQ, r.headers[0].name, "Host"));
    CHECK(SPAN_IS(WS_REQ, r.headers[0].value, "127.0.0.1:7100"));
    CHECK(SPAN_IS(WS_REQ, r.headers[5].name, "X-Empty"));
    CHECK_EQ_INT(r.headers[5].value.len, 0);
    CHECK(SPAN_IS(WS_REQ, r.headers[6].value, "padded value"));
    const http_header_t *h = http_find_header(&r, WS_REQ, "sec-websocket-key");
    CHECK(h != NULL);
    CHECK(SPAN_IS(WS_REQ, h->value, "dGhlIHNhbXBsZSBub25jZQ=="));
    CHECK(http_find_header(&r, WS_REQ, "Sec-WebSocket-Protocol") == NULL);
    CHECK(http_header_has_token(&r, WS_REQ, "connection", "upgrade"));
    CHECK(http_header_has_token(&r, WS_REQ, "Connection", "KEEP-ALIVE"));
    CHECK(!http_header_has_token(&r, WS_REQ, "Connection", "close"));
    CHECK(!http_header_has_token(&r, WS_REQ, "Connection", "upgrad"));
    CHECK(http_header_has_token(&r, WS_REQ, "upgrade", "WebSocket"));
}

TEST(http_bare_lf_and_leading_empty_lines) {
    const char *s =
        "\r\n\nPOST /v1/yyb HTTP/1.0\nContent-Length: 12\n\nYYBbody";
    http_req_t r;
    CHECK_EQ_INT(parse_all_ways(s, &r), HTTP_DONE);
    CHECK_EQ_INT(r.method, HTTP_M_POST);
    CHECK_EQ_INT(r.version, 10);
    CHECK_EQ_INT(r.head_len, strlen(s) - strlen("YYBbody"));
    CHECK(SPAN_IS(s, r.path, "/v1/yyb"));
    CHECK_EQ_INT(r.query.len, 0);
    uint64_t cl = 0;
    CHECK_EQ_INT(http_content_length(&r, s, &cl), 1);
    CHECK_EQ_INT(cl, 12);
    /* Calling again after DONE is harmless. */
    CHECK_EQ_INT(http_parse(&r, s, strlen(s)), HTTP_DONE);
}

TEST(http_methods_and_versions) {
    static const struct {
        const char *s;
        int m, v;
    } ok[] = {
        {"GET / HTTP/1.1\r\n\r\n", HTTP_M_GET, 11},
        {"HEAD / HTTP/1.1\r\n\r\n", HTTP_M_HEAD, 11},
        {"PUT / HTTP/1.1\r\n\r\n", HTTP_M_PUT, 11},
        {"DELETE / HTTP/1.1\r\n\r\n", HTTP_M_DELETE, 11},
        {"OPTIONS * HTTP/1.1\r\n\r\n", HTTP_M_OPTIONS, 11},
        {"PATCH / HTTP/1.1\r\n\r\n", HTTP_M_OTHER, 11},
        {"get / HTTP/1.1\r\n\r\n", HTTP_M_OTHER, 11}, /* case-sensitive */
        {"GET / HTTP/1.9\r\n\r\n", HTTP_M_GET, 11},
        {"GET http://h/x?y HTTP/1.1\r\n\r\n", HTTP_M_GET, 11},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        http_req_t r;
        CHECK_EQ_INT(parse_all_ways(ok[i].s, &r), HTTP_DONE);
        CHECK_EQ_INT(r.method, ok[i].m);
        CHECK_EQ_INT(r.version, ok[i].v);
        CHECK_EQ_INT(r.nheaders, 0);
    }
}

/* Every error path, each with its status class. */
TEST(http_rejects) {
    static const struct {
        const char *s;
        int err, status;
    } bad[] = {
        {" GET / HTTP/1.1\r\n\r\n", HTTP_ERR_SYNTAX, 400},
        {"\rGET / HTTP/1.1\r\n\r\n", HTTP_ERR_BARE_CR, 400},
        {"G(T / HTTP/1.1\r\n\r\n", HTTP_ERR_SYNTAX, 400},
        {"GET  / HTTP/1.1\r\n\r\n", HTTP_ERR_SYNTAX, 400},
        {"GET /\x01 HTTP/1.1\r\n\r\n", HTTP_ERR_TARGET, 400},
        {"GET /a#frag HTTP/1.1\r\n\r\n", HTTP_ERR_TARGET, 400},
        {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", HTTP_ERR_TARGET, 400},
        {"GET \x7f HTTP/1.1\r\n\r\n", HTTP_ERR_TARGET, 400},
        {"GET /\r\n\r\n", HTTP_ERR_SYNTAX, 400}, /* HTTP/0.9 */
        {"GET / http/1.1\r\n\r\n", HTTP_ERR_SYNTAX, 400},
        {"GET / HTTP/1.1 \r\n\r\n", HTTP_ERR_SYNTAX, 400},
        {"GET / HTTP/x.1\r\n\r\n", HTTP_ERR_SYNTAX, 400},
        {"GET / HTTP/1-1\r\n\r\n", HTTP_ERR_SYNTAX, 400},
        {"GET / HTTP/1.x\r\n\r\n", HTTP_ERR_SYNTAX, 400},
        {"GET / HTTP/1.10\r\n\r\n", HTTP_ERR_SYNTAX, 400},
        {"GET / HTTP/2.0\r\n\r\n", HTTP_ERR_VERSION, 505},
        {"GET / HTTP/0.9\r\n\r\n", HTTP_ERR_VERSION, 505},
        {"GET / HTTP/1.1\rX: y\r\n\r\n", HTTP_ERR_BARE_CR, 400},
        {"GET / HTTP/1.1\r\nX: y\rZ\r\n\r\n", HTTP_ERR_BARE_CR, 400},
        {"GET / HTTP/1.1\r\nX: y\r\n\rX", HTTP_ERR_BARE_CR, 400},
        {"GET / HTTP/1.1\r\n Host: x\r\n\r\n", HTTP_ERR_SYNTAX, 400},
        {"GET / HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n", HTTP_ERR_OBS_FOLD, 400},
        {"GET / HTTP/1.1\r\nA: b\r\n\tfolded\r\n\r\n", HTTP_ERR_OBS_FOLD, 400},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", HTTP_ERR_HEADER_NAME, 400},
        {"GET / HTTP/1.1\r\n: x\r\n\r\n", HTTP_ERR_HEADER_NAME, 400},
        {"GET / HTTP/1.1\r\nHo(st: x\r\n\r\n", HTTP_ERR_HEADER_NAME, 400},
        {"GET / HTTP/1.1\r\nHost\r\n\r\n", HTTP_ERR_HEADER_NAME, 400},
        {"GET / HTTP/1.1\r\nX: a\x01"
         "b\r\n\r\n",
         HTTP_ERR_HEADER_VALUE, 400},
        {"GET / HTTP/1.1\r\nX: \x7f\r\n\r\n", HTTP_ERR_HEADER_VALUE, 400},
        {"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", HTTP_ERR_HEADER_VALUE, 400},
        {"ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n\r\n", HTTP_ERR_METHOD, 501},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_req_t r;
        int rc = parse_all_ways(bad[i].s, &r);
        if (rc != bad[i].err) {
            fprintf(stderr, "  case %zu: got %d want %d\n", i, rc, bad[i].err);
            CHECK(0);
        }
        CHECK_EQ_INT(http_err_status(rc), bad[i].status);
        /* Sticky. */
        CHECK_EQ_INT(http_parse(&r, bad[i].s, strlen(bad[i].s)), bad[i].err);
    }
    CHECK(strcmp(http_strerror(HTTP_ERR_OBS_FOLD),
                 "obsolete header line folding") == 0);
}

TEST(http_nul_byte_rejected) {
    static const char s[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    http_req_t r;
    http_req_init(&r);
    CHECK_EQ_INT(http_parse(&r, s, sizeof s - 1), HTTP_ERR_HEADER_VALUE);
}

TEST(http_value_with_obs_text_accepted) {
    const char *s = "GET / HTTP/1.1\r\nX: caf\xc3\xa9 \x80\r\n\r\n";
    http_req_t r;
    CHECK_EQ_INT(parse_all_ways(s, &r), HTTP_DONE);
    CHECK(SPAN_IS(s, r.headers[0].value, "caf\xc3\xa9 \x80"));
}

TEST(http_limits_method_target_head) {
    static char s[HTTP_MAX_HEAD * 2 + 64];
    http_req_t r;
    /* Method of exactly 16 characters is fine. */
    CHECK_EQ_INT(parse_all_ways("ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n", &r),
                 HTTP_DONE);
    /* Target at the limit passes; one more byte is 414. */
    strcpy(s, "GET /");
    memset(s + 5, 'a', HTTP_MAX_TARGET - 1);
    strcpy(s + 4 + HTTP_MAX_TARGET, " HTTP/1.1\r\n\r\n");
    CHECK_EQ_INT(parse_all_ways(s, &r), HTTP_DONE);
    CHECK_EQ_INT(r.target.len, HTTP_MAX_TARGET);
    strcpy(s, "GET /");
    memset(s + 5, 'a', HTTP_MAX_TARGET);
    strcpy(s + 5 + HTTP_MAX_TARGET, " HTTP/1.1\r\n\r\n");
    CHECK_EQ_INT(parse_all_ways(s, &r), HTTP_ERR_URI_TOO_LONG);
    CHECK_EQ_INT(http_err_status(HTTP_ERR_URI_TOO_LONG), 414);
    /* A lowered max_target. */
    http_req_init(&r);
    r.max_target = 8;
    CHECK_EQ_INT(http_parse(&r, "GET /12345678 HTTP/1.1\r\n\r\n", 26),
                 HTTP_ERR_URI_TOO_LONG);
    /* A target that outgrows the head limit is also 414. */
    http_req_init(&r);
    r.max_head = 32;
    CHECK_EQ_INT(http_parse(&r, s, strlen(s)), HTTP_ERR_URI_TOO_LONG);
    /* Head of exactly max_head bytes passes, one more is 431. */
    size_t n = 0;
    n += (size_t)sprintf(s, "GET / HTTP/1.1\r\nX: ");
    size_t fill = HTTP_MAX_HEAD - n - 4;
    memset(s + n, 'v', fill);
    strcpy(s + n + fill, "\r\n\r\n");
    CHECK_EQ_INT(strlen(s), HTTP_MAX_HEAD);
    CHECK_EQ_INT(parse_all_ways(s, &r), HTTP_DONE);
    CHECK_EQ_INT(r.head_len, HTTP_MAX_HEAD);
    memset(s + n, 'v', fill + 1);
    strcpy(s + n + fill + 1, "\r\n\r\n");
    CHECK_EQ_INT(parse_all_ways(s, &r), HTTP_ERR_TOO_LARGE);
    CHECK_EQ_INT(http_err_status(HTTP_ERR_TOO_LARGE), 431);
}

TEST(http_limit_header_count) {
    static char s[4096];
    size_t n = (size_t)sprintf(s, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        n += (size_t)sprintf(s + n, "H%d: %d\r\n", i, i);
    strcpy(s + n, "\r\n");
    http_req_t r;
    CHECK_EQ_INT(parse_all_ways(s, &r), HTTP_DONE);
    CHECK_EQ_INT(r.nheaders, HTTP_MAX_HEADERS);
    CHECK(SPAN_IS(s, r.headers[63].name, "H63"));
    CHECK(SPAN_IS(s, r.headers[63].value, "63"));
    n += (size_t)sprintf(s + n, "One: more\r\n");
    strcpy(s + n, "\r\n");
    CHECK_EQ_INT(parse_all_ways(s, &r), HTTP_ERR_TOO_MANY);
    CHECK_EQ_INT(http_err_status(HTTP_ERR_TOO_MANY), 431);
}

TEST(http_again_at_every_prefix) {
    /* Every proper prefix of a valid head is AGAIN, never DONE or error. */
    size_t n = strlen(WS_REQ);
    for (size_t k = 0; k < n; k++) {
        http_req_t r;
        http_req_init(&r);
        CHECK_EQ_INT(http_parse(&r, WS_REQ, k), HTTP_AGAIN);
    }
}

TEST(http_query_param_decoding) {
    const char *s = "GET /v1/ws?a=1&token=ab%2Ecd%3a%40&plus=a+b&empty=&flag"
                    "&bad=%zz&short=%4&nul=%00 HTTP/1.1\r\n\r\n";
    http_req_t r;
    CHECK_EQ_INT(parse_all_ways(s, &r), HTTP_DONE);
    char v[64];
    CHECK_EQ_INT(http_query_param(&r, s, "token", v, sizeof v), 7);
    CHECK(strcmp(v, "ab.cd:@") == 0);
    CHECK_EQ_INT(http_query_param(&r, s, "a", v, sizeof v), 1);
    CHECK(strcmp(v, "1") == 0);
    CHECK_EQ_INT(http_query_param(&r, s, "plus", v, sizeof v), 3);
    CHECK(strcmp(v, "a b") == 0);
    CHECK_EQ_INT(http_query_param(&r, s, "empty", v, sizeof v), 0);
    CHECK_EQ_INT(http_query_param(&r, s, "flag", v, sizeof v), 0);
    CHECK_EQ_INT(http_query_param(&r, s, "missing", v, sizeof v), -1);
    CHECK_EQ_INT(http_query_param(&r, s, "tok", v, sizeof v), -1);
    CHECK_EQ_INT(http_query_param(&r, s, "bad", v, sizeof v), -2);
    CHECK_EQ_INT(http_query_param(&r, s, "short", v, sizeof v), -2);
    CHECK_EQ_INT(http_query_param(&r, s, "nul", v, sizeof v), -2);
    /* Too long for the buffer: refused, not truncated. */
    CHECK_EQ_INT(http_query_param(&r, s, "token", v, 7), -2);
    CHECK_EQ_INT(http_query_param(&r, s, "token", v, 8), 7);
    /* No query at all. */
    const char *p = "GET /v1/ws HTTP/1.1\r\n\r\n";
    CHECK_EQ_INT(parse_all_ways(p, &r), HTTP_DONE);
    CHECK_EQ_INT(http_query_param(&r, p, "token", v, sizeof v), -1);
    /* Empty query after '?'. */
    p = "GET /v1/ws? HTTP/1.1\r\n\r\n";
    CHECK_EQ_INT(parse_all_ways(p, &r), HTTP_DONE);
    CHECK(SPAN_IS(p, r.path, "/v1/ws"));
    CHECK_EQ_INT(r.query.len, 0);
    CHECK_EQ_INT(http_query_param(&r, p, "token", v, sizeof v), -1);
}

TEST(http_content_length_rules) {
    static const struct {
        const char *s;
        int rc;
        uint64_t v;
    } cases[] = {
        {"POST / HTTP/1.1\r\n\r\n", 0, 0},
        {"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 1, 0},
        {"POST / HTTP/1.1\r\ncontent-length: 42\r\nCONTENT-LENGTH: 42\r\n\r\n",
         1, 42},
        {"POST / HTTP/1.1\r\nContent-Length: 42\r\nContent-Length: 43\r\n\r\n",
         HTTP_ERR_SYNTAX, 0},
        {"POST / HTTP/1.1\r\nContent-Length: 4 2\r\n\r\n", HTTP_ERR_SYNTAX, 0},
        {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HTTP_ERR_SYNTAX, 0},
        {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", HTTP_ERR_SYNTAX, 0},
        {"POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n",
         HTTP_ERR_SYNTAX, 0},
        {"POST / HTTP/1.1\r\nContent-Length: 123456789012345678\r\n\r\n", 1,
         123456789012345678ull},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_req_t r;
        CHECK_EQ_INT(parse_all_ways(cases[i].s, &r), HTTP_DONE);
        uint64_t v = 0;
        CHECK_EQ_INT(http_content_length(&r, cases[i].s, &v), cases[i].rc);
        if (cases[i].rc == 1) CHECK(v == cases[i].v);
    }
}

TEST(http_pct_decode_edges) {
    char out[8];
    CHECK_EQ_INT(http_pct_decode("", 0, out, sizeof out), 0);
    CHECK_EQ_INT(out[0], 0);
    CHECK_EQ_INT(http_pct_decode("%41%62", 6, out, sizeof out), 2);
    CHECK(strcmp(out, "Ab") == 0);
    CHECK_EQ_INT(http_pct_decode("%", 1, out, sizeof out), -2);
    CHECK_EQ_INT(http_pct_decode("a%4", 3, out, sizeof out), -2);
    CHECK_EQ_INT(http_pct_decode("abc", 3, out, 0), -2);
    CHECK_EQ_INT(http_pct_decode("abc", 3, out, 3), -2);
    CHECK_EQ_INT(http_pct_decode("abc", 3, out, 4), 3);
}

/* Random bytes never crash, never run past len, and errors are sticky. */
TEST(http_random_input_is_safe) {
    unsigned seed = 12345;
    static char buf[512];
    const char alpha[] = "GET /?=&%: \r\n\tHTTP/1.0aZ\x01\x80";
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (seed = seed * 1103515245 + 12345) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245 + 12345;
            buf[i] = alpha[(seed >> 16) % (sizeof alpha - 1)];
        }
        if (iter % 3 == 0 && n > 5)
            memcpy(buf, "GET / HTTP/1.1\r\n", n < 16 ? n : 16);
        http_req_t r;
        unsigned s2 = seed;
        int rc = feed(&r, buf, n, 0, &s2);
        CHECK(rc >= HTTP_ERR_VERSION && rc <= HTTP_DONE);
        if (rc == HTTP_DONE) CHECK(r.head_len <= n);
    }
}
