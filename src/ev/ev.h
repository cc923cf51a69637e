/*
 * ev: the event loop.  One loop per worker thread, in the manner of Redis'
 * ae.c: epoll for file descriptors, a timer wheel for timeouts, an eventfd
 * for wake-ups from other threads, and a "before sleep" hook.
 *
 * One iteration:
 *   1. the before-sleep hook runs (batch writes, free closed connections);
 *   2. epoll_wait sleeps until an fd is ready or the wheel's next deadline
 *      (never busy-polls; with no timer armed it sleeps until an event);
 *   3. ev_now_ms() is refreshed once from the monotonic clock;
 *   4. ready fds' handlers run;
 *   5. expired timers' callbacks run.
 *
 * Registrations are intrusive: the caller embeds an ev_io_t (and ev_timer_t)
 * in its own struct (a connection) and the loop stores the ev_io_t pointer in
 * epoll_data, so there is no per-fd table and no allocation per fd.
 *
 * Level or edge: the caller chooses per fd.  Without EV_ET the fd is
 * level-triggered (listeners: accept a bounded batch per wake-up, the rest
 * is reported again).  With EV_ET it is edge-triggered, which suits
 * connections: register EV_READ|EV_WRITE|EV_ET once, read until EAGAIN,
 * write until EAGAIN, and never call epoll_ctl again while the connection
 * lives.  A handler of an edge-triggered fd that stops before EAGAIN (to be
 * fair to other fds) must remember to continue, e.g. from the before-sleep
 * hook, and call ev_dont_sleep() so the loop does not block meanwhile.
 *
 * Freeing during an iteration: events for a whole batch are fetched before
 * any handler runs.  ev_del() clears the deleted ev_io_t from the rest of the
 * batch, so after ev_del() returns its handler is not called again and the
 * memory may be reused.  Closing an fd without ev_del() is a bug (epoll may
 * still hold the pointer).  Freeing with a pointer still registered is a
 * bug.  The recommended pattern for connections: on close, ev_del(), stop
 * the timer, close(fd), mark the connection closed and free it from the
 * before-sleep hook, so code further up the same call stack never touches
 * freed memory.
 *
 * Threads: everything here is for the loop's own thread, except
 * ev_async_send(), which any thread may call.
 */
#ifndef HERALD_EV_EV_H
#define HERALD_EV_EV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ev/wheel.h"

/* Interest (ev_add/ev_mod) and readiness (handler argument) flags. */
#define EV_READ 0x1u
#define EV_WRITE 0x2u
#define EV_ET 0x4u    /* interest only: edge-triggered */
#define EV_ERROR 0x8u /* readiness only: EPOLLERR/EPOLLHUP, with READ|WRITE */

typedef struct ev_loop ev_loop_t;
typedef struct ev_io ev_io_t;
typedef struct ev_timer ev_timer_t;
typedef struct ev_async ev_async_t;

typedef void (*ev_io_fn)(ev_loop_t *loop, ev_io_t *io, unsigned revents);
typedef void (*ev_timer_fn)(ev_loop_t *loop, ev_timer_t *t);
typedef void (*ev_async_fn)(ev_loop_t *loop, ev_async_t *a);
typedef void (*ev_hook_fn)(ev_loop_t *loop, void *data);

/* Registration of one fd; embed it, then use container_of or `data`. */
struct ev_io {
    ev_io_fn fn;
    void *data;
    int fd;
    unsigned events; /* current interest; 0 when not registered */
};

/* A timer: the wheel's 24-byte node plus the callback (32 bytes). */
struct ev_timer {
    wheel_timer_t node;
    ev_timer_fn fn;
};

/* Cross-thread wake-up.  Sends coalesce: many ev_async_send() calls before
 * the loop runs cause one callback, so the callback must drain whatever
 * queue the senders fill. */
struct ev_async {
    ev_io_t io; /* the eventfd */
    ev_async_fn fn;
    void *data;
    atomic_int pending;
};

#define ev_container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* A loop fetching at most max_events ready fds per epoll_wait.  NULL on
 * failure (errno set). */
