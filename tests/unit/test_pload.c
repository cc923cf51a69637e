/* pload (push_load's engine) and bench_stat: the payload marker that lets a
 * device check each push, and the latency percentiles. */
#include <string.h>
#include <unistd.h>

#include "bench/bench_stat.h"
#include "bench/pload.h"
#include "test.h"

TEST(payload_marker_round_trip) {
    char p[128];
    size_t n = pload_payload(p, sizeof p, 64, 4000000000u, 17, 123456789012ull,
                             987654321ull);
    CHECK_EQ_INT(n, 64);
    CHECK_EQ_INT(strlen(p), 64);
    CHECK(!strncmp(p, "#L4000000000.17.123456789012.987654321#xx", 41));
    pload_mark_t m;
    CHECK_EQ_INT(pload_payload_parse((const uint8_t *)p, n, &m), 0);
    CHECK(m.run == 4000000000u && m.dev == 17 && m.seq == 123456789012ull &&
          m.t0 == 987654321ull);
    /* Smaller than the marker: the marker alone; cap too small: 0. */
    CHECK_EQ_INT(pload_payload(p, sizeof p, 4, 1, 2, 3, 4), 10);
    CHECK(!strcmp(p, "#L1.2.3.4#"));
    CHECK_EQ_INT(pload_payload(p, 8, 4, 1, 2, 3, 4), 0);
}

TEST(payload_marker_rejects_others) {
    pload_mark_t m;
    const char *bad[] = {"",
                         "#B7#xx",
                         "#L1.2.3#",
                         "#L1.2.3.4",
                         "#L1.2..4#",
                         "#L99999999999.1.2.3#",
                         "x#L1.2.3.4#",
                         "#L1.2.3.x#"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_EQ_INT(
            pload_payload_parse((const uint8_t *)bad[i], strlen(bad[i]), &m),
            -1);
    /* The length bounds the parse: a marker cut short is not ours. */
    CHECK_EQ_INT(pload_payload_parse((const uint8_t *)"#L1.2.3.4#", 9, &m), -1);
}

TEST(latency_percentiles_nearest_rank) {
    bench_lat_t l = {0};
    CHECK_EQ_INT(bench_lat_pct(&l, .5), 0);
    for (uint64_t v = 100; v >= 1; v--) CHECK_EQ_INT(bench_lat_add(&l, v), 0);
    CHECK_EQ_INT(bench_lat_add(&l, 1ull << 40), 0); /* clamped */
    bench_lat_sort(&l);
    CHECK_EQ_INT(l.n, 101);
    CHECK_EQ_INT(bench_lat_pct(&l, 0), 1);
    CHECK_EQ_INT(bench_lat_pct(&l, .5), 51);
    CHECK_EQ_INT(bench_lat_pct(&l, .99), 100);
    CHECK_EQ_INT(bench_lat_pct(&l, 1), UINT32_MAX);
    CHECK_EQ_INT(bench_lat_reserve(&l, 10000), 0);
    CHECK(l.cap >= l.n + 10000);
    bench_lat_t m = {0};
    CHECK_EQ_INT(bench_lat_add(&m, 7), 0);
    CHECK_EQ_INT(bench_lat_append(&m, &l), 0);
    CHECK_EQ_INT(m.n, 102);
    CHECK_EQ_INT(m.v[0], 7);
    CHECK_EQ_INT(m.v[101], UINT32_MAX);
    bench_lat_free(&m);
    bench_lat_free(&l);
    CHECK(l.v == NULL && l.n == 0);
}

TEST(own_cpu_time_is_readable) {
    long t = bench_proc_cpu_ticks((int)getpid());
    CHECK(t >= 0);
    CHECK(bench_proc_cpu_ticks(-1) == -1);
}
