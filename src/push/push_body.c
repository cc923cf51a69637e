/*
 * push_body.c: the push API's JSON request body.
 *
 * Why cJSON here when herald uses jansson everywhere else: on a 120-byte
 * push body jansson's lexer (one callback per character) took ~2.1 µs and
 * cJSON ~0.6 µs, and that parse was a fifth of the API thread's CPU per
 * push.  cJSON is laxer than JSON, so the bytes are checked first, in one
 * pass, for what it would let through:
 *   - bytes that are not UTF-8 (payloads go out in WebSocket text frames);
 *   - raw control characters in strings, and control characters other
 *     than JSON's whitespace outside them (cJSON skips any byte <= 0x20);
 *   - a \u0000 escape, or a \u without four hex digits (cJSON reads a
 *     bad digit as 0): cJSON would cut the string there without a word;
 *   - numbers outside JSON's grammar (01, +1, 1., .5) and over 63
 *     characters (cJSON's own buffer; it would read the rest as garbage);
 *   - a byte-order mark, and nesting deeper than PB_MAX_DEPTH (before
 *     cJSON recurses).
 * After the parse, every object is checked for a repeated key (which value
 * would win is anyone's guess) and every number for being finite.
 *
 * fuzz/fuzz_push_body.c holds this against jansson byte for byte.
 */
#include "push/push_body.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/ws.h"

static bool number_char(unsigned char c) {
    return isdigit(c) || c == '-' || c == '+' || c == '.' || c == 'e' ||
           c == 'E';
}

static size_t digits(const unsigned char *p, size_t n, size_t j) {
    while (j < n && isdigit(p[j])) j++;
    return j;
}

/* Length of the JSON number at p[0..n), or 0 if it is not one. */
static size_t number_len(const unsigned char *p, size_t n) {
    size_t j = p[0] == '-' ? 1 : 0;
    if (j >= n) return 0;
    if (p[j] == '0')
        j++;
    else if (p[j] >= '1' && p[j] <= '9')
        j = digits(p, n, j + 1);
    else
        return 0;
    if (j < n && p[j] == '.') {
        size_t s = j + 1;
        if ((j = digits(p, n, s)) == s) return 0;
    }
    if (j < n && (p[j] == 'e' || p[j] == 'E')) {
        size_t s = j + 1;
        if (s < n && (p[s] == '+' || p[s] == '-')) s++;
        if ((j = digits(p, n, s)) == s) return 0;
    }
    return j;
}

/* The string whose opening quote is at p[i]: index after its closing
 * quote, or a negative push_body_err. */
static long scan_string(const unsigned char *p, size_t n, size_t i) {
    for (i++; i < n; i++) {
        unsigned char c = p[i];
        if (c == '"') return (long)i + 1;
        if (c < 0x20) return PB_E_CONTROL;
        if (c != '\\') continue;
        if (++i >= n) break;
        if (p[i] != 'u') continue; /* cJSON refuses unknown escapes */
        /* cJSON reads a bad hex digit as a 0, so \u0zzz would be a NUL */
        if (i + 4 >= n || !isxdigit(p[i + 1]) || !isxdigit(p[i + 2]) ||
            !isxdigit(p[i + 3]) || !isxdigit(p[i + 4]))
            return PB_E_SYNTAX;
        if (!memcmp(p + i + 1, "0000", 4)) return PB_E_NUL;
        i += 4;
    }
    return PB_E_SYNTAX; /* unterminated */
}

static int scan(const unsigned char *p, size_t n) {
    uint8_t st[3] = {0};
    if (!ws_utf8_step(st, p, n) || st[0]) return PB_E_UTF8;
    if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        return PB_E_SYNTAX; /* a BOM: JSON text has none (RFC 8259 §8.1) */
    int depth = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '"') {
            long e = scan_string(p, n, i);
            if (e < 0) return (int)e;
            i = (size_t)e;
        } else if (c == '-' || isdigit(c)) {
            size_t k = number_len(p + i, n - i);
            if (!k || (i + k < n && number_char(p[i + k]))) return PB_E_NUMBER;
            if (k > PB_MAX_NUMBER) return PB_E_NUMBER_LONG;
            i += k;
        } else if (c == '+' || c == '.') {
            return PB_E_NUMBER;
        } else {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return PB_E_CONTROL;
            if ((c == '[' || c == '{') && ++depth > PB_MAX_DEPTH)
                return PB_E_DEPTH;
            if (c == ']' || c == '}') depth--;
            i++;
        }
    }
    return PB_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A repeated key among o's members: pairwise for the usual handful,
 * sorted beyond that (an attacker's 10,000 keys stay n log n). */
static int dup_keys(const cJSON *o) {
    size_t n = 0;
    for (const cJSON *m = o->child; m; m = m->next) n++;
    if (n <= 16) {
        for (const cJSON *a = o->child; a; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (!strcmp(a->string, b->string)) return PB_E_DUPLICATE;
        return PB_OK;
    }
    const char **k = malloc(n * sizeof *k);
    if (!k) return PB_E_NOMEM;
    size_t i = 0;
    for (const cJSON *m = o->child; m; m = m->next) k[i++] = m->string;
    qsort(k, n, sizeof *k, cmp_str);
    int rc = PB_OK;
    for (i = 1; i < n && rc == PB_OK; i++)
        if (!strcmp(k[i - 1], k[i])) rc = PB_E_DUPLICATE;
    free(k);
    return rc;
}

/* Depth is bounded by scan() (PB_MAX_DEPTH), so the recursion is too. */
static int check(const cJSON *v) {
    if (cJSON_IsNumber(v)) return isfinite(v->valuedouble) ? PB_OK : PB_E_RANGE;
    if (cJSON_IsObject(v)) {
        int rc = dup_keys(v);
        if (rc < 0) return rc;
    }
    if (cJSON_IsObject(v) || cJSON_IsArray(v))
        for (const cJSON *m = v->child; m; m = m->next) {
            int rc = check(m);
            if (rc < 0) return rc;
        }
    return PB_OK;
}

int push_body_parse(const char *buf, size_t len, cJSON **out) {
    *out = NULL;
    const unsigned char *p = (const unsigned char *)buf;
    int rc = scan(p, len);
    if (rc < 0) return rc;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (!j) return PB_E_SYNTAX; /* cJSON also fails this way on malloc */
    /* What follows the value may only be whitespace: scan() allowed no
     * other control character, so any byte above ' ' is garbage. */
    for (size_t i = (size_t)(end - buf); i < len; i++)
        if (p[i] > ' ') {
            cJSON_Delete(j);
            return PB_E_SYNTAX;
        }
    if ((rc = check(j)) < 0) {
        cJSON_Delete(j);
        return rc;
    }
    *out = j;
    return PB_OK;
}

const char *push_body_strerror(int err) {
    switch (err) {
    case PB_OK: return "ok";
    case PB_E_UTF8: return "body is not UTF-8";
    case PB_E_CONTROL: return "body has a control character in a string";
    case PB_E_NUL: return "body has \\u0000 in a string";
    case PB_E_NUMBER: return "body has a malformed number";
    case PB_E_NUMBER_LONG: return "body has a number over 63 characters";
    case PB_E_RANGE: return "body has a number out of range";
    case PB_E_DEPTH: return "body is nested over 64 levels";
    case PB_E_DUPLICATE: return "body has an object with a key twice";
    case PB_E_NOMEM: return "out of memory";
    default: return "body is not valid JSON";
    }
}
