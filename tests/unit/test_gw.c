/*
 * Unit tests: the gateway (src/gateway/gw*.c) with real sockets on
 * 127.0.0.1 — a gateway on port 0 with two workers and blocking test
 * clients speaking raw TCP and WebSocket.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "Protocol.h"
#include "core/log.h"
#include "core/net.h"
#include "core/token.h"
#include "gateway/gw.h"
#include "gateway/gw_int.h"
#include "gateway/ws.h"
#include "gateway/yyb.h"
#include "test.h"

#define APP "app1"
#define SECRET "s3cret-of-app1"

/* ---- a service that records what the gateway tells it ---- */

static atomic_int n_online, n_offline, n_acks;
static atomic_long last_ack;

static int svc_secret(void *ctx, const char *app, uint8_t *out, size_t cap) {
    (void)ctx;
    if (strcmp(app, APP) || cap < sizeof SECRET) return -1;
    memcpy(out, SECRET, sizeof SECRET - 1);
    return (int)sizeof SECRET - 1;
}
static void svc_online(void *ctx, const gw_device_t *d) { n_online++; }
static void svc_offline(void *ctx, const gw_device_t *d, int reason) {
    n_offline++;
}
static void svc_ack(void *ctx, const gw_device_t *d, int64_t in, int64_t bc) {
    n_acks++;
    last_ack = in;
}
/* Backlog marks answered (gw_push_mark): the last token and its answer. */
static atomic_int n_drained;
static atomic_ullong last_drained;
static atomic_bool last_drained_ok;
static void svc_drained(void *ctx, uint64_t token, bool ok) {
    last_drained = token;
    last_drained_ok = ok;
    n_drained++;
}
/* One revoked device at a time: tokens of REVOKED_DEV issued before
 * revoked_before are refused. */
#define REVOKED_DEV "dev-revoked"
static _Atomic int64_t revoked_before;
static int64_t svc_revoked(void *ctx, const char *app, const char *dev) {
    (void)ctx;
    return !strcmp(app, APP) && !strcmp(dev, REVOKED_DEV) ? revoked_before : 0;
}
static const gw_service_t svc = {NULL,    svc_secret, svc_online,  svc_offline,
                                 svc_ack, NULL,       svc_drained, svc_revoked,
                                 NULL,    NULL};

static gw_t *start_gw(void) {
    gw_config_t c;
    gw_config_defaults(&c);
    c.host = "127.0.0.1";
    c.port = 0;
    c.workers = 2;
    c.hb_min = 1;
    c.hb_grace = 1;
    c.auth_timeout = 2;
    c.head_timeout = 1;
    c.max_frame = 4096;
    gw_t *gw = gw_new(&c, &svc);
    if (gw && gw_start(gw) < 0) {
        gw_free(gw);
        return NULL;
    }
    return gw;
}

/* ---- blocking clients ---- */

