/*
 * jce_enc: the TARS encoder (tars-wire §1.1-1.7).
 *
 * Every integer goes through one writer that shrinks by value, which gives
 * the same bytes as the C++ Int64 -> Int32 -> Short -> Char -> ZeroTag
 * cascade whatever the declared width.  Errors are sticky: once o->err is
 * set nothing more is written, so callers check once at the end.
 */
#include <stdlib.h>
#include <string.h>

#include "jce/jce.h"

#define OUT_FIRST 256

void jce_out_init(jce_out_t *o, int policy) {
    o->buf = NULL;
    o->len = 0;
    o->cap = 0;
    o->err = 0;
    o->policy = policy;
}

void jce_out_free(jce_out_t *o) {
    free(o->buf);
    o->buf = NULL;
    o->len = o->cap = 0;
}

void jce_out_reset(jce_out_t *o) {
    o->len = 0;
    o->err = 0;
}

uint8_t *jce_out_take(jce_out_t *o, size_t *len) {
    uint8_t *p = o->buf;
    *len = o->len;
    if (o->err) {
        free(p);
        p = NULL;
        *len = 0;
    } else if (!p) {
        p = malloc(1); /* an empty encoding is still a valid result */
        if (!p) o->err = JCE_ERR_NOMEM;
    }
    o->buf = NULL;
    o->len = o->cap = 0;
    return p;
}

static bool grow(jce_out_t *o, size_t n) {
    if (o->err) return false;
    if (n > SIZE_MAX / 2 - o->len) {
        o->err = JCE_ERR_NOMEM;
        return false;
    }
    size_t need = o->len + n;
    size_t cap = o->cap ? o->cap : OUT_FIRST;
    while (cap < need) cap *= 2;
    uint8_t *p = realloc(o->buf, cap);
    if (!p) {
        o->err = JCE_ERR_NOMEM;
        return false;
    }
    o->buf = p;
    o->cap = cap;
    return true;
}

/* True when n more bytes fit; the common case is one compare. */
static inline bool room(jce_out_t *o, size_t n) {
    if (o->cap - o->len >= n && !o->err) return true;
    return grow(o, n);
}

void jce_out_raw(jce_out_t *o, const void *p, size_t n) {
    if (n && room(o, n)) {
        memcpy(o->buf + o->len, p, n);
        o->len += n;
    }
}

/* On error (sticky in o->err) returns SIZE_MAX: there is nothing to patch. */
size_t jce_out_reserve(jce_out_t *o, size_t n) {
    if (!room(o, n)) return SIZE_MAX;
    size_t off = o->len;
    memset(o->buf + off, 0, n);
    o->len += n;
    return off;
}

