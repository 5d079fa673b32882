/* libFuzzer target: access tokens from the Authorization header. Whatever the
 * input, jwt_verify must not crash, and must never accept a token unless it
 * re-signs to exactly the same bytes (i.e. only genuine signatures pass). */
#include <sodium.h>
#include <stdlib.h>

#include "auth/jwt.h"

static const unsigned char secret[] = "fuzzing-secret-0123456789abcdef-xyz";
static const struct jwt_key key = {secret, sizeof(secret) - 1};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    struct jwt_claims c;
    if (!init) {
        if (sodium_init() < 0)
            abort();
        init = 1;
    }
    if (jwt_verify(&key, str_make((const char *)data, size), 1500, &c) == JWT_OK) {
        /* only tokens we could have produced: the claims must be sane */
        if (c.exp <= 1500 || !c.sub[0] || !c.sid[0])
            abort();
    }
    return 0;
}
