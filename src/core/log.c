/*
 * log: formats into a stack buffer and writes the line at once.  No locks:
 * the level, format and fd are atomics, and write(2) of a line shorter
 * than PIPE_BUF is atomic with respect to other writers.
 *
 * The JSON form is made from the logfmt pairs the caller formatted (so
 * call sites stay the same): each key=value, or key="quoted value", becomes
 * a member.  Members that do not fit in LOG_LINE_MAX are left out whole
 * (a long string value is cut), so every line is still one valid object.
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
static _Atomic int log_fmt = LOG_FORMAT_LOGFMT;

const char *const log_level_names[] = {"debug", "info", "warn",
                                       "error", "off",  NULL};
const char *const log_format_names[] = {"logfmt", "json", NULL};
#define level_names log_level_names

void log_set_format(log_format_t format) { atomic_store(&log_fmt, format); }

log_format_t log_get_format(void) {
    return (log_format_t)atomic_load_explicit(&log_fmt, memory_order_relaxed);
}

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

/* "2026-11-24T19:28:23.123Z" into out. */
static void format_time(char *out, size_t cap) {
    uint64_t ms = clock_wall_ms();
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ms % 1000));
}

/* ts level msg and the pairs; returns the length (room kept for '\n'). */
static size_t format_logfmt(char *buf, size_t cap, const char *ts,
                            log_level_t level, const char *msg,
                            const char *kv) {
    int n =
        snprintf(buf, cap, "ts=%s level=%s msg=", ts, log_level_name(level));
    size_t pos = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    pos = put_quoted(buf, pos, cap, msg ? msg : "");
    if (kv && pos + 1 < cap) {
        buf[pos++] = ' ';
        size_t k = strlen(kv);
        if (k > cap - pos) k = cap - pos;
        memcpy(buf + pos, kv, k);
        pos += k;
    }
    /* A value may itself contain a newline; keep the event on one line. */
    for (size_t i = 0; i < pos; i++)
        if (buf[i] == '\n' || buf[i] == '\r') buf[i] = ' ';
    return pos;
}

/* ---- JSON ------------------------------------------------------------- */

typedef struct jbuf {
    char *b;
    size_t pos, cap;
} jbuf_t;

static bool j_raw(jbuf_t *j, const char *s, size_t n) {
    if (j->pos + n > j->cap) return false;
    memcpy(j->b + j->pos, s, n);
    j->pos += n;
    return true;
}

/* A JSON string; cut short (still closed) if may_cut, else all or false. */
static bool j_str(jbuf_t *j, const char *s, size_t n, bool may_cut) {
    if (j->pos + 2 > j->cap) return false;
    size_t start = j->pos;
    j->b[j->pos++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        size_t k = 1;
        esc[0] = (char)c;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            k = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            k = 2;
        } else if (c < 0x20 || c == 0x7f) {
            k = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
        }
        if (j->pos + k + 1 > j->cap) {
            if (may_cut) break;
            j->pos = start;
            return false;
        }
        memcpy(j->b + j->pos, esc, k);
        j->pos += k;
    }
    j->b[j->pos++] = '"';
    return true;
}

/* A JSON number as written (no exponent, at most 15 digits so that
 * readers using doubles keep it exact). */
static bool is_number(const char *s, size_t n) {
    size_t i = 0, digits = 0;
    if (i < n && s[i] == '-') i++;
    if (i == n || s[i] < '0' || s[i] > '9') return false;
    if (s[i] == '0' && i + 1 < n && s[i + 1] != '.') return false;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) digits++;
    if (i < n && s[i] == '.') {
        if (++i == n) return false;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) digits++;
    }
    return i == n && digits <= 15;
}

/* ,"key":value whole, or nothing. */
static bool j_member(jbuf_t *j, const char *k, size_t kn, const char *v,
                     size_t vn, bool quoted) {
    size_t start = j->pos;
    bool ok = j_raw(j, ",", 1) && j_str(j, k, kn, false) && j_raw(j, ":", 1);
    if (ok && quoted)
        ok = j_str(j, v, vn, true);
    else if (ok)
        ok = j_raw(j, v, vn);
    if (!ok) j->pos = start;
    return ok;
}

