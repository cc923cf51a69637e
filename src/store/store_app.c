/*
 * Applications and their API keys.  Rare writes, so they run synchronously
 * on the caller's thread over the write connection, taking db_mu so they
 * slot in between the writer's batches.
 *
 * API keys are "hk_" + 32 random bytes in base64url; only their SHA-256 is
 * stored, so a copied database file does not hand out working keys.  The
 * signing secret must be readable (the gateway verifies tokens with it).
 */
#include "store/store_int.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "core/b64.h"
#include "core/clock.h"
#include "core/token.h"

#define KEY_PREFIX "hk_"
#define RAND_LEN 32

void store__key_hash(const char *key, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(key, strlen(key), md, &n, EVP_sha256(), NULL)) n = 0;
    for (unsigned i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[2 * (n < 32 ? n : 32)] = '\0';
}

/* prefix + base64url of RAND_LEN random bytes into out (cap >= 64). */
static int random_token(const char *prefix, char *out, size_t cap) {
    uint8_t raw[RAND_LEN];
    size_t plen = strlen(prefix);
    if (cap < plen + B64URL_ENC_LEN(RAND_LEN) + 1) return STORE_E_INVALID;
    if (RAND_bytes(raw, sizeof raw) != 1) return STORE_E_IO;
    memcpy(out, prefix, plen);
    b64url_encode(out + plen, raw, sizeof raw);
    return 0;
}

static int step_w(store_sq_t *st, sqlite3_stmt *s) {
    if (!s) return STORE_E_IO;
    int rc = sqlite3_step(s);
    rc = rc == SQLITE_DONE || rc == SQLITE_ROW
             ? 0
             : store__sql_err(st->db, rc, sqlite3_sql(s));
    sqlite3_reset(s);
    return rc;
}

static int key_insert(store_sq_t *st, const char *app, const char *key) {
    char hash[65];
    store__key_hash(key, hash);
    sqlite3_stmt *s = store__w(st, W_KEY_INSERT);
    if (!s) return STORE_E_IO;
    sqlite3_bind_text(s, 1, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, app, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (int64_t)clock_wall_ms());
    return step_w(st, s);
}

/* 1 exists, 0 not, <0 error. */
static int app_exists(store_sq_t *st, const char *name) {
    sqlite3_stmt *s = store__bind1(store__w(st, W_APP_EXISTS), name);
    if (!s) return STORE_E_IO;
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : store__sql_err(st->db, rc, "app exists");
}

/* Runs fn inside one transaction on the write connection. */
static int in_txn(store_sq_t *st, int (*fn)(store_sq_t *, void *), void *arg) {
    pthread_mutex_lock(&st->db_mu);
    store__set_sync(st, true); /* apps and keys must survive power loss */
    int rc = store__exec(st->db, "BEGIN IMMEDIATE");
    if (rc == 0) {
        rc = fn(st, arg);
        if (rc == 0) rc = store__exec(st->db, "COMMIT");
        if (rc < 0) (void)store__exec(st->db, "ROLLBACK"); /* keep rc */
    }
    pthread_mutex_unlock(&st->db_mu);
    return rc;
}

struct app_args {
    const char *name, *secret, *key;
    int64_t now;
    int mode; /* create: unknown_device */
};

struct mode_args {
    const char *name;
    int mode;
};

static int do_set_unknown(store_sq_t *st, void *arg);

static int do_create(store_sq_t *st, void *arg) {
    struct app_args *a = arg;
    sqlite3_stmt *s =
        store__bind2(store__w(st, W_APP_INSERT), a->name, a->secret);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int64(s, 3, a->now);
    int rc = step_w(st, s);
    if (rc == 0) rc = key_insert(st, a->name, a->key);
    struct mode_args m = {a->name, a->mode};
    return rc < 0 || a->mode == STORE_UNKNOWN_STORE ? rc
                                                    : do_set_unknown(st, &m);
}

