/*
 * push_ops.c: the four PushAPI operations, shared by HTTP and TARS.
 *
 * A transport validates its own syntax, builds a push_call_t (copying what
 * it needs) and runs it.  With a store, every call becomes one store
 * request (status record + idempotency; inbox or broadcast append when the
 * ttl is > 0); the answer and the hand-off to the gateway happen in the
 * request's done callback, i.e. only after the write is durable, and the
 * message is routed with the seq the store assigned.  Without a store the
 * call completes at once, online-only.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/token.h"
#include "ops/metrics_herald.h"
#include "push/push_int.h"

#define ID_FIELD_MAX 128

push_call_t *push_call_new(push_service_t *ps, int op, const char *app) {
    push_call_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->ps = ps;
    c->op = op;
    c->ttl = 86400;
    c->need_ack = true;
    snprintf(c->app, sizeof c->app, "%s", app);
    return c;
}

static void free_list(char **v, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

void push_call_free(push_call_t *c) {
    if (!c) return;
    free(c->request_id);
    free(c->collapse_key);
    free(c->payload);
    free_list(c->devices, c->n_devices);
    free_list(c->rejected, c->n_rejected);
    free(c->rej_codes);
    free(c->seqs);
    free(c);
}

void push_call_set_err(push_call_t *c, int ret, const char *msg) {
    c->ret = ret;
    snprintf(c->err, sizeof c->err, "%s", msg);
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

int push_call_set_msg(push_call_t *c, const char *request_id, size_t rid_len,
                      const char *collapse_key, size_t ck_len,
                      const uint8_t *payload, size_t payload_len, int64_t ttl,
                      bool need_ack) {
    const push_config_t *cfg = &c->ps->cfg;
    char msg[128];
    if (ttl < 0 || ttl > cfg->max_ttl) {
        snprintf(msg, sizeof msg, "ttl must be 0..%d seconds", cfg->max_ttl);
        push_call_set_err(c, PUSH_RET_TTL, msg);
        return c->ret;
    }
    /* A reload may change it (push_service_set_limits). */
    uint32_t max_payload = __atomic_load_n(&cfg->max_payload, __ATOMIC_RELAXED);
    if (payload_len > max_payload) {
        snprintf(msg, sizeof msg, "payload is %zu bytes, the limit is %u",
                 payload_len, max_payload);
        push_call_set_err(c, PUSH_RET_PAYLOAD_TOO_LARGE, msg);
        return c->ret;
    }
    if (rid_len > ID_FIELD_MAX || ck_len > ID_FIELD_MAX) {
        push_call_set_err(c, PUSH_RET_INVALID,
                          "requestId and collapseKey are at most 128 bytes");
        return c->ret;
    }
    c->ttl = ttl;
    c->need_ack = need_ack;
    if ((rid_len && !(c->request_id = dup_n(request_id, rid_len))) ||
        (ck_len && !(c->collapse_key = dup_n(collapse_key, ck_len))) ||
        (payload_len && !(c->payload = malloc(payload_len)))) {
        push_call_set_err(c, PUSH_RET_INTERNAL, "out of memory");
        return c->ret;
    }
    if (payload_len) memcpy(c->payload, payload, payload_len);
    c->payload_len = payload_len;
    return PUSH_RET_OK;
}

static int push_str(char ***v, uint32_t *n, uint32_t *cap, const char *s,
                    size_t len) {
    if (*n == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 4;
        char **nv = realloc(*v, nc * sizeof *nv);
        if (!nv) return -1;
        *v = nv;
        *cap = nc;
    }
    char *d = dup_n(s, len);
    if (!d) return -1;
    (*v)[(*n)++] = d;
    return 0;
}

