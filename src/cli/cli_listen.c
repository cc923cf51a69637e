/*
 * `herald listen`: acts as a device.  Connects over raw TCP (YYB) or
 * WebSocket (JSON text), authenticates, prints each push as one line on
 * stdout, acks it, heartbeats, and reconnects with exponential backoff and
 * jitter (capped at 30 s).  Duplicates (same msgId, e.g. a redelivery after
 * a reconnect) are printed once, remembered in a bounded FIFO set.  Status
 * lines (`connected`, `disconnected reason=...`) go to stderr.
 *
 * Blocking I/O and poll(): one connection, nothing to multiplex, and the
 * code reads top to bottom like the protocol does.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "Protocol.h"
#include "cli/cli.h"
#include "cli/cli_http.h"
#include "core/b64.h"
#include "core/clock.h"
#include "core/net.h"
#include "core/token.h"
#include "gateway/ws.h"
#include "gateway/yyb.h"
#include "jce/jce.h"

#define RX_MAX (1u << 20)   /* one frame or WebSocket message */
#define SEEN_MAX 1024       /* msgIds remembered for duplicate dropping */
#define MSGID_MAX 128
#define BACKOFF_CAP_MS 30000

/* What one session ended with. */
enum { S_RETRY = 0, S_EXIT_OK = 1, S_EXIT_FAIL = 2 };

typedef struct listener {
    /* options */
    char host[256];
    int port;
    const char *token;
    const char *app, *secret, *device;
    bool ws, json;
    int heartbeat;
    long count;
    /* state */
    int fd;
    uint8_t *rx;
    size_t rx_len;
    long printed;
    int64_t inbox_seq, broadcast_seq;
    char seen[SEEN_MAX][MSGID_MAX + 1];
    int seen_next, seen_n;
    jce_arena_t *arena;
    yyb_reader_t yr;
    char tok[TOKEN_MAX];
} listener_t;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void listen_usage(FILE *f) {
    fprintf(f,
        "usage: herald listen --server HOST:PORT\n"
        "                     (--token TOK | --app APP --device DEV\n"
        "                      (--secret S | --secret-file F))\n"
        "                     [--ws] [--json] [--heartbeat SECONDS]"
        " [--count N]\n\n"
        "Prints `push msgId=... seq=... payload=...` per message (or one\n"
        "JSON object per line with --json), acks it, heartbeats, reconnects.\n"
        "--count N exits 0 after N distinct pushes.\n");
}

/* ---- duplicate set -------------------------------------------------------- */

static bool seen_check_add(listener_t *l, const char *id, size_t n) {
    if (n > MSGID_MAX)
        n = MSGID_MAX;
    for (int i = 0; i < l->seen_n; i++)
        if (strlen(l->seen[i]) == n && !memcmp(l->seen[i], id, n))
            return true;
    memcpy(l->seen[l->seen_next], id, n);
    l->seen[l->seen_next][n] = 0;
    l->seen_next = (l->seen_next + 1) % SEEN_MAX;
    if (l->seen_n < SEEN_MAX)
        l->seen_n++;
    return false;
}

/* ---- output ----------------------------------------------------------------- */

static bool printable_text(const uint8_t *p, size_t n) {
    uint8_t st[3] = {0};
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] == 0x7f)
            return false;
    return ws_utf8_step(st, p, n) && st[0] == 0;
}

/* One delivered message: prints it unless it is a duplicate.  Returns
 * true when --count is reached. */
