/*
 * The write operations, one function per request kind, each a fixed set of
 * prepared statements on the write connection.  They run only on the
 * writer thread, inside the transaction store_writer.c opens, and leave
 * no row behind when they fail before their first write (the writer
 * redoes a batch with savepoints when one fails after it).
 *
 * Being the only writer, this is also where idempotency is decided without
 * a race: the (app, requestId) lookup and the insert happen in the same
 * serialised transaction.
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"

/* Event ev's count is parameter ?n; its first time is set only by a
 * positive count. */
#define STATUS_COLS_AT(ev, n, t)                                            \
    " at_" ev "=CASE WHEN at_" ev "=0 AND ?" n ">0 THEN ?" t " ELSE at_" ev \
    " END, n_" ev "=n_" ev "+?" n
#define STATUS_COLS(ev, n) STATUS_COLS_AT(ev, n, "2")

/* A device first registered starts its broadcast cursor at the app's
 * current head: a new device is not flooded with old broadcasts. */
#define BCAST_HEAD_OF_1 \
    "coalesce((SELECT last_seq FROM bcast_heads WHERE app=?1),0)"

static const char *const wsql[W_COUNT] = {
    [W_SAVEPOINT] = "SAVEPOINT r",
    [W_RELEASE] = "RELEASE r",
    [W_ROLLBACK_TO] = "ROLLBACK TO r",
    [W_IDEM_FIND] = "SELECT msg_id, created_ms FROM messages"
                    " WHERE app=?1 AND request_id=?2",
    [W_IDEM_FORGET] = "UPDATE messages SET request_id=NULL"
                      " WHERE app=?1 AND request_id=?2",
    /* device: the one device of a single-device push (the sweeper's way
     * to its inbox row); a multi-device push lists its in inbox_targets. */
    [W_MSG_INSERT] =
        "INSERT INTO messages(msg_id,app,kind,request_id,payload,ttl,"
        "collapse_key,need_ack,created_ms,expires_ms,phase,sweep_at,targets,"
        "at_accepted,n_accepted,at_stored,n_stored,device)"
        " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,1,?15,?16,"
        "?17)",
    [W_TARGET_INSERT] = "INSERT OR IGNORE INTO inbox_targets(msg_id,device)"
                        " VALUES(?1,?2)",
    [W_BHEAD_GET] = "SELECT last_seq FROM bcast_heads WHERE app=?1",
    [W_DEV_APPEND] =
        "INSERT INTO devices(app,device,first_seen_ms,last_seen_ms,"
        "inbox_last_seq,inbox_acked,bcast_cursor)"
        " VALUES(?1,?2,?3,0,1,0," BCAST_HEAD_OF_1 ")"
        " ON CONFLICT(app,device) DO UPDATE SET"
        " inbox_last_seq=inbox_last_seq+1 RETURNING inbox_last_seq",
    [W_DEV_SEQ] = "SELECT inbox_last_seq, inbox_acked FROM devices"
                  " WHERE app=?1 AND device=?2",
    [W_DEV_SEQ_SET] = "UPDATE devices SET inbox_last_seq=?3"
                      " WHERE app=?1 AND device=?2",
    [W_INBOX_COLLAPSE] = "DELETE FROM inbox WHERE app=?1 AND device=?2"
                         " AND collapse_key=?3",
    [W_INBOX_INSERT] = "INSERT INTO inbox(app,device,seq,msg_id,expires_ms,"
                       "collapse_key) VALUES(?1,?2,?3,?4,?5,?6)",
    [W_BHEAD_BUMP] = "INSERT INTO bcast_heads(app,last_seq) VALUES(?1,1)"
                     " ON CONFLICT(app) DO UPDATE SET last_seq=last_seq+1"
                     " RETURNING last_seq",
    [W_BCAST_INSERT] = "INSERT INTO bcast(app,seq,msg_id,expires_ms)"
                       " VALUES(?1,?2,?3,?4)",
    [W_DEV_GET] = "SELECT inbox_last_seq, inbox_acked, bcast_cursor"
                  " FROM devices WHERE app=?1 AND device=?2",
    [W_DEV_INSERT] = "INSERT INTO devices(app,device,first_seen_ms,"
                     "last_seen_ms,inbox_last_seq,inbox_acked,bcast_cursor)"
                     " VALUES(?1,?2,?3,?3,0,0," BCAST_HEAD_OF_1 ")"
                     " RETURNING bcast_cursor",
    [W_DEV_TOUCH] = "UPDATE devices SET last_seen_ms=?3"
                    " WHERE app=?1 AND device=?2",
    /* The rows an ack newly covers; each message's count goes up alone
     * (W_ACK_ONE): an UPDATE .. WHERE msg_id IN (subquery) materialised
     * the subquery into an ephemeral index on every ack. */
    [W_ACK_COUNT_INBOX] = "SELECT msg_id FROM inbox WHERE app=?1"
                          " AND device=?2 AND seq>?3 AND seq<=?4",
    [W_ACK_COUNT_BCAST] = "SELECT msg_id FROM bcast WHERE app=?1"
                          " AND seq>?3 AND seq<=?4",
    [W_ACK_DEL_INBOX] = "DELETE FROM inbox WHERE app=?1 AND device=?2"
                        " AND seq<=?3",
    [W_ACK_ONE] = "UPDATE messages SET n_acked=n_acked+1,"
                  " at_acked=CASE WHEN at_acked=0 THEN ?2 ELSE at_acked END"
                  " WHERE msg_id=?1",
    /* The ack and the routed/written counts held for it (store_pend.c). */
    [W_ACK_HELD] = "UPDATE messages SET n_acked=n_acked+1,"
                   " at_acked=CASE WHEN at_acked=0 THEN ?2 ELSE at_acked "
                   "END," STATUS_COLS_AT("routed", "3", "5") "," STATUS_COLS_AT(
                       "written", "4", "5") " WHERE msg_id=?1",
    [W_ACK_SET] = "UPDATE devices SET inbox_acked=?3, bcast_cursor=?4"
                  " WHERE app=?1 AND device=?2",
    /* ?3.. follow enum store_event, one pair of columns each */
    /* clang-format off */
    [W_STATUS] = "UPDATE messages SET"
        STATUS_COLS("accepted", "3") "," STATUS_COLS("stored", "4") ","
        STATUS_COLS("routed", "5") "," STATUS_COLS("written", "6") ","
        STATUS_COLS("acked", "7") "," STATUS_COLS("expired", "8") ","
        STATUS_COLS("dropped", "9") " WHERE msg_id=?1",
    /* clang-format on */
    [W_SWEEP_DUE] = "SELECT msg_id, phase, expires_ms, created_ms, app,"
                    " device FROM messages WHERE sweep_at<=?1"
                    " ORDER BY sweep_at LIMIT ?2",
    /* One device's rows of one message: a walk of that device's inbox. */
    [W_SWEEP_INBOX_DEL] = "DELETE FROM inbox WHERE app=?1 AND device=?2"
                          " AND msg_id=?3",
    [W_SWEEP_TARGETS] = "SELECT device FROM inbox_targets WHERE msg_id=?1",
    [W_SWEEP_TARGETS_DEL] = "DELETE FROM inbox_targets WHERE msg_id=?1",
    [W_SWEEP_BCAST_DEL] = "DELETE FROM bcast WHERE msg_id=?1",
    [W_SWEEP_MARK] = "UPDATE messages SET phase=1, sweep_at=?2,"
                     " at_expired=CASE WHEN ?3>0 THEN ?4 ELSE at_expired END,"
                     " n_expired=n_expired+?3 WHERE msg_id=?1",
    [W_SWEEP_MSG_DEL] = "DELETE FROM messages WHERE msg_id=?1",
    [W_APP_INSERT] = "INSERT INTO apps(name,secret,created_ms)"
                     " VALUES(?1,?2,?3)",
    [W_APP_UPSERT] = "INSERT INTO apps(name,secret,created_ms)"
                     " VALUES(?1,?2,?3) ON CONFLICT(name) DO UPDATE"
                     " SET secret=excluded.secret",
    [W_KEY_INSERT] = "INSERT INTO api_keys(key_hash,app,created_ms)"
                     " VALUES(?1,?2,?3)",
    [W_KEY_REVOKE] = "UPDATE api_keys SET revoked=1 WHERE app=?1"
                     " AND revoked=0",
    [W_KEY_REVOKE_ONE] = "UPDATE api_keys SET revoked=1 WHERE key_hash=?1"
                         " AND app=?2 AND revoked=0",
    [W_KEY_OWNER] = "SELECT app FROM api_keys WHERE key_hash=?1",
    [W_APP_EXISTS] = "SELECT 1 FROM apps WHERE name=?1",
    /* A hot push's message row with the status it has reached
     * (store_hot.c); IGNORE: a replayed record may be there already. */
    [W_HOT_MSG] =
        "INSERT OR IGNORE INTO messages(msg_id,app,kind,payload,ttl,need_ack,"
        "created_ms,expires_ms,phase,sweep_at,targets,at_accepted,n_accepted,"
        "at_stored,n_stored,device,at_routed,n_routed,at_written,n_written,"
        "at_acked,n_acked,at_dropped,n_dropped)"
        " VALUES(?1,?2,1,?3,?4,?5,?6,?7,0,?7,1,?6,1,?6,1,?8,"
        "CASE WHEN ?10>0 THEN ?9 ELSE 0 END,?10,"
        "CASE WHEN ?11>0 THEN ?9 ELSE 0 END,?11,?12,?13,?14,"
        "CASE WHEN ?14>0 THEN 1 ELSE 0 END)",
    /* Only beyond the device's ack: a replayed record of a push acked
     * since gets no row back (a folded push is never behind it). */
    [W_HOT_INBOX] =
        "INSERT OR IGNORE INTO inbox(app,device,seq,msg_id,expires_ms)"
        " SELECT ?1,?2,?3,?4,?5 FROM devices WHERE app=?1 AND device=?2"
        " AND inbox_acked<?3",
    [W_HOT_DEV] = "UPDATE devices SET inbox_last_seq=max(inbox_last_seq,?3),"
                  " inbox_acked=max(inbox_acked,?4) WHERE app=?1 AND device=?2",
    [W_JOURNAL_END] = "UPDATE journal_files SET end_off=?2, end_idx=?3"
                      " WHERE file=?1",
    /* An inbox over inbox_max: its rows up to ?3 go, counted dropped
     * (rare: only a device that far behind, so the IN list is fine). */
    [W_TRIM_COUNT] = "UPDATE messages SET n_dropped=n_dropped+1,"
                     " at_dropped=CASE WHEN at_dropped=0 THEN ?4"
                     " ELSE at_dropped END WHERE msg_id IN (SELECT msg_id"
                     " FROM inbox WHERE app=?1 AND device=?2 AND seq<=?3)",
    [W_TRIM_DEL] = "DELETE FROM inbox WHERE app=?1 AND device=?2 AND seq<=?3",
    [W_JOURNAL_SET] = "INSERT OR REPLACE INTO journal_files"
                      "(file,gen,end_off,end_idx,in_use) VALUES(?1,?2,?3,0,?4)",
};

