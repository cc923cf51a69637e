/* bench_wire: the load generator's client-side codecs.  MQTT bytes are
 * checked against MQTT 3.1.1 §3.1/§3.8/§3.3 layouts, WebSocket framing
 * against RFC 6455 §5.2/§5.3 (masking), markers by round trip, herald
 * frames by the gateway's own reader (yyb.h). */
#include <stdlib.h>
#include <string.h>

#include "Protocol.h"
#include "bench/bench_wire.h"
#include "gateway/yyb.h"
#include "test.h"

typedef struct seen {
    int n;
    char kind[8];
    uint64_t v[8];
} seen_t;

static void on_mark(void *ctx, char kind, uint64_t v) {
    seen_t *s = ctx;
    if (s->n < 8) {
        s->kind[s->n] = kind;
        s->v[s->n] = v;
    }
    s->n++;
}

TEST(payload_pads_to_size_and_scans_back) {
    char p[128];
    CHECK_EQ_INT(bench_payload(p, sizeof p, 16, 'B', 42), 16);
    CHECK(!strcmp(p, "#B42#xxxxxxxxxxx"));
    /* Smaller than the marker: the marker alone. */
    CHECK_EQ_INT(bench_payload(p, sizeof p, 2, 'U', 123456), 9);
    CHECK_EQ_INT(bench_payload(p, 8, 64, 'B', 1), 0);
    seen_t s = {0};
    const char *txt =
        "{\"payload\":\"#B7#xx\",\"x\":\"#U99#\",\"#Z1#\",\"#B#\"}#B3";
    CHECK_EQ_INT(bench_scan((const uint8_t *)txt, strlen(txt), on_mark, &s), 2);
    CHECK_EQ_INT(s.n, 2);
    CHECK(s.kind[0] == 'B' && s.v[0] == 7);
    CHECK(s.kind[1] == 'U' && s.v[1] == 99);
}

TEST(mqtt_connect_subscribe_publish_bytes) {
    uint8_t b[256];
    size_t n = bench_mqtt_connect(b, sizeof b, "c1", 60);
    CHECK_EQ_INT(n, 16);
    CHECK_HEX(b, n, "10 0e 00 04 4d 51 54 54 04 02 00 3c 00 02 63 31");
    n = bench_mqtt_subscribe(b, sizeof b, 1, "bench", 0);
    CHECK_HEX(b, n, "82 0a 00 01 00 05 62 65 6e 63 68 00");
    n = bench_mqtt_publish(b, sizeof b, "t", "hi", 2);
    CHECK_HEX(b, n, "30 05 00 01 74 68 69");
    bench_mqtt_pkt_t k;
    CHECK_EQ_INT(bench_mqtt_parse(b, n - 1, &k), 0);
    CHECK_EQ_INT(bench_mqtt_parse(b, n, &k), 1);
    CHECK_EQ_INT(k.type, BENCH_MQTT_PUBLISH);
    CHECK_EQ_INT(k.total, n);
    const uint8_t *pl;
    size_t pn;
    CHECK_EQ_INT(bench_mqtt_publish_payload(&k, &pl, &pn), 0);
    CHECK(pn == 2 && !memcmp(pl, "hi", 2));
    CHECK_EQ_INT(bench_mqtt_connect(b, 8, "c1", 60), 0);
}

