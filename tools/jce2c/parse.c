/*
 * Recursive-descent parser for the IDL grammar of tars-wire.md §3.2.
 * A syntax error is reported once and abandons the file (longjmp back to
 * parse_file): after a grammar error the rest of the file would only
 * produce noise.  Rule checks that need the whole program (names, types,
 * tags) live in sema.c.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jce2c.h"

opts_t g_opts;

static file_t **files;
static int n_files;
static char **file_keys; /* realpath of each parsed file */

file_t **all_files(int *n) {
    *n = n_files;
    return files;
}

typedef struct parser {
    lexer_t lx;
    token_t tok;
    file_t *f;
    const char *module;
    jmp_buf fail;
} parser_t;

static void advance(parser_t *ps) {
    ps->tok = lex_next(&ps->lx);
    if (ps->tok.kind == TK_ERROR) longjmp(ps->fail, 1);
}

static const char *tok_desc(const token_t *t) {
    return t->kind == TK_STRING ? "string literal" : t->text;
}

static void __attribute__((noreturn)) syntax(parser_t *ps, const char *what) {
    diag(ps->tok.at, "expected %s but found '%s'", what, tok_desc(&ps->tok));
    longjmp(ps->fail, 1);
}

static bool at_punct(const parser_t *ps, const char *p) {
    return ps->tok.kind == TK_PUNCT && strcmp(ps->tok.text, p) == 0;
}

static bool at_kw(const parser_t *ps, const char *kw) {
    return ps->tok.kind == TK_IDENT && strcmp(ps->tok.text, kw) == 0;
}

static void expect_punct(parser_t *ps, const char *p) {
    if (!at_punct(ps, p)) {
        char what[8];
        snprintf(what, sizeof what, "'%s'", p);
        syntax(ps, what);
    }
    advance(ps);
}

static void check_reserved(const token_t *t) {
    if (!g_opts.with_tars && strncmp(t->text, "tars", 4) == 0)
        diag(t->at,
             "identifier '%s' uses the reserved prefix 'tars' (only allowed "
             "with --with-tars)",
             t->text);
}

/* An identifier that is not a keyword; `what` names it in the error. */
static char *expect_ident(parser_t *ps, const char *what, loc_t *at) {
    if (ps->tok.kind != TK_IDENT || is_keyword(ps->tok.text)) syntax(ps, what);
    check_reserved(&ps->tok);
    char *s = ps->tok.text;
    if (at) *at = ps->tok.at;
    advance(ps);
    return s;
}

static char *parse_scoped(parser_t *ps, loc_t *at) {
    buf_t b = {0};
    *at = ps->tok.at;
    if (ps->tok.kind == TK_SCOPE) advance(ps);
    buf_puts(&b, expect_ident(ps, "a type name", NULL));
    while (ps->tok.kind == TK_SCOPE) {
        advance(ps);
        buf_puts(&b, "::");
        buf_puts(&b, expect_ident(ps, "a name after '::'", NULL));
    }
    return b.p;
}

static type_t *new_type(int kind, loc_t at) {
    type_t *t = xcalloc(1, sizeof *t);
    t->kind = kind;
    t->at = at;
    return t;
}

static type_t *parse_type(parser_t *ps) {
    static const struct {
        const char *kw;
        int kind;
    } prims[] = {
        {"bool", TY_BOOL},     {"byte", TY_BYTE},     {"short", TY_SHORT},
        {"int", TY_INT},       {"long", TY_LONG},     {"float", TY_FLOAT},
        {"double", TY_DOUBLE}, {"string", TY_STRING},
    };
    loc_t at = ps->tok.at;
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++) {
        if (at_kw(ps, prims[i].kw)) {
            advance(ps);
            return new_type(prims[i].kind, at);
        }
    }
    if (at_kw(ps, "unsigned")) {
        advance(ps);
        int kind = at_kw(ps, "byte")    ? TY_UBYTE
                   : at_kw(ps, "short") ? TY_USHORT
                   : at_kw(ps, "int")   ? TY_UINT
                                        : -1;
        if (kind < 0) syntax(ps, "'byte', 'short' or 'int' after 'unsigned'");
        advance(ps);
        return new_type(kind, at);
    }
    if (at_kw(ps, "vector")) {
        advance(ps);
        expect_punct(ps, "<");
        type_t *t = new_type(TY_VECTOR, at);
        t->a = parse_type(ps);
        expect_punct(ps, ">");
        return t;
    }
    if (at_kw(ps, "map")) {
        advance(ps);
        expect_punct(ps, "<");
        type_t *t = new_type(TY_MAP, at);
        t->a = parse_type(ps);
        expect_punct(ps, ",");
        t->b = parse_type(ps);
        expect_punct(ps, ">");
        return t;
    }
    if (ps->tok.kind == TK_SCOPE ||
        (ps->tok.kind == TK_IDENT && !is_keyword(ps->tok.text))) {
        type_t *t = new_type(TY_NAMED, at);
        t->name = parse_scoped(ps, &t->at);
        return t;
    }
    syntax(ps, "a type");
}