sqlite3_stmt *store__w(store_sq_t *st, enum wstmt id) {
    return store__stmt(st->db, &st->st[id], wsql[id]);
}

/* Steps a write statement to its end; 0 or a store error. */
int store__step(store_sq_t *st, sqlite3_stmt *s) {
    if (!s) return STORE_E_IO;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        sqlite3_reset(s);
        return 0;
    }
    rc = store__sql_err(st->db, rc, sqlite3_sql(s));
    sqlite3_reset(s);
    return rc;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v) {
    if (v && *v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static int idem_check(store_sq_t *st, store_req_t *req, int64_t now) {
    const store_msg_t *m = &req->msg;
    sqlite3_stmt *s = store__w(st, W_IDEM_FIND);
    if (!s) return STORE_E_IO;
    bind_text(s, 1, m->app);
    bind_text(s, 2, m->request_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return store__sql_err(st->db, rc, "idem find");
    int64_t created = sqlite3_column_int64(s, 1);
    if (created > now - (int64_t)st->cfg.idem_window_s * 1000) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        snprintf(req->dup_msg_id, sizeof req->dup_msg_id, "%s", id ? id : "");
        sqlite3_reset(s);
        req->duplicate = true;
        return 0;
    }
    sqlite3_reset(s);
    /* Outside the window: the old record keeps its status but gives up
     * the request id, so the unique index admits the new message. */
    s = store__w(st, W_IDEM_FORGET);
    if (!s) return STORE_E_IO;
    bind_text(s, 1, m->app);
    bind_text(s, 2, m->request_id);
    return store__step(st, s);
}

static int msg_insert(store_sq_t *st, const store_req_t *req, int64_t created,
                      int64_t expires, int64_t n_stored) {
    const store_msg_t *m = &req->msg;
    bool stored = req->op != STORE_OP_ACCEPT;
    int64_t keep = created + (int64_t)st->cfg.idem_window_s * 1000;
    if (expires > keep) keep = expires;
    sqlite3_stmt *s =
        store__bind2(store__w(st, W_MSG_INSERT), m->msg_id, m->app);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int(s, 3, req->kind);
    bind_text(s, 4, m->request_id);
    if (stored)
        sqlite3_bind_blob(
            s, 5, m->payload ? (const void *)m->payload : (const void *)"",
            (int)m->payload_len, SQLITE_STATIC);
    sqlite3_bind_int(s, 6, m->ttl);
    bind_text(s, 7, m->collapse_key);
    sqlite3_bind_int(s, 8, m->need_ack);
    sqlite3_bind_int64(s, 9, created);
    sqlite3_bind_int64(s, 10, expires);
    sqlite3_bind_int(s, 11, stored ? 0 : 1);
    sqlite3_bind_int64(s, 12, stored ? expires : keep);
    sqlite3_bind_int64(s, 13,
                       req->op == STORE_OP_BCAST_APPEND ? 0 : req->n_devices);
    sqlite3_bind_int64(s, 14, created);
    sqlite3_bind_int64(s, 15, stored ? created : 0);
    sqlite3_bind_int64(s, 16, n_stored);
    if (req->op == STORE_OP_INBOX_APPEND && req->n_devices == 1)
        sqlite3_bind_text(s, 17, req->devices[0], -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 17);
    return store__step(st, s);
}

/* The devices of a multi-device push, for the sweeper (schema_v3). */
static int targets_insert(store_sq_t *st, const store_req_t *req) {
    sqlite3_stmt *s = store__w(st, W_TARGET_INSERT);
    if (!s) return STORE_E_IO;
    for (uint32_t i = 0; i < req->n_devices; i++) {
        sqlite3_bind_text(s, 1, req->msg.msg_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, req->devices[i], -1, SQLITE_STATIC);
        int rc = store__step(st, s);
        if (rc < 0) return rc;
    }
    return 0;
}

/*
 * The device's next inbox seq.  A known device (the common case) is a
 * point read and an in-place update: the upsert with RETURNING that also
 * registers new devices builds an ephemeral table for its one result row,
 * which cost more than the read.
 */
static int next_seq(store_sq_t *st, const char *app, const char *dev,
                    int64_t now, int64_t *seq, int64_t *acked) {
    sqlite3_stmt *s = store__bind2(store__w(st, W_DEV_SEQ), app, dev);
    if (!s) return STORE_E_IO;
    int rc = sqlite3_step(s);
    bool known = rc == SQLITE_ROW;
    *acked = 0;
    if (known) {
        *seq = sqlite3_column_int64(s, 0) + 1;
        *acked = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store__sql_err(st->db, rc, "device seq");
    if (known) {
        s = store__bind2(store__w(st, W_DEV_SEQ_SET), app, dev);
        if (!s) return STORE_E_IO;
        sqlite3_bind_int64(s, 3, *seq);
        return store__step(st, s);
    }
    s = store__bind2(store__w(st, W_DEV_APPEND), app, dev);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int64(s, 3, now);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *seq = sqlite3_column_int64(s, 0);
    rc = rc == SQLITE_ROW ? 0 : store__sql_err(st->db, rc, "device append");
    sqlite3_reset(s);
    return rc;
}

int store__inbox_trim(store_sq_t *st, const char *app, const char *dev,
                      int64_t upto, int64_t now) {
    enum wstmt which[2] = {W_TRIM_COUNT, W_TRIM_DEL};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *s = store__w(st, which[i]);
        if (!s) return STORE_E_IO;
        sqlite3_bind_text(s, 1, app, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, dev, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, upto);
        if (i == 0) sqlite3_bind_int64(s, 4, now);
        int rc = store__step(st, s);
        if (rc < 0) return rc;
        if (i == 1) atomic_fetch_add(&st->dropped, sqlite3_changes(st->db));
    }
    return 0;
}

/* Appends to one device's inbox; *seq gets the device's new sequence.
 * Past inbox_max unacked seqs, the oldest rows go first. */
static int inbox_append_one(store_sq_t *st, const store_msg_t *m,
                            const char *dev, int64_t now, int64_t expires,
                            int64_t *seq) {
    int64_t acked;
    int rc = next_seq(st, m->app, dev, now, seq, &acked);
    if (rc < 0) return rc;
    long max = st->cfg.inbox_max;
    if (max > 0 && *seq - acked > max &&
        (rc = store__inbox_trim(st, m->app, dev, *seq - max, now)) < 0)
        return rc;
    sqlite3_stmt *s;
    if (m->collapse_key && *m->collapse_key) {
        s = store__bind2(store__w(st, W_INBOX_COLLAPSE), m->app, dev);
        if (!s) return STORE_E_IO;
        sqlite3_bind_text(s, 3, m->collapse_key, -1, SQLITE_STATIC);
        if ((rc = store__step(st, s)) < 0) return rc;
        st->replaced += sqlite3_changes(st->db);
    }
    s = store__bind2(store__w(st, W_INBOX_INSERT), m->app, dev);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int64(s, 3, *seq);
    sqlite3_bind_text(s, 4, m->msg_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, expires);
    bind_text(s, 6, m->collapse_key);
    return store__step(st, s);
}

static int bcast_append(store_sq_t *st, store_req_t *req, int64_t expires) {
    sqlite3_stmt *s = store__bind1(store__w(st, W_BHEAD_BUMP), req->msg.app);
    if (!s) return STORE_E_IO;
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        rc = store__sql_err(st->db, rc, "bcast head");
        sqlite3_reset(s);
        return rc;
    }
    req->seq = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    s = store__bind1(store__w(st, W_BCAST_INSERT), req->msg.app);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int64(s, 2, req->seq);
    sqlite3_bind_text(s, 3, req->msg.msg_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, expires);
    return store__step(st, s);
}

static int validate_msg(const store_req_t *req) {
    const store_msg_t *m = &req->msg;
    if (!store__name_ok(m->app) || !store__name_ok(m->msg_id))
        return STORE_E_INVALID;
    if (m->payload_len > 0 && !m->payload) return STORE_E_INVALID;
    if (m->payload_len > (size_t)INT32_MAX) return STORE_E_INVALID;
    if (req->op != STORE_OP_ACCEPT && m->ttl <= 0) return STORE_E_INVALID;
    if (req->op == STORE_OP_INBOX_APPEND) {
        if (req->n_devices == 0 || !req->devices) return STORE_E_INVALID;
        for (uint32_t i = 0; i < req->n_devices; i++)
            if (!req->devices[i] || !*req->devices[i]) return STORE_E_INVALID;
    }
    return 0;
}

/* ACCEPT, INBOX_APPEND and BCAST_APPEND: one message row (the status and
 * idempotency record), then the timeline rows. */
static int op_message(store_sq_t *st, store_req_t *req, int64_t now) {
    int rc = validate_msg(req);
    if (rc < 0) return rc;
    const store_msg_t *m = &req->msg;
    req->duplicate = false; /* a batch may run twice (BATCH_REDO) */
    if (m->request_id && *m->request_id &&
        ((rc = idem_check(st, req, now)) < 0 || req->duplicate))
        return rc;
    int64_t created = m->created_ms > 0 ? m->created_ms : now;
    int64_t expires = created + (int64_t)(m->ttl > 0 ? m->ttl : 0) * 1000;
    int64_t n_stored = req->op == STORE_OP_INBOX_APPEND   ? req->n_devices
                       : req->op == STORE_OP_BCAST_APPEND ? 1
                                                          : 0;
    if ((rc = msg_insert(st, req, created, expires, n_stored)) < 0) return rc;
    if (req->op == STORE_OP_BCAST_APPEND) return bcast_append(st, req, expires);
    if (req->op == STORE_OP_ACCEPT) return 0;
    if (req->n_devices > 1 && (rc = targets_insert(st, req)) < 0) return rc;
    for (uint32_t i = 0; i < req->n_devices; i++) {
        int64_t seq = 0;
        rc = inbox_append_one(st, m, req->devices[i], now, expires, &seq);
        if (rc < 0) return rc;
        if (req->seqs) req->seqs[i] = seq;
    }
    return 0;
}

struct devrow {
    int64_t last_seq, acked, cursor;
};

/* 1 found, 0 unknown device, <0 error. */
static int dev_get(store_sq_t *st, const char *app, const char *dev,
                   struct devrow *d) {
    sqlite3_stmt *s = store__bind2(store__w(st, W_DEV_GET), app, dev);
    if (!s) return STORE_E_IO;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        d->last_seq = sqlite3_column_int64(s, 0);
        d->acked = sqlite3_column_int64(s, 1);
        d->cursor = sqlite3_column_int64(s, 2);
        rc = 1;
    } else {
        rc = rc == SQLITE_DONE ? 0 : store__sql_err(st->db, rc, "device get");
    }
    sqlite3_reset(s);
    return rc;
}

