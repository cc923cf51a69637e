/*
 * JSON reading benchmark: the two JSON inputs herald takes from outside,
 * read the way herald reads them and, for comparison, through jansson.
 *
 *   push body     the 120-byte body push_load sends to POST
 *                 /v1/push/device, into HttpPushBody (and through jansson:
 *                 json_loadb + the eight lookups the API makes);
 *   device cmd    a WebSocket text heartbeat, its head (cmd, reqId) and
 *                 then its HeartbeatReq (jansson: json_loadb + the tree's
 *                 from_json path, as the gateway did before).
 *
 * Each case is a noinline function, so `valgrind --tool=callgrind` counts
 * it alone (instructions per call = inclusive Ir / iterations; stable on a
 * noisy VM); without valgrind it prints ns/op.
 *
 *   bench_json [iterations]      (default 200000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "Protocol.h"
#include "PushAPI.h"
#include "jce/jce_json.h"

static const char BODY[] =
    "{\"deviceId\":\"bench123\",\"payload\":\"#L1.123.45.6789012345#"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"ttl\":86400}";
static const char CMD[] =
    "{\"cmd\":\"heartbeat\",\"reqId\":7,\"interval\":120}";
static const char *const keys[] = {"deviceId",    "ttl",          "needAck",
                                   "requestId",   "payload",      "payloadB64",
                                   "collapseKey", "unknownDevice"};
static volatile size_t sink;
static jce_arena_t *arena;

__attribute__((noinline)) static void body_reader(void) {
    herald_HttpPushBody b;
    jce_json_res_t res;
    if (herald_HttpPushBody_from_json_text(&b, BODY, sizeof BODY - 1, arena,
                                           &res))
        abort();
    sink += b.deviceId.len + b.payload.len + (size_t)b.ttl;
    jce_arena_reset(arena);
}

__attribute__((noinline)) static void body_jansson(void) {
    json_error_t e;
    json_t *j =
        json_loadb(BODY, sizeof BODY - 1,
                   JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &e);
    if (!j) abort();
    for (int k = 0; k < 8; k++) sink += json_object_get(j, keys[k]) != NULL;
    json_decref(j);
}

typedef struct head {
    jce_str_t cmd;
    int64_t req_id;
} head_t;
static void head_init(void *v) { memset(v, 0, sizeof(head_t)); }
static const jce_json_field_t head_fields[] = {
    {"cmd", 3, offsetof(head_t, cmd), false, &jce_json_string},
    {"reqId", 5, offsetof(head_t, req_id), false, &jce_json_int64},
};
static const jce_json_type_t head_type = {
    JCE_JSON_STRUCT, sizeof(head_t), NULL, NULL, head_init, head_fields, 2};

__attribute__((noinline)) static void cmd_reader(void) {
    head_t h;
    jce_json_res_t res;
    if (jce_json_decode(&head_type, &h, CMD, sizeof CMD - 1, arena, 0, &res))
        abort();
    herald_HeartbeatReq q;
    if (herald_HeartbeatReq_from_json_text(&q, CMD, sizeof CMD - 1, arena,
                                           &res))
        abort();
    sink += (size_t)q.interval + h.cmd.len;
    jce_arena_reset(arena);
}

__attribute__((noinline)) static void cmd_jansson(void) {
    json_error_t e;
    json_t *j = json_loadb(CMD, sizeof CMD - 1, 0, &e);
    if (!j) abort();
    sink += json_string_value(json_object_get(j, "cmd")) != NULL;
    sink += (size_t)json_integer_value(json_object_get(j, "reqId"));
    sink += (size_t)json_integer_value(json_object_get(j, "interval"));
    json_decref(j);
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void run(const char *name, void (*fn)(void), int n) {
    double t0 = now_ns();
    for (int i = 0; i < n; i++) fn();
    printf("%-22s %8.1f ns/op\n", name, (now_ns() - t0) / n);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 200000;
    if (n <= 0 || !(arena = jce_arena_new(0))) return 2;
    run("push body: reader", body_reader, n);
    run("push body: jansson", body_jansson, n);
    run("device cmd: reader", cmd_reader, n);
    run("device cmd: jansson", cmd_jansson, n);
    jce_arena_free(arena);
    return 0;
}
