/*
 * store: what must survive a crash (DESIGN.md §4), behind one interface
 * with an embedded SQLite backend now and a Redis backend later.
 *
 * It owns: applications and their API keys; the set of devices ever seen per
 * app with their cursors; per-device inbox timelines (per-device sequence,
 * cumulative acks, collapseKey replacement, TTL expiry); per-app broadcast
 * timelines stored once with a cursor per device; one status record per
 * message; idempotency by (app, requestId) for 24 hours.
 *
 * Writes go through one writer thread that owns the write connection and
 * commits whatever requests are queued in one transaction (group commit:
 * many pushes share one fsync).  A request's done callback runs on the
 * writer thread only after its transaction is durable, so a caller that
 * answers its client from that callback never acknowledges a write that a
 * crash could lose.  Callbacks must be short: hand the result to your own
 * thread (e.g. a mailbox + ev_async) and return.
 *
 * Reads use a store_reader_t per thread (its own connection; WAL lets them
 * run beside the writer).  Everything returned by a read is owned by the
 * result struct and freed with its _free function.
 *
 * Errors are the STORE_E_* codes of herald_err (core/err.h).
 */
#ifndef HERALD_STORE_H
#define HERALD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct store store_t;
typedef struct store_reader store_reader_t;

typedef struct store_config {
    const char *backend;   /* "sqlite" (the default; NULL too) */
    const char *path;      /* SQLite file; default "herald.db" */
    int max_batch;         /* requests per transaction; default 4096 */
    int max_queue;         /* queued requests before STORE_E_FULL; 200000 */
    int sweep_interval_ms; /* TTL sweeper period; default 1000 */
    int idem_window_s;     /* idempotency window; default 86400 */
    bool synchronous_full; /* fsync every commit (default true) */
    /* Hot inbox journal (store_hot.c): bytes per file before the other
     * file takes over; default 8 MiB (tests make it small). */
    long hot_file_max;
    /* Messages a device's inbox keeps at most: appending beyond it drops
     * the oldest undelivered ones (their status records count `dropped`),
     * so a device that never connects cannot fill the disk.  0 = no
     * limit; default 10000. */
    long inbox_max;
    /* The one process that serves pushes from this file: store_open fails
     * with STORE_E_LOCKED while another holds it.  Others (herald app)
     * open beside it and write through SQLite only. */
    bool exclusive;
    /* A hot journal found damaged or missing where journal_files says
     * acknowledged pushes may be in it: store_open fails with
     * STORE_E_JOURNAL, unless this is set; then what is readable is
     * recovered, the loss is logged with its counts, and the store opens. */
    bool accept_journal_loss;
} store_config_t;

void store_config_defaults(store_config_t *c);
/* Opens (creating the schema if needed) and starts the writer thread. */
int store_open(const store_config_t *cfg, store_t **out);
/* Why the last store_open on this thread failed with rc, in words (the
 * path and the system's reason where there is one). */
const char *store_open_error(int rc);
/* Runs every queued request, stops the writer, closes.  Readers must be
 * freed first. */
void store_close(store_t *st);

/* ---- messages ------------------------------------------------------------ */

enum store_kind { /* the four PushAPI operations */
                  STORE_KIND_SINGLE = 1,
                  STORE_KIND_MULTI = 2,
                  STORE_KIND_ONLINE =
                      3,              /* never stored per device; status only */
                  STORE_KIND_ALL = 4, /* broadcast timeline */
};

/* A message as the push service hands it in (borrowed for the call). */
typedef struct store_msg {
    const char *app;
    const char *msg_id;     /* assigned by the push service */
    const char *request_id; /* NULL or "": no idempotency */
    const uint8_t *payload;
    size_t payload_len;
    int32_t ttl;              /* seconds; > 0 for stored kinds */
    const char *collapse_key; /* NULL or "": none */
    bool need_ack;
    int64_t created_ms; /* wall clock */
} store_msg_t;

/* ---- asynchronous writes (group commit) ------------------------------------ */

