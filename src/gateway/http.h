/*
 * http: incremental HTTP/1.x request-head parser (RFC 9112 §2-5).
 *
 * A byte-at-a-time state machine in the nginx manner: the caller keeps the
 * head's bytes in one buffer of its own (at most max_head bytes), appends
 * what each read() brings and calls http_parse() again with the whole
 * buffer; the parser resumes at the byte where it stopped, so a head that
 * arrives one byte at a time costs no more than one that arrives whole.
 * It stores only 16-bit offsets into that buffer, never copies, never
 * allocates.  Only the head is parsed; the body (if any) starts at
 * req->head_len and is the caller's business (http_content_length helps).
 *
 * Accepted: CRLF or bare LF line ends (RFC 9112 §2.2), empty lines before
 * the request line, HTTP/1.0 and HTTP/1.1.  Rejected with a status class:
 * bare CR, obs-fold, whitespace before ':', bad name or value characters,
 * non-token methods, control bytes or '#' in the target (400); a long method
 * (501); a long target (414); a long head or too many headers (431); another
 * HTTP version (505).
 */
#ifndef HERALD_HTTP_H
#define HERALD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEAD 8192 /* default max_head; at most 65535 */
#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_METHOD 16
#define HTTP_MAX_TARGET 4096 /* default max_target */

enum http_rc {
    HTTP_DONE = 1,              /* head complete: req->head_len bytes */
    HTTP_AGAIN = 0,             /* need more bytes */
    HTTP_ERR_SYNTAX = -1,       /* 400: request line or general syntax */
    HTTP_ERR_BARE_CR = -2,      /* 400: CR not followed by LF */
    HTTP_ERR_HEADER_NAME = -3,  /* 400: bad or empty name, space before ':' */
    HTTP_ERR_HEADER_VALUE = -4, /* 400: control byte in a value */
    HTTP_ERR_OBS_FOLD = -5,     /* 400: line folding */
    HTTP_ERR_TARGET = -6,       /* 400: bad byte in the request target */
    HTTP_ERR_METHOD = -7,       /* 501: method longer than HTTP_MAX_METHOD */
    HTTP_ERR_URI_TOO_LONG = -8, /* 414 */
    HTTP_ERR_TOO_LARGE = -9,    /* 431: head over max_head */
    HTTP_ERR_TOO_MANY = -10,    /* 431: more than HTTP_MAX_HEADERS */
    HTTP_ERR_VERSION = -11,     /* 505 */
};

enum http_method {
    HTTP_M_OTHER = 0,
    HTTP_M_GET,
    HTTP_M_HEAD,
    HTTP_M_POST,
    HTTP_M_PUT,
    HTTP_M_DELETE,
    HTTP_M_OPTIONS,
};

/* A piece of the caller's buffer. */
typedef struct http_span {
    uint16_t off;
    uint16_t len;
} http_span_t;

typedef struct http_header {
    http_span_t name;  /* as sent (compare case-insensitively) */
    http_span_t value; /* without leading and trailing SP/HTAB */
} http_header_t;

typedef struct http_req {
    /* parser state (private) */
    uint8_t state;
    uint8_t sub;   /* index within a literal ("HTTP/") */
    uint16_t pos;  /* next byte to look at */
    uint16_t mark; /* start of the token being read */
    uint16_t vend; /* end of a value's last non-blank byte */
    /* limits: set by http_req_init, may be lowered before parsing */
    uint16_t max_head;
    uint16_t max_target;
    /* results, valid once http_parse returned HTTP_DONE */
    uint8_t method;    /* enum http_method */
    uint8_t version;   /* 10 or 11 */
    uint16_t head_len; /* bytes of the head, final empty line included */
    uint16_t nheaders;
    http_span_t method_s;
    http_span_t target; /* the whole request target */
    http_span_t path;   /* target up to '?' */
    http_span_t query;  /* after '?' (len 0 if none) */
    http_header_t headers[HTTP_MAX_HEADERS];
} http_req_t;

void http_req_init(http_req_t *r);

/* Parses buf[0..len) from where the last call stopped.  buf must hold the
 * same bytes as before plus any new ones.  Returns HTTP_DONE, HTTP_AGAIN or
 * a negative http_rc (sticky: further calls return the same error). */
int http_parse(http_req_t *r, const char *buf, size_t len);

/* The HTTP status for an error code (400, 414, 431, 501, 505). */
int http_err_status(int err);
const char *http_strerror(int err);

/* First header named `name` (case-insensitive), or NULL. */
const http_header_t *http_find_header(const http_req_t *r, const char *buf,
                                      const char *name);
/* True if some header `name` holds `token` in its comma-separated list
 * (case-insensitive; for Connection: upgrade and the like). */
bool http_header_has_token(const http_req_t *r, const char *buf,
                           const char *name, const char *token);
/* Looks up query parameter `key` and %-decodes its value (and '+' as
 * space) into out[0..cap) with a NUL.  Returns the decoded length, -1 if
 * absent, -2 if malformed (bad %XX, NUL byte) or longer than cap - 1. */
int http_query_param(const http_req_t *r, const char *buf, const char *key,
                     char *out, size_t cap);
/* %-decodes s[0..n) into out (cap bytes, NUL added); length or -2. */
int http_pct_decode(const char *s, size_t n, char *out, size_t cap);
/* Content-Length: 1 and *len if present and valid (repeats must agree),
 * 0 if absent, HTTP_ERR_SYNTAX if malformed. */
int http_content_length(const http_req_t *r, const char *buf, uint64_t *len);

#endif
