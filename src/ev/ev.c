/*
 * ev: see ev.h.  The whole loop is ev_run_once(); everything else is
 * bookkeeping around epoll_ctl, the wheel and an eventfd.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/clock.h"
#include "ev/ev.h"

struct ev_loop {
    int epfd;
    int max_events;
    bool stop;
    bool dont_sleep;
    uint64_t now;
    void *data;
    wheel_t wheel;
    ev_hook_fn before_sleep;
    void *before_sleep_data;
    /* The batch being dispatched, so ev_del() can blank its entries. */
    struct epoll_event *events;
    int batch_next; /* index of the next entry to dispatch */
    int batch_len;
};

ev_loop_t *ev_loop_new(int max_events) {
    if (max_events <= 0) max_events = 1024;
    ev_loop_t *loop = calloc(1, sizeof *loop);
    if (!loop) return NULL;
    loop->events = calloc((size_t)max_events, sizeof *loop->events);
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!loop->events || loop->epfd < 0) {
        int err = errno;
        if (loop->epfd >= 0) close(loop->epfd);
        free(loop->events);
        free(loop);
        errno = err;
        return NULL;
    }
    loop->max_events = max_events;
    loop->now = clock_mono_ms();
    wheel_init(&loop->wheel, loop->now);
    return loop;
}

void ev_loop_free(ev_loop_t *loop) {
    if (!loop) return;
    close(loop->epfd);
    free(loop->events);
    free(loop);
}

void ev_stop(ev_loop_t *loop) { loop->stop = true; }

void ev_set_data(ev_loop_t *loop, void *data) { loop->data = data; }

void *ev_data(const ev_loop_t *loop) { return loop->data; }

uint64_t ev_now_ms(const ev_loop_t *loop) { return loop->now; }

uint64_t ev_now_update(ev_loop_t *loop) {
    loop->now = clock_mono_ms();
    return loop->now;
}

void ev_dont_sleep(ev_loop_t *loop) { loop->dont_sleep = true; }

void ev_set_before_sleep(ev_loop_t *loop, ev_hook_fn fn, void *data) {
    loop->before_sleep = fn;
    loop->before_sleep_data = data;
}

/* ---- file descriptors --------------------------------------------------- */

void ev_io_init(ev_io_t *io, int fd, ev_io_fn fn, void *data) {
    io->fn = fn;
    io->data = data;
    io->fd = fd;
    io->events = 0;
}

static uint32_t to_epoll(unsigned events) {
    uint32_t e = 0;
    if (events & EV_READ) e |= EPOLLIN | EPOLLRDHUP;
    if (events & EV_WRITE) e |= EPOLLOUT;
    if (events & EV_ET) e |= EPOLLET;
    return e;
}

/* Errors and hang-ups are reported as readable and writable as well, so a
 * handler that only reads (or only writes) still meets the error. */
static unsigned from_epoll(uint32_t e) {
    unsigned r = 0;
    if (e & (EPOLLIN | EPOLLRDHUP)) r |= EV_READ;
    if (e & EPOLLOUT) r |= EV_WRITE;
    if (e & (EPOLLERR | EPOLLHUP)) r |= EV_ERROR | EV_READ | EV_WRITE;
    return r;
}

static int ctl(ev_loop_t *loop, int op, ev_io_t *io, unsigned events) {
    struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};
    return epoll_ctl(loop->epfd, op, io->fd, &ev) < 0 ? -errno : 0;
}

int ev_add(ev_loop_t *loop, ev_io_t *io, unsigned events) {
    if (io->events) return -EEXIST;
    if (!(events & (EV_READ | EV_WRITE))) return -EINVAL;
    int rc = ctl(loop, EPOLL_CTL_ADD, io, events);
    if (rc == 0) io->events = events;
    return rc;
}

int ev_mod(ev_loop_t *loop, ev_io_t *io, unsigned events) {
    if (!io->events) return -ENOENT;
    if (!(events & (EV_READ | EV_WRITE))) return -EINVAL;
    int rc = ctl(loop, EPOLL_CTL_MOD, io, events);
    if (rc == 0) io->events = events;
    return rc;
}

/* O(rest of the batch) when called from a handler, O(1) otherwise; a
 * batch holds at most max_events entries. */
int ev_del(ev_loop_t *loop, ev_io_t *io) {
    if (!io->events) return 0;
    io->events = 0;
    for (int i = loop->batch_next; i < loop->batch_len; i++)
        if (loop->events[i].data.ptr == io) loop->events[i].data.ptr = NULL;
    int rc = ctl(loop, EPOLL_CTL_DEL, io, 0);
    /* The fd may already be closed by the caller; the registration went
     * with it. */
    return rc == -EBADF || rc == -ENOENT ? 0 : rc;
}

/* ---- timers -------------------------------------------------------------- */

void ev_timer_init(ev_timer_t *t, ev_timer_fn fn) {
    wheel_timer_init(&t->node);
    t->fn = fn;
}

void ev_timer_start(ev_loop_t *loop, ev_timer_t *t, uint64_t delay_ms) {
    uint64_t at = loop->now + delay_ms;
    if (at < loop->now) at = WHEEL_NEVER - 1; /* overflow: "never" */
    wheel_timer_start(&loop->wheel, &t->node, at);
}

