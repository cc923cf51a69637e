/*
 * SQLite backend of the store: opening and closing, connection set-up, the
 * statement cache, and the submission queue in front of the writer thread
 * (store_writer.c).  Reads are in store_read.c, apps in store_app.c, the
 * TTL sweeper in store_sweep.c.
 */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
                  store_strerror(now),
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

static void store_free_parts(store_sq_t *st) {
    store__ckpt_stop(st);
    store__hot_free(st->hot);
    store__pend_free(st);
    for (int i = 0; i < W_COUNT; i++) sqlite3_finalize(st->st[i]);
    if (st->db && sqlite3_close(st->db) != SQLITE_OK)
        log_error("sqlite close failed", "err=\"%s\"", sqlite3_errmsg(st->db));
    pthread_mutex_destroy(&st->db_mu);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    pthread_cond_destroy(&st->fold_cv);
    for (int i = 0; i < st->n_chunks; i++) free(st->job_chunks[i]);
    free(st->job_chunks);
    free(st->path);
    free(st);
}

static void config_fill(store_config_t *c, const store_config_t *in) {
    store_config_t d;
    store_config_defaults(&d);
    *c = in ? *in : d;
    if (!c->path || !*c->path) c->path = d.path;
    if (c->max_batch <= 0) c->max_batch = d.max_batch;
    if (c->max_queue <= 0) c->max_queue = d.max_queue;
    if (c->sweep_interval_ms <= 0) c->sweep_interval_ms = d.sweep_interval_ms;
    if (c->idem_window_s <= 0) c->idem_window_s = d.idem_window_s;
    if (c->hot_file_max <= 0) c->hot_file_max = d.hot_file_max;
    if (c->inbox_max < 0) c->inbox_max = 0;
}

/*
 * The store holds every app's signing secret (store_app.c), so its files
 * are the owner's alone: a new database is created 0600 before SQLite
 * opens it (SQLite gives its -wal and -shm files the database's mode; the
 * journal files are created 0600 too), and an existing file that other
 * users may read is refused to the serving process and warned about to
 * everyone else (`herald app` beside it).  Group access is the owner's
 * choice (a backup group, say): a warning.
 */
/* The directory part of path ("." for a bare name). */
static void dir_of(const char *path, char *out, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, cap, ".");
    else if (slash == path)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

/* Why the database cannot be created or written, in words a user can act
 * on (a missing folder, a read-only file or folder), or 0. */
static int path_usable(const char *path, int open_errno) {
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    struct stat sb;
    if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        store_open_why("cannot create %.200s: the folder %.200s %s", path, dir,
                       errno == ENOENT ? "does not exist" : "is not a folder");
        return STORE_E_IO;
    }
    if (open_errno != EEXIST) {
        store_open_why("cannot create %.200s: %s", path, strerror(open_errno));
        return STORE_E_IO;
    }
    if (access(path, R_OK | W_OK) < 0) {
        store_open_why("cannot write %.200s: %s", path, strerror(errno));
        return STORE_E_IO;
    }
    if (access(dir, W_OK | X_OK) < 0) { /* SQLite makes -wal/-shm there */
        store_open_why(
            "cannot write in %.200s (the store keeps %.100s-wal there): %s",
            dir, path, strerror(errno));
        return STORE_E_IO;
    }
    return 0;
}

static int private_files(const store_config_t *c) {
    int fd = open(c->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    int rc = path_usable(c->path, errno);
    if (rc < 0) return rc;
    static const char *const sfx[] = {"", "-wal", "-shm", "-hot0", "-hot1"};
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        char p[4096];
        struct stat sb;
        snprintf(p, sizeof p, "%s%s", c->path, sfx[i]);
        if (stat(p, &sb) < 0) continue;
        if (sb.st_mode & 0007) {
            if (c->exclusive) {
                log_error("store file readable by other users",
                          "path=\"%s\" mode=%04o fix=\"chmod 600 %s*\"", p,
                          (unsigned)(sb.st_mode & 07777), c->path);
                rc = STORE_E_PERM;
            } else {
                log_warn("store file readable by other users",
                         "path=\"%s\" mode=%04o", p,
                         (unsigned)(sb.st_mode & 07777));
            }
        } else if (sb.st_mode & 0070) {
            log_warn("store file readable by its group",
                     "path=\"%s\" mode=%04o", p,
                     (unsigned)(sb.st_mode & 07777));
        }
    }
    return rc;
}