static inline void be16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void be64(uint8_t *p, uint64_t v) {
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

/* Writes a head followed by room for `body` bytes; returns where the body
 * goes, or NULL on error (tag out of range, out of memory). */
static inline uint8_t *head(jce_out_t *o, unsigned tag, unsigned type,
                            size_t body) {
    if (tag > 255) {
        if (!o->err) o->err = JCE_ERR_BAD_TAG;
        return NULL;
    }
    if (!room(o, 2 + body)) return NULL;
    uint8_t *p = o->buf + o->len;
    if (tag < 15) {
        p[0] = (uint8_t)(tag << 4 | type);
        o->len += 1 + body;
        return p + 1;
    }
    p[0] = (uint8_t)(0xF0 | type);
    p[1] = (uint8_t)tag;
    o->len += 2 + body;
    return p + 2;
}

void jce_put_head(jce_out_t *o, unsigned tag, unsigned type) {
    (void)head(o, tag, type & 0x0F, 0);
}

static inline void put_int(jce_out_t *o, unsigned tag, int64_t v) {
    uint8_t *p;
    if (v == 0) {
        (void)head(o, tag, JCE_ZERO, 0);
    } else if (v >= INT8_MIN && v <= INT8_MAX) {
        if ((p = head(o, tag, JCE_CHAR, 1))) p[0] = (uint8_t)v;
    } else if (v >= INT16_MIN && v <= INT16_MAX) {
        if ((p = head(o, tag, JCE_SHORT, 2))) be16(p, (uint16_t)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        if ((p = head(o, tag, JCE_INT32, 4))) be32(p, (uint32_t)v);
    } else if ((p = head(o, tag, JCE_INT64, 8))) {
        be64(p, (uint64_t)v);
    }
}

void jce_put_int8(jce_out_t *o, unsigned tag, int8_t v) { put_int(o, tag, v); }
void jce_put_int16(jce_out_t *o, unsigned tag, int16_t v) {
    put_int(o, tag, v);
}
void jce_put_int32(jce_out_t *o, unsigned tag, int32_t v) {
    put_int(o, tag, v);
}
void jce_put_int64(jce_out_t *o, unsigned tag, int64_t v) {
    put_int(o, tag, v);
}
void jce_put_bool(jce_out_t *o, unsigned tag, bool v) {
    put_int(o, tag, v ? 1 : 0);
}
void jce_put_uint8(jce_out_t *o, unsigned tag, uint8_t v) {
    put_int(o, tag, v);
}
void jce_put_uint16(jce_out_t *o, unsigned tag, uint16_t v) {
    put_int(o, tag, v);
}
void jce_put_uint32(jce_out_t *o, unsigned tag, uint32_t v) {
    put_int(o, tag, v);
}

/* JS writes ZeroTag for 0 and -0 (== 0 is true for both); C++ writes the
 * full value.  NaN compares unequal and is always written in full. */
void jce_put_float(jce_out_t *o, unsigned tag, float v) {
    if (v == 0 && o->policy == JCE_POLICY_JS) {
        (void)head(o, tag, JCE_ZERO, 0);
        return;
    }
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint8_t *p = head(o, tag, JCE_FLOAT, 4);
    if (p) be32(p, bits);
}

void jce_put_double(jce_out_t *o, unsigned tag, double v) {
    if (v == 0 && o->policy == JCE_POLICY_JS) {
        (void)head(o, tag, JCE_ZERO, 0);
        return;
    }
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint8_t *p = head(o, tag, JCE_DOUBLE, 8);
    if (p) be64(p, bits);
}

void jce_put_string(jce_out_t *o, unsigned tag, const char *s, size_t len) {
    uint8_t *p;
    if (len <= 255) {
        if ((p = head(o, tag, JCE_STRING1, 1 + len))) {
            p[0] = (uint8_t)len;
            if (len) memcpy(p + 1, s, len);
        }
        return;
    }
    /* What we could not decode ourselves is refused at the source. */
    if (len > JCE_MAX_STRING) {
        if (!o->err) o->err = JCE_ERR_LIMIT;
        return;
    }
    if ((p = head(o, tag, JCE_STRING4, 4 + len))) {
        be32(p, (uint32_t)len);
        memcpy(p + 4, s, len);
    }
}

void jce_put_str(jce_out_t *o, unsigned tag, jce_str_t s) {
    jce_put_string(o, tag, s.data, s.len);
}

void jce_put_bytes(jce_out_t *o, unsigned tag, const uint8_t *p, size_t len) {
    if (len > JCE_MAX_STRING) {
        if (!o->err) o->err = JCE_ERR_LIMIT;
        return;
    }
    uint8_t *q = head(o, tag, JCE_SIMPLE_LIST, 1);
    if (!q) return;
    q[0] = 0x00; /* inner head: Char, tag 0 */
    put_int(o, 0, (int64_t)len);
    jce_out_raw(o, p, len);
}

void jce_put_list_begin(jce_out_t *o, unsigned tag, uint32_t n) {
    (void)head(o, tag, JCE_LIST, 0);
    put_int(o, 0, n);
}

void jce_put_map_begin(jce_out_t *o, unsigned tag, uint32_t n) {
    (void)head(o, tag, JCE_MAP, 0);
    put_int(o, 0, n);
}

void jce_put_struct_begin(jce_out_t *o, unsigned tag) {
    (void)head(o, tag, JCE_STRUCT_BEGIN, 0);
}

void jce_put_struct_end(jce_out_t *o) { (void)head(o, 0, JCE_STRUCT_END, 0); }
