/*
 * ops_store: what the admin listener needs from the store — readiness, a
 * message's timeline for /api/messages/ID, and the store figures read at
 * scrape time (queue depth, expired messages).  The callbacks match
 * ops_admin_config_t and run on the admin thread only, which owns the one
 * store reader made here (lazily, on first use).
 */
#ifndef HERALD_OPS_OPS_STORE_H
#define HERALD_OPS_OPS_STORE_H

#include <stddef.h>

#include "store/store.h"

typedef struct ops_store ops_store_t;

/* st is borrowed; NULL on out-of-memory.  Also sets the readers of the
 * herald_queue_depth{queue="store"} and herald_expired_total metrics. */
ops_store_t *ops_store_new(store_t *st);
/* Clears the metric readers and frees the reader.  After the admin
 * listener has stopped, before store_close. */
void ops_store_free(ops_store_t *os);

/* ops_admin_config_t.store_ready: a cheap read; 0 or negative with why. */
int ops_store_ready(void *ctx, char *why, size_t cap);
/* ops_admin_config_t.message_timeline: {"id","kind","app","ttl","targets",
 * "steps":[{"step","at_ms","count"}...]} in event order, steps that have
 * happened only.  -ENOENT for an unknown id. */
int ops_store_timeline(void *ctx, const char *msg_id, char **json_out);

#endif
