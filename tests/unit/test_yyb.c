/* Unit tests: src/gateway/yyb.c (raw TCP preface and framing). */
#include <stdint.h>
#include <string.h>

#include "gateway/yyb.h"
#include "jce/jce.h"
#include "test.h"

struct fr {
    uint32_t len;
    uint8_t data[64];
};

/* Feeds s[0..n) like a connection does: chunks of `step` bytes (0 =
 * random 1..11), keeping only the unconsumed tail between reads.  Returns
 * the final rc (YYB_AGAIN at a clean end) and the frames seen. */
static int run(const uint8_t *s, size_t n, size_t step, unsigned seed,
               uint32_t max_frame, bool preface, struct fr *frs, int *nfr) {
    static uint8_t pend[200000];
    size_t have = 0, off = 0;
    yyb_reader_t r;
    yyb_reader_init(&r, preface);
    if (max_frame) r.max_frame = max_frame;
    *nfr = 0;
    while (off < n) {
        size_t k = step ? step : 1 + (seed = seed * 1103515245 + 12345) % 11;
        if (k > n - off) k = n - off;
        memcpy(pend + have, s + off, k);
        have += k;
        off += k;
        for (;;) {
            size_t used;
            yyb_frame_t f;
            int rc = yyb_feed(&r, pend, have, &used, &f);
            if (rc < 0) return rc;
            if (used > have) return 998;
            if (rc == YYB_FRAME) {
                if (f.data < pend || f.data + f.len > pend + have) return 997;
                struct fr *e = &frs[(*nfr)++];
                memset(e, 0, sizeof *e);
                e->len = f.len;
                memcpy(e->data, f.data, f.len < 64 ? f.len : 64);
            }
            memmove(pend, pend + used, have - used);
            have -= used;
            if (rc == YYB_AGAIN) {
                if (f.need && f.need <= have) return 999;
                break;
            }
        }
    }
    return YYB_AGAIN;
}

static struct fr frs[256], other[256];

/* Whole, byte by byte, random splits: same result, same frames. */
static int run_all(const uint8_t *s, size_t n, uint32_t max_frame, bool preface,
                   int *nfr) {
    int no;
    int rc = run(s, n, n ? n : 1, 1, max_frame, preface, frs, nfr);
    if (run(s, n, 1, 1, max_frame, preface, other, &no) != rc || no != *nfr ||
        memcmp(frs, other, sizeof frs[0] * (size_t)no))
        return 1000;
    for (unsigned seed = 1; seed < 40; seed++)
        if (run(s, n, 0, seed, max_frame, preface, other, &no) != rc ||
            no != *nfr || memcmp(frs, other, sizeof frs[0] * (size_t)no))
            return 1001;
    return rc;
}

/* Appends a frame holding payload p[0..n). */
static size_t frame(uint8_t *out, const void *p, size_t n) {
    uint32_t l = (uint32_t)n + 4;
    out[0] = (uint8_t)(l >> 24);
    out[1] = (uint8_t)(l >> 16);
    out[2] = (uint8_t)(l >> 8);
    out[3] = (uint8_t)l;
    memcpy(out + 4, p, n);
    return n + 4;
}

TEST(yyb_preface_bytes) {
    uint8_t p[7];
    yyb_preface(p, 1);
    CHECK_HEX(p, 7, "59 59 42 00 00 00 01");
    yyb_preface(p, 0x01020304);
    CHECK_HEX(p, 7, "59 59 42 01 02 03 04");
    CHECK(sizeof(yyb_reader_t) <= 12);
}

