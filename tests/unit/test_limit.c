/*
 * Admission limits without sockets: the accept-rate bucket and the
 * per-address connection table (gateway/gw_limit.c), and the memory
 * watermark (ops/ops_mem.c): size parsing, the sampler setting and
 * clearing its flag.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "gateway/gw_limit.h"
#include "ops/ops_mem.h"
#include "test.h"

#define MS 1000000ull /* ns */

/* ---- accept rate ---- */

TEST(rate_off_always_allows) {
    gw_rate_t r;
    gw_rate_init(&r, 0, 0);
    for (int i = 0; i < 1000; i++) CHECK(gw_rate_take(&r, 0));
}

TEST(rate_burst_then_refill) {
    gw_rate_t r;
    gw_rate_init(&r, 100, 5); /* one token per 10 ms, 5 at once */
    uint64_t t = 1000 * MS;
    for (int i = 0; i < 5; i++) CHECK(gw_rate_take(&r, t));
    CHECK(!gw_rate_take(&r, t));
    CHECK(!gw_rate_take(&r, t + 9 * MS));
    CHECK(gw_rate_take(&r, t + 10 * MS)); /* one more after 10 ms */
    CHECK(!gw_rate_take(&r, t + 10 * MS));
    /* idle for a second: the bucket is full again, not fuller */
    t += 2000 * MS;
    int n = 0;
    while (gw_rate_take(&r, t)) n++;
    CHECK_EQ_INT(n, 5);
}

TEST(rate_sustained_matches_rate) {
    gw_rate_t r;
    gw_rate_init(&r, 200, 50);
    /* 10 s of attempts every 1 ms: burst + rate * time */
    int ok = 0;
    for (uint64_t ms = 0; ms < 10000; ms++)
        ok += gw_rate_take(&r, 5000 * MS + ms * MS);
    CHECK(ok >= 50 + 200 * 10 - 2 && ok <= 50 + 200 * 10 + 1);
}

TEST(rate_default_burst_is_one_second) {
    gw_rate_t r;
    gw_rate_init(&r, 20, 0);
    int n = 0;
    while (gw_rate_take(&r, 7000 * MS)) n++;
    CHECK_EQ_INT(n, 20);
}

/* Several threads taking at one instant never get more than the burst. */
static gw_rate_t shared_rate;
static atomic_int shared_ok;
static void *rate_taker(void *arg) {
    for (int i = 0; i < 1000; i++)
        if (gw_rate_take(&shared_rate, 42 * MS))
            atomic_fetch_add(&shared_ok, 1);
    return arg;
}

TEST(rate_threads_share_one_bucket) {
    gw_rate_init(&shared_rate, 1000, 64);
    atomic_store(&shared_ok, 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, rate_taker, NULL);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    CHECK_EQ_INT(atomic_load(&shared_ok), 64);
}

/* ---- connections per address ---- */

static struct sockaddr_storage v4(const char *ip) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a->sin_addr);
    return ss;
}

static struct sockaddr_storage v6(const char *ip) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &a->sin6_addr);
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

TEST(iptab_limit_per_address) {
    gw_iptab_t *t = gw_iptab_new(3);
    CHECK(t != NULL);
    struct sockaddr_storage a = v4("10.0.0.1"), b = v4("10.0.0.2");
    gw_ipent_t *e[4] = {0}, *x = NULL;
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(gw_iptab_take(t, SA(a), &e[i]), 0);
    CHECK_EQ_INT(gw_iptab_take(t, SA(a), &x), GW_IPTAB_OVER);
    CHECK(x == NULL);
    CHECK_EQ_INT(gw_iptab_count(t, SA(a)), 3);
    /* another address has its own count */
    CHECK_EQ_INT(gw_iptab_take(t, SA(b), &e[3]), 0);
    CHECK_EQ_INT(gw_iptab_count(t, SA(b)), 1);
    CHECK_EQ_INT(gw_iptab_size(t), 2);
    /* one closes: one more may come */
    gw_iptab_put(t, e[0]);
    CHECK_EQ_INT(gw_iptab_take(t, SA(a), &e[0]), 0);
    for (int i = 0; i < 4; i++) gw_iptab_put(t, e[i]);
    CHECK_EQ_INT(gw_iptab_count(t, SA(a)), 0);
    CHECK_EQ_INT(gw_iptab_size(t), 0); /* entries freed at zero */
    gw_iptab_free(t);
}