static int bcast_head(store_sq_t *st, const char *app, int64_t *head) {
    sqlite3_stmt *s = store__bind1(store__w(st, W_BHEAD_GET), app);
    if (!s) return STORE_E_IO;
    int rc = sqlite3_step(s);
    *head = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE
             ? 0
             : store__sql_err(st->db, rc, "bcast head");
    sqlite3_reset(s);
    return rc;
}

/* Counts an ack for every message of timeline rows (lo, hi] (inbox rows
 * of dev, or the app's broadcast rows), via sel. */
static int ack_count(store_sq_t *st, enum wstmt sel, const char *app,
                     const char *dev, int64_t lo, int64_t hi, int64_t now) {
    sqlite3_stmt *s = store__w(st, sel);
    if (!s) return STORE_E_IO;
    sqlite3_bind_text(s, 1, app, -1, SQLITE_STATIC);
    if (dev) sqlite3_bind_text(s, 2, dev, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, lo);
    sqlite3_bind_int64(s, 4, hi);
    int rc;
    /* Updating messages while this cursor walks another table is safe. */
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        store_pend_ent_t held;
        bool h = store__pend_take(st, id, &held);
        sqlite3_stmt *u = store__w(st, h ? W_ACK_HELD : W_ACK_ONE);
        if (!u) {
            sqlite3_reset(s);
            return STORE_E_IO;
        }
        sqlite3_bind_text(u, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(u, 2, now);
        if (h) { /* the held counts keep the time they arrived */
            sqlite3_bind_int64(u, 3, held.n[STORE_EV_ROUTED]);
            sqlite3_bind_int64(u, 4, held.n[STORE_EV_WRITTEN]);
            sqlite3_bind_int64(u, 5, held.at);
        }
        if ((rc = store__step(st, u)) < 0) {
            sqlite3_reset(s);
            return rc;
        }
    }
    rc = rc == SQLITE_DONE ? 0 : store__sql_err(st->db, rc, "ack rows");
    sqlite3_reset(s);
    return rc;
}

