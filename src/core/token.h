/*
 * token: device tokens (DESIGN.md §3, docs/protocol.md §1).
 *
 *   APP.DEV.IAT.EXPIRY.SIG    (what `herald token` mints)
 *   APP.DEV.EXPIRY.SIG        (the first form, still accepted)
 *
 *   APP       an app name: 1..63 characters of [A-Za-z0-9_@-], not
 *             starting with '-' (token_app_valid: the one rule for app
 *             names, used by the CLI, the config, the push service and the
 *             store, so a name that is accepted anywhere can authenticate);
 *   DEV       1..128 characters of [A-Za-z0-9_:@-];
 *             neither has a '.', so the token splits unambiguously, and
 *             nothing needs escaping in a URL query or an HTTP header;
 *   IAT       issued at, Unix seconds;
 *   EXPIRY    Unix seconds; the token is valid while now < EXPIRY;
 *             both decimal, no sign, no leading zeros, IAT <= EXPIRY;
 *   SIG       unpadded base64url of HMAC-SHA256(app secret, everything
 *             before the last '.') — always 43 characters.
 *
 * Any backend can mint tokens with a few lines of code, so the format is
 * strict and canonical: one (app, dev, iat, expiry, secret) has one token.
 * Parsing only splits and checks syntax (no secret needed, so the gateway
 * can look the app's secret up by APP first); verification recomputes the
 * MAC and compares in constant time.  What a server allows beyond that —
 * a longest lifetime, revocations — is policy: token_lifetime and
 * token_issued_at give the figures it needs.
 */
#ifndef HERALD_TOKEN_H
#define HERALD_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Errors are the TOKEN_ERR_* codes of herald_err (core/err.h). */

#define TOKEN_APP_MAX 63    /* longest APP: the store keeps < 64 bytes */
#define TOKEN_ID_MAX 128    /* longest DEV */
#define TOKEN_EXPIRY_MAX 19 /* digits of IAT or EXPIRY: fits int64_t */
#define TOKEN_SIG_LEN 43    /* base64url of 32 bytes, unpadded */
/* Longest token plus its NUL: a buffer of this size always suffices. */
#define TOKEN_MAX                                                              \
    (TOKEN_APP_MAX + TOKEN_ID_MAX + 2 * TOKEN_EXPIRY_MAX + TOKEN_SIG_LEN + 4 + \
     1)
/* iat of a token in the first form (no issue time). */
#define TOKEN_NO_IAT (-1)

/* A parsed token; every pointer borrows from the string given to
 * token_parse. */
typedef struct token_view {
    const char *app;
    const char *dev;
    const char *sig;
    uint8_t app_len;     /* 1..63 */
    uint8_t dev_len;     /* 1..128 */
    uint16_t signed_len; /* bytes before ".SIG", starting at app */
    int64_t iat;         /* TOKEN_NO_IAT in the first form */
    int64_t expiry;
} token_view_t;

/* Writes the token and a NUL into out; returns its length or a negative
 * token_err (MALFORMED for a bad app/dev, expiry < 0 or iat > expiry,
 * SPACE if cap is too small).  iat TOKEN_NO_IAT mints the first form
 * (kept for tests of old clients). */
int token_mint(char *out, size_t cap, const char *app, const char *dev,
               int64_t iat, int64_t expiry, const uint8_t *secret,
               size_t secret_len);

/* Splits and checks the syntax of tok[0..len).  0 or TOKEN_ERR_MALFORMED. */
int token_parse(const char *tok, size_t len, token_view_t *out);

/* Checks the signature (constant time) and then the expiry:
 * 0, TOKEN_ERR_BAD_SIG or TOKEN_ERR_EXPIRED. */
int token_verify(const token_view_t *v, const uint8_t *secret,
                 size_t secret_len, int64_t now);

/* How long the token is good for, counted from when it was issued or from
 * now, whichever is earlier (a first-form token: from now; an IAT in the
 * future does not shorten it).  A server refuses a token whose lifetime
 * is over its maximum. */
int64_t token_lifetime(const token_view_t *v, int64_t now);

/* When the token was issued, for revocations ("tokens issued before T are
 * refused"): its IAT, or for the first form EXPIRY - max_ttl, the earliest
 * a token within the server's maximum lifetime can have been issued, so
 * that every such token issued before a revocation counts as revoked. */
int64_t token_issued_at(const token_view_t *v, int64_t max_ttl);

/* True if s[0..n) is a valid APP: the one rule for application names. */
int token_app_valid(const char *s, size_t n);
/* True if s[0..n) is a valid DEV (device id). */
int token_id_valid(const char *s, size_t n);

#endif