/* A rejected target and its PushRet code (c->rej_codes beside it). */
static int reject(push_call_t *c, const char *id, size_t len, int code) {
    if (c->n_rejected == c->cap_rejected) {
        uint32_t nc = c->cap_rejected ? c->cap_rejected * 2 : 4;
        int *ncodes = realloc(c->rej_codes, nc * sizeof *ncodes);
        if (!ncodes) return -1;
        c->rej_codes = ncodes;
    }
    /* push_str grows the list by the same rule as the codes above. */
    if (push_str(&c->rejected, &c->n_rejected, &c->cap_rejected, id, len) < 0)
        return -1;
    c->rej_codes[c->n_rejected - 1] = code;
    return 0;
}

int push_call_add_device(push_call_t *c, const char *id, size_t len) {
    /* Counted as given, repeats included (push_call_run drops them only
     * later): the limit bounds the request itself. */
    if (c->n_devices + c->n_rejected >= PUSH_MAX_DEVICES) {
        push_call_set_err(c, PUSH_RET_TOO_MANY_DEVICES,
                          "at most 10000 deviceIds per call");
        return c->ret;
    }
    bool ok = token_id_valid(id, len);
    if (!ok && c->op == PUSH_OP_SINGLE) {
        push_call_set_err(c, PUSH_RET_INVALID,
                          "deviceId must be 1..128 characters of "
                          "[A-Za-z0-9_:@-]");
        return c->ret;
    }
    int rc = ok ? push_str(&c->devices, &c->n_devices, &c->cap_devices, id, len)
                : reject(c, id, len, PUSH_RET_INVALID);
    if (rc < 0) {
        push_call_set_err(c, PUSH_RET_INTERNAL, "out of memory");
        return c->ret;
    }
    return PUSH_RET_OK;
}

/* ---- repeated targets ---------------------------------------------------- */

typedef struct dup_ent {
    const char *s;
    uint32_t i;
} dup_ent_t;

/* By name, then by position: the first of equal names sorts first. */
static int dup_cmp(const void *a, const void *b) {
    const dup_ent_t *x = a, *y = b;
    int r = strcmp(x->s, y->s);
    return r ? r : (x->i > y->i) - (x->i < y->i);
}

/*
 * Drops every repeat of a name from v[0..*n) (and the codes beside it),
 * keeping the first in its place and the order of the rest; returns how
 * many went, or -1 (memory).  Sorting, not hashing: the names are the
 * caller's choice, and a sort stays n log n whatever they are.
 */
static long drop_repeats(char **v, int *codes, uint32_t *n) {
    if (*n < 2) return 0;
    dup_ent_t *e = malloc(*n * sizeof *e);
    bool *dup = calloc(*n, sizeof *dup);
    if (!e || !dup) {
        free(e);
        free(dup);
        return -1;
    }
    for (uint32_t i = 0; i < *n; i++) e[i] = (dup_ent_t){v[i], i};
    qsort(e, *n, sizeof *e, dup_cmp);
    for (uint32_t i = 1; i < *n; i++)
        if (!strcmp(e[i].s, e[i - 1].s)) dup[e[i].i] = true;
    uint32_t k = 0;
    for (uint32_t i = 0; i < *n; i++) {
        if (dup[i]) {
            free(v[i]);
            continue;
        }
        v[k] = v[i];
        if (codes) codes[k] = codes[i];
        k++;
    }
    long gone = (long)(*n - k);
    *n = k;
    free(e);
    free(dup);
    return gone;
}

/* A multi push naming a device twice must not store and deliver it twice
 * (["dup" x 10000] was 10,000 inbox rows and deliveries of one msgId). */
static int dedupe(push_call_t *c) {
    long a = drop_repeats(c->devices, NULL, &c->n_devices);
    long b =
        a < 0 ? -1 : drop_repeats(c->rejected, c->rej_codes, &c->n_rejected);
    if (b < 0) {
        push_call_set_err(c, PUSH_RET_INTERNAL, "out of memory");
        return -1;
    }
    c->n_dup += (uint32_t)(a + b);
    return 0;
}

/* ---- devices that never connected ---------------------------------------- */

