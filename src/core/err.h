/*
 * err: herald's one error vocabulary.
 *
 * Every internal call that can fail returns 0 or a negative herald_err, and
 * herald_strerror() names any of them, whichever room it came from.  The
 * models are libuv (UV_E* are negative errno values) and nginx (one NGX_
 * set for every module):
 *
 *  - generic conditions are negative errno values, so a system call's
 *    -errno is already a herald_err and needs no translation;
 *  - each room's own conditions sit in a block of 100 below -1000 (JCE
 *    from -1100, the store from -1700, ...), so a value says where it came
 *    from and no two rooms share a number;
 *  - a room's name for a generic condition is an alias of the generic code
 *    (STORE_E_NOMEM is HERALD_ENOMEM): one condition, one value, one text.
 *
 * Nothing here is a protocol code.  What goes on a wire (the device
 * protocol's ErrCode, PushAPI's PushRet and MsgState, TARS iRet) comes
 * from the IDL (build/gen/<Base>_enums.h) and is chosen only where the
 * answer is written.  A parser's "need more bytes" is HERALD_EAGAIN, the
 * same as a socket's.
 */
#ifndef HERALD_ERR_H
#define HERALD_ERR_H

#include <errno.h>

/* name, value, text: the codes that have a text of their own. */
#define HERALD_ERR_MAP(X)                                                     \
    X(HERALD_OK, 0, "ok")                                                     \
    X(HERALD_EAGAIN, -EAGAIN, "try again")                                    \
    X(HERALD_ENOMEM, -ENOMEM, "out of memory")                                \
    X(HERALD_EINVAL, -EINVAL, "invalid argument")                             \
    X(HERALD_EEXIST, -EEXIST, "already exists")                               \
    X(HERALD_ENOENT, -ENOENT, "not found")                                    \
    X(HERALD_ENOSPC, -ENOSPC, "disk full")                                    \
    X(HERALD_ETIMEDOUT, -ETIMEDOUT, "timed out")                              \
    X(HERALD_EINPROGRESS, -EINPROGRESS, "in progress")                        \
    /* the JCE codec (src/jce) */                                             \
    X(JCE_ERR_TRUNCATED, -1101, "truncated input")                            \
    X(JCE_ERR_TYPE, -1102, "type mismatch") /* wire type not accepted here */ \
    X(JCE_ERR_REQUIRE, -1103, "require field not exist")                      \
    X(JCE_ERR_LIMIT, -1104, "over a limit") /* depth, count, length or size */\
    X(JCE_ERR_BAD_TYPE, -1105, "unknown wire type")                           \
    X(JCE_ERR_BAD_TAG, -1106, "tag above 255") /* encode */                   \
    X(JCE_ERR_NEGATIVE, -1107, "negative count or length")                    \
    X(JCE_ERR_BAD_VALUE, -1108, "malformed value")                            \
    /* the strict JSON reader (jce/jce_json.h): texts for a client */         \
    X(JCE_JSON_E_SYNTAX, -1151, "body is not valid JSON")                     \
    X(JCE_JSON_E_UTF8, -1152, "body is not UTF-8")                            \
    X(JCE_JSON_E_CONTROL, -1153, "body has a control character in a string")  \
    X(JCE_JSON_E_NUL, -1154, "body has \\u0000 in a string")                  \
    X(JCE_JSON_E_NUMBER, -1155, "body has a malformed number")                \
    X(JCE_JSON_E_NUMBER_LONG, -1156, "body has a number over 63 characters")  \
    X(JCE_JSON_E_RANGE, -1157, "body has a number out of range")              \
    X(JCE_JSON_E_DEPTH, -1158, "body is nested over 64 levels")               \
    X(JCE_JSON_E_DUPLICATE, -1159, "body has an object with a key twice")     \
    /* TARS framing and calls (src/rpc) */                                    \
    X(TRPC_ERR_FRAME, -1201, "bad frame length")                              \
    X(TRPC_ERR_DECODE, -1202, "undecodable packet")                           \
    X(TRPC_ERR_EXISTS, -1203, "servant already registered")                   \
    X(TRPC_ERR_IO, -1204, "i/o error") /* errno kept */                       \
    X(TRPC_ERR_CLOSED, -1205, "connection closed") /* before a whole frame */ \
    X(TRPC_ERR_ENCODE, -1206, "encode error")                                 \
    /* device tokens (core/token) */                                          \
    X(TOKEN_ERR_MALFORMED, -1301, "malformed token")                          \
    X(TOKEN_ERR_BAD_SIG, -1302, "bad token signature")                        \
    X(TOKEN_ERR_EXPIRED, -1303, "token expired")                              \
    X(TOKEN_ERR_SPACE, -1304, "token buffer too small")                       \
    X(TOKEN_ERR_CRYPTO, -1305, "crypto library failure")                      \
    /* base64 (core/b64) */                                                   \
    X(B64_ERR_CHAR, -1351, "character outside the base64 alphabet")           \
    X(B64_ERR_LEN, -1352, "impossible base64 length")                         \
    X(B64_ERR_PAD, -1353, "bad base64 padding")                               \
    X(B64_ERR_SPACE, -1354, "base64 output buffer too small")                 \
    /* the store (src/store) */                                               \
    X(STORE_E_IO, -1701, "storage error") /* SQLite failed (logged) */        \
    X(STORE_E_CLOSED, -1702, "store closed") /* closing: request not run */   \
    X(STORE_E_FULL, -1703, "store queue full")                                \
    X(STORE_E_LOCKED, -1704, "database in use by another herald serve")       \
    X(STORE_E_TIMEOUT, -1705, "store did not answer in time")                 \
    X(STORE_E_JOURNAL, -1706, "hot journal damaged or missing")               \
    X(STORE_E_PERM, -1707,                                                    \
      "store file readable by other users (it holds app secrets):"            \
      " chmod 600 it")                                                        \
    /* the metrics registry (ops/metrics) */                                  \
    X(METRICS_E_INVALID, -1901, "invalid metric definition")                  \
    X(METRICS_E_FULL, -1902, "metrics registry full")                         \
    X(METRICS_E_EXISTS, -1903, "metric id already registered")

