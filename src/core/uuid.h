/*
 * uuid.h — UUIDv7 (RFC 9562): 48-bit Unix ms timestamp, version 7, then a
 * 12-bit counter (rand_a) and 62 random bits. Within one thread, ids are
 * strictly increasing even inside one millisecond or if the clock steps
 * back (the counter carries into the timestamp). Randomness: libsodium.
 */
#ifndef TEMEL_UUID_H
#define TEMEL_UUID_H

#include "core/common.h"

#define UUID_STR_LEN 36

void uuid7(uint8_t out[16]);
void uuid_format(const uint8_t u[16], char out[UUID_STR_LEN + 1]);
/* Generates and formats in one call. */
void uuid7_str(char out[UUID_STR_LEN + 1]);
/* Canonical 8-4-4-4-12 hex (either case); 0 or -1. */
int uuid_parse(str_t s, uint8_t out[16]) WARN_UNUSED;
bool uuid_valid(str_t s);

/* For tests: generate with an explicit clock value. */
void uuid7_at(uint8_t out[16], int64_t now_ms);

#endif
