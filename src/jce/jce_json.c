/*
 * jce_json.c: the strict JSON reader of the IDL's structs (jce_json.h).
 *
 * Why herald reads JSON itself instead of through a packaged library: the
 * push API's bodies are on its hottest path, and a packaged reader builds
 * a tree that is then copied field by field into the struct.  Measured with
 * callgrind on a 120-byte push body (bench/RESULTS.md, "One JSON path"):
 * jansson ~22,300 instructions, cJSON behind the strict pre-scan herald
 * needed on top of it ~7,900, this reader ~3,500, straight into the
 * struct.  It reads only what jce2c describes (the IDL's structs), so it
 * stays small: a recursive descent over the text, one function per JSON
 * value kind, each bounded by the depth limit.
 *
 * Strings are checked as UTF-8 (no overlong forms, no surrogates, nothing
 * over U+10FFFF), escapes too (a \uD800 must pair with a \uDC00..DFFF);
 * numbers by RFC 8259's grammar.  Every object's keys are compared, also
 * in values that no field takes.  fuzz/fuzz_push_body.c and
 * fuzz/fuzz_device_json.c hold this file against jansson
 * (fuzz/json_oracle.h).
 */
#include "jce/jce_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define K(kind, type) \
    { kind, sizeof(type), NULL, NULL, NULL, NULL, 0 }
const jce_json_type_t jce_json_bool = K(JCE_JSON_BOOL, bool),
                      jce_json_int8 = K(JCE_JSON_INT8, int8_t),
                      jce_json_uint8 = K(JCE_JSON_UINT8, uint8_t),
                      jce_json_int16 = K(JCE_JSON_INT16, int16_t),
                      jce_json_uint16 = K(JCE_JSON_UINT16, uint16_t),
                      jce_json_int32 = K(JCE_JSON_INT32, int32_t),
                      jce_json_uint32 = K(JCE_JSON_UINT32, uint32_t),
                      jce_json_int64 = K(JCE_JSON_INT64, int64_t),
                      jce_json_float = K(JCE_JSON_FLOAT, float),
                      jce_json_double = K(JCE_JSON_DOUBLE, double),
                      jce_json_string = K(JCE_JSON_STRING, jce_str_t),
                      jce_json_bytes = K(JCE_JSON_BYTES, jce_bytes_t);
#undef K

typedef struct rd {
    const unsigned char *p, *end, *text;
    jce_arena_t *a;       /* the caller's: what the struct points to */
    jce_arena_t *scratch; /* keys of skipped objects when there is no a */
    int flags, depth, max_depth;
    int reason; /* the first refusal of the text: stops the reader */
    int code;   /* the first field error: the reader goes on */
    int top;    /* index of the top-level field being read, or -1 */
    uint64_t seen, bad;
} rd_t;

/* The generated vector and map layouts. */
typedef struct vec {
    void *items;
    uint32_t n;
} vec_t;
typedef struct map {
    void *keys, *vals;
    uint32_t n;
} map_t;

static int value(rd_t *r, const jce_json_type_t *t, void *dst);

static int refuse(rd_t *r, int reason) {
    if (!r->reason) r->reason = reason;
    return -1;
}

static void field_fail(rd_t *r, int code) {
    if (!r->code) r->code = code;
    if (r->top >= 0 && r->top < 64) r->bad |= UINT64_C(1) << r->top;
}

static void *tmp_alloc(rd_t *r, size_t n) {
    if (r->a) return jce_arena_alloc(r->a, n);
    if (!r->scratch && !(r->scratch = jce_arena_new(0))) return NULL;
    return jce_arena_alloc(r->scratch, n);
}

static int peek(const rd_t *r) { return r->p < r->end ? *r->p : -1; }

