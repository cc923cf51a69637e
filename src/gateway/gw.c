/*
 * gw: life cycle, worker threads, the device registry and the mailboxes
 * through which other threads reach a worker's connections (see gw.h and
 * gw_int.h).  A connection's own I/O lives in gw_conn.c (reads, framing,
 * closing), gw_out.c (writes) and gw_http.c (an HTTP head), its commands
 * in gw_cmd.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/log.h"
#include "core/net.h"
#include "gateway/gw_int.h"
#include "ops/metrics_herald.h"

#define PROTO_ERR_DUPLICATE_LOGIN 1010
#define PROTO_ERR_DRAINING 1012
#define PROTO_ERR_TOKEN_REVOKED 1022

void gw_config_defaults(gw_config_t *c) {
    memset(c, 0, sizeof *c);
    c->host = "0.0.0.0";
    c->port = 7100;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = n > 0 ? (int)n : 1;
    c->hb_min = 10;
    c->hb_max = 600;
    c->hb_default = 60;
    c->hb_factor_pct = 150;
    c->hb_grace = 5;
    c->auth_timeout = 10;
    c->max_frame = YYB_FRAME_MAX;
    c->max_pending = 256u * 1024;
    c->max_conns = 0;
    c->head_timeout = 10;
    c->fd_reserve = GW_FD_RESERVE;
    c->token_max_ttl = 30 * 86400;
}

int gw_conns_auto(long nofile, int reserve, int workers, int *refused) {
    long keep = (long)reserve + (long)GW_FD_PER_WORKER * workers;
    if (keep > nofile / 2) keep = nofile / 2;
    long budget = nofile - keep;
    long ref = budget / 16;
    long cap = budget - ref;
    if (cap < 1) cap = 1;
    if (cap > INT_MAX) cap = INT_MAX;
    if (refused) *refused = ref > INT_MAX ? INT_MAX : (int)ref;
    return (int)cap;
}

/* The soft limit is what accept runs into. */
static long nofile_now(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return INT_MAX;
    return rl.rlim_cur > INT_MAX ? INT_MAX : (long)rl.rlim_cur;
}

/* The cap for a max_conns setting (0 = derived); says when an explicit
 * one is more than the descriptors allow. */
static int conns_for(gw_t *gw, int max_conns) {
    if (max_conns <= 0) return gw->auto_conns;
    if (max_conns > gw->auto_conns)
        log_warn("max-conns is above what the descriptor limit allows",
                 "max_conns=%d fits=%d nofile=%ld reserve=%d", max_conns,
                 gw->auto_conns, gw->nofile, gw->cfg.fd_reserve);
    return max_conns;
}

/* ---- apps ---------------------------------------------------------------- */

gw_app_t *gw_app_intern(gw_t *gw, const char *name, size_t len) {
    pthread_mutex_lock(&gw->apps_mu);
    gw_app_t *a = gw->apps;
    for (; a; a = a->next)
        if (strlen(a->name) == len && !memcmp(a->name, name, len)) break;
    if (!a && (a = malloc(sizeof *a + len + 1))) {
        atomic_init(&a->online, 0);
        memcpy(a->name, name, len);
        a->name[len] = 0;
        a->next = gw->apps;
        gw->apps = a;
    }
    pthread_mutex_unlock(&gw->apps_mu);
    return a;
}

static gw_app_t *app_find(gw_t *gw, const char *name) {
    pthread_mutex_lock(&gw->apps_mu);
    gw_app_t *a = gw->apps;
    while (a && strcmp(a->name, name)) a = a->next;
    pthread_mutex_unlock(&gw->apps_mu);
    return a;
}

/* ---- registry ------------------------------------------------------------ */

/* FNV-1a over the app pointer's identity and the device name. */
static uint32_t reg_hash(const gw_app_t *app, const char *dev, size_t len) {
    return core_fnv1a(core_fnv1a(CORE_FNV1A_INIT, &app, sizeof app), dev, len);
}

