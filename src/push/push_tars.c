/*
 * push_tars.c: the PushAPI over TARS RPC (servant
 * herald.PushServer.PushAPIObj): one thread running an ev loop that
 * accepts, reads and answers every TARS connection.  What the servant does
 * with a call is in push_tars_ops.c; this file owns the sockets.
 *
 * Calls: whole frames (trpc_frame_check, at most MAX_FRAME; a bad length
 * or an undecodable packet closes that connection only) go through the
 * jce2c-generated dispatcher (trpc_server_handle_async).  A push that
 * waits for the store's durable commit is deferred: the connection keeps
 * reading, and the store's done() posts the call to this thread's mailbox
 * (ev_async), where its answer is queued.  So several calls of one
 * connection are in flight at once and answers go out in completion
 * order; TARS clients match them by iRequestId.  Answers made at once
 * (errors, tars_ping, online-only pushes) are queued at once.
 *
 * Back-pressure: a connection stops taking frames (and reading) while
 * CONN_CALLS_MAX of its calls wait for the store or more than OUT_PAUSE
 * bytes of answers wait for it to read; it resumes when that clears.  A
 * peer that lets answers pile up past OUT_MAX, or reads nothing for
 * STALL_MS while answers wait, is cut with a log line.
 *
 * Timeouts and shares: 64 sockets that never sent a byte used to hold
 * every place for as long as they stayed.  Now a frame must arrive whole
 * within head_timeout of the previous one being taken (or of the
 * connection's first byte), and a connection with no call, no answer
 * waiting and no partial frame is closed after tars_idle_timeout (TARS
 * clients reconnect on their next call); both count in
 * herald_api_timeouts_total{api="tars"}.  At most tars_max_conns
 * connections are open, of which one client address may hold its share
 * (tars_max_conns_per_ip, half by default); more are closed at accept
 * (TARS has no answer without a request) with a log line per 10 s and
 * herald_refused_total{what="push",reason=max_conns|per_ip}.
 *
 * Output of one loop iteration is written once per connection, from the
 * before-sleep hook, so a group commit answering many calls costs one
 * send() per connection.
 *
 * Stop (drain): the listener closes, connections stop taking frames (those
 * not yet dispatched are never run, so never answered), calls already
 * running are answered, then each connection closes.  After DRAIN_MS the
 * rest are cut; the loop ends when every call is back from the store.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/net.h"
#include "ev/ev.h"
#include "ev/lpause.h"
#include "gateway/gw_limit.h"
#include "ops/metrics_herald.h"
#include "push/push_int.h"

#define MAX_FRAME (1u << 20)    /* a push call is a few KiB; 10000 ids fit */
#define IN_MIN 16384u           /* first input buffer */
#define BUF_KEEP (64u * 1024)   /* larger empty buffers are given back */
#define OUT_PAUSE (256u * 1024) /* queued answers that stop reading */
#define OUT_MAX (16u << 20)     /* queued answers that cut the peer */
#define CONN_CALLS_MAX 128      /* a connection's calls at the store */
#define STALL_MS 30000          /* answers wait, nothing read: cut */
#define DRAIN_MS 10000          /* stop: answer what runs, then cut */
#define DRAIN_WAIT_MS 5000      /* then wait this long for the store */
#define ACCEPT_BATCH 64
#define READS_PER_TURN 16 /* then other connections go first */
#define REFUSED_LOG_MS 10000
#define TIMEOUT_LOG_MS 10000

typedef struct tconn tconn_t;

struct push_tars {
    push_service_t *ps;
    ev_loop_t *loop;
    ev_io_t lio;
    lpause_t lpause; /* the listener's back-off, out of fds */
    ev_async_t stop;
    ev_async_t done; /* calls back from the store */
    ev_timer_t drain_timer;
    pthread_t thread;
    pthread_mutex_t mbox_mu;
    tars_call_t *mbox_head, *mbox_tail;
    trpc_server_t *srv;
    jce_out_t frame;    /* one answer frame, before it is queued */
    jce_out_t body;     /* a deferred answer's sBuffer */
    jce_arena_t *arena; /* a deferred answer's strings */
    tconn_t *conns;     /* open */
    tconn_t *dead;      /* closed; freed before the loop sleeps */
    tconn_t *ready;     /* to pump before the loop sleeps */
    int nconns;
    long calls; /* deferred calls not back from the store */
    bool draining, drain_cut;
    gw_iptab_t *iptab; /* connections per client address */
    int share;         /* of tars_max_conns, per address */
};

