/*
 * `herald serve`: the gateway (device port) and the push API in one
 * process, with safe defaults for a first run.  SIGTERM or SIGINT drains:
 * the push API stops first (nobody pushes into a gateway going away), then
 * devices are kicked with ERR_DRAINING and pending writes flushed.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "cli/cli.h"
#include "core/log.h"
#include "gateway/gw.h"
#include "ops/admin.h"
#include "ops/metrics_herald.h"
#include "ops/ops_store.h"
#include "ops/sdnotify.h"
#include "push/push.h"
#include "store/store.h"

#define MAX_APPS 64
#define DRAIN_MS 5000

static void serve_usage(FILE *f) {
    fprintf(f,
            "usage: herald serve [options]\n\n"
            "  --host ADDR        device port address (default 0.0.0.0)\n"
            "  --port N           device port, raw TCP and WebSocket (7100)\n"
            "  --workers N        gateway threads (default: cores)\n"
            "  --api-host ADDR    push API address (default 127.0.0.1)\n"
            "  --api-port N       push API port (8080)\n"
            "  --tars-host ADDR   TARS PushAPI address (default: --api-host)\n"
            "  --tars-port N      TARS PushAPI port (10000; -1 = off)\n"
            "  --tars-max-conns N TARS connections open at once (64)\n"
            "  --db PATH          SQLite store ($HERALD_DB, else ./herald.db)\n"
            "  --app NAME:SECRET:APIKEY   an application, upserted into the\n"
            "                     store (repeatable); an empty store without\n"
            "                     one gets a demo app with random credentials\n"
            "  --rate-app N       pushes/s per app (100000; 0 = no limit)\n"
            "  --burst N          token bucket size (default: --rate-app)\n"
            "  --max-payload N    payload bytes at most (4096)\n"
            "  --no-fsync         commit without fsync (benchmarks only)\n"
            "  --hb-min S, --hb-max S     accepted heartbeat range (10, 600)\n"
            "  --max-conns N      device connections at most (0 = no limit)\n"
            "  --pid-file PATH    write the pid there (for `herald drain`)\n"
            "  --head-timeout S   seconds a client has for its HTTP head (10)\n"
            "  --log-level L      debug, info, warn, error (info)\n"
            "  --admin-host ADDR  admin listener: /metrics, /healthz, /readyz,\n"
            "                     /dashboard (default 127.0.0.1; keep it private)\n"
            "  --admin-port N     admin port (9100; 0 = any free port)\n"
            "  --drain-grace MS   on SIGTERM, /readyz answers 503 this long before\n"
            "                     the listeners stop (default 0)\n");
}

typedef struct serve_opts {
    gw_config_t gw;
    push_config_t push;
    const char *apps[MAX_APPS];
    int napps;
    const char *pid_file;
    const char *db;
    bool no_fsync;
    ops_admin_config_t admin;
    int drain_grace_ms;
} serve_opts_t;

static int parse_int(const char *flag, const char *s, long lo, long hi,
                     int *out) {
    long v;
    if (cli_parse_long(s, lo, hi, &v) < 0) {
        fprintf(stderr, "herald serve: bad %s '%s'\n", flag, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* 0, 1 for --help, -1 on a bad flag. */
