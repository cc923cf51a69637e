/*
 * Generated source for structs and containers: init with defaults, encode
 * under both policies, decode (zero copy, arena for arrays), equality and
 * deep copy/free.  JSON lives in gen_json.c, interfaces in gen_rpc.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jce2c.h"

/* Expression: 1 when a and b (lvalues of type t) are equal. */
static void emit_eq(buf_t *b, const type_t *t, const char *x, const char *y) {
    if (t->kind == TY_STRING)
        buf_printf(b, "jce_str_eq(%s, %s)", x, y);
    else if (type_is_bytes(t))
        buf_printf(b, "bytes_eq(&(%s), &(%s))", x, y);
    else if (t->kind == TY_STRUCT)
        buf_printf(b, "%s_equal(&(%s), &(%s))", t->ref->cname, x, y);
    else if (type_is_container(t))
        buf_printf(b, "eq_%s(&(%s), &(%s))", type_mangle(t), x, y);
    else if (t->kind == TY_FLOAT || t->kind == TY_DOUBLE)
        buf_printf(b, "real_eq(%s, %s)", x, y);
    else
        buf_printf(b, "(%s) == (%s)", x, y);
}

/* Expression: deep copy src into dst, 0 or negative. */
static void emit_copy(buf_t *b, const type_t *t, const char *dst,
                      const char *src) {
    if (t->kind == TY_STRING)
        buf_printf(b, "copy_str(&(%s), &(%s))", dst, src);
    else if (type_is_bytes(t))
        buf_printf(b, "copy_bytes(&(%s), &(%s))", dst, src);
    else if (t->kind == TY_STRUCT)
        buf_printf(b, "%s_copy(&(%s), &(%s))", t->ref->cname, dst, src);
    else if (type_is_container(t))
        buf_printf(b, "copy_%s(&(%s), &(%s))", type_mangle(t), dst, src);
    else
        buf_printf(b, "((%s) = (%s), 0)", dst, src);
}

static bool needs_release(const type_t *t) { return !type_is_scalar(t); }

static void emit_release(buf_t *b, const type_t *t, const char *x) {
    if (t->kind == TY_STRING)
        buf_printf(b, "release_str(&(%s));\n", x);
    else if (type_is_bytes(t))
        buf_printf(b, "release_bytes(&(%s));\n", x);
    else if (t->kind == TY_STRUCT)
        buf_printf(b, "%s_clear(&(%s));\n", t->ref->cname, x);
    else if (type_is_container(t))
        buf_printf(b, "release_%s(&(%s));\n", type_mangle(t), x);
}

static void gen_list_code(type_t *t, const char *m, const char *ct, buf_t *o) {
    type_t *e = t->a;
    buf_printf(o,
               "JCE2C_STATIC void put_%s(jce_out_t *o, unsigned tag, const %s "
               "*v)\n{\n",
               m, ct);
    buf_puts(o, "    jce_put_list_begin(o, tag, v->n);\n    for (uint32_t i = "
                "0; i < v->n; i++)\n        ");
    emit_put(o, e, "o", "0", "v->items[i]");
    buf_puts(o, "}\n\n");

    buf_printf(o,
               "JCE2C_STATIC int get_%s(jce_in_t *in, unsigned tag, bool "
               "require, %s *v)\n{\n",
               m, ct);
    buf_puts(o, "    uint32_t n;\n    int rc = jce_get_list_begin(in, tag, "
                "require, &n);\n"
                "    if (rc <= 0)\n        return rc;\n"
                "    v->items = NULL;\n    v->n = 0;\n"
                "    if (n) {\n        v->items = jce_in_alloc(in, (size_t)n * "
                "sizeof *v->items);\n"
                "        if (!v->items)\n            return in->err ? in->err "
                ": JCE_ERR_NOMEM;\n    }\n"
                "    for (uint32_t i = 0; i < n; i++) {\n");
    buf_printf(o, "        rc = %s(in, 0, true, &v->items[i]);\n",
               type_getter(e));
    buf_puts(o, "        if (rc < 0)\n            return rc;\n    }\n"
                "    v->n = n;\n    jce_get_container_end(in);\n    return "
                "in->err ? in->err : 1;\n}\n\n");

    buf_printf(o, "JCE2C_STATIC bool eq_%s(const %s *a, const %s *b)\n{\n", m,
               ct, ct);
    buf_puts(o, "    if (a->n != b->n)\n        return false;\n    for "
                "(uint32_t i = 0; i < a->n; i++)\n"
                "        if (!(");
    emit_eq(o, e, "a->items[i]", "b->items[i]");
    buf_puts(o, "))\n            return false;\n    return true;\n}\n\n");

    buf_printf(o, "JCE2C_STATIC void release_%s(%s *v)\n{\n", m, ct);
    if (needs_release(e)) {
        buf_puts(o, "    for (uint32_t i = 0; i < v->n; i++) {\n        ");
        emit_release(o, e, "v->items[i]");
        buf_puts(o, "    }\n");
    }
    buf_puts(o,
             "    free(v->items);\n    v->items = NULL;\n    v->n = 0;\n}\n\n");

    buf_printf(o, "JCE2C_STATIC int copy_%s(%s *d, const %s *s)\n{\n", m, ct,
               ct);
    buf_puts(
        o,
        "    d->items = NULL;\n    d->n = 0;\n    if (!s->n)\n        return "
        "0;\n"
        "    d->items = calloc(s->n, sizeof *d->items);\n"
        "    if (!d->items)\n        return JCE_ERR_NOMEM;\n    d->n = s->n;\n"
        "    for (uint32_t i = 0; i < s->n; i++)\n        if (");
    emit_copy(o, e, "d->items[i]", "s->items[i]");
    buf_puts(o,
             " < 0)\n            return JCE_ERR_NOMEM;\n    return 0;\n}\n\n");
}

