/*
 * libFuzzer target for device tokens (src/core/token.c): the gateway's
 * first look at a stranger's bytes after the framing.
 *
 * Any input goes to token_parse.  A token that parses must be canonical:
 * minting its fields again gives the same signed part byte for byte, its
 * lengths add up, IAT <= EXPIRY; token_verify must not crash, and if the
 * signature holds under the fixed secret the minted token is the input.
 * The policy figures (token_lifetime, token_issued_at) must stay in range
 * for every time given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t SECRET[] = "fuzz-secret";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *tok = (const char *)data;
    token_view_t v;
    if (token_parse(tok, size, &v) != TOKEN_OK) return 0;
    if (!token_app_valid(v.app, v.app_len) || !token_id_valid(v.dev, v.dev_len))
        abort();
    if ((size_t)v.signed_len + 1 + TOKEN_SIG_LEN != size) abort();
    if (v.iat != TOKEN_NO_IAT && (v.iat < 0 || v.iat > v.expiry)) abort();
    char app[TOKEN_APP_MAX + 1], dev[TOKEN_ID_MAX + 1], out[TOKEN_MAX];
    memcpy(app, v.app, v.app_len);
    app[v.app_len] = 0;
    memcpy(dev, v.dev, v.dev_len);
    dev[v.dev_len] = 0;
    int n = token_mint(out, sizeof out, app, dev, v.iat, v.expiry, SECRET,
                       sizeof SECRET - 1);
    if (n != (int)size || memcmp(out, tok, v.signed_len)) abort();
    int rc = token_verify(&v, SECRET, sizeof SECRET - 1, 0);
    if (rc == TOKEN_OK || rc == TOKEN_ERR_EXPIRED) {
        if (memcmp(out, tok, size)) abort(); /* one token per fields */
    } else if (rc != TOKEN_ERR_BAD_SIG) {
        abort();
    }
    const int64_t nows[] = {0, 1767225600, v.expiry, INT64_MAX};
    for (size_t i = 0; i < sizeof nows / sizeof nows[0]; i++)
        if (token_lifetime(&v, nows[i]) < 0) abort();
    const int64_t maxes[] = {0, 60, 30 * 86400, INT64_MAX};
    for (size_t i = 0; i < sizeof maxes / sizeof maxes[0]; i++) {
        int64_t at = token_issued_at(&v, maxes[i]);
        if (at < 0 || at > v.expiry) abort();
    }
    return 0;
}
