/*
 * The SQLite backend's internals, shared by its files (not a public
 * header): its store and reader structs, the jobs, the statement
 * tables, and each layer's functions (store_sqlite.c lists the layers).
 * Calls go down the layers only.  Internal names are prefixed store__,
 * the backend's entries store_sq_.
 */
#ifndef HERALD_STORE_INT_H
#define HERALD_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>

#include "store/store_backend.h"

/* The SQLite backend's store and reader (store_backend.h is the seam). */
typedef struct store_sq store_sq_t;
typedef struct store_sq_reader store_sq_reader_t;

#define STORE_SCHEMA_VERSION 4
#define STORE_SCHEMA_STR "4" /* the same, for SQL text */

/* Prepared statements of the write connection, by purpose.  Prepared on
 * first use and kept for the life of the connection. */
enum wstmt {
    W_SAVEPOINT,
    W_RELEASE,
    W_ROLLBACK_TO,
    W_IDEM_FIND,
    W_IDEM_FORGET,
    W_MSG_INSERT,
    W_BHEAD_GET,
    W_DEV_APPEND,
    W_DEV_SEQ,
    W_DEV_SEQ_SET,
    W_INBOX_COLLAPSE,
    W_INBOX_INSERT,
    W_BHEAD_BUMP,
    W_BCAST_INSERT,
    W_DEV_GET,
    W_DEV_INSERT,
    W_DEV_TOUCH,
    W_ACK_COUNT_INBOX,
    W_ACK_ONE,
    W_ACK_HELD,
    W_ACK_DEL_INBOX,
    W_ACK_COUNT_BCAST,
    W_ACK_SET,
    W_STATUS, /* every event's columns in one statement */
    W_SWEEP_DUE,
    W_TARGET_INSERT,
    W_SWEEP_INBOX_DEL,
    W_SWEEP_TARGETS,
    W_SWEEP_TARGETS_DEL,
    W_SWEEP_BCAST_DEL,
    W_SWEEP_MARK,
    W_SWEEP_MSG_DEL,
    W_APP_INSERT,
    W_APP_UPSERT,
    W_KEY_INSERT,
    W_KEY_REVOKE,
    W_KEY_REVOKE_ONE,
    W_KEY_OWNER,
    W_APP_EXISTS,
    W_HOT_MSG,
    W_HOT_INBOX,
    W_HOT_DEV,
    W_JOURNAL_END,
    W_JOURNAL_SET,
    W_TRIM_COUNT,
    W_TRIM_DEL,
    W_COUNT
};

enum rstmt {
    R_INBOX_FETCH,
    R_BCAST_FETCH,
    R_DEV_INFO,
    R_DEV_DEPTH,
    R_DEV_COUNT,
    R_STATUS,
    R_APP_GET,
    R_APP_BY_KEY,
    R_APP_LIST,
    R_PING,
    R_REVOKE_SINCE,
    R_DEV_KNOWN,
    R_COUNT
};

typedef struct store_hot store_hot_t;

/* A request while the store has it: queued, batched, answered.  Kept out
 * of store_req_t so the caller's struct holds only what it says and gets
 * back; taken from the store's free list at submit, given back after
 * done(), so a push costs no allocation here. */
typedef struct store_job {
    store_req_t *req;
    struct store_job *next; /* queue, then free list */
    uint64_t submit_us;     /* when queued (latency) */
    void *hot;              /* its hot-inbox entry until done() */
    int rc;
} store_job_t;

/* store_pend.c: status counts not written yet (the one place they wait). */
typedef struct store_pend store_pend_t;
typedef struct store_pend_ent {
    char id[40];               /* msg_id; "" = free slot */
    int64_t n[STORE_EV_COUNT]; /* counts per event */
    int64_t at;                /* wall ms the first count came */
    uint64_t due;              /* mono ms: written then (if not taken) */
    uint64_t until;            /* mono ms: kept that long for its row */
} store_pend_ent_t;

struct store_sq {
    store_config_t cfg;
    char *path;
    sqlite3 *db; /* the write connection */
    sqlite3_stmt *st[W_COUNT];
    bool sync_full_now; /* the write connection's PRAGMA now */
    /* Held by the writer for a whole batch, and by the synchronous app
     * functions, so the write connection is used by one thread at once. */
    pthread_mutex_t db_mu;

    pthread_mutex_t mu; /* guards the queue, flags and stats */
    pthread_cond_t cv;  /* writer: work arrived / closing / resumed */
    /* Two FIFOs: pushes and sightings, and the bookkeeping (status counts,
     * acks) that arrives in bursts every flush window (store_writer.c). */
    store_job_t *head, *tail;
    store_job_t *lo_head, *lo_tail;
    store_job_t *free_jobs; /* under mu: jobs to reuse */
    void **job_chunks;      /* what free_jobs came from (freed at close) */
    int n_chunks;
    long queued;    /* both */
    long lo_queued; /* the bookkeeping FIFO */
    bool closing;
    bool paused;
    pthread_t thread;
    bool thread_started;

