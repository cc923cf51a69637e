/*
 * libFuzzer target for the WebSocket frame parser (src/gateway/ws.c).
 *
 * The first input byte picks the message limit and a split pattern; the
 * rest is a client byte stream.  It is parsed twice, whole and in pieces
 * the way a connection receives it (keeping only the unconsumed tail), on
 * separate copies because payloads are unmasked in place.  Both runs must
 * agree on every frame (header fields and unmasked bytes) and on the final
 * result; frames must lie inside the given bytes; assembled text messages
 * must be valid UTF-8 by an independent check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAMES 2048

struct result {
    int rc;
    size_t nframes;
    struct {
        uint8_t opcode, msg_op, fin, first;
        uint32_t len;
        uint32_t sum;
        uint16_t close_code;
    } f[MAX_FRAMES];
};

static uint32_t fingerprint(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

/* A plain, non-incremental UTF-8 check written differently from the
 * parser's (decode code points, then range-check them). */
static int utf8_ok(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t c = p[i], cp;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else
            return 0;
        if (i + k >= n) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

static void run(const uint8_t *s, size_t n, uint8_t cfg, size_t step,
                struct result *res, int check_text) {
    uint8_t *pend = malloc(n + 1);
    uint8_t *msg = malloc(n + 1); /* reassembled message */
    size_t have = 0, off = 0, mlen = 0;
    ws_parser_t p;
    ws_parser_init(&p);
    if (cfg & 1) p.max_msg = 100;
    res->nframes = 0;
    res->rc = WS_AGAIN;
    unsigned seed = cfg;
    while (off < n && res->rc >= 0) {
        size_t k = step ? step : 1 + (seed = seed * 1103515245 + 12345) % 17;
        if (k > n - off) k = n - off;
        memcpy(pend + have, s + off, k);
        have += k;
        off += k;
        for (;;) {
            size_t used;
            ws_frame_t f;
            int rc = ws_feed(&p, pend, have, &used, &f);
            if (rc < 0) {
                res->rc = rc;
                break;
            }
            if (rc == WS_AGAIN) {
                if (used || f.need <= have) abort();
                break;
            }
            if (used > have || f.payload < pend ||
                f.payload + f.len > pend + used)
                abort();
            if (f.opcode < WS_OP_CLOSE) {
                if (f.first) mlen = 0;
                memcpy(msg + mlen, f.payload, f.len);
                mlen += f.len;
                if (mlen > p.max_msg) abort();
                if (f.fin && check_text && f.msg_op == WS_OP_TEXT &&
                    !utf8_ok(msg, mlen))
                    abort();
            } else if (f.opcode == WS_OP_CLOSE && f.len >= 2) {
                if (!ws_close_code_valid(f.close_code)) abort();
                if (check_text && !utf8_ok(f.reason, f.reason_len)) abort();
            }
            if (res->nframes < MAX_FRAMES) {
                size_t i = res->nframes;
                res->f[i].opcode = f.opcode;
                res->f[i].msg_op = f.msg_op;
                res->f[i].fin = f.fin;
                res->f[i].first = f.first;
                res->f[i].len = f.len;
                res->f[i].sum = fingerprint(f.payload, f.len);
                res->f[i].close_code = f.close_code;
            }
            res->nframes++;
            memmove(pend, pend + used, have - used);
            have -= used;
        }
    }
    free(msg);
    free(pend);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static struct result whole, split;
    uint8_t cfg = data[0];
    memset(&whole, 0, sizeof whole);
    memset(&split, 0, sizeof split);
    run(data + 1, size - 1, cfg, size, &whole, 1);
    run(data + 1, size - 1, cfg, (cfg >> 4) & 1 ? 1 : 0, &split, 0);
    if (whole.rc != split.rc || whole.nframes != split.nframes ||
        memcmp(&whole, &split, sizeof whole))
        abort();

    /* The encoders: a server header and a close frame must parse back
     * (after masking, as a client would send them). */
    if (size >= 3) {
        uint8_t buf[2 + WS_MAX_CONTROL + 4];
        unsigned code = (unsigned)data[1] << 8 | data[2];
        size_t rl = size - 3 > 200 ? 200 : size - 3;
        size_t n = ws_close_frame(buf, code, (const char *)data + 3, rl);
        if (n > 2 + WS_MAX_CONTROL) abort();
        size_t plen = buf[1] & 0x7F;
        if (plen + 2 != n) abort();
        uint8_t masked[WS_HEADER_MAX + WS_MAX_CONTROL];
        static const uint8_t mk[4] = {1, 2, 3, 4};
        size_t h = ws_frame_header_masked(masked, WS_OP_CLOSE, true, plen, mk);
        memcpy(masked + h, buf + 2, plen);
        ws_mask(masked + h, plen, mk, 0);
        ws_parser_t p;
        ws_parser_init(&p);
        ws_frame_t f;
        size_t used;
        int rc = ws_feed(&p, masked, h + plen, &used, &f);
        int reason_ok = utf8_ok(buf + 4, plen >= 2 ? plen - 2 : 0);
        if (code && ws_close_code_valid(code) && reason_ok &&
            (rc != WS_FRAME || f.close_code != code))
            abort();
    }
    return 0;
}