/*
 * Cumulative ack: each cursor only moves forward and never past what was
 * assigned.  Acked inbox rows are deleted (the message row keeps the
 * payload for the other targets); acks are counted into the messages'
 * status here, so the push service does not record ACKED itself.
 */
static int op_ack(store_sq_t *st, store_req_t *req, int64_t now) {
    const char *app = req->msg.app, *dev = req->device;
    if (!store__name_ok(app) || !dev || !*dev) return STORE_E_INVALID;
    struct devrow d;
    int rc = dev_get(st, app, dev, &d);
    if (rc <= 0) return rc < 0 ? rc : STORE_E_NOTFOUND;
    int64_t acked = d.acked, cursor = d.cursor;
    if (req->seq > acked) {
        acked = req->seq < d.last_seq ? req->seq : d.last_seq;
        if (acked > d.acked) {
            rc =
                ack_count(st, W_ACK_COUNT_INBOX, app, dev, d.acked, acked, now);
            sqlite3_stmt *s = rc < 0 ? NULL : store__w(st, W_ACK_DEL_INBOX);
            if (!s) return rc < 0 ? rc : STORE_E_IO;
            sqlite3_bind_text(s, 1, app, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, dev, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 3, acked);
            if ((rc = store__step(st, s)) < 0) return rc;
        }
    }
    if (req->bseq > cursor) {
        int64_t head;
        if ((rc = bcast_head(st, app, &head)) < 0) return rc;
        cursor = req->bseq < head ? req->bseq : head;
        if (cursor > d.cursor &&
            (rc = ack_count(st, W_ACK_COUNT_BCAST, app, NULL, d.cursor, cursor,
                            now)) < 0)
            return rc;
    }
    if (cursor < d.cursor) cursor = d.cursor;
    if (acked < d.acked) acked = d.acked;
    req->inbox_acked = acked;
    req->bcast_cursor = cursor;
    if (acked == d.acked && cursor == d.cursor) return 0;
    sqlite3_stmt *s = store__bind2(store__w(st, W_ACK_SET), app, dev);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int64(s, 3, acked);
    sqlite3_bind_int64(s, 4, cursor);
    return store__step(st, s);
}

