/*
 * ops assets: the dashboard's files, embedded into the binary at build time
 * by tools/embed_assets.sh (generated into $(BUILD)/gen-assets/).
 */
#ifndef HERALD_OPS_ASSETS_H
#define HERALD_OPS_ASSETS_H

#include <stddef.h>

typedef struct ops_asset {
    const char *name; /* file name, e.g. "index.html" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} ops_asset_t;

/* Terminated by an entry with name NULL. */
extern const ops_asset_t ops_assets[];

/* The asset called name, or NULL. */
const ops_asset_t *ops_asset_find(const char *name);

#endif
