/*
 * log: formats into a stack buffer and writes the line at once.  No locks:
 * the level and fd are atomics, and write(2) of a line shorter than
 * PIPE_BUF is atomic with respect to other writers.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"

static _Atomic int log_threshold = LOG_LEVEL_INFO;
static _Atomic int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "off"};

void log_set_level(log_level_t level) { atomic_store(&log_threshold, level); }

log_level_t log_get_level(void) {
    return (log_level_t)atomic_load_explicit(&log_threshold,
                                             memory_order_relaxed);
}

bool log_enabled(log_level_t level) {
    return (int)level >=
           atomic_load_explicit(&log_threshold, memory_order_relaxed);
}

int log_level_parse(const char *name) {
    for (int i = 0; i <= LOG_LEVEL_OFF; i++)
        if (strcmp(name, level_names[i]) == 0) return i;
    if (strcmp(name, "warning") == 0) return LOG_LEVEL_WARN;
    return -1;
}

const char *log_level_name(log_level_t level) {
    if ((int)level < 0 || level > LOG_LEVEL_OFF) return "?";
    return level_names[level];
}

int log_set_fd(int fd) { return atomic_exchange(&log_fd, fd); }

/* Appends msg as a logfmt quoted string; control bytes become \xNN so one
 * event can never span two lines (log injection). */
static size_t put_quoted(char *buf, size_t pos, size_t cap, const char *s) {
    if (pos < cap) buf[pos++] = '"';
    for (; *s && pos + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[pos++] = '\\';
            buf[pos++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            pos += (size_t)snprintf(buf + pos, cap - pos, "\\x%02x", c);
        } else {
            buf[pos++] = (char)c;
        }
    }
    if (pos < cap) buf[pos++] = '"';
    return pos;
}

static size_t put_time(char *buf, size_t cap) {
    uint64_t ms = clock_wall_ms();
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    int n = snprintf(buf, cap, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return n < 0 ? 0 : (size_t)n;
}

void log_write(log_level_t level, const char *msg, const char *kv_fmt, ...) {
    if (!log_enabled(level)) return;
    char buf[LOG_LINE_MAX];
    const size_t cap = sizeof buf - 1; /* room for the newline */
    size_t pos = put_time(buf, cap);
    pos += (size_t)snprintf(buf + pos, cap - pos, " level=%s msg=",
                            log_level_name(level));
    pos = put_quoted(buf, pos, cap, msg ? msg : "");
    if (kv_fmt && pos + 1 < cap) {
        buf[pos++] = ' ';
        va_list ap;
        va_start(ap, kv_fmt);
        int n = vsnprintf(buf + pos, cap - pos, kv_fmt, ap);
        va_end(ap);
        if (n > 0) pos += (size_t)n < cap - pos ? (size_t)n : cap - pos - 1;
    }
    /* A value may itself contain a newline; keep the event on one line. */
    for (size_t i = 0; i < pos; i++)
        if (buf[i] == '\n' || buf[i] == '\r') buf[i] = ' ';
    buf[pos++] = '\n';
    ssize_t w = write(atomic_load_explicit(&log_fd, memory_order_relaxed),
                      buf, pos);
    (void)w; /* nowhere to report a failed log write */
}