TEST(mqtt_remaining_length_multibyte) {
    static uint8_t big[400], out[512];
    memset(big, 'a', sizeof big);
    size_t n = bench_mqtt_publish(out, sizeof out, "t", big, sizeof big);
    /* remaining = 2 + 1 + 400 = 403 = 0x93 0x03 */
    CHECK_HEX(out, 3, "30 93 03");
    bench_mqtt_pkt_t k;
    CHECK_EQ_INT(bench_mqtt_parse(out, n, &k), 1);
    CHECK_EQ_INT(k.body_len, 403);
    const uint8_t bad[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK_EQ_INT(bench_mqtt_parse(bad, sizeof bad, &k), -1);
}

TEST(ws_client_frames_are_masked) {
    uint8_t b[64];
    size_t n = bench_ws_frame(b, sizeof b, 0x1, "Hello", 5, 0x37fa213d);
    /* RFC 6455 §5.7: a masked "Hello". */
    CHECK_HEX(b, n, "81 85 37 fa 21 3d 7f 9f 4d 51 58");
    static uint8_t big[300], out[400];
    n = bench_ws_frame(out, sizeof out, 0x2, big, sizeof big, 0);
    CHECK_EQ_INT(n, 4 + 4 + 300);
    CHECK_HEX(out, 4, "82 fe 01 2c");
}

TEST(ws_server_frames_parse) {
    bench_ws_frame_t f;
    const uint8_t hello[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o', 0x89};
    CHECK_EQ_INT(bench_ws_parse(hello, 6, &f), 0);
    CHECK_EQ_INT(bench_ws_parse(hello, sizeof hello, &f), 1);
    CHECK(f.opcode == 1 && f.fin && f.len == 5 && f.total == 7);
    CHECK(!memcmp(f.payload, "Hello", 5));
    const uint8_t masked[] = {0x81, 0x80, 1, 2, 3, 4};
    CHECK_EQ_INT(bench_ws_parse(masked, sizeof masked, &f), -1);
    uint8_t ext[4 + 200] = {0x82, 126, 0, 200};
    CHECK_EQ_INT(bench_ws_parse(ext, sizeof ext, &f), 1);
    CHECK_EQ_INT(f.len, 200);
}

TEST(http_head_status_length_chunked) {
    bench_http_rsp_t r;
    const char *a =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81";
    CHECK_EQ_INT(bench_http_head((const uint8_t *)a, strlen(a), &r), 1);
    CHECK_EQ_INT(r.status, 101);
    CHECK_EQ_INT(r.head_len, strlen(a) - 1);
    const char *b = "HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n";
    CHECK_EQ_INT(bench_http_head((const uint8_t *)b, strlen(b), &r), 1);
    CHECK_EQ_INT(r.content_length, 12);
    CHECK(!r.chunked);
    const char *c =
        "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK_EQ_INT(bench_http_head((const uint8_t *)c, strlen(c), &r), 1);
    CHECK(r.chunked);
    CHECK_EQ_INT(bench_http_head((const uint8_t *)b, 20, &r), 0);
    CHECK_EQ_INT(bench_http_head((const uint8_t *)"GARBAGE!", 8, &r), -1);
}

TEST(http_post_layout) {
    char out[512];
    size_t n = bench_http_post(out, sizeof out, "h:1", "/p", "K", "text/plain",
                               "ab", 2);
    const char *want =
        "POST /p HTTP/1.1\r\nHost: h:1\r\nAuthorization: Bearer K\r\n"
        "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nab";
    CHECK_EQ_INT(n, strlen(want));
    CHECK(!memcmp(out, want, n));
    CHECK_EQ_INT(bench_http_post(out, 16, "h", "/p", NULL, "t", "ab", 2), 0);
}

TEST(yyb_hello_is_preface_then_hello_frame) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    CHECK_EQ_INT(bench_yyb_hello(&o, "app.dev.9.sig", 300), 0);
    CHECK(o.len > 11 && !memcmp(o.buf, "YYB\0\0\0\1", 7));
    yyb_reader_t r;
    yyb_reader_init(&r, true);
    size_t used = 0;
    yyb_frame_t f;
    CHECK_EQ_INT(yyb_feed(&r, o.buf, o.len, &used, &f), YYB_FRAME);
    CHECK_EQ_INT(used, o.len);
    herald_Package p;
    CHECK_EQ_INT(yyb_decode_package(&f, NULL, &p, NULL), 0);
    CHECK_EQ_INT(p.cmd, herald_CMD_HELLO);
    CHECK_EQ_INT(p.reqId, 1);
    herald_HelloReq h;
    jce_in_t in;
    jce_arena_t *a = jce_arena_new(0);
    jce_in_init(&in, p.body.data, p.body.len, a);
    int rc = herald_HelloReq_decode(&h, &in);
    bool ok = rc == 0 && h.heartbeat == 300 && h.token.len == 13 &&
              !memcmp(h.token.data, "app.dev.9.sig", 13);
    jce_arena_free(a);
    jce_out_free(&o);
    CHECK(ok);
}

TEST(yyb_frame_without_body) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    CHECK_EQ_INT(bench_yyb_frame(&o, herald_CMD_HEARTBEAT, 0, NULL), 0);
    /* A bare heartbeat: length 6, then Package{cmd 2} ("00 02"). */
    CHECK_HEX(o.buf, o.len, "00 00 00 06 00 02");
    jce_out_free(&o);
}

TEST(split_frame_kept_and_taken_back) {
    uint8_t *part = NULL, buf[16];
    uint16_t len = 0;
    CHECK_EQ_INT(bench_part_take(&part, &len, buf), 0);
    CHECK_EQ_INT(bench_part_keep(&part, &len, (const uint8_t *)"abc", 0), 0);
    CHECK(part == NULL);
    CHECK_EQ_INT(bench_part_keep(&part, &len, (const uint8_t *)"abc", 3), 0);
    CHECK_EQ_INT(len, 3);
    CHECK_EQ_INT(bench_part_take(&part, &len, buf), 3);
    CHECK(!memcmp(buf, "abc", 3) && part == NULL && len == 0);
    uint8_t *big = calloc(1, 70000);
    CHECK(big);
    int rc = bench_part_keep(&part, &len, big, 70000);
    free(big);
    CHECK_EQ_INT(rc, -1);
    CHECK(part == NULL && len == 0);
    CHECK_EQ_INT(bench_part_keep(&part, &len, (const uint8_t *)"x", 1), 0);
    bench_part_drop(&part, &len);
    CHECK(part == NULL && len == 0);
}
