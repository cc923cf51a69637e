/*
 * metrics_herald: every metric family herald exports, in one place.
 *
 * The ids below are the registry ids (metrics.h); metrics_herald_init()
 * registers them all (idempotent, thread-safe).  Code that counts includes
 * this header and calls one function per event, e.g.
 *
 *     metrics_inc(M_DEVICE_CMDS, mh_cmd_idx(cmd), mh_result_idx(ret));
 *     metrics_observe(M_DELIVERY_WRITTEN, 0, 0, us);
 *
 * Label value lists are fixed here; the mh_*_idx helpers map protocol codes
 * to their index.  Families that the push service and the store fill are
 * registered (so dashboards and alerts see them at 0) even where the hook
 * is not wired yet; docs/metrics.md lists which are live.
 */
#ifndef HERALD_OPS_METRICS_HERALD_H
#define HERALD_OPS_METRICS_HERALD_H

#include <stdint.h>

#include "ops/metrics.h"

enum metrics_herald_id {
    /* gateway */
    M_CONNECTIONS = 0,    /* gauge {transport}: authenticated sessions */
    M_GW_SOCKETS,         /* callback gauge: open device sockets */
    M_CONNECTS,           /* counter {transport} */
    M_DISCONNECTS,        /* counter {reason} */
    M_HEARTBEATS,         /* counter */
    M_DEVICE_CMDS,        /* counter {cmd, result} */
    M_DEVICE_CMD_LATENCY, /* histogram {cmd} */
    M_SLOW_CONSUMERS,     /* counter */
    M_DELIVERIES,         /* counter: pushes written to a socket */
    M_DELIVERY_WRITTEN,   /* histogram: accepted -> written */
    M_ACKS,               /* counter: ack commands from devices */
    /* push service */
    M_HTTP_REQUESTS,  /* counter {route, status} */
    M_HTTP_LATENCY,   /* histogram {route} */
    M_TARS_CALLS,     /* counter {func, result} */
    M_TARS_LATENCY,   /* histogram {func} */
    M_PUSHES,         /* counter {op} */
    M_EXPIRIES,       /* callback counter (the store's sweeper) */
    M_DELIVERY_ACKED, /* histogram: accepted -> acked */
    /* store */
    M_STORE_LATENCY,   /* histogram {op} */
    M_STORE_ERRORS,    /* counter {op} */
    M_STORE_ROWS,      /* callback counter: rows written */
    M_STORE_COMMITS,   /* callback counter: transactions committed */
    M_QUEUE_DEPTH,     /* callback gauge {queue} */
    M_STORE_DISK_FULL, /* callback gauge: 1 while the store's disk is full */
    M_STORE_FAULT,     /* callback gauge: 1 while the store cannot write */
    M_INBOX_DROPPED,   /* callback counter: inbox rows over inbox_max */
    /* overload protection */
    M_OVERLOADED,         /* callback gauge: 1 while over --memory-high */
    M_MEMORY_HIGH,        /* callback gauge: the watermark, bytes */
    M_REFUSED,            /* counter {what, reason} */
    M_REFUSED_UNANSWERED, /* counter: closed at accept, no answer */
    M_QUEUE_DROPPED,      /* counter {queue}: items a full queue refused */
    M_LISTENER_PAUSED,    /* counter {listener}: accept out of descriptors */
    M_API_TIMEOUTS,       /* counter {api, kind}: API connections timed out */
    M_SYNC_WAITING,       /* gauge: device syncs waiting for a drain */
    /* who may talk to herald */
    M_AUTH_FAILURES,   /* counter {reason}: device logins refused */
    M_REVOCATIONS,     /* counter: device token revocations applied */
    M_UNKNOWN_DEVICES, /* counter: push targets refused as never seen */
    /* process */
    M_PROC_RSS,
    M_PROC_FDS,
    M_PROC_MAX_FDS, /* callback gauge: RLIMIT_NOFILE (soft) */
    M_PROC_THREADS,
    M_HERALD_COUNT
};

