/*
 * push_agg: a keyed accumulator for the push service's write coalescing.
 * Each key (a message id, or "app\0device") holds nvals int64 slots,
 * combined by addition (status counts per message) or by maximum
 * (cumulative ack cursors per device).  The owner fills it during a window
 * and drains it once per window, so N events on one key cost one store
 * write instead of N.
 *
 * Not thread-safe: the owner locks around agg_put and swaps tables before
 * draining.  Keys are copied into a bump arena owned by the table.
 */
#ifndef HERALD_PUSH_AGG_H
#define HERALD_PUSH_AGG_H

#include <stddef.h>
#include <stdint.h>

typedef struct push_agg push_agg_t;

enum push_agg_op { PUSH_AGG_ADD, PUSH_AGG_MAX };

/* NULL on out-of-memory.  max_keys bounds the table (memory under a
 * flood); slots start at 0 for ADD and INT64_MIN for MAX. */
push_agg_t *push_agg_new(int nvals, enum push_agg_op op, uint32_t max_keys);
void push_agg_free(push_agg_t *a);

/* Combines v into slot `slot` of key.  0, or -1 when the table is full or
 * memory ran out (the event is dropped: the caller counts it). */
int push_agg_put(push_agg_t *a, const char *key, size_t klen, int slot,
                 int64_t v);

uint32_t push_agg_count(const push_agg_t *a);

/* Calls fn for every key, then empties the table (keeping its memory). */
typedef void (*push_agg_fn)(void *ctx, const char *key, size_t klen,
                            const int64_t *vals);
void push_agg_drain(push_agg_t *a, push_agg_fn fn, void *ctx);

#endif