static gw_reg_t **reg_slot(gw_shard_t *s, const gw_app_t *app, uint32_t h,
                           const char *dev, size_t len) {
    gw_reg_t **pp = &s->tab[(h / GW_REG_SHARDS) & s->mask];
    for (; *pp; pp = &(*pp)->next) {
        gw_reg_t *r = *pp;
        if (r->hash == h && r->app == app && r->len == len &&
            !memcmp(r->name, dev, len))
            break;
    }
    return pp;
}

static void reg_grow(gw_shard_t *s) {
    uint32_t nb = (s->mask + 1) * 2;
    gw_reg_t **t = calloc(nb, sizeof *t);
    if (!t) return; /* longer chains, still correct */
    for (uint32_t i = 0; i <= s->mask; i++) {
        for (gw_reg_t *r = s->tab[i], *nx; r; r = nx) {
            nx = r->next;
            gw_reg_t **b = &t[(r->hash / GW_REG_SHARDS) & (nb - 1)];
            r->next = *b;
            *b = r;
        }
    }
    free(s->tab);
    s->tab = t;
    s->mask = nb - 1;
}

void gw_reg_add(gw_t *gw, gw_conn_t *c) {
    gw_dev_t *d = c->dev;
    uint32_t h = reg_hash(d->app, d->name, d->len);
    gw_shard_t *s = &gw->shards[h % GW_REG_SHARDS];
    gw_item_t kick = {.kind = GW_I_KICK, .reason = PROTO_ERR_DUPLICATE_LOGIN};
    int old_worker = -1;

    pthread_mutex_lock(&s->mu);
    gw_reg_t **pp = reg_slot(s, d->app, h, d->name, d->len);
    gw_reg_t *r = *pp;
    if (r) {
        old_worker = r->worker;
        kick.slot = r->slot;
        kick.gen = r->gen;
    } else if ((r = malloc(sizeof *r + d->len + 1))) {
        r->app = d->app;
        r->hash = h;
        r->len = d->len;
        memcpy(r->name, d->name, d->len + 1);
        r->next = NULL;
        *pp = r;
        if (++s->n > (s->mask + 1) * 2) reg_grow(s);
    }
    if (r) {
        r->worker = c->w->idx;
        r->slot = c->slot;
        r->gen = c->gen;
    }
    pthread_mutex_unlock(&s->mu);

    if (old_worker < 0) return;
    if (old_worker == c->w->idx) {
        gw_conn_t *o = gw_worker_conn(c->w, kick.slot, kick.gen);
        if (o && o != c) gw_conn_kick(o, kick.reason, "logged in elsewhere");
    } else {
        (void)gw_mail(gw, old_worker, &kick); /* OOM: the old one idles out */
    }
}

void gw_reg_del(gw_t *gw, gw_conn_t *c) {
    gw_dev_t *d = c->dev;
    uint32_t h = reg_hash(d->app, d->name, d->len);
    gw_shard_t *s = &gw->shards[h % GW_REG_SHARDS];
    pthread_mutex_lock(&s->mu);
    gw_reg_t **pp = reg_slot(s, d->app, h, d->name, d->len);
    gw_reg_t *r = *pp;
    if (r && r->worker == c->w->idx && r->slot == c->slot && r->gen == c->gen) {
        *pp = r->next;
        s->n--;
        free(r);
    }
    pthread_mutex_unlock(&s->mu);
}

/* The handle of the device's connection, if any. */
static bool reg_find(gw_t *gw, gw_app_t *app, const char *dev, gw_item_t *it,
                     int *worker) {
    size_t len = strlen(dev);
    if (len == 0 || len > 255) return false;
    uint32_t h = reg_hash(app, dev, len);
    gw_shard_t *s = &gw->shards[h % GW_REG_SHARDS];
    pthread_mutex_lock(&s->mu);
    gw_reg_t *r = *reg_slot(s, app, h, dev, len);
    if (r) {
        *worker = r->worker;
        it->slot = r->slot;
        it->gen = r->gen;
    }
    pthread_mutex_unlock(&s->mu);
    return r != NULL;
}

/* ---- mailboxes ------------------------------------------------------------ */

