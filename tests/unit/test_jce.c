/*
 * The JCE runtime against every verified vector of tars-wire §1 (and the
 * RPC frames of §2.5 as plain JCE), plus the decoder's defences against
 * hostile input.
 */
#include <float.h>
#include <math.h>

#include "jce/jce.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------ */

/* Parses "0a 0b | ff" into out (spaces and '|' ignored); returns the length. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap) {
    size_t n = 0;
    while (*hex && n < cap) {
        if (*hex == ' ' || *hex == '|' || *hex == '\n') {
            hex++;
            continue;
        }
        unsigned v;
        if (sscanf(hex, "%2x", &v) != 1) break;
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return n;
}

/* A byte builder for frames that mix hex and ASCII. */
typedef struct {
    uint8_t b[1024];
    size_t n;
} bld_t;

static void bhex(bld_t *b, const char *hex) {
    b->n += unhex(hex, b->b + b->n, sizeof b->b - b->n);
}

static void bstr(bld_t *b, const char *s) {
    memcpy(b->b + b->n, s, strlen(s));
    b->n += strlen(s);
}

/* Heap copy of exactly n bytes, so ASan sees any read past the end. */
static uint8_t *dup_exact(const uint8_t *p, size_t n) {
    uint8_t *q = malloc(n ? n : 1);
    if (n) memcpy(q, p, n);
    return q;
}

/* ---- §1.1 heads ---------------------------------------------------------- */

TEST(head_tags_14_15_255) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_put_int8(&o, 14, -128);
    jce_put_int16(&o, 15, -32768);
    jce_put_int32(&o, 255, INT32_MIN);
    CHECK_EQ_INT(o.err, 0);
    CHECK_HEX(o.buf, o.len, "e0 80 | f1 0f 80 00 | f2 ff 80 00 00 00");

    jce_in_t in;
    int8_t a;
    int16_t b;
    int32_t c;
    jce_in_init(&in, o.buf, o.len, NULL);
    CHECK_EQ_INT(jce_get_int8(&in, 14, true, &a), 1);
    CHECK_EQ_INT(jce_get_int16(&in, 15, true, &b), 1);
    CHECK_EQ_INT(jce_get_int32(&in, 255, true, &c), 1);
    CHECK_EQ_INT(a, -128);
    CHECK_EQ_INT(b, -32768);
    CHECK_EQ_INT(c, INT32_MIN);
    CHECK(in.p == in.end);
    jce_out_free(&o);
}

TEST(head_tag_256_is_sticky_error) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_put_int32(&o, 1, 5);
    jce_put_int32(&o, 256, 5);
    CHECK_EQ_INT(o.err, JCE_ERR_BAD_TAG);
    jce_put_int32(&o, 2, 5);
    jce_put_string(&o, 3, "x", 1);
    CHECK_EQ_INT(o.err, JCE_ERR_BAD_TAG);
    CHECK_HEX(o.buf, o.len, "10 05");
    size_t n;
    CHECK(jce_out_take(&o, &n) == NULL);
    CHECK_EQ_INT(n, 0);
    jce_out_free(&o);
}

/* ---- §1.3 integers ------------------------------------------------------- */

TEST(int_vectors) {
    static const int64_t v[] = {
        0,     -1,    127,        128,          -129,
        32767, 32768, 2147483647, 2147483648LL, -2147483649LL};
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    for (unsigned i = 0; i < 10; i++) {
        if (v[i] >= INT32_MIN && v[i] <= INT32_MAX)
            jce_put_int32(&o, i, (int32_t)v[i]);
        else
            jce_put_int64(&o, i, v[i]);
    }
    CHECK_EQ_INT(o.err, 0);
    CHECK_HEX(o.buf, o.len,
              "0c 10 ff 20 7f 31 00 80 41 ff 7f 51 7f ff 62 00 00 80 00"
              "72 7f ff ff ff 83 00 00 00 00 80 00 00 00"
              "93 ff ff ff ff 7f ff ff ff");
    jce_in_t in;
    jce_in_init(&in, o.buf, o.len, NULL);
    for (unsigned i = 0; i < 10; i++) {
        int64_t x = 42;
        CHECK_EQ_INT(jce_get_int64(&in, i, true, &x), 1);
        CHECK_EQ_INT(x, v[i]);
    }
    jce_out_free(&o);
}

TEST(int64_edges) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_put_int64(&o, 0, INT64_MIN);
    jce_put_int64(&o, 1, INT64_MAX);
    CHECK_HEX(o.buf, o.len,
              "03 80 00 00 00 00 00 00 00 13 7f ff ff ff ff ff ff ff");
    jce_in_t in;
    int64_t a, b;
    jce_in_init(&in, o.buf, o.len, NULL);
    CHECK_EQ_INT(jce_get_int64(&in, 0, true, &a), 1);
    CHECK_EQ_INT(jce_get_int64(&in, 1, true, &b), 1);
    CHECK(a == INT64_MIN && b == INT64_MAX);
    jce_out_free(&o);
}

TEST(unsigned_and_bool_vectors) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_put_uint8(&o, 0, 200);
    jce_put_uint16(&o, 1, 65535);
    jce_put_uint32(&o, 2, 4294967295u);
    jce_put_bool(&o, 3, true);
    jce_put_bool(&o, 4, false);
    CHECK_HEX(
        o.buf, o.len,
        "01 00 c8 | 12 00 00 ff ff | 23 00 00 00 00 ff ff ff ff | 30 01 | 4c");
    jce_out_reset(&o);
    jce_put_bool(&o, 0, true);
    jce_put_bool(&o, 1, false);
    CHECK_HEX(o.buf, o.len, "00 01 1c");

    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    bool t = false, f = true;
    static const uint8_t buf[] = {0x01, 0x00, 0xc8, 0x12, 0x00, 0x00, 0xff,
                                  0xff, 0x23, 0,    0,    0,    0,    0xff,
                                  0xff, 0xff, 0xff, 0x30, 0x05, 0x4c};
    jce_in_t in;
    jce_in_init(&in, buf, sizeof buf, NULL);
    CHECK_EQ_INT(jce_get_uint8(&in, 0, true, &u8), 1);
    CHECK_EQ_INT(jce_get_uint16(&in, 1, true, &u16), 1);
    CHECK_EQ_INT(jce_get_uint32(&in, 2, true, &u32), 1);
    CHECK_EQ_INT(jce_get_bool(&in, 3, true, &t),
                 1); /* 5: any non-zero is true */
    CHECK_EQ_INT(jce_get_bool(&in, 4, true, &f), 1);
    CHECK_EQ_INT(u8, 200);
    CHECK_EQ_INT(u16, 65535);
    CHECK(u32 == 4294967295u);
    CHECK(t && !f);
    jce_out_free(&o);
}

/* ---- §1.4 float/double ---------------------------------------------------- */

