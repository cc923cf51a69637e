/*
 * The SQLite schema of the store, created idempotently and stamped with
 * PRAGMA user_version so a later version can migrate.  docs/store.md has
 * the table-by-table rationale.
 *
 * Row budget of one durable single-device push: one messages row (payload
 * stored once, even for multi-device pushes), one inbox row, one devices
 * update.
 *
 * Version 2 made messages a WITHOUT ROWID table keyed by msg_id: the rowid
 * table kept a second B-tree (the msg_id index) that every push inserted
 * into and every status update and ack searched first; bench_store spends
 * 11-16 % less CPU per push without it.  Sequence heads live in devices /
 * bcast_heads, never derived from timeline rows, so deleting acked or
 * expired rows never reuses a seq.
 *
 * Version 3 dropped the inbox(msg_id) index.  Only the sweeper looked rows
 * up by message, once per message at its expiry, yet every push inserted
 * into it and every ack deleted from it: without it the writer spends ~8 %
 * less CPU per durable push (bench/push_ab.sh, 3 rounds).  The sweeper now
 * finds a message's inbox rows by device: messages.device names the one
 * device of a single-device push, and inbox_targets lists the devices of a
 * multi-device push (written once per push, never touched by acks, removed
 * at expiry).
 *
 * Version 4 adds what the fault fixes of issue 12 need: a `dropped` event
 * on every status record (a message discarded before delivery: an inbox
 * over its cap, an online-only push to an offline device), an app's
 * policy for pushes to devices it never saw (apps.unknown_device: 0
 * store, 1 reject), per-device token revocations (tokens issued before
 * before_s are refused), and the journal's own bookkeeping in SQLite
 * (journal_files: the generation each hot file should carry and how far
 * its records are known to reach), so a damaged or missing journal file
 * is noticed instead of read as an empty one.
 */
#include "store/store_int.h"

#include <stdio.h>

#include "core/log.h"

#define MESSAGES_COLUMNS                                                                                    \
    " msg_id TEXT PRIMARY KEY,"                                                                             \
    " app TEXT NOT NULL,"                                                                                   \
    " kind INTEGER NOT NULL,"                                                                               \
    " request_id TEXT,"                                                                                     \
    " payload BLOB,"                                                                                        \
    " ttl INTEGER NOT NULL,"                                                                                \
    " collapse_key TEXT,"                                                                                   \
    " need_ack INTEGER NOT NULL,"                                                                           \
    " created_ms INTEGER NOT NULL,"                                                                         \
    " expires_ms INTEGER NOT NULL," /* phase 0: sweep_at = expiry; phase 1: sweep_at = end of the record */ \
    " phase INTEGER NOT NULL,"                                                                              \
    " sweep_at INTEGER NOT NULL,"                                                                           \
    " targets INTEGER NOT NULL DEFAULT 0,"                                                                  \
    " at_accepted INTEGER NOT NULL DEFAULT 0,"                                                              \
    " n_accepted INTEGER NOT NULL DEFAULT 0,"                                                               \
    " at_stored INTEGER NOT NULL DEFAULT 0,"                                                                \
    " n_stored INTEGER NOT NULL DEFAULT 0,"                                                                 \
    " at_routed INTEGER NOT NULL DEFAULT 0,"                                                                \
    " n_routed INTEGER NOT NULL DEFAULT 0,"                                                                 \
    " at_written INTEGER NOT NULL DEFAULT 0,"                                                               \
    " n_written INTEGER NOT NULL DEFAULT 0,"                                                                \
    " at_acked INTEGER NOT NULL DEFAULT 0,"                                                                 \
    " n_acked INTEGER NOT NULL DEFAULT 0,"                                                                  \
    " at_expired INTEGER NOT NULL DEFAULT 0,"                                                               \
    " n_expired INTEGER NOT NULL DEFAULT 0"

#define MESSAGES_INDEXES                                          \
    "CREATE UNIQUE INDEX IF NOT EXISTS messages_request"          \
    " ON messages(app, request_id) WHERE request_id IS NOT NULL", \
        "CREATE INDEX IF NOT EXISTS messages_sweep ON messages(sweep_at)"

/* Version 1 -> 2: messages rebuilt without its rowid (same columns). */
static const char *const migrate_v2[] = {
    "CREATE TABLE messages_v2(" MESSAGES_COLUMNS ") WITHOUT ROWID",
    "INSERT INTO messages_v2 SELECT * FROM messages",
    "DROP TABLE messages",
    "ALTER TABLE messages_v2 RENAME TO messages",
    MESSAGES_INDEXES,
};

