/*
 * The push side of `herald bench` (cli_bench.c): a publisher per target
 * (herald's push API, Mosquitto, Nchan's publisher location) over a small
 * blocking HTTP/MQTT client, and the two phases that push while the
 * workers listen: broadcast fan-out and unicast latency.  Kept apart from
 * the options and the worker processes because it is the one part that
 * speaks each target's publishing protocol.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench_stat.h"
#include "bench/bench_wire.h"
#include "cli/cli_bench_int.h"
#include "core/clock.h"
#include "core/net.h"

/* ---- publishers ---------------------------------------------------------------- */

typedef struct hconn {
    int fd;
    char buf[8192];
    size_t have;
    bool busy;
} hconn_t;

static int hconn_open(hconn_t *h, const char *host, int port, bool nonblock) {
    h->have = 0;
    h->busy = false;
    int rc = net_connect_tcp(host, port, NULL, false, &h->fd);
    if (rc) return rc;
    net_set_nodelay(h->fd, true);
    struct timeval tv = {10, 0};
    setsockopt(h->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return nonblock ? net_set_nonblock(h->fd, true) : 0;
}

/* Consumes one whole response from h->buf if there is one: its status, 0
 * if incomplete, -1 if malformed. */
static int hconn_take(hconn_t *h) {
    bench_http_rsp_t r;
    int rc = bench_http_head((const uint8_t *)h->buf, h->have, &r);
    if (rc <= 0) return rc;
    size_t total;
    if (r.chunked) {
        const char *end =
            memmem(h->buf + r.head_len, h->have - r.head_len, "0\r\n\r\n", 5);
        if (!end) return h->have == sizeof h->buf ? -1 : 0;
        total = (size_t)(end + 5 - h->buf);
    } else {
        total =
            r.head_len + (size_t)(r.content_length > 0 ? r.content_length : 0);
        if (total > sizeof h->buf) return -1;
        if (h->have < total) return 0;
    }
    memmove(h->buf, h->buf + total, h->have - total);
    h->have -= total;
    return r.status;
}

/* Blocking request/response on a keep-alive connection: the status or -1. */
static int hconn_call(hconn_t *h, const char *req, size_t n) {
    if (send(h->fd, req, n, MSG_NOSIGNAL) != (ssize_t)n) return -1;
    for (;;) {
        int st = hconn_take(h);
        if (st) return st;
        ssize_t r = recv(h->fd, h->buf + h->have, sizeof h->buf - h->have, 0);
        if (r <= 0) return -1;
        h->have += (size_t)r;
    }
}

typedef struct publisher {
    hconn_t h;
    char host[80];
} publisher_t;

static int pub_open(publisher_t *p, const bench_opts_t *o) {
    snprintf(p->host, sizeof p->host, "%s:%d", o->api_host, o->api_port);
    if (o->target != BENCH_MQTT)
        return hconn_open(&p->h, o->api_host, o->api_port, false);
    int rc = hconn_open(&p->h, o->server_host, o->server_port, false);
    if (rc) return rc;
    uint8_t pkt[128];
    size_t n = bench_mqtt_connect(pkt, sizeof pkt, "bench-publisher", 600);
    if (send(p->h.fd, pkt, n, MSG_NOSIGNAL) != (ssize_t)n) return -EIO;
    uint8_t ack[4];
    if (recv(p->h.fd, ack, 4, MSG_WAITALL) != 4 || ack[0] != 0x20 || ack[3])
        return -EPROTO;
    return 0;
}

/* Publishes payload; 0 or -1 (with a line on stderr). */
static int pub_send(publisher_t *p, const bench_opts_t *o, const char *pl,
                    size_t n) {
    static char req[70000];
    if (o->target == BENCH_MQTT) {
        size_t k =
            bench_mqtt_publish((uint8_t *)req, sizeof req, o->topic, pl, n);
        return k && send(p->h.fd, req, k, MSG_NOSIGNAL) == (ssize_t)k ? 0 : -1;
    }
    size_t k;
    int st;
    if (o->target == BENCH_NCHAN) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", o->pub_path, o->topic);
        k = bench_http_post(req, sizeof req, p->host, path, NULL, "text/plain",
                            pl, n);
    } else {
        char body[66000];
        int bn =
            snprintf(body, sizeof body,
                     "{\"payload\":\"%s\",\"ttl\":0,\"needAck\":false}", pl);
        k = bench_http_post(req, sizeof req, p->host, "/v1/push/online", o->key,
                            "application/json", body, (size_t)bn);
    }
    st = k ? hconn_call(&p->h, req, k) : -1;
    if (st < 200 || st > 299) {
        fprintf(stderr, "herald bench: publish answered %d\n", st);
        return -1;
    }
    return 0;
}

/* ---- phases ----------------------------------------------------------------------- */

