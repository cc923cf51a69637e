/*
 * `herald bench`: the load generator (bench/README.md).  N device
 * connections over P worker processes (bench_client.c), then:
 *
 *   connect + auth rate    first connect() to last auth ok, all workers;
 *   idle memory            the server's VmRSS / Private (smaps_rollup)
 *                          before connecting and after all are connected
 *                          and settled, per connection; the kernel's TCP
 *                          pages (/proc/net/sockstat, both ends) apart;
 *   broadcast fan-out      M messages one at a time: publish time to the
 *                          last device's receipt, deliveries/s, and server
 *                          CPU (utime+stime of --pid) per delivery;
 *   unicast latency        R pushes/s for S s to random devices through
 *                          POST /v1/push/device, device receipt - send.
 *
 * The same workload drives Mosquitto (MQTT 3.1.1) and nginx+Nchan
 * (WebSocket), so bench/run.sh can measure the three side by side.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench_stat.h"
#include "bench/bench_wire.h"
#include "cli/cli.h"
#include "core/clock.h"
#include "core/net.h"

/* ---- options ----------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
        "usage: herald bench --target herald|mosquitto|nchan [options]\n"
        "  --conns N           device connections (default 1000)\n"
        "  --procs P           worker processes (default: 2, more if N needs)\n"
        "  --msgs M            broadcast messages (default 5; 0 = none)\n"
        "  --payload BYTES     payload size (default 64)\n"
        "  --server HOST:PORT  device port / MQTT port / nginx port\n"
        "                      (default 127.0.0.1:7100, :1883, :8090)\n"
        "  --api HOST:PORT     herald push API (default 127.0.0.1:8080);\n"
        "                      nchan: publisher host (default = --server)\n"
        "  --key KEY --app APP --secret S   herald API key, app, app secret\n"
        "  --ws                herald over WebSocket instead of raw TCP\n"
        "  --topic T           MQTT topic / Nchan channel (default bench)\n"
        "  --sub-path P --pub-path P  Nchan locations (default /sub /pub)\n"
        "  --unicast-rate R --unicast-secs S   herald unicast phase\n"
        "  --pid PID[,PID..]   server processes to sample (memory, CPU)\n"
        "  --inflight K        handshakes in flight per worker (default 256;\n"
        "                      mosquitto 32)\n"
        "  --timeout-ms T      wait per broadcast message (default 10000)\n"
        "  --settle-ms T       pause before the idle memory sample (2000)\n");
}

static int parse_hostport(const char *s, char *host, size_t cap, int *port) {
    const char *c = strrchr(s, ':');
    if (!c || (size_t)(c - s) >= cap || c == s)
        return -1;
    long p;
    if (cli_parse_long(c + 1, 1, 65535, &p) != 0)
        return -1;
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = '\0';
    *port = (int)p;
    return 0;
}

static int parse_pids(bench_opts_t *o, const char *s) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    o->npids = 0;
    for (char *save, *t = strtok_r(buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        long v;
        if (o->npids == BENCH_MAX_PIDS || cli_parse_long(t, 1, 1 << 30, &v))
            return -1;
        o->pids[o->npids++] = (int)v;
    }
    return o->npids ? 0 : -1;
}

static int parse_target(const char *s) {
    if (!strcmp(s, "herald"))
        return BENCH_HERALD;
    if (!strcmp(s, "mosquitto") || !strcmp(s, "mqtt"))
        return BENCH_MQTT;
    if (!strcmp(s, "nchan"))
        return BENCH_NCHAN;
    return 0;
}

static const struct num_opt {
    const char *name;
    size_t off;
    long lo, hi;
} num_opts[] = {
    {"--conns", offsetof(bench_opts_t, conns), 1, 10000000},
    {"--procs", offsetof(bench_opts_t, procs), 1, 64},
    {"--msgs", offsetof(bench_opts_t, msgs), 0, 100000},
    {"--payload", offsetof(bench_opts_t, payload), 1, 60000},
    {"--unicast-rate", offsetof(bench_opts_t, uni_rate), 0, 1000000},
    {"--unicast-secs", offsetof(bench_opts_t, uni_secs), 0, 3600},
    {"--inflight", offsetof(bench_opts_t, inflight), 1, 100000},
    {"--timeout-ms", offsetof(bench_opts_t, timeout_ms), 1, 600000},
    {"--settle-ms", offsetof(bench_opts_t, settle_ms), 0, 600000},
};

static void opts_defaults(bench_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->conns = 1000;
    o->msgs = 5;
    o->payload = 64;
    o->topic = "bench";
    o->sub_path = "/sub";
    o->pub_path = "/pub";
    o->timeout_ms = 10000;
    o->settle_ms = 2000;
    snprintf(o->server_host, sizeof o->server_host, "127.0.0.1");
    snprintf(o->api_host, sizeof o->api_host, "127.0.0.1");
}

/* Returns 0, 1 (help printed) or -1 (error printed). */
static int parse_args(bench_opts_t *o, int argc, char **argv) {
    const char *server = NULL, *api = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--ws")) {
            o->ws = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "herald bench: %s needs a value\n", a);
            return -1;
        }
        i++;
        size_t k;
        for (k = 0; k < sizeof num_opts / sizeof num_opts[0]; k++)
            if (!strcmp(a, num_opts[k].name))
                break;
        if (k < sizeof num_opts / sizeof num_opts[0]) {
            long *dst = (long *)(void *)((char *)o + num_opts[k].off);
            if (cli_parse_long(v, num_opts[k].lo, num_opts[k].hi, dst)) {
                fprintf(stderr, "herald bench: bad %s '%s'\n", a, v);
                return -1;
            }
        } else if (!strcmp(a, "--target")) {
            if (!(o->target = parse_target(v))) {
                fprintf(stderr, "herald bench: unknown target '%s'\n", v);
                return -1;
            }
        } else if (!strcmp(a, "--server")) {
            server = v;
        } else if (!strcmp(a, "--api")) {
            api = v;
        } else if (!strcmp(a, "--key")) {
            o->key = v;
        } else if (!strcmp(a, "--app")) {
            o->app = v;
        } else if (!strcmp(a, "--secret")) {
            o->secret = v;
        } else if (!strcmp(a, "--topic")) {
            o->topic = v;
        } else if (!strcmp(a, "--sub-path")) {
            o->sub_path = v;
        } else if (!strcmp(a, "--pub-path")) {
            o->pub_path = v;
        } else if (!strcmp(a, "--pid")) {
            if (parse_pids(o, v)) {
                fprintf(stderr, "herald bench: bad --pid '%s'\n", v);
                return -1;
            }
        } else {
            fprintf(stderr, "herald bench: unknown option '%s'\n", a);
            return -1;
        }
    }
    if (!o->target) {
        usage(stderr);
        return -1;
    }
    o->server_port = o->target == BENCH_HERALD ? 7100
                     : o->target == BENCH_MQTT ? 1883 : 8090;
    if (server && parse_hostport(server, o->server_host,
                                 sizeof o->server_host, &o->server_port)) {
        fprintf(stderr, "herald bench: bad --server '%s'\n", server);
        return -1;
    }
    o->api_port = 8080;
    if (o->target == BENCH_NCHAN) {
        snprintf(o->api_host, sizeof o->api_host, "%s", o->server_host);
        o->api_port = o->server_port;
    }
    if (api && parse_hostport(api, o->api_host, sizeof o->api_host,
                              &o->api_port)) {
        fprintf(stderr, "herald bench: bad --api '%s'\n", api);
        return -1;
    }
    if (o->target == BENCH_HERALD && (!o->app || !o->secret)) {
        fprintf(stderr, "herald bench: herald needs --app and --secret\n");
        return -1;
    }
    if (o->target == BENCH_HERALD && !o->key &&
        (o->msgs || (o->uni_rate && o->uni_secs))) {
        fprintf(stderr, "herald bench: pushing needs --key\n");
        return -1;
    }
    if (!o->inflight)
        /* Mosquitto listens with a backlog of 100: more handshakes in
         * flight overflow it, and each dropped SYN costs a 1 s retry. */
        o->inflight = o->target == BENCH_MQTT ? 32 : 256;
    long need = (o->conns + BENCH_FD_PER_PROC - 1) / BENCH_FD_PER_PROC;
    if (!o->procs)
        o->procs = o->conns >= 2 ? 2 : 1;
    if (o->procs < need)
        o->procs = need;
    if (o->procs > o->conns)
        o->procs = o->conns;
    return 0;
}

