/*
 * jce2c: compiles TARS/JCE IDL (tars-wire.md §3) to C.
 *
 * Pipeline: lex.c turns a file into tokens, parse.c builds the AST below
 * (following #include), sema.c resolves type names and checks the rules a
 * C generator depends on, gen_*.c write the .h/.c/.schema.json text into
 * memory buffers, and main.c writes them out atomically only when every
 * step succeeded.  All memory lives until exit: this is a build-time tool.
 */
#ifndef JCE2C_H
#define JCE2C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- growable text buffer ---- */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

void buf_put(buf_t *b, const char *s, size_t n);
void buf_puts(buf_t *b, const char *s);
void buf_printf(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xcalloc(size_t n, size_t size);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- diagnostics: "file:line:col: message" ---- */
typedef struct loc {
    const char *file;
    int line, col;
} loc_t;

void diag(loc_t at, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int diag_count(void);

/* ---- lexer ---- */
enum tok_kind {
    TK_EOF,
    TK_IDENT,
    TK_INT,
    TK_FLOAT,
    TK_STRING,
    TK_PUNCT,
    TK_SCOPE,
    TK_INCLUDE, /* #include "x": text holds the path */
    TK_ERROR,   /* lexing failed; already reported */
};

typedef struct token {
    int kind;
    loc_t at;
    char *text; /* identifier / keyword / punctuation / include path */
    char *str;  /* TK_STRING: decoded bytes */
    size_t str_len;
    long long ival; /* TK_INT */
    double fval;    /* TK_FLOAT */
    bool ovf;       /* TK_INT: did not fit 64 bits */
} token_t;

typedef struct lexer {
    const char *file;
    const char *src, *p, *end;
    int line;
    const char *line_start;
} lexer_t;

void lex_init(lexer_t *lx, const char *file, const char *src, size_t len);
token_t lex_next(lexer_t *lx);
bool is_keyword(const char *s);

/* ---- AST ---- */
enum type_kind {
    TY_BOOL,
    TY_BYTE,
    TY_UBYTE,
    TY_SHORT,
    TY_USHORT,
    TY_INT,
    TY_UINT,
    TY_LONG,
    TY_FLOAT,
    TY_DOUBLE,
    TY_STRING,
    TY_VECTOR,
    TY_MAP,
    TY_NAMED, /* TY_NAMED resolves to TY_STRUCT or TY_ENUM */
    TY_STRUCT,
    TY_ENUM,
    TY_VOID,
};

struct def;

typedef struct type {
    int kind;
    struct type *a, *b; /* vector elem; map key/value */
    char *name;         /* TY_NAMED as written, e.g. "Other::T" */
    struct def *ref;    /* resolved struct/enum */
    loc_t at;
} type_t;

enum value_kind {
    VAL_NONE,
    VAL_INT,
    VAL_FLOAT,
    VAL_STRING,
    VAL_BOOL,
    VAL_IDENT
};

typedef struct value {
    int kind;
    long long i;
    double f;
    char *s; /* VAL_STRING bytes, VAL_IDENT name (maybe scoped) */
    size_t s_len;
    bool ovf;
    loc_t at;
} value_t;

typedef struct field {
    int tag;
    bool require;
    type_t *type;
    char *name;
    value_t def;     /* VAL_NONE when no default */
    long long def_i; /* resolved integer default (enums by name too) */
    loc_t at;
} field_t;

typedef struct enumerator {
    char *name;
    long long value;
    loc_t at;
} enumerator_t;

typedef struct param {
    char *name;
    type_t *type;
    bool out;
    loc_t at;
} param_t;

typedef struct op {
    char *name;
    type_t *ret; /* TY_VOID for void */
    param_t *params;
    int n_params;
    loc_t at;
} op_t;

enum def_kind { DEF_STRUCT, DEF_ENUM, DEF_CONST, DEF_INTERFACE };

typedef struct def {
    int kind;
    char *name;
    char *module;
    char *cname; /* module_name */
    struct file *file;
    loc_t at;
    field_t *fields; /* struct, sorted by tag after sema */
    int n_fields;
    enumerator_t *enums;
    int n_enums;
    type_t *ctype; /* const */
    value_t cval;
    op_t *ops;
    int n_ops;
    int order; /* emit order for structs (by-value dependencies) */
    int visit; /* sema scratch */
} def_t;

typedef struct file {
    char *path;
    char *base; /* file name without directory and extension */
    struct file **includes;
    int n_includes;
    def_t **defs; /* in declaration order */
    int n_defs;
    char **modules; /* module names in order of first appearance */
    int n_modules;
} file_t;

/* ---- options and whole-program state ---- */
typedef struct opts {
    bool with_tars;
    const char **inc_dirs;
    int n_inc_dirs;
} opts_t;

extern opts_t g_opts;

/* Parses path (and its includes, each file once); NULL after errors. */
file_t *parse_file(const char *path, loc_t from);
/* All parsed files, in parse order. */
file_t **all_files(int *n);

/* Resolves names and checks every parsed file; 0 or -1 (diagnosed). */
int sema_check(void);
def_t *sema_lookup(const char *module, const char *name);

/* ---- generation helpers (gen_util.c) ---- */
const char *type_ctype(const type_t *t);  /* C type of a value */
const char *type_mangle(const type_t *t); /* m(T) from the conventions */
bool type_is_bytes(const type_t *t);      /* vector<byte> */
bool type_is_container(const type_t *t);  /* vector (not bytes) or map */
bool type_is_scalar(const type_t *t);     /* number, bool, enum */
/* Name of the reader with the shape (in, tag, require, T *): "jce_get_int32",
 * "M_S_read", "get_jcev_x", ... */
const char *type_getter(const type_t *t);
/* Appends a statement writing lvalue `val` at `tag` into jce_out_t *`o`. */
void emit_put(buf_t *b, const type_t *t, const char *o, const char *tag,
              const char *val);
/* Appends s[0..n) as a C string literal (octal escapes for the rest). */
void c_string_literal(buf_t *b, const char *s, size_t n);
/* Collects every container type used by a file (deduplicated, inner first). */
type_t **file_containers(file_t *f, int *n);

void gen_header(file_t *f, buf_t *out);
void gen_enums_header(file_t *f, buf_t *out);
void gen_source(file_t *f, buf_t *out);
void gen_struct_code(def_t *d, buf_t *out);
void gen_container_code(type_t *t, buf_t *out);
void gen_json_container_code(type_t *t, buf_t *out);
void gen_json_struct_code(def_t *d, buf_t *out);
void gen_json_prelude(buf_t *out);
void gen_rpc_header(def_t *d, buf_t *out);
void gen_rpc_prelude(buf_t *out);
void gen_rpc_code(def_t *d, buf_t *out);
void gen_schema(file_t *f, buf_t *out);

#endif
