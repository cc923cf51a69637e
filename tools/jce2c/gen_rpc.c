/*
 * Interface code: the server-side method table (jce_interface_t, sorted by
 * name so the RPC layer can binary-search it) and client stubs that write
 * request arguments and read responses, for TARS v1 (arguments at tags
 * 1..N by position, return value at tag 0) and TUP v3 (a UniAttribute
 * keyed by parameter name, each value at tag 0; return value under "" and
 * "tars_ret").  UniAttribute keys are written in strcmp order, as C++ does.
 *
 * Deferred answers: an impl that cannot answer before it returns (it waits
 * for a store, say) calls jce_call_defer(); the method then encodes nothing
 * and returns JCE_RPC_OK with call->deferred set, and the server later encodes the answer's
 * sBuffer with the generated M_I_op_reply(), the very function the method
 * uses for an immediate answer, so both paths write the same bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jce2c.h"

static bool by_pointer(const type_t *t) {
    return t->kind == TY_STRUCT || type_is_container(t);
}

static void param_decl(buf_t *o, const param_t *p, const char *prefix) {
    if (p->out)
        buf_printf(o, "%s *%s%s", type_ctype(p->type), prefix, p->name);
    else if (by_pointer(p->type))
        buf_printf(o, "const %s *%s%s", type_ctype(p->type), prefix, p->name);
    else
        buf_printf(o, "%s %s%s", type_ctype(p->type), prefix, p->name);
}

static bool has_ret(const op_t *op) { return op->ret->kind != TY_VOID; }

static void args_proto(buf_t *o, const def_t *d, const op_t *op,
                       const char *prefix) {
    buf_printf(o, "void %s_%s_args(jce_out_t *o, int version", d->cname,
               op->name);
    for (int i = 0; i < op->n_params; i++) {
        if (op->params[i].out) continue;
        buf_puts(o, ", ");
        param_decl(o, &op->params[i], prefix);
    }
    buf_puts(o, ")");
}

static void result_proto(buf_t *o, const def_t *d, const op_t *op,
                         const char *prefix) {
    buf_printf(o,
               "int %s_%s_result(const uint8_t *buf, size_t len, int version, "
               "jce_arena_t *a",
               d->cname, op->name);
    if (has_ret(op)) buf_printf(o, ", %s *%sret", type_ctype(op->ret), prefix);
    for (int i = 0; i < op->n_params; i++) {
        if (!op->params[i].out) continue;
        buf_puts(o, ", ");
        param_decl(o, &op->params[i], prefix);
    }
    buf_puts(o, ")");
}

/* The reply's out parameters are passed like inputs: by value or const
 * pointer. */
static void reply_proto(buf_t *o, const def_t *d, const op_t *op,
                        const char *prefix) {
    buf_printf(o, "void %s_%s_reply(jce_out_t *o, int version", d->cname,
               op->name);
    if (has_ret(op)) buf_printf(o, ", %s %sret", type_ctype(op->ret), prefix);
    for (int i = 0; i < op->n_params; i++) {
        if (!op->params[i].out) continue;
        param_t in = op->params[i];
        in.out = false;
        buf_puts(o, ", ");
        param_decl(o, &in, prefix);
    }
    buf_puts(o, ")");
}

void gen_rpc_header(def_t *d, buf_t *o) {
    buf_printf(o,
               "/* interface %s.%s: the server fills in an impl; a NULL member "
               "answers\n"
               " * JCE_RPC_NO_FUNC.  Out parameters arrive initialised to "
               "defaults.  An\n"
               " * impl that calls jce_call_defer() answers later: "
               "M_I_op_reply() encodes\n"
               " * the return value and out parameters into the answer's "
               "sBuffer. */\n",
               d->module, d->name);
    buf_printf(o, "typedef struct %s_impl {\n", d->cname);
    for (int i = 0; i < d->n_ops; i++) {
        op_t *op = &d->ops[i];
        buf_printf(o, "    %s (*%s)(jce_call_t *call", type_ctype(op->ret),
                   op->name);
        for (int k = 0; k < op->n_params; k++) {
            buf_puts(o, ", ");
            param_decl(o, &op->params[k], "");
        }
        buf_puts(o, ");\n");
    }
    buf_printf(o,
               "} %s_impl;\n\nextern const jce_interface_t %s_interface;\n\n",
               d->cname, d->cname);
    for (int i = 0; i < d->n_ops; i++) {
        args_proto(o, d, &d->ops[i], "");
        buf_puts(o, ";\n");
        result_proto(o, d, &d->ops[i], "");
        buf_puts(o, ";\n");
        reply_proto(o, d, &d->ops[i], "");
        buf_puts(o, ";\n");
    }
    buf_puts(o, "\n");
}