TEST(yyb_preface_then_frames) {
    uint8_t s[256];
    size_t n = 0;
    yyb_preface(s, 1);
    n = 7;
    n += frame(s + n, "\x0c", 1); /* smallest frame: 5 bytes */
    n += frame(s + n, "hello jce", 9);
    n += frame(s + n, "\x00\x01\x02", 3);
    int nf;
    CHECK_EQ_INT(run_all(s, n, 0, true, &nf), YYB_AGAIN);
    CHECK_EQ_INT(nf, 3);
    CHECK_EQ_INT(frs[0].len, 1);
    CHECK_EQ_INT(frs[0].data[0], 0x0c);
    CHECK_EQ_INT(frs[1].len, 9);
    CHECK(memcmp(frs[1].data, "hello jce", 9) == 0);
    CHECK_HEX(frs[2].data, frs[2].len, "00 01 02");
}

TEST(yyb_zero_copy_and_consumed) {
    uint8_t s[64];
    yyb_preface(s, 1);
    size_t n = 7 + frame(s + 7, "abc", 3);
    n += frame(s + n, "de", 2);
    yyb_reader_t r;
    yyb_reader_init(&r, true);
    yyb_frame_t f;
    size_t used;
    CHECK_EQ_INT(yyb_feed(&r, s, n, &used, &f), YYB_FRAME);
    CHECK_EQ_INT(used, 7 + 7);
    CHECK(f.data == s + 11);
    CHECK_EQ_INT(f.len, 3);
    CHECK_EQ_INT(r.version, 1);
    CHECK_EQ_INT(yyb_feed(&r, s + used, n - used, &used, &f), YYB_FRAME);
    CHECK_EQ_INT(used, 6);
    CHECK(memcmp(f.data, "de", 2) == 0);
}

TEST(yyb_need_and_partial_states) {
    uint8_t s[64];
    yyb_preface(s, 1);
    size_t n = 7 + frame(s + 7, "0123456789", 10);
    yyb_reader_t r;
    yyb_reader_init(&r, true);
    yyb_frame_t f;
    size_t used;
    /* Preface in pieces: consumed into the reader's state. */
    CHECK_EQ_INT(yyb_feed(&r, s, 2, &used, &f), YYB_AGAIN);
    CHECK_EQ_INT(used, 2);
    CHECK_EQ_INT(f.need, 0);
    CHECK_EQ_INT(yyb_feed(&r, s + 2, 3, &used, &f), YYB_AGAIN);
    CHECK_EQ_INT(used, 3);
    /* Rest of the preface plus 2 length bytes: preface eaten, length kept. */
    CHECK_EQ_INT(yyb_feed(&r, s + 5, 4, &used, &f), YYB_AGAIN);
    CHECK_EQ_INT(used, 2);
    CHECK_EQ_INT(f.need, 4);
    /* Length known, payload partial. */
    CHECK_EQ_INT(yyb_feed(&r, s + 7, 6, &used, &f), YYB_AGAIN);
    CHECK_EQ_INT(used, 0);
    CHECK_EQ_INT(f.need, 14);
    CHECK_EQ_INT(yyb_feed(&r, s + 7, 13, &used, &f), YYB_AGAIN);
    CHECK_EQ_INT(f.need, 14);
    CHECK_EQ_INT(yyb_feed(&r, s + 7, 14, &used, &f), YYB_FRAME);
    CHECK_EQ_INT(used, 14);
    CHECK_EQ_INT(n, 21);
    CHECK_EQ_INT(yyb_feed(&r, s, 0, &used, &f), YYB_AGAIN);
    CHECK_EQ_INT(f.need, 4);
}

TEST(yyb_bad_preface_at_first_wrong_byte) {
    static const char *bad[] = {"GET / HTTP/1.1", "X", "YX", "YYC\0\0\0\1",
                                "yyb\0\0\0\1"};
    static const size_t len[] = {14, 1, 2, 7, 7};
    for (size_t i = 0; i < 5; i++) {
        int nf;
        CHECK_EQ_INT(run_all((const uint8_t *)bad[i], len[i], 0, true, &nf),
                     YYB_ERR_BAD_PREFACE);
    }
    /* Refused before the full preface arrives. */
    yyb_reader_t r;
    yyb_reader_init(&r, true);
    yyb_frame_t f;
    size_t used;
    CHECK_EQ_INT(yyb_feed(&r, (const uint8_t *)"YYX", 3, &used, &f),
                 YYB_ERR_BAD_PREFACE);
    CHECK_EQ_INT(used, 3);
    CHECK_EQ_INT(yyb_err_code(YYB_ERR_BAD_PREFACE), 1001);
    /* Sticky. */
    CHECK_EQ_INT(yyb_feed(&r, (const uint8_t *)"YYB", 3, &used, &f),
                 YYB_ERR_BAD_PREFACE);
    CHECK_EQ_INT(used, 0);
}

