/*
 * gw_conn: one device connection's I/O on its worker's thread — protocol
 * detection, reading into the worker's scratch buffer, framing (raw TCP,
 * WebSocket), timeouts and closing.  What the frames mean is gw_cmd.c's
 * business; the output queue is gw_out.c's, an HTTP head (WebSocket
 * upgrade, POST /v1/yyb) gw_http.c's.
 *
 * Reads: the socket is edge-triggered; each wake-up reads until EAGAIN
 * into the worker's scratch buffer, preceded by the connection's kept
 * partial frame if it had one.  Complete frames are handled in place (zero
 * copy); only the tail of an incomplete frame is copied into a malloc'd
 * buffer of the connection, freed as soon as the frame completes.
 *
 * Closing: a kick or bye writes its last frame, half-closes (SHUT_WR) once
 * the queue is empty and then discards input until the peer's EOF or
 * GW_LINGER_MS — closing with unread input would send a RST that can
 * destroy the kick frame before the peer reads it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "Protocol.h"
#include "gateway/gw_int.h"
#include "ops/metrics_herald.h"

static void on_io(ev_loop_t *loop, ev_io_t *io, unsigned revents);
static void on_timer(ev_loop_t *loop, ev_timer_t *t);
static void set_deadline(gw_conn_t *c, uint64_t at);

/* ---- heartbeat interval ---------------------------------------------------- */

/* The range may change under a reload (gw_set_limits). */
int gw_clamp_hb(const gw_t *gw, int hb) {
    int lo = __atomic_load_n(&gw->cfg.hb_min, __ATOMIC_RELAXED);
    int hi = __atomic_load_n(&gw->cfg.hb_max, __ATOMIC_RELAXED);
    if (hb < lo) hb = lo;
    if (hb > hi) hb = hi;
    return hb;
}

int gw_idle_for(const gw_t *gw, int hb) {
    return (int)((int64_t)gw_clamp_hb(gw, hb) * gw->cfg.hb_factor_pct / 100) +
           gw->cfg.hb_grace;
}

/* ---- slots and life cycle -------------------------------------------------- */

/* Grows the slot arrays (conns, free_slots and, with a per-address limit,
 * ip_of) together to nc entries. */
static int slots_grow(gw_worker_t *w, uint32_t nc) {
    gw_conn_t **n = realloc(w->conns, nc * sizeof *n);
    if (!n) return -ENOMEM;
    w->conns = n;
    uint32_t *f = realloc(w->free_slots, nc * sizeof *f);
    if (!f) return -ENOMEM;
    w->free_slots = f;
    if (w->gw->iptab) {
        gw_ipent_t **ip = realloc(w->ip_of, nc * sizeof *ip);
        if (!ip) return -ENOMEM;
        w->ip_of = ip;
    }
    w->cap_slots = nc;
    return 0;
}

static int slot_take(gw_worker_t *w, gw_conn_t *c) {
    if (w->nfree) {
        c->slot = w->free_slots[--w->nfree];
    } else {
        if (w->nslots == w->cap_slots &&
            slots_grow(w, w->cap_slots ? w->cap_slots * 2 : 256) < 0)
            return -ENOMEM;
        c->slot = w->nslots++;
    }
    static _Thread_local uint32_t gen_seq;
    c->gen = ++gen_seq;
    w->conns[c->slot] = c;
    if (w->ip_of) w->ip_of[c->slot] = NULL;
    return 0;
}

static void slot_release(gw_worker_t *w, gw_conn_t *c) {
    w->conns[c->slot] = NULL;
    w->free_slots[w->nfree++] = c->slot;
}

/*
 * A refused connection (gw_admit.c) costs a calloc'd gw_conn_t and a slot
 * for at most GW_REFUSE_MS: it is answered in its own protocol from its
 * first byte (gw_refuse_answer) and never reads a frame.  If refused_max
 * (GW_REFUSED_MAX, or fewer when descriptors are few) of them are already
 * pending on this worker, the flood is beyond answering and the next ones
 * are closed at once.
 */
