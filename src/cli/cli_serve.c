/*
 * `herald serve`: the gateway (device port) and the push API in one
 * process, with safe defaults for a first run.  Its options are read by
 * cli_config.c (defaults < config file < environment < flags).  SIGHUP
 * reloads the config (cli_live.c).  SIGTERM or SIGINT drains: the push API
 * stops first (nobody pushes into a gateway going away), then devices are
 * kicked with ERR_DRAINING and pending writes flushed.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "cli/cli.h"
#include "cli/cli_config.h"
#include "core/log.h"
#include "gateway/gw.h"
#include "ops/admin.h"
#include "ops/metrics_herald.h"
#include "ops/ops_mem.h"
#include "ops/ops_store.h"
#include "ops/sdnotify.h"
#include "push/push.h"
#include "store/store.h"

#define DRAIN_MS 5000

/* Blocks the stop and reload signals in every thread (workers inherit the
 * mask) so the main thread alone takes them with sigwait. */
static void block_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int write_pid_file(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "%ld\n", (long)getpid());
    return fclose(f) == 0 ? 0 : -1;
}

static double read_gw_sockets(void *ctx, unsigned a, unsigned b) {
    gw_stats_t st;
    gw_stats(ctx, &st);
    return (double)st.conns;
}

/* The admin listener is an aid, not the service: if its port is taken the
 * server still runs, and says so. */
static ops_admin_t *start_admin(const ops_admin_config_t *cfg, gw_t *gw) {
    (void)metrics_set_reader(M_GW_SOCKETS, read_gw_sockets, gw);
    ops_admin_t *a = ops_admin_new(cfg);
    int rc = a ? ops_admin_start(a) : -ENOMEM;
    if (rc < 0) {
        fprintf(stderr, "herald serve: admin port %d: %s (admin disabled)\n",
                cfg->port, strerror(-rc));
        ops_admin_free(a);
        return NULL;
    }
    printf("herald: admin http://%s:%d (metrics, dashboard)\n",
           cfg->host && *cfg->host ? cfg->host : "127.0.0.1",
           ops_admin_port(a));
    return a;
}

/* Before gw_free: the sockets gauge reads the gateway. */
static void stop_admin(ops_admin_t *a) {
    ops_admin_free(a);
    (void)metrics_set_reader(M_GW_SOCKETS, NULL, NULL);
}

/* Everything one `herald serve` runs; the settings it was started with
 * outlive it (the configs below borrow their strings). */
typedef struct server {
    gw_config_t gw_cfg;
    push_config_t push_cfg;
    ops_admin_config_t admin_cfg;
    store_t *st;
    push_service_t *ps;
    gw_t *gw;
    ops_store_t *ops_st;
    ops_admin_t *admin;
    ops_mem_t *mem; /* the memory watermark's sampler */
} server_t;

static void make_configs(server_t *sv, const serve_settings_t *s) {
    gw_config_t *g = &sv->gw_cfg;
    gw_config_defaults(g);
    g->host = s->host;
    g->port = s->port;
    if (s->workers > 0) g->workers = s->workers;
    g->hb_min = s->hb_min;
    g->hb_max = s->hb_max;
    g->max_conns = s->max_conns;
    g->max_conns_per_ip = s->max_conns_per_ip;
    g->accept_rate = s->accept_rate;
    g->accept_burst = s->accept_burst;
    g->head_timeout = s->head_timeout;
    g->token_max_ttl = s->token_max_ttl;
    push_config_t *p = &sv->push_cfg;
    push_config_defaults(p);
    p->http_host = s->api_host;
    p->http_port = s->api_port;
    p->tars_host = *s->tars_host ? s->tars_host : NULL;
    p->tars_port = s->tars_port;
    p->tars_max_conns = s->tars_max_conns;
    p->tars_max_conns_per_ip = s->tars_max_conns_per_ip;
    p->tars_idle_timeout = s->tars_idle_timeout;
    p->max_conns = s->api_max_conns;
    p->max_conns_per_ip = s->api_max_conns_per_ip;
    p->head_timeout = s->head_timeout;
    p->rate_app = s->rate_app;
    p->burst = s->burst;
    p->max_payload = (uint32_t)s->max_payload;
    /* Room for a payload in base64 and the rest of the request. */
    if (p->max_body < p->max_payload * 2 + 4096)
        p->max_body = p->max_payload * 2 + 4096;
    ops_admin_config_defaults(&sv->admin_cfg);
    sv->admin_cfg.host = s->admin_host;
    sv->admin_cfg.port = s->admin_port;
    /* What device connections must leave to the rest (max-conns 0). */
    g->fd_reserve = GW_FD_RESERVE + p->max_conns + OPS_ADMIN_MAX_CONNS +
                    (p->tars_port >= 0 ? p->tars_max_conns : 0);
}

