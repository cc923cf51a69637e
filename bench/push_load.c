/*
 * push_load: load on the push API's pushSingleDevice, over HTTP/1.1
 * keep-alive or TARS, optionally with the target devices online on the
 * gateway (docs/testing.md, "Benchmarks").
 *
 *   push_load --http HOST:PORT | --tars HOST:PORT --key API_KEY
 *             [--conns 32] [--secs 5] [--warmup 1] [--devices 1000]
 *             [--device-prefix bench] [--ttl 86400] [--payload 64]
 *             [--rate R] [--threads 1]
 *             [--online --gw HOST:PORT --app APP --secret SECRET]
 *             [--pid PID]
 *
 * Each API connection is a closed loop (one request in flight, the next
 * sent when the answer arrives); --rate R paces the total instead (an
 * open-loop schedule whose latency counts from each request's slot, so
 * queueing shows).  All connections, and with --online all devices, are
 * driven by one epoll thread (--threads T splits both, see pload.h), so the
 * load generator takes at most T cores from the server it measures.
 *
 * Phases: devices connect (--online) and earlier runs' stored pushes drain;
 * API connections open; warmup; the measured window; then the answers in
 * flight and, with --online, up to 3 s for deliveries still on their way.
 * The engine is src/bench/pload_api.c (requests) and pload_dev.c (devices).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/pload.h"
#include "core/clock.h"

#define SETTLE_QUIET_US 300000u    /* no stale push for this long: settled */
#define CONNECT_LIMIT_US 60000000u /* devices connect and settle within */
#define ANSWER_LIMIT_US 5000000u   /* answers still in flight at t_end */
#define STRAGGLER_US 3000000u      /* deliveries still on their way */
#define HEARTBEAT_US 60000000u
#define EVENTS 512

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: push_load --http HOST:PORT | --tars HOST:PORT --key API_KEY\n"
        "                 [--conns 32] [--secs 5] [--warmup 1] [--devices "
        "1000]\n"
        "                 [--device-prefix bench] [--ttl 86400] [--payload "
        "64]\n"
        "                 [--rate R] [--threads 1]\n"
        "                 [--online --gw HOST:PORT --app APP --secret SECRET]\n"
        "                 [--pid PID]\n\n"
        "pushSingleDevice load: closed loop per connection (or --rate R\n"
        "pushes/s in total), round robin over devices PREFIX0..PREFIX(N-1).\n"
        "--online connects those devices to the gateway first and checks\n"
        "every delivery (the secret may come from HERALD_SECRET instead).\n"
        "--pid: the server's CPU per push.  Exit 1 on errors, missing or\n"
        "misdelivered pushes.  See docs/testing.md.\n");
}

/* ---- the worker thread ----------------------------------------------------- */

static void dispatch(pload_worker_t *w, const struct epoll_event *ev) {
    uint64_t key = ev->data.u64;
    if (key & PLOAD_KEY_DEV)
        pload_dev_event(w, (long)(key & ~PLOAD_KEY_DEV), ev->events);
    else if (!w->c[key].dead)
        pload_api_readable(w, &w->c[key]);
}

/* One epoll_pwait2 round until `until` at the latest (µs); handles the
 * events and sends heartbeats when due.  -1 on a failed wait. */
static int poll_once(pload_worker_t *w, uint64_t until, uint64_t *next_hb) {
    struct epoll_event evs[EVENTS];
    uint64_t now = clock_mono_us(), d = until > now ? until - now : 0;
    struct timespec ts = {(time_t)(d / 1000000), (long)(d % 1000000) * 1000};
    int n = epoll_pwait2(w->ep, evs, EVENTS, &ts, NULL);
    if (n < 0 && errno != EINTR) {
        pload_error(w, "epoll_pwait2: %s", strerror(errno));
        return -1;
    }
    w->now = clock_mono_us();
    for (int i = 0; i < n; i++) dispatch(w, &evs[i]);
    if (w->d && w->now >= *next_hb) {
        pload_dev_heartbeat(w);
        *next_hb = w->now + HEARTBEAT_US;
    }
    return 0;
}

/* Connects the devices and waits until no earlier run's stored push has
 * arrived for SETTLE_QUIET_US, so the measurement starts clean. */
