/*
 * A tiny unit-test harness in the libuv spirit: each TEST(name) registers
 * itself, main() runs them all and ends with "N passed, N failed".
 * Include this from exactly one .c per test binary.
 */
#ifndef HERALD_TEST_H
#define HERALD_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
struct test_case {
    const char *name;
    test_fn fn;
};

static struct test_case test_cases[512];
static int test_count;
static int test_failed_now;

#define TEST(tname)                                                   \
    static void test_##tname(void);                                   \
    __attribute__((constructor)) static void test_reg_##tname(void) { \
        test_cases[test_count].name = #tname;                         \
        test_cases[test_count++].fn = test_##tname;                   \
    }                                                                 \
    static void test_##tname(void)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            test_failed_now = 1;                                               \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                \
    do {                                                                  \
        long long va_ = (long long)(a), vb_ = (long long)(b);             \
        if (va_ != vb_) {                                                 \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n", \
                    __FILE__, __LINE__, #a, va_, #b, vb_);                \
            test_failed_now = 1;                                          \
            return;                                                       \
        }                                                                 \
    } while (0)

/* Compares a byte buffer with a hex string such as "0a 0b ff" (spaces and
 * '|' ignored), printing both on mismatch. */
static inline int test_hex_eq(const unsigned char *p, size_t n, const char *hex,
                              const char *file, int line) {
    unsigned char want[4096];
    size_t m = 0;
    for (const char *h = hex; *h && m < sizeof want;) {
        if (*h == ' ' || *h == '|' || *h == '\n') {
            h++;
            continue;
        }
        unsigned v;
        if (sscanf(h, "%2x", &v) != 1) break;
        want[m++] = (unsigned char)v;
        h += 2;
    }
    if (m == n && memcmp(p, want, n) == 0) return 1;
    fprintf(stderr, "  %s:%d: bytes differ\n    got :", file, line);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "\n    want:");
    for (size_t i = 0; i < m; i++) fprintf(stderr, " %02x", want[i]);
    fprintf(stderr, "\n");
    return 0;
}

#define CHECK_HEX(p, n, hex)                                               \
    do {                                                                   \
        if (!test_hex_eq((const unsigned char *)(p), (n), (hex), __FILE__, \
                         __LINE__)) {                                      \
            test_failed_now = 1;                                           \
            return;                                                        \
        }                                                                  \
    } while (0)

int main(int argc, char **argv) {
    int passed = 0, failed = 0;
    for (int i = 0; i < test_count; i++) {
        if (argc > 1 && !strstr(test_cases[i].name, argv[1])) continue;
        test_failed_now = 0;
        test_cases[i].fn();
        if (test_failed_now) {
            failed++;
            printf("FAIL %s\n", test_cases[i].name);
        } else {
            passed++;
            printf("ok   %s\n", test_cases[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif
