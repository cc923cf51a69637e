/*
 * Naming and per-type code fragments shared by the generators.  Every IDL
 * type maps to one C type, one mangled name m(T) (the generated-code
 * conventions), and one getter/putter pair with the same shape for every
 * type, so containers of anything nest without special cases.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jce2c.h"

static const char *const prim_ctype[] = {
    "bool",     "int8_t",  "uint8_t", "int16_t", "uint16_t",  "int32_t",
    "uint32_t", "int64_t", "float",   "double",  "jce_str_t",
};
static const char *const prim_mangle[] = {
    "bool",   "int8",  "uint8", "int16",  "uint16", "int32",
    "uint32", "int64", "float", "double", "string",
};
static const char *const prim_jce[] = {
    "bool",   "int8",  "uint8", "int16",  "uint16", "int32",
    "uint32", "int64", "float", "double", "str",
};

bool type_is_bytes(const type_t *t) {
    return t->kind == TY_VECTOR && t->a->kind == TY_BYTE;
}

bool type_is_container(const type_t *t) {
    return (t->kind == TY_VECTOR && !type_is_bytes(t)) || t->kind == TY_MAP;
}

bool type_is_scalar(const type_t *t) {
    return t->kind < TY_STRING || t->kind == TY_ENUM;
}

const char *type_mangle(const type_t *t) {
    if (t->kind <= TY_STRING) return prim_mangle[t->kind];
    if (type_is_bytes(t)) return "bytes";
    if (t->kind == TY_VECTOR) return xasprintf("jcev_%s", type_mangle(t->a));
    if (t->kind == TY_MAP)
        return xasprintf("jcem_%s_%s", type_mangle(t->a), type_mangle(t->b));
    return t->ref->cname;
}

const char *type_ctype(const type_t *t) {
    if (t->kind <= TY_STRING) return prim_ctype[t->kind];
    if (type_is_bytes(t)) return "jce_bytes_t";
    if (t->kind == TY_ENUM) return "int32_t";
    if (t->kind == TY_VOID) return "void";
    return type_mangle(t);
}

const char *type_getter(const type_t *t) {
    if (t->kind <= TY_STRING) return xasprintf("jce_get_%s", prim_jce[t->kind]);
    if (type_is_bytes(t)) return "jce_get_bytes";
    if (t->kind == TY_ENUM) return "jce_get_int32";
    if (t->kind == TY_STRUCT) return xasprintf("%s_read", t->ref->cname);
    return xasprintf("get_%s", type_mangle(t));
}

void emit_put(buf_t *b, const type_t *t, const char *o, const char *tag,
              const char *val) {
    if (t->kind <= TY_STRING)
        buf_printf(b, "jce_put_%s(%s, %s, %s);\n", prim_jce[t->kind], o, tag,
                   val);
    else if (type_is_bytes(t))
        buf_printf(b, "jce_put_bytes(%s, %s, (%s).data, (%s).len);\n", o, tag,
                   val, val);
    else if (t->kind == TY_ENUM)
        buf_printf(b, "jce_put_int32(%s, %s, %s);\n", o, tag, val);
    else if (t->kind == TY_STRUCT)
        buf_printf(b, "%s_write(%s, %s, &(%s));\n", t->ref->cname, o, tag, val);
    else
        buf_printf(b, "put_%s(%s, %s, &(%s));\n", type_mangle(t), o, tag, val);
}

/* Octal escapes (at most 3 digits) cannot swallow a following character,
 * unlike \x, so any byte string round-trips through the C compiler. */
void c_string_literal(buf_t *b, const char *s, size_t n) {
    buf_puts(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            buf_printf(b, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f && c != '?')
            buf_put(b, (const char *)&c, 1);
        else
            buf_printf(b, "\\%03o", c);
    }
    buf_puts(b, "\"");
}

static void add_container(type_t *t, type_t ***list, int *n) {
    if (t->kind == TY_VECTOR && !type_is_bytes(t)) add_container(t->a, list, n);
    if (t->kind == TY_MAP) {
        add_container(t->a, list, n);
        add_container(t->b, list, n);
    }
    if (!type_is_container(t)) return;
    const char *m = type_mangle(t);
    for (int i = 0; i < *n; i++)
        if (strcmp(type_mangle((*list)[i]), m) == 0) return;
    *list = realloc(*list, sizeof(type_t *) * (size_t)(*n + 1));
    (*list)[(*n)++] = t;
}

type_t **file_containers(file_t *f, int *n) {
    type_t **list = NULL;
    *n = 0;
    for (int i = 0; i < f->n_defs; i++) {
        def_t *d = f->defs[i];
        for (int k = 0; k < d->n_fields; k++)
            add_container(d->fields[k].type, &list, n);
        for (int k = 0; k < d->n_ops; k++) {
            add_container(d->ops[k].ret, &list, n);
            for (int p = 0; p < d->ops[k].n_params; p++)
                add_container(d->ops[k].params[p].type, &list, n);
        }
    }
    return list;
}