TEST(iptab_ipv6_per_64_and_mapped_v4) {
    gw_iptab_t *t = gw_iptab_new(2);
    struct sockaddr_storage a1 = v6("2001:db8:1:2::1"),
                            a2 = v6("2001:db8:1:2:ffff::9"),
                            other = v6("2001:db8:1:3::1"),
                            mapped = v6("::ffff:192.0.2.7"),
                            plain = v4("192.0.2.7");
    gw_ipent_t *e[6] = {0}, *x;
    CHECK_EQ_INT(gw_iptab_take(t, SA(a1), &e[0]), 0);
    CHECK_EQ_INT(gw_iptab_take(t, SA(a2), &e[1]), 0); /* same /64 */
    CHECK_EQ_INT(gw_iptab_take(t, SA(a1), &x), GW_IPTAB_OVER);
    CHECK_EQ_INT(gw_iptab_take(t, SA(other), &e[2]), 0); /* next /64 */
    CHECK_EQ_INT(gw_iptab_take(t, SA(mapped), &e[3]), 0);
    CHECK_EQ_INT(gw_iptab_take(t, SA(plain), &e[4]), 0); /* one client */
    CHECK_EQ_INT(gw_iptab_take(t, SA(plain), &x), GW_IPTAB_OVER);
    CHECK_EQ_INT(gw_iptab_count(t, SA(mapped)), 2);
    struct sockaddr_storage unix_sa;
    memset(&unix_sa, 0, sizeof unix_sa);
    unix_sa.ss_family = AF_UNIX;
    CHECK_EQ_INT(gw_iptab_take(t, SA(unix_sa), &e[5]), -EAFNOSUPPORT);
    CHECK(e[5] == NULL);
    for (int i = 0; i < 5; i++) gw_iptab_put(t, e[i]);
    CHECK_EQ_INT(gw_iptab_size(t), 0);
    gw_iptab_free(t);
}

TEST(iptab_many_addresses_grow) {
    gw_iptab_t *t = gw_iptab_new(1);
    static gw_ipent_t *e[20000];
    char ip[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(ip, sizeof ip, "10.%d.%d.%d", i >> 16, (i >> 8) & 255,
                 i & 255);
        struct sockaddr_storage a = v4(ip);
        CHECK_EQ_INT(gw_iptab_take(t, SA(a), &e[i]), 0);
    }
    CHECK_EQ_INT(gw_iptab_size(t), 20000);
    struct sockaddr_storage a = v4("10.0.78.31"); /* i = 19999 */
    gw_ipent_t *x;
    CHECK_EQ_INT(gw_iptab_take(t, SA(a), &x), GW_IPTAB_OVER);
    for (int i = 0; i < 20000; i++) gw_iptab_put(t, e[i]);
    CHECK_EQ_INT(gw_iptab_size(t), 0);
    gw_iptab_free(t);
}

/* Workers take and give back concurrently: the counts end at zero and the
 * limit holds at every moment. */
static gw_iptab_t *shared_tab;
static atomic_int over_limit_seen;
static void *ip_churn(void *arg) {
    struct sockaddr_storage a = v4((const char *)arg);
    gw_ipent_t *held[8];
    for (int round = 0; round < 2000; round++) {
        int n = 0;
        for (int i = 0; i < 8; i++)
            if (gw_iptab_take(shared_tab, SA(a), &held[n]) == 0) n++;
        if (gw_iptab_count(shared_tab, SA(a)) > 16)
            atomic_fetch_add(&over_limit_seen, 1);
        for (int i = 0; i < n; i++) gw_iptab_put(shared_tab, held[i]);
    }
    return NULL;
}

TEST(iptab_threads) {
    shared_tab = gw_iptab_new(16);
    atomic_store(&over_limit_seen, 0);
    static const char *ips[4] = {"10.9.9.9", "10.9.9.9", "10.8.8.8",
                                 "10.9.9.9"};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, ip_churn, (void *)ips[i]);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    CHECK_EQ_INT(atomic_load(&over_limit_seen), 0);
    CHECK_EQ_INT(gw_iptab_size(shared_tab), 0);
    gw_iptab_free(shared_tab);
}

