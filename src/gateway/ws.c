/*
 * ws: RFC 6455 frame parser, frame encoders and the opening handshake
 * (see ws.h).
 */
#include "gateway/ws.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "core/b64.h"

void ws_parser_init(ws_parser_t *p) {
    memset(p, 0, sizeof *p);
    p->max_msg = WS_MAX_MSG;
}

/* ---- UTF-8 ---- */

/* Sets the bounds of the continuation bytes a lead byte c asks for;
 * returns the number of them, or -1 for a byte that cannot lead.  The
 * narrowed second-byte ranges exclude overlongs, surrogates and code
 * points above U+10FFFF (RFC 3629 §4). */
static int utf8_lead(uint8_t c, uint8_t *lo, uint8_t *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) return 1;
    if (c == 0xE0) {
        *lo = 0xA0;
        return 2;
    }
    if (c == 0xED) {
        *hi = 0x9F;
        return 2;
    }
    if (c >= 0xE1 && c <= 0xEF) return 2;
    if (c == 0xF0) {
        *lo = 0x90;
        return 3;
    }
    if (c == 0xF4) {
        *hi = 0x8F;
        return 3;
    }
    if (c >= 0xF1 && c <= 0xF3) return 3;
    return -1;
}

bool ws_utf8_step(uint8_t st[3], const uint8_t *p, size_t n) {
    uint8_t need = st[0], lo = st[1], hi = st[2];
    size_t i = 0;
    while (i < n) {
        if (need == 0) {
            /* Runs of ASCII, eight bytes at a time. */
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ull) break;
                i += 8;
            }
            if (i == n) break;
            uint8_t c = p[i++];
            if (c < 0x80) continue;
            int k = utf8_lead(c, &lo, &hi);
            if (k < 0) return false;
            need = (uint8_t)k;
        } else {
            uint8_t c = p[i++];
            if (c < lo || c > hi) return false;
            need--;
            lo = 0x80;
            hi = 0xBF;
        }
    }
    st[0] = need;
    st[1] = lo;
    st[2] = hi;
    return true;
}

bool ws_close_code_valid(unsigned c) {
    if (c >= 3000 && c <= 4999) return true; /* registered / private use */
    switch (c) {
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1007:
    case 1008:
    case 1009:
    case 1010:
    case 1011:
    case 1012:
    case 1013:
    case 1014: /* IANA: restart, try later, gateway */ return true;
    }
    return false; /* incl. 1004-1006 and 1015, never sent on the wire */
}

/* ---- frame parser ---- */

static int fail(ws_parser_t *p, int err) {
    p->err = (int8_t)err;
    return err;
}

void ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], size_t offset) {
    uint8_t m[8];
    for (int i = 0; i < 8; i++) m[i] = mask[(offset + (size_t)i) & 3];
    uint64_t w8;
    memcpy(&w8, m, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= w8;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++) p[i] ^= m[i & 7];
}

/* Validates a complete close payload and fills the close fields. */
static int parse_close(ws_parser_t *p, ws_frame_t *f) {
    f->close_code = WS_CLOSE_NO_STATUS;
    f->reason = NULL;
    f->reason_len = 0;
    if (f->len == 0) return 0;
    if (f->len == 1) return fail(p, WS_ERR_CLOSE_PAYLOAD);
    unsigned code = (unsigned)f->payload[0] << 8 | f->payload[1];
    if (!ws_close_code_valid(code)) return fail(p, WS_ERR_CLOSE_CODE);
    uint8_t st[3] = {0, 0, 0};
    if (!ws_utf8_step(st, f->payload + 2, f->len - 2) || st[0])
        return fail(p, WS_ERR_UTF8);
    f->close_code = (uint16_t)code;
    f->reason = f->payload + 2;
    f->reason_len = (uint16_t)(f->len - 2);
    return 0;
}

/* Fragmentation order and message size, checked on the header alone so an
 * oversize frame is refused before its payload arrives. */
static int check_sequence(ws_parser_t *p, unsigned op, bool fin,
                          uint64_t plen) {
    if (op >= WS_OP_CLOSE) {
        if (!fin || plen > WS_MAX_CONTROL) return fail(p, WS_ERR_CONTROL);
        return 0;
    }
    if (op == WS_OP_CONT && !p->msg_op) return fail(p, WS_ERR_CONT);
    if (op != WS_OP_CONT && p->msg_op) return fail(p, WS_ERR_INTERLEAVE);
    uint64_t total = (op == WS_OP_CONT ? p->msg_len : 0) + plen;
    if (total > p->max_msg) return fail(p, WS_ERR_TOO_BIG);
    return 0;
}

/* Book-keeping once a data frame is complete and unmasked. */
static int finish_data(ws_parser_t *p, ws_frame_t *f) {
    bool first = f->opcode != WS_OP_CONT;
    unsigned mop = first ? f->opcode : p->msg_op;
    if (first) {
        p->msg_len = 0;
        p->u8_need = 0;
    }
    if (mop == WS_OP_TEXT) {
        uint8_t st[3] = {p->u8_need, p->u8_lo, p->u8_hi};
        if (!ws_utf8_step(st, f->payload, f->len) || (f->fin && st[0]))
            return fail(p, WS_ERR_UTF8);
        p->u8_need = st[0];
        p->u8_lo = st[1];
        p->u8_hi = st[2];
    }
    f->first = first;
    f->msg_op = (uint8_t)mop;
    if (f->fin) {
        p->msg_op = 0;
        p->msg_len = 0;
    } else {
        p->msg_op = (uint8_t)mop;
        p->msg_len += f->len;
    }
    return 0;
}

