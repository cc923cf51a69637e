/* The CLI's small blocking HTTP/1.1 client (cli_http.c). */
#ifndef HERALD_CLI_HTTP_H
#define HERALD_CLI_HTTP_H

#include <stddef.h>

/* "http://host:port[/]" -> host (cap bytes), port (80 if none): 0 or -1. */
int cli_http_parse_url(const char *url, char *host, size_t cap, int *port);
/* Writes all n bytes: 0, or -1. */
int cli_http_write_all(int fd, const void *buf, size_t n);
/* Reads one response with a Content-Length body (at most 1 MiB); its
 * status, or -1.  The body is NUL-terminated in *body (malloc'd). */
int cli_http_read_response(int fd, char **body);

#endif
