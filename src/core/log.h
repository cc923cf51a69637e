/*
 * log: one structured line per event on stderr, logfmt style:
 *
 *   ts=2026-11-24T19:28:23.123Z level=info msg="listening" port=7100
 *
 * or, with log_set_format(LOG_FORMAT_JSON), one JSON object per line with
 * the same fields (values that are numbers become JSON numbers):
 *
 *   {"ts":"2026-11-24T19:28:23.123Z","level":"info","msg":"listening","port":7100}
 *
 * `msg` is a fixed human sentence (quoted and escaped here); `kv_fmt` is a
 * printf format producing the key=value pairs (or NULL for none).  Values
 * that may hold spaces should be quoted by the caller: "path=\"%s\"".
 *
 * Each line goes out in a single write(2), so lines from several threads
 * never interleave.  Lines longer than LOG_LINE_MAX are truncated.
 *
 * Never log secrets: API keys, app secrets, device tokens, HMACs, message
 * payloads.  Log an identifier instead (app id, device id, key prefix).
 */
#ifndef HERALD_CORE_LOG_H
#define HERALD_CORE_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define LOG_LINE_MAX 1024

/* Not LOG_INFO etc.: <syslog.h> already owns those names. */
typedef enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARN = 2,
    LOG_LEVEL_ERROR = 3,
    LOG_LEVEL_OFF = 4,
} log_level_t;

/* Global threshold; lines below it are dropped before formatting.
 * Default: info. */
void log_set_level(log_level_t level);
log_level_t log_get_level(void);
bool log_enabled(log_level_t level);

/* "debug", "info", "warn", "error", "off" -> level; -1 if unknown. */
int log_level_parse(const char *name);
const char *log_level_name(log_level_t level);
/* The level names by level, NULL-ended (option tables use them). */
extern const char *const log_level_names[];

typedef enum log_format {
    LOG_FORMAT_LOGFMT = 0,
    LOG_FORMAT_JSON = 1,
} log_format_t;
/* "logfmt", "json" by format, NULL-ended. */
extern const char *const log_format_names[];
/* Any thread, at any time: the next line uses it.  Default: logfmt. */
void log_set_format(log_format_t format);
log_format_t log_get_format(void);

/* Send lines to fd instead of stderr (tests capture them); returns the
 * previous fd. */
int log_set_fd(int fd);

void log_write(log_level_t level, const char *msg, const char *kv_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * A rate-limited log site, for faults that repeat as fast as they are
 * retried (a full disk, descriptors exhausted, failed logins): at most one
 * line per `every_ms`, and the next line says how many it held back
 * (`suppressed=N`).  Any thread; a static `log_limit_t` per site:
 *
 *   static log_limit_t lim = LOG_LIMIT_INIT(1000);
 *   log_limited(&lim, LOG_LEVEL_WARN, "accept failed", "err=%d", err);
 *
 * Returns true if the line was written.
 */
typedef struct log_limit {
    _Atomic uint64_t next_ms; /* mono ms before which lines are held */
    _Atomic uint64_t held;    /* lines held back since the last one */
    uint32_t every_ms;
} log_limit_t;
#define LOG_LIMIT_INIT(ms) \
    { 0, 0, (ms) }
bool log_limited(log_limit_t *lim, log_level_t level, const char *msg,
                 const char *kv_fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_debug(msg, ...) log_write(LOG_LEVEL_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) log_write(LOG_LEVEL_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_write(LOG_LEVEL_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_LEVEL_ERROR, msg, __VA_ARGS__)

#endif