struct tconn {
    ev_io_t io;
    ev_timer_t stall;
    ev_timer_t idle;   /* head and idle timeouts, armed lazily */
    uint64_t deadline; /* what idle really means; 0 = none (busy) */
    uint64_t frame_at; /* a partial frame waits since; 0 = none */
    gw_ipent_t *ip;    /* its address's count; NULL: not counted */
    push_tars_t *pt;
    tconn_t *prev, *next; /* pt->conns, then pt->dead */
    tconn_t *ready_next;
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    int calls; /* its deferred calls */
    bool in_ready;
    bool readable; /* no EAGAIN since the last read event */
    bool eof;      /* the peer shut its side: read no more */
    bool dead;
    bool zombie; /* closed with calls out: freed by the last */
    char peer[64];
};

/* ---- connection life ------------------------------------------------------ */

static void conn_close(tconn_t *t) {
    if (t->dead) return;
    push_tars_t *pt = t->pt;
    ev_del(pt->loop, &t->io);
    ev_timer_stop(pt->loop, &t->stall);
    ev_timer_stop(pt->loop, &t->idle);
    close(t->io.fd);
    t->dead = true;
    if (t->ip) gw_iptab_put(pt->iptab, t->ip);
    t->ip = NULL;
    free(t->in);
    free(t->out);
    t->in = t->out = NULL;
    t->in_len = t->in_cap = t->out_len = t->out_off = t->out_cap = 0;
    if (t->prev)
        t->prev->next = t->next;
    else
        pt->conns = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = NULL;
    t->next = pt->dead;
    pt->dead = t;
    pt->nconns--;
}

static void reap(push_tars_t *pt) {
    while (pt->dead) {
        tconn_t *t = pt->dead;
        pt->dead = t->next;
        if (t->calls > 0)
            t->zombie = true;
        else
            free(t);
    }
}

/* Queues t for a pump from the before-sleep hook. */
static void want_pump(tconn_t *t) {
    if (t->dead || t->in_ready) return;
    t->in_ready = true;
    t->ready_next = t->pt->ready;
    t->pt->ready = t;
}

/* May t take another frame now? */
static bool can_take(const tconn_t *t) {
    return !t->dead && !t->pt->draining && t->calls < CONN_CALLS_MAX &&
           t->out_len - t->out_off <= OUT_PAUSE;
}

/* ---- output ---------------------------------------------------------------- */

/* Appends an answer frame; -1 when the peer was cut for not reading. */
static int queue_out(tconn_t *t, const uint8_t *p, size_t n) {
    if (n == 0) return 0;
    size_t queued = t->out_len - t->out_off;
    if (queued + n > OUT_MAX) {
        log_warn("tars client not reading its answers, closing",
                 "peer=%s queued=%zu", t->peer, queued);
        conn_close(t);
        return -1;
    }
    if (t->out_len + n > t->out_cap) {
        if (t->out_off) { /* slide the unsent part to the front first */
            memmove(t->out, t->out + t->out_off, queued);
            t->out_len = queued;
            t->out_off = 0;
        }
        size_t cap = t->out_cap ? t->out_cap : 4096;
        while (cap < t->out_len + n) cap *= 2;
        uint8_t *nb = cap == t->out_cap ? t->out : realloc(t->out, cap);
        if (!nb) {
            log_error("tars out of memory, closing", "peer=%s", t->peer);
            conn_close(t);
            return -1;
        }
        t->out = nb;
        t->out_cap = cap;
    }
    memcpy(t->out + t->out_len, p, n);
    t->out_len += n;
    return 0;
}

/* Writes until done or EAGAIN (the EV_WRITE edge resumes); the stall
 * timer runs while answers wait and the peer reads nothing. */
