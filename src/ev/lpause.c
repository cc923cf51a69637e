/*
 * lpause: see lpause.h.
 */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "core/log.h"
#include "ev/lpause.h"
#include "ops/metrics_herald.h"

static const char *const NAMES[] = {"device", "api", "tars", "admin"};

static void on_resume(ev_loop_t *loop, ev_timer_t *t) {
    lpause_t *p = ev_container_of(t, lpause_t, timer);
    if (p->stopped || !p->paused || p->io->fd < 0) return;
    /* Still out of descriptors: the next accept fails and pauses again,
     * twice as long. */
    if (ev_add(loop, p->io, EV_READ) < 0) {
        ev_timer_start(loop, &p->timer, p->next_ms);
        return;
    }
    p->paused = false;
}

void lpause_init(lpause_t *p, ev_loop_t *loop, ev_io_t *io, int which) {
    memset(p, 0, sizeof *p);
    p->loop = loop;
    p->io = io;
    p->which = (uint8_t)which;
    p->next_ms = LPAUSE_FIRST_MS;
    ev_timer_init(&p->timer, on_resume);
}

/* EMFILE/ENFILE: descriptors; ENOBUFS/ENOMEM: socket memory.  Retrying
 * at once cannot succeed for any of them. */
static bool exhausted(int err) {
    return err == -EMFILE || err == -ENFILE || err == -ENOBUFS ||
           err == -ENOMEM;
}

bool lpause_fault(lpause_t *p, int err) {
    if (!exhausted(err)) return false;
    if (p->paused || p->stopped) return true;
    static log_limit_t lim = LOG_LIMIT_INIT(LPAUSE_LOG_MS);
    struct rlimit rl = {0};
    (void)getrlimit(RLIMIT_NOFILE, &rl); /* for the line only */
    log_limited(&lim, LOG_LEVEL_WARN, "accept failed, listener paused",
                "listener=%s err=\"%s\" pause_ms=%u nofile=%llu",
                NAMES[p->which % 4], strerror(-err), p->next_ms,
                (unsigned long long)rl.rlim_cur);
    metrics_inc(M_LISTENER_PAUSED, p->which, 0);
    (void)ev_del(p->loop, p->io);
    p->paused = true;
    ev_timer_start(p->loop, &p->timer, p->next_ms);
    p->next_ms =
        p->next_ms * 2 > LPAUSE_MAX_MS ? LPAUSE_MAX_MS : p->next_ms * 2;
    return true;
}

void lpause_stop(lpause_t *p) {
    if (!p->loop) return;
    p->stopped = true;
    ev_timer_stop(p->loop, &p->timer);
}
