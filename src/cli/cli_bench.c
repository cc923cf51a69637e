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
 *
 * This file holds the options, the worker processes and the run; the push
 * side is in cli_bench_push.c, sampling and the report in
 * cli_bench_report.c (shared types: cli_bench_int.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "cli/cli.h"
#include "cli/cli_bench_int.h"
#include "core/clock.h"

/* ---- options ----------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(
        f,
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
    if (!c || (size_t)(c - s) >= cap || c == s) return -1;
    long p;
    if (cli_parse_long(c + 1, 1, 65535, &p) != 0) return -1;
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
    if (!strcmp(s, "herald")) return BENCH_HERALD;
    if (!strcmp(s, "mosquitto") || !strcmp(s, "mqtt")) return BENCH_MQTT;
    if (!strcmp(s, "nchan")) return BENCH_NCHAN;
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
            if (!strcmp(a, num_opts[k].name)) break;
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
                     : o->target == BENCH_MQTT ? 1883
                                               : 8090;
    if (server && parse_hostport(server, o->server_host, sizeof o->server_host,
                                 &o->server_port)) {
        fprintf(stderr, "herald bench: bad --server '%s'\n", server);
        return -1;
    }
    o->api_port = 8080;
    if (o->target == BENCH_NCHAN) {
        snprintf(o->api_host, sizeof o->api_host, "%s", o->server_host);
        o->api_port = o->server_port;
    }
    if (api &&
        parse_hostport(api, o->api_host, sizeof o->api_host, &o->api_port)) {
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
    if (!o->procs) o->procs = o->conns >= 2 ? 2 : 1;
    if (o->procs < need) o->procs = need;
    if (o->procs > o->conns) o->procs = o->conns;
    return 0;
}

/* ---- workers ------------------------------------------------------------------ */

static int read_full(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int spawn_workers(run_t *R) {
    bench_opts_t *o = R->o;
    R->nw = o->procs;
    R->w = calloc((size_t)R->nw, sizeof *R->w);
    if (!R->w) return -1;
    long per = o->conns / R->nw, extra = o->conns % R->nw, lo = 0;
    for (long i = 0; i < R->nw; i++) {
        long hi = lo + per + (i < extra ? 1 : 0);
        int up[2], down[2];
        if (pipe2(up, O_CLOEXEC) || pipe2(down, O_CLOEXEC)) return -1;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) return -1;
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
        if (r->a < R->o->msgs) R->m_done[r->a]++;
        break;
    case BENCH_REC_MSG:
        if (r->a < R->o->msgs) {
            R->m_count[r->a] += r->b;
            if (r->b && (!R->m_first[r->a] || r->c < R->m_first[r->a]))
                R->m_first[r->a] = r->c;
            if (r->d > R->m_last[r->a]) R->m_last[r->a] = r->d;
        }
        break;
    case BENCH_REC_LAT: {
        size_t n = r->a;
        if (bench_lat_reserve(&R->lat, n) < 0) {
            uint32_t sink[256];
            while (n) { /* drain, losing the samples */
                size_t k = n < 256 ? n : 256;
                if (read_full(w->up, sink, k * 4)) break;
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
void cli_bench_pump(run_t *R, long ms, bool (*done)(const run_t *)) {
    uint64_t end = clock_mono_ms() + (uint64_t)ms;
    struct pollfd pf[64];
    while (!done(R)) {
        uint64_t now = clock_mono_ms();
        if (now >= end) return;
        long n = R->nw < 64 ? R->nw : 64;
        for (long i = 0; i < n; i++)
            pf[i] = (struct pollfd){.fd = R->w[i].up, .events = POLLIN};
        int rc = poll(pf, (nfds_t)n, (int)(end - now));
        if (rc < 0 && errno != EINTR) return;
        for (long i = 0; i < n; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP))) continue;
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
        if (!R->w[i].conn) return false;
    return true;
}

static bool all_end(const run_t *R) {
    for (long i = 0; i < R->nw; i++)
        if (!R->w[i].end) return false;
    return true;
}

static void tell_workers(run_t *R, char cmd) {
    for (long i = 0; i < R->nw; i++)
        if (write(R->w[i].down, &cmd, 1) != 1) R->w[i].end = true;
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
    return R->t_pub && R->m_last && R->m_first && R->m_count && R->m_done ? 0
                                                                          : -1;
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
    if (rc) return rc > 0 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    long lim = bench_raise_nofile();
    if (lim > 0 && o.conns / o.procs + 64 > lim)
        fprintf(stderr,
                "herald bench: warning: %ld connections per worker "
                "but the fd limit is %ld\n",
                o.conns / o.procs, lim);
    run_t R;
    if (run_alloc(&R, &o) != 0) return 1;
    sample_t s0 = cli_bench_take_sample(&o);
    if (spawn_workers(&R) != 0) {
        perror("herald bench: fork");
        run_free(&R);
        return 1;
    }
    /* Connecting is bounded: 120 s plus 1 s per 1,000 connections. */
    cli_bench_pump(&R, 120000 + o.conns, all_conn);
    usleep((useconds_t)o.settle_ms * 1000);
    sample_t s1 = cli_bench_take_sample(&o), c0 = s1, c1 = s1;
    if (o.msgs) {
        c0 = cli_bench_take_sample(&o);
        cli_bench_broadcast_phase(&R);
        c1 = cli_bench_take_sample(&o);
    }
    if (o.target == BENCH_HERALD && o.uni_rate && o.uni_secs)
        cli_bench_unicast_phase(&R);
    tell_workers(&R, BENCH_CMD_REPORT);
    cli_bench_pump(&R, 30000, all_end);
    rc = cli_bench_report(&R, &s0, &s1, &c0, &c1);
    stop_workers(&R);
    run_free(&R);
    return rc;
}