int gw_mail(gw_t *gw, int idx, const gw_item_t *it) {
    gw_worker_t *w = &gw->workers[idx];
    bool push = it->kind == GW_I_PUSH_ONE || it->kind == GW_I_PUSH_APP;
    pthread_mutex_lock(&w->mu);
    if (push && w->nitems >= GW_MAILBOX_MAX) {
        /* The worker is far behind: more would only grow memory. */
        pthread_mutex_unlock(&w->mu);
        atomic_fetch_add_explicit(&w->mailbox_dropped, 1, memory_order_relaxed);
        metrics_inc(M_QUEUE_DROPPED, MH_DROP_MAILBOX, 0);
        return -ENOBUFS;
    }
    if (w->nitems == w->cap_items) {
        uint32_t nc = w->cap_items ? w->cap_items * 2 : 64;
        gw_item_t *ni = realloc(w->items, nc * sizeof *ni);
        if (!ni) {
            pthread_mutex_unlock(&w->mu);
            return -ENOMEM;
        }
        w->items = ni;
        w->cap_items = nc;
    }
    w->items[w->nitems++] = *it;
    pthread_mutex_unlock(&w->mu);
    ev_async_send(&w->wake);
    return 0;
}

gw_conn_t *gw_worker_conn(gw_worker_t *w, uint32_t slot, uint32_t gen) {
    if (slot >= w->nslots) return NULL;
    gw_conn_t *c = w->conns[slot];
    if (!c || c->gen != gen || c->state >= GW_S_CLOSING) return NULL;
    return c;
}

void gw_pmsg_unref(gw_pmsg_t *m) {
    if (atomic_fetch_sub(&m->ref, 1) == 1) free(m);
}

/* One pass over the worker's connections: the frame is encoded at most
 * once per wire format and every target gets a reference to it. */
static void push_app(gw_worker_t *w, gw_pmsg_t *m) {
    gw_buf_t *fmt[3] = {0};
    for (uint32_t i = 0; i < w->nslots; i++) {
        gw_conn_t *c = w->conns[i];
        if (c && c->dev && c->dev->app == m->app &&
            (c->state == GW_S_YYB || c->state == GW_S_WS))
            (void)gw_push_to_conn(c, m, fmt, true);
    }
    gw_batch_flush(w);
    for (int i = 0; i < 3; i++)
        if (fmt[i]) gw_buf_unref(fmt[i]);
}

static void drain_worker(gw_worker_t *w) {
    if (w->draining) return;
    w->draining = true;
    lpause_stop(&w->lpause);
    if (w->lio.fd >= 0) {
        (void)ev_del(w->loop, &w->lio);
        close(w->lio.fd);
        w->lio.fd = -1;
    }
    for (uint32_t i = 0; i < w->nslots; i++) {
        gw_conn_t *c = w->conns[i];
        if (c && c->state < GW_S_CLOSING)
            gw_conn_kick(c, PROTO_ERR_DRAINING, "server draining");
    }
}

static void run_item(gw_worker_t *w, gw_item_t *it) {
    gw_conn_t *c;
    /* Single-device pushes go out through the batch (one io_uring submit
     * for a whole mailbox run); anything else may write, so it flushes. */
    if (it->kind != GW_I_PUSH_ONE) gw_batch_flush(w);
    switch (it->kind) {
    case GW_I_PUSH_ONE:
        if ((c = gw_worker_conn(w, it->slot, it->gen))) {
            gw_buf_t *fmt[3] = {0};
            (void)gw_push_to_conn(c, it->msg, fmt, true);
            for (int i = 0; i < 3; i++)
                if (fmt[i]) gw_buf_unref(fmt[i]);
        }
        break;
    case GW_I_PUSH_APP: push_app(w, it->msg); break;
    case GW_I_KICK:
        /* A revocation spares a connection that logged in again with a
         * token issued since. */
        if ((c = gw_worker_conn(w, it->slot, it->gen)) &&
            (!it->before_s || (c->dev && c->dev->issued_s < it->before_s)))
            gw_conn_kick(
                c, it->reason,
                it->reason == PROTO_ERR_DUPLICATE_LOGIN ? "logged in elsewhere"
                : it->reason == PROTO_ERR_TOKEN_REVOKED ? "token revoked"
                                                        : "kicked");
        break;
    case GW_I_DRAIN: drain_worker(w); break;
    case GW_I_STOP: ev_stop(w->loop); break;
    case GW_I_MARK: /* behind the page it follows: the mailbox is FIFO */
        gw_mark_arm(w->gw, gw_worker_conn(w, it->slot, it->gen), it->token);
        break;
    case GW_I_SYNC:
        if ((c = gw_worker_conn(w, it->slot, it->gen)))
            gw_http_sync_done(c, it->body, it->body_len);
        free(it->body);
        it->body = NULL;
        break;
    }
    if (it->msg) gw_pmsg_unref(it->msg);
}

