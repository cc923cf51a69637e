/* Event loop: fd readiness (level and edge), writes, deletion during a
 * batch, the before-sleep hook, timers through the loop, cross-thread
 * wake-ups and ev_stop. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/net.h"
#include "ev/ev.h"
#include "ev/lpause.h"
#include "test.h"

static int pair(int sv[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                      sv);
}

/* A watched fd that counts and records its wake-ups. */
typedef struct {
    ev_io_t io;
    int calls;
    unsigned last;
    char buf[64];
    ssize_t got;
} watch_t;

static void on_read(ev_loop_t *loop, ev_io_t *io, unsigned revents) {
    watch_t *w = ev_container_of(io, watch_t, io);
    w->calls++;
    w->last = revents;
    w->got = read(io->fd, w->buf, sizeof w->buf);
}

static void on_count(ev_loop_t *loop, ev_io_t *io, unsigned revents) {
    watch_t *w = ev_container_of(io, watch_t, io);
    w->calls++;
    w->last = revents;
}

TEST(readable_socketpair_calls_handler) {
    ev_loop_t *loop = ev_loop_new(64);
    CHECK(loop);
    int sv[2];
    CHECK_EQ_INT(pair(sv), 0);
    watch_t w = {0};
    ev_io_init(&w.io, sv[0], on_read, NULL);
    CHECK_EQ_INT(ev_add(loop, &w.io, EV_READ), 0);
    CHECK_EQ_INT(ev_add(loop, &w.io, EV_READ), -EEXIST);
    CHECK_EQ_INT(ev_run_once(loop, 0), 0); /* nothing to read yet */
    CHECK_EQ_INT(write(sv[1], "hello", 5), 5);
    CHECK_EQ_INT(ev_run_once(loop, 1000), 1);
    CHECK_EQ_INT(w.calls, 1);
    CHECK(w.last & EV_READ);
    CHECK_EQ_INT(w.got, 5);
    CHECK(memcmp(w.buf, "hello", 5) == 0);
    /* Peer gone: reported as readable, read returns 0. */
    close(sv[1]);
    CHECK_EQ_INT(ev_run_once(loop, 1000), 1);
    CHECK_EQ_INT(w.got, 0);
    CHECK_EQ_INT(ev_del(loop, &w.io), 0);
    CHECK_EQ_INT(ev_del(loop, &w.io), 0);
    close(sv[0]);
    ev_loop_free(loop);
}

TEST(level_triggered_repeats_edge_triggered_does_not) {
    ev_loop_t *loop = ev_loop_new(64);
    int a[2], b[2];
    CHECK_EQ_INT(pair(a), 0);
    CHECK_EQ_INT(pair(b), 0);
    watch_t lt = {0}, et = {0};
    ev_io_init(&lt.io, a[0], on_count, NULL);
    ev_io_init(&et.io, b[0], on_count, NULL);
    CHECK_EQ_INT(ev_add(loop, &lt.io, EV_READ), 0);
    CHECK_EQ_INT(ev_add(loop, &et.io, EV_READ | EV_ET), 0);
    CHECK_EQ_INT(write(a[1], "x", 1), 1);
    CHECK_EQ_INT(write(b[1], "x", 1), 1);
    /* Nobody reads: level keeps reporting, edge reports once. */
    for (int i = 0; i < 3; i++) ev_run_once(loop, 100);
    CHECK_EQ_INT(lt.calls, 3);
    CHECK_EQ_INT(et.calls, 1);
    /* New data is a new edge. */
    CHECK_EQ_INT(write(b[1], "y", 1), 1);
    ev_run_once(loop, 100);
    CHECK_EQ_INT(et.calls, 2);
    ev_del(loop, &lt.io);
    ev_del(loop, &et.io);
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
    ev_loop_free(loop);
}

/* Edge-triggered writer: fill the socket to EAGAIN, then writability comes
 * back only when the peer drains it. */
