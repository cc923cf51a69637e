/*
 * push_agg: the accumulator behind status-count and ack coalescing.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "push/push_agg.h"
#include "test.h"

typedef struct seen {
    int n;
    char keys[8][32];
    int64_t vals[8][3];
} seen_t;

static void collect(void *ctx, const char *key, size_t klen,
                    const int64_t *vals) {
    seen_t *s = ctx;
    if (s->n < 8) {
        snprintf(s->keys[s->n], sizeof s->keys[0], "%.*s", (int)klen, key);
        memcpy(s->vals[s->n], vals, 3 * sizeof *vals);
    }
    s->n++;
}

static int find(const seen_t *s, const char *key) {
    for (int i = 0; i < s->n && i < 8; i++)
        if (!strcmp(s->keys[i], key)) return i;
    return -1;
}

TEST(add_sums_per_key_and_drain_empties) {
    push_agg_t *a = push_agg_new(3, PUSH_AGG_ADD, 100);
    CHECK(a);
    CHECK_EQ_INT(push_agg_put(a, "m1", 2, 0, 1), 0);
    CHECK_EQ_INT(push_agg_put(a, "m1", 2, 2, 5), 0);
    CHECK_EQ_INT(push_agg_put(a, "m2", 2, 0, 7), 0);
    CHECK_EQ_INT(push_agg_put(a, "m1", 2, 0, 1), 0);
    CHECK_EQ_INT(push_agg_put(a, "m1", 2, 3, 1), -1); /* no such slot */
    CHECK_EQ_INT(push_agg_count(a), 2);
    seen_t s = {0};
    push_agg_drain(a, collect, &s);
    CHECK_EQ_INT(s.n, 2);
    int i = find(&s, "m1");
    CHECK(i >= 0);
    CHECK(s.vals[i][0] == 2 && s.vals[i][1] == 0 && s.vals[i][2] == 5);
    CHECK_EQ_INT(push_agg_count(a), 0);
    memset(&s, 0, sizeof s);
    push_agg_drain(a, collect, &s);
    CHECK_EQ_INT(s.n, 0);
    /* Refilled after a drain: fresh values, not the old ones. */
    CHECK_EQ_INT(push_agg_put(a, "m1", 2, 1, 3), 0);
    push_agg_drain(a, collect, &s);
    CHECK(s.n == 1 && s.vals[0][0] == 0 && s.vals[0][1] == 3);
    push_agg_free(a);
}

TEST(max_keeps_highest_and_keys_with_nul_differ) {
    push_agg_t *a = push_agg_new(2, PUSH_AGG_MAX, 100);
    CHECK(a);
    CHECK_EQ_INT(push_agg_put(a, "app\0dev", 7, 0, 5), 0);
    CHECK_EQ_INT(push_agg_put(a, "app\0dev", 7, 0, 3), 0);
    CHECK_EQ_INT(push_agg_put(a, "app\0dev", 7, 1, -1), 0);
    CHECK_EQ_INT(push_agg_put(a, "app\0de", 6, 0, 1), 0);
    seen_t s = {0};
    push_agg_drain(a, collect, &s);
    CHECK_EQ_INT(s.n, 2);
    /* "%.*s" stops at the NUL: both print as "app"; tell them by value */
    int hi = s.vals[0][0] == 5 ? 0 : 1;
    CHECK(s.vals[hi][0] == 5 && s.vals[hi][1] == -1);
    CHECK(s.vals[1 - hi][0] == 1 && s.vals[1 - hi][1] == INT64_MIN);
    push_agg_free(a);
}

static void sum_vals(void *ctx, const char *key, size_t klen,
                     const int64_t *vals) {
    (void)key;
    (void)klen;
    int64_t *acc = ctx;
    acc[0] += vals[0];
    acc[1]++;
}

TEST(grows_then_refuses_past_max_keys) {
    push_agg_t *a = push_agg_new(1, PUSH_AGG_ADD, 5000);
    CHECK(a);
    char k[16];
    int64_t want = 0;
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(k, sizeof k, "k%d", i);
        CHECK_EQ_INT(push_agg_put(a, k, (size_t)n, 0, i), 0);
        want += i;
    }
    CHECK_EQ_INT(push_agg_put(a, "k-new", 5, 0, 1), -1);
    CHECK_EQ_INT(push_agg_put(a, "k4999", 5, 0, 1), 0); /* existing: ok */
    CHECK_EQ_INT(push_agg_count(a), 5000);
    int64_t acc[2] = {0, 0};
    push_agg_drain(a, sum_vals, acc);
    CHECK(acc[0] == want + 1 && acc[1] == 5000);
    push_agg_free(a);
}
