/*
 * trpc_test_server: a standalone TARS RPC server for interop tests.
 *
 *   trpc_test_server PORT     (0 = any free port)
 *
 * Prints "listening PORT" once it accepts connections and exits on SIGTERM,
 * SIGINT or EOF on stdin (so a test runner that dies takes it along).
 * Serves "herald.PushServer.PushAPIObj" (PushAPI) and
 * "Test.HelloServer.HelloObj" (Test.Hello of tars-wire §2.5) with impls
 * whose answers are computed from the request, so that a client can check
 * that every field made the round trip.
 *
 * The loop is poll() over non-blocking sockets, with pipelined frames and
 * partial reads and writes, and bounded buffers: an oversize frame closes
 * the connection, and a peer that does not read its answers stops being
 * read.  It lives only here; the gateway brings the real event loop.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "Hello.h"
#include "PushAPI.h"
#include "rpc/trpc.h"

#define MAX_CONNS 256
#define MAX_FRAME (1u << 20)
#define MAX_PENDING_OUT (4u << 20) /* stop reading a peer above this */

/* ---- impls ---- */

/* Concatenates up to three strings into the call's arena. */
static jce_str_t cat3(jce_call_t *call, jce_str_t a, jce_str_t b, jce_str_t c) {
    size_t n = (size_t)a.len + b.len + c.len;
    char *p = jce_arena_alloc(call->arena, n ? n : 1);
    if (!p) return (jce_str_t){"", 0};
    if (a.len) memcpy(p, a.data, a.len);
    if (b.len) memcpy(p + a.len, b.data, b.len);
    if (c.len) memcpy(p + a.len + b.len, c.data, c.len);
    return (jce_str_t){p, (uint32_t)n};
}

static int32_t push_single(jce_call_t *call,
                           const herald_PushSingleDeviceReq *req,
                           herald_PushSingleDeviceRsp *rsp) {
    jce_str_t id =
        cat3(call, JCE_STR_LIT("m-"), req->deviceId, JCE_STR_LIT("-"));
    rsp->ret = 0;
    rsp->msgId = cat3(call, id, req->msg.requestId, JCE_STR_LIT(""));
    rsp->state = req->msg.needAck ? 1 : 2;
    return 0;
}

/* Empty ids are rejected with code 1, ids over 64 bytes with code 2; each
 * rejected id appears once. */
static int32_t push_multi(jce_call_t *call,
                          const herald_PushMultiDeviceReq *req,
                          herald_PushMultiDeviceRsp *rsp) {
    uint32_t n = req->deviceIds.n, bad = 0;
    jce_str_t *keys = jce_arena_alloc(call->arena, (n ? n : 1) * sizeof *keys);
    int32_t *vals = jce_arena_alloc(call->arena, (n ? n : 1) * sizeof *vals);
    if (!keys || !vals) return JCE_RPC_UNKNOWN_ERR;
    for (uint32_t i = 0; i < n; i++) {
        jce_str_t d = req->deviceIds.items[i];
        if (d.len != 0 && d.len <= 64) continue;
        bool seen = false;
        for (uint32_t k = 0; k < bad && !seen; k++)
            seen = jce_str_eq(keys[k], d);
        if (seen) continue;
        keys[bad] = d;
        vals[bad++] = d.len == 0 ? 1 : 2;
    }
    rsp->ret = 0;
    rsp->msgId = cat3(call, JCE_STR_LIT("m-multi-"), req->msg.requestId,
                      JCE_STR_LIT(""));
    rsp->online = (int32_t)n;
    rsp->stored = req->msg.ttl > 0 ? (int32_t)n : 0;
    rsp->rejected.keys = keys;
    rsp->rejected.vals = vals;
    rsp->rejected.n = bad;
    return 0;
}

static int32_t push_all_online(jce_call_t *call,
                               const herald_PushAllOnlineDeviceReq *req,
                               herald_PushAllOnlineDeviceRsp *rsp) {
    rsp->ret = 0;
    rsp->msgId = cat3(call, JCE_STR_LIT("m-online-"), req->msg.requestId,
                      JCE_STR_LIT(""));
    rsp->targeted = req->msg.payload.len;
    return 0;
}

static int32_t push_all(jce_call_t *call, const herald_PushAllDeviceReq *req,
                        herald_PushAllDeviceRsp *rsp) {
    rsp->ret = 0;
    rsp->msgId =
        cat3(call, JCE_STR_LIT("m-all-"), req->msg.requestId, JCE_STR_LIT(""));
    rsp->online = 0;
    return 0;
}

static const herald_PushAPI_impl push_impl = {
    .pushSingleDevice = push_single,
    .pushMultiDevice = push_multi,
    .pushAllOnlineDevice = push_all_online,
    .pushAllDevice = push_all,
};

static int32_t hello_test(jce_call_t *call, int32_t id, jce_str_t s,
                          jce_str_t *r, Test_Pair *p) {
    *r = cat3(call, JCE_STR_LIT("hi "), s, JCE_STR_LIT(""));
    char *up = jce_arena_alloc(call->arena, s.len ? s.len : 1);
    if (!up) return JCE_RPC_UNKNOWN_ERR;
    for (uint32_t i = 0; i < s.len; i++)
        up[i] = (char)toupper((unsigned char)s.data[i]);
    p->a = (int32_t)((uint32_t)id * 2u);
    p->b = (jce_str_t){up, s.len};
    p->c = Test_GREEN;
    return 0;
}

