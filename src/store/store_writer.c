/*
 * The writer thread: group commit.  It takes the queued requests (pushes
 * first, then a bounded share of bookkeeping), runs them in ONE
 * transaction (BEGIN IMMEDIATE .. COMMIT) and only after COMMIT returns
 * calls each request's done().  If COMMIT fails, every request of the
 * batch gets the error: nothing of it is acknowledged.  A failing request
 * leaves no row of its own behind (see try_batch).  Between batches it
 * runs the TTL sweeper.  The operations themselves are in store_ops.c.
 */
#include "store/store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"

/* One request inside its savepoint; its failure undoes only its rows. */
static int run_one_savepoint(store_sq_t *st, store_req_t *req, int64_t now,
                             long *rows) {
    int rc = store__step(st, store__w(st, W_SAVEPOINT));
    if (rc < 0) return rc;
    int64_t before = sqlite3_total_changes64(st->db);
    long replaced = st->replaced;
    rc = store__op_run(st, req, now);
    if (rc == STORE_OK) {
        *rows += (long)(sqlite3_total_changes64(st->db) - before);
        return store__step(st, store__w(st, W_RELEASE));
    }
    st->replaced = replaced;
    int rc2 = store__step(st, store__w(st, W_ROLLBACK_TO));
    if (rc2 == 0) rc2 = store__step(st, store__w(st, W_RELEASE));
    return rc2 < 0 ? rc2 : rc;
}

enum { BATCH_REDO = -2 };

/*
 * The batch in one transaction.  With savepoints each request can fail
 * alone; but a SAVEPOINT costs a statement pair and a page bitmap per
 * request (a fifth of the writer's CPU in a profile of bench_store), and
 * requests almost never fail after writing: validation, idempotency hits
 * and unknown devices fail before their first row.  So the first pass runs
 * without savepoints and gives up (BATCH_REDO) only when a request failed
 * after changing rows; the caller rolls back and reruns the batch with a
 * savepoint per request.  Returns rows written, -1 if it did not commit.
 */
static long try_batch(store_sq_t *st, store_job_t **batch, int n, int64_t now,
                      bool savepoints) {
    long rows = 0;
    int rc = store__exec(st->db, "BEGIN IMMEDIATE");
    for (int i = 0; i < n; i++) {
        if (rc < 0) {
            batch[i]->rc = rc;
        } else if (savepoints) {
            batch[i]->rc = run_one_savepoint(st, batch[i]->req, now, &rows);
        } else {
            int64_t before = sqlite3_total_changes64(st->db);
            batch[i]->rc = store__op_run(st, batch[i]->req, now);
            int64_t changed = sqlite3_total_changes64(st->db) - before;
            if (batch[i]->rc < 0 && changed > 0) return BATCH_REDO;
            rows += (long)changed;
        }
    }
    if (rc == 0 && (rc = store__exec(st->db, "COMMIT")) < 0) {
        /* Not durable, so nobody may be told it is. */
        for (int i = 0; i < n; i++) batch[i]->rc = rc;
    }
    return rc < 0 ? -1 : rows;
}

/*
 * Only messages a device has yet to receive must survive a power loss: a
 * batch of nothing but status counts, acks, device sightings and records of
 * online-only pushes is committed without an fsync (WAL with synchronous
 * NORMAL: safe against a process crash, lost at worst on power loss, which
 * means a redelivery or a recount).  On this VM an fsync costs more CPU
 * than fanning a broadcast out to 19,000 sockets, and every online push
 * writes a status record, so this halves the server CPU per delivery.
 */
static bool batch_needs_fsync(store_job_t **batch, int n) {
    for (int i = 0; i < n; i++)
        if (batch[i]->req->op == STORE_OP_INBOX_APPEND ||
            batch[i]->req->op == STORE_OP_BCAST_APPEND)
            return true;
    return false;
}

/* Status requests that store_pend.c holds for their message's ack leave
 * the batch (to its end, answered 0); the rest keep their order.  Returns
 * how many remain to run. */
