/*
 * cli_config: the option table of `herald serve`, how its settings are
 * read (see cli_config.h), and `herald config check|example|doc`.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/cli_config.h"
#include "core/log.h"
#include "core/token.h"
#include "ops/ops_mem.h"

#define MAX_APPS 64
#define APP_SECRET_MAX 127 /* the store's limit (store_app_put) */
#define APP_KEY_MAX 256    /* PUSH_KEY_MAX */

/* "NAME:SECRET:APIKEY": why not, never quoting the spec (it is secret). */
static const char *check_app(const char *v) {
    const char *c1 = strchr(v, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) return "want NAME:SECRET:APIKEY";
    size_t nl = (size_t)(c1 - v), sl = (size_t)(c2 - c1 - 1);
    if (!token_app_valid(v, nl))
        return "NAME must be 1..63 characters of [A-Za-z0-9_@-], not "
               "starting with '-'";
    if (sl == 0 || sl > APP_SECRET_MAX)
        return "SECRET must be 1..127 bytes without ':'";
    size_t kl = strlen(c2 + 1);
    if (kl == 0 || kl > APP_KEY_MAX) return "APIKEY must be 1..256 bytes";
    for (const char *k = c2 + 1; *k; k++)
        if (*k <= ' ' || *k > '~')
            return "APIKEY must be printable ASCII without spaces";
    return NULL;
}

/* "auto", or a size ops_mem_parse_size takes ("0" = off). */
static const char *check_size(const char *v) {
    uint64_t n;
    if (!strcmp(v, "auto") || ops_mem_parse_size(v, &n) == 0) return NULL;
    return "must be auto, 0 or a size in bytes with K, M, G or T";
}

/* Only the app's name is ever shown. */
static void show_app(const char *v, char *out, size_t cap) {
    const char *c1 = strchr(v, ':');
    snprintf(out, cap, "%.*s:(secret):(api key)", (int)(c1 ? c1 - v : 0), v);
}

#define F(field) offsetof(serve_settings_t, field)
#define INT(name, field, lo, hi, def, fl, arg, help) \
    { name, CONF_INT, F(field), lo, hi, def, NULL, fl, arg, help, NULL, NULL }
#define STR(name, field, def, fl, arg, help) \
    { name, CONF_STR, F(field), 0, 0, def, NULL, fl, arg, help, NULL, NULL }
#define BOOL(name, field, def, fl, help) \
    { name, CONF_BOOL, F(field), 0, 1, def, NULL, fl, NULL, help, NULL, NULL }
#define ENUM(name, field, names, def, fl, arg, help) \
    { name, CONF_ENUM, F(field), 0, 0, def, names, fl, arg, help, NULL, NULL }
#define LIVE CONF_LIVE
#define M 100000000 /* "no practical limit" for counts */

