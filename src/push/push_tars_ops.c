/*
 * push_tars_ops.c: what the TARS servant herald.PushServer.PushAPIObj
 * answers: the four PushAPI impls run by the jce2c-generated dispatcher,
 * the answers of calls that waited for the store, and the TARS metrics.
 * No sockets here; push_tars.c owns the connections and the loop thread,
 * and every function of this file runs on that thread.
 *
 * An impl either answers at once (bad key, rate limit, invalid message, an
 * online-only push that needs no commit) or, when push_call_run() hands
 * the push to the store, defers with jce_call_defer(): it returns at once,
 * leaving a tars_call_t in the dispatch context, and the connection keeps
 * reading.  The store's done() posts the call back to the loop (d->reply),
 * where push_tars_answer() encodes the answer with the generated _reply()
 * function, so immediate and later answers are the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "PushAPI.h"
#include "core/clock.h"
#include "ops/metrics_herald.h"
#include "push/push_int.h"

/* ---- filling an answer from a finished push_call_t ------------------------ */

/* Strings are copied into a: an immediate answer is encoded after its
 * push_call_t is freed. */
static jce_str_t arena_str(jce_arena_t *a, const char *s) {
    size_t n = strlen(s);
    char *d = jce_arena_alloc(a, n + 1);
    if (!d) return (jce_str_t){"", 0};
    memcpy(d, s, n + 1);
    return (jce_str_t){d, (uint32_t)n};
}

static void fill_single(const push_call_t *c, jce_arena_t *a,
                        herald_PushSingleDeviceRsp *r) {
    if ((r->ret = c->ret) != PUSH_RET_OK) return;
    r->msgId = arena_str(a, c->msg_id);
    r->state = c->state;
}

static void fill_multi(const push_call_t *c, jce_arena_t *a,
                       herald_PushMultiDeviceRsp *r) {
    if ((r->ret = c->ret) != PUSH_RET_OK) return;
    r->msgId = arena_str(a, c->msg_id);
    r->online = (int32_t)c->online;
    r->stored = (int32_t)c->stored;
    r->duplicates = (int32_t)c->n_dup;
    uint32_t n = c->n_rejected;
    r->rejected.keys = jce_arena_alloc(a, (n + 1) * sizeof(jce_str_t));
    r->rejected.vals = jce_arena_alloc(a, (n + 1) * sizeof(int32_t));
    if (!r->rejected.keys || !r->rejected.vals)
        return; /* out of memory: the list is left empty, the push is done */
    for (uint32_t i = 0; i < n; i++) {
        r->rejected.keys[i] = arena_str(a, c->rejected[i]);
        r->rejected.vals[i] = c->rej_codes[i];
    }
    r->rejected.n = n;
}

static void fill_online(const push_call_t *c, jce_arena_t *a,
                        herald_PushAllOnlineDeviceRsp *r) {
    if ((r->ret = c->ret) != PUSH_RET_OK) return;
    r->msgId = arena_str(a, c->msg_id);
    r->targeted = c->targeted;
}

static void fill_all(const push_call_t *c, jce_arena_t *a,
                     herald_PushAllDeviceRsp *r) {
    if ((r->ret = c->ret) != PUSH_RET_OK) return;
    r->msgId = arena_str(a, c->msg_id);
    r->online = c->online;
}

/* ---- the four impls ------------------------------------------------------- */

/* Authenticates, admits (push_admit) and copies the message; NULL with
 * *ret set. */