/* Expression comparing keys x and y (-1/0/1), or false if keys of this
 * type are not ordered (struct/bytes/container keys keep array order). */
static bool emit_key_cmp(buf_t *b, const type_t *t, const char *x,
                         const char *y) {
    if (t->kind == TY_STRING)
        buf_printf(b, "jce_str_cmp(%s, %s)", x, y);
    else if (type_is_scalar(t))
        buf_printf(b, "((%s) > (%s)) - ((%s) < (%s))", x, y, x, y);
    else
        return false;
    return true;
}

/* Under the cpp policy maps go out in key order, as C++ std::map does;
 * under js (and for unordered key types) in array order, which keeps
 * decode-then-encode byte-exact for whatever order a peer used. */
static void gen_map_put(type_t *t, const char *m, const char *ct, buf_t *o) {
    type_t *k = t->a, *val = t->b;
    buf_t cmp = {0};
    bool ordered = emit_key_cmp(&cmp, k, "v->keys[*(const uint32_t *)a]",
                                "v->keys[*(const uint32_t *)b]");
    if (ordered) {
        buf_printf(
            o,
            "static int keycmp_%s(const void *a, const void *b, void *arg)\n{\n"
            "    const %s *v = arg;\n    return %s;\n}\n\n",
            m, ct, cmp.p);
        buf_t c2 = {0};
        emit_key_cmp(&c2, k, "v->keys[i - 1]", "v->keys[i]");
        buf_printf(
            o,
            "static bool sorted_%s(const %s *v)\n{\n"
            "    for (uint32_t i = 1; i < v->n; i++)\n        if (%s > 0)\n"
            "            return false;\n    return true;\n}\n\n",
            m, ct, c2.p);
    }
    buf_printf(o,
               "JCE2C_STATIC void put_%s(jce_out_t *o, unsigned tag, const %s "
               "*v)\n{\n",
               m, ct);
    buf_puts(o, "    jce_put_map_begin(o, tag, v->n);\n");
    if (ordered) {
        buf_printf(
            o,
            "    if (o->policy == JCE_POLICY_CPP && !sorted_%s(v)) {\n"
            "        uint32_t *idx = malloc((size_t)v->n * sizeof *idx);\n"
            "        if (!idx) {\n            if (!o->err)\n                "
            "o->err = JCE_ERR_NOMEM;\n"
            "            return;\n        }\n"
            "        for (uint32_t i = 0; i < v->n; i++)\n            idx[i] = "
            "i;\n"
            "        qsort_r(idx, v->n, sizeof *idx, keycmp_%s, (void *)v);\n"
            "        for (uint32_t i = 0; i < v->n; i++) {\n            ",
            m, m);
        emit_put(o, k, "o", "0", "v->keys[idx[i]]");
        buf_puts(o, "            ");
        emit_put(o, val, "o", "1", "v->vals[idx[i]]");
        buf_puts(o, "        }\n        free(idx);\n        return;\n    }\n");
    }
    buf_puts(o, "    for (uint32_t i = 0; i < v->n; i++) {\n        ");
    emit_put(o, k, "o", "0", "v->keys[i]");
    buf_puts(o, "        ");
    emit_put(o, val, "o", "1", "v->vals[i]");
    buf_puts(o, "    }\n}\n\n");
}

