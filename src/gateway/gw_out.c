/*
 * gw_out: a connection's output — refcounted frames, writes straight to the
 * socket, the queue of what did not fit, and the cut of slow consumers.
 * Separate from gw_conn.c (reading, framing, life cycle): this is the
 * write side, which gw_cmd.c, gw_http.c, gw_admit.c and gw_batch.c call
 * into as well.
 *
 * Writes: straight to the socket; what does not fit is queued as
 * (refcounted buffer, offset), so a shared broadcast frame is never copied
 * per connection.  The queue is capped by max_pending; past it the
 * connection is cut as a slow consumer.
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
}

static void slow_consumer(gw_conn_t *c) {
    atomic_fetch_add_explicit(&c->w->slow_consumers, 1, memory_order_relaxed);
    metrics_inc(M_SLOW_CONSUMERS, 0, 0);
    log_warn("slow consumer disconnected", "app=%s device=%s pending=%u",
             c->dev ? c->dev->app->name : "-", c->dev ? c->dev->name : "-",
             c->out_bytes);
    gw_conn_close(c, herald_ERR_SLOW_CONSUMER);
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
            if (errno == EAGAIN || errno == EINTR) return 0;
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
                o->off += (uint32_t)left;
                break;
            }
            left -= avail;
            c->out_head = o->next;
            gw_buf_unref(o->buf);
            free(o);
        }
        if (!c->out_head) c->out_tail = NULL;
    }
    if (c->state == GW_S_CLOSING) (void)shutdown(c->io.fd, SHUT_WR);
    return 0;
}

int gw_conn_queue(gw_conn_t *c, gw_buf_t *b, uint32_t off) {
    if (c->out_bytes + (b->len - off) > c->w->gw->cfg.max_pending) {
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
    if (c->out_tail) c->out_tail->next = o;
    else c->out_head = o;
    c->out_tail = o;
    c->out_bytes += b->len - off;
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
