/*
 * http: the request-head state machine and lookup helpers (see http.h).
 */
#include "gateway/http.h"

#include <string.h>
#include <strings.h>

enum {
    S_START,    /* before the request line; empty lines skipped */
    S_START_CR, /* CR of an empty line before the request line */
    S_METHOD,
    S_TARGET_START,
    S_TARGET,
    S_VERSION, /* matching "HTTP/" (sub = bytes matched) */
    S_VER_MAJOR,
    S_VER_DOT, /* sub = major digit */
    S_VER_MINOR,
    S_RL_END, /* after the version: CR or LF */
    S_RL_CR,
    S_HDR_START, /* start of a header line or of the final empty line */
    S_HDR_NAME,
    S_HDR_OWS, /* after ':' before the value */
    S_HDR_VALUE,
    S_HDR_CR,
    S_END_CR, /* CR of the final empty line */
    S_DONE,
    S_ERROR, /* sub = -error */
};

/* RFC 9110 §5.6.2 tchar. */
static bool is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Visible ASCII except '#': a fragment never travels in a request. */
static bool is_target_char(unsigned char c) {
    return c > 0x20 && c < 0x7f && c != '#';
}

/* field-vchar: VCHAR or obs-text (bytes >= 0x80 are opaque to us). */
static bool is_vchar(unsigned char c) { return (c > 0x20 && c != 0x7f); }

void http_req_init(http_req_t *r) {
    memset(r, 0, offsetof(http_req_t, headers));
    r->max_head = HTTP_MAX_HEAD;
    r->max_target = HTTP_MAX_TARGET;
}

static int fail(http_req_t *r, int err) {
    r->state = S_ERROR;
    r->sub = (uint8_t)-err;
    return err;
}

static uint8_t method_id(const char *m, size_t n) {
    static const struct {
        const char *s;
        uint8_t id;
    } known[] = {
        {"GET", HTTP_M_GET},       {"HEAD", HTTP_M_HEAD},
        {"POST", HTTP_M_POST},     {"PUT", HTTP_M_PUT},
        {"DELETE", HTTP_M_DELETE}, {"OPTIONS", HTTP_M_OPTIONS},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i].s) == n && !memcmp(known[i].s, m, n))
            return known[i].id;
    return HTTP_M_OTHER;
}

static void end_target(http_req_t *r, const char *buf) {
    r->target.off = r->mark;
    r->target.len = (uint16_t)(r->pos - r->mark);
    const char *q = memchr(buf + r->mark, '?', r->target.len);
    r->path.off = r->mark;
    if (q) {
        r->path.len = (uint16_t)(q - (buf + r->mark));
        r->query.off = (uint16_t)(r->path.off + r->path.len + 1);
        r->query.len = (uint16_t)(r->target.len - r->path.len - 1);
    } else {
        r->path.len = r->target.len;
        r->query.off = (uint16_t)r->pos;
        r->query.len = 0;
    }
}

static void end_value(http_req_t *r, uint16_t start, uint16_t end) {
    http_header_t *h = &r->headers[r->nheaders++];
    h->value.off = start;
    h->value.len = (uint16_t)(end - start);
}

