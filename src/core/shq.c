/*
 * shq: POSIX shell quoting (see shq.h).
 */
#include "core/shq.h"

#include <stdbool.h>
#include <string.h>

/* Characters no POSIX shell gives a meaning to in a plain word. */
static bool safe(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || strchr("_@%+=:,./-", c);
}

int shq_quote(char *out, size_t cap, const char *s) {
    size_t n = strlen(s), o = 0;
    bool plain = n > 0;
    for (size_t i = 0; i < n && plain; i++)
        plain = s[i] && safe((unsigned char)s[i]);
    if (cap) out[0] = 0;
    if (plain) {
        if (n + 1 > cap) return -1;
        memcpy(out, s, n + 1);
        return (int)n;
    }
    /* Worst case: every byte a quote, 4 bytes each, plus two quotes. */
    for (size_t i = 0; i <= n; i++) {
        const char *piece = i == n ? "'" : s[i] == '\'' ? "'\\''" : NULL;
        size_t pl = piece ? strlen(piece) : 1;
        if (o + pl + (i == 0) + 1 > cap) {
            if (cap) out[0] = 0;
            return -1;
        }
        if (i == 0) out[o++] = '\'';
        if (piece)
            memcpy(out + o, piece, pl);
        else
            out[o] = s[i];
        o += pl;
    }
    out[o] = 0;
    return (int)o;
}
