/*
 * The SQLite backend's ground floor: connections, statements, errors,
 * the store's fault state and the hooks its callers set.  Everything in
 * the backend calls down to here; nothing here calls up.
 */
#include "store/store_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

/* Maps an SQLite failure to a store code, logging SQLite's own words (they
 * name tables and constraints, never values). */
/* A full disk fails every retry the same way: rate-limited, with a count
 * (one line a second, not 3 million in 75 s). */
int store__sql_err(sqlite3 *db, int rc, const char *what) {
    static log_limit_t lim = LOG_LIMIT_INIT(1000);
    int prim = rc & 0xff;
    if (prim == SQLITE_NOMEM) return STORE_E_NOMEM;
    if (prim == SQLITE_CONSTRAINT) return STORE_E_EXISTS;
    log_limited(&lim, LOG_LEVEL_ERROR, "sqlite failed",
                "what=\"%.80s\" rc=%d err=\"%s\"", what, rc,
                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    return prim == SQLITE_FULL ? STORE_E_NOSPACE : STORE_E_IO;
}

int store_sq_fault(const store_sq_t *st) {
    int sql = atomic_load_explicit(&st->fault_sql, memory_order_relaxed);
    return sql ? sql
               : atomic_load_explicit(&st->fault_journal, memory_order_relaxed);
}

void store__fault_note(store_sq_t *st, _Atomic int *which, int rc) {
    int now = rc == STORE_E_NOSPACE || rc == STORE_E_IO ? rc : 0;
    if (rc < 0 && !now) return; /* not about the disk: no news */
    int was = atomic_exchange_explicit(which, now, memory_order_relaxed);
    if (was == now) return;
    if (now)
        log_error("store cannot write", "why=\"%s\" part=%s",
                  herald_strerror(now),
                  which == &st->fault_sql ? "sqlite" : "journal");
    else
        log_info("store writes again", "part=%s",
                 which == &st->fault_sql ? "sqlite" : "journal");
}

int store__exec(sqlite3 *db, const char *sql) {
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : store__sql_err(db, rc, sql);
}

/* The cached statement in *slot, prepared on first use and reset for the
 * next; NULL (logged) if it cannot be prepared. */
sqlite3_stmt *store__stmt(sqlite3 *db, sqlite3_stmt **slot, const char *sql) {
    if (*slot) {
        sqlite3_reset(*slot);
        sqlite3_clear_bindings(*slot);
        return *slot;
    }
    int rc =
        sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
    if (rc != SQLITE_OK) {
        (void)store__sql_err(db, rc, "prepare");
        *slot = NULL;
    }
    return *slot;
}

/*
 * One connection, used by one thread only (NOMUTEX).  WAL lets readers run
 * beside the single writer; busy_timeout covers the moments a checkpoint or
 * an app write holds a lock.
 */
/*
 * Process-wide, before SQLite's first use.  Memory statistics take a global
 * mutex on every allocation (a tenth of the writer's CPU in a profile of
 * bench_store); herald reads none of them.  A failure only costs speed.
 */
static void sqlite_global_init(void) {
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store__open_conn(const char *path, bool writer, bool sync_full,
                     sqlite3 **out) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    (void)pthread_once(&once, sqlite_global_init);
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        int err = store__sql_err(db, rc, "open");
        sqlite3_close(db);
        return err;
    }
    sqlite3_busy_timeout(db, 5000);
    const char *common = "PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY;"
                         " PRAGMA cache_size=-16384;";
    if ((rc = store__exec(db, common)) < 0) goto fail;
    if (writer) {
        /* Only a new file takes it.  8 KiB pages cost ~10 % less CPU per
         * durable push than 4 KiB on this VM (bench_store with
         * BENCH_STORE_GROUP=64): fewer frames per commit, shallower trees. */
        if ((rc = store__exec(db, "PRAGMA page_size=8192")) < 0) goto fail;
        if ((rc = store__exec(db, "PRAGMA journal_mode=WAL")) < 0) goto fail;
        rc = store__exec(db, sync_full ? "PRAGMA synchronous=FULL"
                                       : "PRAGMA synchronous=NORMAL");
        if (rc < 0) goto fail;
    }
    *out = db;
    return 0;
fail:
    sqlite3_close(db);
    return rc;
}

void store_sq_set_done_hook(store_sq_t *st, void (*fn)(void *ctx, bool begin),
                            void *ctx) {
    st->done_hook_ctx = ctx;
    st->done_hook = fn;
}

void store__free_done(store_req_t *req, store_done_t *d) {
    (void)d;
    free(req);
}

void store_sq_set_observer(store_sq_t *st, store_observe_fn fn, void *ctx) {
    atomic_store(&st->obs_ctx, ctx);
    atomic_store(&st->obs_fn, fn);
}

void store__observe(store_sq_t *st, int obs, uint64_t since_us, bool failed) {
    store_observe_fn fn =
        atomic_load_explicit(&st->obs_fn, memory_order_acquire);
    if (fn)
        fn(atomic_load(&st->obs_ctx), obs, clock_mono_us() - since_us, failed);
}

void store__set_sync(store_sq_t *st, bool full) {
    full = full && st->cfg.synchronous_full;
    if (full == st->sync_full_now) return;
    if (store__exec(st->db, full ? "PRAGMA synchronous=FULL"
                                 : "PRAGMA synchronous=NORMAL") == 0)
        st->sync_full_now = full;
}

sqlite3_stmt *store__bind1(sqlite3_stmt *s, const char *a) {
    if (s) sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
    return s;
}

sqlite3_stmt *store__bind2(sqlite3_stmt *s, const char *a, const char *b) {
    if (!s) return NULL;
    sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, b, -1, SQLITE_STATIC);
    return s;
}
