/*
 * X.schema.json: the parsed contract as data, for tools that are not C
 * (the JS interop generator, docs).  Written by hand: jce2c itself links
 * nothing but libc.
 */
#include <stdio.h>
#include <string.h>

#include "jce2c.h"

static void json_str(buf_t *o, const char *s, size_t n) {
    buf_puts(o, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            buf_printf(o, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            buf_printf(o, "\\u%04x", c);
        else
            buf_put(o, (const char *)&c, 1);
    }
    buf_puts(o, "\"");
}

static void json_cstr(buf_t *o, const char *s) { json_str(o, s, strlen(s)); }

static void schema_type(buf_t *o, const type_t *t) {
    static const char *const names[] = {
        "bool",           "byte",   "unsigned byte", "short",
        "unsigned short", "int",    "unsigned int",  "long",
        "float",          "double", "string",
    };
    if (t->kind <= TY_STRING) {
        json_cstr(o, names[t->kind]);
    } else if (t->kind == TY_VOID) {
        json_cstr(o, "void");
    } else if (t->kind == TY_VECTOR) {
        buf_puts(o, "{\"vector\":");
        schema_type(o, t->a);
        buf_puts(o, "}");
    } else if (t->kind == TY_MAP) {
        buf_puts(o, "{\"map\":[");
        schema_type(o, t->a);
        buf_puts(o, ",");
        schema_type(o, t->b);
        buf_puts(o, "]}");
    } else {
        buf_printf(o, "{\"%s\":\"%s.%s\"}",
                   t->kind == TY_STRUCT ? "struct" : "enum", t->ref->module,
                   t->ref->name);
    }
}

static void schema_value(buf_t *o, const type_t *t, const value_t *v,
                         long long iv) {
    if (v->kind == VAL_NONE)
        buf_puts(o, "null");
    else if (t->kind == TY_BOOL)
        buf_puts(o, iv ? "true" : "false");
    else if (t->kind == TY_STRING)
        json_str(o, v->s, v->s_len);
    else if (t->kind == TY_FLOAT || t->kind == TY_DOUBLE)
        buf_printf(o, "%.17g", v->kind == VAL_INT ? (double)v->i : v->f);
    else
        buf_printf(o, "%lld", iv);
}

static void sep(buf_t *o, bool *first) {
    if (!*first) buf_puts(o, ",");
    *first = false;
}

static void schema_module(file_t *f, const char *m, buf_t *o) {
    buf_puts(o, "{\"name\":");
    json_cstr(o, m);
    static const char *const sections[] = {"enums", "consts", "structs",
                                           "interfaces"};
    static const int kinds[] = {DEF_ENUM, DEF_CONST, DEF_STRUCT, DEF_INTERFACE};
    for (int s = 0; s < 4; s++) {
        buf_printf(o, ",\n   \"%s\":[", sections[s]);
        bool first = true;
        for (int i = 0; i < f->n_defs; i++) {
            def_t *d = f->defs[i];
            if (d->kind != kinds[s] || strcmp(d->module, m) != 0) continue;
            sep(o, &first);
            buf_puts(o, "\n    {\"name\":");
            json_cstr(o, d->name);
            if (d->kind == DEF_ENUM) {
                buf_puts(o, ",\"values\":{");
                for (int k = 0; k < d->n_enums; k++) {
                    if (k) buf_puts(o, ",");
                    json_cstr(o, d->enums[k].name);
                    buf_printf(o, ":%lld", d->enums[k].value);
                }
                buf_puts(o, "}");
            } else if (d->kind == DEF_CONST) {
                long long iv = d->cval.i;
                buf_puts(o, ",\"type\":");
                schema_type(o, d->ctype);
                buf_puts(o, ",\"value\":");
                schema_value(o, d->ctype, &d->cval, iv);
            } else if (d->kind == DEF_STRUCT) {
                buf_puts(o, ",\"fields\":[");
                for (int k = 0; k < d->n_fields; k++) {
                    field_t *fl = &d->fields[k];
                    buf_printf(o,
                               "%s\n      {\"tag\":%d,\"name\":", k ? "," : "",
                               fl->tag);
                    json_cstr(o, fl->name);
                    buf_printf(o, ",\"require\":%s,\"type\":",
                               fl->require ? "true" : "false");
                    schema_type(o, fl->type);
                    buf_puts(o, ",\"default\":");
                    schema_value(o, fl->type, &fl->def, fl->def_i);
                    buf_puts(o, "}");
                }
                buf_puts(o, "]");
            } else {
                buf_puts(o, ",\"ops\":[");
                for (int k = 0; k < d->n_ops; k++) {
                    op_t *op = &d->ops[k];
                    buf_printf(o, "%s\n      {\"name\":", k ? "," : "");
                    json_cstr(o, op->name);
                    buf_puts(o, ",\"ret\":");
                    schema_type(o, op->ret);
                    buf_puts(o, ",\"params\":[");
                    for (int p = 0; p < op->n_params; p++) {
                        buf_puts(o, p ? ",{\"name\":" : "{\"name\":");
                        json_cstr(o, op->params[p].name);
                        buf_printf(o, ",\"out\":%s,\"type\":",
                                   op->params[p].out ? "true" : "false");
                        schema_type(o, op->params[p].type);
                        buf_puts(o, "}");
                    }
                    buf_puts(o, "]}");
                }
                buf_puts(o, "]");
            }
            buf_puts(o, "}");
        }
        buf_puts(o, "]");
    }
    buf_puts(o, "}");
}

void gen_schema(file_t *f, buf_t *o) {
    buf_puts(o, "{\"file\":");
    json_cstr(o, f->base);
    buf_puts(o, ",\"includes\":[");
    for (int i = 0; i < f->n_includes; i++) {
        if (i) buf_puts(o, ",");
        json_cstr(o, f->includes[i]->base);
    }
    buf_puts(o, "],\n \"modules\":[");
    for (int i = 0; i < f->n_modules; i++) {
        if (i) buf_puts(o, ",\n  ");
        schema_module(f, f->modules[i], o);
    }
    buf_puts(o, "]}\n");
}
