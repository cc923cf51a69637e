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
#include "push/push.h"

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
            "  --app NAME:SECRET:APIKEY   an application (repeatable); without\n"
            "                     one, a demo app with random credentials\n"
            "  --hb-min S, --hb-max S     accepted heartbeat range (10, 600)\n"
            "  --max-conns N      device connections at most (0 = no limit)\n"
            "  --pid-file PATH    write the pid there (for `herald drain`)\n"
            "  --head-timeout S   seconds a client has for its HTTP head (10)\n"
            "  --log-level L      debug, info, warn, error (info)\n");
}

typedef struct serve_opts {
    gw_config_t gw;
    push_config_t push;
    const char *apps[MAX_APPS];
    int napps;
    const char *pid_file;
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
           O_HB_MIN, O_HB_MAX, O_MAX_CONNS, O_HEAD_TIMEOUT, O_LOG, O_PID_FILE };
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

static int random_hex(char *out, size_t bytes) {
    unsigned char raw[32];
    if (bytes > sizeof raw || RAND_bytes(raw, (int)bytes) != 1) return -1;
    for (size_t i = 0; i < bytes; i++) sprintf(out + 2 * i, "%02x", raw[i]);
    return 0;
}

/* No --app: a demo app, its credentials printed once (a first run has no
 * other way to learn them). */
static int add_demo_app(push_service_t *ps) {
    char secret[65], key[49], spec[160];
    if (random_hex(secret, 32) < 0 || random_hex(key, 24) < 0) return -1;
    snprintf(spec, sizeof spec, "demo:%s:%s", secret, key);
    int rc = push_app_add_spec(ps, spec);
    if (rc < 0) return rc;
    printf("herald: demo app \"demo\" (no --app given)\n"
           "herald:   API key     %s\n"
           "herald:   secret      %s\n"
           "herald:   mint a device token:\n"
           "herald:     herald token --app demo --device DEVICE --secret %s\n",
           key, secret, secret);
    return 0;
}

static int add_apps(push_service_t *ps, const serve_opts_t *o) {
    if (o->napps == 0) return add_demo_app(ps);
    for (int i = 0; i < o->napps; i++) {
        int rc = push_app_add_spec(ps, o->apps[i]);
        if (rc < 0) {
            /* Not the spec itself: it holds the secret. */
            fprintf(stderr, "herald serve: --app #%d: %s\n", i + 1,
                    push_strerror(rc));
            return rc;
        }
    }
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

int cli_serve(int argc, char **argv) {
    serve_opts_t o;
    memset(&o, 0, sizeof o);
    gw_config_defaults(&o.gw);
    push_config_defaults(&o.push);
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc > 0 ? 0 : 2;

    sigset_t stop;
    block_signals(&stop);
    push_service_t *ps = push_service_new(&o.push);
    if (!ps || add_apps(ps, &o) < 0) {
        push_service_free(ps);
        return 1;
    }
    gw_t *gw = gw_new(&o.gw, push_service_gw_iface(ps));
    if (!gw || (rc = gw_start(gw)) < 0) {
        fprintf(stderr, "herald serve: device port %d: %s\n", o.gw.port,
                strerror(gw ? -rc : ENOMEM));
        gw_free(gw);
        push_service_free(ps);
        return 1;
    }
    printf("herald: device port %d (tcp+ws)\n", gw_port(gw));
    if ((rc = push_service_start(ps, gw)) < 0) {
        fprintf(stderr, "herald serve: push API port %d: %s\n",
                o.push.http_port, strerror(-rc));
        gw_drain(gw, 0);
        gw_free(gw);
        push_service_free(ps);
        return 1;
    }
    printf("herald: push API http://%s:%d\n",
           o.push.http_host ? o.push.http_host : "127.0.0.1",
           push_service_http_port(ps));
    fflush(stdout);

    if (o.pid_file && write_pid_file(o.pid_file) < 0)
        fprintf(stderr, "herald serve: --pid-file %s: %s\n", o.pid_file,
                strerror(errno));

    int sig = 0;
    sigwait(&stop, &sig);
    if (o.pid_file) unlink(o.pid_file);
    log_info("draining", "signal=%d", sig);
    push_service_stop(ps);
    gw_drain(gw, DRAIN_MS);
    gw_free(gw);
    push_service_free(ps);
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