/* Takes the whole mailbox under the lock, runs it outside. */
static void on_wake(ev_loop_t *loop, ev_async_t *a) {
    gw_worker_t *w = a->data;
    (void)loop;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        gw_item_t *items = w->items;
        uint32_t n = w->nitems;
        w->items = NULL;
        w->nitems = w->cap_items = 0;
        pthread_mutex_unlock(&w->mu);
        if (!n) {
            free(items);
            return;
        }
        for (uint32_t i = 0; i < n; i++) run_item(w, &items[i]);
        gw_batch_flush(w);
        free(items);
    }
}

/* ---- workers -------------------------------------------------------------- */

static void on_accept(ev_loop_t *loop, ev_io_t *io, unsigned revents) {
    gw_worker_t *w = io->data;
    (void)loop;
    (void)revents;
    for (int i = 0; i < GW_ACCEPT_BATCH && w->lio.fd >= 0; i++) {
        int fd;
        struct sockaddr_storage peer;
        int rc = net_accept(w->lio.fd, &fd, &peer);
        if (rc == -EAGAIN || lpause_fault(&w->lpause, rc)) break;
        if (rc < 0) continue;
        lpause_ok(&w->lpause);
        /* Pushes are small writes: with Nagle a second push to a device
         * waited for the TCP ACK of the first (~20 ms of delivery latency
         * under a steady stream, measured with push_load --online). */
        (void)net_set_nodelay(fd, true); /* only latency is at stake */
        gw_conn_accept(w, fd, &peer);
    }
}

static void before_sleep(ev_loop_t *loop, void *data) {
    gw_worker_t *w = data;
    (void)loop;
    for (uint32_t i = 0; i < w->ndead; i++) gw_conn_free(w->dead[i]);
    w->ndead = 0;
}

static void *worker_main(void *arg) {
    gw_worker_t *w = arg;
    char name[16];
    snprintf(name, sizeof name, "herald-gw%d", w->idx);
    (void)pthread_setname_np(pthread_self(), name); /* top -H, perf */
    /* The ring is set up here, by its only user: io_uring ties a ring to
     * the task that creates it, and one created by the starting thread
     * could interrupt that thread's blocking reads with EINTR (the
     * store's ring did, see store_journal.c).  Optional: without it
     * sends take send(). */
    (void)gw_batch_init(w);
    int rc = ev_run(w->loop);
    if (rc < 0)
        log_error("gateway worker loop failed", "worker=%d err=%d", w->idx, rc);
    /* Whatever is still open at stop is closed without a goodbye. */
    for (uint32_t i = 0; i < w->nslots; i++)
        if (w->conns[i] && w->conns[i]->state != GW_S_DEAD)
            gw_conn_close(w->conns[i], PROTO_ERR_DRAINING);
    before_sleep(w->loop, w);
    return NULL;
}

static int worker_init(gw_t *gw, gw_worker_t *w, int idx) {
    w->gw = gw;
    w->idx = idx;
    w->lio.fd = -1;
    w->wake.io.fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    if (!(w->loop = ev_loop_new(256))) return -errno;
    if (!(w->arena = jce_arena_new(0))) return -ENOMEM;
    w->rbuf_cap = GW_READ_CHUNK + gw->cfg.max_frame + WS_HEADER_MAX;
    if (!(w->rbuf = malloc(w->rbuf_cap))) return -ENOMEM;
    ev_set_before_sleep(w->loop, before_sleep, w);
    return ev_async_init(w->loop, &w->wake, on_wake, w);
}

