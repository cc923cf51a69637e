/*
 * lpause: a level-triggered listener that backs off when the process runs
 * out of descriptors (or kernel memory) instead of spinning on it.
 *
 * A listener with a connection waiting in its backlog is reported ready
 * on every epoll_wait.  When accept4 fails with EMFILE, the connection
 * stays queued, so the loop wakes again at once and fails again: herald
 * was measured at 190 % CPU doing exactly that (16,000 failures in 2 s)
 * while nothing else on those threads ran.  net_accept's spare descriptor
 * (net.h) refuses one queued connection per failure, but only while the
 * spare can be reopened, which another thread's accept or open can
 * prevent; past that point nothing makes progress.
 *
 * So on such a failure the listener leaves epoll for a back-off (100 ms,
 * doubling to 1 s while failures go on) and is added back by a timer.  An
 * accept that succeeds starts the back-off over.  Each pause counts in
 * herald_listener_paused_total{listener} and logs one warning line per
 * LPAUSE_LOG_MS for the whole process (log_limited, with the number held
 * back).
 *
 * Loop thread only.  The listener's ev_io_t stays the caller's.
 */
#ifndef HERALD_EV_LPAUSE_H
#define HERALD_EV_LPAUSE_H

#include <stdbool.h>
#include <stdint.h>

#include "ev/ev.h"

#define LPAUSE_FIRST_MS 100
#define LPAUSE_MAX_MS 1000
#define LPAUSE_LOG_MS 10000

/* Which listener (the metric's label; enum mh_listener's order). */
enum lpause_which { LPAUSE_DEVICE = 0, LPAUSE_API, LPAUSE_TARS, LPAUSE_ADMIN };

typedef struct lpause {
    ev_timer_t timer;
    ev_loop_t *loop;
    ev_io_t *io;      /* the listener, registered EV_READ */
    uint32_t next_ms; /* the next pause's length */
    uint8_t which;    /* enum lpause_which */
    bool paused;      /* out of epoll, the timer armed */
    bool stopped;     /* lpause_stop: never re-added */
} lpause_t;

void lpause_init(lpause_t *p, ev_loop_t *loop, ev_io_t *io, int which);
/* After a failed accept: true when err (a negative errno of net_accept)
 * means the process is out of descriptors or memory; the listener is then
 * paused and the caller must stop its accept batch. */
bool lpause_fault(lpause_t *p, int err);
/* An accept succeeded: the next pause starts at LPAUSE_FIRST_MS again. */
static inline void lpause_ok(lpause_t *p) { p->next_ms = LPAUSE_FIRST_MS; }
/* Before the listener is closed (drain, stop): disarms the timer, so the
 * listener is never added back.  Safe to call more than once. */
void lpause_stop(lpause_t *p);

#endif
