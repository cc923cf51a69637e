/*
 * bench_client.c: one worker process of `herald bench`.  It opens its
 * slice of device connections (paced: at most o->inflight handshakes at a
 * time, so the server's SYN and accept queues never overflow and no
 * connect waits for a retransmission), authenticates or subscribes each,
 * then counts the marked payloads that arrive (bench_wire.h) until the
 * parent asks for the final report.
 *
 * Per connection it keeps 16 bytes plus, only while a frame is split
 * across reads, that partial frame; all reads go through one buffer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "Protocol.h"
#include "bench/bench.h"
#include "bench/bench_stat.h"
#include "bench/bench_wire.h"
#include "core/clock.h"
#include "core/token.h"
#include "gateway/yyb.h"
#include "jce/jce.h"

enum { C_IDLE, C_CONNECTING, C_AUTH, C_SUB, C_READY, C_DEAD };

typedef struct bconn {
    int fd;
    uint8_t st;
    uint8_t pad_[1];
    uint16_t part_len; /* bytes of a split frame kept in part */
    uint8_t *part;
} bconn_t;

typedef struct bchild {
    const bench_opts_t *o;
    long lo, hi, next;
    bconn_t *c;
    int ep, up, down;
    long inflight, ready, failed, closed;
    uint64_t t_first, t_last;
    bool conn_sent;
    uint32_t *cnt;
    uint64_t *first, *last;
    bool *done;
    bench_lat_t lat; /* unicast: receipt - send, µs */
    uint64_t now;    /* µs, read once per batch of events */
    uint64_t next_keepalive;
    struct sockaddr_in dst;
} bchild_t;

#define RBUF_SIZE (256u * 1024)
#define KEEPALIVE_US (60u * 1000000u)
#define DOWN_KEY UINT64_MAX
static uint8_t rbuf[RBUF_SIZE];

void bench_device_id(char *out, size_t cap, long i) {
    snprintf(out, cap, "bench-%ld", i);
}

long bench_raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    return (long)rl.rlim_cur;
}