enum herald_err {
#define HERALD_ERR_ENUM(name, value, text) name = (value),
    HERALD_ERR_MAP(HERALD_ERR_ENUM)
#undef HERALD_ERR_ENUM

    /* A room's name for a generic condition. */
    JCE_OK = HERALD_OK,
    JCE_ERR_NOMEM = HERALD_ENOMEM, /* allocation failed or arena limit */
    JCE_JSON_OK = HERALD_OK,
    JCE_JSON_E_NOMEM = HERALD_ENOMEM,
    TRPC_ERR_NOMEM = HERALD_ENOMEM,
    TRPC_ERR_ARG = HERALD_EINVAL,
    TRPC_ERR_TIMEOUT = HERALD_ETIMEDOUT,
    TOKEN_OK = HERALD_OK,
    B64_OK = HERALD_OK,
    STORE_OK = HERALD_OK,
    STORE_E_NOMEM = HERALD_ENOMEM,
    STORE_E_NOTFOUND = HERALD_ENOENT,
    STORE_E_EXISTS = HERALD_EEXIST,
    STORE_E_INVALID = HERALD_EINVAL,
    STORE_E_NOSPACE = HERALD_ENOSPC,
    METRICS_E_NOMEM = HERALD_ENOMEM,
};

/* A short English text for err (0, a herald_err or any -errno); never
 * NULL, static storage, safe from any thread. */
const char *herald_strerror(int err);

/* The code's C name ("STORE_E_FULL", "HERALD_ENOMEM"; "EPIPE" for other
 * errno values), for logs and tests; never NULL. */
const char *herald_err_name(int err);

#endif