/* Statement: set lvalue x (of type t) to its default. */
static void emit_default(buf_t *o, const type_t *t, const char *x) {
    if (t->kind == TY_STRUCT)
        buf_printf(o, "%s_init(&(%s));\n", t->ref->cname, x);
    else
        buf_printf(o, "memset(&(%s), 0, sizeof(%s));\n", x, x);
}

typedef struct tup_key {
    const char *key;
    const type_t *type;
    const char *val;
} tup_key_t;

static int cmp_key(const void *a, const void *b) {
    return strcmp(((const tup_key_t *)a)->key, ((const tup_key_t *)b)->key);
}

/* Writes a UniAttribute holding keys[0..n) into out `o`; err_target gets
 * the scratch encoder's error. */
static void emit_tup_put(buf_t *b, tup_key_t *keys, int n, const char *o,
                         const char *indent) {
    qsort(keys, (size_t)n, sizeof *keys, cmp_key);
    buf_printf(b, "%sjce_out_t tmp;\n%sjce_out_init(&tmp, %s->policy);\n",
               indent, indent, o);
    buf_printf(b, "%sjce_tup_put_begin(%s, %d);\n", indent, o, n);
    for (int i = 0; i < n; i++) {
        buf_printf(b, "%sjce_out_reset(&tmp);\n%s", indent, indent);
        emit_put(b, keys[i].type, "&tmp", "0", keys[i].val);
        buf_printf(b, "%sjce_tup_put_entry(%s, \"%s\", &tmp);\n", indent, o,
                   keys[i].key);
    }
    buf_printf(b,
               "%sif (tmp.err && !%s->err)\n%s    %s->err = "
               "tmp.err;\n%sjce_out_free(&tmp);\n",
               indent, o, indent, o, indent);
}

static const char *deref(const param_t *p, const char *prefix) {
    return xasprintf(by_pointer(p->type) ? "*%s%s" : "%s%s", prefix, p->name);
}

static void gen_method(def_t *d, op_t *op, buf_t *o) {
    buf_printf(
        o,
        "static int %s_%s_method(const void *impl, jce_call_t *call)\n{\n"
        "    const %s_impl *im = impl;\n    if (!im || !im->%s)\n        "
        "return JCE_RPC_NO_FUNC;\n",
        d->cname, op->name, d->cname, op->name);
    for (int i = 0; i < op->n_params; i++) {
        param_t *p = &op->params[i];
        buf_printf(o, "    %s p_%s;\n    ", type_ctype(p->type), p->name);
        emit_default(o, p->type, xasprintf("p_%s", p->name));
    }
    buf_puts(o, "    jce_in_t in;\n    if (call->version == JCE_RPC_TUP) {\n   "
                "     jce_tup_t tup;\n"
                "        const jce_tup_entry_t *e;\n"
                "        if (jce_tup_parse(call->args, call->args_len, "
                "call->arena, &tup) < 0) {\n"
                "            snprintf(call->desc, sizeof call->desc, \"bad "
                "UniAttribute in request\");\n"
                "            return JCE_RPC_DECODE_ERR;\n        }\n");
    if (op->n_params == 0) buf_puts(o, "        (void)e;\n");
    for (int i = 0; i < op->n_params; i++) {
        param_t *p = &op->params[i];
        const char *get = type_getter(p->type);
        buf_printf(o, "        e = jce_tup_find(&tup, \"%s\");\n", p->name);
        if (p->out) {
            buf_printf(o,
                       "        if (e) {\n            jce_tup_open(e, "
                       "call->arena, &in);\n"
                       "            if (%s(&in, 0, false, &p_%s) < 0)\n"
                       "                return arg_fail(call, &in, 0, "
                       "\"%s\");\n        }\n",
                       get, p->name, p->name);
        } else {
            buf_printf(o,
                       "        if (!e)\n            return arg_missing(call, "
                       "\"%s\");\n"
                       "        jce_tup_open(e, call->arena, &in);\n"
                       "        if (%s(&in, 0, true, &p_%s) < 0)\n"
                       "            return arg_fail(call, &in, 0, \"%s\");\n",
                       p->name, get, p->name, p->name);
        }
    }
    buf_puts(o, "    } else {\n        jce_in_init(&in, call->args, "
                "call->args_len, call->arena);\n");
    for (int i = 0; i < op->n_params; i++) {
        param_t *p = &op->params[i];
        buf_printf(o,
                   "        if (%s(&in, %d, %s, &p_%s) < 0)\n            "
                   "return arg_fail(call, &in, %d, NULL);\n",
                   type_getter(p->type), i + 1, p->out ? "false" : "true",
                   p->name, i + 1);
    }
    buf_puts(o, "    }\n    ");
    if (has_ret(op)) buf_printf(o, "%s p_ret = ", type_ctype(op->ret));
    buf_printf(o, "im->%s(call", op->name);
    for (int i = 0; i < op->n_params; i++) {
        param_t *p = &op->params[i];
        buf_printf(o, ", %sp_%s", p->out || by_pointer(p->type) ? "&" : "",
                   p->name);
    }
    buf_puts(o, ");\n");

    buf_printf(o,
               "    if (call->deferred)\n        return JCE_RPC_OK;\n"
               "    %s_%s_reply(call->out, call->version",
               d->cname, op->name);
    if (has_ret(op)) buf_puts(o, ", p_ret");
    for (int i = 0; i < op->n_params; i++) {
        param_t *p = &op->params[i];
        if (p->out)
            buf_printf(o, ", %sp_%s", by_pointer(p->type) ? "&" : "", p->name);
    }
    buf_puts(o, ");\n    return call->out->err ? JCE_RPC_ENCODE_ERR : "
                "JCE_RPC_OK;\n}\n\n");
}

