/* Unit tests: src/gateway/ws.c (RFC 6455 frames and handshake). */
#include <stdint.h>
#include <string.h>

#include "gateway/http.h"
#include "gateway/ws.h"
#include "test.h"

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Appends one masked client frame to out; returns bytes written. */
static size_t mk(uint8_t *out, unsigned op, bool fin, const void *payload,
                 size_t n) {
    size_t h = ws_frame_header_masked(out, op, fin, n, MASK);
    if (n) memcpy(out + h, payload, n);
    ws_mask(out + h, n, MASK, 0);
    return h + n;
}

/* What a caller sees: one record per frame. */
struct ev {
    uint8_t opcode, msg_op;
    bool fin, first;
    uint32_t len;
    uint16_t close_code;
    uint8_t data[256];
};

/* Feeds stream s[0..n) the way the gateway does: chunks of `step` bytes
 * (0 = random 1..23), keeping only the unconsumed tail between reads.
 * Returns the final rc (WS_AGAIN at a clean end, or an error). */
static int run(const uint8_t *s, size_t n, size_t step, unsigned seed,
               uint32_t max_msg, struct ev *evs, int *nev) {
    static uint8_t pend[300000];
    size_t have = 0, off = 0;
    ws_parser_t p;
    ws_parser_init(&p);
    if (max_msg) p.max_msg = max_msg;
    *nev = 0;
    while (off < n) {
        size_t k = step ? step : 1 + (seed = seed * 1103515245 + 12345) % 23;
        if (k > n - off) k = n - off;
        memcpy(pend + have, s + off, k);
        have += k;
        off += k;
        for (;;) {
            size_t used;
            ws_frame_t f;
            int rc = ws_feed(&p, pend, have, &used, &f);
            if (rc < 0) return rc;
            if (rc == WS_AGAIN) {
                if (f.need <= have) return 999; /* must ask for more */
                break;
            }
            struct ev *e = &evs[(*nev)++];
            memset(e, 0, sizeof *e);
            e->opcode = f.opcode;
            e->msg_op = f.msg_op;
            e->fin = f.fin;
            e->first = f.first;
            e->len = f.len;
            e->close_code = f.close_code;
            memcpy(e->data, f.payload, f.len < 256 ? f.len : 256);
            memmove(pend, pend + used, have - used);
            have -= used;
        }
    }
    return WS_AGAIN;
}

/* Runs whole, byte by byte and in random splits; all must agree. */
static int run_all(const uint8_t *s, size_t n, uint32_t max_msg, struct ev *evs,
                   int *nev) {
    static struct ev other[64];
    int no;
    int rc = run(s, n, n, 1, max_msg, evs, nev);
    if (run(s, n, 1, 1, max_msg, other, &no) != rc || no != *nev ||
        memcmp(evs, other, sizeof evs[0] * (size_t)no))
        return 1000;
    for (unsigned seed = 1; seed < 30; seed++)
        if (run(s, n, 0, seed, max_msg, other, &no) != rc || no != *nev ||
            memcmp(evs, other, sizeof evs[0] * (size_t)no))
            return 1001;
    return rc;
}

/* Zero-filled so records compare with memcmp. */
static struct ev evs[64];

TEST(ws_rfc_masked_hello) {
    /* RFC 6455 §5.7: a single-frame masked text message "Hello". */
    const uint8_t s[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                         0x7f, 0x9f, 0x4d, 0x51, 0x58};
    uint8_t built[32];
    CHECK_EQ_INT(mk(built, WS_OP_TEXT, true, "Hello", 5), sizeof s);
    CHECK(memcmp(built, s, sizeof s) == 0);
    memset(evs, 0, sizeof evs);
    int n;
    CHECK_EQ_INT(run_all(s, sizeof s, 0, evs, &n), WS_AGAIN);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(evs[0].opcode, WS_OP_TEXT);
    CHECK(evs[0].fin && evs[0].first);
    CHECK_EQ_INT(evs[0].len, 5);
    CHECK(memcmp(evs[0].data, "Hello", 5) == 0);
}

