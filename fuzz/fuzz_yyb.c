/*
 * libFuzzer target for the raw TCP reader (src/gateway/yyb.c).
 *
 * The first input byte picks the reader's start state, max_frame and a
 * split pattern; the rest is the byte stream.  The stream is read twice,
 * whole and in pieces the way a connection receives it (keeping only the
 * unconsumed tail between reads); both must give the same frames and the
 * same final result, every frame must lie inside the bytes given, and
 * every frame is decoded as a herald_Package (and re-encoded when it
 * decodes) to drive the generated decoder with framed input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/yyb.h"
#include "jce/jce.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAMES 4096

struct result {
    int rc;
    size_t nframes;
    uint32_t len[MAX_FRAMES];
    uint32_t sum[MAX_FRAMES]; /* cheap fingerprint of each frame's bytes */
};

static uint32_t fingerprint(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static void check_package(const yyb_frame_t *f, jce_arena_t *a) {
    herald_Package p;
    jce_arena_reset(a);
    if (yyb_decode_package(f, a, &p, NULL) != 0) return;
    jce_out_t o;
    jce_out_init(&o, JCE_POLICY_JS);
    yyb_encode_frame(&o, &p);
    if (!o.err) {
        /* What we write, we must read back as the same package. */
        yyb_reader_t r;
        yyb_reader_init(&r, false);
        r.max_frame = UINT32_MAX;
        yyb_frame_t g;
        size_t used;
        herald_Package q;
        if (yyb_feed(&r, o.buf, o.len, &used, &g) != YYB_FRAME ||
            used != o.len || yyb_decode_package(&g, a, &q, NULL) != 0 ||
            !herald_Package_equal(&p, &q))
            abort();
    }
    jce_out_free(&o);
}

static void run(const uint8_t *s, size_t n, uint8_t cfg, size_t step,
                struct result *res, jce_arena_t *a) {
    uint8_t *pend = malloc(n + 1);
    size_t have = 0, off = 0;
    yyb_reader_t r;
    yyb_reader_init(&r, !(cfg & 1));
    r.max_frame = (cfg & 2) ? 64 : YYB_FRAME_MAX;
    res->nframes = 0;
    res->rc = YYB_AGAIN;
    unsigned seed = cfg;
    while (off < n && res->rc >= 0) {
        size_t k = step ? step : 1 + (seed = seed * 1103515245 + 12345) % 13;
        if (k > n - off) k = n - off;
        memcpy(pend + have, s + off, k);
        have += k;
        off += k;
        for (;;) {
            size_t used;
            yyb_frame_t f;
            int rc = yyb_feed(&r, pend, have, &used, &f);
            if (used > have) abort();
            if (rc < 0) {
                res->rc = rc;
                break;
            }
            if (rc == YYB_FRAME) {
                if (f.data < pend || f.data + f.len > pend + used) abort();
                if (res->nframes < MAX_FRAMES) {
                    res->len[res->nframes] = f.len;
                    res->sum[res->nframes] = fingerprint(f.data, f.len);
                }
                res->nframes++;
                if (a && res->nframes < 64) check_package(&f, a);
            }
            memmove(pend, pend + used, have - used);
            have -= used;
            if (rc == YYB_AGAIN) {
                if (f.need && f.need <= have) abort();
                break;
            }
        }
    }
    free(pend);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static struct result whole, split;
    static jce_arena_t *arena;
    if (!arena) arena = jce_arena_new(1 << 20);
    uint8_t cfg = data[0];
    run(data + 1, size - 1, cfg, size, &whole, arena);
    run(data + 1, size - 1, cfg, (cfg >> 4) & 1 ? 1 : 0, &split, NULL);
    if (whole.rc != split.rc || whole.nframes != split.nframes) abort();
    size_t m = whole.nframes < MAX_FRAMES ? whole.nframes : MAX_FRAMES;
    if (memcmp(whole.len, split.len, m * sizeof whole.len[0]) ||
        memcmp(whole.sum, split.sum, m * sizeof whole.sum[0]))
        abort();
    return 0;
}
