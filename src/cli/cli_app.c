/*
 * `herald app create|list|show|rotate-key|set`: applications in the store.
 * Opens the same SQLite file as `herald serve` (--db PATH, else $HERALD_DB,
 * else ./herald.db); WAL lets it run beside a serving process, which sees
 * new apps at once, and rotated keys and changed settings within seconds
 * (its API-key cache holds an app's settings for 3 s).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/shq.h"
#include "core/token.h"
#include "store/store.h"

const char *cli_db_path(const char *flag) {
    if (flag && *flag) return flag;
    const char *env = getenv("HERALD_DB");
    return env && *env ? env : "herald.db";
}

static void app_usage(FILE *f) {
    fprintf(f,
            "usage: herald app create NAME [--unknown-device store|reject] "
            "[--json|--env] [--db PATH]\n"
            "       herald app list [--db PATH]\n"
            "       herald app show NAME [--show-secret] [--json] [--db PATH]\n"
            "       herald app rotate-key NAME [--json|--env] [--db PATH]\n"
            "       herald app set NAME unknown-device=store|reject "
            "[--db PATH]\n\n"
            "create and rotate-key print the app's credentials: as lines for\n"
            "people, as one JSON object (--json), or as an environment file\n"
            "(--env: HERALD_APP=NAME:SECRET:APIKEY for herald serve,\n"
            "HERALD_SECRET and HERALD_API_KEY for herald listen/push).\n"
            "show never prints the secret unless --show-secret.\n"
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
    printf("%-24s keys=%d unknown-device=%s created_ms=%lld\n", a->name, n_keys,
           mode_name(a->unknown_device), (long long)a->created_ms);
}

/* How credentials are printed. */
enum { OUT_TEXT, OUT_JSON, OUT_ENV };

/* What the command line asked for. */
typedef struct app_cmd {
    const char *cmd, *name, *db;
    const char *setting; /* set: "key=value" */
    int mode;            /* create --unknown-device, set; -1 = not given */
    int out;             /* OUT_* */
    bool show_secret;    /* show --show-secret */
} app_cmd_t;

/* Prints j (taken) as one line; 0 or STORE_E_NOMEM. */
static int print_json(json_t *j) {
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!t) return STORE_E_NOMEM;
    printf("%s\n", t);
    free(t);
    return 0;
}

/* create and rotate-key print the same shape: the app, its secret and a
 * usable API key (older keys: revoked says they no longer work). */
static int print_creds(int out, const store_app_t *app, const char *key,
                       bool revoked) {
    if (out == OUT_ENV) {
        printf("HERALD_APP=%s:%s:%s\nHERALD_SECRET=%s\nHERALD_API_KEY=%s\n",
               app->name, app->secret, key, app->secret, key);
        return 0;
    }
    if (out == OUT_JSON) {
        json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "app", app->name, "secret",
                              app->secret, "apiKey", key, "unknownDevice",
                              mode_name(app->unknown_device));
        if (j && revoked)
            json_object_set_new(j, "olderKeysRevoked", json_true());
        return print_json(j);
    }
    char qn[3 * 64], qs[3 * 128]; /* the command, quoted for sh */
    if (shq_quote(qn, sizeof qn, app->name) < 0 ||
        shq_quote(qs, sizeof qs, app->secret) < 0)
        return STORE_E_INVALID;
    printf("app      %s\nsecret   %s\napi key  %s%s\n"
           "unknown-device %s\n"
           "mint a device token:\n"
           "  herald token --app %s --device DEVICE --secret %s\n",
           app->name, app->secret, key,
           revoked ? "   (older keys revoked)" : "",
           mode_name(app->unknown_device), qn, qs);
    return 0;
}

static int app_read(store_t *st, const char *name, store_app_t *app) {
    store_reader_t *r;
    int rc = store_reader_new(st, &r);
    if (rc == 0) {
        rc = store_app_get(r, name, app);
        store_reader_free(r);
    }
    return rc;
}

struct keycount {
    const char *name;
    int n;
};

static void count_keys(void *ctx, const store_app_t *a, int n_keys) {
    struct keycount *k = ctx;
    if (!strcmp(a->name, k->name)) k->n = n_keys;
}

