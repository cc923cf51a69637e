/*
 * push_tars.c: the PushAPI over TARS RPC (servant
 * herald.PushServer.PushAPIObj), run by the jce2c-generated dispatcher
 * through trpc_server.
 *
 * Threading model (b) of the issue: one listener thread and one thread per
 * connection (at most tars_max_conns).  The generated dispatcher is
 * synchronous, so an impl that hands a push to the store waits on its
 * connection's condition variable until the durable commit's done()
 * callback; frames pipelined on one connection are answered in order,
 * different connections run in parallel (and share group commits).  This
 * trades threads for simplicity; model (a), an event loop that parks calls,
 * would need an async reply API in trpc.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "PushAPI.h"
#include "core/log.h"
#include "core/net.h"
#include "core/clock.h"
#include "ops/metrics_herald.h"
#include "push/push_int.h"
#include "rpc/trpc.h"

#define SERVANT "herald.PushServer.PushAPIObj"
#define MAX_FRAME (1u << 20) /* a push call is a few KiB; 10000 ids fit */
#define READ_CHUNK 65536

typedef struct tconn {
    push_service_t *ps;
    int fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    push_call_t *done;
    struct tconn *next;
} tconn_t;

struct push_tars {
    push_service_t *ps;
    int lfd;
    int stop_pipe[2];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tconn_t *conns;
    int nconns;
};

/* ---- the four impls ------------------------------------------------------- */

static jce_str_t arena_str(jce_call_t *call, const char *s) {
    size_t n = strlen(s);
    char *d = jce_arena_alloc(call->arena, n + 1);
    if (!d)
        return (jce_str_t){"", 0};
    memcpy(d, s, n + 1);
    return (jce_str_t){d, (uint32_t)n};
}

/* Authenticates, rate-limits and copies the message; NULL with *ret set. */
static push_call_t *begin(tconn_t *t, int op, jce_str_t key,
                          const herald_PushMessage *m, int32_t *ret) {
    push_service_t *ps = t->ps;
    char app[64];
    if (push_auth_key(ps, key.data, key.len, app) < 0) {
        *ret = PUSH_RET_UNAUTHORIZED;
        return NULL;
    }
    int adm = push_admit(ps, app);
    if (adm != PUSH_RET_OK) {
        *ret = adm; /* PUSH_ERR_OVERLOADED or PUSH_ERR_RATE_LIMITED */
        return NULL;
    }
    push_call_t *c = push_call_new(ps, op, app);
    if (!c) {
        *ret = PUSH_RET_INTERNAL;
        return NULL;
    }
    push_call_set_msg(c, m->requestId.data, m->requestId.len,
                      m->collapseKey.data, m->collapseKey.len,
                      m->payload.data, m->payload.len, m->ttl, m->needAck);
    return c;
}

