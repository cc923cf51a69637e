/* bench_wire.c: see bench_wire.h. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "Protocol.h"
#include "bench/bench_wire.h"
#include "gateway/yyb.h"

/* ---- payload markers ------------------------------------------------------ */

size_t bench_payload(char *out, size_t cap, size_t size, char kind,
                     uint64_t value) {
    char mark[32];
    int m = snprintf(mark, sizeof mark, "#%c%" PRIu64 "#", kind, value);
    size_t n = size > (size_t)m ? size : (size_t)m;
    if (n + 1 > cap) return 0;
    memcpy(out, mark, (size_t)m);
    memset(out + m, 'x', n - (size_t)m);
    out[n] = '\0';
    return n;
}

int bench_scan(const uint8_t *p, size_t n, bench_mark_fn fn, void *ctx) {
    int found = 0;
    const uint8_t *end = p + n;
    while (p < end) {
        const uint8_t *h = memchr(p, '#', (size_t)(end - p));
        if (!h || end - h < 4) break;
        p = h + 1;
        if (h[1] != BENCH_MARK_BCAST && h[1] != BENCH_MARK_UNI) continue;
        const uint8_t *d = h + 2;
        uint64_t v = 0;
        int digits = 0;
        while (d < end && *d >= '0' && *d <= '9' && digits < 20) {
            v = v * 10 + (uint64_t)(*d - '0');
            d++;
            digits++;
        }
        if (!digits || d >= end || *d != '#') continue;
        fn(ctx, (char)h[1], v);
        found++;
        p = d + 1;
    }
    return found;
}

/* ---- HTTP ------------------------------------------------------------------- */

static const uint8_t *find_blank_line(const uint8_t *buf, size_t len) {
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' &&
            buf[i - 3] == '\r')
            return buf + i + 1;
    return NULL;
}

