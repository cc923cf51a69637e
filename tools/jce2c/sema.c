/*
 * Semantic checks over every parsed file: one symbol table keyed by
 * module::name, type resolution (current module first, then Mod::Name),
 * tag/name uniqueness, defaults that fit their type, and structs that
 * would contain themselves by value.  Every problem is reported; sema
 * fails if any was.
 */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jce2c.h"

typedef struct sym {
    char *module, *name;
    def_t *def; /* the definition, or the enum holding an enumerator */
    loc_t at;
    bool enumerator;
} sym_t;

static sym_t *syms;
static int n_syms;

static sym_t *find_sym(const char *module, const char *name) {
    for (int i = 0; i < n_syms; i++)
        if (strcmp(syms[i].module, module) == 0 &&
            strcmp(syms[i].name, name) == 0)
            return &syms[i];
    return NULL;
}

def_t *sema_lookup(const char *module, const char *name) {
    sym_t *s = find_sym(module, name);
    return s && !s->enumerator ? s->def : NULL;
}

/* Enumerators and #define'd consts share the module's C namespace, so they
 * collide with each other and with type names. */
static void add_sym(char *module, char *name, def_t *d, loc_t at,
                    bool enumerator) {
    sym_t *old = find_sym(module, name);
    if (old) {
        diag(at, "duplicate definition of '%s::%s' (first defined at %s:%d:%d)",
             module, name, old->at.file, old->at.line, old->at.col);
        return;
    }
    syms = realloc(syms, sizeof(sym_t) * (size_t)(n_syms + 1));
    syms[n_syms++] = (sym_t){module, name, d, at, enumerator};
}

static const char *const c_words[] = {
    "auto",          "break",   "case",     "char",      "continue",
    "default",       "do",      "else",     "extern",    "for",
    "goto",          "if",      "inline",   "register",  "restrict",
    "return",        "signed",  "sizeof",   "static",    "switch",
    "typedef",       "union",   "volatile", "while",     "_Bool",
    "_Alignas",      "_Atomic", "_Generic", "_Noreturn", "_Static_assert",
    "_Thread_local", NULL,
};

/* Member and parameter names become C identifiers next to our own locals. */
static void check_c_name(const char *name, loc_t at) {
    for (int i = 0; c_words[i]; i++)
        if (strcmp(c_words[i], name) == 0)
            diag(at, "'%s' cannot be used as a name in generated C", name);
}

static void type_name(buf_t *b, const type_t *t) {
    static const char *const names[] = {
        "bool",           "byte",   "unsigned byte", "short",
        "unsigned short", "int",    "unsigned int",  "long",
        "float",          "double", "string",
    };
    if (t->kind <= TY_STRING) {
        buf_puts(b, names[t->kind]);
    } else if (t->kind == TY_VECTOR) {
        buf_puts(b, "vector<");
        type_name(b, t->a);
        buf_puts(b, ">");
    } else if (t->kind == TY_MAP) {
        buf_puts(b, "map<");
        type_name(b, t->a);
        buf_puts(b, ", ");
        type_name(b, t->b);
        buf_puts(b, ">");
    } else if (t->kind == TY_VOID) {
        buf_puts(b, "void");
    } else {
        buf_puts(b, t->name);
    }
}

static const char *tname(const type_t *t) {
    buf_t b = {0};
    type_name(&b, t);
    return b.p;
}

static void resolve_type(type_t *t, const char *module) {
    if (t->kind == TY_VECTOR) {
        resolve_type(t->a, module);
        return;
    }
    if (t->kind == TY_MAP) {
        resolve_type(t->a, module);
        resolve_type(t->b, module);
        return;
    }
    if (t->kind != TY_NAMED) return;
    const char *sep = strstr(t->name, "::");
    def_t *d;
    if (sep) {
        char *mod = xstrndup(t->name, (size_t)(sep - t->name));
        d = sema_lookup(mod, sep + 2);
        if (strstr(sep + 2, "::")) d = NULL;
    } else {
        d = sema_lookup(module, t->name);
    }
    if (!d) {
        diag(t->at, "unknown type '%s'", t->name);
        return;
    }
    if (d->kind != DEF_STRUCT && d->kind != DEF_ENUM) {
        diag(t->at, "'%s' is not a struct or enum", t->name);
        return;
    }
    t->kind = d->kind == DEF_STRUCT ? TY_STRUCT : TY_ENUM;
    t->ref = d;
}

/* Finds an enumerator of enum e named by `name` (E_NAME, M::NAME or M::E::NAME). */
static bool enum_value(const def_t *e, const char *name, long long *out) {
    const char *n = strrchr(name, ':');
    n = n ? n + 1 : name;
    for (int i = 0; i < e->n_enums; i++) {
        if (strcmp(e->enums[i].name, n) == 0) {
            *out = e->enums[i].value;
            return true;
        }
    }
    return false;
}

static bool int_range(int kind, long long *lo, long long *hi) {
    switch (kind) {
    case TY_BYTE:
        *lo = INT8_MIN;
        *hi = INT8_MAX;
        return true;
    case TY_UBYTE:
        *lo = 0;
        *hi = UINT8_MAX;
        return true;
    case TY_SHORT:
        *lo = INT16_MIN;
        *hi = INT16_MAX;
        return true;
    case TY_USHORT:
        *lo = 0;
        *hi = UINT16_MAX;
        return true;
    case TY_INT:
    case TY_ENUM:
        *lo = INT32_MIN;
        *hi = INT32_MAX;
        return true;
    case TY_UINT:
        *lo = 0;
        *hi = UINT32_MAX;
        return true;
    case TY_LONG:
        *lo = INT64_MIN;
        *hi = INT64_MAX;
        return true;
    default: return false;
    }
}