TEST(ws_zero_copy_payload_in_place) {
    uint8_t b[64];
    size_t n = mk(b, WS_OP_BINARY, true, "\x01\x02\x03", 3);
    ws_parser_t p;
    ws_parser_init(&p);
    ws_frame_t f;
    size_t used;
    CHECK_EQ_INT(ws_feed(&p, b, n, &used, &f), WS_FRAME);
    CHECK_EQ_INT(used, n);
    CHECK(f.payload == b + 6);
    CHECK_HEX(f.payload, f.len, "01 02 03");
    CHECK(sizeof(ws_parser_t) <= 16);
}

TEST(ws_server_frame_headers) {
    /* RFC 6455 §5.7 server examples. */
    uint8_t h[10];
    CHECK_EQ_INT(ws_frame_header(h, WS_OP_TEXT, 5), 2);
    CHECK_HEX(h, 2, "81 05");
    CHECK_EQ_INT(ws_frame_header(h, WS_OP_PING, 5), 2);
    CHECK_HEX(h, 2, "89 05");
    CHECK_EQ_INT(ws_frame_header(h, WS_OP_BINARY, 256), 4);
    CHECK_HEX(h, 4, "82 7e 01 00");
    CHECK_EQ_INT(ws_frame_header(h, WS_OP_BINARY, 65536), 10);
    CHECK_HEX(h, 10, "82 7f 00 00 00 00 00 01 00 00");
    CHECK_EQ_INT(ws_frame_header(h, WS_OP_BINARY, 125), 2);
    CHECK_HEX(h, 2, "82 7d");
    CHECK_EQ_INT(ws_frame_header(h, WS_OP_BINARY, 126), 4);
    CHECK_HEX(h, 4, "82 7e 00 7e");
    CHECK_EQ_INT(ws_frame_header(h, WS_OP_BINARY, 65535), 4);
    CHECK_HEX(h, 4, "82 7e ff ff");
}

TEST(ws_length_encodings) {
    static uint8_t s[70000 + 14], data[70000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7);
    size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = mk(s, WS_OP_BINARY, true, data, sizes[k]);
        ws_parser_t p;
        ws_parser_init(&p);
        p.max_msg = 70000;
        ws_frame_t f;
        size_t used;
        CHECK_EQ_INT(ws_feed(&p, s, n, &used, &f), WS_FRAME);
        CHECK_EQ_INT(used, n);
        CHECK_EQ_INT(f.len, sizes[k]);
        CHECK(memcmp(f.payload, data, sizes[k]) == 0);
    }
    /* Non-minimal length encodings are accepted (RFC says "minimal" for
     * senders; receivers lose nothing by tolerating them). */
    uint8_t nm[] = {0x82, 0xfe, 0x00, 0x03, 0, 0, 0, 0, 'a', 'b', 'c'};
    ws_parser_t p;
    ws_parser_init(&p);
    ws_frame_t f;
    size_t used;
    CHECK_EQ_INT(ws_feed(&p, nm, sizeof nm, &used, &f), WS_FRAME);
    CHECK_EQ_INT(f.len, 3);
    uint8_t nm8[] = {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 'z'};
    CHECK_EQ_INT(ws_feed(&p, nm8, sizeof nm8, &used, &f), WS_FRAME);
    CHECK_EQ_INT(f.len, 1);
    CHECK_EQ_INT(f.payload[0], 'z');
}

