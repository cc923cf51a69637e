/*
 * The push service's first slice: the app registry and the HTTP/JSON API
 * over a real loopback socket, with a recording sink standing in for the
 * gateway (the sink is the service's real seam, see push.h).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "PushAPI.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/net.h"
#include "push/push.h"
#include "push/push_int.h" /* push_online_syncing */
#include "rpc/trpc.h"
#include "store/store.h"
#include "test.h"

/* ---- recording sink ------------------------------------------------------ */

typedef struct rec {
    pthread_mutex_t mu;
    int calls;
    char app[64], device[64], msg_id[64];
    uint8_t payload[8192];
    size_t payload_len;
    int timeline;
    bool need_ack;
    const char *online_device; /* the one device "connected" */
    long online_count;
    int nlog; /* every delivery, for ordering checks */
    struct {
        char device[32];
        int64_t seq;
        int timeline;
    } log[256];
    pthread_cond_t cv;
    bool block;   /* sink_device waits while set (stalls the store writer) */
    bool blocked; /* ... and says it did */
} rec_t;

static rec_t R = {.mu = PTHREAD_MUTEX_INITIALIZER,
                  .cv = PTHREAD_COND_INITIALIZER};

static void rec_msg(const char *app, const char *dev, const gw_msg_t *m) {
    pthread_mutex_lock(&R.mu);
    R.calls++;
    snprintf(R.app, sizeof R.app, "%s", app);
    snprintf(R.device, sizeof R.device, "%s", dev ? dev : "");
    snprintf(R.msg_id, sizeof R.msg_id, "%s", m->msg_id);
    R.payload_len = m->payload_len < sizeof R.payload ? m->payload_len : 0;
    if (R.payload_len) memcpy(R.payload, m->payload, R.payload_len);
    R.timeline = m->timeline;
    R.need_ack = m->need_ack;
    if (R.nlog < 256) {
        snprintf(R.log[R.nlog].device, sizeof R.log[0].device, "%s",
                 dev ? dev : "");
        R.log[R.nlog].seq = m->seq;
        R.log[R.nlog].timeline = m->timeline;
        R.nlog++;
    }
    pthread_mutex_unlock(&R.mu);
}

static int sink_device(void *ctx, const char *app, const char *dev,
                       const gw_msg_t *m) {
    (void)ctx;
    pthread_mutex_lock(&R.mu);
    while (R.block) {
        R.blocked = true;
        pthread_cond_wait(&R.cv, &R.mu);
    }
    pthread_mutex_unlock(&R.mu);
    rec_msg(app, dev, m);
    return R.online_device && !strcmp(dev, R.online_device);
}

static long sink_online(void *ctx, const char *app, const gw_msg_t *m) {
    (void)ctx;
    rec_msg(app, NULL, m);
    return R.online_count;
}

/* Revocation kicks: the last one asked for, and how many. */
static struct {
    pthread_mutex_t mu;
    int n;
    char device[64];
    int64_t before_s;
} K = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int sink_revoke(void *ctx, const char *app, const char *dev,
                       int64_t before_s) {
    (void)ctx;
    (void)app;
    pthread_mutex_lock(&K.mu);
    K.n++;
    snprintf(K.device, sizeof K.device, "%s", dev);
    K.before_s = before_s;
    pthread_mutex_unlock(&K.mu);
    return R.online_device && !strcmp(dev, R.online_device);
}

/* Backlog marks (push_sink_t.mark), when a test turns them on: the last
 * token and how many came; the test answers them through the service's
 * drained callback, as the gateway would. */
static bool use_marks;
static atomic_int n_marks;
static atomic_ullong last_mark;

static int sink_mark(void *ctx, const char *app, const char *dev,
                     uint64_t token) {
    (void)ctx;
    (void)app;
    pthread_mutex_lock(&R.mu);
    bool on = R.online_device && !strcmp(dev, R.online_device);
    pthread_mutex_unlock(&R.mu);
    if (!on) return 0;
    last_mark = token;
    n_marks++;
    return 1;
}

static push_service_t *start(int head_timeout) {
    push_config_t c;
    push_config_defaults(&c);
    c.http_port = 0;
    c.head_timeout = head_timeout;
    push_service_t *ps = push_service_new(&c);
    if (!ps || push_app_add_spec(ps, "test:SECRET:KEY") != 0) {
        push_service_free(ps);
        return NULL;
    }
    push_sink_t s = {NULL, sink_device, sink_online, NULL, sink_revoke, NULL};
    if (push_service_start_sink(ps, &s) != 0) {
        push_service_free(ps);
        return NULL;
    }
    R.calls = 0;
    R.online_device = "dev1";
    R.online_count = 7;
    return ps;
}

/* ---- a small blocking HTTP client ---------------------------------------- */

