/*
 * Lexer for the IDL (tars-wire.md §3.1).  Hands out one token at a time with
 * its line and column (1-based, columns in bytes) so every later error can
 * point at the exact spot.  `#include "x"` is returned as one token; the
 * parser resolves it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jce2c.h"

static const char *const keywords[] = {
    "void",      "struct", "bool",    "byte",     "short",
    "int",       "double", "float",   "long",     "string",
    "vector",    "map",    "key",     "routekey", "module",
    "interface", "out",    "require", "optional", "false",
    "true",      "enum",   "const",   "unsigned", NULL,
};

bool is_keyword(const char *s) {
    for (int i = 0; keywords[i]; i++)
        if (strcmp(keywords[i], s) == 0) return true;
    return false;
}

void lex_init(lexer_t *lx, const char *file, const char *src, size_t len) {
    lx->file = file;
    lx->src = lx->p = src;
    lx->end = src + len;
    lx->line = 1;
    lx->line_start = src;
}

static loc_t here(const lexer_t *lx, const char *p) {
    return (loc_t){lx->file, lx->line, (int)(p - lx->line_start) + 1};
}

static void newline(lexer_t *lx, const char *after) {
    lx->line++;
    lx->line_start = after;
}

static token_t error_token(loc_t at) {
    return (token_t){.kind = TK_ERROR, .at = at};
}

/* Skips blanks and comments; false (diagnosed) on an unterminated comment. */
static bool skip_space(lexer_t *lx) {
    for (;;) {
        while (lx->p < lx->end && isspace((unsigned char)*lx->p)) {
            if (*lx->p == '\n') newline(lx, lx->p + 1);
            lx->p++;
        }
        if (lx->end - lx->p >= 2 && lx->p[0] == '/' && lx->p[1] == '/') {
            while (lx->p < lx->end && *lx->p != '\n') lx->p++;
            continue;
        }
        if (lx->end - lx->p >= 2 && lx->p[0] == '/' && lx->p[1] == '*') {
            loc_t at = here(lx, lx->p);
            lx->p += 2;
            for (;;) {
                if (lx->p >= lx->end) {
                    diag(at, "unterminated comment");
                    return false;
                }
                if (*lx->p == '*' && lx->p + 1 < lx->end && lx->p[1] == '/') {
                    lx->p += 2;
                    break;
                }
                if (*lx->p == '\n') newline(lx, lx->p + 1);
                lx->p++;
            }
            continue;
        }
        return true;
    }
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes one escape after the backslash at *pp; returns the byte. */
static int lex_escape(const char **pp, const char *end) {
    const char *p = *pp;
    int c = (unsigned char)*p++;
    int v;
    switch (c) {
    case 'n': v = '\n'; break;
    case 'r': v = '\r'; break;
    case 't': v = '\t'; break;
    case 'v': v = '\v'; break;
    case 'f': v = '\f'; break;
    case 'a': v = '\a'; break;
    case 'b': v = '\b'; break;
    case 'x':
        v = 0;
        while (p < end && hexval((unsigned char)*p) >= 0)
            v = (v * 16 + hexval((unsigned char)*p++)) & 0xff;
        break;
    default:
        if (c >= '0' && c <= '7') {
            v = c - '0';
            for (int i = 0; i < 2 && p < end && *p >= '0' && *p <= '7'; i++)
                v = v * 8 + (*p++ - '0');
            v &= 0xff;
        } else {
            v = c; /* \\ \" \' \? and anything else stand for themselves */
        }
    }
    *pp = p;
    return v;
}

static token_t lex_string(lexer_t *lx) {
    loc_t at = here(lx, lx->p);
    buf_t b = {0};
    const char *p = lx->p + 1;
    for (;;) {
        if (p >= lx->end || *p == '\n') {
            diag(at, "unterminated string literal");
            return error_token(at);
        }
        if (*p == '"') break;
        if (*p == 0) {
            diag(here(lx, p), "NUL character in string literal");
            return error_token(at);
        }
        if (*p == '\\' && p + 1 < lx->end && p[1] != '\n') {
            p++;
            char c = (char)lex_escape(&p, lx->end);
            buf_put(&b, &c, 1);
            continue;
        }
        buf_put(&b, p, 1);
        p++;
    }
    lx->p = p + 1;
    token_t t = {
        .kind = TK_STRING, .at = at, .text = xstrdup("string literal")};
    t.str = b.p ? b.p : xstrdup("");
    t.str_len = b.len;
    return t;
}

static token_t lex_number(lexer_t *lx) {
    loc_t at = here(lx, lx->p);
    const char *s = lx->p, *p = s;
    if (*p == '+' || *p == '-') p++;
    bool is_float = false;
    if (p + 1 < lx->end && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        p += 2;
        while (p < lx->end && isxdigit((unsigned char)*p)) p++;
    } else {
        while (p < lx->end && (isdigit((unsigned char)*p) || *p == '.')) {
            is_float |= *p == '.';
            p++;
        }
        if (p < lx->end && (*p == 'e' || *p == 'E')) {
            is_float = true;
            p++;
            if (p < lx->end && (*p == '+' || *p == '-')) p++;
            while (p < lx->end && isdigit((unsigned char)*p)) p++;
        }
        if (is_float && p < lx->end && (*p == 'f' || *p == 'F')) p++;
    }
    if (p < lx->end && (isalnum((unsigned char)*p) || *p == '_')) {
        diag(at, "malformed number");
        return error_token(at);
    }
    token_t t = {.kind = is_float ? TK_FLOAT : TK_INT, .at = at};
    t.text = xstrndup(s, (size_t)(p - s));
    errno = 0;
    char *endp;
    if (is_float) {
        t.fval = strtod(t.text, &endp);
    } else {
        t.ival = strtoll(t.text, &endp, 0);
        if (errno == ERANGE) t.ovf = true;
    }
    if (*endp && !(is_float && (*endp == 'f' || *endp == 'F') && !endp[1])) {
        diag(at, "malformed number '%s'", t.text);
        return error_token(at);
    }
    lx->p = p;
    return t;
}

static token_t lex_include(lexer_t *lx) {
    loc_t at = here(lx, lx->p);
    const char *p = lx->p + 1;
    while (p < lx->end && (*p == ' ' || *p == '\t')) p++;
    if (lx->end - p < 7 || strncmp(p, "include", 7) != 0) {
        diag(at, "unexpected character '#'");
        return error_token(at);
    }
    p += 7;
    while (p < lx->end && (*p == ' ' || *p == '\t')) p++;
    if (p >= lx->end || *p != '"') {
        diag(at, "#include expects a \"file\" name");
        return error_token(at);
    }
    const char *q = ++p;
    while (q < lx->end && *q != '"' && *q != '\n') q++;
    if (q >= lx->end || *q != '"') {
        diag(at, "unterminated string literal");
        return error_token(at);
    }
    token_t t = {
        .kind = TK_INCLUDE, .at = at, .text = xstrndup(p, (size_t)(q - p))};
    lx->p = q + 1;
    return t;
}

token_t lex_next(lexer_t *lx) {
    if (!skip_space(lx)) return error_token(here(lx, lx->p));
    if (lx->p >= lx->end)
        return (token_t){
            .kind = TK_EOF, .at = here(lx, lx->p), .text = "end of file"};
    const char *p = lx->p;
    unsigned char c = (unsigned char)*p;
    loc_t at = here(lx, p);
    if (isalpha(c) || c == '_') {
        while (p < lx->end && (isalnum((unsigned char)*p) || *p == '_')) p++;
        token_t t = {.kind = TK_IDENT,
                     .at = at,
                     .text = xstrndup(lx->p, (size_t)(p - lx->p))};
        lx->p = p;
        return t;
    }
    bool signed_num = (c == '-' || c == '+') && p + 1 < lx->end &&
                      (isdigit((unsigned char)p[1]) || p[1] == '.');
    if (isdigit(c) || signed_num ||
        (c == '.' && p + 1 < lx->end && isdigit((unsigned char)p[1])))
        return lex_number(lx);
    if (c == '"') return lex_string(lx);
    if (c == '#') return lex_include(lx);
    if (c == ':' && p + 1 < lx->end && p[1] == ':') {
        lx->p += 2;
        return (token_t){.kind = TK_SCOPE, .at = at, .text = "::"};
    }
    if (strchr("{};,<>[]=():*", c) && c) {
        lx->p++;
        return (token_t){.kind = TK_PUNCT, .at = at, .text = xstrndup(p, 1)};
    }
    if (isprint(c))
        diag(at, "unexpected character '%c'", c);
    else
        diag(at, "unexpected character '\\x%02x'", c);
    return error_token(at);
}