static void gen_map_code(type_t *t, const char *m, const char *ct, buf_t *o) {
    type_t *k = t->a, *val = t->b;
    gen_map_put(t, m, ct, o);

    buf_printf(o,
               "JCE2C_STATIC int get_%s(jce_in_t *in, unsigned tag, bool "
               "require, %s *v)\n{\n",
               m, ct);
    buf_puts(
        o, "    uint32_t n;\n    int rc = jce_get_map_begin(in, tag, require, "
           "&n);\n"
           "    if (rc <= 0)\n        return rc;\n"
           "    v->keys = NULL;\n    v->vals = NULL;\n    v->n = 0;\n"
           "    if (n) {\n        v->keys = jce_in_alloc(in, (size_t)n * "
           "sizeof *v->keys);\n"
           "        v->vals = jce_in_alloc(in, (size_t)n * sizeof *v->vals);\n"
           "        if (!v->keys || !v->vals)\n            return in->err ? "
           "in->err : JCE_ERR_NOMEM;\n    }\n"
           "    for (uint32_t i = 0; i < n; i++) {\n");
    buf_printf(o, "        rc = %s(in, 0, true, &v->keys[i]);\n",
               type_getter(k));
    buf_puts(o, "        if (rc < 0)\n            return rc;\n");
    buf_printf(o, "        rc = %s(in, 1, true, &v->vals[i]);\n",
               type_getter(val));
    buf_puts(o, "        if (rc < 0)\n            return rc;\n    }\n"
                "    v->n = n;\n    jce_get_container_end(in);\n    return "
                "in->err ? in->err : 1;\n}\n\n");

    buf_printf(o, "JCE2C_STATIC bool eq_%s(const %s *a, const %s *b)\n{\n", m,
               ct, ct);
    buf_puts(o, "    if (a->n != b->n)\n        return false;\n    for "
                "(uint32_t i = 0; i < a->n; i++) {\n"
                "        if (!(");
    emit_eq(o, k, "a->keys[i]", "b->keys[i]");
    buf_puts(o, ") || !(");
    emit_eq(o, val, "a->vals[i]", "b->vals[i]");
    buf_puts(o,
             "))\n            return false;\n    }\n    return true;\n}\n\n");

    buf_printf(o, "JCE2C_STATIC void release_%s(%s *v)\n{\n", m, ct);
    if (needs_release(k) || needs_release(val)) {
        buf_puts(o, "    for (uint32_t i = 0; i < v->n; i++) {\n");
        if (needs_release(k)) {
            buf_puts(o, "        ");
            emit_release(o, k, "v->keys[i]");
        }
        if (needs_release(val)) {
            buf_puts(o, "        ");
            emit_release(o, val, "v->vals[i]");
        }
        buf_puts(o, "    }\n");
    }
    buf_puts(o, "    free(v->keys);\n    free(v->vals);\n    v->keys = NULL;\n "
                "   v->vals = NULL;\n"
                "    v->n = 0;\n}\n\n");

    buf_printf(o, "JCE2C_STATIC int copy_%s(%s *d, const %s *s)\n{\n", m, ct,
               ct);
    buf_puts(o, "    d->keys = NULL;\n    d->vals = NULL;\n    d->n = 0;\n    "
                "if (!s->n)\n        return 0;\n"
                "    d->keys = calloc(s->n, sizeof *d->keys);\n    d->vals = "
                "calloc(s->n, sizeof *d->vals);\n"
                "    d->n = s->n;\n    if (!d->keys || !d->vals)\n        "
                "return JCE_ERR_NOMEM;\n"
                "    for (uint32_t i = 0; i < s->n; i++)\n        if (");
    emit_copy(o, k, "d->keys[i]", "s->keys[i]");
    buf_puts(o, " < 0 || ");
    emit_copy(o, val, "d->vals[i]", "s->vals[i]");
    buf_puts(o,
             " < 0)\n            return JCE_ERR_NOMEM;\n    return 0;\n}\n\n");
}

void gen_container_code(type_t *t, buf_t *o) {
    const char *m = type_mangle(t), *ct = type_ctype(t);
    if (t->kind == TY_VECTOR)
        gen_list_code(t, m, ct, o);
    else
        gen_map_code(t, m, ct, o);
}

