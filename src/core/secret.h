/*
 * secret.h — keys derived from the process secret: TEMEL_SECRET_KEY, or
 * (development and test only; config refuses that in production) a random
 * secret generated once into <data_dir>/secret.key (0600, written
 * atomically). Each user derives its own 32-byte key with BLAKE2b keyed by
 * a context string, so the same secret yields unrelated keys per purpose
 * (AI provider keys at rest, the audit chain's MAC, ...).
 */
#ifndef TEMEL_SECRET_H
#define TEMEL_SECRET_H

#include "core/buf.h"
#include "core/config.h"

#define SECRET_KEY_BYTES 32

/* key = BLAKE2b-256(secret, key = context); context is 16..64 bytes.
 * 0, or -1 with the reason in err. */
int secret_derive(const struct config *cfg, const char *context, unsigned char key[SECRET_KEY_BYTES],
                  struct buf *err) WARN_UNUSED;

/* Secrets at rest (provider keys, social network tokens): libsodium
 * crypto_secretbox (XSalsa20-Poly1305) under a key from secret_derive().
 * Stored form: lower-case hex of nonce (24 bytes) || MAC (16) || ciphertext.
 * secret_seal appends to hex_out (its sticky cap applies). secret_open
 * appends the plaintext to plain: 0, or -1 when hex is malformed, longer
 * than max_plain allows, or does not authenticate. The caller wipes plain. */
void secret_seal(const unsigned char key[SECRET_KEY_BYTES], str_t plain, struct buf *hex_out);
int secret_open(const unsigned char key[SECRET_KEY_BYTES], str_t hex, size_t max_plain, struct buf *plain) WARN_UNUSED;

#endif