    store_pend_t *pend;             /* writer thread only; NULL = not held */
    store_hot_t *hot;               /* writer thread only; NULL = SQL only */
    _Atomic long hot_n;             /* pushes held hot (readers' quick test) */
    uint64_t fold_asked, fold_done; /* under mu: store__hot_barrier */
    pthread_cond_t fold_cv;         /* fold_done moved */

    /* store_ckpt.c: the checkpointer thread and its connection */
    sqlite3 *ckpt_db;
    pthread_t ckpt_thread;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
    bool ckpt_want, ckpt_stop, ckpt_init, ckpt_started;
    void (*done_hook)(void *ctx, bool begin); /* store_set_done_hook */
    void *done_hook_ctx;
    _Atomic(store_observe_fn) obs_fn; /* store_set_observer */
    void *_Atomic obs_ctx;

    /* store_sq_fault(): what the last commit (sql) or journal write that wrote
     * anything said; set and cleared by the writer (store__fault_note). */
    _Atomic int fault_sql, fault_journal;
    /* Writer only: after a background write failed (a fold, held counts),
     * none is tried again before retry_at (mono ms); retry_ms doubles
     * from 10 ms to 1 s, so a full disk costs a few retries a second, not
     * a core. */
    uint64_t retry_at, retry_ms;
    int fold_rc; /* under mu: the last full fold's result */

    store_stats_t stats;
    double commit_ms_total;
    long replaced; /* writer thread only; published in stats */
    /* Inbox rows dropped by inbox_max (a rolled-back batch may have
     * counted a few that came back). */
    _Atomic long dropped;
};

struct store_sq_reader {
    store_sq_t *st;
    sqlite3 *db;
    sqlite3_stmt *stmts[R_COUNT];
};

/* store_sqlite.c */
int store__open_conn(const char *path, bool writer, bool sync_full,
                     sqlite3 **out);
sqlite3_stmt *store__stmt(sqlite3 *db, sqlite3_stmt **slot, const char *sql);
int store__sql_err(sqlite3 *db, int rc, const char *what);
int store__exec(sqlite3 *db, const char *sql);
/* s with ?1 and ?2 bound to the strings (borrowed until the step), for the
 * many statements keyed by (app, device); NULL stays NULL. */
sqlite3_stmt *store__bind2(sqlite3_stmt *s, const char *a, const char *b);
sqlite3_stmt *store__bind1(sqlite3_stmt *s, const char *a); /* ?1 only */
/* Writer: records what a write that reached the disk said (rc >= 0: it
 * worked) in *which (&st->fault_sql or &st->fault_journal). */
void store__fault_note(store_sq_t *st, _Atomic int *which, int rc);
/* Write connection only, under db_mu: fsync at commit (full, when the
 * config allows) or not (see batch_needs_fsync in store_writer.c). */
void store__set_sync(store_sq_t *st, bool full);

/* Reports one operation to the observer, if any. */
void store__observe(store_sq_t *st, int obs, uint64_t since_us, bool failed);

/* store_pend.c (the writer; store_count from any thread) */
int store__pend_init(store_sq_t *st);
void store__pend_free(store_sq_t *st);
/* Holds a STATUS request that counts only routed/written; false: run it. */
bool store__pend_put(store_sq_t *st, const store_req_t *req, int64_t now);
/* Holds routed/written counts of msg_id for its ack (a stored push's
 * done() reported them); false: not held (the table is full). */
bool store__pend_hold(store_sq_t *st, const char *msg_id, long routed,
                      long written, int64_t now);
/* Takes msg's held counts for its ack's UPDATE (undone by a rollback). */
bool store__pend_take(store_sq_t *st, const char *msg_id,
                      store_pend_ent_t *out);
/* After a transaction: its takes stand (committed) or are put back. */
void store__pend_settle(store_sq_t *st, bool committed);
/* Takes the due entries (all: every one) out of the table into *out
 * (malloc'd, the caller frees): how many. */
uint32_t store__pend_due(store_sq_t *st, bool all, store_pend_ent_t **out);
/* Puts entries back (their row was not there yet, or the write failed). */
void store__pend_back(store_sq_t *st, const store_pend_ent_t *e, uint32_t n);
/* store_ops.c: writes the due entries in one transaction; how many, or an
 * error. */
long store__status_flush(store_sq_t *st, bool all);
#define STORE_PEND_MS 500 /* routed/written wait that long for the ack */
/* Mono ms the next held entry is due; 0 = none held. */
uint64_t store__pend_next_due(store_sq_t *st);