static void conn_flush(tconn_t *t) {
    ev_loop_t *loop = t->pt->loop;
    bool progress = false;
    while (t->out_off < t->out_len) {
        ssize_t n = send(t->io.fd, t->out + t->out_off, t->out_len - t->out_off,
                         MSG_NOSIGNAL);
        if (n > 0) {
            t->out_off += (size_t)n;
            progress = true;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            if (progress || !ev_timer_active(&t->stall))
                ev_timer_start(loop, &t->stall, STALL_MS);
            return;
        } else {
            conn_close(t); /* the peer is gone */
            return;
        }
    }
    ev_timer_stop(loop, &t->stall);
    t->out_len = t->out_off = 0;
    if (t->out_cap > BUF_KEEP) {
        free(t->out);
        t->out = NULL;
        t->out_cap = 0;
    }
}

static void on_stall(ev_loop_t *loop, ev_timer_t *timer) {
    tconn_t *t = ev_container_of(timer, tconn_t, stall);
    (void)loop;
    log_warn("tars client not reading its answers, closing",
             "peer=%s queued=%zu idle_ms=%d", t->peer, t->out_len - t->out_off,
             STALL_MS);
    conn_close(t);
}

/* ---- input ---------------------------------------------------------------- */

/* Runs one frame.  0, or negative when the connection must close. */
static int dispatch(tconn_t *t, const uint8_t *f, uint32_t n);

/* Dispatches the whole frames in the buffer while t may take them.  -1
 * when t was closed. */
static int serve_frames(tconn_t *t) {
    size_t off = 0;
    while (t->in_len > off && can_take(t)) {
        uint32_t flen = 0;
        int rc =
            trpc_frame_check(t->in + off, t->in_len - off, MAX_FRAME, &flen);
        if (rc == 0) break;
        if (rc > 0) rc = dispatch(t, t->in + off, flen);
        if (rc < 0) {
            if (!t->dead)
                log_info("tars bad frame, closing", "peer=%s err=%s", t->peer,
                         herald_strerror(rc));
            conn_close(t);
            return -1;
        }
        if (t->dead) return -1;
        off += flen;
    }
    if (off) {
        memmove(t->in, t->in + off, t->in_len - off);
        t->in_len -= off;
        t->frame_at = 0; /* the next frame's time starts now */
    }
    if (t->in_len == 0 && t->in_cap > BUF_KEEP) {
        free(t->in);
        t->in = NULL;
        t->in_cap = 0;
    }
    return 0;
}

static bool has_frame(const tconn_t *t) {
    uint32_t flen;
    return t->in_len > 0 &&
           trpc_frame_check(t->in, t->in_len, MAX_FRAME, &flen) != 0;
}

/* One read.  1: bytes came; 0: nothing more for now (EAGAIN, EOF); -1:
 * closed. */
static int read_some(tconn_t *t) {
    if (t->in_len == t->in_cap) {
        /* serve_frames left no whole frame, and a frame is at most
         * MAX_FRAME, so a full buffer below MAX_FRAME just grows. */
        size_t cap = t->in_cap ? t->in_cap * 2 : IN_MIN;
        cap = cap > MAX_FRAME ? MAX_FRAME : cap;
        uint8_t *nb = cap > t->in_cap ? realloc(t->in, cap) : NULL;
        if (!nb) {
            log_error("tars input buffer, closing", "peer=%s", t->peer);
            conn_close(t);
            return -1;
        }
        t->in = nb;
        t->in_cap = cap;
    }
    for (;;) {
        ssize_t n = recv(t->io.fd, t->in + t->in_len, t->in_cap - t->in_len, 0);
        if (n > 0) {
            t->in_len += (size_t)n;
            return 1;
        }
        if (n < 0 && errno == EINTR) continue;
        t->readable = false;
        if (n < 0 && errno == EAGAIN) return 0;
        if (n == 0) {
            t->eof = true; /* answers still go out if it reads them */
            return 0;
        }
        conn_close(t);
        return -1;
    }
}

/* Reads and drops what the peer sent and we will not run, so that the
 * close is a FIN after our last answer rather than a reset that could
 * destroy answers still unread on the peer's side. */
