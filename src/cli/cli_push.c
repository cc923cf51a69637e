/*
 * `herald push device|online`: one call to the HTTP push API (docs/api.md)
 * over a blocking HTTP/1.1 connection.  Prints the JSON answer; exits 0 on
 * 2xx, 1 on an error answer, 2 on bad usage, 3 when the server is
 * unreachable.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "core/net.h"

#define RESP_MAX (1u << 20)

static void push_usage(FILE *f) {
    fprintf(f,
        "usage: herald push device --api URL --key KEY --device DEV\n"
        "                          (--payload TEXT | --payload-b64 B64)\n"
        "                          [--ttl SECONDS] [--request-id ID]\n"
        "                          [--collapse-key K] [--no-ack]\n"
        "       herald push online --api URL --key KEY (--payload ...)\n\n"
        "URL is http://HOST:PORT (default http://127.0.0.1:8080); KEY may\n"
        "come from $HERALD_API_KEY.\n");
}

/* "http://host:port[/]" -> host, port. */
static int parse_url(const char *url, char *host, size_t cap, int *port) {
    if (strncmp(url, "http://", 7))
        return -1;
    url += 7;
    const char *colon = strrchr(url, ':');
    const char *slash = strchr(url, '/');
    size_t hl = colon ? (size_t)(colon - url)
                      : slash ? (size_t)(slash - url) : strlen(url);
    if (hl == 0 || hl >= cap)
        return -1;
    memcpy(host, url, hl);
    host[hl] = 0;
    long p = 80;
    if (colon) {
        char digits[8];
        size_t dl = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);
        if (dl == 0 || dl >= sizeof digits)
            return -1;
        memcpy(digits, colon + 1, dl);
        digits[dl] = 0;
        if (cli_parse_long(digits, 1, 65535, &p) < 0)
            return -1;
    }
    *port = (int)p;
    return 0;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one response with a Content-Length body; the status, or -1.  The
 * body is NUL-terminated in *body (malloc'd). */
static int read_response(int fd, char **body) {
    char *buf = malloc(RESP_MAX + 1);
    size_t len = 0;
    if (!buf)
        return -1;
    for (;;) {
        char *end = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
        if (end) {
            size_t head = (size_t)(end - buf) + 4;
            buf[head - 2] = 0;
            int status = 0;
            unsigned long cl = 0;
            if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
                break;
            const char *h = strcasestr(buf, "\r\ncontent-length:");
            if (h)
                cl = strtoul(h + 17, NULL, 10);
            if (cl > RESP_MAX - head)
                break;
            while (len < head + cl) {
                ssize_t n = read(fd, buf + len, RESP_MAX - len);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0)
                    goto fail;
                len += (size_t)n;
            }
            memmove(buf, buf + head, cl);
            buf[cl] = 0;
            *body = buf;
            return status;
        }
        if (len == RESP_MAX)
            break;
        ssize_t n = read(fd, buf + len, RESP_MAX - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
fail:
    free(buf);
    return -1;
}

int cli_push(int argc, char **argv) {
    static const struct option opts[] = {
        {"api", required_argument, 0, 'u'},
        {"key", required_argument, 0, 'k'},
        {"device", required_argument, 0, 'd'},
        {"payload", required_argument, 0, 'p'},
        {"payload-b64", required_argument, 0, 'b'},
        {"ttl", required_argument, 0, 't'},
        {"request-id", required_argument, 0, 'r'},
        {"collapse-key", required_argument, 0, 'c'},
        {"no-ack", no_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        push_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *what = argv[1];
    bool device = !strcmp(what, "device");
    if (!device && strcmp(what, "online")) {
        fprintf(stderr, "herald push: unknown target '%s'\n", what);
        push_usage(stderr);
        return 2;
    }
    const char *url = "http://127.0.0.1:8080", *key = getenv("HERALD_API_KEY");
    json_t *req = json_object();
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'u': url = optarg; break;
        case 'k': key = optarg; break;
        case 'd': json_object_set_new(req, "deviceId", json_string(optarg)); break;
        case 'p': json_object_set_new(req, "payload", json_string(optarg)); break;
        case 'b': json_object_set_new(req, "payloadB64", json_string(optarg)); break;
        case 'r': json_object_set_new(req, "requestId", json_string(optarg)); break;
        case 'c': json_object_set_new(req, "collapseKey", json_string(optarg)); break;
        case 'n': json_object_set_new(req, "needAck", json_false()); break;
        case 't':
            if (cli_parse_long(optarg, 0, 1L << 40, &v) < 0) {
                fprintf(stderr, "herald push: bad --ttl '%s'\n", optarg);
                json_decref(req);
                return 2;
            }
            json_object_set_new(req, "ttl", json_integer(v));
            break;
        case 'h': push_usage(stdout); json_decref(req); return 0;
        default: push_usage(stderr); json_decref(req); return 2;
        }
    }
    char host[256];
    int port;
    if (!key || optind != argc || (device && !json_object_get(req, "deviceId")) ||
        parse_url(url, host, sizeof host, &port) < 0) {
        push_usage(stderr);
        json_decref(req);
        return 2;
    }
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body)
        return 1;
    int fd, rc = net_connect_tcp(host, port, NULL, false, &fd);
    if (rc < 0) {
        fprintf(stderr, "herald push: connect %s:%d: %s\n", host, port,
                strerror(-rc));
        free(body);
        return 3;
    }
    char head[1024];
    int hl = snprintf(head, sizeof head,
                      "POST /v1/push/%s HTTP/1.1\r\nHost: %s:%d\r\n"
                      "Authorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      what, host, port, key, strlen(body));
    char *rbody = NULL;
    int status = -1;
    if (hl > 0 && (size_t)hl < sizeof head && write_all(fd, head, (size_t)hl) == 0 &&
        write_all(fd, body, strlen(body)) == 0)
        status = read_response(fd, &rbody);
    close(fd);
    free(body);
    if (status < 0) {
        fprintf(stderr, "herald push: no valid answer from %s:%d\n", host, port);
        return 3;
    }
    printf("%s\n", rbody);
    free(rbody);
    return status >= 200 && status < 300 ? 0 : 1;
}
