/*
 * `herald listen` over WebSocket (cli_listen.c): the HTTP upgrade with the
 * token in the query, masked client frames, JSON text commands (push,
 * kick, hello; acks and heartbeats back), pings and close frames.  One
 * file per transport, so each reads like its protocol.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "cli/cli_http.h"
#include "cli/cli_listen_int.h"
#include "core/b64.h"
#include "gateway/ws.h"

/* ---- WebSocket (JSON text) ---------------------------------------------------- */

int cli_listen_ws_send(listener_t *l, unsigned op, const void *p, size_t n) {
    uint8_t hdr[WS_HEADER_MAX], mask[4];
    if (RAND_bytes(mask, 4) != 1) return -1;
    size_t hl = ws_frame_header_masked(hdr, op, true, n, mask);
    uint8_t *buf = malloc(hl + n + 1);
    if (!buf) return -1;
    memcpy(buf, hdr, hl);
    memcpy(buf + hl, p, n);
    ws_mask(buf + hl, n, mask, 0);
    int rc = cli_http_write_all(l->fd, buf, hl + n);
    free(buf);
    return rc;
}

static int ws_send_json(listener_t *l, json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) return -1;
    int rc = cli_listen_ws_send(l, WS_OP_TEXT, s, strlen(s));
    free(s);
    return rc;
}

int cli_listen_ws_upgrade(listener_t *l) {
    uint8_t key[16];
    char key64[B64_ENC_LEN(16) + 1], req[1024];
    if (RAND_bytes(key, sizeof key) != 1) return -1;
    b64_encode(key64, key, sizeof key);
    int n = snprintf(req, sizeof req,
                     "GET /v1/ws?token=%s HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "\r\n",
                     l->tok, l->host, l->port, key64);
    if (n < 0 || (size_t)n >= sizeof req ||
        cli_http_write_all(l->fd, req, (size_t)n) < 0)
        return -1;
    for (;;) {
        uint8_t *end = memmem(l->rx, l->rx_len, "\r\n\r\n", 4);
        if (end) {
            size_t head = (size_t)(end - l->rx) + 4;
            int status = 0;
            l->rx[head - 1] = 0;
            (void)sscanf((char *)l->rx, "HTTP/1.1 %d", &status);
            if (status != 101) {
                fprintf(stderr,
                        "disconnected reason=upgrade_refused "
                        "status=%d\n",
                        status);
                /* A 404 here is the push API or the admin port: retrying
                 * will not make it a device port. */
                if (status == 404)
                    fprintf(stderr,
                            "herald listen: %s:%d has no WebSocket"
                            " at /v1/ws: this is not a device port (herald"
                            " serve prints it as 'device port N')\n",
                            l->host, l->port);
                return status == 401 || status == 403 || status == 404 ? -2
                                                                       : -1;
            }
            /* frames may follow in the same read */
            cli_listen_rx_consume(l, head);
            return 0;
        }
        struct pollfd pf = {.fd = l->fd, .events = POLLIN};
        if (poll(&pf, 1, 10000) <= 0 || cli_listen_recv_some(l) <= 0) return -1;
    }
}

int cli_listen_ws_heartbeat(listener_t *l) {
    return ws_send_json(l, json_pack("{s:s,s:i}", "cmd", "heartbeat",
                                     "interval", l->heartbeat));
}

