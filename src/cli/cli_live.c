/*
 * cli_live: what `herald serve` changes while it runs (cli_config.h).
 *
 * At start the apps of the settings go into the store (API keys are
 * checked there) and into the push service's registry (it answers the
 * gateway's secret lookups without SQLite).
 *
 * On SIGHUP everything is read again: the file, the environment and the
 * flags given at start, in that order.  Any error keeps the settings in
 * force entirely.  Otherwise the options marked live are applied, each
 * through a thread-safe setter of the part that owns it; an option that
 * needs a restart keeps its old value and is named in a warning.  Nothing
 * here closes a connection.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli_config.h"
#include "core/log.h"
#include "core/shq.h"
#include "gateway/gw.h"
#include "push/push.h"
#include "store/store.h"

/* ---- apps --------------------------------------------------------------- */

/* One app line into the registry and the store.  replace: a reload, where
 * a new secret replaces the old one. */
static int put_app(const serve_live_t *l, const char *spec, bool replace,
                   char name[64]) {
    char secret[128];
    const char *key;
    serve_app_split(spec, name, secret, &key);
    int rc = replace ? push_app_put(l->ps, name, secret, key)
                     : push_app_add(l->ps, name, secret, key);
    const char *why = rc < 0 ? push_strerror(rc) : NULL;
    if (!why && (rc = store_app_put(l->st, name, secret, key)) < 0)
        why = herald_strerror(rc);
    OPENSSL_cleanse(secret, sizeof secret);
    if (why && replace)
        log_error("config app failed", "app=%s err=\"%s\"", name, why);
    else if (why)
        fprintf(stderr, "herald serve: app %s: %s\n", name, why);
    return why ? -1 : 0;
}

/* An empty store and no app: a demo app, its credentials printed once
 * (a first run has no other way to learn them). */
static int add_demo_app(store_t *st) {
    store_app_t a;
    char key[128];
    int rc =
        store_app_create(st, "demo", STORE_UNKNOWN_STORE, &a, key, sizeof key);
    if (rc < 0) {
        fprintf(stderr, "herald serve: demo app: %s\n", herald_strerror(rc));
        return rc;
    }
    char qs[3 * 128]; /* quoted for sh (a random secret needs none) */
    if (shq_quote(qs, sizeof qs, a.secret) < 0) qs[0] = 0;
    printf("herald: demo app \"demo\" created (first start, no --app)\n"
           "herald:   API key     %s\n"
           "herald:   secret      %s\n"
           "herald:   mint a device token:\n"
           "herald:     herald token --app demo --device DEVICE --secret %s\n",
           key, a.secret, qs);
    return 0;
}

static void count_app(void *ctx, const store_app_t *a, int n_keys) {
    (void)a;
    (void)n_keys;
    ++*(int *)ctx;
}

/* Apps not named in the settings are read from the store when needed. */
int serve_apps_start(const serve_live_t *l, const serve_settings_t *s) {
    char name[64];
    for (int i = 0; i < s->app.n; i++)
        if (put_app(l, s->app.v[i], false, name) < 0) return -1;
    if (s->app.n) return 0;
    store_reader_t *r;
    int n = 0;
    if (store_reader_new(l->st, &r) == 0) {
        (void)store_app_list(r, count_app, &n); /* 0 apps on failure */
        store_reader_free(r);
    }
    if (n == 0) return add_demo_app(l->st);
    printf("herald: %d app(s) in the store (herald app list)\n", n);
    return 0;
}

static bool has_spec(const conf_list_t *l, const char *spec) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], spec)) return true;
    return false;
}

static bool has_key(const conf_list_t *l, const char *key) {
    for (int i = 0; i < l->n; i++) {
        const char *c1 = strchr(l->v[i], ':');
        const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 && !strcmp(c2 + 1, key)) return true;
    }
    return false;
}

/* New or changed lines are put; a key that was configured and no longer
 * is gets revoked (the app itself stays: `herald app` owns apps).  The
 * API-key cache is dropped so both take effect at once. */
