/*
 * libFuzzer target: a TARS RPC byte stream as a connection would deliver
 * it.  The input is split into frames with trpc_frame_check and each frame
 * is run through trpc_server_handle with the PushAPI and Test.Hello
 * servants registered, so the generated dispatchers, argument decoders and
 * reply encoders all see hostile input.  Any reply produced must itself be
 * a well-formed frame that the client decoder accepts.
 */
#include <stdlib.h>
#include <string.h>

#include "Hello.h"
#include "PushAPI.h"
#include "rpc/trpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static jce_str_t dup_str(jce_call_t *call, jce_str_t s) {
    char *p = jce_arena_alloc(call->arena, s.len ? s.len : 1);
    if (!p) return (jce_str_t){"", 0};
    if (s.len) memcpy(p, s.data, s.len);
    return (jce_str_t){p, s.len};
}

static int32_t push_single(jce_call_t *call,
                           const herald_PushSingleDeviceReq *req,
                           herald_PushSingleDeviceRsp *rsp) {
    rsp->msgId = dup_str(call, req->deviceId);
    rsp->state = req->msg.needAck ? 1 : 2;
    return 0;
}

static int32_t push_multi(jce_call_t *call,
                          const herald_PushMultiDeviceReq *req,
                          herald_PushMultiDeviceRsp *rsp) {
    uint32_t n = req->deviceIds.n;
    rsp->msgId = dup_str(call, req->msg.requestId);
    rsp->online = (int32_t)n;
    /* echo every id as rejected: exercises map encoding of hostile keys */
    rsp->rejected.keys =
        jce_arena_alloc(call->arena, (n ? n : 1) * sizeof(jce_str_t));
    rsp->rejected.vals =
        jce_arena_alloc(call->arena, (n ? n : 1) * sizeof(int32_t));
    if (!rsp->rejected.keys || !rsp->rejected.vals) return JCE_RPC_UNKNOWN_ERR;
    for (uint32_t i = 0; i < n; i++) {
        rsp->rejected.keys[i] = req->deviceIds.items[i];
        rsp->rejected.vals[i] = (int32_t)i;
    }
    rsp->rejected.n = n;
    return 0;
}

static int32_t push_all_online(jce_call_t *call,
                               const herald_PushAllOnlineDeviceReq *req,
                               herald_PushAllOnlineDeviceRsp *rsp) {
    rsp->msgId = dup_str(call, req->msg.collapseKey);
    rsp->targeted = req->msg.payload.len;
    return 0;
}

static int32_t push_all(jce_call_t *call, const herald_PushAllDeviceReq *req,
                        herald_PushAllDeviceRsp *rsp) {
    rsp->msgId = dup_str(call, req->apiKey);
    rsp->online = req->msg.ttl;
    return 0;
}

static const herald_PushAPI_impl push_impl = {
    .pushSingleDevice = push_single,
    .pushMultiDevice = push_multi,
    .pushAllOnlineDevice = push_all_online,
    .pushAllDevice = push_all,
};

static int32_t hello_test(jce_call_t *call, int32_t id, jce_str_t s,
                          jce_str_t *r, Test_Pair *p) {
    *r = dup_str(call, s);
    p->a = id;
    p->b = *r;
    return id;
}

static const Test_Hello_impl hello_impl = {.testHello = hello_test};

static trpc_server_t *server(void) {
    static trpc_server_t *srv;
    if (!srv) {
        srv = trpc_server_new();
        if (!srv ||
            trpc_server_add(srv, "herald.PushServer.PushAPIObj",
                            &herald_PushAPI_interface, &push_impl) < 0 ||
            trpc_server_add(srv, "Test.HelloServer.HelloObj",
                            &Test_Hello_interface, &hello_impl) < 0)
            abort();
    }
    return srv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    trpc_server_t *srv = server();
    static jce_arena_t *arena;
    if (!arena && !(arena = jce_arena_new(0))) abort();
    jce_out_t reply;
    jce_out_init(&reply, JCE_POLICY_CPP);
    size_t off = 0;
    for (;;) {
        uint32_t flen = 0;
        int st = trpc_frame_check(data + off, size - off, 1u << 20, &flen);
        if (st <= 0) break;
        if (trpc_server_handle(srv, data + off, flen, NULL, &reply) < 0) break;
        if (reply.len > 0) {
            trpc_response_t r;
            uint32_t rlen = 0;
            jce_arena_reset(arena);
            if (trpc_frame_check(reply.buf, reply.len, UINT32_MAX, &rlen) !=
                    1 ||
                rlen != reply.len ||
                trpc_response_decode(reply.buf, reply.len, arena, &r) != 0)
                abort(); /* we produced a frame our own client rejects */
        }
        off += flen;
    }
    jce_out_free(&reply);
    return 0;
}
