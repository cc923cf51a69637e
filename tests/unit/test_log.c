/* Logger: logfmt line shape, quoting, level filtering, one line per event. */
#include <unistd.h>

#include "core/log.h"
#include "test.h"

/* Runs fn with log output captured through a pipe; returns bytes read. */
static size_t capture(void (*fn)(void), char *buf, size_t cap) {
    int p[2];
    if (pipe(p) < 0) return 0;
    int old = log_set_fd(p[1]);
    fn();
    log_set_fd(old);
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(p[0], buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(p[0]);
    return n;
}

static void emit_basic(void) {
    log_info("listening", "port=%d proto=%s", 7100, "yyb");
}

TEST(line_is_logfmt) {
    char buf[512];
    capture(emit_basic, buf, sizeof buf);
    CHECK(strncmp(buf, "ts=", 3) == 0);
    CHECK(buf[7] == '-' && buf[13] == 'T' && buf[22] == '.' && buf[26] == 'Z');
    CHECK(strstr(buf, " level=info msg=\"listening\" port=7100 proto=yyb\n"));
    CHECK_EQ_INT(strchr(buf, '\n') - buf + 1, strlen(buf));
}

static void emit_hostile(void) {
    log_warn("bad \"input\"\nline2", "v=%s", "a\nb");
}

TEST(quotes_and_newlines_cannot_split_a_line) {
    char buf[512];
    capture(emit_hostile, buf, sizeof buf);
    CHECK(strstr(buf,
                 "level=warn msg=\"bad \\\"input\\\"\\x0aline2\" v=a b\n"));
    CHECK_EQ_INT(strchr(buf, '\n') - buf + 1, strlen(buf));
}

static void emit_levels(void) {
    log_set_level(LOG_LEVEL_WARN);
    log_debug("d", NULL);
    log_info("i", NULL);
    log_warn("w", NULL);
    log_error("e", "code=%d", -5);
    log_set_level(LOG_LEVEL_INFO);
}

TEST(level_filters) {
    char buf[512];
    capture(emit_levels, buf, sizeof buf);
    CHECK(!strstr(buf, "msg=\"d\""));
    CHECK(!strstr(buf, "msg=\"i\""));
    CHECK(strstr(buf, "level=warn msg=\"w\"\n"));
    CHECK(strstr(buf, "level=error msg=\"e\" code=-5\n"));
    CHECK_EQ_INT(log_level_parse("debug"), LOG_LEVEL_DEBUG);
    CHECK_EQ_INT(log_level_parse("warning"), LOG_LEVEL_WARN);
    CHECK_EQ_INT(log_level_parse("loud"), -1);
    CHECK(strcmp(log_level_name(LOG_LEVEL_ERROR), "error") == 0);
}

static void emit_long(void) {
    static char big[4000];
    memset(big, 'x', sizeof big - 1);
    log_info("long", "v=%s", big);
}

TEST(long_lines_are_truncated_not_split) {
    char buf[8192];
    size_t n = capture(emit_long, buf, sizeof buf);
    CHECK(n <= LOG_LINE_MAX);
    CHECK(buf[n - 1] == '\n');
    CHECK_EQ_INT(strchr(buf, '\n') - buf + 1, n);
}