/*
 * With unknownDevice = reject (the app's setting or the request's), a
 * target that never connected is refused before anything is stored: a
 * typo'd id would otherwise sit in a fresh inbox for the whole ttl.  A
 * single push fails with PUSH_ERR_UNKNOWN_DEVICE; a multi push lists the
 * id in rejected with that code and goes on with the rest.  Returns how
 * many were refused, or -1 with c's error set.
 */
static long drop_unknown(push_call_t *c) {
    if (c->unknown_device != STORE_UNKNOWN_REJECT ||
        (c->op != PUSH_OP_SINGLE && c->op != PUSH_OP_MULTI))
        return 0;
    uint32_t k = 0, i;
    long refused = 0;
    for (i = 0; i < c->n_devices; i++) {
        bool known;
        int rc = push_auth_known(c->ps, c->app, c->devices[i], &known);
        if (rc < 0) {
            push_call_set_err(c, PUSH_RET_STORE, herald_strerror(rc));
            break;
        }
        if (known) {
            c->devices[k++] = c->devices[i];
            continue;
        }
        refused++;
        if (c->op == PUSH_OP_SINGLE) {
            push_call_set_err(c, PUSH_RET_UNKNOWN_DEVICE,
                              "device never connected (unknownDevice is "
                              "reject)");
            break;
        }
        if (reject(c, c->devices[i], strlen(c->devices[i]),
                   PUSH_RET_UNKNOWN_DEVICE) < 0) {
            push_call_set_err(c, PUSH_RET_INTERNAL, "out of memory");
            break;
        }
        free(c->devices[i]);
    }
    /* Stopped early: the ids not looked at yet close the gap, so every
     * string left is in the list once (and freed with the call). */
    for (; i < c->n_devices; i++) c->devices[k++] = c->devices[i];
    c->n_devices = k;
    metrics_add(M_UNKNOWN_DEVICES, 0, 0, (uint64_t)refused);
    return c->ret != PUSH_RET_OK ? -1 : refused;
}

/* ---- delivery ------------------------------------------------------------ */

static void gw_msg_of(const push_call_t *c, int timeline, int64_t seq,
                      gw_msg_t *g) {
    memset(g, 0, sizeof *g);
    g->msg_id = c->msg_id;
    g->seq = seq;
    g->timeline = timeline;
    g->payload = c->payload;
    g->payload_len = c->payload_len;
    g->need_ack = c->need_ack;
    /* Accepted at: the delivery latency metrics count from there. */
    g->sent_at_ms = c->req.msg.created_ms > 0 ? c->req.msg.created_ms
                                              : (int64_t)clock_wall_ms();
}

static bool stored_kind(const push_call_t *c) {
    return c->ttl > 0 && c->ps->cfg.store &&
           (c->op == PUSH_OP_SINGLE || c->op == PUSH_OP_MULTI ||
            c->op == PUSH_OP_ALL);
}

/* Hands the (stored, if it has a ttl) message to the gateway and fills the
 * result.  Runs on the writer thread after the commit, or inline without a
 * store; only enqueues. */
/* d: the store's done() report when the push was stored (its counts are
 * held with it there), NULL elsewhere (they go through the window). */
static void deliver(push_call_t *c, store_done_t *d) {
    push_service_t *ps = c->ps;
    const push_sink_t *s = &ps->sink;
    bool stored = stored_kind(c);
    gw_msg_t g;
    long on = 0;
    if (c->op == PUSH_OP_SINGLE || c->op == PUSH_OP_MULTI) {
        for (uint32_t i = 0; i < c->n_devices; i++) {
            gw_msg_of(c, stored ? 0 : 2, stored ? c->seqs[i] : 0, &g);
            int r = stored ? push_route_device(ps, c->app, c->devices[i], &g)
                           : s->device(s->ctx, c->app, c->devices[i], &g);
            if (r > 0) on++;
        }
        c->online = on;
        c->stored = stored ? (long)c->n_devices : 0;
        c->state = on       ? PUSH_ST_WRITTEN
                   : stored ? PUSH_ST_STORED
                            : PUSH_ST_DROPPED;
    } else {
        gw_msg_of(c, stored ? 1 : 2, stored ? c->req.seq : 0, &g);
        on = s->online(s->ctx, c->app, &g);
        c->online = c->targeted = on;
    }
    atomic_fetch_add_explicit(&ps->n_pushes, 1, memory_order_relaxed);
    if (on > 0) {
        atomic_fetch_add_explicit(&ps->n_delivered, on, memory_order_relaxed);
        if (d) {
            d->routed = d->written = on;
        } else if (ps->cfg.store) {
            push_status_add(ps, c->msg_id, STORE_EV_ROUTED, on);
            push_status_add(ps, c->msg_id, STORE_EV_WRITTEN, on);
        }
    }
}