void gw_conn_accept(gw_worker_t *w, int fd,
                    const struct sockaddr_storage *peer) {
    gw_t *gw = w->gw;
    gw_ipent_t *ip = NULL;
    if (w->draining) {
        close(fd);
        return;
    }
    int why = gw_admit(w, peer, &ip);
    if (why && w->refused_now >= w->refused_max) {
        metrics_inc(M_REFUSED_UNANSWERED, 0, 0);
        close(fd);
        return;
    }
    gw_conn_t *c = calloc(1, sizeof *c);
    if (!c || slot_take(w, c) < 0) {
        if (!why) gw_unadmit(w, ip);
        free(c);
        close(fd);
        return;
    }
    c->w = w;
    c->refuse = (uint8_t)why;
    c->hb = (uint16_t)gw_clamp_hb(gw, gw->cfg.hb_default);
    ev_io_init(&c->io, fd, on_io, c);
    ev_timer_init(&c->timer, on_timer);
    if (ev_add(w->loop, &c->io, EV_READ | EV_WRITE | EV_ET) < 0) {
        slot_release(w, c);
        if (!why) gw_unadmit(w, ip);
        free(c);
        close(fd);
        return;
    }
    if (why) {
        w->refused_now++;
        set_deadline(c, ev_now_ms(w->loop) + GW_REFUSE_MS);
        return;
    }
    if (w->ip_of) w->ip_of[c->slot] = ip;
    atomic_fetch_add_explicit(&w->conns_now, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->accepted, 1, memory_order_relaxed);
    gw_conn_set_idle(c, gw->cfg.auth_timeout);
}

/* Arms the one timer lazily: moving a deadline later only updates the
 * field, and the timer re-arms itself when it fires early. */
static void set_deadline(gw_conn_t *c, uint64_t at) {
    c->deadline = at;
    if (!ev_timer_active(&c->timer) || c->timer.node.expire > at)
        ev_timer_start_at(c->w->loop, &c->timer, at);
}

void gw_conn_set_idle(gw_conn_t *c, int seconds) {
    set_deadline(c, ev_now_ms(c->w->loop) + (uint64_t)seconds * 1000);
}

/* Set just before closing a connection whose peer vanished (EOF or reset
 * without a bye): the service is told ERR_HEARTBEAT_TIMEOUT, but the
 * disconnect metric keeps it apart from real idle timeouts. */
static __thread bool peer_gone;

static void tell_offline(gw_conn_t *c, int reason) {
    bool gone = peer_gone;
    peer_gone = false;
    if (!c->dev || c->offline_told) return;
    gw_t *gw = c->w->gw;
    c->offline_told = true;
    gw_reg_del(gw, c);
    gw_mark_drop(c); /* no more pushes go out on it */
    atomic_fetch_sub(&c->dev->app->online, 1);
    atomic_fetch_sub_explicit(&c->w->authed_now, 1, memory_order_relaxed);
    metrics_inc(M_DISCONNECTS, gone ? MH_DIS_PEER_GONE : mh_reason_idx(reason),
                0);
    metrics_gauge_add(M_CONNECTIONS, mh_transport_idx(c->transport), 0, -1);
    if (gw->svc.offline) {
        gw_device_t d = {.app = c->dev->app->name,
                         .device = c->dev->name,
                         .transport = c->transport,
                         .inbox_seq = c->dev->inbox_seq,
                         .broadcast_seq = c->dev->broadcast_seq};
        gw->svc.offline(gw->svc.ctx, &d, reason);
    }
}

/* Gives back the admission: a refused connection only leaves the pending
 * count; an admitted one its --max-conns place and address count. */
static void release(gw_conn_t *c) {
    gw_worker_t *w = c->w;
    if (c->refuse) {
        w->refused_now--;
        return;
    }
    gw_ipent_t *ip = w->ip_of ? w->ip_of[c->slot] : NULL;
    if (ip) w->ip_of[c->slot] = NULL;
    gw_unadmit(w, ip);
    atomic_fetch_sub_explicit(&w->conns_now, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->closed, 1, memory_order_relaxed);
}

void gw_conn_close(gw_conn_t *c, int reason) {
    if (c->state == GW_S_DEAD) return;
    gw_worker_t *w = c->w;
    tell_offline(c, reason);
    (void)ev_del(w->loop, &c->io);
    ev_timer_stop(w->loop, &c->timer);
    close(c->io.fd);
    c->io.fd = -1;
    c->state = GW_S_DEAD;
    gw_conn_out_clear(c);
    release(c);
    if (w->ndead == w->cap_dead) {
        uint32_t nc = w->cap_dead ? w->cap_dead * 2 : 64;
        gw_conn_t **d = realloc(w->dead, nc * sizeof *d);
        if (!d) return; /* leaks one struct rather than risk a use-after-free */
        w->dead = d;
        w->cap_dead = nc;
    }
    w->dead[w->ndead++] = c;
}

