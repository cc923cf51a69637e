/*
 * push_int.h: what the push service's own files share.  Not for callers
 * outside src/push (they use push.h).
 */
#ifndef HERALD_PUSH_INT_H
#define HERALD_PUSH_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "gateway/http.h"
#include "push/push.h"
#include "rpc/trpc.h"
#include "store/store.h"

typedef struct push_app {
    char *name;
    uint8_t *secret;
    size_t secret_len;
} push_app_t;

typedef struct push_key {
    char *key;
    size_t len;
    int app; /* index into apps */
} push_key_t;

typedef struct push_http push_http_t;
typedef struct push_tars push_tars_t;
typedef struct push_sync push_sync_t;
typedef struct push_auth push_auth_t;
typedef struct push_revoke push_revoke_t;
typedef struct push_call push_call_t;
/* Called once when a pending call completes, on the store's writer thread:
 * must only hand the call to its transport's thread. */
typedef void (*push_reply_fn)(push_call_t *c);

struct push_service {
    push_config_t cfg;
    char *host;
    char *tars_host;
    pthread_rwlock_t reg_mu; /* apps, keys (push.c) */
    push_app_t *apps;
    int napps;
    push_key_t *keys;
    int nkeys;
    gw_service_t gwi;
    push_sink_t sink;
    bool started;
    const char *start_failed; /* "push API" or "TARS": which one */
    int http_port;
    push_http_t *http;
    push_tars_t *tars;
    int tars_port;
    push_sync_t *sync;     /* device sync, acks, status flush (store only) */
    push_auth_t *auth;     /* store-backed keys, rate buckets, online table */
    push_revoke_t *revoke; /* device token revocations (push_revoke.c) */
    atomic_long inflight;  /* push calls waiting for the store */
    atomic_long n_online, n_online_ev, n_offline_ev, n_acks;
    atomic_long n_http, n_http_err, n_pushes, n_delivered;
};

int push_gw_app_secret(void *ctx, const char *app, uint8_t *out, size_t cap);
void push_gw_online(void *ctx, const gw_device_t *d);
void push_gw_offline(void *ctx, const gw_device_t *d, int reason);
void push_gw_ack(void *ctx, const gw_device_t *d, int64_t inbox_seq,
                 int64_t broadcast_seq);
void push_gw_sync(void *ctx, const gw_device_t *d, int64_t inbox_seq,
                  int64_t broadcast_seq);
void push_gw_drained(void *ctx, uint64_t token, bool ok);
void push_gw_acked(void *ctx, const char *app, const char *msg_id);
int push_gw_fetch(void *ctx, const gw_device_t *d, int64_t inbox_seq,
                  int64_t broadcast_seq, uint32_t limit, uint64_t token);
int64_t push_gw_revoked(void *ctx, const char *app, const char *dev);

/* push_api.c: one API request, no sockets.  resp->body is a malloc'd JSON
 * text (free with push_api_resp_free). */
typedef struct push_api_resp {
    int status;
    bool allow_post;   /* 405: add "Allow: POST" */
    bool allow_get;    /* 405: add "Allow: GET, HEAD" */
    bool allow_delete; /* 405: add "Allow: DELETE" */
    char *body;
    size_t body_len;
    unsigned route1; /* metrics route (enum mh_route) + 1; 0 = other */
} push_api_resp_t;

int push_api_handle(push_service_t *ps, const http_req_t *r, const char *buf,
                    const char *body, size_t body_len, push_api_resp_t *resp);
/* Like push_api_handle, but a push that must wait for the store is started
 * with reply/ctx and 0 is returned; push_api_finish() then makes the
 * answer from the completed call (and frees it). */
int push_api_handle_async(push_service_t *ps, const http_req_t *r,
                          const char *buf, const char *body, size_t body_len,
                          push_api_resp_t *resp, push_reply_fn reply,
                          void *ctx);
void push_api_finish(push_call_t *c, push_api_resp_t *resp);
/* An error answer {"error":{"code","message"}}; returns status. */
int push_api_error(push_api_resp_t *resp, int status, const char *code,
                   const char *message);
void push_api_resp_free(push_api_resp_t *resp);

#define PUSH_MSG_ID_LEN 24
void push_msg_id(char out[PUSH_MSG_ID_LEN + 1]);

/* ---- push_ops.c: the four operations, one path for HTTP and TARS ---- */

enum push_op { /* == enum store_kind */
               PUSH_OP_SINGLE = 1,
               PUSH_OP_MULTI = 2,
               PUSH_OP_ONLINE = 3,
               PUSH_OP_ALL = 4,
               /* Not a push: DELETE /v1/devices/{id}/tokens (push_revoke.c), one
     * device in devices[0]; never handed to the store as a message. */
               PUSH_OP_REVOKE = 5,
};