/* ---- sampling the server -------------------------------------------------- */

typedef struct sample {
    long rss_kb;     /* VmRSS */
    long anon_kb;    /* RssAnon: heap and stacks, without mapped files */
    long priv_kb;    /* Private_Clean + Private_Dirty */
    long cpu_ticks;  /* utime + stime */
    long tcp_pages;  /* /proc/net/sockstat TCP mem */
    long long cpu_ns; /* schedstat of every thread; -1 if unknown */
    bool ok;
} sample_t;

static long status_field(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    size_t kl = strlen(key);
    long v = -1, sum = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl)) {
            sum += strtol(line + kl, NULL, 10);
            v = sum;
        }
    fclose(f);
    return v;
}

static long sockstat_tcp_pages(void) {
    FILE *f = fopen("/proc/net/sockstat", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f)) {
        char *m = strstr(line, " mem ");
        if (!strncmp(line, "TCP:", 4) && m)
            v = strtol(m + 5, NULL, 10);
    }
    fclose(f);
    return v;
}

static sample_t take_sample(const bench_opts_t *o) {
    sample_t s = {0, 0, 0, 0, sockstat_tcp_pages(), 0, o->npids > 0};
    for (int i = 0; i < o->npids; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/status", o->pids[i]);
        long rss = status_field(path, "VmRSS:");
        s.anon_kb += status_field(path, "RssAnon:");
        snprintf(path, sizeof path, "/proc/%d/smaps_rollup", o->pids[i]);
        long pc = status_field(path, "Private_Clean:");
        long pd = status_field(path, "Private_Dirty:");
        long cpu = bench_proc_cpu_ticks(o->pids[i]);
        long long ns = bench_proc_cpu_ns(o->pids[i]);
        s.cpu_ns = ns < 0 || s.cpu_ns < 0 ? -1 : s.cpu_ns + ns;
        if (rss < 0 || cpu < 0)
            s.ok = false;
        s.rss_kb += rss;
        s.priv_kb += (pc > 0 ? pc : 0) + (pd > 0 ? pd : 0);
        s.cpu_ticks += cpu;
    }
    return s;
}