static bool deliver(listener_t *l, const char *id, size_t id_len, int64_t seq,
                    int timeline, const uint8_t *payload, size_t plen,
                    const char *topic, size_t topic_len) {
    if (seen_check_add(l, id, id_len))
        return false;
    bool text = printable_text(payload, plen);
    if (l->json) {
        json_t *o = json_object();
        json_object_set_new(o, "msgId", json_stringn(id, id_len));
        json_object_set_new(o, "seq", json_integer(seq));
        json_object_set_new(o, "timeline", json_integer(timeline));
        if (topic_len)
            json_object_set_new(o, "topic", json_stringn(topic, topic_len));
        if (text) {
            json_object_set_new(o, "payload",
                                json_stringn((const char *)payload, plen));
        } else {
            char *b = malloc(B64_ENC_LEN(plen) + 1);
            if (b) {
                b64_encode(b, payload, plen);
                json_object_set_new(o, "payloadB64", json_string(b));
                free(b);
            }
        }
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (s)
            printf("%s\n", s);
        free(s);
    } else if (text) {
        printf("push msgId=%.*s seq=%lld payload=%.*s\n", (int)id_len, id,
               (long long)seq, (int)plen, (const char *)payload);
    } else {
        char *b = malloc(B64_ENC_LEN(plen) + 1);
        if (b)
            b64_encode(b, payload, plen);
        printf("push msgId=%.*s seq=%lld payloadB64=%s\n", (int)id_len, id,
               (long long)seq, b ? b : "");
        free(b);
    }
    fflush(stdout);
    l->printed++;
    return l->count > 0 && l->printed >= l->count;
}

/* ---- I/O helpers ------------------------------------------------------------ */

/* Reads what is there into rx (poll said readable).  1 on data, 0 on EOF,
 * -1 on error or overflow. */
static int recv_some(listener_t *l) {
    if (l->rx_len == RX_MAX)
        return -1;
    ssize_t n;
    do
        n = read(l->fd, l->rx + l->rx_len, RX_MAX - l->rx_len);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n == 0 ? 0 : -1;
    l->rx_len += (size_t)n;
    return 1;
}

static void rx_consume(listener_t *l, size_t n) {
    memmove(l->rx, l->rx + n, l->rx_len - n);
    l->rx_len -= n;
}

/* ---- raw TCP (YYB) ---------------------------------------------------------- */

static int yyb_send(listener_t *l, int cmd, int req_id, const jce_out_t *body) {
    herald_Package p;
    herald_Package_init(&p);
    p.cmd = cmd;
    p.reqId = req_id;
    if (body) {
        p.body.data = body->buf;
        p.body.len = (uint32_t)body->len;
    }
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    yyb_encode_frame(&o, &p);
    int rc = o.err ? -1 : cli_http_write_all(l->fd, o.buf, o.len);
    jce_out_free(&o);
    return rc;
}

static int tcp_hello(listener_t *l) {
    uint8_t pre[YYB_PREFACE_LEN];
    yyb_preface(pre, YYB_VERSION);
    if (cli_http_write_all(l->fd, pre, sizeof pre) < 0)
        return -1;
    herald_HelloReq h;
    herald_HelloReq_init(&h);
    h.token = jce_str_from(l->tok);
    h.heartbeat = l->heartbeat;
    h.platform = JCE_STR_LIT("cli");
    h.clientVersion = JCE_STR_LIT(HERALD_VERSION);
    h.inboxSeq = l->inbox_seq;
    h.broadcastSeq = l->broadcast_seq;
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    herald_HelloReq_encode(&h, &o);
    int rc = o.err ? -1 : yyb_send(l, herald_CMD_HELLO, 1, &o);
    jce_out_free(&o);
    return rc;
}

static int tcp_heartbeat(listener_t *l) {
    herald_HeartbeatReq h;
    herald_HeartbeatReq_init(&h);
    h.interval = l->heartbeat;
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    herald_HeartbeatReq_encode(&h, &o);
    int rc = o.err ? -1 : yyb_send(l, herald_CMD_HEARTBEAT, 0, &o);
    jce_out_free(&o);
    return rc;
}

static void tcp_bye(listener_t *l) {
    (void)yyb_send(l, herald_CMD_BYE, 0, NULL); /* closing anyway */
}

