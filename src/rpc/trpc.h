/*
 * trpc: TARS RPC over a byte stream (tars-wire §2).
 *
 * Owns the frame codec (4-byte big-endian length counting itself), the
 * generic server side that turns one request frame into one reply frame by
 * running a jce2c-generated dispatcher, and small client helpers.  It owns
 * no sockets and no event loop: callers feed it whole frames (found with
 * trpc_frame_check) and write out what it produces, so the same code serves
 * the push service, the test server and the fuzzer.
 *
 * Versions: iVersion 1 (TARS) is answered with a ResponsePacket; iVersion 3
 * (TUP) with a RequestPacket-shaped packet whose status carries
 * STATUS_RESULT_CODE / STATUS_RESULT_DESC, because @tars/rpc and TarsCpp
 * clients decode TUP answers that way (anything else kills the JS client).
 * Other versions get iRet -1; version 2 (TUP complex, which TarsCpp no
 * longer speaks) in the TUP shape its clients parse, the rest as a
 * ResponsePacket.
 * One-way requests (cPacketType 1) are run but never answered.
 *
 * Deferred answers: trpc_server_handle_async() lets an impl answer after it
 * returns (jce_call_defer(), e.g. to wait for a store commit without
 * blocking an event loop).  The caller keeps the trpc_req_t it gets back
 * and later encodes the answer's sBuffer with the generated M_I_op_reply()
 * and the frame with trpc_reply_encode(), in any order relative to other
 * calls of the same connection: TARS clients match answers by iRequestId.
 */
#ifndef HERALD_TRPC_H
#define HERALD_TRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#include "jce/jce.h"
#include "jce/jce_rpc.h"

/* TARS itself allows 100 MiB; a push call is a few KiB, so 10 MiB is ample
 * and bounds what one connection can make us buffer. */
#define TRPC_MAX_FRAME_DEFAULT (10u << 20)
#define TRPC_MIN_FRAME 5u /* length prefix plus at least one head byte */

enum { TRPC_NORMAL = 0, TRPC_ONEWAY = 1 };

/* Errors are the TRPC_ERR_* codes of herald_err (core/err.h), apart from
 * the JCE codec's, so a caller can tell a transport problem from a codec one. */

/* ---- frames ---- */

/*
 * Looks at the start of a receive buffer.  Returns 0 when fewer than 4
 * bytes or less than the announced frame are there (read more), 1 when a
 * whole frame of *frame_len bytes (prefix included) starts at buf, and
 * TRPC_ERR_FRAME when the prefix is < 5 or > max (max 0 = default); the
 * error is reported as soon as the 4 prefix bytes are in, so a caller never
 * buffers toward an oversize frame.
 */
int trpc_frame_check(const uint8_t *buf, size_t len, uint32_t max,
                     uint32_t *frame_len);

/* ---- server ---- */

typedef struct trpc_server trpc_server_t;

/* Not thread-safe: one server value per thread (it keeps a per-call arena
 * and scratch buffers that are reused from call to call). */
trpc_server_t *trpc_server_new(void);
void trpc_server_free(trpc_server_t *srv);
/* Registers `servant` ("App.Server.Obj", copied) served by `itf` with the
 * given impl table (borrowed, must outlive the server). */
int trpc_server_add(trpc_server_t *srv, const char *servant,
                    const jce_interface_t *itf, const void *impl);

/* What answering a request needs from it, and what a caller may count it
 * by.  Strings are not copied: servant is the registered name (owned by
 * the server), func the generated method's name or "tars_ping" (static);
 * either is NULL when the request named none that exists. */
typedef struct trpc_req {
    int16_t version;
    int8_t packet_type; /* TRPC_NORMAL or TRPC_ONEWAY */
    int32_t req_id;
    int32_t msg_type;
    const char *servant;
    const char *func;
    int32_t ret; /* framework code of an answer made at once */
} trpc_req_t;