/* ---- workers ------------------------------------------------------------------ */

typedef struct worker {
    pid_t pid;
    int up, down; /* parent's ends */
    long ready, failed, closed;
    uint64_t t_first, t_last;
    bool conn, end;
} worker_t;

typedef struct run {
    bench_opts_t *o;
    worker_t *w;
    long nw;
    uint64_t *t_pub;      /* per message: publish time */
    uint64_t *m_last;     /* per message: last receipt (final) */
    uint64_t *m_first;
    uint64_t *m_count;
    long *m_done;         /* workers done with the message */
    bench_lat_t lat;      /* unicast latencies from every worker */
    long uni_sent, uni_ok, uni_err;
    uint64_t uni_t0, uni_t1;
    long long gen_ns; /* workers' CPU over the broadcast phase; -1 unknown */
} run_t;

static int read_full(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int spawn_workers(run_t *R) {
    bench_opts_t *o = R->o;
    R->nw = o->procs;
    R->w = calloc((size_t)R->nw, sizeof *R->w);
    if (!R->w)
        return -1;
    long per = o->conns / R->nw, extra = o->conns % R->nw, lo = 0;
    for (long i = 0; i < R->nw; i++) {
        long hi = lo + per + (i < extra ? 1 : 0);
        int up[2], down[2];
        if (pipe2(up, O_CLOEXEC) || pipe2(down, O_CLOEXEC))
            return -1;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
            return -1;
        if (pid == 0) {
            close(up[0]);
            close(down[1]);
            for (long j = 0; j < i; j++) {
                close(R->w[j].up);
                close(R->w[j].down);
            }
            bench_child_run(o, (int)i, lo, hi, up[1], down[0]);
            _exit(0);
        }
        close(up[1]);
        close(down[0]);
        R->w[i] = (worker_t){.pid = pid, .up = up[0], .down = down[1]};
        lo = hi;
    }
    return 0;
}

static void on_rec(run_t *R, worker_t *w, const bench_rec_t *r) {
    switch (r->type) {
    case BENCH_REC_CONN:
        w->conn = true;
        w->ready = r->a;
        w->failed = (long)r->b;
        w->t_first = r->c;
        w->t_last = r->d;
        break;
    case BENCH_REC_DONE:
        if (r->a < R->o->msgs)
            R->m_done[r->a]++;
        break;
    case BENCH_REC_MSG:
        if (r->a < R->o->msgs) {
            R->m_count[r->a] += r->b;
            if (r->b && (!R->m_first[r->a] || r->c < R->m_first[r->a]))
                R->m_first[r->a] = r->c;
            if (r->d > R->m_last[r->a])
                R->m_last[r->a] = r->d;
        }
        break;
    case BENCH_REC_LAT: {
        size_t n = r->a;
        if (bench_lat_reserve(&R->lat, n) < 0) {
            uint32_t sink[256];
            while (n) { /* drain, losing the samples */
                size_t k = n < 256 ? n : 256;
                if (read_full(w->up, sink, k * 4))
                    break;
                n -= k;
            }
            break;
        }
        if (read_full(w->up, R->lat.v + R->lat.n, n * sizeof *R->lat.v) == 0)
            R->lat.n += n;
        break;
    }
    case BENCH_REC_END:
        w->end = true;
        w->closed = (long)r->b;
        break;
    }
}

/* Reads records for up to ms milliseconds or until done(R) holds. */
static void pump(run_t *R, long ms, bool (*done)(const run_t *)) {
    uint64_t end = clock_mono_ms() + (uint64_t)ms;
    struct pollfd pf[64];
    while (!done(R)) {
        uint64_t now = clock_mono_ms();
        if (now >= end)
            return;
        long n = R->nw < 64 ? R->nw : 64;
        for (long i = 0; i < n; i++)
            pf[i] = (struct pollfd){.fd = R->w[i].up, .events = POLLIN};
        int rc = poll(pf, (nfds_t)n, (int)(end - now));
        if (rc < 0 && errno != EINTR)
            return;
        for (long i = 0; i < n; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP)))
                continue;
            bench_rec_t r;
            if (read_full(R->w[i].up, &r, sizeof r) != 0) {
                R->w[i].conn = R->w[i].end = true; /* worker died */
                continue;
            }
            on_rec(R, &R->w[i], &r);
        }
    }
}