int store_sq_open(const store_config_t *cfg, store_sq_t **out) {
    store_sq_t *st = calloc(1, sizeof *st);
    if (!st) return STORE_E_NOMEM;
    config_fill(&st->cfg, cfg);
    st->path = strdup(st->cfg.path);
    if (!st->path) {
        free(st);
        return STORE_E_NOMEM;
    }
    st->cfg.path = st->path;
    pthread_mutex_init(&st->db_mu, NULL);
    pthread_mutex_init(&st->mu, NULL);
    /* The writer's sweep timer waits on this; wall-clock jumps must not
     * stall or hurry it. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cv, &ca);
    pthread_cond_init(&st->fold_cv, &ca); /* readers' bounded wait */
    pthread_condattr_destroy(&ca);
    int rc = private_files(&st->cfg);
    if (rc == 0)
        rc =
            store__open_conn(st->path, true, st->cfg.synchronous_full, &st->db);
    st->sync_full_now = st->cfg.synchronous_full;
    if (rc == 0) rc = store__schema_ensure(st->db);
    if (rc == 0 && store__pend_init(st) < 0)
        log_warn("store: status counts not held for acks (no memory)", NULL);
    if (rc == 0) rc = store__hot_open(st);
    if (rc == 0) rc = store__ckpt_start(st);
    if (rc == 0 && pthread_create(&st->thread, NULL, store__writer_main, st))
        rc = STORE_E_NOMEM;
    if (rc < 0) {
        store_free_parts(st);
        return rc;
    }
    st->thread_started = true;
    log_info("store open", "path=\"%s\" sync=%s", st->path,
             st->cfg.synchronous_full ? "full" : "normal");
    *out = st;
    return 0;
}

void store_sq_close(store_sq_t *st) {
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    st->closing = true;
    st->paused = false;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    if (st->thread_started) pthread_join(st->thread, NULL);
    store_free_parts(st);
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

/* A job from the free list, which grows JOB_CHUNK at a time (under mu);
 * NULL without memory. */
#define JOB_CHUNK 256

static store_job_t *job_get(store_sq_t *st) {
    if (!st->free_jobs) {
        void **chunks = realloc(st->job_chunks,
                                (size_t)(st->n_chunks + 1) * sizeof *chunks);
        store_job_t *c = calloc(JOB_CHUNK, sizeof *c);
        if (chunks) st->job_chunks = chunks;
        if (!chunks || !c) {
            free(c);
            return NULL;
        }
        chunks[st->n_chunks++] = c;
        for (int i = 0; i < JOB_CHUNK; i++) {
            c[i].next = st->free_jobs;
            st->free_jobs = &c[i];
        }
    }
    store_job_t *j = st->free_jobs;
    st->free_jobs = j->next;
    return j;
}

void store__jobs_put(store_sq_t *st, store_job_t **jobs, int n) {
    for (int i = 0; i < n; i++) {
        jobs[i]->req = NULL;
        jobs[i]->next = st->free_jobs;
        st->free_jobs = jobs[i];
    }
}

int store_sq_submit(store_sq_t *st, store_req_t *req) {
    int rc = 0;
    uint64_t now_us = clock_mono_us();
    pthread_mutex_lock(&st->mu);
    store_job_t *j = NULL;
    if (st->closing) {
        rc = STORE_E_CLOSED;
    } else if (st->queued >= st->cfg.max_queue) {
        rc = STORE_E_FULL;
    } else if (!(j = job_get(st))) {
        rc = STORE_E_NOMEM;
    } else {
        *j = (store_job_t){.req = req, .submit_us = now_us};
        bool lo = req->op == STORE_OP_STATUS || req->op == STORE_OP_ACK;
        store_job_t **head = lo ? &st->lo_head : &st->head;
        store_job_t **tail = lo ? &st->lo_tail : &st->tail;
        if (*tail)
            (*tail)->next = j;
        else
            *head = j;
        *tail = j;
        if (lo) st->lo_queued++;
        /* Only an idle writer needs a wake-up; a busy one drains the queue
         * before it sleeps again. */
        if (st->queued++ == 0) pthread_cond_signal(&st->cv);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void store_sq_pause(store_sq_t *st, bool paused) {
    pthread_mutex_lock(&st->mu);
    st->paused = paused;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

void store_sq_stats(store_sq_t *st, store_stats_t *out) {
    pthread_mutex_lock(&st->mu);
    *out = st->stats;
    out->queue_depth = st->queued;
    out->dropped = atomic_load_explicit(&st->dropped, memory_order_relaxed);
    out->commit_ms_avg =
        st->stats.commits ? st->commit_ms_total / st->stats.commits : 0;
    pthread_mutex_unlock(&st->mu);
}