TEST(float_vectors_both_policies) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_put_float(&o, 4, 1.5f);
    CHECK_HEX(o.buf, o.len, "44 3f c0 00 00");
    jce_out_reset(&o);
    jce_put_float(&o, 2, 0.0f);
    jce_put_double(&o, 3, 0.0);
    CHECK_HEX(o.buf, o.len, "24 00 00 00 00 35 00 00 00 00 00 00 00 00");

    jce_out_t js;
    jce_out_init(&js, JCE_POLICY_JS);
    jce_put_float(&js, 2, 0.0f);
    jce_put_double(&js, 3, 0.0);
    jce_put_float(&js, 4, -0.0f);
    jce_put_double(&js, 5, -0.0);
    jce_put_float(&js, 6, 1.5f);
    CHECK_HEX(js.buf, js.len, "2c 3c 4c 5c 64 3f c0 00 00");

    /* Both zero forms decode to 0. */
    float f1 = 9, f2 = 9;
    double d1 = 9, d2 = 9;
    jce_in_t in;
    jce_in_init(&in, o.buf, o.len, NULL);
    CHECK_EQ_INT(jce_get_float(&in, 2, true, &f1), 1);
    CHECK_EQ_INT(jce_get_double(&in, 3, true, &d1), 1);
    jce_in_init(&in, js.buf, js.len, NULL);
    CHECK_EQ_INT(jce_get_float(&in, 2, true, &f2), 1);
    CHECK_EQ_INT(jce_get_double(&in, 3, true, &d2), 1);
    CHECK(f1 == 0 && f2 == 0 && d1 == 0 && d2 == 0);
    jce_out_free(&o);
    jce_out_free(&js);
}

TEST(double_roundtrip_and_float_widening) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_put_double(&o, 0, 1.5);
    jce_put_double(&o, 1, -DBL_MAX);
    jce_put_float(&o, 2, 0.1f); /* read back as double: converted by value */
    jce_put_float(&o, 3, INFINITY);
    CHECK_HEX(o.buf, o.len,
              "05 3f f8 00 00 00 00 00 00 | 15 ff ef ff ff ff ff ff ff |"
              "24 3d cc cc cd | 34 7f 80 00 00");
    double a, b, c;
    float inf;
    jce_in_t in;
    jce_in_init(&in, o.buf, o.len, NULL);
    CHECK_EQ_INT(jce_get_double(&in, 0, true, &a), 1);
    CHECK_EQ_INT(jce_get_double(&in, 1, true, &b), 1);
    CHECK_EQ_INT(jce_get_double(&in, 2, true, &c), 1);
    CHECK_EQ_INT(jce_get_float(&in, 3, true, &inf), 1);
    CHECK(a == 1.5 && b == -DBL_MAX && c == (double)0.1f && isinf(inf));
    jce_out_free(&o);
}

/* ---- §1.5 strings ---------------------------------------------------------- */

TEST(string_vectors) {
    char big[300];
    memset(big, 'x', sizeof big);
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_put_string(&o, 5, "", 0);
    CHECK_HEX(o.buf, o.len, "56 00");
    jce_out_reset(&o);
    jce_put_string(&o, 1, big, sizeof big);
    CHECK_EQ_INT(o.len, 305);
    CHECK_HEX(o.buf, 5, "17 00 00 01 2c");
    CHECK(memcmp(o.buf + 5, big, 300) == 0);
    jce_out_reset(&o);
    jce_put_string(&o, 0, big, 255); /* the largest String1 */
    CHECK_HEX(o.buf, 2, "06 ff");
    CHECK_EQ_INT(o.len, 257);

    jce_str_t s = {0};
    jce_in_t in;
    jce_out_reset(&o);
    jce_put_str(&o, 1, (jce_str_t){big, 300});
    jce_put_str(&o, 5, JCE_STR_LIT(""));
    jce_put_str(&o, 6, JCE_STR_LIT("abc"));
    jce_in_init(&in, o.buf, o.len, NULL);
    CHECK_EQ_INT(jce_get_str(&in, 1, true, &s), 1);
    CHECK_EQ_INT(s.len, 300);
    CHECK(s.data == (const char *)o.buf + 5); /* zero copy */
    CHECK_EQ_INT(jce_get_str(&in, 5, true, &s), 1);
    CHECK_EQ_INT(s.len, 0);
    CHECK_EQ_INT(jce_get_str(&in, 6, true, &s), 1);
    CHECK(jce_str_eq(s, JCE_STR_LIT("abc")));
    jce_out_free(&o);
}

TEST(str_helpers) {
    CHECK(jce_str_eq(jce_str_from(NULL), JCE_STR_LIT("")));
    CHECK(jce_str_eq(jce_str_from("ab"), JCE_STR_LIT("ab")));
    CHECK(!jce_str_eq(JCE_STR_LIT("ab"), JCE_STR_LIT("abc")));
    CHECK(jce_str_cmp(JCE_STR_LIT("10"), JCE_STR_LIT("2")) < 0);
    CHECK(jce_str_cmp(JCE_STR_LIT("ab"), JCE_STR_LIT("abc")) < 0);
    CHECK(jce_str_cmp(JCE_STR_LIT("b"), JCE_STR_LIT("a")) > 0);
    CHECK(jce_str_cmp(JCE_STR_LIT("\xff"), JCE_STR_LIT("a")) >
          0); /* unsigned */
    CHECK_EQ_INT(jce_str_cmp(JCE_STR_LIT(""), jce_str_from(NULL)), 0);
    CHECK(strcmp(herald_strerror(JCE_ERR_REQUIRE), "require field not exist") ==
          0);
    CHECK(herald_strerror(-1000) != NULL);
}

/* ---- §1.6 containers ------------------------------------------------------ */

#define LINE_16                                                           \
    "09 0c | 18 0c | 2d 00 0c | 38 00 02 00 01 16 01 61 00 02 16 01 62 |" \
    "49 00 02 06 01 61 06 02 62 63"

TEST(containers_line) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_put_list_begin(&o, 0, 0);
    jce_put_map_begin(&o, 1, 0);
    jce_put_bytes(&o, 2, NULL, 0);
    jce_put_map_begin(&o, 3, 2);
    jce_put_int32(&o, 0, 1);
    jce_put_string(&o, 1, "a", 1);
    jce_put_int32(&o, 0, 2);
    jce_put_string(&o, 1, "b", 1);
    jce_put_list_begin(&o, 4, 2);
    jce_put_string(&o, 0, "a", 1);
    jce_put_string(&o, 0, "bc", 2);
    CHECK_EQ_INT(o.err, 0);
    CHECK_HEX(o.buf, o.len, LINE_16);
    jce_out_free(&o);
}

TEST(containers_line_decode) {
    uint8_t buf[64];
    size_t len = unhex(LINE_16, buf, sizeof buf);
    jce_arena_t *a = jce_arena_new(0);
    jce_in_t in;
    uint32_t n = 99;
    jce_bytes_t b = {0};
    jce_in_init(&in, buf, len, a);
    CHECK_EQ_INT(jce_get_list_begin(&in, 0, true, &n), 1);
    CHECK_EQ_INT(n, 0);
    jce_get_container_end(&in);
    CHECK_EQ_INT(jce_get_map_begin(&in, 1, true, &n), 1);
    CHECK_EQ_INT(n, 0);
    jce_get_container_end(&in);
    CHECK_EQ_INT(jce_get_bytes(&in, 2, true, &b), 1);
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_INT(jce_get_map_begin(&in, 3, true, &n), 1);
    CHECK_EQ_INT(n, 2);
    int32_t k[2];
    jce_str_t v[2];
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(jce_get_int32(&in, 0, true, &k[i]), 1);
        CHECK_EQ_INT(jce_get_str(&in, 1, true, &v[i]), 1);
    }
    jce_get_container_end(&in);
    CHECK(k[0] == 1 && k[1] == 2);
    CHECK(jce_str_eq(v[0], JCE_STR_LIT("a")) &&
          jce_str_eq(v[1], JCE_STR_LIT("b")));
    CHECK_EQ_INT(jce_get_list_begin(&in, 4, true, &n), 1);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(jce_get_str(&in, 0, true, &v[0]), 1);
    CHECK_EQ_INT(jce_get_str(&in, 0, true, &v[1]), 1);
    jce_get_container_end(&in);
    CHECK(jce_str_eq(v[0], JCE_STR_LIT("a")) &&
          jce_str_eq(v[1], JCE_STR_LIT("bc")));
    CHECK_EQ_INT(in.depth, 0);
    CHECK_EQ_INT(in.err, 0);
    CHECK_EQ_INT(jce_validate(buf, len, NULL), 0);
    jce_arena_free(a);
}

