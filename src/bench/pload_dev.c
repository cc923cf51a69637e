/*
 * pload_dev.c: the device side of push_load (pload.h).  A worker connects
 * its devices [dev_lo, dev_hi) to the gateway over raw TCP (YYB), at most
 * PLOAD_DEV_INFLIGHT handshakes at a time so the server's accept queue
 * never overflows, each with a token minted for PREFIX<i>.  A device then
 * reads its pushes, checks each one against the marker in its payload
 * (addressed to this device? sent by this run? seen before?) and sends one
 * cumulative CMD_ACK per read batch, the way a real client does.
 *
 * Pushes of an earlier run (stored while their device was offline and
 * synced when it connects) are acked and counted as stale, never checked.
 * Per device it keeps 40-odd bytes plus, only while a frame is split
 * across reads, that partial frame; all reads go through one buffer.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "Protocol.h"
#include "bench/bench_wire.h"
#include "bench/pload.h"
#include "core/net.h"
#include "core/token.h"

#define RBUF_SIZE (256u * 1024)
#define HELLO_HEARTBEAT 300 /* seconds; push_load heartbeats every 60 */

int pload_dev_init(pload_worker_t *w) {
    long n = w->dev_hi - w->dev_lo;
    w->d = calloc((size_t)n, sizeof *w->d);
    w->rbuf = malloc(RBUF_SIZE);
    w->darena = jce_arena_new(0);
    jce_out_init(&w->dout, JCE_POLICY_CPP);
    jce_out_init(&w->dbody, JCE_POLICY_CPP);
    if (!w->d || !w->rbuf || !w->darena) return -1;
    for (long k = 0; k < n; k++) {
        w->d[k].fd = -1;
        yyb_reader_init(&w->d[k].yr, false);
    }
    w->d_next = w->dev_lo;
    return 0;
}

void pload_dev_close(pload_worker_t *w) {
    for (long k = 0; w->d && k < w->dev_hi - w->dev_lo; k++) {
        if (w->d[k].fd >= 0) close(w->d[k].fd);
        bench_part_drop(&w->d[k].part, &w->d[k].part_len);
    }
    free(w->d);
    free(w->rbuf);
    jce_out_free(&w->dout);
    jce_out_free(&w->dbody);
    if (w->darena) jce_arena_free(w->darena);
    w->d = NULL;
}

static void dev_kill(pload_worker_t *w, long k, const char *why) {
    pload_dev_t *d = &w->d[k];
    if (d->st == PLOAD_D_CONNECTING || d->st == PLOAD_D_HELLO) {
        w->d_inflight--;
        w->d_failed++;
    } else if (d->st == PLOAD_D_READY) {
        w->d_ready--;
        w->d_closed++;
    }
    pload_error(w, "device %s%ld: %s", w->o->prefix, w->dev_lo + k, why);
    if (d->fd >= 0) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, d->fd, NULL);
        close(d->fd);
    }
    d->fd = -1;
    d->st = PLOAD_D_DEAD;
    bench_part_drop(&d->part, &d->part_len);
}

/* Sends w->dout whole: device traffic is a few small frames, so a short
 * send means the gateway stopped reading. */
static int dev_send_out(pload_worker_t *w, pload_dev_t *d) {
    if (w->dout.err) return -1;
    ssize_t n = send(d->fd, w->dout.buf, w->dout.len, MSG_NOSIGNAL);
    return n == (ssize_t)w->dout.len ? 0 : -1;
}

/* ---- connecting ----------------------------------------------------------- */

static void start_one(pload_worker_t *w) {
    const pload_opts_t *o = w->o;
    long i = w->d_next++, k = i - w->dev_lo;
    pload_dev_t *d = &w->d[k];
    /* On loopback, spread sources over 127.0.0.2..250 so the 4-tuple
     * space (one destination port) never runs out. */
    char src[24];
    bool loop = !strncmp(o->gw_host, "127.", 4);
    snprintf(src, sizeof src, "127.0.0.%ld", 2 + i % 249);
    w->d_inflight++;
    d->st = PLOAD_D_CONNECTING;
    int rc = net_connect_tcp(o->gw_host, o->gw_port, loop ? src : NULL, true,
                             &d->fd);
    struct epoll_event ev = {.events = EPOLLOUT,
                             .data.u64 = PLOAD_KEY_DEV | (uint64_t)k};
    if (rc == 0 && epoll_ctl(w->ep, EPOLL_CTL_ADD, d->fd, &ev) != 0)
        rc = -errno;
    if (rc < 0) dev_kill(w, k, strerror(-rc));
}