static const conf_opt_t serve_opts[] = {
    STR("config", config, "", CONF_NOFILE, "FILE",
        "config file of key = value lines; none: built-in defaults"),
    STR("host", host, "0.0.0.0", 0, "ADDR",
        "device port address (raw TCP and WebSocket)"),
    INT("port", port, 0, 65535, "7100", 0, "N",
        "device port; 0 = any free port"),
    INT("workers", workers, 0, 256, "0", 0, "N",
        "gateway threads; 0 = one per core"),
    STR("api-host", api_host, "127.0.0.1", 0, "ADDR", "push API address"),
    INT("api-port", api_port, 0, 65535, "8080", 0, "N",
        "push API port (HTTP); 0 = any free port"),
    STR("tars-host", tars_host, "", 0, "ADDR",
        "TARS PushAPI address; empty = api-host"),
    INT("tars-port", tars_port, -1, 65535, "10000", 0, "N",
        "TARS PushAPI port; -1 = off, 0 = any free port"),
    INT("api-max-conns", api_max_conns, 1, 65536, "1024", 0, "N",
        "push API (HTTP) connections open at once"),
    INT("api-max-conns-per-ip", api_max_conns_per_ip, 0, 65536, "0", 0, "N",
        "of them from one client address; 0 = half of api-max-conns"),
    INT("tars-max-conns", tars_max_conns, 1, 4096, "64", 0, "N",
        "TARS connections open at once"),
    INT("tars-max-conns-per-ip", tars_max_conns_per_ip, 0, 4096, "0", 0, "N",
        "of them from one client address; 0 = half of tars-max-conns"),
    INT("tars-idle-timeout", tars_idle_timeout, 0, 86400, "60", 0, "S",
        "seconds a TARS connection may stay without a call; 0 = no limit"),

    STR("admin-host", admin_host, "127.0.0.1", 0, "ADDR",
        "admin listener: /metrics, /healthz, /readyz, /dashboard (private)"),
    INT("admin-port", admin_port, 0, 65535, "9100", 0, "N",
        "admin port; 0 = any free port"),
    STR("db", db, "herald.db", 0, "PATH", "SQLite store file"),
    BOOL("no-fsync", no_fsync, "false", 0,
         "commit without fsync (benchmarks only: a crash may lose pushes)"),
    INT("inbox-max", inbox_max, 0, M, "10000", 0, "N",
        "messages a device's inbox keeps; older undelivered ones are "
        "dropped (status: dropped); 0 = no limit"),
    BOOL("accept-journal-loss", accept_journal_loss, "false", 0,
         "start although the hot journal is damaged or missing: recover "
         "what is readable, log what was lost"),
    {"app", CONF_LIST, F(app), 0, MAX_APPS, NULL, NULL, LIVE | CONF_SECRET,
     "NAME:SECRET:APIKEY",
     "an application, upserted into the store; none and an empty store: "
     "a demo app.  As a flag it shows in ps: prefer app-file or $HERALD_APP",
     check_app, show_app},
    STR("app-file", app_file, "", LIVE, "PATH",
        "file of NAME:SECRET:APIKEY lines (# comments), one app each, added "
        "to app; must not be readable by others (chmod 600)"),
    INT("token-max-ttl", token_max_ttl, 60, 315360000, "2592000", LIVE, "S",
        "longest device token lifetime accepted, seconds (default 30 days); "
        "longer ones get ERR_TOKEN_TOO_LONG"),
    INT("rate-app", rate_app, 0, M, "100000", LIVE, "N",
        "pushes per second per app; 0 = no limit"),
    INT("burst", burst, 0, M, "0", LIVE, "N",
        "token bucket size of rate-app; 0 = rate-app"),
    INT("max-payload", max_payload, 1, 1 << 20, "4096", LIVE, "BYTES",
        "payload bytes at most"),
    INT("max-conns", max_conns, 0, M, "0", LIVE, "N",
        "device connections at most; 0 = derived from the descriptor "
        "limit, keeping room for the API, admin and store"),
    INT("max-conns-per-ip", max_conns_per_ip, 0, M, "0", 0, "N",
        "device connections per client address (IPv6 per /64); 0 = no limit"),
    INT("accept-rate", accept_rate, 0, M, "0", 0, "N",
        "new device connections per second, whole gateway; 0 = no limit"),
    INT("accept-burst", accept_burst, 0, M, "0", 0, "N",
        "connections at once above accept-rate; 0 = accept-rate"),
    {"memory-high", CONF_STR, F(memory_high), 0, 0, "auto", NULL, 0, "SIZE",
     "resident memory above which new connections and pushes are refused: "
     "bytes or 512M, 2G; 0 = off; auto = 85% of the cgroup limit or RAM",
     check_size, NULL},
    INT("hb-min", hb_min, 1, 86400, "10", LIVE, "S",
        "shortest heartbeat interval accepted, seconds"),
    INT("hb-max", hb_max, 1, 86400, "600", LIVE, "S",
        "longest heartbeat interval accepted, seconds"),
    INT("head-timeout", head_timeout, 1, 3600, "10", 0, "S",
        "seconds a client has to send an HTTP head (device and API ports) "
        "or a whole TARS frame"),
    ENUM("log-level", log_level, log_level_names, "info", LIVE, "LEVEL",
         "lowest level logged"),
    ENUM("log-format", log_format, log_format_names, "logfmt", LIVE, "FMT",
         "log line format; json = one JSON object a line"),
    STR("pid-file", pid_file, "", 0, "PATH",
        "write the pid there (for herald drain); empty = none"),
    INT("drain-grace", drain_grace, 0, 600000, "0", LIVE, "MS",
        "on SIGTERM, /readyz answers 503 this long before the listeners stop"),
};

const conf_table_t serve_table = {
    serve_opts,
    (int)(sizeof serve_opts / sizeof serve_opts[0]),
    "herald serve",
};