TEST(edge_triggered_write_readiness_returns_after_drain) {
    ev_loop_t *loop = ev_loop_new(64);
    int sv[2];
    CHECK_EQ_INT(pair(sv), 0);
    watch_t w = {0};
    ev_io_init(&w.io, sv[0], on_count, NULL);
    CHECK_EQ_INT(ev_add(loop, &w.io, EV_READ | EV_WRITE | EV_ET), 0);
    ev_run_once(loop, 100);
    CHECK_EQ_INT(w.calls, 1);
    CHECK(w.last & EV_WRITE);
    CHECK(!(w.last & EV_READ));
    static char chunk[4096];
    size_t total = 0;
    for (;;) {
        ssize_t n = write(sv[0], chunk, sizeof chunk);
        if (n < 0) {
            CHECK(errno == EAGAIN);
            break;
        }
        total += (size_t)n;
    }
    CHECK(total > 0);
    CHECK_EQ_INT(ev_run_once(loop, 50), 0); /* full: no edge */
    static char sink[1 << 16];
    while (read(sv[1], sink, sizeof sink) > 0) {}
    CHECK_EQ_INT(ev_run_once(loop, 1000), 1);
    CHECK_EQ_INT(w.calls, 2);
    CHECK(w.last & EV_WRITE);
    /* ev_mod drops EV_WRITE interest. */
    CHECK_EQ_INT(ev_mod(loop, &w.io, EV_READ), 0);
    CHECK_EQ_INT(w.io.events, EV_READ);
    ev_del(loop, &w.io);
    close(sv[0]), close(sv[1]);
    ev_loop_free(loop);
}

/* Two ready fds; whichever handler runs first deletes the other, which
 * must then not be called although its event is in the same batch. */
static watch_t *del_pair[2];
static ev_loop_t *del_loop;
static void on_read_delete_other(ev_loop_t *loop, ev_io_t *io,
                                 unsigned revents) {
    watch_t *me = ev_container_of(io, watch_t, io);
    me->calls++;
    watch_t *other = del_pair[0] == me ? del_pair[1] : del_pair[0];
    CHECK_EQ_INT(ev_del(del_loop, &other->io), 0);
    other->io.fn = NULL; /* "freed": a call would crash */
}

TEST(handler_deleting_another_fd_in_same_batch) {
    ev_loop_t *loop = ev_loop_new(64);
    del_loop = loop;
    int a[2], b[2];
    CHECK_EQ_INT(pair(a), 0);
    CHECK_EQ_INT(pair(b), 0);
    watch_t wa = {0}, wb = {0};
    del_pair[0] = &wa;
    del_pair[1] = &wb;
    ev_io_init(&wa.io, a[0], on_read_delete_other, NULL);
    ev_io_init(&wb.io, b[0], on_read_delete_other, NULL);
    CHECK_EQ_INT(ev_add(loop, &wa.io, EV_READ), 0);
    CHECK_EQ_INT(ev_add(loop, &wb.io, EV_READ), 0);
    CHECK_EQ_INT(write(a[1], "x", 1), 1);
    CHECK_EQ_INT(write(b[1], "x", 1), 1);
    CHECK_EQ_INT(ev_run_once(loop, 1000), 1);
    CHECK_EQ_INT(wa.calls + wb.calls, 1);
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
    ev_loop_free(loop);
}

/* More ready fds than one epoll_wait returns: every one is served exactly
 * once (edge-triggered), over several iterations. */
#define MANY_FDS 1000
TEST(many_fds_over_several_batches) {
    ev_loop_t *loop = ev_loop_new(64);
    int marker;
    ev_set_data(loop, &marker);
    CHECK(ev_data(loop) == &marker);
    static watch_t w[MANY_FDS];
    static int sv[MANY_FDS][2];
    for (int i = 0; i < MANY_FDS; i++) {
        CHECK_EQ_INT(pair(sv[i]), 0);
        memset(&w[i], 0, sizeof w[i]);
        ev_io_init(&w[i].io, sv[i][0], on_count, NULL);
        CHECK_EQ_INT(ev_add(loop, &w[i].io, EV_READ | EV_ET), 0);
        CHECK_EQ_INT(write(sv[i][1], "x", 1), 1);
    }
    int served = 0, rounds = 0;
    while (served < MANY_FDS && rounds < 100) {
        int n = ev_run_once(loop, 1000);
        CHECK(n >= 0 && n <= 64);
        served += n;
        rounds++;
    }
    CHECK_EQ_INT(served, MANY_FDS);
    CHECK(rounds >= MANY_FDS / 64);
    for (int i = 0; i < MANY_FDS; i++) {
        CHECK_EQ_INT(w[i].calls, 1);
        CHECK_EQ_INT(ev_del(loop, &w[i].io), 0);
        close(sv[i][0]), close(sv[i][1]);
    }
    ev_loop_free(loop);
}

