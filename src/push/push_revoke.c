/*
 * push_revoke.c: per-device token revocations ("tokens of this device
 * issued before T are refused", docs/protocol.md §1).
 *
 * The gateway asks at every login (gw_service_t.revoked): answered from a
 * table in memory, never from SQLite, so a flood of logins costs no store
 * round trip.  The table is loaded from the store at start and kept
 * current by one thread ("herald-revoke"), which
 *
 *   - runs the revocations the API asks for (DELETE
 *     /v1/devices/{id}/tokens): the store first (durable: a restart keeps
 *     it), then the table, then the kick of the device's connection, then
 *     the answer;
 *   - reads, every REVOKE_POLL_MS, the revocations another process wrote
 *     to the same store (`herald device revoke` beside a running server)
 *     and applies them the same way.
 *
 * The API threads never write SQLite themselves: a revocation's commit
 * waits for the writer's batch, and their loops must not wait with it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "ops/metrics_herald.h"
#include "push/push_int.h"

#define REV_BUCKETS 1024
#define REVOKE_POLL_MS 1000
/* A poll reads the revocations stamped from this long before the last
 * poll on: a `herald device revoke` stamps its row before its commit,
 * which may wait for the store's lock (busy_timeout, 5 s). */
#define REVOKE_SLACK_S 10

typedef struct rev_ent {
    struct rev_ent *next;
    int64_t before_s;
    char key[]; /* "app\0device\0" */
} rev_ent_t;

struct push_revoke {
    push_service_t *ps;
    pthread_rwlock_t mu; /* the table */
    rev_ent_t *tab[REV_BUCKETS];
    atomic_long n;       /* entries: 0 lets a login skip the lock */
    pthread_mutex_t qmu; /* jobs, stop */
    pthread_cond_t qcv;
    push_call_t *head, *tail;
    bool stop;
    pthread_t thread;
    bool started;
    store_reader_t *rd; /* the thread's (store only) */
    int64_t polled_s;   /* wall second of the last read */
};

static size_t make_key(char *buf, size_t cap, const char *app,
                       const char *dev) {
    int n = snprintf(buf, cap, "%s%c%s", app, 0, dev);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n + 1;
}

static rev_ent_t **slot(push_revoke_t *rv, const char *k, size_t n) {
    rev_ent_t **pp = &rv->tab[core_fnv1a(CORE_FNV1A_INIT, k, n) % REV_BUCKETS];
    while (*pp && memcmp((*pp)->key, k, n)) pp = &(*pp)->next;
    return pp;
}

int64_t push_revoked_before(push_service_t *ps, const char *app,
                            const char *dev) {
    push_revoke_t *rv = ps->revoke;
    if (!rv || atomic_load_explicit(&rv->n, memory_order_acquire) == 0)
        return 0;
    char k[256]; /* "app\0device\0": 64 + 129 at most */
    size_t n = make_key(k, sizeof k, app, dev);
    if (!n) return 0;
    pthread_rwlock_rdlock(&rv->mu);
    rev_ent_t *e = *slot(rv, k, n);
    int64_t b = e ? e->before_s : 0;
    pthread_rwlock_unlock(&rv->mu);
    return b;
}

/* Moves the device's moment forward; true if it moved. */
static bool table_put(push_revoke_t *rv, const char *app, const char *dev,
                      int64_t before_s) {
    char k[256]; /* "app\0device\0": 64 + 129 at most */
    size_t n = make_key(k, sizeof k, app, dev);
    if (!n) return false;
    bool moved = false;
    pthread_rwlock_wrlock(&rv->mu);
    rev_ent_t **pp = slot(rv, k, n);
    if (!*pp && (*pp = calloc(1, sizeof **pp + n))) {
        memcpy((*pp)->key, k, n);
        atomic_fetch_add_explicit(&rv->n, 1, memory_order_release);
    }
    if (*pp && before_s > (*pp)->before_s) {
        (*pp)->before_s = before_s;
        moved = true;
    }
    pthread_rwlock_unlock(&rv->mu);
    return moved;
}

/* Into the table; a new moment is counted, logged and enforced on the
 * device's connection (kick: also when it did not move, for an API call
 * that asked for it).  Returns whether the device had a connection. */
static bool apply(push_revoke_t *rv, const char *app, const char *dev,
                  int64_t before_s, bool kick) {
    push_service_t *ps = rv->ps;
    if (table_put(rv, app, dev, before_s)) {
        metrics_inc(M_REVOCATIONS, 0, 0);
        log_info("device tokens revoked", "app=%s device=%s before_s=%lld", app,
                 dev, (long long)before_s);
        kick = true;
    }
    return kick && ps->sink.revoke &&
           ps->sink.revoke(ps->sink.ctx, app, dev, before_s) > 0;
}

/* ---- the thread ---------------------------------------------------------- */

/* One DELETE /v1/devices/{id}/tokens: the store, then memory and the kick. */
static void run_call(push_revoke_t *rv, push_call_t *c) {
    push_service_t *ps = rv->ps;
    int64_t before = (int64_t)time(NULL), in_force = before;
    int rc = ps->cfg.store
                 ? store_device_revoke(ps->cfg.store, c->app, c->devices[0],
                                       before, &in_force)
                 : 0;
    if (rc < 0) {
        log_warn("device revoke failed", "app=%s device=%s err=%s", c->app,
                 c->devices[0], herald_strerror(rc));
        push_call_set_err(c, PUSH_RET_STORE, herald_strerror(rc));
    } else {
        c->revoked_before = in_force;
        c->online = apply(rv, c->app, c->devices[0], in_force, true);
    }
    push_reply_fn reply = c->reply;
    reply(c);
    atomic_fetch_sub_explicit(&ps->inflight, 1, memory_order_release);
}