/* ---- structs ---- */

static void gen_init(def_t *d, buf_t *o) {
    buf_printf(o, "void %s_init(%s *v)\n{\n    memset(v, 0, sizeof *v);\n",
               d->cname, d->cname);
    for (int i = 0; i < d->n_fields; i++) {
        field_t *f = &d->fields[i];
        if (f->type->kind == TY_STRUCT) {
            buf_printf(o, "    %s_init(&v->%s);\n", f->type->ref->cname,
                       f->name);
            continue;
        }
        if (f->def.kind == VAL_NONE) continue;
        int k = f->type->kind;
        if (k == TY_STRING) {
            if (f->def.s_len == 0) continue;
            buf_printf(o, "    v->%s = JCE_STR_LIT(", f->name);
            c_string_literal(o, f->def.s, f->def.s_len);
            buf_puts(o, ");\n");
        } else if (k == TY_FLOAT || k == TY_DOUBLE) {
            double x = f->def.kind == VAL_INT ? (double)f->def.i : f->def.f;
            if (x != 0) buf_printf(o, "    v->%s = %.17g;\n", f->name, x);
        } else if (f->def_i != 0) {
            if (f->def_i == INT64_MIN)
                buf_printf(o, "    v->%s = INT64_MIN;\n", f->name);
            else
                buf_printf(o, "    v->%s = %lld%s;\n", f->name, f->def_i,
                           k == TY_LONG || k == TY_UINT ? "LL" : "");
        }
    }
    buf_puts(o, "}\n\n");
}

/* The C++ rule (tars2cpp --check-default): which optional fields to skip. */
static void emit_skip_cond(buf_t *o, const field_t *f) {
    const type_t *t = f->type;
    const char *n = f->name;
    if (t->kind == TY_STRING) {
        buf_printf(o, "!jce_str_eq(v->%s, JCE_STR_LIT(", n);
        c_string_literal(o, f->def.kind == VAL_STRING ? f->def.s : "",
                         f->def.kind == VAL_STRING ? f->def.s_len : 0);
        buf_puts(o, "))");
    } else if (type_is_bytes(t)) {
        buf_printf(o, "v->%s.len != 0", n);
    } else if (type_is_container(t)) {
        buf_printf(o, "v->%s.n != 0", n);
    } else if (t->kind == TY_FLOAT || t->kind == TY_DOUBLE) {
        double x = f->def.kind == VAL_INT     ? (double)f->def.i
                   : f->def.kind == VAL_FLOAT ? f->def.f
                                              : 0;
        buf_printf(o, "%s(v->%s, %.17g)",
                   t->kind == TY_FLOAT ? "float_ne" : "double_ne", n, x);
    } else if (f->def_i == INT64_MIN) {
        buf_printf(o, "v->%s != INT64_MIN", n);
    } else {
        buf_printf(o, "v->%s != %lld%s", n, f->def_i,
                   t->kind == TY_LONG || t->kind == TY_UINT ? "LL" : "");
    }
}

static void gen_encode(def_t *d, buf_t *o) {
    buf_printf(o, "void %s_encode(const %s *v, jce_out_t *o)\n{\n", d->cname,
               d->cname);
    bool any_opt = false;
    for (int i = 0; i < d->n_fields; i++) {
        field_t *f = &d->fields[i];
        int k = f->type->kind;
        any_opt |=
            !f->require && k != TY_BOOL && k != TY_ENUM && k != TY_STRUCT;
    }
    if (any_opt) buf_puts(o, "    bool all = o->policy == JCE_POLICY_JS;\n");
    for (int i = 0; i < d->n_fields; i++) {
        field_t *f = &d->fields[i];
        int k = f->type->kind;
        char tag[16], val[300];
        snprintf(tag, sizeof tag, "%d", f->tag);
        snprintf(val, sizeof val, "v->%s", f->name);
        if (!f->require && k != TY_BOOL && k != TY_ENUM && k != TY_STRUCT) {
            buf_puts(o, "    if (all || ");
            emit_skip_cond(o, f);
            buf_puts(o, ")\n        ");
        } else {
            buf_puts(o, "    ");
        }
        emit_put(o, f->type, "o", tag, val);
    }
    buf_puts(o, "}\n\n");
    buf_printf(o,
               "void %s_write(jce_out_t *o, unsigned tag, const %s *v)\n{\n"
               "    jce_put_struct_begin(o, tag);\n    %s_encode(v, o);\n"
               "    jce_put_struct_end(o);\n}\n\n",
               d->cname, d->cname, d->cname);
}

