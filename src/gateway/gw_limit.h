/*
 * gw_limit: the device port's admission limits, shared by every worker and
 * free of sockets (tests drive them directly).
 *
 *   gw_rate_t    the accept-rate limit (`--accept-rate N`, `--accept-burst
 *                B`): a token bucket in its GCRA form, one atomic word
 *                updated by compare-and-swap, so workers take tokens
 *                without a lock.
 *   gw_iptab_t   connections per client address (`--max-conns-per-ip N`).
 *                The workers listen with SO_REUSEPORT, so one address's
 *                connections land on different workers: the count lives in
 *                one table of 64 stripes, each a small chained hash table
 *                under its own mutex (taken once at accept and once at
 *                close, never on the delivery path).  IPv4 addresses count
 *                one by one (IPv4-mapped IPv6 ones as the IPv4 address);
 *                IPv6 addresses count per /64, the block a carrier hands
 *                one subscriber.  The hash is keyed with a random seed, so
 *                a client cannot choose addresses that pile up in one
 *                chain.
 */
#ifndef HERALD_GW_LIMIT_H
#define HERALD_GW_LIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- accept rate ------------------------------------------------------------ */

typedef struct gw_rate {
    _Atomic uint64_t tat; /* theoretical arrival time of the next take, ns */
    uint64_t interval;    /* ns per token; 0 = no limit */
    uint64_t tolerance;   /* (burst - 1) * interval */
} gw_rate_t;

/* per_s <= 0: no limit.  burst < 1: one second's worth (per_s), at least
 * 1. */
void gw_rate_init(gw_rate_t *r, double per_s, double burst);
/* Takes one token at monotonic time now_ns; false when the bucket is
 * empty.  Any thread. */
bool gw_rate_take(gw_rate_t *r, uint64_t now_ns);

/* ---- connections per address ----------------------------------------------- */

typedef struct gw_iptab gw_iptab_t;
typedef struct gw_ipent gw_ipent_t; /* one address's count */

enum { GW_IPTAB_OVER = 1 };

/* limit: connections per address (> 0).  NULL on out-of-memory. */
gw_iptab_t *gw_iptab_new(uint32_t limit);
void gw_iptab_free(gw_iptab_t *t);
/* Counts one more connection from sa (AF_INET or AF_INET6).  0 with *out
 * set (give it back with gw_iptab_put), GW_IPTAB_OVER when the address is
 * at its limit, or -ENOMEM / -EAFNOSUPPORT (*out NULL: not counted). */
int gw_iptab_take(gw_iptab_t *t, const struct sockaddr *sa, gw_ipent_t **out);
/* One connection of e's address ended; e may be freed. */
void gw_iptab_put(gw_iptab_t *t, gw_ipent_t *e);
/* Connections counted for sa's address now (tests, diagnostics). */
uint32_t gw_iptab_count(gw_iptab_t *t, const struct sockaddr *sa);
/* Addresses with at least one connection now. */
uint32_t gw_iptab_size(gw_iptab_t *t);

#endif