int ws_feed(ws_parser_t *p, uint8_t *buf, size_t len, size_t *consumed,
            ws_frame_t *f) {
    *consumed = 0;
    if (p->err) return p->err;
    f->need = 2;
    if (len < 2) return WS_AGAIN;
    unsigned b0 = buf[0], b1 = buf[1];
    bool fin = b0 & 0x80;
    unsigned op = b0 & 0x0F;
    if (b0 & 0x70) return fail(p, WS_ERR_RSV);
    if ((op > WS_OP_BINARY && op < WS_OP_CLOSE) || op > WS_OP_PONG)
        return fail(p, WS_ERR_OPCODE);
    if (!(b1 & 0x80)) return fail(p, WS_ERR_UNMASKED);
    unsigned l7 = b1 & 0x7F;
    size_t ext = l7 == 126 ? 2 : l7 == 127 ? 8 : 0;
    size_t hlen = 2 + ext + 4;
    if (len < 2 + ext) {
        f->need = hlen;
        return WS_AGAIN;
    }
    uint64_t plen = l7;
    if (l7 == 126) {
        plen = (uint64_t)buf[2] << 8 | buf[3];
    } else if (l7 == 127) {
        if (buf[2] & 0x80) return fail(p, WS_ERR_LENGTH);
        plen = 0;
        for (int i = 2; i < 10; i++) plen = plen << 8 | buf[i];
    }
    int rc = check_sequence(p, op, fin, plen);
    if (rc) return rc;
    /* plen <= max_msg (a uint32_t) from here on. */
    f->need = hlen + (size_t)plen;
    if (len < f->need) return WS_AGAIN;

    uint8_t *payload = buf + hlen;
    ws_mask(payload, (size_t)plen, buf + hlen - 4, 0);
    f->opcode = (uint8_t)op;
    f->fin = fin;
    f->len = (uint32_t)plen;
    f->payload = payload;
    f->close_code = 0;
    f->reason = NULL;
    f->reason_len = 0;
    if (op >= WS_OP_CLOSE) {
        f->first = true;
        f->msg_op = (uint8_t)op;
        if (op == WS_OP_CLOSE && (rc = parse_close(p, f))) return rc;
    } else if ((rc = finish_data(p, f))) {
        return rc;
    }
    *consumed = f->need;
    return WS_FRAME;
}

int ws_err_close_code(int err) {
    if (err == WS_ERR_UTF8) return WS_CLOSE_BAD_DATA;
    if (err == WS_ERR_TOO_BIG) return WS_CLOSE_TOO_BIG;
    return WS_CLOSE_PROTOCOL;
}

const char *ws_strerror(int err) {
    switch (err) {
    case WS_FRAME: return "frame";
    case WS_AGAIN: return "incomplete frame";
    case WS_ERR_RSV: return "reserved bit set";
    case WS_ERR_OPCODE: return "reserved opcode";
    case WS_ERR_UNMASKED: return "client frame not masked";
    case WS_ERR_CONTROL: return "control frame too long or fragmented";
    case WS_ERR_LENGTH: return "frame length out of range";
    case WS_ERR_CONT: return "continuation frame without a message";
    case WS_ERR_INTERLEAVE: return "data frame inside a fragmented message";
    case WS_ERR_CLOSE_PAYLOAD: return "close frame payload of one byte";
    case WS_ERR_CLOSE_CODE: return "invalid close code";
    case WS_ERR_UTF8: return "invalid UTF-8";
    case WS_ERR_TOO_BIG: return "message too big";
    case WS_HS_ERR_METHOD: return "websocket handshake: method is not GET";
    case WS_HS_ERR_HTTP10: return "websocket handshake: HTTP/1.0";
    case WS_HS_ERR_UPGRADE: return "websocket handshake: no Upgrade: websocket";
    case WS_HS_ERR_CONNECTION:
        return "websocket handshake: Connection lacks upgrade";
    case WS_HS_ERR_VERSION: return "websocket handshake: version is not 13";
    case WS_HS_ERR_KEY: return "websocket handshake: bad Sec-WebSocket-Key";
    }
    return "unknown websocket error";
}

/* ---- encoders ---- */

static size_t put_len(uint8_t *out, uint8_t mask_bit, uint64_t n) {
    if (n < 126) {
        out[1] = (uint8_t)(mask_bit | n);
        return 2;
    }
    if (n <= 0xFFFF) {
        out[1] = mask_bit | 126;
        out[2] = (uint8_t)(n >> 8);
        out[3] = (uint8_t)n;
        return 4;
    }
    out[1] = mask_bit | 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(n >> (56 - 8 * i));
    return 10;
}

