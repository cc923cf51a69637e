/*
 * b64: base64 in the two alphabets herald speaks (RFC 4648).
 *
 *   standard (§4, "+/", padded with '=')  — JSON bytes fields, the
 *     WebSocket handshake (Sec-WebSocket-Key / -Accept);
 *   base64url (§5, "-_", unpadded)        — device token signatures.
 *
 * Decoders are strict, because both uses are security relevant or
 * byte-exact: only the alphabet's characters, no whitespace, padding exactly
 * as the variant demands, and the unused low bits of the last character must
 * be zero, so every byte string has one and only one accepted encoding.
 * Nothing allocates; outputs go into caller buffers sized with the macros.
 */
#ifndef HERALD_B64_H
#define HERALD_B64_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Errors are the B64_ERR_* codes of herald_err (core/err.h). */

/* Encoded lengths, without the terminating NUL the encoders also write. */
#define B64_ENC_LEN(n) ((((size_t)(n) + 2) / 3) * 4)
#define B64URL_ENC_LEN(n) (((size_t)(n)*4 + 2) / 3)
/* Upper bound of decoded bytes for n input characters (either variant). */
#define B64_DEC_MAX(n) (((size_t)(n) + 3) / 4 * 3)

/* Writes B64_ENC_LEN(n) characters and a NUL into out; returns the length. */
size_t b64_encode(char *out, const uint8_t *in, size_t n);
/* Writes B64URL_ENC_LEN(n) characters and a NUL into out; returns the length. */
size_t b64url_encode(char *out, const uint8_t *in, size_t n);

/* Decode into out (cap bytes); *out_len = bytes written.  0 or b64_err. */
int b64_decode(uint8_t *out, size_t cap, const char *in, size_t n,
               size_t *out_len);
int b64url_decode(uint8_t *out, size_t cap, const char *in, size_t n,
                  size_t *out_len);

#endif