static void discard_input(tconn_t *t) {
    char sink[4096];
    for (int i = 0; i < 256; i++) {
        ssize_t n = recv(t->io.fd, sink, sizeof sink, 0);
        if (n > 0 || (n < 0 && errno == EINTR)) continue;
        return;
    }
}

/* Closes t once nothing more will come of it. */
static void maybe_done(tconn_t *t) {
    if ((t->eof || t->pt->draining) && t->calls == 0 &&
        t->out_off == t->out_len) {
        if (!t->eof) discard_input(t);
        conn_close(t);
    }
}

/* The one timer moves lazily: a later deadline only updates the field,
 * and on_idle re-arms itself when it fires early.  0: none. */
static void set_deadline(tconn_t *t, uint64_t at) {
    t->deadline = at;
    if (at && (!ev_timer_active(&t->idle) || t->idle.node.expire > at))
        ev_timer_start_at(t->pt->loop, &t->idle, at);
}

/* After each pump: while calls are out or answers wait, the store and the
 * stall timer decide (no deadline); a partial frame must complete within
 * head_timeout; otherwise the connection is idle. */
static void arm_idle(tconn_t *t) {
    push_tars_t *pt = t->pt;
    const push_config_t *cfg = &pt->ps->cfg;
    uint64_t now = ev_now_ms(pt->loop);
    if (t->calls > 0 || t->out_off < t->out_len || pt->draining) {
        t->frame_at = 0;
        set_deadline(t, 0);
    } else if (t->in_len > 0) {
        if (!t->frame_at) t->frame_at = now;
        set_deadline(t, t->frame_at + (uint64_t)cfg->head_timeout * 1000);
    } else {
        set_deadline(t, cfg->tars_idle_timeout > 0
                            ? now + (uint64_t)cfg->tars_idle_timeout * 1000
                            : 0);
    }
}

static void on_idle(ev_loop_t *loop, ev_timer_t *timer) {
    tconn_t *t = ev_container_of(timer, tconn_t, idle);
    if (!t->deadline) return; /* busy meanwhile; arm_idle sets it again */
    if (t->deadline > ev_now_ms(loop)) {
        ev_timer_start_at(loop, timer, t->deadline);
        return;
    }
    static log_limit_t lim_head = LOG_LIMIT_INIT(TIMEOUT_LOG_MS);
    static log_limit_t lim_idle = LOG_LIMIT_INIT(TIMEOUT_LOG_MS);
    bool head = t->in_len > 0;
    metrics_inc(M_API_TIMEOUTS, MH_API_TARS, head ? MH_TO_HEAD : MH_TO_IDLE);
    if (head)
        log_limited(&lim_head, LOG_LEVEL_WARN,
                    "tars frame not received in time, closing",
                    "peer=%s have=%zu timeout_s=%d", t->peer, t->in_len,
                    t->pt->ps->cfg.head_timeout);
    else
        log_limited(&lim_idle, LOG_LEVEL_INFO, "tars connection idle, closing",
                    "peer=%s timeout_s=%d", t->peer,
                    t->pt->ps->cfg.tars_idle_timeout);
    conn_close(t);
}

/*
 * Makes what progress t allows: runs the frames already buffered, reads
 * more while it may take calls, writes what is queued.  Called on every
 * event of t and whenever something that held it back changed.
 */
static void conn_pump(tconn_t *t) {
    int reads = 0;
    for (;;) {
        if (serve_frames(t) < 0) return;
        if (!can_take(t) || !t->readable || t->eof) break;
        if (reads++ == READS_PER_TURN) { /* fair to the others */
            want_pump(t);
            break;
        }
        int rc = read_some(t);
        if (rc < 0) return;
        if (rc == 0) break;
    }
    conn_flush(t);
    if (t->dead) return;
    /* Writing made room: go on next turn rather than wait for an event. */
    if (can_take(t) && ((t->readable && !t->eof) || has_frame(t))) want_pump(t);
    maybe_done(t);
    if (!t->dead) arm_idle(t);
}