/* struct P { 0 require int a; 1 optional string b; } written with all fields. */
typedef struct {
    int32_t a;
    jce_str_t b;
} p_t;

static void p_write(jce_out_t *o, unsigned tag, const p_t *p) {
    jce_put_struct_begin(o, tag);
    jce_put_int32(o, 0, p->a);
    jce_put_str(o, 1, p->b);
    jce_put_struct_end(o);
}

static int p_read(jce_in_t *in, unsigned tag, bool require, p_t *p) {
    int r = jce_get_struct_begin(in, tag, require);
    if (r <= 0) return r;
    p->a = 0;
    p->b = JCE_STR_LIT("");
    jce_get_int32(in, 0, true, &p->a);
    jce_get_str(in, 1, false, &p->b);
    return jce_get_struct_end(in) < 0 ? in->err : 1;
}

#define NESTED_16                                     \
    "09 00 02 0a 00 01 16 01 78 0b 0a 00 fe 16 00 0b" \
    "18 00 01 06 01 6b 1a 00 03 16 01 79 0b"          \
    "fa 14 02 00 01 86 a0 16 01 7a 0b"                \
    "f9 15 00 01 0d 00 00 01 ab"                      \
    "f0 16 ff"                                        \
    "f3 17 80 00 00 00 00 00 00 00"

TEST(nested_example) {
    static const uint8_t ab = 0xab;
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_put_list_begin(&o, 0, 2);
    p_write(&o, 0, &(p_t){1, JCE_STR_LIT("x")});
    p_write(&o, 0, &(p_t){-2, JCE_STR_LIT("")});
    jce_put_map_begin(&o, 1, 1);
    jce_put_string(&o, 0, "k", 1);
    p_write(&o, 1, &(p_t){3, JCE_STR_LIT("y")});
    p_write(&o, 20, &(p_t){100000, JCE_STR_LIT("z")});
    jce_put_list_begin(&o, 21, 1);
    jce_put_bytes(&o, 0, &ab, 1);
    jce_put_int64(&o, 22, -1);
    jce_put_int64(&o, 23, INT64_MIN);
    CHECK_EQ_INT(o.err, 0);
    CHECK_HEX(o.buf, o.len, NESTED_16);
    jce_out_free(&o);
}

TEST(nested_example_decode) {
    uint8_t buf[128];
    size_t len = unhex(NESTED_16, buf, sizeof buf);
    jce_arena_t *a = jce_arena_new(0);
    jce_in_t in;
    uint32_t n;
    p_t p[2], mv, s20;
    jce_str_t key;
    jce_bytes_t bb;
    int64_t m1, imin;
    jce_in_init(&in, buf, len, a);
    CHECK_EQ_INT(jce_get_list_begin(&in, 0, true, &n), 1);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(p_read(&in, 0, true, &p[0]), 1);
    CHECK_EQ_INT(p_read(&in, 0, true, &p[1]), 1);
    jce_get_container_end(&in);
    CHECK(p[0].a == 1 && jce_str_eq(p[0].b, JCE_STR_LIT("x")));
    CHECK(p[1].a == -2 && p[1].b.len == 0);
    CHECK_EQ_INT(jce_get_map_begin(&in, 1, true, &n), 1);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(jce_get_str(&in, 0, true, &key), 1);
    CHECK_EQ_INT(p_read(&in, 1, true, &mv), 1);
    jce_get_container_end(&in);
    CHECK(jce_str_eq(key, JCE_STR_LIT("k")) && mv.a == 3);
    CHECK_EQ_INT(p_read(&in, 20, true, &s20), 1);
    CHECK(s20.a == 100000 && jce_str_eq(s20.b, JCE_STR_LIT("z")));
    CHECK_EQ_INT(jce_get_list_begin(&in, 21, true, &n), 1);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(jce_get_bytes(&in, 0, true, &bb), 1);
    jce_get_container_end(&in);
    CHECK(bb.len == 1 && bb.data[0] == 0xab);
    CHECK_EQ_INT(jce_get_int64(&in, 22, true, &m1), 1);
    CHECK_EQ_INT(jce_get_int64(&in, 23, true, &imin), 1);
    CHECK(m1 == -1 && imin == INT64_MIN);
    CHECK_EQ_INT(in.depth, 0);
    CHECK(in.p == in.end);
    jce_arena_free(a);
}

/* ---- §1.7 structs --------------------------------------------------------- */

#define SEVEN_17                                                \
    "01 01 2c | 16 03 61 62 63 | 2d 00 00 03 01 02 03 |"        \
    "39 00 03 00 01 00 ff 01 03 e8 | 48 00 01 06 01 6b 10 07 |" \
    "53 00 00 00 01 00 00 00 00 | 65 3f f8 00 00 00 00 00 00"

static void seven_encode(jce_out_t *o) {
    static const uint8_t blob[] = {1, 2, 3};
    jce_put_int32(o, 0, 300);
    jce_put_string(o, 1, "abc", 3);
    jce_put_bytes(o, 2, blob, 3);
    jce_put_list_begin(o, 3, 3);
    jce_put_int32(o, 0, 1);
    jce_put_int32(o, 0, -1);
    jce_put_int32(o, 0, 1000);
    jce_put_map_begin(o, 4, 1);
    jce_put_string(o, 0, "k", 1);
    jce_put_int32(o, 1, 7);
    jce_put_int64(o, 5, 1LL << 32);
    jce_put_double(o, 6, 1.5);
}

typedef struct {
    int32_t id;
    jce_str_t name;
    jce_bytes_t blob;
    int32_t *li;
    uint32_t nli;
    jce_str_t mk;
    int32_t mv;
    int64_t big;
    double d;
} seven_t;

/* Reads the body; returns in->err (0 when all is well). */
static int seven_decode(jce_in_t *in, seven_t *s) {
    uint32_t n;
    memset(s, 0, sizeof *s);
    jce_get_int32(in, 0, true, &s->id);
    jce_get_str(in, 1, true, &s->name);
    jce_get_bytes(in, 2, true, &s->blob);
    if (jce_get_list_begin(in, 3, true, &n) == 1) {
        s->li = n ? jce_in_alloc(in, n * sizeof *s->li) : NULL;
        for (uint32_t i = 0; i < n && !in->err; i++)
            jce_get_int32(in, 0, true, &s->li[i]);
        s->nli = n;
        jce_get_container_end(in);
    }
    if (jce_get_map_begin(in, 4, true, &n) == 1) {
        for (uint32_t i = 0; i < n && !in->err; i++) {
            jce_get_str(in, 0, true, &s->mk);
            jce_get_int32(in, 1, true, &s->mv);
        }
        jce_get_container_end(in);
    }
    jce_get_int64(in, 5, true, &s->big);
    jce_get_double(in, 6, true, &s->d);
    return in->err;
}

