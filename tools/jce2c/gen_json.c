/*
 * JSON mapping of generated types.  Out: M_S_to_json() builds a jansson
 * value (the gateway's JSON frames, the CLI, the interop tests).  In: a
 * jce_json_type_t table per struct and container, read by the strict
 * reader of src/jce/jce_json.c (M_S_from_json_text(), and M_S_from_json()
 * for a jansson value, through its text).  vector<byte> travels as
 * standard padded base64.
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
    "    json_t *j = json_stringn(p, n);\n    free(p);\n    return j;\n}\n\n";

void gen_json_prelude(buf_t *o) { buf_puts(o, json_prelude); }

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

/* Expression: the address of t's jce_json_type_t table. */
static const char *json_desc(const type_t *t) {
    static const char *const scalar[] = {
        [TY_BOOL] = "bool",     [TY_BYTE] = "int8",     [TY_UBYTE] = "uint8",
        [TY_SHORT] = "int16",   [TY_USHORT] = "uint16", [TY_INT] = "int32",
        [TY_UINT] = "uint32",   [TY_LONG] = "int64",    [TY_FLOAT] = "float",
        [TY_DOUBLE] = "double", [TY_STRING] = "string", [TY_ENUM] = "int32",
    };
    if (type_is_bytes(t)) return "&jce_json_bytes";
    if (t->kind == TY_STRUCT) return xasprintf("&%s_json", t->ref->cname);
    if (type_is_container(t)) return xasprintf("&jt_%s", type_mangle(t));
    return xasprintf("&jce_json_%s", scalar[t->kind]);
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
    buf_printf(o,
               "static const jce_json_type_t jt_%s = {JCE_JSON_VECTOR, "
               "sizeof(%s), %s, NULL, NULL, NULL, 0};\n\n",
               m, ct, json_desc(t->a));
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
    buf_printf(o,
               "static const jce_json_type_t jt_%s = {JCE_JSON_MAP, "
               "sizeof(%s), %s, %s, NULL, NULL, 0};\n\n",
               m, ct, json_desc(t->a), json_desc(t->b));
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

    /* The reader's table: fields in tag order, so the M_S_JSON_<field>
     * bits of the header count the same way. */
    buf_printf(o, "static void %s_json_init(void *v) { %s_init(v); }\n", n, n);
    if (d->n_fields) {
        buf_printf(o, "static const jce_json_field_t %s_json_fields[] = {\n",
                   n);
        for (int i = 0; i < d->n_fields; i++) {
            field_t *f = &d->fields[i];
            buf_printf(o, "    {\"%s\", %zu, offsetof(%s, %s), %s, %s},\n",
                       f->name, strlen(f->name), n, f->name,
                       f->require ? "true" : "false", json_desc(f->type));
        }
        buf_puts(o, "};\n");
    }
    buf_printf(o,
               "const jce_json_type_t %s_json = {JCE_JSON_STRUCT, sizeof(%s), "
               "NULL, NULL,\n    %s_json_init, %s%s, %d};\n\n",
               n, n, n, d->n_fields ? n : "NULL",
               d->n_fields ? "_json_fields" : "", d->n_fields);
    buf_printf(o,
               "int %s_from_json_text(%s *v, const char *buf, size_t len,\n"
               "    jce_arena_t *a, jce_json_res_t *res)\n{\n"
               "    return jce_json_decode(&%s_json, v, buf, len, a, 0, res);\n"
               "}\n\n",
               n, n, n);
    /* Tools hold jansson values: the same reader reads their text, laxly,
     * since to_json may have written any JCE value (NULs, deep nesting). */
    buf_printf(o,
               "int %s_from_json(%s *v, const json_t *j, jce_arena_t *a)\n{\n"
               "    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);\n"
               "    if (!s) {\n        %s_init(v);\n"
               "        return JCE_ERR_NOMEM;\n    }\n"
               "    jce_json_res_t res;\n"
               "    int rc = jce_json_decode(&%s_json, v, s, strlen(s), a, "
               "JCE_JSON_LAX, &res);\n"
               "    free(s);\n    return rc;\n}\n\n",
               n, n, n, n);
}
