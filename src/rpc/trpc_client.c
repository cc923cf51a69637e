/*
 * trpc_client: the blocking one-call client used by `herald push` and by
 * tests.  Works on blocking and non-blocking sockets alike (it polls
 * before each read and write), and answers that do not match the request
 * id (late replies to earlier calls) are dropped.
 */
#include "rpc/trpc.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before the deadline: -1 = forever, 0 = expired. */
static int time_left(int64_t deadline) {
    if (deadline < 0) return -1;
    int64_t left = deadline - now_ms();
    if (left <= 0) return 0;
    return left > 60000 ? 60000 : (int)left;
}

static int wait_fd(int fd, short events, int64_t deadline) {
    for (;;) {
        int left = time_left(deadline);
        if (left == 0) return TRPC_ERR_TIMEOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left);
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) return TRPC_ERR_IO;
    }
}

static int send_all(int fd, const uint8_t *p, size_t n, int64_t deadline) {
    while (n > 0) {
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc < 0) return rc;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return TRPC_ERR_IO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Appends what one read() gives to rbuf. */
static int recv_some(int fd, jce_out_t *rbuf, int64_t deadline) {
    int rc = wait_fd(fd, POLLIN, deadline);
    if (rc < 0) return rc;
    size_t off = jce_out_reserve(rbuf, 16384);
    if (rbuf->err) return TRPC_ERR_NOMEM;
    ssize_t r = recv(fd, rbuf->buf + off, 16384, 0);
    rbuf->len = off + (r > 0 ? (size_t)r : 0);
    if (r == 0) return TRPC_ERR_CLOSED;
    if (r < 0)
        return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK
                   ? 0
                   : TRPC_ERR_IO;
    return 0;
}

/* Drops the first n bytes of rbuf (an answer to some other request). */
static void consume(jce_out_t *rbuf, size_t n) {
    memmove(rbuf->buf, rbuf->buf + n, rbuf->len - n);
    rbuf->len -= n;
}

int trpc_call(int fd, const jce_out_t *request, int32_t req_id, int timeout_ms,
              jce_out_t *rbuf, jce_arena_t *a, trpc_response_t *r) {
    if (fd < 0 || !request || request->err || !rbuf || !r) return TRPC_ERR_ARG;
    int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : -1;
    jce_out_reset(rbuf);
    int rc = send_all(fd, request->buf, request->len, deadline);
    if (rc < 0) return rc;
    for (;;) {
        uint32_t flen = 0;
        rc = trpc_frame_check(rbuf->buf, rbuf->len, 0, &flen);
        if (rc < 0) return rc;
        if (rc == 0) {
            rc = recv_some(fd, rbuf, deadline);
            if (rc < 0) return rc;
            continue;
        }
        /* Views in *r point at the start of rbuf, which stays put. */
        rc = trpc_response_decode(rbuf->buf, flen, a, r);
        if (rc < 0) return rc;
        if (r->req_id == req_id) return 0;
        consume(rbuf, flen);
    }
}