static int seven_check(const seven_t *s) {
    return s->id == 300 && jce_str_eq(s->name, JCE_STR_LIT("abc")) &&
           s->blob.len == 3 && s->blob.data[2] == 3 && s->nli == 3 &&
           s->li[0] == 1 && s->li[1] == -1 && s->li[2] == 1000 &&
           jce_str_eq(s->mk, JCE_STR_LIT("k")) && s->mv == 7 &&
           s->big == (1LL << 32) && s->d == 1.5;
}

TEST(seven_field_struct) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    seven_encode(&o);
    CHECK_EQ_INT(o.err, 0);
    CHECK_HEX(o.buf, o.len, SEVEN_17);

    jce_arena_t *a = jce_arena_new(0);
    jce_in_t in;
    seven_t s;
    jce_in_init(&in, o.buf, o.len, a);
    CHECK_EQ_INT(seven_decode(&in, &s), 0);
    CHECK(seven_check(&s));
    CHECK(in.p == in.end);

    /* The same as a field at tag 0. */
    jce_out_reset(&o);
    jce_put_struct_begin(&o, 0);
    seven_encode(&o);
    jce_put_struct_end(&o);
    CHECK_HEX(o.buf, o.len, "0a" SEVEN_17 "0b");
    jce_in_init(&in, o.buf, o.len, a);
    CHECK_EQ_INT(jce_get_struct_begin(&in, 0, true), 1);
    CHECK_EQ_INT(seven_decode(&in, &s), 0);
    CHECK_EQ_INT(jce_get_struct_end(&in), 0);
    CHECK(seven_check(&s));
    CHECK(in.p == in.end && in.depth == 0);
    jce_arena_free(a);
    jce_out_free(&o);
}

/* TestInfo{1 require int ii=34; 2 optional string s="abc";}
 * TestInfo2{1 require TestInfo t; 2 require int a=12345;} at defaults. */
static void testinfo2_encode(jce_out_t *o) {
    jce_put_struct_begin(o, 1);
    jce_put_int32(o, 1, 34);
    if (o->policy == JCE_POLICY_JS) /* C++ omits s: it equals its default */
        jce_put_string(o, 2, "abc", 3);
    jce_put_struct_end(o);
    jce_put_int32(o, 2, 12345);
}

TEST(testinfo_js_and_cpp) {
    jce_out_t js, cpp;
    jce_out_init(&js, JCE_POLICY_JS);
    jce_out_init(&cpp, JCE_POLICY_CPP);
    testinfo2_encode(&js);
    testinfo2_encode(&cpp);
    CHECK_HEX(js.buf, js.len, "1a 10 22 26 03 61 62 63 0b 21 30 39");
    CHECK_HEX(cpp.buf, cpp.len, "1a 10 22 0b 21 30 39");

    /* Both decode to the same value; absent s keeps its default. */
    const jce_out_t *forms[] = {&js, &cpp};
    for (int i = 0; i < 2; i++) {
        jce_in_t in;
        int32_t ii = 0, a = 0;
        jce_str_t s = JCE_STR_LIT("abc");
        jce_in_init(&in, forms[i]->buf, forms[i]->len, NULL);
        CHECK_EQ_INT(jce_get_struct_begin(&in, 1, true), 1);
        CHECK_EQ_INT(jce_get_int32(&in, 1, true, &ii), 1);
        CHECK(jce_get_str(&in, 2, false, &s) >= 0);
        CHECK_EQ_INT(jce_get_struct_end(&in), 0);
        CHECK_EQ_INT(jce_get_int32(&in, 2, true, &a), 1);
        CHECK(ii == 34 && a == 12345 && jce_str_eq(s, JCE_STR_LIT("abc")));
    }
    jce_out_free(&js);
    jce_out_free(&cpp);
}

/* ---- encoder buffer ------------------------------------------------------- */

TEST(out_growth_raw_reserve_take) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    size_t off = jce_out_reserve(&o, 4);
    CHECK_EQ_INT(off, 0);
    for (int i = 0; i < 10000; i++) jce_put_int32(&o, 1, 100000 + i);
    CHECK_EQ_INT(o.err, 0);
    CHECK_EQ_INT(o.len, 4 + 10000 * 5);
    CHECK(o.cap >= o.len);
    jce_out_raw(&o, "\x01\x02", 2);
    CHECK_HEX(o.buf + o.len - 2, 2, "01 02");
    CHECK_HEX(o.buf, 4, "00 00 00 00");
    size_t n;
    uint8_t *p = jce_out_take(&o, &n);
    CHECK(p != NULL && n == 4 + 50000 + 2);
    CHECK(o.buf == NULL && o.len == 0);
    free(p);
    p = jce_out_take(&o, &n); /* empty but valid */
    CHECK(p != NULL && n == 0);
    free(p);

    /* Out of memory is sticky and nothing more is written. */
    jce_put_int32(&o, 0, 1);
    CHECK(jce_out_reserve(&o, SIZE_MAX - 8) == SIZE_MAX);
    CHECK_EQ_INT(o.err, JCE_ERR_NOMEM);
    jce_put_int32(&o, 1, 2);
    CHECK_EQ_INT(o.len, 2);
    jce_out_reset(&o);
    CHECK_EQ_INT(o.err, 0);
    jce_put_int32(&o, 1, 2);
    CHECK_HEX(o.buf, o.len, "10 02");
    jce_out_free(&o);
}

/* ---- §2.5 frames are plain JCE -------------------------------------------- */

static void servant(bld_t *b) {
    bhex(b, "56 19");
    bstr(b, "Test.HelloServer.HelloObj");
    bhex(b, "66 09");
    bstr(b, "testHello");
}