/* Value of header `name` in the head, or NULL; *vlen its length. */
static const char *head_value(const char *head, size_t len, const char *name,
                              size_t *vlen) {
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', len);
    const char *end = head + len;
    while (p && p + 1 < end) {
        p++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) break;
        if ((size_t)(eol - p) > nl && p[nl] == ':' &&
            !strncasecmp(p, name, nl)) {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

int bench_http_head(const uint8_t *buf, size_t len, bench_http_rsp_t *r) {
    if (len >= 5 && memcmp(buf, "HTTP/", 5)) return -1;
    const uint8_t *end = find_blank_line(buf, len);
    if (!end) return len > 16384 ? -1 : 0;
    const char *h = (const char *)buf;
    size_t hl = (size_t)(end - buf);
    const char *sp = memchr(h, ' ', hl);
    if (!sp || hl - (size_t)(sp - h) < 4 || !isdigit((unsigned char)sp[1]))
        return -1;
    r->status = atoi(sp + 1);
    r->head_len = hl;
    r->content_length = -1;
    r->chunked = false;
    size_t vl;
    const char *v = head_value(h, hl, "content-length", &vl);
    if (v) r->content_length = strtol(v, NULL, 10);
    v = head_value(h, hl, "transfer-encoding", &vl);
    if (v && vl >= 7 && !strncasecmp(v, "chunked", 7)) r->chunked = true;
    return 1;
}

size_t bench_http_post(char *out, size_t cap, const char *host,
                       const char *path, const char *auth_bearer,
                       const char *ctype, const void *body, size_t n) {
    char auth[512] = "";
    if (auth_bearer)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n",
                 auth_bearer);
    int h = snprintf(out, cap,
                     "POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     path, host, auth, ctype, n);
    if (h < 0 || (size_t)h + n > cap) return 0;
    memcpy(out + h, body, n);
    return (size_t)h + n;
}

/* ---- WebSocket ---------------------------------------------------------- */

size_t bench_ws_upgrade(char *out, size_t cap, const char *host,
                        const char *path, const char *subproto) {
    char sp[128] = "";
    if (subproto)
        snprintf(sp, sizeof sp, "Sec-WebSocket-Protocol: %s\r\n", subproto);
    /* The key only has to be 16 bytes in base64; the server's accept value
     * is not checked (a 101 is proof enough for a load generator). */
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     path, host, sp);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

size_t bench_ws_frame(uint8_t *out, size_t cap, int opcode, const void *p,
                      size_t n, uint32_t mask) {
    size_t h = n < 126 ? 2 : n < 65536 ? 4 : 10;
    if (h + 4 + n > cap) return 0;
    out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (n < 126) {
        out[1] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        out[1] = 0x80 | 126;
        out[2] = (uint8_t)(n >> 8);
        out[3] = (uint8_t)n;
    } else {
        out[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    uint8_t m[4] = {(uint8_t)(mask >> 24), (uint8_t)(mask >> 16),
                    (uint8_t)(mask >> 8), (uint8_t)mask};
    memcpy(out + h, m, 4);
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++) out[h + 4 + i] = s[i] ^ m[i & 3];
    return h + 4 + n;
}

int bench_ws_parse(const uint8_t *buf, size_t len, bench_ws_frame_t *f) {
    if (len < 2) return 0;
    if (buf[1] & 0x80) return -1;
    uint64_t n = buf[1] & 0x7f;
    size_t h = 2;
    if (n == 126) {
        if (len < 4) return 0;
        n = (uint64_t)buf[2] << 8 | buf[3];
        h = 4;
    } else if (n == 127) {
        if (len < 10) return 0;
        n = 0;
        for (int i = 0; i < 8; i++) n = n << 8 | buf[2 + i];
        h = 10;
        if (n >> 40) return -1;
    }
    if (len - h < n) return 0;
    f->opcode = buf[0] & 0x0f;
    f->fin = (buf[0] & 0x80) != 0;
    f->payload = buf + h;
    f->len = n;
    f->total = h + (size_t)n;
    return 1;
}

/* ---- split frames ------------------------------------------------------------ */

size_t bench_part_take(uint8_t **part, uint16_t *len, uint8_t *buf) {
    size_t n = *len;
    if (n) memcpy(buf, *part, n);
    bench_part_drop(part, len);
    return n;
}

void bench_part_drop(uint8_t **part, uint16_t *len) {
    free(*part);
    *part = NULL;
    *len = 0;
}

int bench_part_keep(uint8_t **part, uint16_t *len, const uint8_t *p, size_t n) {
    if (!n) return 0;
    if (n > UINT16_MAX || !(*part = malloc(n))) return -1;
    memcpy(*part, p, n);
    *len = (uint16_t)n;
    return 0;
}

/* ---- herald raw TCP ------------------------------------------------------ */

int bench_yyb_frame(jce_out_t *o, int cmd, int req_id, const jce_out_t *body) {
    herald_Package p;
    herald_Package_init(&p);
    p.cmd = cmd;
    p.reqId = req_id;
    if (body) p.body = (jce_bytes_t){body->buf, (uint32_t)body->len};
    yyb_encode_frame(o, &p);
    return o->err || (body && body->err) ? -1 : 0;
}

int bench_yyb_hello(jce_out_t *o, const char *token, int heartbeat) {
    herald_HelloReq h;
    herald_HelloReq_init(&h);
    h.token = jce_str_from(token);
    h.heartbeat = heartbeat;
    jce_out_t body;
    jce_out_init(&body, JCE_POLICY_CPP);
    herald_HelloReq_encode(&h, &body);
    uint8_t pre[YYB_PREFACE_LEN];
    yyb_preface(pre, YYB_VERSION);
    jce_out_raw(o, pre, sizeof pre);
    int rc = bench_yyb_frame(o, herald_CMD_HELLO, 1, &body);
    jce_out_free(&body);
    return rc;
}

/* ---- MQTT 3.1.1 ---------------------------------------------------------- */

/* Fixed header: type/flags byte and the variable-length remaining length. */
static size_t mqtt_fixed(uint8_t *out, uint8_t first, size_t rem) {
    size_t i = 0;
    out[i++] = first;
    do {
        uint8_t b = rem & 0x7f;
        rem >>= 7;
        out[i++] = (uint8_t)(b | (rem ? 0x80 : 0));
    } while (rem);
    return i;
}

static size_t put_str16(uint8_t *out, const void *s, size_t n) {
    out[0] = (uint8_t)(n >> 8);
    out[1] = (uint8_t)n;
    memcpy(out + 2, s, n);
    return n + 2;
}

size_t bench_mqtt_connect(uint8_t *out, size_t cap, const char *client_id,
                          uint16_t keepalive) {
    size_t idl = strlen(client_id);
    size_t rem = 10 + 2 + idl;
    if (idl > 65535 || rem + 5 > cap) return 0;
    size_t i = mqtt_fixed(out, BENCH_MQTT_CONNECT << 4, rem);
    i += put_str16(out + i, "MQTT", 4);
    out[i++] = 4;    /* protocol level 3.1.1 */
    out[i++] = 0x02; /* clean session, no will, no credentials */
    out[i++] = (uint8_t)(keepalive >> 8);
    out[i++] = (uint8_t)keepalive;
    i += put_str16(out + i, client_id, idl);
    return i;
}

size_t bench_mqtt_subscribe(uint8_t *out, size_t cap, uint16_t packet_id,
                            const char *topic, uint8_t qos) {
    size_t tl = strlen(topic);
    size_t rem = 2 + 2 + tl + 1;
    if (tl > 65535 || rem + 5 > cap) return 0;
    /* SUBSCRIBE's reserved flags are 0010 (MQTT 3.1.1 §3.8.1). */
    size_t i = mqtt_fixed(out, BENCH_MQTT_SUBSCRIBE << 4 | 0x2, rem);
    out[i++] = (uint8_t)(packet_id >> 8);
    out[i++] = (uint8_t)packet_id;
    i += put_str16(out + i, topic, tl);
    out[i++] = qos;
    return i;
}

size_t bench_mqtt_publish(uint8_t *out, size_t cap, const char *topic,
                          const void *p, size_t n) {
    size_t tl = strlen(topic);
    size_t rem = 2 + tl + n;
    if (tl > 65535 || rem > 268435455 || rem + 5 > cap) return 0;
    size_t i = mqtt_fixed(out, BENCH_MQTT_PUBLISH << 4, rem);
    i += put_str16(out + i, topic, tl);
    memcpy(out + i, p, n);
    return i + n;
}

size_t bench_mqtt_pingreq(uint8_t *out, size_t cap) {
    if (cap < 2) return 0;
    out[0] = BENCH_MQTT_PINGREQ << 4;
    out[1] = 0;
    return 2;
}

int bench_mqtt_parse(const uint8_t *buf, size_t len, bench_mqtt_pkt_t *pkt) {
    if (len < 2) return 0;
    uint32_t rem = 0;
    size_t i = 1;
    for (int shift = 0;; shift += 7) {
        if (i >= len) return 0;
        if (shift > 21) return -1;
        uint8_t b = buf[i++];
        rem |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) break;
    }
    if (len - i < rem) return 0;
    pkt->type = buf[0] >> 4;
    pkt->flags = buf[0] & 0x0f;
    pkt->body = buf + i;
    pkt->body_len = rem;
    pkt->total = i + rem;
    return 1;
}

int bench_mqtt_publish_payload(const bench_mqtt_pkt_t *pkt, const uint8_t **p,
                               size_t *n) {
    if (pkt->type != BENCH_MQTT_PUBLISH || pkt->body_len < 2) return -1;
    size_t tl = (size_t)pkt->body[0] << 8 | pkt->body[1];
    size_t off = 2 + tl + (((pkt->flags >> 1) & 3) ? 2 : 0);
    if (off > pkt->body_len) return -1;
    *p = pkt->body + off;
    *n = pkt->body_len - off;
    return 0;
}