TEST(ws_need_reports_bytes_required) {
    uint8_t s[300];
    static uint8_t data[200];
    size_t n = mk(s, WS_OP_BINARY, true, data, 200); /* 2+2+4+200 */
    ws_parser_t p;
    ws_parser_init(&p);
    ws_frame_t f;
    size_t used;
    CHECK_EQ_INT(ws_feed(&p, s, 0, &used, &f), WS_AGAIN);
    CHECK_EQ_INT(f.need, 2);
    CHECK_EQ_INT(ws_feed(&p, s, 1, &used, &f), WS_AGAIN);
    CHECK_EQ_INT(f.need, 2);
    CHECK_EQ_INT(ws_feed(&p, s, 2, &used, &f), WS_AGAIN);
    CHECK_EQ_INT(f.need, 8);
    CHECK_EQ_INT(ws_feed(&p, s, 4, &used, &f), WS_AGAIN);
    CHECK_EQ_INT(f.need, n);
    CHECK_EQ_INT(used, 0);
    CHECK_EQ_INT(ws_feed(&p, s, n - 1, &used, &f), WS_AGAIN);
    CHECK_EQ_INT(f.need, n);
    CHECK_EQ_INT(ws_feed(&p, s, n, &used, &f), WS_FRAME);
    CHECK_EQ_INT(used, n);
}

TEST(ws_fragmented_message_with_control_in_between) {
    uint8_t s[256];
    size_t n = 0;
    n += mk(s + n, WS_OP_TEXT, false, "Hel", 3);
    n += mk(s + n, WS_OP_PING, true, "p", 1);
    n += mk(s + n, WS_OP_CONT, false, "l", 1);
    n += mk(s + n, WS_OP_CONT, true, "o", 1);
    n += mk(s + n, WS_OP_BINARY, true, "", 0);
    n += mk(s + n, WS_OP_PONG, true, "", 0);
    memset(evs, 0, sizeof evs);
    int ne;
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_AGAIN);
    CHECK_EQ_INT(ne, 6);
    CHECK(evs[0].opcode == WS_OP_TEXT && evs[0].first && !evs[0].fin);
    CHECK(evs[1].opcode == WS_OP_PING && evs[1].msg_op == WS_OP_PING);
    CHECK(memcmp(evs[1].data, "p", 1) == 0);
    CHECK(evs[2].opcode == WS_OP_CONT && evs[2].msg_op == WS_OP_TEXT);
    CHECK(!evs[2].first && !evs[2].fin);
    CHECK(evs[3].opcode == WS_OP_CONT && evs[3].fin && !evs[3].first);
    CHECK(evs[3].data[0] == 'o');
    CHECK(evs[4].opcode == WS_OP_BINARY && evs[4].first && evs[4].fin);
    CHECK_EQ_INT(evs[4].len, 0);
    CHECK(evs[5].opcode == WS_OP_PONG);
}

TEST(ws_utf8_split_across_fragments) {
    /* U+1F600 (f0 9f 98 80) cut after its second byte. */
    uint8_t s[64];
    size_t n = 0;
    n += mk(s + n, WS_OP_TEXT, false, "a\xf0\x9f", 3);
    n += mk(s + n, WS_OP_CONT, true, "\x98\x80z", 3);
    int ne;
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_AGAIN);
    CHECK_EQ_INT(ne, 2);
    /* The same bytes with the message ending mid-sequence: 1007. */
    n = 0;
    n += mk(s + n, WS_OP_TEXT, false, "a\xf0\x9f", 3);
    n += mk(s + n, WS_OP_CONT, true, "\x98", 1);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_ERR_UTF8);
    CHECK_EQ_INT(ws_err_close_code(WS_ERR_UTF8), 1007);
    /* Binary frames are never checked. */
    n = mk(s, WS_OP_BINARY, true, "\xff\xfe", 2);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_AGAIN);
    CHECK_EQ_INT(ne, 1);
}

