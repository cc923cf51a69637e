/*
 * gw: the gateway, herald's access layer (DESIGN.md §1, §3, §6).
 *
 * It accepts device connections on one public port (raw TCP "YYB" and
 * WebSocket, told apart by the first bytes), authenticates them with signed
 * tokens, keeps them alive with adaptive heartbeats, writes pushes and reads
 * acks.  It holds no business logic: everything a device asks for that is
 * not framing goes through the narrow gw_service_t interface below, which
 * the push service implements in-process today and a cluster transport can
 * implement tomorrow.
 *
 * Threads: gw_start() runs `workers` threads, each with its own event loop
 * and SO_REUSEPORT listener.  The gw_push_* functions may be called from any
 * thread; they hand the message to the worker(s) holding the target
 * connections (a mailbox + eventfd wake-up) and return at once.
 */
#ifndef HERALD_GW_H
#define HERALD_GW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw gw_t;
struct ops_mem;

typedef struct gw_config {
    const char *host;     /* device port address, default "0.0.0.0" */
    int port;             /* default 7100; 0 = any (see gw_port) */
    int workers;          /* default: number of cores */
    int hb_min;           /* seconds; default 10 */
    int hb_max;           /* seconds; default 600 */
    int hb_default;       /* seconds; until the first heartbeat, 60 */
    int hb_factor_pct;    /* idle deadline = interval*factor/100+grace */
    int hb_grace;         /* seconds; default 5 */
    int auth_timeout;     /* seconds to send hello; default 10 */
    uint32_t max_frame;   /* bytes; default 65536 */
    uint32_t max_pending; /* queued output per connection; 256 KiB */
    int max_conns;        /* 0 = derived from RLIMIT_NOFILE (below) */
    int head_timeout;     /* seconds for a whole HTTP head; 10 */
    /* Overload protection (docs/gateway.md "Refusing connections"). */
    int max_conns_per_ip;      /* per client address (IPv6: per /64); 0 = off */
    double accept_rate;        /* new connections/s, all workers; 0 = off */
    double accept_burst;       /* bucket size; default: accept_rate */
    const struct ops_mem *mem; /* memory watermark (borrowed); NULL = none */
    /* Descriptors the rest of the process needs (API, TARS and admin
     * connections, store files, loops); default GW_FD_RESERVE. */
    int fd_reserve;
    /* Longest token lifetime accepted, seconds (token_lifetime); default
     * 30 days.  Also what a token without an issue time counts as issued
     * at: EXPIRY minus this (token_issued_at). */
    int64_t token_max_ttl;
} gw_config_t;

#define GW_FD_RESERVE 64   /* without API ports: the store and loops */
#define GW_FD_PER_WORKER 4 /* a worker's epoll, eventfd, ring, spare */

/*
 * What max_conns 0 means.  Device connections must not take the
 * descriptors the push API, the admin port and the store need: when they
 * did, herald could not accept a push or answer /healthz.  Of `nofile`
 * descriptors (RLIMIT_NOFILE), the rest of the process keeps `reserve` +
 * GW_FD_PER_WORKER per worker, but at most half; of the remaining budget
 * 1/16 is for refused connections waiting for their answer (*refused, all
 * workers together; NULL allowed), the rest is the connection cap
 * (returned, at least 1).  E.g. nofile 20000, reserve 1216 (herald serve
 * with its defaults), 2 workers: budget 18776, cap 17603, refused 1173.
 */
int gw_conns_auto(long nofile, int reserve, int workers, int *refused);

void gw_config_defaults(gw_config_t *c);

/* What a device is, once authenticated.  Borrowed for the callback's
 * duration. */
typedef struct gw_device {
    const char *app;
    const char *device;
    int transport;     /* enum gw_transport */
    int64_t inbox_seq; /* cursors the device says it has */
    int64_t broadcast_seq;
} gw_device_t;

enum gw_transport { GW_TCP = 1, GW_WS_JSON = 2, GW_WS_JCE = 3 };

/*
 * The push service's side.  Callbacks run on worker threads and must not
 * block for long; they may call gw_push_* (which only enqueues).
 */
typedef struct gw_service {
    void *ctx;
    /* Copies the app's token secret into out (cap bytes); returns its
     * length, or -1 for an unknown app. */
    int (*app_secret)(void *ctx, const char *app, uint8_t *out, size_t cap);
    /* A device authenticated (after duplicate-login kicks). */
    void (*online)(void *ctx, const gw_device_t *d);
    /* A device's connection ended; reason is a herald ErrCode (0 = bye). */
    void (*offline)(void *ctx, const gw_device_t *d, int reason);
    /* Cumulative ack of the inbox and/or the broadcast timeline (-1 =
     * not given), and single message ids (may be NULL/0). */
    void (*ack)(void *ctx, const gw_device_t *d, int64_t inbox_seq,
                int64_t broadcast_seq);
    /* A SYNC command: the service sends the stored messages after these
     * cursors to the device as ordinary pushes (the SYNC answer itself
     * goes out at once, empty).  NULL: nothing is stored. */
    void (*sync)(void *ctx, const gw_device_t *d, int64_t inbox_seq,
                 int64_t broadcast_seq);
    /* The answer to gw_push_mark(token), exactly once per accepted mark,
     * on a worker thread: ok when the device's connection has written
     * all it was given before the mark down to a low watermark (send the
     * next page); !ok when the connection closed first, or another mark
     * already waits on it (stop this backlog: the other one feeds it).
     * NULL: marks are not accepted. */
    void (*drained)(void *ctx, uint64_t token, bool ok);
    /* The device's revocation: tokens issued before this Unix second are
     * refused (ERR_TOKEN_REVOKED); 0 = none.  Called at every login, so it
     * must answer from memory.  NULL: no revocations. */
    int64_t (*revoked)(void *ctx, const char *app, const char *device);
    /* A SYNC over the short-lived HTTP form (POST /v1/yyb), which cannot
     * take pushes after its answer: the service reads at most limit
     * stored messages after these cursors and hands them to
     * gw_sync_answer(token, ...) exactly once (0), or declines (< 0: the
     * SYNC is answered empty).  NULL: nothing is stored. */
    int (*fetch)(void *ctx, const gw_device_t *d, int64_t inbox_seq,
                 int64_t broadcast_seq, uint32_t limit, uint64_t token);
    /* An online-only message the device acked by id (AckReq.msgIds),
     * at most once per such message it was sent.  NULL: not counted. */
    void (*acked)(void *ctx, const char *app, const char *msg_id);
} gw_service_t;

