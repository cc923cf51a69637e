/*
 * conf: sources (flags, environment, file) and typed values (see conf.h).
 * Nothing here knows any option: the tables live with their commands.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"

#define FIELD(o, s) ((char *)(s) + (o)->off)

void conf_err(conf_errs_t *e, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    e->n++;
    if (e->fn) e->fn(e->ctx, line);
}

static int find_opt(const conf_table_t *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->opts[i].name, name)) return i;
    return -1;
}

/* ---- sources ------------------------------------------------------------ */

void conf_src_free(conf_src_t *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->a[i].val);
        free(s->a[i].origin);
    }
    free(s->a);
    memset(s, 0, sizeof *s);
}

static int src_add(conf_src_t *s, int opt, const char *val, size_t len,
                   const char *origin) {
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 16;
        conf_assign_t *na = realloc(s->a, (size_t)nc * sizeof *na);
        if (!na) return -1;
        s->a = na;
        s->cap = nc;
    }
    conf_assign_t *a = &s->a[s->n];
    a->opt = opt;
    a->val = strndup(val, len);
    a->origin = strdup(origin);
    if (!a->val || !a->origin) {
        free(a->val);
        free(a->origin);
        return -1;
    }
    s->n++;
    return 0;
}

const char *conf_src_get(const conf_src_t *s, const conf_table_t *t,
                         const char *name) {
    int i = find_opt(t, name);
    for (int k = s->n - 1; i >= 0 && k >= 0; k--)
        if (s->a[k].opt == i) return s->a[k].val;
    return NULL;
}

#define OPT_BASE 1000

int conf_src_args(const conf_table_t *t, int argc, char **argv, conf_src_t *out,
                  conf_errs_t *e) {
    struct option *longs = calloc((size_t)t->n + 2, sizeof *longs);
    if (!longs) {
        conf_err(e, "out of memory");
        return -1;
    }
    for (int i = 0; i < t->n; i++) {
        longs[i].name = t->opts[i].name;
        longs[i].has_arg = t->opts[i].type == CONF_BOOL ? optional_argument
                                                        : required_argument;
        longs[i].val = OPT_BASE + i;
    }
    longs[t->n].name = "help";
    longs[t->n].val = 'h';
    int ch, rc = 0;
    optind = 1;
    opterr = 0; /* our own words below, one line, naming the flag */
    while (rc == 0 && (ch = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        if (ch == 'h') {
            rc = 1;
        } else if (ch >= OPT_BASE && ch < OPT_BASE + t->n) {
            char origin[80];
            const char *v = optarg ? optarg : "true"; /* a bare bool */
            snprintf(origin, sizeof origin, "--%s", longs[ch - OPT_BASE].name);
            if (src_add(out, ch - OPT_BASE, v, strlen(v), origin) < 0) {
                conf_err(e, "out of memory");
                rc = -1;
            }
        } else if (ch == ':') {
            conf_err(e, "option '%s' needs a value (see %s --help)",
                     argv[optind - 1], t->cmd);
            rc = -1;
        } else {
            conf_err(e, "unknown option '%s' (see %s --help)", argv[optind - 1],
                     t->cmd);
            rc = -1;
        }
    }
    if (rc == 0 && optind < argc) {
        conf_err(e, "unexpected argument '%s' (options are --name VALUE)",
                 argv[optind]);
        rc = -1;
    }
    free(longs);
    return rc;
}

void conf_env_name(const conf_opt_t *o, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "HERALD_%s", o->name);
    for (int i = 7; i < n && (size_t)i < cap; i++)
        buf[i] = buf[i] == '-' ? '_' : (char)toupper((unsigned char)buf[i]);
}

