/*
 * net: socket helpers in the manner of Redis' anet.c.  Every socket made
 * here is non-blocking (unless asked otherwise) and close-on-exec.  Every
 * function returns 0 (or a non-negative value where said) or a negative
 * errno; name resolution failures map to -EADDRNOTAVAIL.  Hosts are numeric
 * addresses or names from /etc/hosts ("localhost"); NULL or "" listens on
 * all IPv4 addresses.
 */
#ifndef HERALD_CORE_NET_H
#define HERALD_CORE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Binds and listens.  SO_REUSEADDR always; SO_REUSEPORT when asked, so
 * several worker threads or processes can each own a listener on the same
 * port and let the kernel spread connections.  port 0 picks a free port
 * (read it with net_local_port). */
int net_listen_tcp(const char *host, int port, int backlog, bool reuseport,
                   int *fd_out);

/*
 * Claims host:port for this process before listeners bind it with
 * SO_REUSEPORT (which lets any process of the same user share the port,
 * and the kernel would hand it a share of the connections).  Two checks:
 *
 *   - a lock: an abstract-namespace unix socket named after the address
 *     ("herald.port/127.0.0.1:7100"), bound by one process at a time and
 *     released by the kernel when the process dies, however it dies (no
 *     file to clean up, and it works whatever store file each uses).  It
 *     settles a race between two processes starting at once;
 *   - a probe: a bind of the same address without SO_REUSEPORT, which
 *     fails while any other socket listens there (herald or not, on this
 *     address or the wildcard).
 *
 * Two claims of different addresses on one port (0.0.0.0 and 127.0.0.1)
 * racing at the same instant can still both pass; once either listens,
 * the other's probe fails.  Returns 0 with *fd_out the lock (close it to
 * release the claim), -EADDRINUSE when taken, or another negative errno.
 */
int net_port_claim(const char *host, int port, int *fd_out);

/* Accepts one connection (non-blocking, close-on-exec) into *fd_out; peer
 * may be NULL.  -EAGAIN: none pending.  -ECONNABORTED and friends: the
 * peer left, try the next one.
 *
 * Out of descriptors (-EMFILE/-ENFILE): a level-triggered listener would be
 * reported ready forever and the loop would spin.  Each thread keeps one
 * spare descriptor (opened on its first net_accept call); on EMFILE it is
 * closed, the pending connection accepted and closed at once (the client
 * sees a reset rather than a hang), and the spare reopened.  The call still
 * returns -EMFILE so the caller can count it and stop its accept batch.
 * That is not enough on its own: another thread may take the freed number
 * before the spare is reopened, and then nothing here makes progress, so
 * listeners also pause for a back-off (ev/lpause.h). */
int net_accept(int lfd, int *fd_out, struct sockaddr_storage *peer);

/* Connects to host:port.  bind_src, if not NULL, is the local address to
 * connect from (e.g. "127.0.0.2": many test clients spread over 127.0.0.x
 * to get past the 64k ports of one source address); the port is chosen at
 * connect time (IP_BIND_ADDRESS_NO_PORT) so sources share the port space
 * efficiently.  nonblock: returns at once with the connection in progress;
 * wait for writability, then read net_socket_error().  Blocking sockets are
 * switched to non-blocking only if nonblock is set. */
int net_connect_tcp(const char *host, int port, const char *bind_src,
                    bool nonblock, int *fd_out);

/* Pending error of a socket (SO_ERROR) as a negative errno, or 0. */
int net_socket_error(int fd);

int net_set_nonblock(int fd, bool on);
int net_set_nodelay(int fd, bool on);
int net_set_sndbuf(int fd, int bytes);
int net_set_rcvbuf(int fd, int bytes);
/* TCP keepalive with the given idle seconds before the first probe. */
int net_set_keepalive(int fd, int idle_s);

/* Local / peer port of a bound socket (>= 0) or negative errno. */
int net_local_port(int fd);
int net_peer_port(int fd);

/* "1.2.3.4:567" / "[::1]:567" into buf (NUL-terminated, truncated to len);
 * returns buf. */
char *net_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
