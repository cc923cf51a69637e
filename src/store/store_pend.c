/*
 * Status counts not written yet: the one place they are batched.
 *
 * Every count of a message's status that does not come with its own row
 * change lands here first: routed/written from the push service
 * (store_count) and from a stored push's done() (store_done_t), acks of
 * online-only messages, drops.  An entry sums a message's counts and is
 * written as one UPDATE of its status row when it is due; an entry of
 * routed/written counts only waits longer (PEND_MS) because its
 * message's ack usually follows within milliseconds and then writes
 * them in the same UPDATE as its acked count (store_ops.c ack_count), or
 * the hot inbox's fold writes them with the message row it inserts
 * (store_hot.c): one B-tree search and row rewrite less per acked push.
 *
 * Any thread may count (store_count); the writer takes and settles, and
 * store_ops.c writes what is due (store__status_flush).  A mutex guards the table: counts come in bursts per
 * broadcast or sync page, and the writer holds it only for a lookup.
 *
 * Counts are as durable as status records are (not fsynced: a crash may
 * lose some).  Entries taken by an ack inside a transaction that is
 * rolled back are put back.  A count whose message row is not there yet
 * (its ACCEPT still queued behind a backlog) is kept for KEEP_MS.
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"

#define PEND_CAP 32768u       /* power of two; held at most 3/4 of it */
#define PEND_MS STORE_PEND_MS /* routed/written only: room for the ack */
#define COUNT_MS 100  /* anything else: a window, as the push service's */
#define KEEP_MS 10000 /* a message row not there yet: tried until then */
#define TAKEN_MAX 4096

struct store_pend {
    pthread_mutex_t mu;
    store_pend_ent_t *ent; /* PEND_CAP slots, id[0] == 0: free */
    uint32_t n;
    uint64_t next_due;       /* earliest due of the held ones (a bound) */
    store_pend_ent_t *taken; /* by acks of the open transaction */
    uint32_t ntaken;
    long lost; /* counts a full table dropped */
};

static uint32_t hash_id(const char *s) {
    return core_fnv1a(CORE_FNV1A_INIT, s, strlen(s));
}

int store__pend_init(store_sq_t *st) {
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
    pthread_mutex_init(&p->mu, NULL);
    st->pend = p;
    return 0;
}