/* The soft descriptor limit up to the hard one, as servers do: every
 * device connection is a descriptor, and the soft default (often 1024)
 * would cap the gateway far below what the hard limit allows. */
static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max) return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        fprintf(stderr, "herald serve: raising the descriptor limit: %s\n",
                strerror(errno));
}

/* The cap in force, and where it comes from when it was derived. */
static void print_conns(const server_t *sv, const serve_settings_t *s) {
    if (s->max_conns > 0) {
        printf("herald: device connections at most %d (max-conns)\n",
               gw_max_conns(sv->gw));
        return;
    }
    struct rlimit rl = {0};
    (void)getrlimit(RLIMIT_NOFILE, &rl);
    long nofile = rl.rlim_cur > INT_MAX ? INT_MAX : (long)rl.rlim_cur;
    int refused = 0;
    int cap = gw_conns_auto(nofile, sv->gw_cfg.fd_reserve, sv->gw_cfg.workers,
                            &refused);
    printf("herald: device connections at most %d (max-conns 0: "
           "descriptor limit %ld, %ld kept for the API, admin and store, "
           "%d for refusals)\n",
           gw_max_conns(sv->gw), nofile, nofile - cap - refused, refused);
}

/* The memory watermark's sampler; the gateway, the push API and /readyz
 * borrow it until the end.  Without it (thread or memory failure) herald
 * still runs, and says so.  spec was checked by the config table. */
static ops_mem_t *start_mem(const char *spec) {
    const char *from = "";
    uint64_t limit = 0, high = 0;
    bool automatic = !strcmp(spec, "auto");
    if (automatic) {
        limit = ops_mem_limit(&from);
        high = limit / 100 * OPS_MEM_AUTO_PCT;
    } else {
        (void)ops_mem_parse_size(spec, &high);
    }
    ops_mem_t *m = ops_mem_new(high, 0);
    int rc = m ? ops_mem_start(m) : -ENOMEM;
    if (rc < 0) {
        fprintf(stderr, "herald serve: memory watermark: %s (off)\n",
                strerror(-rc));
        ops_mem_free(m);
        return NULL;
    }
    if (!high)
        printf("herald: memory watermark off\n");
    else if (automatic)
        printf("herald: memory watermark %llu MiB (auto: %d%% of %llu MiB, "
               "%s)\n",
               (unsigned long long)(high >> 20), OPS_MEM_AUTO_PCT,
               (unsigned long long)(limit >> 20), from);
    else
        printf("herald: memory watermark %llu MiB\n",
               (unsigned long long)(high >> 20));
    return m;
}

/* herald_queue_depth: the store's queue, the gateway workers' mailboxes
 * and the bytes waiting in device connections (ops_store alone knows only
 * the first). */
static double read_queues(void *ctx, unsigned a, unsigned b) {
    const server_t *sv = ctx;
    (void)b;
    if (a == MH_Q_STORE) {
        store_stats_t s;
        store_stats(sv->st, &s);
        return (double)s.queue_depth;
    }
    gw_stats_t g;
    gw_stats(sv->gw, &g);
    if (a == MH_Q_MAILBOX) return (double)g.mailbox;
    if (a == MH_Q_DELIVERY) return (double)g.out_queued; /* bytes */
    return NAN;
}

/* Later parts need the earlier ones; on failure what started is undone
 * by server_stop. */
