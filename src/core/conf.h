/*
 * conf: typed option tables and the three places their values come from.
 *
 * A table of conf_opt_t describes every option of a command once: its
 * name, type, range, default, whether it may change while running, and a
 * help line.  Each entry fills one field of a caller's settings struct
 * (through its offset).  From that one table come the command-line flags
 * (--name VALUE), the config file keys (name = value), the environment
 * variables (HERALD_NAME, upper case, '-' -> '_'), --help, an example file
 * and a markdown reference (conf_print.c).
 *
 * Reading happens in two steps so that a reload can repeat the second:
 *
 *   1. each place becomes a source, a list of (option, text, origin)
 *      assignments: conf_src_args, conf_src_env, conf_src_file;
 *   2. conf_apply converts and checks each assignment into the settings,
 *      lowest precedence first: defaults < file < environment < flags.
 *
 * A scalar set again later wins.  A repeatable option (CONF_LIST) adds up
 * across sources: every `app` line, $HERALD_APP and --app all count.
 *
 * Errors go to a conf_errs_t sink as whole lines naming where they come
 * from ("herald.conf:12: port: '70000' is out of range 0..65535").  The
 * value of an option marked CONF_SECRET is never repeated in an error or
 * printed by conf_print_values (its show hook decides what is shown).
 */
#ifndef HERALD_CORE_CONF_H
#define HERALD_CORE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum conf_type {
    CONF_INT,  /* int in [lo, hi] */
    CONF_STR,  /* char *, strdup'd; "" allowed */
    CONF_BOOL, /* bool: true/false, yes/no, on/off, 1/0 */
    CONF_ENUM, /* int: index of one of names[] */
    CONF_LIST, /* conf_list_t: repeatable string, at most hi items */
} conf_type_t;

enum conf_flag {
    CONF_LIVE = 1,   /* applied by a reload without a restart */
    CONF_SECRET = 2, /* never printed or echoed in errors */
    CONF_NOFILE = 4, /* flag and environment only (e.g. the file's path) */
};

typedef struct conf_list {
    char **v;
    int n;
} conf_list_t;

typedef struct conf_opt {
    const char *name; /* "rate-app" */
    conf_type_t type;
    size_t off;               /* of the field in the settings struct */
    long lo, hi;              /* CONF_INT range; CONF_LIST: hi = most items */
    const char *def;          /* default, as text; NULL = none (lists) */
    const char *const *names; /* CONF_ENUM: allowed words, NULL-ended */
    unsigned flags;           /* enum conf_flag */
    const char *arg;          /* placeholder in --help: "N", "ADDR" */
    const char *help;         /* one line */
    /* CONF_STR/CONF_LIST: extra check of one value; NULL if fine, else
     * why not (without the value itself). */
    const char *(*check)(const char *v);
    /* CONF_SECRET: what to show of a value (e.g. an app's name only);
     * NULL shows "(redacted)". */
    void (*show)(const char *v, char *out, size_t cap);
} conf_opt_t;

typedef struct conf_table {
    const conf_opt_t *opts;
    int n;
    const char *cmd; /* "herald serve": in flag errors and --help */
} conf_table_t;

/* Where errors go: fn is called once per error with a whole line (no
 * newline); n counts them.  fn NULL: only counted. */
typedef struct conf_errs {
    void (*fn)(void *ctx, const char *line);
    void *ctx;
    int n;
} conf_errs_t;

void conf_err(conf_errs_t *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- sources ------------------------------------------------------------ */

typedef struct conf_assign {
    int opt;      /* index into the table */
    char *val;    /* owned */
    char *origin; /* "FILE:LINE", "HERALD_PORT", "--port" */
} conf_assign_t;

typedef struct conf_src {
    conf_assign_t *a;
    int n, cap;
} conf_src_t;

void conf_src_free(conf_src_t *s);
/* The last value given for the option named name, or NULL. */
const char *conf_src_get(const conf_src_t *s, const conf_table_t *t,
                         const char *name);

/* Flags: --name VALUE, --name=VALUE; a bool also bare (--no-fsync) or
 * --no-fsync=false.  Returns 0, 1 for --help, or -1 (a bad or unknown
 * flag, reported to e; getopt also prints its own line). */
int conf_src_args(const conf_table_t *t, int argc, char **argv, conf_src_t *out,
                  conf_errs_t *e);
/* HERALD_NAME for every option; a list's variable holds values separated
 * by white space.  Never fails (values are checked by conf_apply). */
void conf_src_env(const conf_table_t *t, conf_src_t *out);
/* "key = value" lines; '#' starts a comment line; blank lines are skipped;
 * white space around keys and values is cut.  Unknown keys, lines without
 * '=', CONF_NOFILE keys and a scalar given twice are errors.  Returns 0,
 * or -1 if any error (all are reported) or the file cannot be read. */
int conf_src_file(const conf_table_t *t, const char *path, conf_src_t *out,
                  conf_errs_t *e);

/* The env variable of an option into buf: "HERALD_RATE_APP". */
void conf_env_name(const conf_opt_t *o, char *buf, size_t cap);

/* ---- settings ----------------------------------------------------------- */

/* Every field to its default.  A table's defaults must be valid (for
 * herald serve: tests/integration/config.test.js checks the example file). */
void conf_defaults(const conf_table_t *t, void *settings);
/* Frees the strings and lists the settings own. */
void conf_free(const conf_table_t *t, void *settings);
/* Applies each assignment in order; every bad value is reported.  Returns
 * the number of errors (0: all applied). */
int conf_apply(const conf_table_t *t, void *settings, const conf_src_t *src,
               conf_errs_t *e);
/* One value into its field (a list: appended).  0, or -1 with a reason in
 * why that never holds the value of a secret. */
int conf_set(const conf_opt_t *o, void *settings, const char *val, char *why,
             size_t cap);
/* Whether the option's value differs between a and b. */
bool conf_differs(const conf_opt_t *o, const void *a, const void *b);
/* Deep copy of one option's value from src to dst.  0 or -1 (memory). */
int conf_copy(const conf_opt_t *o, void *dst, const void *src);
/* The list field of a CONF_LIST option. */
conf_list_t *conf_list_of(const conf_opt_t *o, void *settings);

/* ---- printing (conf_print.c) -------------------------------------------- */

/* The option lines of --help. */
void conf_print_usage(const conf_table_t *t, FILE *f);
/* "name = value" for every option, secrets as their show hook says. */
void conf_print_values(const conf_table_t *t, const void *settings, FILE *f);
/* A complete config file: each option with its help, range, variable,
 * live or restart, and its default (commented out when it has none). */
void conf_print_example(const conf_table_t *t, FILE *f);
/* The markdown reference table of every option. */
void conf_print_doc(const conf_table_t *t, FILE *f);
/* The value of one option as text ("(redacted)" etc. for secrets). */
void conf_format(const conf_opt_t *o, const void *settings, int item, char *out,
                 size_t cap);

#endif