static void put_rec(bchild_t *b, uint32_t type, uint32_t a, uint64_t x,
                    uint64_t y, uint64_t z) {
    bench_rec_t r = {type, a, x, y, z};
    const char *p = (const char *)&r;
    size_t left = sizeof r;
    while (left) {
        ssize_t w = write(b->up, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(3); /* the parent is gone */
        p += w;
        left -= (size_t)w;
    }
}

static void put_raw(bchild_t *b, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(b->up, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(3);
        p += w;
        n -= (size_t)w;
    }
}

/* Small handshake writes fit in a fresh socket's buffer; a short write
 * here means the connection is unusable for the benchmark anyway. */
static bool send_all(int fd, const void *p, size_t n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    return w == (ssize_t)n;
}

static void conn_kill(bchild_t *b, bconn_t *c) {
    if (c->st == C_CONNECTING || c->st == C_AUTH || c->st == C_SUB) {
        b->inflight--;
        b->failed++;
    } else if (c->st == C_READY) {
        b->ready--;
        b->closed++;
    }
    epoll_ctl(b->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->st = C_DEAD;
    bench_part_drop(&c->part, &c->part_len);
}

static void conn_ready(bchild_t *b, bconn_t *c) {
    c->st = C_READY;
    b->inflight--;
    b->ready++;
    b->t_last = clock_mono_us();
}

/* ---- markers ---------------------------------------------------------------- */

static void check_done(bchild_t *b, uint32_t m) {
    if (!b->done[m] && b->ready > 0 && b->cnt[m] >= (uint64_t)b->ready) {
        b->done[m] = true;
        put_rec(b, BENCH_REC_DONE, m, b->cnt[m], b->first[m], b->last[m]);
    }
}

static void on_mark(void *ctx, char kind, uint64_t v) {
    bchild_t *b = ctx;
    if (kind == BENCH_MARK_BCAST) {
        if (v >= (uint64_t)b->o->msgs) return;
        uint32_t m = (uint32_t)v;
        if (!b->cnt[m]++) b->first[m] = b->now;
        b->last[m] = b->now;
        check_done(b, m);
        return;
    }
    /* Out of memory loses the sample, not the run. */
    (void)bench_lat_add(&b->lat, b->now > v ? b->now - v : 0);
}

/* ---- handshakes --------------------------------------------------------------- */

static bool herald_hello(bchild_t *b, bconn_t *c, long i) {
    const bench_opts_t *o = b->o;
    char dev[64], tok[TOKEN_MAX];
    bench_device_id(dev, sizeof dev, i);
    int64_t now = (int64_t)time(NULL), exp = now + 86400;
    if (token_mint(tok, sizeof tok, o->app, dev, now, exp,
                   (const uint8_t *)o->secret, strlen(o->secret)) < 0)
        return false;
    if (o->ws) {
        char path[TOKEN_MAX + 32], req[TOKEN_MAX + 512];
        snprintf(path, sizeof path, "/v1/ws?token=%s", tok);
        size_t n =
            bench_ws_upgrade(req, sizeof req, o->server_host, path, NULL);
        return n && send_all(c->fd, req, n);
    }
    jce_out_t fr;
    jce_out_init(&fr, JCE_POLICY_CPP);
    bool ok =
        bench_yyb_hello(&fr, tok, 300) == 0 && send_all(c->fd, fr.buf, fr.len);
    jce_out_free(&fr);
    return ok;
}

static bool send_hello(bchild_t *b, bconn_t *c, long i) {
    const bench_opts_t *o = b->o;
    if (o->target == BENCH_HERALD) return herald_hello(b, c, i);
    if (o->target == BENCH_MQTT) {
        char id[64];
        uint8_t pkt[128];
        bench_device_id(id, sizeof id, i);
        size_t n = bench_mqtt_connect(pkt, sizeof pkt, id, 600);
        return n && send_all(c->fd, pkt, n);
    }
    char path[256], req[1024];
    snprintf(path, sizeof path, "%s/%s", o->sub_path, o->topic);
    size_t n = bench_ws_upgrade(req, sizeof req, o->server_host, path, NULL);
    return n && send_all(c->fd, req, n);
}

static void start_one(bchild_t *b) {
    long i = b->next++;
    bconn_t *c = &b->c[i - b->lo];
    b->inflight++;
    c->st = C_CONNECTING;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->fd = fd;
    if (fd < 0) {
        c->fd = -1;
        c->st = C_DEAD;
        b->inflight--;
        b->failed++;
        return;
    }
    /* Spread sources over 127.0.0.2..250 so the 4-tuple space (one
     * destination port) never runs out; the port is picked at connect. */
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(2 + i % 249));
    if (!b->t_first) b->t_first = clock_mono_us();
    struct epoll_event ev = {.events = EPOLLOUT,
                             .data.u64 = (uint64_t)(i - b->lo)};
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
        (connect(fd, (struct sockaddr *)&b->dst, sizeof b->dst) != 0 &&
         errno != EINPROGRESS) ||
        epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        c->fd = -1;
        c->st = C_DEAD;
        b->inflight--;
        b->failed++;
    }
}

static void on_connected(bchild_t *b, bconn_t *c, long i) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
        conn_kill(b, c);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN,
                             .data.u64 = (uint64_t)(i - b->lo)};
    c->st = C_AUTH;
    if (epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0 ||
        !send_hello(b, c, i))
        conn_kill(b, c);
}

/* ---- incoming bytes, per protocol ---------------------------------------- */