TEST(ws_utf8_validator_vectors) {
    static const struct {
        const char *s;
        size_t n;
        bool ok;
    } v[] = {
        {"", 0, true},
        {"plain ascii, longer than eight bytes", 36, true},
        {"\xc2\x80", 2, true},
        {"\xdf\xbf", 2, true},
        {"\xe0\xa0\x80", 3, true},
        {"\xed\x9f\xbf", 3, true}, /* U+D7FF */
        {"\xee\x80\x80", 3, true},
        {"\xf0\x90\x80\x80", 4, true},
        {"\xf4\x8f\xbf\xbf", 4, true}, /* U+10FFFF */
        {"\xc0\x80", 2, false},        /* overlong NUL */
        {"\xc1\xbf", 2, false},
        {"\xe0\x9f\xbf", 3, false},     /* overlong */
        {"\xed\xa0\x80", 3, false},     /* surrogate */
        {"\xf0\x8f\xbf\xbf", 4, false}, /* overlong */
        {"\xf4\x90\x80\x80", 4, false}, /* > U+10FFFF */
        {"\xf5\x80\x80\x80", 4, false},
        {"\xff", 1, false},
        {"\x80", 1, false}, /* lone continuation */
        {"\xc2"
         "a",
         2, false},
        {"abcdefgh\xe2\x82\xac"
         "abcdefgh",
         19, true},
        {"abcdefgh\xe2\x82"
         "abcdefgh",
         18, false},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t st[3] = {0, 0, 0};
        bool ok = ws_utf8_step(st, (const uint8_t *)v[i].s, v[i].n) && !st[0];
        if (ok != v[i].ok) {
            fprintf(stderr, "  case %zu\n", i);
            CHECK(0);
        }
        /* Byte by byte gives the same verdict. */
        uint8_t st2[3] = {0, 0, 0};
        bool ok2 = true;
        for (size_t k = 0; k < v[i].n && ok2; k++)
            ok2 = ws_utf8_step(st2, (const uint8_t *)v[i].s + k, 1);
        ok2 = ok2 && !st2[0];
        CHECK(ok2 == v[i].ok);
    }
    /* Incomplete but valid so far. */
    uint8_t st[3] = {0, 0, 0};
    CHECK(ws_utf8_step(st, (const uint8_t *)"\xe2\x82", 2));
    CHECK_EQ_INT(st[0], 1);
}

TEST(ws_close_frames) {
    uint8_t s[200];
    size_t n = mk(s, WS_OP_CLOSE, true,
                  "\x03\xe8"
                  "bye",
                  5);
    int ne;
    memset(evs, 0, sizeof evs);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_AGAIN);
    CHECK_EQ_INT(ne, 1);
    CHECK_EQ_INT(evs[0].close_code, 1000);
    /* Reason is exposed. */
    ws_parser_t p;
    ws_parser_init(&p);
    ws_frame_t f;
    size_t used;
    n = mk(s, WS_OP_CLOSE, true,
           "\x0f\xa0"
           "why",
           5);
    CHECK_EQ_INT(ws_feed(&p, s, n, &used, &f), WS_FRAME);
    CHECK_EQ_INT(f.close_code, 4000);
    CHECK_EQ_INT(f.reason_len, 3);
    CHECK(memcmp(f.reason, "why", 3) == 0);
    /* Empty close: no status. */
    n = mk(s, WS_OP_CLOSE, true, "", 0);
    CHECK_EQ_INT(ws_feed(&p, s, n, &used, &f), WS_FRAME);
    CHECK_EQ_INT(f.close_code, WS_CLOSE_NO_STATUS);
    /* Codes: valid and invalid on the wire. */
    unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                       1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    unsigned badc[] = {0,    999,  1004, 1005, 1006, 1015,
                       1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint8_t c[2] = {(uint8_t)(good[i] >> 8), (uint8_t)good[i]};
        n = mk(s, WS_OP_CLOSE, true, c, 2);
        ws_parser_init(&p);
        CHECK_EQ_INT(ws_feed(&p, s, n, &used, &f), WS_FRAME);
        CHECK_EQ_INT(f.close_code, good[i]);
    }
    for (size_t i = 0; i < sizeof badc / sizeof badc[0]; i++) {
        uint8_t c[2] = {(uint8_t)(badc[i] >> 8), (uint8_t)badc[i]};
        n = mk(s, WS_OP_CLOSE, true, c, 2);
        ws_parser_init(&p);
        CHECK_EQ_INT(ws_feed(&p, s, n, &used, &f), WS_ERR_CLOSE_CODE);
    }
    /* One-byte payload and a bad reason. */
    n = mk(s, WS_OP_CLOSE, true, "\x03", 1);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_ERR_CLOSE_PAYLOAD);
    n = mk(s, WS_OP_CLOSE, true, "\x03\xe8\xc0\x80", 4);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_ERR_UTF8);
}