/* A new name must be one a device token can carry (token_app_valid: the
 * one rule for app names); names an older herald accepted stay usable. */
static bool new_name_ok(const char *name) {
    return name && token_app_valid(name, strlen(name));
}

int store_sq_app_create(store_sq_t *st, const char *name, int unknown_device,
                        store_app_t *app, char *key_out, size_t cap) {
    if (!new_name_ok(name) || !key_out ||
        (unknown_device != STORE_UNKNOWN_STORE &&
         unknown_device != STORE_UNKNOWN_REJECT))
        return STORE_E_INVALID;
    store_app_t a = {.created_ms = (int64_t)clock_wall_ms(),
                     .unknown_device = unknown_device};
    snprintf(a.name, sizeof a.name, "%s", name);
    int rc = random_token("", a.secret, sizeof a.secret);
    if (rc == 0) rc = random_token(KEY_PREFIX, key_out, cap);
    if (rc < 0) return rc;
    struct app_args args = {name, a.secret, key_out, a.created_ms,
                            unknown_device};
    if ((rc = in_txn(st, do_create, &args)) < 0) {
        memset(key_out, 0, cap);
        return rc;
    }
    if (app) *app = a;
    return 0;
}

static int do_rotate(store_sq_t *st, void *arg) {
    struct app_args *a = arg;
    int rc = app_exists(st, a->name);
    if (rc <= 0) return rc < 0 ? rc : STORE_E_NOTFOUND;
    sqlite3_stmt *s = store__bind1(store__w(st, W_KEY_REVOKE), a->name);
    if (!s) return STORE_E_IO;
    if ((rc = step_w(st, s)) < 0) return rc;
    return key_insert(st, a->name, a->key);
}

int store_sq_app_rotate_key(store_sq_t *st, const char *name, char *key_out,
                            size_t cap) {
    if (!store__name_ok(name) || !key_out) return STORE_E_INVALID;
    int rc = random_token(KEY_PREFIX, key_out, cap);
    if (rc < 0) return rc;
    struct app_args args = {.name = name, .key = key_out};
    if ((rc = in_txn(st, do_rotate, &args)) < 0) memset(key_out, 0, cap);
    return rc;
}

/* The key's owner into owner (cap 64): 1 found, 0 not, <0 error. */
static int key_owner(store_sq_t *st, const char *key, char *owner) {
    char hash[65];
    store__key_hash(key, hash);
    sqlite3_stmt *s = store__w(st, W_KEY_OWNER);
    if (!s) return STORE_E_IO;
    sqlite3_bind_text(s, 1, hash, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *o = (const char *)sqlite3_column_text(s, 0);
        snprintf(owner, 64, "%s", o ? o : "");
    }
    sqlite3_reset(s);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : store__sql_err(st->db, rc, "key owner");
}

static int do_put(store_sq_t *st, void *arg) {
    struct app_args *a = arg;
    char owner[64];
    int rc = key_owner(st, a->key, owner);
    if (rc < 0) return rc;
    if (rc == 1 && strcmp(owner, a->name) != 0) return STORE_E_EXISTS;
    sqlite3_stmt *s =
        store__bind2(store__w(st, W_APP_UPSERT), a->name, a->secret);
    if (!s) return STORE_E_IO;
    sqlite3_bind_int64(s, 3, a->now);
    int rc2 = step_w(st, s);
    if (rc2 < 0 || rc == 1) return rc2; /* key already this app's */
    return key_insert(st, a->name, a->key);
}

/*
 * For the --app NAME:SECRET:KEY flag, given on every start: creates or
 * updates the app's secret and adds the key if it is new.  A key that
 * belongs to another app is refused (STORE_E_EXISTS).
 */
