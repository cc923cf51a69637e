/*
 * The generated headers: <Base>_enums.h (constants and enums) and <Base>.h
 * (struct and container types and the prototypes of everything the
 * generated source exports, on top of the enums).  Layout is
 * chosen so the header stands alone: forward typedefs first (containers
 * only hold pointers), then container typedefs, then struct bodies in
 * by-value dependency order.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jce2c.h"

static int cmp_order(const void *a, const void *b) {
    const def_t *x = *(def_t *const *)a, *y = *(def_t *const *)b;
    return (x->order > y->order) - (x->order < y->order);
}

static void gen_const(def_t *d, buf_t *o) {
    const value_t *v = &d->cval;
    buf_printf(o, "#define %s ", d->cname);
    switch (d->ctype->kind) {
    case TY_BOOL: buf_puts(o, v->i ? "true" : "false"); break;
    case TY_FLOAT:
    case TY_DOUBLE: {
        /* Keep it a floating literal ("-2500" would be an int, "2500f" invalid). */
        char num[64];
        snprintf(num, sizeof num, "%.17g",
                 v->kind == VAL_INT ? (double)v->i : v->f);
        bool plain = strpbrk(num, ".eEn") == NULL;
        buf_printf(o, "(%s%s%s)", num, plain ? ".0" : "",
                   d->ctype->kind == TY_FLOAT ? "f" : "");
        break;
    }
    case TY_STRING: c_string_literal(o, v->s, v->s_len); break;
    case TY_LONG:
        buf_printf(o, v->i == INT64_MIN ? "INT64_MIN" : "INT64_C(%lld)", v->i);
        break;
    case TY_UINT: buf_printf(o, "%lluu", (unsigned long long)v->i); break;
    default:
        if (v->i == INT32_MIN)
            buf_puts(o, "INT32_MIN");
        else
            buf_printf(o, v->i < 0 ? "(%lld)" : "%lld", v->i);
    }
    buf_puts(o, "\n");
}

static void gen_enum(def_t *d, buf_t *o) {
    buf_printf(o, "enum %s {\n", d->cname);
    for (int i = 0; i < d->n_enums; i++) {
        long long v = d->enums[i].value;
        buf_printf(o, "    %s_%s = %s%lld,\n", d->module, d->enums[i].name,
                   v == INT32_MIN ? "-2147483647 - " : "",
                   v == INT32_MIN ? 1LL : v);
    }
    buf_printf(o, "};\ntypedef int32_t %s;\n", d->cname);
    buf_printf(o, "/* The enumerator's IDL name, NULL if v is not one. */\n");
    buf_printf(o, "const char *%s_name(int32_t v);\n\n", d->cname);
}

static void gen_container_typedef(type_t *t, buf_t *o) {
    const char *n = type_ctype(t);
    buf_printf(o, "#ifndef JCEV_%s_DEFINED\n#define JCEV_%s_DEFINED\n", n, n);
    if (t->kind == TY_VECTOR)
        buf_printf(o, "typedef struct %s { %s *items; uint32_t n; } %s;\n", n,
                   type_ctype(t->a), n);
    else
        buf_printf(
            o, "typedef struct %s { %s *keys; %s *vals; uint32_t n; } %s;\n", n,
            type_ctype(t->a), type_ctype(t->b), n);
    buf_puts(o, "#endif\n");
}

static void gen_struct_body(def_t *d, buf_t *o) {
    buf_printf(o, "struct %s {\n", d->cname);
    for (int i = 0; i < d->n_fields; i++) {
        field_t *f = &d->fields[i];
        buf_printf(o, "    %s %s; /* %d %s */\n", type_ctype(f->type), f->name,
                   f->tag, f->require ? "require" : "optional");
    }
    buf_puts(o, "};\n\n");
}

