/*
 * jce_interop: the C side of the codec interop test (tests/interop/).
 *
 * A line protocol on stdin/stdout so that one long-lived process serves
 * thousands of checks from node:
 *
 *   dec TYPE HEX        decode HEX as TYPE, re-encode with the JS policy
 *                       -> "ok HEX" | "err CODE POS"
 *   enc TYPE HEX        decode HEX, re-encode with the CPP policy
 *   json TYPE JSON      from_json, encode with the CPP policy -> "ok HEX"
 *   jsonjs TYPE JSON    from_json, encode with the JS policy
 *   tojson TYPE HEX     decode, to_json (compact) -> "ok JSON"
 *   types               -> "ok NAME NAME ..." (every struct C knows)
 *
 * TYPE is the full IDL name ("herald.PushMessage").  Every decode is also
 * checked by a second round trip: the re-encoded bytes must decode to a
 * value the generated _equal finds equal to the first, so _equal and
 * _encode are exercised against each other on every line.
 *
 * The generated headers are included only when they exist, so this tool
 * keeps building while the contract files are still being written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jce/jce.h"
#include "jce/jce_type.h"

#if __has_include("PushAPI.h")
#include "PushAPI.h"
#define HAVE_PUSHAPI 1
#endif
#if __has_include("Protocol.h")
#include "Protocol.h"
#define HAVE_PROTOCOL 1
#endif
#if __has_include("RequestF.h")
#include "RequestF.h"
#define HAVE_REQUESTF 1
#endif
#if __has_include("Hello.h")
#include "Hello.h"
#define HAVE_HELLO 1
#endif
#if __has_include("InteropTest.h")
#include "InteropTest.h"
#define HAVE_INTEROPTEST 1
#endif

static const jce_type_info_t *const *const tables[] = {
#ifdef HAVE_PUSHAPI
    PushAPI_types,
#endif
#ifdef HAVE_PROTOCOL
    Protocol_types,
#endif
#ifdef HAVE_REQUESTF
    RequestF_types,
#endif
#ifdef HAVE_HELLO
    Hello_types,
#endif
#ifdef HAVE_INTEROPTEST
    InteropTest_types,
#endif
    NULL,
};

/* Upper bound on one decoded value's arena use; far above any test value,
 * low enough that a runaway decode is reported rather than swapping. */
#define ARENA_LIMIT (256u << 20)