enum store_op {
    /* Message status record only (online pushes, or ttl 0), plus the
     * idempotency record. */
    STORE_OP_ACCEPT = 1,
    /* Append msg to the inbox of each of devices[0..n) (registering unknown
     * devices); out: seqs[i].  collapseKey replaces an older unacked message
     * of the same key in that inbox. */
    STORE_OP_INBOX_APPEND = 2,
    /* Append msg to the app's broadcast timeline once; out: seq. */
    STORE_OP_BCAST_APPEND = 3,
    /* Cumulative ack: inbox up to `seq` and/or broadcast cursor to
     * `bseq` (-1 = not given) for app/device. */
    STORE_OP_ACK = 4,
    /* Registers app/device if new (first connect); out: cursors. */
    STORE_OP_DEVICE_SEEN = 5,
    /* Adds counts[ev] to a message's status record for every event with
     * a count (its first time is set then): one update per message.  One
     * that counts only routed/written may be held until the message's ack
     * (or 300 ms) and answered 0 at once (store_pend.c). */
    STORE_OP_STATUS = 6,
};

/* Status events, in the order a message lives them. */
enum store_event {
    STORE_EV_ACCEPTED = 0,
    STORE_EV_STORED = 1,
    STORE_EV_ROUTED = 2,
    STORE_EV_WRITTEN = 3,
    STORE_EV_ACKED = 4,
    STORE_EV_EXPIRED = 5,
    STORE_EV_DROPPED = 6, /* discarded undelivered: an inbox over its cap */
    STORE_EV_COUNT
};

typedef struct store_req store_req_t;

/* What a request's done() is told, and what it may tell back.  rc is
 * STORE_OK or an error; the request's out fields hold the rest (among
 * them req->duplicate: the request_id was seen within the window, nothing
 * was written, req->dup_msg_id names the first message).  A stored push that done() hands
 * to the devices online at once sets routed/written: the store keeps
 * those counts with the message (written with its ack, or alone later)
 * as it keeps every status count, without a request of its own. */
typedef struct store_done {
    int rc;
    long routed, written; /* set by done(), 0 = none */
} store_done_t;
typedef void (*store_done_fn)(store_req_t *req, store_done_t *d);

/* One write request.  The caller owns it (and everything it points to)
 * until done() has been called; done() runs once, on the writer thread,
 * after the request's transaction is durable (or failed). */
struct store_req {
    int op;   /* enum store_op */
    int kind; /* enum store_kind (ACCEPT/APPEND ops) */
    store_msg_t msg;
    const char *const *devices; /* INBOX_APPEND targets */
    uint32_t n_devices;
    int64_t *seqs;                  /* out, n_devices entries (caller's) */
    int64_t seq;                    /* out BCAST_APPEND; in ACK (inbox) */
    int64_t bseq;                   /* in ACK (broadcast cursor) */
    const char *device;             /* ACK, DEVICE_SEEN */
    int64_t counts[STORE_EV_COUNT]; /* STATUS: how many, per event */
    int64_t inbox_acked;            /* out DEVICE_SEEN */
    int64_t bcast_cursor;           /* out DEVICE_SEEN */
    bool created;                   /* out DEVICE_SEEN: first time seen */
    bool duplicate;                 /* out ACCEPT/APPEND: idempotency hit */
    char dup_msg_id[64];            /* out when duplicate */
    store_done_fn done;             /* may be NULL for fire-and-forget ops */
    void *data;                     /* the caller's */
};

/* Operations as the latency metrics see them. */
enum store_obs {
    STORE_OBS_APPEND = 0, /* ACCEPT, INBOX_APPEND, BCAST_APPEND */
    STORE_OBS_FETCH = 1,  /* timeline reads */
    STORE_OBS_ACK = 2,
    STORE_OBS_EXPIRE = 3, /* one sweeper run */
    STORE_OBS_OTHER = 4,  /* status counts, device sightings */
};
typedef void (*store_observe_fn)(void *ctx, int obs, uint64_t usec,
                                 bool failed);
/* Every operation's time is reported to fn: a write request from
 * store_submit to its done() (queueing and the durable commit included),
 * a timeline fetch, a sweeper run.  fn runs on the writer and reader
 * threads and must be quick.  NULL removes it. */
void store_set_observer(store_t *st, store_observe_fn fn, void *ctx);

