/*
 * `herald app create|list|rotate-key`: applications in the store.  Opens
 * the same SQLite file as `herald serve` (--db PATH, else $HERALD_DB, else
 * ./herald.db); WAL lets it run beside a serving process, which sees new
 * apps at once and rotated keys within seconds.
 */
#include <getopt.h>
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
    fprintf(f, "usage: herald app create NAME [--db PATH]\n"
               "       herald app list [--db PATH]\n"
               "       herald app rotate-key NAME [--db PATH]\n\n"
               "The database defaults to $HERALD_DB, else ./herald.db.\n");
}

static void print_app(void *ctx, const store_app_t *a, int n_keys) {
    (void)ctx;
    printf("%-24s keys=%d created_ms=%lld\n", a->name, n_keys,
           (long long)a->created_ms);
}

static int run(const char *cmd, const char *name, store_t *st) {
    char key[128];
    int rc;
    if (!strcmp(cmd, "create")) {
        store_app_t a;
        rc = store_app_create(st, name, &a, key, sizeof key);
        char qn[3 * 64], qs[3 * 128]; /* the command, quoted for sh */
        if (rc == 0 && (shq_quote(qn, sizeof qn, a.name) < 0 ||
                        shq_quote(qs, sizeof qs, a.secret) < 0))
            rc = STORE_E_INVALID;
        if (rc == 0)
            printf("app      %s\nsecret   %s\napi key  %s\n"
                   "mint a device token:\n"
                   "  herald token --app %s --device DEVICE --secret %s\n",
                   a.name, a.secret, key, qn, qs);
    } else if (!strcmp(cmd, "rotate-key")) {
        rc = store_app_rotate_key(st, name, key, sizeof key);
        if (rc == 0)
            printf("app      %s\napi key  %s   (older keys revoked)\n", name,
                   key);
    } else {
        store_reader_t *r;
        rc = store_reader_new(st, &r);
        if (rc == 0) {
            rc = store_app_list(r, print_app, NULL);
            store_reader_free(r);
        }
    }
    if (rc < 0)
        fprintf(stderr, "herald app %s%s%s: %s\n", cmd, name ? " " : "",
                name ? name : "", store_strerror(rc));
    return rc < 0 ? 1 : 0;
}

int cli_app(int argc, char **argv) {
    static const struct option longs[] = {
        {"db", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *db = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
        if (ch == 'd') {
            db = optarg;
        } else {
            app_usage(ch == 'h' ? stdout : stderr);
            return ch == 'h' ? 0 : 2;
        }
    }
    /* Flags may also follow the subcommand. */
    const char *cmd = NULL, *name = NULL;
    for (int i = optind; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db = argv[++i];
        else if (!strncmp(argv[i], "--db=", 5))
            db = argv[i] + 5;
        else if (!cmd)
            cmd = argv[i];
        else if (!name)
            name = argv[i];
        else {
            app_usage(stderr);
            return 2;
        }
    }
    bool needs_name = cmd && strcmp(cmd, "list");
    if (!cmd ||
        (strcmp(cmd, "create") && strcmp(cmd, "list") &&
         strcmp(cmd, "rotate-key")) ||
        needs_name != (name != NULL)) {
        app_usage(stderr);
        return 2;
    }
    if (name && strcmp(cmd, "create") == 0 &&
        !token_app_valid(name, strlen(name))) {
        /* The one rule (token.h): a name that is accepted can always
         * authenticate its devices. */
        fprintf(stderr, "herald app create: invalid app name (1..63 "
                        "characters of [A-Za-z0-9_@-], not starting with "
                        "'-')\n");
        return 2;
    }
    store_config_t sc;
    store_config_defaults(&sc);
    sc.path = cli_db_path(db);
    store_t *st;
    int rc = store_open(&sc, &st);
    if (rc < 0) {
        fprintf(stderr, "herald app: %s: %s\n", sc.path, store_strerror(rc));
        return 1;
    }
    rc = run(cmd, name, st);
    store_close(st);
    return rc;
}
