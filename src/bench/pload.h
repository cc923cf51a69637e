/*
 * pload: the engine of bench/push_load.c, a load generator for the push
 * API's pushSingleDevice (HTTP/1.1 keep-alive or TARS), optionally with
 * every target device online on the gateway so that each push is also
 * delivered, acked and checked.
 *
 * A worker is one thread with one epoll loop.  It owns a slice of the API
 * connections and the devices those connections push to (devices
 * [dev_lo, dev_hi), round robin), so workers share nothing: a push's seq is
 * the worker's own, and the device that receives it belongs to the same
 * worker.  The default is one worker, i.e. the whole client load (API
 * requests, device reads and acks) on one thread and at most one core.
 *
 * Every payload carries a marker "#L<run>.<dev>.<seq>.<t0>#" padded with
 * 'x': run tells this process's pushes from ones stored by an earlier run,
 * dev is the device index the push was addressed to, seq the worker's push
 * number, t0 the request's start (CLOCK_MONOTONIC µs, which every process
 * of the machine shares, so the device side can subtract it).
 *
 * The structs are visible because push_load.c runs the loop and reads the
 * results; nothing here is thread-safe beyond "one worker, one thread".
 */
#ifndef HERALD_PLOAD_H
#define HERALD_PLOAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/bench_stat.h"
#include "gateway/yyb.h"
#include "jce/jce.h"

enum pload_proto { PLOAD_HTTP = 1, PLOAD_TARS = 2 };

#define PLOAD_HOST_MAX 64
#define PLOAD_PAYLOAD_MAX 16384
#define PLOAD_CONN_IN 8192         /* one answer; ours are ~100 bytes */
#define PLOAD_DEV_INFLIGHT 256     /* device handshakes in flight per worker */
#define PLOAD_ACK_IDS 256          /* online-only msgIds in one ack */
#define PLOAD_KEY_DEV (1ull << 63) /* epoll key bit: a device, not a conn */

typedef struct pload_opts {
    int proto; /* enum pload_proto */
    char api_host[PLOAD_HOST_MAX];
    int api_port;
    const char *key; /* API key: never printed */
    long conns, devices, payload, ttl, threads;
    long secs, warmup;
    double rate;        /* total pushes/s; 0 = closed loop */
    const char *prefix; /* device ids: PREFIX0 .. PREFIX(devices-1) */
    bool online;
    char gw_host[PLOAD_HOST_MAX];
    int gw_port;
    const char *app, *secret; /* tokens for the devices; secret never printed */
    uint32_t run;             /* marks this run's payloads */
} pload_opts_t;

/* What every worker reads and push_load.c's main thread writes between
 * barriers: the phase times (µs, CLOCK_MONOTONIC) and the abort flag. */
typedef struct pload_shared {
    pthread_barrier_t barrier;
    bool abort;
    uint64_t t_start, t_warm, t_end;
} pload_shared_t;

/* One API connection: closed loop, at most one request in flight. */
typedef struct pload_conn {
    int fd;
    bool busy, dead;
    uint64_t seq; /* the push in flight */
    uint64_t t0;  /* its start: when it was sent, or its --rate slot */
    size_t in_len;
    uint8_t in[PLOAD_CONN_IN];
} pload_conn_t;

enum {
    PLOAD_D_IDLE,
    PLOAD_D_CONNECTING,
    PLOAD_D_HELLO,
    PLOAD_D_READY,
    PLOAD_D_DEAD
};

/* One device connection on the gateway (raw TCP, YYB). */
typedef struct pload_dev {
    int fd;
    uint8_t st;
    uint16_t part_len; /* bytes of a split frame kept in part */
    uint8_t *part;
    yyb_reader_t yr;
    int64_t seen_seq;  /* highest inbox seq received */
    int64_t acked_seq; /* highest inbox seq acked */
    uint32_t got;      /* this run's pushes received */
} pload_dev_t;

