/*
 * push_gw.c: the sink that hands pushes to the in-process gateway.  Apart
 * from push.c so that only binaries that start a real service link gw.
 */
#include "push/push_int.h"

static int gw_sink_device(void *ctx, const char *app, const char *device,
                          const gw_msg_t *m) {
    return gw_push_device(ctx, app, device, m);
}

static long gw_sink_online(void *ctx, const char *app, const gw_msg_t *m) {
    return gw_push_online(ctx, app, m);
}

static int gw_sink_revoke(void *ctx, const char *app, const char *device,
                          int64_t before_s) {
    return gw_revoke_device(ctx, app, device, before_s);
}

static int gw_sink_mark(void *ctx, const char *app, const char *device,
                        uint64_t token) {
    return gw_push_mark(ctx, app, device, token);
}

static void gw_sink_answer(void *ctx, uint64_t token, const gw_msg_t *msgs,
                           uint32_t n, bool more) {
    gw_sync_answer(ctx, token, msgs, n, more);
}

int push_service_start(push_service_t *ps, gw_t *gw) {
    push_sink_t s = {.ctx = gw,
                     .device = gw_sink_device,
                     .online = gw_sink_online,
                     .mark = gw_sink_mark,
                     .revoke = gw_sink_revoke,
                     .sync_answer = gw_sink_answer};
    return push_service_start_sink(ps, &s);
}