static int op_device_seen(store_sq_t *st, store_req_t *req, int64_t now) {
    const char *app = req->msg.app, *dev = req->device;
    if (!store__name_ok(app) || !dev || !*dev) return STORE_E_INVALID;
    struct devrow d;
    int rc = dev_get(st, app, dev, &d);
    if (rc < 0) return rc;
    req->created = rc == 0;
    sqlite3_stmt *s = store__w(st, rc ? W_DEV_TOUCH : W_DEV_INSERT);
    if (!s) return STORE_E_IO;
    sqlite3_bind_text(s, 1, app, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, dev, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now);
    if (rc) {
        req->inbox_acked = d.acked;
        req->bcast_cursor = d.cursor;
        return store__step(st, s);
    }
    rc = sqlite3_step(s);
    req->inbox_acked = 0;
    req->bcast_cursor = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    rc = rc == SQLITE_ROW ? 0 : store__sql_err(st->db, rc, "device insert");
    sqlite3_reset(s);
    return rc;
}

static int op_status(store_sq_t *st, store_req_t *req, int64_t now) {
    if (!store__name_ok(req->msg.msg_id)) return STORE_E_INVALID;
    for (int ev = 0; ev < STORE_EV_COUNT; ev++)
        if (req->counts[ev] < 0) return STORE_E_INVALID;
    sqlite3_stmt *s = store__bind1(store__w(st, W_STATUS), req->msg.msg_id);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int64(s, 2, now);
    for (int ev = 0; ev < STORE_EV_COUNT; ev++)
        sqlite3_bind_int64(s, 3 + ev, req->counts[ev]);
    int rc = store__step(st, s);
    if (rc == 0 && sqlite3_changes(st->db) == 0) rc = STORE_E_NOTFOUND;
    return rc;
}

