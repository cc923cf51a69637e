/*
 * The oracle of the JSON fuzz targets: jansson, a separate implementation
 * that herald still links (for writing JSON), read with
 * JSON_DECODE_ANY | JSON_REJECT_DUPLICATES.  herald's reader
 * (src/jce/jce_json.c) must accept exactly what jansson accepts, except
 * where herald is tighter on purpose or jansson is lax:
 *   - nesting over JCE_JSON_MAX_DEPTH, numbers over JCE_JSON_MAX_NUMBER
 *     characters (herald's limits; jansson allows 2048 and any length);
 *   - a NUL byte (jansson takes one after the value for the end of the
 *     text; herald refuses it as a control character);
 * and integers too big for int64, which jansson refuses ("too big
 * integer") and herald reads as numbers (a field that takes an integer
 * checks the range).
 */
#ifndef HERALD_FUZZ_JSON_ORACLE_H
#define HERALD_FUZZ_JSON_ORACLE_H

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jce/jce_json.h"

/* jansson's tree of data, or NULL; aborts if the reader's verdict
 * (res) disagrees with it beyond the exceptions above. */
static json_t *oracle_check(const uint8_t *data, size_t size,
                            const jce_json_res_t *res) {
    json_error_t err;
    json_t *j = json_loadb((const char *)data, size,
                           JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    int why = res->reason;
    if (why == JCE_JSON_E_NOMEM) {
        json_decref(j);
        return NULL;
    }
    bool nul = memchr(data, 0, size) != NULL;
    if (j && why != JCE_JSON_OK && why != JCE_JSON_E_DEPTH &&
        why != JCE_JSON_E_NUMBER_LONG && !(why == JCE_JSON_E_CONTROL && nul))
        abort(); /* valid JSON refused */
    if (!j && why == JCE_JSON_OK && !strstr(err.text, "too big"))
        abort(); /* invalid JSON let through */
    if (why != JCE_JSON_OK) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* s (from the reader) equals jansson's string value v byte for byte. */
static bool oracle_same_str(const json_t *v, jce_str_t s) {
    return json_is_string(v) && json_string_length(v) == s.len &&
           (!s.len || !memcmp(json_string_value(v), s.data, s.len));
}

#endif
