/*
 * JSON mapping of generated types (jansson), used by the HTTP push API, the
 * CLI and the interop tests.  Integers are range-checked against the C type
 * on the way in, strings and byte vectors are copied into the caller's
 * arena, and vector<byte> travels as standard padded base64.
 */
#include <stdio.h>
#include <string.h>

#include "jce2c.h"

static const char json_prelude[] =
    "JCE2C_STATIC json_t *str_to_json(jce_str_t s)\n{\n"
    "    const char *p = s.data ? s.data : \"\";\n"
    "    /* Strings are opaque bytes on the wire, but JSON text must be "
    "UTF-8:\n"
    "     * a string that is not gives NULL, and so does the whole value. */\n"
    "    return json_stringn(p, s.len);\n}\n\n"
    "static const char b64_alphabet[] =\n"
    "    "
    "\"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\";\n\n"
    "JCE2C_STATIC json_t *bytes_to_json(jce_bytes_t b)\n{\n"
    "    size_t n = ((size_t)b.len + 2) / 3 * 4;\n"
    "    char *p = malloc(n + 1), *q = p;\n"
    "    if (!p)\n        return NULL;\n"
    "    for (uint32_t i = 0; i < b.len; i += 3) {\n"
    "        uint32_t w = (uint32_t)b.data[i] << 16;\n"
    "        if (i + 1 < b.len)\n            w |= (uint32_t)b.data[i + 1] << "
    "8;\n"
    "        if (i + 2 < b.len)\n            w |= b.data[i + 2];\n"
    "        *q++ = b64_alphabet[w >> 18];\n        *q++ = b64_alphabet[(w >> "
    "12) & 63];\n"
    "        *q++ = i + 1 < b.len ? b64_alphabet[(w >> 6) & 63] : '=';\n"
    "        *q++ = i + 2 < b.len ? b64_alphabet[w & 63] : '=';\n    }\n"
    "    json_t *j = json_stringn(p, n);\n    free(p);\n    return j;\n}\n\n"
    "static int b64_value(char c)\n{\n"
    "    const char *s = c ? strchr(b64_alphabet, c) : NULL;\n"
    "    return s ? (int)(s - b64_alphabet) : -1;\n}\n\n"
    "JCE2C_STATIC int fj_bytes(const json_t *j, jce_bytes_t *v, jce_arena_t "
    "*a)\n{\n"
    "    if (!json_is_string(j))\n        return JCE_ERR_TYPE;\n"
    "    const char *s = json_string_value(j);\n    size_t n = "
    "json_string_length(j);\n"
    "    if (n % 4)\n        return JCE_ERR_BAD_VALUE;\n"
    "    size_t pad = n && s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;\n"
    "    size_t len = n / 4 * 3 - pad;\n"
    "    if (len > JCE_MAX_STRING)\n        return JCE_ERR_LIMIT;\n"
    "    uint8_t *p = len ? jce_arena_alloc(a, len) : NULL;\n"
    "    if (len && !p)\n        return JCE_ERR_NOMEM;\n"
    "    size_t o = 0;\n"
    "    for (size_t i = 0; i < n; i += 4) {\n"
    "        uint32_t w = 0;\n"
    "        for (size_t k = 0; k < 4; k++) {\n"
    "            int d = b64_value(s[i + k]);\n"
    "            if (d < 0) {\n"
    "                /* '=' only in the padding positions */\n"
    "                if (i + k < n - pad || s[i + k] != '=')\n"
    "                    return JCE_ERR_BAD_VALUE;\n"
    "                d = 0;\n            }\n"
    "            w = w << 6 | (uint32_t)d;\n        }\n"
    "        uint8_t t3[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), "
    "(uint8_t)w};\n"
    "        for (int k = 0; k < 3 && o < len; k++)\n"
    "            p[o++] = t3[k];\n    }\n"
    "    v->data = p;\n    v->len = (uint32_t)len;\n    return 0;\n}\n\n"
    "JCE2C_STATIC int fj_string(const json_t *j, jce_str_t *v, jce_arena_t "
    "*a)\n{\n"
    "    if (!json_is_string(j))\n        return JCE_ERR_TYPE;\n"
    "    size_t n = json_string_length(j);\n"
    "    if (n > JCE_MAX_STRING)\n        return JCE_ERR_LIMIT;\n"
    "    char *p = n ? jce_arena_alloc(a, n) : NULL;\n"
    "    if (n && !p)\n        return JCE_ERR_NOMEM;\n"
    "    if (n)\n        memcpy(p, json_string_value(j), n);\n"
    "    v->data = n ? p : \"\";\n    v->len = (uint32_t)n;\n    return "
    "0;\n}\n\n"
    "JCE2C_STATIC int fj_bool(const json_t *j, bool *v, jce_arena_t *a)\n{\n"
    "    (void)a;\n    if (!json_is_boolean(j))\n        return JCE_ERR_TYPE;\n"
    "    *v = json_is_true(j);\n    return 0;\n}\n\n"
    "JCE2C_STATIC int fj_double(const json_t *j, double *v, jce_arena_t "
    "*a)\n{\n"
    "    (void)a;\n    if (!json_is_number(j))\n        return JCE_ERR_TYPE;\n"
    "    *v = json_number_value(j);\n    return 0;\n}\n\n"
    "JCE2C_STATIC int fj_float(const json_t *j, float *v, jce_arena_t *a)\n{\n"
    "    double d;\n    int rc = fj_double(j, &d, a);\n"
    "    if (rc == 0)\n        *v = (float)d;\n    return rc;\n}\n\n"
    "static int fj_range(const json_t *j, long long lo, long long hi, long "
    "long *v)\n{\n"
    "    if (!json_is_integer(j))\n        return JCE_ERR_TYPE;\n"
    "    long long x = json_integer_value(j);\n"
    "    if (x < lo || x > hi)\n        return JCE_ERR_LIMIT;\n"
    "    *v = x;\n    return 0;\n}\n\n";