/* Returns bytes consumed, or -1 to close. */
static long eat_yyb(bchild_t *b, bconn_t *c, const uint8_t *p, size_t n) {
    size_t off = 0;
    while (n - off >= 4) {
        uint32_t fl = (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 |
                      (uint32_t)p[off + 2] << 8 | p[off + 3];
        if (fl < YYB_FRAME_MIN || fl > YYB_FRAME_MAX) return -1;
        if (n - off < fl) break;
        yyb_frame_t f = {.data = p + off + 4, .len = fl - 4};
        herald_Package pk;
        if (yyb_decode_package(&f, NULL, &pk, NULL) != 0) return -1;
        if (c->st == C_AUTH && pk.cmd == herald_CMD_HELLO) {
            if (pk.ret != 0) return -1;
            conn_ready(b, c);
        } else if (pk.cmd == herald_CMD_PUSH) {
            bench_scan(pk.body.data, pk.body.len, on_mark, b);
        } else if (pk.cmd == herald_CMD_KICK) {
            return -1;
        }
        off += fl;
    }
    return (long)off;
}

static long eat_ws_frames(bchild_t *b, bconn_t *c, const uint8_t *p, size_t n) {
    size_t off = 0;
    bench_ws_frame_t f;
    int rc;
    while ((rc = bench_ws_parse(p + off, n - off, &f)) == 1) {
        if (f.opcode == 0x8) return -1;
        if (f.opcode == 0x9) {
            uint8_t pong[256];
            size_t pn = bench_ws_frame(pong, sizeof pong, 0xA, f.payload,
                                       (size_t)f.len, 0x5a17c3e1u);
            if (pn) send_all(c->fd, pong, pn);
        } else if (f.opcode <= 0x2) {
            bench_scan(f.payload, (size_t)f.len, on_mark, b);
        }
        off += f.total;
    }
    return rc < 0 ? -1 : (long)off;
}

static long eat_ws(bchild_t *b, bconn_t *c, const uint8_t *p, size_t n) {
    size_t off = 0;
    if (c->st == C_AUTH) {
        bench_http_rsp_t r;
        int rc = bench_http_head(p, n, &r);
        if (rc <= 0) return rc < 0 ? -1 : 0;
        if (r.status != 101) return -1;
        conn_ready(b, c);
        off = r.head_len;
    }
    long m = eat_ws_frames(b, c, p + off, n - off);
    return m < 0 ? -1 : (long)off + m;
}

static long eat_mqtt(bchild_t *b, bconn_t *c, const uint8_t *p, size_t n) {
    size_t off = 0;
    bench_mqtt_pkt_t k;
    int rc;
    while ((rc = bench_mqtt_parse(p + off, n - off, &k)) == 1) {
        off += k.total;
        if (c->st == C_AUTH) {
            uint8_t sub[256];
            if (k.type != BENCH_MQTT_CONNACK || k.body_len < 2 || k.body[1])
                return -1;
            size_t sn =
                bench_mqtt_subscribe(sub, sizeof sub, 1, b->o->topic, 0);
            if (!sn || !send_all(c->fd, sub, sn)) return -1;
            c->st = C_SUB;
        } else if (c->st == C_SUB) {
            if (k.type != BENCH_MQTT_SUBACK || k.body_len < 3 ||
                k.body[2] == 0x80)
                return -1;
            conn_ready(b, c);
        } else if (k.type == BENCH_MQTT_PUBLISH) {
            const uint8_t *pl;
            size_t pn;
            if (bench_mqtt_publish_payload(&k, &pl, &pn) == 0)
                bench_scan(pl, pn, on_mark, b);
        }
    }
    return rc < 0 ? -1 : (long)off;
}

static long eat(bchild_t *b, bconn_t *c, const uint8_t *p, size_t n) {
    if (b->o->target == BENCH_MQTT) return eat_mqtt(b, c, p, n);
    if (b->o->target == BENCH_NCHAN || b->o->ws) return eat_ws(b, c, p, n);
    return eat_yyb(b, c, p, n);
}

static void on_readable(bchild_t *b, bconn_t *c) {
    size_t have = bench_part_take(&c->part, &c->part_len, rbuf);
    ssize_t r = read(c->fd, rbuf + have, RBUF_SIZE - have);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_kill(b, c);
        return;
    }
    if (r > 0) have += (size_t)r;
    long used = eat(b, c, rbuf, have);
    if (used < 0 || bench_part_keep(&c->part, &c->part_len, rbuf + used,
                                    have - (size_t)used) < 0)
        conn_kill(b, c);
}

/* ---- keepalive and reports ------------------------------------------------- */

static void keepalive_all(bchild_t *b) {
    uint8_t pkt[64];
    size_t n = 0;
    if (b->o->target == BENCH_MQTT) {
        n = bench_mqtt_pingreq(pkt, sizeof pkt);
    } else if (b->o->target == BENCH_HERALD && !b->o->ws) {
        jce_out_t o;
        jce_out_init(&o, JCE_POLICY_CPP);
        if (bench_yyb_frame(&o, herald_CMD_HEARTBEAT, 0, NULL) == 0 &&
            o.len <= sizeof pkt) {
            memcpy(pkt, o.buf, o.len);
            n = o.len;
        }
        jce_out_free(&o);
    }
    for (long i = 0; n && i < b->hi - b->lo; i++)
        if (b->c[i].st == C_READY) send_all(b->c[i].fd, pkt, n);
}