static const jce_type_info_t *find_type(const char *name) {
    for (size_t t = 0; tables[t]; t++)
        for (size_t i = 0; tables[t][i]; i++)
            if (!strcmp(tables[t][i]->name, name)) return tables[t][i];
    return NULL;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes hex in place (the output is never longer than the input). */
static int unhex(char *s, size_t *len) {
    size_t n = strlen(s);
    if (n % 2) return -1;
    uint8_t *out = (uint8_t *)s;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval((unsigned char)s[i]),
            lo = hexval((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return 0;
}

static void print_hex(const uint8_t *p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    fputs("ok ", stdout);
    for (size_t i = 0; i < n; i++) {
        putchar(digits[p[i] >> 4]);
        putchar(digits[p[i] & 15]);
    }
    putchar('\n');
}

/* One command's working state: the value, a second value for the round
 * trip check, the arena both decode into, and the encoder. */
struct work {
    const jce_type_info_t *t;
    void *v;
    void *v2;
    jce_arena_t *arena;
    jce_out_t out;
};

static int work_open(struct work *w, const char *type) {
    memset(w, 0, sizeof *w);
    w->t = find_type(type);
    if (!w->t) {
        printf("err unknown-type %s\n", type);
        return -1;
    }
    w->v = calloc(1, w->t->size);
    w->v2 = calloc(1, w->t->size);
    w->arena = jce_arena_new(ARENA_LIMIT);
    if (!w->v || !w->v2 || !w->arena) {
        printf("err %d 0\n", JCE_ERR_NOMEM);
        return -1;
    }
    jce_out_init(&w->out, JCE_POLICY_CPP);
    return 0;
}

static void work_close(struct work *w) {
    free(w->v);
    free(w->v2);
    if (w->arena) jce_arena_free(w->arena);
    jce_out_free(&w->out);
}

static int decode_into(struct work *w, void *v, const uint8_t *p, size_t n) {
    jce_in_t in;
    jce_in_init(&in, p, n, w->arena);
    int rc = w->t->decode(v, &in);
    if (rc >= 0 && in.err) rc = in.err;
    if (rc < 0) {
        printf("err %d %zu\n", rc, in.err_pos);
        return -1;
    }
    return 0;
}

static int encode_with(struct work *w, const void *v, int policy) {
    jce_out_reset(&w->out);
    w->out.policy = policy;
    w->t->encode(v, &w->out);
    if (w->out.err) {
        printf("err %d encode\n", w->out.err);
        return -1;
    }
    return 0;
}

/* Encodes w->v with policy and checks the bytes by a second round trip
 * before printing them.  JS policy writes every field, so the value must
 * come back _equal.  The C++ policy may drop an optional float within
 * epsilon of its default (as tars2cpp does), so there the check is that
 * encoding the decoded value gives the same bytes again. */
static void encode_checked(struct work *w, int policy) {
    if (encode_with(w, w->v, policy) < 0) return;
    size_t n;
    uint8_t *first = jce_out_take(&w->out, &n);
    if (!first) {
        printf("err %d take\n", JCE_ERR_NOMEM);
        return;
    }
    if (decode_into(w, w->v2, first, n) < 0) {
        /* decode_into has printed the error */
    } else if (policy == JCE_POLICY_JS) {
        if (w->t->equal(w->v, w->v2))
            print_hex(first, n);
        else
            printf("err not-equal-after-roundtrip\n");
    } else if (encode_with(w, w->v2, policy) == 0) {
        if (w->out.len == n && (n == 0 || memcmp(w->out.buf, first, n) == 0))
            print_hex(first, n);
        else
            printf("err bytes-differ-after-roundtrip\n");
    }
    free(first);
}

static void cmd_dec(const char *type, char *hex, int policy) {
    struct work w;
    size_t n;
    if (work_open(&w, type) == 0) {
        if (unhex(hex, &n) < 0)
            printf("err bad-hex\n");
        else if (decode_into(&w, w.v, (const uint8_t *)hex, n) == 0)
            encode_checked(&w, policy);
    }
    work_close(&w);
}

static void cmd_json(const char *type, const char *text, int policy) {
    struct work w;
    if (work_open(&w, type) == 0) {
        json_error_t jerr;
        json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
        if (!j) {
            printf("err bad-json %s\n", jerr.text);
        } else {
            w.t->init(w.v);
            int rc = w.t->from_json(w.v, j, w.arena);
            if (rc < 0)
                printf("err %d 0\n", rc);
            else
                encode_checked(&w, policy);
            json_decref(j);
        }
    }
    work_close(&w);
}

static void cmd_tojson(const char *type, char *hex) {
    struct work w;
    size_t n;
    if (work_open(&w, type) == 0) {
        if (unhex(hex, &n) < 0) {
            printf("err bad-hex\n");
        } else if (decode_into(&w, w.v, (const uint8_t *)hex, n) == 0) {
            json_t *j = w.t->to_json(w.v);
            char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            if (s)
                printf("ok %s\n", s);
            else
                printf("err %d to_json\n", JCE_ERR_NOMEM);
            free(s);
            json_decref(j);
        }
    }
    work_close(&w);
}

static void cmd_types(void) {
    fputs("ok", stdout);
    for (size_t t = 0; tables[t]; t++)
        for (size_t i = 0; tables[t][i]; i++) printf(" %s", tables[t][i]->name);
    putchar('\n');
}

/* Splits "CMD TYPE REST" in place; REST may contain spaces (JSON). */
static void run_line(char *line) {
    char *cmd = line, *type = NULL, *rest = NULL;
    char *sp = strchr(cmd, ' ');
    if (sp) {
        *sp = '\0';
        type = sp + 1;
        sp = strchr(type, ' ');
        if (sp) {
            *sp = '\0';
            rest = sp + 1;
        }
    }
    if (!strcmp(cmd, "types"))
        cmd_types();
    else if (!type || !rest)
        printf("err usage\n");
    else if (!strcmp(cmd, "dec"))
        cmd_dec(type, rest, JCE_POLICY_JS);
    else if (!strcmp(cmd, "enc"))
        cmd_dec(type, rest, JCE_POLICY_CPP);
    else if (!strcmp(cmd, "json"))
        cmd_json(type, rest, JCE_POLICY_CPP);
    else if (!strcmp(cmd, "jsonjs"))
        cmd_json(type, rest, JCE_POLICY_JS);
    else if (!strcmp(cmd, "tojson"))
        cmd_tojson(type, rest);
    else
        printf("err unknown-command %s\n", cmd);
}

int main(void) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n > 0)
            run_line(line);
        else
            printf("err empty\n");
        if (fflush(stdout) != 0) break;
    }
    free(line);
    return ferror(stdin) ? 1 : 0;
}
