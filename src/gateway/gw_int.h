/*
 * gw_int: the gateway's internals, shared by gw.c (workers, registry,
 * mailboxes, life cycle), gw_conn.c (a connection's reads, framing and
 * state machine), gw_out.c (its output queue), gw_http.c (an HTTP head:
 * WebSocket upgrade, POST /v1/yyb), gw_cmd.c (device commands over raw TCP
 * and WebSocket), gw_frame.c (the frames written, per transport),
 * gw_admit.c and gw_batch.c.  Nothing here is public; the public surface
 * is gw.h.
 *
 * Ownership and threads: a connection belongs to one worker and is only
 * touched on that worker's thread.  Other threads reach it by a handle
 * (worker, slot, generation) through the worker's mailbox, and the worker
 * checks the handle before using it, so a connection that closed meanwhile
 * is simply not found.
 */
#ifndef HERALD_GW_INT_H
#define HERALD_GW_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ev/ev.h"
#include "ev/lpause.h"
#include "gateway/gw.h"
#include "gateway/gw_limit.h"
#include "gateway/http.h"
#include "gateway/ws.h"
#include "gateway/yyb.h"
#include "jce/jce.h"

struct json_t; /* <jansson.h>, for gw_json_frame */

#define GW_READ_CHUNK (64u * 1024) /* per-worker scratch for read() */
#define GW_ACCEPT_BATCH 64
#define GW_MAX_TOPICS 64
#define GW_TOPIC_MAX 128
#define GW_LINGER_MS 2000 /* lingering close after a kick */
#define GW_REG_SHARDS 64
#define GW_BATCH 256         /* io_uring sends per submission */
#define GW_MAILBOX_MAX 65536 /* pushes waiting per worker, at most */
#define GW_REFUSE_MS 1000    /* a refused connection's whole life */
#define GW_REFUSED_MAX \
    1024 /* refused ones pending per worker (less
                                    if descriptors are few, gw_conns_auto);
                                    past it the next are closed at accept */

/* Why a connection is refused (gw_conn_t.refuse; 0 = admitted).  The
 * device hears ERR_TOO_MANY_CONNS for GW_R_PER_IP, ERR_OVERLOADED for the
 * others (docs/gateway.md "Refusing connections"). */
enum gw_refuse {
    GW_R_NONE = 0,
    GW_R_MAX_CONNS,
    GW_R_ACCEPT_RATE,
    GW_R_PER_IP,
    GW_R_MEMORY
};

/* An immutable, refcounted frame.  Only its worker touches the count. */
typedef struct gw_buf {
    int ref;
    uint32_t len;
    bool backlog; /* a backlog push (gw_msg_t.backlog) */
    uint8_t data[];
} gw_buf_t;

gw_buf_t *gw_buf_new(const void *p, size_t len);
static inline gw_buf_t *gw_buf_ref(gw_buf_t *b) {
    b->ref++;
    return b;
}
void gw_buf_unref(gw_buf_t *b);

/* Pending output: a list of (shared buffer, offset). */
typedef struct gw_out {
    struct gw_out *next;
    gw_buf_t *buf;
    uint32_t off;
} gw_out_t;

/* An application, interned once for the gateway's life. */
typedef struct gw_app {
    struct gw_app *next;
    atomic_long online; /* authenticated connections now */
    char name[];
} gw_app_t;

/* An authenticated device, owned by its connection. */
typedef struct gw_dev {
    gw_app_t *app;
    int64_t inbox_seq; /* the session's cursors: HELLO's, then acks */
    int64_t broadcast_seq;
    /* The highest seq of each timeline written to this connection, and
     * the highest ack recorded on it (never beyond what was written: the
     * store clamps an ack to the seqs it assigned, and AckRsp says what
     * was recorded). */
    int64_t inbox_sent, bcast_sent;
    int64_t inbox_acked, bcast_acked;
    /* Online-only pushes written and acked by msgId: a device can ack no
     * more ids than it was sent, so an ack of made-up ids costs nothing. */
    uint32_t online_sent, online_acked;
    int64_t issued_s; /* its token's issue time (token_issued_at) */
    /* The oldest inbox push written and not yet acked (low 32 bits of its
     * seq, its accept time in ms mod 2^32): one ack-latency sample per
     * ack round trip, in 8 bytes. */
    uint32_t ack_wait_seq, ack_wait_at;
    /* Backlog flow control (gw_push_mark): the mark waiting for the
     * output to drain (0: none), and the backlog bytes queued. */
    uint64_t mark;
    uint32_t backlog_bytes;
    uint8_t len;
    char name[];
} gw_dev_t;

