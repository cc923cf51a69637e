/*
 * metrics_herald: registration of herald's metric families (the table) and
 * the process gauges read from /proc/self at scrape time.
 */
#include "ops/metrics_herald.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "Protocol.h"

static const char *const TRANSPORTS[] = {"tcp", "ws_json", "ws_jce", NULL};
static const char *const CMDS[] = {"hello",     "heartbeat",   "push", "ack",
                                   "subscribe", "unsubscribe", "sync", "kick",
                                   "bye",       "unknown",     NULL};
static const char *const RESULTS[] = {
    "ok", "bad_request", "unauthorized", "rate_limited", "error", NULL};
static const char *const REASONS[] = {"closed",
                                      "heartbeat_timeout",
                                      "slow_consumer",
                                      "duplicate_login",
                                      "draining",
                                      "protocol_error",
                                      "auth",
                                      "server_error",
                                      "peer_gone",
                                      "other",
                                      NULL};
static const char *const ROUTES[] = {"push_device", "push_multi", "push_online",
                                     "push_all",    "message",    "other",
                                     NULL};
static const char *const STATUSES[] = {"2xx", "4xx",   "429",
                                       "5xx", "other", NULL};
static const char *const FUNCS[] = {"pushSingleDevice",
                                    "pushMultiDevice",
                                    "pushAllOnlineDevice",
                                    "pushAllDevice",
                                    "tars_ping",
                                    "other",
                                    NULL};
static const char *const RPC_RESULTS[] = {"ok", "error", NULL};
static const char *const PUSH_OPS[] = {"single", "multi", "all_online", "all",
                                       NULL};
static const char *const STORE_OPS[] = {"append", "fetch", "ack",
                                        "expire", "other", NULL};
static const char *const QUEUES[] = {"store", "mailbox", "delivery", NULL};
static const char *const REFUSED_WHAT[] = {"connection", "push", NULL};
static const char *const REFUSED_WHY[] = {
    "max_conns",  "accept_rate", "per_ip", "memory",
    "rate_limit", "queue_full",  NULL};
static const char *const DROP_QUEUES[] = {"store", "sync", "status", "mailbox",
                                          NULL};
static const char *const LISTENERS[] = {"device", "api", "tars", "admin", NULL};
static const char *const APIS[] = {"http", "tars", NULL};
static const char *const TIMEOUTS[] = {"head", "idle", NULL};
static const char *const AUTH_REASONS[] = {"bad_token",      "token_expired",
                                           "token_too_long", "token_revoked",
                                           "other",          NULL};

static double read_rss(void *ctx, unsigned a, unsigned b);
static double read_fds(void *ctx, unsigned a, unsigned b);
static double read_max_fds(void *ctx, unsigned a, unsigned b);
static double read_threads(void *ctx, unsigned a, unsigned b);

#define L1(n, v) .labels = {n}, .values = {v}
#define L2(n1, v1, n2, v2) .labels = {n1, n2}, .values = {v1, v2}

