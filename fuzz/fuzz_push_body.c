/*
 * libFuzzer target for the push API's JSON body (src/push/push_body.c),
 * differential against jansson, which parsed these bodies before and
 * parses every other JSON herald reads.
 *
 * jansson (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES) is the oracle:
 *   - what it accepts, push_body_parse() accepts as the same tree (same
 *     types, strings byte for byte, numbers as doubles, same keys), unless
 *     the body is over one of push_body's tighter limits (nesting depth,
 *     a number's length), or holds a NUL byte (jansson quietly takes a NUL
 *     after the value for the end of the text; push_body refuses it);
 *   - what it rejects, push_body_parse() rejects, except integers too big
 *     for int64, which cJSON keeps as doubles (the fields that take
 *     integers check their range).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "push/push_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const json_t *j, const cJSON *c) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        if (!cJSON_IsObject(c)) return 0;
        size_t n = 0;
        for (const cJSON *m = c->child; m; m = m->next, n++) {
            const json_t *v = json_object_get(j, m->string);
            if (!v || !same(v, m)) return 0;
        }
        return n == json_object_size(j);
    }
    case JSON_ARRAY: {
        if (!cJSON_IsArray(c)) return 0;
        size_t i = 0;
        for (const cJSON *m = c->child; m; m = m->next, i++)
            if (i >= json_array_size(j) || !same(json_array_get(j, i), m))
                return 0;
        return i == json_array_size(j);
    }
    case JSON_STRING:
        return cJSON_IsString(c) &&
               strlen(c->valuestring) == json_string_length(j) &&
               !memcmp(c->valuestring, json_string_value(j),
                       json_string_length(j));
    case JSON_INTEGER:
        return cJSON_IsNumber(c) &&
               c->valuedouble == (double)json_integer_value(j);
    case JSON_REAL:
        return cJSON_IsNumber(c) && c->valuedouble == json_real_value(j);
    case JSON_TRUE: return cJSON_IsTrue(c);
    case JSON_FALSE: return cJSON_IsFalse(c);
    case JSON_NULL: return cJSON_IsNull(c);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_error_t err;
    json_t *j = json_loadb((const char *)data, size,
                           JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    cJSON *c = NULL;
    int rc = push_body_parse((const char *)data, size, &c);
    if ((rc == PB_OK) != (c != NULL)) abort();
    if (rc == PB_E_NOMEM) {
        json_decref(j);
        return 0;
    }
    bool nul = memchr(data, 0, size) != NULL;
    if (j && rc != PB_OK && rc != PB_E_DEPTH && rc != PB_E_NUMBER_LONG &&
        !(rc == PB_E_CONTROL && nul))
        abort(); /* valid JSON refused */
    if (!j && rc == PB_OK && !strstr(err.text, "too big"))
        abort(); /* invalid JSON let through */
    if (j && c && !same(j, c)) abort();
    json_decref(j);
    cJSON_Delete(c);
    return 0;
}
