/*
 * gw_admit: which connections the device port takes, and how it refuses
 * the others (docs/gateway.md "Refusing connections").
 *
 * At accept, in this order: the memory watermark (--memory-high), the
 * connection cap (--max-conns), the client address's limit
 * (--max-conns-per-ip, gw_limit.c's table) and the accept rate
 * (--accept-rate, gw_limit.c's bucket).  A refused connection is not
 * closed silently: gw_conn.c keeps it for at most GW_REFUSE_MS, and its
 * first byte decides the answer here — a Kick for raw TCP, an HTTP 503 or
 * 429 for a WebSocket upgrade — with ERR_OVERLOADED (1019) or, for the
 * per-address limit, ERR_TOO_MANY_CONNS (1020), and a retry-after hint.
 * Nothing of the client's request is parsed, and no buffer is allocated
 * for it.
 */
#include <stdio.h>
#include <string.h>

#include "Protocol.h"
#include "core/clock.h"
#include "gateway/gw_int.h"
#include "ops/metrics_herald.h"
#include "ops/ops_mem.h"

int gw_refuse_code(int why) {
    return why == GW_R_PER_IP ? herald_ERR_TOO_MANY_CONNS
                              : herald_ERR_OVERLOADED;
}

/* The bucket refills within a second; the other conditions last longer,
 * and clients that all come back at once would only repeat the flood. */
int gw_refuse_retry(int why) { return why == GW_R_ACCEPT_RATE ? 1 : 5; }

const char *gw_refuse_message(int why) {
    switch (why) {
    case GW_R_MAX_CONNS: return "server at its connection limit";
    case GW_R_ACCEPT_RATE: return "too many new connections, retry later";
    case GW_R_PER_IP: return "too many connections from this address";
    case GW_R_MEMORY: return "server overloaded (memory), retry later";
    }
    return "refused";
}

void gw_refuse_count(int why) {
    static const unsigned reason[] = {
        [GW_R_MAX_CONNS] = MH_REF_MAX_CONNS,
        [GW_R_ACCEPT_RATE] = MH_REF_ACCEPT_RATE,
        [GW_R_PER_IP] = MH_REF_PER_IP,
        [GW_R_MEMORY] = MH_REF_MEMORY,
    };
    if (why > GW_R_NONE && why <= GW_R_MEMORY)
        metrics_inc(M_REFUSED, MH_REF_CONNECTION, reason[why]);
}

/* The cap, the address's limit and the rate, each given back if a later
 * one refuses. */
static int take_place(gw_worker_t *w, const struct sockaddr_storage *peer,
                      gw_ipent_t **ip) {
    gw_t *gw = w->gw;
    int why = GW_R_NONE;
    long total = atomic_fetch_add(&gw->total_conns, 1) + 1;
    int max =
        __atomic_load_n(&gw->cfg.max_conns, __ATOMIC_RELAXED); /* SIGHUP */
    if (max > 0 && total > max)
        why = GW_R_MAX_CONNS;
    else if (gw->iptab && peer &&
             gw_iptab_take(gw->iptab, (const struct sockaddr *)peer, ip) ==
                 GW_IPTAB_OVER)
        why = GW_R_PER_IP; /* other errors: admitted, not counted */
    else if (!gw_rate_take(&gw->accept_rate, clock_mono_us() * 1000))
        why = GW_R_ACCEPT_RATE;
    if (why) {
        gw_unadmit(w, *ip);
        *ip = NULL;
    }
    return why;
}

/* Cheapest check first; a client over its address's limit is refused
 * before it can spend accept-rate tokens that other clients need. */
int gw_admit(gw_worker_t *w, const struct sockaddr_storage *peer,
             gw_ipent_t **ip) {
    *ip = NULL;
    int why =
        ops_mem_over(w->gw->cfg.mem) ? GW_R_MEMORY : take_place(w, peer, ip);
    if (why) {
        atomic_fetch_add_explicit(&w->refused, 1, memory_order_relaxed);
        gw_refuse_count(why);
    }
    return why;
}

void gw_unadmit(gw_worker_t *w, gw_ipent_t *ip) {
    if (ip) gw_iptab_put(w->gw->iptab, ip);
    atomic_fetch_sub(&w->gw->total_conns, 1);
}

void gw_refuse_http(gw_conn_t *c, int why) {
    int code = gw_refuse_code(why);
    bool per_ip = why == GW_R_PER_IP;
    char body[256], buf[512];
    snprintf(body, sizeof body,
             "{\"error\":\"%s\",\"code\":%d,\"message\":\"%s\"}\n",
             gw_err_name(code), code, gw_refuse_message(why));
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Retry-After: %d\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     per_ip ? 429 : 503,
                     per_ip ? "Too Many Requests" : "Service Unavailable",
                     gw_refuse_retry(why), strlen(body), body);
    if (n > 0 && (size_t)n < sizeof buf && gw_conn_send(c, buf, (size_t)n) < 0)
        return; /* closed */
    gw_conn_linger(c, 0);
}

int gw_refuse_answer(gw_conn_t *c, uint8_t first) {
    if (first == 'Y') {
        c->state = GW_S_YYB;
        c->transport = GW_TCP;
        gw_conn_kick(c, gw_refuse_code(c->refuse),
                     gw_refuse_message(c->refuse));
    } else if (first >= 'A' && first <= 'Z') {
        gw_refuse_http(c, c->refuse);
    } else {
        gw_conn_close(c, 0); /* no protocol of ours: nothing to say */
    }
    return -1;
}
