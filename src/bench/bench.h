/*
 * bench: the load generator behind `herald bench`.
 *
 * The parent (cli_bench.c) forks worker processes; each owns a slice of the
 * device connections (bench_child_run) in one epoll loop and talks to the
 * parent over two pipes: records up (bench_rec_t), one-byte commands down.
 * Times are CLOCK_MONOTONIC microseconds, which every process of the
 * machine shares, so a child can subtract a time the parent wrote into a
 * payload.
 */
#ifndef HERALD_BENCH_H
#define HERALD_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bench_target {
    BENCH_HERALD = 1,
    BENCH_MQTT = 2,  /* Mosquitto, MQTT 3.1.1 */
    BENCH_NCHAN = 3, /* nginx + Nchan, WebSocket subscriber */
};

#define BENCH_MAX_PIDS 8
#define BENCH_FD_PER_PROC 19000 /* the hard limit here is 20000 */

typedef struct bench_opts {
    int target;   /* enum bench_target */
    bool ws;      /* herald: WebSocket instead of raw TCP */
    long conns;   /* N device connections */
    long procs;   /* P worker processes */
    long msgs;    /* M broadcast messages */
    long payload; /* bytes per message payload */
    char server_host[64];
    int server_port; /* device port (herald), MQTT port, nginx port */
    char api_host[64];
    int api_port;         /* herald push API; nchan: the nginx port again */
    const char *key;      /* herald API key */
    const char *app;      /* herald app (tokens) */
    const char *secret;   /* herald app secret (tokens) */
    const char *topic;    /* MQTT topic / Nchan channel */
    const char *sub_path; /* Nchan subscriber location prefix */
    const char *pub_path; /* Nchan publisher location prefix */
    long uni_rate;        /* unicast pushes per second (herald) */
    long uni_secs;
    long inflight;            /* handshakes in flight per worker */
    long timeout_ms;          /* wait per broadcast message */
    long settle_ms;           /* pause before the idle-memory sample */
    int pids[BENCH_MAX_PIDS]; /* server processes to sample */
    int npids;
} bench_opts_t;

/* Records a worker sends up its pipe. */
enum bench_rec_type {
    BENCH_REC_CONN = 1, /* a=ready b=failed c=first connect µs d=last ok µs */
    BENCH_REC_DONE = 2, /* a=msg: every ready connection has it; d=last µs */
    BENCH_REC_MSG = 3,  /* final: a=msg b=count c=first µs d=last µs */
    BENCH_REC_LAT = 4,  /* final: a=n, then n uint32_t latencies (µs) */
    BENCH_REC_END = 5,  /* final: a=ready now b=closed by the server */
};

typedef struct bench_rec {
    uint32_t type;
    uint32_t a;
    uint64_t b, c, d;
} bench_rec_t;

/* Commands down the pipe. */
#define BENCH_CMD_REPORT 'F' /* send the final records */
#define BENCH_CMD_QUIT 'Q'

/* Runs one worker for connections [lo, hi): never returns (exits). */
void bench_child_run(const bench_opts_t *o, int id, long lo, long hi, int up_fd,
                     int down_fd);

/* The device id of connection i ("bench-<i>"). */
void bench_device_id(char *out, size_t cap, long i);

/* Raises RLIMIT_NOFILE's soft limit to the hard limit; the new soft limit
 * or -1. */
long bench_raise_nofile(void);

#endif