static value_t parse_value(parser_t *ps) {
    value_t v = {.at = ps->tok.at};
    if (ps->tok.kind == TK_INT) {
        v.kind = VAL_INT;
        v.i = ps->tok.ival;
        v.ovf = ps->tok.ovf;
        advance(ps);
    } else if (ps->tok.kind == TK_FLOAT) {
        v.kind = VAL_FLOAT;
        v.f = ps->tok.fval;
        advance(ps);
    } else if (ps->tok.kind == TK_STRING) {
        v.kind = VAL_STRING;
        v.s = ps->tok.str;
        v.s_len = ps->tok.str_len;
        advance(ps);
    } else if (at_kw(ps, "true") || at_kw(ps, "false")) {
        v.kind = VAL_BOOL;
        v.i = at_kw(ps, "true");
        advance(ps);
    } else if (ps->tok.kind == TK_SCOPE ||
               (ps->tok.kind == TK_IDENT && !is_keyword(ps->tok.text))) {
        v.kind = VAL_IDENT;
        v.s = parse_scoped(ps, &v.at);
    } else {
        syntax(ps, "a value");
    }
    return v;
}

static def_t *new_def(parser_t *ps, int kind, char *name, loc_t at) {
    def_t *d = xcalloc(1, sizeof *d);
    d->kind = kind;
    d->name = name;
    d->module = (char *)ps->module;
    d->cname = xasprintf("%s_%s", ps->module, name);
    d->file = ps->f;
    d->at = at;
    ps->f->defs =
        realloc(ps->f->defs, sizeof(def_t *) * (size_t)(ps->f->n_defs + 1));
    ps->f->defs[ps->f->n_defs++] = d;
    return d;
}

static void reject_cpp_extras(parser_t *ps) {
    if (at_punct(ps, "[") || at_punct(ps, ":") || at_punct(ps, "*")) {
        diag(ps->tok.at,
             "C++-only array, pointer and bit-width members are not supported");
        longjmp(ps->fail, 1);
    }
}

static void parse_member(parser_t *ps, def_t *d) {
    field_t fl = {.at = ps->tok.at};
    if (ps->tok.kind != TK_INT) syntax(ps, "a member tag");
    if (ps->tok.ovf || ps->tok.ival < 0 || ps->tok.ival > 255) {
        diag(ps->tok.at, "tag %s out of range (0..255)", ps->tok.text);
        fl.tag = -1;
    } else {
        fl.tag = (int)ps->tok.ival;
    }
    advance(ps);
    if (at_kw(ps, "require"))
        fl.require = true;
    else if (!at_kw(ps, "optional"))
        syntax(ps, "'require' or 'optional'");
    advance(ps);
    if (at_punct(ps, "*")) reject_cpp_extras(ps);
    fl.type = parse_type(ps);
    reject_cpp_extras(ps);
    loc_t name_at; /* errors about the member point at its tag */
    fl.name = expect_ident(ps, "a member name", &name_at);
    reject_cpp_extras(ps);
    if (at_punct(ps, "=")) {
        advance(ps);
        fl.def = parse_value(ps);
    }
    d->fields = realloc(d->fields, sizeof(field_t) * (size_t)(d->n_fields + 1));
    d->fields[d->n_fields++] = fl;
}

static void parse_struct(parser_t *ps) {
    loc_t at;
    advance(ps);
    char *name = expect_ident(ps, "a struct name", &at);
    def_t *d = new_def(ps, DEF_STRUCT, name, at);
    expect_punct(ps, "{");
    while (!at_punct(ps, "}")) {
        parse_member(ps, d);
        expect_punct(ps, ";");
    }
    if (d->n_fields == 0) diag(at, "struct '%s' has no members", name);
    advance(ps);
}