static push_call_t *begin(tars_disp_t *d, int op, jce_str_t key,
                          const herald_PushMessage *m, int32_t *ret) {
    char app[64];
    int unknown_device;
    if (push_auth_key(d->ps, key.data, key.len, app, &unknown_device) < 0) {
        *ret = PUSH_RET_UNAUTHORIZED;
        return NULL;
    }
    int adm = push_admit(d->ps, app); /* memory watermark, then the rate */
    if (adm != PUSH_RET_OK) {
        *ret = adm; /* PUSH_RET_OVERLOADED or PUSH_RET_RATE_LIMITED */
        return NULL;
    }
    push_call_t *c = push_call_new(d->ps, op, app);
    if (!c) {
        *ret = PUSH_RET_INTERNAL;
        return NULL;
    }
    push_call_set_msg(c, m->requestId.data, m->requestId.len,
                      m->collapseKey.data, m->collapseKey.len, m->payload.data,
                      m->payload.len, m->ttl, m->needAck);
    /* PushMessage.unknownDevice: 0 the app's setting, 1 store, 2 reject */
    c->unknown_device = m->unknownDevice == 1   ? STORE_UNKNOWN_STORE
                        : m->unknownDevice == 2 ? STORE_UNKNOWN_REJECT
                                                : unknown_device;
    if (c->ret == PUSH_RET_OK && (m->unknownDevice < 0 || m->unknownDevice > 2))
        push_call_set_err(c, PUSH_RET_INVALID,
                          "unknownDevice must be 0, 1 or 2");
    return c;
}

/*
 * Runs c.  true: it waits for the store, the call is deferred and c now
 * belongs to the tars_call_t left in d->deferred.  false: c finished here
 * (its result is in c) and the impl answers at once.
 */
static bool run_or_defer(jce_call_t *call, push_call_t *c) {
    tars_disp_t *d = call->ctx;
    tars_call_t *tc = calloc(1, sizeof *tc);
    if (!tc) {
        push_call_set_err(c, PUSH_RET_INTERNAL, "out of memory");
        return false;
    }
    tc->c = c;
    tc->pt = d->pt;
    tc->conn = d->conn;
    tc->t0 = d->t0;
    c->reply = d->reply;
    c->reply_ctx = tc;
    if (push_call_run(c) != 0) {
        free(tc);
        return false;
    }
    jce_call_defer(call);
    d->deferred = tc;
    return true;
}

/* The end of an impl that answers at once. */
static int32_t answer_now(jce_call_t *call, push_call_t *c, int32_t ret) {
    tars_disp_t *d = call->ctx;
    push_call_free(c);
    return d->app_ret = ret;
}

static int32_t tars_single(jce_call_t *call,
                           const herald_PushSingleDeviceReq *req,
                           herald_PushSingleDeviceRsp *rsp) {
    tars_disp_t *d = call->ctx;
    int32_t ret = 0;
    push_call_t *c = begin(d, PUSH_OP_SINGLE, req->apiKey, &req->msg, &ret);
    if (!c) return d->app_ret = rsp->ret = ret;
    if (c->ret == PUSH_RET_OK)
        push_call_add_device(c, req->deviceId.data, req->deviceId.len);
    if (run_or_defer(call, c)) return 0;
    fill_single(c, call->arena, rsp);
    return answer_now(call, c, rsp->ret);
}

static int32_t tars_multi(jce_call_t *call,
                          const herald_PushMultiDeviceReq *req,
                          herald_PushMultiDeviceRsp *rsp) {
    tars_disp_t *d = call->ctx;
    int32_t ret = 0;
    push_call_t *c = begin(d, PUSH_OP_MULTI, req->apiKey, &req->msg, &ret);
    if (!c) return d->app_ret = rsp->ret = ret;
    for (uint32_t i = 0; c->ret == PUSH_RET_OK && i < req->deviceIds.n; i++)
        push_call_add_device(c, req->deviceIds.items[i].data,
                             req->deviceIds.items[i].len);
    if (run_or_defer(call, c)) return 0;
    fill_multi(c, call->arena, rsp);
    return answer_now(call, c, rsp->ret);
}

