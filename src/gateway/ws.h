/*
 * ws: the server side of WebSocket (RFC 6455), without sockets.
 *
 * Handshake: ws_handshake_check() validates a parsed HTTP head (http.h) as
 * an opening handshake and picks the mode (subprotocol `herald.jce` ->
 * binary JCE, otherwise JSON text); ws_handshake_response() writes the 101
 * answer with Sec-WebSocket-Accept; ws_handshake_reject() the 4xx answer.
 *
 * Frames: ws_feed() is given the bytes the caller holds (a read buffer, or
 * the one partial frame it kept from the last read) and yields one complete
 * frame at a time, its payload unmasked in place and pointing into that
 * buffer — no copy, no allocation.  When the bytes end inside a frame it
 * consumes nothing and says how many bytes the frame needs in total, so the
 * caller keeps exactly one bounded partial frame and nothing at all while a
 * connection is idle.  The parser checks everything RFC 6455 §5 asks of a
 * server (masking, RSV, opcodes, control frame rules, fragmentation order,
 * lengths, UTF-8 of text and close reasons, close codes) and the message
 * size limit; reassembling a fragmented message is left to the caller
 * (frame->first / fin say where it starts and ends).  Its state is 16 bytes.
 *
 * Errors are sticky; ws_err_close_code() gives the close code to send
 * (1002 protocol error, 1007 bad UTF-8, 1009 too big).
 */
#ifndef HERALD_WS_H
#define HERALD_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/http.h"

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* Close codes (RFC 6455 §7.4.1). */
enum ws_close {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* reported for a close frame without code */
    WS_CLOSE_BAD_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
};

enum ws_rc {
    WS_FRAME = 1,
    WS_AGAIN = 0,
    /* -> 1002 */
    WS_ERR_RSV = -1,           /* RSV bit set, no extension negotiated */
    WS_ERR_OPCODE = -2,        /* reserved opcode */
    WS_ERR_UNMASKED = -3,      /* client frame without mask */
    WS_ERR_CONTROL = -4,       /* control frame > 125 bytes or fragmented */
    WS_ERR_LENGTH = -5,        /* 64-bit length with the high bit set */
    WS_ERR_CONT = -6,          /* continuation without a message started */
    WS_ERR_INTERLEAVE = -7,    /* new data frame inside a fragmented message */
    WS_ERR_CLOSE_PAYLOAD = -8, /* close payload of 1 byte */
    WS_ERR_CLOSE_CODE = -9,    /* close code not allowed on the wire */
    /* -> 1007 */
    WS_ERR_UTF8 = -10, /* text or close reason not UTF-8 */
    /* -> 1009 */
    WS_ERR_TOO_BIG = -11, /* message over max_msg */
};

#define WS_MAX_MSG (64u * 1024) /* default message size limit */
#define WS_MAX_CONTROL 125
#define WS_HEADER_MAX 14 /* client header: 2 + 8 + 4 mask */

typedef struct ws_parser {
    uint32_t max_msg; /* set by ws_parser_init; may be changed */
    uint32_t msg_len; /* payload bytes of the fragmented message so far */
    uint8_t msg_op;   /* TEXT/BINARY while a fragmented message is open */
    uint8_t u8_need;  /* UTF-8 continuation bytes still expected */
    uint8_t u8_lo;    /* bounds of the next continuation byte */
    uint8_t u8_hi;
    int8_t err; /* sticky error */
    uint8_t pad_[3];
} ws_parser_t;

typedef struct ws_frame {
    uint8_t opcode;   /* as on the wire (WS_OP_CONT for continuations) */
    uint8_t msg_op;   /* TEXT/BINARY of the message, or the control opcode */
    bool fin;         /* last frame of its message */
    bool first;       /* first frame of its message */
    uint32_t len;     /* payload length */
    uint8_t *payload; /* unmasked, inside the caller's buffer */
    /* WS_OP_CLOSE only: */
    uint16_t close_code; /* WS_CLOSE_NO_STATUS when the payload is empty */
    uint16_t reason_len;
    const uint8_t *reason;
    /* WS_AGAIN only: bytes the frame needs in total at the start of buf
     * (a lower bound while the header itself is incomplete). */
    size_t need;
} ws_frame_t;

