#include <errno.h>
#include <string.h>

#include "core/err.h"
#include "test.h"

/* Every code with a text, once: a value shared by two rooms would make one
 * of them unreadable in every log line that names it. */
static const struct {
    const char *name;
    int value;
} codes[] = {
#define ROW(name, value, text) {#name, (value)},
    HERALD_ERR_MAP(ROW)
#undef ROW
};

TEST(err_values_unique_and_negative) {
    size_t n = sizeof codes / sizeof codes[0];
    CHECK(n > 40);
    for (size_t i = 0; i < n; i++) {
        CHECK(codes[i].value <= 0);
        CHECK((codes[i].value == 0) == (strcmp(codes[i].name, "HERALD_OK") == 0));
        for (size_t k = i + 1; k < n; k++) CHECK(codes[i].value != codes[k].value);
        /* A room's own codes sit below every errno value. */
        if (strncmp(codes[i].name, "HERALD_", 7) != 0)
            CHECK(codes[i].value < -1000);
    }
}

TEST(err_texts_and_names) {
    CHECK(strcmp(herald_strerror(0), "ok") == 0);
    CHECK(strcmp(herald_strerror(STORE_E_FULL), "store queue full") == 0);
    CHECK(strcmp(herald_err_name(STORE_E_FULL), "STORE_E_FULL") == 0);
    /* An alias is its generic code: one condition, one text. */
    CHECK(STORE_E_NOMEM == HERALD_ENOMEM && JCE_ERR_NOMEM == HERALD_ENOMEM);
    CHECK(strcmp(herald_strerror(STORE_E_NOMEM), "out of memory") == 0);
    CHECK(strcmp(herald_err_name(TRPC_ERR_TIMEOUT), "HERALD_ETIMEDOUT") == 0);
    /* Any other -errno is glibc's, by name and text. */
    CHECK(strcmp(herald_err_name(-EPIPE), "EPIPE") == 0);
    CHECK(strcmp(herald_strerror(-EPIPE), "Broken pipe") == 0);
    CHECK(strcmp(herald_strerror(-ENOSPC), "disk full") == 0);
    /* Neither a code nor an errno value. */
    CHECK(strcmp(herald_strerror(-99999), "unknown error") == 0);
    CHECK(strcmp(herald_strerror(7), "unknown error") == 0);
    CHECK(strcmp(herald_err_name(-99999), "HERALD_EUNKNOWN") == 0);
}
