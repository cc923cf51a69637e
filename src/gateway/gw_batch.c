/*
 * gw_batch: broadcast writes submitted to io_uring in batches.
 *
 * A broadcast writes one small frame to thousands of sockets; one send()
 * each costs a syscall each (about 5.8 µs of CPU per 64-byte loopback
 * write here).  With io_uring, up to GW_BATCH sends are prepared and
 * submitted with one io_uring_enter(), which brings the cost close to the
 * TCP stack's own work.
 *
 * Semantics are those of gw_conn_send_buf: sockets are non-blocking, so a
 * send that would block completes with -EAGAIN (or a short count) and the
 * rest is queued on the connection as usual.  A connection that already
 * has queued output, or a worker without a ring (io_uring unavailable or
 * disabled, e.g. kernel.io_uring_disabled), takes the plain path.
 *
 * push_app() (one pass over a worker's connections) and a mailbox run of
 * single-device pushes (gw.c on_wake) batch.  Between gw_batch_send and
 * gw_batch_flush nothing else may write to those connections: the worker
 * flushes before any other mailbox item, and a second push to a
 * connection already in the batch flushes the batch first (sends in one
 * submission are not ordered).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <liburing.h>

#include "Protocol.h"
#include "gateway/gw_int.h"

struct gw_batch {
    struct io_uring ring;
    uint32_t n;
    struct {
        gw_conn_t *c;
        gw_buf_t *b;
    } ent[GW_BATCH];
};

int gw_batch_init(gw_worker_t *w) {
    if (getenv("HERALD_NO_URING")) return -ENOSYS;
    gw_batch_t *b = calloc(1, sizeof *b);
    if (!b) return -ENOMEM;
    int rc = io_uring_queue_init(GW_BATCH, &b->ring, 0);
    if (rc < 0) {
        free(b);
        return rc;
    }
    w->batch = b;
    return 0;
}

void gw_batch_free(gw_worker_t *w) {
    if (!w->batch) return;
    io_uring_queue_exit(&w->batch->ring);
    free(w->batch);
    w->batch = NULL;
}

/* Submits what is prepared and settles every completion. */
void gw_batch_flush(gw_worker_t *w) {
    gw_batch_t *b = w->batch;
    if (!b || !b->n) return;
    int rc;
    do {
        rc = io_uring_submit_and_wait(&b->ring, b->n);
    } while (rc == -EINTR);
    uint32_t seen = 0;
    while (seen < b->n) {
        struct io_uring_cqe *cqe;
        if (rc < 0 || io_uring_wait_cqe(&b->ring, &cqe) < 0) break;
        uint32_t i = (uint32_t)cqe->user_data;
        int res = cqe->res;
        io_uring_cqe_seen(&b->ring, cqe);
        seen++;
        gw_conn_t *c = b->ent[i].c;
        gw_buf_t *buf = b->ent[i].b;
        b->ent[i].c = NULL;
        c->batched = false;
        if (res == -EAGAIN || res == -EINTR) res = 0;
        if (res < 0)
            gw_conn_close(c, herald_ERR_SERVER);
        else if ((uint32_t)res < buf->len)
            (void)gw_conn_queue(c, buf, (uint32_t)res);
        gw_buf_unref(buf);
    }
    /* Submission failed: nothing was sent, so everything is still owed. */
    for (uint32_t i = 0; i < b->n; i++) {
        if (!b->ent[i].c) continue;
        b->ent[i].c->batched = false;
        (void)gw_conn_queue(b->ent[i].c, b->ent[i].b, 0);
        gw_buf_unref(b->ent[i].b);
        b->ent[i].c = NULL;
    }
    b->n = 0;
}

int gw_batch_send(gw_conn_t *c, gw_buf_t *buf) {
    gw_worker_t *w = c->w;
    gw_batch_t *b = w->batch;
    if (b && c->batched) gw_batch_flush(w); /* keep its frames in order */
    if (!b || c->out_head || c->state == GW_S_DEAD)
        return gw_conn_send_buf(c, buf);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
    if (!sqe) {
        gw_batch_flush(w);
        if (!(sqe = io_uring_get_sqe(&b->ring)))
            return gw_conn_send_buf(c, buf);
    }
    io_uring_prep_send(sqe, c->io.fd, buf->data, buf->len, MSG_NOSIGNAL);
    sqe->user_data = b->n;
    b->ent[b->n].c = c;
    b->ent[b->n].b = gw_buf_ref(buf);
    c->batched = true;
    if (++b->n == GW_BATCH) gw_batch_flush(w);
    return 0;
}