void store__pend_free(store_sq_t *st) {
    if (!st->pend) return;
    pthread_mutex_destroy(&st->pend->mu);
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

/* Routed/written only: the counts an ack or a fold may take. */
static bool delivery_only(const store_pend_ent_t *e) {
    for (int ev = 0; ev < STORE_EV_COUNT; ev++)
        if (e->n[ev] && ev != STORE_EV_ROUTED && ev != STORE_EV_WRITTEN)
            return false;
    return true;
}

/* Adds v's counts to its message's entry (under mu); false when full. */
static bool put(store_pend_t *p, const store_pend_ent_t *v) {
    store_pend_ent_t *e = find(p, v->id);
    if (!e->id[0]) {
        if (p->n >= PEND_CAP / 4 * 3) return false;
        *e = *v;
        p->n++;
    } else {
        for (int ev = 0; ev < STORE_EV_COUNT; ev++) e->n[ev] += v->n[ev];
        if (v->due < e->due) e->due = v->due;
    }
    if (!p->next_due || e->due < p->next_due) p->next_due = e->due;
    return true;
}

static bool count(store_sq_t *st, const char *id,
                  const int64_t n[STORE_EV_COUNT], int64_t now) {
    store_pend_t *p = st->pend;
    if (!p || !store__name_ok(id) || strlen(id) >= sizeof p->ent->id)
        return false;
    store_pend_ent_t v = {.at = now};
    uint64_t mono = clock_mono_ms();
    memcpy(v.n, n, sizeof v.n);
    v.due = mono + (delivery_only(&v) ? PEND_MS : COUNT_MS);
    v.until = mono + KEEP_MS;
    memcpy(v.id, id, strlen(id) + 1);
    pthread_mutex_lock(&p->mu);
    bool ok = put(p, &v);
    if (!ok) p->lost++;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void store_sq_count(store_sq_t *st, const char *msg_id, int event, long n) {
    static log_limit_t lim = LOG_LIMIT_INIT(10000);
    if (!st || event < 0 || event >= STORE_EV_COUNT || n <= 0) return;
    int64_t v[STORE_EV_COUNT] = {0};
    v[event] = n;
    if (!count(st, msg_id, v, (int64_t)clock_wall_ms()))
        log_limited(&lim, LOG_LEVEL_WARN, "status counts lost: table full",
                    "msg=%s", msg_id ? msg_id : "");
}

bool store__pend_put(store_sq_t *st, const store_req_t *req, int64_t now) {
    bool any = false;
    for (int ev = 0; ev < STORE_EV_COUNT; ev++) {
        if (req->counts[ev] < 0) return false;
        any = any || req->counts[ev] > 0;
        if (req->counts[ev] && ev != STORE_EV_ROUTED && ev != STORE_EV_WRITTEN)
            return false; /* run as SQL at once, as before */
    }
    return any && count(st, req->msg.msg_id, req->counts, now);
}

bool store__pend_hold(store_sq_t *st, const char *msg_id, long routed,
                      long written, int64_t now) {
    int64_t v[STORE_EV_COUNT] = {0};
    v[STORE_EV_ROUTED] = routed;
    v[STORE_EV_WRITTEN] = written;
    return routed >= 0 && written >= 0 && count(st, msg_id, v, now);
}

bool store__pend_take(store_sq_t *st, const char *id, store_pend_ent_t *out) {
    store_pend_t *p = st->pend;
    if (!p || !id || strlen(id) >= sizeof p->ent->id) return false;
    bool took = false;
    pthread_mutex_lock(&p->mu);
    if (p->n && p->ntaken < TAKEN_MAX) {
        store_pend_ent_t *e = find(p, id);
        if (e->id[0] && delivery_only(e)) {
            *out = *e;
            erase(p, e);
            p->taken[p->ntaken++] = *out;
            took = true;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return took;
}

void store__pend_settle(store_sq_t *st, bool committed) {
    store_pend_t *p = st->pend;
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    for (uint32_t i = 0; !committed && i < p->ntaken; i++)
        if (!put(p, &p->taken[i])) p->lost++; /* full: lost */
    p->ntaken = 0;
    pthread_mutex_unlock(&p->mu);
}

uint64_t store__pend_next_due(store_sq_t *st) {
    store_pend_t *p = st->pend;
    if (!p) return 0;
    pthread_mutex_lock(&p->mu);
    uint64_t due = p->n ? p->next_due : 0;
    pthread_mutex_unlock(&p->mu);
    return due;
}

uint32_t store__pend_due(store_sq_t *st, bool all, store_pend_ent_t **out) {
    store_pend_t *p = st->pend;
    *out = NULL;
    if (!p) return 0;
    uint64_t now = clock_mono_ms();
    pthread_mutex_lock(&p->mu);
    if (!p->n || (!all && now < p->next_due)) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    store_pend_ent_t *due = malloc((size_t)p->n * sizeof *due);
    uint32_t n = 0;
    uint64_t next = 0;
    for (uint32_t i = 0; due && i < PEND_CAP;) {
        store_pend_ent_t *e = &p->ent[i];
        if (!e->id[0] || (!all && e->due > now)) {
            if (e->id[0] && (!next || e->due < next)) next = e->due;
            i++;
            continue;
        }
        due[n++] = *e;
        erase(p, e); /* slot i now holds a later entry: recheck */
    }
    if (due) p->next_due = next;
    pthread_mutex_unlock(&p->mu);
    *out = due;
    return n;
}

void store__pend_back(store_sq_t *st, const store_pend_ent_t *e, uint32_t n) {
    store_pend_t *p = st->pend;
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    for (uint32_t i = 0; i < n; i++)
        if (!put(p, &e[i])) p->lost++;
    pthread_mutex_unlock(&p->mu);
}