/* store_hot.c: single-device pushes held in memory behind a journal. */
/* Before the writer starts: replays and empties the journal of a crashed
 * run and takes it over (stays SQL only if another process holds it). */
int store__hot_open(store_sq_t *st);
void store__hot_free(store_hot_t *h);
/* Writer thread.  _append and _ack take a request they can do in memory
 * (true, *rc its result); false: run it through SQL after a full fold. */
bool store__hot_append(store_sq_t *st, store_req_t *req, int64_t now, int *rc,
                       void **hot);
bool store__hot_ack(store_sq_t *st, store_req_t *req, int64_t now, int *rc);
/* Writer: holds (true) or releases the lock readers of hot pushes take,
 * around every change of the device table or the entry lists. */
void store__hot_lock(store_sq_t *st, bool lock);
/* Any thread: the device's unacked hot pushes after `after` whose records
 * are on disk, by seq (store_inbox_fetch merges them with SQLite's);
 * *drop_to: seqs up to it are dropped by inbox_max (SQLite's rows too,
 * even before the fold that trims them). */
int store__hot_fetch(store_sq_t *st, const char *app, const char *dev,
                     int64_t after, uint32_t limit, int64_t now,
                     store_rows_t *out, int64_t *drop_to);
/* After an ACK that also ran through SQL committed: its results. */
void store__hot_acked(store_sq_t *st, store_req_t *req);
/* Starts writing this batch's journal records and their fdatasync;
 * _wait returns when they are on disk (0) or failed. */
int store__hot_sync_start(store_sq_t *st);
int store__hot_sync_wait(store_sq_t *st);
/* Folds hot pushes into SQLite in their own transaction: those old enough
 * (HOT_OLD), all of them and every device row (HOT_ALL), or only the
 * device rows (HOT_DEVS); rows written or an error. */
enum { HOT_OLD, HOT_ALL, HOT_DEVS, HOT_RESCUE };
long store__hot_fold(store_sq_t *st, int mode);
/* After the journal write of a batch failed and no fold could save it:
 * its pushes leave memory as if never taken (their seqs stay used), so a
 * push answered with a failure is never delivered. */
void store__hot_discard(store_sq_t *st);
/* Forgets a cached device the SQL path changed (after a full fold). */
void store__hot_forget(store_sq_t *st, const char *app, const char *dev);
void store__hot_rotate(store_sq_t *st);
/* Mono ms the oldest hot push is due for folding; 0 = none. */
uint64_t store__hot_next_due(const store_sq_t *st);
/* Folds everything and empties the journal (writer stopping). */
void store__hot_close(store_sq_t *st);
/* Any thread but the writer: returns 0 once every push acknowledged
 * before the call is in SQLite, or at once the fold's error (the store's
 * fault, STORE_E_TIMEOUT after 2 s): then SQLite lacks hot pushes. */
int store__hot_barrier(store_sq_t *st);

/* store_journal.c: a full disk's end: grows the current file by one block
 * (0, which clears the journal's fault, or STORE_E_NOSPACE). */
int store__journal_probe(store_sq_t *st);
/* Whether the disk takes writes again after a fault: one block more for
 * the journal, one row rewritten in SQLite (writer, between batches);
 * 0 or the error, the fault updated either way. */
int store__probe_faults(store_sq_t *st);

/* store_ckpt.c: WAL checkpoints off the writer thread. */
int store__ckpt_start(store_sq_t *st);
void store__ckpt_stop(store_sq_t *st);

/* store_schema.c */
int store__schema_ensure(sqlite3 *db);

/* App names and message ids: under 64 bytes (they are copied into fixed
 * fields of store_status_t and dup_msg_id). */
static inline bool store__name_ok(const char *s) {
    return s && *s && strlen(s) < 64;
}

/* store_ops.c (writer thread only) */
/* A hot push as SQLite gets it (store_hot.c): from a held entry when it
 * is folded, from a journal record when it is replayed. */
typedef struct hot_row {
    const char *msg_id, *app, *dev;
    const void *payload;
    uint32_t payload_len;
    int32_t ttl;
    bool need_ack;
    int64_t seq, created, expires;
    int64_t at_delivered, routed, written, at_acked; /* 0: not yet */
    int64_t at_dropped;
} hot_row_t;
/* Its message row (unless there) and, with inbox, its inbox row. */
int store__hot_write_row(store_sq_t *st, const hot_row_t *r, bool inbox);
/* A device's seq head and ack, each only moved forward. */
int store__hot_write_dev(store_sq_t *st, const char *app, const char *dev,
                         int64_t last_seq, int64_t acked);

/* Drops app/dev's inbox rows with seq <= upto, counting each message
 * `dropped` (inbox_max). */
int store__inbox_trim(store_sq_t *st, const char *app, const char *dev,
                      int64_t upto, int64_t now);
