/*
 * cli_listen_int: what the files of `herald listen` share, and nothing
 * outside them uses: cli_listen.c (options, the duplicate set, printing,
 * sessions and reconnects), cli_listen_tcp.c (raw TCP, YYB frames) and
 * cli_listen_ws.c (WebSocket, JSON text).
 */
#ifndef HERALD_CLI_LISTEN_INT_H
#define HERALD_CLI_LISTEN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/token.h"
#include "gateway/yyb.h"
#include "jce/jce.h"

#define RX_MAX (1u << 20) /* one frame or WebSocket message */
#define SEEN_MAX 1024     /* msgIds remembered for duplicate dropping */
#define MSGID_MAX 128

/* What one session ended with. */
enum { S_RETRY = 0, S_EXIT_OK = 1, S_EXIT_FAIL = 2 };

typedef struct listener {
    /* options */
    char host[256];
    int port;
    const char *token;
    const char *app, *secret, *device;
    bool ws, json;
    int heartbeat;
    long count;
    /* state */
    int fd;
    uint8_t *rx;
    size_t rx_len;
    long printed;
    int64_t inbox_seq, broadcast_seq;
    char seen[SEEN_MAX][MSGID_MAX + 1];
    int seen_next, seen_n;
    jce_arena_t *arena;
    yyb_reader_t yr;
    char tok[TOKEN_MAX];
} listener_t;

/* cli_listen.c */
/* One delivered message: prints it unless it is a duplicate.  Returns
 * true when --count is reached. */
bool cli_listen_deliver(listener_t *l, const char *id, size_t id_len,
                        int64_t seq, int timeline, const uint8_t *payload,
                        size_t plen, const char *topic, size_t topic_len);
/* Reads what is there into rx (poll said readable).  1 on data, 0 on EOF,
 * -1 on error or overflow. */
int cli_listen_recv_some(listener_t *l);
/* Drops the first n bytes of rx. */
void cli_listen_rx_consume(listener_t *l, size_t n);

/* cli_listen_tcp.c: the preface and HelloReq, a heartbeat, a Bye (errors
 * ignored: closing anyway); 0 or -1.  cli_listen_tcp_input handles the
 * frames in rx: S_RETRY to go on (or reconnect when *closed), or an exit. */
int cli_listen_tcp_hello(listener_t *l);
int cli_listen_tcp_heartbeat(listener_t *l);
void cli_listen_tcp_bye(listener_t *l);
int cli_listen_tcp_input(listener_t *l, bool *closed);

/* cli_listen_ws.c: the HTTP upgrade (0, -1, or -2 when refused for
 * good: 401/403), one masked frame, a heartbeat; cli_listen_ws_input
 * handles the frames in rx like cli_listen_tcp_input. */
int cli_listen_ws_upgrade(listener_t *l);
int cli_listen_ws_send(listener_t *l, unsigned op, const void *p, size_t n);
int cli_listen_ws_heartbeat(listener_t *l);
int cli_listen_ws_input(listener_t *l, bool *closed);

#endif
