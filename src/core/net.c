/*
 * net: see net.h.  Addresses go through getaddrinfo with AI_NUMERICSERV, so
 * nothing here ever waits on DNS for a numeric host.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/net.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static int resolve(const char *host, int port, bool passive,
                   struct addrinfo **res) {
    if (port < 0 || port > 65535) return -EINVAL;
    char serv[8];
    snprintf(serv, sizeof serv, "%d", port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
    };
    if (!host || !*host) {
        host = passive ? "0.0.0.0" : "127.0.0.1";
        hints.ai_family = AF_INET;
    }
    int rc = getaddrinfo(host, serv, &hints, res);
    if (rc == EAI_SYSTEM) return errno ? -errno : -EADDRNOTAVAIL;
    if (rc == EAI_MEMORY) return -ENOMEM;
    return rc ? -EADDRNOTAVAIL : 0;
}

static int set_int_opt(int fd, int level, int opt, int v) {
    return setsockopt(fd, level, opt, &v, sizeof v) < 0 ? -errno : 0;
}

static int listen_one(const struct addrinfo *ai, int backlog, bool reuseport,
                      int *fd_out) {
    int fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && reuseport) rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (rc == 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) rc = -errno;
    if (rc == 0 && listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int net_listen_tcp(const char *host, int port, int backlog, bool reuseport,
                   int *fd_out) {
    struct addrinfo *res;
    int rc = resolve(host, port, true, &res);
    if (rc < 0) return rc;
    rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = listen_one(ai, backlog, reuseport, fd_out);
        if (rc == 0) break;
    }
    freeaddrinfo(res);
    return rc;
}

static int claim_lock(const struct addrinfo *ai, int port, int *fd_out) {
    char ip[INET6_ADDRSTRLEN + 8] = "?";
    (void)getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof ip, NULL, 0,
                      NI_NUMERICHOST);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    /* sun_path[0] = 0: the abstract namespace, no file. */
    int n = snprintf(un.sun_path + 1, sizeof un.sun_path - 1,
                     "herald.port/%s:%d", ip, port);
    if (n < 0 || (size_t)n >= sizeof un.sun_path - 1) return -ENAMETOOLONG;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    socklen_t len =
        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    if (bind(fd, (struct sockaddr *)&un, len) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    *fd_out = fd;
    return 0;
}

/* Binds without SO_REUSEPORT (SO_REUSEADDR only: a connection of an
 * earlier run in TIME_WAIT is no owner) and lets go at once. */
static int claim_probe(const struct addrinfo *ai) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) rc = -errno;
    close(fd);
    return rc;
}

int net_port_claim(const char *host, int port, int *fd_out) {
    struct addrinfo *res;
    int rc = resolve(host, port, true, &res);
    if (rc < 0) return rc;
    int lock = -1;
    rc = claim_lock(res, port, &lock); /* the address listen_one binds */
    if (rc == 0 && (rc = claim_probe(res)) < 0) close(lock);
    freeaddrinfo(res);
    if (rc == 0) *fd_out = lock;
    return rc;
}

/* The spare descriptor of this thread for the EMFILE dance in net.h. */
static _Thread_local int spare_fd = -1;

static void spare_open(void) {
    if (spare_fd < 0) spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Out of descriptors: give the spare back to the kernel just long enough to
 * take the pending connection off the queue and refuse it. */
static void refuse_one(int lfd) {
    if (spare_fd < 0) return;
    close(spare_fd);
    spare_fd = -1;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) close(fd);
    spare_open();
}

int net_accept(int lfd, int *fd_out, struct sockaddr_storage *peer) {
    spare_open();
    for (;;) {
        socklen_t len = sizeof *peer;
        int fd = accept4(lfd, (struct sockaddr *)peer, peer ? &len : NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            *fd_out = fd;
            return 0;
        }
        int err = errno;
        if (err == EINTR) continue;
        if (err == EMFILE || err == ENFILE) refuse_one(lfd);
        return err == EWOULDBLOCK ? -EAGAIN : -err;
    }
}

static int bind_source(int fd, const struct addrinfo *dst,
                       const char *bind_src) {
    struct addrinfo *src;
    struct addrinfo hints = {.ai_family = dst->ai_family,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    int rc = getaddrinfo(bind_src, "0", &hints, &src);
    if (rc) return rc == EAI_MEMORY ? -ENOMEM : -EADDRNOTAVAIL;
    /* Best effort: old kernels lack it and then bind picks the port. */
    if (dst->ai_family == AF_INET)
        (void)set_int_opt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1);
    rc = bind(fd, src->ai_addr, src->ai_addrlen) < 0 ? -errno : 0;
    freeaddrinfo(src);
    return rc;
}

static int connect_one(const struct addrinfo *ai, const char *bind_src,
                       bool nonblock, int *fd_out) {
    int fd = socket(
        ai->ai_family,
        ai->ai_socktype | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) return -errno;
    int rc = bind_src ? bind_source(fd, ai, bind_src) : 0;
    if (rc == 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        rc = -errno;
        if (rc == -EINPROGRESS && nonblock) rc = 0;
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int net_connect_tcp(const char *host, int port, const char *bind_src,
                    bool nonblock, int *fd_out) {
    struct addrinfo *res;
    int rc = resolve(host, port, false, &res);
    if (rc < 0) return rc;
    rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = connect_one(ai, bind_src, nonblock, fd_out);
        if (rc == 0) break;
    }
    freeaddrinfo(res);
    return rc;
}

int net_socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
    return -err;
}

int net_set_nonblock(int fd, bool on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -errno;
    flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, flags) < 0 ? -errno : 0;
}

int net_set_nodelay(int fd, bool on) {
    return set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, on);
}

int net_set_sndbuf(int fd, int bytes) {
    return set_int_opt(fd, SOL_SOCKET, SO_SNDBUF, bytes);
}

int net_set_rcvbuf(int fd, int bytes) {
    return set_int_opt(fd, SOL_SOCKET, SO_RCVBUF, bytes);
}

int net_set_keepalive(int fd, int idle_s) {
    int rc = set_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    if (rc == 0 && idle_s > 0)
        rc = set_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_s);
    return rc;
}

static int port_of(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return -EAFNOSUPPORT;
}

int net_local_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
    return port_of(&ss);
}

int net_peer_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
    return port_of(&ss);
}

char *net_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len) {
    char ip[INET6_ADDRSTRLEN] = "?";
    if (len == 0) return buf;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(buf, len, "%s:%d", ip, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(buf, len, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
    return buf;
}
