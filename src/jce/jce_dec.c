/*
 * jce_dec: the TARS decoder (tars-wire §1.9).
 *
 * Every read first checks the bytes left, so no input can make us read out
 * of bounds.  Container counts are bounded by the bytes left (an element is
 * at least one byte), string lengths by the bytes left and JCE_MAX_STRING,
 * nesting by JCE_MAX_DEPTH (skipping unknown fields included), which bounds
 * both the recursion here and what callers allocate per input byte.
 *
 * The first error is sticky in in->err with the offset where it was found;
 * after it every getter returns that error at once.
 */
#include <string.h>

#include "jce/jce.h"

void jce_in_init(jce_in_t *in, const void *buf, size_t len,
                 jce_arena_t *arena) {
    static const uint8_t empty[1];
    /* An empty jce_out_t has buf NULL; pointer arithmetic needs an object. */
    if (!buf) buf = empty, len = 0;
    in->start = in->p = buf;
    in->arena = arena;
    in->depth = 0;
    in->err = 0;
    in->err_pos = 0;
    if (len > JCE_MAX_INPUT) {
        len = 0;
        in->err = JCE_ERR_LIMIT;
    }
    in->end = in->start + len;
}

int jce_in_fail(jce_in_t *in, int err) {
    if (!in->err) {
        in->err = err;
        in->err_pos = (size_t)(in->p - in->start);
    }
    return in->err;
}

/* Records err at position `at` (a head, rather than the body after it). */
static int fail_at(jce_in_t *in, const uint8_t *at, int err) {
    in->p = at;
    return jce_in_fail(in, err);
}

void *jce_in_alloc(jce_in_t *in, size_t size) {
    void *p = in->arena ? jce_arena_alloc(in->arena, size) : NULL;
    if (!p) jce_in_fail(in, JCE_ERR_NOMEM);
    return p;
}

static inline size_t left(const jce_in_t *in) {
    return (size_t)(in->end - in->p);
}