/* A push the store did not take is answered as not stored: the store
 * never delivers a push whose write failed (store_writer.c hot_durable). */
static void store_failed(push_call_t *c, int rc) {
    static log_limit_t lim = LOG_LIMIT_INIT(1000);
    log_limited(&lim, LOG_LEVEL_WARN, "push store failed", "msg=%s err=\"%s\"",
                c->msg_id, herald_strerror(rc));
    c->store_unavailable = rc == STORE_E_NOSPACE || rc == STORE_E_TIMEOUT;
    char msg[96];
    snprintf(msg, sizeof msg, "%s: the push was not stored%s",
             herald_strerror(rc), c->store_unavailable ? "; retry later" : "");
    push_call_set_err(c, PUSH_RET_STORE, msg);
}

static void on_stored(store_req_t *req, store_done_t *d) {
    push_call_t *c = req->data;
    push_service_t *ps = c->ps;
    int rc = d->rc;
    if (rc < 0) {
        store_failed(c, rc);
    } else if (req->duplicate) {
        c->duplicate = true;
        snprintf(c->msg_id, sizeof c->msg_id, "%s", req->dup_msg_id);
        c->state = PUSH_ST_ACCEPTED;
    } else {
        deliver(c, d);
    }
    push_reply_fn reply = c->reply;
    reply(c);
    atomic_fetch_sub_explicit(&ps->inflight, 1, memory_order_release);
}

static int store_op_of(const push_call_t *c) {
    if (!stored_kind(c)) return STORE_OP_ACCEPT;
    return c->op == PUSH_OP_ALL ? STORE_OP_BCAST_APPEND : STORE_OP_INBOX_APPEND;
}

static void free_self(store_req_t *req, store_done_t *d) {
    (void)d; /* a status record is best effort; the push is already out */
    free(req->data);
}

static char *put_str(char **at, const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = memcpy(*at, s, n);
    *at += n;
    return d;
}

/*
 * An online-only push without a requestId has nothing to deduplicate and
 * nothing a device waits for in the store, so it is routed first and its
 * status record written after, fire-and-forget, from a heap copy of the
 * request.  Waiting for that commit before routing put a store round trip
 * (~3 ms p99) into every online push's delivery latency.  The record is
 * queued before the routed/written counts flush (every 100 ms, FIFO), so
 * they always find it.  Returns 1: answered now.
 */
/* An online-only push's status record: after the delivery, so it can say
 * how many devices were targeted (all-online: those connected then) and
 * how many targets it never reached (offline: dropped, as its answer's
 * state says). */