TEST(rpc_frames_validate) {
    bld_t req = {.n = 0};
    bhex(&req, "00 00 00 42 10 01 2c 3c 40 0b");
    servant(&req);
    bhex(&req, "7d 00 00 07 10 07 26 03 61 62 63 81 0b b8 98 0c a8 0c");
    CHECK_EQ_INT(req.n, 66);
    CHECK_EQ_INT(jce_validate(req.b + 4, req.n - 4, NULL), 0);

    jce_arena_t *a = jce_arena_new(0);
    jce_in_t in;
    int16_t ver;
    int8_t type = 9;
    int32_t msg, id, tmo;
    jce_str_t sv, fn;
    jce_bytes_t sbuf;
    uint32_t nctx, nst;
    jce_in_init(&in, req.b + 4, req.n - 4, a);
    CHECK_EQ_INT(jce_get_int16(&in, 1, true, &ver), 1);
    CHECK_EQ_INT(jce_get_int8(&in, 2, true, &type), 1);
    CHECK_EQ_INT(jce_get_int32(&in, 3, true, &msg), 1);
    CHECK_EQ_INT(jce_get_int32(&in, 4, true, &id), 1);
    CHECK_EQ_INT(jce_get_str(&in, 5, true, &sv), 1);
    CHECK_EQ_INT(jce_get_str(&in, 6, true, &fn), 1);
    CHECK_EQ_INT(jce_get_bytes(&in, 7, true, &sbuf), 1);
    CHECK_EQ_INT(jce_get_int32(&in, 8, true, &tmo), 1);
    CHECK_EQ_INT(jce_get_map_begin(&in, 9, true, &nctx), 1);
    jce_get_container_end(&in);
    CHECK_EQ_INT(jce_get_map_begin(&in, 10, true, &nst), 1);
    jce_get_container_end(&in);
    CHECK(ver == 1 && type == 0 && msg == 0 && id == 11 && tmo == 3000);
    CHECK(jce_str_eq(sv, JCE_STR_LIT("Test.HelloServer.HelloObj")));
    CHECK(jce_str_eq(fn, JCE_STR_LIT("testHello")));
    CHECK(nctx == 0 && nst == 0 && sbuf.len == 7);
    CHECK_HEX(sbuf.data, sbuf.len, "10 07 26 03 61 62 63");
    CHECK_EQ_INT(jce_validate(sbuf.data, sbuf.len, NULL), 0);
    jce_arena_free(a);

    static const char *const responses[] = {
        "10 01 2c 30 0b 4c 5c 6d 00 00 14 0c 36 06 68 69 20 61 62 63 4a 00 0e "
        "16"
        "03 41 42 43 20 05 0b 78 0c 86 00 98 0c",
        "10 01 2c 30 02 4c 5c 6d 00 00 12 0c 36 06 68 69 20 61 62 63 4a 00 0e "
        "16"
        "03 41 42 43 0b 78 0c",
        "10 01 2c 30 0c 4c 50 fd 6d 00 0c 78 0c 86 00 98 0c",
        "10 01 2c 30 0d 4c 5c 6d 00 00 01 0c 78 0c 86 00 98 0c",
        "10 01 2c 30 0e 4c 5c 6d 00 0c 78 0c 86 00 98 0c",
        "0c 36 06 68 69 20 61 62 63 4a 00 0e 16 03 41 42 43 20 05 0b",
    };
    for (size_t i = 0; i < sizeof responses / sizeof *responses; i++) {
        uint8_t buf[128];
        size_t n = unhex(responses[i], buf, sizeof buf);
        CHECK_EQ_INT(jce_validate(buf, n, NULL), 0);
    }

    bld_t v3 = {.n = 0};
    bhex(&v3, "00 00 00 92 10 03 2c 3c 40 11");
    servant(&v3);
    bhex(&v3, "7d 00 00 2b 08 00 03 06 00 1d 00 00 01 0c"
              "06 01 72 1d 00 00 08 06 06 68 69 20 61 62 63"
              "06 01 70 1d 00 00 0b 0a 00 0e 16 03 41 42 43 20 05 0b"
              "8c 98 0c a8 00 02 06 12");
    bstr(&v3, "STATUS_RESULT_CODE");
    bhex(&v3, "16 01 30 06 12");
    bstr(&v3, "STATUS_RESULT_DESC");
    bhex(&v3, "16 00");
    CHECK_EQ_INT(v3.n, 146);
    CHECK_EQ_INT(jce_validate(v3.b + 4, v3.n - 4, NULL), 0);
}

/* ---- decoder: scanning ---------------------------------------------------- */

TEST(skip_unknown_and_lower_tags) {
    /* 0 int, 1 string, 2 struct{list, map, struct}, 3 bytes, 4 double,
     * 5 int: a reader that only wants 5 skips the rest. */
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_put_int32(&o, 0, 70000);
    jce_put_string(&o, 1, "skip me", 7);
    jce_put_struct_begin(&o, 2);
    jce_put_list_begin(&o, 0, 2);
    jce_put_int64(&o, 0, INT64_MAX);
    jce_put_string(&o, 0, "e", 1);
    jce_put_map_begin(&o, 1, 1);
    jce_put_int8(&o, 0, 1);
    jce_put_float(&o, 1, 2.5f);
    jce_put_struct_begin(&o, 2);
    jce_put_struct_end(&o);
    jce_put_struct_end(&o);
    jce_put_bytes(&o, 3, (const uint8_t *)"\x01\x02", 2);
    jce_put_double(&o, 4, 2.0);
    jce_put_int32(&o, 5, 77);

    jce_in_t in;
    int32_t v = 0;
    jce_in_init(&in, o.buf, o.len, NULL);
    CHECK_EQ_INT(jce_get_int32(&in, 5, true, &v), 1);
    CHECK_EQ_INT(v, 77);
    CHECK_EQ_INT(in.depth, 0);

    /* Absent tag between two present ones: stop before the higher one. */
    v = -5;
    jce_out_reset(&o);
    jce_put_int32(&o, 1, 1);
    jce_put_int32(&o, 5, 5);
    jce_in_init(&in, o.buf, o.len, NULL);
    CHECK_EQ_INT(jce_get_int32(&in, 3, false, &v), 0);
    CHECK_EQ_INT(v, -5);      /* untouched */
    CHECK(in.p == o.buf + 2); /* tag 5 is left for the next read */
    CHECK_EQ_INT(jce_get_int32(&in, 5, false, &v), 1);
    CHECK_EQ_INT(v, 5);
    CHECK_EQ_INT(jce_get_int32(&in, 6, false, &v), 0); /* end of input */
    CHECK_EQ_INT(in.err, 0);
    jce_out_free(&o);
}

TEST(nested_struct_skips_unknown_fields_to_end) {
    /* struct @0 { 0 int; 1 string; 2 struct; 3 list } then int @1:
     * a reader knowing only field 0 of the inner struct still finds @1. */
    static const char *hex =
        "0a 00 07 16 01 61 2a 10 01 0b 39 00 01 0c 0b | 10 2a";
    uint8_t buf[64];
    size_t n = unhex(hex, buf, sizeof buf);
    jce_in_t in;
    int8_t a = 0;
    int32_t b = 0, none = -1;
    jce_in_init(&in, buf, n, NULL);
    CHECK_EQ_INT(jce_get_struct_begin(&in, 0, true), 1);
    CHECK_EQ_INT(in.depth, 1);
    CHECK_EQ_INT(jce_get_int8(&in, 0, true, &a), 1);
    CHECK_EQ_INT(jce_get_struct_end(&in), 0);
    CHECK_EQ_INT(in.depth, 0);
    CHECK_EQ_INT(jce_get_int32(&in, 1, true, &b), 1);
    CHECK(a == 7 && b == 42);

    /* Inside the struct a wanted tag past the last field is absent: the
     * scan stops at StructEnd without consuming it. */
    static const char *hex2 = "0a 00 07 0b 10 2a";
    n = unhex(hex2, buf, sizeof buf);
    jce_in_init(&in, buf, n, NULL);
    CHECK_EQ_INT(jce_get_struct_begin(&in, 0, true), 1);
    CHECK_EQ_INT(jce_get_int32(&in, 5, false, &none), 0);
    CHECK_EQ_INT(none, -1);
    CHECK(in.p == buf + 3);
    CHECK_EQ_INT(jce_get_int32(&in, 6, true, &none), JCE_ERR_REQUIRE);
    CHECK_EQ_INT(in.err_pos, 3);

    /* A top-level StructEnd ends the scan too (nothing found). */
    static const uint8_t end_only[] = {0x0b, 0x10, 0x01};
    jce_in_init(&in, end_only, sizeof end_only, NULL);
    CHECK_EQ_INT(jce_get_int32(&in, 1, false, &none), 0);
    CHECK_EQ_INT(in.err, 0);
}