static int worker_listen(gw_t *gw, gw_worker_t *w) {
    int fd;
    int rc = net_listen_tcp(gw->host, gw->port, 4096, true, &fd);
    if (rc < 0) return rc;
    if (gw->port == 0) gw->port = net_local_port(fd);
    ev_io_init(&w->lio, fd, on_accept, w);
    lpause_init(&w->lpause, w->loop, &w->lio, LPAUSE_DEVICE);
    rc = ev_add(w->loop, &w->lio, EV_READ);
    if (rc < 0) {
        close(fd);
        w->lio.fd = -1;
    }
    return rc;
}

gw_t *gw_new(const gw_config_t *cfg, const gw_service_t *svc) {
    gw_t *gw = calloc(1, sizeof *gw);
    if (!gw) return NULL;
    gw_config_defaults(&gw->cfg);
    if (cfg) gw->cfg = *cfg;
    gw_config_t *c = &gw->cfg;
    if (c->workers <= 0) c->workers = 1;
    if (c->hb_min <= 0) c->hb_min = 1;
    if (c->hb_max < c->hb_min) c->hb_max = c->hb_min;
    if (c->hb_default <= 0) c->hb_default = 60;
    if (c->hb_factor_pct < 100) c->hb_factor_pct = 100;
    if (c->auth_timeout <= 0) c->auth_timeout = 10;
    if (c->head_timeout <= 0) c->head_timeout = 10;
    if (c->max_frame < 64) c->max_frame = YYB_FRAME_MAX;
    if (c->max_pending < 4096) c->max_pending = 4096;
    snprintf(gw->host, sizeof gw->host, "%s", c->host ? c->host : "0.0.0.0");
    c->host = gw->host;
    gw->port = c->port;
    if (c->fd_reserve < 0) c->fd_reserve = 0;
    gw->nofile = nofile_now();
    int refused = 0;
    gw->auto_conns =
        gw_conns_auto(gw->nofile, c->fd_reserve, c->workers, &refused);
    c->max_conns = conns_for(gw, c->max_conns);
    if (svc) gw->svc = *svc;
    gw_rate_init(&gw->accept_rate, c->accept_rate, c->accept_burst);
    if (c->max_conns_per_ip > 0 &&
        !(gw->iptab = gw_iptab_new((uint32_t)c->max_conns_per_ip))) {
        free(gw);
        return NULL;
    }
    gw->port_lock = -1;
    pthread_mutex_init(&gw->apps_mu, NULL);
    for (int i = 0; i < GW_REG_SHARDS; i++) {
        pthread_mutex_init(&gw->shards[i].mu, NULL);
        gw->shards[i].mask = 63;
        gw->shards[i].tab = calloc(64, sizeof(gw_reg_t *));
        if (!gw->shards[i].tab) {
            gw_free(gw);
            return NULL;
        }
    }
    gw->nworkers = c->workers;
    gw->workers = calloc((size_t)gw->nworkers, sizeof *gw->workers);
    if (!gw->workers) {
        gw_free(gw);
        return NULL;
    }
    uint32_t per = (uint32_t)refused / (uint32_t)gw->nworkers;
    for (int i = 0; i < gw->nworkers; i++) {
        if (worker_init(gw, &gw->workers[i], i) < 0) {
            gw_free(gw);
            return NULL;
        }
        gw->workers[i].refused_max = per < 1                ? 1
                                     : per > GW_REFUSED_MAX ? GW_REFUSED_MAX
                                                            : per;
    }
    return gw;
}

/*
 * The workers' listeners share the port with SO_REUSEPORT, which would
 * let a second herald of the same user bind it too and take a share of
 * the devices (measured: 10 of 12 landed on the wrong server and were
 * refused with 1007).  So the port is claimed first (net_port_claim: a
 * lock held for the gateway's life, and a bind without SO_REUSEPORT that
 * fails while anyone else listens there): -EADDRINUSE then.  A kernel-
 * chosen port (0) is new by definition.
 */