int store__op_run(store_sq_t *st, store_req_t *req, int64_t now) {
    switch (req->op) {
    case STORE_OP_ACCEPT:
    case STORE_OP_INBOX_APPEND:
    case STORE_OP_BCAST_APPEND: return op_message(st, req, now);
    case STORE_OP_ACK: return op_ack(st, req, now);
    case STORE_OP_DEVICE_SEEN: return op_device_seen(st, req, now);
    case STORE_OP_STATUS: return op_status(st, req, now);
    }
    return STORE_E_INVALID;
}

/* ---- a hot push's rows (store_hot.c folds, store_journal.c replays) ---- */

int store__hot_write_row(store_sq_t *st, const hot_row_t *r, bool inbox) {
    sqlite3_stmt *s = store__bind2(store__w(st, W_HOT_MSG), r->msg_id, r->app);
    if (!s) return STORE_E_IO;
    sqlite3_bind_blob(s, 3, r->payload_len ? r->payload : "",
                      (int)r->payload_len, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, r->ttl);
    sqlite3_bind_int(s, 5, r->need_ack);
    sqlite3_bind_int64(s, 6, r->created);
    sqlite3_bind_int64(s, 7, r->expires);
    sqlite3_bind_text(s, 8, r->dev, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 9, r->at_delivered);
    sqlite3_bind_int64(s, 10, r->routed);
    sqlite3_bind_int64(s, 11, r->written);
    sqlite3_bind_int64(s, 12, r->at_acked);
    sqlite3_bind_int64(s, 13, r->at_acked ? 1 : 0);
    sqlite3_bind_int64(s, 14, r->at_dropped);
    int rc = store__step(st, s);
    if (rc < 0 || !inbox) return rc;
    if (!(s = store__w(st, W_HOT_INBOX))) return STORE_E_IO;
    sqlite3_bind_text(s, 1, r->app, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, r->dev, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, r->seq);
    sqlite3_bind_text(s, 4, r->msg_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, r->expires);
    return store__step(st, s);
}