/* PushRet of protocol/PushAPI.jce (kept here so push needs no gen header) */
enum push_ret {
    PUSH_RET_OK = 0,
    PUSH_RET_INVALID = 1,
    PUSH_RET_UNAUTHORIZED = 2,
    PUSH_RET_RATE_LIMITED = 3,
    PUSH_RET_PAYLOAD_TOO_LARGE = 4,
    PUSH_RET_TOO_MANY_DEVICES = 5,
    PUSH_RET_TTL = 6,
    PUSH_RET_UNKNOWN_DEVICE = 7,
    PUSH_RET_OVERLOADED = 8,
    PUSH_RET_STORE = 9,
    PUSH_RET_INTERNAL = 10,
};

/* MsgState of PushAPI.jce */
enum {
    PUSH_ST_ACCEPTED = 0,
    PUSH_ST_STORED = 1,
    PUSH_ST_WRITTEN = 3,
    PUSH_ST_DROPPED = 6
};

/* One push operation from validation to answer.  Everything it points to
 * is owned by it (copied in), so transports can drop their buffers. */
struct push_call {
    push_service_t *ps;
    int op;
    char app[64];
    char msg_id[64];
    char *request_id;
    char *collapse_key;
    uint8_t *payload;
    size_t payload_len;
    int64_t ttl;
    bool need_ack;
    int unknown_device; /* enum store_unknown_device, for this call */
    char **devices;
    uint32_t n_devices, cap_devices;
    char **rejected; /* refused ids of a multi push */
    int *rej_codes;  /* their PushRet codes, beside them */
    uint32_t n_rejected, cap_rejected;
    uint32_t n_dup; /* repeats dropped (counted in the answer) */
    int64_t *seqs;
    store_req_t req;
    /* result */
    int ret;       /* enum push_ret */
    char err[160]; /* message when ret != 0 */
    /* PUSH_RET_STORE because the store cannot write now (a full disk, a
     * writer that did not answer): nothing was stored, a retry later is
     * safe (HTTP 503 store_unavailable rather than 500). */
    bool store_unavailable;
    int state; /* single: PUSH_ST_* */
    bool duplicate;
    long online, stored, targeted;
    int64_t revoked_before; /* PUSH_OP_REVOKE: the moment in force */
    push_reply_fn reply;
    void *reply_ctx;
    push_call_t *next; /* transport mailboxes */
};

push_call_t *push_call_new(push_service_t *ps, int op, const char *app);
void push_call_free(push_call_t *c);
/* Copies the message fields in and checks them (ttl, payload size, lengths);
 * PUSH_RET_OK or a code with c->err set. */
int push_call_set_msg(push_call_t *c, const char *request_id, size_t rid_len,
                      const char *collapse_key, size_t ck_len,
                      const uint8_t *payload, size_t payload_len, int64_t ttl,
                      bool need_ack);
/* Adds a target.  An invalid id fails a single push (PUSH_RET_INVALID) and
 * is recorded in c->rejected for a multi push; over PUSH_MAX_DEVICES
 * (counting repeats) gives PUSH_RET_TOO_MANY_DEVICES.  A multi push's
 * repeated ids are dropped by push_call_run (c->n_dup counts them). */
int push_call_add_device(push_call_t *c, const char *id, size_t len);
/* Runs the call.  Returns 1 when it completed at once (result in c; reply
 * is not called) or 0 when it waits for the store: c->reply(c) follows
 * exactly once, from another thread. */
int push_call_run(push_call_t *c);
void push_call_set_err(push_call_t *c, int ret, const char *msg);

#define PUSH_MAX_DEVICES 10000

/* A client address's share of a connection cap: `per_ip`, or half of
 * `max` when 0 (so one address can never take the whole cap from the
 * others), at least 1. */
static inline int push_ip_share(int max, int per_ip) {
    int n = per_ip > 0 ? per_ip : max / 2;
    return n < 1 ? 1 : n;
}

/* ---- push_auth.c ---- */
int push_auth_new(push_service_t *ps);
void push_auth_free(push_service_t *ps);
/* The app owning key (copied into app, 64 bytes) and its unknown-device
 * policy (enum store_unknown_device; may be NULL); 0 or -1. */
int push_auth_key(push_service_t *ps, const char *key, size_t len, char app[64],
                  int *unknown_device);
/* Whether app/dev ever connected (online here, or a committed sighting):
 * 0 with *known set, or a store error. */
/* A device logged in (gateway worker): known for unknownDevice from now. */
void push_auth_saw(push_service_t *ps, const char *app, const char *dev);
int push_auth_known(push_service_t *ps, const char *app, const char *dev,
                    bool *known);
/* Takes a token of the app's bucket; false when empty. */
bool push_rate_take(push_service_t *ps, const char *app);
/* Whether a push of app may start now: PUSH_RET_OK, PUSH_RET_OVERLOADED
 * (memory watermark crossed) or PUSH_RET_RATE_LIMITED (takes a token when
 * not refused); a refusal is counted in herald_refused_total. */
int push_admit(push_service_t *ps, const char *app);
/* Online table (gateway callbacks).  A connection (on) also holds the
 * device's live inbox pushes for its connect-time sync, when there is a
 * store; returns the entry's generation for push_sync_online (0: none). */
uint64_t push_online_set(push_service_t *ps, const gw_device_t *d, bool on);
/* Holds live pushes for one more sync of an online device (a SYNC
 * command); its generation, or 0 when it is not online. */