static void on_io(ev_loop_t *loop, ev_io_t *io, unsigned revents) {
    tconn_t *t = io->data;
    (void)loop;
    if (revents & (EV_READ | EV_ERROR)) t->readable = true;
    conn_pump(t);
}

/* ---- calls ---------------------------------------------------------------- */

/* Store writer thread: hands the finished call to the loop. */
static void on_call_done(push_call_t *c) {
    tars_call_t *tc = c->reply_ctx;
    push_tars_t *pt = tc->pt;
    tc->next = NULL;
    pthread_mutex_lock(&pt->mbox_mu);
    if (pt->mbox_tail)
        pt->mbox_tail->next = tc;
    else
        pt->mbox_head = tc;
    pt->mbox_tail = tc;
    pthread_mutex_unlock(&pt->mbox_mu);
    ev_async_send(&pt->done);
}

static int dispatch(tconn_t *t, const uint8_t *f, uint32_t n) {
    push_tars_t *pt = t->pt;
    tars_disp_t d = {.ps = pt->ps,
                     .pt = pt,
                     .conn = t,
                     .reply = on_call_done,
                     .t0 = clock_mono_us()};
    trpc_req_t rq;
    int rc = trpc_server_handle_async(pt->srv, f, n, &d, &pt->frame, &rq);
    if (rc == HERALD_EINPROGRESS) {
        if (!d.deferred)
            return TRPC_ERR_ARG; /* an impl deferred without a call */
        d.deferred->req = rq;
        t->calls++;
        pt->calls++;
        return 0;
    }
    if (rc < 0) return rc;
    push_tars_count(rq.func, rq.ret == 0 && d.app_ret == 0, d.t0);
    (void)queue_out(t, pt->frame.buf, pt->frame.len); /* -1 closed t */
    return 0;
}

/* An answer from the store: queued on its connection, which resumes. */
static void finish_call(push_tars_t *pt, tars_call_t *tc) {
    tconn_t *t = tc->conn;
    bool ok = tc->c->ret == PUSH_RET_OK;
    pt->calls--;
    t->calls--;
    if (!t->dead) {
        int rc = push_tars_answer(tc, &pt->body, pt->arena, &pt->frame);
        if (rc < 0) {
            log_error("tars answer not encoded, closing", "peer=%s err=%s",
                      t->peer, herald_strerror(rc));
            conn_close(t);
            ok = false;
        } else if (queue_out(t, pt->frame.buf, pt->frame.len) == 0) {
            want_pump(t);
        }
    } else if (t->zombie && t->calls == 0) {
        free(t);
    }
    push_tars_count(tc->req.func, ok, tc->t0);
    push_call_free(tc->c);
    free(tc);
}

static void on_done(ev_loop_t *loop, ev_async_t *a) {
    push_tars_t *pt = a->data;
    (void)loop;
    pthread_mutex_lock(&pt->mbox_mu);
    tars_call_t *list = pt->mbox_head;
    pt->mbox_head = pt->mbox_tail = NULL;
    pthread_mutex_unlock(&pt->mbox_mu);
    while (list) {
        tars_call_t *next = list->next;
        finish_call(pt, list);
        list = next;
    }
}

/* ---- accepting ------------------------------------------------------------ */

static void conn_open(push_tars_t *pt, int fd,
                      const struct sockaddr_storage *ss, gw_ipent_t *ip) {
    tconn_t *t = calloc(1, sizeof *t);
    if (!t) {
        if (ip) gw_iptab_put(pt->iptab, ip);
        close(fd);
        return;
    }
    t->ip = ip;
    (void)net_set_nodelay(fd, true); /* small answers, send at once */
    t->pt = pt;
    t->readable = true;
    net_addr_str(ss, t->peer, sizeof t->peer);
    ev_io_init(&t->io, fd, on_io, t);
    ev_timer_init(&t->stall, on_stall);
    ev_timer_init(&t->idle, on_idle);
    if (ev_add(pt->loop, &t->io, EV_READ | EV_WRITE | EV_ET) < 0) {
        if (ip) gw_iptab_put(pt->iptab, ip);
        close(fd);
        free(t);
        return;
    }
    t->next = pt->conns;
    if (pt->conns) pt->conns->prev = t;
    pt->conns = t;
    pt->nconns++;
    arm_idle(t);
}

