/*
 * The SQLite backend's opening and closing: the files' modes, the write
 * connection, the schema, the held counts, the hot inbox's replay, the
 * checkpointer and the writer thread, in that order; and back.  Its
 * layers, bottom up: store_db.c (connections, statements, faults),
 * store_pend.c (counts not written yet), store_ops.c / store_read.c /
 * store_app.c / store_sweep.c (SQL), store_journal.c and store_hot.c (the
 * hot inbox), store_view.c (reads of both), store_queue.c and
 * store_writer.c (requests), store_sq_backend.c (the entry table).
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