void pload_dev_pump(pload_worker_t *w) {
    while (w->d_next < w->dev_hi && w->d_inflight < PLOAD_DEV_INFLIGHT)
        start_one(w);
}

static void on_connected(pload_worker_t *w, long k) {
    const pload_opts_t *o = w->o;
    pload_dev_t *d = &w->d[k];
    int rc = net_socket_error(d->fd);
    if (rc < 0) {
        dev_kill(w, k, strerror(-rc));
        return;
    }
    char id[160], tok[TOKEN_MAX];
    snprintf(id, sizeof id, "%s%ld", o->prefix, w->dev_lo + k);
    int64_t now = (int64_t)time(NULL), exp = now + 86400;
    struct epoll_event ev = {.events = EPOLLIN,
                             .data.u64 = PLOAD_KEY_DEV | (uint64_t)k};
    jce_out_reset(&w->dout);
    d->st = PLOAD_D_HELLO;
    if (token_mint(tok, sizeof tok, o->app, id, now, exp,
                   (const uint8_t *)o->secret, strlen(o->secret)) < 0) {
        dev_kill(w, k, "cannot mint a token (check --app and the prefix)");
        return;
    }
    if (bench_yyb_hello(&w->dout, tok, HELLO_HEARTBEAT) < 0 ||
        dev_send_out(w, d) < 0 ||
        epoll_ctl(w->ep, EPOLL_CTL_MOD, d->fd, &ev) != 0)
        dev_kill(w, k, "cannot send the hello");
}

/* ---- pushes and acks ------------------------------------------------------ */

/* One cumulative ack for what this read brought: the highest inbox seq,
 * and the ids of online-only messages (which have no seq). */
static int dev_ack(pload_worker_t *w, pload_dev_t *d) {
    if (d->seen_seq <= d->acked_seq && !w->n_ack_ids) return 0;
    herald_AckReq a;
    herald_AckReq_init(&a);
    if (d->seen_seq > d->acked_seq) a.inboxSeq = d->seen_seq;
    a.msgIds.items = w->ack_ids;
    a.msgIds.n = (uint32_t)w->n_ack_ids;
    jce_out_reset(&w->dbody);
    herald_AckReq_encode(&a, &w->dbody);
    jce_out_reset(&w->dout);
    int rc = bench_yyb_frame(&w->dout, herald_CMD_ACK, 0, &w->dbody);
    w->n_ack_ids = 0;
    d->acked_seq = d->seen_seq;
    return rc < 0 ? -1 : dev_send_out(w, d);
}

/* Checks one push of this run against the marker in its payload. */
static void dev_check(pload_worker_t *w, long k, const pload_mark_t *m) {
    long dev = w->dev_lo + k;
    if (m->dev != (uint64_t)dev || m->seq >= w->seq) {
        w->wrong++;
        pload_error(w,
                    "device %s%ld got push %" PRIu64 " addressed to "
                    "device %" PRIu64,
                    w->o->prefix, dev, m->seq, m->dev);
        return;
    }
    uint8_t *f = &w->flags[m->seq];
    if (*f & PLOAD_F_DELIV) {
        w->dup++;
        return;
    }
    *f |= PLOAD_F_DELIV;
    w->delivered++;
    w->d[k].got++;
    if (*f & PLOAD_F_WRITTEN) w->outstanding--;
    if (m->t0 >= w->sh->t_warm && m->t0 < w->sh->t_end)
        (void)bench_lat_add(&w->dlat, w->now - m->t0); /* ENOMEM: lost */
}

static int dev_push(pload_worker_t *w, long k, const herald_PushMsg *msg) {
    pload_dev_t *d = &w->d[k];
    if (msg->timeline == 0 && msg->seq > d->seen_seq)
        d->seen_seq = msg->seq;
    else if (msg->timeline == 2 && msg->needAck)
        w->ack_ids[w->n_ack_ids++] = msg->msgId;
    if (w->n_ack_ids == PLOAD_ACK_IDS && dev_ack(w, d) < 0) return -1;
    pload_mark_t m;
    if (pload_payload_parse(msg->payload.data, msg->payload.len, &m) < 0 ||
        m.run != w->o->run) {
        w->stale++;
        w->t_stale = w->now;
        return 0;
    }
    dev_check(w, k, &m);
    return 0;
}