static int connect_to(push_service_t *ps) {
    int fd = -1;
    if (net_connect_tcp("127.0.0.1", push_service_http_port(ps), NULL, false,
                        &fd) < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int send_str(int fd, const char *s) {
    size_t n = strlen(s);
    return write(fd, s, n) == (ssize_t)n ? 0 : -1;
}

typedef struct resp {
    int status;
    char head[2048];
    char body[8192];
    json_t *json;
} resp_t;

/* Reads exactly one response (head + Content-Length body) from fd, leaving
 * whatever follows in *carry for the next call. */
static int read_resp(int fd, char *carry, size_t *carry_len, resp_t *r) {
    char buf[16384];
    size_t len = *carry_len;
    memcpy(buf, carry, len);
    memset(r, 0, sizeof *r);
    for (;;) {
        char *e = memmem(buf, len, "\r\n\r\n", 4);
        if (e) {
            size_t hl = (size_t)(e - buf) + 4;
            unsigned long cl = 0;
            memcpy(r->head, buf, hl < sizeof r->head ? hl : sizeof r->head - 1);
            const char *h = strcasestr(r->head, "content-length:");
            if (h) cl = strtoul(h + 15, NULL, 10);
            if (sscanf(buf, "HTTP/1.1 %d", &r->status) != 1) return -1;
            if (len >= hl + cl && cl < sizeof r->body) {
                memcpy(r->body, buf + hl, cl);
                r->body[cl] = 0;
                *carry_len = len - hl - cl;
                memcpy(carry, buf + hl + cl, *carry_len);
                r->json = cl ? json_loads(r->body, 0, NULL) : NULL;
                return 0;
            }
        }
        if (len == sizeof buf) return -1;
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n <= 0) return -1;
        len += (size_t)n;
    }
}

static int request(push_service_t *ps, const char *raw, resp_t *r) {
    int fd = connect_to(ps);
    char carry[16384];
    size_t cl = 0;
    if (fd < 0) return -1;
    int rc = send_str(fd, raw) == 0 ? read_resp(fd, carry, &cl, r) : -1;
    close(fd);
    return rc;
}

static int post(push_service_t *ps, const char *path, const char *key,
                const char *body, resp_t *r) {
    char raw[12288];
    snprintf(raw, sizeof raw,
             "POST %s HTTP/1.1\r\nHost: x\r\n%s%s%sContent-Length: %zu\r\n"
             "\r\n%s",
             path, key ? "Authorization: Bearer " : "", key ? key : "",
             key ? "\r\n" : "", strlen(body), body);
    return request(ps, raw, r);
}

static const char *err_code(const resp_t *r) {
    return json_string_value(
        json_object_get(json_object_get(r->json, "error"), "code"));
}

static const char *jstr(const resp_t *r, const char *k) {
    return json_string_value(json_object_get(r->json, k));
}

/* ---- registry ------------------------------------------------------------ */

TEST(registry) {
    push_service_t *ps = push_service_new(NULL);
    CHECK(ps);
    CHECK_EQ_INT(push_app_add_spec(ps, "a1:s3cr3t:key-one"), 0);
    CHECK_EQ_INT(push_app_add(ps, "a1", "s3cr3t", "key-two"), 0);
    CHECK_EQ_INT(push_app_add(ps, "a1", "other", "key-3"), PUSH_E_EXISTS);
    CHECK_EQ_INT(push_app_add(ps, "a2", "x", "key-one"), PUSH_E_EXISTS);
    CHECK_EQ_INT(push_app_add(ps, "bad.name", "x", "k"), PUSH_E_INVALID);
    CHECK_EQ_INT(push_app_add(ps, "a:b", "x", "k"), PUSH_E_INVALID);
    CHECK_EQ_INT(push_app_add(ps, "-a", "x", "k"), PUSH_E_INVALID);
    CHECK_EQ_INT(push_app_add(ps, "a3", "", "k"), PUSH_E_INVALID);
    CHECK_EQ_INT(push_app_add(ps, "a3", "x", "has space"), PUSH_E_INVALID);
    CHECK_EQ_INT(push_app_add_spec(ps, "nocolon"), PUSH_E_INVALID);
    CHECK_EQ_INT(push_app_add_spec(ps, "a4::key"), PUSH_E_INVALID);
    CHECK_EQ_INT(push_app_add_spec(ps, "a4:sec:"), PUSH_E_INVALID);
    /* The key is everything after the second colon. */
    CHECK_EQ_INT(push_app_add_spec(ps, "a5:sec:k:with:colons"), 0);
    CHECK_EQ_INT(push_app_count(ps), 2);
    CHECK(!strcmp(push_app_by_key(ps, "key-two", 7), "a1"));
    CHECK(!strcmp(push_app_by_key(ps, "k:with:colons", 13), "a5"));
    CHECK(push_app_by_key(ps, "key-tw", 6) == NULL);
    CHECK(push_app_by_key(ps, "key-twx", 7) == NULL);
    uint8_t sec[64];
    CHECK_EQ_INT(push_app_secret(ps, "a1", sec, sizeof sec), 6);
    CHECK(!memcmp(sec, "s3cr3t", 6));
    CHECK_EQ_INT(push_app_secret(ps, "nope", sec, sizeof sec), -1);
    CHECK_EQ_INT(push_app_secret(ps, "a1", sec, 3), -1);
    /* The gateway sees the same secrets through its interface. */
    const gw_service_t *g = push_service_gw_iface(ps);
    CHECK_EQ_INT(g->app_secret(g->ctx, "a5", sec, sizeof sec), 3);
    gw_device_t d = {.app = "a1", .device = "d"};
    g->online(g->ctx, &d);
    g->online(g->ctx, &d);
    g->offline(g->ctx, &d, 0);
    g->ack(g->ctx, &d, 5, -1);
    push_stats_t st;
    push_service_stats(ps, &st);
    CHECK_EQ_INT(st.online, 1);
    CHECK_EQ_INT(st.online_events, 2);
    CHECK_EQ_INT(st.offline_events, 1);
    CHECK_EQ_INT(st.acks, 1);
    push_service_free(ps);
}

/* A reload: push_app_put swaps a secret (add never does), drop_key forgets
 * one key. */
TEST(registry_put_and_drop) {
    push_service_t *ps = push_service_new(NULL);
    CHECK(ps);
    CHECK_EQ_INT(push_app_add(ps, "a1", "old", "k1"), 0);
    CHECK_EQ_INT(push_app_add(ps, "a2", "s2", "k2"), 0);
    CHECK_EQ_INT(push_app_add(ps, "a1", "new", "k3"), PUSH_E_EXISTS);
    CHECK_EQ_INT(push_app_put(ps, "a1", "new", "k3"), 0);
    CHECK_EQ_INT(push_app_put(ps, "a1", "new", "k2"), PUSH_E_EXISTS);
    CHECK_EQ_INT(push_app_put(ps, "a3", "s3", "k1"), PUSH_E_EXISTS);
    uint8_t sec[64];
    CHECK_EQ_INT(push_app_secret(ps, "a1", sec, sizeof sec), 3);
    CHECK(!memcmp(sec, "new", 3));
    CHECK(!strcmp(push_app_by_key(ps, "k3", 2), "a1"));
    CHECK(!strcmp(push_app_by_key(ps, "k1", 2), "a1"));
    push_app_drop_key(ps, "k1");
    push_app_drop_key(ps, "unknown");
    CHECK(push_app_by_key(ps, "k1", 2) == NULL);
    CHECK(!strcmp(push_app_by_key(ps, "k2", 2), "a2"));
    CHECK(!strcmp(push_app_by_key(ps, "k3", 2), "a1"));
    CHECK_EQ_INT(push_app_count(ps), 2);
    push_service_free(ps);
}

/* ---- the API ---------------------------------------------------------------- */

TEST(push_device_online_written) {
    push_service_t *ps = start(10);
    CHECK(ps);
    resp_t r;
    CHECK_EQ_INT(post(ps, "/v1/push/device", "KEY",
                      "{\"deviceId\":\"dev1\",\"payload\":\"hello\","
                      "\"unknownField\":[1,2],\"needAck\":false}",
                      &r),
                 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(!strcmp(jstr(&r, "state"), "written"));
    CHECK_EQ_INT(strlen(jstr(&r, "msgId")), 24);
    CHECK(!strcmp(R.msg_id, jstr(&r, "msgId")));
    CHECK(!strcmp(R.app, "test"));
    CHECK(!strcmp(R.device, "dev1"));
    CHECK_EQ_INT(R.payload_len, 5);
    CHECK(!memcmp(R.payload, "hello", 5));
    CHECK(!R.need_ack);
    json_decref(r.json);
    push_service_free(ps);
}

TEST(push_device_b64_and_offline) {
    push_service_t *ps = start(10);
    CHECK(ps);
    resp_t r;
    CHECK_EQ_INT(post(ps, "/v1/push/device", "KEY",
                      "{\"deviceId\":\"dev1\",\"payloadB64\":\"AAH/\"}", &r),
                 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(R.payload_len, 3);
    CHECK_HEX(R.payload, 3, "00 01 ff");
    json_decref(r.json);
    /* Offline with a ttl: nothing can keep it yet. */
    CHECK_EQ_INT(post(ps, "/v1/push/device", "KEY",
                      "{\"deviceId\":\"dev2\",\"payload\":\"x\"}", &r),
                 0);
    CHECK_EQ_INT(r.status, 503);
    CHECK(!strcmp(err_code(&r), "store_unavailable"));
    json_decref(r.json);
    /* Offline, ttl 0: online-only, dropped. */
    CHECK_EQ_INT(post(ps, "/v1/push/device", "KEY",
                      "{\"deviceId\":\"dev2\",\"payload\":\"x\",\"ttl\":0}",
                      &r),
                 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(!strcmp(jstr(&r, "state"), "dropped"));
    json_decref(r.json);
    push_service_free(ps);
}

TEST(push_online_targeted) {
    push_service_t *ps = start(10);
    CHECK(ps);
    resp_t r;
    CHECK_EQ_INT(
        post(ps, "/v1/push/online", "KEY", "{\"payload\":\"all\"}", &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(json_integer_value(json_object_get(r.json, "targeted")), 7);
    CHECK_EQ_INT(R.timeline, 2);
    CHECK(!strcmp(R.app, "test"));
    json_decref(r.json);
    push_service_free(ps);
}

static void expect_error(push_service_t *ps, const char *path, const char *key,
                         const char *body, int status, const char *code,
                         int *ok) {
    resp_t r;
    *ok = 0;
    if (post(ps, path, key, body, &r) != 0) {
        fprintf(stderr, "  no answer for %s\n", body);
        return;
    }
    const char *c = err_code(&r);
    if (r.status != status || !c || strcmp(c, code)) {
        fprintf(stderr, "  %s %s -> %d %s, want %d %s\n", path, body, r.status,
                c ? c : "-", status, code);
    } else {
        *ok = 1;
    }
    json_decref(r.json);
}

TEST(errors) {
    push_service_t *ps = start(10);
    CHECK(ps);
    int ok;
    const char *D = "/v1/push/device";
    expect_error(ps, D, NULL, "{}", 401, "unauthorized", &ok);
    CHECK(ok);
    expect_error(ps, D, "WRONG", "{}", 401, "unauthorized", &ok);
    CHECK(ok);
    expect_error(ps, D, "KEY", "{nope", 400, "bad_json", &ok);
    CHECK(ok);
    expect_error(ps, D, "KEY", "[1]", 400, "bad_json", &ok);
    CHECK(ok);
    expect_error(ps, D, "KEY", "{\"payload\":\"x\"}", 400, "invalid_argument",
                 &ok);
    CHECK(ok);
    expect_error(ps, D, "KEY", "{\"deviceId\":5}", 400, "invalid_argument",
                 &ok);
    CHECK(ok);
    expect_error(ps, D, "KEY", "{\"deviceId\":\"a.b\"}", 400,
                 "invalid_argument", &ok);
    CHECK(ok);
    expect_error(ps, D, "KEY", "{\"deviceId\":\"d\",\"ttl\":-1}", 400,
                 "invalid_argument", &ok);
    CHECK(ok);
    expect_error(ps, D, "KEY", "{\"deviceId\":\"d\",\"ttl\":2592001}", 400,
                 "invalid_argument", &ok);
    CHECK(ok);
    expect_error(ps, D, "KEY", "{\"deviceId\":\"d\",\"ttl\":\"1\"}", 400,
                 "invalid_argument", &ok);
    CHECK(ok);
    expect_error(ps, D, "KEY", "{\"deviceId\":\"d\",\"needAck\":1}", 400,
                 "invalid_argument", &ok);
    CHECK(ok);
    expect_error(ps, D, "KEY", "{\"deviceId\":\"d\",\"payload\":1}", 400,
                 "invalid_argument", &ok);
    CHECK(ok);
    expect_error(
        ps, D, "KEY",
        "{\"deviceId\":\"d\",\"payload\":\"a\",\"payloadB64\":\"YQ==\"}", 400,
        "invalid_argument", &ok);
    CHECK(ok);
    expect_error(ps, D, "KEY", "{\"deviceId\":\"d\",\"payloadB64\":\"YQ\"}",
                 400, "invalid_argument", &ok);
    CHECK(ok);
    expect_error(ps, "/v1/nope", "KEY", "{}", 404, "not_found", &ok);
    CHECK(ok);
    /* 4097 bytes of payload: one over the default limit. */
    char big[4200];
    int n = snprintf(big, sizeof big, "{\"deviceId\":\"d\",\"payload\":\"");
    memset(big + n, 'p', 4097);
    strcpy(big + n + 4097, "\"}");
    expect_error(ps, D, "KEY", big, 413, "payload_too_large", &ok);
    CHECK(ok);
    CHECK_EQ_INT(R.calls, 0); /* nothing invalid reached the gateway */
    push_service_free(ps);
}

TEST(body_errors_name_the_reason) {
    push_service_t *ps = start(10);
    CHECK(ps);
    int ok;
    const char *D = "/v1/push/device";
    expect_error(ps, D, "KEY", "{\"deviceId\":\"d\",\"payload\":\"\xff\"}", 400,
                 "bad_json", &ok);
    CHECK(ok);
    expect_error(ps, D, "KEY", "{\"deviceId\":\"d\",\"deviceId\":\"e\"}", 400,
                 "bad_json", &ok);
    CHECK(ok);
    expect_error(ps, D, "KEY", "{\"deviceId\":\"d\",\"ttl\":1.5}", 400,
                 "invalid_argument", &ok);
    CHECK(ok);
    resp_t r;
    CHECK_EQ_INT(
        post(ps, D, "KEY", "{\"deviceId\":\"d\",\"payload\":\"\\u0000\"}", &r),
        0);
    CHECK_EQ_INT(r.status, 400);
    json_t *m = json_object_get(json_object_get(r.json, "error"), "message");
    CHECK(m && strstr(json_string_value(m), "\\u0000"));
    json_decref(r.json);
    CHECK_EQ_INT(R.calls, 0);
    push_service_free(ps);
}

TEST(method_and_framing) {
    push_service_t *ps = start(10);
    CHECK(ps);
    resp_t r;
    CHECK_EQ_INT(
        request(ps, "GET /v1/push/device HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
    CHECK_EQ_INT(r.status, 405);
    CHECK(strcasestr(r.head, "Allow: POST"));
    json_decref(r.json);
    CHECK_EQ_INT(request(ps,
                         "POST /v1/push/device HTTP/1.1\r\nHost: x\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                         &r),
                 0);
    CHECK_EQ_INT(r.status, 411);
    json_decref(r.json);
    CHECK_EQ_INT(request(ps,
                         "POST /v1/push/device HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 9999999\r\n\r\n",
                         &r),
                 0);
    CHECK_EQ_INT(r.status, 413);
    CHECK(!strcmp(err_code(&r), "body_too_large"));
    json_decref(r.json);
    CHECK_EQ_INT(request(ps, "BROKEN\r\n\r\n", &r), 0);
    CHECK_EQ_INT(r.status, 400);
    json_decref(r.json);
    CHECK_EQ_INT(request(ps, "GET /healthz HTTP/1.1\r\n\r\n", &r), 0);
    CHECK_EQ_INT(r.status, 200);
    json_decref(r.json);
    push_service_free(ps);
}

/* Two requests in one write, then a third on the same connection: answers
 * come back in order and the connection stays open. */
TEST(keepalive_pipelining) {
    push_service_t *ps = start(10);
    CHECK(ps);
    int fd = connect_to(ps);
    CHECK(fd >= 0);
    const char *b1 = "{\"deviceId\":\"dev1\",\"payload\":\"one\"}";
    const char *b2 = "{\"deviceId\":\"nobody\",\"payload\":\"two\"}";
    char raw[1024];
    snprintf(raw, sizeof raw,
             "POST /v1/push/device HTTP/1.1\r\nAuthorization: Bearer KEY\r\n"
             "Content-Length: %zu\r\n\r\n%s"
             "POST /v1/push/device HTTP/1.1\r\nAuthorization: Bearer KEY\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(b1), b1, strlen(b2), b2);
    CHECK_EQ_INT(send_str(fd, raw), 0);
    char carry[16384];
    size_t cl = 0;
    resp_t r;
    CHECK_EQ_INT(read_resp(fd, carry, &cl, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    json_decref(r.json);
    CHECK_EQ_INT(read_resp(fd, carry, &cl, &r), 0);
    CHECK_EQ_INT(r.status, 503);
    json_decref(r.json);
    CHECK_EQ_INT(send_str(fd, "POST /v1/push/online HTTP/1.1\r\n"
                              "Authorization: Bearer KEY\r\n"
                              "Content-Length: 2\r\n\r\n{}"),
                 0);
    CHECK_EQ_INT(read_resp(fd, carry, &cl, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    json_decref(r.json);
    /* Connection: close is honoured. */
    CHECK_EQ_INT(
        send_str(fd, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"), 0);
    CHECK_EQ_INT(read_resp(fd, carry, &cl, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    json_decref(r.json);
    char b;
    CHECK_EQ_INT(read(fd, &b, 1), 0);
    close(fd);
    push_stats_t st;
    push_service_stats(ps, &st);
    CHECK_EQ_INT(st.http_requests, 4);
    CHECK_EQ_INT(st.http_errors, 1);
    push_service_free(ps);
}

/* A head trickling in is cut with 408 after head_timeout, not before. */
TEST(slow_head_timeout) {
    push_service_t *ps = start(1);
    CHECK(ps);
    int fd = connect_to(ps);
    CHECK(fd >= 0);
    uint64_t t0 = clock_mono_ms();
    CHECK_EQ_INT(send_str(fd, "POST /v1/pu"), 0);
    char carry[16384];
    size_t cl = 0;
    resp_t r;
    CHECK_EQ_INT(read_resp(fd, carry, &cl, &r), 0);
    uint64_t dt = clock_mono_ms() - t0;
    CHECK_EQ_INT(r.status, 408);
    CHECK(dt >= 900 && dt < 3000);
    json_decref(r.json);
    close(fd);
    push_service_free(ps);
}

TEST(stop_restart_cycle) {
    /* Start and stop repeatedly: threads joined, ports released. */
    for (int i = 0; i < 5; i++) {
        push_service_t *ps = start(10);
        CHECK(ps);
        CHECK(push_service_http_port(ps) > 0);
        int fd = connect_to(ps); /* an idle connection left open */
        CHECK(fd >= 0);
        push_service_stop(ps);
        CHECK_EQ_INT(push_service_http_port(ps), -1);
        char b;
        struct pollfd pf = {fd, POLLIN, 0};
        CHECK_EQ_INT(poll(&pf, 1, 2000), 1);
        CHECK(read(fd, &b, 1) <= 0); /* closed by the stop */
        close(fd);
        push_service_free(ps);
    }
}

/* ---- with a store ------------------------------------------------------ */

typedef struct stored_svc {
    char dir[64];
    store_t *st;
    push_service_t *ps;
} stored_svc_t;

static int start_stored(stored_svc_t *s, double rate, double burst) {
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/herald-tpush-XXXXXX");
    if (!mkdtemp(s->dir)) return -1;
    char path[128];
    snprintf(path, sizeof path, "%s/h.db", s->dir);
    store_config_t sc;
    store_config_defaults(&sc);
    sc.path = path;
    sc.synchronous_full = false; /* durability is the store's own test */
    if (store_open(&sc, &s->st) < 0) return -1;
    if (store_app_put(s->st, "test", "SECRET", "KEY") < 0) return -1;
    push_config_t c;
    push_config_defaults(&c);
    c.http_port = 0;
    c.tars_port = 0;
    c.store = s->st;
    c.rate_app = rate;
    c.burst = burst;
    s->ps = push_service_new(&c);
    push_sink_t sk = {NULL,        sink_device,
                      sink_online, use_marks ? sink_mark : NULL,
                      sink_revoke, NULL};
    if (!s->ps || push_service_start_sink(s->ps, &sk) != 0) return -1;
    pthread_mutex_lock(&R.mu);
    R.calls = 0;
    R.nlog = 0;
    R.online_device = "dev1";
    R.online_count = 3;
    pthread_mutex_unlock(&R.mu);
    /* dev1 connects the way the gateway tells it; stored pushes are routed
     * live only once its connect-time sync is over. */
    const gw_service_t *gi = push_service_gw_iface(s->ps);
    gw_device_t d = {.app = "test", .device = "dev1", .transport = GW_TCP};
    gi->online(gi->ctx, &d);
    for (int i = 0; i < 1000 && push_online_syncing(s->ps, "test", "dev1"); i++)
        usleep(2000);
    return push_online_syncing(s->ps, "test", "dev1") ? -1 : 0;
}

static void stop_stored(stored_svc_t *s) {
    push_service_free(s->ps);
    if (s->st) store_close(s->st);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", s->dir);
}

static int get(push_service_t *ps, const char *path, resp_t *r) {
    char raw[512];
    snprintf(raw, sizeof raw,
             "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer KEY\r\n\r\n",
             path);
    return request(ps, raw, r);
}

static json_int_t jint(const json_t *j, const char *k) {
    return json_integer_value(json_object_get(j, k));
}

TEST(stored_single_offline_online_and_idempotent) {
    stored_svc_t s;
    CHECK_EQ_INT(start_stored(&s, 0, 0), 0);
    resp_t r;
    char first[64];
    CHECK_EQ_INT(post(s.ps, "/v1/push/device", "KEY",
                      "{\"deviceId\":\"dev2\",\"payload\":\"a\","
                      "\"requestId\":\"q1\"}",
                      &r),
                 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(!strcmp(jstr(&r, "state"), "stored"));
    snprintf(first, sizeof first, "%s", jstr(&r, "msgId"));
    CHECK_EQ_INT(R.nlog, 0); /* not connected: stored, not routed */
    json_decref(r.json);
    /* The same requestId: the first msgId, nothing new stored or routed. */
    CHECK_EQ_INT(post(s.ps, "/v1/push/device", "KEY",
                      "{\"deviceId\":\"dev2\",\"payload\":\"b\","
                      "\"requestId\":\"q1\"}",
                      &r),
                 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(!strcmp(jstr(&r, "msgId"), first));
    CHECK(json_is_true(json_object_get(r.json, "duplicate")));
    CHECK_EQ_INT(R.nlog, 0);
    json_decref(r.json);
    /* Online device: written, seq 1 of its own inbox, routed with it. */
    CHECK_EQ_INT(post(s.ps, "/v1/push/device", "KEY",
                      "{\"deviceId\":\"dev1\",\"payload\":\"c\"}", &r),
                 0);
    CHECK(!strcmp(jstr(&r, "state"), "written"));
    CHECK_EQ_INT(R.nlog, 1);
    CHECK_EQ_INT(R.log[0].seq, 1);
    CHECK_EQ_INT(R.log[0].timeline, 0);
    json_decref(r.json);
    /* Device and message views. */
    CHECK_EQ_INT(get(s.ps, "/v1/devices/dev2", &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(jint(r.json, "inboxDepth"), 1);
    CHECK_EQ_INT(jint(r.json, "inboxLastSeq"), 1);
    CHECK(json_is_false(json_object_get(r.json, "online")));
    json_decref(r.json);
    char path[128];
    snprintf(path, sizeof path, "/v1/messages/%s", first);
    CHECK_EQ_INT(get(s.ps, path, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(!strcmp(jstr(&r, "kind"), "single"));
    json_t *tl = json_object_get(r.json, "timeline");
    CHECK(jint(json_object_get(tl, "stored"), "at") > 0);
    json_decref(r.json);
    CHECK_EQ_INT(get(s.ps, "/v1/messages/nosuchmessage", &r), 0);
    CHECK_EQ_INT(r.status, 404);
    json_decref(r.json);
    stop_stored(&s);
}

TEST(stored_multi_all_online) {
    stored_svc_t s;
    CHECK_EQ_INT(start_stored(&s, 0, 0), 0);
    resp_t r;
    CHECK_EQ_INT(post(s.ps, "/v1/push/devices", "KEY",
                      "{\"deviceIds\":[\"dev1\",\"dev2\",\"bad id\"],"
                      "\"payload\":\"m\"}",
                      &r),
                 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(jint(r.json, "online"), 1);
    CHECK_EQ_INT(jint(r.json, "stored"), 2);
    CHECK_EQ_INT(jint(json_object_get(r.json, "rejected"), "bad id"), 1);
    json_decref(r.json);
    CHECK_EQ_INT(post(s.ps, "/v1/push/all", "KEY", "{\"payload\":\"b\"}", &r),
                 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(jint(r.json, "online"), 3);
    CHECK_EQ_INT(R.timeline, 1);
    CHECK_EQ_INT(R.log[R.nlog - 1].seq, 1);
    json_decref(r.json);
    CHECK_EQ_INT(
        post(s.ps, "/v1/push/online", "KEY", "{\"payload\":\"o\"}", &r), 0);
    CHECK_EQ_INT(jint(r.json, "targeted"), 3);
    CHECK_EQ_INT(R.timeline, 2);
    json_decref(r.json);
    /* Bad input stores nothing. */
    CHECK_EQ_INT(
        post(s.ps, "/v1/push/devices", "KEY", "{\"deviceIds\":\"dev1\"}", &r),
        0);
    CHECK_EQ_INT(r.status, 400);
    json_decref(r.json);
    CHECK_EQ_INT(
        post(s.ps, "/v1/push/devices", "KEY", "{\"deviceIds\":[]}", &r), 0);
    CHECK_EQ_INT(r.status, 400);
    json_decref(r.json);
    CHECK_EQ_INT(get(s.ps, "/v1/devices/dev2", &r), 0);
    CHECK_EQ_INT(jint(r.json, "inboxDepth"), 1);
    json_decref(r.json);
    stop_stored(&s);
}

/* A device connecting gets its inbox after its cursor, then broadcasts,
 * oldest first; its ack moves the cursor so the next connect sends none. */
TEST(stored_sync_on_connect_and_ack) {
    stored_svc_t s;
    CHECK_EQ_INT(start_stored(&s, 0, 0), 0);
    resp_t r;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(post(s.ps, "/v1/push/device", "KEY",
                          "{\"deviceId\":\"dev3\",\"payload\":\"x\"}", &r),
                     0);
        CHECK_EQ_INT(r.status, 200);
        json_decref(r.json);
    }
    CHECK_EQ_INT(post(s.ps, "/v1/push/all", "KEY", "{\"payload\":\"b\"}", &r),
                 0);
    json_decref(r.json);
    pthread_mutex_lock(&R.mu);
    R.nlog = 0;
    R.online_device = "dev3";
    pthread_mutex_unlock(&R.mu);
    const gw_service_t *gi = push_service_gw_iface(s.ps);
    gw_device_t d = {.app = "test",
                     .device = "dev3",
                     .transport = GW_TCP,
                     .inbox_seq = 1,
                     .broadcast_seq = 0};
    gi->online(gi->ctx, &d);
    for (int i = 0; i < 200 && R.nlog < 3; i++) usleep(10000);
    pthread_mutex_lock(&R.mu);
    int n = R.nlog;
    pthread_mutex_unlock(&R.mu);
    CHECK_EQ_INT(n, 3); /* inbox 2, 3 (HELLO said 1) and broadcast 1 */
    CHECK_EQ_INT(R.log[0].seq, 2);
    CHECK_EQ_INT(R.log[1].seq, 3);
    CHECK_EQ_INT(R.log[2].timeline, 1);
    CHECK_EQ_INT(get(s.ps, "/v1/devices/dev3", &r), 0);
    CHECK(json_is_true(json_object_get(r.json, "online")));
    CHECK(!strcmp(jstr(&r, "transport"), "tcp"));
    json_decref(r.json);
    gi->ack(gi->ctx, &d, 3, 1);
    gi->offline(gi->ctx, &d, 0);
    int64_t depth = -1;
    for (int i = 0; i < 200 && depth != 0; i++) {
        usleep(10000);
        CHECK_EQ_INT(get(s.ps, "/v1/devices/dev3", &r), 0);
        depth = jint(r.json, "inboxDepth");
        json_decref(r.json);
    }
    CHECK_EQ_INT(depth, 0);
    pthread_mutex_lock(&R.mu);
    R.nlog = 0;
    pthread_mutex_unlock(&R.mu);
    d.inbox_seq = 0;
    gi->online(gi->ctx, &d);
    usleep(200000);
    CHECK_EQ_INT(R.nlog, 0); /* all acked: nothing again */
    gi->offline(gi->ctx, &d, 0);
    stop_stored(&s);
}

static int nlog(void) {
    pthread_mutex_lock(&R.mu);
    int n = R.nlog;
    pthread_mutex_unlock(&R.mu);
    return n;
}

/* The connect-time sync is flow-controlled: a page of about 64 KiB, then
 * it waits for the page's mark to be answered (the device's connection
 * drained) before the next; an answer !ok (the connection went) ends it
 * and lets go of the live pushes it held. */
TEST(stored_sync_paced_by_marks) {
    use_marks = true;
    stored_svc_t s;
    int rc = start_stored(&s, 0, 0);
    use_marks = false;
    CHECK_EQ_INT(rc, 0);
    char body[1200];
    char pl[1001];
    memset(pl, 'k', 1000);
    pl[1000] = 0;
    snprintf(body, sizeof body, "{\"deviceId\":\"dev7\",\"payload\":\"%s\"}",
             pl);
    resp_t r;
    for (int i = 0; i < 200; i++) {
        CHECK_EQ_INT(post(s.ps, "/v1/push/device", "KEY", body, &r), 0);
        CHECK_EQ_INT(r.status, 200);
        json_decref(r.json);
    }
    pthread_mutex_lock(&R.mu);
    R.nlog = 0;
    R.online_device = "dev7";
    pthread_mutex_unlock(&R.mu);
    int m0 = n_marks;
    const gw_service_t *gi = push_service_gw_iface(s.ps);
    gw_device_t d = {.app = "test", .device = "dev7", .transport = GW_TCP};
    gi->online(gi->ctx, &d);
    for (int i = 0; i < 300 && n_marks == m0; i++) usleep(10000);
    CHECK_EQ_INT(n_marks, m0 + 1);
    /* 1000 bytes + 64 of framing a row: the 62nd fills 64 KiB. */
    usleep(100000);
    CHECK_EQ_INT(nlog(), 62); /* and no more until the answer */
    for (int i = 0; i < 62; i++) CHECK_EQ_INT(R.log[i].seq, i + 1);
    gi->drained(gi->ctx, last_mark, true);
    for (int i = 0; i < 300 && n_marks == m0 + 1; i++) usleep(10000);
    CHECK_EQ_INT(n_marks, m0 + 2);
    usleep(100000);
    CHECK_EQ_INT(nlog(), 124);
    CHECK_EQ_INT(R.log[123].seq, 124);
    CHECK(push_online_syncing(s.ps, "test", "dev7"));
    /* The connection went: the sync ends, its hold too, nothing more. */
    gi->drained(gi->ctx, last_mark, false);
    for (int i = 0; i < 300 && push_online_syncing(s.ps, "test", "dev7"); i++)
        usleep(10000);
    CHECK(!push_online_syncing(s.ps, "test", "dev7"));
    usleep(100000);
    CHECK_EQ_INT(nlog(), 124);
    CHECK_EQ_INT(n_marks, m0 + 2);
    gi->drained(gi->ctx, last_mark, true); /* a late answer: ignored */
    gi->offline(gi->ctx, &d, 0);
    stop_stored(&s);
}

/* A push committed before a connect-time sync's last fetch is sent by the
 * sync; its own routing, arriving after the sync ended, must not send it
 * a second time.  Later pushes still go out live. */
TEST(stored_route_after_sync_not_twice) {
    stored_svc_t s;
    CHECK_EQ_INT(start_stored(&s, 0, 0), 0);
    resp_t r;
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(post(s.ps, "/v1/push/device", "KEY",
                          "{\"deviceId\":\"dev5\",\"payload\":\"x\"}", &r),
                     0);
        CHECK_EQ_INT(r.status, 200);
        json_decref(r.json);
    }
    pthread_mutex_lock(&R.mu);
    R.nlog = 0;
    R.online_device = "dev5";
    pthread_mutex_unlock(&R.mu);
    const gw_service_t *gi = push_service_gw_iface(s.ps);
    gw_device_t d = {.app = "test", .device = "dev5", .transport = GW_TCP};
    gi->online(gi->ctx, &d);
    for (int i = 0; i < 200 && push_online_syncing(s.ps, "test", "dev5"); i++)
        usleep(10000);
    CHECK(!push_online_syncing(s.ps, "test", "dev5"));
    CHECK_EQ_INT(R.nlog, 2); /* seqs 1 and 2, by the sync */
    /* seq 2's own routing, late: counted as routed, not sent again */
    gw_msg_t m = {.msg_id = "late", .seq = 2, .timeline = 0};
    CHECK_EQ_INT(push_route_device(s.ps, "test", "dev5", &m), 1);
    CHECK_EQ_INT(R.nlog, 2);
    m.seq = 3; /* a newer one goes out */
    CHECK_EQ_INT(push_route_device(s.ps, "test", "dev5", &m), 1);
    CHECK_EQ_INT(R.nlog, 3);
    CHECK_EQ_INT(R.log[2].seq, 3);
    gi->offline(gi->ctx, &d, 0);
    stop_stored(&s);
}

/* Two syncs in flight for one device (a duplicate login; a SYNC command)
 * hold its live pushes until both have ended, not just the first; and a
 * sync of an earlier connection's entry ends no hold of a later one. */
TEST(stored_live_held_until_every_sync_ends) {
    stored_svc_t s;
    CHECK_EQ_INT(start_stored(&s, 0, 0), 0);
    pthread_mutex_lock(&R.mu);
    R.nlog = 0;
    R.online_device = "dev6";
    pthread_mutex_unlock(&R.mu);
    const gw_service_t *gi = push_service_gw_iface(s.ps);
    gw_device_t d = {.app = "test", .device = "dev6", .transport = GW_TCP};
    store_pause(s.st, true); /* the syncs wait in their first store call */
    gi->online(gi->ctx, &d);
    gi->online(gi->ctx, &d); /* a second connection of the same device */
    uint64_t gen = push_online_hold(s.ps, "test", "dev6");
    CHECK(gen != 0);
    /* one of the three holds ends: the other two still hold */
    push_sync_done(s.ps, "test", "dev6", gen, NULL, NULL);
    CHECK(push_online_syncing(s.ps, "test", "dev6"));
    gw_msg_t m = {.msg_id = "live", .seq = 50, .timeline = 0};
    CHECK_EQ_INT(push_route_device(s.ps, "test", "dev6", &m), 1);
    CHECK_EQ_INT(R.nlog, 0); /* held for the syncs, not sent */
    store_pause(s.st, false);
    for (int i = 0; i < 200 && push_online_syncing(s.ps, "test", "dev6"); i++)
        usleep(10000);
    CHECK(!push_online_syncing(s.ps, "test", "dev6"));
    CHECK_EQ_INT(push_route_device(s.ps, "test", "dev6", &m), 1);
    CHECK_EQ_INT(R.nlog, 1); /* now it goes out */
    /* both connections go; a new one's hold outlives the old generation */
    gi->offline(gi->ctx, &d, 0);
    gi->offline(gi->ctx, &d, 0);
    store_pause(s.st, true);
    gi->online(gi->ctx, &d);
    push_sync_done(s.ps, "test", "dev6", gen, NULL, NULL);
    CHECK(push_online_syncing(s.ps, "test", "dev6"));
    store_pause(s.st, false);
    for (int i = 0; i < 200 && push_online_syncing(s.ps, "test", "dev6"); i++)
        usleep(10000);
    CHECK(!push_online_syncing(s.ps, "test", "dev6"));
    gi->offline(gi->ctx, &d, 0);
    stop_stored(&s);
}

/* A SYNC command after a cursor: the stored messages after it come as
 * pushes. */
TEST(stored_sync_command) {
    stored_svc_t s;
    CHECK_EQ_INT(start_stored(&s, 0, 0), 0);
    resp_t r;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(post(s.ps, "/v1/push/device", "KEY",
                          "{\"deviceId\":\"dev4\",\"payload\":\"y\"}", &r),
                     0);
        json_decref(r.json);
    }
    pthread_mutex_lock(&R.mu);
    R.nlog = 0;
    R.online_device = "dev4";
    pthread_mutex_unlock(&R.mu);
    const gw_service_t *gi = push_service_gw_iface(s.ps);
    CHECK(gi->sync != NULL);
    gw_device_t d = {.app = "test", .device = "dev4", .transport = GW_TCP};
    gi->sync(gi->ctx, &d, 2, 0);
    for (int i = 0; i < 200 && R.nlog < 2; i++) usleep(10000);
    usleep(50000);
    CHECK_EQ_INT(R.nlog, 2);
    CHECK_EQ_INT(R.log[0].seq, 3);
    CHECK_EQ_INT(R.log[1].seq, 4);
    stop_stored(&s);
}

TEST(stored_rate_limit) {
    stored_svc_t s;
    CHECK_EQ_INT(start_stored(&s, 1, 2), 0);
    resp_t r;
    int codes[3];
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(post(s.ps, "/v1/push/online", "KEY", "{}", &r), 0);
        codes[i] = r.status;
        if (r.status == 429)
            CHECK(strcasestr(r.head, "Retry-After: 1") != NULL);
        json_decref(r.json);
    }
    CHECK_EQ_INT(codes[0], 200);
    CHECK_EQ_INT(codes[1], 200);
    CHECK_EQ_INT(codes[2], 429);
    stop_stored(&s);
}

/* A reload's limits apply to a running service, buckets already in use
 * included; a revoked key stops at once once the cache is dropped. */
TEST(stored_limits_change_live) {
    stored_svc_t s;
    CHECK_EQ_INT(start_stored(&s, 0, 0), 0);
    resp_t r;
    int codes[4];
    for (int i = 0; i < 4; i++) {
        if (i == 1) push_service_set_limits(s.ps, 1, 1, 4096);
        if (i == 3) push_service_set_limits(s.ps, 0, 0, 4096);
        CHECK_EQ_INT(post(s.ps, "/v1/push/online", "KEY", "{}", &r), 0);
        codes[i] = r.status;
        json_decref(r.json);
    }
    CHECK_EQ_INT(codes[0], 200);
    CHECK_EQ_INT(codes[1], 200);
    CHECK_EQ_INT(codes[2], 429);
    CHECK_EQ_INT(codes[3], 200);
    push_service_set_limits(s.ps, 0, 0, 4);
    CHECK_EQ_INT(
        post(s.ps, "/v1/push/online", "KEY", "{\"payload\":\"12345\"}", &r), 0);
    CHECK_EQ_INT(r.status, 413);
    json_decref(r.json);
    CHECK_EQ_INT(store_app_revoke_key(s.st, "test", "KEY"), 0);
    push_service_forget_keys(s.ps);
    CHECK_EQ_INT(post(s.ps, "/v1/push/online", "KEY", "{}", &r), 0);
    CHECK_EQ_INT(r.status, 401);
    json_decref(r.json);
    stop_stored(&s);
}

TEST(stored_rotated_key) {
    stored_svc_t s;
    CHECK_EQ_INT(start_stored(&s, 0, 0), 0);
    resp_t r;
    CHECK_EQ_INT(post(s.ps, "/v1/push/online", "KEY", "{}", &r), 0);
    CHECK_EQ_INT(r.status, 200);
    json_decref(r.json);
    char nk[128], body[64];
    CHECK_EQ_INT(store_app_rotate_key(s.st, "test", nk, sizeof nk), 0);
    CHECK_EQ_INT(post(s.ps, "/v1/push/online", nk, "{}", &r), 0);
    CHECK_EQ_INT(r.status, 200); /* a new key works at once */
    json_decref(r.json);
    int st = 200;
    for (int i = 0; i < 60 && st == 200; i++) { /* the old one within 5 s */
        usleep(100000);
        snprintf(body, sizeof body, "{}");
        CHECK_EQ_INT(post(s.ps, "/v1/push/online", "KEY", body, &r), 0);
        st = r.status;
        json_decref(r.json);
    }
    CHECK_EQ_INT(st, 401);
    stop_stored(&s);
}

typedef struct bg_call {
    push_service_t *ps;
    atomic_bool done;
    int rc;
    char app[64];
} bg_call_t;

static void *bg_push(void *p) {
    bg_call_t *b = p;
    resp_t r;
    if (post(b->ps, "/v1/push/device", "KEY",
             "{\"deviceId\":\"dev1\",\"payload\":\"x\"}", &r) == 0)
        json_decref(r.json);
    atomic_store(&b->done, true);
    return NULL;
}

static void *bg_status(void *p) {
    bg_call_t *b = p;
    store_status_t st;
    b->rc = push_auth_status(b->ps, "000000000000000000000000", &st);
    atomic_store(&b->done, true);
    return NULL;
}

static void *bg_key(void *p) {
    bg_call_t *b = p;
    b->rc = push_auth_key(b->ps, "KEY2", 4, b->app, NULL);
    atomic_store(&b->done, true);
    return NULL;
}

static bool sink_blocked(void) {
    pthread_mutex_lock(&R.mu);
    bool b = R.blocked;
    pthread_mutex_unlock(&R.mu);
    return b;
}

/* A status read waits until the store writer has folded every hot push.
 * It must not hold the lock that API-key lookups (every gateway HELLO,
 * every new API key) take: with the writer stuck in a delivery, a
 * lookup of a key not yet cached still answers at once. */
TEST(stored_status_read_leaves_key_lookups_alone) {
    stored_svc_t s;
    CHECK_EQ_INT(start_stored(&s, 0, 0), 0);
    CHECK_EQ_INT(store_app_put(s.st, "other", "S2", "KEY2"), 0);
    pthread_mutex_lock(&R.mu);
    R.block = true;
    R.blocked = false;
    pthread_mutex_unlock(&R.mu);
    bg_call_t push = {.ps = s.ps}, status = {.ps = s.ps}, key = {.ps = s.ps};
    pthread_t tp, ts, tk;
    CHECK_EQ_INT(pthread_create(&tp, NULL, bg_push, &push), 0);
    for (int i = 0; i < 1000 && !sink_blocked(); i++) usleep(2000);
    bool writer_stuck = sink_blocked();
    CHECK_EQ_INT(pthread_create(&ts, NULL, bg_status, &status), 0);
    usleep(100 * 1000);
    bool status_waited = !atomic_load(&status.done);
    CHECK_EQ_INT(pthread_create(&tk, NULL, bg_key, &key), 0);
    for (int i = 0; i < 500 && !atomic_load(&key.done); i++) usleep(2000);
    bool key_answered = atomic_load(&key.done);
    pthread_mutex_lock(&R.mu); /* let everything finish, pass or fail */
    R.block = false;
    pthread_cond_broadcast(&R.cv);
    pthread_mutex_unlock(&R.mu);
    pthread_join(tp, NULL);
    pthread_join(ts, NULL);
    pthread_join(tk, NULL);
    CHECK(writer_stuck);  /* the set-up holds: the writer is in the sink */
    CHECK(status_waited); /* and the status read waits for it */
    CHECK(key_answered);  /* within 1 s, while both still wait */
    CHECK_EQ_INT(key.rc, 0);
    CHECK(!strcmp(key.app, "other"));
    CHECK_EQ_INT(status.rc, STORE_E_NOTFOUND);
    stop_stored(&s);
}

/* The same handlers over TARS: a generated client stub, trpc_call. */
TEST(stored_tars_single) {
    stored_svc_t s;
    CHECK_EQ_INT(start_stored(&s, 0, 0), 0);
    int port = push_service_tars_port(s.ps);
    CHECK(port > 0);
    int fd = -1;
    CHECK_EQ_INT(net_connect_tcp("127.0.0.1", port, NULL, false, &fd), 0);
    herald_PushSingleDeviceReq q;
    herald_PushSingleDeviceReq_init(&q);
    q.apiKey = jce_str_from("KEY");
    q.deviceId = jce_str_from("dev7");
    q.msg.payload.data = (const uint8_t *)"tt";
    q.msg.payload.len = 2;
    jce_out_t args, frame, rbuf;
    jce_out_init(&args, JCE_POLICY_CPP);
    jce_out_init(&frame, JCE_POLICY_CPP);
    jce_out_init(&rbuf, JCE_POLICY_CPP);
    herald_PushAPI_pushSingleDevice_args(&args, 1, &q);
    CHECK_EQ_INT(trpc_request_encode(&frame, 1, TRPC_NORMAL, 7,
                                     "herald.PushServer.PushAPIObj",
                                     "pushSingleDevice", &args, 5000),
                 0);
    jce_arena_t *a = jce_arena_new(0);
    trpc_response_t rsp;
    CHECK_EQ_INT(trpc_call(fd, &frame, 7, 5000, &rbuf, a, &rsp), 0);
    CHECK_EQ_INT(rsp.ret, 0);
    int32_t ret = -1;
    herald_PushSingleDeviceRsp o;
    CHECK_EQ_INT(herald_PushAPI_pushSingleDevice_result(
                     rsp.body.data, rsp.body.len, 1, a, &ret, &o),
                 0);
    CHECK_EQ_INT(ret, 0);
    CHECK_EQ_INT(o.state, 1); /* MSG_STORED */
    CHECK_EQ_INT(o.msgId.len, 24);
    /* A wrong key: ret PUSH_ERR_UNAUTHORIZED. */
    q.apiKey = jce_str_from("NOPE");
    jce_out_free(&args);
    jce_out_free(&frame);
    jce_out_init(&args, JCE_POLICY_CPP);
    jce_out_init(&frame, JCE_POLICY_CPP);
    herald_PushAPI_pushSingleDevice_args(&args, 1, &q);
    CHECK_EQ_INT(trpc_request_encode(&frame, 1, TRPC_NORMAL, 8,
                                     "herald.PushServer.PushAPIObj",
                                     "pushSingleDevice", &args, 5000),
                 0);
    CHECK_EQ_INT(trpc_call(fd, &frame, 8, 5000, &rbuf, a, &rsp), 0);
    CHECK_EQ_INT(herald_PushAPI_pushSingleDevice_result(
                     rsp.body.data, rsp.body.len, 1, a, &ret, &o),
                 0);
    CHECK_EQ_INT(ret, 2);
    close(fd);
    jce_arena_free(a);
    jce_out_free(&args);
    jce_out_free(&frame);
    jce_out_free(&rbuf);
    stop_stored(&s);
}

static void quiet_logs(void) __attribute__((constructor));
static void quiet_logs(void) { log_set_level(LOG_LEVEL_WARN); }
