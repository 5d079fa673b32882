/*
 * crypto.c — provider keys at rest: libsodium crypto_secretbox (XSalsa20-
 * Poly1305) under a 32-byte key derived from the process secret
 * (core/secret.h, context "temel.ai.provider-keys.v1").
 *
 * Stored form and cipher: secret_seal/secret_open (core/secret.h).
 * A plaintext key lives only in a buffer that the caller wipes after the
 * request that needed it.
 */
#include <sodium.h>

#include "core/secret.h"
#include "modules/ai/ai_internal.h"

#include "core/banned.h"

static unsigned char g_key[crypto_secretbox_KEYBYTES];

void ai__crypto_set_key(const unsigned char key[32]) { memcpy(g_key, key, sizeof(g_key)); }

int ai__crypto_init(const struct config *cfg, struct buf *err)
{
    if (sodium_init() < 0) {
        (void)buf_puts(err, "libsodium: initialisation failed");
        return -1;
    }
    return secret_derive(cfg, "temel.ai.provider-keys.v1", g_key, err);
}

void ai__seal(str_t plain, struct buf *hex_out) { secret_seal(g_key, plain, hex_out); }

int ai__open(str_t hex, struct buf *plain) { return secret_open(g_key, hex, 4 * AI_KEY_MAX, plain); }
