/*
 * jce_misc: error names, string views, and the two lookup tables generated
 * code hands to generic code (struct types by name, methods by name).
 */
#include <string.h>

#include "jce/jce.h"
#include "jce/jce_rpc.h"
#include "jce/jce_type.h"

jce_str_t jce_str_from(const char *cstr) {
    if (!cstr) return (jce_str_t){"", 0};
    return (jce_str_t){cstr, (uint32_t)strlen(cstr)};
}

bool jce_str_eq(jce_str_t a, jce_str_t b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* memcmp order over raw bytes; a prefix sorts first.  This is the std::map
 * order C++ peers write map keys in. */
static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    size_t n = alen < blen ? alen : blen;
    int r = n ? memcmp(a, b, n) : 0;
    if (r) return r < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

int jce_str_cmp(jce_str_t a, jce_str_t b) {
    return bytes_cmp(a.data, a.len, b.data, b.len);
}

const jce_type_info_t *jce_type_find(const jce_type_info_t *const *table,
                                     const char *name) {
    for (; table && *table; table++)
        if (strcmp((*table)->name, name) == 0) return *table;
    return NULL;
}

/* name need not be NUL-terminated (it points into a request); for names
 * without NUL bytes memcmp order equals the strcmp order of the table. */
const jce_method_t *jce_interface_find(const jce_interface_t *itf,
                                       const char *name, size_t len) {
    size_t lo = 0, hi = itf->n_methods;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *m = itf->methods[mid].name;
        int r = bytes_cmp(name, len, m, strlen(m));
        if (r == 0) return &itf->methods[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