static void ws(rd_t *r) {
    while (r->p < r->end &&
           (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

/* Length of the UTF-8 sequence at p (first byte >= 0x80), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0; /* overlong */
        if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90; /* overlong */
        if (c == 0xF4) hi = 0x8F; /* over U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return n;
}

/* A byte where no JSON token may start, told apart for the client. */
static int unexpected(rd_t *r) {
    if (r->p >= r->end) return refuse(r, JCE_JSON_E_SYNTAX);
    unsigned c = *r->p;
    if (c < 0x20) return refuse(r, JCE_JSON_E_CONTROL);
    if (c >= 0x80 && !utf8_len(r->p, r->end)) return refuse(r, JCE_JSON_E_UTF8);
    return refuse(r, JCE_JSON_E_SYNTAX);
}

static int hexval(unsigned c) {
    if (c - '0' < 10) return (int)(c - '0');
    c |= 0x20;
    if (c - 'a' < 6) return (int)(c - 'a' + 10);
    return -1;
}

static long hex4(const unsigned char *p) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hexval(p[i]);
        if (d < 0) return -1;
        v = v << 4 | d;
    }
    return v;
}

static size_t utf8_put(char *o, unsigned long u) {
    if (u < 0x80) {
        o[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        o[0] = (char)(0xC0 | u >> 6);
        o[1] = (char)(0x80 | (u & 0x3F));
        return 2;
    }
    if (u < 0x10000) {
        o[0] = (char)(0xE0 | u >> 12);
        o[1] = (char)(0x80 | ((u >> 6) & 0x3F));
        o[2] = (char)(0x80 | (u & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | u >> 18);
    o[1] = (char)(0x80 | ((u >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((u >> 6) & 0x3F));
    o[3] = (char)(0x80 | (u & 0x3F));
    return 4;
}

/* Decodes the escapes of s[0..e), already checked by string(). */
static size_t unescape(char *d, const unsigned char *s,
                       const unsigned char *e) {
    char *o = d;
    while (s < e) {
        if (*s != '\\') {
            *o++ = (char)*s++;
            continue;
        }
        s++;
        switch (*s++) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned long u = (unsigned long)hex4(s);
            s += 4;
            if (u >= 0xD800 && u <= 0xDBFF) {
                unsigned long l = (unsigned long)hex4(s + 2);
                s += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (l - 0xDC00);
            }
            o += utf8_put(o, u);
            break;
        }
        default: *o++ = (char)s[-1]; /* " \ / */
        }
    }
    return (size_t)(o - d);
}

/* The string whose opening quote is at r->p: checked, and when out is not
 * NULL its value: a view into the text when it has no escape, else
 * decoded into the arena. */
static int string(rd_t *r, jce_str_t *out) {
    const unsigned char *s = ++r->p, *p = s, *end = r->end;
    bool esc = false;
    for (;;) {
        if (p >= end) goto syntax;
        unsigned c = *p;
        if (c == '"') break;
        if (c < 0x20) {
            r->p = p;
            return refuse(r, JCE_JSON_E_CONTROL);
        }
        if (c >= 0x80) {
            size_t n = utf8_len(p, end);
            if (!n) {
                r->p = p;
                return refuse(r, JCE_JSON_E_UTF8);
            }
            p += n;
            continue;
        }
        if (c != '\\') {
            p++;
            continue;
        }
        esc = true;
        if (++p >= end) goto syntax;
        switch (*p) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't': p++; continue;
        case 'u': break;
        default: goto syntax;
        }
        long u = end - p >= 5 ? hex4(p + 1) : -1;
        if (u < 0) goto syntax;
        if (u == 0 && !(r->flags & JCE_JSON_LAX)) {
            r->p = p;
            return refuse(r, JCE_JSON_E_NUL);
        }
        p += 5;
        if (u >= 0xDC00 && u <= 0xDFFF) goto syntax; /* a lone low half */
        if (u >= 0xD800 && u <= 0xDBFF) {
            long l =
                end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2) : -1;
            if (l < 0xDC00 || l > 0xDFFF) goto syntax;
            p += 6;
        }
    }
    r->p = p + 1;
    if (!out) return 0;
    size_t n = (size_t)(p - s);
    if (!esc) {
        out->data = (const char *)s;
        out->len = (uint32_t)n;
        return 0;
    }
    char *d = tmp_alloc(r, n);
    if (!d) return refuse(r, JCE_JSON_E_NOMEM);
    out->data = d;
    out->len = (uint32_t)unescape(d, s, p);
    return 0;
syntax:
    r->p = p;
    return refuse(r, JCE_JSON_E_SYNTAX);
}

/* ---- numbers ------------------------------------------------------------ */

typedef struct num {
    const unsigned char *s;
    size_t n;
    bool integer; /* no fraction, no exponent */
} num_t;

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static double num_double(const num_t *n) {
    char b[JCE_JSON_MAX_NUMBER + 1];
    memcpy(b, n->s, n->n);
    b[n->n] = 0;
    return strtod(b, NULL);
}

/* The number at r->p by RFC 8259's grammar, at most JCE_JSON_MAX_NUMBER
 * characters, finite as a double. */
static int number(rd_t *r, num_t *out) {
    const unsigned char *s = r->p, *p = s, *end = r->end, *d;
    bool integer = true, exp = false;
    if (*p == '-') p++;
    if (p < end && *p == '0')
        p++;
    else if (p < end && *p >= '1' && *p <= '9')
        while (p < end && is_digit(*p)) p++;
    else
        goto bad;
    if (p < end && *p == '.') {
        integer = false;
        for (d = ++p; p < end && is_digit(*p);) p++;
        if (p == d) goto bad;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = false, exp = true;
        if (++p < end && (*p == '+' || *p == '-')) p++;
        for (d = p; p < end && is_digit(*p);) p++;
        if (p == d) goto bad;
    }
    if (p < end && (is_digit(*p) || *p == '-' || *p == '+' || *p == '.' ||
                    *p == 'e' || *p == 'E'))
        goto bad;
    r->p = p;
    out->s = s;
    out->n = (size_t)(p - s);
    out->integer = integer;
    if (out->n > JCE_JSON_MAX_NUMBER) return refuse(r, JCE_JSON_E_NUMBER_LONG);
    /* Without an exponent 63 digits stay far below DBL_MAX. */
    if (exp && isinf(num_double(out))) return refuse(r, JCE_JSON_E_RANGE);
    return 0;
bad:
    r->p = s;
    return refuse(r, JCE_JSON_E_NUMBER);
}

static bool num_int(const num_t *n, int64_t *v) {
    const unsigned char *p = n->s, *e = p + n->n;
    bool neg = *p == '-';
    uint64_t x = 0;
    for (p += neg; p < e; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (x > (UINT64_MAX - d) / 10) return false;
        x = x * 10 + d;
    }
    if (!neg && x > (uint64_t)INT64_MAX) return false;
    if (neg && x > (uint64_t)INT64_MAX + 1) return false;
    *v = !neg                           ? (int64_t)x
         : x == (uint64_t)INT64_MAX + 1 ? INT64_MIN
                                        : -(int64_t)x;
    return true;
}

static void put_number(rd_t *r, const jce_json_type_t *t, const num_t *n,
                       void *dst) {
    int k = t->kind;
    if (k == JCE_JSON_FLOAT || k == JCE_JSON_DOUBLE) {
        double d = num_double(n);
        if (k == JCE_JSON_FLOAT)
            *(float *)dst = (float)d;
        else
            *(double *)dst = d;
        return;
    }
    if (k < JCE_JSON_INT8 || k > JCE_JSON_INT64 || !n->integer) {
        field_fail(r, JCE_ERR_TYPE);
        return;
    }
    int64_t v;
    if (!num_int(n, &v)) goto limit;
    switch (k) {
    case JCE_JSON_INT8:
        if (v < INT8_MIN || v > INT8_MAX) goto limit;
        *(int8_t *)dst = (int8_t)v;
        return;
    case JCE_JSON_UINT8:
        if (v < 0 || v > UINT8_MAX) goto limit;
        *(uint8_t *)dst = (uint8_t)v;
        return;
    case JCE_JSON_INT16:
        if (v < INT16_MIN || v > INT16_MAX) goto limit;
        *(int16_t *)dst = (int16_t)v;
        return;
    case JCE_JSON_UINT16:
        if (v < 0 || v > UINT16_MAX) goto limit;
        *(uint16_t *)dst = (uint16_t)v;
        return;
    case JCE_JSON_INT32:
        if (v < INT32_MIN || v > INT32_MAX) goto limit;
        *(int32_t *)dst = (int32_t)v;
        return;
    case JCE_JSON_UINT32:
        if (v < 0 || v > UINT32_MAX) goto limit;
        *(uint32_t *)dst = (uint32_t)v;
        return;
    default: *(int64_t *)dst = v; return;
    }
limit:
    field_fail(r, JCE_ERR_LIMIT);
}

/* ---- strings and bytes --------------------------------------------------- */

static int put_string(rd_t *r, jce_str_t s, jce_str_t *d) {
    if (s.len > JCE_MAX_STRING) {
        field_fail(r, JCE_ERR_LIMIT);
        return 0;
    }
    if (!s.len) {
        s.data = "";
    } else if ((const unsigned char *)s.data >= r->text &&
               (const unsigned char *)s.data < r->end) {
        char *p = jce_arena_alloc(r->a, s.len);
        if (!p) return refuse(r, JCE_JSON_E_NOMEM);
        memcpy(p, s.data, s.len);
        s.data = p;
    }
    *d = s;
    return 0;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char c) {
    const char *s = c ? strchr(b64_alphabet, c) : NULL;
    return s ? (int)(s - b64_alphabet) : -1;
}

/* Standard padded base64, '=' only in the padding positions. */
static int put_bytes(rd_t *r, jce_str_t b, jce_bytes_t *v) {
    const char *s = b.data;
    size_t n = b.len;
    if (n % 4) goto bad;
    size_t pad = n && s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    size_t len = n / 4 * 3 - pad;
    if (len > JCE_MAX_STRING) {
        field_fail(r, JCE_ERR_LIMIT);
        return 0;
    }
    uint8_t *p = len ? jce_arena_alloc(r->a, len) : NULL;
    if (len && !p) return refuse(r, JCE_JSON_E_NOMEM);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t w = 0;
        for (size_t k = 0; k < 4; k++) {
            int d = b64_value(s[i + k]);
            if (d < 0) {
                if (i + k < n - pad || s[i + k] != '=') goto bad;
                d = 0;
            }
            w = w << 6 | (uint32_t)d;
        }
        uint8_t t3[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
        for (int k = 0; k < 3 && o < len; k++) p[o++] = t3[k];
    }
    v->data = p;
    v->len = (uint32_t)len;
    return 0;
bad:
    field_fail(r, JCE_ERR_BAD_VALUE);
    return 0;
}

/* ---- objects and arrays ---------------------------------------------------- */

/* An object's keys, for the duplicate check: on the stack for the usual
 * handful, in the arena beyond. */
typedef struct keys {
    jce_str_t small[16];
    jce_str_t *v;
    size_t n, cap;
} keys_t;

static int key_add(rd_t *r, keys_t *k, jce_str_t s) {
    if (k->n == k->cap) {
        jce_str_t *nv = tmp_alloc(r, 2 * k->cap * sizeof *nv);
        if (!nv) return refuse(r, JCE_JSON_E_NOMEM);
        memcpy(nv, k->v, k->n * sizeof *nv);
        k->v = nv;
        k->cap *= 2;
    }
    k->v[k->n++] = s;
    return 0;
}

static int cmp_key(const void *a, const void *b) {
    return jce_str_cmp(*(const jce_str_t *)a, *(const jce_str_t *)b);
}

/* Pairwise for the usual handful, sorted beyond (an attacker's 10,000
 * keys stay n log n). */
static int dup_keys(rd_t *r, keys_t *k) {
    if (k->n <= 16) {
        for (size_t i = 0; i < k->n; i++)
            for (size_t j = i + 1; j < k->n; j++)
                if (jce_str_eq(k->v[i], k->v[j]))
                    return refuse(r, JCE_JSON_E_DUPLICATE);
        return 0;
    }
    qsort(k->v, k->n, sizeof *k->v, cmp_key);
    for (size_t i = 1; i < k->n; i++)
        if (jce_str_eq(k->v[i - 1], k->v[i]))
            return refuse(r, JCE_JSON_E_DUPLICATE);
    return 0;
}

static int find_field(const jce_json_type_t *t, jce_str_t key) {
    for (unsigned i = 0; i < t->n_fields; i++)
        if (t->fields[i].name_len == key.len &&
            !memcmp(t->fields[i].name, key.data, key.len))
            return (int)i;
    return -1;
}

/* Room for one more of n entries of size bytes (arrays double). */
static void *grow(rd_t *r, void *old, size_t n, size_t *cap, size_t size) {
    if (n < *cap) return old;
    size_t nc = *cap ? *cap * 2 : 4;
    void *p = jce_arena_alloc(r->a, nc * size);
    if (!p) return NULL;
    if (n) memcpy(p, old, n * size);
    *cap = nc;
    return p;
}

/* One struct field's value (top-level ones are counted in seen/bad). */
static int struct_member(rd_t *r, const jce_json_type_t *t, void *dst, int i,
                         uint64_t *seen) {
    if (i < 0 || peek(r) == 'n') return value(r, NULL, NULL); /* null: absent */
    int saved = r->top;
    if (r->depth == 1) r->top = i;
    int rc = value(r, t->fields[i].type, (char *)dst + t->fields[i].off);
    r->top = saved;
    seen[i / 64] |= UINT64_C(1) << (i % 64);
    return rc;
}

static int object(rd_t *r, const jce_json_type_t *t, void *dst) {
    if (++r->depth > r->max_depth) return refuse(r, JCE_JSON_E_DEPTH);
    r->p++;
    int kind = t ? t->kind : 0;
    if (t && kind != JCE_JSON_STRUCT &&
        !(kind == JCE_JSON_MAP && t->a->kind == JCE_JSON_STRING)) {
        field_fail(r, JCE_ERR_TYPE);
        t = NULL, kind = 0;
    }
    map_t *m = dst;
    size_t cap = 0, vcap = 0;
    if (kind == JCE_JSON_STRUCT) t->init(dst);
    if (kind == JCE_JSON_MAP) m->keys = m->vals = NULL, m->n = 0;
    uint64_t seen[4] = {0}; /* an IDL struct has at most 256 fields */
    keys_t k;
    k.v = k.small, k.n = 0, k.cap = 16;
    ws(r);
    if (peek(r) == '}') {
        r->p++;
    } else {
        for (;;) {
            ws(r);
            if (peek(r) != '"') return unexpected(r);
            jce_str_t key;
            if (string(r, &key) < 0 || key_add(r, &k, key) < 0) return -1;
            ws(r);
            if (peek(r) != ':') return unexpected(r);
            r->p++;
            ws(r);
            int rc;
            if (kind == JCE_JSON_STRUCT) {
                rc = struct_member(r, t, dst, find_field(t, key), seen);
            } else if (kind == JCE_JSON_MAP) {
                void *kk = grow(r, m->keys, m->n, &cap, t->a->size);
                void *vv = grow(r, m->vals, m->n, &vcap, t->b->size);
                if (!kk || !vv) return refuse(r, JCE_JSON_E_NOMEM);
                m->keys = kk, m->vals = vv;
                jce_str_t *kp = (jce_str_t *)kk + m->n;
                rc = put_string(r, key, kp);
                if (rc == 0)
                    rc = value(r, t->b, (char *)vv + m->n * t->b->size);
                m->n++;
            } else {
                rc = value(r, NULL, NULL);
            }
            if (rc < 0) return -1;
            ws(r);
            if (peek(r) == ',') {
                r->p++;
                continue;
            }
            if (peek(r) != '}') return unexpected(r);
            r->p++;
            break;
        }
    }
    if (dup_keys(r, &k) < 0) return -1;
    for (unsigned i = 0; kind == JCE_JSON_STRUCT && i < t->n_fields; i++) {
        bool in = seen[i / 64] >> (i % 64) & 1;
        if (r->depth == 1 && in && i < 64) r->seen |= UINT64_C(1) << i;
        if (t->fields[i].require && !in) {
            int saved = r->top;
            if (r->depth == 1) r->top = (int)i;
            field_fail(r, JCE_ERR_REQUIRE);
            r->top = saved;
        }
    }
    r->depth--;
    return 0;
}

/* One [key, value] entry of a map whose keys are not strings. */
static int pair(rd_t *r, const jce_json_type_t *t, void *k, void *v) {
    ws(r);
    if (peek(r) != '[') {
        field_fail(r, JCE_ERR_TYPE);
        return value(r, NULL, NULL);
    }
    if (++r->depth > r->max_depth) return refuse(r, JCE_JSON_E_DEPTH);
    r->p++;
    int i = 0;
    ws(r);
    if (peek(r) == ']') {
        r->p++;
    } else {
        for (;; i++) {
            const jce_json_type_t *et = i == 0 ? t->a : i == 1 ? t->b : NULL;
            if (value(r, et, i == 0 ? k : v) < 0) return -1;
            ws(r);
            if (peek(r) == ',') {
                r->p++;
                continue;
            }
            if (peek(r) != ']') return unexpected(r);
            r->p++;
            i++;
            break;
        }
    }
    if (i != 2) field_fail(r, JCE_ERR_TYPE);
    r->depth--;
    return 0;
}

static int array(rd_t *r, const jce_json_type_t *t, void *dst) {
    if (++r->depth > r->max_depth) return refuse(r, JCE_JSON_E_DEPTH);
    r->p++;
    int kind = t ? t->kind : 0;
    if (t && kind != JCE_JSON_VECTOR &&
        !(kind == JCE_JSON_MAP && t->a->kind != JCE_JSON_STRING)) {
        field_fail(r, JCE_ERR_TYPE);
        t = NULL, kind = 0;
    }
    vec_t *v = dst;
    map_t *m = dst;
    size_t cap = 0, vcap = 0;
    if (kind == JCE_JSON_VECTOR) v->items = NULL, v->n = 0;
    if (kind == JCE_JSON_MAP) m->keys = m->vals = NULL, m->n = 0;
    ws(r);
    if (peek(r) == ']') {
        r->p++;
        r->depth--;
        return 0;
    }
    for (;;) {
        int rc;
        if (kind == JCE_JSON_VECTOR) {
            void *items = grow(r, v->items, v->n, &cap, t->a->size);
            if (!items) return refuse(r, JCE_JSON_E_NOMEM);
            v->items = items;
            rc = value(r, t->a, (char *)items + v->n * t->a->size);
            v->n++;
        } else if (kind == JCE_JSON_MAP) {
            void *kk = grow(r, m->keys, m->n, &cap, t->a->size);
            void *vv = grow(r, m->vals, m->n, &vcap, t->b->size);
            if (!kk || !vv) return refuse(r, JCE_JSON_E_NOMEM);
            m->keys = kk, m->vals = vv;
            rc = pair(r, t, (char *)kk + m->n * t->a->size,
                      (char *)vv + m->n * t->b->size);
            m->n++;
        } else {
            rc = value(r, NULL, NULL);
        }
        if (rc < 0) return -1;
        ws(r);
        if (peek(r) == ',') {
            r->p++;
            continue;
        }
        if (peek(r) != ']') return unexpected(r);
        r->p++;
        break;
    }
    r->depth--;
    return 0;
}

static int literal(rd_t *r, const char *lit, size_t n) {
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, lit, n))
        return refuse(r, JCE_JSON_E_SYNTAX);
    r->p += n;
    return 0;
}

