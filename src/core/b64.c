/*
 * b64: strict base64 / base64url codecs (see b64.h for the contract).
 */
#include "core/b64.h"

#include <stdbool.h>

static const char STD_ALPHA[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char URL_ALPHA[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t encode(char *out, const uint8_t *in, size_t n, const char *alpha,
                     bool pad) {
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = alpha[(v >> 6) & 63];
        out[o++] = alpha[v & 63];
    }
    size_t rest = n - i;
    if (rest) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (rest == 2) v |= (uint32_t)in[i + 1] << 8;
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        if (rest == 2) out[o++] = alpha[(v >> 6) & 63];
        if (pad) {
            if (rest == 1) out[o++] = '=';
            out[o++] = '=';
        }
    }
    out[o] = '\0';
    return o;
}

size_t b64_encode(char *out, const uint8_t *in, size_t n) {
    return encode(out, in, n, STD_ALPHA, true);
}

size_t b64url_encode(char *out, const uint8_t *in, size_t n) {
    return encode(out, in, n, URL_ALPHA, false);
}

/* Value of c in the alphabet, or -1.  A switch on ranges rather than a
 * 256-byte table: no shared table to initialise, and fast enough for tokens
 * and handshake keys. */
static int sextet(unsigned char c, bool url) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == (url ? '-' : '+')) return 62;
    if (c == (url ? '_' : '/')) return 63;
    return -1;
}

/* Decodes n characters without padding (n % 4 != 1). */
static int decode(uint8_t *out, size_t cap, const char *in, size_t n, bool url,
                  size_t *out_len) {
    if (n % 4 == 1) return B64_ERR_LEN;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap) return B64_ERR_SPACE;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = sextet((unsigned char)in[i], url);
        if (v < 0) return in[i] == '=' ? B64_ERR_PAD : B64_ERR_CHAR;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Left-over bits must be zero, or two inputs would decode alike. */
    if (acc != 0) return B64_ERR_PAD;
    *out_len = o;
    return B64_OK;
}

int b64_decode(uint8_t *out, size_t cap, const char *in, size_t n,
               size_t *out_len) {
    if (n % 4) return B64_ERR_LEN;
    size_t pad = 0;
    if (n && in[n - 1] == '=') {
        pad++;
        if (in[n - 2] == '=') pad++;
    }
    return decode(out, cap, in, n - pad, false, out_len);
}

int b64url_decode(uint8_t *out, size_t cap, const char *in, size_t n,
                  size_t *out_len) {
    return decode(out, cap, in, n, true, out_len);
}