static void wake(push_call_t *c) {
    tconn_t *t = c->reply_ctx;
    pthread_mutex_lock(&t->mu);
    t->done = c;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* Runs c to completion (waiting for the store if needed). */
static void run_wait(tconn_t *t, push_call_t *c) {
    uint64_t t0 = clock_mono_us();
    c->reply = wake;
    c->reply_ctx = t;
    if (push_call_run(c) == 0) {
        pthread_mutex_lock(&t->mu);
        while (t->done != c)
            pthread_cond_wait(&t->cv, &t->mu);
        t->done = NULL;
        pthread_mutex_unlock(&t->mu);
    }
    /* enum push_op 1..4 lines up with MH_FN_SINGLE..MH_FN_ALL. */
    unsigned fn = (unsigned)(c->op - PUSH_OP_SINGLE);
    metrics_inc(M_TARS_CALLS, fn, c->ret == PUSH_RET_OK ? 0 : 1);
    metrics_observe(M_TARS_LATENCY, fn, 0, clock_mono_us() - t0);
}

static int32_t tars_single(jce_call_t *call,
                           const herald_PushSingleDeviceReq *req,
                           herald_PushSingleDeviceRsp *rsp) {
    tconn_t *t = call->ctx;
    int32_t ret = 0;
    push_call_t *c = begin(t, PUSH_OP_SINGLE, req->apiKey, &req->msg, &ret);
    if (!c)
        return rsp->ret = ret;
    if (c->ret == PUSH_RET_OK)
        push_call_add_device(c, req->deviceId.data, req->deviceId.len);
    run_wait(t, c);
    if ((rsp->ret = c->ret) == PUSH_RET_OK) {
        rsp->msgId = arena_str(call, c->msg_id);
        rsp->state = c->state;
    }
    push_call_free(c);
    return rsp->ret;
}

static int32_t tars_multi(jce_call_t *call,
                          const herald_PushMultiDeviceReq *req,
                          herald_PushMultiDeviceRsp *rsp) {
    tconn_t *t = call->ctx;
    int32_t ret = 0;
    push_call_t *c = begin(t, PUSH_OP_MULTI, req->apiKey, &req->msg, &ret);
    if (!c)
        return rsp->ret = ret;
    for (uint32_t i = 0; c->ret == PUSH_RET_OK && i < req->deviceIds.n; i++)
        push_call_add_device(c, req->deviceIds.items[i].data,
                             req->deviceIds.items[i].len);
    run_wait(t, c);
    if ((rsp->ret = c->ret) == PUSH_RET_OK) {
        rsp->msgId = arena_str(call, c->msg_id);
        rsp->online = (int32_t)c->online;
        rsp->stored = (int32_t)c->stored;
        uint32_t n = c->n_rejected;
        rsp->rejected.keys = jce_arena_alloc(call->arena,
                                             (n + 1) * sizeof(jce_str_t));
        rsp->rejected.vals = jce_arena_alloc(call->arena,
                                             (n + 1) * sizeof(int32_t));
        if (rsp->rejected.keys && rsp->rejected.vals) {
            for (uint32_t i = 0; i < n; i++) {
                rsp->rejected.keys[i] = arena_str(call, c->rejected[i]);
                rsp->rejected.vals[i] = PUSH_RET_INVALID;
            }
            rsp->rejected.n = n;
        }
    }
    push_call_free(c);
    return rsp->ret;
}

static int32_t tars_online(jce_call_t *call,
                           const herald_PushAllOnlineDeviceReq *req,
                           herald_PushAllOnlineDeviceRsp *rsp) {
    tconn_t *t = call->ctx;
    int32_t ret = 0;
    push_call_t *c = begin(t, PUSH_OP_ONLINE, req->apiKey, &req->msg, &ret);
    if (!c)
        return rsp->ret = ret;
    run_wait(t, c);
    if ((rsp->ret = c->ret) == PUSH_RET_OK) {
        rsp->msgId = arena_str(call, c->msg_id);
        rsp->targeted = c->targeted;
    }
    push_call_free(c);
    return rsp->ret;
}

static int32_t tars_all(jce_call_t *call, const herald_PushAllDeviceReq *req,
                        herald_PushAllDeviceRsp *rsp) {
    tconn_t *t = call->ctx;
    int32_t ret = 0;
    push_call_t *c = begin(t, PUSH_OP_ALL, req->apiKey, &req->msg, &ret);
    if (!c)
        return rsp->ret = ret;
    run_wait(t, c);
    if ((rsp->ret = c->ret) == PUSH_RET_OK) {
        rsp->msgId = arena_str(call, c->msg_id);
        rsp->online = c->online;
    }
    push_call_free(c);
    return rsp->ret;
}

static const herald_PushAPI_impl impl = {
    .pushSingleDevice = tars_single,
    .pushMultiDevice = tars_multi,
    .pushAllOnlineDevice = tars_online,
    .pushAllDevice = tars_all,
};

/* ---- connections ------------------------------------------------------- */

static bool write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Answers every whole frame in buf; returns bytes used or -1 to close. */
static long serve_frames(tconn_t *t, trpc_server_t *srv, const uint8_t *buf,
                         size_t len, jce_out_t *reply) {
    size_t off = 0;
    for (;;) {
        uint32_t flen;
        int rc = trpc_frame_check(buf + off, len - off, MAX_FRAME, &flen);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return (long)off;
        if (trpc_server_handle(srv, buf + off, flen, t, reply) < 0)
            return -1;
        if (reply->len && !write_all(t->fd, reply->buf, reply->len))
            return -1;
        off += flen;
    }
}

static void conn_loop(tconn_t *t) {
    trpc_server_t *srv = trpc_server_new();
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    size_t cap = READ_CHUNK, len = 0;
    uint8_t *buf = malloc(cap);
    if (!srv || !buf ||
        trpc_server_add(srv, SERVANT, &herald_PushAPI_interface, &impl) < 0)
        goto out;
    for (;;) {
        if (cap - len < READ_CHUNK / 4) {
            size_t nc = cap * 2;
            uint8_t *nb = nc <= MAX_FRAME + READ_CHUNK ? realloc(buf, nc)
                                                       : NULL;
            if (!nb)
                break;
            buf = nb;
            cap = nc;
        }
        ssize_t n = recv(t->fd, buf + len, cap - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        long used = serve_frames(t, srv, buf, len, &reply);
        if (used < 0)
            break;
        memmove(buf, buf + used, len - (size_t)used);
        len -= (size_t)used;
    }
out:
    free(buf);
    jce_out_free(&reply);
    trpc_server_free(srv);
}

static void *conn_main(void *arg) {
    tconn_t *t = arg;
    push_tars_t *pt = t->ps->tars;
    conn_loop(t);
    pthread_mutex_lock(&pt->mu);
    for (tconn_t **pp = &pt->conns; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    pt->nconns--;
    close(t->fd);
    pthread_cond_broadcast(&pt->cv);
    pthread_mutex_unlock(&pt->mu);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
    return NULL;
}

static void accept_one(push_tars_t *pt) {
    int fd;
    if (net_accept(pt->lfd, &fd, NULL) < 0)
        return;
    /* The accepted socket is non-blocking like the listener; this model
     * reads it blocking. */
    if (net_set_nonblock(fd, false) < 0) {
        close(fd);
        return;
    }
    (void)net_set_nodelay(fd, true); /* small answers, send at once */
    tconn_t *t = calloc(1, sizeof *t);
    pthread_mutex_lock(&pt->mu);
    if (!t || pt->nconns >= pt->ps->cfg.tars_max_conns) {
        /* TARS has no answer without a request: the client sees a close */
        pthread_mutex_unlock(&pt->mu);
        metrics_inc(M_REFUSED, MH_REF_PUSH, MH_REF_MAX_CONNS);
        free(t);
        close(fd);
        return;
    }
    t->ps = pt->ps;
    t->fd = fd;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &at, conn_main, t) != 0) {
        pthread_mutex_unlock(&pt->mu);
        pthread_attr_destroy(&at);
        close(fd);
        free(t);
        return;
    }
    pthread_attr_destroy(&at);
    t->next = pt->conns;
    pt->conns = t;
    pt->nconns++;
    pthread_mutex_unlock(&pt->mu);
}

static void *listen_main(void *arg) {
    push_tars_t *pt = arg;
    for (;;) {
        struct pollfd p[2] = {{pt->lfd, POLLIN, 0},
                              {pt->stop_pipe[0], POLLIN, 0}};
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || p[1].revents)
            break;
        if (p[0].revents)
            accept_one(pt);
    }
    return NULL;
}