void conf_src_env(const conf_table_t *t, conf_src_t *out) {
    for (int i = 0; i < t->n; i++) {
        const conf_opt_t *o = &t->opts[i];
        char name[80];
        conf_env_name(o, name, sizeof name);
        const char *v = getenv(name);
        if (!v || !*v) continue; /* empty = unset, as shells often leave it */
        if (o->type != CONF_LIST) {
            if (src_add(out, i, v, strlen(v), name) < 0) return;
            continue;
        }
        while (*v) {
            size_t sp = strspn(v, " \t\n"), len = strcspn(v + sp, " \t\n");
            if (len && src_add(out, i, v + sp, len, name) < 0) return;
            v += sp + len;
        }
    }
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

/* One "key = value" line; 0 or -1 (reported).  first[i] remembers the
 * line a scalar was first set on. */
static int file_line(const conf_table_t *t, const char *path, int ln,
                     char *line, int *first, conf_src_t *out, conf_errs_t *e) {
    char *s = trim(line);
    if (!*s || *s == '#') return 0;
    char *eq = strchr(s, '=');
    if (!eq) {
        /* The line is not echoed: it may be a mistyped secret. */
        conf_err(e, "%s:%d: missing '=' (lines are: key = value)", path, ln);
        return -1;
    }
    *eq = 0;
    char *key = trim(s), *val = trim(eq + 1);
    int i = *key ? find_opt(t, key) : -1;
    if (i < 0) {
        if (*key)
            conf_err(e, "%s:%d: unknown key '%.64s'", path, ln, key);
        else
            conf_err(e, "%s:%d: missing key before '='", path, ln);
        return -1;
    }
    const conf_opt_t *o = &t->opts[i];
    if (o->flags & CONF_NOFILE) {
        conf_err(e, "%s:%d: %s cannot be set in a config file", path, ln, key);
        return -1;
    }
    if (o->type != CONF_LIST && first[i]) {
        conf_err(e, "%s:%d: %s given twice (first on line %d)", path, ln, key,
                 first[i]);
        return -1;
    }
    first[i] = ln;
    char origin[512];
    snprintf(origin, sizeof origin, "%s:%d: %s", path, ln, o->name);
    if (src_add(out, i, val, strlen(val), origin) < 0) {
        conf_err(e, "%s:%d: out of memory", path, ln);
        return -1;
    }
    return 0;
}

int conf_src_file(const conf_table_t *t, const char *path, conf_src_t *out,
                  conf_errs_t *e) {
    FILE *f = fopen(path, "r");
    if (!f) {
        conf_err(e, "%s: %s", path, strerror(errno));
        return -1;
    }
    int *first = calloc((size_t)t->n, sizeof *first);
    char *line = NULL;
    size_t cap = 0;
    int ln = 0, bad = !first;
    if (!first) conf_err(e, "%s: out of memory", path);
    while (first && getline(&line, &cap, f) >= 0)
        if (file_line(t, path, ++ln, line, first, out, e) < 0) bad = 1;
    if (ferror(f)) {
        conf_err(e, "%s: read error", path);
        bad = 1;
    }
    free(line);
    free(first);
    fclose(f);
    return bad ? -1 : 0;
}

/* ---- values ----------------------------------------------------------- */

conf_list_t *conf_list_of(const conf_opt_t *o, void *settings) {
    return (conf_list_t *)FIELD(o, settings);
}

static void list_clear(conf_list_t *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int list_add(conf_list_t *l, const char *v) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], v)) return 0; /* the same line twice: once */
    char **nv = realloc(l->v, (size_t)(l->n + 1) * sizeof *nv);
    if (!nv) return -1;
    l->v = nv;
    if (!(nv[l->n] = strdup(v))) return -1;
    l->n++;
    return 0;
}

