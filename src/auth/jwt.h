/*
 * jwt.h — HS256 JSON Web Tokens on libsodium's HMAC-SHA256 (the ARCHITECTURE
 * §3 alternative to libjwt: ~150 lines we can read and fuzz, no new
 * dependency). The algorithm is pinned: a header whose alg is not exactly
 * "HS256" (including "none") is refused before any signature work.
 */
#ifndef TEMEL_JWT_H
#define TEMEL_JWT_H

#include "core/buf.h"

#define JWT_MAX_LEN 4096

struct jwt_key {
    const unsigned char *secret;
    size_t len; /* >= 32 */
};

struct jwt_claims {
    char sub[40];  /* user id */
    char role[16];
    char jti[40];
    char sid[40];  /* session (refresh family) id; revoking it kills the token */
    int64_t iat, exp; /* epoch seconds */
};

enum jwt_rc { JWT_OK = 0, JWT_EMALFORMED = -1, JWT_EALG = -2, JWT_ESIG = -3, JWT_EEXPIRED = -4 };

void jwt_sign(const struct jwt_key *k, const struct jwt_claims *c, struct buf *out);
int jwt_verify(const struct jwt_key *k, str_t token, int64_t now_s, struct jwt_claims *out) WARN_UNUSED;

#endif
