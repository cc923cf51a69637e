/*
 * push_body.h: the push API's JSON request body, checked and parsed.
 *
 * Depends only on cJSON and gateway/ws.c's UTF-8 check, so the fuzz target
 * (fuzz/fuzz_push_body.c) links it alone.
 */
#ifndef HERALD_PUSH_BODY_H
#define HERALD_PUSH_BODY_H

#include <stddef.h>

#include <cjson/cJSON.h>

enum push_body_err {
    PB_OK = 0,
    PB_E_SYNTAX = -1,      /* not JSON */
    PB_E_UTF8 = -2,        /* bytes that are not UTF-8 */
    PB_E_CONTROL = -3,     /* a raw control character in a string */
    PB_E_NUL = -4,         /* a \u0000 escape (no NULs in herald's strings) */
    PB_E_NUMBER = -5,      /* a number JSON does not allow (01, +1, 1., .5) */
    PB_E_NUMBER_LONG = -6, /* a number over PB_MAX_NUMBER characters */
    PB_E_RANGE = -7,       /* a number too big for a double */
    PB_E_DEPTH = -8,       /* nested deeper than PB_MAX_DEPTH */
    PB_E_DUPLICATE = -9,   /* an object with a key twice */
    PB_E_NOMEM = -10,
};

#define PB_MAX_DEPTH 64  /* push bodies are two levels deep */
#define PB_MAX_NUMBER 63 /* cJSON's own number buffer holds 63 characters */

/* Parses buf[0..len) (no NUL needed) into *out (the caller's, freed with
 * cJSON_Delete) or returns a push_body_err and leaves *out NULL. */
int push_body_parse(const char *buf, size_t len, cJSON **out);

/* A sentence for the client (the 400 bad_json answer's message). */
const char *push_body_strerror(int err);

#endif