int store__hot_write_dev(store_sq_t *st, const char *app, const char *dev,
                         int64_t last_seq, int64_t acked) {
    sqlite3_stmt *s = store__bind2(store__w(st, W_HOT_DEV), app, dev);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int64(s, 3, last_seq);
    sqlite3_bind_int64(s, 4, acked);
    return store__step(st, s);
}

/* ---- status counts that are due (store_pend.c holds them) -------------- */

/* One entry on its own (W_STATUS with its own time); *found: its message
 * row was there. */
static int status_write(store_sq_t *st, const store_pend_ent_t *e,
                        bool *found) {
    sqlite3_stmt *s = store__bind1(store__w(st, W_STATUS), e->id);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int64(s, 2, e->at);
    for (int ev = 0; ev < STORE_EV_COUNT; ev++)
        sqlite3_bind_int64(s, 3 + ev, e->n[ev]);
    int rc = store__step(st, s);
    *found = rc == 0 && sqlite3_changes(st->db) > 0;
    return rc;
}

/*
 * Writes the due entries (all: every one) in one transaction.  They leave
 * the table first (store__pend_due), so a counting thread never waits for
 * SQL.  An entry whose message row is not there yet goes back, unless it
 * has waited long enough (or all: the store is closing); a failed
 * transaction puts them all back for the next try.
 */
long store__status_flush(store_sq_t *st, bool all) {
    store_pend_ent_t *due;
    uint32_t n = store__pend_due(st, all, &due);
    if (!n) {
        free(due);
        return 0;
    }
    uint64_t now = clock_mono_ms();
    store__set_sync(st, false); /* status records: no fsync */
    int rc = store__exec(st->db, "BEGIN IMMEDIATE");
    uint32_t back = 0; /* the entries to put back, moved to due[0..back) */
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        bool found = true;
        rc = status_write(st, &due[i], &found);
        if (rc == 0 && !found && !all && now < due[i].until) {
            due[i].due = now + STORE_PEND_MS; /* its row is yet to come */
            due[back++] = due[i];
        }
    }
    if (rc == 0) rc = store__exec(st->db, "COMMIT");
    if (rc < 0) {
        if (!sqlite3_get_autocommit(st->db))
            (void)store__exec(st->db, "ROLLBACK");
        back = n; /* nothing was written: all of them again */
    }
    store__pend_back(st, due, back);
    free(due);
    return rc < 0 ? rc : (long)(n - back);
}
