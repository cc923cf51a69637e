/*
 * jce_type: a table of the structs a generated file declares, so that
 * generic tools (the interop checker, fuzzers, benchmarks) can work on every
 * struct of a contract without naming each one.  jce2c emits one
 * NULL-terminated array `<Base>_types[]` per IDL file.
 */
#ifndef HERALD_JCE_TYPE_H
#define HERALD_JCE_TYPE_H

#include <jansson.h>

#include "jce/jce.h"

typedef struct jce_type_info {
    const char *name;      /* "herald.PushMessage" (module.struct) */
    size_t size;           /* sizeof the C struct */
    void (*init)(void *v); /* defaults */
    void (*encode)(const void *v, jce_out_t *o); /* top-level body */
    int (*decode)(void *v, jce_in_t *in);        /* top-level body */
    json_t *(*to_json)(const void *v);           /* new reference */
    int (*from_json)(void *v, const json_t *j, jce_arena_t *a);
    bool (*equal)(const void *a, const void *b);
} jce_type_info_t;

/* Finds a type by name in a NULL-terminated table; NULL if absent. */
const jce_type_info_t *jce_type_find(const jce_type_info_t *const *table,
                                     const char *name);

#endif