static int parse_bool(const char *v, bool *out) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!strcasecmp(v, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(v, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int set_int(const conf_opt_t *o, void *s, const char *v, char *why,
                   size_t cap) {
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno || isspace((unsigned char)*v)) {
        snprintf(why, cap, "'%.64s' is not a whole number", v);
        return -1;
    }
    if (n < o->lo || n > o->hi) {
        snprintf(why, cap, "'%.64s' is out of range %ld..%ld", v, o->lo, o->hi);
        return -1;
    }
    *(int *)FIELD(o, s) = (int)n;
    return 0;
}

static int set_enum(const conf_opt_t *o, void *s, const char *v, char *why,
                    size_t cap) {
    int i = 0;
    for (; o->names[i]; i++)
        if (!strcmp(v, o->names[i])) {
            *(int *)FIELD(o, s) = i;
            return 0;
        }
    int n = snprintf(why, cap, "'%.64s' is not one of", v);
    for (i = 0; o->names[i] && n > 0 && (size_t)n < cap; i++)
        n += snprintf(why + n, cap - (size_t)n, "%s %s", i ? "," : "",
                      o->names[i]);
    return -1;
}

int conf_set(const conf_opt_t *o, void *s, const char *v, char *why,
             size_t cap) {
    bool secret = o->flags & CONF_SECRET;
    const char *bad;
    switch (o->type) {
    case CONF_INT: return set_int(o, s, v, why, cap);
    case CONF_ENUM: return set_enum(o, s, v, why, cap);
    case CONF_BOOL:
        if (parse_bool(v, (bool *)FIELD(o, s)) == 0) return 0;
        snprintf(why, cap, "'%.64s' is not true or false", v);
        return -1;
    case CONF_STR:
    case CONF_LIST:
        if (o->check && (bad = o->check(v))) {
            if (secret)
                snprintf(why, cap, "%s", bad);
            else
                snprintf(why, cap, "'%.64s': %s", v, bad);
            return -1;
        }
        break;
    }
    if (o->type == CONF_LIST) {
        conf_list_t *l = conf_list_of(o, s);
        if (l->n >= o->hi) {
            snprintf(why, cap, "at most %ld values", o->hi);
            return -1;
        }
        if (list_add(l, v) == 0) return 0;
    } else {
        char *d = strdup(v), **p = (char **)FIELD(o, s);
        if (d) {
            free(*p);
            *p = d;
            return 0;
        }
    }
    snprintf(why, cap, "out of memory");
    return -1;
}

void conf_defaults(const conf_table_t *t, void *s) {
    char why[256];
    for (int i = 0; i < t->n; i++) {
        const conf_opt_t *o = &t->opts[i];
        const char *def = o->def ? o->def : "";
        if (o->type == CONF_LIST) {
            list_clear(conf_list_of(o, s));
            if (o->def) (void)conf_set(o, s, o->def, why, sizeof why);
        } else {
            /* A table's defaults are checked by its tests (conf.h); only
             * out of memory can fail here, leaving a string NULL. */
            (void)conf_set(o, s, def, why, sizeof why);
        }
    }
}

void conf_free(const conf_table_t *t, void *s) {
    for (int i = 0; i < t->n; i++) {
        const conf_opt_t *o = &t->opts[i];
        if (o->type == CONF_LIST) {
            list_clear(conf_list_of(o, s));
        } else if (o->type == CONF_STR) {
            char **p = (char **)FIELD(o, s);
            free(*p);
            *p = NULL;
        }
    }
}

int conf_apply(const conf_table_t *t, void *s, const conf_src_t *src,
               conf_errs_t *e) {
    int bad = 0;
    for (int k = 0; k < src->n; k++) {
        const conf_assign_t *a = &src->a[k];
        char why[400];
        if (conf_set(&t->opts[a->opt], s, a->val, why, sizeof why) < 0) {
            conf_err(e, "%s: %s", a->origin, why);
            bad++;
        }
    }
    return bad;
}

static const char *str_or_empty(const char *s) { return s ? s : ""; }

bool conf_differs(const conf_opt_t *o, const void *a, const void *b) {
    const char *pa = (const char *)a + o->off, *pb = (const char *)b + o->off;
    switch (o->type) {
    case CONF_INT:
    case CONF_ENUM: return *(const int *)pa != *(const int *)pb;
    case CONF_BOOL: return *(const bool *)pa != *(const bool *)pb;
    case CONF_STR:
        return strcmp(str_or_empty(*(char *const *)pa),
                      str_or_empty(*(char *const *)pb)) != 0;
    case CONF_LIST: {
        const conf_list_t *la = (const void *)pa, *lb = (const void *)pb;
        if (la->n != lb->n) return true;
        for (int i = 0; i < la->n; i++)
            if (strcmp(la->v[i], lb->v[i])) return true;
        return false;
    }
    }
    return true;
}

int conf_copy(const conf_opt_t *o, void *dst, const void *src) {
    char *pd = FIELD(o, dst);
    const char *ps = (const char *)src + o->off;
    switch (o->type) {
    case CONF_INT:
    case CONF_ENUM: *(int *)pd = *(const int *)ps; return 0;
    case CONF_BOOL: *(bool *)pd = *(const bool *)ps; return 0;
    case CONF_STR: {
        char *d = strdup(str_or_empty(*(char *const *)ps));
        if (!d) return -1;
        free(*(char **)pd);
        *(char **)pd = d;
        return 0;
    }
    case CONF_LIST: {
        const conf_list_t *ls = (const void *)ps;
        conf_list_t *ld = (void *)pd;
        list_clear(ld);
        for (int i = 0; i < ls->n; i++)
            if (list_add(ld, ls->v[i]) < 0) return -1;
        return 0;
    }
    }
    return -1;
}