TEST(ws_close_frame_builder) {
    uint8_t out[2 + WS_MAX_CONTROL];
    size_t n = ws_close_frame(out, 1009, "too big", 7);
    CHECK_HEX(out, n, "88 09 03 f1 74 6f 6f 20 62 69 67");
    n = ws_close_frame(out, 0, NULL, 0);
    CHECK_HEX(out, n, "88 00");
    /* A reason too long is cut at 123 bytes, not inside a character:
     * 122 ASCII bytes then a 2-byte character that would end at 124. */
    char r[200];
    memset(r, 'x', 122);
    memcpy(r + 122, "\xc3\xa9tail", 6);
    n = ws_close_frame(out, 1000, r, 128);
    CHECK_EQ_INT(n, 2 + 2 + 122);
    CHECK_EQ_INT(out[1], 124);
    memset(r, 'y', 200);
    n = ws_close_frame(out, 1000, r, 200);
    CHECK_EQ_INT(n, 2 + 125);
    CHECK_EQ_INT(out[1], 125);
}

/* Every frame-level error, with its close code. */
TEST(ws_protocol_errors) {
    static uint8_t big[200];
    uint8_t s[512];
    size_t n;
    int ne;
    static const struct {
        uint8_t b0;
        int err;
    } hdr[] = {
        {0xC1, WS_ERR_RSV},    {0xA1, WS_ERR_RSV},    {0x91, WS_ERR_RSV},
        {0x83, WS_ERR_OPCODE}, {0x87, WS_ERR_OPCODE}, {0x8B, WS_ERR_OPCODE},
        {0x8F, WS_ERR_OPCODE},
    };
    for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++) {
        n = mk(s, WS_OP_TEXT, true, "x", 1);
        s[0] = hdr[i].b0;
        CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), hdr[i].err);
        CHECK_EQ_INT(ws_err_close_code(hdr[i].err), 1002);
    }
    /* Unmasked client frame. */
    uint8_t um[] = {0x81, 0x02, 'h', 'i'};
    CHECK_EQ_INT(run_all(um, sizeof um, 0, evs, &ne), WS_ERR_UNMASKED);
    CHECK_EQ_INT(ws_err_close_code(WS_ERR_UNMASKED), 1002);
    /* Control frames: too long, fragmented. */
    n = mk(s, WS_OP_PING, true, big, 126);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_ERR_CONTROL);
    n = mk(s, WS_OP_PING, true, big, 125);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_AGAIN);
    n = mk(s, WS_OP_PONG, false, "x", 1);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_ERR_CONTROL);
    n = mk(s, WS_OP_CLOSE, false, "", 0);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_ERR_CONTROL);
    /* 64-bit length with the high bit set. */
    uint8_t hb[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    CHECK_EQ_INT(run_all(hb, sizeof hb, 0, evs, &ne), WS_ERR_LENGTH);
    /* Continuation without a start; a new message inside a fragmented one. */
    n = mk(s, WS_OP_CONT, true, "x", 1);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_ERR_CONT);
    n = mk(s, WS_OP_TEXT, false, "a", 1);
    n += mk(s + n, WS_OP_BINARY, true, "b", 1);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_ERR_INTERLEAVE);
    n = mk(s, WS_OP_TEXT, false, "a", 1);
    n += mk(s + n, WS_OP_TEXT, false, "b", 1);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_ERR_INTERLEAVE);
    /* A completed message lets a continuation fail again. */
    n = mk(s, WS_OP_TEXT, false, "a", 1);
    n += mk(s + n, WS_OP_CONT, true, "b", 1);
    n += mk(s + n, WS_OP_CONT, true, "c", 1);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_ERR_CONT);
    CHECK_EQ_INT(ne, 2);
    /* Invalid UTF-8 in a text frame. */
    n = mk(s, WS_OP_TEXT, true, "ok\xed\xa0\x80", 5);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_ERR_UTF8);
}