/* A bounded byte buffer for an incomplete frame or message. */
typedef struct gw_bytes {
    uint32_t len;
    uint32_t cap;
    uint8_t data[];
} gw_bytes_t;

/* While an HTTP request is being read and answered (freed at the
 * upgrade, or when the connection closes). */
typedef struct gw_http {
    http_req_t req;
    uint16_t len;
    char buf[HTTP_MAX_HEAD];
    /* POST /v1/yyb: the body, and the answer's frames while the body's
     * packages are handled (gw_conn_send* append there) */
    uint8_t *body;
    uint32_t body_len, body_have;
    jce_out_t *capture;
    bool stop; /* a package ended the exchange */
    /* While a SYNC waits for the service's answer (gw_sync_answer), the
     * exchange pauses: the answer so far, where the body's frames stand. */
    jce_out_t cap;
    yyb_reader_t rd;
    uint32_t off, frames;
    bool running, waiting;
    int wait_req; /* the SYNC's reqId */
} gw_http_t;

typedef struct gw_topics {
    uint32_t n;
    char *t[GW_MAX_TOPICS];
} gw_topics_t;

enum gw_state {
    GW_S_NEW = 0, /* nothing read yet */
    GW_S_YYB,     /* raw TCP: preface, then frames */
    GW_S_HTTP,    /* reading an HTTP request head */
    GW_S_WS,      /* WebSocket frames */
    GW_S_CLOSING, /* output flushed, input discarded, waiting for EOF */
    GW_S_DEAD,    /* fd closed; freed before the loop sleeps */
};

struct gw_worker;
typedef struct gw_batch gw_batch_t;

/*
 * One device connection: about 170 bytes while idle (fd, registrations,
 * parser state, a few NULL pointers).  Buffers exist only while a frame is
 * incomplete (in), output is pending (out_head), a head is being read
 * (http) or a fragmented WebSocket message is open (frag).
 */
typedef struct gw_conn {
    ev_io_t io;
    ev_timer_t timer;
    struct gw_worker *w;
    gw_dev_t *dev;  /* NULL until authenticated */
    gw_bytes_t *in; /* partial frame kept between reads */
    gw_out_t *out_head, *out_tail;
    void *aux; /* gw_http_t in GW_S_HTTP, else fragment buffer */
    gw_topics_t *topics;
    uint64_t deadline; /* ev_now_ms() time the timer really means */
    uint32_t out_bytes;
    uint32_t slot, gen;
    uint16_t hb;       /* heartbeat interval in use, seconds */
    uint16_t rl_tick;  /* command limit: last refill, 50 ms ticks */
    uint8_t rl_tokens; /* commands left in the bucket */
    uint8_t state;
    uint8_t transport; /* enum gw_transport, 0 until known */
    bool offline_told;
    bool ephemeral; /* POST /v1/yyb: authenticated, not registered */
    bool aux_http;  /* aux is a gw_http_t (else a fragment buffer) */
    uint8_t refuse; /* enum gw_refuse: answer the first bytes, close */
    bool batched;   /* a send of it waits in the worker's batch */
    union {
        yyb_reader_t yyb;
        ws_parser_t ws;
    } p;
} gw_conn_t;

/* Mailbox items: what other threads ask a worker to do. */
enum gw_item_kind {
    GW_I_PUSH_ONE,
    GW_I_PUSH_APP,
    GW_I_KICK,
    GW_I_DRAIN,
    GW_I_STOP,
    GW_I_MARK,
    GW_I_SYNC
};