static inline uint16_t rd16(const uint8_t *p) {
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static inline uint64_t rd64(const uint8_t *p) {
    return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

static inline int peek(const jce_in_t *in, unsigned *tag, unsigned *type,
                       size_t *head_len) {
    if (in->p >= in->end) return 0;
    unsigned b = in->p[0];
    *type = b & 0x0F;
    *tag = b >> 4;
    *head_len = 1;
    if (*tag == 15) {
        if (in->end - in->p < 2) return JCE_ERR_TRUNCATED;
        *tag = in->p[1];
        *head_len = 2;
    }
    return 1;
}

int jce_peek_head(const jce_in_t *in, unsigned *tag, unsigned *type,
                  size_t *head_len) {
    return peek(in, tag, type, head_len);
}

/* Consumes one head; 1 = read, 0 = at the end of input, <0 = error. */
static inline int take_head(jce_in_t *in, unsigned *tag, unsigned *type) {
    size_t hl;
    int r = peek(in, tag, type, &hl);
    if (r < 0) return jce_in_fail(in, r);
    in->p += r ? hl : 0;
    return r;
}

/* Reads a container count or a SimpleList length: an integer at tag 0,
 * Int32 at most, not negative, and no more than `left() / per_item`. */
static int read_count(jce_in_t *in, size_t per_item, uint32_t *n) {
    const uint8_t *at = in->p;
    unsigned tag, type;
    int r = take_head(in, &tag, &type);
    if (r <= 0) return r < 0 ? r : jce_in_fail(in, JCE_ERR_TRUNCATED);
    if (tag != 0) return fail_at(in, at, JCE_ERR_BAD_VALUE);
    int32_t v;
    switch (type) {
    case JCE_ZERO: v = 0; break;
    case JCE_CHAR:
        if (left(in) < 1) return jce_in_fail(in, JCE_ERR_TRUNCATED);
        v = (int8_t)in->p[0];
        in->p += 1;
        break;
    case JCE_SHORT:
        if (left(in) < 2) return jce_in_fail(in, JCE_ERR_TRUNCATED);
        v = (int16_t)rd16(in->p);
        in->p += 2;
        break;
    case JCE_INT32:
        if (left(in) < 4) return jce_in_fail(in, JCE_ERR_TRUNCATED);
        v = (int32_t)rd32(in->p);
        in->p += 4;
        break;
    default: return fail_at(in, at, JCE_ERR_TYPE);
    }
    if (v < 0) return fail_at(in, at, JCE_ERR_NEGATIVE);
    if ((size_t)v > left(in) / per_item) return fail_at(in, at, JCE_ERR_LIMIT);
    *n = (uint32_t)v;
    return 0;
}

static int enter(jce_in_t *in) {
    if (in->depth >= JCE_MAX_DEPTH) return jce_in_fail(in, JCE_ERR_LIMIT);
    in->depth++;
    return 0;
}

static int skip_fields(jce_in_t *in, uint64_t n);

/* Skips the rest of a struct up to and including its StructEnd. */
static int skip_to_end(jce_in_t *in) {
    for (;;) {
        unsigned tag, type;
        int r = take_head(in, &tag, &type);
        if (r <= 0) return r < 0 ? r : jce_in_fail(in, JCE_ERR_TRUNCATED);
        if (type == JCE_STRUCT_END) return 0;
        if (jce_skip_field(in, type) < 0) return in->err;
    }
}

static int skip_bytes(jce_in_t *in, size_t n) {
    if (left(in) < n) return jce_in_fail(in, JCE_ERR_TRUNCATED);
    in->p += n;
    return 0;
}

/* Recursion happens only through containers and structs, each of which
 * enters one level, so the C stack is bounded by JCE_MAX_DEPTH frames. */
int jce_skip_field(jce_in_t *in, unsigned type) {
    static const uint8_t fixed[] = {1, 2, 4, 8, 4, 8};
    uint32_t n;
    int r;
    if (in->err) return in->err;
    switch (type) {
    case JCE_CHAR:
    case JCE_SHORT:
    case JCE_INT32:
    case JCE_INT64:
    case JCE_FLOAT:
    case JCE_DOUBLE: return skip_bytes(in, fixed[type]);
    case JCE_STRING1:
        if (left(in) < 1) return jce_in_fail(in, JCE_ERR_TRUNCATED);
        n = in->p[0];
        in->p += 1;
        return skip_bytes(in, n);
    case JCE_STRING4:
        if (left(in) < 4) return jce_in_fail(in, JCE_ERR_TRUNCATED);
        n = rd32(in->p);
        if (n > JCE_MAX_STRING) return jce_in_fail(in, JCE_ERR_LIMIT);
        in->p += 4;
        return skip_bytes(in, n);
    case JCE_MAP:
    case JCE_LIST:
        if (enter(in) < 0 || read_count(in, type == JCE_MAP ? 2 : 1, &n) < 0)
            return in->err;
        r = skip_fields(in, type == JCE_MAP ? 2 * (uint64_t)n : n);
        in->depth--;
        return r;
    case JCE_STRUCT_BEGIN:
        if (enter(in) < 0) return in->err;
        r = skip_to_end(in);
        in->depth--;
        return r;
    case JCE_STRUCT_END:
    case JCE_ZERO: return 0;
    case JCE_SIMPLE_LIST: {
        const uint8_t *at = in->p;
        if (left(in) < 1) return jce_in_fail(in, JCE_ERR_TRUNCATED);
        if (in->p[0] != 0x00) return fail_at(in, at, JCE_ERR_BAD_VALUE);
        in->p += 1;
        if (read_count(in, 1, &n) < 0) return in->err;
        in->p += n; /* read_count checked n <= left */
        return 0;
    }
    default: return jce_in_fail(in, JCE_ERR_BAD_TYPE);
    }
}

/* Skips n whole fields (head + body), as list elements and map entries. */
static int skip_fields(jce_in_t *in, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        unsigned tag, type;
        int r = take_head(in, &tag, &type);
        if (r <= 0) return r < 0 ? r : jce_in_fail(in, JCE_ERR_TRUNCATED);
        if (type == JCE_STRUCT_END)
            return fail_at(in, in->p - 1, JCE_ERR_BAD_VALUE);
        if (jce_skip_field(in, type) < 0) return in->err;
    }
    return 0;
}

/*
 * The forward scan of §1.9: skips lower and unknown tags; stops, without
 * consuming, at a higher tag, a StructEnd or the end of input.  On success
 * the head is consumed, *type is set and *at points at the head.
 * Returns 1 found, 0 absent (JCE_ERR_REQUIRE if require), <0 error.
 */
static inline int seek(jce_in_t *in, unsigned tag, bool require, unsigned *type,
                       const uint8_t **at) {
    *type = 0;
    *at = in->p;
    if (in->err) return in->err;
    for (;;) {
        unsigned t;
        size_t hl;
        int r = peek(in, &t, type, &hl);
        if (r < 0) return jce_in_fail(in, r);
        if (r == 0 || *type == JCE_STRUCT_END || t > tag)
            return require ? jce_in_fail(in, JCE_ERR_REQUIRE) : 0;
        *at = in->p;
        in->p += hl;
        if (t == tag) return 1;
        if (jce_skip_field(in, *type) < 0) return in->err;
    }
}

/* Reads an integer body of wire type `type`, accepting types up to `widest`
 * (widening only). */
static int int_body(jce_in_t *in, unsigned type, unsigned widest,
                    const uint8_t *at, int64_t *v) {
    static const uint8_t width[] = {1, 2, 4, 8};
    if (type == JCE_ZERO) {
        *v = 0;
        return 1;
    }
    if (type > widest) return fail_at(in, at, JCE_ERR_TYPE);
    if (left(in) < width[type]) return jce_in_fail(in, JCE_ERR_TRUNCATED);
    switch (type) {
    case JCE_CHAR: *v = (int8_t)in->p[0]; break;
    case JCE_SHORT: *v = (int16_t)rd16(in->p); break;
    case JCE_INT32: *v = (int32_t)rd32(in->p); break;
    default: *v = (int64_t)rd64(in->p); break;
    }
    in->p += width[type];
    return 1;
}

static inline int get_int(jce_in_t *in, unsigned tag, bool require,
                          unsigned widest, int64_t *v) {
    unsigned type;
    const uint8_t *at;
    int r = seek(in, tag, require, &type, &at);
    if (r <= 0) return r;
    return int_body(in, type, widest, at, v);
}

/* Unsigned types travel one width up (§1.3); like C++ we keep the low bits
 * of whatever the wider reader returns. */
#define GETTER(name, ctype, widest)                                          \
    int jce_get_##name(jce_in_t *in, unsigned tag, bool require, ctype *v) { \
        int64_t x;                                                           \
        int r = get_int(in, tag, require, widest, &x);                       \
        if (r == 1) *v = (ctype)x;                                           \
        return r;                                                            \
    }