static void gen_struct_protos(def_t *d, buf_t *o) {
    const char *n = d->cname;
    buf_printf(o, "/* %s.%s */\n", d->module, d->name);
    buf_printf(o, "void %s_init(%s *v);\n", n, n);
    buf_printf(o, "void %s_encode(const %s *v, jce_out_t *o);\n", n, n);
    buf_printf(o, "void %s_write(jce_out_t *o, unsigned tag, const %s *v);\n",
               n, n);
    buf_printf(o, "int %s_decode(%s *v, jce_in_t *in);\n", n, n);
    buf_printf(
        o, "int %s_read(jce_in_t *in, unsigned tag, bool require, %s *v);\n", n,
        n);
    buf_printf(o, "bool %s_equal(const %s *a, const %s *b);\n", n, n, n);
    buf_printf(o, "%s *%s_dup(const %s *v);\n", n, n, n);
    buf_printf(o, "void %s_free(%s *v);\n", n, n);
    buf_printf(o, "/* Deep copy into caller storage (dst is overwritten); 0 or "
                  "JCE_ERR_NOMEM,\n"
                  " * after which dst holds nothing.  _clear frees what _copy "
                  "allocated and\n"
                  " * leaves *v zeroed; never call it on a decoded or _init'ed "
                  "value. */\n");
    buf_printf(o, "int %s_copy(%s *dst, const %s *src);\n", n, n, n);
    buf_printf(o, "void %s_clear(%s *v);\n", n, n);
    buf_printf(o, "json_t *%s_to_json(const %s *v);\n", n, n);
    buf_printf(o, "/* The strict JSON reader (jce/jce_json.h): text in, struct "
                  "out. */\n");
    buf_printf(o, "extern const jce_json_type_t %s_json;\n", n);
    buf_printf(o,
               "int %s_from_json_text(%s *v, const char *buf, size_t len,\n"
               "    jce_arena_t *a, jce_json_res_t *res);\n",
               n, n);
    buf_printf(o, "/* A jansson value through the same reader (tools). */\n");
    buf_printf(o, "int %s_from_json(%s *v, const json_t *j, jce_arena_t *a);\n",
               n, n);
    /* jce_json_res_t.seen / .bad bits, by field */
    for (int i = 0; i < d->n_fields && i < 64; i++)
        buf_printf(o, "#define %s_JSON_%s (UINT64_C(1) << %d)\n", n,
                   d->fields[i].name, i);
    buf_puts(o, "\n");
}

/*
 * <Base>_enums.h: the constants and enums alone, with nothing but
 * <stdint.h> behind them, so a module that only needs a protocol code
 * (an error number, a message state) includes the IDL's own definition
 * instead of copying the number by hand, without pulling in jansson or the
 * JCE runtime.
 */
void gen_enums_header(file_t *f, buf_t *o) {
    buf_printf(o, "/* Generated by jce2c from %s.jce. Do not edit. */\n",
               f->base);
    buf_printf(o, "#ifndef JCE2C_%s_ENUMS_H\n#define JCE2C_%s_ENUMS_H\n\n",
               f->base, f->base);
    buf_puts(o, "#include <stdbool.h>\n#include <stdint.h>\n");
    for (int i = 0; i < f->n_includes; i++)
        buf_printf(o, "#include \"%s_enums.h\"\n", f->includes[i]->base);
    buf_puts(o, "\n");
    for (int i = 0; i < f->n_defs; i++)
        if (f->defs[i]->kind == DEF_CONST) gen_const(f->defs[i], o);
    buf_puts(o, "\n");
    for (int i = 0; i < f->n_defs; i++)
        if (f->defs[i]->kind == DEF_ENUM) gen_enum(f->defs[i], o);
    buf_puts(o, "#endif\n");
}

void gen_header(file_t *f, buf_t *o) {
    buf_printf(o, "/* Generated by jce2c from %s.jce. Do not edit. */\n",
               f->base);
    buf_printf(o, "#ifndef JCE2C_%s_H\n#define JCE2C_%s_H\n\n", f->base,
               f->base);
    buf_puts(
        o, "#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n\n"
           "#include <jansson.h>\n\n"
           "#include \"jce/jce.h\"\n#include \"jce/jce_json.h\"\n"
           "#include \"jce/jce_type.h\"\n#include "
           "\"jce/jce_rpc.h\"\n");
    for (int i = 0; i < f->n_includes; i++)
        buf_printf(o, "#include \"%s.h\"\n", f->includes[i]->base);
    buf_printf(o, "#include \"%s_enums.h\"\n\n", f->base);

    def_t **structs = xcalloc((size_t)f->n_defs + 1, sizeof(def_t *));
    int ns = 0;
    for (int i = 0; i < f->n_defs; i++)
        if (f->defs[i]->kind == DEF_STRUCT) structs[ns++] = f->defs[i];
    qsort(structs, (size_t)ns, sizeof(def_t *), cmp_order);
    for (int i = 0; i < ns; i++)
        buf_printf(o, "typedef struct %s %s;\n", structs[i]->cname,
                   structs[i]->cname);
    buf_puts(o, "\n");

    int nc;
    type_t **cont = file_containers(f, &nc);
    for (int i = 0; i < nc; i++) gen_container_typedef(cont[i], o);
    buf_puts(o, "\n");

    for (int i = 0; i < ns; i++) gen_struct_body(structs[i], o);
    for (int i = 0; i < ns; i++) gen_struct_protos(structs[i], o);

    for (int i = 0; i < f->n_defs; i++)
        if (f->defs[i]->kind == DEF_INTERFACE) gen_rpc_header(f->defs[i], o);

    buf_printf(o, "/* Every struct of %s.jce, NULL-terminated. */\n", f->base);
    buf_printf(o, "extern const jce_type_info_t *const %s_types[];\n\n#endif\n",
               f->base);
}