static int hold_status(store_sq_t *st, store_job_t **batch, int n,
                       int64_t now) {
    int keep = 0, held = 0;
    store_job_t *later[n > 0 ? n : 1]; /* n <= max_batch: 32 KiB at most */
    for (int i = 0; i < n; i++) {
        if (batch[i]->req->op == STORE_OP_STATUS &&
            store__pend_put(st, batch[i]->req, now)) {
            batch[i]->rc = 0;
            later[held++] = batch[i];
        } else {
            batch[keep++] = batch[i];
        }
    }
    memcpy(batch + keep, later, (size_t)held * sizeof *later);
    return keep;
}

static long sql_batch(store_sq_t *st, store_job_t **batch, int n, int64_t now,
                      long replaced0);

/* Requests the hot inbox does in memory (store_hot.c) leave the batch to
 * its end, their results set; the rest keep their order.  *hot gets how
 * many left.  Returns how many remain for SQL. */
static int take_hot(store_sq_t *st, store_job_t **batch, int n, int64_t now,
                    int *hot) {
    int keep = 0, took = 0;
    store_job_t *later[n > 0 ? n : 1];
    store__hot_lock(st, true);
    for (int i = 0; st->hot && i < n; i++) {
        store_job_t *j = batch[i];
        int rc = 0;
        if (store__hot_append(st, j->req, now, &rc, &j->hot) ||
            store__hot_ack(st, j->req, now, &rc)) {
            j->rc = rc;
            later[took++] = j;
        } else {
            batch[keep++] = j;
        }
    }
    store__hot_lock(st, false);
    if (!st->hot) keep = n;
    memcpy(batch + keep, later, (size_t)took * sizeof *later);
    *hot = took;
    return keep;
}

/*
 * SQL requests that read or change what a hot push holds see every hot
 * push in SQLite first: appends (a device's seq head, its collapseKey
 * rows), sightings (a device's cursors) and status counts (a message
 * row).  An ack needs no fold: the hot part of it is done in memory
 * (store__hot_ack), the SQL part covers only rows already in SQLite.
 */
static bool needs_fold(store_job_t **batch, int n) {
    for (int i = 0; i < n; i++) {
        int op = batch[i]->req->op;
        if (op != STORE_OP_ACK && op != STORE_OP_ACCEPT &&
            op != STORE_OP_BCAST_APPEND)
            return true;
    }
    return false;
}

/* Devices an SQL request changed are dropped from the hot cache (their
 * heads are stale); an ack's results update it. */
static void after_sql(store_sq_t *st, store_job_t **batch, int n) {
    for (int i = 0; i < n; i++) {
        store_req_t *r = batch[i]->req;
        if (r->op == STORE_OP_INBOX_APPEND)
            for (uint32_t k = 0; r->devices && k < r->n_devices; k++)
                store__hot_forget(st, r->msg.app, r->devices[k]);
        else if (r->op == STORE_OP_DEVICE_SEEN)
            store__hot_forget(st, r->msg.app, r->device);
        else if (r->op == STORE_OP_ACK && batch[i]->rc == 0)
            store__hot_acked(st, r);
    }
}

/* Waits for this batch's hot records to be on disk (store__hot_sync_start
 * began writing them).  If the journal fails, a full fold with an fsync
 * makes them durable in SQLite instead; only if that fails too are their
 * pushes answered with the error, and then they leave memory with it: a
 * push answered with a failure must never be delivered (a client that
 * retries would get it twice under two ids). */
static void hot_durable(store_sq_t *st, store_job_t **batch, int from, int n) {
    int jrc = store__hot_sync_wait(st);
    if (jrc == 0) return;
    for (int i = from; i < from + n; i++)
        batch[i]->hot = NULL; /* the fold below frees the entries */
    store__set_sync(st, true);
    long rc = store__hot_fold(st, HOT_RESCUE);
    store__fault_note(st, &st->fault_sql, (int)(rc < 0 ? rc : 0));
    if (rc >= 0) return;
    store__hot_discard(st);
    if (jrc == STORE_E_NOSPACE) rc = jrc; /* the cause worth telling */
    for (int i = from; i < from + n; i++)
        if (batch[i]->req->op == STORE_OP_INBOX_APPEND && batch[i]->rc == 0)
            batch[i]->rc = (int)rc;
}

/* What a batch's SQL said about the disk: a request or the commit that
 * failed for want of space (or with an I/O error) sets the store's fault;
 * a commit that wrote rows clears it. */
