/*
 * The generated .c file: a prelude of small static helpers, the container
 * helpers, per-struct code, enum names, interfaces and the type table.
 * Helpers are marked unused so a file that does not need one still builds
 * under -Werror.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jce2c.h"

static const char prelude[] =
    "#define JCE2C_STATIC static __attribute__((unused))\n\n"
    "/* The C++ generator compares floating defaults with an epsilon. */\n"
    "JCE2C_STATIC bool float_ne(float a, float b)\n{\n    float d = a - b;\n"
    "    return d < -FLT_EPSILON || d > FLT_EPSILON;\n}\n\n"
    "JCE2C_STATIC bool double_ne(double a, double b)\n{\n    double d = a - "
    "b;\n"
    "    return d < -DBL_EPSILON || d > DBL_EPSILON;\n}\n\n"
    "/* A NaN equals itself here, so a decoded value equals its re-decode. */\n"
    "JCE2C_STATIC bool real_eq(double a, double b)\n{\n    return a == b || (a "
    "!= a && b != b);\n}\n\n"
    "JCE2C_STATIC bool bytes_eq(const jce_bytes_t *a, const jce_bytes_t "
    "*b)\n{\n"
    "    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, "
    "a->len) == 0);\n}\n\n"
    "/* Copies own their bytes; an empty copy points at a literal and owns "
    "nothing. */\n"
    "JCE2C_STATIC int copy_str(jce_str_t *d, const jce_str_t *s)\n{\n"
    "    d->data = \"\";\n    d->len = 0;\n    if (!s->len)\n        return "
    "0;\n"
    "    char *p = malloc(s->len);\n    if (!p)\n        return "
    "JCE_ERR_NOMEM;\n"
    "    memcpy(p, s->data, s->len);\n    d->data = p;\n    d->len = s->len;\n "
    "   return 0;\n}\n\n"
    "JCE2C_STATIC int copy_bytes(jce_bytes_t *d, const jce_bytes_t *s)\n{\n"
    "    d->data = NULL;\n    d->len = 0;\n    if (!s->len)\n        return "
    "0;\n"
    "    uint8_t *p = malloc(s->len);\n    if (!p)\n        return "
    "JCE_ERR_NOMEM;\n"
    "    memcpy(p, s->data, s->len);\n    d->data = p;\n    d->len = s->len;\n "
    "   return 0;\n}\n\n"
    "JCE2C_STATIC void release_str(jce_str_t *s)\n{\n"
    "    if (s->len)\n        free((void *)s->data);\n    s->data = NULL;\n    "
    "s->len = 0;\n}\n\n"
    "JCE2C_STATIC void release_bytes(jce_bytes_t *b)\n{\n"
    "    if (b->len)\n        free((void *)b->data);\n    b->data = NULL;\n    "
    "b->len = 0;\n}\n\n";

static void gen_enum_names(def_t *d, buf_t *o) {
    buf_printf(o, "const char *%s_name(int32_t v)\n{\n    switch (v) {\n",
               d->cname);
    for (int i = 0; i < d->n_enums; i++) {
        bool dup =
            false; /* two enumerators may share a value: first name wins */
        for (int k = 0; k < i; k++)
            dup |= d->enums[k].value == d->enums[i].value;
        if (!dup)
            buf_printf(o, "    case %s_%s: return \"%s\";\n", d->module,
                       d->enums[i].name, d->enums[i].name);
    }
    buf_puts(o, "    default: return NULL;\n    }\n}\n\n");
}

