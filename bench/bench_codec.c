/*
 * Codec benchmark: encode and decode of the two hottest messages.
 *
 *   push frame   a device frame carrying CMD_PUSH: u32be length + Package
 *                whose body is a PushBatch of one PushMsg (msgId, seq,
 *                100-byte payload, sentAt, needAck) — what the gateway
 *                writes for every delivery;
 *   api request  a PushSingleDeviceReq as the push service receives it.
 *
 * Encoding reuses one output buffer, decoding one arena (reset per
 * message), as the gateway does.  Prints ns/op and MB/s of encoded bytes.
 *
 *   bench_codec [iterations]      (default 2000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "Protocol.h"
#include "PushAPI.h"
#include "jce/jce.h"

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint8_t payload[100];
static volatile uint64_t sink; /* keeps results alive past the optimiser */

static void make_push(herald_PushMsg *m) {
    herald_PushMsg_init(m);
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 37 + 11);
    m->msgId = JCE_STR_LIT("m-20261124-000001-7f3a9c");
    m->seq = 123456789;
    m->payload = (jce_bytes_t){payload, sizeof payload};
    m->needAck = true;
    m->sentAt = 1764000000000LL;
}

/* The gateway's write path: body first, then the Package around it. */
static void encode_push(const herald_PushBatch *batch, jce_out_t *body,
                        jce_out_t *frame) {
    herald_Package pkg;
    herald_Package_init(&pkg);
    jce_out_reset(body);
    herald_PushBatch_encode(batch, body);
    pkg.cmd = herald_CMD_PUSH;
    pkg.body = (jce_bytes_t){body->buf, (uint32_t)body->len};
    jce_out_reset(frame);
    size_t off = jce_out_reserve(frame, 4);
    herald_Package_encode(&pkg, frame);
    if (frame->err || off != 0) {
        fprintf(stderr, "encode failed: %s\n", herald_strerror(frame->err));
        exit(1);
    }
    uint32_t n = (uint32_t)frame->len;
    frame->buf[0] = (uint8_t)(n >> 24);
    frame->buf[1] = (uint8_t)(n >> 16);
    frame->buf[2] = (uint8_t)(n >> 8);
    frame->buf[3] = (uint8_t)n;
}

/* The device's (and the tests') read path. */
static int decode_push(const uint8_t *frame, size_t len, jce_arena_t *a,
                       herald_PushBatch *batch) {
    herald_Package pkg;
    jce_in_t in;
    jce_arena_reset(a);
    jce_in_init(&in, frame + 4, len - 4, a);
    int r = herald_Package_decode(&pkg, &in);
    if (r < 0) return r;
    jce_in_init(&in, pkg.body.data, pkg.body.len, a);
    return herald_PushBatch_decode(batch, &in);
}

static void report(const char *what, size_t bytes, long iters, double ns) {
    double per = ns / (double)iters;
    printf("%-22s %4zu bytes  %8.1f ns/op  %8.1f MB/s\n", what, bytes, per,
           (double)bytes * 1e3 / per);
}

static void bench_push(long iters) {
    herald_PushMsg msg;
    herald_PushBatch batch;
    make_push(&msg);
    herald_PushBatch_init(&batch);
    batch.msgs = (jcev_herald_PushMsg){&msg, 1};
    jce_out_t body, frame;
    jce_out_init(&body, JCE_POLICY_CPP);
    jce_out_init(&frame, JCE_POLICY_CPP);
    jce_arena_t *a = jce_arena_new(0);

    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        msg.seq = 123456789 + i;
        encode_push(&batch, &body, &frame);
        sink += frame.len;
    }
    double t1 = now_ns();
    report("push frame encode", frame.len, iters, t1 - t0);

    herald_PushBatch out;
    t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        if (decode_push(frame.buf, frame.len, a, &out) < 0 || out.msgs.n != 1) {
            fprintf(stderr, "decode failed\n");
            exit(1);
        }
        sink += (uint64_t)out.msgs.items[0].seq;
    }
    t1 = now_ns();
    report("push frame decode", frame.len, iters, t1 - t0);
    if (!herald_PushMsg_equal(&out.msgs.items[0], &msg)) {
        fprintf(stderr, "round trip mismatch\n");
        exit(1);
    }
    jce_out_free(&body);
    jce_out_free(&frame);
    jce_arena_free(a);
}

static void bench_api(long iters) {
    herald_PushSingleDeviceReq req, out;
    herald_PushSingleDeviceReq_init(&req);
    req.apiKey = JCE_STR_LIT("ak_live_3f9d2c41b7e84a0f9c1d");
    req.deviceId = JCE_STR_LIT("dev-8a41c0e2-5b7d-4f1e-9a3c");
    req.msg.requestId = JCE_STR_LIT("req-000001");
    req.msg.payload = (jce_bytes_t){payload, sizeof payload};
    req.msg.collapseKey = JCE_STR_LIT("news");
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_CPP);
    jce_arena_t *a = jce_arena_new(0);

    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        req.msg.ttl = (int32_t)(3600 + (i & 1023));
        jce_out_reset(&o);
        herald_PushSingleDeviceReq_encode(&req, &o);
        sink += o.len;
    }
    double t1 = now_ns();
    if (o.err) {
        fprintf(stderr, "encode failed\n");
        exit(1);
    }
    report("api request encode", o.len, iters, t1 - t0);

    t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        jce_in_t in;
        jce_arena_reset(a);
        jce_in_init(&in, o.buf, o.len, a);
        if (herald_PushSingleDeviceReq_decode(&out, &in) < 0) {
            fprintf(stderr, "decode failed\n");
            exit(1);
        }
        sink += out.msg.payload.len;
    }
    t1 = now_ns();
    report("api request decode", o.len, iters, t1 - t0);
    if (!herald_PushSingleDeviceReq_equal(&out, &req)) {
        fprintf(stderr, "round trip mismatch\n");
        exit(1);
    }
    jce_out_free(&o);
    jce_arena_free(a);
}

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 2000000;
    if (iters <= 0) iters = 1;
    printf("bench_codec: %ld iterations each\n", iters);
    bench_push(iters);
    bench_api(iters);
    return 0;
}