static void poll_one(void *ctx, const char *app, const char *dev,
                     int64_t before_s) {
    (void)apply(ctx, app, dev, before_s, false);
}

/* What other processes wrote since the last read. */
static void poll_store(push_revoke_t *rv) {
    int64_t now = (int64_t)time(NULL);
    int rc =
        store_revocations(rv->rd, rv->polled_s - REVOKE_SLACK_S, poll_one, rv);
    if (rc < 0) {
        static log_limit_t lim = LOG_LIMIT_INIT(60000);
        log_limited(&lim, LOG_LEVEL_WARN, "revocations read failed", "err=%s",
                    herald_strerror(rc));
        return; /* the same window again next time */
    }
    rv->polled_s = now;
}

static void *revoke_main(void *arg) {
    push_revoke_t *rv = arg;
    (void)pthread_setname_np(pthread_self(), "herald-revoke");
    uint64_t next_poll = clock_mono_ms() + REVOKE_POLL_MS;
    pthread_mutex_lock(&rv->qmu);
    for (;;) {
        while (!rv->head && !rv->stop && clock_mono_ms() < next_poll) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t wait = next_poll - clock_mono_ms();
            if (wait > REVOKE_POLL_MS) wait = REVOKE_POLL_MS;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&rv->qcv, &rv->qmu, &ts);
        }
        push_call_t *jobs = rv->head;
        rv->head = rv->tail = NULL;
        bool stop = rv->stop;
        pthread_mutex_unlock(&rv->qmu);
        while (jobs) {
            push_call_t *c = jobs;
            jobs = c->next;
            c->next = NULL;
            run_call(rv, c);
        }
        if (rv->rd && clock_mono_ms() >= next_poll) {
            poll_store(rv);
            next_poll = clock_mono_ms() + REVOKE_POLL_MS;
        }
        pthread_mutex_lock(&rv->qmu);
        if (stop && !rv->head) break;
    }
    pthread_mutex_unlock(&rv->qmu);
    return NULL;
}

int push_revoke_call(push_call_t *c) {
    push_revoke_t *rv = c->ps->revoke;
    if (c->ret != PUSH_RET_OK) return 1;
    if (!rv || !rv->started || c->n_devices != 1) {
        push_call_set_err(c, PUSH_RET_INTERNAL, "revocations not running");
        return 1;
    }
    atomic_fetch_add_explicit(&c->ps->inflight, 1, memory_order_acquire);
    pthread_mutex_lock(&rv->qmu);
    if (rv->stop) {
        pthread_mutex_unlock(&rv->qmu);
        atomic_fetch_sub_explicit(&c->ps->inflight, 1, memory_order_release);
        push_call_set_err(c, PUSH_RET_OVERLOADED, "server stopping");
        return 1;
    }
    c->next = NULL;
    if (rv->tail)
        rv->tail->next = c;
    else
        rv->head = c;
    rv->tail = c;
    pthread_cond_signal(&rv->qcv);
    pthread_mutex_unlock(&rv->qmu);
    return 0;
}

/* ---- life cycle ----------------------------------------------------------- */

static void load_one(void *ctx, const char *app, const char *dev,
                     int64_t before_s) {
    (void)table_put(ctx, app, dev, before_s);
}

int push_revoke_start(push_service_t *ps) {
    push_revoke_t *rv = calloc(1, sizeof *rv);
    if (!rv) return -12;
    rv->ps = ps;
    pthread_rwlock_init(&rv->mu, NULL);
    pthread_mutex_init(&rv->qmu, NULL);
    pthread_cond_init(&rv->qcv, NULL);
    ps->revoke = rv;
    int rc = 0;
    if (ps->cfg.store) {
        /* Every revocation in force before the first login is checked. */
        rv->polled_s = (int64_t)time(NULL);
        rc = store_reader_new(ps->cfg.store, &rv->rd);
        if (rc == 0) rc = store_revocations(rv->rd, 0, load_one, rv);
        if (rc < 0) {
            log_error("revocations load failed", "err=%s", herald_strerror(rc));
            return -5;
        }
    }
    if ((rc = pthread_create(&rv->thread, NULL, revoke_main, rv)) != 0)
        return -rc;
    rv->started = true;
    return 0;
}

void push_revoke_stop(push_service_t *ps) {
    push_revoke_t *rv = ps->revoke;
    if (!rv || !rv->started) return;
    pthread_mutex_lock(&rv->qmu);
    rv->stop = true;
    pthread_cond_signal(&rv->qcv);
    pthread_mutex_unlock(&rv->qmu);
    pthread_join(rv->thread, NULL);
    rv->started = false;
}

void push_revoke_free(push_service_t *ps) {
    push_revoke_t *rv = ps->revoke;
    if (!rv) return;
    push_revoke_stop(ps);
    ps->revoke = NULL;
    if (rv->rd) store_reader_free(rv->rd);
    for (int i = 0; i < REV_BUCKETS; i++)
        while (rv->tab[i]) {
            rev_ent_t *e = rv->tab[i];
            rv->tab[i] = e->next;
            free(e);
        }
    pthread_rwlock_destroy(&rv->mu);
    pthread_mutex_destroy(&rv->qmu);
    pthread_cond_destroy(&rv->qcv);
    free(rv);
}