GETTER(int8, int8_t, JCE_CHAR)
GETTER(int16, int16_t, JCE_SHORT)
GETTER(int32, int32_t, JCE_INT32)
GETTER(int64, int64_t, JCE_INT64)
GETTER(uint8, uint8_t, JCE_SHORT)
GETTER(uint16, uint16_t, JCE_INT32)
GETTER(uint32, uint32_t, JCE_INT64)

int jce_get_bool(jce_in_t *in, unsigned tag, bool require, bool *v) {
    int64_t x;
    int r = get_int(in, tag, require, JCE_CHAR, &x);
    if (r == 1) *v = x != 0;
    return r;
}

int jce_get_float(jce_in_t *in, unsigned tag, bool require, float *v) {
    unsigned type;
    const uint8_t *at;
    int r = seek(in, tag, require, &type, &at);
    if (r <= 0) return r;
    if (type == JCE_ZERO) {
        *v = 0;
        return 1;
    }
    if (type != JCE_FLOAT) return fail_at(in, at, JCE_ERR_TYPE);
    if (left(in) < 4) return jce_in_fail(in, JCE_ERR_TRUNCATED);
    uint32_t bits = rd32(in->p);
    memcpy(v, &bits, sizeof *v);
    in->p += 4;
    return 1;
}

/* Accepts a Float too, converted by value (C++ gets this one wrong). */
int jce_get_double(jce_in_t *in, unsigned tag, bool require, double *v) {
    unsigned type;
    const uint8_t *at;
    int r = seek(in, tag, require, &type, &at);
    if (r <= 0) return r;
    if (type == JCE_ZERO) {
        *v = 0;
        return 1;
    }
    if (type == JCE_FLOAT) {
        if (left(in) < 4) return jce_in_fail(in, JCE_ERR_TRUNCATED);
        uint32_t bits = rd32(in->p);
        float f;
        memcpy(&f, &bits, sizeof f);
        *v = f;
        in->p += 4;
        return 1;
    }
    if (type != JCE_DOUBLE) return fail_at(in, at, JCE_ERR_TYPE);
    if (left(in) < 8) return jce_in_fail(in, JCE_ERR_TRUNCATED);
    uint64_t bits = rd64(in->p);
    memcpy(v, &bits, sizeof *v);
    in->p += 8;
    return 1;
}

