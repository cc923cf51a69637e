/*
 * gw_frame: the bytes of the frames the gateway writes, as refcounted
 * buffers, in each transport: raw TCP (length-prefixed Package), WebSocket
 * binary (one Package per message) and WebSocket text (JSON,
 * docs/gateway.md) — a Package, a JSON message, a kick (with the WebSocket
 * close) and a push.  Nothing here touches a socket; gw_cmd.c decides what
 * to send and sends it.  Separate from gw_cmd.c so the commands read
 * without the encodings.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "Protocol.h"
#include "core/b64.h"
#include "gateway/gw_int.h"

/* ---- framing per transport ----------------------------------------------------- */

/* Room left before a payload so the WebSocket header can be put in front
 * of it without moving it. */
#define HDR_ROOM 10

/* Turns o (HDR_ROOM reserved bytes + payload) into a frame and returns it
 * as a buffer, or NULL on error/OOM.  TCP: patches a length prefix into
 * the last 4 reserved bytes; WebSocket: a header of the given opcode. */
static gw_buf_t *finish_frame(jce_out_t *o, int transport, unsigned ws_op) {
    if (o->err) return NULL;
    size_t plen = o->len - HDR_ROOM;
    uint8_t hdr[10];
    size_t hl;
    if (transport == GW_TCP) {
        uint32_t fl = (uint32_t)(plen + 4);
        hdr[0] = (uint8_t)(fl >> 24), hdr[1] = (uint8_t)(fl >> 16);
        hdr[2] = (uint8_t)(fl >> 8), hdr[3] = (uint8_t)fl;
        hl = 4;
    } else {
        hl = ws_frame_header(hdr, ws_op, plen);
    }
    memcpy(o->buf + HDR_ROOM - hl, hdr, hl);
    return gw_buf_new(o->buf + HDR_ROOM - hl, hl + plen);
}

static void out_begin(jce_out_t *o) {
    jce_out_init(o, JCE_POLICY_CPP);
    (void)jce_out_reserve(o, HDR_ROOM);
}

gw_buf_t *gw_package_frame(int transport, int cmd, int req_id, int ret,
                           const uint8_t *body, size_t body_len) {
    jce_out_t o;
    out_begin(&o);
    herald_Package pk;
    herald_Package_init(&pk);
    pk.cmd = cmd;
    pk.reqId = req_id;
    pk.ret = ret;
    pk.body.data = body;
    pk.body.len = (uint32_t)body_len;
    herald_Package_encode(&pk, &o);
    gw_buf_t *b = finish_frame(&o, transport, WS_OP_BINARY);
    jce_out_free(&o);
    return b;
}

gw_buf_t *gw_json_frame(json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) return NULL;
    jce_out_t o;
    out_begin(&o);
    jce_out_raw(&o, s, strlen(s));
    free(s);
    gw_buf_t *b = finish_frame(&o, GW_WS_JSON, WS_OP_TEXT);
    jce_out_free(&o);
    return b;
}

gw_buf_t *gw_kick_frame(gw_conn_t *c, int reason, const char *message) {
    if (!message) message = gw_err_name(reason);
    gw_buf_t *k;
    int retry = c->refuse ? gw_refuse_retry(c->refuse) : 0;
    if (c->transport == GW_WS_JSON) {
        json_t *j = json_pack("{s:s, s:i, s:s}", "cmd", "kick", "reason",
                              reason, "message", message);
        if (j && retry)
            json_object_set_new(j, "retryAfter", json_integer(retry));
        k = gw_json_frame(j);
    } else if (c->transport == GW_TCP || c->transport == GW_WS_JCE) {
        herald_Kick kk;
        herald_Kick_init(&kk);
        kk.reason = reason;
        kk.message = jce_str_from(message);
        kk.retryAfter = retry;
        jce_out_t o;
        jce_out_init(&o, JCE_POLICY_CPP);
        herald_Kick_encode(&kk, &o);
        k = o.err ? NULL
                  : gw_package_frame(c->transport, herald_CMD_KICK, 0, 0, o.buf,
                                     o.len);
        jce_out_free(&o);
    } else {
        return NULL; /* protocol not known yet: nothing the peer could read */
    }
    if (!k || c->transport == GW_TCP) return k;
    /* WebSocket: the close frame rides in the same buffer. */
    uint8_t fr[2 + WS_MAX_CONTROL];
    unsigned code = reason == 0                     ? WS_CLOSE_NORMAL
                    : reason == herald_ERR_DRAINING ? WS_CLOSE_GOING_AWAY
                                                    : WS_CLOSE_POLICY;
    size_t n = ws_close_frame(fr, code, message, strlen(message));
    gw_buf_t *both = gw_buf_new(NULL, k->len + n);
    if (both) {
        memcpy(both->data, k->data, k->len);
        memcpy(both->data + k->len, fr, n);
    }
    gw_buf_unref(k);
    return both;
}

/* ---- pushes -------------------------------------------------------------------- */

static bool utf8_text(const uint8_t *p, size_t n) {
    if (memchr(p, 0, n)) return false; /* keeps JSON consumers simple */
    uint8_t st[3] = {0};
    return ws_utf8_step(st, p, n) && st[0] == 0;
}

gw_buf_t *gw_push_frame_json(const gw_msg_t *m) {
    json_t *j = json_pack("{s:s, s:s}", "cmd", "push", "msgId", m->msg_id);
    if (!j) return NULL;
    if (m->seq) json_object_set_new(j, "seq", json_integer(m->seq));
    if (m->timeline)
        json_object_set_new(j, "timeline", json_integer(m->timeline));
    if (m->topic) json_object_set_new(j, "topic", json_string(m->topic));
    json_object_set_new(j, "needAck", json_boolean(m->need_ack));
    if (m->sent_at_ms)
        json_object_set_new(j, "sentAt", json_integer(m->sent_at_ms));
    if (utf8_text(m->payload, m->payload_len)) {
        json_object_set_new(
            j, "payload",
            json_stringn((const char *)m->payload, m->payload_len));
    } else {
        char *b = malloc(4 * ((m->payload_len + 2) / 3) + 1);
        if (!b) {
            json_decref(j);
            return NULL;
        }
        size_t bl = b64_encode(b, m->payload, m->payload_len);
        json_object_set_new(j, "payloadB64", json_stringn(b, bl));
        free(b);
    }
    return gw_json_frame(j);
}

gw_buf_t *gw_push_frame_jce(const gw_msg_t *m, int transport) {
    herald_PushMsg pm;
    herald_PushMsg_init(&pm);
    pm.msgId = jce_str_from(m->msg_id);
    pm.seq = m->seq;
    pm.payload.data = m->payload;
    pm.payload.len = (uint32_t)m->payload_len;
    pm.timeline = m->timeline;
    pm.topic = jce_str_from(m->topic);
    pm.needAck = m->need_ack;
    pm.sentAt = m->sent_at_ms;
    herald_PushBatch pb;
    herald_PushBatch_init(&pb);
    pb.msgs.items = &pm;
    pb.msgs.n = 1;
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    herald_PushBatch_encode(&pb, &o);
    gw_buf_t *b = o.err ? NULL
                        : gw_package_frame(transport, herald_CMD_PUSH, 0, 0,
                                           o.buf, o.len);
    jce_out_free(&o);
    return b;
}