static void hello_ping(jce_call_t *call) { (void)call; }

static const Test_Hello_impl hello_impl = {
    .testHello = hello_test,
    .ping = hello_ping,
};

/* ---- connections ---- */

typedef struct conn {
    int fd;
    uint8_t *in;
    size_t in_len, in_cap;
    jce_out_t out;
    size_t out_sent;
} conn_t;

static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

static void conn_close(conn_t *c) {
    close(c->fd);
    free(c->in);
    jce_out_free(&c->out);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

/* Sends what is pending; returns -1 when the peer is gone. */
static int conn_flush(conn_t *c) {
    while (c->out_sent < c->out.len) {
        ssize_t w = send(c->fd, c->out.buf + c->out_sent,
                         c->out.len - c->out_sent, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        c->out_sent += (size_t)w;
    }
    jce_out_reset(&c->out);
    c->out_sent = 0;
    return 0;
}

/* Runs every whole frame in the input buffer; -1 closes the connection. */
static int conn_process(conn_t *c, trpc_server_t *srv, jce_out_t *reply) {
    size_t off = 0;
    int rc = 0;
    while (rc == 0) {
        uint32_t flen = 0;
        int st =
            trpc_frame_check(c->in + off, c->in_len - off, MAX_FRAME, &flen);
        if (st == 0) break;
        if (st < 0 ||
            trpc_server_handle(srv, c->in + off, flen, c, reply) < 0) {
            rc = -1;
            break;
        }
        jce_out_raw(&c->out, reply->buf, reply->len);
        if (c->out.err) rc = -1;
        off += flen;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return rc;
}

static int conn_read(conn_t *c, trpc_server_t *srv, jce_out_t *reply) {
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 16384;
            if (cap > MAX_FRAME + 65536) cap = MAX_FRAME + 65536;
            if (cap <= c->in_len) return -1;
            uint8_t *p = realloc(c->in, cap);
            if (!p) return -1;
            c->in = p;
            c->in_cap = cap;
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r == 0) return -1;
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return -1;
        }
        c->in_len += (size_t)r;
        if (conn_process(c, srv, reply) < 0) return -1;
        if (c->out.len > MAX_PENDING_OUT) break;
    }
    return conn_flush(c);
}

/* ---- main loop ---- */

static int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 128) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int bound_port(int fd) {
    struct sockaddr_in a;
    socklen_t n = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &n) < 0) return -1;
    return ntohs(a.sin_port);
}

static void accept_all(int lfd, conn_t *conns) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int slot = -1;
        for (int i = 0; i < MAX_CONNS && slot < 0; i++)
            if (conns[i].fd < 0) slot = i;
        if (slot < 0) {
            close(fd);
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[slot].fd = fd;
        jce_out_init(&conns[slot].out, JCE_POLICY_CPP);
    }
}

static int serve(int lfd, trpc_server_t *srv) {
    static conn_t conns[MAX_CONNS];
    struct pollfd pfd[MAX_CONNS + 2];
    int idx[MAX_CONNS + 2];
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    for (int i = 0; i < MAX_CONNS; i++) conns[i].fd = -1;

    while (!stopping) {
        int n = 0;
        pfd[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
        for (int i = 0; i < MAX_CONNS; i++) {
            conn_t *c = &conns[i];
            if (c->fd < 0) continue;
            short ev = c->out.len > MAX_PENDING_OUT ? 0 : POLLIN;
            if (c->out_sent < c->out.len) ev |= POLLOUT;
            idx[n] = i;
            pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
        }
        if (poll(pfd, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (pfd[1].revents) {
            char b[256];
            ssize_t r = read(STDIN_FILENO, b, sizeof b);
            if (r <= 0 && !(r < 0 && errno == EINTR)) break;
        }
        for (int k = 2; k < n; k++) {
            conn_t *c = &conns[idx[k]];
            short re = pfd[k].revents;
            int rc = 0;
            if (re & POLLOUT) rc = conn_flush(c);
            if (rc == 0 && (re & (POLLIN | POLLHUP | POLLERR)))
                rc = conn_read(c, srv, &reply);
            if (rc < 0) conn_close(c);
        }
        if (pfd[0].revents & POLLIN) accept_all(lfd, conns);
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (conns[i].fd >= 0) conn_close(&conns[i]);
    jce_out_free(&reply);
    return 0;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: poll must return */
    /* Cannot fail with these valid arguments. */
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
    (void)signal(SIGPIPE, SIG_IGN);

    trpc_server_t *srv = trpc_server_new();
    if (!srv ||
        trpc_server_add(srv, "herald.PushServer.PushAPIObj",
                        &herald_PushAPI_interface, &push_impl) < 0 ||
        trpc_server_add(srv, "Test.HelloServer.HelloObj", &Test_Hello_interface,
                        &hello_impl) < 0) {
        fprintf(stderr, "trpc_test_server: cannot set up the server\n");
        return 1;
    }
    int lfd = listen_on(port);
    if (lfd < 0) {
        perror("trpc_test_server: listen");
        trpc_server_free(srv);
        return 1;
    }
    printf("listening %d\n", bound_port(lfd));
    fflush(stdout);
    int rc = serve(lfd, srv);
    close(lfd);
    trpc_server_free(srv);
    return rc;
}