static int ws_text(listener_t *l, const uint8_t *p, size_t n, bool *closed) {
    json_t *j = json_loadb((const char *)p, n, 0, NULL);
    const char *cmd = j ? json_string_value(json_object_get(j, "cmd")) : NULL;
    int st = S_RETRY;
    if (cmd && !strcmp(cmd, "push")) {
        json_t *id = json_object_get(j, "msgId");
        json_t *pl = json_object_get(j, "payload");
        json_t *pb = json_object_get(j, "payloadB64");
        json_t *tp = json_object_get(j, "topic");
        int64_t seq = json_integer_value(json_object_get(j, "seq"));
        int timeline = (int)json_integer_value(json_object_get(j, "timeline"));
        json_t *na = json_object_get(j, "needAck");
        uint8_t *bin = NULL;
        size_t blen = 0;
        if (json_is_string(pb)) {
            size_t sl = json_string_length(pb);
            bin = malloc(B64_DEC_MAX(sl) + 1);
            if (bin && b64_decode(bin, B64_DEC_MAX(sl) + 1,
                                  json_string_value(pb), sl, &blen) != 0)
                blen = 0;
        }
        if (json_is_string(id)) {
            bool done = cli_listen_deliver(
                l, json_string_value(id), json_string_length(id), seq, timeline,
                bin ? bin : (const uint8_t *)json_string_value(pl),
                bin ? blen : json_string_length(pl), json_string_value(tp),
                json_string_length(tp));
            if (!na || json_is_true(na)) {
                json_t *ack = json_pack("{s:s}", "cmd", "ack");
                if (seq > 0 && timeline == 1)
                    json_object_set_new(ack, "broadcastSeq", json_integer(seq));
                else if (seq > 0)
                    json_object_set_new(ack, "inboxSeq", json_integer(seq));
                else
                    json_object_set_new(ack, "msgIds", json_pack("[O]", id));
                if (ws_send_json(l, ack) < 0) *closed = true;
            }
            if (done) st = S_EXIT_OK;
        }
        free(bin);
    } else if (cmd && !strcmp(cmd, "kick")) {
        fprintf(stderr, "disconnected reason=kick code=%lld\n",
                (long long)json_integer_value(json_object_get(j, "reason")));
        *closed = true;
    } else if (cmd && !strcmp(cmd, "hello")) {
        json_t *ret = json_object_get(j, "ret");
        if (json_integer_value(ret) != 0) {
            fprintf(stderr, "disconnected reason=hello_refused code=%lld\n",
                    (long long)json_integer_value(ret));
            *closed = true;
            st = S_EXIT_FAIL;
        }
    }
    json_decref(j);
    return st;
}

/* Server frames are unmasked; a tiny parser of our own (ws_feed is the
 * server's, which insists on masks). */
int cli_listen_ws_input(listener_t *l, bool *closed) {
    for (;;) {
        if (l->rx_len < 2) return S_RETRY;
        uint8_t b0 = l->rx[0], b1 = l->rx[1];
        uint64_t len = b1 & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (l->rx_len < 4) return S_RETRY;
            len = (uint64_t)l->rx[2] << 8 | l->rx[3];
            hl = 4;
        } else if (len == 127) {
            if (l->rx_len < 10) return S_RETRY;
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | l->rx[2 + i];
            hl = 10;
        }
        if ((b1 & 0x80) || len > RX_MAX - hl) {
            fprintf(stderr, "disconnected reason=bad_ws_frame\n");
            *closed = true;
            return S_RETRY;
        }
        if (l->rx_len < hl + len) return S_RETRY;
        uint8_t *p = l->rx + hl;
        unsigned op = b0 & 0x0f;
        int st = S_RETRY;
        if (op == WS_OP_TEXT) {
            st = ws_text(l, p, (size_t)len, closed);
        } else if (op == WS_OP_PING) {
            if (cli_listen_ws_send(l, WS_OP_PONG, p, (size_t)len) < 0)
                *closed = true;
        } else if (op == WS_OP_CLOSE) {
            unsigned code = len >= 2 ? (unsigned)(p[0] << 8 | p[1]) : 1005;
            fprintf(stderr, "disconnected reason=ws_close code=%u %.*s\n", code,
                    len > 2 ? (int)len - 2 : 0, (const char *)p + 2);
            (void)cli_listen_ws_send(l, WS_OP_CLOSE, p, len >= 2 ? 2 : 0);
            *closed = true;
        }
        cli_listen_rx_consume(l, hl + (size_t)len);
        if (st != S_RETRY || *closed) return st;
    }
}
