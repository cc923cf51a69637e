/*
 * bench_wire: the client side of the protocols `herald bench` speaks,
 * without sockets — just enough of each to connect, subscribe and read
 * pushes, so one load generator can drive herald (raw TCP and WebSocket),
 * Mosquitto (MQTT 3.1.1) and nginx+Nchan (WebSocket) with one workload.
 *
 * Every message the benchmark sends carries a marker at the start of its
 * payload, "#B<n>#" (broadcast number n) or "#U<µs>#" (unicast, send time
 * on the monotonic clock, which all processes of one machine share), padded
 * with 'x' to the requested payload size.  Receivers do not need to know
 * how each server wraps a payload (JCE, JSON, MQTT): they scan the bytes of
 * each complete frame for markers.
 *
 * Builders return the bytes written, or 0 if cap is too small (the herald
 * ones append to a jce_out_t and return 0 or -1).  Parsers return 1 (a
 * whole unit parsed), 0 (need more bytes) or -1 (malformed).
 */
#ifndef HERALD_BENCH_WIRE_H
#define HERALD_BENCH_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jce/jce.h"

/* ---- payload markers ------------------------------------------------------ */

#define BENCH_MARK_BCAST 'B'
#define BENCH_MARK_UNI 'U'

/* Writes the payload "#<kind><value>#" padded with 'x' to size bytes (or
 * just the marker if size is smaller) and a NUL; its length, or 0 if cap
 * cannot hold it. */
size_t bench_payload(char *out, size_t cap, size_t size, char kind,
                     uint64_t value);

typedef void (*bench_mark_fn)(void *ctx, char kind, uint64_t value);
/* Calls fn for every well-formed marker in p[0..n); returns their count. */
int bench_scan(const uint8_t *p, size_t n, bench_mark_fn fn, void *ctx);

/* ---- HTTP/1.1 responses ------------------------------------------------------ */

typedef struct bench_http_rsp {
    int status;
    size_t head_len;     /* bytes up to and including the blank line */
    long content_length; /* -1 when absent */
    bool chunked;
} bench_http_rsp_t;

/* Parses a response head at buf[0..len). */
int bench_http_head(const uint8_t *buf, size_t len, bench_http_rsp_t *r);

/* A keep-alive POST with a body of n bytes. */
size_t bench_http_post(char *out, size_t cap, const char *host,
                       const char *path, const char *auth_bearer,
                       const char *ctype, const void *body, size_t n);

/* ---- WebSocket client (RFC 6455) ----------------------------------------- */

/* The GET that opens a WebSocket; subproto may be NULL. */
size_t bench_ws_upgrade(char *out, size_t cap, const char *host,
                        const char *path, const char *subproto);

/* One client frame (FIN set, masked with mask). */
size_t bench_ws_frame(uint8_t *out, size_t cap, int opcode, const void *p,
                      size_t n, uint32_t mask);

typedef struct bench_ws_frame {
    uint8_t opcode;
    bool fin;
    const uint8_t *payload; /* inside the parsed buffer */
    uint64_t len;
    size_t total; /* header + payload */
} bench_ws_frame_t;

/* A server frame (unmasked; a masked one is malformed). */
int bench_ws_parse(const uint8_t *buf, size_t len, bench_ws_frame_t *f);

/* ---- split frames ------------------------------------------------------------ */

/* Connections that share one read buffer keep, between reads, only the
 * partial frame a read ended in, in a small heap block (*part, *len).
 * take moves it to the start of buf (which must hold UINT16_MAX bytes
 * more than the caller reads) and returns its length; keep saves the n
 * bytes left over after the whole frames: 0, or -1 if n > UINT16_MAX or
 * out of memory; drop forgets it (the connection closed). */
size_t bench_part_take(uint8_t **part, uint16_t *len, uint8_t *buf);
int bench_part_keep(uint8_t **part, uint16_t *len, const uint8_t *p, size_t n);
void bench_part_drop(uint8_t **part, uint16_t *len);

/* ---- herald raw TCP (YYB, docs/protocol.md) ------------------------------ */

/* Appends one frame: a Package of cmd (reqId req_id) whose body is the
 * encoded struct in body (NULL: no body). */
int bench_yyb_frame(jce_out_t *o, int cmd, int req_id, const jce_out_t *body);
/* Appends what a device sends first: the preface and a CMD_HELLO (reqId 1)
 * with token and heartbeat (seconds). */
int bench_yyb_hello(jce_out_t *o, const char *token, int heartbeat);

/* ---- MQTT 3.1.1 -------------------------------------------------------------- */

enum bench_mqtt_type {
    BENCH_MQTT_CONNECT = 1,
    BENCH_MQTT_CONNACK = 2,
    BENCH_MQTT_PUBLISH = 3,
    BENCH_MQTT_SUBSCRIBE = 8,
    BENCH_MQTT_SUBACK = 9,
    BENCH_MQTT_PINGREQ = 12,
    BENCH_MQTT_PINGRESP = 13,
};

/* CONNECT with a clean session. */
size_t bench_mqtt_connect(uint8_t *out, size_t cap, const char *client_id,
                          uint16_t keepalive);
/* SUBSCRIBE to one topic filter. */
size_t bench_mqtt_subscribe(uint8_t *out, size_t cap, uint16_t packet_id,
                            const char *topic, uint8_t qos);
/* PUBLISH at QoS 0. */
size_t bench_mqtt_publish(uint8_t *out, size_t cap, const char *topic,
                          const void *p, size_t n);
size_t bench_mqtt_pingreq(uint8_t *out, size_t cap);

typedef struct bench_mqtt_pkt {
    uint8_t type;  /* enum bench_mqtt_type */
    uint8_t flags; /* low nibble of the first byte */
    const uint8_t *body;
    uint32_t body_len;
    size_t total;
} bench_mqtt_pkt_t;

int bench_mqtt_parse(const uint8_t *buf, size_t len, bench_mqtt_pkt_t *pkt);
/* The application payload of a PUBLISH packet.  0 or -1. */
int bench_mqtt_publish_payload(const bench_mqtt_pkt_t *pkt, const uint8_t **p,
                               size_t *n);

#endif