static void gen_decode(def_t *d, buf_t *o) {
    const char *n = d->cname;
    buf_printf(o, "static int %s_fields(%s *v, jce_in_t *in)\n{\n", n, n);
    for (int i = 0; i < d->n_fields; i++) {
        field_t *f = &d->fields[i];
        buf_printf(o,
                   "    if (%s(in, %d, %s, &v->%s) < 0)\n        return "
                   "in->err ? in->err : JCE_ERR_BAD_VALUE;\n",
                   type_getter(f->type), f->tag, f->require ? "true" : "false",
                   f->name);
    }
    buf_puts(o, "    return 0;\n}\n\n");
    buf_printf(o,
               "int %s_decode(%s *v, jce_in_t *in)\n{\n    %s_init(v);\n"
               "    if (in->err)\n        return in->err;\n    return "
               "%s_fields(v, in);\n}\n\n",
               n, n, n, n);
    buf_printf(
        o,
        "int %s_read(jce_in_t *in, unsigned tag, bool require, %s *v)\n{\n"
        "    int rc = jce_get_struct_begin(in, tag, require);\n"
        "    if (rc <= 0)\n        return rc;\n    %s_init(v);\n"
        "    rc = %s_fields(v, in);\n    if (rc < 0)\n        return rc;\n"
        "    rc = jce_get_struct_end(in);\n    return rc < 0 ? rc : 1;\n}\n\n",
        n, n, n, n);
}

static void gen_equal(def_t *d, buf_t *o) {
    buf_printf(o, "bool %s_equal(const %s *a, const %s *b)\n{\n    return ",
               d->cname, d->cname, d->cname);
    for (int i = 0; i < d->n_fields; i++) {
        char x[300], y[300];
        snprintf(x, sizeof x, "a->%s", d->fields[i].name);
        snprintf(y, sizeof y, "b->%s", d->fields[i].name);
        if (i) buf_puts(o, "\n        && ");
        buf_puts(o, "(");
        emit_eq(o, d->fields[i].type, x, y);
        buf_puts(o, ")");
    }
    buf_puts(o, ";\n}\n\n");
}

static void gen_copy(def_t *d, buf_t *o) {
    const char *n = d->cname;
    buf_printf(o, "void %s_clear(%s *v)\n{\n", n, n);
    for (int i = 0; i < d->n_fields; i++) {
        char x[300];
        snprintf(x, sizeof x, "v->%s", d->fields[i].name);
        if (needs_release(d->fields[i].type)) {
            buf_puts(o, "    ");
            emit_release(o, d->fields[i].type, x);
        }
    }
    buf_puts(o, "    memset(v, 0, sizeof *v);\n}\n\n");

    buf_printf(o,
               "int %s_copy(%s *dst, const %s *src)\n{\n    memset(dst, 0, "
               "sizeof *dst);\n",
               n, n, n);
    for (int i = 0; i < d->n_fields; i++) {
        char x[300], y[300];
        snprintf(x, sizeof x, "dst->%s", d->fields[i].name);
        snprintf(y, sizeof y, "src->%s", d->fields[i].name);
        buf_puts(o, "    if (");
        emit_copy(o, d->fields[i].type, x, y);
        buf_puts(o, " < 0)\n        goto fail;\n");
    }
    buf_printf(o,
               "    return 0;\nfail:\n    %s_clear(dst);\n    return "
               "JCE_ERR_NOMEM;\n}\n\n",
               n);

    buf_printf(
        o,
        "%s *%s_dup(const %s *v)\n{\n    %s *p = malloc(sizeof *p);\n"
        "    if (!p)\n        return NULL;\n    if (%s_copy(p, v) < 0) {\n"
        "        free(p);\n        return NULL;\n    }\n    return p;\n}\n\n",
        n, n, n, n, n);
    buf_printf(o,
               "void %s_free(%s *v)\n{\n    if (!v)\n        return;\n    "
               "%s_clear(v);\n"
               "    free(v);\n}\n\n",
               n, n, n);
}

void gen_struct_code(def_t *d, buf_t *o) {
    buf_printf(o, "/* ---- %s.%s ---- */\n\n", d->module, d->name);
    gen_init(d, o);
    gen_encode(d, o);
    gen_decode(d, o);
    gen_equal(d, o);
    gen_copy(d, o);
}