TEST(ws_message_size_limit) {
    static uint8_t s[200000], data[70000];
    int ne;
    /* One byte over the default limit in a single frame: refused from the
     * header alone, before any payload arrives. */
    size_t n = mk(s, WS_OP_BINARY, true, data, WS_MAX_MSG + 1);
    ws_parser_t p;
    ws_parser_init(&p);
    ws_frame_t f;
    size_t used;
    CHECK_EQ_INT(ws_feed(&p, s, 9, &used, &f), WS_AGAIN);
    CHECK_EQ_INT(ws_feed(&p, s, 10, &used, &f), WS_ERR_TOO_BIG);
    CHECK_EQ_INT(ws_err_close_code(WS_ERR_TOO_BIG), 1009);
    /* Sticky. */
    CHECK_EQ_INT(ws_feed(&p, s, n, &used, &f), WS_ERR_TOO_BIG);
    /* Exactly the limit is fine. */
    n = mk(s, WS_OP_BINARY, true, data, WS_MAX_MSG);
    ws_parser_init(&p);
    CHECK_EQ_INT(ws_feed(&p, s, n, &used, &f), WS_FRAME);
    /* Over the limit by fragments. */
    n = mk(s, WS_OP_BINARY, false, data, 40000);
    n += mk(s + n, WS_OP_CONT, false, data, 20000);
    n += mk(s + n, WS_OP_CONT, true, data, 5537);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_ERR_TOO_BIG);
    CHECK_EQ_INT(ne, 2);
    n = mk(s, WS_OP_BINARY, false, data, 40000);
    n += mk(s + n, WS_OP_CONT, false, data, 20000);
    n += mk(s + n, WS_OP_CONT, true, data, 5536);
    CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_AGAIN);
    CHECK_EQ_INT(ne, 3);
    /* A lowered limit; control frames do not count toward it. */
    n = mk(s, WS_OP_TEXT, false, "abcd", 4);
    n += mk(s + n, WS_OP_PING, true, data, 100);
    n += mk(s + n, WS_OP_CONT, true, "efgh", 4);
    CHECK_EQ_INT(run_all(s, n, 8, evs, &ne), WS_AGAIN);
    CHECK_EQ_INT(run_all(s, n, 7, evs, &ne), WS_ERR_TOO_BIG);
}

/* Random valid streams parse the same however they are split. */
TEST(ws_random_streams_split_invariant) {
    static uint8_t s[64 * 1024];
    unsigned seed = 99;
    for (int iter = 0; iter < 200; iter++) {
        size_t n = 0;
        bool open = false;
        for (int k = 0; k < 12; k++) {
            seed = seed * 1103515245 + 12345;
            size_t len = (seed >> 8) % (k % 4 == 0 ? 300 : 20);
            uint8_t data[300];
            for (size_t i = 0; i < len; i++) data[i] = (uint8_t)('a' + i % 26);
            unsigned r = (seed >> 20) % 4;
            if (r == 0) {
                n += mk(s + n, WS_OP_PING, true, data, len % 126);
            } else if (!open) {
                bool fin = r == 1;
                n += mk(s + n, r == 2 ? WS_OP_BINARY : WS_OP_TEXT, fin, data,
                        len);
                open = !fin;
            } else {
                bool fin = r == 1;
                n += mk(s + n, WS_OP_CONT, fin, data, len);
                open = !fin;
            }
        }
        int ne;
        memset(evs, 0, sizeof evs);
        CHECK_EQ_INT(run_all(s, n, 0, evs, &ne), WS_AGAIN);
        CHECK_EQ_INT(ne, 12);
    }
}