/* Checks that value v fits type t; stores integer results in *iv. */
static void check_value(const type_t *t, const value_t *v, const char *what,
                        long long *iv) {
    long long lo, hi;
    bool ok = false;
    *iv = 0;
    if (t->kind == TY_BOOL) {
        ok = v->kind == VAL_BOOL;
        *iv = v->i;
    } else if (t->kind == TY_ENUM) {
        if (v->kind == VAL_INT)
            ok = !v->ovf && v->i >= INT32_MIN && v->i <= INT32_MAX, *iv = v->i;
        else if (v->kind == VAL_IDENT && !enum_value(t->ref, v->s, iv)) {
            diag(v->at, "'%s' is not an enumerator of '%s'", v->s,
                 t->ref->name);
            return;
        } else
            ok = v->kind == VAL_IDENT;
    } else if (int_range(t->kind, &lo, &hi)) {
        if (v->kind == VAL_INT && (v->ovf || v->i < lo || v->i > hi)) {
            diag(v->at, "%s value %lld out of range for type '%s'", what, v->i,
                 tname(t));
            return;
        }
        ok = v->kind == VAL_INT;
        *iv = v->i;
    } else if (t->kind == TY_FLOAT || t->kind == TY_DOUBLE) {
        ok = v->kind == VAL_INT || v->kind == VAL_FLOAT;
    } else if (t->kind == TY_STRING) {
        ok = v->kind == VAL_STRING;
    } else {
        diag(v->at, "%s value not allowed for type '%s'", what, tname(t));
        return;
    }
    if (!ok) diag(v->at, "%s value does not match type '%s'", what, tname(t));
}

static int cmp_tag(const void *a, const void *b) {
    const field_t *x = a, *y = b;
    return (x->tag > y->tag) - (x->tag < y->tag);
}

static void check_struct(def_t *d) {
    for (int i = 0; i < d->n_fields; i++) {
        field_t *f = &d->fields[i];
        check_c_name(f->name, f->at);
        resolve_type(f->type, d->module);
        for (int j = 0; j < i; j++) {
            if (f->tag >= 0 && d->fields[j].tag == f->tag)
                diag(f->at,
                     "duplicate tag %d in struct '%s' (also used by '%s')",
                     f->tag, d->name, d->fields[j].name);
            if (strcmp(d->fields[j].name, f->name) == 0)
                diag(f->at, "duplicate member name '%s' in struct '%s'",
                     f->name, d->name);
        }
        if (f->type->kind == TY_STRUCT && f->type->ref == d)
            diag(f->type->at, "struct '%s' cannot contain itself (member '%s')",
                 d->name, f->name);
        if (f->def.kind != VAL_NONE && f->type->kind != TY_NAMED)
            check_value(f->type, &f->def, "default", &f->def_i);
    }
    qsort(d->fields, (size_t)d->n_fields, sizeof(field_t), cmp_tag);
}

static void check_interface(def_t *d) {
    for (int i = 0; i < d->n_ops; i++) {
        op_t *op = &d->ops[i];
        resolve_type(op->ret, d->module);
        for (int j = 0; j < i; j++)
            if (strcmp(d->ops[j].name, op->name) == 0)
                diag(op->at, "duplicate operation '%s' in interface '%s'",
                     op->name, d->name);
        if (op->n_params > 255)
            diag(op->at, "operation '%s' has more than 255 parameters",
                 op->name);
        for (int k = 0; k < op->n_params; k++) {
            param_t *p = &op->params[k];
            check_c_name(p->name, p->at);
            resolve_type(p->type, d->module);
            for (int j = 0; j < k; j++)
                if (strcmp(op->params[j].name, p->name) == 0)
                    diag(p->at, "duplicate parameter name '%s'", p->name);
        }
    }
}

static void check_const(def_t *d) {
    if (d->ctype->kind > TY_STRING) {
        diag(d->ctype->at, "constant '%s' must have a builtin type", d->name);
        return;
    }
    long long iv;
    check_value(d->ctype, &d->cval, "constant", &iv);
}

/* Orders structs so a struct held by value is emitted before its holder,
 * and reports by-value cycles through several structs. */
static int order_counter;

static void order_struct(def_t *d) {
    if (d->visit == 2) return;
    if (d->visit == 1) {
        diag(d->at, "struct '%s' contains itself through a chain of members",
             d->name);
        return;
    }
    d->visit = 1;
    for (int i = 0; i < d->n_fields; i++) {
        type_t *t = d->fields[i].type;
        if (t->kind == TY_STRUCT && t->ref != d) order_struct(t->ref);
    }
    d->visit = 2;
    d->order = order_counter++;
}

int sema_check(void) {
    int before = diag_count(), n;
    file_t **fs = all_files(&n);
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < fs[i]->n_defs; k++) {
            def_t *d = fs[i]->defs[k];
            add_sym(d->module, d->name, d, d->at, false);
            for (int e = 0; e < d->n_enums; e++)
                add_sym(d->module, d->enums[e].name, d, d->enums[e].at, true);
        }
    }
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < fs[i]->n_defs; k++) {
            def_t *d = fs[i]->defs[k];
            if (d->kind == DEF_STRUCT)
                check_struct(d);
            else if (d->kind == DEF_INTERFACE)
                check_interface(d);
            else if (d->kind == DEF_CONST)
                check_const(d);
        }
    }
    if (diag_count() != before) return -1;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < fs[i]->n_defs; k++)
            if (fs[i]->defs[k]->kind == DEF_STRUCT)
                order_struct(fs[i]->defs[k]);
    return diag_count() == before ? 0 : -1;
}
