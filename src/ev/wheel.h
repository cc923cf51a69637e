/*
 * wheel: a hierarchical timer wheel with millisecond ticks (the classic
 * Varghese & Lauck design, as in Linux before 4.8).
 *
 * Five levels: 256 one-millisecond slots, then four levels of 64 slots each
 * 64 times coarser (256 ms, 16.4 s, 17.5 min, 18.6 h per slot), covering
 * 2^32 ms (49.7 days) ahead; later deadlines wait in the top level and are
 * re-placed each time it comes round.  A timer sits in the slot of the
 * coarsest level that still separates it from "now"; when time reaches a
 * coarse slot, its timers are cascaded one level down, so every timer is
 * touched at most five times in its life.
 *
 * Costs: start and stop are O(1) (a list insert/unlink and a bitmap bit);
 * advancing over idle time jumps straight to the next slot that holds
 * timers (bitmaps per level); nothing ever scans all timers.
 *
 * Timers are intrusive (24 bytes, embedded in the owner's struct, found
 * back with container_of); the wheel never allocates.  Not thread-safe:
 * one wheel per event loop.
 */
#ifndef HERALD_EV_WHEEL_H
#define HERALD_EV_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WHEEL_L0_BITS 8
#define WHEEL_LN_BITS 6
#define WHEEL_LEVELS 5
#define WHEEL_L0_SLOTS (1u << WHEEL_L0_BITS)
#define WHEEL_LN_SLOTS (1u << WHEEL_LN_BITS)
#define WHEEL_SLOTS (WHEEL_L0_SLOTS + (WHEEL_LEVELS - 1) * WHEEL_LN_SLOTS)
/* wheel_next_deadline() when no timer is armed. */
#define WHEEL_NEVER UINT64_MAX

/* List links come first so that a slot head (links only) and a timer share
 * the layout that unlinking touches. */
typedef struct wheel_link {
    struct wheel_link *next, *prev;
} wheel_link_t;

typedef struct wheel_timer {
    wheel_link_t link; /* next == NULL: not armed */
    uint64_t expire;   /* absolute ms, same clock as wheel_advance's now */
} wheel_timer_t;

typedef struct wheel {
    uint64_t cur;     /* next tick to process; all earlier are done */
    size_t count;     /* armed timers, `due` included */
    wheel_link_t due; /* armed with a deadline already passed */
    uint64_t bits[WHEEL_L0_SLOTS / 64 + WHEEL_LEVELS - 1]; /* slot non-empty */
    wheel_link_t slots[WHEEL_SLOTS];
} wheel_t;

typedef void (*wheel_fire_fn)(wheel_timer_t *t, void *arg);

/* Starts an empty wheel whose clock reads `now` ms. */
void wheel_init(wheel_t *w, uint64_t now);

static inline void wheel_timer_init(wheel_timer_t *t) {
    t->link.next = t->link.prev = NULL;
    t->expire = 0;
}

static inline bool wheel_timer_active(const wheel_timer_t *t) {
    return t->link.next != NULL;
}

/* Arms t to fire at absolute time `expire` (re-arms if already armed).  A
 * deadline at or before the wheel's current time fires on the next
 * wheel_advance() call, whatever its `now`. */
void wheel_timer_start(wheel_t *w, wheel_timer_t *t, uint64_t expire);

/* Disarms t; harmless if t is not armed. */
void wheel_timer_stop(wheel_t *w, wheel_timer_t *t);

/* The earliest time at which wheel_advance() has work: the exact expiry
 * of the next timer when it already sits in the 1 ms level, otherwise the
 * (earlier) moment a coarse slot must be cascaded, so a loop sleeping until
 * this deadline wakes a few extra times on its way to a far timer.  Never
 * later than the earliest expiry; 0 if a timer is already due; WHEEL_NEVER
 * if none is armed.  O(levels). */
uint64_t wheel_next_deadline(const wheel_t *w);

/* Moves the wheel's clock to `now` and calls fire(t, arg) for every timer
 * whose expiry is <= now, in expiry order (timers armed already due come
 * first; ties in no particular order).  A timer
 * is disarmed before its callback runs.  The callback may start or stop any
 * timer, itself included; a timer re-armed for a time <= now fires on the
 * next call, not this one, so a callback cannot spin the wheel.  A `now`
 * earlier than the wheel's clock only fires already-due timers.  Returns
 * the number of callbacks made. */
size_t wheel_advance(wheel_t *w, uint64_t now, wheel_fire_fn fire, void *arg);

static inline size_t wheel_count(const wheel_t *w) { return w->count; }

#endif
