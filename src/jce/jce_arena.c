/*
 * jce_arena: a chunked bump allocator for everything one decode (or one
 * request) allocates, released in one call.
 *
 * The first chunk lives in the same malloc block as the arena header, so a
 * decode that fits in it costs no allocation at all.  Later chunks double in
 * size.  On reset the extra chunks are merged into one bigger first chunk,
 * so an arena reused for similar messages stops calling malloc after the
 * first few rounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jce/jce.h"

#define ARENA_ALIGN 16
#define ARENA_FIRST 4096
#define ARENA_KEEP_MAX (1u << 20) /* largest first chunk kept on reset */

struct chunk {
    struct chunk *next; /* older chunk */
    size_t size;        /* usable bytes in data[] */
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

struct jce_arena {
    struct chunk *cur;   /* newest chunk; allocation happens here */
    struct chunk *first; /* embedded or merged chunk, kept on reset */
    bool first_embedded;
    size_t limit;
    size_t used; /* bytes handed out since the last reset */
};

/* The first chunk sits right behind the header, in the same block. */
#define HEADER_SIZE \
    ((sizeof(jce_arena_t) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))
#define EMBEDDED(a) ((struct chunk *)((unsigned char *)(a) + HEADER_SIZE))

static size_t align_up(size_t n) {
    return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

jce_arena_t *jce_arena_new(size_t limit) {
    jce_arena_t *a = malloc(HEADER_SIZE + sizeof(struct chunk) + ARENA_FIRST);
    if (!a) return NULL;
    struct chunk *c = EMBEDDED(a);
    c->next = NULL;
    c->size = ARENA_FIRST;
    c->used = 0;
    a->first = a->cur = c;
    a->first_embedded = true;
    a->limit = limit ? limit : JCE_MAX_INPUT;
    a->used = 0;
    return a;
}

static void free_chunks(jce_arena_t *a, struct chunk *c, struct chunk *stop) {
    while (c && c != stop) {
        struct chunk *next = c->next;
        if (c != EMBEDDED(a)) free(c);
        c = next;
    }
}

void jce_arena_free(jce_arena_t *a) {
    if (!a) return;
    free_chunks(a, a->cur, NULL);
    free(a);
}

/* Replaces all chunks by one that holds what this round needed, so the next
 * round of the same shape fits without malloc.  On malloc failure the old
 * first chunk simply stays. */
static void merge_chunks(jce_arena_t *a) {
    size_t total = 0;
    for (struct chunk *c = a->cur; c; c = c->next) total += c->size;
    if (total > ARENA_KEEP_MAX) total = ARENA_KEEP_MAX;
    struct chunk *big = NULL;
    if (total > a->first->size) big = malloc(sizeof *big + total);
    free_chunks(a, a->cur, a->first);
    if (big) {
        if (!a->first_embedded) free(a->first);
        big->size = total;
        big->next = NULL;
        a->first = big;
        a->first_embedded = false;
    }
    a->first->next = NULL;
    a->cur = a->first;
}

void jce_arena_reset(jce_arena_t *a) {
    if (a->cur != a->first) merge_chunks(a);
    a->first->used = 0;
    a->used = 0;
}

static struct chunk *grow(jce_arena_t *a, size_t need) {
    if (need > SIZE_MAX / 4) return NULL;
    size_t size = a->cur->size * 2;
    while (size < need) size *= 2;
    struct chunk *c = malloc(sizeof *c + size);
    if (!c) return NULL;
    c->size = size;
    c->used = 0;
    c->next = a->cur;
    a->cur = c;
    return c;
}

void *jce_arena_alloc(jce_arena_t *a, size_t size) {
    if (size == 0) size = 1;
    if (size > a->limit || a->used > a->limit - size) return NULL;
    size_t n = align_up(size);
    struct chunk *c = a->cur;
    if (c->size - c->used < n && !(c = grow(a, n))) return NULL;
    void *p = c->data + c->used;
    c->used += n;
    a->used += size;
    memset(p, 0, size);
    return p;
}

size_t jce_arena_used(const jce_arena_t *a) { return a->used; }