int gw_start(gw_t *gw) {
    if (gw->started) return -EALREADY;
    if (gw->port != 0 && gw->port_lock < 0) {
        int rc = net_port_claim(gw->host, gw->port, &gw->port_lock);
        if (rc < 0) return rc;
    }
    for (int i = 0; i < gw->nworkers; i++) {
        int rc = worker_listen(gw, &gw->workers[i]);
        if (rc < 0) return rc;
    }
    gw->started = true;
    for (int i = 0; i < gw->nworkers; i++) {
        gw_worker_t *w = &gw->workers[i];
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc) return -rc;
        w->started = true;
    }
    log_info("gateway listening", "host=%s port=%d workers=%d", gw->host,
             gw->port, gw->nworkers);
    return 0;
}

int gw_port(const gw_t *gw) { return gw->port; }

int gw_max_conns(const gw_t *gw) {
    return __atomic_load_n(&gw->cfg.max_conns, __ATOMIC_RELAXED);
}

/* Workers read these three with relaxed atomic loads: a value is never
 * torn, and which of two reloads a worker sees first does not matter. */
void gw_set_limits(gw_t *gw, int max_conns, int hb_min, int hb_max) {
    if (hb_min < 1) hb_min = 1;
    if (hb_max < hb_min) hb_max = hb_min;
    __atomic_store_n(&gw->cfg.max_conns, conns_for(gw, max_conns),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&gw->cfg.hb_min, hb_min, __ATOMIC_RELAXED);
    __atomic_store_n(&gw->cfg.hb_max, hb_max, __ATOMIC_RELAXED);
}

static void stop_workers(gw_t *gw) {
    if (gw->stopped) return;
    gw->stopped = true;
    for (int i = 0; i < gw->nworkers; i++) {
        gw_worker_t *w = &gw->workers[i];
        if (!w->started) continue;
        gw_item_t it = {.kind = GW_I_STOP};
        while (gw_mail(gw, i, &it) < 0) usleep(1000);
        pthread_join(w->thread, NULL);
        w->started = false;
    }
}

void gw_drain(gw_t *gw, int timeout_ms) {
    if (atomic_exchange(&gw->draining, true) || !gw->started) return;
    for (int i = 0; i < gw->nworkers; i++) {
        gw_item_t it = {.kind = GW_I_DRAIN};
        if (gw->workers[i].started) (void)gw_mail(gw, i, &it);
    }
    /* Kicked connections flush and linger; wait until they are gone. */
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (atomic_load(&gw->total_conns) == 0) break;
        usleep(10000);
    }
    stop_workers(gw);
    log_info("gateway drained", "left=%ld", atomic_load(&gw->total_conns));
}

static void worker_free(gw_worker_t *w) {
    if (w->loop) {
        for (uint32_t i = 0; i < w->nslots; i++)
            if (w->conns[i]) {
                if (w->conns[i]->state != GW_S_DEAD)
                    gw_conn_close(w->conns[i], PROTO_ERR_DRAINING);
                gw_conn_free(w->conns[i]);
            }
        lpause_stop(&w->lpause);
        if (w->lio.fd >= 0) {
            (void)ev_del(w->loop, &w->lio);
            close(w->lio.fd);
        }
        if (w->wake.io.fd >= 0) ev_async_close(w->loop, &w->wake);
        ev_loop_free(w->loop);
    }
    for (uint32_t i = 0; i < w->nitems; i++) {
        if (w->items[i].msg) gw_pmsg_unref(w->items[i].msg);
        if (w->items[i].kind == GW_I_MARK) /* exactly one answer each */
            gw_mark_arm(w->gw, NULL, w->items[i].token);
        free(w->items[i].body);
    }
    gw_batch_free(w);
    free(w->items);
    free(w->ip_of);
    free(w->conns);
    free(w->free_slots);
    free(w->dead);
    free(w->rbuf);
    if (w->arena) jce_arena_free(w->arena);
    pthread_mutex_destroy(&w->mu);
}

