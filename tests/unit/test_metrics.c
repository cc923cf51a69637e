/*
 * metrics registry (render format, buckets, labels, threads) and the admin
 * listener (every route, over real loopback sockets).  Generic families use
 * ids from 100 up so they never collide with herald's own (metrics_herald.h).
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/net.h"
#include "ops/admin.h"
#include "ops/metrics.h"
#include "ops/metrics_herald.h"
#include "ops/ops_store.h"
#include "ops/sdnotify.h"
#include "store/store.h"
#include "test.h"

static const char *const CMDS[] = {"hello", "ack", NULL};
static const char *const RES[] = {"ok", "error", NULL};

static char *render(void) {
    metrics_buf_t b = {0};
    if (metrics_render(&b) < 0) return NULL;
    metrics_buf_printf(&b, "%s", ""); /* NUL-terminated even if empty */
    return b.p;
}

TEST(counter_with_two_labels_renders_every_child) {
    metrics_def_t d = {.name = "t_cmds_total",
                       .help = "Commands.",
                       .kind = METRICS_COUNTER,
                       .labels = {"cmd", "result"},
                       .values = {CMDS, RES}};
    CHECK_EQ_INT(metrics_register(100, &d), 0);
    metrics_inc(100, 1, 0);
    metrics_add(100, 1, 0, 4);
    metrics_inc(100, 0, 1);
    CHECK_EQ_INT(metrics_counter_get(100, 1, 0), 5);
    CHECK_EQ_INT(metrics_counter_sum(100), 6);
    char *s = render();
    CHECK(s);
    CHECK(strstr(s, "# HELP t_cmds_total Commands.\n"
                    "# TYPE t_cmds_total counter\n"
                    "t_cmds_total{cmd=\"hello\",result=\"ok\"} 0\n"
                    "t_cmds_total{cmd=\"hello\",result=\"error\"} 1\n"
                    "t_cmds_total{cmd=\"ack\",result=\"ok\"} 5\n"
                    "t_cmds_total{cmd=\"ack\",result=\"error\"} 0\n"));
    free(s);
}

TEST(out_of_range_and_wrong_kind_updates_are_dropped) {
    metrics_def_t d = {.name = "t_drop_total",
                       .help = "x",
                       .kind = METRICS_COUNTER,
                       .labels = {"cmd"},
                       .values = {CMDS}};
    CHECK_EQ_INT(metrics_register(101, &d), 0);
    metrics_inc(101, 2, 0);          /* only 2 values */
    metrics_inc(101, 0, 1);          /* no second label */
    metrics_observe(101, 0, 0, 10);  /* not a histogram */
    metrics_gauge_add(101, 0, 0, 3); /* not a gauge */
    metrics_inc(127, 0, 0);          /* never registered */
    metrics_inc(-1, 0, 0);
    metrics_inc(100000, 0, 0);
    CHECK_EQ_INT(metrics_counter_sum(101), 0);
    metrics_inc(101, 1, 0);
    CHECK_EQ_INT(metrics_counter_get(101, 1, 0), 1);
}

TEST(bad_definitions_are_refused) {
    metrics_def_t d = {.name = "9bad", .help = "x", .kind = METRICS_COUNTER};
    CHECK_EQ_INT(metrics_register(102, &d), METRICS_E_INVALID);
    d.name = "ok_name";
    d.kind = 0;
    CHECK_EQ_INT(metrics_register(102, &d), METRICS_E_INVALID);
    d.kind = METRICS_COUNTER;
    d.labels[0] = "le";
    d.values[0] = CMDS;
    CHECK_EQ_INT(metrics_register(102, &d), METRICS_E_INVALID);
    d.labels[0] = "bad-label";
    CHECK_EQ_INT(metrics_register(102, &d), METRICS_E_INVALID);
    d.labels[0] = NULL;
    d.labels[1] = "second_without_first";
    d.values[1] = CMDS;
    CHECK_EQ_INT(metrics_register(102, &d), METRICS_E_INVALID);
    d.labels[1] = NULL;
    CHECK_EQ_INT(metrics_register(METRICS_MAX_FAMILIES, &d), METRICS_E_INVALID);
    CHECK_EQ_INT(metrics_register(102, &d), 0);
    CHECK_EQ_INT(metrics_register(102, &d), METRICS_E_EXISTS);
    CHECK(metrics_registered(102));
    CHECK(!metrics_registered(103));
}