static const struct {
    const char *name, *ctype, *lo, *hi;
} ints[] = {
    {"int8", "int8_t", "INT8_MIN", "INT8_MAX"},
    {"uint8", "uint8_t", "0", "UINT8_MAX"},
    {"int16", "int16_t", "INT16_MIN", "INT16_MAX"},
    {"uint16", "uint16_t", "0", "UINT16_MAX"},
    {"int32", "int32_t", "INT32_MIN", "INT32_MAX"},
    {"uint32", "uint32_t", "0", "UINT32_MAX"},
    {"int64", "int64_t", "INT64_MIN", "INT64_MAX"},
};

void gen_json_prelude(buf_t *o) {
    buf_puts(o, json_prelude);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        buf_printf(
            o,
            "JCE2C_STATIC int fj_%s(const json_t *j, %s *v, jce_arena_t "
            "*a)\n{\n"
            "    long long x;\n    (void)a;\n    int rc = fj_range(j, %s, %s, "
            "&x);\n"
            "    if (rc == 0)\n        *v = (%s)x;\n    return rc;\n}\n\n",
            ints[i].name, ints[i].ctype, ints[i].lo, ints[i].hi, ints[i].ctype);
}

/* Expression: a new json_t for lvalue x, NULL on failure. */
static void emit_to_json(buf_t *b, const type_t *t, const char *x) {
    int k = t->kind;
    if (k == TY_BOOL)
        buf_printf(b, "json_boolean(%s)", x);
    else if (k == TY_FLOAT || k == TY_DOUBLE)
        buf_printf(b, "json_real((double)(%s))", x);
    else if (k == TY_STRING)
        buf_printf(b, "str_to_json(%s)", x);
    else if (type_is_bytes(t))
        buf_printf(b, "bytes_to_json(%s)", x);
    else if (k == TY_STRUCT)
        buf_printf(b, "%s_to_json(&(%s))", t->ref->cname, x);
    else if (type_is_container(t))
        buf_printf(b, "json_%s(&(%s))", type_mangle(t), x);
    else
        buf_printf(b, "json_integer((json_int_t)(%s))", x);
}