/* Encodes the return value and out parameters: the sBuffer of an answer. */
static void gen_reply(def_t *d, op_t *op, buf_t *o) {
    reply_proto(o, d, op, "p_");
    buf_puts(o, "\n{\n");
    tup_key_t *keys = xcalloc((size_t)op->n_params + 2, sizeof *keys);
    int nk = 0;
    if (has_ret(op)) {
        keys[nk++] = (tup_key_t){"", op->ret, "p_ret"};
        keys[nk++] = (tup_key_t){"tars_ret", op->ret, "p_ret"};
    }
    for (int i = 0; i < op->n_params; i++)
        if (op->params[i].out)
            keys[nk++] = (tup_key_t){op->params[i].name, op->params[i].type,
                                     deref(&op->params[i], "p_")};
    buf_puts(o, "    if (version == JCE_RPC_TUP) {\n");
    emit_tup_put(o, keys, nk, "o", "        ");
    buf_puts(o, "        return;\n    }\n");
    if (has_ret(op)) {
        buf_puts(o, "    ");
        emit_put(o, op->ret, "o", "0", "p_ret");
    }
    for (int i = 0; i < op->n_params; i++) {
        if (!op->params[i].out) continue;
        char tag[16];
        snprintf(tag, sizeof tag, "%d", i + 1);
        buf_puts(o, "    ");
        emit_put(o, op->params[i].type, "o", tag, deref(&op->params[i], "p_"));
    }
    buf_puts(o, "}\n\n");
}

static void gen_args(def_t *d, op_t *op, buf_t *o) {
    args_proto(o, d, op, "p_");
    buf_puts(o, "\n{\n    if (version == JCE_RPC_TUP) {\n");
    tup_key_t *keys = xcalloc((size_t)op->n_params + 1, sizeof *keys);
    int nk = 0;
    for (int i = 0; i < op->n_params; i++)
        if (!op->params[i].out)
            keys[nk++] = (tup_key_t){op->params[i].name, op->params[i].type,
                                     deref(&op->params[i], "p_")};
    emit_tup_put(o, keys, nk, "o", "        ");
    buf_puts(o, "        return;\n    }\n");
    for (int i = 0; i < op->n_params; i++) {
        if (op->params[i].out) continue;
        char tag[16];
        snprintf(tag, sizeof tag, "%d", i + 1);
        buf_puts(o, "    ");
        emit_put(o, op->params[i].type, "o", tag, deref(&op->params[i], "p_"));
    }
    buf_puts(o, "}\n\n");
}

