/*
 * gw_out: a connection's output — refcounted frames, writes straight to the
 * socket, the queue of what did not fit, and the cut of slow consumers.
 * Separate from gw_conn.c (reading, framing, life cycle): this is the
 * write side, which gw_cmd.c, gw_http.c, gw_admit.c and gw_batch.c call
 * into as well.
 *
 * Writes: straight to the socket; what does not fit is queued as
 * (refcounted buffer, offset), so a shared broadcast frame is never copied
 * per connection.  Live pushes are capped by max_pending; past it the
 * connection is cut as a slow consumer.
 *
 * Backlog frames (the connect-time sync's pages, gw_buf_t.backlog) are
 * not: their sender waits for a mark (gw_push_mark) before each next
 * page, and the mark fires here once the queue is down to max_pending /
 * 4 (backlog_low).  A stored backlog of 10 MB used to be written in one
 * go and cut a healthy but slow reader after 256 KiB; now it costs at
 * most a page plus that low watermark of queue, at the reader's pace.
 * The backlog's bytes are counted apart (dev->backlog_bytes) so that they
 * never count against the live pushes' max_pending either; a backlog
 * past BACKLOG_CAP x max_pending means its sender does not wait, and is
 * cut.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "Protocol.h"
#include "core/log.h"
#include "gateway/gw_int.h"
#include "ops/metrics_herald.h"

/* ---- buffers --------------------------------------------------------------- */

gw_buf_t *gw_buf_new(const void *p, size_t len) {
    gw_buf_t *b = malloc(sizeof *b + len);
    if (!b) return NULL;
    b->ref = 1;
    b->len = (uint32_t)len;
    b->backlog = false;
    if (p) memcpy(b->data, p, len);
    return b;
}

void gw_buf_unref(gw_buf_t *b) {
    if (--b->ref == 0) free(b);
}

/* ---- output ----------------------------------------------------------------- */

void gw_conn_out_clear(gw_conn_t *c) {
    for (gw_out_t *o = c->out_head, *nx; o; o = nx) {
        nx = o->next;
        gw_buf_unref(o->buf);
        free(o);
    }
    c->out_head = c->out_tail = NULL;
    atomic_fetch_sub_explicit(&c->w->out_queued, (long)c->out_bytes,
                              memory_order_relaxed);
    c->out_bytes = 0;
    if (c->dev) c->dev->backlog_bytes = 0;
}

/* ---- backlog marks ----------------------------------------------------------- */

static uint32_t backlog_low(const gw_conn_t *c) {
    return c->w->gw->cfg.max_pending / 4;
}

static void mark_fire(gw_t *gw, uint64_t token, bool ok) {
    if (gw->svc.drained) gw->svc.drained(gw->svc.ctx, token, ok);
}

/* The waiting mark fires once the queue is low again. */
static void mark_check(gw_conn_t *c) {
    if (!c->dev || !c->dev->mark || c->out_bytes > backlog_low(c)) return;
    uint64_t token = c->dev->mark;
    c->dev->mark = 0;
    mark_fire(c->w->gw, token, true);
}

void gw_mark_arm(gw_t *gw, gw_conn_t *c, uint64_t token) {
    if (!c || !c->dev) {
        mark_fire(gw, token, false); /* gone meanwhile */
        return;
    }
    if (c->dev->mark) {
        /* Another backlog already feeds this connection (a SYNC during
         * the connect-time sync, a sender from a replaced connection):
         * one at a time, or each would send a page per other's drain. */
        mark_fire(gw, token, false);
        return;
    }
    c->dev->mark = token;
    mark_check(c);
}

void gw_mark_drop(gw_conn_t *c) {
    if (!c->dev || !c->dev->mark) return;
    uint64_t token = c->dev->mark;
    c->dev->mark = 0;
    mark_fire(c->w->gw, token, false);
}

static void slow_consumer(gw_conn_t *c) {
    atomic_fetch_add_explicit(&c->w->slow_consumers, 1, memory_order_relaxed);
    metrics_inc(M_SLOW_CONSUMERS, 0, 0);
    log_warn("slow consumer disconnected", "app=%s device=%s pending=%u",
             c->dev ? c->dev->app->name : "-", c->dev ? c->dev->name : "-",
             c->out_bytes);
    gw_conn_close(c, herald_ERR_SLOW_CONSUMER);
}

/* n bytes of o's buffer went out. */
static void sent_from(gw_conn_t *c, const gw_out_t *o, size_t n) {
    if (o->buf->backlog && c->dev) c->dev->backlog_bytes -= (uint32_t)n;
}