TEST(label_values_and_help_are_escaped) {
    static const char *const odd[] = {"a\"b\\c\nd", NULL};
    metrics_def_t d = {.name = "t_esc",
                       .help = "line1\nback\\slash \"q\"",
                       .kind = METRICS_GAUGE,
                       .labels = {"v"},
                       .values = {odd}};
    CHECK_EQ_INT(metrics_register(104, &d), 0);
    metrics_gauge_set(104, 0, 0, -7);
    CHECK_EQ_INT(metrics_gauge_get(104, 0, 0), -7);
    metrics_gauge_add(104, 0, 0, 10);
    char *s = render();
    CHECK(s);
    CHECK(strstr(
        s, "# HELP t_esc line1\\nback\\\\slash \"q\"\n# TYPE t_esc gauge\n"
           "t_esc{v=\"a\\\"b\\\\c\\nd\"} 3\n"));
    free(s);
}

TEST(bucket_edges) {
    CHECK_EQ_INT(metrics_bucket_of(0), 0);
    CHECK_EQ_INT(metrics_bucket_of(50), 0);
    CHECK_EQ_INT(metrics_bucket_of(51), 1);
    CHECK_EQ_INT(metrics_bucket_of(1000), 4);
    CHECK_EQ_INT(metrics_bucket_of(1001), 5);
    CHECK_EQ_INT(metrics_bucket_of(10000000), METRICS_NBUCKETS - 1);
    CHECK_EQ_INT(metrics_bucket_of(10000001), METRICS_NBUCKETS);
    for (unsigned i = 1; i < METRICS_NBUCKETS; i++)
        CHECK(METRICS_BUCKETS_US[i] > METRICS_BUCKETS_US[i - 1]);
}

TEST(histogram_renders_cumulative_buckets_sum_and_count) {
    metrics_def_t d = {.name = "t_lat_seconds",
                       .help = "Latency.",
                       .kind = METRICS_HISTOGRAM,
                       .labels = {"cmd"},
                       .values = {CMDS}};
    CHECK_EQ_INT(metrics_register(105, &d), 0);
    metrics_observe(105, 1, 0, 40);
    metrics_observe(105, 1, 0, 60);
    metrics_observe(105, 1, 0, 20000000); /* 20 s: only +Inf */
    char *s = render();
    CHECK(s);
    CHECK(strstr(s, "# TYPE t_lat_seconds histogram\n"));
    CHECK(strstr(s, "t_lat_seconds_bucket{cmd=\"ack\",le=\"5e-05\"} 1\n"
                    "t_lat_seconds_bucket{cmd=\"ack\",le=\"0.0001\"} 2\n"
                    "t_lat_seconds_bucket{cmd=\"ack\",le=\"0.00025\"} 2\n"));
    CHECK(strstr(s, "t_lat_seconds_bucket{cmd=\"ack\",le=\"10\"} 2\n"
                    "t_lat_seconds_bucket{cmd=\"ack\",le=\"+Inf\"} 3\n"
                    "t_lat_seconds_sum{cmd=\"ack\"} 20.000100\n"
                    "t_lat_seconds_count{cmd=\"ack\"} 3\n"));
    CHECK(strstr(s, "t_lat_seconds_bucket{cmd=\"hello\",le=\"+Inf\"} 0\n"));
    free(s);
    metrics_hist_t h;
    metrics_hist_get(105, 1, 0, &h);
    CHECK_EQ_INT(h.count, 3);
    CHECK_EQ_INT(h.sum_us, 20000100);
    metrics_hist_get(105, UINT32_MAX, UINT32_MAX, &h);
    CHECK_EQ_INT(h.count, 3);
}