void ev_timer_start_at(ev_loop_t *loop, ev_timer_t *t, uint64_t at_ms) {
    wheel_timer_start(&loop->wheel, &t->node, at_ms);
}

void ev_timer_stop(ev_loop_t *loop, ev_timer_t *t) {
    wheel_timer_stop(&loop->wheel, &t->node);
}

size_t ev_timer_count(const ev_loop_t *loop) {
    return wheel_count(&loop->wheel);
}

static void fire_timer(wheel_timer_t *node, void *arg) {
    ev_timer_t *t = ev_container_of(node, ev_timer_t, node);
    t->fn((ev_loop_t *)arg, t);
}

/* ---- the loop ------------------------------------------------------------ */

/* Milliseconds epoll may sleep: until the wheel's next deadline, capped by
 * the caller's limit (-1: none). */
static int sleep_ms(const ev_loop_t *loop, int limit) {
    uint64_t next = wheel_next_deadline(&loop->wheel);
    if (next == WHEEL_NEVER) return limit;
    uint64_t wait = next > loop->now ? next - loop->now : 0;
    if (wait > INT32_MAX) wait = INT32_MAX;
    if (limit >= 0 && wait > (uint64_t)limit) wait = (uint64_t)limit;
    return (int)wait;
}

static int dispatch(ev_loop_t *loop, int n) {
    int ran = 0;
    loop->batch_len = n;
    for (loop->batch_next = 0; loop->batch_next < n;) {
        struct epoll_event *e = &loop->events[loop->batch_next++];
        ev_io_t *io = e->data.ptr;
        if (!io) continue; /* deleted by an earlier handler */
        /* ev_mod() by an earlier handler may have dropped an interest. */
        unsigned r = from_epoll(e->events);
        if (!(r & EV_ERROR)) r &= io->events;
        if (!r) continue;
        io->fn(loop, io, r);
        ran++;
    }
    loop->batch_next = loop->batch_len = 0;
    return ran;
}

int ev_run_once(ev_loop_t *loop, int timeout_ms) {
    if (loop->before_sleep) loop->before_sleep(loop, loop->before_sleep_data);
    bool busy = loop->stop || loop->dont_sleep;
    int timeout = busy ? 0 : sleep_ms(loop, timeout_ms);
    loop->dont_sleep = false;
    int n = epoll_wait(loop->epfd, loop->events, loop->max_events, timeout);
    int err = errno;
    loop->now = clock_mono_ms();
    if (n < 0) {
        if (err != EINTR) return -err;
        n = 0;
    }
    int ran = dispatch(loop, n);
    ran += (int)wheel_advance(&loop->wheel, loop->now, fire_timer, loop);
    return ran;
}

int ev_run(ev_loop_t *loop) {
    loop->stop = false;
    while (!loop->stop) {
        int rc = ev_run_once(loop, -1);
        if (rc < 0) return rc;
    }
    return 0;
}

/* ---- cross-thread wake-up ------------------------------------------------ */

/* Drain the eventfd, then clear `pending`, then call back: a send racing
 * with us either sees pending still set (and its data is read by this
 * callback) or sets it again and writes the eventfd (next iteration).
 * Clearing before draining could swallow a write and leave pending stuck. */
static void async_ready(ev_loop_t *loop, ev_io_t *io, unsigned revents) {
    ev_async_t *a = ev_container_of(io, ev_async_t, io);
    uint64_t v;
    /* One read takes the whole counter (a second could only say EAGAIN). */
    ssize_t r = read(io->fd, &v, sizeof v);
    (void)r; /* EAGAIN: a spurious edge; the callback finds no work */
    atomic_store(&a->pending, 0);
    a->fn(loop, a);
}

int ev_async_init(ev_loop_t *loop, ev_async_t *a, ev_async_fn fn, void *data) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return -errno;
    ev_io_init(&a->io, fd, async_ready, a);
    a->fn = fn;
    a->data = data;
    atomic_init(&a->pending, 0);
    int rc = ev_add(loop, &a->io, EV_READ);
    if (rc < 0) close(fd);
    return rc;
}

/* Wake-ups held by this thread (ev_async_hold), written at the flush. */
#define HELD_MAX 64
static __thread int held_depth, held_n;
static __thread ev_async_t *held[HELD_MAX];

static void async_write(ev_async_t *a) {
    uint64_t one = 1;
    /* Only EAGAIN (counter saturated) can fail, and then a wake-up is
     * already pending. */
    ssize_t w = write(a->io.fd, &one, sizeof one);
    (void)w;
}

void ev_async_send(ev_async_t *a) {
    if (atomic_exchange(&a->pending, 1)) return;
    if (held_depth > 0 && held_n < HELD_MAX) {
        held[held_n++] = a; /* pending stays 1: others skip their write */
        return;
    }
    async_write(a);
}

void ev_async_hold(void) { held_depth++; }

void ev_async_flush(void) {
    if (held_depth > 0 && --held_depth > 0) return;
    for (int i = 0; i < held_n; i++) async_write(held[i]);
    held_n = 0;
}

void ev_async_close(ev_loop_t *loop, ev_async_t *a) {
    if (a->io.fd < 0) return;
    (void)ev_del(loop, &a->io); /* cannot fail for a live eventfd */
    close(a->io.fd);
    a->io.fd = -1;
}