TEST(widening_and_mismatch) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_put_int32(&o, 0, 100000); /* Int32 */
    jce_put_int16(&o, 1, 300);    /* Short */
    jce_put_double(&o, 2, 2.5);   /* Double */
    jce_put_string(&o, 3, "s", 1);
    jce_put_int8(&o, 4, 5); /* Char */
    jce_put_float(&o, 5, 1.0f);

    int64_t i64;
    int32_t i32;
    int16_t i16;
    int8_t i8;
    float f;
    jce_str_t s;
    jce_in_t in;
    jce_in_init(&in, o.buf, o.len, NULL);
    CHECK_EQ_INT(jce_get_int64(&in, 0, true, &i64), 1); /* widening: fine */
    CHECK_EQ_INT(i64, 100000);
    CHECK_EQ_INT(jce_get_int32(&in, 1, true, &i32), 1);
    CHECK_EQ_INT(i32, 300);

#define MISMATCH(call, pos)                   \
    do {                                      \
        jce_in_init(&in, o.buf, o.len, NULL); \
        CHECK_EQ_INT(call, JCE_ERR_TYPE);     \
        CHECK_EQ_INT(in.err, JCE_ERR_TYPE);   \
        CHECK_EQ_INT(in.err_pos, pos);        \
    } while (0)
    MISMATCH(jce_get_int16(&in, 0, true, &i16), 0);  /* Int32 into short */
    MISMATCH(jce_get_int8(&in, 1, true, &i8), 5);    /* Short into byte */
    MISMATCH(jce_get_float(&in, 2, true, &f), 8);    /* Double into float */
    MISMATCH(jce_get_int32(&in, 3, true, &i32), 17); /* string into int */
    MISMATCH(jce_get_str(&in, 4, true, &s), 20);     /* Char into string */
    MISMATCH(jce_get_int32(&in, 5, true, &i32), 22); /* Float into int */
    MISMATCH(jce_get_list_begin(&in, 4, true, &(uint32_t){0}), 20);
    MISMATCH(jce_get_struct_begin(&in, 3, true), 17);
    MISMATCH(jce_get_bytes(&in, 3, true, &(jce_bytes_t){0}), 17);

    /* ZeroTag is any numeric zero, float and double included. */
    static const uint8_t zeros[] = {0x0c, 0x1c, 0x2c, 0x3c};
    double d = 1;
    bool b = true;
    f = 1;
    i64 = 1;
    jce_in_init(&in, zeros, sizeof zeros, NULL);
    CHECK_EQ_INT(jce_get_float(&in, 0, true, &f), 1);
    CHECK_EQ_INT(jce_get_double(&in, 1, true, &d), 1);
    CHECK_EQ_INT(jce_get_bool(&in, 2, true, &b), 1);
    CHECK_EQ_INT(jce_get_int64(&in, 3, true, &i64), 1);
    CHECK(f == 0 && d == 0 && !b && i64 == 0);
    jce_out_free(&o);
}

TEST(bytes_from_list_of_char) {
    /* C++ accepts vector<byte> as a List of Char; the copy lives in the arena. */
    static const uint8_t buf[] = {0x19, 0x00, 0x03, 0x00,
                                  0x41, 0x0c, 0x00, 0xff};
    jce_arena_t *a = jce_arena_new(0);
    jce_in_t in;
    jce_bytes_t b;
    jce_in_init(&in, buf, sizeof buf, a);
    CHECK_EQ_INT(jce_get_bytes(&in, 1, true, &b), 1);
    CHECK_EQ_INT(b.len, 3);
    CHECK_HEX(b.data, b.len, "41 00 ff");
    CHECK(b.data < buf || b.data >= buf + sizeof buf);
    CHECK_EQ_INT(in.depth, 0);

    /* Without an arena there is nowhere to put the copy. */
    jce_in_init(&in, buf, sizeof buf, NULL);
    CHECK_EQ_INT(jce_get_bytes(&in, 1, true, &b), JCE_ERR_NOMEM);

    /* SimpleList whose inner head is not Char@0. */
    static const uint8_t bad[] = {0x1d, 0x01, 0x01, 0x41};
    jce_in_init(&in, bad, sizeof bad, a);
    CHECK_EQ_INT(jce_get_bytes(&in, 1, true, &b), JCE_ERR_BAD_VALUE);
    CHECK_EQ_INT(jce_validate(bad, sizeof bad, NULL), JCE_ERR_BAD_VALUE);
    jce_arena_free(a);
}

TEST(require_missing_and_sticky) {
    static const uint8_t buf[] = {0x10, 0x01, 0x50, 0x05};
    jce_in_t in;
    int32_t v = 0;
    jce_in_init(&in, buf, sizeof buf, NULL);
    CHECK_EQ_INT(jce_get_int32(&in, 3, true, &v), JCE_ERR_REQUIRE);
    CHECK_EQ_INT(in.err_pos, 2); /* stopped at tag 5 */
    /* Sticky: later reads fail at once and keep the first position. */
    CHECK_EQ_INT(jce_get_int32(&in, 5, true, &v), JCE_ERR_REQUIRE);
    CHECK_EQ_INT(jce_get_str(&in, 5, false, &(jce_str_t){0}), JCE_ERR_REQUIRE);
    CHECK_EQ_INT(in.err_pos, 2);
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(jce_in_fail(&in, JCE_ERR_LIMIT), JCE_ERR_REQUIRE);

    jce_in_init(&in, buf, 0, NULL);
    CHECK_EQ_INT(jce_get_int32(&in, 0, true, &v), JCE_ERR_REQUIRE);
    jce_in_init(&in, buf, 0, NULL);
    CHECK_EQ_INT(jce_get_int32(&in, 0, false, &v), 0);
}

/* ---- decoder: hostile input ----------------------------------------------- */

/* Reads the §1.7 struct wrapped at tag 0 and then a trailing int. */
static int read_wrapped(const uint8_t *buf, size_t n, jce_arena_t *a) {
    jce_in_t in;
    seven_t s;
    int32_t tail;
    jce_in_init(&in, buf, n, a);
    if (jce_get_struct_begin(&in, 0, true) == 1) {
        seven_decode(&in, &s);
        jce_get_struct_end(&in);
    }
    jce_get_int32(&in, 1, true, &tail);
    return in.err;
}