void serve_usage(FILE *f) {
    fprintf(f,
            "usage: herald serve [--config FILE] [options]\n\n"
            "Each option is also a config file key (name = value) and an\n"
            "environment variable ($HERALD_NAME, '-' as '_'); flags win over\n"
            "the environment, which wins over the file (docs/config.md).\n"
            "[live]: SIGHUP applies a change without a restart.\n\n"
            "App secrets: --app NAME:SECRET:APIKEY on the command line is\n"
            "visible to every local user (ps, /proc).  Give apps in a file\n"
            "instead (--app-file PATH, chmod 600), in $HERALD_APP (several\n"
            "separated by white space, e.g. from a systemd EnvironmentFile)\n"
            "or as app lines of a --config file readable by herald only.\n\n");
    conf_print_usage(&serve_table, f);
}

/* One app line of an --app-file into s->app, checked like any other. */
static int app_file_line(serve_settings_t *s, const char *path, int ln,
                         const char *line, conf_errs_t *e) {
    const conf_opt_t *o = NULL;
    for (int i = 0; i < serve_table.n; i++)
        if (!strcmp(serve_table.opts[i].name, "app")) o = &serve_table.opts[i];
    char why[256];
    if (o && conf_set(o, s, line, why, sizeof why) == 0) return 0;
    conf_err(e, "%s:%d: app: %s", path, ln, o ? why : "no app option");
    return -1;
}

/*
 * --app-file: NAME:SECRET:APIKEY lines, blank lines and # comments.  It
 * holds secrets, so a file that others may read (or write: they could
 * plant an app) is refused as a whole, before a line is read.  Errors
 * name the line, never its value.
 */
static int read_app_file(serve_settings_t *s, const char *path,
                         conf_errs_t *e) {
    FILE *f = fopen(path, "r");
    struct stat st;
    if (!f || fstat(fileno(f), &st) < 0) {
        conf_err(e, "%s: app-file: %s", path, strerror(errno));
        if (f) fclose(f);
        return -1;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        conf_err(e,
                 "%s: app-file: readable or writable by others; it holds "
                 "app secrets (chmod 600)",
                 path);
        fclose(f);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int ln = 0, bad = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        ln++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
                         line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = 0;
        char *p = line + strspn(line, " \t");
        if (*p && *p != '#') bad |= app_file_line(s, path, ln, p, e) < 0;
    }
    if (line) {
        OPENSSL_cleanse(line, cap);
        free(line);
    }
    fclose(f);
    return bad ? -1 : 0;
}

int serve_conf_init(serve_conf_t *c, int argc, char **argv, conf_errs_t *e) {
    memset(c, 0, sizeof *c);
    int rc = conf_src_args(&serve_table, argc, argv, &c->flags, e);
    if (rc) return rc;
    conf_src_env(&serve_table, &c->env);
    c->path = conf_src_get(&c->flags, &serve_table, "config");
    if (!c->path) c->path = conf_src_get(&c->env, &serve_table, "config");
    if (c->path && !*c->path) c->path = NULL;
    return 0;
}

void serve_conf_free(serve_conf_t *c) {
    conf_src_free(&c->flags);
    conf_src_free(&c->env);
    c->path = NULL;
}

int serve_conf_load(const serve_conf_t *c, serve_settings_t *s,
                    conf_errs_t *e) {
    const conf_table_t *t = &serve_table;
    int before = e->n;
    conf_defaults(t, s);
    if (c->path) {
        /* Lines that parsed are applied even when others did not, so one
         * run reports every error of the file. */
        conf_src_t file = {0};
        (void)conf_src_file(t, c->path, &file, e); /* errors counted in e */
        (void)conf_apply(t, s, &file, e);
        conf_src_free(&file);
    }
    (void)conf_apply(t, s, &c->env, e);
    (void)conf_apply(t, s, &c->flags, e);
    if (s->app_file && *s->app_file)
        (void)read_app_file(s, s->app_file, e); /* errors counted in e */
    if (e->n == before)
        (void)serve_settings_check(s, c->path ? c->path : t->cmd, e);
    return e->n - before;
}

void serve_app_split(const char *spec, char name[64], char secret[128],
                     const char **key) {
    const char *c1 = strchr(spec, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) {
        name[0] = secret[0] = 0;
        *key = "";
        return;
    }
    snprintf(name, 64, "%.*s", (int)(c1 - spec), spec);
    snprintf(secret, 128, "%.*s", (int)(c2 - c1 - 1), c1 + 1);
    *key = c2 + 1;
}

/* Two app lines that cannot both hold: one name with two secrets, or one
 * key for two apps. */