/* One message to deliver; the gateway copies what it needs. */
typedef struct gw_msg {
    const char *msg_id;
    int64_t seq;  /* timeline sequence, 0 if none */
    int timeline; /* 0 inbox, 1 broadcast, 2 online-only */
    const uint8_t *payload;
    size_t payload_len;
    bool need_ack;
    int64_t sent_at_ms; /* wall clock, for latency figures */
    const char *topic;  /* NULL unless a topic push */
    /* Part of a stored backlog (the connect-time sync), paced by its
     * sender with gw_push_mark: never cut as a slow consumer, and not
     * counted against max_pending for live pushes. */
    bool backlog;
} gw_msg_t;

gw_t *gw_new(const gw_config_t *cfg, const gw_service_t *svc);
/* Binds the listeners and starts the workers.  0 or negative errno;
 * -EADDRINUSE when another process (or socket) holds the port: the
 * workers share it with SO_REUSEPORT among themselves only. */
int gw_start(gw_t *gw);
/* The bound device port (useful with port 0). */
int gw_port(const gw_t *gw);
/* Stops accepting, kicks every device with ERR_DRAINING (redirect fields
 * empty), flushes pending writes for at most timeout_ms, then stops the
 * workers.  Safe to call from any thread, once. */
void gw_drain(gw_t *gw, int timeout_ms);
void gw_free(gw_t *gw);

/* The connection cap in force (max_conns, or what 0 derived). */
int gw_max_conns(const gw_t *gw);

/* The limits a reload (SIGHUP) may change while devices stay connected:
 * max_conns (0 = derived, as at start) applies to the next accept, the heartbeat range
 * to the next HELLO or heartbeat; open connections are never closed for
 * it.  hb_min <= hb_max.  Any thread. */
void gw_set_limits(gw_t *gw, int max_conns, int hb_min, int hb_max);

/* Unicast: 1 if the device has a connection here (the message is queued to
 * it), 0 if not online, or if its worker's mailbox is full
 * (GW_MAILBOX_MAX: a stored message then waits for the device's next
 * connect or SYNC).  Any thread. */
int gw_push_device(gw_t *gw, const char *app, const char *device,
                   const gw_msg_t *m);
/* Every device of the app connected now; returns how many were targeted.
 * The frame is encoded once per wire format and shared by reference.  A
 * worker whose mailbox is full is skipped (its devices miss an online-only
 * message; a stored broadcast reaches them at their next connect). */
long gw_push_online(gw_t *gw, const char *app, const gw_msg_t *m);
/*
 * Flow control of a backlog.  A sender that writes a device's stored
 * messages (gw_msg_t.backlog) in pages calls this after each page and
 * sends the next one only when service->drained(token, ok) comes: the
 * mark queues behind the page on the device's worker, and fires once
 * the connection's pending output is at most max_pending / 4.  So a slow
 * reader gets its whole backlog at its own pace, with at most a page and
 * the low watermark queued, instead of being cut as a slow consumer
 * (the slow-consumer cut is for live pushes).  Returns 1 if the mark was
 * queued (drained follows exactly once), 0 if the device has no
 * connection here or the service takes no marks.  Any thread.
 */
int gw_push_mark(gw_t *gw, const char *app, const char *device, uint64_t token);
/* The answer to service->fetch(token): n messages (copied) for the
 * waiting SyncRsp, and whether more are stored after them.  A request
 * that ended meanwhile (timeout, closed) drops it.  Any thread. */
void gw_sync_answer(gw_t *gw, uint64_t token, const gw_msg_t *msgs, uint32_t n,
                    bool more);
/* Closes the device's connection with a kick frame (reason: ErrCode). */
int gw_kick_device(gw_t *gw, const char *app, const char *device, int reason);
/* The device's tokens issued before before_s are revoked: its connection
 * here is kicked with ERR_TOKEN_REVOKED if its token was issued before
 * then (one that logged in again with a newer token stays).  1 if a
 * connection was found (the kick is asynchronous), 0 if none.  Any
 * thread. */
int gw_revoke_device(gw_t *gw, const char *app, const char *device,
                     int64_t before_s);
/* The longest token lifetime accepted from the next login on (a reload);
 * seconds > 0.  Any thread. */
void gw_set_token_max_ttl(gw_t *gw, int64_t seconds);

/* Counters for metrics and benchmarks (monotonic, summed over workers). */
typedef struct gw_stats {
    long conns;    /* open now */
    long authed;   /* authenticated now */
    long accepted; /* total */
    long closed;
    long frames_in;
    long pushes_written; /* deliveries written to a socket */
    long acks;
    long slow_consumers;
    long hb_timeouts;
    long refused;         /* connections refused with an overload code */
    long mailbox;         /* items waiting in the workers' mailboxes now */
    long mailbox_dropped; /* pushes a full mailbox refused */
    long out_queued;      /* bytes waiting in device connections' output */
} gw_stats_t;
void gw_stats(const gw_t *gw, gw_stats_t *out);

#endif
