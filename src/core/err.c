/*
 * herald_strerror and herald_err_name: one table for every room's codes
 * (err.h), glibc's own names and texts for the other errno values.
 */
#include "core/err.h"

#include <string.h>

const char *herald_strerror(int err) {
    switch (err) {
#define HERALD_ERR_TEXT(name, value, text)                                    \
    case (value): return (text);
        HERALD_ERR_MAP(HERALD_ERR_TEXT)
#undef HERALD_ERR_TEXT
    }
    /* strerrordesc_np, unlike strerror, is thread-safe and never builds a
     * "Unknown error N" text in a shared buffer. */
    const char *s = err < 0 ? strerrordesc_np(-err) : NULL;
    return s ? s : "unknown error";
}

const char *herald_err_name(int err) {
    switch (err) {
#define HERALD_ERR_NAME(name, value, text)                                    \
    case (value): return #name;
        HERALD_ERR_MAP(HERALD_ERR_NAME)
#undef HERALD_ERR_NAME
    }
    const char *s = err < 0 ? strerrorname_np(-err) : NULL;
    return s ? s : "HERALD_EUNKNOWN";
}
