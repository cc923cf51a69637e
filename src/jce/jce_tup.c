/*
 * jce_tup: the UniAttribute of TUP v3 (tars-wire §2.3), a
 * map<string, vector<byte>> at tag 0 whose values each hold one argument
 * encoded at tag 0.  Parsing is zero copy: names and values point into the
 * sBuffer, only the entry array comes from the arena.
 */
#include <string.h>

#include "jce/jce_rpc.h"

int jce_tup_parse(const uint8_t *buf, size_t len, jce_arena_t *arena,
                  jce_tup_t *tup) {
    jce_in_t in;
    uint32_t n;
    tup->entries = NULL;
    tup->n = 0;
    jce_in_init(&in, buf, len, arena);
    if (jce_get_map_begin(&in, 0, true, &n) < 0) return in.err;
    jce_tup_entry_t *e = n ? jce_in_alloc(&in, (size_t)n * sizeof *e) : NULL;
    for (uint32_t i = 0; i < n && !in.err; i++) {
        jce_get_str(&in, 0, true, &e[i].name);
        jce_get_bytes(&in, 1, true, &e[i].value);
    }
    if (in.err) return in.err;
    jce_get_container_end(&in);
    tup->entries = e;
    tup->n = n;
    return 0;
}

const jce_tup_entry_t *jce_tup_find(const jce_tup_t *tup, const char *name) {
    size_t len = strlen(name);
    for (uint32_t i = 0; i < tup->n; i++) {
        const jce_tup_entry_t *e = &tup->entries[i];
        if (e->name.len == len &&
            (len == 0 || memcmp(e->name.data, name, len) == 0))
            return e;
    }
    return NULL;
}

void jce_tup_open(const jce_tup_entry_t *e, jce_arena_t *arena, jce_in_t *in) {
    jce_in_init(in, e->value.data, e->value.len, arena);
}

void jce_tup_put_begin(jce_out_t *o, uint32_t n) { jce_put_map_begin(o, 0, n); }

void jce_tup_put_entry(jce_out_t *o, const char *name, const jce_out_t *value) {
    if (value->err) {
        if (!o->err) o->err = value->err;
        return;
    }
    jce_put_string(o, 0, name, strlen(name));
    jce_put_bytes(o, 1, value->buf, value->len);
}