TEST(quantiles_interpolate_within_a_bucket) {
    metrics_hist_t h;
    memset(&h, 0, sizeof h);
    CHECK(isnan(metrics_hist_quantile(&h, 0.5)));
    /* 100 values in (1 ms, 2.5 ms]: the median is halfway, 1.75 ms */
    h.bucket[5] = 100;
    h.count = 100;
    CHECK(fabs(metrics_hist_quantile(&h, 0.5) - 1750) < 1e-6);
    CHECK(fabs(metrics_hist_quantile(&h, 0.99) - 2485) < 1e-6);
    /* everything beyond 10 s: the highest finite bound */
    memset(&h, 0, sizeof h);
    h.bucket[METRICS_NBUCKETS] = 3;
    h.count = 3;
    CHECK(metrics_hist_quantile(&h, 0.5) == 10000000.0);
    metrics_hist_t a = h, d;
    a.bucket[0] = 5;
    a.count = 8;
    metrics_hist_sub(&a, &h, &d);
    CHECK_EQ_INT(d.count, 5);
    CHECK_EQ_INT(d.bucket[0], 5);
    CHECK_EQ_INT(d.bucket[METRICS_NBUCKETS], 0);
}

static double read_twice(void *ctx, unsigned a, unsigned b) {
    return a == 1 ? NAN : 2.0 * *(int *)ctx;
}

TEST(callback_gauges_read_at_render_and_skip_nan) {
    metrics_def_t d = {.name = "t_cb",
                       .help = "cb",
                       .kind = METRICS_GAUGE_FN,
                       .labels = {"cmd"},
                       .values = {CMDS}};
    CHECK_EQ_INT(metrics_register(106, &d), 0);
    char *s = render();
    CHECK(s && !strstr(s, "t_cb")); /* no reader yet: absent */
    free(s);
    int v = 21;
    CHECK_EQ_INT(metrics_set_reader(106, read_twice, &v), 0);
    CHECK_EQ_INT(metrics_set_reader(100, read_twice, &v), METRICS_E_INVALID);
    s = render();
    CHECK(s);
    CHECK(strstr(s, "# TYPE t_cb gauge\nt_cb{cmd=\"hello\"} 42\n"));
    CHECK(!strstr(s, "t_cb{cmd=\"ack\"}"));
    free(s);
    CHECK_EQ_INT(metrics_set_reader(106, NULL, NULL), 0);
}

#define NTHREADS 8
#define PER_THREAD 200000

static void *hammer(void *arg) {
    for (int i = 0; i < PER_THREAD; i++) {
        metrics_inc(107, 0, (unsigned)i & 1);
        metrics_observe(108, 0, 0, (uint64_t)(i % 3000));
    }
    return arg;
}

TEST(updates_from_many_threads_sum_exactly) {
    metrics_def_t c = {.name = "t_conc_total",
                       .help = "x",
                       .kind = METRICS_COUNTER,
                       .labels = {"cmd", "result"},
                       .values = {CMDS, RES}};
    metrics_def_t h = {
        .name = "t_conc_seconds", .help = "x", .kind = METRICS_HISTOGRAM};
    CHECK_EQ_INT(metrics_register(107, &c), 0);
    CHECK_EQ_INT(metrics_register(108, &h), 0);
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        CHECK_EQ_INT(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
    CHECK_EQ_INT(metrics_counter_get(107, 0, 0), NTHREADS * PER_THREAD / 2);
    CHECK_EQ_INT(metrics_counter_get(107, 0, 1), NTHREADS * PER_THREAD / 2);
    metrics_hist_t hs;
    metrics_hist_get(108, 0, 0, &hs);
    CHECK_EQ_INT(hs.count, NTHREADS * PER_THREAD);
    uint64_t per = 0;
    for (int i = 0; i < PER_THREAD; i++) per += (uint64_t)(i % 3000);
    CHECK_EQ_INT(hs.sum_us, per * NTHREADS);
}

TEST(herald_families_register_and_render) {
    CHECK_EQ_INT(metrics_herald_init(), 0);
    CHECK_EQ_INT(metrics_herald_init(), 0); /* idempotent */
    CHECK_EQ_INT(mh_cmd_idx(1), 0);
    CHECK_EQ_INT(mh_cmd_idx(9), 8);
    CHECK_EQ_INT(mh_cmd_idx(77), MH_NCMDS - 1);
    CHECK(!strcmp(metrics_label_value(M_DEVICE_CMDS, 0, mh_cmd_idx(2)),
                  "heartbeat"));
    CHECK_EQ_INT(mh_result_idx(0), MH_RES_OK);
    CHECK_EQ_INT(mh_reason_idx(1013), MH_DIS_HEARTBEAT_TIMEOUT);
    CHECK_EQ_INT(mh_status_idx(429), MH_ST_429);
    metrics_inc(M_DEVICE_CMDS, mh_cmd_idx(2), mh_result_idx(0));
    char *s = render();
    CHECK(s);
    CHECK(strstr(
        s,
        "herald_device_commands_total{cmd=\"heartbeat\",result=\"ok\"} 1\n"));
    CHECK(strstr(s,
                 "# TYPE herald_delivery_written_latency_seconds histogram\n"));
    CHECK(strstr(s, "# TYPE process_resident_memory_bytes gauge\n"));
    CHECK(strstr(s, "\nprocess_threads "));
    CHECK(strstr(s, "\nprocess_open_fds "));
    struct rlimit rl; /* the fd limit, for alerts on process_open_fds */
    CHECK_EQ_INT(getrlimit(RLIMIT_NOFILE, &rl), 0);
    char want[64];
    snprintf(want, sizeof want, "\nprocess_max_fds %llu\n",
             (unsigned long long)rl.rlim_cur);
    CHECK(strstr(s, want));
    /* every line: a comment, or name[{labels}] value */
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *sp = strrchr(line, ' ');
        CHECK(sp && sp > line);
        char *end;
        strtod(sp + 1, &end);
        CHECK(*end == 0);
    }
    free(s);
}