int store_sq_app_put(store_sq_t *st, const char *name, const char *secret,
                     const char *api_key) {
    if (!new_name_ok(name) || !secret || !*secret || strlen(secret) >= 128 ||
        !api_key || !*api_key)
        return STORE_E_INVALID;
    struct app_args args = {.name = name,
                            .secret = secret,
                            .key = api_key,
                            .now = (int64_t)clock_wall_ms()};
    return in_txn(st, do_put, &args);
}

static int do_revoke_one(store_sq_t *st, void *arg) {
    struct app_args *a = arg;
    char hash[65];
    store__key_hash(a->key, hash);
    sqlite3_stmt *s = store__w(st, W_KEY_REVOKE_ONE);
    if (!s) return STORE_E_IO;
    sqlite3_bind_text(s, 1, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, a->name, -1, SQLITE_STATIC);
    return step_w(st, s);
}

int store_sq_app_revoke_key(store_sq_t *st, const char *name,
                            const char *api_key) {
    if (!store__name_ok(name) || !api_key || !*api_key) return STORE_E_INVALID;
    struct app_args args = {.name = name, .key = api_key};
    return in_txn(st, do_revoke_one, &args);
}

/* ---- settings ---------------------------------------------------------------- */

/* Prepared per call like the revocations below: rare, and the writer's
 * statement table is the push path's. */
static int do_set_unknown(store_sq_t *st, void *arg) {
    struct mode_args *a = arg;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(
        st->db, "UPDATE apps SET unknown_device=?2 WHERE name=?1", -1, &s,
        NULL);
    if (rc != SQLITE_OK) return store__sql_err(st->db, rc, "app set prepare");
    sqlite3_bind_text(s, 1, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, a->mode);
    rc = sqlite3_step(s);
    rc = rc == SQLITE_DONE ? (sqlite3_changes(st->db) ? 0 : STORE_E_NOTFOUND)
                           : store__sql_err(st->db, rc, "app set");
    sqlite3_finalize(s);
    return rc;
}

int store_sq_app_set_unknown_device(store_sq_t *st, const char *name,
                                    int mode) {
    if (!store__name_ok(name) ||
        (mode != STORE_UNKNOWN_STORE && mode != STORE_UNKNOWN_REJECT))
        return STORE_E_INVALID;
    struct mode_args a = {name, mode};
    return in_txn(st, do_set_unknown, &a);
}

/* ---- device token revocations ---------------------------------------------- */

struct revoke_args {
    const char *app, *dev;
    int64_t before_s, in_force;
};

/* Prepared per call, not kept in the writer's statement table: a
 * revocation is rare, and that table is the push path's. */
static int do_revoke_device(store_sq_t *st, void *arg) {
    struct revoke_args *a = arg;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(
        st->db,
        "INSERT INTO device_revocations(app,device,before_s) VALUES(?1,?2,?3)"
        " ON CONFLICT(app,device) DO UPDATE"
        " SET before_s=max(before_s,excluded.before_s) RETURNING before_s",
        -1, &s, NULL);
    if (rc != SQLITE_OK) return store__sql_err(st->db, rc, "revoke prepare");
    sqlite3_bind_text(s, 1, a->app, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a->dev, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, a->before_s);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) a->in_force = sqlite3_column_int64(s, 0);
    while (rc == SQLITE_ROW) rc = sqlite3_step(s); /* RETURNING runs to DONE */
    rc = rc == SQLITE_DONE ? 0 : store__sql_err(st->db, rc, "revoke");
    sqlite3_finalize(s);
    return rc;
}

int store_sq_device_revoke(store_sq_t *st, const char *app, const char *device,
                           int64_t before_s, int64_t *out) {
    if (!store__name_ok(app) || !device ||
        !token_id_valid(device, strlen(device)) || before_s <= 0)
        return STORE_E_INVALID;
    struct revoke_args a = {app, device, before_s, before_s};
    int rc = in_txn(st, do_revoke_device, &a);
    if (rc == 0 && out) *out = a.in_force;
    return rc;
}