/* Label values (index = position). */
enum mh_transport { MH_TR_TCP, MH_TR_WS_JSON, MH_TR_WS_JCE };
enum mh_result {
    MH_RES_OK,
    MH_RES_BAD_REQUEST,
    MH_RES_UNAUTHORIZED,
    MH_RES_RATE_LIMITED,
    MH_RES_ERROR
};
enum mh_reason {
    MH_DIS_CLOSED,
    MH_DIS_HEARTBEAT_TIMEOUT,
    MH_DIS_SLOW_CONSUMER,
    MH_DIS_DUPLICATE_LOGIN,
    MH_DIS_DRAINING,
    MH_DIS_PROTOCOL_ERROR,
    MH_DIS_AUTH,
    MH_DIS_SERVER_ERROR,
    MH_DIS_PEER_GONE,
    MH_DIS_OTHER
};
enum mh_route {
    MH_ROUTE_PUSH_DEVICE,
    MH_ROUTE_PUSH_MULTI,
    MH_ROUTE_PUSH_ONLINE,
    MH_ROUTE_PUSH_ALL,
    MH_ROUTE_MESSAGE,
    MH_ROUTE_OTHER
};
enum mh_status { MH_ST_2XX, MH_ST_4XX, MH_ST_429, MH_ST_5XX, MH_ST_OTHER };
enum mh_func {
    MH_FN_SINGLE,
    MH_FN_MULTI,
    MH_FN_ALL_ONLINE,
    MH_FN_ALL,
    MH_FN_PING,
    MH_FN_OTHER
};
enum mh_push_op { MH_OP_SINGLE, MH_OP_MULTI, MH_OP_ALL_ONLINE, MH_OP_ALL };
enum mh_store_op {
    MH_STORE_APPEND,
    MH_STORE_FETCH,
    MH_STORE_ACK,
    MH_STORE_EXPIRE,
    MH_STORE_OTHER
};
enum mh_queue { MH_Q_STORE, MH_Q_MAILBOX, MH_Q_DELIVERY };
/* herald_refused_total: what was refused and why (docs/operations.md). */
enum mh_refused_what { MH_REF_CONNECTION, MH_REF_PUSH };
enum mh_refused_reason {
    MH_REF_MAX_CONNS,
    MH_REF_ACCEPT_RATE,
    MH_REF_PER_IP,
    MH_REF_MEMORY,
    MH_REF_RATE_LIMIT,
    MH_REF_QUEUE_FULL
};
/* herald_auth_failures_total: why a device login was refused. */
enum mh_auth_reason {
    MH_AUTH_BAD_TOKEN,
    MH_AUTH_EXPIRED,
    MH_AUTH_TOO_LONG,
    MH_AUTH_REVOKED,
    MH_AUTH_OTHER
};
/* herald_queue_dropped_total */
enum mh_drop_queue {
    MH_DROP_STORE,
    MH_DROP_SYNC,
    MH_DROP_STATUS,
    MH_DROP_MAILBOX
};

/* herald_listener_paused_total: == enum lpause_which (ev/lpause.h) */
enum mh_listener { MH_LSN_DEVICE, MH_LSN_API, MH_LSN_TARS, MH_LSN_ADMIN };
/* herald_api_timeouts_total */
enum mh_api { MH_API_HTTP, MH_API_TARS };
enum mh_timeout { MH_TO_HEAD, MH_TO_IDLE };

#define MH_NCMDS 10 /* hello .. bye, then "unknown" */

/* Registers every family (once; later calls return the first result).
 * 0 or a negative metrics_err. */
int metrics_herald_init(void);

/* Label index of a device command (herald Cmd, 1..9), of a result (a
 * herald ErrCode), of a disconnect reason (ErrCode, 0 = orderly) and of a
 * gateway transport (enum gw_transport). */
unsigned mh_cmd_idx(int cmd);
unsigned mh_result_idx(int err_code);
unsigned mh_reason_idx(int err_code);
unsigned mh_transport_idx(int transport);
unsigned mh_status_idx(int http_status);
/* Label index of a refused login's ErrCode (herald_auth_failures_total). */
unsigned mh_auth_idx(int err_code);

/* Clocks for latency figures: monotonic and wall, in microseconds. */
uint64_t mh_mono_us(void);
uint64_t mh_wall_us(void);

#endif