static void parse_enum(parser_t *ps) {
    loc_t at;
    advance(ps);
    char *name = expect_ident(ps, "an enum name", &at);
    def_t *d = new_def(ps, DEF_ENUM, name, at);
    expect_punct(ps, "{");
    long long next = 0;
    while (!at_punct(ps, "}")) {
        enumerator_t e;
        e.name = expect_ident(ps, "an enumerator name", &e.at);
        e.value = next;
        if (at_punct(ps, "=")) {
            advance(ps);
            value_t v = parse_value(ps);
            if (v.kind == VAL_INT && !v.ovf && v.i >= INT32_MIN &&
                v.i <= INT32_MAX) {
                e.value = v.i;
            } else if (v.kind == VAL_IDENT) {
                int k = 0;
                while (k < d->n_enums && strcmp(d->enums[k].name, v.s) != 0)
                    k++;
                if (k == d->n_enums)
                    diag(v.at, "unknown enumerator '%s'", v.s);
                else
                    e.value = d->enums[k].value;
            } else {
                diag(v.at, "enumerator value must be a 32-bit integer");
            }
        }
        next = e.value + 1;
        d->enums =
            realloc(d->enums, sizeof(enumerator_t) * (size_t)(d->n_enums + 1));
        d->enums[d->n_enums++] = e;
        if (!at_punct(ps, ",")) break;
        advance(ps);
    }
    expect_punct(ps, "}");
    if (d->n_enums == 0) diag(at, "enum '%s' has no enumerators", name);
}

static void parse_const(parser_t *ps) {
    advance(ps);
    type_t *t = parse_type(ps);
    loc_t at;
    char *name = expect_ident(ps, "a constant name", &at);
    def_t *d = new_def(ps, DEF_CONST, name, at);
    d->ctype = t;
    expect_punct(ps, "=");
    d->cval = parse_value(ps);
}

static void parse_key(parser_t *ps) {
    advance(ps);
    expect_punct(ps, "[");
    loc_t at;
    (void)parse_scoped(ps,
                       &at); /* key[] only orders C++ maps; no wire effect */
    while (at_punct(ps, ",")) {
        advance(ps);
        expect_ident(ps, "a member name", NULL);
    }
    expect_punct(ps, "]");
}

static void parse_op(parser_t *ps, def_t *d) {
    op_t op = {0};
    if (at_kw(ps, "void")) {
        op.ret = new_type(TY_VOID, ps->tok.at);
        advance(ps);
    } else {
        op.ret = parse_type(ps);
    }
    op.name = expect_ident(ps, "an operation name", &op.at);
    expect_punct(ps, "(");
    while (!at_punct(ps, ")")) {
        param_t p = {.at = ps->tok.at};
        if (at_kw(ps, "out")) {
            p.out = true;
            advance(ps);
        } else if (at_kw(ps, "routekey")) {
            advance(ps); /* only adds a grid status key; same encoding */
        }
        p.type = parse_type(ps);
        p.name = expect_ident(ps, "a parameter name", &p.at);
        op.params =
            realloc(op.params, sizeof(param_t) * (size_t)(op.n_params + 1));
        op.params[op.n_params++] = p;
        if (!at_punct(ps, ",")) break;
        advance(ps);
    }
    expect_punct(ps, ")");
    d->ops = realloc(d->ops, sizeof(op_t) * (size_t)(d->n_ops + 1));
    d->ops[d->n_ops++] = op;
}

static void parse_interface(parser_t *ps) {
    loc_t at;
    advance(ps);
    char *name = expect_ident(ps, "an interface name", &at);
    def_t *d = new_def(ps, DEF_INTERFACE, name, at);
    expect_punct(ps, "{");
    while (!at_punct(ps, "}")) {
        parse_op(ps, d);
        expect_punct(ps, ";");
    }
    advance(ps);
}

static void parse_include(parser_t *ps);

static void parse_definition(parser_t *ps) {
    if (at_kw(ps, "struct"))
        parse_struct(ps);
    else if (at_kw(ps, "enum"))
        parse_enum(ps);
    else if (at_kw(ps, "const"))
        parse_const(ps);
    else if (at_kw(ps, "interface"))
        parse_interface(ps);
    else if (at_kw(ps, "key"))
        parse_key(ps);
    else if (at_kw(ps, "module")) {
        diag(ps->tok.at, "modules cannot be nested");
        longjmp(ps->fail, 1);
    } else
        syntax(ps, "a definition");
    expect_punct(ps, ";");
}