static void gen_result(def_t *d, op_t *op, buf_t *o) {
    result_proto(o, d, op, "p_");
    buf_puts(o, "\n{\n");
    if (has_ret(op)) {
        buf_puts(o, "    ");
        emit_default(o, op->ret, "*p_ret");
    }
    for (int i = 0; i < op->n_params; i++) {
        if (!op->params[i].out) continue;
        buf_puts(o, "    ");
        emit_default(o, op->params[i].type,
                     xasprintf("*p_%s", op->params[i].name));
    }
    buf_puts(o, "    jce_in_t in;\n    if (version == JCE_RPC_TUP) {\n        "
                "jce_tup_t tup;\n"
                "        int rc = jce_tup_parse(buf, len, a, &tup);\n        "
                "if (rc < 0)\n            return rc;\n"
                "        const jce_tup_entry_t *e;\n");
    if (has_ret(op))
        buf_printf(o,
                   "        e = jce_tup_find(&tup, \"\");\n        if (!e)\n"
                   "            e = jce_tup_find(&tup, \"tars_ret\");\n        "
                   "if (!e)\n"
                   "            return JCE_ERR_REQUIRE;\n        "
                   "jce_tup_open(e, a, &in);\n"
                   "        if (%s(&in, 0, true, p_ret) < 0)\n            "
                   "return in_err(&in);\n",
                   type_getter(op->ret));
    for (int i = 0; i < op->n_params; i++) {
        param_t *p = &op->params[i];
        if (!p->out) continue;
        buf_printf(o,
                   "        e = jce_tup_find(&tup, \"%s\");\n        if (e) {\n"
                   "            jce_tup_open(e, a, &in);\n"
                   "            if (%s(&in, 0, false, p_%s) < 0)\n             "
                   "   return in_err(&in);\n"
                   "        }\n",
                   p->name, type_getter(p->type), p->name);
    }
    buf_puts(o, "        (void)e;\n        return 0;\n    }\n    "
                "jce_in_init(&in, buf, len, a);\n");
    if (has_ret(op))
        buf_printf(o,
                   "    if (%s(&in, 0, true, p_ret) < 0)\n        return "
                   "in_err(&in);\n",
                   type_getter(op->ret));
    for (int i = 0; i < op->n_params; i++) {
        param_t *p = &op->params[i];
        if (p->out)
            buf_printf(o,
                       "    if (%s(&in, %d, false, p_%s) < 0)\n        return "
                       "in_err(&in);\n",
                       type_getter(p->type), i + 1, p->name);
    }
    buf_puts(o, "    return in.err;\n}\n\n");
}

static int cmp_op(const void *a, const void *b) {
    return strcmp((*(op_t *const *)a)->name, (*(op_t *const *)b)->name);
}

static const char rpc_prelude[] =
    "JCE2C_STATIC int in_err(const jce_in_t *in)\n{\n    return in->err ? "
    "in->err : JCE_ERR_BAD_VALUE;\n}\n\n"
    "JCE2C_STATIC int arg_missing(jce_call_t *call, const char *name)\n{\n"
    "    snprintf(call->desc, sizeof call->desc, \"require field not exist, "
    "name:%s\", name);\n"
    "    return JCE_RPC_DECODE_ERR;\n}\n\n"
    "/* v1 names the failing tag as C++ does; v3 the UniAttribute key. */\n"
    "JCE2C_STATIC int arg_fail(jce_call_t *call, const jce_in_t *in, unsigned "
    "tag, const char *name)\n{\n"
    "    if (in->err == JCE_ERR_REQUIRE && !name)\n"
    "        snprintf(call->desc, sizeof call->desc, \"require field not "
    "exist, tag:%u\", tag);\n"
    "    else if (name)\n"
    "        snprintf(call->desc, sizeof call->desc, \"decode error in '%s' at "
    "byte %zu: %s\", name,\n"
    "                 in->err_pos, herald_strerror(in_err(in)));\n"
    "    else\n"
    "        snprintf(call->desc, sizeof call->desc, \"decode error at byte "
    "%zu: %s\", in->err_pos,\n"
    "                 herald_strerror(in_err(in)));\n"
    "    return JCE_RPC_DECODE_ERR;\n}\n\n";

void gen_rpc_prelude(buf_t *o) { buf_puts(o, rpc_prelude); }

void gen_rpc_code(def_t *d, buf_t *o) {
    buf_printf(o, "/* ---- interface %s.%s ---- */\n\n", d->module, d->name);
    op_t **sorted = xcalloc((size_t)d->n_ops + 1, sizeof *sorted);
    for (int i = 0; i < d->n_ops; i++) {
        sorted[i] = &d->ops[i];
        gen_method(d, &d->ops[i], o);
        gen_args(d, &d->ops[i], o);
        gen_result(d, &d->ops[i], o);
        gen_reply(d, &d->ops[i], o);
    }
    qsort(sorted, (size_t)d->n_ops, sizeof *sorted, cmp_op);
    buf_printf(o, "static const jce_method_t %s_methods[] = {\n", d->cname);
    for (int i = 0; i < d->n_ops; i++)
        buf_printf(o, "    {\"%s\", %s_%s_method},\n", sorted[i]->name,
                   d->cname, sorted[i]->name);
    if (d->n_ops == 0) buf_puts(o, "    {NULL, NULL},\n");
    buf_printf(o,
               "};\n\nconst jce_interface_t %s_interface = {\n    \"%s.%s\", "
               "%s_methods, %d,\n};\n\n",
               d->cname, d->module, d->name, d->cname, d->n_ops);
}