static const char *const schema_v2[] = {
    "CREATE TABLE IF NOT EXISTS messages(" MESSAGES_COLUMNS ") WITHOUT ROWID",
    MESSAGES_INDEXES,
    "CREATE TABLE IF NOT EXISTS devices("
    " app TEXT NOT NULL,"
    " device TEXT NOT NULL,"
    " first_seen_ms INTEGER NOT NULL,"
    " last_seen_ms INTEGER NOT NULL,"
    " inbox_last_seq INTEGER NOT NULL,"
    " inbox_acked INTEGER NOT NULL,"
    " bcast_cursor INTEGER NOT NULL,"
    " PRIMARY KEY(app, device)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS inbox("
    " app TEXT NOT NULL,"
    " device TEXT NOT NULL,"
    " seq INTEGER NOT NULL,"
    " msg_id TEXT NOT NULL,"
    " expires_ms INTEGER NOT NULL,"
    " collapse_key TEXT,"
    " PRIMARY KEY(app, device, seq)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS bcast_heads("
    " app TEXT PRIMARY KEY,"
    " last_seq INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS bcast("
    " app TEXT NOT NULL,"
    " seq INTEGER NOT NULL,"
    " msg_id TEXT NOT NULL,"
    " expires_ms INTEGER NOT NULL,"
    " PRIMARY KEY(app, seq)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS bcast_msg ON bcast(msg_id)",
    "CREATE TABLE IF NOT EXISTS apps("
    " name TEXT PRIMARY KEY,"
    " secret TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL) WITHOUT ROWID",
    /* key_hash: hex SHA-256 of the API key; the key itself is never kept */
    "CREATE TABLE IF NOT EXISTS api_keys("
    " key_hash TEXT PRIMARY KEY,"
    " app TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " revoked INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS api_keys_app ON api_keys(app)",
};

/* Version 2 -> 3, also run on a new file after the version 2 tables (the
 * column comes last either way).  Every inbox row of an older file becomes
 * a target, so the sweeper finds it whatever its message's kind. */
static const char *const migrate_v3[] = {
    "ALTER TABLE messages ADD COLUMN device TEXT",
    "CREATE TABLE IF NOT EXISTS inbox_targets("
    " msg_id TEXT NOT NULL,"
    " device TEXT NOT NULL,"
    " PRIMARY KEY(msg_id, device)) WITHOUT ROWID",
    "INSERT OR IGNORE INTO inbox_targets(msg_id, device)"
    " SELECT msg_id, device FROM inbox",
    "DROP INDEX IF EXISTS inbox_msg",
};

/* Version 3 -> 4, also run on a new file after version 3 (columns come
 * last either way). */
static const char *const migrate_v4[] = {
    "ALTER TABLE messages ADD COLUMN at_dropped INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE messages ADD COLUMN n_dropped INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE apps ADD COLUMN unknown_device INTEGER NOT NULL DEFAULT 0",
    "CREATE TABLE IF NOT EXISTS device_revocations("
    " app TEXT NOT NULL,"
    " device TEXT NOT NULL,"
    " before_s INTEGER NOT NULL,"
    " PRIMARY KEY(app, device)) WITHOUT ROWID",
    /* end_off/end_idx: a lower bound of what the file's records reach
     * (written with each fold); in_use: the file may hold records a
     * crash leaves unfolded (cleared when the journal is emptied). */
    "CREATE TABLE IF NOT EXISTS journal_files("
    " file INTEGER PRIMARY KEY,"
    " gen INTEGER NOT NULL,"
    " end_off INTEGER NOT NULL,"
    " end_idx INTEGER NOT NULL,"
    " in_use INTEGER NOT NULL)",
};

static int user_version(sqlite3 *db, int *out) {
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
    if (rc != SQLITE_OK) return store__sql_err(db, rc, "user_version");
    rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 0 : store__sql_err(db, rc, "user_version");
}

static int exec_all(sqlite3 *db, const char *const *sql, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int rc = store__exec(db, sql[i]);
        if (rc < 0) return rc;
    }
    return 0;
}

#define EXEC_ALL(db, a) exec_all(db, a, sizeof a / sizeof a[0])

/*
 * Creates what is missing, or migrates an older file, in one transaction.
 * A file stamped with a newer version than this code knows is refused
 * rather than half-understood.  Version 0 is a new file.
 */
int store__schema_ensure(sqlite3 *db) {
    int ver, rc = user_version(db, &ver);
    if (rc < 0) return rc;
    if (ver > STORE_SCHEMA_VERSION) {
        log_error("store schema is newer than this herald", "found=%d known=%d",
                  ver, STORE_SCHEMA_VERSION);
        return STORE_E_INVALID;
    }
    if (ver == STORE_SCHEMA_VERSION) return 0;
    if ((rc = store__exec(db, "BEGIN IMMEDIATE")) < 0) return rc;
    if (ver == 1) {
        log_info("store schema migrating", "from=1 to=2");
        rc = EXEC_ALL(db, migrate_v2);
    }
    if (rc == 0) rc = EXEC_ALL(db, schema_v2);
    if (rc == 0 && ver < 3) { /* a new file (0) included */
        if (ver > 0) log_info("store schema migrating", "from=%d to=3", ver);
        rc = EXEC_ALL(db, migrate_v3);
    }
    if (rc == 0 && ver < 4) { /* a new file (0) included */
        if (ver > 0) log_info("store schema migrating", "from=%d to=4", ver);
        rc = EXEC_ALL(db, migrate_v4);
    }
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", STORE_SCHEMA_VERSION);
    if (rc == 0 && (rc = store__exec(db, sql)) == 0)
        return store__exec(db, "COMMIT");
    (void)store__exec(db, "ROLLBACK"); /* the error that matters is rc */
    return rc;
}