/* CPU time of all workers: the load generator's share of the machine. */
static long long workers_cpu_ns(const run_t *R) {
    long long sum = 0;
    for (long i = 0; i < R->nw; i++) {
        long long ns = bench_proc_cpu_ns(R->w[i].pid);
        if (ns < 0) return -1;
        sum += ns;
    }
    return sum;
}

static long g_wait_msg;
static bool msg_done(const run_t *R) {
    long need = 0;
    for (long i = 0; i < R->nw; i++) need += R->w[i].ready > 0;
    return R->m_done[g_wait_msg] >= need;
}

void cli_bench_broadcast_phase(run_t *R) {
    bench_opts_t *o = R->o;
    publisher_t p;
    if (pub_open(&p, o) != 0) {
        fprintf(stderr, "herald bench: cannot reach the publisher at %s:%d\n",
                o->target == BENCH_MQTT ? o->server_host : o->api_host,
                o->target == BENCH_MQTT ? o->server_port : o->api_port);
        return;
    }
    char pl[65536];
    long long g0 = workers_cpu_ns(R);
    for (long m = 0; m < o->msgs; m++) {
        size_t n = bench_payload(pl, sizeof pl, (size_t)o->payload,
                                 BENCH_MARK_BCAST, (uint64_t)m);
        R->t_pub[m] = clock_mono_us();
        if (pub_send(&p, o, pl, n) != 0) break;
        g_wait_msg = m;
        cli_bench_pump(R, o->timeout_ms, msg_done);
        /* A short gap so one message's tail never overlaps the next. */
        usleep(100000);
    }
    long long g1 = workers_cpu_ns(R);
    R->gen_ns = g0 < 0 || g1 < 0 ? -1 : g1 - g0;
    close(p.h.fd);
}

static bool never(const run_t *R) {
    (void)R;
    return false;
}

/* Unicast at a fixed rate over a few keep-alive connections, each with
 * one request in flight; latency is measured by the device (receipt time -
 * the send time written into the payload). */
void cli_bench_unicast_phase(run_t *R) {
    enum { NH = 16 };
    bench_opts_t *o = R->o;
    hconn_t *hs = calloc(NH, sizeof *hs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    char host[80], pl[65536], body[66000], req[70000], dev[64];
    snprintf(host, sizeof host, "%s:%d", o->api_host, o->api_port);
    int nh = 0;
    for (int i = 0; hs && ep >= 0 && i < NH; i++) {
        if (hconn_open(&hs[nh], o->api_host, o->api_port, true) != 0) continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)nh};
        epoll_ctl(ep, EPOLL_CTL_ADD, hs[nh].fd, &ev);
        nh++;
    }
    unsigned seed = (unsigned)clock_mono_us();
    R->uni_t0 = clock_mono_us();
    uint64_t end = R->uni_t0 + (uint64_t)o->uni_secs * 1000000u;
    for (;;) {
        uint64_t now = clock_mono_us();
        if (now >= end) break;
        long due = (long)((now - R->uni_t0) * (uint64_t)o->uni_rate / 1000000u);
        for (int i = 0; i < nh && R->uni_sent < due; i++) {
            if (hs[i].busy) continue;
            long d = (long)(rand_r(&seed) % (unsigned)o->conns);
            bench_device_id(dev, sizeof dev, d);
            size_t n = bench_payload(pl, sizeof pl, (size_t)o->payload,
                                     BENCH_MARK_UNI, clock_mono_us());
            int bn = snprintf(body, sizeof body,
                              "{\"deviceId\":\"%s\",\"payload\":\"%.*s\","
                              "\"ttl\":0,\"needAck\":false}",
                              dev, (int)n, pl);
            size_t k =
                bench_http_post(req, sizeof req, host, "/v1/push/device",
                                o->key, "application/json", body, (size_t)bn);
            if (send(hs[i].fd, req, k, MSG_NOSIGNAL) != (ssize_t)k) {
                R->uni_err++;
                continue;
            }
            hs[i].busy = true;
            R->uni_sent++;
        }
        struct epoll_event evs[NH];
        int ne = epoll_wait(ep, evs, NH, 1);
        for (int k = 0; k < ne; k++) {
            hconn_t *h = &hs[evs[k].data.u32];
            ssize_t r =
                recv(h->fd, h->buf + h->have, sizeof h->buf - h->have, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                epoll_ctl(ep, EPOLL_CTL_DEL, h->fd, NULL);
                h->busy = true; /* never used again */
                R->uni_err++;
                continue;
            }
            h->have += (size_t)r;
            int st = hconn_take(h);
            if (st) {
                h->busy = false;
                if (st >= 200 && st < 300)
                    R->uni_ok++;
                else
                    R->uni_err++;
            }
        }
        /* Drain the workers' pipes so they never block on a full pipe. */
        cli_bench_pump(R, 0, never);
    }
    R->uni_t1 = clock_mono_us();
    for (int i = 0; i < nh; i++) close(hs[i].fd);
    if (ep >= 0) close(ep);
    free(hs);
    usleep(500000); /* let the last pushes arrive */
}