/* What may be shown of an app: never the secret unless asked. */
static int show(const app_cmd_t *a, store_t *st) {
    store_app_t app;
    int rc = app_read(st, a->name, &app);
    struct keycount k = {a->name, 0};
    store_reader_t *r;
    if (rc == 0 && (rc = store_reader_new(st, &r)) == 0) {
        rc = store_app_list(r, count_keys, &k);
        store_reader_free(r);
    }
    if (rc < 0) return rc;
    if (a->out == OUT_JSON) {
        json_t *j = json_pack("{s:s,s:i,s:s,s:I}", "app", app.name, "keys", k.n,
                              "unknownDevice", mode_name(app.unknown_device),
                              "createdMs", (json_int_t)app.created_ms);
        if (j && a->show_secret)
            json_object_set_new(j, "secret", json_string(app.secret));
        return print_json(j);
    }
    printf("app      %s\nkeys     %d active (keys are kept only as digests:"
           " rotate-key makes a new one)\nunknown-device %s\ncreated_ms %lld\n",
           app.name, k.n, mode_name(app.unknown_device),
           (long long)app.created_ms);
    if (a->show_secret)
        printf("secret   %s\n", app.secret);
    else
        printf("secret   (hidden: --show-secret prints it)\n");
    return 0;
}

static int run(const app_cmd_t *a, store_t *st) {
    char key[128];
    int rc;
    if (!strcmp(a->cmd, "create")) {
        store_app_t app;
        rc = store_app_create(st, a->name,
                              a->mode >= 0 ? a->mode : STORE_UNKNOWN_STORE,
                              &app, key, sizeof key);
        if (rc == 0) rc = print_creds(a->out, &app, key, false);
    } else if (!strcmp(a->cmd, "rotate-key")) {
        store_app_t app;
        rc = store_app_rotate_key(st, a->name, key, sizeof key);
        if (rc == 0) rc = app_read(st, a->name, &app);
        if (rc == 0) rc = print_creds(a->out, &app, key, true);
    } else if (!strcmp(a->cmd, "show")) {
        rc = show(a, st);
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
                a->name ? a->name : "", herald_strerror(rc));
    return rc < 0 ? 1 : 0;
}

/* Words and flags in any order.  NULL, or what is wrong with them. */
static const char *parse(int argc, char **argv, app_cmd_t *a) {
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
        else if (!strcmp(s, "--json"))
            a->out = a->out == OUT_ENV ? -1 : OUT_JSON;
        else if (!strcmp(s, "--env"))
            a->out = a->out == OUT_JSON ? -1 : OUT_ENV;
        else if (!strcmp(s, "--show-secret"))
            a->show_secret = true;
        else if (s[0] == '-') /* a name never starts with '-' */
            return "unknown option (or an option without its value)";
        else if (nw == 3)
            return "too many words";
        else
            words[nw++] = s;
    }
    a->cmd = words[0];
    a->name = words[1];
    a->setting = words[2];
    a->mode = -1;
    if (!a->cmd) return "what to do? create, list, show, rotate-key or set";
    bool list = !strcmp(a->cmd, "list"), set = !strcmp(a->cmd, "set");
    bool create_ = !strcmp(a->cmd, "create"), show_ = !strcmp(a->cmd, "show");
    bool rotate = !strcmp(a->cmd, "rotate-key");
    if (!list && !set && !create_ && !show_ && !rotate)
        return "unknown command: create, list, show, rotate-key or set";
    if (list && a->name) return "list takes no NAME";
    if (!list && !a->name) return "NAME is required";
    if (set != (a->setting != NULL))
        return set ? "set NAME unknown-device=store|reject" : "too many words";
    if (ud && !create_) return "--unknown-device goes with create (or set)";
    if (a->out < 0) return "--json or --env, not both";
    if (a->out == OUT_ENV && !create_ && !rotate)
        return "--env goes with create and rotate-key";
    if (a->out == OUT_JSON && !create_ && !rotate && !show_)
        return "--json goes with create, show and rotate-key";
    if (a->show_secret && !show_) return "--show-secret goes with show";
    if (ud && (a->mode = mode_parse(ud)) < 0)
        return "--unknown-device is store or reject";
    if (set && (strncmp(a->setting, "unknown-device=", 15) ||
                (a->mode = mode_parse(a->setting + 15)) < 0))
        return "set NAME unknown-device=store|reject";
    return NULL;
}

int cli_app(int argc, char **argv) {
    app_cmd_t a = {0};
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            app_usage(stdout);
            return 0;
        }
    const char *why = parse(argc, argv, &a);
    if (why) {
        fprintf(stderr, "herald app: %s\n\n", why);
        app_usage(stderr);
        return 2;
    }
    /* The CLI is not a server: "store open" lines are noise on stderr. */
    if (log_get_level() < LOG_LEVEL_WARN) log_set_level(LOG_LEVEL_WARN);
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