/* Writes the queue until EAGAIN; -1 if the connection closed. */
int gw_conn_flush(gw_conn_t *c) {
    while (c->out_head) {
        struct iovec iov[16];
        int n = 0;
        for (gw_out_t *o = c->out_head; o && n < 16; o = o->next, n++) {
            iov[n].iov_base = o->buf->data + o->off;
            iov[n].iov_len = o->buf->len - o->off;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t wr = sendmsg(c->io.fd, &mh, MSG_NOSIGNAL);
        if (wr < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            gw_conn_close(c, herald_ERR_SERVER);
            return -1;
        }
        size_t left = (size_t)wr;
        c->out_bytes -= (uint32_t)left;
        atomic_fetch_sub_explicit(&c->w->out_queued, (long)wr,
                                  memory_order_relaxed);
        while (left && c->out_head) {
            gw_out_t *o = c->out_head;
            size_t avail = o->buf->len - o->off;
            if (left < avail) {
                sent_from(c, o, left);
                o->off += (uint32_t)left;
                break;
            }
            sent_from(c, o, avail);
            left -= avail;
            c->out_head = o->next;
            gw_buf_unref(o->buf);
            free(o);
        }
        if (!c->out_head) c->out_tail = NULL;
    }
    if (!c->out_head && c->state == GW_S_CLOSING)
        (void)shutdown(c->io.fd, SHUT_WR);
    mark_check(c);
    return 0;
}

/* Live pushes are cut past max_pending, counting only live bytes; a
 * backlog frame is paced by its mark instead (see the top).  Paced, a
 * backlog queues at most the low watermark plus a page; BACKLOG_CAP
 * times max_pending is only reached by senders that do not wait (a
 * device asking SYNC again and again without reading): cut too. */
#define BACKLOG_CAP 4
int gw_conn_queue(gw_conn_t *c, gw_buf_t *b, uint32_t off) {
    uint32_t backlog = c->dev ? c->dev->backlog_bytes : 0;
    uint32_t max = c->w->gw->cfg.max_pending;
    if (b->backlog ? backlog > BACKLOG_CAP * max
                   : c->out_bytes - backlog + (b->len - off) > max) {
        slow_consumer(c);
        return -1;
    }
    gw_out_t *o = malloc(sizeof *o);
    if (!o) {
        gw_conn_close(c, herald_ERR_SERVER);
        return -1;
    }
    o->next = NULL;
    o->buf = gw_buf_ref(b);
    o->off = off;
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    c->out_bytes += b->len - off;
    if (b->backlog && c->dev) c->dev->backlog_bytes += b->len - off;
    atomic_fetch_add_explicit(&c->w->out_queued, (long)(b->len - off),
                              memory_order_relaxed);
    return 0;
}

/* Bytes written now, or -1 if the connection closed. */
static ssize_t write_now(gw_conn_t *c, const void *p, size_t len) {
    if (c->out_head) return 0;
    ssize_t wr = send(c->io.fd, p, len, MSG_NOSIGNAL);
    if (wr >= 0) return wr;
    if (errno == EAGAIN || errno == EINTR) return 0;
    gw_conn_close(c, herald_ERR_SERVER);
    return -1;
}

/* POST /v1/yyb collects its answer before the HTTP head can be written. */
static bool captured(gw_conn_t *c, const void *p, size_t len) {
    if (c->state != GW_S_HTTP || !c->aux) return false;
    gw_http_t *h = c->aux;
    if (!h->capture) return false;
    jce_out_raw(h->capture, p, len);
    return true;
}

int gw_conn_send(gw_conn_t *c, const void *p, size_t len) {
    if (c->state == GW_S_DEAD) return -1;
    if (captured(c, p, len)) return 0;
    ssize_t wr = write_now(c, p, len);
    if (wr < 0) return -1;
    if ((size_t)wr == len) return 0;
    gw_buf_t *b = gw_buf_new((const uint8_t *)p + wr, len - (size_t)wr);
    if (!b) {
        gw_conn_close(c, herald_ERR_SERVER);
        return -1;
    }
    int rc = gw_conn_queue(c, b, 0);
    gw_buf_unref(b);
    return rc;
}

int gw_conn_send_buf(gw_conn_t *c, gw_buf_t *b) {
    if (c->state == GW_S_DEAD) return -1;
    if (captured(c, b->data, b->len)) return 0;
    ssize_t wr = write_now(c, b->data, b->len);
    if (wr < 0) return -1;
    if ((size_t)wr == b->len) return 0;
    return gw_conn_queue(c, b, (uint32_t)wr);
}
