/* Buffers, allocation that cannot fail quietly, and diagnostics. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jce2c.h"

static int n_diags;

static void *oom_check(void *p) {
    if (!p) {
        fprintf(stderr, "jce2c: out of memory\n");
        exit(2);
    }
    return p;
}

void *xcalloc(size_t n, size_t size) {
    return oom_check(calloc(n ? n : 1, size ? size : 1));
}

char *xstrdup(const char *s) { return oom_check(strdup(s)); }

char *xstrndup(const char *s, size_t n) {
    char *p = oom_check(malloc(n + 1));
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *xasprintf(const char *fmt, ...) {
    va_list ap;
    char *p = NULL;
    va_start(ap, fmt);
    int r = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (r < 0) oom_check(NULL);
    return p;
}

void buf_put(buf_t *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        b->p = oom_check(realloc(b->p, cap));
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void buf_puts(buf_t *b, const char *s) { buf_put(b, s, strlen(s)); }

void buf_printf(buf_t *b, const char *fmt, ...) {
    va_list ap;
    char *p = NULL;
    va_start(ap, fmt);
    int r = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (r < 0) oom_check(NULL);
    buf_put(b, p, (size_t)r);
    free(p);
}

void diag(loc_t at, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s:%d:%d: ", at.file ? at.file : "<command line>", at.line,
            at.col);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    n_diags++;
}

int diag_count(void) { return n_diags; }