void ws_parser_init(ws_parser_t *p);

/* Parses one frame at buf[0..len).  WS_FRAME: *f describes it and
 * *consumed is its size; WS_AGAIN: *consumed = 0 and f->need is set; or a
 * negative ws_rc.  The payload is unmasked in place, so buf is written. */
int ws_feed(ws_parser_t *p, uint8_t *buf, size_t len, size_t *consumed,
            ws_frame_t *f);

int ws_err_close_code(int err);
const char *ws_strerror(int err);

/* True if close code c may appear in a close frame (§7.4). */
bool ws_close_code_valid(unsigned c);
/* Incremental UTF-8 check of p[0..n), carrying state in *st (3 bytes; zero
 * to start).  Returns false on invalid input; a sequence is complete when
 * st[0] == 0.  Exposed for the JSON text path and tests. */
bool ws_utf8_step(uint8_t st[3], const uint8_t *p, size_t n);

/* ---- encoding (server frames are never masked) ---- */

/* FIN set; returns the header length (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[10], unsigned opcode, uint64_t payload_len);
/* A whole close frame: header, code, reason cut to fit 125 bytes (at a
 * UTF-8 boundary).  out needs 2 + WS_MAX_CONTROL bytes; returns its size.
 * code 0 writes a close frame with an empty payload. */
size_t ws_close_frame(uint8_t out[2 + WS_MAX_CONTROL], unsigned code,
                      const char *reason, size_t reason_len);
/* Client side (herald listen, bench, tests): masked header, returns its
 * length (6, 8 or 14). */
size_t ws_frame_header_masked(uint8_t out[WS_HEADER_MAX], unsigned opcode,
                              bool fin, uint64_t payload_len,
                              const uint8_t mask[4]);
/* XORs p[0..n) with the mask, `offset` bytes into the payload. */
void ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], size_t offset);

/* ---- opening handshake ---- */

enum ws_hs_err {
    WS_HS_ERR_METHOD = -20,     /* 405: not GET */
    WS_HS_ERR_HTTP10 = -21,     /* 400: HTTP/1.0 */
    WS_HS_ERR_UPGRADE = -22,    /* 400: no Upgrade: websocket */
    WS_HS_ERR_CONNECTION = -23, /* 400: Connection lacks "upgrade" */
    WS_HS_ERR_VERSION = -24,    /* 426: Sec-WebSocket-Version is not 13 */
    WS_HS_ERR_KEY = -25,        /* 400: key absent, repeated or not 16 bytes */
};

typedef struct ws_handshake {
    http_span_t key; /* Sec-WebSocket-Key as sent (24 characters) */
    bool jce;        /* subprotocol herald.jce chosen: binary JCE frames */
} ws_handshake_t;

#define WS_SUBPROTOCOL_JCE "herald.jce"
#define WS_ACCEPT_LEN 28

int ws_handshake_check(const http_req_t *r, const char *buf,
                       ws_handshake_t *hs);
int ws_hs_err_status(int err);
/* base64(SHA-1(key + GUID)); out gets 28 characters and a NUL. */
void ws_accept_key(const char *key, size_t key_len,
                   char out[WS_ACCEPT_LEN + 1]);
/* The 101 response; returns its length or -1 if cap is too small (256
 * bytes always suffice). */
int ws_handshake_response(char *out, size_t cap, const char *key,
                          size_t key_len, bool jce);
/* A complete error response for a failed handshake (status from
 * ws_hs_err_status, with Sec-WebSocket-Version: 13 on 426); length or -1. */
int ws_handshake_reject(char *out, size_t cap, int err);

#endif