static int parse_opts(int argc, char **argv, serve_opts_t *o) {
    enum { O_HOST = 256, O_PORT, O_WORKERS, O_API_HOST, O_API_PORT, O_APP,
           O_HB_MIN, O_HB_MAX, O_MAX_CONNS, O_HEAD_TIMEOUT, O_LOG, O_PID_FILE,
           O_TARS_HOST, O_TARS_PORT, O_TARS_CONNS, O_DB, O_RATE, O_BURST,
           O_MAX_PAYLOAD, O_NO_FSYNC,
           O_ADMIN_HOST, O_ADMIN_PORT, O_DRAIN_GRACE };
    static const struct option longs[] = {
        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},
        {"workers", required_argument, 0, O_WORKERS},
        {"api-host", required_argument, 0, O_API_HOST},
        {"api-port", required_argument, 0, O_API_PORT},
        {"app", required_argument, 0, O_APP},
        {"hb-min", required_argument, 0, O_HB_MIN},
        {"hb-max", required_argument, 0, O_HB_MAX},
        {"max-conns", required_argument, 0, O_MAX_CONNS},
        {"head-timeout", required_argument, 0, O_HEAD_TIMEOUT},
        {"log-level", required_argument, 0, O_LOG},
        {"pid-file", required_argument, 0, O_PID_FILE},
        {"tars-host", required_argument, 0, O_TARS_HOST},
        {"tars-port", required_argument, 0, O_TARS_PORT},
        {"tars-max-conns", required_argument, 0, O_TARS_CONNS},
        {"db", required_argument, 0, O_DB},
        {"rate-app", required_argument, 0, O_RATE},
        {"burst", required_argument, 0, O_BURST},
        {"max-payload", required_argument, 0, O_MAX_PAYLOAD},
        {"no-fsync", no_argument, 0, O_NO_FSYNC},
        {"admin-host", required_argument, 0, O_ADMIN_HOST},
        {"admin-port", required_argument, 0, O_ADMIN_PORT},
        {"drain-grace", required_argument, 0, O_DRAIN_GRACE},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int ch, rc = 0;
    optind = 1;
    while (rc == 0 && (ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (ch) {
        case O_HOST: o->gw.host = optarg; break;
        case O_PORT: rc = parse_int("--port", optarg, 0, 65535, &o->gw.port); break;
        case O_WORKERS:
            rc = parse_int("--workers", optarg, 1, 256, &o->gw.workers);
            break;
        case O_API_HOST: o->push.http_host = optarg; break;
        case O_API_PORT:
            rc = parse_int("--api-port", optarg, 0, 65535, &o->push.http_port);
            break;
        case O_APP:
            if (o->napps == MAX_APPS) {
                fprintf(stderr, "herald serve: at most %d --app\n", MAX_APPS);
                return -1;
            }
            o->apps[o->napps++] = optarg;
            break;
        case O_HB_MIN: rc = parse_int("--hb-min", optarg, 1, 86400, &o->gw.hb_min); break;
        case O_HB_MAX: rc = parse_int("--hb-max", optarg, 1, 86400, &o->gw.hb_max); break;
        case O_MAX_CONNS:
            rc = parse_int("--max-conns", optarg, 0, 100000000, &o->gw.max_conns);
            break;
        case O_HEAD_TIMEOUT:
            rc = parse_int("--head-timeout", optarg, 1, 3600, &o->gw.head_timeout);
            break;
        case O_LOG: {
            int lv = log_level_parse(optarg);
            if (lv < 0) {
                fprintf(stderr, "herald serve: bad --log-level '%s'\n", optarg);
                return -1;
            }
            log_set_level((log_level_t)lv);
            break;
        }
        case O_PID_FILE: o->pid_file = optarg; break;
        case O_TARS_HOST: o->push.tars_host = optarg; break;
        case O_TARS_PORT:
            rc = parse_int("--tars-port", optarg, -1, 65535, &o->push.tars_port);
            break;
        case O_TARS_CONNS:
            rc = parse_int("--tars-max-conns", optarg, 1, 4096,
                           &o->push.tars_max_conns);
            break;
        case O_DB: o->db = optarg; break;
        case O_RATE: {
            int v = 0;
            rc = parse_int("--rate-app", optarg, 0, 100000000, &v);
            o->push.rate_app = v;
            break;
        }
        case O_BURST: {
            int v = 0;
            rc = parse_int("--burst", optarg, 1, 100000000, &v);
            o->push.burst = v;
            break;
        }
        case O_MAX_PAYLOAD: {
            int v = 0;
            rc = parse_int("--max-payload", optarg, 1, 1 << 20, &v);
            o->push.max_payload = (uint32_t)v;
            if (o->push.max_body < (uint32_t)v * 2 + 4096)
                o->push.max_body = (uint32_t)v * 2 + 4096;
            break;
        }
        case O_NO_FSYNC: o->no_fsync = true; break;
        case O_ADMIN_HOST: o->admin.host = optarg; break;
        case O_ADMIN_PORT:
            rc = parse_int("--admin-port", optarg, 0, 65535, &o->admin.port);
            break;
        case O_DRAIN_GRACE:
            rc = parse_int("--drain-grace", optarg, 0, 600000, &o->drain_grace_ms);
            break;
        case 'h': serve_usage(stdout); return 1;
        default: serve_usage(stderr); return -1;
        }
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "herald serve: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (rc == 0 && o->gw.hb_min > o->gw.hb_max) {
        fprintf(stderr, "herald serve: --hb-min is above --hb-max\n");
        return -1;
    }
    return rc;
}

/* An empty store and no --app: a demo app, its credentials printed once
 * (a first run has no other way to learn them). */
static int add_demo_app(store_t *st) {
    store_app_t a;
    char key[128];
    int rc = store_app_create(st, "demo", &a, key, sizeof key);
    if (rc < 0) {
        fprintf(stderr, "herald serve: demo app: %s\n", store_strerror(rc));
        return rc;
    }
    printf("herald: demo app \"demo\" created (first start, no --app)\n"
           "herald:   API key     %s\n"
           "herald:   secret      %s\n"
           "herald:   mint a device token:\n"
           "herald:     herald token --app demo --device DEVICE --secret %s\n",
           key, a.secret, a.secret);
    return 0;
}

static void count_app(void *ctx, const store_app_t *a, int n_keys) {
    (void)a;
    (void)n_keys;
    ++*(int *)ctx;
}

/* One --app into the in-memory registry (it answers the gateway's secret
 * lookups without SQLite) and into the store (API keys are checked there). */
static int add_app(push_service_t *ps, store_t *st, const char *spec, int i) {
    const char *c1 = strchr(spec, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    int rc = push_app_add_spec(ps, spec);
    if (rc < 0 || !c2) {
        /* Not the spec itself: it holds the secret. */
        fprintf(stderr, "herald serve: --app #%d: %s\n", i + 1,
                push_strerror(rc < 0 ? rc : PUSH_E_INVALID));
        return rc < 0 ? rc : PUSH_E_INVALID;
    }
    char name[128], secret[PUSH_SECRET_MAX + 1];
    snprintf(name, sizeof name, "%.*s", (int)(c1 - spec), spec);
    snprintf(secret, sizeof secret, "%.*s", (int)(c2 - c1 - 1), c1 + 1);
    rc = store_app_put(st, name, secret, c2 + 1);
    if (rc < 0) {
        fprintf(stderr, "herald serve: --app #%d: store: %s\n", i + 1,
                store_strerror(rc));
        return PUSH_E_EXISTS;
    }
    return 0;
}

/* Apps not given with --app are read from the store when first needed. */
static int add_apps(push_service_t *ps, store_t *st, const serve_opts_t *o) {
    for (int i = 0; i < o->napps; i++)
        if (add_app(ps, st, o->apps[i], i) < 0)
            return -1;
    if (o->napps)
        return 0;
    store_reader_t *r;
    int n = 0;
    if (store_reader_new(st, &r) == 0) {
        (void)store_app_list(r, count_app, &n); /* 0 apps on failure */
        store_reader_free(r);
    }
    if (n == 0)
        return add_demo_app(st);
    printf("herald: %d app(s) in the store (herald app list)\n", n);
    return 0;
}

/* Blocks the stop signals in every thread (workers inherit the mask) so
 * the main thread alone takes them with sigwait. */
static void block_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
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

int cli_serve(int argc, char **argv) {
    serve_opts_t o;
    memset(&o, 0, sizeof o);
    gw_config_defaults(&o.gw);
    push_config_defaults(&o.push);
    o.push.tars_port = 10000;
    ops_admin_config_defaults(&o.admin);
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc > 0 ? 0 : 2;

    sigset_t stop;
    block_signals(&stop);
    store_config_t sc;
    store_config_defaults(&sc);
    sc.path = cli_db_path(o.db);
    sc.synchronous_full = !o.no_fsync;
    store_t *st = NULL;
    if ((rc = store_open(&sc, &st)) < 0) {
        fprintf(stderr, "herald serve: store %s: %s\n", sc.path,
                store_strerror(rc));
        return 1;
    }
    printf("herald: store %s\n", sc.path);
    o.push.store = st;
    push_service_t *ps = push_service_new(&o.push);
    if (!ps || add_apps(ps, st, &o) < 0) {
        push_service_free(ps);
        store_close(st);
        return 1;
    }
    /* Before the workers start, so they count from their first event. */
    (void)metrics_herald_init(); /* static storage: cannot fail here */
    gw_t *gw = gw_new(&o.gw, push_service_gw_iface(ps));
    if (!gw || (rc = gw_start(gw)) < 0) {
        fprintf(stderr, "herald serve: device port %d: %s\n", o.gw.port,
                strerror(gw ? -rc : ENOMEM));
        gw_free(gw);
        push_service_free(ps);
        store_close(st);
        return 1;
    }
    printf("herald: device port %d (tcp+ws)\n", gw_port(gw));
    if ((rc = push_service_start(ps, gw)) < 0) {
        fprintf(stderr, "herald serve: push API port %d: %s\n",
                o.push.http_port, strerror(-rc));
        fprintf(stderr, "herald serve: (or TARS port %d)\n", o.push.tars_port);
        gw_drain(gw, 0);
        gw_free(gw);
        push_service_free(ps);
        store_close(st);
        return 1;
    }
    if (push_service_tars_port(ps) >= 0)
        printf("herald: push TARS tcp://%s:%d (herald.PushServer.PushAPIObj)\n",
               o.push.tars_host ? o.push.tars_host
               : o.push.http_host ? o.push.http_host : "127.0.0.1",
               push_service_tars_port(ps));
    printf("herald: push API http://%s:%d\n",
           o.push.http_host ? o.push.http_host : "127.0.0.1",
           push_service_http_port(ps));
    /* The admin port's view of the store: readiness, timelines. */
    ops_store_t *ops_st = ops_store_new(st);
    if (ops_st) {
        o.admin.ctx = ops_st;
        o.admin.store_ready = ops_store_ready;
        o.admin.message_timeline = ops_store_timeline;
    }
    ops_admin_t *admin = start_admin(&o.admin, gw);
    fflush(stdout);

    if (o.pid_file && write_pid_file(o.pid_file) < 0)
        fprintf(stderr, "herald serve: --pid-file %s: %s\n", o.pid_file,
                strerror(errno));

    /* systemd (Type=notify): every listener is bound, /readyz is 200. */
    (void)ops_sd_notify("READY=1"); /* outside systemd: a no-op */
    int sig = ops_sd_wait_signal(&stop); /* feeds a systemd watchdog */
    if (o.pid_file) unlink(o.pid_file);
    log_info("draining", "signal=%d", sig);
    ops_admin_set_draining(admin, true);
    (void)ops_sd_notify("STOPPING=1");
    if (o.drain_grace_ms > 0) usleep((useconds_t)o.drain_grace_ms * 1000);
    push_service_stop(ps);
    gw_drain(gw, DRAIN_MS);
    stop_admin(admin);
    ops_store_free(ops_st); /* its reader goes before store_close */
    gw_free(gw);
    push_service_free(ps);
    store_close(st);
    return 0;
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
            fprintf(ch == 'h' ? stdout : stderr,
                    "usage: herald drain --pid-file PATH [--timeout SECONDS]\n\n"
                    "Asks the `herald serve` started with that --pid-file to drain\n"
                    "(devices are kicked with ERR_DRAINING) and waits until it exits.\n");
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