/* A message shared by every worker it goes to (atomic refcount). */
typedef struct gw_pmsg {
    atomic_int ref;
    gw_app_t *app;
    gw_msg_t m; /* pointers into the tail of this allocation */
} gw_pmsg_t;

typedef struct gw_item {
    int kind;
    int reason;
    uint32_t slot, gen;
    gw_pmsg_t *msg;
    uint64_t token;   /* GW_I_MARK */
    int64_t before_s; /* GW_I_KICK of a revocation: only tokens issued
                           before this; 0 = any connection */
    uint8_t *body;    /* GW_I_SYNC: the SyncRsp, encoded; the item's */
    uint32_t body_len;
} gw_item_t;

typedef struct gw_worker {
    struct gw *gw;
    int idx;
    pthread_t thread;
    bool started;
    ev_loop_t *loop;
    ev_io_t lio;     /* listener */
    lpause_t lpause; /* its back-off when out of descriptors */
    ev_async_t wake;
    jce_arena_t *arena; /* per decoded frame, reset after each */
    gw_batch_t *batch;  /* io_uring broadcast sends; NULL: send() */
    uint8_t *rbuf;      /* scratch for read(): partial + new bytes */
    size_t rbuf_cap;
    /* connections by slot; free slots chained through free_slots */
    gw_conn_t **conns;
    uint32_t nslots, cap_slots;
    uint32_t *free_slots;
    uint32_t nfree;
    gw_conn_t **dead; /* closed, to free before sleeping */
    uint32_t ndead, cap_dead;
    /* with --max-conns-per-ip: each slot's address count, beside conns
     * (not in gw_conn_t, which stays at 160 bytes) */
    gw_ipent_t **ip_of;
    uint32_t refused_now; /* refused connections not yet closed */
    uint32_t refused_max; /* past it, refused ones get no answer */
    bool draining;
    /* mailbox */
    pthread_mutex_t mu;
    gw_item_t *items;
    uint32_t nitems, cap_items;
    /* counters, read by gw_stats from any thread */
    atomic_long conns_now, authed_now, accepted, closed, frames_in,
        pushes_written, acks, slow_consumers, hb_timeouts, refused,
        mailbox_dropped,
        out_queued; /* bytes waiting in its connections' output queues */
} gw_worker_t;

/* Registry entry: app+device -> the connection holding it. */
typedef struct gw_reg {
    struct gw_reg *next;
    gw_app_t *app;
    uint32_t hash;
    int worker;
    uint32_t slot, gen;
    uint8_t len;
    char name[];
} gw_reg_t;

typedef struct gw_shard {
    pthread_mutex_t mu;
    gw_reg_t **tab;
    uint32_t mask; /* buckets - 1 */
    uint32_t n;
} gw_shard_t;

struct gw {
    gw_config_t cfg;
    gw_service_t svc;
    char host[64];
    int port;
    int nworkers;
    gw_worker_t *workers;
    gw_shard_t shards[GW_REG_SHARDS];
    pthread_mutex_t apps_mu;
    gw_app_t *apps;
    atomic_long total_conns; /* admitted connections (--max-conns) */
    int auto_conns;          /* what max_conns 0 means (gw_conns_auto) */
    long nofile;             /* RLIMIT_NOFILE when it was derived */
    gw_rate_t accept_rate;   /* --accept-rate */
    gw_iptab_t *iptab;       /* --max-conns-per-ip; NULL = off */
    atomic_bool draining;
    bool started, stopped;
    int port_lock; /* net_port_claim's lock, or -1 */
};

/* ---- gw.c ---- */
gw_app_t *gw_app_intern(gw_t *gw, const char *name, size_t len);
/* Registers c (authenticated as dev) and kicks any earlier holder of the
 * same device with ERR_DUPLICATE_LOGIN. */
void gw_reg_add(gw_t *gw, gw_conn_t *c);
/* Removes c's entry if it still points at c. */
void gw_reg_del(gw_t *gw, gw_conn_t *c);
/* Queues an item to worker idx and wakes it.  0, -ENOMEM, or -ENOBUFS for
 * a push when the mailbox holds GW_MAILBOX_MAX items (kicks, drain and
 * stop are never refused). */