/* Per push (index: the worker's seq). */
#define PLOAD_F_WRITTEN 1 /* the API answered state "written" */
#define PLOAD_F_DELIV 2   /* its device received it */

typedef struct pload_worker {
    const pload_opts_t *o;
    pload_shared_t *sh;
    int id, ep;
    pthread_t th;
    uint64_t now; /* µs, read once per batch of events */

    /* API side */
    pload_conn_t *c;
    long nc, busy;
    long *idle, nidle; /* --rate: connections with nothing in flight */
    double slot_us;    /* --rate: this worker's interval */
    uint64_t slot;     /* --rate: next slot number */
    long dev_lo, dev_hi, dev_next;
    uint64_t seq;   /* pushes sent = next seq */
    uint8_t *flags; /* PLOAD_F_* per seq */
    size_t flags_cap;
    char *req; /* request scratch */
    size_t req_cap;
    jce_out_t args, frame;
    jce_arena_t *arena;

    /* device side */
    pload_dev_t *d;
    long d_next, d_inflight, d_ready, d_failed, d_closed;
    uint64_t t_connected; /* the last handshake ended */
    uint64_t t_stale;     /* last stale push (an earlier run's) */
    uint8_t *rbuf;        /* one read buffer for every device */
    jce_arena_t *darena;  /* decoded pushes of one read */
    jce_out_t dout;       /* frames to a device */
    jce_out_t dbody;      /* a frame's body */
    jce_str_t ack_ids[PLOAD_ACK_IDS];
    int n_ack_ids;

    /* results; "win" = answered inside [t_warm, t_end) */
    bool api_ok; /* every API connection opened */
    long sent, ok, err, warm_ok, win_ok;
    long written, stored, other_state;
    bench_lat_t lat; /* API latency, window */
    long delivered, wrong, dup, stale, outstanding;
    bench_lat_t dlat; /* delivery latency, pushes started in the window */
    char first_err[320];
} pload_worker_t;

/* ---- pload_api.c ---------------------------------------------------------- */

/* Allocates the worker's API state and connects its connections (blocking
 * connect, then non-blocking, registered with w->ep).  0 or -1 (message in
 * first_err). */
int pload_api_open(pload_worker_t *w);
/* Sends the next push on idle connection c; t0 is its start time. */
void pload_api_send(pload_worker_t *w, pload_conn_t *c, uint64_t t0);
/* c is readable: reads, handles complete answers and, in the closed loop,
 * sends the next request. */
void pload_api_readable(pload_worker_t *w, pload_conn_t *c);
void pload_api_close(pload_worker_t *w);
/* Records the worker's first error (printf format). */
void pload_error(pload_worker_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The payload of push (dev, seq) started at t0: the marker padded with 'x'
 * to size bytes (just the marker if size is smaller), NUL-terminated.  Its
 * length, or 0 if cap is too small. */
size_t pload_payload(char *out, size_t cap, size_t size, uint32_t run, long dev,
                     uint64_t seq, uint64_t t0);

typedef struct pload_mark {
    uint32_t run;
    uint64_t dev, seq, t0;
} pload_mark_t;

/* Parses the marker at the start of a payload.  0 or -1 (not ours). */
int pload_payload_parse(const uint8_t *p, size_t n, pload_mark_t *m);

/* ---- pload_dev.c ---------------------------------------------------------- */

/* Allocates the worker's device state.  0 or -1. */
int pload_dev_init(pload_worker_t *w);
/* Starts connections until PLOAD_DEV_INFLIGHT handshakes are in flight. */
void pload_dev_pump(pload_worker_t *w);
/* An epoll event on device i (index into w->d). */
void pload_dev_event(pload_worker_t *w, long i, uint32_t events);
/* A heartbeat on every ready device. */
void pload_dev_heartbeat(pload_worker_t *w);
void pload_dev_close(pload_worker_t *w);

#endif