/* One step; returns HTTP_AGAIN to go on, HTTP_DONE or an error. */
static int step(http_req_t *r, const char *buf, unsigned char c) {
    switch (r->state) {
    case S_START:
        if (c == '\n') return HTTP_AGAIN;
        if (c == '\r') {
            r->state = S_START_CR;
            return HTTP_AGAIN;
        }
        if (!is_tchar(c)) return fail(r, HTTP_ERR_SYNTAX);
        r->mark = r->pos;
        r->state = S_METHOD;
        return HTTP_AGAIN;
    case S_START_CR:
        if (c != '\n') return fail(r, HTTP_ERR_BARE_CR);
        r->state = S_START;
        return HTTP_AGAIN;
    case S_METHOD:
        if (c == ' ') {
            r->method_s.off = r->mark;
            r->method_s.len = (uint16_t)(r->pos - r->mark);
            r->method = method_id(buf + r->mark, r->method_s.len);
            r->state = S_TARGET_START;
            return HTTP_AGAIN;
        }
        if (!is_tchar(c)) return fail(r, HTTP_ERR_SYNTAX);
        if (r->pos - r->mark >= HTTP_MAX_METHOD)
            return fail(r, HTTP_ERR_METHOD);
        return HTTP_AGAIN;
    case S_TARGET_START:
        if (c == ' ') return fail(r, HTTP_ERR_SYNTAX);
        if (!is_target_char(c)) return fail(r, HTTP_ERR_TARGET);
        r->mark = r->pos;
        r->state = S_TARGET;
        return HTTP_AGAIN;
    case S_TARGET:
        if (c == ' ') {
            end_target(r, buf);
            r->state = S_VERSION;
            r->sub = 0;
            return HTTP_AGAIN;
        }
        if (c == '\r' || c == '\n') return fail(r, HTTP_ERR_SYNTAX);
        if (!is_target_char(c)) return fail(r, HTTP_ERR_TARGET);
        if (r->pos - r->mark >= r->max_target)
            return fail(r, HTTP_ERR_URI_TOO_LONG);
        return HTTP_AGAIN;
    case S_VERSION:
        if (c != (unsigned char)"HTTP/"[r->sub])
            return fail(r, HTTP_ERR_SYNTAX);
        if (++r->sub == 5) r->state = S_VER_MAJOR;
        return HTTP_AGAIN;
    case S_VER_MAJOR:
        if (c < '0' || c > '9') return fail(r, HTTP_ERR_SYNTAX);
        r->sub = (uint8_t)(c - '0');
        r->state = S_VER_DOT;
        return HTTP_AGAIN;
    case S_VER_DOT:
        if (c != '.') return fail(r, HTTP_ERR_SYNTAX);
        r->state = S_VER_MINOR;
        return HTTP_AGAIN;
    case S_VER_MINOR:
        if (c < '0' || c > '9') return fail(r, HTTP_ERR_SYNTAX);
        if (r->sub != 1) return fail(r, HTTP_ERR_VERSION);
        /* 1.2 and later minors are answered as 1.1 (RFC 9110 §6.2). */
        r->version = c == '0' ? 10 : 11;
        r->state = S_RL_END;
        return HTTP_AGAIN;
    case S_RL_END:
        if (c == '\r') {
            r->state = S_RL_CR;
            return HTTP_AGAIN;
        }
        if (c == '\n') {
            r->state = S_HDR_START;
            return HTTP_AGAIN;
        }
        return fail(r, HTTP_ERR_SYNTAX);
    case S_RL_CR:
    case S_HDR_CR:
        if (c != '\n') return fail(r, HTTP_ERR_BARE_CR);
        r->state = S_HDR_START;
        return HTTP_AGAIN;
    case S_HDR_START:
        if (c == '\r') {
            r->state = S_END_CR;
            return HTTP_AGAIN;
        }
        if (c == '\n') break; /* end of head */
        if (c == ' ' || c == '\t')
            return fail(r, r->nheaders ? HTTP_ERR_OBS_FOLD : HTTP_ERR_SYNTAX);
        if (!is_tchar(c)) return fail(r, HTTP_ERR_HEADER_NAME);
        if (r->nheaders == HTTP_MAX_HEADERS) return fail(r, HTTP_ERR_TOO_MANY);
        r->mark = r->pos;
        r->state = S_HDR_NAME;
        return HTTP_AGAIN;
    case S_HDR_NAME:
        if (c == ':') {
            http_header_t *h = &r->headers[r->nheaders];
            h->name.off = r->mark;
            h->name.len = (uint16_t)(r->pos - r->mark);
            r->state = S_HDR_OWS;
            return HTTP_AGAIN;
        }
        if (!is_tchar(c)) return fail(r, HTTP_ERR_HEADER_NAME);
        return HTTP_AGAIN;
    case S_HDR_OWS:
        if (c == ' ' || c == '\t') return HTTP_AGAIN;
        if (c == '\r' || c == '\n') {
            end_value(r, r->pos, r->pos);
            r->state = c == '\r' ? S_HDR_CR : S_HDR_START;
            return HTTP_AGAIN;
        }
        if (!is_vchar(c)) return fail(r, HTTP_ERR_HEADER_VALUE);
        r->mark = r->pos;
        r->vend = (uint16_t)(r->pos + 1);
        r->state = S_HDR_VALUE;
        return HTTP_AGAIN;
    case S_HDR_VALUE:
        if (c == ' ' || c == '\t') return HTTP_AGAIN;
        if (c == '\r' || c == '\n') {
            end_value(r, r->mark, r->vend);
            r->state = c == '\r' ? S_HDR_CR : S_HDR_START;
            return HTTP_AGAIN;
        }
        if (!is_vchar(c)) return fail(r, HTTP_ERR_HEADER_VALUE);
        r->vend = (uint16_t)(r->pos + 1);
        return HTTP_AGAIN;
    case S_END_CR:
        if (c != '\n') return fail(r, HTTP_ERR_BARE_CR);
        break;
    default: return fail(r, HTTP_ERR_SYNTAX);
    }
    /* The final LF. */
    r->state = S_DONE;
    r->head_len = (uint16_t)(r->pos + 1);
    return HTTP_DONE;
}