static void add_module(file_t *f, char *name) {
    for (int i = 0; i < f->n_modules; i++)
        if (strcmp(f->modules[i], name) == 0) return;
    f->modules =
        realloc(f->modules, sizeof(char *) * (size_t)(f->n_modules + 1));
    f->modules[f->n_modules++] = name;
}

static void parse_module(parser_t *ps) {
    advance(ps);
    ps->module = expect_ident(ps, "a module name", NULL);
    add_module(ps->f, (char *)ps->module);
    expect_punct(ps, "{");
    while (!at_punct(ps, "}")) {
        if (ps->tok.kind == TK_INCLUDE)
            parse_include(ps);
        else
            parse_definition(ps);
    }
    advance(ps);
    expect_punct(ps, ";");
    ps->module = NULL;
}

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static char *find_include(const char *from, const char *name) {
    if (name[0] == '/') return file_exists(name) ? xstrdup(name) : NULL;
    char *tmp = xstrdup(from);
    char *p = xasprintf("%s/%s", dirname(tmp), name);
    free(tmp);
    if (file_exists(p)) return p;
    free(p);
    for (int i = 0; i < g_opts.n_inc_dirs; i++) {
        p = xasprintf("%s/%s", g_opts.inc_dirs[i], name);
        if (file_exists(p)) return p;
        free(p);
    }
    return NULL;
}

static void parse_include(parser_t *ps) {
    token_t t = ps->tok;
    char *path = find_include(ps->f->path, t.text);
    if (!path) {
        diag(t.at, "cannot find include file '%s'", t.text);
        longjmp(ps->fail, 1);
    }
    file_t *inc = parse_file(path, t.at);
    if (!inc) longjmp(ps->fail, 1);
    for (int i = 0; i < ps->f->n_includes; i++)
        if (ps->f->includes[i] == inc) goto done;
    ps->f->includes = realloc(
        ps->f->includes, sizeof(file_t *) * (size_t)(ps->f->n_includes + 1));
    ps->f->includes[ps->f->n_includes++] = inc;
done:
    advance(ps);
}

static char *read_all(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    buf_t b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) buf_put(&b, chunk, n);
    fclose(fp);
    *len = b.len;
    return b.p ? b.p : xstrdup("");
}

static char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    s = s ? s + 1 : path;
    const char *dot = strrchr(s, '.');
    return xstrndup(s, dot ? (size_t)(dot - s) : strlen(s));
}

file_t *parse_file(const char *path, loc_t from) {
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        if (from.file)
            diag(from, "cannot open '%s'", path);
        else
            fprintf(stderr, "jce2c: cannot open '%s': %s\n", path,
                    strerror(errno));
        return NULL;
    }
    for (int i = 0; i < n_files; i++)
        if (strcmp(file_keys[i], real) == 0)
            return files[i]; /* parsed once; an include cycle ends here too */
    size_t len;
    char *src = read_all(path, &len);
    if (!src) {
        diag(from, "cannot read '%s'", path);
        return NULL;
    }
    file_t *f = xcalloc(1, sizeof *f);
    f->path = xstrdup(path);
    f->base = base_name(path);
    files = realloc(files, sizeof(file_t *) * (size_t)(n_files + 1));
    file_keys = realloc(file_keys, sizeof(char *) * (size_t)(n_files + 1));
    files[n_files] = f;
    file_keys[n_files++] = xstrdup(real);

    parser_t *ps = xcalloc(1, sizeof *ps);
    ps->f = f;
    lex_init(&ps->lx, f->path, src, len);
    if (setjmp(ps->fail)) return NULL;
    advance(ps);
    while (ps->tok.kind != TK_EOF) {
        if (ps->tok.kind == TK_INCLUDE)
            parse_include(ps);
        else if (at_kw(ps, "module"))
            parse_module(ps);
        else if (ps->tok.kind == TK_IDENT && is_keyword(ps->tok.text))
            syntax(ps, "'module' (every definition lives in a module)");
        else
            syntax(ps, "'module'");
    }
    return f;
}
