/*
 * `herald listen` over raw TCP (cli_listen.c): the YYB preface, JCE
 * packages in YYB frames (HelloReq, heartbeats, cumulative acks, Bye), and
 * what the server sends back (hello answers, push batches, kicks with a
 * redirect).  One file per transport, so each reads like its protocol.
 */
#include <stdio.h>
#include <string.h>

#include "Protocol.h"
#include "cli/cli.h"
#include "cli/cli_http.h"
#include "cli/cli_listen_int.h"
#include "gateway/yyb.h"
#include "jce/jce.h"

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

int cli_listen_tcp_hello(listener_t *l) {
    uint8_t pre[YYB_PREFACE_LEN];
    yyb_preface(pre, YYB_VERSION);
    if (cli_http_write_all(l->fd, pre, sizeof pre) < 0) return -1;
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

int cli_listen_tcp_heartbeat(listener_t *l) {
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

void cli_listen_tcp_bye(listener_t *l) {
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
        if (!m->needAck) continue;
        any = true;
        if (m->timeline == 0 && m->seq > 0)
            a.inboxSeq = m->seq > l->inbox_seq ? m->seq : l->inbox_seq;
        else if (m->timeline == 1 && m->seq > 0)
            a.broadcastSeq =
                m->seq > l->broadcast_seq ? m->seq : l->broadcast_seq;
        else if (a.msgIds.n < 256)
            ids[a.msgIds.n++] = m->msgId;
    }
    if (!any) return 0;
    a.msgIds.items = ids;
    if (a.inboxSeq > l->inbox_seq) l->inbox_seq = a.inboxSeq;
    if (a.broadcastSeq > l->broadcast_seq) l->broadcast_seq = a.broadcastSeq;
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
            done = cli_listen_deliver(
                l, m->msgId.data, m->msgId.len, m->seq, m->timeline,
                m->payload.data, m->payload.len, m->topic.data, m->topic.len);
        }
        if (tcp_ack(l, &b) < 0) *closed = true;
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

int cli_listen_tcp_input(listener_t *l, bool *closed) {
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
            cli_listen_rx_consume(l, used);
            return S_RETRY;
        }
        herald_Package p;
        jce_arena_reset(l->arena);
        int st = S_RETRY;
        if (yyb_decode_package(&f, l->arena, &p, NULL) == 0)
            st = tcp_package(l, &p, closed);
        cli_listen_rx_consume(l, used);
        if (st != S_RETRY || *closed) return st;
    }
}
