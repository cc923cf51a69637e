/*
 * cli_http.c: the small blocking HTTP/1.1 client the CLI commands share
 * (herald push, herald trace): parse an http:// URL, write a request,
 * read one Content-Length answer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_http.h"

#define RESP_MAX (1u << 20)

/* "http://host:port[/]" -> host, port.  The scheme may be left out
 * ("127.0.0.1:8080", as the help shows the default); any other scheme is
 * refused (https is not spoken here). */
int cli_http_parse_url(const char *url, char *host, size_t cap, int *port) {
    if (!strncmp(url, "http://", 7))
        url += 7;
    else if (strstr(url, "://"))
        return -1;
    const char *colon = strrchr(url, ':');
    const char *slash = strchr(url, '/');
    size_t hl = colon   ? (size_t)(colon - url)
                : slash ? (size_t)(slash - url)
                        : strlen(url);
    if (hl == 0 || hl >= cap) return -1;
    memcpy(host, url, hl);
    host[hl] = 0;
    long p = 80;
    if (colon) {
        char digits[8];
        size_t dl = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);
        if (dl == 0 || dl >= sizeof digits) return -1;
        memcpy(digits, colon + 1, dl);
        digits[dl] = 0;
        if (cli_parse_long(digits, 1, 65535, &p) < 0) return -1;
    }
    *port = (int)p;
    return 0;
}

int cli_http_write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one response with a Content-Length body; the status, or -1.  The
 * body is NUL-terminated in *body (malloc'd). */
int cli_http_read_response(int fd, char **body) {
    char *buf = malloc(RESP_MAX + 1);
    size_t len = 0;
    if (!buf) return -1;
    for (;;) {
        char *end = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
        if (end) {
            size_t head = (size_t)(end - buf) + 4;
            buf[head - 2] = 0;
            int status = 0;
            unsigned long cl = 0;
            if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) break;
            const char *h = strcasestr(buf, "\r\ncontent-length:");
            if (h) cl = strtoul(h + 17, NULL, 10);
            if (cl > RESP_MAX - head) break;
            while (len < head + cl) {
                ssize_t n = read(fd, buf + len, RESP_MAX - len);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) goto fail;
                len += (size_t)n;
            }
            memmove(buf, buf + head, cl);
            buf[cl] = 0;
            *body = buf;
            return status;
        }
        if (len == RESP_MAX) break;
        ssize_t n = read(fd, buf + len, RESP_MAX - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
fail:
    free(buf);
    return -1;
}
