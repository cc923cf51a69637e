/*
 * yyb: preface and frame reader, frame writer (see yyb.h).
 */
#include "gateway/yyb.h"

#include <string.h>

void yyb_reader_init(yyb_reader_t *r, bool with_preface) {
    memset(r, 0, sizeof *r);
    r->max_frame = YYB_FRAME_MAX;
    if (!with_preface) {
        r->pre = YYB_PREFACE_LEN;
        r->version = YYB_VERSION;
    }
}

static int fail(yyb_reader_t *r, int err) {
    r->err = (int8_t)err;
    return err;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Eats preface bytes; the magic is checked byte by byte so a stranger
 * speaking another protocol is refused at its first wrong byte. */
static int eat_preface(yyb_reader_t *r, const uint8_t *buf, size_t len,
                       size_t *used) {
    size_t i = 0;
    while (i < len && r->pre < YYB_PREFACE_LEN) {
        uint8_t c = buf[i++];
        if (r->pre < 3) {
            if (c != (uint8_t)YYB_MAGIC[r->pre]) {
                *used = i;
                return fail(r, YYB_ERR_BAD_PREFACE);
            }
        } else {
            r->version = r->version << 8 | c;
        }
        r->pre++;
    }
    *used = i;
    if (r->pre == YYB_PREFACE_LEN &&
        (r->version < YYB_VERSION_MIN || r->version > YYB_VERSION))
        return fail(r, YYB_ERR_BAD_VERSION);
    return YYB_AGAIN;
}

int yyb_feed(yyb_reader_t *r, const uint8_t *buf, size_t len, size_t *consumed,
             yyb_frame_t *f) {
    *consumed = 0;
    f->need = 0;
    if (r->err) return r->err;
    if (r->pre < YYB_PREFACE_LEN) {
        int rc = eat_preface(r, buf, len, consumed);
        if (rc < 0 || r->pre < YYB_PREFACE_LEN) return rc;
        buf += *consumed;
        len -= *consumed;
    }
    if (len < 4) {
        f->need = 4;
        return YYB_AGAIN;
    }
    uint32_t flen = be32(buf);
    if (flen < YYB_FRAME_MIN) return fail(r, YYB_ERR_TOO_SHORT);
    if (flen > r->max_frame) return fail(r, YYB_ERR_TOO_LARGE);
    if (len < flen) {
        f->need = flen;
        return YYB_AGAIN;
    }
    f->data = buf + 4;
    f->len = flen - 4;
    *consumed += flen;
    return YYB_FRAME;
}

int yyb_err_code(int err) {
    switch (err) {
    case YYB_ERR_BAD_PREFACE: return herald_ERR_BAD_PREFACE;
    case YYB_ERR_BAD_VERSION: return herald_ERR_BAD_VERSION;
    case YYB_ERR_TOO_LARGE: return herald_ERR_FRAME_TOO_LARGE;
    }
    /* A length under 5 cannot hold a Package. */
    return herald_ERR_BAD_PACKAGE;
}

const char *yyb_strerror(int err) {
    switch (err) {
    case YYB_FRAME: return "frame";
    case YYB_AGAIN: return "incomplete";
    case YYB_ERR_BAD_PREFACE: return "bad preface (expected \"YYB\")";
    case YYB_ERR_BAD_VERSION: return "unsupported protocol version";
    case YYB_ERR_TOO_LARGE: return "frame too large";
    case YYB_ERR_TOO_SHORT: return "frame length under 5";
    }
    return "unknown yyb error";
}

void yyb_preface(uint8_t out[YYB_PREFACE_LEN], uint32_t version) {
    memcpy(out, YYB_MAGIC, 3);
    out[3] = (uint8_t)(version >> 24);
    out[4] = (uint8_t)(version >> 16);
    out[5] = (uint8_t)(version >> 8);
    out[6] = (uint8_t)version;
}

size_t yyb_frame_begin(jce_out_t *o) { return jce_out_reserve(o, 4); }

void yyb_frame_end(jce_out_t *o, size_t start) {
    if (o->err || start == SIZE_MAX || start + 4 > o->len) {
        if (!o->err) o->err = JCE_ERR_LIMIT;
        return;
    }
    size_t n = o->len - start;
    if (n > UINT32_MAX) {
        o->err = JCE_ERR_LIMIT;
        return;
    }
    uint8_t *p = o->buf + start;
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
}

void yyb_encode_frame(jce_out_t *o, const herald_Package *p) {
    size_t start = yyb_frame_begin(o);
    herald_Package_encode(p, o);
    yyb_frame_end(o, start);
}

int yyb_decode_package(const yyb_frame_t *f, jce_arena_t *arena,
                       herald_Package *p, size_t *err_pos) {
    jce_in_t in;
    jce_in_init(&in, f->data, f->len, arena);
    int rc = herald_Package_decode(p, &in);
    /* The decoder stops after the last field it knows.  What follows must
     * still be well-formed fields (newer peers may add higher tags), not
     * garbage or a stray StructEnd that would have cut the scan short. */
    while (rc >= 0 && !in.err && in.p < in.end) {
        unsigned tag, type;
        size_t hl;
        rc = jce_peek_head(&in, &tag, &type, &hl);
        if (rc < 0) {
            rc = jce_in_fail(&in, rc);
            break;
        }
        if (type == JCE_STRUCT_END) {
            rc = jce_in_fail(&in, JCE_ERR_BAD_VALUE);
            break;
        }
        in.p += hl;
        rc = jce_skip_field(&in, type);
    }
    if (rc >= 0 && in.err) rc = in.err;
    if (rc < 0 && err_pos) *err_pos = in.err_pos;
    return rc < 0 ? rc : 0;
}
