/*
 * token: device tokens, `APP.DEV.EXPIRY.SIG` (DESIGN.md §3, docs/protocol.md).
 *
 *   APP, DEV  1..128 characters of [A-Za-z0-9_:@-] (no '.', so the token
 *             splits unambiguously, and nothing that needs escaping in a
 *             URL query or an HTTP header);
 *   EXPIRY    Unix seconds, decimal, no sign, no leading zeros; the token is
 *             valid while now < EXPIRY;
 *   SIG       unpadded base64url of HMAC-SHA256(app secret, "APP.DEV.EXPIRY")
 *             — always 43 characters.
 *
 * Any backend can mint tokens with a few lines of code, so the format is
 * strict and canonical: one (app, dev, expiry, secret) has one token.
 * Parsing only splits and checks syntax (no secret needed, so the gateway
 * can look the app's secret up by APP first); verification recomputes the
 * MAC and compares in constant time.
 */
#ifndef HERALD_TOKEN_H
#define HERALD_TOKEN_H

#include <stddef.h>
#include <stdint.h>

enum token_err {
    TOKEN_OK = 0,
    TOKEN_ERR_MALFORMED = -1, /* syntax: parts, charset, lengths, digits */
    TOKEN_ERR_BAD_SIG = -2,   /* signature does not match */
    TOKEN_ERR_EXPIRED = -3,   /* signature good, now >= expiry */
    TOKEN_ERR_SPACE = -4,     /* mint: output buffer too small */
    TOKEN_ERR_CRYPTO = -5,    /* OpenSSL failed (should not happen) */
};

#define TOKEN_ID_MAX 128       /* longest APP or DEV */
#define TOKEN_EXPIRY_MAX 19    /* digits: fits int64_t */
#define TOKEN_SIG_LEN 43       /* base64url of 32 bytes, unpadded */
/* Longest token plus its NUL: a buffer of this size always suffices. */
#define TOKEN_MAX (TOKEN_ID_MAX * 2 + TOKEN_EXPIRY_MAX + TOKEN_SIG_LEN + 3 + 1)

/* A parsed token; every pointer borrows from the string given to
 * token_parse. */
typedef struct token_view {
    const char *app;
    const char *dev;
    const char *sig;
    uint8_t app_len;  /* 1..128 */
    uint8_t dev_len;  /* 1..128 */
    uint16_t signed_len; /* bytes of "APP.DEV.EXPIRY", starting at app */
    int64_t expiry;
} token_view_t;

/* Writes the token and a NUL into out; returns its length or a negative
 * token_err (MALFORMED for a bad app/dev/expiry < 0, SPACE if cap is too
 * small). */
int token_mint(char *out, size_t cap, const char *app, const char *dev,
               int64_t expiry, const uint8_t *secret, size_t secret_len);

/* Splits and checks the syntax of tok[0..len).  0 or TOKEN_ERR_MALFORMED. */
int token_parse(const char *tok, size_t len, token_view_t *out);

/* Checks the signature (constant time) and then the expiry:
 * 0, TOKEN_ERR_BAD_SIG or TOKEN_ERR_EXPIRED. */
int token_verify(const token_view_t *v, const uint8_t *secret,
                 size_t secret_len, int64_t now);

/* True if s[0..n) is a valid APP or DEV. */
int token_id_valid(const char *s, size_t n);

const char *token_strerror(int err);

#endif