static void final_report(bchild_t *b) {
    for (long m = 0; m < b->o->msgs; m++)
        put_rec(b, BENCH_REC_MSG, (uint32_t)m, b->cnt[m], b->first[m],
                b->last[m]);
    size_t off = 0;
    do {
        size_t k = b->lat.n - off < 16384 ? b->lat.n - off : 16384;
        put_rec(b, BENCH_REC_LAT, (uint32_t)k, 0, 0, 0);
        put_raw(b, b->lat.v + off, k * sizeof *b->lat.v);
        off += k;
    } while (off < b->lat.n);
    put_rec(b, BENCH_REC_END, (uint32_t)b->ready, (uint64_t)b->closed, 0, 0);
    b->lat.n = 0;
}

/* Returns false when the worker should exit. */
static bool on_command(bchild_t *b) {
    char cmd;
    ssize_t r = read(b->down, &cmd, 1);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (r <= 0 || cmd == BENCH_CMD_QUIT) return false;
    if (cmd == BENCH_CMD_REPORT) final_report(b);
    return true;
}

static void child_setup(bchild_t *b, const bench_opts_t *o, long lo, long hi,
                        int up, int down) {
    memset(b, 0, sizeof *b);
    b->o = o;
    b->lo = b->next = lo;
    b->hi = hi;
    b->up = up;
    b->down = down;
    long n = hi - lo, m = o->msgs > 0 ? o->msgs : 1;
    b->c = calloc((size_t)(n ? n : 1), sizeof *b->c);
    b->cnt = calloc((size_t)m, sizeof *b->cnt);
    b->first = calloc((size_t)m, sizeof *b->first);
    b->last = calloc((size_t)m, sizeof *b->last);
    b->done = calloc((size_t)m, sizeof *b->done);
    b->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!b->c || !b->cnt || !b->first || !b->last || !b->done || b->ep < 0)
        _exit(4);
    b->dst.sin_family = AF_INET;
    b->dst.sin_port = htons((uint16_t)o->server_port);
    if (inet_pton(AF_INET, o->server_host, &b->dst.sin_addr) != 1) _exit(5);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = DOWN_KEY};
    if (epoll_ctl(b->ep, EPOLL_CTL_ADD, down, &ev) != 0) _exit(4);
}

void bench_child_run(const bench_opts_t *o, int id, long lo, long hi, int up_fd,
                     int down_fd) {
    (void)id;
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the parent */
    signal(SIGPIPE, SIG_IGN);
    bench_raise_nofile();
    static bchild_t b;
    child_setup(&b, o, lo, hi, up_fd, down_fd);
    b.next_keepalive = clock_mono_us() + KEEPALIVE_US;
    struct epoll_event evs[512];
    for (;;) {
        while (b.next < b.hi && b.inflight < o->inflight) start_one(&b);
        if (!b.conn_sent && b.next == b.hi && b.inflight == 0) {
            b.conn_sent = true;
            put_rec(&b, BENCH_REC_CONN, (uint32_t)b.ready, (uint64_t)b.failed,
                    b.t_first, b.t_last);
        }
        int n = epoll_wait(b.ep, evs, 512, 100);
        if (n < 0 && errno != EINTR) _exit(6);
        b.now = clock_mono_us();
        for (int k = 0; k < n; k++) {
            uint64_t key = evs[k].data.u64;
            if (key == DOWN_KEY) {
                if (!on_command(&b)) _exit(0);
                continue;
            }
            bconn_t *c = &b.c[key];
            if (c->st == C_CONNECTING)
                on_connected(&b, c, (long)key + b.lo);
            else if (c->st != C_DEAD)
                on_readable(&b, c);
        }
        if (b.now >= b.next_keepalive) {
            keepalive_all(&b);
            b.next_keepalive = b.now + KEEPALIVE_US;
        }
    }
}