TEST(truncated_at_every_cut) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_put_struct_begin(&o, 0);
    seven_encode(&o);
    jce_put_struct_end(&o);
    jce_put_int32(&o, 1, 1 << 20);
    jce_arena_t *a = jce_arena_new(0);
    CHECK_EQ_INT(read_wrapped(o.buf, o.len, a), 0);
    CHECK_EQ_INT(jce_validate(o.buf, o.len, NULL), 0);
    for (size_t cut = 0; cut < o.len; cut++) {
        uint8_t *p = dup_exact(o.buf, cut);
        jce_arena_reset(a);
        int r = read_wrapped(p, cut, a);
        if (r == 0) {
            fprintf(stderr, "  cut %zu decoded\n", cut);
            CHECK(r != 0);
        }
        /* Validation of a cut inside the struct must fail as well. */
        size_t pos = 0;
        int v = jce_validate(p, cut, &pos);
        if (cut > 0 && cut < o.len - 5) CHECK(v < 0 && pos <= cut);
        free(p);
    }

    /* The nested example cut anywhere: never crash, and a cut inside a
     * field's body is an error. */
    uint8_t buf[128];
    size_t n = unhex(NESTED_16, buf, sizeof buf);
    static const size_t field_ends[] = {16, 29, 40, 49, 52, 62};
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *p = dup_exact(buf, cut);
        int boundary = cut == 0;
        for (size_t i = 0; i < 6; i++) boundary |= cut == field_ends[i];
        int v = jce_validate(p, cut, NULL);
        CHECK(boundary ? v == 0 : v < 0);
        free(p);
    }
    jce_arena_free(a);
    jce_out_free(&o);
}

static size_t nest(uint8_t *buf, int levels, uint8_t open, int close_structs) {
    size_t n = 0;
    for (int i = 0; i < levels; i++) {
        buf[n++] = open;
        if (open == 0x09) { /* list of one element */
            buf[n++] = 0x00;
            buf[n++] = 0x01;
        }
    }
    buf[n++] = 0x0c; /* innermost: one ZeroTag */
    if (close_structs)
        for (int i = 0; i < levels; i++) buf[n++] = 0x0b;
    return n;
}

TEST(depth_bomb) {
    uint8_t buf[1024];
    size_t pos = 0;
    size_t n = nest(buf, 100, 0x09, 0);
    CHECK_EQ_INT(jce_validate(buf, n, &pos), JCE_ERR_LIMIT);
    CHECK(pos > 0 && pos < n);
    n = nest(buf, 100, 0x0a, 1);
    CHECK_EQ_INT(jce_validate(buf, n, NULL), JCE_ERR_LIMIT);
    /* Exactly JCE_MAX_DEPTH levels are fine, one more is not. */
    n = nest(buf, JCE_MAX_DEPTH, 0x09, 0);
    CHECK_EQ_INT(jce_validate(buf, n, NULL), 0);
    n = nest(buf, JCE_MAX_DEPTH + 1, 0x09, 0);
    CHECK_EQ_INT(jce_validate(buf, n, NULL), JCE_ERR_LIMIT);
    n = nest(buf, JCE_MAX_DEPTH, 0x0a, 1);
    CHECK_EQ_INT(jce_validate(buf, n, NULL), 0);

    /* The same through the typed API (a reader of vector<vector<...>>). */
    n = nest(buf, 100, 0x09, 0);
    jce_in_t in;
    uint32_t cnt;
    int levels = 0, r;
    jce_in_init(&in, buf, n, NULL);
    while ((r = jce_get_list_begin(&in, 0, true, &cnt)) == 1) levels++;
    CHECK_EQ_INT(r, JCE_ERR_LIMIT);
    CHECK_EQ_INT(levels, JCE_MAX_DEPTH);

    /* Skipping an unknown deep field is bounded the same way. */
    buf[0] = 0x19; /* the bomb at tag 1, reader wants tag 2 */
    jce_in_init(&in, buf, n, NULL);
    CHECK_EQ_INT(jce_get_int32(&in, 2, false, &(int32_t){0}), JCE_ERR_LIMIT);
}

TEST(huge_and_negative_counts) {
    jce_in_t in;
    uint32_t n = 7;
    size_t pos;
    /* List claiming INT32_MAX elements with 3 bytes left. */
    static const uint8_t huge[] = {0x09, 0x02, 0x7f, 0xff, 0xff,
                                   0xff, 0x0c, 0x0c, 0x0c};
    jce_in_init(&in, huge, sizeof huge, NULL);
    CHECK_EQ_INT(jce_get_list_begin(&in, 0, true, &n), JCE_ERR_LIMIT);
    CHECK_EQ_INT(n, 7);
    CHECK_EQ_INT(jce_validate(huge, sizeof huge, &pos), JCE_ERR_LIMIT);
    CHECK_EQ_INT(pos, 1);
    /* Exactly as many elements as bytes left is allowed ... */
    static const uint8_t fits[] = {0x09, 0x00, 0x03, 0x0c, 0x0c, 0x0c};
    jce_in_init(&in, fits, sizeof fits, NULL);
    CHECK_EQ_INT(jce_get_list_begin(&in, 0, true, &n), 1);
    CHECK_EQ_INT(n, 3);
    /* ... a map needs two bytes per entry. */
    static const uint8_t map[] = {0x08, 0x00, 0x02, 0x0c, 0x1c, 0x0c};
    jce_in_init(&in, map, sizeof map, NULL);
    CHECK_EQ_INT(jce_get_map_begin(&in, 0, true, &n), JCE_ERR_LIMIT);
    /* Negative counts and lengths. */
    static const uint8_t neg[] = {0x09, 0x00, 0xff, 0x0c};
    jce_in_init(&in, neg, sizeof neg, NULL);
    CHECK_EQ_INT(jce_get_list_begin(&in, 0, true, &n), JCE_ERR_NEGATIVE);
    CHECK_EQ_INT(jce_validate(neg, sizeof neg, NULL), JCE_ERR_NEGATIVE);
    static const uint8_t negb[] = {0x0d, 0x00, 0x01, 0x80, 0x41};
    jce_in_init(&in, negb, sizeof negb, NULL);
    CHECK_EQ_INT(jce_get_bytes(&in, 0, true, &(jce_bytes_t){0}),
                 JCE_ERR_NEGATIVE);
    static const uint8_t bigb[] = {0x0d, 0x00, 0x00, 0x05, 0x41};
    jce_in_init(&in, bigb, sizeof bigb, NULL);
    CHECK(jce_get_bytes(&in, 0, true, &(jce_bytes_t){0}) < 0);
    /* Count written as Int64 or as a string: not a count. */
    static const uint8_t wide[] = {0x09, 0x03, 0, 0, 0, 0, 0, 0, 0, 1, 0x0c};
    jce_in_init(&in, wide, sizeof wide, NULL);
    CHECK_EQ_INT(jce_get_list_begin(&in, 0, true, &n), JCE_ERR_TYPE);
}

