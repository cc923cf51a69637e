/*
 * libFuzzer target for the HTTP request-head parser (src/gateway/http.c)
 * and the helpers that read a parsed head (header lookup, token lists,
 * query parameters, Content-Length) and the WebSocket handshake check.
 *
 * The head is parsed whole and byte by byte (and, chosen by the first
 * byte, in random pieces); all must agree on the result and every offset.
 * Every span must lie inside the bytes given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/http.h"
#include "gateway/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void span_in(http_span_t s, size_t n) {
    if ((size_t)s.off + s.len > n) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t cfg = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    static http_req_t a, b;
    http_req_init(&a);
    if (cfg & 1) a.max_head = 256;
    if (cfg & 2) a.max_target = 32;
    int rc = http_parse(&a, s, n);
    http_req_init(&b);
    b.max_head = a.max_head;
    b.max_target = a.max_target;
    int rc2;
    {
        size_t have = 0;
        unsigned seed = cfg;
        rc2 = HTTP_AGAIN;
        while (rc2 == HTTP_AGAIN && have < n) {
            size_t k =
                (cfg & 4) ? 1 : 1 + (seed = seed * 1103515245 + 12345) % 29;
            have = have + k > n ? n : have + k;
            rc2 = http_parse(&b, s, have);
        }
    }
    if (rc != rc2) abort();
    if (rc < HTTP_ERR_VERSION || rc > HTTP_DONE) abort();
    if (rc != HTTP_DONE) return 0;
    if (a.head_len != b.head_len || a.nheaders != b.nheaders ||
        memcmp(&a.target, &b.target, sizeof a.target) ||
        memcmp(&a.query, &b.query, sizeof a.query) ||
        memcmp(a.headers, b.headers, a.nheaders * sizeof a.headers[0]))
        abort();
    if (a.head_len > n || a.head_len > a.max_head) abort();
    span_in(a.method_s, a.head_len);
    span_in(a.target, a.head_len);
    span_in(a.path, a.head_len);
    span_in(a.query, a.head_len);
    if (a.target.len > a.max_target) abort();
    for (unsigned i = 0; i < a.nheaders; i++) {
        span_in(a.headers[i].name, a.head_len);
        span_in(a.headers[i].value, a.head_len);
        if (a.headers[i].name.len == 0) abort();
    }
    char v[256];
    int q = http_query_param(&a, s, "token", v, sizeof v);
    if (q >= 0 && (q >= (int)sizeof v || strlen(v) != (size_t)q)) abort();
    uint64_t cl;
    (void)http_content_length(&a, s, &cl);
    (void)http_header_has_token(&a, s, "Connection", "upgrade");
    (void)http_find_header(&a, s, "host");
    ws_handshake_t hs;
    if (ws_handshake_check(&a, s, &hs) == 0) {
        span_in(hs.key, a.head_len);
        char out[256];
        if (ws_handshake_response(out, sizeof out, s + hs.key.off, hs.key.len,
                                  hs.jce) <= 0)
            abort();
    }
    return 0;
}