/* Acks a batch: cumulative seqs for the timelines, ids for online-only. */
static int tcp_ack(listener_t *l, const herald_PushBatch *b) {
    herald_AckReq a;
    herald_AckReq_init(&a);
    jce_str_t ids[256];
    bool any = false;
    for (uint32_t i = 0; i < b->msgs.n; i++) {
        const herald_PushMsg *m = &b->msgs.items[i];
        if (!m->needAck)
            continue;
        any = true;
        if (m->timeline == 0 && m->seq > 0)
            a.inboxSeq = m->seq > l->inbox_seq ? m->seq : l->inbox_seq;
        else if (m->timeline == 1 && m->seq > 0)
            a.broadcastSeq =
                m->seq > l->broadcast_seq ? m->seq : l->broadcast_seq;
        else if (a.msgIds.n < 256)
            ids[a.msgIds.n++] = m->msgId;
    }
    if (!any)
        return 0;
    a.msgIds.items = ids;
    if (a.inboxSeq > l->inbox_seq)
        l->inbox_seq = a.inboxSeq;
    if (a.broadcastSeq > l->broadcast_seq)
        l->broadcast_seq = a.broadcastSeq;
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    herald_AckReq_encode(&a, &o);
    int rc = o.err ? -1 : yyb_send(l, herald_CMD_ACK, 0, &o);
    jce_out_free(&o);
    return rc;
}

static const char *err_name(int code) {
    const char *n = herald_ErrCode_name(code);
    return n ? n : "?";
}

/* One package from the server; S_RETRY to go on (or reconnect when
 * *closed), or an exit. */
static int tcp_package(listener_t *l, const herald_Package *p, bool *closed) {
    jce_in_t in;
    jce_in_init(&in, p->body.data, p->body.len, l->arena);
    switch (p->cmd) {
    case herald_CMD_HELLO:
        if (p->ret != 0) {
            fprintf(stderr, "disconnected reason=hello_refused code=%d (%s)\n",
                    p->ret, err_name(p->ret));
            /* A refused token does not get better by retrying, unless we
             * mint a fresh one (expiry). */
            *closed = true;
            return p->ret == herald_ERR_TOKEN_EXPIRED && l->secret
                       ? S_RETRY
                       : S_EXIT_FAIL;
        }
        fprintf(stderr, "connected transport=tcp\n");
        return S_RETRY;
    case herald_CMD_PUSH: {
        herald_PushBatch b;
        if (herald_PushBatch_decode(&b, &in) < 0) {
            fprintf(stderr, "listen: undecodable push batch\n");
            return S_RETRY;
        }
        bool done = false;
        for (uint32_t i = 0; i < b.msgs.n && !done; i++) {
            const herald_PushMsg *m = &b.msgs.items[i];
            done = deliver(l, m->msgId.data, m->msgId.len, m->seq,
                           m->timeline, m->payload.data, m->payload.len,
                           m->topic.data, m->topic.len);
        }
        if (tcp_ack(l, &b) < 0)
            *closed = true;
        return done ? S_EXIT_OK : S_RETRY;
    }
    case herald_CMD_KICK: {
        herald_Kick k;
        herald_Kick_init(&k);
        (void)herald_Kick_decode(&k, &in); /* reason 0 if it is garbled */
        fprintf(stderr, "disconnected reason=kick code=%d (%s) message=%.*s\n",
                k.reason, err_name(k.reason), (int)k.message.len,
                k.message.data ? k.message.data : "");
        if (k.redirectHost.len && k.redirectHost.len < sizeof l->host &&
            k.redirectPort > 0) {
            memcpy(l->host, k.redirectHost.data, k.redirectHost.len);
            l->host[k.redirectHost.len] = 0;
            l->port = k.redirectPort;
        }
        *closed = true;
        return S_RETRY;
    }
    default:
        if (p->ret != 0)
            fprintf(stderr, "listen: cmd=%d answered code=%d (%s)\n", p->cmd,
                    p->ret, err_name(p->ret));
        return S_RETRY;
    }
}

