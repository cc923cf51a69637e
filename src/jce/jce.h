/*
 * jce: the TARS/JCE binary encoding (see shared/tars-wire.md §1-2).
 *
 * Hand-written rather than taken from a library: no C implementation of
 * TARS is packaged by Debian, and this codec sits on herald's hot path
 * (every device frame and every PushAPI call goes through it), so it has to
 * be allocation-free per primitive and zero-copy on decode.
 *
 * Encoder: writes into a growable jce_out_t.  Integers shrink by value,
 * ZeroTag for 0; the policy (cpp or js) only matters for how float/double 0
 * is written here and, in generated code, for which optional fields are
 * omitted.  Errors are sticky in the jce_out_t (check once at the end).
 *
 * Decoder: forward scan over a borrowed buffer.  Strings and byte vectors
 * point into the input (zero copy); arrays are taken from a jce_arena_t.
 * Every count and length is checked against the bytes left and against
 * hard limits, so hostile input can neither read out of bounds nor make us
 * allocate more than a small multiple of its own size.  The first error is
 * sticky in the jce_in_t together with the byte offset where it happened.
 */
#ifndef HERALD_JCE_H
#define HERALD_JCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Wire type codes (§1.2). */
enum jce_type {
    JCE_CHAR = 0,
    JCE_SHORT = 1,
    JCE_INT32 = 2,
    JCE_INT64 = 3,
    JCE_FLOAT = 4,
    JCE_DOUBLE = 5,
    JCE_STRING1 = 6,
    JCE_STRING4 = 7,
    JCE_MAP = 8,
    JCE_LIST = 9,
    JCE_STRUCT_BEGIN = 10,
    JCE_STRUCT_END = 11,
    JCE_ZERO = 12,
    JCE_SIMPLE_LIST = 13,
};

/* Errors are the JCE_ERR_* codes of herald_err (core/err.h). */

/* Encoder policies (§1.8). */
enum jce_policy {
    JCE_POLICY_CPP = 0, /* default: skip optional fields equal to default */
    JCE_POLICY_JS = 1,  /* write every field; float/double 0 as ZeroTag */
};

/* Hard limits applied by the decoder to untrusted input. */
#define JCE_MAX_DEPTH 32           /* nested struct/list/map levels */
#define JCE_MAX_STRING (16u << 20) /* one string or byte vector */
#define JCE_MAX_INPUT (64u << 20)  /* one buffer handed to jce_in_init */

/* ---- borrowed views used by generated structs ---- */

typedef struct jce_str {
    const char *data; /* not NUL-terminated; may point into the input */
    uint32_t len;
} jce_str_t;

typedef struct jce_bytes {
    const uint8_t *data;
    uint32_t len;
} jce_bytes_t;

#define JCE_STR_LIT(s) ((jce_str_t){(s), (uint32_t)(sizeof(s) - 1)})
jce_str_t jce_str_from(const char *cstr); /* NULL -> empty */
bool jce_str_eq(jce_str_t a, jce_str_t b);
int jce_str_cmp(jce_str_t a, jce_str_t b); /* memcmp order, shorter first */

/* ---- arena: all decode-time allocations, freed at once ---- */

typedef struct jce_arena jce_arena_t;

/* limit: most bytes the arena may hand out (0 = JCE_MAX_INPUT). */
jce_arena_t *jce_arena_new(size_t limit);
void jce_arena_free(jce_arena_t *a);
void jce_arena_reset(jce_arena_t *a); /* keeps the first chunk */
/* 16-byte aligned, zeroed; NULL when out of memory or over the limit. */
void *jce_arena_alloc(jce_arena_t *a, size_t size);
size_t jce_arena_used(const jce_arena_t *a);

/* ---- encoder ---- */

typedef struct jce_out {
    uint8_t *buf; /* owned (heap) */
    size_t len;
    size_t cap;
    int err;    /* first error, sticky; 0 while all is well */
    int policy; /* enum jce_policy */
} jce_out_t;

void jce_out_init(jce_out_t *o, int policy);
void jce_out_free(jce_out_t *o);
void jce_out_reset(jce_out_t *o); /* len = 0, err = 0, keeps the buffer */
/* Takes ownership of the encoded bytes; o is left empty. */
uint8_t *jce_out_take(jce_out_t *o, size_t *len);
/* Appends raw bytes (frame prefixes and the like). */
void jce_out_raw(jce_out_t *o, const void *p, size_t n);
/* Reserves n bytes and returns their offset (to patch a length later). */
size_t jce_out_reserve(jce_out_t *o, size_t n);

