/*
 * Status counts held until the message's ack (writer thread only).
 *
 * A push to an online device costs the store three updates of its
 * message row after the insert: routed+written (a STATUS request from the
 * push service's 100 ms window), then acked (the device's ack).  They
 * usually land a few milliseconds apart, so the writer holds a STATUS that
 * only counts routed/written for up to PEND_MS; the ack that covers the
 * message applies both in one UPDATE (store_ops.c ack_count), and what is
 * still held when its time is up is written on its own.  One B-tree
 * search and row rewrite less per acked push.
 *
 * Held counts are as durable as the push service's window they came from
 * (status records are not fsynced: a crash may lose them).  Entries taken
 * by an ack inside a transaction that is rolled back are put back.
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"

#define PEND_CAP 32768u /* power of two; held at most 3/4 of it */
#define PEND_MS 500     /* five of the push service windows */
#define TAKEN_MAX 4096

struct store_pend {
    store_pend_ent_t *ent; /* PEND_CAP slots, id[0] == 0: free */
    uint32_t n;
    uint64_t next_due;       /* earliest due of the held ones (a bound) */
    store_pend_ent_t *taken; /* by acks of the open transaction */
    uint32_t ntaken;
};

static uint32_t hash_id(const char *s) {
    return core_fnv1a(CORE_FNV1A_INIT, s, strlen(s));
}

int store__pend_init(store_t *st) {
    store_pend_t *p = calloc(1, sizeof *p);
    if (!p) return STORE_E_NOMEM;
    p->ent = calloc(PEND_CAP, sizeof *p->ent);
    p->taken = calloc(TAKEN_MAX, sizeof *p->taken);
    if (!p->ent || !p->taken) {
        free(p->ent);
        free(p->taken);
        free(p);
        return STORE_E_NOMEM;
    }
    st->pend = p;
    return 0;
}

void store__pend_free(store_t *st) {
    if (!st->pend) return;
    free(st->pend->ent);
    free(st->pend->taken);
    free(st->pend);
    st->pend = NULL;
}

static store_pend_ent_t *find(store_pend_t *p, const char *id) {
    uint32_t mask = PEND_CAP - 1;
    for (uint32_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
        store_pend_ent_t *e = &p->ent[i];
        if (!e->id[0] || !strcmp(e->id, id)) return e;
    }
}

/* Backward-shift deletion keeps every probe chain unbroken. */
static void erase(store_pend_t *p, store_pend_ent_t *e) {
    uint32_t mask = PEND_CAP - 1, i = (uint32_t)(e - p->ent);
    for (uint32_t j = (i + 1) & mask; p->ent[j].id[0]; j = (j + 1) & mask) {
        uint32_t home = hash_id(p->ent[j].id) & mask;
        /* j's entry may move to i if i lies on its path from home to j */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            p->ent[i] = p->ent[j];
            i = j;
        }
    }
    p->ent[i].id[0] = 0;
    p->n--;
}

static bool put(store_pend_t *p, const store_pend_ent_t *v) {
    if (p->n >= PEND_CAP / 4 * 3) return false;
    store_pend_ent_t *e = find(p, v->id);
    if (e->id[0]) { /* a second window's counts for the same message */
        e->routed += v->routed;
        e->written += v->written;
        return true;
    }
    *e = *v;
    p->n++;
    if (!p->next_due || v->due < p->next_due) p->next_due = v->due;
    return true;
}

static bool hold(store_t *st, const char *id, int64_t routed, int64_t written,
                 int64_t now) {
    store_pend_t *p = st->pend;
    if (!p || !id || !*id || strlen(id) >= sizeof p->ent->id) return false;
    store_pend_ent_t v = {.routed = routed,
                          .written = written,
                          .at = now,
                          .due = clock_mono_ms() + PEND_MS};
    snprintf(v.id, sizeof v.id, "%s", id);
    return put(p, &v);
}

bool store__pend_put(store_t *st, const store_req_t *req, int64_t now) {
    for (int ev = 0; ev < STORE_EV_COUNT; ev++)
        if (req->counts[ev] < 0 || (req->counts[ev] && ev != STORE_EV_ROUTED &&
                                    ev != STORE_EV_WRITTEN))
            return false;
    return hold(st, req->msg.msg_id, req->counts[STORE_EV_ROUTED],
                req->counts[STORE_EV_WRITTEN], now);
}

bool store__pend_hold(store_t *st, const char *msg_id, long routed,
                      long written, int64_t now) {
    return routed >= 0 && written >= 0 && hold(st, msg_id, routed, written, now);
}

bool store__pend_pop(store_t *st, const char *id, store_pend_ent_t *out) {
    store_pend_t *p = st->pend;
    if (!p || !p->n || !id || strlen(id) >= sizeof p->ent->id) return false;
    store_pend_ent_t *e = find(p, id);
    if (!e->id[0]) return false;
    *out = *e;
    erase(p, e);
    return true;
}

bool store__pend_take(store_t *st, const char *id, store_pend_ent_t *out) {
    store_pend_t *p = st->pend;
    if (!p || p->ntaken == TAKEN_MAX || !store__pend_pop(st, id, out))
        return false;
    p->taken[p->ntaken++] = *out;
    return true;
}

void store__pend_settle(store_t *st, bool committed) {
    store_pend_t *p = st->pend;
    if (!p) return;
    for (uint32_t i = 0; !committed && i < p->ntaken; i++)
        (void)put(p, &p->taken[i]); /* full: lost, like a full window */
    p->ntaken = 0;
}

/* One held entry on its own (W_STATUS with its own time). */
static int write_one(store_t *st, const store_pend_ent_t *e) {
    sqlite3_stmt *s = store__w(st, W_STATUS);
    if (!s) return STORE_E_IO;
    sqlite3_bind_text(s, 1, e->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, e->at);
    for (int ev = 0; ev < STORE_EV_COUNT; ev++)
        sqlite3_bind_int64(s, 3 + ev,
                           ev == STORE_EV_ROUTED    ? e->routed
                           : ev == STORE_EV_WRITTEN ? e->written
                                                    : 0);
    return store__step(st, s);
}

uint64_t store__pend_next_due(const store_t *st) {
    return st->pend && st->pend->n ? st->pend->next_due : 0;
}

long store__pend_flush(store_t *st, bool all) {
    store_pend_t *p = st->pend;
    if (!p || !p->n) return 0;
    uint64_t now = clock_mono_ms();
    if (!all && now < p->next_due) return 0;
    store__set_sync(st, false); /* status records: no fsync */
    if (store__exec(st->db, "BEGIN IMMEDIATE") < 0) return -1;
    long done = 0;
    uint64_t next = 0;
    for (uint32_t i = 0; i < PEND_CAP;) {
        store_pend_ent_t *e = &p->ent[i];
        if (!e->id[0] || (!all && e->due > now)) {
            if (e->id[0] && (!next || e->due < next)) next = e->due;
            i++;
            continue;
        }
        (void)write_one(st, e); /* a swept message: nothing to update */
        erase(p, e);            /* slot i now holds a later entry: recheck */
        done++;
    }
    if (store__exec(st->db, "COMMIT") < 0) {
        (void)store__exec(st->db, "ROLLBACK");
        log_warn("held status counts lost", "n=%ld", done);
        done = -1;
    }
    p->next_due = next;
    return done;
}
