/* conf: option tables, the file parser, env and flags, precedence,
 * errors with FILE:LINE, secrets never echoed. */
#include <stdlib.h>
#include <unistd.h>

#include "core/conf.h"
#include "test.h"

typedef struct tset {
    int port;
    char *host;
    bool quiet;
    int level;
    conf_list_t item;
    char *key;
} tset_t;

static const char *const levels[] = {"low", "high", NULL};

static const char *no_x(const char *v) {
    return strchr(v, 'x') ? "no x allowed" : NULL;
}

#define F(f) offsetof(tset_t, f)
static const conf_opt_t opts[] = {
    {"tc-port", CONF_INT, F(port), 1, 100, "7", NULL, 0, "N", "a port", NULL,
     NULL},
    {"tc-host", CONF_STR, F(host), 0, 0, "here", NULL, 0, "ADDR", "a host",
     NULL, NULL},
    {"tc-quiet", CONF_BOOL, F(quiet), 0, 1, "false", NULL, CONF_LIVE, NULL,
     "be quiet", NULL, NULL},
    {"tc-level", CONF_ENUM, F(level), 0, 0, "low", levels, CONF_LIVE, "L",
     "a level", NULL, NULL},
    {"tc-item", CONF_LIST, F(item), 0, 5, NULL, NULL, CONF_LIVE, "ITEM",
     "an item", no_x, NULL},
    {"tc-key", CONF_STR, F(key), 0, 0, "", NULL, CONF_SECRET, "KEY", "a secret",
     no_x, NULL},
};
static const conf_table_t tab = {opts, 6, "test"};

/* Errors collected as lines. */
static char errbuf[4096];
static void collect(void *ctx, const char *line) {
    (void)ctx;
    size_t n = strlen(errbuf);
    snprintf(errbuf + n, sizeof errbuf - n, "%s\n", line);
}

static const char *write_file(const char *text) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/test_conf_%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f) return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

/* Applies one file over the defaults; the number of errors. */
static int load(const char *text, tset_t *s) {
    conf_errs_t e = {collect, NULL, 0};
    conf_src_t src = {0};
    const char *path = write_file(text);
    memset(s, 0, sizeof *s);
    errbuf[0] = 0;
    conf_defaults(&tab, s);
    (void)conf_src_file(&tab, path, &src, &e);
    (void)conf_apply(&tab, s, &src, &e);
    conf_src_free(&src);
    unlink(path);
    return e.n;
}

TEST(defaults) {
    tset_t s;
    CHECK_EQ_INT(load("", &s), 0);
    CHECK_EQ_INT(s.port, 7);
    CHECK(!strcmp(s.host, "here"));
    CHECK(!s.quiet);
    CHECK_EQ_INT(s.level, 0);
    CHECK_EQ_INT(s.item.n, 0);
    conf_free(&tab, &s);
    CHECK(s.host == NULL);
}

TEST(file_keys_comments_blanks) {
    tset_t s;
    int n = load("# comment\n\n   # indented comment\n"
                 "tc-port=42\n  tc-host =  there is space  \r\n"
                 "tc-quiet = yes\ntc-level = high\n"
                 "tc-item = a\ntc-item = b\ntc-item = a\n",
                 &s);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(s.port, 42);
    CHECK(!strcmp(s.host, "there is space"));
    CHECK(s.quiet);
    CHECK_EQ_INT(s.level, 1);
    CHECK_EQ_INT(s.item.n, 2); /* the same value twice counts once */
    CHECK(!strcmp(s.item.v[0], "a") && !strcmp(s.item.v[1], "b"));
    conf_free(&tab, &s);
}

TEST(file_errors_name_file_and_line) {
    tset_t s;
    int n = load("tc-port = 7\nbogus = 1\nno equals here\n"
                 "tc-port = 8\ntc-level = mid\n = 3\n",
                 &s);
    conf_free(&tab, &s);
    CHECK_EQ_INT(n, 5);
    CHECK(strstr(errbuf, ".conf:2: unknown key 'bogus'\n"));
    CHECK(strstr(errbuf, ".conf:5: tc-level: 'mid' is not one of"));
    CHECK(strstr(errbuf, ".conf:3: missing '='"));
    CHECK(!strstr(errbuf, "no equals here")); /* never echoed */
    CHECK(strstr(errbuf, ".conf:4: tc-port given twice (first on line 1)"));
    CHECK(strstr(errbuf, ".conf:6: missing key before '='"));
    n = load("tc-port = 0\ntc-port2 = 1\n", &s);
    conf_free(&tab, &s);
    CHECK_EQ_INT(n, 2);
    CHECK(strstr(errbuf, ".conf:1: tc-port: '0' is out of range 1..100\n"));
    n = load("tc-port = 5x\ntc-level = mid\ntc-quiet = maybe\n", &s);
    conf_free(&tab, &s);
    CHECK_EQ_INT(n, 3);
    CHECK(strstr(errbuf, ".conf:1: tc-port: '5x' is not a whole number\n"));
    CHECK(strstr(errbuf, ".conf:2: tc-level: 'mid' is not one of low, high"));
    CHECK(strstr(errbuf, ".conf:3: tc-quiet: 'maybe' is not true or false"));
}

TEST(missing_file_is_an_error) {
    conf_errs_t e = {collect, NULL, 0};
    conf_src_t src = {0};
    errbuf[0] = 0;
    CHECK_EQ_INT(conf_src_file(&tab, "/nonexistent/x.conf", &src, &e), -1);
    CHECK_EQ_INT(e.n, 1);
    CHECK(strstr(errbuf, "/nonexistent/x.conf: No such file"));
}