/* Expression: fill lvalue x from json j, 0 or negative. */
static void emit_from_json(buf_t *b, const type_t *t, const char *j,
                           const char *x) {
    int k = t->kind;
    if (k == TY_STRUCT)
        buf_printf(b, "%s_from_json(&(%s), %s, a)", t->ref->cname, x, j);
    else if (k == TY_ENUM)
        buf_printf(b, "fj_int32(%s, &(%s), a)", j, x);
    else if (type_is_bytes(t))
        buf_printf(b, "fj_bytes(%s, &(%s), a)", j, x);
    else
        buf_printf(b, "fj_%s(%s, &(%s), a)", type_mangle(t), j, x);
}

static void gen_json_vector(type_t *t, const char *m, const char *ct,
                            buf_t *o) {
    buf_printf(o,
               "JCE2C_STATIC json_t *json_%s(const %s *v)\n{\n    json_t *arr "
               "= json_array();\n"
               "    if (!arr)\n        return NULL;\n    for (uint32_t i = 0; "
               "i < v->n; i++) {\n"
               "        if (json_array_append_new(arr, ",
               m, ct);
    emit_to_json(o, t->a, "v->items[i]");
    buf_puts(o, ") < 0) {\n            json_decref(arr);\n            return "
                "NULL;\n        }\n    }\n"
                "    return arr;\n}\n\n");
    buf_printf(
        o,
        "JCE2C_STATIC int fj_%s(const json_t *j, %s *v, jce_arena_t *a)\n{\n",
        m, ct);
    buf_puts(
        o, "    v->items = NULL;\n    v->n = 0;\n    if (!json_is_array(j))\n  "
           "      return JCE_ERR_TYPE;\n"
           "    size_t n = json_array_size(j);\n    if (n > UINT32_MAX)\n      "
           "  return JCE_ERR_LIMIT;\n"
           "    if (n) {\n        v->items = jce_arena_alloc(a, n * sizeof "
           "*v->items);\n"
           "        if (!v->items)\n            return JCE_ERR_NOMEM;\n    }\n"
           "    for (size_t i = 0; i < n; i++) {\n        int rc = ");
    emit_from_json(o, t->a, "json_array_get(j, i)", "v->items[i]");
    buf_puts(o, ";\n        if (rc < 0)\n            return rc;\n    }\n    "
                "v->n = (uint32_t)n;\n"
                "    return 0;\n}\n\n");
}

