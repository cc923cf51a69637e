/*
 * jce_json: the strict JSON reader of the IDL's structs.  Every JSON text
 * herald takes from outside (push API bodies, device JSON frames) is read
 * here, straight into the generated C struct, in one pass, without a tree.
 *
 * jce2c describes each struct and container of the IDL with a
 * jce_json_type_t table (fields by name, offset and type); the generated
 * M_S_from_json_text() hands its table to jce_json_decode().  Nothing else
 * is read: it is not a JSON library, only the JSON face of the JCE codec,
 * as jce_dec.c is its binary face.  Writing JSON, and reading the JSON
 * herald writes itself (CLI, tests), stays with jansson (docs/jce2c.md,
 * "JSON", says why).
 *
 * What it accepts is RFC 8259 JSON in UTF-8 with no object key twice (in
 * any object, read or skipped), no \u0000, nesting at most
 * JCE_JSON_MAX_DEPTH levels and no number over JCE_JSON_MAX_NUMBER
 * characters.  A text that breaks one of those is refused with a reason
 * (jce_json_res_t.reason) before any field is judged; a field of the wrong
 * type does not stop the reader, so every such field is reported.
 */
#ifndef HERALD_JCE_JSON_H
#define HERALD_JCE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#include "jce/jce.h"

enum jce_json_kind {
    JCE_JSON_BOOL = 1,
    JCE_JSON_INT8,
    JCE_JSON_UINT8,
    JCE_JSON_INT16,
    JCE_JSON_UINT16,
    JCE_JSON_INT32,
    JCE_JSON_UINT32,
    JCE_JSON_INT64,
    JCE_JSON_FLOAT,
    JCE_JSON_DOUBLE,
    JCE_JSON_STRING, /* jce_str_t */
    JCE_JSON_BYTES,  /* jce_bytes_t, as padded base64 */
    JCE_JSON_VECTOR, /* { T *items; uint32_t n; }, item type a */
    JCE_JSON_MAP,    /* { K *keys; V *vals; uint32_t n; }, key a, value b */
    JCE_JSON_STRUCT,
};

typedef struct jce_json_type jce_json_type_t;

typedef struct jce_json_field {
    const char *name;
    unsigned name_len;
    size_t off; /* offsetof the field in its struct */
    bool require;
    const jce_json_type_t *type;
} jce_json_field_t;

struct jce_json_type {
    int kind;
    size_t size;                  /* sizeof the C value */
    const jce_json_type_t *a, *b; /* vector item; map key and value */
    void (*init)(void *v);        /* struct: zero + IDL defaults */
    const jce_json_field_t *fields;
    unsigned n_fields;
};

/* The scalar tables, shared by every generated file. */
extern const jce_json_type_t jce_json_bool, jce_json_int8, jce_json_uint8,
    jce_json_int16, jce_json_uint16, jce_json_int32, jce_json_uint32,
    jce_json_int64, jce_json_float, jce_json_double, jce_json_string,
    jce_json_bytes;

/* Why a text is not the JSON herald accepts (jce_json_res_t.reason): the
 * JCE_JSON_E_* codes of herald_err (core/err.h). */

#define JCE_JSON_MAX_DEPTH 64  /* herald's inputs are two or three deep */
#define JCE_JSON_MAX_NUMBER 63 /* the longest int64 takes 20 */

/* Flags.  LAX is for tools re-reading JSON that to_json wrote from
 * arbitrary JCE values: \u0000 is allowed and nesting may reach
 * 3 * JCE_MAX_DEPTH (a JCE map of non-string keys is two JSON levels). */
#define JCE_JSON_LAX 1

typedef struct jce_json_res {
    int reason;    /* JCE_JSON_E_*: the text itself was refused */
    int code;      /* the first field error (JCE_ERR_TYPE, _LIMIT, ...) */
    bool top;      /* the top-level value was not an object */
    uint64_t seen; /* bit i: top-level field i was present and not null */
    uint64_t bad;  /* bit i: top-level field i did not decode */
} jce_json_res_t;

/*
 * Reads buf[0..len) (no NUL needed) as a value of struct type t into v
 * (t->init first; absent and null fields keep their defaults).  Strings,
 * byte vectors and arrays are allocated from a.  Returns 0, or
 * JCE_ERR_BAD_VALUE when res->reason says why the text was refused,
 * JCE_ERR_NOMEM, or res->code when a field did not decode (wrong type:
 * JCE_ERR_TYPE; out of range: JCE_ERR_LIMIT; bad base64:
 * JCE_ERR_BAD_VALUE; a require field absent: JCE_ERR_REQUIRE).  Bits of
 * res->seen / res->bad are the generated M_S_JSON_<field> masks.
 */
int jce_json_decode(const jce_json_type_t *t, void *v, const char *buf,
                    size_t len, jce_arena_t *a, int flags, jce_json_res_t *res);

#endif
