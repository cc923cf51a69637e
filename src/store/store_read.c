/*
 * Reads of SQLite: one connection per store_sq_reader_t, used by one
 * thread, beside the writer (WAL).  Timeline fetches join the
 * inbox/broadcast rows to the messages table, where each payload is
 * stored once.  What the hot inbox holds is merged in above, by
 * store_view.c.
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"

static const char *const rsql[R_COUNT] = {
    [R_INBOX_FETCH] =
        "SELECT i.seq, i.msg_id, m.payload, i.collapse_key, m.need_ack,"
        " m.created_ms, i.expires_ms FROM inbox i"
        " JOIN messages m ON m.msg_id=i.msg_id"
        " WHERE i.app=?1 AND i.device=?2 AND i.seq>?3 AND i.expires_ms>?4"
        " ORDER BY i.seq LIMIT ?5",
    [R_BCAST_FETCH] =
        "SELECT b.seq, b.msg_id, m.payload, m.collapse_key, m.need_ack,"
        " m.created_ms, b.expires_ms FROM bcast b"
        " JOIN messages m ON m.msg_id=b.msg_id"
        " WHERE b.app=?1 AND b.seq>?2 AND b.expires_ms>?3"
        " ORDER BY b.seq LIMIT ?4",
    [R_DEV_INFO] = "SELECT first_seen_ms, last_seen_ms, inbox_last_seq,"
                   " inbox_acked, bcast_cursor FROM devices"
                   " WHERE app=?1 AND device=?2",
    [R_DEV_DEPTH] = "SELECT count(*) FROM inbox WHERE app=?1 AND device=?2"
                    " AND seq>?3 AND expires_ms>?4",
    [R_DEV_COUNT] = "SELECT count(*) FROM devices WHERE app=?1",
    [R_STATUS] = "SELECT kind, app, ttl, targets, at_accepted, n_accepted,"
                 " at_stored, n_stored, at_routed, n_routed, at_written,"
                 " n_written, at_acked, n_acked, at_expired, n_expired,"
                 " at_dropped, n_dropped"
                 " FROM messages WHERE msg_id=?1",
    [R_APP_GET] = "SELECT name, secret, created_ms, unknown_device FROM apps"
                  " WHERE name=?1",
    [R_APP_BY_KEY] = "SELECT a.name, a.secret, a.created_ms, a.unknown_device"
                     " FROM api_keys k JOIN apps a ON a.name=k.app"
                     " WHERE k.key_hash=?1 AND k.revoked=0",
    [R_APP_LIST] = "SELECT a.name, a.secret, a.created_ms, a.unknown_device,"
                   " (SELECT count(*) FROM api_keys k"
                   "  WHERE k.app=a.name AND k.revoked=0)"
                   " FROM apps a ORDER BY a.name",
    [R_PING] = "SELECT count(*) FROM (SELECT 1 FROM apps LIMIT 1)",
    /* Known = connected at least once: a sighting sets last_seen_ms, while
     * a push to a device never seen registers it with 0. */
    [R_DEV_KNOWN] = "SELECT 1 FROM devices WHERE app=?1 AND device=?2"
                    " AND last_seen_ms>0",
    [R_REVOKE_SINCE] = "SELECT app, device, before_s FROM device_revocations"
                       " WHERE before_s>=?1",
};

static sqlite3_stmt *rstmt(store_sq_reader_t *r, enum rstmt id) {
    return store__stmt(r->db, &r->stmts[id], rsql[id]);
}

