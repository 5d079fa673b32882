/*
 * crypto.h — small wrappers over libsodium for tokens and secrets.
 * Every comparison of secrets is constant-time.
 */
#ifndef TEMEL_AUTH_CRYPTO_H
#define TEMEL_AUTH_CRYPTO_H

#include "core/buf.h"

/* base64url without padding */
void b64url_encode(struct buf *out, const void *p, size_t n);
/* Decodes into out (capacity outcap); returns length or -1 (bad input/too big). */
long b64url_decode(str_t in, unsigned char *out, size_t outcap);

/* A random token: prefix + base64url(nbytes random) into out. */
void token_random(struct buf *out, const char *prefix, size_t nbytes);
/* Hex SHA-256 of s (64 chars + NUL). For high-entropy tokens only. */
void sha256_hex(str_t s, char out[65]);
/* Hex HMAC-SHA256(key, s) (64 chars + NUL). For low-entropy secrets (OTP). */
void hmac_sha256_hex(const unsigned char key[32], str_t s, char out[65]);
/* Constant-time equality of two views (length leak only). */
bool ct_equal(str_t a, str_t b);

#endif