static int tcp_input(listener_t *l, bool *closed) {
    for (;;) {
        size_t used = 0;
        yyb_frame_t f;
        int rc = yyb_feed(&l->yr, l->rx, l->rx_len, &used, &f);
        if (rc < 0) {
            fprintf(stderr, "disconnected reason=bad_frame (%s)\n",
                    yyb_strerror(rc));
            *closed = true;
            return S_RETRY;
        }
        if (rc == YYB_AGAIN) {
            rx_consume(l, used);
            return S_RETRY;
        }
        herald_Package p;
        jce_arena_reset(l->arena);
        int st = S_RETRY;
        if (yyb_decode_package(&f, l->arena, &p, NULL) == 0)
            st = tcp_package(l, &p, closed);
        rx_consume(l, used);
        if (st != S_RETRY || *closed)
            return st;
    }
}

/* ---- WebSocket (JSON text) ---------------------------------------------------- */

static int ws_send(listener_t *l, unsigned op, const void *p, size_t n) {
    uint8_t hdr[WS_HEADER_MAX], mask[4];
    if (RAND_bytes(mask, 4) != 1)
        return -1;
    size_t hl = ws_frame_header_masked(hdr, op, true, n, mask);
    uint8_t *buf = malloc(hl + n + 1);
    if (!buf)
        return -1;
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
    if (!s)
        return -1;
    int rc = ws_send(l, WS_OP_TEXT, s, strlen(s));
    free(s);
    return rc;
}

static int ws_upgrade(listener_t *l) {
    uint8_t key[16];
    char key64[B64_ENC_LEN(16) + 1], req[1024];
    if (RAND_bytes(key, sizeof key) != 1)
        return -1;
    b64_encode(key64, key, sizeof key);
    int n = snprintf(req, sizeof req,
                     "GET /v1/ws?token=%s HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "\r\n",
                     l->tok, l->host, l->port, key64);
    if (n < 0 || (size_t)n >= sizeof req || cli_http_write_all(l->fd, req, (size_t)n) < 0)
        return -1;
    for (;;) {
        uint8_t *end = memmem(l->rx, l->rx_len, "\r\n\r\n", 4);
        if (end) {
            size_t head = (size_t)(end - l->rx) + 4;
            int status = 0;
            l->rx[head - 1] = 0;
            (void)sscanf((char *)l->rx, "HTTP/1.1 %d", &status);
            if (status != 101) {
                fprintf(stderr, "disconnected reason=upgrade_refused "
                                "status=%d\n", status);
                return status == 401 || status == 403 ? -2 : -1;
            }
            rx_consume(l, head); /* frames may follow in the same read */
            return 0;
        }
        struct pollfd pf = {.fd = l->fd, .events = POLLIN};
        if (poll(&pf, 1, 10000) <= 0 || recv_some(l) <= 0)
            return -1;
    }
}

static int ws_heartbeat(listener_t *l) {
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
            bool done = deliver(
                l, json_string_value(id), json_string_length(id), seq,
                timeline,
                bin ? bin : (const uint8_t *)json_string_value(pl),
                bin ? blen : json_string_length(pl), json_string_value(tp),
                json_string_length(tp));
            if (!na || json_is_true(na)) {
                json_t *ack = json_pack("{s:s}", "cmd", "ack");
                if (seq > 0 && timeline == 1)
                    json_object_set_new(ack, "broadcastSeq",
                                        json_integer(seq));
                else if (seq > 0)
                    json_object_set_new(ack, "inboxSeq", json_integer(seq));
                else
                    json_object_set_new(ack, "msgIds",
                                        json_pack("[O]", id));
                if (ws_send_json(l, ack) < 0)
                    *closed = true;
            }
            if (done)
                st = S_EXIT_OK;
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
static int ws_input(listener_t *l, bool *closed) {
    for (;;) {
        if (l->rx_len < 2)
            return S_RETRY;
        uint8_t b0 = l->rx[0], b1 = l->rx[1];
        uint64_t len = b1 & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (l->rx_len < 4)
                return S_RETRY;
            len = (uint64_t)l->rx[2] << 8 | l->rx[3];
            hl = 4;
        } else if (len == 127) {
            if (l->rx_len < 10)
                return S_RETRY;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | l->rx[2 + i];
            hl = 10;
        }
        if ((b1 & 0x80) || len > RX_MAX - hl) {
            fprintf(stderr, "disconnected reason=bad_ws_frame\n");
            *closed = true;
            return S_RETRY;
        }
        if (l->rx_len < hl + len)
            return S_RETRY;
        uint8_t *p = l->rx + hl;
        unsigned op = b0 & 0x0f;
        int st = S_RETRY;
        if (op == WS_OP_TEXT) {
            st = ws_text(l, p, (size_t)len, closed);
        } else if (op == WS_OP_PING) {
            if (ws_send(l, WS_OP_PONG, p, (size_t)len) < 0)
                *closed = true;
        } else if (op == WS_OP_CLOSE) {
            unsigned code = len >= 2 ? (unsigned)(p[0] << 8 | p[1]) : 1005;
            fprintf(stderr, "disconnected reason=ws_close code=%u %.*s\n",
                    code, len > 2 ? (int)len - 2 : 0, (const char *)p + 2);
            (void)ws_send(l, WS_OP_CLOSE, p, len >= 2 ? 2 : 0);
            *closed = true;
        }
        rx_consume(l, hl + (size_t)len);
        if (st != S_RETRY || *closed)
            return st;
    }
}

