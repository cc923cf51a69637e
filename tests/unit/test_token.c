/* Unit tests: src/core/token.c and src/core/b64.c. */
#include <stdint.h>
#include <string.h>

#include "core/b64.h"
#include "core/token.h"
#include "test.h"

#define KEY "herald-test-secret"
#define KEYP ((const uint8_t *)KEY)
#define KEYN (sizeof KEY - 1)

/* Independent vector:
 *   printf '%s' 'demo.dev-42.1767225600' \
 *     | openssl dgst -sha256 -hmac 'herald-test-secret' -binary \
 *     | openssl base64 -A | tr '+/' '-_' | tr -d '='                      */
#define VEC "demo.dev-42.1767225600.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M"
/* Same with an empty key and every id character class (':' only in DEV):
 *   printf '%s' 'X-9.a_b:c@d.0' | openssl dgst -sha256 -hmac '' -binary ... */
#define VEC2 "X-9.a_b:c@d.0.TzNvqDfkzBVCQ9VQSEkhyDG3_OeKf-pNLAsJvPzpBgA"
/* The form with an issue time (IAT one day before EXPIRY):
 *   printf '%s' 'demo.dev-42.1767139200.1767225600' | openssl dgst ... */
#define VEC3                             \
    "demo.dev-42.1767139200.1767225600." \
    "G6-GEVxwGk6kYYHiH1Kxa_cMNEJgUB2wTw0D4vEnVTE"

/* ---- b64 ---- */