static bool all_conn(const run_t *R) {
    for (long i = 0; i < R->nw; i++)
        if (!R->w[i].conn)
            return false;
    return true;
}

static bool all_end(const run_t *R) {
    for (long i = 0; i < R->nw; i++)
        if (!R->w[i].end)
            return false;
    return true;
}

static long g_wait_msg;
static bool msg_done(const run_t *R) {
    long need = 0;
    for (long i = 0; i < R->nw; i++)
        need += R->w[i].ready > 0;
    return R->m_done[g_wait_msg] >= need;
}

static void tell_workers(run_t *R, char cmd) {
    for (long i = 0; i < R->nw; i++)
        if (write(R->w[i].down, &cmd, 1) != 1)
            R->w[i].end = true;
}

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
    if (rc)
        return rc;
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
    if (rc <= 0)
        return rc;
    size_t total;
    if (r.chunked) {
        const char *end = memmem(h->buf + r.head_len, h->have - r.head_len,
                                 "0\r\n\r\n", 5);
        if (!end)
            return h->have == sizeof h->buf ? -1 : 0;
        total = (size_t)(end + 5 - h->buf);
    } else {
        total = r.head_len + (size_t)(r.content_length > 0 ? r.content_length : 0);
        if (total > sizeof h->buf)
            return -1;
        if (h->have < total)
            return 0;
    }
    memmove(h->buf, h->buf + total, h->have - total);
    h->have -= total;
    return r.status;
}

