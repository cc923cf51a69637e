/*
 * push_int.h: what the push service's own files share.  Not for callers
 * outside src/push (they use push.h).
 */
#ifndef HERALD_PUSH_INT_H
#define HERALD_PUSH_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "gateway/http.h"
#include "push/push.h"

typedef struct push_app {
    char *name;
    uint8_t *secret;
    size_t secret_len;
} push_app_t;

typedef struct push_key {
    char *key;
    size_t len;
    int app; /* index into apps */
} push_key_t;

typedef struct push_http push_http_t;

struct push_service {
    push_config_t cfg;
    char *host;
    push_app_t *apps;
    int napps;
    push_key_t *keys;
    int nkeys;
    gw_service_t gwi;
    push_sink_t sink;
    bool started;
    int http_port;
    push_http_t *http;
    atomic_long n_online, n_online_ev, n_offline_ev, n_acks;
    atomic_long n_http, n_http_err, n_pushes, n_delivered;
};

int push_gw_app_secret(void *ctx, const char *app, uint8_t *out, size_t cap);
void push_gw_online(void *ctx, const gw_device_t *d);
void push_gw_offline(void *ctx, const gw_device_t *d, int reason);
void push_gw_ack(void *ctx, const gw_device_t *d, int64_t inbox_seq,
                 int64_t broadcast_seq);

/* push_api.c: one API request, no sockets.  resp->body is a malloc'd JSON
 * text (free with push_api_resp_free). */
typedef struct push_api_resp {
    int status;
    bool allow_post; /* 405: add "Allow: POST" */
    bool allow_get;  /* 405: add "Allow: GET, HEAD" */
    char *body;
    size_t body_len;
} push_api_resp_t;

int push_api_handle(push_service_t *ps, const http_req_t *r, const char *buf,
                    const char *body, size_t body_len, push_api_resp_t *resp);
/* An error answer {"error":{"code","message"}}; returns status. */
int push_api_error(push_api_resp_t *resp, int status, const char *code,
                   const char *message);
void push_api_resp_free(push_api_resp_t *resp);

#define PUSH_MSG_ID_LEN 24
void push_msg_id(char out[PUSH_MSG_ID_LEN + 1]);

/* push_http.c: binds, starts the thread / stops it and frees. */
int push_http_start(push_service_t *ps);
void push_http_stop(push_service_t *ps);

#endif