TEST(b64_rfc4648_vectors) {
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *std[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *url[] = {"",       "Zg",      "Zm8",     "Zm9v",
                                "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char out[16];
        uint8_t back[16];
        size_t n = strlen(in[i]), bl;
        CHECK_EQ_INT(b64_encode(out, (const uint8_t *)in[i], n),
                     B64_ENC_LEN(n));
        CHECK(strcmp(out, std[i]) == 0);
        CHECK_EQ_INT(b64url_encode(out, (const uint8_t *)in[i], n),
                     B64URL_ENC_LEN(n));
        CHECK(strcmp(out, url[i]) == 0);
        CHECK_EQ_INT(b64_decode(back, sizeof back, std[i], strlen(std[i]), &bl),
                     0);
        CHECK_EQ_INT(bl, n);
        CHECK(memcmp(back, in[i], n) == 0);
        CHECK_EQ_INT(
            b64url_decode(back, sizeof back, url[i], strlen(url[i]), &bl), 0);
        CHECK_EQ_INT(bl, n);
        CHECK(memcmp(back, in[i], n) == 0);
    }
}

TEST(b64_alphabets_differ) {
    const uint8_t v[3] = {0xfb, 0xff, 0xbf};
    char out[8];
    b64_encode(out, v, 3);
    CHECK(strcmp(out, "+/+/") == 0);
    b64url_encode(out, v, 3);
    CHECK(strcmp(out, "-_-_") == 0);
    uint8_t back[4];
    size_t bl;
    CHECK_EQ_INT(b64_decode(back, 4, "-_-_", 4, &bl), B64_ERR_CHAR);
    CHECK_EQ_INT(b64url_decode(back, 4, "+/+/", 4, &bl), B64_ERR_CHAR);
}

TEST(b64_strict_rejects) {
    uint8_t out[16];
    size_t n;
    CHECK_EQ_INT(b64_decode(out, 16, "Zg=", 3, &n), B64_ERR_LEN);
    CHECK_EQ_INT(b64_decode(out, 16, "Zg", 2, &n), B64_ERR_LEN); /* unpadded */
    CHECK_EQ_INT(b64_decode(out, 16, "Zh==", 4, &n), B64_ERR_PAD); /* bits */
    CHECK_EQ_INT(b64_decode(out, 16, "Z===", 4, &n), B64_ERR_PAD);
    CHECK_EQ_INT(b64_decode(out, 16, "====", 4, &n), B64_ERR_PAD);
    CHECK_EQ_INT(b64_decode(out, 16, "Zg=A", 4, &n), B64_ERR_PAD);
    CHECK_EQ_INT(b64_decode(out, 16, "Zm 9", 4, &n), B64_ERR_CHAR);
    CHECK_EQ_INT(b64_decode(out, 2, "Zm9v", 4, &n), B64_ERR_SPACE);
    CHECK_EQ_INT(b64url_decode(out, 16, "Z", 1, &n), B64_ERR_LEN);
    CHECK_EQ_INT(b64url_decode(out, 16, "Zh", 2, &n), B64_ERR_PAD);
    CHECK_EQ_INT(b64url_decode(out, 16, "Zg==", 4, &n), B64_ERR_PAD);
    CHECK(strcmp(herald_strerror(B64_ERR_PAD), "bad base64 padding") == 0);
}

TEST(b64_roundtrip_all_lengths) {
    uint8_t in[64], back[64];
    char enc[B64_ENC_LEN(64) + 1];
    for (int i = 0; i < 64; i++) in[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= 64; n++) {
        size_t bl, el = b64_encode(enc, in, n);
        CHECK_EQ_INT(b64_decode(back, sizeof back, enc, el, &bl), 0);
        CHECK_EQ_INT(bl, n);
        CHECK(memcmp(in, back, n) == 0);
        el = b64url_encode(enc, in, n);
        CHECK_EQ_INT(b64url_decode(back, sizeof back, enc, el, &bl), 0);
        CHECK_EQ_INT(bl, n);
        CHECK(memcmp(in, back, n) == 0);
    }
}

/* ---- token ---- */

TEST(token_mint_matches_openssl_vector) {
    char t[TOKEN_MAX];
    int n = token_mint(t, sizeof t, "demo", "dev-42", TOKEN_NO_IAT, 1767225600,
                       KEYP, KEYN);
    CHECK_EQ_INT(n, (int)strlen(VEC));
    CHECK(strcmp(t, VEC) == 0);
    n = token_mint(t, sizeof t, "X-9", "a_b:c@d", TOKEN_NO_IAT, 0,
                   (const uint8_t *)"", 0);
    CHECK(n > 0);
    CHECK(strcmp(t, VEC2) == 0);
}

TEST(token_parse_fields) {
    token_view_t v;
    const char *t = VEC;
    CHECK_EQ_INT(token_parse(t, strlen(t), &v), 0);
    CHECK_EQ_INT(v.app_len, 4);
    CHECK(memcmp(v.app, "demo", 4) == 0);
    CHECK_EQ_INT(v.dev_len, 6);
    CHECK(memcmp(v.dev, "dev-42", 6) == 0);
    CHECK_EQ_INT(v.expiry, 1767225600);
    CHECK_EQ_INT(v.signed_len, strlen("demo.dev-42.1767225600"));
    CHECK(v.app == t);
    CHECK(v.sig == &t[v.signed_len + 1]);
}

TEST(token_verify_ok_expired_forged) {
    token_view_t v;
    CHECK_EQ_INT(token_parse(VEC, strlen(VEC), &v), 0);
    CHECK_EQ_INT(token_verify(&v, KEYP, KEYN, 1767225599), TOKEN_OK);
    CHECK_EQ_INT(token_verify(&v, KEYP, KEYN, 1767225600), TOKEN_ERR_EXPIRED);
    CHECK_EQ_INT(token_verify(&v, KEYP, KEYN, 1900000000), TOKEN_ERR_EXPIRED);
    CHECK_EQ_INT(token_verify(&v, (const uint8_t *)"other", 5, 0),
                 TOKEN_ERR_BAD_SIG);
    /* A forged and expired token reports the forgery, not the expiry. */
    CHECK_EQ_INT(token_verify(&v, (const uint8_t *)"other", 5, 1900000000),
                 TOKEN_ERR_BAD_SIG);
    CHECK_EQ_INT(token_parse(VEC2, strlen(VEC2), &v), 0);
    CHECK_EQ_INT(token_verify(&v, (const uint8_t *)"", 0, -1), TOKEN_OK);
    CHECK_EQ_INT(token_verify(&v, (const uint8_t *)"", 0, 0),
                 TOKEN_ERR_EXPIRED);
}

TEST(token_tampering_detected) {
    /* Changing any one character of the signed part or the signature
     * either breaks the syntax or the signature, never passes. */
    char t[sizeof VEC];
    size_t n = strlen(VEC);
    for (size_t i = 0; i < n; i++) {
        memcpy(t, VEC, sizeof VEC);
        if (t[i] == '.') continue;
        t[i] = t[i] == 'A' ? 'B' : (t[i] == '9' ? '8' : 'A');
        token_view_t v;
        int rc = token_parse(t, n, &v);
        if (rc == 0) rc = token_verify(&v, KEYP, KEYN, 0);
        CHECK(rc == TOKEN_ERR_BAD_SIG || rc == TOKEN_ERR_MALFORMED);
    }
}

TEST(token_parse_rejects_malformed) {
    static const char *bad[] = {
        "",
        "demo",
        "demo.dev.1",
        "demo.dev.1.",
        ".dev.1.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",  /* empty app */
        "demo..1.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M", /* empty dev */
        "demo.dev..Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",
        "demo.dev.01.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",
        "demo.dev.-1.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",
        "demo.dev.+1.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",
        "demo.dev.1x.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",
        "demo.dev.9223372036854775808."
        "Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",
        "demo.dev.12345678901234567890."
        "Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",
        "de mo.dev.1.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",
        "demo.d/v.1.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",
        "demo.dev.1.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74",   /* 42 */
        "demo.dev.1.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74MA", /* 44 */
        "demo.dev.1.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74N",  /* bits */
        "demo.dev.1.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog7+M",  /* std */
        "demo.dev.1.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZo.74M",  /* 4 dots */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        token_view_t v;
        if (token_parse(bad[i], strlen(bad[i]), &v) != TOKEN_ERR_MALFORMED) {
            fprintf(stderr, "  accepted: %s\n", bad[i]);
            CHECK(0);
        }
    }
    /* An embedded NUL is not a valid id character. */
    token_view_t v;
    const char nul[] =
        "de\0o.dev-42.1767225600.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M";
    CHECK_EQ_INT(token_parse(nul, sizeof nul - 1, &v), TOKEN_ERR_MALFORMED);
}

TEST(token_id_length_limits) {
    char app[TOKEN_APP_MAX + 2], id[TOKEN_ID_MAX + 2];
    memset(app, 'a', sizeof app);
    memset(id, 'x', sizeof id);
    app[TOKEN_APP_MAX] = '\0';
    id[TOKEN_ID_MAX] = '\0';
    char t[TOKEN_MAX];
    int n = token_mint(t, sizeof t, app, id, INT64_MAX, INT64_MAX, KEYP, KEYN);
    CHECK(n > 0);
    CHECK_EQ_INT(n, TOKEN_MAX - 1); /* the longest token fits exactly */
    token_view_t v;
    CHECK_EQ_INT(token_parse(t, (size_t)n, &v), 0);
    CHECK_EQ_INT(v.app_len, TOKEN_APP_MAX);
    CHECK_EQ_INT(v.dev_len, TOKEN_ID_MAX);
    CHECK_EQ_INT(v.iat, INT64_MAX);
    CHECK_EQ_INT(v.expiry, INT64_MAX);
    CHECK_EQ_INT(token_verify(&v, KEYP, KEYN, INT64_MAX - 1), 0);
    app[TOKEN_APP_MAX] = 'a';
    app[TOKEN_APP_MAX + 1] = '\0';
    CHECK_EQ_INT(token_mint(t, sizeof t, app, "d", TOKEN_NO_IAT, 1, KEYP, KEYN),
                 TOKEN_ERR_MALFORMED);
    id[TOKEN_ID_MAX] = 'x';
    id[TOKEN_ID_MAX + 1] = '\0';
    CHECK_EQ_INT(token_mint(t, sizeof t, "a", id, TOKEN_NO_IAT, 1, KEYP, KEYN),
                 TOKEN_ERR_MALFORMED);
    CHECK_EQ_INT(token_mint(t, sizeof t, "", "d", TOKEN_NO_IAT, 1, KEYP, KEYN),
                 TOKEN_ERR_MALFORMED);
    CHECK_EQ_INT(
        token_mint(t, sizeof t, "a.b", "d", TOKEN_NO_IAT, 1, KEYP, KEYN),
        TOKEN_ERR_MALFORMED);
    CHECK_EQ_INT(
        token_mint(t, sizeof t, "a", "d", TOKEN_NO_IAT, -1, KEYP, KEYN),
        TOKEN_ERR_MALFORMED);
    CHECK_EQ_INT(token_mint(t, sizeof t, "a", "d", 2, 1, KEYP, KEYN),
                 TOKEN_ERR_MALFORMED); /* issued after it expires */
    CHECK_EQ_INT(token_mint(t, 20, "demo", "dev-42", TOKEN_NO_IAT, 1767225600,
                            KEYP, KEYN),
                 TOKEN_ERR_SPACE);
    /* Exactly enough room, NUL included. */
    CHECK_EQ_INT(token_mint(t, sizeof VEC, "demo", "dev-42", TOKEN_NO_IAT,
                            1767225600, KEYP, KEYN),
                 (int)sizeof VEC - 1);
}

/* One rule for app names (issue 12): what the store keeps (< 64 bytes),
 * what the --app NAME:SECRET:APIKEY form can split (no ':'), what can
 * never read as a flag (no leading '-'), and no '.' or space: a name
 * that passes can always authenticate a device. */
TEST(token_app_name_rule) {
    static const char *good[] = {"a",   "demo", "my-app", "my_app",
                                 "a@b", "_x",   "9",      "A-Z_0-9@"};
    static const char *bad[] = {"",      "bad name", "my.app", "a:b", "-x",
                                "tab\t", "é",        "a/b",    "a$b"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK(token_app_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (token_app_valid(bad[i], strlen(bad[i]))) {
            fprintf(stderr, "  accepted app name: %s\n", bad[i]);
            CHECK(0);
        }
    }
    char longest[65];
    memset(longest, 'n', 64);
    longest[64] = 0;
    CHECK(!token_app_valid(longest, 64));
    CHECK(token_app_valid(longest, 63));
    /* Device ids keep their wider rule: ':' and a leading '-' are fine. */
    CHECK(token_id_valid("-a:b", 4));
    /* A token of a name that breaks the rule does not parse. */
    token_view_t v;
    const char *t =
        "a:b.dev.1767225600.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M";
    CHECK_EQ_INT(token_parse(t, strlen(t), &v), TOKEN_ERR_MALFORMED);
}

TEST(token_iat_form) {
    char t[TOKEN_MAX];
    int n = token_mint(t, sizeof t, "demo", "dev-42", 1767139200, 1767225600,
                       KEYP, KEYN);
    CHECK_EQ_INT(n, (int)strlen(VEC3));
    CHECK(strcmp(t, VEC3) == 0);
    token_view_t v;
    CHECK_EQ_INT(token_parse(VEC3, strlen(VEC3), &v), 0);
    CHECK_EQ_INT(v.iat, 1767139200);
    CHECK_EQ_INT(v.expiry, 1767225600);
    CHECK_EQ_INT(v.signed_len, strlen("demo.dev-42.1767139200.1767225600"));
    CHECK_EQ_INT(token_verify(&v, KEYP, KEYN, 1767225599), TOKEN_OK);
    CHECK_EQ_INT(token_verify(&v, KEYP, KEYN, 1767225600), TOKEN_ERR_EXPIRED);
    /* The signature covers the issue time: moving it breaks the token. */
    char moved[sizeof VEC3];
    memcpy(moved, VEC3, sizeof VEC3);
    moved[strlen("demo.dev-42.176713920")] = '1';
    CHECK_EQ_INT(token_parse(moved, strlen(moved), &v), 0);
    CHECK_EQ_INT(token_verify(&v, KEYP, KEYN, 1767139300), TOKEN_ERR_BAD_SIG);
    /* Issued after its expiry, leading zeros, signs: malformed. */
    static const char *bad[] = {
        "demo.dev.2.1.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",
        "demo.dev.01.2.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",
        "demo.dev.-1.2.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",
        "demo.dev..2.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",
        "demo.dev.1.2.3.Ik6cehpxFwhd9NHQXxRqz38hUdl4jOS6k5L6DZog74M",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(token_parse(bad[i], strlen(bad[i]), &v),
                     TOKEN_ERR_MALFORMED);
}

/* The figures a server's policy needs: a token's lifetime (for
 * --token-max-ttl) and its issue time (for revocations). */
TEST(token_lifetime_and_issue_time) {
    token_view_t v = {.iat = 1000, .expiry = 1000 + 86400};
    CHECK_EQ_INT(token_lifetime(&v, 1500), 86400); /* from IAT */
    CHECK_EQ_INT(token_lifetime(&v, 900), 86500);  /* IAT ahead of us */
    CHECK_EQ_INT(token_issued_at(&v, 30 * 86400), 1000);
    v.iat = TOKEN_NO_IAT;
    CHECK_EQ_INT(token_lifetime(&v, 1000), 86400); /* first form: from now */
    CHECK_EQ_INT(token_lifetime(&v, 200000), 0);   /* expired */
    /* First form: the earliest a token within the maximum was issued. */
    CHECK_EQ_INT(token_issued_at(&v, 3600), 1000 + 86400 - 3600);
    CHECK_EQ_INT(token_issued_at(&v, 10 * 86400), 0);
    /* 2^63-1 and +100 years: lifetimes a maximum can refuse. */
    v.expiry = INT64_MAX;
    CHECK(token_lifetime(&v, 1767225600) > 30 * 86400);
    v.iat = 1767225600;
    v.expiry = 1767225600 + 100LL * 365 * 86400;
    CHECK(token_lifetime(&v, 1767225600) > 30 * 86400);
}

TEST(token_strerror_names) {
    CHECK(strcmp(herald_strerror(TOKEN_ERR_EXPIRED), "token expired") == 0);
    CHECK(strcmp(herald_strerror(TOKEN_ERR_BAD_SIG), "bad token signature") ==
          0);
    CHECK(strcmp(herald_strerror(12345), "unknown error") == 0);
}
