/* Socket helpers over loopback: listen on an ephemeral port, connect from a
 * chosen 127.0.0.x source, accept, SO_REUSEPORT listeners, errors, and the
 * spare-descriptor answer to EMFILE. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/net.h"
#include "test.h"

static bool has_flag(int fd, int getcmd, int flag) {
    int f = fcntl(fd, getcmd);
    return f >= 0 && (f & flag);
}

/* Accepts, waiting up to 2 s for a connection to arrive. */
static int accept_wait(int lfd, int *fd, struct sockaddr_storage *peer) {
    for (int i = 0; i < 200; i++) {
        int rc = net_accept(lfd, fd, peer);
        if (rc != -EAGAIN) return rc;
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        poll(&p, 1, 10);
    }
    return -ETIMEDOUT;
}

TEST(listen_on_ephemeral_port_is_nonblocking_cloexec) {
    int lfd = -1;
    CHECK_EQ_INT(net_listen_tcp("127.0.0.1", 0, 16, false, &lfd), 0);
    int port = net_local_port(lfd);
    CHECK(port > 0 && port < 65536);
    CHECK(has_flag(lfd, F_GETFL, O_NONBLOCK));
    CHECK(has_flag(lfd, F_GETFD, FD_CLOEXEC));
    int fd;
    CHECK_EQ_INT(net_accept(lfd, &fd, NULL), -EAGAIN);
    close(lfd);
}

