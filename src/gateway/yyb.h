/*
 * yyb: framing of the raw TCP device protocol (DESIGN.md §3,
 * docs/protocol.md), without sockets.
 *
 *   connection = preface frame*
 *   preface    = "YYB" u32be(version)          (7 bytes; version 1 today)
 *   frame      = u32be(length) package          (length counts its own 4
 *                                                bytes, as TARS does; >= 5)
 *   package    = one JCE-encoded herald_Package (protocol/Protocol.jce)
 *
 * The reader is a few bytes of per-connection state.  It eats the preface
 * byte by byte (so a preface split over reads costs nothing to keep), then
 * yields whole frames pointing into the caller's buffer — zero copy.  When
 * the buffer ends inside a frame it consumes nothing of that frame and
 * says how many bytes the frame needs, so the caller keeps just that one
 * partial frame (bounded by max_frame) and no buffer at all between frames.
 * Errors are sticky and map to the protocol's error codes (yyb_err_code).
 */
#ifndef HERALD_YYB_H
#define HERALD_YYB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "Protocol.h" /* generated from protocol/Protocol.jce */
#include "jce/jce.h"

#define YYB_MAGIC "YYB"
#define YYB_PREFACE_LEN 7
#define YYB_VERSION herald_PROTOCOL_VERSION /* the version this build speaks */
#define YYB_VERSION_MIN 1                   /* oldest version accepted */
#define YYB_FRAME_MIN 5            /* length prefix + at least one byte */
#define YYB_FRAME_MAX (64u * 1024) /* default max_frame, prefix included */

enum yyb_rc {
    YYB_FRAME = 1,
    YYB_AGAIN = 0,
    YYB_ERR_BAD_PREFACE = -1, /* magic is not "YYB" */
    YYB_ERR_BAD_VERSION = -2, /* version outside VERSION_MIN..VERSION */
    YYB_ERR_TOO_LARGE = -3,   /* frame length over max_frame */
    YYB_ERR_TOO_SHORT = -4,   /* frame length under YYB_FRAME_MIN */
};

typedef struct yyb_reader {
    uint32_t max_frame; /* set by init; may be changed between frames */
    uint32_t version;   /* the peer's version, once the preface is read */
    uint8_t pre;        /* preface bytes read; YYB_PREFACE_LEN when done */
    int8_t err;         /* sticky error */
    uint8_t pad_[2];
} yyb_reader_t;

typedef struct yyb_frame {
    const uint8_t *data; /* the package, after the length prefix */
    uint32_t len;        /* package bytes (frame length - 4) */
    /* YYB_AGAIN only: bytes needed after the *consumed ones (the whole
     * frame once its length is known, else 4; 0 = preface pending). */
    size_t need;
} yyb_frame_t;

/* with_preface = false starts directly at frames (e.g. a client reading a
 * server that sends no preface, or a body whose preface was checked). */
void yyb_reader_init(yyb_reader_t *r, bool with_preface);

/* Reads from buf[0..len): the rest of the preface, then at most one frame.
 * YYB_FRAME: *f is the frame; YYB_AGAIN: need more bytes; or a negative
 * yyb_rc.  *consumed is how many bytes of buf were used in either case
 * (preface bytes and at most one frame); the caller keeps the rest. */
int yyb_feed(yyb_reader_t *r, const uint8_t *buf, size_t len, size_t *consumed,
             yyb_frame_t *f);

/* Protocol error code (herald_ErrCode) for a yyb_rc error:
 * herald_ERR_BAD_PREFACE, _BAD_VERSION, _FRAME_TOO_LARGE, _BAD_PACKAGE. */
int yyb_err_code(int err);
const char *yyb_strerror(int err);

void yyb_preface(uint8_t out[YYB_PREFACE_LEN], uint32_t version);

/* Framing on a jce_out_t: begin reserves the length prefix and returns its
 * offset; end patches it once the package is written (sets o->err to
 * JCE_ERR_LIMIT if the frame exceeds 4 GiB).  For callers that encode
 * something other than a herald_Package, or several frames into one
 * buffer. */
size_t yyb_frame_begin(jce_out_t *o);
void yyb_frame_end(jce_out_t *o, size_t start);

/* Appends one whole frame holding p, encoded under o->policy. */
void yyb_encode_frame(jce_out_t *o, const herald_Package *p);
/* Decodes a frame's package.  p->body points into the frame (zero copy);
 * arena takes what cannot (may be NULL for well-formed input, which never
 * needs it).  0 or a negative jce_err; *err_pos gets the offset in the
 * package where decoding failed (may be NULL). */
int yyb_decode_package(const yyb_frame_t *f, jce_arena_t *arena,
                       herald_Package *p, size_t *err_pos);

#endif
