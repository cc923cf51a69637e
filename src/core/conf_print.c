/*
 * conf_print: what an option table tells people (see conf.h): --help lines,
 * effective values with secrets hidden, an example config file and the
 * markdown reference.  All from the same table, so none can drift.
 */
#include <stdbool.h>
#include <string.h>

#include "core/conf.h"

void conf_format(const conf_opt_t *o, const void *s, int item, char *out,
                 size_t cap) {
    const char *p = (const char *)s + o->off;
    const char *v = NULL;
    switch (o->type) {
    case CONF_INT: snprintf(out, cap, "%d", *(const int *)p); return;
    case CONF_BOOL:
        snprintf(out, cap, "%s", *(const bool *)p ? "true" : "false");
        return;
    case CONF_ENUM: snprintf(out, cap, "%s", o->names[*(const int *)p]); return;
    case CONF_STR: v = *(char *const *)p; break;
    case CONF_LIST: {
        const conf_list_t *l = (const void *)p;
        v = item >= 0 && item < l->n ? l->v[item] : NULL;
        break;
    }
    }
    if (!(o->flags & CONF_SECRET))
        snprintf(out, cap, "%s", v ? v : "");
    else if (o->show && v)
        o->show(v, out, cap);
    else
        snprintf(out, cap, "(redacted)");
}

/* "integer 0..65535", "one of debug, info", "NAME:SECRET:APIKEY,
 * repeatable". */
static void type_desc(const conf_opt_t *o, char *out, size_t cap) {
    int n = 0;
    switch (o->type) {
    case CONF_INT: snprintf(out, cap, "integer %ld..%ld", o->lo, o->hi); return;
    case CONF_STR: snprintf(out, cap, "string"); return;
    case CONF_BOOL: snprintf(out, cap, "true or false"); return;
    case CONF_LIST: snprintf(out, cap, "%s, repeatable", o->arg); return;
    case CONF_ENUM:
        n = snprintf(out, cap, "one of");
        for (int i = 0; o->names[i] && n > 0 && (size_t)n < cap; i++)
            n += snprintf(out + n, cap - (size_t)n, "%s %s", i ? "," : "",
                          o->names[i]);
        return;
    }
}

static void flag_text(const conf_opt_t *o, char *out, size_t cap) {
    if (o->type == CONF_BOOL)
        snprintf(out, cap, "--%s", o->name);
    else
        snprintf(out, cap, "--%s %s", o->name, o->arg ? o->arg : "VALUE");
}

/* text from column col to 79, continued lines indented to col. */
static void print_wrapped(FILE *f, const char *text, int col) {
    int room = 79 - col > 20 ? 79 - col : 20;
    while (*text) {
        int n = (int)strlen(text);
        if (n > room) {
            n = room;
            while (n > 0 && text[n] != ' ') n--;
            if (n == 0) n = room; /* one long word: cut it */
        }
        fprintf(f, "%.*s\n", n, text);
        text += n;
        while (*text == ' ') text++;
        if (*text) fprintf(f, "%*s", col, "");
    }
}

void conf_print_usage(const conf_table_t *t, FILE *f) {
    int w = 0;
    for (int i = 0; i < t->n; i++) {
        char fl[96];
        flag_text(&t->opts[i], fl, sizeof fl);
        int n = (int)strlen(fl);
        if (n > w && n <= 24) w = n;
    }
    for (int i = 0; i < t->n; i++) {
        const conf_opt_t *o = &t->opts[i];
        char fl[96], text[512];
        flag_text(o, fl, sizeof fl);
        int n = snprintf(text, sizeof text, "%s", o->help);
        for (int k = 0; o->type == CONF_ENUM && o->names[k]; k++)
            n += snprintf(text + n, sizeof text - (size_t)n, "%s%s",
                          k ? ", " : ": ", o->names[k]);
        if (o->type == CONF_LIST)
            n += snprintf(text + n, sizeof text - (size_t)n, " (repeatable)");
        else if (o->def && *o->def && o->type != CONF_BOOL)
            n += snprintf(text + n, sizeof text - (size_t)n, " (%s)", o->def);
        if (o->flags & CONF_LIVE)
            snprintf(text + n, sizeof text - (size_t)n, " [live]");
        if ((int)strlen(fl) > w)
            fprintf(f, "  %s\n  %-*s ", fl, w, "");
        else
            fprintf(f, "  %-*s ", w, fl);
        print_wrapped(f, text, w + 3);
    }
    fprintf(f, "  %-*s %s\n", w, "--help", "this text");
}

void conf_print_values(const conf_table_t *t, const void *s, FILE *f) {
    for (int i = 0; i < t->n; i++) {
        const conf_opt_t *o = &t->opts[i];
        char v[512];
        if (o->flags & CONF_NOFILE) continue;
        if (o->type != CONF_LIST) {
            conf_format(o, s, 0, v, sizeof v);
            fprintf(f, "%s = %s\n", o->name, v);
            continue;
        }
        const conf_list_t *l = (const void *)((const char *)s + o->off);
        if (!l->n) fprintf(f, "# %s: none\n", o->name);
        for (int k = 0; k < l->n; k++) {
            conf_format(o, s, k, v, sizeof v);
            fprintf(f, "%s = %s\n", o->name, v);
        }
    }
}

void conf_print_example(const conf_table_t *t, FILE *f) {
    for (int i = 0; i < t->n; i++) {
        const conf_opt_t *o = &t->opts[i];
        if (o->flags & CONF_NOFILE) continue;
        char ty[256], env[80];
        type_desc(o, ty, sizeof ty);
        conf_env_name(o, env, sizeof env);
        fprintf(f, "# %s\n# %s; $%s; %s\n", o->help, ty, env,
                o->flags & CONF_LIVE ? "changes live on SIGHUP"
                                     : "needs a restart");
        if (o->def)
            fprintf(f, "%s =%s%s\n\n", o->name, *o->def ? " " : "", o->def);
        else
            fprintf(f, "#%s = %s\n\n", o->name, o->arg ? o->arg : "VALUE");
    }
}

void conf_print_doc(const conf_table_t *t, FILE *f) {
    fprintf(f, "| option | type | default | environment | on SIGHUP |"
               " meaning |\n|---|---|---|---|---|---|\n");
    for (int i = 0; i < t->n; i++) {
        const conf_opt_t *o = &t->opts[i];
        char ty[256], env[80], def[128];
        type_desc(o, ty, sizeof ty);
        conf_env_name(o, env, sizeof env);
        if (o->def && *o->def)
            snprintf(def, sizeof def, "`%s`", o->def);
        else
            snprintf(def, sizeof def, "%s", o->def ? "empty" : "none");
        fprintf(f, "| `%s`%s | %s | %s | `%s` | %s | %s |\n", o->name,
                o->flags & CONF_NOFILE ? " (flag, env)" : "", ty, def, env,
                o->flags & CONF_LIVE ? "live" : "restart", o->help);
    }
}