int gw_mail(gw_t *gw, int idx, const gw_item_t *it);
/* A connection of this worker by handle, or NULL if it has gone. */
gw_conn_t *gw_worker_conn(gw_worker_t *w, uint32_t slot, uint32_t gen);
void gw_pmsg_unref(gw_pmsg_t *m);

/* ---- gw_conn.c ---- */
/* Takes a freshly accepted fd from peer (NULL: unknown): admits it, or
 * keeps it briefly to answer with the refusal code; closes it on
 * failure. */
void gw_conn_accept(gw_worker_t *w, int fd,
                    const struct sockaddr_storage *peer);
/* Sends a kick/close in the connection's transport, then closes
 * gracefully.  reason is an ErrCode (0 = orderly, e.g. bye). */
void gw_conn_kick(gw_conn_t *c, int reason, const char *message);
/* Closes now; reason as for service->offline. */
void gw_conn_close(gw_conn_t *c, int reason);
/* Half-closes after pending output and waits for the peer's EOF. */
void gw_conn_linger(gw_conn_t *c, int reason);
/* Idle deadline from now, in seconds. */
void gw_conn_set_idle(gw_conn_t *c, int seconds);
/* Frees what a closed connection still owns. */
void gw_conn_free(gw_conn_t *c);
/* Idle timeout (seconds) for heartbeat interval hb. */
int gw_idle_for(const gw_t *gw, int hb);
int gw_clamp_hb(const gw_t *gw, int hb);
/* Handles whole WebSocket frames of buf; *used = bytes consumed.  -1:
 * closed. */
int gw_conn_ws_input(gw_conn_t *c, uint8_t *buf, size_t len, size_t *used);
/* Keeps the unconsumed tail buf[used..len) for the next read. */
int gw_conn_keep_tail(gw_conn_t *c, const uint8_t *buf, size_t len,
                      size_t used);

/* ---- gw_out.c ---- */
/* Sends bytes (copied only if they cannot be written now).  Shared frames
 * go through gw_conn_send_buf instead.  0, or -1 if the connection was
 * closed (slow consumer or write error). */
int gw_conn_send(gw_conn_t *c, const void *p, size_t len);
int gw_conn_send_buf(gw_conn_t *c, gw_buf_t *b);
/* Queues b from offset off without trying to write (the caller already
 * did).  0, or -1 if the connection was closed (slow consumer). */
int gw_conn_queue(gw_conn_t *c, gw_buf_t *b, uint32_t off);
/* Writes the queue until EAGAIN; -1 if the connection closed. */
int gw_conn_flush(gw_conn_t *c);
/* Drops the queue (the connection is closing). */
void gw_conn_out_clear(gw_conn_t *c);
/* A backlog mark arrived for c (NULL: its connection is gone): fires it
 * now if the output is low, else keeps it for gw_conn_flush. */
void gw_mark_arm(gw_t *gw, gw_conn_t *c, uint64_t token);
/* The connection is closing: its waiting mark, if any, fires !ok. */
void gw_mark_drop(gw_conn_t *c);

/* ---- gw_http.c ---- */
/* Reads into the head buffer (then a POST body) directly; -1 if the
 * connection closed or is closing. */
int gw_http_read(gw_conn_t *c);
/* Answers status with a JSON error (ErrCode code, msg), then lingers. */
void gw_http_error(gw_conn_t *c, int status, int code, const char *msg);
/* A SYNC of POST /v1/yyb waits for the service's messages: the exchange
 * pauses after this package until gw_http_sync_done. */
void gw_http_wait(gw_conn_t *c, int req_id);
/* The SyncRsp body (NULL: the service failed) answers the waiting SYNC,
 * and the exchange goes on with the body's next package. */
void gw_http_sync_done(gw_conn_t *c, const uint8_t *body, size_t len);
/* A connection's handle as one number (service->fetch's token). */
uint64_t gw_conn_token(const gw_conn_t *c);

/* ---- gw_cmd.c ---- */
/* One raw-TCP package or WebSocket binary message.  Returns -1 if the
 * connection was closed. */