size_t ws_frame_header(uint8_t out[10], unsigned opcode, uint64_t payload_len) {
    out[0] = (uint8_t)(0x80 | (opcode & 0x0F));
    return put_len(out, 0, payload_len);
}

size_t ws_frame_header_masked(uint8_t out[WS_HEADER_MAX], unsigned opcode,
                              bool fin, uint64_t payload_len,
                              const uint8_t mask[4]) {
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    size_t h = put_len(out, 0x80, payload_len);
    memcpy(out + h, mask, 4);
    return h + 4;
}

size_t ws_close_frame(uint8_t out[2 + WS_MAX_CONTROL], unsigned code,
                      const char *reason, size_t reason_len) {
    if (!code) return ws_frame_header(out, WS_OP_CLOSE, 0);
    size_t n =
        reason_len > WS_MAX_CONTROL - 2 ? WS_MAX_CONTROL - 2 : reason_len;
    /* Never cut a UTF-8 sequence in two: the peer would fail us with 1007. */
    if (n < reason_len)
        while (n > 0 && ((uint8_t)reason[n] & 0xC0) == 0x80) n--;
    size_t h = ws_frame_header(out, WS_OP_CLOSE, n + 2);
    out[h] = (uint8_t)(code >> 8);
    out[h + 1] = (uint8_t)code;
    if (n) memcpy(out + h + 2, reason, n);
    return h + 2 + n;
}

/* ---- opening handshake ---- */

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void ws_accept_key(const char *key, size_t key_len,
                   char out[WS_ACCEPT_LEN + 1]) {
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    /* SHA-1 is what RFC 6455 mandates here; it authenticates nothing. */
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || !EVP_DigestInit_ex(c, EVP_sha1(), NULL) ||
        !EVP_DigestUpdate(c, key, key_len) ||
        !EVP_DigestUpdate(c, WS_GUID, sizeof WS_GUID - 1) ||
        !EVP_DigestFinal_ex(c, md, &mdlen) || mdlen != 20) {
        /* Out of memory: an accept value no client will take, so the
         * handshake fails closed. */
        memset(md, 0, 20);
    }
    EVP_MD_CTX_free(c);
    b64_encode(out, md, 20);
}

int ws_handshake_check(const http_req_t *r, const char *buf,
                       ws_handshake_t *hs) {
    if (r->method != HTTP_M_GET) return WS_HS_ERR_METHOD;
    if (r->version < 11) return WS_HS_ERR_HTTP10;
    if (!http_header_has_token(r, buf, "Upgrade", "websocket"))
        return WS_HS_ERR_UPGRADE;
    if (!http_header_has_token(r, buf, "Connection", "upgrade"))
        return WS_HS_ERR_CONNECTION;
    const http_header_t *v = http_find_header(r, buf, "Sec-WebSocket-Version");
    if (!v || v->value.len != 2 || memcmp(buf + v->value.off, "13", 2))
        return WS_HS_ERR_VERSION;
    const http_header_t *k = NULL;
    for (unsigned i = 0; i < r->nheaders; i++) {
        const http_span_t *nm = &r->headers[i].name;
        if (nm->len == 17 &&
            !strncasecmp(buf + nm->off, "Sec-WebSocket-Key", 17)) {
            if (k) return WS_HS_ERR_KEY; /* a repeated key is ambiguous */
            k = &r->headers[i];
        }
    }
    uint8_t nonce[18];
    size_t nl;
    if (!k || k->value.len != 24 ||
        b64_decode(nonce, sizeof nonce, buf + k->value.off, 24, &nl) ||
        nl != 16)
        return WS_HS_ERR_KEY;
    hs->key = k->value;
    hs->jce = http_header_has_token(r, buf, "Sec-WebSocket-Protocol",
                                    WS_SUBPROTOCOL_JCE);
    return 0;
}

int ws_hs_err_status(int err) {
    if (err == WS_HS_ERR_METHOD) return 405;
    if (err == WS_HS_ERR_VERSION) return 426;
    return 400;
}

int ws_handshake_response(char *out, size_t cap, const char *key,
                          size_t key_len, bool jce) {
    char acc[WS_ACCEPT_LEN + 1];
    ws_accept_key(key, key_len, acc);
    int n = snprintf(
        out, cap,
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: %s\r\n"
        "%s"
        "\r\n",
        acc, jce ? "Sec-WebSocket-Protocol: " WS_SUBPROTOCOL_JCE "\r\n" : "");
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int ws_handshake_reject(char *out, size_t cap, int err) {
    int status = ws_hs_err_status(err);
    const char *reason = status == 405   ? "Method Not Allowed"
                         : status == 426 ? "Upgrade Required"
                                         : "Bad Request";
    const char *msg = ws_strerror(err);
    int n = snprintf(
        out, cap,
        "HTTP/1.1 %d %s\r\n"
        "%s"
        "%s"
        "Content-Type: text/plain\r\n"
        "Content-Length: %zu\r\n"
        "Connection: close\r\n"
        "\r\n"
        "%s\n",
        status, reason, status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "",
        status == 405 ? "Allow: GET\r\n" : "", strlen(msg) + 1, msg);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