static int hook_calls, hook_iter_seen;
static void before_sleep(ev_loop_t *loop, void *data) {
    hook_calls++;
    hook_iter_seen = *(int *)data;
}

TEST(before_sleep_runs_every_iteration_first) {
    ev_loop_t *loop = ev_loop_new(8);
    int iter = 0;
    hook_calls = 0;
    ev_set_before_sleep(loop, before_sleep, &iter);
    for (iter = 1; iter <= 3; iter++) ev_run_once(loop, 0);
    CHECK_EQ_INT(hook_calls, 3);
    CHECK_EQ_INT(hook_iter_seen, 3);
    ev_set_before_sleep(loop, NULL, NULL);
    ev_run_once(loop, 0);
    CHECK_EQ_INT(hook_calls, 3);
    ev_loop_free(loop);
}

static void hook_dont_sleep(ev_loop_t *loop, void *data) {
    ev_dont_sleep(loop);
}

TEST(dont_sleep_skips_one_wait) {
    ev_loop_t *loop = ev_loop_new(8);
    ev_set_before_sleep(loop, hook_dont_sleep, NULL);
    uint64_t t0 = clock_mono_ms();
    CHECK_EQ_INT(ev_run_once(loop, 5000), 0); /* nothing armed, no fds */
    CHECK(clock_mono_ms() - t0 < 1000);
    /* The flag is one-shot: without the hook the wait happens again. */
    ev_set_before_sleep(loop, NULL, NULL);
    ev_dont_sleep(loop);
    CHECK_EQ_INT(ev_run_once(loop, 5000), 0);
    t0 = clock_mono_ms();
    CHECK_EQ_INT(ev_run_once(loop, 50), 0);
    CHECK(clock_mono_ms() - t0 >= 40);
    ev_loop_free(loop);
}

/* ---- timers ------------------------------------------------------------ */

typedef struct {
    ev_timer_t t;
    uint64_t fired_ms;
    int fired;
} ttimer;

static void on_timer(ev_loop_t *loop, ev_timer_t *t) {
    ttimer *x = ev_container_of(t, ttimer, t);
    x->fired++;
    x->fired_ms = clock_mono_ms();
}

static void on_timer_stop_loop(ev_loop_t *loop, ev_timer_t *t) {
    on_timer(loop, t);
    ev_stop(loop);
}

static int iterations;
static void count_iter(ev_loop_t *loop, void *data) { iterations++; }

/* Timers fire through the loop, in order, not early, and the loop sleeps
 * until them instead of polling.  The upper bound is loose on purpose: the
 * machine is shared. */
TEST(timers_fire_through_loop_without_polling) {
    ev_loop_t *loop = ev_loop_new(8);
    ttimer a = {0}, b = {0}, c = {0};
    ev_timer_init(&a.t, on_timer);
    ev_timer_init(&b.t, on_timer);
    ev_timer_init(&c.t, on_timer_stop_loop);
    uint64_t t0 = clock_mono_ms();
    ev_now_update(loop);
    ev_timer_start(loop, &a.t, 30);
    ev_timer_start(loop, &b.t, 400); /* beyond the 1 ms level */
    ev_timer_start(loop, &c.t, 450);
    CHECK_EQ_INT(ev_timer_count(loop), 3);
    iterations = 0;
    ev_set_before_sleep(loop, count_iter, NULL);
    CHECK_EQ_INT(ev_run(loop), 0);
    CHECK_EQ_INT(a.fired, 1);
    CHECK_EQ_INT(b.fired, 1);
    CHECK_EQ_INT(c.fired, 1);
    CHECK(a.fired_ms >= t0 + 30);
    CHECK(b.fired_ms >= t0 + 400);
    CHECK(c.fired_ms >= t0 + 450);
    CHECK(a.fired_ms < t0 + 30 + 1000);
    CHECK(c.fired_ms < t0 + 450 + 1000);
    CHECK(a.fired_ms <= b.fired_ms && b.fired_ms <= c.fired_ms);
    /* A handful of wake-ups (timers plus cascade points), not a busy loop. */
    CHECK(iterations <= 10);
    CHECK_EQ_INT(ev_timer_count(loop), 0);
    ev_loop_free(loop);
}