/* aux is the HTTP state (with its body) in GW_S_HTTP, else a WebSocket
 * fragment buffer. */
static void aux_free(gw_conn_t *c) {
    gw_http_t *h = c->aux_http ? c->aux : NULL;
    if (h && h->running) jce_out_free(&h->cap);
    if (h) free(h->body);
    free(c->aux);
    c->aux = NULL;
    c->aux_http = false;
}

void gw_conn_free(gw_conn_t *c) {
    gw_worker_t *w = c->w;
    if (w->conns[c->slot] == c) {
        w->conns[c->slot] = NULL;
        w->free_slots[w->nfree++] = c->slot;
    }
    free(c->in);
    aux_free(c);
    gw_topics_free(c->topics);
    free(c->dev);
    free(c);
}

void gw_conn_linger(gw_conn_t *c, int reason) {
    if (c->state >= GW_S_CLOSING) return;
    if (c->state == GW_S_HTTP && c->aux && ((gw_http_t *)c->aux)->capture) {
        /* a package of POST /v1/yyb ended the exchange: answer, then go */
        ((gw_http_t *)c->aux)->stop = true;
        return;
    }
    tell_offline(c, reason);
    aux_free(c);
    free(c->in);
    c->in = NULL;
    c->state = GW_S_CLOSING;
    if (!c->out_head) (void)shutdown(c->io.fd, SHUT_WR);
    set_deadline(c, ev_now_ms(c->w->loop) +
                        (c->refuse ? GW_REFUSE_MS : GW_LINGER_MS));
}

void gw_conn_kick(gw_conn_t *c, int reason, const char *message) {
    if (c->state >= GW_S_CLOSING) return;
    gw_buf_t *b = gw_kick_frame(c, reason, message);
    if (b) {
        int rc = gw_conn_send_buf(c, b);
        gw_buf_unref(b);
        if (rc < 0) return;
    }
    gw_conn_linger(c, reason);
}

/* ---- WebSocket frames ---------------------------------------------------------- */

static void ws_fail(gw_conn_t *c, unsigned code, const char *why) {
    uint8_t fr[2 + WS_MAX_CONTROL];
    size_t n = ws_close_frame(fr, code, why, strlen(why));
    if (gw_conn_send(c, fr, n) == 0) gw_conn_linger(c, herald_ERR_BAD_PACKAGE);
}

/* Appends a fragment to the message being reassembled. */
static int frag_add(gw_conn_t *c, const ws_frame_t *f) {
    gw_bytes_t *m = c->aux;
    if (f->first) {
        free(m);
        m = NULL;
    }
    uint32_t have = m ? m->len : 0;
    if (!m || m->cap < have + f->len) {
        uint32_t cap = have + f->len + 1024;
        gw_bytes_t *nm = realloc(m, sizeof *nm + cap);
        if (!nm) return -1;
        nm->len = have;
        nm->cap = cap;
        m = nm;
    }
    memcpy(m->data + m->len, f->payload, f->len);
    m->len += f->len;
    c->aux = m;
    return 0;
}

static int ws_message(gw_conn_t *c, unsigned op, const uint8_t *p, size_t len) {
    atomic_fetch_add_explicit(&c->w->frames_in, 1, memory_order_relaxed);
    if (op == WS_OP_TEXT) return gw_cmd_json(c, p, len);
    return gw_cmd_jce(c, p, len);
}

