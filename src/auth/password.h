/*
 * password.h — argon2id password hashing (libsodium) and the password policy
 * of API.md §3.
 *
 * Parameters: opslimit 3, memlimit 32 MiB. Measured here (2 cores,
 * libsodium 1.0.18): ~35 ms per hash, so login p50 stays under 50 ms
 * (ARCHITECTURE §6); stronger than the OWASP argon2id baseline (19 MiB, t=2).
 * The parameters live in each stored hash, so changing them later keeps old
 * hashes verifiable; password_needs_rehash() tells login to upgrade.
 */
#ifndef TEMEL_PASSWORD_H
#define TEMEL_PASSWORD_H

#include "core/common.h"

#define PASSWORD_OPSLIMIT 3ull
#define PASSWORD_MEMLIMIT (32u << 20)
#define PASSWORD_HASH_MAX 128 /* crypto_pwhash_STRBYTES */
#define PASSWORD_MIN_LEN 10
#define PASSWORD_MAX_LEN 256

/* out must hold PASSWORD_HASH_MAX bytes. 0 or -1 (out of memory). */
int password_hash(str_t pw, char out[PASSWORD_HASH_MAX]) WARN_UNUSED;
bool password_verify(const char *hash, str_t pw);
bool password_needs_rehash(const char *hash);
/* Verify against a fixed dummy hash: same cost as a real verify, for
 * unknown accounts (equal timing for "no such user" and "wrong password"). */
void password_burn(str_t pw);

/* NULL if acceptable, else the reason ("must be at least 10 characters"). */
const char *password_policy(str_t pw, str_t email);

#endif
