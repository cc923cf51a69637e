/*
 * The TTL sweeper, run by the writer thread between batches.  A message
 * row lives two phases, both driven by one index (messages.sweep_at):
 *
 *   phase 0, due at expiry: its remaining (unacked) inbox rows and its
 *     broadcast row are deleted and counted as EXPIRED in its status;
 *   phase 1, due at max(expiry, created + idempotency window): the row
 *     itself (status, payload, request id) is deleted.
 *
 * Work is done in slices of SWEEP_SLICE messages, one transaction each, so
 * pushes queued behind a large expiry wait at most one slice.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"

#define SWEEP_SLICE 512
#define SWEEP_MAX_MS 50

struct due {
    char *msg_id, *app, *device; /* device: NULL unless single-device */
    int phase;
    int64_t expires_ms, created_ms;
};

static int step_reset(store_sq_t *st, sqlite3_stmt *s, const char *what) {
    if (!s) return STORE_E_IO;
    int rc = sqlite3_step(s);
    rc = rc == SQLITE_DONE || rc == SQLITE_ROW
             ? 0
             : store__sql_err(st->db, rc, what);
    sqlite3_reset(s);
    return rc;
}

static int run_id(store_sq_t *st, enum wstmt id, const char *msg_id) {
    sqlite3_stmt *s = store__w(st, id);
    if (!s) return STORE_E_IO;
    sqlite3_bind_text(s, 1, msg_id, -1, SQLITE_STATIC);
    return step_reset(st, s, "sweep");
}

/* Deletes dev's inbox rows of d's message, adding them to *n. */
static int drop_rows(store_sq_t *st, const struct due *d, const char *dev,
                     int64_t *n) {
    sqlite3_stmt *s =
        store__bind2(store__w(st, W_SWEEP_INBOX_DEL), d->app, dev);
    if (!s) return STORE_E_IO;
    sqlite3_bind_text(s, 3, d->msg_id, -1, SQLITE_STATIC);
    int rc = step_reset(st, s, "sweep inbox");
    if (rc == 0) *n += sqlite3_changes(st->db);
    return rc;
}

/* The message's remaining (unacked) inbox rows, deleted and counted: the
 * single device's, or each listed target's (schema_v3 in store_schema.c). */
static int drop_inbox(store_sq_t *st, const struct due *d, int64_t *n) {
    int rc = d->device ? drop_rows(st, d, d->device, n) : 0;
    if (rc < 0) return rc;
    sqlite3_stmt *s = store__bind1(store__w(st, W_SWEEP_TARGETS), d->msg_id);
    if (!s) return STORE_E_IO;
    /* Deleting inbox rows while this cursor walks inbox_targets is safe. */
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *dev = (const char *)sqlite3_column_text(s, 0);
        if ((rc = drop_rows(st, d, dev ? dev : "", n)) < 0) break;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = store__sql_err(st->db, step, "sweep targets");
    sqlite3_reset(s);
    return rc < 0 ? rc : run_id(st, W_SWEEP_TARGETS_DEL, d->msg_id);
}

/* Phase 0 of one message; *removed set when the row went too. */
static int expire_one(store_sq_t *st, const struct due *d, int64_t now,
                      bool *removed) {
    int64_t n = 0;
    int rc = drop_inbox(st, d, &n);
    if (rc == 0) rc = run_id(st, W_SWEEP_BCAST_DEL, d->msg_id);
    if (rc < 0) return rc;
    n += sqlite3_changes(st->db); /* the broadcast row, if any */
    int64_t keep = d->created_ms + (int64_t)st->cfg.idem_window_s * 1000;
    if (d->expires_ms > keep) keep = d->expires_ms;
    if (keep <= now) {
        *removed = true;
        return run_id(st, W_SWEEP_MSG_DEL, d->msg_id);
    }
    sqlite3_stmt *s = store__bind1(store__w(st, W_SWEEP_MARK), d->msg_id);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int64(s, 2, keep);
    sqlite3_bind_int64(s, 3, n);
    sqlite3_bind_int64(s, 4, now);
    return step_reset(st, s, "sweep mark");
}

/* Collects up to SWEEP_SLICE due messages (copied: the rows change under
 * the cursor otherwise). */
static int collect_due(store_sq_t *st, int64_t now, struct due *due, int *n) {
    sqlite3_stmt *s = store__w(st, W_SWEEP_DUE);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int(s, 2, SWEEP_SLICE);
    int rc;
    *n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        const char *app = (const char *)sqlite3_column_text(s, 4);
        const char *dev = (const char *)sqlite3_column_text(s, 5);
        struct due *d = &due[*n];
        d->msg_id = strdup(id ? id : "");
        d->app = strdup(app ? app : "");
        d->device = dev ? strdup(dev) : NULL;
        (*n)++; /* freed by the caller, even when incomplete */
        if (!d->msg_id || !d->app || (dev && !d->device)) {
            sqlite3_reset(s);
            return STORE_E_NOMEM;
        }
        d->phase = sqlite3_column_int(s, 1);
        d->expires_ms = sqlite3_column_int64(s, 2);
        d->created_ms = sqlite3_column_int64(s, 3);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : store__sql_err(st->db, rc, "sweep due");
}

static int sweep_slice(store_sq_t *st, int64_t now, struct due *due, int *n,
                       long *expired) {
    int rc = store__exec(st->db, "BEGIN IMMEDIATE");
    if (rc < 0) return rc;
    long gone = 0;
    rc = collect_due(st, now, due, n);
    for (int i = 0; rc == 0 && i < *n; i++) {
        bool removed = due[i].phase != 0;
        rc = removed ? run_id(st, W_SWEEP_MSG_DEL, due[i].msg_id)
                     : expire_one(st, &due[i], now, &removed);
        gone += removed;
    }
    for (int i = 0; i < *n; i++) {
        free(due[i].msg_id);
        free(due[i].app);
        free(due[i].device);
    }
    if (rc == 0) rc = store__exec(st->db, "COMMIT");
    if (rc < 0) {
        (void)store__exec(st->db, "ROLLBACK"); /* rc is the error to report */
        return rc;
    }
    *expired += gone;
    return 0;
}

int store__sweep(store_sq_t *st, int64_t now_ms, long *expired) {
    struct due *due = calloc(SWEEP_SLICE, sizeof *due);
    if (!due) return STORE_E_NOMEM;
    uint64_t t0 = clock_mono_ms();
    int n, rc;
    do {
        rc = sweep_slice(st, now_ms, due, &n, expired);
    } while (rc == 0 && n == SWEEP_SLICE &&
             clock_mono_ms() - t0 < SWEEP_MAX_MS);
    free(due);
    return rc;
}