static int dev_package(pload_worker_t *w, long k, const herald_Package *p) {
    pload_dev_t *d = &w->d[k];
    if (p->cmd == herald_CMD_HELLO && d->st == PLOAD_D_HELLO) {
        if (p->ret != 0) {
            const char *n = herald_ErrCode_name(p->ret);
            pload_error(w, "device %s%ld: hello refused, %d (%s)", w->o->prefix,
                        w->dev_lo + k, p->ret, n ? n : "?");
            return -1;
        }
        d->st = PLOAD_D_READY;
        w->d_inflight--;
        w->d_ready++;
        return 0;
    }
    if (p->cmd == herald_CMD_KICK) {
        herald_Kick kick;
        jce_in_t in;
        jce_in_init(&in, p->body.data, p->body.len, w->darena);
        herald_Kick_init(&kick);
        (void)herald_Kick_decode(&kick, &in); /* reason 0 if garbled */
        const char *n = herald_ErrCode_name(kick.reason);
        pload_error(w, "device %s%ld: kicked, reason %d (%s)", w->o->prefix,
                    w->dev_lo + k, kick.reason, n ? n : "?");
        return -1;
    }
    if (p->cmd != herald_CMD_PUSH)
        return 0; /* answers to acks and heartbeats */
    herald_PushBatch b;
    jce_in_t in;
    jce_in_init(&in, p->body.data, p->body.len, w->darena);
    if (herald_PushBatch_decode(&b, &in) < 0) return -1;
    for (uint32_t i = 0; i < b.msgs.n; i++)
        if (dev_push(w, k, &b.msgs.items[i]) < 0) return -1;
    return 0;
}

/* Handles the whole frames in buf[0..n); bytes used, or -1 to close. */
static long dev_frames(pload_worker_t *w, long k, const uint8_t *buf,
                       size_t n) {
    size_t off = 0;
    for (;;) {
        size_t used = 0;
        yyb_frame_t f;
        int rc = yyb_feed(&w->d[k].yr, buf + off, n - off, &used, &f);
        off += used;
        if (rc == YYB_AGAIN) return (long)off;
        herald_Package p;
        if (rc < 0 || yyb_decode_package(&f, w->darena, &p, NULL) != 0 ||
            dev_package(w, k, &p) < 0)
            return -1;
    }
}

static void dev_readable(pload_worker_t *w, long k) {
    pload_dev_t *d = &w->d[k];
    size_t have = bench_part_take(&d->part, &d->part_len, w->rbuf);
    ssize_t r = read(d->fd, w->rbuf + have, RBUF_SIZE - have);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        dev_kill(w, k, r == 0 ? "closed by the gateway" : strerror(errno));
        return;
    }
    if (r > 0) have += (size_t)r;
    jce_arena_reset(w->darena); /* ack ids may point into it until dev_ack */
    w->n_ack_ids = 0;
    long used = dev_frames(w, k, w->rbuf, have);
    if (used < 0 || dev_ack(w, d) < 0) {
        dev_kill(w, k,
                 used < 0 ? "bad frame, refused or kicked" : "cannot ack");
        return;
    }
    if (bench_part_keep(&d->part, &d->part_len, w->rbuf + used,
                        have - (size_t)used) < 0)
        dev_kill(w, k, "split frame too large");
}

void pload_dev_event(pload_worker_t *w, long k, uint32_t events) {
    (void)events; /* errors show up as a failed read or connect */
    if (w->d[k].st == PLOAD_D_CONNECTING)
        on_connected(w, k);
    else if (w->d[k].st != PLOAD_D_DEAD)
        dev_readable(w, k);
}

void pload_dev_heartbeat(pload_worker_t *w) {
    jce_out_reset(&w->dout);
    if (bench_yyb_frame(&w->dout, herald_CMD_HEARTBEAT, 0, NULL) < 0) return;
    for (long k = 0; k < w->dev_hi - w->dev_lo; k++)
        if (w->d[k].st == PLOAD_D_READY && dev_send_out(w, &w->d[k]) < 0)
            dev_kill(w, k, "cannot send a heartbeat");
}
