/*
 * `herald token`: mints a device token APP.DEV.IAT.EXPIRY.SIG
 * (src/core/token.h) so a backend, a test or an operator can hand one to a
 * device.  The issue time lets a server refuse tokens issued before a
 * revocation (`herald device revoke`).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "core/token.h"

static void token_usage(FILE *f) {
    fprintf(
        f,
        "usage: herald token --app APP --device DEV [--ttl SECONDS]\n"
        "                    (--secret S | --secret-file FILE)\n\n"
        "Prints a device token APP.DEV.IAT.EXPIRY.SIG (IAT = now) valid for\n"
        "--ttl seconds (default 86400; a server refuses tokens that live\n"
        "longer than its --token-max-ttl, default 30 days).  The secret may\n"
        "also come from $HERALD_SECRET.\n");
}

int cli_read_secret_file(const char *path, char *out, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -errno;
    size_t n = fread(out, 1, cap - 1, f);
    int err = ferror(f) ? -EIO : 0;
    int more = fgetc(f) != EOF;
    fclose(f);
    if (err) return err;
    if (more) return -EFBIG;
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        n--; /* files made with echo end in a newline nobody means */
    out[n] = 0;
    return (int)n;
}

int cli_parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int cli_token(int argc, char **argv) {
    static const struct option opts[] = {
        {"app", required_argument, 0, 'a'},
        {"device", required_argument, 0, 'd'},
        {"ttl", required_argument, 0, 't'},
        {"secret", required_argument, 0, 's'},
        {"secret-file", required_argument, 0, 'f'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *app = NULL, *dev = NULL, *secret = getenv("HERALD_SECRET");
    const char *secret_file = NULL;
    long ttl = 86400;
    char filebuf[1024];
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a': app = optarg; break;
        case 'd': dev = optarg; break;
        case 's': secret = optarg; break;
        case 'f': secret_file = optarg; break;
        case 't':
            if (cli_parse_long(optarg, 1, 100L * 365 * 86400, &ttl) < 0) {
                fprintf(stderr, "herald token: bad --ttl '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': token_usage(stdout); return 0;
        default: token_usage(stderr); return 2;
        }
    }
    if (secret_file) {
        int n = cli_read_secret_file(secret_file, filebuf, sizeof filebuf);
        if (n < 0) {
            fprintf(stderr, "herald token: %s: %s\n", secret_file,
                    strerror(-n));
            return 1;
        }
        secret = filebuf;
    }
    const char *why = optind != argc ? "unexpected argument"
                      : !app         ? "--app APP is required"
                      : !dev         ? "--device DEV is required"
                      : !secret || !*secret
                          ? "no secret: --secret S, --secret-file FILE or"
                            " $HERALD_SECRET"
                          : NULL;
    if (why) {
        fprintf(stderr, "herald token: %s%s%s\n\n", why,
                optind != argc ? " " : "", optind != argc ? argv[optind] : "");
        token_usage(stderr);
        return 2;
    }
    char tok[TOKEN_MAX];
    int64_t now = (int64_t)time(NULL);
    int rc = token_mint(tok, sizeof tok, app, dev, now, now + ttl,
                        (const uint8_t *)secret, strlen(secret));
    OPENSSL_cleanse(filebuf, sizeof filebuf);
    if (rc < 0) {
        fprintf(stderr,
                "herald token: %s (app: 1..63 of [A-Za-z0-9_@-], "
                "not starting with '-'; device: 1..128 of "
                "[A-Za-z0-9_:@-])\n",
                herald_strerror(rc));
        return 1;
    }
    printf("%s\n", tok);
    return 0;
}