/* ---- admin listener ------------------------------------------------------ */

/* GET path; returns the status and the body (malloc'd) in *body. */
static int http_get(int port, const char *path, char **body) {
    int fd;
    *body = NULL;
    if (net_connect_tcp("127.0.0.1", port, NULL, false, &fd) < 0) return -1;
    char req[256];
    int n =
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while (buf && len < cap - 1 && (r = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    if (!buf) return -1;
    buf[len] = 0;
    int status = 0;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1) status = -1;
    char *b = strstr(buf, "\r\n\r\n");
    *body = strdup(b ? b + 4 : "");
    free(buf);
    return status;
}

static bool fake_store_down;

static int store_ready(void *ctx, char *why, size_t cap) {
    if (!fake_store_down) return 0;
    snprintf(why, cap, "db \"locked\"");
    return -EIO;
}

static int timeline(void *ctx, const char *id, char **out) {
    if (strcmp(id, "m-1")) return -ENOENT;
    *out = strdup(
        "{\"id\":\"m-1\",\"steps\":[{\"step\":\"accepted\",\"at_ms\":1}]}");
    return 0;
}

TEST(admin_serves_every_route) {
    ops_admin_config_t cfg;
    ops_admin_config_defaults(&cfg);
    CHECK_EQ_INT(cfg.port, 9100);
    CHECK(!strcmp(cfg.host, "127.0.0.1"));
    cfg.port = 0;
    cfg.store_ready = store_ready;
    ops_admin_t *a = ops_admin_new(&cfg);
    CHECK(a);
    CHECK_EQ_INT(ops_admin_start(a), 0);
    int port = ops_admin_port(a);
    CHECK(port > 0);
    char *b;
    CHECK_EQ_INT(http_get(port, "/healthz", &b), 200);
    CHECK(!strcmp(b, "ok\n"));
    free(b);
    metrics_inc(M_PUSHES, MH_OP_SINGLE, 0);
    CHECK_EQ_INT(http_get(port, "/metrics", &b), 200);
    CHECK(strstr(b, "herald_pushes_total{op=\"single\"} 1\n"));
    free(b);
    CHECK_EQ_INT(http_get(port, "/readyz", &b), 200);
    CHECK(!strcmp(b, "{\"ready\":true}"));
    free(b);
    fake_store_down = true;
    CHECK_EQ_INT(http_get(port, "/readyz", &b), 503);
    CHECK(strstr(b, "\"reason\":\"store unreachable\""));
    json_t *j = json_loads(b, 0, NULL);
    CHECK(j);
    json_decref(j);
    free(b);
    fake_store_down = false;
    ops_admin_set_draining(a, true);
    CHECK_EQ_INT(http_get(port, "/readyz", &b), 503);
    CHECK(!strcmp(b, "{\"ready\":false,\"reason\":\"draining\"}"));
    free(b);
    CHECK_EQ_INT(http_get(port, "/api/messages/m-1", &b), 501);
    free(b);
    CHECK_EQ_INT(http_get(port, "/api/messages/bad%20id", &b), 400);
    free(b);
    CHECK_EQ_INT(http_get(port, "/dashboard", &b), 200);
    CHECK(strstr(b, "<title>herald dashboard</title>"));
    free(b);
    CHECK_EQ_INT(http_get(port, "/dashboard/dashboard.js", &b), 200);
    free(b);
    CHECK_EQ_INT(http_get(port, "/dashboard/../Makefile", &b), 404);
    free(b);
    CHECK_EQ_INT(http_get(port, "/nope", &b), 404);
    free(b);
    CHECK_EQ_INT(http_get(port, "/api/stats", &b), 200);
    j = json_loads(b, 0, NULL);
    CHECK(j);
    CHECK(json_is_integer(json_object_get(j, "connections")));
    CHECK_EQ_INT(json_integer_value(
                     json_object_get(json_object_get(j, "totals"), "pushes")),
                 1);
    CHECK(json_is_true(json_object_get(j, "draining")));
    CHECK(json_is_object(
        json_object_get(json_object_get(j, "commands"), "heartbeat")));
    json_decref(j);
    free(b);
    ops_admin_free(a);
}

TEST(admin_message_timeline_callback) {
    ops_admin_config_t cfg;
    ops_admin_config_defaults(&cfg);
    cfg.port = 0;
    cfg.message_timeline = timeline;
    ops_admin_t *a = ops_admin_new(&cfg);
    CHECK(a && ops_admin_start(a) == 0);
    char *b;
    CHECK_EQ_INT(http_get(ops_admin_port(a), "/api/messages/m-1", &b), 200);
    CHECK(strstr(b, "\"accepted\""));
    free(b);
    CHECK_EQ_INT(http_get(ops_admin_port(a), "/api/messages/m-2", &b), 404);
    free(b);
    ops_admin_stop(a);
    ops_admin_stop(a); /* twice is harmless */
    ops_admin_free(a);
}

/* ---- the store behind the admin port ---------------------------------- */

TEST(ops_store_readiness_timeline_and_figures) {
    char path[] = "/tmp/herald-test-ops-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    store_config_t sc;
    store_config_defaults(&sc);
    sc.path = path;
    sc.synchronous_full = false;
    store_t *st = NULL;
    CHECK_EQ_INT(store_open(&sc, &st), 0);
    ops_store_t *os = ops_store_new(st);
    CHECK(os);
    char why[64] = "";
    CHECK_EQ_INT(ops_store_ready(os, why, sizeof why), 0);
    char *j = NULL;
    CHECK_EQ_INT(ops_store_timeline(os, "nope", &j), -ENOENT);

    store_req_t r;
    memset(&r, 0, sizeof r);
    const char *devs[1] = {"d1"};
    int64_t seq = 0;
    r.op = STORE_OP_INBOX_APPEND;
    r.kind = STORE_KIND_SINGLE;
    r.msg.app = "app";
    r.msg.msg_id = "m-ops-1";
    r.msg.payload = (const uint8_t *)"hi";
    r.msg.payload_len = 2;
    r.msg.ttl = 60;
    r.msg.created_ms = 1700000000000;
    r.devices = devs;
    r.n_devices = 1;
    r.seqs = &seq;
    r.bseq = -1;
    CHECK_EQ_INT(store_submit_wait(st, &r), 0);
    CHECK_EQ_INT(ops_store_timeline(os, "m-ops-1", &j), 0);
    json_t *t = json_loads(j, 0, NULL);
    free(j);
    CHECK(t);
    CHECK(!strcmp(json_string_value(json_object_get(t, "kind")), "single"));
    CHECK(!strcmp(json_string_value(json_object_get(t, "app")), "app"));
    CHECK(!strcmp(json_string_value(json_object_get(t, "msgId")), "m-ops-1"));
    json_t *tl = json_object_get(t, "timeline");
    CHECK(json_object_size(tl) == STORE_EV_COUNT);
    CHECK(json_integer_value(json_object_get(json_object_get(tl, "accepted"),
                                             "at")) == 1700000000000);
    CHECK(json_object_get(tl, "dropped"));
    json_decref(t);

    metrics_buf_t b = {0};
    CHECK_EQ_INT(metrics_render(&b), 0);
    metrics_buf_printf(&b, "%s", "");
    CHECK(strstr(b.p, "herald_queue_depth{queue=\"store\"} "));
    CHECK(!strstr(
        b.p,
        "herald_queue_depth{queue=\"mailbox\"}")); /* no reader: left out */
    CHECK(strstr(
        b.p, "# TYPE herald_expired_total counter\nherald_expired_total 0\n"));
    metrics_buf_free(&b);

    ops_store_free(os);
    b = (metrics_buf_t){0};
    CHECK_EQ_INT(metrics_render(&b), 0);
    metrics_buf_printf(&b, "%s", "");
    CHECK(!strstr(b.p, "herald_expired_total")); /* readers cleared */
    metrics_buf_free(&b);
    store_close(st);
    unlink(path);
}

/* ---- sd_notify ------------------------------------------------------------ */

/* A datagram socket bound at name (path, or abstract if it starts '@'). */
static int notify_listener(const char *name) {
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@') sa.sun_path[0] = 0;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                                (name[0] == '/'));
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

TEST(sd_notify_sends_one_datagram_to_notify_socket) {
    unsetenv("NOTIFY_SOCKET");
    CHECK_EQ_INT(ops_sd_notify("READY=1"), 0); /* not under systemd */
    char path[64];
    snprintf(path, sizeof path, "/tmp/herald-notify-%ld", (long)getpid());
    unlink(path);
    int fd = notify_listener(path);
    CHECK(fd >= 0);
    setenv("NOTIFY_SOCKET", path, 1);
    CHECK_EQ_INT(ops_sd_notify("READY=1"), 1);
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    CHECK_EQ_INT(n, 7);
    CHECK(!memcmp(buf, "READY=1", 7));
    close(fd);
    unlink(path);

    char abs_name[64];
    snprintf(abs_name, sizeof abs_name, "@herald-notify-%ld", (long)getpid());
    fd = notify_listener(abs_name);
    CHECK(fd >= 0);
    setenv("NOTIFY_SOCKET", abs_name, 1);
    CHECK_EQ_INT(ops_sd_notify("STOPPING=1"), 1);
    n = recv(fd, buf, sizeof buf, 0);
    CHECK_EQ_INT(n, 10);
    CHECK(!memcmp(buf, "STOPPING=1", 10));
    close(fd);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    CHECK_EQ_INT(ops_sd_notify("READY=1"), -EINVAL);
    unsetenv("NOTIFY_SOCKET");
}

static void *raise_later(void *arg) {
    usleep(250000);
    kill(getpid(), SIGUSR2);
    return arg;
}

TEST(sd_watchdog_pings_while_waiting_for_a_signal) {
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "100000", 1);
    CHECK_EQ_INT(ops_sd_watchdog_usec(), 100000);
    setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
    CHECK_EQ_INT(ops_sd_watchdog_usec(), 0);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    CHECK_EQ_INT(ops_sd_watchdog_usec(), 100000);

    char path[64];
    snprintf(path, sizeof path, "/tmp/herald-wd-%ld", (long)getpid());
    unlink(path);
    int fd = notify_listener(path);
    CHECK(fd >= 0);
    setenv("NOTIFY_SOCKET", path, 1);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, raise_later, NULL), 0);
    int sig = ops_sd_wait_signal(&set);
    pthread_join(th, NULL);
    CHECK_EQ_INT(sig, SIGUSR2);
    /* 250 ms at one ping per 50 ms: several pings, each "WATCHDOG=1" */
    int pings = 0;
    struct timeval tv = {.tv_usec = 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[32];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
        CHECK(n == 10 && !memcmp(buf, "WATCHDOG=1", 10));
        pings++;
    }
    CHECK(pings >= 3);
    close(fd);
    unlink(path);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}