static int check_app_pair(const char *a, const char *b, const char *where,
                          conf_errs_t *e) {
    char na[64], nb[64], sa[128], sb[128];
    const char *ka, *kb;
    serve_app_split(a, na, sa, &ka);
    serve_app_split(b, nb, sb, &kb);
    int bad = 0;
    if (!strcmp(na, nb) && strcmp(sa, sb)) {
        conf_err(e, "%s: app %s is given with two different secrets", where,
                 na);
        bad = 1;
    } else if (strcmp(na, nb) && !strcmp(ka, kb)) {
        conf_err(e, "%s: apps %s and %s are given the same API key", where, na,
                 nb);
        bad = 1;
    }
    OPENSSL_cleanse(sa, sizeof sa);
    OPENSSL_cleanse(sb, sizeof sb);
    return bad;
}

int serve_settings_check(const serve_settings_t *s, const char *where,
                         conf_errs_t *e) {
    int bad = 0;
    if (s->hb_min > s->hb_max) {
        conf_err(e, "%s: hb-min (%d) is above hb-max (%d)", where, s->hb_min,
                 s->hb_max);
        bad++;
    }
    for (int i = 0; i < s->app.n; i++)
        for (int j = i + 1; j < s->app.n; j++)
            bad += check_app_pair(s->app.v[i], s->app.v[j], where, e);
    return bad;
}

int serve_settings_copy(serve_settings_t *dst, const serve_settings_t *src) {
    for (int i = 0; i < serve_table.n; i++)
        if (conf_copy(&serve_table.opts[i], dst, src) < 0) return -1;
    return 0;
}

/* ---- herald config ---------------------------------------------------- */

static void print_line(void *ctx, const char *line) {
    fprintf(ctx, "%s\n", line);
}

/* defaults < FILE < environment: what `herald serve --config FILE` would
 * run with (its flags aside). */
static int config_check(const char *path) {
    serve_conf_t c;
    memset(&c, 0, sizeof c);
    conf_src_env(&serve_table, &c.env);
    c.path = path;
    serve_settings_t s;
    memset(&s, 0, sizeof s);
    conf_errs_t e = {print_line, stderr, 0};
    int n = serve_conf_load(&c, &s, &e);
    if (n) {
        fprintf(stderr, "%s: %d error%s\n", path, n, n == 1 ? "" : "s");
    } else {
        printf("# %s is valid.  Effective settings (defaults < file <"
               " environment):\n",
               path);
        for (int i = 0; i < c.env.n; i++)
            if (i == 0 || strcmp(c.env.a[i].origin, c.env.a[i - 1].origin))
                printf("#   from the environment: %s\n", c.env.a[i].origin);
        conf_print_values(&serve_table, &s, stdout);
    }
    conf_free(&serve_table, &s);
    serve_conf_free(&c);
    return n ? 1 : 0;
}

static void config_example(FILE *f) {
    fprintf(f,
            "# herald.conf: every `herald serve` option with its default.\n"
            "# Made by `herald config example`; docs/config.md explains.\n"
            "#\n"
            "# Lines are `key = value`; a line starting with # is a comment.\n"
            "# $HERALD_<KEY> (upper case, '-' as '_') and --<key> flags win\n"
            "# over this file.  Use it with `herald serve --config FILE` (or\n"
            "# $HERALD_CONFIG); `herald config check FILE` validates it and\n"
            "# SIGHUP re-reads it (options marked live apply at once).\n\n");
    conf_print_example(&serve_table, f);
}

static void config_usage(FILE *f) {
    fprintf(f, "usage: herald config check FILE   validate FILE ($HERALD_* "
               "applied too) and print\n"
               "                                  the effective settings, "
               "secrets hidden; exit 1\n"
               "                                  on errors (FILE:LINE: ...)\n"
               "       herald config example      a complete config file with "
               "every default\n"
               "                                  (deploy/herald.conf)\n"
               "       herald config doc          the option table of "
               "docs/config.md (markdown)\n");
}

int cli_config(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "check") && argc == 3) return config_check(argv[2]);
    if (!strcmp(cmd, "example") && argc == 2) {
        config_example(stdout);
        return 0;
    }
    if (!strcmp(cmd, "doc") && argc == 2) {
        conf_print_doc(&serve_table, stdout);
        return 0;
    }
    bool help = !strcmp(cmd, "--help") || !strcmp(cmd, "-h");
    if (!help)
        fprintf(stderr, "herald config: unknown use '%s'%s\n\n", cmd,
                !strcmp(cmd, "check") ? " (check FILE)" : "");
    config_usage(help ? stdout : stderr);
    return help ? 0 : 2;
}