/* 0 with *ip counted (NULL: could not be), or 1 (the cap) / 2 (the
 * address's share), logged once per REFUSED_LOG_MS each. */
static int admit(push_tars_t *pt, const struct sockaddr_storage *ss,
                 gw_ipent_t **ip) {
    static log_limit_t lim_max = LOG_LIMIT_INIT(REFUSED_LOG_MS);
    static log_limit_t lim_ip = LOG_LIMIT_INIT(REFUSED_LOG_MS);
    char addr[64];
    if (pt->nconns >= pt->ps->cfg.tars_max_conns) {
        log_limited(&lim_max, LOG_LEVEL_WARN,
                    "tars connection refused: limit reached", "max=%d peer=%s",
                    pt->ps->cfg.tars_max_conns,
                    net_addr_str(ss, addr, sizeof addr));
        return 1;
    }
    if (gw_iptab_take(pt->iptab, (const struct sockaddr *)ss, ip) !=
        GW_IPTAB_OVER)
        return 0; /* -ENOMEM, another family: admitted, not counted */
    log_limited(&lim_ip, LOG_LEVEL_WARN,
                "tars connection refused: address at its share",
                "peer=%s share=%d max=%d", net_addr_str(ss, addr, sizeof addr),
                pt->share, pt->ps->cfg.tars_max_conns);
    return 2;
}

static void on_accept(ev_loop_t *loop, ev_io_t *io, unsigned revents) {
    push_tars_t *pt = io->data;
    (void)revents;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        int fd;
        int rc = net_accept(io->fd, &fd, &ss);
        if (rc == -EAGAIN || lpause_fault(&pt->lpause, rc)) return;
        if (rc < 0) continue;
        lpause_ok(&pt->lpause);
        gw_ipent_t *ip = NULL;
        int why = admit(pt, &ss, &ip);
        if (why) {
            /* TARS has no answer without a request: the client sees a close */
            metrics_inc(M_REFUSED, MH_REF_PUSH,
                        why == 2 ? MH_REF_PER_IP : MH_REF_MAX_CONNS);
            close(fd);
            continue;
        }
        conn_open(pt, fd, &ss, ip);
    }
}

/* ---- the loop and its stop ------------------------------------------------ */

static void before_sleep(ev_loop_t *loop, void *data) {
    push_tars_t *pt = data;
    tconn_t *list = pt->ready;
    pt->ready = NULL;
    while (list) {
        tconn_t *t = list;
        list = t->ready_next;
        t->in_ready = false;
        if (!t->dead) conn_pump(t);
    }
    if (pt->ready) ev_dont_sleep(loop);
    reap(pt);
    if (pt->draining && pt->nconns == 0 && pt->calls == 0) ev_stop(loop);
}

static void on_drain_timer(ev_loop_t *loop, ev_timer_t *timer) {
    push_tars_t *pt = ev_container_of(timer, push_tars_t, drain_timer);
    if (pt->drain_cut) {
        ev_stop(loop); /* the store did not answer in time */
        return;
    }
    log_warn("tars drain timed out, closing connections", "conns=%d calls=%ld",
             pt->nconns, pt->calls);
    while (pt->conns) conn_close(pt->conns);
    pt->drain_cut = true;
    ev_timer_start(loop, timer, DRAIN_WAIT_MS);
}

static void on_stop(ev_loop_t *loop, ev_async_t *a) {
    push_tars_t *pt = a->data;
    if (pt->draining) return;
    pt->draining = true;
    lpause_stop(&pt->lpause);
    ev_del(loop, &pt->lio);
    close(pt->lio.fd);
    pt->lio.fd = -1;
    log_info("push tars draining", "conns=%d calls=%ld", pt->nconns, pt->calls);
    for (tconn_t *t = pt->conns; t; t = t->next)
        want_pump(t); /* idle ones close at once */
    ev_timer_start(loop, &pt->drain_timer, DRAIN_MS);
}