static void devices_phase(pload_worker_t *w) {
    uint64_t limit = clock_mono_us() + CONNECT_LIMIT_US, hb = UINT64_MAX;
    for (;;) {
        pload_dev_pump(w);
        uint64_t now = clock_mono_us();
        if (!w->t_connected && w->d_next == w->dev_hi && !w->d_inflight)
            w->t_connected = now;
        uint64_t quiet =
            w->t_connected > w->t_stale ? w->t_connected : w->t_stale;
        if ((w->t_connected && now - quiet >= SETTLE_QUIET_US) || now >= limit)
            break;
        if (poll_once(w, now + 10000, &hb) < 0) break;
    }
    if (w->d_inflight)
        pload_error(w, "%ld devices still connecting after %u s", w->d_inflight,
                    CONNECT_LIMIT_US / 1000000);
}

/* Sends on idle connections every --rate slot that is due. */
static void pace(pload_worker_t *w, uint64_t now) {
    for (;;) {
        uint64_t due =
            w->sh->t_start + (uint64_t)((double)w->slot * w->slot_us);
        if (!w->nidle || due > now || due >= w->sh->t_end) return;
        pload_conn_t *c = &w->c[w->idle[--w->nidle]];
        w->slot++;
        if (!c->dead) pload_api_send(w, c, due);
    }
}

/* When the loop must look again: the next slot if a connection is idle,
 * else t_end. */
static uint64_t next_wake(const pload_worker_t *w) {
    uint64_t due = w->sh->t_start + (uint64_t)((double)w->slot * w->slot_us);
    return w->o->rate > 0 && w->nidle && due < w->sh->t_end ? due
                                                            : w->sh->t_end;
}

static void load_phase(pload_worker_t *w) {
    uint64_t hb = clock_mono_us() + HEARTBEAT_US;
    w->now = clock_mono_us();
    while (w->now < w->sh->t_start)
        if (poll_once(w, w->sh->t_start, &hb) < 0) return;
    if (w->o->rate <= 0) /* closed loop: every connection starts now */
        while (w->nidle)
            pload_api_send(w, &w->c[w->idle[--w->nidle]], clock_mono_us());
    while (w->now < w->sh->t_end) {
        if (w->o->rate > 0) pace(w, w->now);
        if (poll_once(w, next_wake(w), &hb) < 0) return;
    }
    /* Answers still in flight, then deliveries still on their way. */
    uint64_t limit = w->now + ANSWER_LIMIT_US;
    while (w->busy && w->now < limit)
        if (poll_once(w, limit, &hb) < 0) return;
    if (w->busy) { /* given up: errors */
        pload_error(w, "%ld requests unanswered %u s after the end", w->busy,
                    ANSWER_LIMIT_US / 1000000);
        w->err += w->busy;
    }
    limit = w->now + STRAGGLER_US;
    while (w->d && w->outstanding > 0 && w->now < limit)
        if (poll_once(w, limit, &hb) < 0) return;
}

static void *worker_main(void *arg) {
    pload_worker_t *w = arg;
    if (w->o->online) {
        if (pload_dev_init(w) < 0)
            pload_error(w, "out of memory");
        else
            devices_phase(w);
    }
    pthread_barrier_wait(&w->sh->barrier); /* 1: devices are up */
    w->api_ok = pload_api_open(w) == 0;
    pthread_barrier_wait(&w->sh->barrier); /* 2: connections are open */
    pthread_barrier_wait(&w->sh->barrier); /* 3: main set the times */
    if (!w->sh->abort) load_phase(w);
    return NULL;
}

/* ---- options --------------------------------------------------------------- */

static int parse_num(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    double v;
    if (parse_num(s, (double)lo, (double)hi, &v) < 0 || v != (double)(long)v)
        return -1;
    *out = (long)v;
    return 0;
}

static int parse_hostport(const char *s, char *host, int *port) {
    const char *c = strrchr(s, ':');
    long p;
    if (!c || c == s || c - s >= PLOAD_HOST_MAX ||
        parse_long(c + 1, 1, 65535, &p) < 0)
        return -1;
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = '\0';
    *port = (int)p;
    return 0;
}