ev_loop_t *ev_loop_new(int max_events);
/* Frees the loop; registered fds are not closed (they belong to the
 * caller), armed timers are simply forgotten. */
void ev_loop_free(ev_loop_t *loop);

/* Runs iterations until ev_stop().  0 after a stop, negative errno if
 * epoll_wait fails. */
int ev_run(ev_loop_t *loop);
/* One iteration, waiting at most timeout_ms (-1: up to the next timer).
 * Returns the number of handlers and timers run, or negative errno. */
int ev_run_once(ev_loop_t *loop, int timeout_ms);
/* Makes ev_run() return after the current iteration (loop thread only; from
 * another thread, send an ev_async whose callback calls ev_stop). */
void ev_stop(ev_loop_t *loop);

/* One pointer of the owner's (the gateway's worker), for handlers that
 * only have the loop at hand. */
void ev_set_data(ev_loop_t *loop, void *data);
void *ev_data(const ev_loop_t *loop);

/* Monotonic milliseconds, read once per iteration.  Cheap. */
uint64_t ev_now_ms(const ev_loop_t *loop);
/* Re-reads the clock now (after a long computation). */
uint64_t ev_now_update(ev_loop_t *loop);

/* Called at the start of every iteration, before the loop sleeps.  One hook
 * per loop; fn NULL removes it. */
void ev_set_before_sleep(ev_loop_t *loop, ev_hook_fn fn, void *data);

/* The coming epoll_wait (this iteration's, if called from the before-sleep
 * hook; the next one, if called from a handler or timer) returns at once
 * instead of sleeping: there is work left that no fd event will announce. */
void ev_dont_sleep(ev_loop_t *loop);

/* ---- file descriptors --------------------------------------------------- */
void ev_io_init(ev_io_t *io, int fd, ev_io_fn fn, void *data);
/* events: EV_READ and/or EV_WRITE, optionally EV_ET.  0 or negative errno
 * (-EEXIST if already registered). */
int ev_add(ev_loop_t *loop, ev_io_t *io, unsigned events);
/* Changes the interest of a registered fd. */
int ev_mod(ev_loop_t *loop, ev_io_t *io, unsigned events);
/* Unregisters; the handler is not called again, even for events already
 * fetched in this iteration.  Harmless if not registered. */
int ev_del(ev_loop_t *loop, ev_io_t *io);

/* ---- timers -------------------------------------------------------------- */
void ev_timer_init(ev_timer_t *t, ev_timer_fn fn);
/* Arms t to fire delay_ms after ev_now_ms() (re-arms if armed).  O(1). */
void ev_timer_start(ev_loop_t *loop, ev_timer_t *t, uint64_t delay_ms);
/* Arms t for an absolute ev_now_ms() time; a past time fires next
 * iteration. */
void ev_timer_start_at(ev_loop_t *loop, ev_timer_t *t, uint64_t at_ms);
void ev_timer_stop(ev_loop_t *loop, ev_timer_t *t);
static inline bool ev_timer_active(const ev_timer_t *t) {
    return wheel_timer_active(&t->node);
}
size_t ev_timer_count(const ev_loop_t *loop);

/* ---- cross-thread wake-up ------------------------------------------------ */
/* Creates the eventfd and registers it.  0 or negative errno. */
int ev_async_init(ev_loop_t *loop, ev_async_t *a, ev_async_fn fn, void *data);
/* Any thread, async-signal-safe: makes the loop call a->fn soon.  Memory
 * written before the send is visible to the callback. */
void ev_async_send(ev_async_t *a);
/* Loop thread: unregisters and closes the eventfd. */
void ev_async_close(ev_loop_t *loop, ev_async_t *a);

/*
 * Batching for a thread that hands many items to other loops in a row
 * (the store writer answering a whole group commit): between hold and
 * flush, this thread's sends are written once per ev_async at the flush
 * instead of once per item.  A wake-up of a sleeping thread is a syscall
 * and often an IPI; one per request was 15 % of the writer's CPU.  Calls
 * nest; the outermost flush writes.  The ev_async must stay alive until
 * the flush.
 */
void ev_async_hold(void);
void ev_async_flush(void);

#endif