int gw_cmd_jce(gw_conn_t *c, const uint8_t *p, size_t len);
/* One WebSocket text message (JSON). */
int gw_cmd_json(gw_conn_t *c, const uint8_t *p, size_t len);
/* After a successful WebSocket upgrade with a checked token. */
int gw_cmd_ws_hello(gw_conn_t *c);
/* Checks c's token: shape, signature, expiry, lifetime, revocation.  On
 * success fills *dev (malloc'd); a refusal is counted and logged
 * (rate-limited, with the peer's address).  Returns an ErrCode. */
int gw_auth_token(gw_conn_t *c, const char *tok, size_t len, gw_dev_t **dev);
/* What a refused token's 401 or HELLO answer says. */
const char *gw_auth_message(int code);
/* Marks c authenticated as dev (registry, service->online). */
void gw_conn_authed(gw_conn_t *c, gw_dev_t *dev);
/* Writes a Package (cmd, reqId, ret) with a JCE body in c's transport. */
int gw_send_package(gw_conn_t *c, int cmd, int req_id, int ret,
                    const uint8_t *body, size_t body_len);
/* Encodes m once per format into fmt[3] lazily and writes it to c
 * (batch: through gw_batch_send; the caller flushes). */
int gw_push_to_conn(gw_conn_t *c, const gw_pmsg_t *m, gw_buf_t *fmt[3],
                    bool batch);
void gw_topics_free(gw_topics_t *t);
const char *gw_err_name(int code);

/* ---- gw_frame.c ---- */
/* Frames built, not sent: each returns a new buffer (the caller frees it
 * with gw_buf_unref), or NULL on error or OOM. */

/* A Package (cmd, reqId, ret, JCE body) framed for transport. */
gw_buf_t *gw_package_frame(int transport, int cmd, int req_id, int ret,
                           const uint8_t *body, size_t body_len);
/* j as a WebSocket text message; takes j (NULL gives NULL). */
gw_buf_t *gw_json_frame(struct json_t *j);
/* The kick frame for c's transport (not sent).  A refused connection's
 * kick carries retryAfter. */
gw_buf_t *gw_kick_frame(gw_conn_t *c, int reason, const char *message);
/* A push as JSON text (payloadB64 unless valid UTF-8 without NUL), or as
 * a PushBatch Package for transport (raw TCP or WebSocket binary). */
gw_buf_t *gw_push_frame_json(const gw_msg_t *m);
gw_buf_t *gw_push_frame_jce(const gw_msg_t *m, int transport);

/* ---- gw_admit.c ---- */
/* The admission checks at accept (memory, --max-conns, per address,
 * accept rate).  GW_R_NONE: admitted, holding a --max-conns place and *ip
 * (the address's count, NULL when not counted) until gw_unadmit.  Else the
 * enum gw_refuse reason, already counted (herald_refused_total). */
int gw_admit(gw_worker_t *w, const struct sockaddr_storage *peer,
             gw_ipent_t **ip);
void gw_unadmit(gw_worker_t *w, gw_ipent_t *ip);
/* A refused connection's first byte arrived: answers in that protocol
 * and lingers (or closes).  Always -1. */
int gw_refuse_answer(gw_conn_t *c, uint8_t first);
/* HTTP 503 (429 for GW_R_PER_IP) with Retry-After and a JSON error, then
 * linger. */
void gw_refuse_http(gw_conn_t *c, int why);
/* A refusal's ErrCode, seconds to retry after, and message. */
int gw_refuse_code(int why);
int gw_refuse_retry(int why);
const char *gw_refuse_message(int why);
/* Counts a refusal in herald_refused_total{what="connection"}. */
void gw_refuse_count(int why);

/* ---- gw_batch.c ---- */
/* 0, or negative errno when io_uring is unavailable (then w->batch stays
 * NULL and broadcasts use send()). */
int gw_batch_init(gw_worker_t *w);
void gw_batch_free(gw_worker_t *w);
/* Like gw_conn_send_buf, but may defer the write to gw_batch_flush. */
int gw_batch_send(gw_conn_t *c, gw_buf_t *b);
void gw_batch_flush(gw_worker_t *w);

#endif