/* Any JSON value at r->p (after whitespace), into dst as type t; t NULL
 * skips it (still checked).  A null here is a type error: null stands
 * for an absent field only (struct_member). */
static int value(rd_t *r, const jce_json_type_t *t, void *dst) {
    ws(r);
    int c = peek(r);
    switch (c) {
    case '{': return object(r, t, dst);
    case '[': return array(r, t, dst);
    case '"':
        if (t && (t->kind == JCE_JSON_STRING || t->kind == JCE_JSON_BYTES)) {
            jce_str_t s;
            if (string(r, &s) < 0) return -1;
            return t->kind == JCE_JSON_STRING ? put_string(r, s, dst)
                                              : put_bytes(r, s, dst);
        }
        if (string(r, NULL) < 0) return -1;
        break;
    case 't':
    case 'f':
        if (literal(r, c == 't' ? "true" : "false", c == 't' ? 4 : 5) < 0)
            return -1;
        if (t && t->kind == JCE_JSON_BOOL) {
            *(bool *)dst = c == 't';
            return 0;
        }
        break;
    case 'n':
        if (literal(r, "null", 4) < 0) return -1;
        break;
    case '+':
    case '.': return refuse(r, JCE_JSON_E_NUMBER);
    default:
        if (c == '-' || is_digit(c)) {
            num_t n;
            if (number(r, &n) < 0) return -1;
            if (t) put_number(r, t, &n, dst);
            return 0;
        }
        return unexpected(r);
    }
    if (t) field_fail(r, JCE_ERR_TYPE);
    return 0;
}

int jce_json_decode(const jce_json_type_t *t, void *v, const char *buf,
                    size_t len, jce_arena_t *a, int flags,
                    jce_json_res_t *res) {
    rd_t r = {.p = (const unsigned char *)buf,
              .end = (const unsigned char *)buf + len,
              .text = (const unsigned char *)buf,
              .a = a,
              .flags = flags,
              .max_depth =
                  flags & JCE_JSON_LAX ? 3 * JCE_MAX_DEPTH : JCE_JSON_MAX_DEPTH,
              .top = -1};
    memset(res, 0, sizeof *res);
    ws(&r);
    if (t && t->kind == JCE_JSON_STRUCT && peek(&r) != '{') {
        t->init(v);
        res->top = true;
    }
    if (value(&r, t, v) == 0) {
        ws(&r);
        if (r.p < r.end) (void)unexpected(&r);
    }
    jce_arena_free(r.scratch);
    res->reason = r.reason;
    res->code = r.code;
    res->seen = r.seen;
    res->bad = r.bad;
    if (r.reason == JCE_JSON_E_NOMEM) return JCE_ERR_NOMEM;
    if (r.reason) return JCE_ERR_BAD_VALUE;
    return r.code;
}