/* Counts n occurrences of event (STORE_EV_ROUTED, _WRITTEN, _ACKED of an
 * online-only message, _DROPPED, ...) in msg_id's status record.  Any
 * thread; never blocks on SQL.  The store sums a message's counts and
 * writes them in one update: routed/written with the message's ack when
 * it comes within 500 ms, anything else within about 100 ms.  Best effort,
 * as status records are (a full table or a crash loses counts). */
void store_count(store_t *st, const char *msg_id, int event, long n);
/* Around each batch of done() calls, on the writer thread: fn(ctx, true)
 * before the first, fn(ctx, false) after the last, so a caller whose
 * done()s wake event loops can wake each loop once per batch.  Set before
 * the first submit; NULL removes it. */
void store_set_done_hook(store_t *st, void (*fn)(void *ctx, bool begin),
                         void *ctx);
/* Queues req; 0, or STORE_E_FULL / STORE_E_CLOSED / STORE_E_NOMEM without
 * queuing (done is then not called). */
int store_submit(store_t *st, store_req_t *req);
/* Submits and waits for done (for the CLI and tests); returns its rc. */
int store_submit_wait(store_t *st, store_req_t *req);
/* Holds (true) or releases (false) the writer between transactions: queued
 * requests wait, store_submit still queues up to max_queue.  For tests of
 * batching and backpressure, and for maintenance. */
void store_pause(store_t *st, bool paused);

/* Counters for metrics and benchmarks. */
typedef struct store_stats {
    long commits;      /* transactions committed */
    long requests;     /* requests run */
    long rows_written; /* rows inserted/updated/deleted */
    long queue_depth;  /* now */
    long expired;      /* messages removed by the sweeper */
    double commit_ms_avg;
    long replaced; /* inbox rows dropped by collapseKey */
    long dropped;  /* inbox rows dropped by inbox_max */
} store_stats_t;
void store_stats(store_t *st, store_stats_t *out);

/* Why the store cannot write now: 0, STORE_E_NOSPACE (the disk is full)
 * or STORE_E_IO (a write failed).  Set by the writer when a commit or a
 * journal write fails, cleared by the next one that succeeds; any thread,
 * without a lock (/readyz, the metrics). */
int store_fault(const store_t *st);

/* ---- reads (any thread, one reader per thread) --------------------------- */

int store_reader_new(store_t *st, store_reader_t **out);
void store_reader_free(store_reader_t *r);
/* One trivial read (never waits for the writer): 0 if the database
 * answers. */
int store_ping(store_reader_t *r);

typedef struct store_row {
    char *msg_id;
    int64_t seq;
    int timeline; /* 0 inbox, 1 broadcast */
    uint8_t *payload;
    size_t payload_len;
    char *collapse_key; /* NULL if none */
    bool need_ack;
    int64_t created_ms;
    int64_t expires_ms;
} store_row_t;

typedef struct store_rows {
    store_row_t *rows;
    uint32_t n;
    bool more; /* more rows after the last one */
} store_rows_t;
void store_rows_free(store_rows_t *rows);

/* Unexpired messages of a device's inbox with seq > after, oldest first,
 * at most limit. */
int store_inbox_fetch(store_reader_t *r, const char *app, const char *device,
                      int64_t after, uint32_t limit, int64_t now_ms,
                      store_rows_t *out);
/* Unexpired broadcasts of an app with seq > after, oldest first. */
int store_bcast_fetch(store_reader_t *r, const char *app, int64_t after,
                      uint32_t limit, int64_t now_ms, store_rows_t *out);

typedef struct store_device_info {
    bool known;
    int64_t first_seen_ms;
    int64_t last_seen_ms;
    int64_t inbox_last_seq; /* highest seq assigned */
    int64_t inbox_acked;    /* cumulative ack */
    int64_t inbox_depth;    /* unacked, unexpired messages */
    int64_t bcast_cursor;
} store_device_info_t;
int store_device_info(store_reader_t *r, const char *app, const char *device,
                      store_device_info_t *out);
/* Devices ever registered for the app. */
int store_device_count(store_reader_t *r, const char *app, int64_t *out);
/* Whether the device ever connected (a DEVICE_SEEN committed): a device a
 * push registered without it having connected is not known.  0 or an
 * error. */
int store_device_known(store_reader_t *r, const char *app, const char *device,
                       bool *known);