static void note_disk(store_sq_t *st, store_job_t **batch, int n, long rows) {
    for (int i = 0; i < n; i++) {
        int rc = batch[i]->rc;
        if (rc == STORE_E_NOSPACE || rc == STORE_E_IO) {
            store__fault_note(st, &st->fault_sql, rc);
            return;
        }
    }
    if (rows > 0) store__fault_note(st, &st->fault_sql, 0);
}

/* The requests the hot inbox took: batch[from .. from + n). */
struct hot_part {
    int from, n;
};

/* Leaves the hot part's journal write in flight (hot_durable ends it)
 * unless an SQL request needs every hot push folded first. */
static long run_batch(store_sq_t *st, store_job_t **batch, int n,
                      struct hot_part *hp) {
    int64_t now = (int64_t)clock_wall_ms();
    long replaced0 = st->replaced;
    n = hold_status(st, batch, n, now);
    int hot = 0;
    n = take_hot(st, batch, n, now, &hot);
    hp->from = n;
    hp->n = hot;
    if (hot) (void)store__hot_sync_start(st); /* failures: at the wait */
    if (n == 0) return 0;
    long folded = 0;
    if (needs_fold(batch, n)) {
        hot_durable(st, batch, hp->from, hp->n);
        store__set_sync(st, false);
        if ((folded = store__hot_fold(st, HOT_ALL)) < 0) {
            store__fault_note(st, &st->fault_sql, (int)folded);
            for (int i = 0; i < n; i++) batch[i]->rc = (int)folded;
            return -1;
        }
    }
    long rows = sql_batch(st, batch, n, now, replaced0);
    note_disk(st, batch, n, rows + folded);
    after_sql(st, batch, n);
    return rows < 0 ? rows : rows + folded;
}

static long sql_batch(store_sq_t *st, store_job_t **batch, int n, int64_t now,
                      long replaced0) {
    store__set_sync(st, batch_needs_fsync(batch, n));
    long rows = try_batch(st, batch, n, now, false);
    if (rows == BATCH_REDO) {
        (void)store__exec(st->db, "ROLLBACK"); /* undoes the whole pass */
        store__pend_settle(st, false);
        st->replaced = replaced0;
        rows = try_batch(st, batch, n, now, true);
    }
    store__pend_settle(st, rows >= 0);
    if (rows < 0) {
        /* A failed COMMIT or BEGIN may leave the transaction open. */
        if (!sqlite3_get_autocommit(st->db))
            (void)store__exec(st->db, "ROLLBACK");
        st->replaced = replaced0;
        return -1;
    }
    return rows;
}

static int obs_of(int op) {
    switch (op) {
    case STORE_OP_ACCEPT:
    case STORE_OP_INBOX_APPEND:
    case STORE_OP_BCAST_APPEND: return STORE_OBS_APPEND;
    case STORE_OP_ACK: return STORE_OBS_ACK;
    default: return STORE_OBS_OTHER;
    }
}

/* A stored push's done() delivered it: its counts wait in the held
 * table for its ack (or its fold). */
static void delivered(store_sq_t *st, const char *msg_id, const store_done_t *d,
                      int64_t now) {
    if (d->routed <= 0 && d->written <= 0) return;
    if (!store__pend_hold(st, msg_id, d->routed, d->written, now)) {
        /* The table is full: a STATUS request of its own instead. */
        store_req_t *r = calloc(1, sizeof *r + strlen(msg_id) + 1);
        if (!r) return; /* a count lost, as a full push window loses it */
        r->op = STORE_OP_STATUS;
        r->msg.msg_id = strcpy((char *)(r + 1), msg_id);
        r->counts[STORE_EV_ROUTED] = d->routed;
        r->counts[STORE_EV_WRITTEN] = d->written;
        r->done = store__free_done;
        if (store_sq_submit(st, r) < 0) free(r);
    }
}