/*
 * Runs one request frame (length prefix included, as found by
 * trpc_frame_check) and writes the whole reply frame, prefix included, into
 * `reply` after clearing it.  reply->len is 0 when nothing must be sent
 * (one-way calls).  Framework errors (unknown servant -4 or function -3,
 * undecodable arguments -1, unsupported version -1) are answered in the
 * reply and return 0.  A frame whose RequestPacket cannot be decoded
 * returns TRPC_ERR_FRAME or TRPC_ERR_DECODE: the caller should close the
 * connection, as TARS servers do.  `ctx` is handed to the impl in
 * jce_call_t.ctx.  Memory of the call is released before returning.
 */
int trpc_server_handle(trpc_server_t *srv, const uint8_t *frame, size_t len,
                       void *ctx, jce_out_t *reply);

/*
 * trpc_server_handle for servers that let impls defer their answer.  As
 * above, and *req is filled whenever the RequestPacket decoded (return
 * >= 0 or HERALD_EINPROGRESS).  When the impl called jce_call_defer(),
 * HERALD_EINPROGRESS is returned and reply is left empty: the caller keeps *req and answers with
 * trpc_reply_encode() once the impl's work is done (for a one-way request
 * that writes nothing, but the work must still be finished).  A plain
 * trpc_server_handle() answers a deferring impl with JCE_RPC_UNKNOWN_ERR.
 */
int trpc_server_handle_async(trpc_server_t *srv, const uint8_t *frame,
                             size_t len, void *ctx, jce_out_t *reply,
                             trpc_req_t *req);

/*
 * The answer frame to a deferred request, into `reply` after clearing it
 * (left empty for one-way requests).  ret is the framework code (0 unless
 * the work failed as a whole; desc then says why), body the sBuffer from
 * the generated M_I_op_reply(); an encoder error in body is answered as
 * JCE_RPC_ENCODE_ERR with no results.  0 or TRPC_ERR_ENCODE.
 */
int trpc_reply_encode(const trpc_req_t *req, int32_t ret, const char *desc,
                      const jce_out_t *body, jce_out_t *reply);

/* ---- client ---- */

/*
 * Appends one whole request frame to `o` (so several can be pipelined in
 * one buffer).  `args` is the encoded sBuffer (e.g. from a generated
 * M_I_op_args stub); NULL means empty.  All ten RequestPacket fields are
 * written, as C++ servers require.  Returns 0 or a negative error (the
 * encoder's sticky error, or TRPC_ERR_ARG).
 */
int trpc_request_encode(jce_out_t *o, int version, int packet_type,
                        int32_t req_id, const char *servant, const char *func,
                        const jce_out_t *args, int32_t timeout_ms);

typedef struct trpc_response {
    int version; /* iVersion of the answer (1 or 3) */
    int packet_type;
    int32_t req_id;
    int32_t ret;      /* framework code (tars-wire §2.6), 0 = success */
    jce_bytes_t body; /* sBuffer: ret@0 + outs (v1) or a UniAttribute (v3) */
    jce_str_t desc;   /* sResultDesc / STATUS_RESULT_DESC, may be empty */
} trpc_response_t;

/*
 * Decodes one response frame (prefix included): a ResponsePacket for v1, a
 * RequestPacket-shaped TUP answer for v3.  Views in *r point into `frame`
 * or into `a`.  Returns 0 or a negative error.
 */
int trpc_response_decode(const uint8_t *frame, size_t len, jce_arena_t *a,
                         trpc_response_t *r);

/*
 * A blocking client call on a connected socket: sends the request frame(s)
 * in `request` and reads frames into `rbuf` (cleared first) until the one
 * answering `req_id` has arrived, then decodes it into *r (views point into
 * rbuf).  timeout_ms bounds the whole call (<= 0: no limit).  Not for
 * one-way requests, which get no answer.
 */
int trpc_call(int fd, const jce_out_t *request, int32_t req_id, int timeout_ms,
              jce_out_t *rbuf, jce_arena_t *a, trpc_response_t *r);

#endif