void gw_free(gw_t *gw) {
    if (!gw) return;
    stop_workers(gw);
    for (int i = 0; gw->workers && i < gw->nworkers; i++)
        worker_free(&gw->workers[i]);
    free(gw->workers);
    for (int i = 0; i < GW_REG_SHARDS; i++) {
        gw_shard_t *s = &gw->shards[i];
        for (uint32_t b = 0; s->tab && b <= s->mask; b++)
            for (gw_reg_t *r = s->tab[b], *nx; r; r = nx) {
                nx = r->next;
                free(r);
            }
        free(s->tab);
        pthread_mutex_destroy(&s->mu);
    }
    for (gw_app_t *a = gw->apps, *nx; a; a = nx) {
        nx = a->next;
        free(a);
    }
    pthread_mutex_destroy(&gw->apps_mu);
    gw_iptab_free(gw->iptab); /* after the workers: they hold entries */
    if (gw->port_lock >= 0) close(gw->port_lock);
    free(gw);
}

/* ---- pushes from any thread ------------------------------------------------ */

static size_t opt_len(const char *s) { return s ? strlen(s) + 1 : 0; }

/* One allocation holding the message and copies of its strings/payload. */
static gw_pmsg_t *pmsg_new(gw_app_t *app, const gw_msg_t *m, int refs) {
    size_t idl = opt_len(m->msg_id), tl = opt_len(m->topic);
    gw_pmsg_t *p = malloc(sizeof *p + idl + tl + m->payload_len + 1);
    if (!p) return NULL;
    atomic_init(&p->ref, refs);
    p->app = app;
    p->m = *m;
    char *tail = (char *)(p + 1);
    p->m.msg_id = idl ? memcpy(tail, m->msg_id, idl) : "";
    tail += idl;
    p->m.topic = tl ? memcpy(tail, m->topic, tl) : NULL;
    tail += tl;
    if (m->payload_len) memcpy(tail, m->payload, m->payload_len);
    p->m.payload = (const uint8_t *)tail;
    return p;
}

int gw_push_device(gw_t *gw, const char *app, const char *device,
                   const gw_msg_t *m) {
    gw_app_t *a = app_find(gw, app);
    gw_item_t it = {.kind = GW_I_PUSH_ONE};
    int worker;
    if (!a || !reg_find(gw, a, device, &it, &worker)) return 0;
    if (!(it.msg = pmsg_new(a, m, 1))) return 0;
    if (gw_mail(gw, worker, &it) < 0) {
        gw_pmsg_unref(it.msg);
        return 0;
    }
    return 1;
}

long gw_push_online(gw_t *gw, const char *app, const gw_msg_t *m) {
    gw_app_t *a = app_find(gw, app);
    if (!a) return 0;
    long n = atomic_load(&a->online);
    if (n <= 0) return 0;
    gw_pmsg_t *p = pmsg_new(a, m, gw->nworkers);
    if (!p) return 0;
    for (int i = 0; i < gw->nworkers; i++) {
        gw_item_t it = {.kind = GW_I_PUSH_APP, .msg = p};
        if (gw_mail(gw, i, &it) < 0) gw_pmsg_unref(p);
    }
    return n;
}

/* A handle as one number: worker (8 bits), slot (24), generation (32). */
uint64_t gw_conn_token(const gw_conn_t *c) {
    return (uint64_t)c->w->idx << 56 | (uint64_t)(c->slot & 0xffffff) << 32 |
           c->gen;
}