static int cl_connect(gw_t *gw) {
    int fd;
    if (net_connect_tcp("127.0.0.1", gw_port(gw), NULL, false, &fd) < 0)
        return -1;
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int cl_write(int fd, const void *p, size_t n) {
    return send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static int cl_read_full(int fd, void *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, (char *)p + got, n - got, 0);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

/* True if the server closed (EOF or reset) within 3 s with no more data. */
static bool cl_closed(int fd) {
    char b[256];
    ssize_t r = recv(fd, b, sizeof b, 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);
}

static char *mint(const char *app, const char *dev, int64_t expiry,
                  const char *secret) {
    static char tok[4][TOKEN_MAX];
    static int i;
    char *t = tok[i++ % 4];
    int64_t now = (int64_t)time(NULL), iat = expiry < now ? expiry : now;
    if (token_mint(t, TOKEN_MAX, app, dev, iat, expiry, (const uint8_t *)secret,
                   strlen(secret)) < 0)
        return NULL;
    return t;
}

static int cl_send_pkg(int fd, int cmd, int req_id, const jce_out_t *body) {
    herald_Package pk;
    herald_Package_init(&pk);
    pk.cmd = cmd;
    pk.reqId = req_id;
    if (body) {
        pk.body.data = body->buf;
        pk.body.len = (uint32_t)body->len;
    }
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    size_t at = yyb_frame_begin(&o);
    herald_Package_encode(&pk, &o);
    yyb_frame_end(&o, at);
    int rc = cl_write(fd, o.buf, o.len);
    jce_out_free(&o);
    return rc;
}

/* Reads one frame into buf and decodes its Package (body points into
 * buf).  0 or -1. */
static int cl_recv_pkg(int fd, uint8_t *buf, size_t cap, herald_Package *pk) {
    uint8_t len[4];
    if (cl_read_full(fd, len, 4) < 0) return -1;
    uint32_t n = (uint32_t)len[0] << 24 | (uint32_t)len[1] << 16 |
                 (uint32_t)len[2] << 8 | len[3];
    if (n < 5 || n - 4 > cap || cl_read_full(fd, buf, n - 4) < 0) return -1;
    jce_in_t in;
    jce_in_init(&in, buf, n - 4, NULL);
    return herald_Package_decode(pk, &in) < 0 ? -1 : 0;
}

static int cl_preface(int fd, uint32_t version) {
    uint8_t p[YYB_PREFACE_LEN];
    yyb_preface(p, version);
    return cl_write(fd, p, sizeof p);
}

/* Preface + hello; returns the answer's ret (or -1) and the response. */
static int cl_hello(int fd, const char *token, int hb, herald_HelloRsp *rsp,
                    jce_arena_t *a) {
    static uint8_t buf[8192];
    herald_HelloReq q;
    herald_HelloReq_init(&q);
    q.token = jce_str_from(token);
    q.heartbeat = hb;
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    herald_HelloReq_encode(&q, &o);
    int rc =
        cl_preface(fd, 1) < 0 || cl_send_pkg(fd, herald_CMD_HELLO, 7, &o) < 0;
    jce_out_free(&o);
    herald_Package pk;
    if (rc || cl_recv_pkg(fd, buf, sizeof buf, &pk) < 0) return -1;
    if (pk.cmd != herald_CMD_HELLO || pk.reqId != 7) return -1;
    if (rsp) {
        jce_in_t in;
        jce_in_init(&in, pk.body.data, pk.body.len, a);
        if (herald_HelloRsp_decode(rsp, &in) < 0) return -1;
    }
    return pk.ret;
}

static int cl_login(gw_t *gw, const char *dev) {
    int fd = cl_connect(gw);
    if (fd < 0) return -1;
    if (cl_hello(fd, mint(APP, dev, time(NULL) + 600, SECRET), 60, NULL,
                 NULL) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Expects a Kick package with this reason, then EOF. */
static bool cl_expect_kick(int fd, int reason) {
    uint8_t buf[1024];
    herald_Package pk;
    if (cl_recv_pkg(fd, buf, sizeof buf, &pk) < 0 || pk.cmd != herald_CMD_KICK)
        return false;
    herald_Kick k;
    jce_in_t in;
    jce_in_init(&in, pk.body.data, pk.body.len, NULL);
    if (herald_Kick_decode(&k, &in) < 0 || k.reason != reason) return false;
    return cl_closed(fd);
}

/* ---- raw TCP ---- */

/* One gateway for all tests, started by whichever runs first (the runner
 * can filter tests by name). */
static gw_t *G_;
static gw_t *gw_get(void) {
    if (!G_) {
        log_set_level(LOG_LEVEL_ERROR);
        G_ = start_gw();
    }
    return G_;
}
#define G gw_get()
#define GW_TOPICS_TEST 70

TEST(gw_start_port) {
    CHECK(G != NULL);
    CHECK(gw_port(G) > 0);
}

TEST(bad_magic_closes_silently) {
    int fd = cl_connect(G);
    CHECK(fd >= 0);
    CHECK(cl_write(fd, "YYX\0\0\0\1", 7) == 0);
    CHECK(cl_closed(fd));
    close(fd);
    fd = cl_connect(G);
    CHECK(cl_write(fd, "\x01\x02\x03", 3) == 0);
    CHECK(cl_closed(fd));
    close(fd);
}

TEST(unknown_version_kicks) {
    int fd = cl_connect(G);
    CHECK(cl_preface(fd, 2) == 0);
    CHECK(cl_expect_kick(fd, herald_ERR_BAD_VERSION));
    close(fd);
}

TEST(hello_ok) {
    int fd = cl_connect(G);
    jce_arena_t *a = jce_arena_new(0);
    herald_HelloRsp r;
    int ret =
        cl_hello(fd, mint(APP, "dev-ok", time(NULL) + 60, SECRET), 20, &r, a);
    CHECK_EQ_INT(ret, 0);
    CHECK(jce_str_eq(r.deviceId, JCE_STR_LIT("dev-ok")));
    CHECK_EQ_INT(r.idleTimeout, 20 * 150 / 100 + 1);
    CHECK_EQ_INT(r.heartbeatMin, 1);
    CHECK(r.serverTime > 1700000000000LL);
    jce_arena_free(a);
    close(fd);
}

TEST(hello_bad_tokens) {
    struct {
        const char *tok;
        int ret;
    } cases[] = {
        {mint(APP, "d1", time(NULL) + 60, "wrong-secret"),
         herald_ERR_BAD_TOKEN},
        {mint(APP, "d1", time(NULL) - 1, SECRET), herald_ERR_TOKEN_EXPIRED},
        {mint("nosuchapp", "d1", time(NULL) + 60, SECRET),
         herald_ERR_BAD_TOKEN},
        {"not-a-token", herald_ERR_BAD_TOKEN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = cl_connect(G);
        CHECK_EQ_INT(cl_hello(fd, cases[i].tok, 60, NULL, NULL), cases[i].ret);
        CHECK(cl_closed(fd));
        close(fd);
    }
}

static char *mint_iat(const char *dev, int64_t iat, int64_t expiry) {
    static char tok[4][TOKEN_MAX];
    static int i;
    char *t = tok[i++ % 4];
    if (token_mint(t, TOKEN_MAX, APP, dev, iat, expiry, (const uint8_t *)SECRET,
                   strlen(SECRET)) < 0)
        return NULL;
    return t;
}

/* Issue 12: expiry +100 years and 2^63-1 were accepted.  A lifetime over
 * the gateway's token_max_ttl (30 days by default) is refused with
 * ERR_TOKEN_TOO_LONG, after the signature is checked, in both forms. */
TEST(hello_token_lifetime_limit) {
    int64_t now = (int64_t)time(NULL), day = 86400;
    struct {
        const char *tok;
        int ret;
    } cases[] = {
        {mint_iat("life-ok", now, now + 30 * day), 0},
        {mint_iat("life-long", now, now + 30 * day + 60),
         herald_ERR_TOKEN_TOO_LONG},
        {mint_iat("life-100y", now, now + 100 * 365 * day),
         herald_ERR_TOKEN_TOO_LONG},
        {mint_iat("life-max", now, INT64_MAX), herald_ERR_TOKEN_TOO_LONG},
        /* old form: counted from now */
        {mint_iat("life-old", TOKEN_NO_IAT, now + 3600), 0},
        {mint_iat("life-old-max", TOKEN_NO_IAT, INT64_MAX),
         herald_ERR_TOKEN_TOO_LONG},
        /* issued 29 days ago for 31: over the maximum though 2 days remain */
        {mint_iat("life-old-iat", now - 29 * day, now + 2 * day),
         herald_ERR_TOKEN_TOO_LONG},
        /* forged and too long: the forgery is what is reported */
        {mint(APP, "life-forged", INT64_MAX, "wrong-secret"),
         herald_ERR_BAD_TOKEN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(cases[i].tok != NULL);
        int fd = cl_connect(G);
        CHECK_EQ_INT(cl_hello(fd, cases[i].tok, 60, NULL, NULL), cases[i].ret);
        if (cases[i].ret) CHECK(cl_closed(fd));
        close(fd);
    }
    /* The maximum changes live (a reload): a 2-day token is then too long. */
    gw_set_token_max_ttl(G, day);
    int fd = cl_connect(G);
    int ret =
        cl_hello(fd, mint_iat("life-live", now, now + 2 * day), 60, NULL, NULL);
    close(fd);
    gw_set_token_max_ttl(G, 30 * day);
    CHECK_EQ_INT(ret, herald_ERR_TOKEN_TOO_LONG);
}

/* Tokens issued before the device's revocation are refused; its
 * connection is kicked with ERR_TOKEN_REVOKED; a token issued since logs
 * in, and a second kick of the same revocation spares it. */
TEST(revoked_device_kicked_and_refused) {
    int64_t now = (int64_t)time(NULL);
    int old = cl_connect(G);
    CHECK_EQ_INT(cl_hello(old, mint_iat(REVOKED_DEV, now - 10, now + 600), 60,
                          NULL, NULL),
                 0);
    revoked_before = now;
    CHECK_EQ_INT(gw_revoke_device(G, APP, REVOKED_DEV, now), 1);
    CHECK(cl_expect_kick(old, herald_ERR_TOKEN_REVOKED));
    close(old);
    /* the same old token again, and the first form expiring within the
     * maximum (it counts as issued 30 days before its expiry) */
    const char *refused[] = {mint_iat(REVOKED_DEV, now - 10, now + 600),
                             mint_iat(REVOKED_DEV, TOKEN_NO_IAT, now + 600)};
    for (int i = 0; i < 2; i++) {
        int fd = cl_connect(G);
        CHECK_EQ_INT(cl_hello(fd, refused[i], 60, NULL, NULL),
                     herald_ERR_TOKEN_REVOKED);
        CHECK(cl_closed(fd));
        close(fd);
    }
    int fresh = cl_connect(G);
    CHECK_EQ_INT(
        cl_hello(fresh, mint_iat(REVOKED_DEV, now, now + 600), 60, NULL, NULL),
        0);
    CHECK_EQ_INT(gw_revoke_device(G, APP, REVOKED_DEV, now), 1);
    CHECK_EQ_INT(gw_revoke_device(G, APP, "nobody", now), 0);
    /* Still served: a heartbeat is answered. */
    herald_HeartbeatReq q;
    herald_HeartbeatReq_init(&q);
    q.interval = 60;
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    herald_HeartbeatReq_encode(&q, &o);
    CHECK(cl_send_pkg(fresh, herald_CMD_HEARTBEAT, 4, &o) == 0);
    jce_out_free(&o);
    uint8_t buf[256];
    herald_Package pk;
    CHECK(cl_recv_pkg(fresh, buf, sizeof buf, &pk) == 0);
    CHECK_EQ_INT(pk.cmd, herald_CMD_HEARTBEAT);
    CHECK_EQ_INT(pk.ret, 0);
    revoked_before = 0;
    close(fresh);
}

TEST(command_before_hello) {
    int fd = cl_connect(G);
    uint8_t buf[256];
    herald_Package pk;
    CHECK(cl_preface(fd, 1) == 0);
    CHECK(cl_send_pkg(fd, herald_CMD_HEARTBEAT, 3, NULL) == 0);
    CHECK(cl_recv_pkg(fd, buf, sizeof buf, &pk) == 0);
    CHECK_EQ_INT(pk.ret, herald_ERR_NOT_AUTHED);
    CHECK_EQ_INT(pk.reqId, 3);
    CHECK(cl_closed(fd));
    close(fd);
}

TEST(heartbeat_and_unknown_cmd) {
    int fd = cl_login(G, "dev-hb");
    CHECK(fd >= 0);
    uint8_t buf[256];
    herald_Package pk;
    CHECK(cl_send_pkg(fd, 77, 5, NULL) == 0);
    CHECK(cl_recv_pkg(fd, buf, sizeof buf, &pk) == 0);
    CHECK_EQ_INT(pk.cmd, 77);
    CHECK_EQ_INT(pk.ret, herald_ERR_UNKNOWN_CMD);
    /* still served */
    herald_HeartbeatReq q;
    herald_HeartbeatReq_init(&q);
    q.interval = 100000; /* clamped to hb_max */
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    herald_HeartbeatReq_encode(&q, &o);
    CHECK(cl_send_pkg(fd, herald_CMD_HEARTBEAT, 6, &o) == 0);
    jce_out_free(&o);
    CHECK(cl_recv_pkg(fd, buf, sizeof buf, &pk) == 0);
    CHECK_EQ_INT(pk.cmd, herald_CMD_HEARTBEAT);
    CHECK_EQ_INT(pk.reqId, 6);
    CHECK_EQ_INT(pk.ret, 0);
    herald_HeartbeatRsp r;
    jce_in_t in;
    jce_in_init(&in, pk.body.data, pk.body.len, NULL);
    CHECK(herald_HeartbeatRsp_decode(&r, &in) == 0);
    CHECK_EQ_INT(r.idleTimeout, 600 * 150 / 100 + 1);
    close(fd);
}

/* 60 unknown commands at once: the first 40 (the burst) are served, then
 * ERR_RATE_LIMITED; acks stay exempt. */
TEST(device_command_rate_limit) {
    int fd = cl_login(G, "dev-rate");
    CHECK(fd >= 0);
    uint8_t buf[256];
    herald_Package pk;
    int served = 0, limited = 0;
    for (int i = 0; i < 60; i++) CHECK(cl_send_pkg(fd, 77, 100 + i, NULL) == 0);
    for (int i = 0; i < 60; i++) {
        CHECK(cl_recv_pkg(fd, buf, sizeof buf, &pk) == 0);
        if (pk.ret == herald_ERR_UNKNOWN_CMD)
            served++;
        else if (pk.ret == herald_ERR_RATE_LIMITED)
            limited++;
    }
    CHECK(served >= 40 && served < 50); /* a tick or two may refill */
    CHECK_EQ_INT(served + limited, 60);
    herald_AckReq q;
    herald_AckReq_init(&q);
    q.inboxSeq = 1;
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    herald_AckReq_encode(&q, &o);
    CHECK(cl_send_pkg(fd, herald_CMD_ACK, 9, &o) == 0);
    jce_out_free(&o);
    CHECK(cl_recv_pkg(fd, buf, sizeof buf, &pk) == 0);
    CHECK_EQ_INT(pk.cmd, herald_CMD_ACK);
    CHECK_EQ_INT(pk.ret, 0);
    close(fd);
}

static bool recv_push(int fd, const char *msg_id, const char *payload);

/* Sends an ack of (inbox, bcast) with reqId 9; its AckRsp into *rsp. */
static bool cl_ack(int fd, int64_t inbox, int64_t bcast, herald_AckRsp *rsp) {
    herald_AckReq q;
    herald_AckReq_init(&q);
    q.inboxSeq = inbox;
    q.broadcastSeq = bcast;
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    herald_AckReq_encode(&q, &o);
    bool ok = cl_send_pkg(fd, herald_CMD_ACK, 9, &o) == 0;
    jce_out_free(&o);
    uint8_t buf[256];
    herald_Package pk;
    if (!ok || cl_recv_pkg(fd, buf, sizeof buf, &pk) < 0 ||
        pk.cmd != herald_CMD_ACK || pk.ret != 0)
        return false;
    jce_in_t in;
    jce_in_init(&in, pk.body.data, pk.body.len, NULL);
    return herald_AckRsp_decode(rsp, &in) == 0;
}

TEST(ack_reaches_service) {
    int fd = cl_login(G, "dev-ack");
    CHECK(fd >= 0);
    gw_msg_t m = {.msg_id = "m-42",
                  .seq = 42,
                  .payload = (const uint8_t *)"x",
                  .payload_len = 1,
                  .need_ack = true};
    CHECK_EQ_INT(gw_push_device(G, APP, "dev-ack", &m), 1);
    CHECK(recv_push(fd, "m-42", "x"));
    int before = n_acks;
    herald_AckRsp r;
    CHECK(cl_ack(fd, 42, 0, &r));
    CHECK_EQ_INT(r.inboxSeq, 42);
    CHECK_EQ_INT(n_acks, before + 1);
    CHECK_EQ_INT(last_ack, 42);
    close(fd);
}

/* Issue 12: an ack of 2^63-1 was echoed as "what the server recorded",
 * though the store clamps it to the seqs it assigned.  The gateway cuts an
 * ack to the highest seq it wrote to the connection, per timeline, passes
 * that on, and answers it. */
TEST(ack_cursor_clamped_to_what_was_sent) {
    int fd = cl_login(G, "dev-ack-max");
    CHECK(fd >= 0);
    gw_msg_t m = {.msg_id = "m-5",
                  .seq = 5,
                  .payload = (const uint8_t *)"x",
                  .payload_len = 1,
                  .need_ack = true};
    CHECK_EQ_INT(gw_push_device(G, APP, "dev-ack-max", &m), 1);
    CHECK(recv_push(fd, "m-5", "x"));
    herald_AckRsp r;
    CHECK(cl_ack(fd, INT64_MAX, INT64_MAX, &r));
    CHECK_EQ_INT(r.inboxSeq, 5);
    CHECK_EQ_INT(r.broadcastSeq, 0); /* no broadcast was sent */
    CHECK_EQ_INT(last_ack, 5);
    /* A lower ack does not move the recorded cursor back. */
    CHECK(cl_ack(fd, 3, 0, &r));
    CHECK_EQ_INT(r.inboxSeq, 5);
    m = (gw_msg_t){.msg_id = "m-b7",
                   .seq = 7,
                   .timeline = 1,
                   .payload = (const uint8_t *)"y",
                   .payload_len = 1,
                   .need_ack = true};
    CHECK_EQ_INT(gw_push_device(G, APP, "dev-ack-max", &m), 1);
    CHECK(recv_push(fd, "m-b7", "y"));
    CHECK(cl_ack(fd, 0, INT64_MAX, &r));
    CHECK_EQ_INT(r.inboxSeq, 5);
    CHECK_EQ_INT(r.broadcastSeq, 7);
    close(fd);
}

TEST(subscribe_limits) {
    int fd = cl_login(G, "dev-sub");
    CHECK(fd >= 0);
    jce_arena_t *a = jce_arena_new(0);
    herald_SubscribeReq q;
    herald_SubscribeReq_init(&q);
    jce_str_t topics[GW_TOPICS_TEST];
    char names[GW_TOPICS_TEST][16];
    for (int i = 0; i < GW_TOPICS_TEST; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        topics[i] = jce_str_from(names[i]);
    }
    topics[0] = JCE_STR_LIT("bad topic");
    q.topics.items = topics;
    q.topics.n = GW_TOPICS_TEST;
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    herald_SubscribeReq_encode(&q, &o);
    CHECK(cl_send_pkg(fd, herald_CMD_SUBSCRIBE, 1, &o) == 0);
    jce_out_free(&o);
    uint8_t buf[4096];
    herald_Package pk;
    CHECK(cl_recv_pkg(fd, buf, sizeof buf, &pk) == 0);
    CHECK_EQ_INT(pk.ret, 0);
    herald_SubscribeRsp r;
    jce_in_t in;
    jce_in_init(&in, pk.body.data, pk.body.len, a);
    CHECK(herald_SubscribeRsp_decode(&r, &in) == 0);
    /* one bad name, and everything past the 64-topic limit */
    CHECK_EQ_INT(r.rejected.n, 1 + (GW_TOPICS_TEST - 1 - 64));
    CHECK_EQ_INT(r.rejected.vals[0], herald_ERR_BAD_TOPIC);
    CHECK_EQ_INT(r.rejected.vals[1], herald_ERR_TOO_MANY_TOPICS);
    jce_arena_free(a);
    close(fd);
}

TEST(frame_too_large_kicks) {
    int fd = cl_connect(G);
    CHECK(cl_preface(fd, 1) == 0);
    CHECK(cl_write(fd, "\x00\x10\x00\x00", 4) == 0);
    CHECK(cl_expect_kick(fd, herald_ERR_FRAME_TOO_LARGE));
    close(fd);
}

TEST(garbage_jce_closes) {
    int fd = cl_login(G, "dev-garbage");
    CHECK(fd >= 0);
    CHECK(cl_write(fd, "\x00\x00\x00\x08\xff\xff\xff\xff", 8) == 0);
    uint8_t buf[256];
    herald_Package pk;
    CHECK(cl_recv_pkg(fd, buf, sizeof buf, &pk) == 0);
    CHECK_EQ_INT(pk.ret, herald_ERR_BAD_PACKAGE);
    CHECK(cl_closed(fd));
    close(fd);
}

TEST(duplicate_login_kicks_first) {
    int a = cl_login(G, "dev-dup");
    CHECK(a >= 0);
    int b = cl_login(G, "dev-dup");
    CHECK(b >= 0);
    CHECK(cl_expect_kick(a, herald_ERR_DUPLICATE_LOGIN));
    /* the second one is the device now */
    gw_msg_t m = {
        .msg_id = "m-dup", .payload = (const uint8_t *)"x", .payload_len = 1};
    CHECK_EQ_INT(gw_push_device(G, APP, "dev-dup", &m), 1);
    uint8_t buf[512];
    herald_Package pk;
    CHECK(cl_recv_pkg(b, buf, sizeof buf, &pk) == 0);
    CHECK_EQ_INT(pk.cmd, herald_CMD_PUSH);
    close(a);
    close(b);
}

static bool recv_push(int fd, const char *msg_id, const char *payload) {
    uint8_t buf[2048];
    herald_Package pk;
    if (cl_recv_pkg(fd, buf, sizeof buf, &pk) < 0 || pk.cmd != herald_CMD_PUSH)
        return false;
    jce_arena_t *a = jce_arena_new(0);
    herald_PushBatch b;
    jce_in_t in;
    jce_in_init(&in, pk.body.data, pk.body.len, a);
    bool ok = herald_PushBatch_decode(&b, &in) == 0 && b.msgs.n == 1 &&
              jce_str_eq(b.msgs.items[0].msgId, jce_str_from(msg_id)) &&
              b.msgs.items[0].payload.len == strlen(payload) &&
              !memcmp(b.msgs.items[0].payload.data, payload, strlen(payload));
    jce_arena_free(a);
    return ok;
}

TEST(push_to_device) {
    int fd = cl_login(G, "dev-push");
    CHECK(fd >= 0);
    gw_msg_t m = {.msg_id = "m-1",
                  .seq = 12,
                  .payload = (const uint8_t *)"hello",
                  .payload_len = 5,
                  .need_ack = true};
    CHECK_EQ_INT(gw_push_device(G, APP, "dev-push", &m), 1);
    CHECK_EQ_INT(gw_push_device(G, APP, "nobody", &m), 0);
    CHECK_EQ_INT(gw_push_device(G, "noapp", "dev-push", &m), 0);
    CHECK(recv_push(fd, "m-1", "hello"));
    close(fd);
}

#define NBCAST 100
TEST(broadcast_to_100) {
    int fds[NBCAST];
    for (int i = 0; i < NBCAST; i++) {
        char dev[32];
        snprintf(dev, sizeof dev, "bc-%d", i);
        fds[i] = cl_login(G, dev);
        CHECK(fds[i] >= 0);
    }
    gw_msg_t m = {.msg_id = "m-all",
                  .timeline = 2,
                  .payload = (const uint8_t *)"to everyone",
                  .payload_len = 11};
    CHECK(gw_push_online(G, APP, &m) >= NBCAST);
    int got = 0;
    for (int i = 0; i < NBCAST; i++)
        got += recv_push(fds[i], "m-all", "to everyone");
    CHECK_EQ_INT(got, NBCAST);
    for (int i = 0; i < NBCAST; i++) close(fds[i]);
    CHECK_EQ_INT(gw_push_online(G, "noapp", &m), 0);
}

TEST(heartbeat_timeout_closes) {
    int fd = cl_connect(G);
    /* hb 1 s: idle = 1 * 1.5 (integer: 1) + 1 grace = 2 s */
    CHECK_EQ_INT(cl_hello(fd, mint(APP, "dev-silent", time(NULL) + 60, SECRET),
                          1, NULL, NULL),
                 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(cl_expect_kick(fd, herald_ERR_HEARTBEAT_TIMEOUT));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s =
        (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(s > 1.5 && s < 4.0); /* 2 s, plus slack for a loaded CI box */
    close(fd);
}

TEST(auth_timeout_closes) {
    int fd = cl_connect(G);
    struct timeval tv = {4, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    CHECK(cl_closed(fd));
    close(fd);
}

/* max_conns 0: what the descriptor limit leaves after the rest of the
 * process (at most half of it), less 1/16 for refusals. */
TEST(conns_auto_from_descriptor_limit) {
    int ref = -1;
    /* herald serve's defaults: 64 + 1024 API + 64 TARS + 64 admin */
    CHECK_EQ_INT(gw_conns_auto(20000, 1216, 2, &ref), 17603);
    CHECK_EQ_INT(ref, 1173);
    CHECK_EQ_INT(gw_conns_auto(256, 1216, 2, &ref), 120); /* half kept */
    CHECK_EQ_INT(ref, 8);
    CHECK_EQ_INT(gw_conns_auto(1048576, 1216, 8, &ref), 981870);
    CHECK_EQ_INT(gw_conns_auto(2, 1216, 2, NULL), 1); /* never 0 */
}

TEST(conn_struct_is_lean) {
    /* DESIGN §6: a few hundred bytes per idle connection, all included. */
    CHECK(sizeof(gw_conn_t) <= 160);
}

/* A device with a tiny receive window, and a 4,000-byte push for it. */
static int slow_reader(const char *dev, gw_msg_t *m) {
    static uint8_t big[4000];
    memset(big, 'z', sizeof big);
    *m = (gw_msg_t){
        .msg_id = "m-big", .payload = big, .payload_len = sizeof big};
    int fd = cl_login(G, dev);
    int small = 4096;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    return fd;
}

TEST(slow_consumer_cut) {
    gw_msg_t m;
    int fd = slow_reader("dev-slow", &m);
    CHECK(fd >= 0);
    gw_stats_t s0, s1;
    gw_stats(G, &s0);
    /* The client reads nothing: kernel buffers fill, then max_pending. */
    int pushed = 0;
    for (int i = 0; i < 5000 && gw_push_device(G, APP, "dev-slow", &m) == 1;
         i++)
        pushed++;
    long queued_max = 0;
    for (int i = 0; i < 300; i++) {
        gw_stats(G, &s1);
        if (s1.out_queued > queued_max) queued_max = s1.out_queued;
        if (s1.slow_consumers > s0.slow_consumers) break;
        usleep(10000);
    }
    CHECK(pushed > 0);
    CHECK_EQ_INT(s1.slow_consumers, s0.slow_consumers + 1);
    (void)queued_max;
    /* The worker counts the cut, logs it, then closes (and uncounts the
     * queue): the stats can be read in between, so wait for the close. */
    for (int i = 0; i < 200 && s1.out_queued != s0.out_queued; i++) {
        usleep(5000);
        gw_stats(G, &s1);
    }
    CHECK_EQ_INT(s1.out_queued, s0.out_queued); /* uncounted when cut */
    /* gone from the registry: later pushes find no connection */
    CHECK_EQ_INT(gw_push_device(G, APP, "dev-slow", &m), 0);
    close(fd);
}

/* Waits up to ms for n_drained to reach n. */
static bool drained_by(int n, int ms) {
    for (int i = 0; i < ms / 5 && n_drained < n; i++) usleep(5000);
    return n_drained >= n;
}

/* Reads and drops what the socket has until `want` bytes came or nothing
 * arrives for 300 ms; returns the bytes read. */
static size_t cl_drain(int fd, size_t want) {
    static uint8_t sink[65536];
    size_t got = 0;
    while (got < want) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 300) != 1) break;
        ssize_t n = read(fd, sink, sizeof sink);
        if (n <= 0) break;
        got += (size_t)n;
    }
    return got;
}

/* Pushes backlog messages m to dev until more than `bytes` wait in the
 * gateway's queues (past what the kernel took); false if it never got
 * there or the connection went. */
static bool backlog_until(const char *dev, gw_msg_t *m, long bytes) {
    gw_stats_t s;
    m->backlog = true;
    for (int i = 0; i < 4000; i++) {
        if (gw_push_device(G, APP, dev, m) != 1) return false;
        if (i % 16 == 15) {
            usleep(2000);
            gw_stats(G, &s);
            if (s.out_queued > bytes) return true;
        }
    }
    return false;
}

/* A backlog (gw_msg_t.backlog, the connect-time sync's pages) is not cut
 * as a slow consumer past max_pending; its mark fires only once the
 * reader has taken the output down to max_pending / 4; a second mark
 * while one waits, or a mark whose connection closes, is answered !ok;
 * live pushes queued behind a backlog are still cut at max_pending of
 * their own; a backlog sender that never waits is cut at 4 x
 * max_pending. */
TEST(backlog_paced_by_mark_not_cut) {
    gw_msg_t m;
    int fd = slow_reader("dev-bl", &m);
    CHECK(fd >= 0);
    gw_stats_t s0, s1;
    gw_stats(G, &s0);
    /* Nothing read: twice max_pending waits here, past the kernel's. */
    CHECK(backlog_until("dev-bl", &m, s0.out_queued + 512 * 1024));
    int d0 = n_drained;
    CHECK_EQ_INT(gw_push_mark(G, APP, "dev-bl", 41), 1);
    usleep(200000);
    CHECK_EQ_INT(n_drained, d0); /* far above the low watermark: waits */
    gw_stats(G, &s1);
    CHECK_EQ_INT(s1.slow_consumers, s0.slow_consumers);
    /* One backlog at a time: a second mark is turned down at once. */
    CHECK_EQ_INT(gw_push_mark(G, APP, "dev-bl", 42), 1);
    CHECK(drained_by(d0 + 1, 2000));
    CHECK_EQ_INT(last_drained, 42);
    CHECK(!last_drained_ok);
    /* The reader catches up (with a normal window now, well within the
     * test gateway's short idle timeout): the first mark fires, ok. */
    int big = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    for (int i = 0; i < 400 && n_drained < d0 + 2; i++)
        (void)cl_drain(fd, 65536);
    CHECK(drained_by(d0 + 2, 2000));
    CHECK_EQ_INT(last_drained, 41);
    CHECK(last_drained_ok);
    while (cl_drain(fd, 1u << 30) > 0) {} /* the rest, until 300 ms quiet */
    gw_stats(G, &s1);
    CHECK_EQ_INT(s1.slow_consumers, s0.slow_consumers);
    /* A mark on a drained connection fires at once. */
    CHECK_EQ_INT(gw_push_mark(G, APP, "dev-bl", 43), 1);
    CHECK(drained_by(d0 + 3, 2000));
    CHECK_EQ_INT(last_drained, 43);
    CHECK(last_drained_ok);
    /* Live pushes behind a waiting backlog: cut at max_pending of their
     * own, and the waiting mark is answered !ok. */
    gw_stats(G, &s0);
    CHECK(backlog_until("dev-bl", &m, s0.out_queued + 512 * 1024));
    CHECK_EQ_INT(gw_push_mark(G, APP, "dev-bl", 44), 1);
    m.backlog = false;
    for (int i = 0; i < 5000 && gw_push_device(G, APP, "dev-bl", &m) == 1; i++)
        if (i % 64 == 63) usleep(1000);
    CHECK(drained_by(d0 + 4, 3000));
    CHECK_EQ_INT(last_drained, 44);
    CHECK(!last_drained_ok);
    gw_stats(G, &s1);
    CHECK_EQ_INT(s1.slow_consumers, s0.slow_consumers + 1);
    CHECK_EQ_INT(gw_push_mark(G, APP, "dev-bl", 45), 0); /* gone */
    close(fd);
    /* A backlog sender that never waits for its marks. */
    fd = slow_reader("dev-bl2", &m);
    CHECK(fd >= 0);
    gw_stats(G, &s0);
    CHECK(!backlog_until("dev-bl2", &m, 1L << 30));
    gw_stats(G, &s1);
    CHECK_EQ_INT(s1.slow_consumers, s0.slow_consumers + 1);
    close(fd);
}

/* gw_stats().out_queued (herald_queue_depth{queue="delivery"}): bytes
 * that wait for a slow reader are counted until it reads them. */
TEST(queued_output_is_counted) {
    gw_msg_t m;
    int fd = slow_reader("dev-lag", &m);
    CHECK(fd >= 0);
    gw_stats_t s0, s1;
    gw_stats(G, &s0);
    /* Push until the kernel's buffers are full and bytes queue here; a few
     * pushes more than that stay far below the 256 KiB cut. */
    for (int i = 0; i < 3000; i++) {
        CHECK_EQ_INT(gw_push_device(G, APP, "dev-lag", &m), 1);
        if (i % 8 == 7) {
            usleep(2000);
            gw_stats(G, &s1);
            if (s1.out_queued > s0.out_queued) break;
        }
    }
    CHECK(s1.out_queued > s0.out_queued);
    CHECK(s1.slow_consumers == s0.slow_consumers);
    /* Read everything (a wide window now): the queue drains and the count
     * returns. */
    int wide = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &wide, sizeof wide);
    uint8_t buf[65536];
    for (int i = 0; i < 3000; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1) > 0 && read(fd, buf, sizeof buf) <= 0) break;
        gw_stats(G, &s1);
        if (s1.out_queued == s0.out_queued) break;
    }
    CHECK_EQ_INT(s1.out_queued, s0.out_queued);
    close(fd);
}

/* ---- WebSocket ---- */

static const uint8_t MASK[4] = {1, 2, 3, 4};

static int ws_send(int fd, unsigned op, const char *s, size_t n, bool masked) {
    uint8_t f[1024];
    size_t h;
    if (masked) {
        h = ws_frame_header_masked(f, op, true, n, MASK);
        memcpy(f + h, s, n);
        ws_mask(f + h, n, MASK, 0);
    } else {
        h = ws_frame_header(f, op, n);
        memcpy(f + h, s, n);
    }
    return cl_write(fd, f, h + n);
}

/* Reads one unfragmented server frame; payload NUL-terminated. */
static int ws_recv(int fd, int *op, char *out, size_t cap) {
    uint8_t h[2];
    if (cl_read_full(fd, h, 2) < 0) return -1;
    uint64_t n = h[1] & 0x7f;
    if (n == 126) {
        uint8_t e[2];
        if (cl_read_full(fd, e, 2) < 0) return -1;
        n = (uint64_t)e[0] << 8 | e[1];
    } else if (n == 127) {
        return -1;
    }
    if (n >= cap || cl_read_full(fd, out, n) < 0) return -1;
    out[n] = 0;
    *op = h[0] & 0x0f;
    return (int)n;
}

/* Sends an upgrade; returns the fd with the 101 head consumed, or -1
 * with *status set. */
static int ws_open_x(gw_t *gw, const char *token, const char *extra,
                     int *status, char *head, size_t cap) {
    int fd = cl_connect(gw);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET /v1/ws?token=%s HTTP/1.1\r\nHost: x\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "%sSec-WebSocket-Version: 13\r\n\r\n",
                     token, extra);
    cl_write(fd, req, (size_t)n);
    size_t got = 0;
    while (got + 1 < cap) {
        if (recv(fd, head + got, 1, 0) != 1) break;
        got++;
        if (got >= 4 && !memcmp(head + got - 4, "\r\n\r\n", 4)) break;
    }
    head[got] = 0;
    *status = got > 12 ? atoi(head + 9) : 0;
    return fd;
}

static int ws_open(gw_t *gw, const char *token, int *status, char *head,
                   size_t cap) {
    return ws_open_x(gw, token, "", status, head, cap);
}

TEST(ws_jce_binary_fragmented) {
    char head[2048], msg[1024];
    int st, op;
    int fd = ws_open_x(G, mint(APP, "web-jce", time(NULL) + 60, SECRET),
                       "Sec-WebSocket-Protocol: herald.jce\r\n", &st, head,
                       sizeof head);
    CHECK_EQ_INT(st, 101);
    CHECK(strstr(head, "herald.jce") != NULL);
    int n = ws_recv(fd, &op, msg, sizeof msg);
    CHECK(n > 0);
    CHECK_EQ_INT(op, WS_OP_BINARY);
    herald_Package pk;
    jce_in_t in;
    jce_in_init(&in, msg, (size_t)n, NULL);
    CHECK(herald_Package_decode(&pk, &in) == 0);
    CHECK_EQ_INT(pk.cmd, herald_CMD_HELLO);

    /* a heartbeat Package split over two fragments */
    herald_HeartbeatReq q;
    herald_HeartbeatReq_init(&q);
    q.interval = 20;
    jce_out_t b, o;
    jce_out_init(&b, JCE_POLICY_CPP);
    herald_HeartbeatReq_encode(&q, &b);
    herald_Package_init(&pk);
    pk.cmd = herald_CMD_HEARTBEAT;
    pk.reqId = 11;
    pk.body.data = b.buf;
    pk.body.len = (uint32_t)b.len;
    jce_out_init(&o, JCE_POLICY_CPP);
    herald_Package_encode(&pk, &o);
    uint8_t fr[256];
    size_t h1 = ws_frame_header_masked(fr, WS_OP_BINARY, false, 3, MASK);
    memcpy(fr + h1, o.buf, 3);
    ws_mask(fr + h1, 3, MASK, 0);
    size_t h2 =
        ws_frame_header_masked(fr + h1 + 3, WS_OP_CONT, true, o.len - 3, MASK);
    memcpy(fr + h1 + 3 + h2, o.buf + 3, o.len - 3);
    ws_mask(fr + h1 + 3 + h2, o.len - 3, MASK, 0);
    CHECK(cl_write(fd, fr, h1 + 3 + h2 + o.len - 3) == 0);
    jce_out_free(&b);
    jce_out_free(&o);
    n = ws_recv(fd, &op, msg, sizeof msg);
    CHECK(n > 0);
    CHECK_EQ_INT(op, WS_OP_BINARY);
    jce_in_init(&in, msg, (size_t)n, NULL);
    CHECK(herald_Package_decode(&pk, &in) == 0);
    CHECK_EQ_INT(pk.cmd, herald_CMD_HEARTBEAT);
    CHECK_EQ_INT(pk.reqId, 11);
    CHECK_EQ_INT(pk.ret, 0);

    /* a push arrives as a binary Package too */
    gw_msg_t m = {
        .msg_id = "j-1", .payload = (const uint8_t *)"bin", .payload_len = 3};
    CHECK_EQ_INT(gw_push_device(G, APP, "web-jce", &m), 1);
    n = ws_recv(fd, &op, msg, sizeof msg);
    CHECK(n > 0);
    jce_in_init(&in, msg, (size_t)n, NULL);
    CHECK(herald_Package_decode(&pk, &in) == 0);
    CHECK_EQ_INT(pk.cmd, herald_CMD_PUSH);

    /* close handshake: the server answers with a close frame */
    CHECK(ws_send(fd, WS_OP_CLOSE, "\x03\xe8", 2, true) == 0);
    CHECK(ws_recv(fd, &op, msg, sizeof msg) >= 0);
    CHECK_EQ_INT(op, WS_OP_CLOSE);
    CHECK(cl_closed(fd));
    close(fd);
}

TEST(ws_json_session) {
    char head[2048], msg[1024];
    int st, op;
    int fd = ws_open(G, mint(APP, "web-1", time(NULL) + 60, SECRET), &st, head,
                     sizeof head);
    CHECK_EQ_INT(st, 101);
    CHECK(strstr(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != NULL);
    CHECK(ws_recv(fd, &op, msg, sizeof msg) > 0);
    CHECK_EQ_INT(op, WS_OP_TEXT);
    CHECK(strstr(msg, "\"cmd\":\"hello\"") &&
          strstr(msg, "\"deviceId\":\"web-1\""));

    const char *hb = "{\"cmd\":\"heartbeat\",\"interval\":30,\"reqId\":4}";
    CHECK(ws_send(fd, WS_OP_TEXT, hb, strlen(hb), true) == 0);
    CHECK(ws_recv(fd, &op, msg, sizeof msg) > 0);
    CHECK(strstr(msg, "\"cmd\":\"heartbeat\"") && strstr(msg, "\"reqId\":4"));
    CHECK(strstr(msg, "\"idleTimeout\":46") != NULL);

    const char *bad = "{\"cmd\":\"dance\"}";
    CHECK(ws_send(fd, WS_OP_TEXT, bad, strlen(bad), true) == 0);
    CHECK(ws_recv(fd, &op, msg, sizeof msg) > 0);
    CHECK(strstr(msg, "\"cmd\":\"error\"") && strstr(msg, "\"code\":1005"));

    CHECK(ws_send(fd, WS_OP_PING, "pp", 2, true) == 0);
    CHECK_EQ_INT(ws_recv(fd, &op, msg, sizeof msg), 2);
    CHECK_EQ_INT(op, WS_OP_PONG);

    gw_msg_t m = {.msg_id = "w-1",
                  .seq = 3,
                  .payload = (const uint8_t *)"hi \xc3\xa9",
                  .payload_len = 5,
                  .need_ack = true};
    CHECK_EQ_INT(gw_push_device(G, APP, "web-1", &m), 1);
    CHECK(ws_recv(fd, &op, msg, sizeof msg) > 0);
    CHECK(strstr(msg, "\"cmd\":\"push\"") && strstr(msg, "\"msgId\":\"w-1\""));
    CHECK(strstr(msg, "\"payload\":\"hi \xc3\xa9\"") != NULL);

    gw_msg_t mb = {.msg_id = "w-2",
                   .payload = (const uint8_t *)"\xff\x00",
                   .payload_len = 2};
    CHECK_EQ_INT(gw_push_device(G, APP, "web-1", &mb), 1);
    CHECK(ws_recv(fd, &op, msg, sizeof msg) > 0);
    CHECK(strstr(msg, "\"payloadB64\":\"/wA=\"") != NULL);

    /* Without reqId an ack is one-way; the answer that comes is the
     * second ack's, so the first got none (frames run in order). */
    const char *ack = "{\"cmd\":\"ack\",\"inboxSeq\":3}";
    const char *ack8 = "{\"cmd\":\"ack\",\"reqId\":8,\"inboxSeq\":3}";
    int before = n_acks;
    CHECK(ws_send(fd, WS_OP_TEXT, ack, strlen(ack), true) == 0);
    CHECK(ws_send(fd, WS_OP_TEXT, ack8, strlen(ack8), true) == 0);
    CHECK(ws_recv(fd, &op, msg, sizeof msg) > 0);
    CHECK(strstr(msg, "\"cmd\":\"ack\""));
    CHECK(strstr(msg, "\"reqId\":8"));
    CHECK_EQ_INT(n_acks, before + 2);

    /* an unmasked client frame is a protocol error: close 1002 */
    CHECK(ws_send(fd, WS_OP_TEXT, hb, strlen(hb), false) == 0);
    CHECK(ws_recv(fd, &op, msg, sizeof msg) >= 2);
    CHECK_EQ_INT(op, WS_OP_CLOSE);
    CHECK_EQ_INT(((uint8_t)msg[0] << 8) | (uint8_t)msg[1], 1002);
    CHECK(cl_closed(fd));
    close(fd);
}

TEST(ws_oversize_frame) {
    char head[2048], msg[256];
    int st, op;
    int fd = ws_open(G, mint(APP, "web-big", time(NULL) + 60, SECRET), &st,
                     head, sizeof head);
    CHECK_EQ_INT(st, 101);
    CHECK(ws_recv(fd, &op, msg, sizeof msg) > 0);
    uint8_t h[WS_HEADER_MAX];
    size_t hl = ws_frame_header_masked(h, WS_OP_BINARY, true, 1u << 20, MASK);
    CHECK(cl_write(fd, h, hl) == 0);
    CHECK(ws_recv(fd, &op, msg, sizeof msg) >= 2);
    CHECK_EQ_INT(op, WS_OP_CLOSE);
    CHECK_EQ_INT(((uint8_t)msg[0] << 8) | (uint8_t)msg[1], 1009);
    close(fd);
}

TEST(ws_bad_token_401) {
    char head[2048];
    int st;
    int fd = ws_open(G, mint(APP, "web-x", time(NULL) + 60, "nope"), &st, head,
                     sizeof head);
    CHECK_EQ_INT(st, 401);
    close(fd);
    fd = ws_open(G, mint(APP, "web-x", time(NULL) - 5, SECRET), &st, head,
                 sizeof head);
    CHECK_EQ_INT(st, 401);
    char body[256] = {0};
    CHECK(recv(fd, body, sizeof body - 1, 0) > 0);
    CHECK(strstr(body, "\"code\":1008") != NULL);
    close(fd);
}

TEST(http_slow_head_408) {
    int fd = cl_connect(G);
    const char *part = "GET /v1/ws HTTP/1.1\r\nHost: x";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool cut = false;
    char resp[512] = {0};
    for (size_t i = 0; part[i]; i++) {
        if (cl_write(fd, part + i, 1) < 0) break;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 300) > 0) {
            cut = recv(fd, resp, sizeof resp - 1, 0) > 0;
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(cut);
    CHECK(strncmp(resp, "HTTP/1.1 408", 12) == 0);
    CHECK(t1.tv_sec - t0.tv_sec <= 3);
    close(fd);
}

TEST(http_other_paths) {
    int fd = cl_connect(G);
    const char *req = "GET /v1/yyb HTTP/1.1\r\n\r\n";
    CHECK(cl_write(fd, req, strlen(req)) == 0);
    char resp[512] = {0};
    CHECK(recv(fd, resp, sizeof resp - 1, 0) > 0);
    CHECK(strncmp(resp, "HTTP/1.1 405", 12) == 0);
    close(fd);
    fd = cl_connect(G);
    req = "GET /nope HTTP/1.1\r\n\r\n";
    CHECK(cl_write(fd, req, strlen(req)) == 0);
    CHECK(recv(fd, resp, sizeof resp - 1, 0) > 0);
    CHECK(strncmp(resp, "HTTP/1.1 404", 12) == 0);
    close(fd);
}

/* POST /v1/yyb: sends head + body, returns the status; the response body
 * (after the head) goes to out/out_len. */
static int yyb_post(const char *auth, const uint8_t *body, size_t len,
                    uint8_t *out, size_t cap, size_t *out_len) {
    int fd = cl_connect(G);
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "POST /v1/yyb HTTP/1.1\r\nHost: x\r\n%s%s%s"
                     "Content-Length: %zu\r\n\r\n",
                     auth ? "Authorization: Bearer " : "", auth ? auth : "",
                     auth ? "\r\n" : "", len);
    if (cl_write(fd, head, (size_t)n) < 0 || cl_write(fd, body, len) < 0) {
        close(fd);
        return -1;
    }
    static char resp[16384];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof resp &&
           (r = recv(fd, resp + got, sizeof resp - got, 0)) > 0)
        got += (size_t)r;
    close(fd);
    char *end = memmem(resp, got, "\r\n\r\n", 4);
    if (got < 12 || !end) return -1;
    size_t hl = (size_t)(end + 4 - resp);
    *out_len = got - hl < cap ? got - hl : cap;
    memcpy(out, end + 4, *out_len);
    return atoi(resp + 9);
}

/* Appends a frame of (cmd, reqId, body) to o. */
static void put_pkg(jce_out_t *o, int cmd, int req_id, const jce_out_t *body) {
    herald_Package pk;
    herald_Package_init(&pk);
    pk.cmd = cmd;
    pk.reqId = req_id;
    if (body) {
        pk.body.data = body->buf;
        pk.body.len = (uint32_t)body->len;
    }
    size_t at = yyb_frame_begin(o);
    herald_Package_encode(&pk, o);
    yyb_frame_end(o, at);
}

/* The n-th package of a response body (preface + frames). */
static bool nth_pkg(const uint8_t *p, size_t len, int nth, herald_Package *pk) {
    if (len < YYB_PREFACE_LEN || memcmp(p, "YYB\0\0\0\1", 7)) return false;
    size_t off = YYB_PREFACE_LEN;
    for (int i = 0; off + 4 <= len; i++) {
        uint32_t fl = (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 |
                      (uint32_t)p[off + 2] << 8 | p[off + 3];
        if (fl < 5 || off + fl > len) return false;
        if (i == nth) {
            jce_in_t in;
            jce_in_init(&in, p + off + 4, fl - 4, NULL);
            return herald_Package_decode(pk, &in) == 0;
        }
        off += fl;
    }
    return false;
}

TEST(yyb_post_short_lived) {
    uint8_t out[4096];
    size_t ol;
    herald_Package pk;
    uint8_t pre[YYB_PREFACE_LEN];
    yyb_preface(pre, 1);

    /* token in the header, one heartbeat */
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_out_raw(&o, pre, sizeof pre);
    put_pkg(&o, herald_CMD_HEARTBEAT, 21, NULL);
    int online_before = n_online;
    CHECK_EQ_INT(yyb_post(mint(APP, "post-1", time(NULL) + 60, SECRET), o.buf,
                          o.len, out, sizeof out, &ol),
                 200);
    CHECK(nth_pkg(out, ol, 0, &pk));
    CHECK_EQ_INT(pk.cmd, herald_CMD_HEARTBEAT);
    CHECK_EQ_INT(pk.reqId, 21);
    CHECK_EQ_INT(pk.ret, 0);
    CHECK_EQ_INT(n_online, online_before); /* never registered */
    jce_out_free(&o);

    /* hello in the body, then an ack */
    herald_HelloReq hq;
    herald_HelloReq_init(&hq);
    hq.token = jce_str_from(mint(APP, "post-2", time(NULL) + 60, SECRET));
    jce_out_t hb;
    jce_out_init(&hb, JCE_POLICY_CPP);
    herald_HelloReq_encode(&hq, &hb);
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_out_raw(&o, pre, sizeof pre);
    put_pkg(&o, herald_CMD_HELLO, 1, &hb);
    put_pkg(&o, herald_CMD_ACK, 2, NULL);
    CHECK_EQ_INT(yyb_post(NULL, o.buf, o.len, out, sizeof out, &ol), 200);
    CHECK(nth_pkg(out, ol, 0, &pk));
    CHECK_EQ_INT(pk.cmd, herald_CMD_HELLO);
    CHECK_EQ_INT(pk.ret, 0);
    CHECK(nth_pkg(out, ol, 1, &pk));
    CHECK_EQ_INT(pk.cmd, herald_CMD_ACK);
    CHECK_EQ_INT(pk.ret, 0);
    jce_out_free(&hb);
    jce_out_free(&o);

    /* no auth at all: the answer says so */
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_out_raw(&o, pre, sizeof pre);
    put_pkg(&o, herald_CMD_SYNC, 3, NULL);
    CHECK_EQ_INT(yyb_post(NULL, o.buf, o.len, out, sizeof out, &ol), 200);
    CHECK(nth_pkg(out, ol, 0, &pk));
    CHECK_EQ_INT(pk.ret, herald_ERR_NOT_AUTHED);

    /* bad token: 401; bad preface and truncated frames: 400 */
    CHECK_EQ_INT(yyb_post(mint(APP, "post-3", time(NULL) + 60, "x"), o.buf,
                          o.len, out, sizeof out, &ol),
                 401);
    o.buf[0] = 'Z';
    CHECK_EQ_INT(yyb_post(NULL, o.buf, o.len, out, sizeof out, &ol), 400);
    o.buf[0] = 'Y';
    CHECK_EQ_INT(yyb_post(NULL, o.buf, o.len - 1, out, sizeof out, &ol), 400);
    jce_out_free(&o);
}

/* ---- overload: refused connections get a code (gw_admit.c) ---- */

static gw_t *start_limited(int per_ip, int max_conns, double rate,
                           double burst) {
    gw_config_t c;
    gw_config_defaults(&c);
    c.host = "127.0.0.1";
    c.port = 0;
    c.workers = 2;
    c.max_conns_per_ip = per_ip;
    c.max_conns = max_conns;
    c.accept_rate = rate;
    c.accept_burst = burst;
    gw_t *gw = gw_new(&c, &svc);
    if (gw && gw_start(gw) < 0) {
        gw_free(gw);
        return NULL;
    }
    return gw;
}

static int cl_connect_from(gw_t *gw, const char *src) {
    int fd;
    if (net_connect_tcp("127.0.0.1", gw_port(gw), src, false, &fd) < 0)
        return -1;
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int login_from(gw_t *gw, const char *src, const char *dev) {
    int fd = cl_connect_from(gw, src);
    if (fd < 0) return -1;
    if (cl_hello(fd, mint(APP, dev, time(NULL) + 600, SECRET), 60, NULL,
                 NULL) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends preface + hello and expects, instead of the hello's answer, a Kick
 * with this reason and retryAfter, then EOF. */
static bool refused_from(gw_t *gw, const char *src, int reason, int retry) {
    int fd = cl_connect_from(gw, src);
    if (fd < 0) return false;
    herald_HelloReq q;
    herald_HelloReq_init(&q);
    q.token = jce_str_from(mint(APP, "refused", time(NULL) + 600, SECRET));
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    herald_HelloReq_encode(&q, &o);
    bool ok =
        cl_preface(fd, 1) == 0 && cl_send_pkg(fd, herald_CMD_HELLO, 7, &o) == 0;
    jce_out_free(&o);
    uint8_t buf[512];
    herald_Package pk;
    herald_Kick k;
    ok = ok && cl_recv_pkg(fd, buf, sizeof buf, &pk) == 0 &&
         pk.cmd == herald_CMD_KICK;
    if (ok) {
        jce_in_t in;
        jce_in_init(&in, pk.body.data, pk.body.len, NULL);
        ok = herald_Kick_decode(&k, &in) == 0 && k.reason == reason &&
             k.retryAfter == retry && cl_closed(fd);
    }
    close(fd);
    return ok;
}

/* A WebSocket upgrade from 127.0.0.1 answered status with this ErrCode
 * in the body and a Retry-After. */
static bool ws_refused(gw_t *gw, int status, int code) {
    char head[1024], body[256] = {0}, want[32];
    int st;
    int fd = ws_open(gw, mint(APP, "ip-ws", time(NULL) + 60, SECRET), &st, head,
                     sizeof head);
    snprintf(want, sizeof want, "\"code\":%d", code);
    bool ok = st == status && strstr(head, "Retry-After: ") != NULL &&
              recv(fd, body, sizeof body - 1, 0) > 0 && strstr(body, want);
    close(fd);
    return ok;
}

static bool wait_conns(gw_t *gw, long n) {
    gw_stats_t s;
    for (int i = 0; i < 300; i++) {
        gw_stats(gw, &s);
        if (s.conns == n) return true;
        usleep(10000);
    }
    return false;
}

TEST(refuse_per_ip_and_max_conns) {
    gw_t *gw = start_limited(2, 3, 0, 0);
    CHECK(gw != NULL);
    int a1 = login_from(gw, "127.0.0.1", "ip-a1");
    int a2 = login_from(gw, "127.0.0.1", "ip-a2");
    CHECK(a1 >= 0 && a2 >= 0);
    CHECK(refused_from(gw, "127.0.0.1", herald_ERR_TOO_MANY_CONNS, 5));
    int b1 = login_from(gw, "127.0.0.2", "ip-b1"); /* its own count */
    CHECK(b1 >= 0);
    CHECK(refused_from(gw, "127.0.0.3", herald_ERR_OVERLOADED, 5)); /* cap 3 */
    /* a WebSocket upgrade is refused in HTTP, before its head is read */
    CHECK(ws_refused(gw, 503, 1019));
    /* one leaves: its address and the cap have room again */
    close(a1);
    CHECK(wait_conns(gw, 2));
    int a3 = login_from(gw, "127.0.0.1", "ip-a3");
    CHECK(a3 >= 0);
    close(b1);
    CHECK(wait_conns(gw, 2));
    CHECK(ws_refused(gw, 429, 1020)); /* from 127.0.0.1, at its limit */
    gw_stats_t s;
    gw_stats(gw, &s);
    CHECK_EQ_INT(s.refused, 4);
    CHECK_EQ_INT(s.accepted, 4); /* refused ones never count as accepted */
    close(a2);
    close(a3);
    gw_drain(gw, 1000);
    gw_free(gw);
}

TEST(refuse_accept_rate) {
    gw_t *gw = start_limited(0, 0, 0.2, 2); /* a token per 5 s, 2 at once */
    CHECK(gw != NULL);
    int a = login_from(gw, "127.0.0.1", "rate-a");
    int b = login_from(gw, "127.0.0.2", "rate-b");
    CHECK(a >= 0 && b >= 0);
    CHECK(refused_from(gw, "127.0.0.3", herald_ERR_OVERLOADED, 1));
    close(a);
    close(b);
    gw_drain(gw, 1000);
    gw_free(gw);
}

/* A worker's mailbox holds GW_MAILBOX_MAX pushes at most; kicks, drain
 * and stop still get through.  (Not started: nothing drains it.) */
TEST(mailbox_bounded) {
    gw_config_t c;
    gw_config_defaults(&c);
    c.workers = 1;
    gw_t *gw = gw_new(&c, &svc);
    CHECK(gw != NULL);
    gw_item_t push = {.kind = GW_I_PUSH_ONE}, kick = {.kind = GW_I_KICK};
    for (int i = 0; i < GW_MAILBOX_MAX; i++)
        CHECK_EQ_INT(gw_mail(gw, 0, &push), 0);
    CHECK_EQ_INT(gw_mail(gw, 0, &push), -ENOBUFS);
    CHECK_EQ_INT(gw_mail(gw, 0, &kick), 0);
    gw_stats_t s;
    gw_stats(gw, &s);
    CHECK_EQ_INT(s.mailbox, GW_MAILBOX_MAX + 1);
    CHECK_EQ_INT(s.mailbox_dropped, 1);
    gw_free(gw);
}

/* Last: drains and frees the shared gateway. */
TEST(zz_drain_kicks_and_frees) {
    int fd = cl_login(G, "dev-drain");
    CHECK(fd >= 0);
    gw_stats_t s;
    gw_stats(G, &s);
    CHECK(s.authed >= 1);
    CHECK(s.pushes_written >= NBCAST + 3);
    /* The client reads only after gw_drain returns: the kick waits in its
     * socket while the server lingers, then the server closes. */
    gw_drain(G, 3000);
    CHECK(cl_expect_kick(fd, herald_ERR_DRAINING));
    close(fd);
    gw_free(G_);
    G_ = NULL;
    CHECK_EQ_INT(n_online, n_offline);
}