/* ---- memory watermark ---- */

TEST(mem_parse_size) {
    uint64_t v = 7;
    CHECK_EQ_INT(ops_mem_parse_size("0", &v), 0);
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(ops_mem_parse_size("1048576", &v), 0);
    CHECK_EQ_INT(v, 1048576);
    CHECK_EQ_INT(ops_mem_parse_size("512K", &v), 0);
    CHECK_EQ_INT(v, 512 * 1024);
    CHECK_EQ_INT(ops_mem_parse_size("512m", &v), 0);
    CHECK_EQ_INT(v, 512ll << 20);
    CHECK_EQ_INT(ops_mem_parse_size("2G", &v), 0);
    CHECK_EQ_INT(v, 2ll << 30);
    CHECK_EQ_INT(ops_mem_parse_size("2GiB", &v), 0);
    CHECK_EQ_INT(v, 2ll << 30);
    CHECK_EQ_INT(ops_mem_parse_size("1TB", &v), 0);
    CHECK_EQ_INT(v, 1ll << 40);
    const char *bad[] = {"",    "G",   "-1",           "1.5G", "12X",
                         "1GG", "1 G", "99999999999T", "auto"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(ops_mem_parse_size(bad[i], &v), -EINVAL);
}

TEST(mem_rss_and_limit_read) {
    uint64_t rss = ops_mem_rss();
    CHECK(rss > 100 * 1024);
    const char *from = NULL;
    uint64_t lim = ops_mem_limit(&from);
    CHECK(lim > rss);
    CHECK(from != NULL);
}

static bool wait_over(ops_mem_t *m, bool want, int ms) {
    for (int i = 0; i < ms / 10; i++) {
        if (ops_mem_over(m) == want) return true;
        usleep(10000);
    }
    return ops_mem_over(m) == want;
}

TEST(mem_off_never_over) {
    CHECK(!ops_mem_over(NULL));
    ops_mem_t *m = ops_mem_new(0, 10);
    CHECK_EQ_INT(ops_mem_start(m), 0);
    usleep(50000);
    CHECK(!ops_mem_over(m));
    ops_mem_free(m);
}

TEST(mem_flag_sets_above_high) {
    log_set_level(LOG_LEVEL_ERROR);
    ops_mem_t *m = ops_mem_new(4096, 10); /* any process is above 4 KiB */
    CHECK_EQ_INT(ops_mem_start(m), 0);
    CHECK(wait_over(m, true, 2000));
    CHECK(ops_mem_last_rss(m) > 4096);
    ops_mem_free(m);
    m = ops_mem_new(1ull << 50, 10); /* and below a petabyte */
    CHECK_EQ_INT(ops_mem_start(m), 0);
    usleep(50000);
    CHECK(!ops_mem_over(m));
    ops_mem_free(m);
}

/* Recovery needs malloc_trim: small blocks freed below a live one stay
 * resident otherwise.  (Under ASan the allocator is ASan's and RSS holds
 * its shadow: only the flag's rise is checked there.) */
TEST(mem_recovers_after_free) {
    log_set_level(LOG_LEVEL_ERROR);
    enum { N = 4096, SZ = 8192 }; /* 32 MiB in heap-sized blocks */
    static char *blocks[N];
    uint64_t base = ops_mem_rss();
    ops_mem_t *m = ops_mem_new(base + (16u << 20), 10);
    CHECK_EQ_INT(ops_mem_start(m), 0);
    CHECK(!ops_mem_over(m));
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(SZ);
        CHECK(blocks[i] != NULL);
        memset(blocks[i], i, SZ);
    }
    static char *volatile pin;
    pin = malloc(64); /* keeps the heap's top in place */
    CHECK(wait_over(m, true, 3000));
    for (int i = 0; i < N; i++) free(blocks[i]);
#if defined(__SANITIZE_ADDRESS__)
    free(pin);
    ops_mem_free(m);
#else
    CHECK(wait_over(m, false, 3000));
    CHECK(ops_mem_last_rss(m) < base + (16u << 20));
    free(pin);
    ops_mem_free(m);
#endif
}