static void *tars_main(void *arg) {
    (void)pthread_setname_np(pthread_self(), "herald-tars"); /* top -H */
    push_tars_t *pt = arg;
    int rc = ev_run(pt->loop);
    if (rc < 0) log_error("push tars loop failed", "err=%d", rc);
    while (pt->conns) conn_close(pt->conns);
    reap(pt);
    return NULL;
}

static void tars_free(push_tars_t *pt) {
    lpause_stop(&pt->lpause);
    if (pt->lio.fd >= 0) {
        ev_del(pt->loop, &pt->lio);
        close(pt->lio.fd);
    }
    if (pt->stop.io.fd > 0) ev_async_close(pt->loop, &pt->stop);
    if (pt->done.io.fd > 0) ev_async_close(pt->loop, &pt->done);
    pthread_mutex_destroy(&pt->mbox_mu);
    trpc_server_free(pt->srv);
    jce_out_free(&pt->frame);
    jce_out_free(&pt->body);
    jce_arena_free(pt->arena);
    ev_loop_free(pt->loop);
    gw_iptab_free(pt->iptab); /* after the connections: they hold entries */
    free(pt);
}

static int tars_init(push_tars_t *pt) {
    pt->loop = ev_loop_new(256);
    pt->srv = trpc_server_new();
    pt->arena = jce_arena_new(0);
    pt->share = push_ip_share(pt->ps->cfg.tars_max_conns,
                              pt->ps->cfg.tars_max_conns_per_ip);
    pt->iptab = gw_iptab_new((uint32_t)pt->share);
    if (!pt->loop || !pt->srv || !pt->arena || !pt->iptab) return -ENOMEM;
    int rc = push_tars_register(pt->srv);
    if (rc < 0) return rc == TRPC_ERR_NOMEM ? -ENOMEM : -EINVAL;
    int fd;
    if ((rc = net_listen_tcp(pt->ps->cfg.tars_host, pt->ps->cfg.tars_port, 511,
                             false, &fd)) < 0)
        return rc;
    ev_io_init(&pt->lio, fd, on_accept, pt);
    lpause_init(&pt->lpause, pt->loop, &pt->lio, LPAUSE_TARS);
    if ((rc = ev_add(pt->loop, &pt->lio, EV_READ)) < 0 ||
        (rc = ev_async_init(pt->loop, &pt->stop, on_stop, pt)) < 0 ||
        (rc = ev_async_init(pt->loop, &pt->done, on_done, pt)) < 0)
        return rc;
    ev_timer_init(&pt->drain_timer, on_drain_timer);
    ev_set_before_sleep(pt->loop, before_sleep, pt);
    pt->ps->tars_port = net_local_port(fd);
    return 0;
}

int push_tars_start(push_service_t *ps) {
    push_tars_t *pt = calloc(1, sizeof *pt);
    if (!pt) return -ENOMEM;
    pt->ps = ps;
    pt->lio.fd = -1;
    pthread_mutex_init(&pt->mbox_mu, NULL);
    jce_out_init(&pt->frame, JCE_POLICY_CPP);
    jce_out_init(&pt->body, JCE_POLICY_CPP);
    int rc = tars_init(pt);
    if (rc == 0) rc = -pthread_create(&pt->thread, NULL, tars_main, pt);
    if (rc < 0) {
        tars_free(pt);
        return rc;
    }
    ps->tars = pt;
    log_info("push tars listening", "host=%s port=%d servant=%s",
             ps->cfg.tars_host, ps->tars_port, PUSH_TARS_SERVANT);
    return 0;
}

/* Drains (see the top of the file) and frees.  If the store still holds
 * calls after the drain, their memory is left allocated: done() would
 * post into it. */
void push_tars_stop(push_service_t *ps) {
    push_tars_t *pt = ps->tars;
    if (!pt) return;
    ev_async_send(&pt->stop);
    pthread_join(pt->thread, NULL);
    ps->tars = NULL;
    ps->tars_port = -1;
    if (pt->calls > 0) {
        log_error("push tars stopped with calls still at the store",
                  "calls=%ld", pt->calls);
        return;
    }
    tars_free(pt);
}