/* 0, or -1 after printing what is wrong. */
static int parse_opts(int argc, char **argv, pload_opts_t *o, int *pid) {
#define ARG(name, ch) \
    { name, required_argument, 0, ch }
    static const struct option opts[] = {
        ARG("http", 'H'),
        ARG("tars", 'T'),
        ARG("key", 'k'),
        ARG("conns", 'c'),
        ARG("secs", 's'),
        ARG("warmup", 'w'),
        ARG("devices", 'd'),
        ARG("device-prefix", 'P'),
        ARG("ttl", 't'),
        ARG("payload", 'p'),
        ARG("rate", 'r'),
        ARG("threads", 'n'),
        ARG("gw", 'g'),
        ARG("app", 'a'),
        ARG("secret", 'S'),
        ARG("pid", 'i'),
        {"online", no_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
#undef ARG
    *o = (pload_opts_t){.conns = 32,
                        .secs = 5,
                        .warmup = 1,
                        .devices = 1000,
                        .prefix = "bench",
                        .ttl = 86400,
                        .payload = 64,
                        .threads = 1};
    o->secret = getenv("HERALD_SECRET");
    const char *gw = NULL;
    long v = 0;
    int ch, bad = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'H':
        case 'T':
            o->proto = ch == 'H' ? PLOAD_HTTP : PLOAD_TARS;
            bad |= parse_hostport(optarg, o->api_host, &o->api_port);
            break;
        case 'k': o->key = optarg; break;
        case 'c': bad |= parse_long(optarg, 1, 10000, &o->conns); break;
        case 's': bad |= parse_long(optarg, 1, 86400, &o->secs); break;
        case 'w': bad |= parse_long(optarg, 0, 3600, &o->warmup); break;
        case 'd': bad |= parse_long(optarg, 1, 1000000, &o->devices); break;
        case 'P': o->prefix = optarg; break;
        case 't': bad |= parse_long(optarg, 0, 1L << 30, &o->ttl); break;
        case 'p':
            bad |= parse_long(optarg, 1, PLOAD_PAYLOAD_MAX, &o->payload);
            break;
        case 'r': bad |= parse_num(optarg, 0, 1e8, &o->rate); break;
        case 'n': bad |= parse_long(optarg, 1, 64, &o->threads); break;
        case 'o': o->online = true; break;
        case 'g': gw = optarg; break;
        case 'a': o->app = optarg; break;
        case 'S': o->secret = optarg; break;
        case 'i':
            bad |= parse_long(optarg, 1, 1L << 30, &v);
            *pid = (int)v;
            break;
        case 'h': usage(stdout); exit(0);
        default: bad = -1;
        }
    }
    if (bad || optind != argc || !o->proto || !o->key ||
        (o->online && (!gw || !o->app || !o->secret ||
                       parse_hostport(gw, o->gw_host, &o->gw_port) < 0))) {
        usage(stderr);
        return -1;
    }
    if (o->threads > o->conns || o->threads > o->devices) {
        fprintf(stderr, "push_load: --threads must not exceed --conns or "
                        "--devices\n");
        return -1;
    }
    /* One process, so it stays under the limit herald bench keeps to. */
    long fds = o->conns + (o->online ? o->devices : 0) + 64;
    if (fds > BENCH_FD_PER_PROC || bench_raise_nofile() < fds) {
        fprintf(stderr,
                "push_load: %ld descriptors needed; the limit is %d "
                "(and RLIMIT_NOFILE)\n",
                fds, BENCH_FD_PER_PROC);
        return -1;
    }
    return 0;
}

/* ---- results --------------------------------------------------------------- */

/* The workers' counters added up, their latencies merged. */
typedef struct totals {
    long sent, ok, err, warm_ok, win_ok, written, stored, other;
    long ready, failed, closed, delivered, wrong, dup, stale, missing;
    uint32_t got_min, got_max;
    bench_lat_t lat, dlat;
} totals_t;

static void add_up(pload_worker_t *ws, long nw, totals_t *t) {
    *t = (totals_t){.got_min = UINT32_MAX};
    for (long i = 0; i < nw; i++) {
        pload_worker_t *w = &ws[i];
        t->sent += w->sent;
        t->ok += w->ok;
        t->err += w->err;
        t->warm_ok += w->warm_ok;
        t->win_ok += w->win_ok;
        t->written += w->written;
        t->stored += w->stored;
        t->other += w->other_state;
        t->ready += w->d_ready;
        t->failed += w->d_failed;
        t->closed += w->d_closed;
        t->delivered += w->delivered;
        t->wrong += w->wrong;
        t->dup += w->dup;
        t->stale += w->stale;
        t->missing += w->outstanding;
        for (long k = 0; w->d && k < w->dev_hi - w->dev_lo; k++) {
            uint32_t g = w->d[k].got;
            t->got_min = g < t->got_min ? g : t->got_min;
            t->got_max = g > t->got_max ? g : t->got_max;
        }
        if (bench_lat_append(&t->lat, &w->lat) < 0 ||
            bench_lat_append(&t->dlat, &w->dlat) < 0)
            fprintf(stderr, "push_load: out of memory: percentiles are "
                            "partial\n");
    }
    bench_lat_sort(&t->lat);
    bench_lat_sort(&t->dlat);
}