uint64_t push_online_hold(push_service_t *ps, const char *app, const char *dev);
bool push_online_get(push_service_t *ps, const char *app, const char *dev,
                     int *transport, int64_t *since_ms);
/* Whether app/dev's connect-time sync still holds its live pushes (tests
 * wait on it). */
bool push_online_syncing(push_service_t *ps, const char *app, const char *dev);
/* Live routing of an inbox message (held while the device is synced). */
int push_route_device(push_service_t *ps, const char *app, const char *dev,
                      const gw_msg_t *m);
/* Runs last(ctx) (the sync's final fetch, returning the last inbox seq it
 * has sent, or -1) and ends one hold of generation gen, atomically. */
void push_sync_done(push_service_t *ps, const char *app, const char *dev,
                    uint64_t gen, int64_t (*last)(void *ctx), void *ctx);
/* Reads through a reader shared under a mutex (HTTP/TARS threads). */
/* The gateway's secret lookup for apps that live only in the store. */
int push_auth_secret(push_service_t *ps, const char *app, uint8_t *out,
                     size_t cap);
int push_auth_status(push_service_t *ps, const char *msg_id,
                     store_status_t *out);
int push_auth_device(push_service_t *ps, const char *app, const char *dev,
                     store_device_info_t *out);

/* ---- push_revoke.c ---- */
/* Loads the revocations in force and starts the thread; 0 or -errno. */
int push_revoke_start(push_service_t *ps);
/* Runs the queued revocations, then stops the thread. */
void push_revoke_stop(push_service_t *ps);
void push_revoke_free(push_service_t *ps);
/* The device's revocation moment (Unix s), 0 = none; from memory. */
int64_t push_revoked_before(push_service_t *ps, const char *app,
                            const char *dev);
/* Queues a PUSH_OP_REVOKE call: 0 (c->reply follows, from the revoke
 * thread) or 1 (completed at once, with an error in c). */
int push_revoke_call(push_call_t *c);

/* ---- push_sync.c ---- */
int push_sync_start(push_service_t *ps);
void push_sync_stop(push_service_t *ps);
void push_sync_free(push_service_t *ps);
/* Queues a sync of d from its cursors; gen: the hold it ends (0: none). */
void push_sync_online(push_service_t *ps, const gw_device_t *d, uint64_t gen);
/* The SYNC of a short-lived request (gw_service_t.fetch): registers the
 * device like a connect, then answers sink.sync_answer(token, ...) with
 * at most limit stored messages after the cursors.  0, or < 0 when it
 * cannot be queued (nothing is answered then). */
int push_sync_fetch(push_service_t *ps, const gw_device_t *d, uint32_t limit,
                    uint64_t token);
/* The answer to a page's mark (gw_service_t.drained): the parked sync
 * with that token goes on (ok) or ends (!ok).  Any thread. */
void push_sync_resume(push_service_t *ps, uint64_t token, bool ok);
void push_sync_ack(push_service_t *ps, const gw_device_t *d, int64_t iseq,
                   int64_t bseq);
/* Adds to a message's routed/written counts, flushed every 100 ms. */
void push_status_add(push_service_t *ps, const char *msg_id, int event,
                     long count);

/* ---- push_tars.c: TARS connections on one loop thread ---- */
int push_tars_start(push_service_t *ps);
void push_tars_stop(push_service_t *ps);

/* ---- push_tars_ops.c: the PushAPI servant (loop thread only) ---- */
#define PUSH_TARS_SERVANT "herald.PushServer.PushAPIObj"

/* A call whose answer waits for the store. */
typedef struct tars_call {
    push_call_t *c; /* owned; c->reply_ctx points back here */
    push_tars_t *pt;
    void *conn;     /* the connection to answer on (push_tars.c) */
    trpc_req_t req; /* set once the dispatcher returns */
    uint64_t t0;    /* clock_mono_us() when its frame was taken */
    struct tars_call *next;
} tars_call_t;

/* The impls' ctx for one dispatched frame. */
typedef struct tars_disp {
    push_service_t *ps;
    push_tars_t *pt;
    void *conn;
    push_reply_fn reply; /* hands a finished call to the loop thread */
    uint64_t t0;
    int32_t app_ret;       /* PushRet of an answer made at once */
    tars_call_t *deferred; /* set when the impl deferred its answer */
} tars_disp_t;

/* Registers the servant (PUSH_TARS_SERVANT) on srv. */
int push_tars_register(trpc_server_t *srv);
/* The answer frame of a finished deferred call into frame (body and a are
 * scratch).  0 or a trpc error. */
int push_tars_answer(tars_call_t *tc, jce_out_t *body, jce_arena_t *a,
                     jce_out_t *frame);
/* herald_tars_calls_total and the latency histogram; func as trpc_req_t
 * names it (NULL = unknown). */
void push_tars_count(const char *func, bool ok, uint64_t t0);

/* push_http.c: binds, starts the thread / stops it and frees. */
int push_http_start(push_service_t *ps);
void push_http_stop(push_service_t *ps);

#endif