/* Blocking request/response on a keep-alive connection: the status or -1. */
static int hconn_call(hconn_t *h, const char *req, size_t n) {
    if (send(h->fd, req, n, MSG_NOSIGNAL) != (ssize_t)n)
        return -1;
    for (;;) {
        int st = hconn_take(h);
        if (st)
            return st;
        ssize_t r = recv(h->fd, h->buf + h->have, sizeof h->buf - h->have, 0);
        if (r <= 0)
            return -1;
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
    if (rc)
        return rc;
    uint8_t pkt[128];
    size_t n = bench_mqtt_connect(pkt, sizeof pkt, "bench-publisher", 600);
    if (send(p->h.fd, pkt, n, MSG_NOSIGNAL) != (ssize_t)n)
        return -EIO;
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
        size_t k = bench_mqtt_publish((uint8_t *)req, sizeof req, o->topic,
                                      pl, n);
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
        int bn = snprintf(body, sizeof body,
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
        if (ns < 0)
            return -1;
        sum += ns;
    }
    return sum;
}

static void broadcast_phase(run_t *R) {
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
        if (pub_send(&p, o, pl, n) != 0)
            break;
        g_wait_msg = m;
        pump(R, o->timeout_ms, msg_done);
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
static void unicast_phase(run_t *R) {
    enum { NH = 16 };
    bench_opts_t *o = R->o;
    hconn_t *hs = calloc(NH, sizeof *hs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    char host[80], pl[65536], body[66000], req[70000], dev[64];
    snprintf(host, sizeof host, "%s:%d", o->api_host, o->api_port);
    int nh = 0;
    for (int i = 0; hs && ep >= 0 && i < NH; i++) {
        if (hconn_open(&hs[nh], o->api_host, o->api_port, true) != 0)
            continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)nh};
        epoll_ctl(ep, EPOLL_CTL_ADD, hs[nh].fd, &ev);
        nh++;
    }
    unsigned seed = (unsigned)clock_mono_us();
    R->uni_t0 = clock_mono_us();
    uint64_t end = R->uni_t0 + (uint64_t)o->uni_secs * 1000000u;
    for (;;) {
        uint64_t now = clock_mono_us();
        if (now >= end)
            break;
        long due = (long)((now - R->uni_t0) * (uint64_t)o->uni_rate / 1000000u);
        for (int i = 0; i < nh && R->uni_sent < due; i++) {
            if (hs[i].busy)
                continue;
            long d = (long)(rand_r(&seed) % (unsigned)o->conns);
            bench_device_id(dev, sizeof dev, d);
            size_t n = bench_payload(pl, sizeof pl, (size_t)o->payload,
                                     BENCH_MARK_UNI, clock_mono_us());
            int bn = snprintf(body, sizeof body,
                              "{\"deviceId\":\"%s\",\"payload\":\"%.*s\","
                              "\"ttl\":0,\"needAck\":false}",
                              dev, (int)n, pl);
            size_t k = bench_http_post(req, sizeof req, host, "/v1/push/device",
                                       o->key, "application/json", body,
                                       (size_t)bn);
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
            ssize_t r = recv(h->fd, h->buf + h->have, sizeof h->buf - h->have, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
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
        pump(R, 0, never);
    }
    R->uni_t1 = clock_mono_us();
    for (int i = 0; i < nh; i++)
        close(hs[i].fd);
    if (ep >= 0)
        close(ep);
    free(hs);
    usleep(500000); /* let the last pushes arrive */
}

/* ---- report ---------------------------------------------------------------------- */

static const char *target_name(const bench_opts_t *o) {
    return o->target == BENCH_MQTT    ? "mosquitto"
           : o->target == BENCH_NCHAN ? "nchan"
                                      : "herald";
}

/* Returns the exit code: 0, or 1 if a connection failed or a delivery is
 * missing (the numbers are then not comparable). */
static int report(run_t *R, const sample_t *s0, const sample_t *s1,
                   const sample_t *c0, const sample_t *c1) {
    bench_opts_t *o = R->o;
    long ready = 0, failed = 0, closed = 0;
    uint64_t tf = UINT64_MAX, tl = 0;
    for (long i = 0; i < R->nw; i++) {
        worker_t *w = &R->w[i];
        ready += w->ready;
        failed += w->failed;
        closed += w->closed;
        if (w->t_first && w->t_first < tf)
            tf = w->t_first;
        if (w->t_last > tl)
            tl = w->t_last;
    }
    double conn_s = tl > tf && tf != UINT64_MAX ? (double)(tl - tf) / 1e6 : 0;
    double rate = conn_s > 0 ? (double)ready / conn_s : 0;
    const char *tr = o->target == BENCH_MQTT ? "mqtt"
                     : o->target == BENCH_NCHAN || o->ws ? "ws" : "tcp";
    long tick = sysconf(_SC_CLK_TCK);
    double per = ready > 0 ? (double)ready : 1;
    printf("\n== herald bench: %s (%s), %ld connections, %ld workers ==\n",
           target_name(o), tr, o->conns, R->nw);
    printf("connect+auth      %ld ok, %ld failed, %.3f s, %.0f conn/s\n",
           ready, failed, conn_s, rate);
    double rss_b = 0, anon_b = 0, priv_b = 0, ks_b = 0;
    bool mem = s0->ok && s1->ok;
    if (mem) {
        rss_b = (double)(s1->rss_kb - s0->rss_kb) * 1024 / per;
        priv_b = (double)(s1->priv_kb - s0->priv_kb) * 1024 / per;
        anon_b = (double)(s1->anon_kb - s0->anon_kb) * 1024 / per;
        printf("server memory     RSS %ld -> %ld KiB: %.0f B/conn; RssAnon "
               "%ld -> %ld KiB: %.0f B/conn; Private (smaps_rollup) %ld -> "
               "%ld KiB: %.0f B/conn\n",
               s0->rss_kb, s1->rss_kb, rss_b, s0->anon_kb, s1->anon_kb, anon_b,
               s0->priv_kb, s1->priv_kb, priv_b);
    } else {
        printf("server memory     n/a (no --pid)\n");
    }
    ks_b = (double)(s1->tcp_pages - s0->tcp_pages) * 4096 / per;
    printf("kernel TCP memory %ld -> %ld pages: %.0f B/conn (both ends, "
           "/proc/net/sockstat)\n",
           s0->tcp_pages, s1->tcp_pages, ks_b);

    uint64_t delivered = 0, fan_max = 0, fan_sum = 0;
    long complete = 0;
    for (long m = 0; m < o->msgs; m++) {
        uint64_t f = R->m_last[m] > R->t_pub[m] ? R->m_last[m] - R->t_pub[m] : 0;
        delivered += R->m_count[m];
        if (R->m_count[m] >= (uint64_t)ready && ready) {
            complete++;
            fan_sum += f;
            if (f > fan_max)
                fan_max = f;
        }
        printf("broadcast %-3ld     %" PRIu64 "/%ld received, first %.2f ms, "
               "last %.2f ms after publish\n",
               m, R->m_count[m], ready,
               R->m_first[m] > R->t_pub[m]
                   ? (double)(R->m_first[m] - R->t_pub[m]) / 1e3 : 0,
               (double)f / 1e3);
    }
    long missing = (long)((uint64_t)ready * (uint64_t)o->msgs - delivered);
    double dps = fan_sum ? (double)(ready * complete) / ((double)fan_sum / 1e6) : 0;
    double cpu_us = -1;
    if (o->msgs && c0->ok && c1->ok && delivered)
        cpu_us = c0->cpu_ns >= 0 && c1->cpu_ns >= 0
                     ? (double)(c1->cpu_ns - c0->cpu_ns) / 1e3 / (double)delivered
                     : (double)(c1->cpu_ticks - c0->cpu_ticks) * 1e6 /
                           (double)tick / (double)delivered;
    if (o->msgs) {
        printf("fan-out           max %.2f ms, avg %.2f ms over %ld complete "
               "messages; %ld missing deliveries\n",
               (double)fan_max / 1e3,
               complete ? (double)fan_sum / 1e3 / (double)complete : 0,
               complete, missing);
        printf("deliveries/s      %.0f\n", dps);
        if (R->gen_ns >= 0 && delivered)
            printf("load generator    %.1f ms CPU over the broadcast phase "
                   "(%.2f us per delivery, on the same cores)\n",
                   (double)R->gen_ns / 1e6,
                   (double)R->gen_ns / 1e3 / (double)delivered);
        if (cpu_us >= 0)
            printf("server CPU        %.2f us per delivered message (%.1f ms "
                   "over the broadcast phase)\n", cpu_us,
                   cpu_us * (double)delivered / 1e3);
    }
    bench_lat_sort(&R->lat);
    uint32_t p50 = bench_lat_pct(&R->lat, .5), p90 = bench_lat_pct(&R->lat, .9),
             p99 = bench_lat_pct(&R->lat, .99), mx = bench_lat_pct(&R->lat, 1);
    double uni_rate = R->uni_t1 > R->uni_t0
                          ? (double)R->uni_sent / ((double)(R->uni_t1 - R->uni_t0) / 1e6)
                          : 0;
    if (R->uni_sent) {
        printf("unicast           %ld sent (%.0f/s), %ld accepted, %ld errors, "
               "%zu received\n",
               R->uni_sent, uni_rate, R->uni_ok, R->uni_err, R->lat.n);
        printf("unicast latency   p50 %u us, p90 %u us, p99 %u us, max %u us\n",
               p50, p90, p99, mx);
    }
    if (closed)
        printf("closed by server  %ld connections during the run\n", closed);
    printf("RESULT target=%s transport=%s conns=%ld procs=%ld connected=%ld "
           "failed=%ld connect_s=%.3f connect_rate=%.0f",
           target_name(o), tr, o->conns, R->nw, ready, failed, conn_s, rate);
    if (mem)
        printf(" rss_per_conn=%.0f anon_per_conn=%.0f private_per_conn=%.0f",
               rss_b, anon_b, priv_b);
    printf(" ksock_per_conn=%.0f msgs=%ld payload=%ld delivered=%" PRIu64
           " missing=%ld fanout_ms_max=%.2f deliveries_per_s=%.0f",
           ks_b, o->msgs, o->payload, delivered, missing,
           (double)fan_max / 1e3, dps);
    if (cpu_us >= 0)
        printf(" cpu_us_per_delivery=%.2f", cpu_us);
    if (o->msgs && R->gen_ns >= 0 && delivered)
        printf(" gen_cpu_us_per_delivery=%.2f",
               (double)R->gen_ns / 1e3 / (double)delivered);
    if (R->uni_sent)
        printf(" uni_sent=%ld uni_rate=%.0f uni_recv=%zu uni_p50_us=%u "
               "uni_p90_us=%u uni_p99_us=%u uni_max_us=%u",
               R->uni_sent, uni_rate, R->lat.n, p50, p90, p99, mx);
    printf(" closed=%ld\n", closed);
    fflush(stdout);
    return ready == 0 || failed || missing ? 1 : 0;
}

/* ---- main -------------------------------------------------------------------------- */

static int run_alloc(run_t *R, bench_opts_t *o) {
    memset(R, 0, sizeof *R);
    R->o = o;
    R->gen_ns = -1;
    size_t m = (size_t)(o->msgs ? o->msgs : 1);
    R->t_pub = calloc(m, sizeof *R->t_pub);
    R->m_last = calloc(m, sizeof *R->m_last);
    R->m_first = calloc(m, sizeof *R->m_first);
    R->m_count = calloc(m, sizeof *R->m_count);
    R->m_done = calloc(m, sizeof *R->m_done);
    return R->t_pub && R->m_last && R->m_first && R->m_count && R->m_done
               ? 0 : -1;
}

static void run_free(run_t *R) {
    free(R->t_pub);
    free(R->m_last);
    free(R->m_first);
    free(R->m_count);
    free(R->m_done);
    bench_lat_free(&R->lat);
    free(R->w);
}

static void stop_workers(run_t *R) {
    tell_workers(R, BENCH_CMD_QUIT);
    for (long i = 0; i < R->nw; i++) {
        close(R->w[i].down);
        close(R->w[i].up);
        int st;
        /* Workers die with the parent anyway (PDEATHSIG); wait a bounded
         * time, then kill the ones still closing sockets. */
        for (int k = 0; k < 100 && waitpid(R->w[i].pid, &st, WNOHANG) == 0; k++)
            usleep(50000);
        if (waitpid(R->w[i].pid, &st, WNOHANG) == 0) {
            kill(R->w[i].pid, SIGKILL);
            waitpid(R->w[i].pid, &st, 0);
        }
    }
}

int cli_bench(int argc, char **argv) {
    static bench_opts_t o;
    opts_defaults(&o);
    int rc = parse_args(&o, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    long lim = bench_raise_nofile();
    if (lim > 0 && o.conns / o.procs + 64 > lim)
        fprintf(stderr, "herald bench: warning: %ld connections per worker "
                "but the fd limit is %ld\n", o.conns / o.procs, lim);
    run_t R;
    if (run_alloc(&R, &o) != 0)
        return 1;
    sample_t s0 = take_sample(&o);
    if (spawn_workers(&R) != 0) {
        perror("herald bench: fork");
        run_free(&R);
        return 1;
    }
    /* Connecting is bounded: 120 s plus 1 s per 1,000 connections. */
    pump(&R, 120000 + o.conns, all_conn);
    usleep((useconds_t)o.settle_ms * 1000);
    sample_t s1 = take_sample(&o), c0 = s1, c1 = s1;
    if (o.msgs) {
        c0 = take_sample(&o);
        broadcast_phase(&R);
        c1 = take_sample(&o);
    }
    if (o.target == BENCH_HERALD && o.uni_rate && o.uni_secs)
        unicast_phase(&R);
    tell_workers(&R, BENCH_CMD_REPORT);
    pump(&R, 30000, all_end);
    rc = report(&R, &s0, &s1, &c0, &c1);
    stop_workers(&R);
    run_free(&R);
    return rc;
}
