/*
 * UniAttribute (TUP v3) against the verified encodings of tars-wire §2.3 and
 * §2.5, and the two lookup tables generated code relies on.
 */
#include "jce/jce_rpc.h"
#include "jce/jce_type.h"
#include "test.h"

static size_t unhex(const char *hex, uint8_t *out, size_t cap) {
    size_t n = 0;
    while (*hex && n < cap) {
        if (*hex == ' ' || *hex == '|') {
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

TEST(tup_encode_id_7) {
    jce_out_t o, v;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_out_init(&v, JCE_POLICY_CPP);
    jce_put_int32(&v, 0, 7);
    jce_tup_put_begin(&o, 1);
    jce_tup_put_entry(&o, "id", &v);
    CHECK_EQ_INT(o.err, 0);
    CHECK_HEX(o.buf, o.len, "08 00 01 06 02 69 64 1d 00 00 02 00 07");
    jce_out_free(&o);
    jce_out_free(&v);
}

TEST(tup_encode_empty) {
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_tup_put_begin(&o, 0);
    CHECK_HEX(o.buf, o.len, "08 0c");
    jce_out_free(&o);
}

TEST(tup_entry_error_propagates) {
    jce_out_t o, v;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_out_init(&v, JCE_POLICY_CPP);
    jce_put_int32(&v, 300, 1);
    jce_tup_put_begin(&o, 1);
    jce_tup_put_entry(&o, "x", &v);
    CHECK_EQ_INT(o.err, JCE_ERR_BAD_TAG);
    jce_out_free(&o);
    jce_out_free(&v);
}

TEST(tup_parse_id_7) {
    uint8_t buf[64];
    size_t n = unhex("08 00 01 06 02 69 64 1d 00 00 02 00 07", buf, sizeof buf);
    jce_arena_t *a = jce_arena_new(0);
    jce_tup_t tup;
    CHECK_EQ_INT(jce_tup_parse(buf, n, a, &tup), 0);
    CHECK_EQ_INT(tup.n, 1);
    const jce_tup_entry_t *e = jce_tup_find(&tup, "id");
    CHECK(e != NULL);
    CHECK(jce_tup_find(&tup, "i") == NULL);
    CHECK(jce_tup_find(&tup, "idx") == NULL);
    CHECK(jce_tup_find(&tup, "") == NULL);
    CHECK(e->value.data == buf + 11); /* zero copy */
    jce_in_t in;
    int32_t id = 0;
    jce_tup_open(e, a, &in);
    CHECK_EQ_INT(jce_get_int32(&in, 0, true, &id), 1);
    CHECK_EQ_INT(id, 7);

    n = unhex("08 0c", buf, sizeof buf);
    CHECK_EQ_INT(jce_tup_parse(buf, n, a, &tup), 0);
    CHECK_EQ_INT(tup.n, 0);
    CHECK(jce_tup_find(&tup, "id") == NULL);
    jce_arena_free(a);
}

/* The v3 testHello(7,"abc") request sBuffer and the v3 response sBuffer
 * captured from @tars/rpc (tars-wire §2.5). */
TEST(tup_parse_captured_request_and_response) {
    uint8_t buf[128];
    jce_arena_t *a = jce_arena_new(0);
    jce_tup_t tup;
    jce_in_t in;
    size_t n =
        unhex("08 00 02 06 02 69 64 1d 00 00 02 00 07 06 01 73 1d 00 00 05"
              "06 03 61 62 63",
              buf, sizeof buf);
    CHECK_EQ_INT(jce_tup_parse(buf, n, a, &tup), 0);
    CHECK_EQ_INT(tup.n, 2);
    jce_str_t s = {0};
    jce_tup_open(jce_tup_find(&tup, "s"), a, &in);
    CHECK_EQ_INT(jce_get_str(&in, 0, true, &s), 1);
    CHECK(jce_str_eq(s, JCE_STR_LIT("abc")));

    n = unhex("08 00 03 06 00 1d 00 00 01 0c"
              "06 01 72 1d 00 00 08 06 06 68 69 20 61 62 63"
              "06 01 70 1d 00 00 0b 0a 00 0e 16 03 41 42 43 20 05 0b",
              buf, sizeof buf);
    CHECK_EQ_INT(jce_tup_parse(buf, n, a, &tup), 0);
    CHECK_EQ_INT(tup.n, 3);
    int32_t ret = -1, pa = 0, pc = 0;
    jce_str_t pb;
    jce_tup_open(jce_tup_find(&tup, ""), a, &in);
    CHECK_EQ_INT(jce_get_int32(&in, 0, true, &ret), 1);
    CHECK_EQ_INT(ret, 0);
    jce_tup_open(jce_tup_find(&tup, "r"), a, &in);
    CHECK_EQ_INT(jce_get_str(&in, 0, true, &s), 1);
    CHECK(jce_str_eq(s, JCE_STR_LIT("hi abc")));
    jce_tup_open(jce_tup_find(&tup, "p"), a, &in);
    CHECK_EQ_INT(jce_get_struct_begin(&in, 0, true), 1);
    CHECK_EQ_INT(jce_get_int32(&in, 0, true, &pa), 1);
    CHECK_EQ_INT(jce_get_str(&in, 1, false, &pb), 1);
    CHECK_EQ_INT(jce_get_int32(&in, 2, false, &pc), 1);
    CHECK_EQ_INT(jce_get_struct_end(&in), 0);
    CHECK(pa == 14 && pc == 5 && jce_str_eq(pb, JCE_STR_LIT("ABC")));
    jce_arena_free(a);
}

TEST(tup_roundtrip_many) {
    jce_out_t o, v;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_out_init(&v, JCE_POLICY_CPP);
    char name[16];
    jce_tup_put_begin(&o, 300);
    for (int i = 0; i < 300; i++) {
        jce_out_reset(&v);
        jce_put_int64(&v, 0, (int64_t)i * 1000000007);
        snprintf(name, sizeof name, "k%d", i);
        jce_tup_put_entry(&o, name, &v);
    }
    CHECK_EQ_INT(o.err, 0);
    jce_arena_t *a = jce_arena_new(0);
    jce_tup_t tup;
    CHECK_EQ_INT(jce_tup_parse(o.buf, o.len, a, &tup), 0);
    CHECK_EQ_INT(tup.n, 300);
    for (int i = 0; i < 300; i += 37) {
        snprintf(name, sizeof name, "k%d", i);
        const jce_tup_entry_t *e = jce_tup_find(&tup, name);
        CHECK(e != NULL);
        jce_in_t in;
        int64_t x;
        jce_tup_open(e, a, &in);
        CHECK_EQ_INT(jce_get_int64(&in, 0, true, &x), 1);
        CHECK(x == (int64_t)i * 1000000007);
    }
    jce_arena_free(a);
    jce_out_free(&o);
    jce_out_free(&v);
}

TEST(tup_malformed_rejected) {
    static const struct {
        const char *hex;
        int err;
    } bad[] = {
        {"", JCE_ERR_REQUIRE},      /* no map at all */
        {"09 0c", JCE_ERR_TYPE},    /* a list, not a map */
        {"18 0c", JCE_ERR_REQUIRE}, /* map at tag 1 */
        {"08 00 05 06 01 61 1d 00 00 00", JCE_ERR_LIMIT}, /* count over bytes */
        {"08 00 ff", JCE_ERR_NEGATIVE},
        {"08 00 01 06 02 69 64", JCE_ERR_REQUIRE}, /* value missing */
        {"08 00 01 06 02 69 64 1d 00 00 09 00 07",
         JCE_ERR_LIMIT}, /* value cut */
        {"08 00 01 06 09 69 64 1d 00 00 02 00 07", JCE_ERR_TRUNCATED},
        {"08 00 01 00 01 1d 00 00 01 0c", JCE_ERR_TYPE}, /* key not a string */
        {"08 00 01 06 01 61 12 00 00 00 07",
         JCE_ERR_TYPE}, /* value not bytes */
        {"08 00 01 06 01 61 1d 01 00 01 0c", JCE_ERR_BAD_VALUE},
    };
    jce_arena_t *a = jce_arena_new(0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint8_t buf[64];
        size_t n = unhex(bad[i].hex, buf, sizeof buf);
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, buf, n);
        jce_tup_t tup = {(void *)1, 99};
        int r = jce_tup_parse(p, n, a, &tup);
        if (r != bad[i].err)
            fprintf(stderr, "  case %zu: %d, want %d\n", i, r, bad[i].err);
        CHECK_EQ_INT(r, bad[i].err);
        CHECK(tup.n == 0 && tup.entries == NULL);
        free(p);
    }
    jce_arena_free(a);
}

/* ---- lookup tables ----------------------------------------------------- */

static int fake_fn(const void *impl, jce_call_t *call) { return 0; }

TEST(interface_find_binary_search) {
    static const jce_method_t m[] = {
        {"ping", fake_fn},
        {"pushAllDevice", fake_fn},
        {"pushAllOnlineDevice", fake_fn},
        {"pushMultiDevice", fake_fn},
        {"pushSingleDevice", fake_fn},
        {"tars_ping", fake_fn},
    };
    static const jce_interface_t itf = {"herald.PushAPI", m, 6};
    for (size_t i = 0; i < 6; i++)
        CHECK(jce_interface_find(&itf, m[i].name, strlen(m[i].name)) == &m[i]);
    /* Names point into request bytes: not NUL-terminated, compared by len. */
    const char *req = "pushSingleDeviceXYZ";
    CHECK(jce_interface_find(&itf, req, 16) == &m[4]);
    CHECK(jce_interface_find(&itf, req, 15) == NULL);
    CHECK(jce_interface_find(&itf, req, 19) == NULL);
    CHECK(jce_interface_find(&itf, "push", 4) == NULL);
    CHECK(jce_interface_find(&itf, "", 0) == NULL);
    CHECK(jce_interface_find(&itf, "zzz", 3) == NULL);
    CHECK(jce_interface_find(&itf, "ping\0x", 6) == NULL);
    static const jce_interface_t empty = {"x.Y", NULL, 0};
    CHECK(jce_interface_find(&empty, "ping", 4) == NULL);
}

static void fake_init(void *v) { *(int *)v = 1; }

TEST(type_find) {
    static const jce_type_info_t a = {
        .name = "herald.A", .size = sizeof(int), .init = fake_init};
    static const jce_type_info_t b = {.name = "herald.B", .size = sizeof(int)};
    static const jce_type_info_t *const table[] = {&a, &b, NULL};
    CHECK(jce_type_find(table, "herald.A") == &a);
    CHECK(jce_type_find(table, "herald.B") == &b);
    CHECK(jce_type_find(table, "herald.C") == NULL);
    CHECK(jce_type_find(table, "herald") == NULL);
    int x = 0;
    jce_type_find(table, "herald.A")->init(&x);
    CHECK_EQ_INT(x, 1);
}