TEST(stopped_timer_does_not_fire_and_sleep_is_bounded_by_arg) {
    ev_loop_t *loop = ev_loop_new(8);
    ttimer a = {0};
    ev_timer_init(&a.t, on_timer);
    ev_timer_start(loop, &a.t, 10);
    CHECK(ev_timer_active(&a.t));
    ev_timer_stop(loop, &a.t);
    CHECK(!ev_timer_active(&a.t));
    uint64_t t0 = clock_mono_ms();
    CHECK_EQ_INT(ev_run_once(loop, 60), 0); /* nothing armed: sleeps 60 */
    CHECK(clock_mono_ms() >= t0 + 50);
    CHECK_EQ_INT(a.fired, 0);
    /* A past deadline fires on the next iteration without sleeping. */
    ev_timer_start_at(loop, &a.t, ev_now_ms(loop) - 5);
    CHECK_EQ_INT(ev_run_once(loop, 5000), 1);
    CHECK_EQ_INT(a.fired, 1);
    ev_loop_free(loop);
}

/* ---- cross-thread wake-ups --------------------------------------------- */

#define SENDS 20000
typedef struct {
    ev_async_t a;
    atomic_int produced;
    int consumed; /* loop thread only */
    int callbacks;
} work_t;

static void on_async(ev_loop_t *loop, ev_async_t *a) {
    work_t *w = ev_container_of(a, work_t, a);
    w->callbacks++;
    w->consumed = atomic_load(&w->produced);
    if (w->consumed == SENDS) ev_stop(loop);
}

static void *producer(void *arg) {
    work_t *w = arg;
    for (int i = 0; i < SENDS; i++) {
        atomic_fetch_add(&w->produced, 1);
        ev_async_send(&w->a);
    }
    return NULL;
}

TEST(async_wakeup_from_another_thread) {
    ev_loop_t *loop = ev_loop_new(8);
    static work_t w;
    atomic_init(&w.produced, 0);
    w.consumed = w.callbacks = 0;
    CHECK_EQ_INT(ev_async_init(loop, &w.a, on_async, NULL), 0);
    /* A safety timer turns a lost wake-up into a failure, not a hang. */
    ttimer guard = {0};
    ev_timer_init(&guard.t, on_timer_stop_loop);
    ev_timer_start(loop, &guard.t, 10000);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, producer, &w), 0);
    CHECK_EQ_INT(ev_run(loop), 0);
    pthread_join(th, NULL);
    CHECK_EQ_INT(guard.fired, 0);
    CHECK_EQ_INT(w.consumed, SENDS);
    CHECK(w.callbacks >= 1 && w.callbacks <= SENDS);
    ev_async_close(loop, &w.a);
    ev_loop_free(loop);
}

/* ev_stop from another thread goes through an async. */
static void on_async_stop(ev_loop_t *loop, ev_async_t *a) { ev_stop(loop); }

static void *stopper(void *arg) {
    usleep(20000);
    ev_async_send(arg);
    return NULL;
}

TEST(stop_from_another_thread_via_async) {
    ev_loop_t *loop = ev_loop_new(8);
    ev_async_t a;
    CHECK_EQ_INT(ev_async_init(loop, &a, on_async_stop, NULL), 0);
    ttimer guard = {0};
    ev_timer_init(&guard.t, on_timer_stop_loop);
    ev_timer_start(loop, &guard.t, 10000);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, stopper, &a), 0);
    CHECK_EQ_INT(ev_run(loop), 0);
    pthread_join(th, NULL);
    CHECK_EQ_INT(guard.fired, 0); /* stopped by the async, not the guard */
    ev_async_close(loop, &a);
    ev_loop_free(loop);
}