TEST(yyb_bad_version) {
    uint32_t vs[] = {0, 2, 0x100, 0x01000001, 0xffffffffu};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        uint8_t s[32];
        yyb_preface(s, vs[i]);
        size_t n = 7 + frame(s + 7, "x", 1);
        int nf;
        CHECK_EQ_INT(run_all(s, n, 0, true, &nf), YYB_ERR_BAD_VERSION);
        CHECK_EQ_INT(nf, 0);
    }
    /* The version is known to the caller for its error reply/log. */
    yyb_reader_t r;
    yyb_reader_init(&r, true);
    uint8_t s[7];
    yyb_preface(s, 7);
    yyb_frame_t f;
    size_t used;
    CHECK_EQ_INT(yyb_feed(&r, s, 7, &used, &f), YYB_ERR_BAD_VERSION);
    CHECK_EQ_INT(used, 7);
    CHECK_EQ_INT(r.version, 7);
    CHECK_EQ_INT(yyb_err_code(YYB_ERR_BAD_VERSION), 1002);
}

TEST(yyb_frame_length_limits) {
    static uint8_t s[YYB_FRAME_MAX + 64], body[YYB_FRAME_MAX];
    int nf;
    /* Lengths 0..4 are too short to hold a package. */
    for (uint32_t l = 0; l < 5; l++) {
        uint8_t t[16];
        yyb_preface(t, 1);
        t[7] = 0;
        t[8] = 0;
        t[9] = 0;
        t[10] = (uint8_t)l;
        memset(t + 11, 0, 5);
        CHECK_EQ_INT(run_all(t, 16, 0, true, &nf), YYB_ERR_TOO_SHORT);
    }
    CHECK_EQ_INT(yyb_err_code(YYB_ERR_TOO_SHORT), 1004);
    /* Exactly max_frame is fine; one more is refused from the length
     * alone, before the body arrives. */
    yyb_preface(s, 1);
    size_t n = 7 + frame(s + 7, body, YYB_FRAME_MAX - 4);
    CHECK_EQ_INT(run_all(s, n, 0, true, &nf), YYB_AGAIN);
    CHECK_EQ_INT(nf, 1);
    CHECK_EQ_INT(frs[0].len, YYB_FRAME_MAX - 4);
    n = 7 + frame(s + 7, body, YYB_FRAME_MAX - 3);
    CHECK_EQ_INT(run_all(s, 11, 0, true, &nf), YYB_ERR_TOO_LARGE);
    CHECK_EQ_INT(run_all(s, n, 0, true, &nf), YYB_ERR_TOO_LARGE);
    CHECK_EQ_INT(yyb_err_code(YYB_ERR_TOO_LARGE), 1003);
    /* 0xffffffff does not wrap anything. */
    uint8_t h[11];
    yyb_preface(h, 1);
    memset(h + 7, 0xff, 4);
    CHECK_EQ_INT(run_all(h, 11, 0, true, &nf), YYB_ERR_TOO_LARGE);
    /* Configurable limit. */
    n = 7 + frame(s + 7, body, 100);
    CHECK_EQ_INT(run_all(s, n, 104, true, &nf), YYB_AGAIN);
    CHECK_EQ_INT(run_all(s, n, 103, true, &nf), YYB_ERR_TOO_LARGE);
}

