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
    CHECK(
        strstr(buf, "level=warn msg=\"bad \\\"input\\\"\\x0aline2\" v=a b\n"));
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

/* ---- JSON lines ------------------------------------------------------- */

#include <jansson.h>

static void emit_json(void) {
    log_set_format(LOG_FORMAT_JSON);
    log_info("listening", "port=%d proto=%s neg=-3 ratio=0.5 id=007", 7100,
             "yyb");
    log_warn("bad \"input\"\nline2", "v=%s path=\"a \\\"q\\\" b\" flag",
             "a\nb");
    log_set_format(LOG_FORMAT_LOGFMT);
}

TEST(json_lines_parse_with_the_same_fields) {
    char buf[2048];
    capture(emit_json, buf, sizeof buf);
    char *nl = strchr(buf, '\n');
    CHECK(nl && nl[1] && strchr(nl + 1, '\n')); /* two lines, no more */
    CHECK_EQ_INT(strchr(nl + 1, '\n') - buf + 1, strlen(buf));
    *nl = 0;
    json_error_t err;
    json_t *a = json_loads(buf, 0, &err), *b = json_loads(nl + 1, 0, &err);
    CHECK(a && b);
    CHECK(!strncmp(buf, "{\"ts\":\"", 7));
    CHECK(strlen(json_string_value(json_object_get(a, "ts"))) == 24);
    CHECK(!strcmp(json_string_value(json_object_get(a, "level")), "info"));
    CHECK(!strcmp(json_string_value(json_object_get(a, "msg")), "listening"));
    CHECK_EQ_INT(json_integer_value(json_object_get(a, "port")), 7100);
    CHECK_EQ_INT(json_integer_value(json_object_get(a, "neg")), -3);
    CHECK(json_is_real(json_object_get(a, "ratio")));
    CHECK(!strcmp(json_string_value(json_object_get(a, "proto")), "yyb"));
    CHECK(!strcmp(json_string_value(json_object_get(a, "id")), "007"));
    CHECK(!strcmp(json_string_value(json_object_get(b, "msg")),
                  "bad \"input\"\nline2"));
    CHECK(!strcmp(json_string_value(json_object_get(b, "v")), "a\nb"));
    CHECK(!strcmp(json_string_value(json_object_get(b, "path")), "a \"q\" b"));
    CHECK(json_is_true(json_object_get(b, "flag")));
    json_decref(a);
    json_decref(b);
}

static void emit_json_long(void) {
    static char big[4000];
    memset(big, 'y', sizeof big - 1);
    log_set_format(LOG_FORMAT_JSON);
    log_info("long \"quoted\"", "a=1 v=\"%s\" after=2", big);
    log_info("many", "k1=%s k2=%s k3=%s", big + 3000, big + 3000, big + 3000);
    log_set_format(LOG_FORMAT_LOGFMT);
}

TEST(json_long_lines_stay_valid) {
    char buf[8192];
    size_t n = capture(emit_json_long, buf, sizeof buf);
    char *nl = strchr(buf, '\n');
    CHECK(nl);
    CHECK((size_t)(nl - buf) + 1 <= LOG_LINE_MAX);
    CHECK(n - (size_t)(nl - buf) - 1 <= LOG_LINE_MAX);
    CHECK(buf[n - 1] == '\n');
    buf[n - 1] = 0;
    *nl = 0;
    json_error_t err;
    json_t *a = json_loads(buf, 0, &err), *b = json_loads(nl + 1, 0, &err);
    CHECK(a && b);
    CHECK_EQ_INT(json_integer_value(json_object_get(a, "a")), 1);
    CHECK(json_string_length(json_object_get(a, "v")) > 500); /* cut */
    CHECK(json_object_get(a, "after") == NULL); /* did not fit: left out */
    CHECK(json_object_get(b, "k1") && json_object_get(b, "k3") == NULL);
    json_decref(a);
    json_decref(b);
}

static log_limit_t burst_lim = LOG_LIMIT_INIT(200);

static void emit_burst(void) {
    for (int i = 0; i < 1000; i++)
        log_limited(&burst_lim, LOG_LEVEL_WARN, "disk full", "try=%d", i);
    usleep(250 * 1000); /* past every_ms: the next line names the held ones */
    log_limited(&burst_lim, LOG_LEVEL_WARN, "disk full", "try=%d", 1000);
}

/* A fault retried in a tight loop writes one line, then one line with the
 * count of what it held back, not a line per retry. */
TEST(limited_lines_count_what_they_held_back) {
    char buf[4096];
    capture(emit_burst, buf, sizeof buf);
    int lines = 0;
    for (const char *p = buf; (p = strchr(p, '\n')); p++) lines++;
    CHECK_EQ_INT(lines, 2);
    CHECK(strstr(buf, "msg=\"disk full\" try=0\n"));
    CHECK(strstr(buf, "msg=\"disk full\" try=1000 suppressed=999\n"));
}