TEST(secret_values_never_echoed) {
    tset_t s;
    int n = load("tc-key = topsecretx\ntc-item = visiblex\n", &s);
    CHECK_EQ_INT(n, 2);
    CHECK(!strstr(errbuf, "topsecret"));
    CHECK(strstr(errbuf, "tc-key: no x allowed"));
    CHECK(strstr(errbuf, "'visiblex'")); /* not secret: quoted */
    conf_free(&tab, &s);
    CHECK_EQ_INT(load("tc-key = topsecret\n", &s), 0);
    char out[64];
    conf_format(&opts[5], &s, 0, out, sizeof out);
    CHECK(!strcmp(out, "(redacted)"));
    conf_free(&tab, &s);
}

/* defaults < file < env < flags; lists add up. */
TEST(precedence_and_lists) {
    tset_t s;
    CHECK_EQ_INT(load("tc-port = 10\ntc-host = file\ntc-item = f\n", &s), 0);
    setenv("HERALD_TC_PORT", "20", 1);
    setenv("HERALD_TC_ITEM", "e1  e2", 1);
    setenv("HERALD_TC_HOST", "", 1); /* empty = unset */
    conf_src_t env = {0}, flags = {0};
    conf_src_env(&tab, &env);
    char *argv[] = {"test",        "--tc-port",  "30",
                    "--tc-item=g", "--tc-quiet", NULL};
    conf_errs_t e = {collect, NULL, 0};
    CHECK_EQ_INT(conf_src_args(&tab, 5, argv, &flags, &e), 0);
    CHECK_EQ_INT(conf_apply(&tab, &s, &env, &e), 0);
    CHECK_EQ_INT(s.port, 20);
    CHECK_EQ_INT(conf_apply(&tab, &s, &flags, &e), 0);
    CHECK_EQ_INT(s.port, 30);
    CHECK(!strcmp(s.host, "file"));
    CHECK(s.quiet);
    CHECK_EQ_INT(s.item.n, 4);
    CHECK(!strcmp(s.item.v[1], "e1") && !strcmp(s.item.v[3], "g"));
    CHECK(!strcmp(conf_src_get(&flags, &tab, "tc-port"), "30"));
    CHECK(conf_src_get(&flags, &tab, "tc-host") == NULL);
    CHECK(!strcmp(env.a[0].origin, "HERALD_TC_PORT"));
    unsetenv("HERALD_TC_PORT");
    unsetenv("HERALD_TC_ITEM");
    unsetenv("HERALD_TC_HOST");
    conf_src_free(&env);
    conf_src_free(&flags);
    conf_free(&tab, &s);
}

TEST(flag_errors) {
    conf_src_t flags = {0};
    conf_errs_t e = {collect, NULL, 0};
    char *argv[] = {"test", "--tc-port", "abc", "--tc-quiet=nah", NULL};
    CHECK_EQ_INT(conf_src_args(&tab, 4, argv, &flags, &e), 0);
    tset_t s;
    memset(&s, 0, sizeof s);
    conf_defaults(&tab, &s);
    errbuf[0] = 0;
    CHECK_EQ_INT(conf_apply(&tab, &s, &flags, &e), 2);
    CHECK(strstr(errbuf, "--tc-port: 'abc' is not a whole number"));
    CHECK(strstr(errbuf, "--tc-quiet: 'nah' is not true or false"));
    conf_src_free(&flags);
    char *extra[] = {"test", "stray", NULL};
    CHECK_EQ_INT(conf_src_args(&tab, 2, extra, &flags, &e), -1);
    char *help[] = {"test", "--help", NULL};
    CHECK_EQ_INT(conf_src_args(&tab, 2, help, &flags, &e), 1);
    conf_src_free(&flags);
    conf_free(&tab, &s);
}

TEST(list_limit) {
    tset_t s;
    CHECK_EQ_INT(load("tc-item = a\ntc-item = b\ntc-item = c\ntc-item = d\n"
                      "tc-item = e\ntc-item = f\n",
                      &s),
                 1);
    CHECK(strstr(errbuf, ".conf:6: tc-item: at most 5 values"));
    conf_free(&tab, &s);
}

TEST(differs_and_copy) {
    tset_t a, b;
    CHECK_EQ_INT(load("tc-item = a\n", &a), 0);
    CHECK_EQ_INT(load("tc-item = a\ntc-port = 9\n", &b), 0);
    CHECK(!conf_differs(&opts[4], &a, &b));
    CHECK(conf_differs(&opts[0], &a, &b));
    CHECK(!conf_differs(&opts[1], &a, &b));
    CHECK_EQ_INT(conf_copy(&opts[0], &a, &b), 0);
    CHECK_EQ_INT(a.port, 9);
    char *argv[] = {"test", "--tc-host", "h2", "--tc-item", "z", NULL};
    conf_src_t flags = {0};
    conf_errs_t e = {collect, NULL, 0};
    CHECK_EQ_INT(conf_src_args(&tab, 5, argv, &flags, &e), 0);
    CHECK_EQ_INT(conf_apply(&tab, &b, &flags, &e), 0);
    CHECK(conf_differs(&opts[1], &a, &b));
    CHECK(conf_differs(&opts[4], &a, &b));
    CHECK_EQ_INT(conf_copy(&opts[1], &a, &b), 0);
    CHECK_EQ_INT(conf_copy(&opts[4], &a, &b), 0);
    CHECK(!conf_differs(&opts[1], &a, &b) && !conf_differs(&opts[4], &a, &b));
    CHECK(a.host != b.host); /* deep */
    conf_src_free(&flags);
    conf_free(&tab, &a);
    conf_free(&tab, &b);
}

TEST(env_names) {
    char name[64];
    conf_env_name(&opts[0], name, sizeof name);
    CHECK(!strcmp(name, "HERALD_TC_PORT"));
}