/* ---- the whole pattern: listener, edge-triggered connections, reaping --- */

/* A TCP echo server on the loop, written the way the gateway is meant to
 * be: a level-triggered listener accepting in batches, edge-triggered
 * connections read until EAGAIN, and closed connections freed from the
 * before-sleep hook. */
typedef struct echo_conn {
    ev_io_t io;
    struct echo_conn *next_dead;
    bool dead;
} echo_conn;

typedef struct {
    ev_io_t listener;
    echo_conn *dead;
    int accepted, reaped, echoed;
} echo_server;

static void echo_close(ev_loop_t *loop, echo_server *s, echo_conn *c) {
    if (c->dead) return;
    c->dead = true;
    ev_del(loop, &c->io);
    close(c->io.fd);
    c->next_dead = s->dead;
    s->dead = c;
}

static void echo_ready(ev_loop_t *loop, ev_io_t *io, unsigned revents) {
    echo_conn *c = ev_container_of(io, echo_conn, io);
    echo_server *s = ev_data(loop);
    char buf[256];
    for (;;) {
        ssize_t n = read(io->fd, buf, sizeof buf);
        if (n > 0) {
            /* Tiny messages into an empty socket buffer: the write cannot
             * be short here (a real server queues the rest). */
            if (write(io->fd, buf, (size_t)n) == n) s->echoed++;
            continue;
        }
        if (n < 0 && errno == EAGAIN) return;
        echo_close(loop, s, c); /* EOF or error */
        return;
    }
}

static void echo_accept(ev_loop_t *loop, ev_io_t *io, unsigned revents) {
    echo_server *s = ev_data(loop);
    for (int i = 0; i < 64; i++) { /* bounded batch: level-triggered */
        int fd;
        if (net_accept(io->fd, &fd, NULL) < 0) return;
        echo_conn *c = calloc(1, sizeof *c);
        ev_io_init(&c->io, fd, echo_ready, NULL);
        if (ev_add(loop, &c->io, EV_READ | EV_ET) < 0) {
            close(fd);
            free(c);
            continue;
        }
        s->accepted++;
    }
}

static void echo_reap(ev_loop_t *loop, void *data) {
    echo_server *s = data;
    while (s->dead) {
        echo_conn *c = s->dead;
        s->dead = c->next_dead;
        free(c);
        s->reaped++;
    }
}

TEST(tcp_echo_server_pattern) {
    ev_loop_t *loop = ev_loop_new(64);
    static echo_server s;
    memset(&s, 0, sizeof s);
    ev_set_data(loop, &s);
    ev_set_before_sleep(loop, echo_reap, &s);
    int lfd;
    CHECK_EQ_INT(net_listen_tcp("127.0.0.1", 0, 128, true, &lfd), 0);
    ev_io_init(&s.listener, lfd, echo_accept, NULL);
    CHECK_EQ_INT(ev_add(loop, &s.listener, EV_READ), 0);
    enum { CLIENTS = 50 };
    int cl[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        char src[16];
        snprintf(src, sizeof src, "127.0.0.%d", 2 + i % 4);
        CHECK_EQ_INT(net_connect_tcp("127.0.0.1", net_local_port(lfd), src,
                                     false, &cl[i]),
                     0);
        CHECK_EQ_INT(write(cl[i], "hi", 2), 2);
    }
    for (int r = 0; r < 200 && s.echoed < CLIENTS; r++) ev_run_once(loop, 10);
    CHECK_EQ_INT(s.accepted, CLIENTS);
    CHECK_EQ_INT(s.echoed, CLIENTS);
    for (int i = 0; i < CLIENTS; i++) {
        char buf[4];
        CHECK_EQ_INT(read(cl[i], buf, sizeof buf), 2); /* blocking client */
        CHECK(memcmp(buf, "hi", 2) == 0);
        close(cl[i]);
    }
    for (int r = 0; r < 200 && s.reaped < CLIENTS; r++) ev_run_once(loop, 10);
    CHECK_EQ_INT(s.reaped, CLIENTS);
    ev_del(loop, &s.listener);
    close(lfd);
    ev_loop_free(loop);
}