/* Random bytes: never a crash, never a claim past the input. */
TEST(ws_random_garbage_is_safe) {
    static uint8_t s[1024];
    unsigned seed = 5;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (seed = seed * 1103515245 + 12345) % sizeof s;
        for (size_t i = 0; i < n; i++)
            s[i] = (uint8_t)((seed = seed * 1103515245 + 12345) >> 16);
        if (iter & 1) s[1] |= 0x80; /* mostly masked, to get further */
        ws_parser_t p;
        ws_parser_init(&p);
        size_t off = 0;
        for (;;) {
            ws_frame_t f;
            size_t used;
            int rc = ws_feed(&p, s + off, n - off, &used, &f);
            if (rc != WS_FRAME) {
                CHECK(rc <= 0 && rc >= WS_ERR_TOO_BIG);
                break;
            }
            CHECK(used > 0 && used <= n - off);
            off += used;
        }
    }
}

/* ---- handshake ---- */

static int hs_parse(const char *req, http_req_t *r, ws_handshake_t *hs) {
    http_req_init(r);
    int rc = http_parse(r, req, strlen(req));
    if (rc != HTTP_DONE) return 1000 + rc;
    return ws_handshake_check(r, req, hs);
}

TEST(ws_accept_key_rfc_example) {
    char acc[WS_ACCEPT_LEN + 1];
    ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, acc);
    CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
}

TEST(ws_handshake_ok_json_and_jce) {
    const char *req = "GET /v1/ws?token=t HTTP/1.1\r\n"
                      "Host: x\r\nUpgrade: WebSocket\r\n"
                      "Connection: keep-alive, Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n";
    http_req_t r;
    ws_handshake_t hs;
    CHECK_EQ_INT(hs_parse(req, &r, &hs), 0);
    CHECK(!hs.jce);
    CHECK(hs.key.len == 24 && !memcmp(req + hs.key.off, "dGhl", 4));
    char out[256];
    int n = ws_handshake_response(out, sizeof out, req + hs.key.off, hs.key.len,
                                  hs.jce);
    const char *want =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    CHECK_EQ_INT(n, strlen(want));
    CHECK(strcmp(out, want) == 0);
    CHECK_EQ_INT(ws_handshake_response(out, 50, req + hs.key.off, 24, false),
                 -1);

    const char *req2 = "GET /v1/ws HTTP/1.1\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
                       "Sec-WebSocket-Protocol: chat, herald.jce\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n";
    CHECK_EQ_INT(hs_parse(req2, &r, &hs), 0);
    CHECK(hs.jce);
    n = ws_handshake_response(out, sizeof out, req2 + hs.key.off, 24, true);
    CHECK(n > 0);
    CHECK(strstr(out, "\r\nSec-WebSocket-Protocol: herald.jce\r\n") != NULL);
    CHECK(strcmp(out + n - 4, "\r\n\r\n") == 0);
    const char *req3 = "GET /v1/ws HTTP/1.1\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
                       "Sec-WebSocket-Protocol: herald.json\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n";
    CHECK_EQ_INT(hs_parse(req3, &r, &hs), 0);
    CHECK(!hs.jce);
}