static void print_first_error(const pload_opts_t *o, const pload_worker_t *ws,
                              const char *then) {
    for (long i = 0; i < o->threads; i++)
        if (ws[i].first_err[0]) {
            printf("push_load: first error (thread %ld): %s\n", i,
                   ws[i].first_err);
            break;
        }
    if (then) printf("push_load: %s\n", then);
}

static double ms(uint32_t us) { return (double)us / 1000.0; }

/* CPU before and after the window: server ticks (--pid), own rusage µs. */
typedef struct cpu {
    long srv_ticks;
    double self_us;
} cpu_t;

static double tv_us(const struct timeval *tv) {
    return (double)tv->tv_sec * 1e6 + (double)tv->tv_usec;
}

static cpu_t cpu_sample(int pid) {
    struct rusage ru;
    cpu_t c = {pid ? bench_proc_cpu_ticks(pid) : -1, -1};
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        c.self_us = tv_us(&ru.ru_utime) + tv_us(&ru.ru_stime);
    return c;
}

/* Prints the phase lines and the final line; returns the exit code. */
static int report(const pload_opts_t *o, pload_worker_t *ws, int pid,
                  const cpu_t *c0, const cpu_t *c1, double win_s) {
    totals_t t;
    add_up(ws, o->threads, &t);
    const char *proto = o->proto == PLOAD_HTTP ? "http" : "tars";
    double rate = (double)t.win_ok / win_s, per = (double)t.win_ok;
    printf("push_load: warmup %ld s: %ld pushes answered OK\n", o->warmup,
           t.warm_ok);
    printf("push_load: measured %.2f s: %ld OK (%.0f/s); in all %ld sent, "
           "%ld OK, %ld errors; latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, "
           "max %.2f ms\n",
           win_s, t.win_ok, rate, t.sent, t.ok, t.err,
           ms(bench_lat_pct(&t.lat, .5)), ms(bench_lat_pct(&t.lat, .9)),
           ms(bench_lat_pct(&t.lat, .99)), ms(bench_lat_pct(&t.lat, 1)));
    char srv[64] = "server n/a", cli[64] = "client n/a";
    long tick = sysconf(_SC_CLK_TCK);
    if (pid && t.win_ok && c0->srv_ticks >= 0 && c1->srv_ticks >= 0 && tick > 0)
        snprintf(srv, sizeof srv, "server %.1f us CPU/push",
                 (double)(c1->srv_ticks - c0->srv_ticks) * 1e6 / (double)tick /
                     per);
    if (t.win_ok && c0->self_us >= 0 && c1->self_us >= 0)
        snprintf(cli, sizeof cli, "client %.1f us CPU/push",
                 (c1->self_us - c0->self_us) / per);
    printf("push_load: cpu over the window: %s%s, %s\n", srv,
           pid ? "" : " (no --pid)", cli);
    char online[320] = "";
    if (o->online) {
        printf("push_load: online: %ld pushes OK (%ld written, %ld stored, %ld "
               "other), delivered %ld (per device %u..%u), missing %ld, wrong "
               "%ld, dup %ld; %ld devices closed during the run, %ld stale "
               "pushes of earlier runs acked\n",
               t.ok, t.written, t.stored, t.other, t.delivered,
               t.got_min == UINT32_MAX ? 0 : t.got_min, t.got_max, t.missing,
               t.wrong, t.dup, t.closed, t.stale);
        snprintf(online, sizeof online,
                 ", online %ld, delivered %ld, missing "
                 "%ld, wrong %ld, dup %ld, delivery p50 %.2f ms p99 %.2f ms",
                 t.ready + t.closed, t.delivered, t.missing, t.wrong, t.dup,
                 ms(bench_lat_pct(&t.dlat, .5)),
                 ms(bench_lat_pct(&t.dlat, .99)));
    }
    print_first_error(o, ws, NULL);
    printf(
        "push_load %s: %.0f pushes/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, "
        "errors %ld, %s, %s%s\n",
        proto, rate, ms(bench_lat_pct(&t.lat, .5)),
        ms(bench_lat_pct(&t.lat, .99)), ms(bench_lat_pct(&t.lat, 1)), t.err,
        srv, cli, online);
    bench_lat_free(&t.lat);
    bench_lat_free(&t.dlat);
    return t.err || t.missing || t.wrong || t.closed ? 1 : 0;
}

/* ---- main ------------------------------------------------------------------ */