/* ---- sessions and the reconnect loop ------------------------------------------- */

static int mint_token(listener_t *l) {
    if (l->token) {
        if (strlen(l->token) >= sizeof l->tok)
            return -1;
        strcpy(l->tok, l->token);
        return 0;
    }
    return token_mint(l->tok, sizeof l->tok, l->app, l->device,
                      (int64_t)time(NULL) + 3600, (const uint8_t *)l->secret,
                      strlen(l->secret)) < 0
               ? -1
               : 0;
}

static int session(listener_t *l, bool *authed) {
    int rc = net_connect_tcp(l->host, l->port, NULL, false, &l->fd);
    if (rc < 0) {
        fprintf(stderr, "disconnected reason=connect_failed error=\"%s\"\n",
                strerror(-rc));
        return S_RETRY;
    }
    l->rx_len = 0;
    yyb_reader_init(&l->yr, false);
    int st = S_RETRY;
    bool closed = false;
    if (l->ws) {
        rc = ws_upgrade(l);
        if (rc < 0) {
            close(l->fd);
            return rc == -2 ? S_EXIT_FAIL : S_RETRY;
        }
        fprintf(stderr, "connected transport=ws\n");
        *authed = true;
    } else if (tcp_hello(l) < 0) {
        closed = true;
    }
    uint64_t next_hb = clock_mono_ms() + (uint64_t)l->heartbeat * 1000;
    while (!closed && st == S_RETRY && !stop_flag) {
        uint64_t now = clock_mono_ms();
        if (now >= next_hb) {
            if ((l->ws ? ws_heartbeat(l) : tcp_heartbeat(l)) < 0)
                break;
            next_hb = now + (uint64_t)l->heartbeat * 1000;
        }
        struct pollfd pf = {.fd = l->fd, .events = POLLIN};
        int n = poll(&pf, 1, (int)(next_hb - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue;
        int r = recv_some(l);
        if (r <= 0) {
            fprintf(stderr, "disconnected reason=%s\n",
                    r == 0 ? "eof" : "read_error");
            closed = true;
            break;
        }
        st = l->ws ? ws_input(l, &closed) : tcp_input(l, &closed);
        if (!l->ws)
            *authed = true;
    }
    if (!closed && (stop_flag || st == S_EXIT_OK)) {
        if (l->ws) {
            uint8_t code[2] = {WS_CLOSE_NORMAL >> 8, WS_CLOSE_NORMAL & 0xff};
            (void)ws_send(l, WS_OP_CLOSE, code, 2); /* leaving anyway */
        } else {
            tcp_bye(l);
        }
    }
    close(l->fd);
    l->fd = -1;
    return stop_flag ? S_EXIT_OK : st;
}

static void sleep_backoff(uint64_t ms) {
    uint64_t until = clock_mono_ms() + ms;
    while (!stop_flag) {
        uint64_t now = clock_mono_ms();
        if (now >= until)
            return;
        (void)poll(NULL, 0, (int)(until - now)); /* EINTR ends it early */
    }
}

static int run(listener_t *l) {
    uint64_t backoff = 500;
    while (!stop_flag) {
        if (mint_token(l) < 0) {
            fprintf(stderr, "herald listen: cannot make a token (check "
                            "--app/--device/--secret)\n");
            return 1;
        }
        bool authed = false;
        int st = session(l, &authed);
        if (st == S_EXIT_OK)
            return 0;
        if (st == S_EXIT_FAIL)
            return 1;
        if (stop_flag)
            break;
        if (authed)
            backoff = 500;
        uint32_t r = 0;
        (void)RAND_bytes((unsigned char *)&r, sizeof r); /* 0 is fine too */
        /* Full jitter in [backoff/2, backoff): a fleet that lost one
         * gateway does not come back in lockstep. */
        uint64_t wait = backoff / 2 + r % (backoff / 2 + 1);
        fprintf(stderr, "reconnecting in_ms=%llu\n", (unsigned long long)wait);
        sleep_backoff(wait);
        backoff = backoff * 2 > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : backoff * 2;
    }
    return 0;
}

static int parse_server(const char *s, char *host, size_t cap, int *port) {
    const char *c = strrchr(s, ':');
    long p;
    if (!c || c == s || (size_t)(c - s) >= cap ||
        cli_parse_long(c + 1, 1, 65535, &p) < 0)
        return -1;
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = 0;
    *port = (int)p;
    return 0;
}

int cli_listen(int argc, char **argv) {
    static const struct option opts[] = {
        {"server", required_argument, 0, 'S'},
        {"token", required_argument, 0, 'T'},
        {"app", required_argument, 0, 'a'},
        {"device", required_argument, 0, 'd'},
        {"secret", required_argument, 0, 's'},
        {"secret-file", required_argument, 0, 'f'},
        {"ws", no_argument, 0, 'w'},
        {"json", no_argument, 0, 'j'},
        {"heartbeat", required_argument, 0, 'b'},
        {"count", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    listener_t *l = calloc(1, sizeof *l);
    if (!l)
        return 1;
    l->heartbeat = 30;
    l->fd = -1;
    l->secret = getenv("HERALD_SECRET");
    const char *server = NULL;
    char secret_buf[1024];
    int c, rc = 2;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'S': server = optarg; break;
        case 'T': l->token = optarg; break;
        case 'a': l->app = optarg; break;
        case 'd': l->device = optarg; break;
        case 's': l->secret = optarg; break;
        case 'f':
            if (cli_read_secret_file(optarg, secret_buf, sizeof secret_buf) < 0) {
                fprintf(stderr, "herald listen: cannot read %s\n", optarg);
                goto out;
            }
            l->secret = secret_buf;
            break;
        case 'w': l->ws = true; break;
        case 'j': l->json = true; break;
        case 'b':
            if (cli_parse_long(optarg, 1, 3600, &v) < 0)
                goto usage;
            l->heartbeat = (int)v;
            break;
        case 'c':
            if (cli_parse_long(optarg, 1, 1L << 40, &v) < 0)
                goto usage;
            l->count = v;
            break;
        case 'h': listen_usage(stdout); rc = 0; goto out;
        default: goto usage;
        }
    }
    if (!server || optind != argc ||
        parse_server(server, l->host, sizeof l->host, &l->port) < 0 ||
        (!l->token && (!l->app || !l->device || !l->secret)))
        goto usage;
    l->rx = malloc(RX_MAX);
    l->arena = jce_arena_new(RX_MAX * 2);
    if (!l->rx || !l->arena) {
        rc = 1;
        goto out;
    }
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    rc = run(l);
    goto out;
usage:
    listen_usage(stderr);
    rc = 2;
out:
    OPENSSL_cleanse(secret_buf, sizeof secret_buf);
    free(l->rx);
    if (l->arena)
        jce_arena_free(l->arena);
    free(l);
    return rc;
}