TEST(ws_handshake_rejects) {
#define BASE_UP "Upgrade: websocket\r\n"
#define BASE_CO "Connection: Upgrade\r\n"
#define BASE_KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define BASE_VER "Sec-WebSocket-Version: 13\r\n"
    static const struct {
        const char *req;
        int err, status;
    } bad[] = {
        {"POST /v1/ws HTTP/1.1\r\n" BASE_UP BASE_CO BASE_KEY BASE_VER "\r\n",
         WS_HS_ERR_METHOD, 405},
        {"GET /v1/ws HTTP/1.0\r\n" BASE_UP BASE_CO BASE_KEY BASE_VER "\r\n",
         WS_HS_ERR_HTTP10, 400},
        {"GET /v1/ws HTTP/1.1\r\n" BASE_CO BASE_KEY BASE_VER "\r\n",
         WS_HS_ERR_UPGRADE, 400},
        {"GET /v1/ws HTTP/1.1\r\nUpgrade: h2c\r\n" BASE_CO BASE_KEY BASE_VER
         "\r\n",
         WS_HS_ERR_UPGRADE, 400},
        {"GET /v1/ws HTTP/1.1\r\n" BASE_UP BASE_KEY BASE_VER "\r\n",
         WS_HS_ERR_CONNECTION, 400},
        {"GET /v1/ws HTTP/1.1\r\n" BASE_UP
         "Connection: keep-alive\r\n" BASE_KEY BASE_VER "\r\n",
         WS_HS_ERR_CONNECTION, 400},
        {"GET /v1/ws HTTP/1.1\r\n" BASE_UP BASE_CO BASE_KEY "\r\n",
         WS_HS_ERR_VERSION, 426},
        {"GET /v1/ws HTTP/1.1\r\n" BASE_UP BASE_CO BASE_KEY
         "Sec-WebSocket-Version: 8\r\n\r\n",
         WS_HS_ERR_VERSION, 426},
        {"GET /v1/ws HTTP/1.1\r\n" BASE_UP BASE_CO BASE_KEY
         "Sec-WebSocket-Version: 130\r\n\r\n",
         WS_HS_ERR_VERSION, 426},
        {"GET /v1/ws HTTP/1.1\r\n" BASE_UP BASE_CO BASE_VER "\r\n",
         WS_HS_ERR_KEY, 400},
        {"GET /v1/ws HTTP/1.1\r\n" BASE_UP BASE_CO BASE_KEY BASE_KEY BASE_VER
         "\r\n",
         WS_HS_ERR_KEY, 400},
        {"GET /v1/ws HTTP/1.1\r\n" BASE_UP BASE_CO
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n" BASE_VER "\r\n",
         WS_HS_ERR_KEY, 400},
        {"GET /v1/ws HTTP/1.1\r\n" BASE_UP BASE_CO /* 17 bytes */
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSE=\r\n" BASE_VER "\r\n",
         WS_HS_ERR_KEY, 400},
        {"GET /v1/ws HTTP/1.1\r\n" BASE_UP BASE_CO
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=!\r\n" BASE_VER "\r\n",
         WS_HS_ERR_KEY, 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_req_t r;
        ws_handshake_t hs;
        int rc = hs_parse(bad[i].req, &r, &hs);
        if (rc != bad[i].err) {
            fprintf(stderr, "  case %zu: got %d want %d\n", i, rc, bad[i].err);
            CHECK(0);
        }
        CHECK_EQ_INT(ws_hs_err_status(rc), bad[i].status);
    }
    char out[512];
    int n = ws_handshake_reject(out, sizeof out, WS_HS_ERR_VERSION);
    CHECK(n > 0);
    CHECK(strncmp(out, "HTTP/1.1 426 Upgrade Required\r\n", 31) == 0);
    CHECK(strstr(out, "\r\nSec-WebSocket-Version: 13\r\n") != NULL);
    /* The response itself parses as HTTP with a consistent length. */
    const char *body = strstr(out, "\r\n\r\n");
    CHECK(body != NULL);
    CHECK(strstr(out, "Content-Length: ") != NULL);
    size_t cl = (size_t)atoi(strstr(out, "Content-Length: ") + 16);
    CHECK_EQ_INT(strlen(body + 4), cl);
    n = ws_handshake_reject(out, sizeof out, WS_HS_ERR_METHOD);
    CHECK(strncmp(out, "HTTP/1.1 405 ", 13) == 0);
    CHECK(strstr(out, "Allow: GET\r\n") != NULL);
    CHECK_EQ_INT(ws_handshake_reject(out, 10, WS_HS_ERR_KEY), -1);
}