static const metrics_def_t DEFS[M_HERALD_COUNT] = {
    [M_CONNECTIONS] = {"herald_connections",
                       "Authenticated device sessions open now, by transport.",
                       METRICS_GAUGE, L1("transport", TRANSPORTS)},
    [M_GW_SOCKETS] = {"herald_gateway_sockets",
                      "Device-port sockets open now, authenticated or not.",
                      METRICS_GAUGE_FN},
    [M_CONNECTS] = {"herald_connects_total",
                    "Device sessions authenticated, by transport.",
                    METRICS_COUNTER, L1("transport", TRANSPORTS)},
    [M_DISCONNECTS] = {"herald_disconnects_total",
                       "Authenticated device sessions ended, by reason.",
                       METRICS_COUNTER, L1("reason", REASONS)},
    [M_HEARTBEATS] = {"herald_heartbeats_total", "Heartbeats answered.",
                      METRICS_COUNTER},
    [M_DEVICE_CMDS] = {"herald_device_commands_total",
                       "Device commands handled, by command and result.",
                       METRICS_COUNTER, L2("cmd", CMDS, "result", RESULTS)},
    [M_DEVICE_CMD_LATENCY] = {"herald_device_command_duration_seconds",
                              "Time to handle a device command, by command.",
                              METRICS_HISTOGRAM, L1("cmd", CMDS)},
    [M_SLOW_CONSUMERS] =
        {"herald_slow_consumers_total",
         "Connections cut off because their output queue overflowed.",
         METRICS_COUNTER},
    [M_DELIVERIES] = {"herald_deliveries_total",
                      "Pushes written to a device socket.", METRICS_COUNTER},
    [M_DELIVERY_WRITTEN] =
        {"herald_delivery_written_latency_seconds",
         "Time from a push being accepted to its write to the device socket "
         "(millisecond resolution).",
         METRICS_HISTOGRAM},
    [M_ACKS] = {"herald_acks_total", "Ack commands received from devices.",
                METRICS_COUNTER},
    [M_HTTP_REQUESTS] = {"herald_http_requests_total",
                         "Push API HTTP requests, by route and status class.",
                         METRICS_COUNTER,
                         L2("route", ROUTES, "status", STATUSES)},
    [M_HTTP_LATENCY] = {"herald_http_request_duration_seconds",
                        "Push API HTTP request handling time, by route.",
                        METRICS_HISTOGRAM, L1("route", ROUTES)},
    [M_TARS_CALLS] = {"herald_tars_calls_total",
                      "TARS RPC calls, by function and result.",
                      METRICS_COUNTER,
                      L2("func", FUNCS, "result", RPC_RESULTS)},
    [M_TARS_LATENCY] = {"herald_tars_call_duration_seconds",
                        "TARS RPC call handling time, by function.",
                        METRICS_HISTOGRAM, L1("func", FUNCS)},
    [M_PUSHES] = {"herald_pushes_total",
                  "Push operations accepted, by operation.", METRICS_COUNTER,
                  L1("op", PUSH_OPS)},
    [M_EXPIRIES] = {"herald_expired_total",
                    "Stored messages removed by the expiry sweeper.",
                    METRICS_COUNTER_FN},
    [M_DELIVERY_ACKED] =
        {"herald_delivery_acked_latency_seconds",
         "Time from a push being accepted to the device's ack.",
         METRICS_HISTOGRAM},
    [M_STORE_LATENCY] = {"herald_store_op_duration_seconds",
                         "Store operation time, by operation.",
                         METRICS_HISTOGRAM, L1("op", STORE_OPS)},
    [M_STORE_ERRORS] = {"herald_store_errors_total",
                        "Store operations that failed, by operation.",
                        METRICS_COUNTER, L1("op", STORE_OPS)},
    [M_STORE_ROWS] =
        {"herald_store_rows_written_total",
         "Rows the store inserted, updated or deleted (a broadcast to every "
         "device is a constant number, whatever the device count).",
         METRICS_COUNTER_FN},
    [M_STORE_COMMITS] =
        {"herald_store_commits_total",
         "Store transactions committed (group commit: many writes each).",
         METRICS_COUNTER_FN},
    [M_QUEUE_DEPTH] = {"herald_queue_depth",
                       "Items waiting in an internal queue (read at scrape).",
                       METRICS_GAUGE_FN, L1("queue", QUEUES)},
    [M_STORE_DISK_FULL] =
        {"herald_store_disk_full",
         "1 while the store's disk is full: durable pushes are refused (503) "
         "and nothing is lost.",
         METRICS_GAUGE_FN},
    [M_STORE_FAULT] =
        {"herald_store_write_failing",
         "1 while the store's writes fail (a full disk or an I/O error).",
         METRICS_GAUGE_FN},
    [M_INBOX_DROPPED] =
        {"herald_inbox_dropped_total",
         "Stored messages dropped undelivered because their device's inbox "
         "was over --inbox-max (oldest first).",
         METRICS_COUNTER_FN},
    [M_OVERLOADED] =
        {"herald_overloaded",
         "1 while resident memory is above --memory-high: new work is "
         "refused.",
         METRICS_GAUGE_FN},
    [M_MEMORY_HIGH] = {"herald_memory_high_bytes",
                       "The memory high watermark (--memory-high), 0 = off.",
                       METRICS_GAUGE_FN},
    [M_REFUSED] =
        {"herald_refused_total",
         "Device connections and pushes refused with an overload code, by "
         "what and reason.",
         METRICS_COUNTER, L2("what", REFUSED_WHAT, "reason", REFUSED_WHY)},
    [M_REFUSED_UNANSWERED] =
        {"herald_refused_unanswered_total",
         "Refused device connections closed at accept without an answer "
         "(too many refusals pending).",
         METRICS_COUNTER},
    [M_QUEUE_DROPPED] =
        {"herald_queue_dropped_total",
         "Items an internal queue refused because it was full, by queue.",
         METRICS_COUNTER, L1("queue", DROP_QUEUES)},
    [M_LISTENER_PAUSED] =
        {"herald_listener_paused_total",
         "Times a listener stopped accepting for a back-off because the "
         "process was out of descriptors (EMFILE) or socket memory, by "
         "listener.",
         METRICS_COUNTER, L1("listener", LISTENERS)},
    [M_API_TIMEOUTS] =
        {"herald_api_timeouts_total",
         "Push API connections closed by a timeout: head = a request (HTTP) "
         "or frame (TARS) not whole in time, idle = nothing asked for too "
         "long.",
         METRICS_COUNTER, L2("api", APIS, "kind", TIMEOUTS)},
    [M_SYNC_WAITING] =
        {"herald_sync_waiting",
         "Device syncs (stored backlogs) waiting for their connection to "
         "write the last page before the next: devices catching up at their "
         "own pace.",
         METRICS_GAUGE},
    [M_AUTH_FAILURES] =
        {"herald_auth_failures_total",
         "Device logins refused (HELLO, WebSocket upgrade, POST /v1/yyb), by "
         "reason.",
         METRICS_COUNTER, L1("reason", AUTH_REASONS)},
    [M_REVOCATIONS] =
        {"herald_token_revocations_total",
         "Device token revocations applied (DELETE /v1/devices/{id}/tokens, "
         "herald device revoke).",
         METRICS_COUNTER},
    [M_UNKNOWN_DEVICES] =
        {"herald_unknown_device_rejections_total",
         "Push targets refused because the device never connected "
         "(unknownDevice = reject).",
         METRICS_COUNTER},
    [M_PROC_RSS] = {"process_resident_memory_bytes",
                    "Resident memory size in bytes.", METRICS_GAUGE_FN,
                    .read = read_rss},
    [M_PROC_FDS] = {"process_open_fds", "Open file descriptors.",
                    METRICS_GAUGE_FN, .read = read_fds},
    [M_PROC_MAX_FDS] =
        {"process_max_fds",
         "Maximum number of open file descriptors (the soft RLIMIT_NOFILE).",
         METRICS_GAUGE_FN, .read = read_max_fds},
    [M_PROC_THREADS] = {"process_threads", "Threads of the process.",
                        METRICS_GAUGE_FN, .read = read_threads},
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_rc;

static void do_init(void) {
    for (int id = 0; id < M_HERALD_COUNT; id++) {
        int rc = metrics_register(id, &DEFS[id]);
        if (rc < 0 && rc != METRICS_E_EXISTS) {
            init_rc = rc;
            return;
        }
    }
}

int metrics_herald_init(void) {
    pthread_once(&once, do_init);
    return init_rc;
}

unsigned mh_cmd_idx(int cmd) {
    return cmd >= herald_CMD_HELLO && cmd <= herald_CMD_BYE
               ? (unsigned)(cmd - herald_CMD_HELLO)
               : MH_NCMDS - 1;
}

unsigned mh_result_idx(int code) {
    switch (code) {
    case herald_ERR_OK: return MH_RES_OK;
    case herald_ERR_NOT_AUTHED:
    case herald_ERR_BAD_TOKEN:
    case herald_ERR_TOKEN_EXPIRED:
    case herald_ERR_TOKEN_TOO_LONG:
    case herald_ERR_TOKEN_REVOKED: return MH_RES_UNAUTHORIZED;
    case herald_ERR_RATE_LIMITED: return MH_RES_RATE_LIMITED;
    case herald_ERR_BAD_PACKAGE:
    case herald_ERR_UNKNOWN_CMD:
    case herald_ERR_BAD_REQUEST:
    case herald_ERR_BAD_TOPIC:
    case herald_ERR_TOO_MANY_TOPICS:
    case herald_ERR_ALREADY_AUTHED: return MH_RES_BAD_REQUEST;
    default: return MH_RES_ERROR;
    }
}

unsigned mh_reason_idx(int code) {
    switch (code) {
    case 0: return MH_DIS_CLOSED;
    case herald_ERR_HEARTBEAT_TIMEOUT: return MH_DIS_HEARTBEAT_TIMEOUT;
    case herald_ERR_SLOW_CONSUMER: return MH_DIS_SLOW_CONSUMER;
    case herald_ERR_DUPLICATE_LOGIN: return MH_DIS_DUPLICATE_LOGIN;
    case herald_ERR_DRAINING: return MH_DIS_DRAINING;
    case herald_ERR_BAD_PREFACE:
    case herald_ERR_BAD_VERSION:
    case herald_ERR_FRAME_TOO_LARGE:
    case herald_ERR_BAD_PACKAGE:
    case herald_ERR_UNKNOWN_CMD:
    case herald_ERR_BAD_REQUEST: return MH_DIS_PROTOCOL_ERROR;
    case herald_ERR_NOT_AUTHED:
    case herald_ERR_BAD_TOKEN:
    case herald_ERR_TOKEN_EXPIRED:
    case herald_ERR_TOKEN_TOO_LONG:
    case herald_ERR_TOKEN_REVOKED: return MH_DIS_AUTH;
    case herald_ERR_SERVER: return MH_DIS_SERVER_ERROR;
    default: return MH_DIS_OTHER;
    }
}

unsigned mh_auth_idx(int code) {
    switch (code) {
    case herald_ERR_BAD_TOKEN: return MH_AUTH_BAD_TOKEN;
    case herald_ERR_TOKEN_EXPIRED: return MH_AUTH_EXPIRED;
    case herald_ERR_TOKEN_TOO_LONG: return MH_AUTH_TOO_LONG;
    case herald_ERR_TOKEN_REVOKED: return MH_AUTH_REVOKED;
    default: return MH_AUTH_OTHER;
    }
}

unsigned mh_transport_idx(int transport) {
    /* enum gw_transport: GW_TCP = 1, GW_WS_JSON = 2, GW_WS_JCE = 3 */
    return transport >= 1 && transport <= 3 ? (unsigned)transport - 1
                                            : UINT32_MAX;
}

unsigned mh_status_idx(int status) {
    if (status == 429) return MH_ST_429;
    if (status >= 200 && status < 300) return MH_ST_2XX;
    if (status >= 400 && status < 500) return MH_ST_4XX;
    if (status >= 500 && status < 600) return MH_ST_5XX;
    return MH_ST_OTHER;
}

static uint64_t clock_us(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t mh_mono_us(void) { return clock_us(CLOCK_MONOTONIC); }
uint64_t mh_wall_us(void) { return clock_us(CLOCK_REALTIME); }

/* ---- /proc/self readers (scrape time only) ------------------------------ */

static double read_rss(void *ctx, unsigned a, unsigned b) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size, rss;
    int n = f ? fscanf(f, "%lu %lu", &size, &rss) : 0;
    if (f) fclose(f);
    return n == 2 ? (double)rss * (double)sysconf(_SC_PAGESIZE) : NAN;
}

static double read_fds(void *ctx, unsigned a, unsigned b) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return NAN;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return (double)(n - 1); /* not the descriptor opendir itself holds */
}

/* The soft limit is the one open() and accept() fail at; unlimited is
 * reported as NaN, i.e. left out of the scrape. */
static double read_max_fds(void *ctx, unsigned a, unsigned b) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return NAN;
    return (double)rl.rlim_cur;
}

static double read_threads(void *ctx, unsigned a, unsigned b) {
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    /* The command name may hold spaces and ')': fields count from the
     * last ')'.  num_threads is field 20, the 18th after it. */
    char *p = strrchr(buf, ')');
    if (!p) return NAN;
    long v = 0;
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " "))
        if (++field == 20) {
            v = strtol(tok, NULL, 10);
            break;
        }
    return field == 20 ? (double)v : NAN;
}