static void sleep_until(uint64_t us) {
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static int setup_workers(const pload_opts_t *o, pload_shared_t *sh,
                         pload_worker_t *ws) {
    long T = o->threads;
    for (long i = 0; i < T; i++) {
        pload_worker_t *w = &ws[i];
        w->o = o;
        w->sh = sh;
        w->id = (int)i;
        w->nc = o->conns / T + (i < o->conns % T);
        w->dev_lo = o->devices * i / T;
        w->dev_hi = o->devices * (i + 1) / T;
        w->dev_next = w->dev_lo;
        w->slot_us = o->rate > 0 ? 1e6 * (double)T / o->rate : 0;
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        if (w->ep < 0) return -1;
    }
    return 0;
}

/* After barrier 1: prints the devices phase; false if a device is not up. */
static bool devices_ready(const pload_opts_t *o, const pload_worker_t *ws,
                          uint64_t t0) {
    long ready = 0, failed = 0, stale = 0;
    uint64_t t_conn = t0;
    for (long i = 0; i < o->threads; i++) {
        ready += ws[i].d_ready;
        failed += ws[i].d_failed + ws[i].d_inflight;
        stale += ws[i].stale;
        t_conn = ws[i].t_connected > t_conn ? ws[i].t_connected : t_conn;
    }
    if (!o->online) return true;
    printf("push_load: devices: %ld/%ld online at %s:%d in %.2f s (settled "
           "after %.2f s), %ld failed, %ld stale pushes of earlier runs "
           "acked\n",
           ready, o->devices, o->gw_host, o->gw_port,
           (double)(t_conn - t0) / 1e6, (double)(clock_mono_us() - t0) / 1e6,
           failed, stale);
    return ready == o->devices;
}

/* After barrier 2: every worker's API connections are open. */
static bool api_ready(const pload_opts_t *o, const pload_worker_t *ws) {
    for (long i = 0; i < o->threads; i++)
        if (!ws[i].api_ok) return false;
    return true;
}

int main(int argc, char **argv) {
    pload_opts_t o;
    int pid = 0;
    if (parse_opts(argc, argv, &o, &pid) < 0) return 2;
    signal(SIGPIPE, SIG_IGN);
    o.run = (uint32_t)(clock_mono_us() ^ ((uint64_t)getpid() << 16));
    pload_shared_t sh = {0};
    pload_worker_t *ws = calloc((size_t)o.threads, sizeof *ws);
    if (!ws || setup_workers(&o, &sh, ws) < 0 ||
        pthread_barrier_init(&sh.barrier, NULL, (unsigned)o.threads + 1)) {
        perror("push_load");
        return 1;
    }
    uint64_t t0 = clock_mono_us();
    for (long i = 0; i < o.threads; i++)
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i])) {
            perror("push_load: pthread_create");
            return 1;
        }
    pthread_barrier_wait(&sh.barrier);
    sh.abort = !devices_ready(&o, ws, t0);
    pthread_barrier_wait(&sh.barrier);
    sh.abort = sh.abort || !api_ready(&o, ws);
    sh.t_start = clock_mono_us() + 1000;
    sh.t_warm = sh.t_start + (uint64_t)o.warmup * 1000000;
    sh.t_end = sh.t_warm + (uint64_t)o.secs * 1000000;
    if (!sh.abort)
        printf("push_load: load: %s %s:%d, %ld conns on %ld thread%s, %s, %ld "
               "devices %s0.., ttl %ld, payload %ld B, warmup %ld s + %ld s\n",
               o.proto == PLOAD_HTTP ? "http" : "tars", o.api_host, o.api_port,
               o.conns, o.threads, o.threads > 1 ? "s" : "",
               o.rate > 0 ? "paced" : "closed loop", o.devices, o.prefix, o.ttl,
               o.payload, o.warmup, o.secs);
    fflush(stdout);
    pthread_barrier_wait(&sh.barrier);
    cpu_t c0 = {-1, -1}, c1 = {-1, -1};
    if (!sh.abort) {
        sleep_until(sh.t_warm);
        c0 = cpu_sample(pid);
        sleep_until(sh.t_end);
        c1 = cpu_sample(pid);
    }
    for (long i = 0; i < o.threads; i++) pthread_join(ws[i].th, NULL);
    int rc = 1;
    if (!sh.abort)
        rc =
            report(&o, ws, pid, &c0, &c1, (double)(sh.t_end - sh.t_warm) / 1e6);
    else
        print_first_error(&o, ws, "aborted");
    for (long i = 0; i < o.threads; i++) {
        pload_api_close(&ws[i]);
        pload_dev_close(&ws[i]);
        bench_lat_free(&ws[i].lat);
        bench_lat_free(&ws[i].dlat);
        close(ws[i].ep);
    }
    free(ws);
    return rc;
}