TEST(yyb_without_preface) {
    uint8_t s[64];
    size_t n = frame(s, "ab", 2);
    n += frame(s + n, "cde", 3);
    int nf;
    CHECK_EQ_INT(run_all(s, n, 0, false, &nf), YYB_AGAIN);
    CHECK_EQ_INT(nf, 2);
    /* The same bytes with a preface expected: "\0\0\0\6" is no magic. */
    CHECK_EQ_INT(run_all(s, n, 0, true, &nf), YYB_ERR_BAD_PREFACE);
}

TEST(yyb_frame_writer) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    size_t st = yyb_frame_begin(&o);
    CHECK_EQ_INT(st, 0);
    jce_put_int32(&o, 0, 1);        /* 00 01 */
    jce_put_string(&o, 1, "hi", 2); /* 16 02 68 69 */
    yyb_frame_end(&o, st);
    CHECK_EQ_INT(o.err, 0);
    CHECK_HEX(o.buf, o.len, "00 00 00 0a | 00 01 | 16 02 68 69");
    /* A second frame in the same buffer. */
    st = yyb_frame_begin(&o);
    jce_put_int8(&o, 0, 0); /* 0c */
    yyb_frame_end(&o, st);
    CHECK_HEX(o.buf, o.len, "00 00 00 0a 00 01 16 02 68 69 | 00 00 00 05 0c");
    /* And the reader takes back what the writer made. */
    yyb_reader_t r;
    yyb_reader_init(&r, false);
    yyb_frame_t f;
    size_t used;
    CHECK_EQ_INT(yyb_feed(&r, o.buf, o.len, &used, &f), YYB_FRAME);
    CHECK_HEX(f.data, f.len, "00 01 16 02 68 69");
    CHECK_EQ_INT(yyb_feed(&r, o.buf + used, o.len - used, &used, &f),
                 YYB_FRAME);
    CHECK_HEX(f.data, f.len, "0c");
    /* end() with a bogus start marks the output failed. */
    yyb_frame_end(&o, o.len + 10);
    CHECK(o.err != 0);
    jce_out_free(&o);
    CHECK(strcmp(yyb_strerror(YYB_ERR_TOO_LARGE), "frame too large") == 0);
}

TEST(yyb_random_streams_split_invariant) {
    static uint8_t s[40000];
    unsigned seed = 3;
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 7;
        yyb_preface(s, 1);
        int want = 0;
        while (n < sizeof s - 1200) {
            seed = seed * 1103515245 + 12345;
            size_t len = 1 + (seed >> 8) % ((seed >> 4) % 4 ? 40 : 1000);
            uint8_t body[1000];
            for (size_t i = 0; i < len; i++) body[i] = (uint8_t)(i + iter);
            n += frame(s + n, body, len);
            if (++want == 40) break;
        }
        int nf;
        CHECK_EQ_INT(run_all(s, n, 0, true, &nf), YYB_AGAIN);
        CHECK_EQ_INT(nf, want);
    }
}

TEST(yyb_random_garbage_is_safe) {
    static uint8_t s[512];
    unsigned seed = 77;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (seed = seed * 1103515245 + 12345) % sizeof s;
        for (size_t i = 0; i < n; i++)
            s[i] = (uint8_t)((seed = seed * 1103515245 + 12345) >> 16);
        if (n >= 7 && iter % 2) yyb_preface(s, 1);
        if (n >= 9 && iter % 4 == 1) s[7] = s[8] = 0;
        yyb_reader_t r;
        yyb_reader_init(&r, true);
        r.max_frame = 300;
        size_t off = 0;
        for (;;) {
            yyb_frame_t f;
            size_t used;
            int rc = yyb_feed(&r, s + off, n - off, &used, &f);
            CHECK(used <= n - off);
            off += used;
            if (rc != YYB_FRAME) {
                CHECK(rc <= 0 && rc >= YYB_ERR_TOO_SHORT);
                break;
            }
            CHECK(f.len + 4 >= YYB_FRAME_MIN && f.len + 4 <= 300);
            CHECK(f.data + f.len <= s + off);
        }
    }
}