void gw_sync_answer(gw_t *gw, uint64_t token, const gw_msg_t *msgs, uint32_t n,
                    bool more) {
    int idx = (int)(token >> 56);
    if (idx >= gw->nworkers) return;
    herald_SyncRsp r;
    herald_SyncRsp_init(&r);
    herald_PushMsg *v = n ? calloc(n, sizeof *v) : NULL;
    for (uint32_t i = 0; v && i < n; i++) {
        herald_PushMsg_init(&v[i]);
        v[i].msgId = jce_str_from(msgs[i].msg_id);
        v[i].seq = msgs[i].seq;
        v[i].payload =
            (jce_bytes_t){msgs[i].payload, (uint32_t)msgs[i].payload_len};
        v[i].timeline = msgs[i].timeline;
        v[i].needAck = msgs[i].need_ack;
        v[i].sentAt = msgs[i].sent_at_ms;
    }
    r.msgs.items = v;
    r.msgs.n = v ? n : 0;
    r.more = more || (n && !v);
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    herald_SyncRsp_encode(&r, &o);
    free(v);
    gw_item_t it = {.kind = GW_I_SYNC,
                    .slot = (uint32_t)(token >> 32) & 0xffffff,
                    .gen = (uint32_t)token};
    if (!o.err) { /* the item owns the bytes */
        it.body = o.buf;
        it.body_len = (uint32_t)o.len;
        o.buf = NULL;
    }
    jce_out_free(&o);
    /* Never dropped for a full mailbox: a waiting request would stall to
     * its timeout. */
    if (gw_mail(gw, idx, &it) < 0) free(it.body);
}

int gw_push_mark(gw_t *gw, const char *app, const char *device,
                 uint64_t token) {
    gw_app_t *a = app_find(gw, app);
    gw_item_t it = {.kind = GW_I_MARK, .token = token};
    int worker;
    if (!gw->svc.drained || !a || !reg_find(gw, a, device, &it, &worker))
        return 0;
    return gw_mail(gw, worker, &it) < 0 ? 0 : 1;
}

int gw_kick_device(gw_t *gw, const char *app, const char *device, int reason) {
    gw_app_t *a = app_find(gw, app);
    gw_item_t it = {.kind = GW_I_KICK, .reason = reason};
    int worker;
    if (!a || !reg_find(gw, a, device, &it, &worker)) return 0;
    return gw_mail(gw, worker, &it) < 0 ? 0 : 1;
}

int gw_revoke_device(gw_t *gw, const char *app, const char *device,
                     int64_t before_s) {
    gw_app_t *a = app_find(gw, app);
    gw_item_t it = {.kind = GW_I_KICK,
                    .reason = PROTO_ERR_TOKEN_REVOKED,
                    .before_s = before_s > 0 ? before_s : 1};
    int worker;
    if (!a || !reg_find(gw, a, device, &it, &worker)) return 0;
    return gw_mail(gw, worker, &it) < 0 ? 0 : 1;
}

void gw_set_token_max_ttl(gw_t *gw, int64_t seconds) {
    if (seconds > 0)
        __atomic_store_n(&gw->cfg.token_max_ttl, seconds, __ATOMIC_RELAXED);
}

void gw_stats(const gw_t *gw, gw_stats_t *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < gw->nworkers; i++) {
        const gw_worker_t *w = &gw->workers[i];
        out->conns += atomic_load_explicit(&w->conns_now, memory_order_relaxed);
        out->authed +=
            atomic_load_explicit(&w->authed_now, memory_order_relaxed);
        out->accepted +=
            atomic_load_explicit(&w->accepted, memory_order_relaxed);
        out->closed += atomic_load_explicit(&w->closed, memory_order_relaxed);
        out->frames_in +=
            atomic_load_explicit(&w->frames_in, memory_order_relaxed);
        out->pushes_written +=
            atomic_load_explicit(&w->pushes_written, memory_order_relaxed);
        out->acks += atomic_load_explicit(&w->acks, memory_order_relaxed);
        out->slow_consumers +=
            atomic_load_explicit(&w->slow_consumers, memory_order_relaxed);
        out->hb_timeouts +=
            atomic_load_explicit(&w->hb_timeouts, memory_order_relaxed);
        out->refused += atomic_load_explicit(&w->refused, memory_order_relaxed);
        out->mailbox_dropped +=
            atomic_load_explicit(&w->mailbox_dropped, memory_order_relaxed);
        out->out_queued +=
            atomic_load_explicit(&w->out_queued, memory_order_relaxed);
        pthread_mutex_lock((pthread_mutex_t *)&w->mu); /* cold path */
        out->mailbox += w->nitems;
        pthread_mutex_unlock((pthread_mutex_t *)&w->mu);
    }
}