int store_sq_reader_new(store_sq_t *st, store_sq_reader_t **out) {
    store_sq_reader_t *r = calloc(1, sizeof *r);
    if (!r) return STORE_E_NOMEM;
    r->st = st;
    int rc =
        store__open_conn(st->path, false, st->cfg.synchronous_full, &r->db);
    if (rc < 0) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

store_sq_t *store__reader_store(store_sq_reader_t *r) { return r->st; }

void store_sq_reader_free(store_sq_reader_t *r) {
    if (!r) return;
    for (int i = 0; i < R_COUNT; i++) sqlite3_finalize(r->stmts[i]);
    sqlite3_close(r->db);
    free(r);
}

static char *col_strdup(sqlite3_stmt *s, int i) {
    const char *v = (const char *)sqlite3_column_text(s, i);
    return v ? strdup(v) : NULL;
}

static int row_fill(sqlite3_stmt *s, int timeline, store_row_t *row) {
    memset(row, 0, sizeof *row);
    row->seq = sqlite3_column_int64(s, 0);
    row->timeline = timeline;
    row->msg_id = col_strdup(s, 1);
    if (!row->msg_id) return STORE_E_NOMEM;
    int len = sqlite3_column_bytes(s, 2);
    const void *p = sqlite3_column_blob(s, 2);
    if (len > 0 && p) {
        if (!(row->payload = malloc((size_t)len))) return STORE_E_NOMEM;
        memcpy(row->payload, p, (size_t)len);
        row->payload_len = (size_t)len;
    }
    if (sqlite3_column_type(s, 3) != SQLITE_NULL &&
        !(row->collapse_key = col_strdup(s, 3)))
        return STORE_E_NOMEM;
    row->need_ack = sqlite3_column_int(s, 4) != 0;
    row->created_ms = sqlite3_column_int64(s, 5);
    row->expires_ms = sqlite3_column_int64(s, 6);
    return 0;
}

/* Steps a bound fetch statement that was asked for limit+1 rows. */
static int rows_collect(store_sq_reader_t *r, sqlite3_stmt *s, int timeline,
                        uint32_t limit, store_rows_t *out) {
    memset(out, 0, sizeof *out);
    int rc;
    if (limit && !(out->rows = calloc(limit, sizeof *out->rows))) {
        sqlite3_reset(s);
        return STORE_E_NOMEM;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (out->n == limit) {
            out->more = true;
            break;
        }
        int err = row_fill(s, timeline, &out->rows[out->n++]);
        if (err < 0) {
            sqlite3_reset(s);
            store_rows_free(out);
            return err;
        }
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        store_rows_free(out);
        return store__sql_err(r->db, rc, "fetch");
    }
    return 0;
}

/* SQLite's inbox rows only (store_view.c adds the hot inbox's). */
int store__read_inbox(store_sq_reader_t *r, const char *app, const char *device,
                      int64_t after, uint32_t limit, int64_t now_ms,
                      store_rows_t *out) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = store__bind2(rstmt(r, R_INBOX_FETCH), app, device);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int64(s, 3, after);
    sqlite3_bind_int64(s, 4, now_ms);
    sqlite3_bind_int64(s, 5, (int64_t)limit + 1);
    return rows_collect(r, s, 0, limit, out);
}

int store_sq_bcast_fetch(store_sq_reader_t *r, const char *app, int64_t after,
                         uint32_t limit, int64_t now_ms, store_rows_t *out) {
    sqlite3_stmt *s = store__bind1(rstmt(r, R_BCAST_FETCH), app);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int64(s, 2, after);
    sqlite3_bind_int64(s, 3, now_ms);
    sqlite3_bind_int64(s, 4, (int64_t)limit + 1);
    uint64_t t0 = clock_mono_us();
    int rc = rows_collect(r, s, 1, limit, out);
    store__observe(r->st, STORE_OBS_FETCH, t0, rc < 0);
    return rc;
}

static int one_count(store_sq_reader_t *r, sqlite3_stmt *s, int64_t *out) {
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 0 : store__sql_err(r->db, rc, "count");
}

int store__read_device_info(store_sq_reader_t *r, const char *app,
                            const char *device, store_device_info_t *out) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = store__bind2(rstmt(r, R_DEV_INFO), app, device);
    if (!s) return STORE_E_IO;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->known = true;
        out->first_seen_ms = sqlite3_column_int64(s, 0);
        out->last_seen_ms = sqlite3_column_int64(s, 1);
        out->inbox_last_seq = sqlite3_column_int64(s, 2);
        out->inbox_acked = sqlite3_column_int64(s, 3);
        out->bcast_cursor = sqlite3_column_int64(s, 4);
    }
    sqlite3_reset(s);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return store__sql_err(r->db, rc, "device info");
    if (!(s = rstmt(r, R_DEV_DEPTH))) return STORE_E_IO;
    sqlite3_bind_text(s, 1, app, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, out->inbox_acked);
    sqlite3_bind_int64(s, 4, (int64_t)clock_wall_ms());
    return one_count(r, s, &out->inbox_depth);
}

