/*
 * jce_rpc: what generated interface code needs from the RPC layer, kept in
 * the JCE runtime so that generated files depend on src/jce only.
 *
 * A generated interface `M::I` yields a struct of function pointers
 * `M_I_impl` (one per operation) and a `const jce_interface_t
 * M_I_interface` whose methods are sorted by name.  The RPC server (src/rpc)
 * finds a method by sFuncName and runs it on a jce_call_t.
 *
 * TUP (iVersion 3) arguments are a UniAttribute: map<string, vector<byte>>
 * at tag 0, each value being one argument encoded at tag 0 (tars-wire §2.3).
 */
#ifndef HERALD_JCE_RPC_H
#define HERALD_JCE_RPC_H

#include "jce/jce.h"

/* TARS framework result codes (tars-wire §2.6). */
enum jce_rpc_ret {
    JCE_RPC_OK = 0,
    JCE_RPC_DECODE_ERR = -1,
    JCE_RPC_ENCODE_ERR = -2,
    JCE_RPC_NO_FUNC = -3,
    JCE_RPC_NO_SERVANT = -4,
    JCE_RPC_OVERLOAD = -9,
    JCE_RPC_UNKNOWN_ERR = -99,
};

enum { JCE_RPC_TARS = 1, JCE_RPC_TUP = 3 };

typedef struct jce_call {
    int version;         /* JCE_RPC_TARS or JCE_RPC_TUP */
    const uint8_t *args; /* the request's sBuffer (borrowed) */
    size_t args_len;
    jce_arena_t *arena; /* lives until the response is encoded */
    jce_out_t *out;     /* the response's sBuffer, written by the method */
    void *ctx;          /* the server's per-call context (borrowed) */
    char desc[128];     /* sResultDesc on framework errors */
    bool deferred;      /* set by jce_call_defer() */
} jce_call_t;

/* Called by an impl that answers after it returns: its return value and
 * out parameters are ignored, and everything the later answer needs must
 * be copied out of the call (args and arena die with it).  The server
 * encodes the answer with the generated M_I_op_reply(). */
static inline void jce_call_defer(jce_call_t *call) { call->deferred = true; }

/* Runs one operation: decodes args, calls the impl, encodes ret and outs.
 * Returns a jce_rpc_ret framework code; JCE_RPC_OK with call->deferred set
 * when the impl answers later (nothing was encoded). */
typedef int (*jce_method_fn)(const void *impl, jce_call_t *call);

typedef struct jce_method {
    const char *name;
    jce_method_fn fn;
} jce_method_t;

typedef struct jce_interface {
    const char *name;            /* "herald.PushAPI" */
    const jce_method_t *methods; /* sorted by name (strcmp) */
    size_t n_methods;
} jce_interface_t;

/* NULL when the interface has no such function. */
const jce_method_t *jce_interface_find(const jce_interface_t *itf,
                                       const char *name, size_t len);

/* ---- UniAttribute (TUP v3) ---- */

typedef struct jce_tup_entry {
    jce_str_t name;
    jce_bytes_t value; /* one value encoded at tag 0 */
} jce_tup_entry_t;

typedef struct jce_tup {
    jce_tup_entry_t *entries; /* from the arena */
    uint32_t n;
} jce_tup_t;

/* Parses an sBuffer holding a UniAttribute; 0 or a negative jce_err. */
int jce_tup_parse(const uint8_t *buf, size_t len, jce_arena_t *arena,
                  jce_tup_t *tup);
/* NULL when absent. */
const jce_tup_entry_t *jce_tup_find(const jce_tup_t *tup, const char *name);
/* Opens a decoder on one entry's value (at tag 0). */
void jce_tup_open(const jce_tup_entry_t *e, jce_arena_t *arena, jce_in_t *in);

/* Writing a UniAttribute: begin with the number of entries, then for each
 * entry put its key and the value's encoding (made at tag 0 into a scratch
 * jce_out_t by the caller). */
void jce_tup_put_begin(jce_out_t *o, uint32_t n);
void jce_tup_put_entry(jce_out_t *o, const char *name, const jce_out_t *value);

#endif