void jce_put_head(jce_out_t *o, unsigned tag, unsigned type);
void jce_put_int8(jce_out_t *o, unsigned tag, int8_t v);
void jce_put_int16(jce_out_t *o, unsigned tag, int16_t v);
void jce_put_int32(jce_out_t *o, unsigned tag, int32_t v);
void jce_put_int64(jce_out_t *o, unsigned tag, int64_t v);
void jce_put_bool(jce_out_t *o, unsigned tag, bool v);
void jce_put_uint8(jce_out_t *o, unsigned tag, uint8_t v);   /* as int16 */
void jce_put_uint16(jce_out_t *o, unsigned tag, uint16_t v); /* as int32 */
void jce_put_uint32(jce_out_t *o, unsigned tag, uint32_t v); /* as int64 */
void jce_put_float(jce_out_t *o, unsigned tag, float v);
void jce_put_double(jce_out_t *o, unsigned tag, double v);
void jce_put_string(jce_out_t *o, unsigned tag, const char *s, size_t len);
void jce_put_str(jce_out_t *o, unsigned tag, jce_str_t s);
void jce_put_bytes(jce_out_t *o, unsigned tag, const uint8_t *p, size_t len);
/* Containers: write the begin with the count, then the elements with tag 0
 * (list) or key tag 0 / value tag 1 (map).  No end marker. */
void jce_put_list_begin(jce_out_t *o, unsigned tag, uint32_t n);
void jce_put_map_begin(jce_out_t *o, unsigned tag, uint32_t n);
void jce_put_struct_begin(jce_out_t *o, unsigned tag);
void jce_put_struct_end(jce_out_t *o);

/* ---- decoder ---- */

typedef struct jce_in {
    const uint8_t *start;
    const uint8_t *p;
    const uint8_t *end;
    jce_arena_t *arena; /* borrowed; may be NULL if no containers decoded */
    int depth;
    int err;        /* first error, sticky */
    size_t err_pos; /* offset of the byte where err was found */
} jce_in_t;

/* len over JCE_MAX_INPUT sets err = JCE_ERR_LIMIT at once. */
void jce_in_init(jce_in_t *in, const void *buf, size_t len, jce_arena_t *arena);
/* Records err at the current position unless an error is already set;
 * returns in->err. */
int jce_in_fail(jce_in_t *in, int err);

/*
 * Field getters.  Each looks for `tag` scanning forward (skipping lower and
 * unknown tags, stopping at a higher tag or StructEnd or the end of input).
 * Return: 1 = found and stored in *v; 0 = absent (*v untouched, so the caller
 * keeps its default; for require=true absence is JCE_ERR_REQUIRE instead);
 * negative = error (also recorded in in->err / in->err_pos).
 * Widening reads only (§1.9); both float-zero forms accepted.
 */
int jce_get_int8(jce_in_t *in, unsigned tag, bool require, int8_t *v);
int jce_get_int16(jce_in_t *in, unsigned tag, bool require, int16_t *v);
int jce_get_int32(jce_in_t *in, unsigned tag, bool require, int32_t *v);
int jce_get_int64(jce_in_t *in, unsigned tag, bool require, int64_t *v);
int jce_get_bool(jce_in_t *in, unsigned tag, bool require, bool *v);
int jce_get_uint8(jce_in_t *in, unsigned tag, bool require, uint8_t *v);
int jce_get_uint16(jce_in_t *in, unsigned tag, bool require, uint16_t *v);
int jce_get_uint32(jce_in_t *in, unsigned tag, bool require, uint32_t *v);
int jce_get_float(jce_in_t *in, unsigned tag, bool require, float *v);
int jce_get_double(jce_in_t *in, unsigned tag, bool require, double *v);
/* Zero copy: s->data points into the input buffer. */
int jce_get_str(jce_in_t *in, unsigned tag, bool require, jce_str_t *s);
/* SimpleList (zero copy) or, as C++ accepts, a List of Char (copied into
 * the arena). */
int jce_get_bytes(jce_in_t *in, unsigned tag, bool require, jce_bytes_t *b);
/* Container heads: *n is the element count, already checked to be no more
 * than the bytes left (every element takes at least one byte, a map entry
 * two), so callers may allocate n elements from the arena safely.  Then
 * read n elements with tag 0 (map: key tag 0, value tag 1, alternating). */
int jce_get_list_begin(jce_in_t *in, unsigned tag, bool require, uint32_t *n);
int jce_get_map_begin(jce_in_t *in, unsigned tag, bool require, uint32_t *n);
/* Struct: get_struct_begin enters (depth+1); after reading the known fields
 * call jce_get_struct_end, which skips any unknown fields up to and
 * including StructEnd and leaves (depth-1). */
int jce_get_struct_begin(jce_in_t *in, unsigned tag, bool require);
int jce_get_struct_end(jce_in_t *in);
/* Marks the end of a container element sequence (depth bookkeeping for
 * lists and maps; call after the n elements). */
void jce_get_container_end(jce_in_t *in);

/* Allocation from the decoder's arena; records JCE_ERR_NOMEM on failure. */
void *jce_in_alloc(jce_in_t *in, size_t size);

/* Low level, for tools and fuzzers: read one head without skipping; skip
 * one field body of the given type. */
int jce_peek_head(const jce_in_t *in, unsigned *tag, unsigned *type,
                  size_t *head_len);
int jce_skip_field(jce_in_t *in, unsigned type);
/* Validates that buf is a well-formed sequence of fields (a struct body at
 * top level), descending into containers; returns 0 or a negative code. */
int jce_validate(const void *buf, size_t len, size_t *err_pos);

#endif