static void reload_apps(const serve_live_t *l, const conf_list_t *old,
                        const conf_list_t *now) {
    char name[64], secret[128];
    const char *key;
    for (int i = 0; i < now->n; i++)
        if (!has_spec(old, now->v[i]) && put_app(l, now->v[i], true, name) == 0)
            log_info("app updated", "app=%s", name);
    for (int i = 0; i < old->n; i++) {
        serve_app_split(old->v[i], name, secret, &key);
        OPENSSL_cleanse(secret, sizeof secret);
        if (has_key(now, key)) continue;
        push_app_drop_key(l->ps, key);
        int rc = store_app_revoke_key(l->st, name, key);
        if (rc < 0)
            log_error("config app failed", "app=%s err=\"%s\"", name,
                      herald_strerror(rc));
        else
            log_info("api key revoked", "app=%s", name);
    }
    push_service_forget_keys(l->ps);
}

/* ---- reload ----------------------------------------------------------- */

/* An error line into the log: quotes would end the logfmt value early. */
static void log_conf_err(void *ctx, const char *line) {
    (void)ctx;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", line);
    for (char *p = buf; *p; p++)
        if (*p == '"' || *p == '\\') *p = '\'';
    log_error("config error", "error=\"%s\"", buf);
}

static void add_name(char *list, size_t cap, const char *name) {
    size_t n = strlen(list);
    snprintf(list + n, cap - n, "%s%s", n ? "," : "", name);
}

/* The live options of s, applied. */
static void apply_live(const serve_live_t *l, const serve_settings_t *s) {
    log_set_level((log_level_t)s->log_level);
    log_set_format((log_format_t)s->log_format);
    push_service_set_limits(l->ps, s->rate_app, s->burst,
                            (uint32_t)s->max_payload);
    gw_set_limits(l->gw, s->max_conns, s->hb_min, s->hb_max);
    gw_set_token_max_ttl(l->gw, s->token_max_ttl);
}

int serve_reload(const serve_live_t *l, const serve_conf_t *c,
                 serve_settings_t *cur) {
    const conf_table_t *t = &serve_table;
    serve_settings_t next;
    memset(&next, 0, sizeof next);
    conf_errs_t e = {log_conf_err, NULL, 0};
    if (serve_conf_load(c, &next, &e) > 0) {
        log_error("config reload failed", "errors=%d file=\"%s\" kept=old", e.n,
                  c->path ? c->path : "");
        conf_free(t, &next);
        return -1;
    }
    /* The request body limit was sized at start. */
    if ((uint32_t)next.max_payload * 2 + 4096 > l->max_body &&
        next.max_payload != cur->max_payload) {
        log_warn("config option needs a restart", "option=max-payload above=%u",
                 (l->max_body - 4096) / 2);
        next.max_payload = cur->max_payload;
    }
    char changed[1024] = "", restart[1024] = "";
    int bad = 0;
    bool apps = false;
    for (int i = 0; i < t->n; i++) {
        const conf_opt_t *o = &t->opts[i];
        if (!conf_differs(o, cur, &next)) continue;
        if (o->flags & CONF_LIVE) {
            add_name(changed, sizeof changed, o->name);
            apps |= o->off == offsetof(serve_settings_t, app);
            continue;
        }
        add_name(restart, sizeof restart, o->name);
        bad |= conf_copy(o, &next, cur); /* keeps running as it is */
    }
    if (bad < 0) {
        log_error("config reload failed", "err=\"out of memory\" kept=old");
        conf_free(t, &next);
        return -1;
    }
    apply_live(l, &next);
    if (apps) reload_apps(l, &cur->app, &next.app);
    if (*restart)
        log_warn("config options need a restart", "options=%s kept=old",
                 restart);
    log_info("config reloaded", "file=\"%s\" changed=\"%s\"",
             c->path ? c->path : "", changed);
    conf_free(t, cur);
    *cur = next;
    return 0;
}