static void gen_json_map(type_t *t, const char *m, const char *ct, buf_t *o) {
    bool obj = t->a->kind == TY_STRING;
    buf_printf(o, "JCE2C_STATIC json_t *json_%s(const %s *v)\n{\n", m, ct);
    buf_printf(o,
               "    json_t *r = %s;\n    if (!r)\n        return NULL;\n"
               "    for (uint32_t i = 0; i < v->n; i++) {\n",
               obj ? "json_object()" : "json_array()");
    if (obj) {
        buf_puts(o, "        const char *k = v->keys[i].data ? v->keys[i].data "
                    ": \"\";\n"
                    "        if (json_object_setn_new(r, k, v->keys[i].len, ");
        emit_to_json(o, t->b, "v->vals[i]");
        buf_puts(o, ") < 0) {\n");
    } else {
        buf_puts(o, "        json_t *pair = json_pack(\"[oo]\", ");
        emit_to_json(o, t->a, "v->keys[i]");
        buf_puts(o, ", ");
        emit_to_json(o, t->b, "v->vals[i]");
        buf_puts(o, ");\n        if (json_array_append_new(r, pair) < 0) {\n");
    }
    buf_puts(o, "            json_decref(r);\n            return NULL;\n       "
                " }\n    }\n    return r;\n}\n\n");

    buf_printf(
        o,
        "JCE2C_STATIC int fj_%s(const json_t *j, %s *v, jce_arena_t *a)\n{\n",
        m, ct);
    buf_printf(o,
               "    v->keys = NULL;\n    v->vals = NULL;\n    v->n = 0;\n"
               "    if (!%s(j))\n        return JCE_ERR_TYPE;\n"
               "    size_t n = %s(j);\n    if (n > UINT32_MAX)\n        return "
               "JCE_ERR_LIMIT;\n"
               "    if (n) {\n        v->keys = jce_arena_alloc(a, n * sizeof "
               "*v->keys);\n"
               "        v->vals = jce_arena_alloc(a, n * sizeof *v->vals);\n"
               "        if (!v->keys || !v->vals)\n            return "
               "JCE_ERR_NOMEM;\n    }\n"
               "    size_t i = 0;\n    int rc;\n",
               obj ? "json_is_object" : "json_is_array",
               obj ? "json_object_size" : "json_array_size");
    if (obj) {
        buf_puts(
            o,
            "    const char *key;\n    size_t key_len;\n    json_t *val;\n"
            "    json_object_keylen_foreach((json_t *)j, key, key_len, val) {\n"
            "        char *kp = key_len ? jce_arena_alloc(a, key_len) : NULL;\n"
            "        if (key_len && !kp)\n            return JCE_ERR_NOMEM;\n"
            "        if (key_len)\n            memcpy(kp, key, key_len);\n"
            "        v->keys[i].data = key_len ? kp : \"\";\n"
            "        v->keys[i].len = (uint32_t)key_len;\n        rc = ");
        emit_from_json(o, t->b, "val", "v->vals[i]");
        buf_puts(o, ";\n        if (rc < 0)\n            return rc;\n        "
                    "i++;\n    }\n");
    } else {
        buf_puts(
            o,
            "    for (; i < n; i++) {\n        const json_t *pair = "
            "json_array_get(j, i);\n"
            "        if (!json_is_array(pair) || json_array_size(pair) != 2)\n"
            "            return JCE_ERR_TYPE;\n        rc = ");
        emit_from_json(o, t->a, "json_array_get(pair, 0)", "v->keys[i]");
        buf_puts(
            o, ";\n        if (rc < 0)\n            return rc;\n        rc = ");
        emit_from_json(o, t->b, "json_array_get(pair, 1)", "v->vals[i]");
        buf_puts(o, ";\n        if (rc < 0)\n            return rc;\n    }\n");
    }
    buf_puts(o, "    v->n = (uint32_t)i;\n    return 0;\n}\n\n");
}

void gen_json_container_code(type_t *t, buf_t *o) {
    if (t->kind == TY_VECTOR)
        gen_json_vector(t, type_mangle(t), type_ctype(t), o);
    else
        gen_json_map(t, type_mangle(t), type_ctype(t), o);
}

void gen_json_struct_code(def_t *d, buf_t *o) {
    const char *n = d->cname;
    buf_printf(
        o,
        "json_t *%s_to_json(const %s *v)\n{\n    json_t *o = json_object();\n"
        "    if (!o)\n        return NULL;\n",
        n, n);
    for (int i = 0; i < d->n_fields; i++) {
        char x[300];
        snprintf(x, sizeof x, "v->%s", d->fields[i].name);
        buf_printf(o, "    if (json_object_set_new(o, \"%s\", ",
                   d->fields[i].name);
        emit_to_json(o, d->fields[i].type, x);
        buf_puts(o, ") < 0)\n        goto fail;\n");
    }
    buf_puts(
        o,
        "    return o;\nfail:\n    json_decref(o);\n    return NULL;\n}\n\n");

    buf_printf(o,
               "int %s_from_json(%s *v, const json_t *j, jce_arena_t *a)\n{\n"
               "    %s_init(v);\n    if (!json_is_object(j))\n        return "
               "JCE_ERR_TYPE;\n"
               "    const json_t *x;\n    int rc;\n",
               n, n, n);
    for (int i = 0; i < d->n_fields; i++) {
        field_t *f = &d->fields[i];
        char x[300];
        snprintf(x, sizeof x, "v->%s", f->name);
        buf_printf(o,
                   "    x = json_object_get(j, \"%s\");\n    if (x && "
                   "!json_is_null(x)) {\n        rc = ",
                   f->name);
        emit_from_json(o, f->type, "x", x);
        buf_puts(o, ";\n        if (rc < 0)\n            return rc;\n    }");
        if (f->require)
            buf_puts(o, " else {\n        return JCE_ERR_REQUIRE;\n    }");
        buf_puts(o, "\n");
    }
    buf_puts(o,
             "    (void)x;\n    (void)rc;\n    (void)a;\n    return 0;\n}\n\n");
}
