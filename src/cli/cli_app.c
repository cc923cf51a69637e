/*
 * `herald app create|list|rotate-key|set`: applications in the store.
 * Opens the same SQLite file as `herald serve` (--db PATH, else $HERALD_DB,
 * else ./herald.db); WAL lets it run beside a serving process, which sees
 * new apps at once, and rotated keys and changed settings within seconds
 * (its API-key cache holds an app's settings for 3 s).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/shq.h"
#include "core/token.h"
#include "store/store.h"

const char *cli_db_path(const char *flag) {
    if (flag && *flag)
        return flag;
    const char *env = getenv("HERALD_DB");
    return env && *env ? env : "herald.db";
}

static void app_usage(FILE *f) {
    fprintf(f,
            "usage: herald app create NAME [--unknown-device store|reject] "
            "[--db PATH]\n"
            "       herald app list [--db PATH]\n"
            "       herald app rotate-key NAME [--db PATH]\n"
            "       herald app set NAME unknown-device=store|reject "
            "[--db PATH]\n\n"
            "NAME: 1..63 characters of [A-Za-z0-9_@-], not starting with "
            "'-'.\n"
            "unknown-device: what a push to a device that never connected "
            "does:\n"
            "  store (default) keeps it for its ttl; reject refuses it "
            "(unknown_device).\n"
            "The database defaults to $HERALD_DB, else ./herald.db.\n");
}

static const char *mode_name(int m) {
    return m == STORE_UNKNOWN_REJECT ? "reject" : "store";
}

/* "store" | "reject" -> enum store_unknown_device, or -1. */
static int mode_parse(const char *s) {
    return !strcmp(s, "store")    ? STORE_UNKNOWN_STORE
           : !strcmp(s, "reject") ? STORE_UNKNOWN_REJECT
                                  : -1;
}

static void print_app(void *ctx, const store_app_t *a, int n_keys) {
    (void)ctx;
    printf("%-24s keys=%d unknown-device=%s created_ms=%lld\n", a->name,
           n_keys, mode_name(a->unknown_device), (long long)a->created_ms);
}

/* What the command line asked for. */
typedef struct app_cmd {
    const char *cmd, *name, *db;
    const char *setting;  /* set: "key=value" */
    int mode;             /* create --unknown-device, set; -1 = not given */
} app_cmd_t;

static int create(const app_cmd_t *a, store_t *st) {
    store_app_t app;
    char key[128];
    int rc = store_app_create(st, a->name,
                              a->mode >= 0 ? a->mode : STORE_UNKNOWN_STORE,
                              &app, key, sizeof key);
    char qn[3 * 64], qs[3 * 128]; /* the command, quoted for sh */
    if (rc == 0 && (shq_quote(qn, sizeof qn, app.name) < 0 ||
                    shq_quote(qs, sizeof qs, app.secret) < 0))
        rc = STORE_E_INVALID;
    if (rc == 0)
        printf("app      %s\nsecret   %s\napi key  %s\n"
               "unknown-device %s\n"
               "mint a device token:\n"
               "  herald token --app %s --device DEVICE --secret %s\n",
               app.name, app.secret, key,
               mode_name(a->mode >= 0 ? a->mode : STORE_UNKNOWN_STORE), qn,
               qs);
    return rc;
}

static int run(const app_cmd_t *a, store_t *st) {
    char key[128];
    int rc;
    if (!strcmp(a->cmd, "create")) {
        rc = create(a, st);
    } else if (!strcmp(a->cmd, "rotate-key")) {
        rc = store_app_rotate_key(st, a->name, key, sizeof key);
        if (rc == 0)
            printf("app      %s\napi key  %s   (older keys revoked)\n",
                   a->name, key);
    } else if (!strcmp(a->cmd, "set")) {
        rc = store_app_set_unknown_device(st, a->name, a->mode);
        if (rc == 0)
            printf("app      %s\nunknown-device %s\n", a->name,
                   mode_name(a->mode));
    } else {
        store_reader_t *r;
        rc = store_reader_new(st, &r);
        if (rc == 0) {
            rc = store_app_list(r, print_app, NULL);
            store_reader_free(r);
        }
    }
    if (rc < 0)
        fprintf(stderr, "herald app %s%s%s: %s\n", a->cmd, a->name ? " " : "",
                a->name ? a->name : "", store_strerror(rc));
    return rc < 0 ? 1 : 0;
}

/* Words and flags in any order.  0, or 2 (usage, said on stderr). */
static int parse(int argc, char **argv, app_cmd_t *a) {
    const char *words[3] = {0};
    int nw = 0;
    const char *ud = NULL;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--db") && i + 1 < argc)
            a->db = argv[++i];
        else if (!strncmp(s, "--db=", 5))
            a->db = s + 5;
        else if (!strcmp(s, "--unknown-device") && i + 1 < argc)
            ud = argv[++i];
        else if (!strncmp(s, "--unknown-device=", 17))
            ud = s + 17;
        else if (s[0] == '-' || nw == 3)
            return 2; /* a name never starts with '-' (token_app_valid) */
        else
            words[nw++] = s;
    }
    a->cmd = words[0];
    a->name = words[1];
    a->setting = words[2];
    a->mode = -1;
    if (!a->cmd)
        return 2;
    bool list = !strcmp(a->cmd, "list"), set = !strcmp(a->cmd, "set");
    bool create_ = !strcmp(a->cmd, "create");
    if (!list && !set && !create_ && strcmp(a->cmd, "rotate-key"))
        return 2;
    if (list != !a->name || (set != (a->setting != NULL)) ||
        (ud && !create_))
        return 2;
    if (ud && (a->mode = mode_parse(ud)) < 0)
        return 2;
    if (set) {
        if (strncmp(a->setting, "unknown-device=", 15) ||
            (a->mode = mode_parse(a->setting + 15)) < 0)
            return 2;
    }
    return 0;
}

int cli_app(int argc, char **argv) {
    app_cmd_t a = {0};
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            app_usage(stdout);
            return 0;
        }
    if (parse(argc, argv, &a)) {
        app_usage(stderr);
        return 2;
    }
    if (a.name && !strcmp(a.cmd, "create") &&
        !token_app_valid(a.name, strlen(a.name))) {
        /* The one rule (token.h): a name that is accepted can always
         * authenticate its devices. */
        fprintf(stderr, "herald app create: invalid app name (1..63 "
                        "characters of [A-Za-z0-9_@-], not starting with "
                        "'-')\n");
        return 2;
    }
    store_config_t sc;
    store_config_defaults(&sc);
    sc.path = cli_db_path(a.db);
    store_t *st;
    int rc = store_open(&sc, &st);
    if (rc < 0) {
        fprintf(stderr, "herald app: %s: %s\n", sc.path, store_open_error(rc));
        return 1;
    }
    rc = run(&a, st);
    store_close(st);
    return rc;
}