int push_tars_start(push_service_t *ps) {
    push_tars_t *pt = calloc(1, sizeof *pt);
    if (!pt)
        return -ENOMEM;
    pt->ps = ps;
    pthread_mutex_init(&pt->mu, NULL);
    pthread_cond_init(&pt->cv, NULL);
    int rc = net_listen_tcp(ps->cfg.tars_host, ps->cfg.tars_port, 511, false,
                            &pt->lfd);
    if (rc < 0) {
        free(pt);
        return rc;
    }
    if (pipe(pt->stop_pipe) < 0) {
        rc = -errno;
        close(pt->lfd);
        free(pt);
        return rc;
    }
    ps->tars = pt;
    if ((rc = pthread_create(&pt->thread, NULL, listen_main, pt)) != 0) {
        ps->tars = NULL;
        close(pt->lfd);
        close(pt->stop_pipe[0]);
        close(pt->stop_pipe[1]);
        free(pt);
        return -rc;
    }
    ps->tars_port = net_local_port(pt->lfd);
    log_info("push tars listening", "host=%s port=%d servant=%s",
             ps->cfg.tars_host, ps->tars_port, SERVANT);
    return 0;
}

/* Stops accepting, cuts every connection (their threads finish the call
 * they are in, answering it if the peer still reads) and waits for them. */
void push_tars_stop(push_service_t *ps) {
    push_tars_t *pt = ps->tars;
    if (!pt)
        return;
    (void)!write(pt->stop_pipe[1], "x", 1);
    pthread_join(pt->thread, NULL);
    close(pt->lfd);
    pthread_mutex_lock(&pt->mu);
    for (tconn_t *t = pt->conns; t; t = t->next)
        (void)shutdown(t->fd, SHUT_RD);
    while (pt->nconns > 0)
        pthread_cond_wait(&pt->cv, &pt->mu);
    pthread_mutex_unlock(&pt->mu);
    close(pt->stop_pipe[0]);
    close(pt->stop_pipe[1]);
    pthread_mutex_destroy(&pt->mu);
    pthread_cond_destroy(&pt->cv);
    free(pt);
    ps->tars = NULL;
    ps->tars_port = -1;
}
