/*
 * cli_config: every option of `herald serve` in one table (cli_config.c),
 * the settings it fills, and how `herald serve` reads them: defaults <
 * config file < environment < flags.  The same table makes the flags, the
 * file keys, the $HERALD_* variables, `herald serve --help`, `herald config
 * example` (deploy/herald.conf) and `herald config doc` (docs/config.md).
 *
 * Adding an option: a field in serve_settings_t, one line in the table,
 * and the code that uses the value (cli_serve.c; cli_live.c if it can
 * change live on SIGHUP).
 */
#ifndef HERALD_CLI_CONFIG_H
#define HERALD_CLI_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/conf.h"

typedef struct serve_settings {
    char *config; /* the file's path ("" = none) */
    char *host;
    int port;
    int workers; /* 0 = one per core */
    char *api_host;
    int api_port;
    char *tars_host; /* "" = api_host */
    int tars_port;
    int tars_max_conns;
    int tars_max_conns_per_ip; /* 0 = half of tars_max_conns */
    int tars_idle_timeout;     /* seconds; 0 = none */
    int api_max_conns;
    int api_max_conns_per_ip; /* 0 = half of api_max_conns */
    char *admin_host;
    int admin_port;
    char *db;
    bool no_fsync;
    bool accept_journal_loss;
    int inbox_max;
    conf_list_t app;   /* "NAME:SECRET:APIKEY" each */
    char *app_file;    /* more app lines, from a file ("" = none) */
    int token_max_ttl; /* seconds: longest device token lifetime */
    int rate_app;
    int burst; /* 0 = rate_app */
    int max_payload;
    int max_conns;
    int max_conns_per_ip; /* 0 = no limit */
    int accept_rate;      /* new device connections/s; 0 = no limit */
    int accept_burst;     /* 0 = accept_rate */
    char *memory_high;    /* "auto", "0" (off) or a size: 512M, 2G */
    int hb_min, hb_max;
    int head_timeout;
    int log_level;  /* log_level_t */
    int log_format; /* log_format_t */
    char *pid_file; /* "" = none */
    int drain_grace;
} serve_settings_t;

extern const conf_table_t serve_table;

/* What `herald serve` was started with: its flags and environment, kept so
 * a reload applies them again over the re-read file. */
typedef struct serve_conf {
    conf_src_t flags, env;
    const char *path; /* --config or $HERALD_CONFIG; NULL = none */
} serve_conf_t;

/* Reads the flags and the environment.  0, 1 for --help, -1 on a bad flag
 * (reported to e). */
int serve_conf_init(serve_conf_t *c, int argc, char **argv, conf_errs_t *e);
void serve_conf_free(serve_conf_t *c);
/* Fills s (zeroed, or freed with conf_free) from defaults, the file, the
 * environment and the flags, then checks the options against each other.
 * Returns the number of errors (all reported to e); s is complete either
 * way and must be freed with conf_free(&serve_table, s). */
int serve_conf_load(const serve_conf_t *c, serve_settings_t *s, conf_errs_t *e);
/* Checks across options (hb-min <= hb-max, one secret per app, a key
 * used by one app); where names the source in errors.  Errors found. */
int serve_settings_check(const serve_settings_t *s, const char *where,
                         conf_errs_t *e);
/* Deep copy (dst zeroed or owning settings).  0 or -1 (memory). */
int serve_settings_copy(serve_settings_t *dst, const serve_settings_t *src);
/* Splits "NAME:SECRET:APIKEY" (already checked) into its parts; the
 * secret buffer should be cleansed by the caller. */
void serve_app_split(const char *spec, char name[64], char secret[128],
                     const char **key);

void serve_usage(FILE *f);

/* ---- cli_live.c: what changes while `herald serve` runs ----------------- */

struct push_service;
struct gw;
struct store;

typedef struct serve_live {
    struct push_service *ps;
    struct gw *gw;
    struct store *st;
    uint32_t max_body; /* request body limit fixed at start */
} serve_live_t;

/* The apps of the settings into the store and the registry; with none and
 * an empty store, a demo app.  0 or -1 (said on stderr). */
int serve_apps_start(const serve_live_t *l, const serve_settings_t *s);
/* SIGHUP: reads everything again; applies what may change live, warns
 * about what needs a restart, keeps cur entirely on any error.  cur
 * becomes the settings in force.  0, or -1 when nothing was applied. */
int serve_reload(const serve_live_t *l, const serve_conf_t *c,
                 serve_settings_t *cur);

#endif