int store_sq_device_known(store_sq_reader_t *r, const char *app,
                          const char *device, bool *known) {
    sqlite3_stmt *s = store__bind2(rstmt(r, R_DEV_KNOWN), app, device);
    if (!s) return STORE_E_IO;
    int rc = sqlite3_step(s);
    *known = rc == SQLITE_ROW;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE
               ? 0
               : store__sql_err(r->db, rc, "device known");
}

int store_sq_ping(store_sq_reader_t *r) {
    sqlite3_stmt *s = rstmt(r, R_PING);
    if (!s) return STORE_E_IO;
    int64_t n;
    return one_count(r, s, &n);
}

int store_sq_device_count(store_sq_reader_t *r, const char *app, int64_t *out) {
    sqlite3_stmt *s = store__bind1(rstmt(r, R_DEV_COUNT), app);
    if (!s) return STORE_E_IO;
    return one_count(r, s, out);
}

int store__read_status(store_sq_reader_t *r, const char *msg_id,
                       store_status_t *out) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = store__bind1(rstmt(r, R_STATUS), msg_id);
    if (!s) return STORE_E_IO;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->kind = sqlite3_column_int(s, 0);
        const char *app = (const char *)sqlite3_column_text(s, 1);
        snprintf(out->app, sizeof out->app, "%s", app ? app : "");
        out->ttl = sqlite3_column_int(s, 2);
        out->targets = sqlite3_column_int64(s, 3);
        for (int e = 0; e < STORE_EV_COUNT; e++) {
            out->at_ms[e] = sqlite3_column_int64(s, 4 + 2 * e);
            out->count[e] = sqlite3_column_int64(s, 5 + 2 * e);
        }
    }
    sqlite3_reset(s);
    if (rc == SQLITE_ROW) return 0;
    return rc == SQLITE_DONE ? STORE_E_NOTFOUND
                             : store__sql_err(r->db, rc, "status");
}

static void app_fill(sqlite3_stmt *s, store_app_t *a) {
    memset(a, 0, sizeof *a);
    const char *name = (const char *)sqlite3_column_text(s, 0);
    const char *secret = (const char *)sqlite3_column_text(s, 1);
    snprintf(a->name, sizeof a->name, "%s", name ? name : "");
    snprintf(a->secret, sizeof a->secret, "%s", secret ? secret : "");
    a->created_ms = sqlite3_column_int64(s, 2);
    a->unknown_device = sqlite3_column_int(s, 3);
}

static int app_one(store_sq_reader_t *r, sqlite3_stmt *s, store_app_t *out) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) app_fill(s, out);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW) return 0;
    return rc == SQLITE_DONE ? STORE_E_NOTFOUND
                             : store__sql_err(r->db, rc, "app");
}

int store_sq_app_get(store_sq_reader_t *r, const char *name, store_app_t *out) {
    sqlite3_stmt *s = store__bind1(rstmt(r, R_APP_GET), name);
    if (!s) return STORE_E_IO;
    return app_one(r, s, out);
}

int store_sq_app_by_key(store_sq_reader_t *r, const char *api_key,
                        store_app_t *out) {
    if (!api_key || !*api_key) return STORE_E_NOTFOUND;
    char hash[65];
    store__key_hash(api_key, hash);
    sqlite3_stmt *s = rstmt(r, R_APP_BY_KEY);
    if (!s) return STORE_E_IO;
    sqlite3_bind_text(s, 1, hash, -1, SQLITE_TRANSIENT);
    return app_one(r, s, out);
}

int store_sq_app_list(store_sq_reader_t *r,
                      void (*fn)(void *ctx, const store_app_t *app, int n_keys),
                      void *ctx) {
    sqlite3_stmt *s = rstmt(r, R_APP_LIST);
    if (!s) return STORE_E_IO;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        store_app_t a;
        app_fill(s, &a);
        fn(ctx, &a, sqlite3_column_int(s, 4));
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : store__sql_err(r->db, rc, "app list");
}

int store_sq_revocations(store_sq_reader_t *r, int64_t since_s,
                         void (*fn)(void *ctx, const char *app,
                                    const char *device, int64_t before_s),
                         void *ctx) {
    sqlite3_stmt *s = rstmt(r, R_REVOKE_SINCE);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int64(s, 1, since_s);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *app = (const char *)sqlite3_column_text(s, 0);
        const char *dev = (const char *)sqlite3_column_text(s, 1);
        if (app && dev) fn(ctx, app, dev, sqlite3_column_int64(s, 2));
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : store__sql_err(r->db, rc, "revocations");
}