/* ---- herald_Package frames ---- */

TEST(yyb_heartbeat_frame_is_six_bytes) {
    herald_Package p;
    herald_Package_init(&p);
    p.cmd = herald_CMD_HEARTBEAT;
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    yyb_encode_frame(&o, &p);
    CHECK_EQ_INT(o.err, 0);
    CHECK_HEX(o.buf, o.len, "00 00 00 06 | 00 02");
    jce_out_free(&o);
}

TEST(yyb_package_roundtrip) {
    herald_Package p, q;
    herald_Package_init(&p);
    p.cmd = herald_CMD_PUSH;
    p.reqId = 70000;
    p.ret = herald_ERR_NOT_AUTHED;
    static const uint8_t body[] = {0x0a, 0x16, 0x01, 'x', 0x0b};
    p.body.data = body;
    p.body.len = sizeof body;
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    yyb_encode_frame(&o, &p);
    /* cmd 3, reqId 70000 (Int32), ret 1006 (Short), body as SimpleList
     * (head, Char head, length at tag 0, bytes). */
    CHECK_HEX(o.buf, o.len,
              "00 00 00 17 | 00 03 | 12 00 01 11 70 | 21 03 ee"
              " | 3d 00 00 05 0a 16 01 78 0b");
    yyb_reader_t r;
    yyb_reader_init(&r, false);
    yyb_frame_t f;
    size_t used;
    CHECK_EQ_INT(yyb_feed(&r, o.buf, o.len, &used, &f), YYB_FRAME);
    CHECK_EQ_INT(yyb_decode_package(&f, NULL, &q, NULL), 0);
    CHECK(herald_Package_equal(&p, &q));
    /* Zero copy: the body points into the frame. */
    CHECK(q.body.data >= o.buf && q.body.data < o.buf + o.len);
    jce_out_free(&o);
}

static int decode_hex(const char *hex, herald_Package *p, size_t *pos) {
    uint8_t b[64];
    size_t n = 0;
    unsigned v;
    for (const char *h = hex; *h;) {
        if (*h == ' ') {
            h++;
            continue;
        }
        if (sscanf(h, "%2x", &v) != 1) return 999;
        b[n++] = (uint8_t)v;
        h += 2;
    }
    yyb_frame_t f = {.data = b, .len = (uint32_t)n};
    jce_arena_t *a = jce_arena_new(4096);
    int rc = yyb_decode_package(&f, a, p, pos);
    jce_arena_free(a);
    return rc;
}

TEST(yyb_package_decode_errors) {
    herald_Package p;
    size_t pos = 0;
    /* A newer peer's extra field (tag 9, string) is skipped. */
    CHECK_EQ_INT(decode_hex("00 02 96 02 68 69", &p, &pos), 0);
    CHECK_EQ_INT(p.cmd, 2);
    /* Missing require cmd. */
    CHECK(decode_hex("10 05", &p, &pos) == JCE_ERR_REQUIRE);
    /* Truncated Int32. */
    CHECK_EQ_INT(decode_hex("02 00 00", &p, &pos), JCE_ERR_TRUNCATED);
    /* Stray StructEnd after the known fields. */
    CHECK_EQ_INT(decode_hex("00 02 0b 10 01", &p, &pos), JCE_ERR_BAD_VALUE);
    CHECK_EQ_INT(pos, 2);
    /* Garbage after the fields: unknown type code 14. */
    CHECK(decode_hex("00 02 4e", &p, &pos) < 0);
    /* Trailing extra field truncated. */
    CHECK_EQ_INT(decode_hex("00 02 97 00 00 00 09 61", &p, &pos),
                 JCE_ERR_TRUNCATED);
    /* Wrong type for cmd (a string). */
    CHECK(decode_hex("06 01 61", &p, &pos) < 0);
}
