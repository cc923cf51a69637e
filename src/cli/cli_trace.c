/*
 * `herald trace MSG_ID --key KEY [--api URL]`: a message's path through
 * herald, from GET /v1/messages/{msgId} (docs/api.md), one step per line:
 *
 *   msg 0190f3c2a1b2c3d4e5f60001  app test  kind single  ttl 3600  targets 1
 *   accepted  2026-11-24T21:30:01.123Z
 *   stored    2026-11-24T21:30:01.125Z  (1 device)
 *   routed    2026-11-24T21:30:04.002Z  (1)
 *   written   2026-11-24T21:30:04.002Z  (1)
 *   acked     2026-11-24T21:30:04.010Z  (1)
 *
 * A step not reached yet prints "-"; expired only once it happened.  Exits
 * 0, 1 on an error answer (unknown id, bad key), 2 on bad usage, 3 when
 * the API is unreachable (as `herald push`).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/cli_http.h"
#include "core/net.h"

static void trace_usage(FILE *f) {
    fprintf(f, "usage: herald trace MSG_ID --key KEY [--api URL]\n\n"
               "Prints the message's path: accepted, stored, routed, written,\n"
               "acked (and expired), each with its time and count.\n\n"
               "  --key KEY     the app's API key (or $HERALD_API_KEY)\n"
               "  --api URL     HTTP API, http://HOST:PORT (127.0.0.1:8080)\n");
}

/* ms since the epoch -> "2026-11-24T21:30:01.123Z". */
static void iso_ms(long long ms, char *out, size_t cap) {
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    char base[32];
    if (!gmtime_r(&sec, &tm) ||
        !strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm)) {
        snprintf(out, cap, "%lld", ms);
        return;
    }
    snprintf(out, cap, "%s.%03dZ", base, (int)(ms % 1000));
}

static bool id_ok(const char *id) {
    if (!*id || strlen(id) > 128) return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '_'))
            return false;
    return true;
}

static void print_trace(const json_t *j) {
    const json_t *tl = json_object_get(j, "timeline");
    const char *app = json_string_value(json_object_get(j, "app"));
    const char *kind = json_string_value(json_object_get(j, "kind"));
    long long ttl = (long long)json_integer_value(json_object_get(j, "ttl"));
    long long targets =
        (long long)json_integer_value(json_object_get(j, "targets"));
    bool bcast = kind && !strcmp(kind, "all") && ttl > 0;
    /* An all-online push (or ttl 0) is never stored: its ttl means
     * nothing; a stored broadcast goes to every device, now or later. */
    bool online = (kind && !strcmp(kind, "online")) || ttl == 0;
    char ttl_s[32], tg_s[32];
    if (online)
        snprintf(ttl_s, sizeof ttl_s, "online-only");
    else
        snprintf(ttl_s, sizeof ttl_s, "ttl %lld", ttl);
    if (bcast)
        snprintf(tg_s, sizeof tg_s, "every device");
    else
        snprintf(tg_s, sizeof tg_s, "%lld", targets);
    printf("msg %s  app %s  kind %s  %s  targets %s\n",
           json_string_value(json_object_get(j, "msgId")), app ? app : "?",
           kind ? kind : "?", ttl_s, tg_s);
    static const char *steps[] = {"accepted", "stored",  "routed", "written",
                                  "acked",    "expired", "dropped"};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        const json_t *e = json_object_get(tl, steps[i]);
        long long at = (long long)json_integer_value(json_object_get(e, "at"));
        long long n =
            (long long)json_integer_value(json_object_get(e, "count"));
        /* Only what happened: a message is rarely expired or dropped. */
        bool rare =
            !strcmp(steps[i], "expired") || !strcmp(steps[i], "dropped");
        if (at <= 0) {
            if (!rare) printf("%-9s -\n", steps[i]);
            continue;
        }
        char when[48];
        iso_ms(at, when, sizeof when);
        if (!strcmp(steps[i], "accepted") || n <= 0)
            printf("%-9s %s\n", steps[i], when);
        else if (!strcmp(steps[i], "stored") && bcast)
            printf("%-9s %s  (broadcast timeline, once for every device)\n",
                   steps[i], when);
        else if (!strcmp(steps[i], "stored"))
            printf("%-9s %s  (%lld device%s)\n", steps[i], when, n,
                   n == 1 ? "" : "s");
        else if (!strcmp(steps[i], "dropped"))
            printf("%-9s %s  (%lld device%s never got it)\n", steps[i], when, n,
                   n == 1 ? "" : "s");
        else
            printf("%-9s %s  (%lld)\n", steps[i], when, n);
    }
}

int cli_trace(int argc, char **argv) {
    static const struct option opts[] = {
        {"api", required_argument, 0, 'u'},
        {"key", required_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *url = "http://127.0.0.1:8080", *key = getenv("HERALD_API_KEY");
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u': url = optarg; break;
        case 'k': key = optarg; break;
        case 'h': trace_usage(stdout); return 0;
        default: trace_usage(stderr); return 2;
        }
    }
    char host[256];
    int port;
    const char *why = optind == argc       ? "MSG_ID is required"
                      : optind != argc - 1 ? "one MSG_ID at a time"
                      : !key || !*key      ? "no API key: give --key KEY or"
                                             " set $HERALD_API_KEY"
                      : cli_http_parse_url(url, host, sizeof host, &port) < 0
                          ? "bad --api (http://HOST:PORT or HOST:PORT)"
                          : NULL;
    if (why) {
        fprintf(stderr, "herald trace: %s\n\n", why);
        trace_usage(stderr);
        return 2;
    }
    const char *id = argv[optind];
    if (!id_ok(id)) {
        fprintf(stderr, "herald trace: '%s' is not a message id\n", id);
        return 1;
    }
    int fd, rc = net_connect_tcp(host, port, NULL, false, &fd);
    if (rc < 0) {
        fprintf(stderr, "herald trace: connect %s:%d: %s\n", host, port,
                strerror(-rc));
        return 3;
    }
    char head[1024];
    int hl = snprintf(head, sizeof head,
                      "GET /v1/messages/%s HTTP/1.1\r\nHost: %s:%d\r\n"
                      "Authorization: Bearer %s\r\nConnection: close\r\n\r\n",
                      id, host, port, key);
    char *body = NULL;
    int status = -1;
    if (hl > 0 && (size_t)hl < sizeof head &&
        cli_http_write_all(fd, head, (size_t)hl) == 0)
        status = cli_http_read_response(fd, &body);
    close(fd);
    if (status < 0) {
        fprintf(stderr, "herald trace: no valid answer from %s:%d\n", host,
                port);
        return 3;
    }
    json_t *j = json_loads(body, 0, NULL);
    int out = 1;
    if (status == 200 && json_is_object(j)) {
        print_trace(j);
        out = 0;
    } else if (status == 404) {
        fprintf(stderr,
                "herald trace: no message %s (unknown id, expired "
                "and purged, or another app's)\n",
                id);
    } else if (status == 401) {
        fprintf(stderr, "herald trace: the API key was refused (401 "
                        "unauthorized)\n");
    } else {
        fprintf(stderr, "herald trace: HTTP %d: %s\n", status, body);
    }
    json_decref(j);
    free(body);
    return out;
}
