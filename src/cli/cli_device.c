/*
 * `herald device revoke APP DEVICE`: the device's tokens issued before now
 * are refused from now on.  Writes the store (--db PATH, else $HERALD_DB,
 * else ./herald.db) like `herald app`; a `herald serve` running on the same
 * file reads new revocations every second (src/push/push_revoke.c), then
 * refuses those tokens and closes the device's connection.  On a running
 * server DELETE /v1/devices/{id}/tokens does the same at once.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/token.h"
#include "store/store.h"

static void device_usage(FILE *f) {
    fprintf(
        f, "usage: herald device revoke APP DEVICE [--db PATH]\n\n"
           "Revokes the device's tokens issued before now: they are refused\n"
           "(ERR_TOKEN_REVOKED) and its connection is closed.  Tokens minted\n"
           "from now on work.  A herald serve on the same database applies it\n"
           "within a second (DELETE /v1/devices/ID/tokens: at once).  Tokens\n"
           "without an issue time count as issued token-max-ttl before their\n"
           "expiry.  The database defaults to $HERALD_DB, else ./herald.db.\n");
}

int cli_device(int argc, char **argv) {
    const char *db = NULL, *args[3] = {0};
    int na = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            device_usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db = argv[++i];
        else if (!strncmp(argv[i], "--db=", 5))
            db = argv[i] + 5;
        else if (argv[i][0] == '-' || na == 3) {
            device_usage(stderr);
            return 2;
        } else
            args[na++] = argv[i];
    }
    if (na != 3 || strcmp(args[0], "revoke")) {
        device_usage(stderr);
        return 2;
    }
    const char *app = args[1], *dev = args[2];
    if (!token_app_valid(app, strlen(app)) ||
        !token_id_valid(dev, strlen(dev))) {
        fprintf(stderr, "herald device revoke: invalid app or device name "
                        "(app: 1..63 of [A-Za-z0-9_@-]; device: 1..128 of "
                        "[A-Za-z0-9_:@-])\n");
        return 2;
    }
    store_config_t sc;
    store_config_defaults(&sc);
    sc.path = cli_db_path(db);
    store_t *st;
    int rc = store_open(&sc, &st);
    if (rc < 0) {
        fprintf(stderr, "herald device: %s: %s\n", sc.path, herald_strerror(rc));
        return 1;
    }
    int64_t before = (int64_t)time(NULL), in_force = before;
    rc = store_device_revoke(st, app, dev, before, &in_force);
    store_close(st);
    if (rc < 0) {
        fprintf(stderr, "herald device revoke %s %s: %s\n", app, dev,
                herald_strerror(rc));
        return 1;
    }
    char when[32];
    time_t t = (time_t)in_force;
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    printf("app %s device %s: tokens issued before %s (%lld) are revoked\n",
           app, dev, when, (long long)in_force);
    return 0;
}
