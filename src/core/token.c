/*
 * token: mint, parse and verify device tokens (format in token.h).
 */
#include "core/token.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/b64.h"

static bool id_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == ':' ||
           c == '@';
}

int token_id_valid(const char *s, size_t n) {
    if (n < 1 || n > TOKEN_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!id_char((unsigned char)s[i])) return 0;
    return 1;
}

/* No ':' (the --app NAME:SECRET:APIKEY form splits there), at most 63
 * bytes (the store's fixed name fields), and no leading '-' (a name must
 * never read as a flag: `herald app create NAME`). */
int token_app_valid(const char *s, size_t n) {
    if (n < 1 || n > TOKEN_APP_MAX || s[0] == '-') return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ':' || !id_char((unsigned char)s[i])) return 0;
    return 1;
}

/* HMAC-SHA256 over msg[0..n); mac gets 32 bytes. */
static int sign(uint8_t mac[32], const uint8_t *secret, size_t secret_len,
                const char *msg, size_t n) {
    unsigned int mac_len = 0;
    /* OpenSSL rejects a NULL key even when its length is 0. */
    static const uint8_t empty[1];
    if (!HMAC(EVP_sha256(), secret_len ? secret : empty, (int)secret_len,
              (const unsigned char *)msg, n, mac, &mac_len) ||
        mac_len != 32)
        return TOKEN_ERR_CRYPTO;
    return TOKEN_OK;
}

int token_mint(char *out, size_t cap, const char *app, const char *dev,
               int64_t iat, int64_t expiry, const uint8_t *secret,
               size_t secret_len) {
    size_t al = strlen(app), dl = strlen(dev);
    if (!token_app_valid(app, al) || !token_id_valid(dev, dl) || expiry < 0 ||
        (iat != TOKEN_NO_IAT && (iat < 0 || iat > expiry)) ||
        secret_len > (size_t)INT32_MAX)
        return TOKEN_ERR_MALFORMED;
    char buf[TOKEN_MAX];
    int n = iat == TOKEN_NO_IAT
                ? snprintf(buf, sizeof buf, "%s.%s.%lld", app, dev,
                           (long long)expiry)
                : snprintf(buf, sizeof buf, "%s.%s.%lld.%lld", app, dev,
                           (long long)iat, (long long)expiry);
    if (n < 0 || (size_t)n + 1 + TOKEN_SIG_LEN + 1 > sizeof buf)
        return TOKEN_ERR_MALFORMED;
    if ((size_t)n + 1 + TOKEN_SIG_LEN + 1 > cap) return TOKEN_ERR_SPACE;
    uint8_t mac[32];
    int rc = sign(mac, secret, secret_len, buf, (size_t)n);
    if (rc) return rc;
    memcpy(out, buf, (size_t)n);
    out[n] = '.';
    b64url_encode(out + n + 1, mac, sizeof mac);
    return n + 1 + TOKEN_SIG_LEN;
}

/* Canonical decimal: 1..19 digits, no leading zero unless "0", fits. */
static bool parse_time(const char *s, size_t n, int64_t *out) {
    if (n < 1 || n > TOKEN_EXPIRY_MAX || (n > 1 && s[0] == '0')) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    /* 19 digits cannot overflow uint64_t; they can exceed INT64_MAX. */
    if (v > (uint64_t)INT64_MAX) return false;
    *out = (int64_t)v;
    return true;
}

int token_parse(const char *tok, size_t len, token_view_t *out) {
    if (len > TOKEN_MAX - 1) return TOKEN_ERR_MALFORMED;
    /* Locate the dots: three in the first form, four with an IAT.  Ids
     * have no dots, so the first two end them; the signature is whatever
     * follows the last, and has none either. */
    const char *dots[5];
    size_t nd = 0;
    for (size_t i = 0; i < len && nd < 5; i++)
        if (tok[i] == '.') dots[nd++] = tok + i;
    if (nd != 3 && nd != 4) return TOKEN_ERR_MALFORMED;
    const char *app = tok, *dev = dots[0] + 1, *sig = dots[nd - 1] + 1;
    size_t al = (size_t)(dots[0] - app), dl = (size_t)(dots[1] - dev),
           sl = (size_t)(tok + len - sig);
    if (!token_app_valid(app, al) || !token_id_valid(dev, dl) ||
        sl != TOKEN_SIG_LEN)
        return TOKEN_ERR_MALFORMED;
    int64_t iat = TOKEN_NO_IAT, expiry;
    const char *exp = dots[nd - 2] + 1;
    if (!parse_time(exp, (size_t)(dots[nd - 1] - exp), &expiry))
        return TOKEN_ERR_MALFORMED;
    if (nd == 4) {
        const char *ia = dots[1] + 1;
        if (!parse_time(ia, (size_t)(dots[2] - ia), &iat) || iat > expiry)
            return TOKEN_ERR_MALFORMED;
    }
    uint8_t mac[32];
    size_t ml;
    /* Decode now so a non-canonical or non-alphabet SIG is a syntax error
     * rather than a signature mismatch. */
    if (b64url_decode(mac, sizeof mac, sig, sl, &ml) || ml != sizeof mac)
        return TOKEN_ERR_MALFORMED;
    out->app = app;
    out->dev = dev;
    out->sig = sig;
    out->app_len = (uint8_t)al;
    out->dev_len = (uint8_t)dl;
    out->signed_len = (uint16_t)(sig - 1 - tok);
    out->iat = iat;
    out->expiry = expiry;
    return TOKEN_OK;
}

int token_verify(const token_view_t *v, const uint8_t *secret,
                 size_t secret_len, int64_t now) {
    uint8_t want[32], got[32];
    size_t gl;
    if (secret_len > (size_t)INT32_MAX) return TOKEN_ERR_BAD_SIG;
    if (b64url_decode(got, sizeof got, v->sig, TOKEN_SIG_LEN, &gl) ||
        gl != sizeof got)
        return TOKEN_ERR_MALFORMED;
    int rc = sign(want, secret, secret_len, v->app, v->signed_len);
    if (rc) return rc;
    /* Signature before expiry: a forged token learns nothing from which
     * check failed. */
    if (CRYPTO_memcmp(want, got, sizeof want) != 0) return TOKEN_ERR_BAD_SIG;
    if (now >= v->expiry) return TOKEN_ERR_EXPIRED;
    return TOKEN_OK;
}

int64_t token_lifetime(const token_view_t *v, int64_t now) {
    int64_t from = v->iat != TOKEN_NO_IAT && v->iat < now ? v->iat : now;
    /* expiry >= 0 and from >= 0 or a real clock: no overflow either way */
    return v->expiry > from ? v->expiry - from : 0;
}

int64_t token_issued_at(const token_view_t *v, int64_t max_ttl) {
    if (v->iat != TOKEN_NO_IAT) return v->iat;
    return max_ttl > 0 && v->expiry > max_ttl ? v->expiry - max_ttl : 0;
}

