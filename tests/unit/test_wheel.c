/* Timer wheel: ordering, cascades, long and past deadlines, callbacks that
 * start and stop timers, next-deadline bounds, and a model-checked random
 * workload. */
#include <stdint.h>
#include <stdlib.h>

#include "ev/wheel.h"
#include "test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A test timer remembers when it fired. */
typedef struct {
    wheel_timer_t t;
    int id;
    int fired;
    uint64_t fired_at; /* the `now` of the wheel_advance that fired it */
    uint64_t want;     /* its expiry when armed */
} ttimer;

static uint64_t g_now;
static int g_order[64];
static int g_norder;

static void on_fire(wheel_timer_t *t, void *arg) {
    (void)arg;
    ttimer *x = (ttimer *)t;
    x->fired++;
    x->fired_at = g_now;
    if (g_norder < 64) g_order[g_norder++] = x->id;
}

static size_t advance(wheel_t *w, uint64_t now) {
    g_now = now;
    return wheel_advance(w, now, on_fire, NULL);
}

static void arm(wheel_t *w, ttimer *x, int id, uint64_t at) {
    wheel_timer_init(&x->t);
    x->id = id;
    x->fired = 0;
    x->want = at;
    wheel_timer_start(w, &x->t, at);
}

TEST(timer_is_small) { CHECK(sizeof(wheel_timer_t) <= 24); }

TEST(empty_wheel_has_no_deadline) {
    static wheel_t w;
    wheel_init(&w, 1000);
    CHECK(wheel_next_deadline(&w) == WHEEL_NEVER);
    CHECK_EQ_INT(advance(&w, 5000000), 0);
    CHECK(wheel_next_deadline(&w) == WHEEL_NEVER);
}

TEST(fires_in_expiry_order_exactly_on_time) {
    static wheel_t w;
    static ttimer x[6];
    const uint64_t at[6] = {1300, 1005, 1255, 1256, 21000, 1001};
    wheel_init(&w, 1000);
    g_norder = 0;
    for (int i = 0; i < 6; i++) arm(&w, &x[i], i, at[i]);
    CHECK_EQ_INT(wheel_count(&w), 6);
    for (uint64_t now = 1000; now <= 21000; now++) advance(&w, now);
    CHECK_EQ_INT(g_norder, 6);
    const int want[6] = {5, 1, 2, 3, 0, 4};
    for (int i = 0; i < 6; i++) CHECK_EQ_INT(g_order[i], want[i]);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ_INT(x[i].fired, 1);
        CHECK_EQ_INT(x[i].fired_at, at[i]);
    }
    CHECK_EQ_INT(wheel_count(&w), 0);
}

TEST(big_jump_fires_everything_due_in_order) {
    static wheel_t w;
    static ttimer x[4];
    wheel_init(&w, 0);
    g_norder = 0;
    arm(&w, &x[0], 0, 3600000);  /* 1 h */
    arm(&w, &x[1], 1, 70000);    /* 70 s */
    arm(&w, &x[2], 2, 7200001);  /* 2 h */
    arm(&w, &x[3], 3, 99999999); /* 27 h: stays */
    CHECK_EQ_INT(advance(&w, 7200001), 3);
    CHECK_EQ_INT(g_order[0], 1);
    CHECK_EQ_INT(g_order[1], 0);
    CHECK_EQ_INT(g_order[2], 2);
    CHECK_EQ_INT(x[3].fired, 0);
    CHECK(wheel_timer_active(&x[3].t));
}

TEST(stop_prevents_firing_and_is_idempotent) {
    static wheel_t w;
    static ttimer a, b;
    wheel_init(&w, 0);
    arm(&w, &a, 0, 10);
    arm(&w, &b, 1, 10);
    wheel_timer_stop(&w, &a.t);
    wheel_timer_stop(&w, &a.t);
    CHECK(!wheel_timer_active(&a.t));
    CHECK_EQ_INT(wheel_count(&w), 1);
    CHECK_EQ_INT(advance(&w, 20), 1);
    CHECK_EQ_INT(a.fired, 0);
    CHECK_EQ_INT(b.fired, 1);
    /* Stopping the last timer of a slot leaves no phantom deadline. */
    arm(&w, &a, 0, 5000);
    wheel_timer_stop(&w, &a.t);
    CHECK(wheel_next_deadline(&w) == WHEEL_NEVER);
}

TEST(restart_moves_the_deadline) {
    static wheel_t w;
    static ttimer a;
    wheel_init(&w, 0);
    arm(&w, &a, 0, 100);
    wheel_timer_start(&w, &a.t, 50000);
    CHECK_EQ_INT(wheel_count(&w), 1);
    CHECK_EQ_INT(advance(&w, 49999), 0);
    CHECK_EQ_INT(advance(&w, 50000), 1);
    CHECK_EQ_INT(a.fired_at, 50000);
}