static int server_start(server_t *sv, const serve_settings_t *s) {
    store_config_t sc;
    store_config_defaults(&sc);
    sc.path = s->db;
    sc.synchronous_full = !s->no_fsync;
    sc.exclusive = true;
    sc.accept_journal_loss = s->accept_journal_loss;
    sc.inbox_max = s->inbox_max;
    int rc = store_open(&sc, &sv->st);
    if (rc < 0) {
        fprintf(stderr, "herald serve: store %s: %s\n", sc.path,
                store_open_error(rc));
        if (rc == STORE_E_JOURNAL)
            fprintf(stderr,
                    "herald serve: acknowledged pushes may be lost"
                    " (the log line above says how many); to recover what"
                    " is readable and start anyway:\n  herald serve"
                    " --accept-journal-loss ...\n");
        return -1;
    }
    printf("herald: store %s\n", sc.path);
    sv->mem = start_mem(s->memory_high);
    sv->gw_cfg.mem = sv->push_cfg.mem = sv->admin_cfg.mem = sv->mem;
    sv->push_cfg.store = sv->st;
    sv->ps = push_service_new(&sv->push_cfg);
    serve_live_t l = {sv->ps, NULL, sv->st, sv->push_cfg.max_body};
    if (!sv->ps || serve_apps_start(&l, s) < 0) return -1;
    /* Before the workers start, so they count from their first event. */
    (void)metrics_herald_init(); /* static storage: cannot fail here */
    sv->gw = gw_new(&sv->gw_cfg, push_service_gw_iface(sv->ps));
    if (!sv->gw || (rc = gw_start(sv->gw)) < 0) {
        const char *h = *s->host ? s->host : "0.0.0.0";
        bool v6 = strchr(h, ':') != NULL;
        if (rc == -EADDRINUSE)
            fprintf(stderr,
                    "herald serve: device port %s%s%s:%d is in use "
                    "by another process\n",
                    v6 ? "[" : "", h, v6 ? "]" : "", s->port);
        else
            fprintf(stderr, "herald serve: device port %d: %s\n", s->port,
                    strerror(sv->gw ? -rc : ENOMEM));
        return -1;
    }
    printf("herald: device port %d (tcp+ws)\n", gw_port(sv->gw));
    print_conns(sv, s);
    if ((rc = push_service_start(sv->ps, sv->gw)) < 0) {
        int port;
        const char *what = push_service_start_failed(sv->ps, &port);
        fprintf(stderr, "herald serve: %s port %d: %s%s\n", what, port,
                strerror(-rc),
                rc != -EADDRINUSE       ? ""
                : !strcmp(what, "TARS") ? " (another process listens there;"
                                          " --tars-port -1 turns TARS off)"
                                        : " (another process listens there;"
                                          " pick another --api-port)");
        return -1;
    }
    const char *api_host = *s->api_host ? s->api_host : "127.0.0.1";
    if (push_service_tars_port(sv->ps) >= 0)
        printf("herald: push TARS tcp://%s:%d (herald.PushServer.PushAPIObj)\n",
               *s->tars_host ? s->tars_host : api_host,
               push_service_tars_port(sv->ps));
    printf("herald: push API http://%s:%d\n", api_host,
           push_service_http_port(sv->ps));
    /* The admin port's view of the store: readiness, timelines. */
    if ((sv->ops_st = ops_store_new(sv->st))) {
        sv->admin_cfg.ctx = sv->ops_st;
        sv->admin_cfg.store_ready = ops_store_ready;
        sv->admin_cfg.message_timeline = ops_store_timeline;
    }
    sv->admin = start_admin(&sv->admin_cfg, sv->gw);
    (void)metrics_set_reader(M_QUEUE_DEPTH, read_queues, sv);
    return 0;
}

/* The push API stops first (nobody pushes into a gateway going away). */
static void server_stop(server_t *sv) {
    push_service_stop(sv->ps);
    if (sv->gw) gw_drain(sv->gw, DRAIN_MS);
    stop_admin(sv->admin);
    (void)metrics_set_reader(M_QUEUE_DEPTH, NULL, NULL); /* reads gw, st */
    ops_store_free(sv->ops_st); /* its reader goes before store_close */
    gw_free(sv->gw);
    push_service_free(sv->ps);
    ops_mem_free(sv->mem); /* after everything that borrowed it */
    if (sv->st) store_close(sv->st);
}

/* Until SIGTERM or SIGINT; each SIGHUP reloads the config. */
static int wait_stop(const sigset_t *sigs, const serve_live_t *l,
                     const serve_conf_t *conf, serve_settings_t *cur) {
    int sig;
    while ((sig = ops_sd_wait_signal(sigs)) == SIGHUP) {
        (void)ops_sd_notify("RELOADING=1"); /* outside systemd: no-op */
        (void)serve_reload(l, conf, cur);   /* it logs what happened */
        (void)ops_sd_notify("READY=1");
    }
    return sig;
}