TEST(string_lengths) {
    jce_in_t in;
    jce_str_t s = {0};
    /* String4 claiming 256 bytes, one present. */
    static const uint8_t s4[] = {0x07, 0x00, 0x00, 0x01, 0x00, 0x41};
    jce_in_init(&in, s4, sizeof s4, NULL);
    CHECK_EQ_INT(jce_get_str(&in, 0, true, &s), JCE_ERR_TRUNCATED);
    CHECK_EQ_INT(jce_validate(s4, sizeof s4, NULL), JCE_ERR_TRUNCATED);
    /* String4 over the hard limit. */
    static const uint8_t huge[] = {0x07, 0x7f, 0xff, 0xff, 0xff, 0x41};
    jce_in_init(&in, huge, sizeof huge, NULL);
    CHECK_EQ_INT(jce_get_str(&in, 0, true, &s), JCE_ERR_LIMIT);
    CHECK_EQ_INT(jce_validate(huge, sizeof huge, NULL), JCE_ERR_LIMIT);
    /* String1 running past the end; String4 head with no length. */
    static const uint8_t s1[] = {0x06, 0x03, 0x41};
    jce_in_init(&in, s1, sizeof s1, NULL);
    CHECK_EQ_INT(jce_get_str(&in, 0, true, &s), JCE_ERR_TRUNCATED);
    static const uint8_t s4h[] = {0x07, 0x00};
    jce_in_init(&in, s4h, sizeof s4h, NULL);
    CHECK_EQ_INT(jce_get_str(&in, 0, true, &s), JCE_ERR_TRUNCATED);
    CHECK(s.data == NULL);
    /* Oversized encodes are refused rather than producing bytes nobody reads. */
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_put_string(&o, 0, "", (size_t)JCE_MAX_STRING + 1);
    CHECK_EQ_INT(o.err, JCE_ERR_LIMIT);
    jce_out_free(&o);
}

TEST(truncated_heads_and_bodies) {
    jce_in_t in;
    int64_t v;
    static const uint8_t twobyte[] = {0xf2};
    jce_in_init(&in, twobyte, sizeof twobyte, NULL);
    CHECK_EQ_INT(jce_get_int64(&in, 20, false, &v), JCE_ERR_TRUNCATED);
    static const uint8_t i32[] = {0x02, 0x00, 0x01};
    jce_in_init(&in, i32, sizeof i32, NULL);
    CHECK_EQ_INT(jce_get_int64(&in, 0, true, &v), JCE_ERR_TRUNCATED);
    CHECK_EQ_INT(in.err_pos, 1);
    static const uint8_t dbl[] = {0x05, 0x3f, 0xf8};
    double d;
    jce_in_init(&in, dbl, sizeof dbl, NULL);
    CHECK_EQ_INT(jce_get_double(&in, 0, true, &d), JCE_ERR_TRUNCATED);
    /* Unclosed struct. */
    static const uint8_t st[] = {0x0a, 0x10, 0x01};
    jce_in_init(&in, st, sizeof st, NULL);
    CHECK_EQ_INT(jce_get_struct_begin(&in, 0, true), 1);
    CHECK_EQ_INT(jce_get_struct_end(&in), JCE_ERR_TRUNCATED);
    CHECK_EQ_INT(jce_validate(st, sizeof st, NULL), JCE_ERR_TRUNCATED);
}

TEST(validate_good_and_bad) {
    uint8_t buf[128];
    size_t n = unhex(SEVEN_17, buf, sizeof buf);
    size_t pos = 99;
    CHECK_EQ_INT(jce_validate(buf, n, &pos), 0);
    CHECK_EQ_INT(pos, 0);
    CHECK_EQ_INT(jce_validate(buf, 0, NULL), 0);
    static const uint8_t badtype[] = {0x10, 0x01, 0x2e, 0x00};
    CHECK_EQ_INT(jce_validate(badtype, sizeof badtype, &pos), JCE_ERR_BAD_TYPE);
    CHECK(pos >= 2 && pos <= 3);
    static const uint8_t badtype15[] = {0xff, 0x20};
    CHECK_EQ_INT(jce_validate(badtype15, sizeof badtype15, NULL),
                 JCE_ERR_BAD_TYPE);
    static const uint8_t stray_end[] = {0x10, 0x01, 0x0b};
    CHECK_EQ_INT(jce_validate(stray_end, sizeof stray_end, &pos),
                 JCE_ERR_BAD_VALUE);
    CHECK_EQ_INT(pos, 2);
    static const uint8_t bad_count_tag[] = {0x09, 0x10, 0x01, 0x0c};
    CHECK_EQ_INT(jce_validate(bad_count_tag, sizeof bad_count_tag, NULL),
                 JCE_ERR_BAD_VALUE);
    /* A StructEnd standing in for a list element. */
    static const uint8_t end_elem[] = {0x09, 0x00, 0x01, 0x0b};
    CHECK_EQ_INT(jce_validate(end_elem, sizeof end_elem, NULL),
                 JCE_ERR_BAD_VALUE);
}

TEST(input_size_limit) {
    static const uint8_t one = 0x0c;
    jce_in_t in;
    int32_t v;
    /* Never dereferenced: the limit is checked before anything is read. */
    jce_in_init(&in, &one, (size_t)JCE_MAX_INPUT + 1, NULL);
    CHECK_EQ_INT(in.err, JCE_ERR_LIMIT);
    CHECK_EQ_INT(jce_get_int32(&in, 0, false, &v), JCE_ERR_LIMIT);
    CHECK_EQ_INT(jce_validate(&one, (size_t)JCE_MAX_INPUT + 1, NULL),
                 JCE_ERR_LIMIT);
}

/* ---- arena -------------------------------------------------------------- */

TEST(arena_alignment_zero_limit_reset) {
    jce_arena_t *a = jce_arena_new(0);
    CHECK(a != NULL);
    for (int i = 1; i < 2000; i++) {
        uint8_t *p = jce_arena_alloc(a, (size_t)(i % 97) + 1);
        CHECK(p != NULL);
        CHECK(((uintptr_t)p & 15) == 0);
        for (int k = 0; k < i % 97 + 1; k++) CHECK(p[k] == 0);
        memset(p, 0xaa, (size_t)(i % 97) + 1);
    }
    uint8_t *big = jce_arena_alloc(a, 100000);
    CHECK(big != NULL && big[99999] == 0);
    CHECK(jce_arena_used(a) > 100000);
    jce_arena_reset(a);
    CHECK_EQ_INT(jce_arena_used(a), 0);
    /* After reset memory handed out again is zeroed. */
    for (int i = 0; i < 100; i++) {
        uint8_t *p = jce_arena_alloc(a, 64);
        CHECK(p != NULL);
        for (int k = 0; k < 64; k++) CHECK(p[k] == 0);
    }
    jce_arena_free(a);

    jce_arena_t *small = jce_arena_new(1000);
    CHECK(jce_arena_alloc(small, 600) != NULL);
    CHECK(jce_arena_alloc(small, 600) == NULL);
    CHECK(jce_arena_alloc(small, 400) != NULL);
    CHECK(jce_arena_alloc(small, (size_t)-1) == NULL);
    jce_arena_reset(small);
    CHECK(jce_arena_alloc(small, 1000) != NULL);
    jce_arena_free(small);
    jce_arena_free(NULL);

    /* The decoder reports the arena limit as NOMEM. */
    jce_arena_t *tiny = jce_arena_new(16);
    static const uint8_t lst[] = {0x0d, 0x00, 0x00, 0x00};
    static const uint8_t clist[] = {
        0x09, 0x00, 0x20, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
        0,    1,    0,    1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0,
        1,    0,    1,    0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
        0,    1,    0,    1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1};
    jce_in_t in;
    jce_bytes_t b;
    jce_in_init(&in, lst, sizeof lst, tiny);
    CHECK_EQ_INT(jce_get_bytes(&in, 0, true, &b), 1);
    jce_in_init(&in, clist, sizeof clist, tiny);
    CHECK_EQ_INT(jce_get_bytes(&in, 0, true, &b), JCE_ERR_NOMEM);
    jce_arena_free(tiny);
}