TEST(past_deadline_fires_on_next_advance) {
    static wheel_t w;
    static ttimer a;
    wheel_init(&w, 1000);
    advance(&w, 5000);
    arm(&w, &a, 0, 10);
    CHECK_EQ_INT(wheel_next_deadline(&w), 0);
    CHECK_EQ_INT(advance(&w, 5000), 1);
    CHECK(wheel_next_deadline(&w) == WHEEL_NEVER);
    /* A `now` that goes backwards fires nothing new. */
    arm(&w, &a, 0, 5003);
    CHECK_EQ_INT(advance(&w, 4000), 0);
    CHECK_EQ_INT(advance(&w, 5003), 1);
}

TEST(long_timeouts_fire_exactly) {
    static wheel_t w;
    static ttimer x[4];
    const uint64_t base = 123456789;
    /* 3 h, 19 h (top level), 40 days, 60 days (beyond the wheel's reach). */
    const uint64_t d[4] = {10800000, 68400123, 3456000007ull, 5184000011ull};
    wheel_init(&w, base);
    for (int i = 0; i < 4; i++) arm(&w, &x[i], i, base + d[i]);
    /* Walk in 1-minute steps, then to the exact millisecond. */
    for (int i = 0; i < 4; i++) {
        uint64_t target = base + d[i];
        uint64_t now = w.cur;
        while (now + 60000 < target) {
            now += 60000;
            CHECK_EQ_INT(advance(&w, now), 0);
            CHECK(wheel_next_deadline(&w) <= target);
        }
        CHECK_EQ_INT(advance(&w, target - 1), 0);
        CHECK_EQ_INT(advance(&w, target), 1);
        CHECK_EQ_INT(x[i].fired_at, target);
    }
}

/* Re-arms itself every 10 ms, 100 times; then re-arms in the past. */
static int periodic_left;
static void on_periodic(wheel_timer_t *t, void *arg) {
    wheel_t *w = arg;
    if (--periodic_left > 0)
        wheel_timer_start(w, t, g_now + 10);
    else if (periodic_left == 0)
        wheel_timer_start(w, t, 0);
}

TEST(rearm_inside_callback) {
    static wheel_t w;
    static wheel_timer_t t;
    wheel_init(&w, 0);
    wheel_timer_init(&t);
    periodic_left = 100;
    wheel_timer_start(&w, &t, 10);
    size_t n = 0;
    for (uint64_t now = 0; now <= 1000; now++) {
        g_now = now;
        n += wheel_advance(&w, now, on_periodic, &w);
    }
    CHECK_EQ_INT(n, 100);
    /* The last callback re-armed it in the past: due, but not fired by the
     * same call (a callback cannot spin the wheel). */
    CHECK(wheel_timer_active(&t));
    CHECK_EQ_INT(wheel_next_deadline(&w), 0);
    CHECK_EQ_INT(wheel_advance(&w, 1000, on_periodic, &w), 1);
    CHECK(!wheel_timer_active(&t));
}

/* The first timer to fire stops the others of the same tick and a later
 * one. */
static ttimer stop_set[4];
static void on_fire_stopper(wheel_timer_t *t, void *arg) {
    wheel_t *w = arg;
    on_fire(t, NULL);
    for (int i = 0; i < 4; i++)
        if (&stop_set[i].t != t) wheel_timer_stop(w, &stop_set[i].t);
}

TEST(stop_inside_callback) {
    static wheel_t w;
    wheel_init(&w, 0);
    arm(&w, &stop_set[0], 0, 300);
    arm(&w, &stop_set[1], 1, 300);
    arm(&w, &stop_set[2], 2, 300);
    arm(&w, &stop_set[3], 3, 900);
    g_now = 1000;
    CHECK_EQ_INT(wheel_advance(&w, 1000, on_fire_stopper, &w), 1);
    int fired = 0;
    for (int i = 0; i < 4; i++) fired += stop_set[i].fired;
    CHECK_EQ_INT(fired, 1);
    CHECK_EQ_INT(wheel_count(&w), 0);
    CHECK(wheel_next_deadline(&w) == WHEEL_NEVER);
}