static int serve_run(const serve_conf_t *conf, const serve_settings_t *s) {
    sigset_t sigs;
    block_signals(&sigs);
    log_set_level((log_level_t)s->log_level);
    log_set_format((log_format_t)s->log_format);
    raise_nofile();
    if (conf->path) printf("herald: config %s\n", conf->path);
    server_t sv;
    memset(&sv, 0, sizeof sv);
    make_configs(&sv, s);
    serve_settings_t cur; /* what a reload compares with and replaces */
    memset(&cur, 0, sizeof cur);
    if (server_start(&sv, s) < 0 || serve_settings_copy(&cur, s) < 0) {
        server_stop(&sv);
        conf_free(&serve_table, &cur);
        return 1;
    }
    fflush(stdout);
    const char *pid_file = *s->pid_file ? s->pid_file : NULL;
    if (pid_file && write_pid_file(pid_file) < 0)
        fprintf(stderr, "herald serve: --pid-file %s: %s\n", pid_file,
                strerror(errno));

    /* systemd (Type=notify): every listener is bound, /readyz is 200. */
    (void)ops_sd_notify("READY=1"); /* outside systemd: a no-op */
    serve_live_t live = {sv.ps, sv.gw, sv.st, sv.push_cfg.max_body};
    int sig = wait_stop(&sigs, &live, conf, &cur);
    if (pid_file) unlink(pid_file);
    log_info("draining", "signal=%d", sig);
    ops_admin_set_draining(sv.admin, true);
    (void)ops_sd_notify("STOPPING=1");
    if (cur.drain_grace > 0) usleep((useconds_t)cur.drain_grace * 1000);
    server_stop(&sv);
    conf_free(&serve_table, &cur);
    return 0;
}

static void print_err(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, "herald serve: %s\n", line);
}

int cli_serve(int argc, char **argv) {
    /* Whatever serve creates (the store and its journal, the pid file) is
     * the owner's alone: the store holds every app's secret. */
    umask(umask(077) | 077);
    serve_conf_t conf;
    conf_errs_t e = {print_err, NULL, 0};
    int rc = serve_conf_init(&conf, argc, argv, &e);
    if (rc == 0) {
        serve_settings_t s;
        memset(&s, 0, sizeof s);
        rc = serve_conf_load(&conf, &s, &e) ? 2 : serve_run(&conf, &s);
        conf_free(&serve_table, &s);
    } else {
        if (rc > 0) serve_usage(stdout);
        rc = rc > 0 ? 0 : 2;
    }
    serve_conf_free(&conf);
    return rc;
}

/* `herald drain`: SIGTERM to a running `herald serve` (found through its
 * --pid-file), then waits for it to finish draining. */
int cli_drain(int argc, char **argv) {
    static const struct option longs[] = {
        {"pid-file", required_argument, 0, 'p'},
        {"timeout", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *path = NULL;
    long timeout = 30;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (ch) {
        case 'p': path = optarg; break;
        case 't':
            if (cli_parse_long(optarg, 1, 3600, &timeout) < 0) {
                fprintf(stderr, "herald drain: bad --timeout '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h':
        default:
            fprintf(
                ch == 'h' ? stdout : stderr,
                "usage: herald drain --pid-file PATH [--timeout SECONDS]\n\n"
                "Asks the `herald serve` started with that --pid-file to "
                "drain\n"
                "(devices are kicked with ERR_DRAINING) and waits until it "
                "exits.\n");
            return ch == 'h' ? 0 : 2;
        }
    }
    if (!path) {
        fprintf(stderr, "herald drain: --pid-file is required\n");
        return 2;
    }
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
        fprintf(stderr, "herald drain: no pid in %s\n", path);
        if (f) fclose(f);
        return 1;
    }
    fclose(f);
    if (kill((pid_t)pid, SIGTERM) < 0) {
        fprintf(stderr, "herald drain: pid %ld: %s\n", pid, strerror(errno));
        return 1;
    }
    for (long ms = 0; ms < timeout * 1000; ms += 50) {
        if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
            printf("herald: pid %ld drained and exited\n", pid);
            return 0;
        }
        usleep(50000);
    }
    fprintf(stderr, "herald drain: pid %ld still running after %lds\n", pid,
            timeout);
    return 1;
}