static void batch_finish(store_sq_t *st, store_job_t **batch, int n, long rows,
                         uint64_t t0_us) {
    double ms = (double)(clock_mono_us() - t0_us) / 1000.0;
    pthread_mutex_lock(&st->mu);
    if (rows >= 0) {
        st->stats.commits++;
        st->stats.rows_written += rows;
    }
    st->stats.replaced = st->replaced;
    st->stats.requests += n;
    st->commit_ms_total += ms;
    pthread_mutex_unlock(&st->mu);
    /* The caller's hook: the loops the done()s wake, woken once each. */
    if (st->done_hook) st->done_hook(st->done_hook_ctx, true);
    int64_t now = (int64_t)clock_wall_ms();
    for (int i = 0; i < n; i++) {
        store_job_t *j = batch[i];
        store_req_t *r = j->req;
        /* NOTFOUND is an answer (a swept message, an unknown device). */
        store__observe(st, obs_of(r->op), j->submit_us,
                       j->rc < 0 && j->rc != STORE_E_NOTFOUND);
        if (!r->done) continue;
        store_done_t d = {.rc = j->rc};
        char id[64];
        bool push = (r->op == STORE_OP_INBOX_APPEND ||
                     r->op == STORE_OP_BCAST_APPEND) &&
                    j->rc == 0 && !r->duplicate && store__name_ok(r->msg.msg_id);
        if (push) snprintf(id, sizeof id, "%s", r->msg.msg_id);
        r->done(r, &d); /* r may be freed by its owner now */
        if (push) delivered(st, id, &d, now);
    }
    if (st->done_hook) st->done_hook(st->done_hook_ctx, false);
    pthread_mutex_lock(&st->mu);
    store__jobs_put(st, batch, n);
    pthread_mutex_unlock(&st->mu);
}

static void sweep_now(store_sq_t *st) {
    long expired = 0;
    uint64_t t0 = clock_mono_us();
    pthread_mutex_lock(&st->db_mu);
    int rc = store__sweep(st, (int64_t)clock_wall_ms(), &expired);
    pthread_mutex_unlock(&st->db_mu);
    store__observe(st, STORE_OBS_EXPIRE, t0, rc < 0);
    if (rc < 0)
        log_warn("store sweep failed", "err=\"%s\"", herald_strerror(rc));
    pthread_mutex_lock(&st->mu);
    st->stats.expired += expired;
    pthread_mutex_unlock(&st->mu);
}

/* Background writes (folds, held counts) that failed are not retried
 * before st->retry_at: on a full disk the writer retried a failed fold in
 * a tight loop at 100 % CPU.  The wait doubles from RETRY_MIN_MS to
 * RETRY_MAX_MS and starts over once a write works. */
#define RETRY_MIN_MS 10
#define RETRY_MAX_MS 1000

static bool backing_off(const store_sq_t *st) {
    return st->retry_at && clock_mono_ms() < st->retry_at;
}

static void retry_after(store_sq_t *st, long rc) {
    if (rc >= 0) {
        st->retry_at = st->retry_ms = 0;
        return;
    }
    st->retry_ms = st->retry_ms ? st->retry_ms * 2 : RETRY_MIN_MS;
    if (st->retry_ms > RETRY_MAX_MS) st->retry_ms = RETRY_MAX_MS;
    st->retry_at = clock_mono_ms() + st->retry_ms;
}

/* Hot pushes old enough, or all of them for readers waiting on a
 * barrier (store__hot_barrier), into SQLite.  While a batch's journal
 * write is in flight (overlap) only the old ones: a reader must not see a
 * push that a crash could still take back.  While backing off, readers
 * get the failure at once instead of a fold that would fail again. */
static void fold_hot(store_sq_t *st, bool overlap) {
    if (!st->hot) return;
    pthread_mutex_lock(&st->mu);
    uint64_t asked = st->fold_asked;
    bool all = !overlap && asked != st->fold_done;
    bool waiting = st->head != NULL;
    pthread_mutex_unlock(&st->mu);
    long rows = 0;
    bool tried = false;
    if (backing_off(st)) {
        int f = store_sq_fault(st);
        if (all) rows = f ? f : STORE_E_IO;
    } else {
        pthread_mutex_lock(&st->db_mu);
        store__set_sync(st, false); /* the journal holds them durably */
        /* With pushes waiting, old pushes fold in the next batch's overlap
         * (free time: the writer would only wait for the disk), not here
         * between batches, where a fold held the waiting pushes back: ~80
         * of a 560 µs writer cycle at 46k pushes/s, 15 % of the store's
         * latency. */
        if (overlap || all || !waiting) {
            rows = store__hot_fold(st, all ? HOT_ALL : HOT_OLD);
            tried = rows != 0;
        }
        if (!overlap && rows >= 0) store__hot_rotate(st);
        pthread_mutex_unlock(&st->db_mu);
    }
    if (tried) {
        retry_after(st, rows);
        store__fault_note(st, &st->fault_sql, (int)(rows < 0 ? rows : 0));
    }
    pthread_mutex_lock(&st->mu);
    if (rows > 0) st->stats.rows_written += rows;
    if (all) {
        st->fold_done = asked;
        st->fold_rc = rows < 0 ? (int)rows : 0;
        pthread_cond_broadcast(&st->fold_cv);
    }
    pthread_mutex_unlock(&st->mu);
}

