/*
 * wheel: see wheel.h for the design.  Vocabulary used below:
 *
 *   level 0     256 slots, slot i holds timers expiring at a tick whose low
 *               8 bits are i, within 256 ms of the clock;
 *   level L>0   64 slots of 2^shift(L) ms, shift = 8, 14, 20, 26;
 *   cascade     when the clock reaches a multiple of 2^shift(L), the level-L
 *               slot for that moment is emptied and its timers re-placed,
 *               which puts each one a level (or more) lower.
 */
#include "ev/wheel.h"

#define L0_WORDS (WHEEL_L0_SLOTS / 64)

static unsigned level_shift(unsigned level) {
    return level == 0 ? 0 : WHEEL_L0_BITS + (level - 1) * WHEEL_LN_BITS;
}

static unsigned level_base(unsigned level) {
    return level == 0 ? 0 : WHEEL_L0_SLOTS + (level - 1) * WHEEL_LN_SLOTS;
}

static void list_init(wheel_link_t *head) { head->next = head->prev = head; }

static bool list_empty(const wheel_link_t *head) { return head->next == head; }

static void list_append(wheel_link_t *head, wheel_link_t *n) {
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

/* Moves every node of `from` to the empty list `to`. */
static void list_take(wheel_link_t *to, wheel_link_t *from) {
    if (list_empty(from)) {
        list_init(to);
        return;
    }
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    list_init(from);
}

static void bit_set(wheel_t *w, unsigned slot) {
    w->bits[slot / 64] |= 1ull << (slot % 64);
}

static void bit_clear(wheel_t *w, unsigned slot) {
    w->bits[slot / 64] &= ~(1ull << (slot % 64));
}

void wheel_init(wheel_t *w, uint64_t now) {
    w->cur = now;
    w->count = 0;
    list_init(&w->due);
    for (unsigned i = 0; i < sizeof w->bits / sizeof w->bits[0]; i++)
        w->bits[i] = 0;
    for (unsigned i = 0; i < WHEEL_SLOTS; i++) list_init(&w->slots[i]);
}

/* The slot (index into w->slots) where a timer expiring at e belongs, given
 * the clock w->cur <= e. */
static unsigned slot_for(const wheel_t *w, uint64_t e) {
    uint64_t delta = e - w->cur;
    if (delta < WHEEL_L0_SLOTS) return (unsigned)(e & (WHEEL_L0_SLOTS - 1));
    for (unsigned level = 1; level < WHEEL_LEVELS; level++) {
        unsigned shift = level_shift(level);
        if (level == WHEEL_LEVELS - 1) {
            /* Beyond the top level's reach: park in its farthest slot and
             * re-place when that slot comes round. */
            uint64_t reach = 1ull << (shift + WHEEL_LN_BITS);
            if (delta >= reach) e = w->cur + reach - 1;
        } else if (delta >= 1ull << (shift + WHEEL_LN_BITS)) {
            continue;
        }
        return level_base(level) +
               (unsigned)((e >> shift) & (WHEEL_LN_SLOTS - 1));
    }
    return 0; /* unreachable: the top level takes everything */
}

/* Places an unlinked timer; does not touch w->count. */
static void place(wheel_t *w, wheel_timer_t *t) {
    if (t->expire < w->cur) {
        list_append(&w->due, &t->link);
        return;
    }
    unsigned slot = slot_for(w, t->expire);
    list_append(&w->slots[slot], &t->link);
    bit_set(w, slot);
}

void wheel_timer_start(wheel_t *w, wheel_timer_t *t, uint64_t expire) {
    wheel_timer_stop(w, t);
    t->expire = expire;
    place(w, t);
    w->count++;
}

/* Unlinks t.  If that leaves one of the wheel's slots empty, its bit goes:
 * the only node left then is the slot head, recognised by its address. */
static void unlink_timer(wheel_t *w, wheel_timer_t *t) {
    wheel_link_t *next = t->link.next, *prev = t->link.prev;
    prev->next = next;
    next->prev = prev;
    t->link.next = t->link.prev = NULL;
    if (next == prev && next >= w->slots && next < w->slots + WHEEL_SLOTS)
        bit_clear(w, (unsigned)(next - w->slots));
}

void wheel_timer_stop(wheel_t *w, wheel_timer_t *t) {
    if (!wheel_timer_active(t)) return;
    unlink_timer(w, t);
    w->count--;
}

/* First set bit of a 64-slot level at or after position `from`, circularly;
 * returns the distance from `from` (0..63) or -1 if the level is empty. */
static int first_from(uint64_t bits, unsigned from) {
    if (!bits) return -1;
    uint64_t rot = from ? (bits >> from) | (bits << (64 - from)) : bits;
    return __builtin_ctzll(rot);
}

/* Distance (0..255) from level-0 position `from` to the first non-empty
 * slot, circularly, or -1.  Five word visits: the start word's tail, the
 * three other words, the start word's head. */
static int first_l0_from(const wheel_t *w, unsigned from) {
    unsigned word = from / 64, bit = from % 64;
    uint64_t m = w->bits[word] & (~0ull << bit);
    for (unsigned k = 0;; k++) {
        if (m) {
            unsigned pos =
                ((word + k) % L0_WORDS) * 64 + (unsigned)__builtin_ctzll(m);
            return (int)((pos - from) & (WHEEL_L0_SLOTS - 1));
        }
        if (k == L0_WORDS) return -1;
        m = w->bits[(word + k + 1) % L0_WORDS];
        if (k + 1 == L0_WORDS) m &= bit ? (1ull << bit) - 1 : 0;
    }
}

/* Earliest tick at which a slot needs processing, ignoring `due`. */
static uint64_t slots_next(const wheel_t *w) {
    uint64_t best = WHEEL_NEVER;
    int d = first_l0_from(w, (unsigned)(w->cur & (WHEEL_L0_SLOTS - 1)));
    if (d >= 0) best = w->cur + (uint64_t)d;
    for (unsigned level = 1; level < WHEEL_LEVELS; level++) {
        uint64_t bits = w->bits[L0_WORDS + level - 1];
        if (!bits) continue;
        unsigned shift = level_shift(level);
        /* The next cascade instant of this level is the first multiple of
         * 2^shift at or after cur; slot i is handled i - base windows on. */
        uint64_t base = (w->cur + (1ull << shift) - 1) >> shift;
        int k = first_from(bits, (unsigned)(base & (WHEEL_LN_SLOTS - 1)));
        uint64_t at = (base + (uint64_t)k) << shift;
        if (at < best) best = at;
    }
    return best;
}

uint64_t wheel_next_deadline(const wheel_t *w) {
    if (!list_empty(&w->due)) return 0;
    if (w->count == 0) return WHEEL_NEVER;
    return slots_next(w);
}

/* Re-places the timers of the level-L slot due at tick `tick`. */
static void cascade(wheel_t *w, unsigned level, uint64_t tick) {
    unsigned shift = level_shift(level);
    unsigned slot =
        level_base(level) + (unsigned)((tick >> shift) & (WHEEL_LN_SLOTS - 1));
    wheel_link_t tmp;
    list_take(&tmp, &w->slots[slot]);
    bit_clear(w, slot);
    while (!list_empty(&tmp)) {
        wheel_timer_t *t = (wheel_timer_t *)tmp.next;
        unlink_timer(w, t);
        place(w, t);
    }
}

/* Fires every timer of `list` (a private list head); each is unlinked
 * before its callback, so callbacks may stop or re-arm anything. */
static size_t fire_list(wheel_t *w, wheel_link_t *list, wheel_fire_fn fire,
                        void *arg) {
    size_t n = 0;
    while (!list_empty(list)) {
        wheel_timer_t *t = (wheel_timer_t *)list->next;
        unlink_timer(w, t);
        w->count--;
        fire(t, arg);
        n++;
    }
    return n;
}

/* Processes tick w->cur: cascades that fall on it, then its level-0 slot.
 * The clock moves past the tick before callbacks run, so a timer re-armed
 * for this tick or earlier lands on `due` instead of being fired again. */
static size_t run_tick(wheel_t *w, wheel_fire_fn fire, void *arg) {
    uint64_t tick = w->cur;
    for (unsigned level = 1; level < WHEEL_LEVELS; level++) {
        if (tick & ((1ull << level_shift(level)) - 1)) break;
        cascade(w, level, tick);
    }
    unsigned slot = (unsigned)(tick & (WHEEL_L0_SLOTS - 1));
    wheel_link_t batch;
    list_take(&batch, &w->slots[slot]);
    bit_clear(w, slot);
    w->cur = tick + 1;
    return fire_list(w, &batch, fire, arg);
}

size_t wheel_advance(wheel_t *w, uint64_t now, wheel_fire_fn fire, void *arg) {
    size_t n = 0;
    if (!list_empty(&w->due)) {
        wheel_link_t batch;
        list_take(&batch, &w->due);
        n += fire_list(w, &batch, fire, arg);
    }
    while (w->cur <= now) {
        uint64_t next = slots_next(w);
        if (next > now) {
            w->cur = now + 1;
            break;
        }
        /* Nothing happens between cur and next: jump there. */
        if (next > w->cur) w->cur = next;
        n += run_tick(w, fire, arg);
    }
    return n;
}
