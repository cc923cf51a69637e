/* Unit tests: src/core/shq.c (shell quoting of printed commands). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shq.h"
#include "test.h"

TEST(shq_plain_words_stay) {
    char o[64];
    CHECK_EQ_INT(shq_quote(o, sizeof o, "demo"), 4);
    CHECK(strcmp(o, "demo") == 0);
    CHECK_EQ_INT(shq_quote(o, sizeof o, "hk_a-b@c.d:e=f"), 14);
    CHECK(strcmp(o, "hk_a-b@c.d:e=f") == 0);
}

TEST(shq_quotes_what_the_shell_reads) {
    static const struct {
        const char *in, *out;
    } v[] = {
        {"bad name", "'bad name'"}, {"", "''"},       {"it's", "'it'\\''s'"},
        {"$HOME", "'$HOME'"},       {"a;b", "'a;b'"}, {"`x`", "'`x`'"},
        {"'", "''\\'''"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char o[64];
        CHECK_EQ_INT(shq_quote(o, sizeof o, v[i].in), (int)strlen(v[i].out));
        if (strcmp(o, v[i].out)) {
            fprintf(stderr, "  %s -> %s, want %s\n", v[i].in, o, v[i].out);
            CHECK(0);
        }
    }
}

/* What sh reads back is the original string. */
TEST(shq_roundtrips_through_sh) {
    const char *in = "a b'c\"d$e`f\\g;h|i&j*k?l~m#n";
    char q[128], cmd[256], got[128] = "";
    CHECK(shq_quote(q, sizeof q, in) > 0);
    snprintf(cmd, sizeof cmd, "printf '%%s' %s", q);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    size_t n = fread(got, 1, sizeof got - 1, p);
    got[n] = 0;
    CHECK_EQ_INT(pclose(p), 0);
    CHECK(strcmp(got, in) == 0);
}

TEST(shq_refuses_small_buffers) {
    char o[8];
    CHECK_EQ_INT(shq_quote(o, sizeof o, "12345678"), -1);
    CHECK(o[0] == 0);
    CHECK_EQ_INT(shq_quote(o, sizeof o, "a b c d e"), -1);
    CHECK_EQ_INT(shq_quote(o, sizeof o, "a b"), 5);
}