/* A message's status: its kind, app, times of each event (0 = not yet) and
 * counts, and for fan-outs the number of targets. */
typedef struct store_status {
    int kind;
    char app[64];
    int32_t ttl;
    int64_t targets;
    int64_t at_ms[STORE_EV_COUNT];
    int64_t count[STORE_EV_COUNT];
} store_status_t;
int store_status_get(store_reader_t *r, const char *msg_id,
                     store_status_t *out);
/* The one JSON form of a status record, shared by the push API
 * (GET /v1/messages/ID), the admin port (/api/messages/ID) and so
 * herald trace:
 *   {"msgId":ID,"app":APP,"kind":"single|multi|online|all","ttl":N,
 *    "targets":N,"timeline":{"accepted":{"at":MS,"count":N},...,
 *    "dropped":{...}}}
 * every event in order, at 0 = not yet.  Writes it NUL-terminated into
 * out; its length, or -1 if cap is too small. */
int store_status_format(const char *msg_id, const store_status_t *s, char *out,
                        size_t cap);
/* The event's name in that form ("accepted" .. "dropped"). */
const char *store_event_name(int ev);

/* ---- applications (rare; synchronous) ------------------------------------- */

/* What a push to a device that never connected does (apps.unknown_device). */
enum store_unknown_device {
    STORE_UNKNOWN_STORE = 0,  /* store it for the ttl, like any other */
    STORE_UNKNOWN_REJECT = 1, /* refuse it (PUSH_ERR_UNKNOWN_DEVICE) */
};

typedef struct store_app {
    char name[64];
    char secret[128]; /* token signing secret */
    int64_t created_ms;
    int unknown_device; /* enum store_unknown_device */
} store_app_t;

/* Creates an app with a random secret, a first API key (written to
 * key_out, cap >= 64) and its unknown-device policy, in one transaction.
 * STORE_E_EXISTS if the name is taken, STORE_E_INVALID unless it is a
 * valid app name (token_app_valid) and a known policy. */
int store_app_create(store_t *st, const char *name, int unknown_device,
                     store_app_t *app, char *key_out, size_t cap);
/* Adds a new key and revokes the old ones (rotate); new key to key_out. */
int store_app_rotate_key(store_t *st, const char *name, char *key_out,
                         size_t cap);
/* Adds an app with a given secret and key (the --app flag; idempotent).
 * A new name must be a valid app name, as for store_app_create. */
int store_app_put(store_t *st, const char *name, const char *secret,
                  const char *api_key);
/* Revokes one key of the app (a reload dropped it from the config); 0
 * also when the key is unknown or already revoked.  A revoked key is never
 * revived, not even by store_app_put. */
int store_app_revoke_key(store_t *st, const char *name, const char *api_key);
/* Sets the app's unknown-device policy (enum store_unknown_device).
 * STORE_E_NOTFOUND for an unknown app, STORE_E_INVALID for a bad mode. */
int store_app_set_unknown_device(store_t *st, const char *name, int mode);
int store_app_get(store_reader_t *r, const char *name, store_app_t *out);
/* The app owning an unrevoked key; STORE_E_NOTFOUND otherwise. */
int store_app_by_key(store_reader_t *r, const char *api_key, store_app_t *out);
/* Calls fn for each app, by name. */
int store_app_list(store_reader_t *r,
                   void (*fn)(void *ctx, const store_app_t *app, int n_keys),
                   void *ctx);

/* ---- device token revocations (rare; synchronous) --------------------------- */

/* Tokens of app/device issued before before_s (Unix seconds) are revoked.
 * A later revocation moves the moment forward, never back; *out (may be
 * NULL) gets the moment in force.  The device need not be known.
 * 0, STORE_E_INVALID (a bad app or device name, before_s <= 0) or an
 * error. */
int store_device_revoke(store_t *st, const char *app, const char *device,
                        int64_t before_s, int64_t *out);
/* Calls fn for every revocation whose moment is at or after since_s
 * (0: all of them).  0 or an error. */
int store_revocations(store_reader_t *r, int64_t since_s,
                      void (*fn)(void *ctx, const char *app, const char *device,
                                 int64_t before_s),
                      void *ctx);

#endif