static int32_t tars_online(jce_call_t *call,
                           const herald_PushAllOnlineDeviceReq *req,
                           herald_PushAllOnlineDeviceRsp *rsp) {
    tars_disp_t *d = call->ctx;
    int32_t ret = 0;
    push_call_t *c = begin(d, PUSH_OP_ONLINE, req->apiKey, &req->msg, &ret);
    if (!c) return d->app_ret = rsp->ret = ret;
    if (run_or_defer(call, c)) return 0;
    fill_online(c, call->arena, rsp);
    return answer_now(call, c, rsp->ret);
}

static int32_t tars_all(jce_call_t *call, const herald_PushAllDeviceReq *req,
                        herald_PushAllDeviceRsp *rsp) {
    tars_disp_t *d = call->ctx;
    int32_t ret = 0;
    push_call_t *c = begin(d, PUSH_OP_ALL, req->apiKey, &req->msg, &ret);
    if (!c) return d->app_ret = rsp->ret = ret;
    if (run_or_defer(call, c)) return 0;
    fill_all(c, call->arena, rsp);
    return answer_now(call, c, rsp->ret);
}

static const herald_PushAPI_impl impl = {
    .pushSingleDevice = tars_single,
    .pushMultiDevice = tars_multi,
    .pushAllOnlineDevice = tars_online,
    .pushAllDevice = tars_all,
};

int push_tars_register(trpc_server_t *srv) {
    return trpc_server_add(srv, PUSH_TARS_SERVANT, &herald_PushAPI_interface,
                           &impl);
}

/* ---- answers of deferred calls -------------------------------------------- */

int push_tars_answer(tars_call_t *tc, jce_out_t *body, jce_arena_t *a,
                     jce_out_t *frame) {
    const push_call_t *c = tc->c;
    int v = tc->req.version;
    jce_out_reset(body);
    jce_arena_reset(a);
    switch (c->op) {
    case PUSH_OP_SINGLE: {
        herald_PushSingleDeviceRsp r;
        herald_PushSingleDeviceRsp_init(&r);
        fill_single(c, a, &r);
        herald_PushAPI_pushSingleDevice_reply(body, v, r.ret, &r);
        break;
    }
    case PUSH_OP_MULTI: {
        herald_PushMultiDeviceRsp r;
        herald_PushMultiDeviceRsp_init(&r);
        fill_multi(c, a, &r);
        herald_PushAPI_pushMultiDevice_reply(body, v, r.ret, &r);
        break;
    }
    case PUSH_OP_ONLINE: {
        herald_PushAllOnlineDeviceRsp r;
        herald_PushAllOnlineDeviceRsp_init(&r);
        fill_online(c, a, &r);
        herald_PushAPI_pushAllOnlineDevice_reply(body, v, r.ret, &r);
        break;
    }
    default: {
        herald_PushAllDeviceRsp r;
        herald_PushAllDeviceRsp_init(&r);
        fill_all(c, a, &r);
        herald_PushAPI_pushAllDevice_reply(body, v, r.ret, &r);
        break;
    }
    }
    return trpc_reply_encode(&tc->req, JCE_RPC_OK, NULL, body, frame);
}

/* ---- metrics -------------------------------------------------------------- */

static unsigned fn_idx(const char *func) {
    static const char *const names[] = {
        [MH_FN_SINGLE] = "pushSingleDevice",
        [MH_FN_MULTI] = "pushMultiDevice",
        [MH_FN_ALL_ONLINE] = "pushAllOnlineDevice",
        [MH_FN_ALL] = "pushAllDevice",
        [MH_FN_PING] = "tars_ping",
    };
    for (unsigned i = 0; func && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(func, names[i]) == 0) return i;
    return MH_FN_OTHER;
}

void push_tars_count(const char *func, bool ok, uint64_t t0) {
    unsigned fn = fn_idx(func);
    metrics_inc(M_TARS_CALLS, fn, ok ? 0 : 1);
    metrics_observe(M_TARS_LATENCY, fn, 0, clock_mono_us() - t0);
}