int store__probe_faults(store_sq_t *st) {
    int rc = 0;
    if (atomic_load(&st->fault_journal)) rc = store__journal_probe(st);
    if (rc == 0 && atomic_load(&st->fault_sql)) {
        pthread_mutex_lock(&st->db_mu);
        rc = store__exec(st->db, "UPDATE journal_files SET in_use=in_use"
                                 " WHERE file=0");
        if (rc == 0 && sqlite3_changes(st->db) == 0) /* no row: any write */
            rc = store__exec(st->db, "PRAGMA user_version=" STORE_SCHEMA_STR);
        pthread_mutex_unlock(&st->db_mu);
        store__fault_note(st, &st->fault_sql, rc);
    }
    return rc;
}

/* Held status counts whose ack did not come in time, written alone. */
static void flush_held(store_sq_t *st, bool all) {
    if (!store__pend_next_due(st)) return;
    if (!all && (clock_mono_ms() < store__pend_next_due(st) || backing_off(st)))
        return;
    pthread_mutex_lock(&st->db_mu);
    long n = store__status_flush(st, all);
    pthread_mutex_unlock(&st->db_mu);
    if (!all && n != 0) retry_after(st, n);
    if (n > 0) {
        pthread_mutex_lock(&st->mu);
        st->stats.rows_written += n;
        pthread_mutex_unlock(&st->mu);
    }
}

void *store__writer_main(void *arg) {
    store_sq_t *st = arg;
    (void)pthread_setname_np(pthread_self(), "herald-store"); /* top -H */
    store_job_t **batch = calloc((size_t)st->cfg.max_batch, sizeof *batch);
    uint64_t next_sweep = clock_mono_ms() + (uint64_t)st->cfg.sweep_interval_ms;
    bool stop = false;
    while (!stop) {
        int n = batch ? store__take_batch(st, batch, next_sweep, &stop) : 0;
        if (n > 0) {
            uint64_t t0 = clock_mono_us();
            struct hot_part hp;
            pthread_mutex_lock(&st->db_mu);
            long rows = run_batch(st, batch, n, &hp);
            pthread_mutex_unlock(&st->db_mu);
            fold_hot(st, true); /* while the journal flushes */
            pthread_mutex_lock(&st->db_mu);
            hot_durable(st, batch, hp.from, hp.n);
            pthread_mutex_unlock(&st->db_mu);
            batch_finish(st, batch, n, rows, t0);
        }
        if (!batch) {
            log_error("store writer out of memory", NULL);
            break;
        }
        fold_hot(st, false);
        flush_held(st, false);
        /* A fault with no traffic to clear it: try the disk again now and
         * then, so /readyz turns ready when space is back. */
        if (store_sq_fault(st) && !backing_off(st))
            retry_after(st, store__probe_faults(st));
        if (!stop && clock_mono_ms() >= next_sweep) {
            sweep_now(st);
            next_sweep = clock_mono_ms() + (uint64_t)st->cfg.sweep_interval_ms;
        }
    }
    pthread_mutex_lock(&st->db_mu);
    store__hot_close(st);
    pthread_mutex_unlock(&st->db_mu);
    flush_held(st, true); /* closing: nothing held is left behind */
    pthread_mutex_lock(&st->mu);
    st->fold_done = st->fold_asked;
    pthread_cond_broadcast(&st->fold_cv);
    pthread_mutex_unlock(&st->mu);
    free(batch);
    return NULL;
}