sqlite3_stmt *store__w(store_sq_t *st, enum wstmt id);
/* Steps a write statement to its end and resets it; 0 or a store error. */
int store__step(store_sq_t *st, sqlite3_stmt *s);
/* Runs one request's statements; 0 (req->duplicate says if it was an
 * idempotency hit) or a store error. */
int store__op_run(store_sq_t *st, store_req_t *req, int64_t now);

/* store_read.c: SQLite's rows only (store_view.c merges the hot inbox). */
int store__read_inbox(store_sq_reader_t *r, const char *app, const char *device,
                      int64_t after, uint32_t limit, int64_t now_ms,
                      store_rows_t *out);
int store__read_device_info(store_sq_reader_t *r, const char *app,
                            const char *device, store_device_info_t *out);
int store__read_status(store_sq_reader_t *r, const char *msg_id,
                       store_status_t *out);
/* The store a reader reads. */
store_sq_t *store__reader_store(store_sq_reader_t *r);

/* store_writer.c */
void *store__writer_main(void *arg);
/* store_queue.c: sleeps until work, closing, or the next sweep; up to
 * max_batch jobs detached from the queues (0: time to sweep or stop). */
int store__take_batch(store_sq_t *st, store_job_t **batch, uint64_t next_sweep,
                      bool *stop);
/* A done() that frees the request it is given (store-made requests). */
void store__free_done(store_req_t *req, store_done_t *d);
/* Gives jobs back to the free list (under st->mu). */
void store__jobs_put(store_sq_t *st, store_job_t **jobs, int n);

/* store_app.c: hex SHA-256 of an API key (keys are stored hashed). */
void store__key_hash(const char *key, char out[65]);

/* store_sweep.c */
int store__sweep(store_sq_t *st, int64_t now_ms, long *expired);

/* ---- the SQLite backend's entries (store_sq_backend.c lists them) ---- */
int store_sq_open(const store_config_t *cfg, store_sq_t **out);
void store_sq_close(store_sq_t *st);
int store_sq_submit(store_sq_t *st, store_req_t *req);
void store_sq_count(store_sq_t *st, const char *msg_id, int event, long n);
void store_sq_set_done_hook(store_sq_t *st, void (*fn)(void *ctx, bool begin),
                            void *ctx);
void store_sq_set_observer(store_sq_t *st, store_observe_fn fn, void *ctx);
void store_sq_pause(store_sq_t *st, bool paused);
void store_sq_stats(store_sq_t *st, store_stats_t *out);
int store_sq_fault(const store_sq_t *st);
int store_sq_reader_new(store_sq_t *st, store_sq_reader_t **out);
void store_sq_reader_free(store_sq_reader_t *r);
int store_sq_ping(store_sq_reader_t *r);
int store_sq_inbox_fetch(store_sq_reader_t *r, const char *app,
                         const char *device, int64_t after, uint32_t limit,
                         int64_t now_ms, store_rows_t *out);
int store_sq_bcast_fetch(store_sq_reader_t *r, const char *app, int64_t after,
                         uint32_t limit, int64_t now_ms, store_rows_t *out);
int store_sq_device_info(store_sq_reader_t *r, const char *app,
                         const char *device, store_device_info_t *out);
int store_sq_device_count(store_sq_reader_t *r, const char *app, int64_t *out);
int store_sq_device_known(store_sq_reader_t *r, const char *app,
                          const char *device, bool *known);
int store_sq_status_get(store_sq_reader_t *r, const char *msg_id,
                        store_status_t *out);
int store_sq_app_create(store_sq_t *st, const char *name, int unknown_device,
                        store_app_t *app, char *key_out, size_t cap);
int store_sq_app_rotate_key(store_sq_t *st, const char *name, char *key_out,
                            size_t cap);
int store_sq_app_put(store_sq_t *st, const char *name, const char *secret,
                     const char *api_key);
int store_sq_app_revoke_key(store_sq_t *st, const char *name,
                            const char *api_key);
int store_sq_app_set_unknown_device(store_sq_t *st, const char *name, int mode);
int store_sq_app_get(store_sq_reader_t *r, const char *name, store_app_t *out);
int store_sq_app_by_key(store_sq_reader_t *r, const char *api_key,
                        store_app_t *out);
int store_sq_app_list(store_sq_reader_t *r,
                      void (*fn)(void *ctx, const store_app_t *app, int n_keys),
                      void *ctx);
int store_sq_device_revoke(store_sq_t *st, const char *app, const char *device,
                           int64_t before_s, int64_t *out);
int store_sq_revocations(store_sq_reader_t *r, int64_t since_s,
                         void (*fn)(void *ctx, const char *app,
                                    const char *device, int64_t before_s),
                         void *ctx);

#endif