int jce_get_str(jce_in_t *in, unsigned tag, bool require, jce_str_t *s) {
    unsigned type;
    const uint8_t *at;
    int r = seek(in, tag, require, &type, &at);
    if (r <= 0) return r;
    uint32_t n;
    if (type == JCE_STRING1) {
        if (left(in) < 1) return jce_in_fail(in, JCE_ERR_TRUNCATED);
        n = in->p[0];
        in->p += 1;
    } else if (type == JCE_STRING4) {
        if (left(in) < 4) return jce_in_fail(in, JCE_ERR_TRUNCATED);
        n = rd32(in->p);
        if (n > JCE_MAX_STRING) return jce_in_fail(in, JCE_ERR_LIMIT);
        in->p += 4;
    } else {
        return fail_at(in, at, JCE_ERR_TYPE);
    }
    if (left(in) < n) return jce_in_fail(in, JCE_ERR_TRUNCATED);
    s->data = (const char *)in->p;
    s->len = n;
    in->p += n;
    return 1;
}

/* The C++ fallback: a List whose elements are Chars (or ZeroTags). */
static int bytes_from_list(jce_in_t *in, jce_bytes_t *b) {
    uint32_t n;
    if (enter(in) < 0 || read_count(in, 1, &n) < 0) return in->err;
    if (n > JCE_MAX_STRING) return jce_in_fail(in, JCE_ERR_LIMIT);
    uint8_t *buf = n ? jce_in_alloc(in, n) : NULL;
    if (n && !buf) return in->err;
    for (uint32_t i = 0; i < n; i++) {
        int8_t c = 0;
        if (jce_get_int8(in, 0, true, &c) < 0) return in->err;
        buf[i] = (uint8_t)c;
    }
    in->depth--;
    b->data = buf;
    b->len = n;
    return 1;
}

int jce_get_bytes(jce_in_t *in, unsigned tag, bool require, jce_bytes_t *b) {
    unsigned type;
    const uint8_t *at;
    int r = seek(in, tag, require, &type, &at);
    if (r <= 0) return r;
    if (type == JCE_LIST) return bytes_from_list(in, b);
    if (type != JCE_SIMPLE_LIST) return fail_at(in, at, JCE_ERR_TYPE);
    if (left(in) < 1) return jce_in_fail(in, JCE_ERR_TRUNCATED);
    if (in->p[0] != 0x00) return jce_in_fail(in, JCE_ERR_BAD_VALUE);
    in->p += 1;
    uint32_t n;
    if (read_count(in, 1, &n) < 0) return in->err;
    if (n > JCE_MAX_STRING) return jce_in_fail(in, JCE_ERR_LIMIT);
    b->data = in->p;
    b->len = n;
    in->p += n;
    return 1;
}

static int container_begin(jce_in_t *in, unsigned tag, bool require,
                           unsigned want, uint32_t *n) {
    unsigned type;
    const uint8_t *at;
    int r = seek(in, tag, require, &type, &at);
    if (r <= 0) return r;
    if (type != want) return fail_at(in, at, JCE_ERR_TYPE);
    if (enter(in) < 0) return in->err;
    if (read_count(in, want == JCE_MAP ? 2 : 1, n) < 0) return in->err;
    return 1;
}

int jce_get_list_begin(jce_in_t *in, unsigned tag, bool require, uint32_t *n) {
    return container_begin(in, tag, require, JCE_LIST, n);
}

int jce_get_map_begin(jce_in_t *in, unsigned tag, bool require, uint32_t *n) {
    return container_begin(in, tag, require, JCE_MAP, n);
}

void jce_get_container_end(jce_in_t *in) {
    if (in->depth > 0) in->depth--;
}

int jce_get_struct_begin(jce_in_t *in, unsigned tag, bool require) {
    unsigned type;
    const uint8_t *at;
    int r = seek(in, tag, require, &type, &at);
    if (r <= 0) return r;
    if (type != JCE_STRUCT_BEGIN) return fail_at(in, at, JCE_ERR_TYPE);
    if (enter(in) < 0) return in->err;
    return 1;
}

int jce_get_struct_end(jce_in_t *in) {
    if (in->err) return in->err;
    if (skip_to_end(in) < 0) return in->err;
    if (in->depth > 0) in->depth--;
    return 0;
}

int jce_validate(const void *buf, size_t len, size_t *err_pos) {
    jce_in_t in;
    jce_in_init(&in, buf, len, NULL);
    while (!in.err && in.p < in.end) {
        unsigned tag, type;
        const uint8_t *at = in.p;
        if (take_head(&in, &tag, &type) < 0) break;
        /* A stray StructEnd at top level would end a reader's scan early. */
        if (type == JCE_STRUCT_END)
            fail_at(&in, at, JCE_ERR_BAD_VALUE);
        else
            jce_skip_field(&in, type);
    }
    if (err_pos) *err_pos = in.err ? in.err_pos : 0;
    return in.err;
}
