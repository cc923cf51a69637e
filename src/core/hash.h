/*
 * FNV-1a, 32 bits: the hash of herald's in-memory tables (device registry,
 * online table, status and ack windows, held status counts).  Their keys
 * are short ids, and tables exposed to chosen keys add their own seed or
 * bound their chains; a general-purpose hash library would buy nothing.
 */
#ifndef HERALD_CORE_HASH_H
#define HERALD_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define CORE_FNV1A_INIT 2166136261u

/* Continues hash h over n bytes at p (start with CORE_FNV1A_INIT). */
static inline uint32_t core_fnv1a(uint32_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 16777619u;
    return h;
}

#endif