static void gen_container_protos(type_t *t, buf_t *o) {
    const char *m = type_mangle(t), *ct = type_ctype(t);
    buf_printf(
        o,
        "JCE2C_STATIC void put_%s(jce_out_t *o, unsigned tag, const %s *v);\n",
        m, ct);
    buf_printf(o,
               "JCE2C_STATIC int get_%s(jce_in_t *in, unsigned tag, bool "
               "require, %s *v);\n",
               m, ct);
    buf_printf(o, "JCE2C_STATIC bool eq_%s(const %s *a, const %s *b);\n", m, ct,
               ct);
    buf_printf(o, "JCE2C_STATIC void release_%s(%s *v);\n", m, ct);
    buf_printf(o, "JCE2C_STATIC int copy_%s(%s *d, const %s *s);\n", m, ct, ct);
    buf_printf(o, "JCE2C_STATIC json_t *json_%s(const %s *v);\n", m, ct);
}

static void gen_type_table(file_t *f, buf_t *o) {
    for (int i = 0; i < f->n_defs; i++) {
        def_t *d = f->defs[i];
        if (d->kind != DEF_STRUCT) continue;
        const char *n = d->cname;
        buf_printf(
            o,
            "static void %s_init_v(void *v) { %s_init(v); }\n"
            "static void %s_encode_v(const void *v, jce_out_t *o) { "
            "%s_encode(v, o); }\n"
            "static int %s_decode_v(void *v, jce_in_t *in) { return "
            "%s_decode(v, in); }\n"
            "static json_t *%s_to_json_v(const void *v) { return "
            "%s_to_json(v); }\n"
            "static int %s_from_json_v(void *v, const json_t *j, jce_arena_t "
            "*a)\n"
            "{\n    return %s_from_json(v, j, a);\n}\n"
            "static bool %s_equal_v(const void *a, const void *b) { return "
            "%s_equal(a, b); }\n"
            "static const jce_type_info_t %s_type = {\n"
            "    \"%s.%s\", sizeof(%s), %s_init_v, %s_encode_v, %s_decode_v,\n"
            "    %s_to_json_v, %s_from_json_v, %s_equal_v,\n};\n\n",
            n, n, n, n, n, n, n, n, n, n, n, n, n, d->module, d->name, n, n, n,
            n, n, n, n);
    }
    buf_printf(o, "const jce_type_info_t *const %s_types[] = {\n", f->base);
    for (int i = 0; i < f->n_defs; i++)
        if (f->defs[i]->kind == DEF_STRUCT)
            buf_printf(o, "    &%s_type,\n", f->defs[i]->cname);
    buf_puts(o, "    NULL,\n};\n");
}

void gen_source(file_t *f, buf_t *o) {
    buf_printf(o, "/* Generated by jce2c from %s.jce. Do not edit. */\n",
               f->base);
    /* qsort_r orders map keys under the cpp policy */
    buf_puts(o, "#ifndef _GNU_SOURCE\n#define _GNU_SOURCE\n#endif\n");
    buf_printf(
        o,
        "#include <float.h>\n#include <stddef.h>\n#include <stdio.h>\n#include "
        "<stdlib.h>\n#include <string.h>\n\n"
        "#include \"%s.h\"\n\n",
        f->base);
    buf_puts(o, prelude);
    gen_json_prelude(o);
    int nc;
    type_t **cont = file_containers(f, &nc);
    for (int i = 0; i < nc; i++) gen_container_protos(cont[i], o);
    buf_puts(o, "\n");
    for (int i = 0; i < nc; i++) {
        gen_container_code(cont[i], o);
        gen_json_container_code(cont[i], o);
    }
    for (int i = 0; i < f->n_defs; i++) {
        def_t *d = f->defs[i];
        if (d->kind == DEF_ENUM)
            gen_enum_names(d, o);
        else if (d->kind == DEF_STRUCT) {
            gen_struct_code(d, o);
            gen_json_struct_code(d, o);
        }
    }
    bool any_interface = false;
    for (int i = 0; i < f->n_defs; i++)
        any_interface |= f->defs[i]->kind == DEF_INTERFACE;
    if (any_interface) gen_rpc_prelude(o);
    for (int i = 0; i < f->n_defs; i++)
        if (f->defs[i]->kind == DEF_INTERFACE) gen_rpc_code(f->defs[i], o);
    gen_type_table(f, o);
}