TEST(next_deadline_is_exact_near_and_a_bound_far) {
    static wheel_t w;
    static ttimer a, b;
    wheel_init(&w, 500);
    arm(&w, &a, 0, 600);
    CHECK_EQ_INT(wheel_next_deadline(&w), 600);
    arm(&w, &b, 1, 550);
    CHECK_EQ_INT(wheel_next_deadline(&w), 550);
    wheel_timer_stop(&w, &b.t);
    CHECK_EQ_INT(wheel_next_deadline(&w), 600);
    wheel_timer_stop(&w, &a.t);
    /* Far: sleeping until each returned deadline reaches the timer exactly,
     * through the cascades, in a handful of wake-ups. */
    arm(&w, &a, 0, 500 + 5000000);
    int wakeups = 0;
    for (;;) {
        uint64_t d = wheel_next_deadline(&w);
        CHECK(d > w.cur - 1 && d <= a.want);
        advance(&w, d);
        wakeups++;
        if (a.fired) break;
        CHECK(wakeups < 10);
    }
    CHECK_EQ_INT(a.fired_at, a.want);
}

/* Random starts, stops and advances against a brute-force model: a timer
 * fires in advance(now) iff it is armed and its expiry is <= now, and the
 * next deadline never lies beyond the earliest armed expiry. */
#define MODEL_N 3000
TEST(random_workload_matches_model) {
    static wheel_t w;
    static ttimer x[MODEL_N];
    static bool armed[MODEL_N];
    uint64_t now = 77777;
    wheel_init(&w, now);
    for (int i = 0; i < MODEL_N; i++) {
        wheel_timer_init(&x[i].t);
        x[i].id = i;
        armed[i] = false;
    }
    static const uint64_t scale[] = {10, 300, 20000, 2000000, 400000000};
    for (int round = 0; round < 3000; round++) {
        for (int k = 0; k < 20; k++) {
            int i = (int)(rnd() % MODEL_N);
            if (rnd() % 4 == 0) {
                wheel_timer_stop(&w, &x[i].t);
                armed[i] = false;
            } else {
                uint64_t at = now + rnd() % scale[rnd() % 5];
                if (rnd() % 16 == 0) at = now - rnd() % 100; /* past */
                x[i].want = at;
                x[i].fired = 0;
                wheel_timer_start(&w, &x[i].t, at);
                armed[i] = true;
            }
        }
        now += rnd() % scale[rnd() % 4];
        g_now = now;
        wheel_advance(&w, now, on_fire, NULL);
        uint64_t earliest = WHEEL_NEVER;
        size_t live = 0;
        for (int i = 0; i < MODEL_N; i++) {
            if (!armed[i]) continue;
            if (x[i].want <= now) {
                CHECK_EQ_INT(x[i].fired, 1);
                CHECK(!wheel_timer_active(&x[i].t));
                armed[i] = false;
            } else {
                CHECK_EQ_INT(x[i].fired, 0);
                CHECK(wheel_timer_active(&x[i].t));
                live++;
                if (x[i].want < earliest) earliest = x[i].want;
            }
        }
        CHECK_EQ_INT(wheel_count(&w), live);
        uint64_t d = wheel_next_deadline(&w);
        CHECK(d <= earliest);
        CHECK(live == 0 || d > now);
    }
}

/* 100k timers with spread-out deadlines: all fire once, none early, none
 * out of order; then 100k started and stopped leave the wheel empty. */
#define MANY 100000
TEST(hundred_thousand_timers) {
    static wheel_t w;
    static ttimer x[MANY];
    wheel_init(&w, 0);
    for (int i = 0; i < MANY; i++) arm(&w, &x[i], i, 1 + rnd() % 36000000);
    uint64_t now = 0, last_want = 0;
    size_t total = 0;
    g_norder = 64; /* order not recorded here */
    while (wheel_count(&w) > 0) {
        now += 1 + rnd() % 3000;
        total += advance(&w, now);
    }
    CHECK_EQ_INT(total, MANY);
    for (int i = 0; i < MANY; i++) {
        CHECK_EQ_INT(x[i].fired, 1);
        CHECK(x[i].fired_at >= x[i].want);
        CHECK(x[i].fired_at - x[i].want < 3001);
        (void)last_want;
    }
    for (int i = 0; i < MANY; i++) arm(&w, &x[i], i, now + rnd() % 86400000);
    CHECK_EQ_INT(wheel_count(&w), MANY);
    for (int i = MANY - 1; i >= 0; i -= 2) wheel_timer_stop(&w, &x[i].t);
    for (int i = 0; i < MANY; i += 2) wheel_timer_stop(&w, &x[i].t);
    CHECK_EQ_INT(wheel_count(&w), 0);
    CHECK(wheel_next_deadline(&w) == WHEEL_NEVER);
    for (unsigned i = 0; i < sizeof w.bits / sizeof w.bits[0]; i++)
        CHECK(w.bits[i] == 0);
}