static int ws_frame(gw_conn_t *c, ws_frame_t *f) {
    switch (f->msg_op) {
    case WS_OP_PING: {
        uint8_t hdr[10];
        size_t hl = ws_frame_header(hdr, WS_OP_PONG, f->len);
        uint8_t fr[10 + WS_MAX_CONTROL];
        memcpy(fr, hdr, hl);
        memcpy(fr + hl, f->payload, f->len);
        return gw_conn_send(c, fr, hl + f->len);
    }
    case WS_OP_PONG: return 0;
    case WS_OP_CLOSE: {
        uint8_t fr[2 + WS_MAX_CONTROL];
        unsigned code = f->close_code == WS_CLOSE_NO_STATUS ? 0 : f->close_code;
        size_t n = ws_close_frame(fr, code, "", 0);
        if (gw_conn_send(c, fr, n) < 0) return -1;
        gw_conn_linger(c, 0);
        return -1;
    }
    }
    if (f->first && f->fin) return ws_message(c, f->msg_op, f->payload, f->len);
    if (frag_add(c, f) < 0) {
        gw_conn_close(c, herald_ERR_SERVER);
        return -1;
    }
    if (!f->fin) return 0;
    gw_bytes_t *m = c->aux;
    c->aux = NULL;
    int rc = ws_message(c, f->msg_op, m->data, m->len);
    free(m);
    return rc;
}

/* Handles whole frames of buf; *used = bytes consumed.  -1: closed. */
int gw_conn_ws_input(gw_conn_t *c, uint8_t *buf, size_t len, size_t *used) {
    size_t off = 0;
    while (off < len && c->state == GW_S_WS) {
        ws_frame_t f;
        size_t n;
        int rc = ws_feed(&c->p.ws, buf + off, len - off, &n, &f);
        if (rc == WS_AGAIN) break;
        if (rc < 0) {
            ws_fail(c, (unsigned)ws_err_close_code(rc), ws_strerror(rc));
            return -1;
        }
        off += n;
        if (ws_frame(c, &f) < 0) return -1;
    }
    *used = off;
    return c->state == GW_S_WS ? 0 : -1;
}

/* ---- raw TCP frames ---------------------------------------------------------------- */

static void yyb_fail(gw_conn_t *c, int err) {
    if (err == YYB_ERR_BAD_PREFACE) {
        /* Not our protocol: nothing it could parse, so say nothing. */
        gw_conn_close(c, herald_ERR_BAD_PREFACE);
        return;
    }
    int code = yyb_err_code(err);
    gw_conn_kick(c, code, yyb_strerror(err));
}

static int yyb_input(gw_conn_t *c, uint8_t *buf, size_t len, size_t *used) {
    size_t off = 0;
    while (c->state == GW_S_YYB) {
        yyb_frame_t f;
        size_t n;
        int rc = yyb_feed(&c->p.yyb, buf + off, len - off, &n, &f);
        off += n;
        if (rc == YYB_AGAIN) break;
        if (rc < 0) {
            yyb_fail(c, rc);
            return -1;
        }
        atomic_fetch_add_explicit(&c->w->frames_in, 1, memory_order_relaxed);
        if (gw_cmd_jce(c, f.data, f.len) < 0) return -1;
    }
    *used = off;
    return c->state == GW_S_YYB ? 0 : -1;
}

/* ---- reading ------------------------------------------------------------------------- */

/* First byte decides: 'Y' is the raw protocol, an upper-case letter an
 * HTTP method; anything else is no protocol of ours. */
static int detect(gw_conn_t *c, uint8_t first) {
    if (c->refuse) return gw_refuse_answer(c, first);
    if (first == 'Y') {
        c->state = GW_S_YYB;
        c->transport = GW_TCP;
        yyb_reader_init(&c->p.yyb, true);
        c->p.yyb.max_frame = c->w->gw->cfg.max_frame;
        return 0;
    }
    if (first >= 'A' && first <= 'Z') {
        gw_http_t *h = malloc(sizeof *h);
        if (!h) {
            gw_conn_close(c, herald_ERR_SERVER);
            return -1;
        }
        http_req_init(&h->req);
        h->body = NULL;
        h->body_len = h->body_have = 0;
        h->capture = NULL;
        h->stop = false;
        h->running = h->waiting = false;
        c->aux = h;
        c->aux_http = true;
        c->state = GW_S_HTTP;
        gw_conn_set_idle(c, c->w->gw->cfg.head_timeout);
        return 0;
    }
    gw_conn_close(c, herald_ERR_BAD_PREFACE);
    return -1;
}