/* Held sends are written at the flush, once per ev_async. */
static int held_calls;
static void on_held(ev_loop_t *loop, ev_async_t *a) {
    (void)loop;
    (void)a;
    held_calls++;
}

TEST(async_hold_writes_once_at_flush) {
    ev_loop_t *loop = ev_loop_new(8);
    ev_async_t a;
    held_calls = 0;
    CHECK_EQ_INT(ev_async_init(loop, &a, on_held, NULL), 0);
    ev_async_hold();
    ev_async_hold(); /* nested: only the outer flush writes */
    for (int i = 0; i < 3; i++) ev_async_send(&a);
    ev_async_flush();
    uint64_t v;
    CHECK(read(a.io.fd, &v, sizeof v) < 0); /* nothing written yet */
    ev_async_flush();
    CHECK(read(a.io.fd, &v, sizeof v) == (ssize_t)sizeof v);
    CHECK(v == 1); /* three sends, one write */
    ev_async_close(loop, &a);
    ev_loop_free(loop);
}

/* lpause: a listener whose accept ran out of descriptors leaves epoll for
 * a back-off (a queued connection no longer wakes the loop), comes back
 * by itself, doubles the back-off while faults go on and starts over
 * after an accept that worked; other errors do not pause it. */
TEST(lpause_backs_off_and_resumes) {
    ev_loop_t *loop = ev_loop_new(8);
    CHECK(loop);
    int lfd = -1, cfd = -1;
    CHECK_EQ_INT(net_listen_tcp("127.0.0.1", 0, 16, false, &lfd), 0);
    CHECK_EQ_INT(
        net_connect_tcp("127.0.0.1", net_local_port(lfd), NULL, false, &cfd),
        0);
    watch_t w = {0};
    ev_io_init(&w.io, lfd, on_count, NULL);
    CHECK_EQ_INT(ev_add(loop, &w.io, EV_READ), 0);
    lpause_t p;
    lpause_init(&p, loop, &w.io, LPAUSE_DEVICE);
    CHECK(!lpause_fault(&p, -ECONNABORTED));
    CHECK(ev_run_once(loop, 100) >= 1);
    CHECK_EQ_INT(w.calls, 1); /* the queued connection wakes it */

    uint64_t t0 = clock_mono_ms();
    CHECK(lpause_fault(&p, -EMFILE));
    CHECK(p.paused);
    CHECK_EQ_INT(p.next_ms, 2 * LPAUSE_FIRST_MS);
    while (p.paused && clock_mono_ms() - t0 < 2000)
        (void)ev_run_once(loop, 500);
    uint64_t waited = clock_mono_ms() - t0;
    CHECK(!p.paused);
    CHECK_EQ_INT(w.calls, 1); /* not woken while paused */
    CHECK(waited >= LPAUSE_FIRST_MS - 5 && waited < 1000);
    CHECK(ev_run_once(loop, 100) >= 1);
    CHECK_EQ_INT(w.calls, 2); /* back: the connection is still queued */

    for (int i = 0; i < 6; i++) {
        p.paused = false; /* pretend it resumed, to watch the doubling */
        CHECK(lpause_fault(&p, -ENFILE));
        (void)ev_add(loop, &w.io, EV_READ);
    }
    CHECK_EQ_INT(p.next_ms, LPAUSE_MAX_MS);
    lpause_ok(&p);
    CHECK_EQ_INT(p.next_ms, LPAUSE_FIRST_MS);
    /* Stopped (the listener closes): never added back. */
    p.paused = false;
    CHECK(lpause_fault(&p, -EMFILE));
    lpause_stop(&p);
    CHECK(lpause_fault(&p, -EMFILE)); /* still a fault, but no re-arm */
    (void)ev_run_once(loop, 1200);
    CHECK(p.paused);
    CHECK_EQ_INT(ev_timer_count(loop), 0);
    (void)ev_del(loop, &w.io);
    close(cfd), close(lfd);
    ev_loop_free(loop);
}