int http_parse(http_req_t *r, const char *buf, size_t len) {
    if (r->state == S_DONE) return HTTP_DONE;
    if (r->state == S_ERROR) return -(int)r->sub;
    while (r->pos < len) {
        if (r->pos >= r->max_head) {
            bool in_target = r->state == S_TARGET || r->state == S_TARGET_START;
            return fail(r,
                        in_target ? HTTP_ERR_URI_TOO_LONG : HTTP_ERR_TOO_LARGE);
        }
        int rc = step(r, buf, (unsigned char)buf[r->pos]);
        if (rc != HTTP_AGAIN) return rc;
        r->pos++;
    }
    return HTTP_AGAIN;
}

int http_err_status(int err) {
    switch (err) {
    case HTTP_ERR_METHOD: return 501;
    case HTTP_ERR_URI_TOO_LONG: return 414;
    case HTTP_ERR_TOO_LARGE:
    case HTTP_ERR_TOO_MANY: return 431;
    case HTTP_ERR_VERSION: return 505;
    }
    return 400;
}

const char *http_strerror(int err) {
    switch (err) {
    case HTTP_DONE: return "complete";
    case HTTP_AGAIN: return "incomplete";
    case HTTP_ERR_SYNTAX: return "malformed request";
    case HTTP_ERR_BARE_CR: return "CR not followed by LF";
    case HTTP_ERR_HEADER_NAME: return "invalid header name";
    case HTTP_ERR_HEADER_VALUE: return "invalid header value";
    case HTTP_ERR_OBS_FOLD: return "obsolete header line folding";
    case HTTP_ERR_TARGET: return "invalid request target";
    case HTTP_ERR_METHOD: return "method too long";
    case HTTP_ERR_URI_TOO_LONG: return "request target too long";
    case HTTP_ERR_TOO_LARGE: return "request head too large";
    case HTTP_ERR_TOO_MANY: return "too many header fields";
    case HTTP_ERR_VERSION: return "HTTP version not supported";
    }
    return "unknown http error";
}

/* ---- lookups on a parsed head ---- */

static bool span_ieq(const char *buf, http_span_t s, const char *lit,
                     size_t n) {
    return s.len == n && strncasecmp(buf + s.off, lit, n) == 0;
}

const http_header_t *http_find_header(const http_req_t *r, const char *buf,
                                      const char *name) {
    size_t n = strlen(name);
    for (unsigned i = 0; i < r->nheaders; i++)
        if (span_ieq(buf, r->headers[i].name, name, n)) return &r->headers[i];
    return NULL;
}

static bool list_has(const char *p, size_t n, const char *tok, size_t tn) {
    size_t i = 0;
    while (i < n) {
        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ',')) i++;
        size_t s = i;
        while (i < n && p[i] != ',') i++;
        size_t e = i;
        while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t')) e--;
        if (e - s == tn && strncasecmp(p + s, tok, tn) == 0) return true;
    }
    return false;
}

bool http_header_has_token(const http_req_t *r, const char *buf,
                           const char *name, const char *token) {
    size_t n = strlen(name), tn = strlen(token);
    for (unsigned i = 0; i < r->nheaders; i++) {
        const http_header_t *h = &r->headers[i];
        if (span_ieq(buf, h->name, name, n) &&
            list_has(buf + h->value.off, h->value.len, token, tn))
            return true;
    }
    return false;
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int http_pct_decode(const char *s, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n) return -2;
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) return -2;
            c = hi << 4 | lo;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == 0 || o + 1 >= cap) return -2;
        out[o++] = (char)c;
    }
    if (cap == 0) return -2;
    out[o] = '\0';
    return (int)o;
}

int http_query_param(const http_req_t *r, const char *buf, const char *key,
                     char *out, size_t cap) {
    const char *q = buf + r->query.off, *end = q + r->query.len;
    size_t kn = strlen(key);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - q) == kn && memcmp(q, key, kn) == 0) {
            const char *v = eq ? eq + 1 : pe;
            return http_pct_decode(v, (size_t)(pe - v), out, cap);
        }
        q = pe + 1;
    }
    return -1;
}

int http_content_length(const http_req_t *r, const char *buf, uint64_t *len) {
    int found = 0;
    uint64_t val = 0;
    for (unsigned i = 0; i < r->nheaders; i++) {
        const http_header_t *h = &r->headers[i];
        if (!span_ieq(buf, h->name, "content-length", 14)) continue;
        const char *p = buf + h->value.off;
        /* 18 digits cannot overflow; longer is no body we would take. */
        if (h->value.len == 0 || h->value.len > 18) return HTTP_ERR_SYNTAX;
        uint64_t v = 0;
        for (unsigned k = 0; k < h->value.len; k++) {
            if (p[k] < '0' || p[k] > '9') return HTTP_ERR_SYNTAX;
            v = v * 10 + (uint64_t)(p[k] - '0');
        }
        /* Differing repeats are a request-smuggling vector (RFC 9112 §6.3). */
        if (found && v != val) return HTTP_ERR_SYNTAX;
        val = v;
        found = 1;
    }
    if (found) *len = val;
    return found;
}