TEST(connect_from_chosen_source_and_accept) {
    int lfd = -1, cfd = -1, sfd = -1;
    CHECK_EQ_INT(net_listen_tcp("127.0.0.1", 0, 16, false, &lfd), 0);
    int port = net_local_port(lfd);
    CHECK_EQ_INT(net_connect_tcp("127.0.0.1", port, "127.0.0.2", false, &cfd),
                 0);
    CHECK(!has_flag(cfd, F_GETFL, O_NONBLOCK));
    struct sockaddr_storage peer;
    CHECK_EQ_INT(accept_wait(lfd, &sfd, &peer), 0);
    CHECK(has_flag(sfd, F_GETFL, O_NONBLOCK));
    CHECK(has_flag(sfd, F_GETFD, FD_CLOEXEC));
    char addr[64];
    net_addr_str(&peer, addr, sizeof addr);
    CHECK(strncmp(addr, "127.0.0.2:", 10) == 0);
    CHECK_EQ_INT(net_peer_port(sfd), net_local_port(cfd));
    CHECK_EQ_INT(net_peer_port(cfd), port);
    /* Bytes flow both ways. */
    char buf[8];
    CHECK_EQ_INT(write(cfd, "ping", 4), 4);
    struct pollfd p = {.fd = sfd, .events = POLLIN};
    CHECK_EQ_INT(poll(&p, 1, 2000), 1);
    CHECK_EQ_INT(read(sfd, buf, sizeof buf), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    close(cfd), close(sfd), close(lfd);
}

TEST(nonblocking_connect_completes) {
    int lfd = -1, cfd = -1, sfd = -1;
    CHECK_EQ_INT(net_listen_tcp("127.0.0.1", 0, 16, false, &lfd), 0);
    CHECK_EQ_INT(net_connect_tcp("127.0.0.1", net_local_port(lfd), "127.0.0.3",
                                 true, &cfd),
                 0);
    CHECK(has_flag(cfd, F_GETFL, O_NONBLOCK));
    struct pollfd p = {.fd = cfd, .events = POLLOUT};
    CHECK_EQ_INT(poll(&p, 1, 2000), 1);
    CHECK_EQ_INT(net_socket_error(cfd), 0);
    CHECK_EQ_INT(accept_wait(lfd, &sfd, NULL), 0);
    close(cfd), close(sfd), close(lfd);
}

TEST(reuseport_listeners_share_a_port) {
    int a = -1, b = -1, c = -1;
    CHECK_EQ_INT(net_listen_tcp("127.0.0.1", 0, 64, true, &a), 0);
    int port = net_local_port(a);
    CHECK_EQ_INT(net_listen_tcp("127.0.0.1", port, 64, true, &b), 0);
    CHECK_EQ_INT(net_local_port(b), port);
    /* Without SO_REUSEPORT the port is taken. */
    CHECK_EQ_INT(net_listen_tcp("127.0.0.1", port, 64, false, &c), -EADDRINUSE);
    /* The kernel spreads connections over both by 4-tuple hash; with 32 of
     * them, one listener getting none has probability 2^-31. */
    int cl[32], got_a = 0, got_b = 0;
    for (int i = 0; i < 32; i++)
        CHECK_EQ_INT(net_connect_tcp("127.0.0.1", port, NULL, false, &cl[i]),
                     0);
    for (int tries = 0; got_a + got_b < 32 && tries < 200; tries++) {
        struct pollfd p[2] = {{.fd = a, .events = POLLIN},
                              {.fd = b, .events = POLLIN}};
        poll(p, 2, 10);
        int fd;
        while (net_accept(a, &fd, NULL) == 0) got_a++, close(fd);
        while (net_accept(b, &fd, NULL) == 0) got_b++, close(fd);
    }
    CHECK_EQ_INT(got_a + got_b, 32);
    CHECK(got_a > 0 && got_b > 0);
    for (int i = 0; i < 32; i++) close(cl[i]);
    close(a), close(b);
}

TEST(errors_are_negative_errno) {
    int lfd = -1, fd = -1;
    CHECK_EQ_INT(net_listen_tcp("127.0.0.1", 0, 16, false, &lfd), 0);
    int port = net_local_port(lfd);
    close(lfd); /* now nobody listens there */
    CHECK_EQ_INT(net_connect_tcp("127.0.0.1", port, NULL, false, &fd),
                 -ECONNREFUSED);
    CHECK_EQ_INT(net_listen_tcp("127.0.0.1", 70000, 16, false, &fd), -EINVAL);
    CHECK_EQ_INT(net_listen_tcp("not an address", 0, 16, false, &fd),
                 -EADDRNOTAVAIL);
    CHECK_EQ_INT(net_listen_tcp("192.0.2.1", 0, 16, false, &fd),
                 -EADDRNOTAVAIL); /* not ours */
    CHECK_EQ_INT(net_local_port(-1), -EBADF);
}

TEST(socket_options) {
    int lfd = -1, cfd = -1;
    CHECK_EQ_INT(net_listen_tcp("127.0.0.1", 0, 16, false, &lfd), 0);
    CHECK_EQ_INT(
        net_connect_tcp("127.0.0.1", net_local_port(lfd), NULL, false, &cfd),
        0);
    CHECK_EQ_INT(net_set_nodelay(cfd, true), 0);
    int v = 0;
    socklen_t len = sizeof v;
    CHECK_EQ_INT(getsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    CHECK(v != 0);
    CHECK_EQ_INT(net_set_sndbuf(cfd, 8192), 0);
    CHECK_EQ_INT(getsockopt(cfd, SOL_SOCKET, SO_SNDBUF, &v, &len), 0);
    CHECK_EQ_INT(v, 16384); /* the kernel doubles it for bookkeeping */
    CHECK_EQ_INT(net_set_rcvbuf(cfd, 8192), 0);
    CHECK_EQ_INT(getsockopt(cfd, SOL_SOCKET, SO_RCVBUF, &v, &len), 0);
    CHECK_EQ_INT(v, 16384);
    CHECK_EQ_INT(net_set_keepalive(cfd, 30), 0);
    CHECK_EQ_INT(getsockopt(cfd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len), 0);
    CHECK_EQ_INT(v, 30);
    CHECK_EQ_INT(net_set_nonblock(cfd, true), 0);
    CHECK(has_flag(cfd, F_GETFL, O_NONBLOCK));
    CHECK_EQ_INT(net_set_nonblock(cfd, false), 0);
    CHECK(!has_flag(cfd, F_GETFL, O_NONBLOCK));
    close(cfd), close(lfd);
}

/* With the descriptor table full, net_accept refuses the pending
 * connection (the client sees it closed) instead of leaving it queued for a
 * level-triggered loop to spin on. */
TEST(emfile_refuses_instead_of_spinning) {
    int lfd = -1, cfd = -1, fd;
    CHECK_EQ_INT(net_listen_tcp("127.0.0.1", 0, 16, false, &lfd), 0);
    CHECK_EQ_INT(net_accept(lfd, &fd, NULL), -EAGAIN); /* opens the spare */
    CHECK_EQ_INT(
        net_connect_tcp("127.0.0.1", net_local_port(lfd), NULL, false, &cfd),
        0);
    struct rlimit old;
    CHECK_EQ_INT(getrlimit(RLIMIT_NOFILE, &old), 0);
    int fill[64], nfill = 0;
    int top = open("/dev/null", O_RDONLY | O_CLOEXEC); /* lowest free fd */
    CHECK(top >= 0);
    close(top);
    struct rlimit lim = {.rlim_cur = (rlim_t)top + 8, .rlim_max = old.rlim_max};
    CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &lim), 0);
    while (nfill < 64) {
        int f = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (f < 0) break;
        fill[nfill++] = f;
    }
    int rc = accept_wait(lfd, &fd, NULL);
    for (int i = 0; i < nfill; i++) close(fill[i]);
    CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &old), 0);
    CHECK_EQ_INT(rc, -EMFILE);
    /* The client's connection was closed by the server side. */
    struct pollfd p = {.fd = cfd, .events = POLLIN};
    CHECK_EQ_INT(poll(&p, 1, 2000), 1);
    char c;
    ssize_t n = read(cfd, &c, 1);
    CHECK(n == 0 || (n < 0 && errno == ECONNRESET));
    /* And nothing is left queued. */
    CHECK_EQ_INT(net_accept(lfd, &fd, NULL), -EAGAIN);
    close(cfd), close(lfd);
}

/* net_port_claim: the lock refuses a second claim while the first is
 * held (two processes starting at once), the probe refuses any port
 * someone listens on, even with SO_REUSEPORT (another herald's workers),
 * and closing the lock releases the claim. */
TEST(port_claim_lock_and_probe) {
    int lfd = -1, lock = -1, lock2 = -1;
    CHECK_EQ_INT(net_listen_tcp("127.0.0.1", 0, 16, true, &lfd), 0);
    int port = net_local_port(lfd);
    CHECK_EQ_INT(net_port_claim("127.0.0.1", port, &lock), -EADDRINUSE);
    CHECK_EQ_INT(net_port_claim("0.0.0.0", port, &lock), -EADDRINUSE);
    close(lfd);
    CHECK_EQ_INT(net_port_claim("127.0.0.1", port, &lock), 0);
    CHECK_EQ_INT(net_port_claim("127.0.0.1", port, &lock2), -EADDRINUSE);
    /* The claimant's own workers still bind it with SO_REUSEPORT. */
    CHECK_EQ_INT(net_listen_tcp("127.0.0.1", port, 16, true, &lfd), 0);
    close(lfd);
    close(lock);
    CHECK_EQ_INT(net_port_claim("127.0.0.1", port, &lock2), 0);
    close(lock2);
}