/* The caller's logfmt pairs as members: key=bare, key="quoted \" value";
 * a word without '=' becomes "word":true. */
static void j_pairs(jbuf_t *j, const char *p) {
    char val[LOG_LINE_MAX];
    for (;;) {
        while (*p == ' ') p++;
        if (!*p) return;
        const char *k = p;
        while (*p && *p != '=' && *p != ' ') p++;
        size_t kn = (size_t)(p - k), vn = 0;
        bool quoted = true;
        if (*p != '=') {
            if (!j_member(j, k, kn, "true", 4, false)) return;
            continue;
        }
        if (*++p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) p++;
                val[vn++] = *p;
            }
            if (*p) p++;
        } else {
            const char *v = p;
            while (*p && *p != ' ') p++;
            vn = (size_t)(p - v);
            memcpy(val, v, vn);
            quoted = !is_number(val, vn);
        }
        if (!j_member(j, k, kn, val, vn, quoted)) return;
    }
}

static size_t format_json(char *buf, size_t cap, const char *ts,
                          log_level_t level, const char *msg, const char *kv) {
    const char *lv = log_level_name(level);
    jbuf_t j = {buf, 0, cap - 1}; /* room for the closing brace */
    (void)(j_raw(&j, "{\"ts\":", 6) && j_str(&j, ts, strlen(ts), false) &&
           j_raw(&j, ",\"level\":", 9) && j_str(&j, lv, strlen(lv), false) &&
           j_raw(&j, ",\"msg\":", 7) &&
           j_str(&j, msg ? msg : "", msg ? strlen(msg) : 0, true));
    if (kv) j_pairs(&j, kv);
    buf[j.pos++] = '}';
    return j.pos;
}

void log_write(log_level_t level, const char *msg, const char *kv_fmt, ...) {
    if (!log_enabled(level)) return;
    char kv[LOG_LINE_MAX], ts[80], buf[LOG_LINE_MAX];
    if (kv_fmt) {
        va_list ap;
        va_start(ap, kv_fmt);
        int n = vsnprintf(kv, sizeof kv, kv_fmt, ap);
        va_end(ap);
        if (n < 0) kv[0] = 0;
    }
    format_time(ts, sizeof ts);
    const size_t cap = sizeof buf - 1; /* room for the newline */
    size_t pos =
        log_get_format() == LOG_FORMAT_JSON
            ? format_json(buf, cap, ts, level, msg, kv_fmt ? kv : NULL)
            : format_logfmt(buf, cap, ts, level, msg, kv_fmt ? kv : NULL);
    buf[pos++] = '\n';
    ssize_t w =
        write(atomic_load_explicit(&log_fd, memory_order_relaxed), buf, pos);
    (void)w; /* nowhere to report a failed log write */
}

bool log_limited(log_limit_t *lim, log_level_t level, const char *msg,
                 const char *kv_fmt, ...) {
    if (!log_enabled(level)) return false;
    uint64_t now = clock_mono_ms();
    uint64_t next = atomic_load(&lim->next_ms);
    /* One thread wins the slot; the others count themselves held. */
    if (now < next || !atomic_compare_exchange_strong(&lim->next_ms, &next,
                                                      now + lim->every_ms)) {
        atomic_fetch_add(&lim->held, 1);
        return false;
    }
    uint64_t held = atomic_exchange(&lim->held, 0);
    char kv[LOG_LINE_MAX];
    kv[0] = 0;
    if (kv_fmt) {
        va_list ap;
        va_start(ap, kv_fmt);
        int n = vsnprintf(kv, sizeof kv, kv_fmt, ap);
        va_end(ap);
        if (n < 0) kv[0] = 0;
    }
    if (held)
        log_write(level, msg, "%s%ssuppressed=%llu", kv, kv[0] ? " " : "",
                  (unsigned long long)held);
    else
        log_write(level, msg, kv[0] ? "%s" : NULL, kv);
    return true;
}