/* Keeps the unconsumed tail buf[used..len) for the next read. */
int gw_conn_keep_tail(gw_conn_t *c, const uint8_t *buf, size_t len,
                      size_t used) {
    size_t rest = len - used;
    if (!rest) {
        free(c->in);
        c->in = NULL;
        return 0;
    }
    if (!c->in || c->in->cap < rest) {
        free(c->in);
        c->in = malloc(sizeof *c->in + rest);
        if (!c->in) {
            gw_conn_close(c, herald_ERR_SERVER);
            return -1;
        }
        c->in->cap = (uint32_t)rest;
    }
    memmove(c->in->data, buf + used, rest);
    c->in->len = (uint32_t)rest;
    return 0;
}

static void discard_input(gw_conn_t *c) {
    for (;;) {
        ssize_t n = read(c->io.fd, c->w->rbuf, c->w->rbuf_cap);
        if (n > 0) continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        gw_conn_close(c, 0);
        return;
    }
}

static void read_input(gw_conn_t *c) {
    gw_worker_t *w = c->w;
    for (;;) {
        if (c->state == GW_S_HTTP) {
            if (gw_http_read(c) < 0) return;
            if (c->state == GW_S_HTTP) return;
            continue; /* upgraded: frames may follow */
        }
        if (c->state == GW_S_CLOSING) {
            discard_input(c);
            return;
        }
        if (c->state == GW_S_DEAD) return;
        size_t have = 0;
        if (c->in) {
            have = c->in->len;
            memcpy(w->rbuf, c->in->data, have);
        }
        /* Until the protocol is known, read no more than an HTTP head
         * can hold, so nothing read is lost when it turns out to be one. */
        size_t room = c->state == GW_S_NEW ? HTTP_MAX_HEAD : w->rbuf_cap - have;
        ssize_t n = read(c->io.fd, w->rbuf + have, room);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            peer_gone = c->dev != NULL;
            gw_conn_close(c, c->dev ? herald_ERR_HEARTBEAT_TIMEOUT : 0);
            return;
        }
        if (n < 0) return;
        if (c->dev) gw_conn_set_idle(c, gw_idle_for(w->gw, c->hb));
        size_t len = have + (size_t)n, used = 0;
        if (c->state == GW_S_NEW && detect(c, w->rbuf[0]) < 0) return;
        if (c->state == GW_S_HTTP) {
            gw_http_t *h = c->aux;
            size_t k = len < sizeof h->buf ? len : sizeof h->buf;
            memcpy(h->buf, w->rbuf, k);
            h->len = (uint16_t)k;
            continue;
        }
        int rc = c->state == GW_S_YYB
                     ? yyb_input(c, w->rbuf, len, &used)
                     : gw_conn_ws_input(c, w->rbuf, len, &used);
        jce_arena_reset(w->arena);
        if (rc < 0) return;
        if (gw_conn_keep_tail(c, w->rbuf, len, used) < 0) return;
        /* Shorter than asked: the socket is drained (EPOLLET raises a new
         * edge for later bytes), so skip the read that would say EAGAIN:
         * one syscall less per ack or heartbeat. */
        if ((size_t)n < room) return;
    }
}

static void on_io(ev_loop_t *loop, ev_io_t *io, unsigned revents) {
    gw_conn_t *c = io->data;
    (void)loop;
    if ((revents & EV_WRITE) && c->out_head && gw_conn_flush(c) < 0) return;
    if (revents & (EV_READ | EV_ERROR)) read_input(c);
}

static void on_timer(ev_loop_t *loop, ev_timer_t *t) {
    gw_conn_t *c = ev_container_of(t, gw_conn_t, timer);
    if (c->deadline > ev_now_ms(loop)) {
        ev_timer_start_at(loop, t, c->deadline);
        return;
    }
    if (c->refuse) { /* silent all along, or done lingering */
        gw_conn_close(c, 0);
        return;
    }
    switch (c->state) {
    case GW_S_CLOSING: gw_conn_close(c, 0); break;
    case GW_S_HTTP:
        gw_http_error(c, 408, herald_ERR_HEARTBEAT_TIMEOUT,
                      "request head too slow");
        break;
    default:
        if (c->dev) {
            atomic_fetch_add_explicit(&c->w->hb_timeouts, 1,
                                      memory_order_relaxed);
            gw_conn_kick(c, herald_ERR_HEARTBEAT_TIMEOUT, "idle timeout");
        } else {
            gw_conn_kick(c, herald_ERR_NOT_AUTHED, "no hello in time");
        }
    }
}
