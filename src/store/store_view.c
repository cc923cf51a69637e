/*
 * What the SQLite backend's readers see: SQLite's rows with the hot
 * inbox's (store_hot.c) merged in.  Above both layers, so that neither
 * calls the other to read.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"

/* Rows of a and b (each by seq) in one list by seq, a row in both taken
 * once, at most limit; b's rows are moved or freed, a becomes the result. */
static int rows_merge(store_rows_t *a, store_rows_t *b, uint32_t limit) {
    if (!b->n) return 0;
    store_row_t *m = calloc((size_t)a->n + b->n, sizeof *m);
    if (!m) return STORE_E_NOMEM;
    uint32_t i = 0, j = 0, n = 0;
    while (i < a->n || j < b->n) {
        store_row_t *x;
        if (j == b->n || (i < a->n && a->rows[i].seq <= b->rows[j].seq)) {
            x = &a->rows[i++];
            if (j < b->n && b->rows[j].seq == x->seq) { /* folded between */
                store_rows_t one = {&b->rows[j++], 1, false};
                store_rows_free_items(&one);
            }
        } else {
            x = &b->rows[j++];
        }
        m[n++] = *x;
        memset(x, 0, sizeof *x);
    }
    bool more = a->more || b->more;
    free(b->rows);
    b->rows = NULL;
    b->n = 0;
    free(a->rows);
    a->rows = m;
    a->n = n;
    if (n > limit) {
        store_rows_t tail = {m + limit, n - limit, false};
        store_rows_free_items(&tail);
        a->n = limit;
        more = true;
    }
    a->more = more;
    return 0;
}

/* SQLite's rows and the hot inbox's, hot ones copied first: one folded
 * in between is then in both (taken once), never in neither. */
int store_sq_inbox_fetch(store_sq_reader_t *r, const char *app,
                         const char *device, int64_t after, uint32_t limit,
                         int64_t now_ms, store_rows_t *out) {
    store_rows_t hot = {0};
    memset(out, 0, sizeof *out);
    int64_t dropped_to = 0;
    store_sq_t *st = store__reader_store(r);
    int rc = store__hot_fetch(st, app, device, after, limit, now_ms, &hot,
                              &dropped_to);
    if (rc < 0) return rc;
    if (after < dropped_to) after = dropped_to; /* not trimmed yet */
    uint64_t t0 = clock_mono_us();
    rc = store__read_inbox(r, app, device, after, limit, now_ms, out);
    if (rc == 0 && (rc = rows_merge(out, &hot, limit)) < 0)
        store_rows_free(out);
    store_rows_free(&hot);
    store__observe(st, STORE_OBS_FETCH, t0, rc < 0);
    return rc;
}

/* Device info and status read SQLite after every hot push is folded
 * (store__hot_barrier: bounded, and failing at once on a full disk). */
int store_sq_device_info(store_sq_reader_t *r, const char *app,
                         const char *device, store_device_info_t *out) {
    memset(out, 0, sizeof *out);
    int rc = store__hot_barrier(store__reader_store(r));
    return rc < 0 ? rc : store__read_device_info(r, app, device, out);
}

int store_sq_status_get(store_sq_reader_t *r, const char *msg_id,
                        store_status_t *out) {
    memset(out, 0, sizeof *out);
    int rc = store__hot_barrier(store__reader_store(r));
    return rc < 0 ? rc : store__read_status(r, msg_id, out);
}
