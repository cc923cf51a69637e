/*
 * WAL checkpoints on their own thread and connection.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL
 * past its threshold: it copies the WAL into the database file and fsyncs
 * both, about 10 ms here, and every push queued behind that commit waits
 * for it (the p99 of the push API).  With the hot inbox most commits are
 * unsynced folds, so those 10 ms stalls were most of the tail.  The writer
 * now only notes the WAL's size (a WAL hook, which also turns the
 * automatic checkpoint off) and wakes this thread, whose PASSIVE
 * checkpoint runs beside the writer without blocking it.
 */
#include "store/store_int.h"

#include "core/log.h"

/* SQLite's default is 1,000.  Smaller checkpoints flush less at once,
 * and each flush delays the journal's fdatasync that shares the disk:
 * push_ab p99 9.6-10.7 ms at 1,000, 7.9-8.2 at 250 (same rate), no better
 * at 100. */
#define CKPT_FRAMES 250

/* Writer thread, after each commit. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames) {
    (void)db;
    (void)name;
    store_sq_t *st = arg;
    if (frames >= CKPT_FRAMES) {
        pthread_mutex_lock(&st->ckpt_mu);
        st->ckpt_want = true;
        pthread_cond_signal(&st->ckpt_cv);
        pthread_mutex_unlock(&st->ckpt_mu);
    }
    return SQLITE_OK;
}

static void *ckpt_main(void *arg) {
    store_sq_t *st = arg;
    (void)pthread_setname_np(pthread_self(), "herald-ckpt");
    pthread_mutex_lock(&st->ckpt_mu);
    for (;;) {
        while (!st->ckpt_want && !st->ckpt_stop)
            pthread_cond_wait(&st->ckpt_cv, &st->ckpt_mu);
        if (st->ckpt_stop) break;
        st->ckpt_want = false;
        pthread_mutex_unlock(&st->ckpt_mu);
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(
            st->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn("wal checkpoint failed", "err=\"%s\"",
                     sqlite3_errmsg(st->ckpt_db));
        pthread_mutex_lock(&st->ckpt_mu);
    }
    pthread_mutex_unlock(&st->ckpt_mu);
    return NULL;
}

int store__ckpt_start(store_sq_t *st) {
    pthread_mutex_init(&st->ckpt_mu, NULL);
    pthread_cond_init(&st->ckpt_cv, NULL);
    st->ckpt_init = true;
    int rc = store__open_conn(st->path, false, true, &st->ckpt_db);
    if (rc < 0) return rc;
    if (pthread_create(&st->ckpt_thread, NULL, ckpt_main, st)) {
        sqlite3_close(st->ckpt_db);
        st->ckpt_db = NULL;
        return STORE_E_NOMEM;
    }
    st->ckpt_started = true;
    sqlite3_wal_hook(st->db, wal_hook, st);
    return 0;
}

/* The writer has stopped; closing the write connection checkpoints the
 * rest. */
void store__ckpt_stop(store_sq_t *st) {
    if (!st->ckpt_init) return;
    if (st->ckpt_started) {
        pthread_mutex_lock(&st->ckpt_mu);
        st->ckpt_stop = true;
        pthread_cond_signal(&st->ckpt_cv);
        pthread_mutex_unlock(&st->ckpt_mu);
        pthread_join(st->ckpt_thread, NULL);
        st->ckpt_started = false;
    }
    if (st->db) sqlite3_wal_hook(st->db, NULL, NULL);
    if (st->ckpt_db && sqlite3_close(st->ckpt_db) != SQLITE_OK)
        log_error("sqlite close failed", "err=\"%s\"",
                  sqlite3_errmsg(st->ckpt_db));
    st->ckpt_db = NULL;
    pthread_mutex_destroy(&st->ckpt_mu);
    pthread_cond_destroy(&st->ckpt_cv);
    st->ckpt_init = false;
}