static int accept_after(push_call_t *c, const store_req_t *r) {
    deliver(c, NULL);
    long dropped = c->op == PUSH_OP_SINGLE || c->op == PUSH_OP_MULTI
                       ? (long)c->n_devices - c->online
                       : 0;
    if (dropped > 0)
        push_status_add(c->ps, c->msg_id, STORE_EV_DROPPED, dropped);
    const store_msg_t *m = &r->msg;
    size_t n = sizeof *r + m->payload_len + strlen(m->app) + 1 +
               strlen(m->msg_id) + 1 +
               (m->collapse_key ? strlen(m->collapse_key) + 1 : 0);
    store_req_t *q = malloc(n);
    if (!q) return 1; /* no status record; the push itself went out */
    *q = *r;
    char *at = (char *)(q + 1);
    if (m->payload_len) memcpy(at, m->payload, m->payload_len);
    q->msg.payload = m->payload_len ? (const uint8_t *)at : NULL;
    at += m->payload_len;
    q->msg.app = put_str(&at, m->app);
    q->msg.msg_id = put_str(&at, m->msg_id);
    q->msg.collapse_key = put_str(&at, m->collapse_key);
    q->msg.request_id = NULL;
    q->devices = NULL; /* ACCEPT only counts them (targets) */
    if (c->op == PUSH_OP_ONLINE || c->op == PUSH_OP_ALL) /* ttl 0: online */
        q->n_devices = (uint32_t)c->targeted;
    q->done = free_self;
    q->data = q;
    if (store_submit(c->ps->cfg.store, q) < 0) {
        metrics_inc(M_QUEUE_DROPPED, MH_DROP_STORE, 0);
        free(q);
    }
    return 1;
}

int push_call_run(push_call_t *c) {
    push_service_t *ps = c->ps;
    if (c->ret != PUSH_RET_OK) return 1;
    if (c->op == PUSH_OP_MULTI && dedupe(c) < 0) return 1;
    long unknown = drop_unknown(c);
    if (unknown < 0) return 1;
    if ((c->op == PUSH_OP_SINGLE || c->op == PUSH_OP_MULTI) &&
        c->n_devices == 0) {
        if (unknown > 0)
            push_call_set_err(c, PUSH_RET_UNKNOWN_DEVICE,
                              "no deviceId ever connected (unknownDevice "
                              "is reject)");
        else
            push_call_set_err(c, PUSH_RET_INVALID,
                              c->op == PUSH_OP_SINGLE ? "deviceId is missing"
                                                      : "no valid deviceId");
        return 1;
    }
    push_msg_id(c->msg_id);
    metrics_inc(M_PUSHES, (unsigned)(c->op - PUSH_OP_SINGLE), 0);
    if (!ps->cfg.store) {
        deliver(c, NULL);
        return 1;
    }
    store_req_t *r = &c->req;
    memset(r, 0, sizeof *r);
    r->op = store_op_of(c);
    r->kind = c->op;
    r->msg.app = c->app;
    r->msg.msg_id = c->msg_id;
    r->msg.request_id = c->request_id;
    r->msg.payload = c->payload;
    r->msg.payload_len = c->payload_len;
    r->msg.ttl = (int32_t)c->ttl;
    r->msg.collapse_key = c->collapse_key;
    r->msg.need_ack = c->need_ack;
    r->msg.created_ms = (int64_t)clock_wall_ms();
    r->devices = (const char *const *)c->devices;
    r->n_devices = c->n_devices;
    if (r->op == STORE_OP_INBOX_APPEND) {
        c->seqs = calloc(c->n_devices, sizeof *c->seqs);
        if (!c->seqs) {
            push_call_set_err(c, PUSH_RET_INTERNAL, "out of memory");
            return 1;
        }
        r->seqs = c->seqs;
    }
    if (!stored_kind(c) && (!c->request_id || !c->request_id[0]))
        return accept_after(c, r);
    r->done = on_stored;
    r->data = c;
    atomic_fetch_add_explicit(&ps->inflight, 1, memory_order_acquire);
    int rc = store_submit(ps->cfg.store, r);
    if (rc < 0) {
        atomic_fetch_sub_explicit(&ps->inflight, 1, memory_order_release);
        if (rc == STORE_E_FULL) {
            metrics_inc(M_REFUSED, MH_REF_PUSH, MH_REF_QUEUE_FULL);
            push_call_set_err(c, PUSH_RET_OVERLOADED, herald_strerror(rc));
        } else {
            store_failed(c, rc);
        }
        return 1;
    }
    return 0;
}
