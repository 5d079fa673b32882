/*
 * crypto.c — provider keys at rest: libsodium crypto_secretbox (XSalsa20-
 * Poly1305) under a 32-byte key derived from the process secret
 * (core/secret.h, context "temel.ai.provider-keys.v1").
 *
 * Stored form: lower-case hex of nonce (24 bytes) || MAC (16) || ciphertext.
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

void ai__seal(str_t plain, struct buf *hex_out)
{
    size_t n = st_add(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES, plain.len);
    unsigned char *box = xmalloc(n);
    randombytes_buf(box, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, (const unsigned char *)plain.p, plain.len, box, g_key);
    char *w = buf_reserve(hex_out, st_add(st_mult(n, 2), 1));
    if (w) {
        sodium_bin2hex(w, n * 2 + 1, box, n);
        buf_commit(hex_out, n * 2);
    }
    free(box);
}

int ai__open(str_t hex, struct buf *plain)
{
    size_t n = hex.len / 2, len;
    if (hex.len % 2 || n < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES || n > 4 * AI_KEY_MAX)
        return -1;
    unsigned char *box = xmalloc(n);
    int rc = -1;
    if (sodium_hex2bin(box, n, hex.p, hex.len, NULL, &len, NULL) || len != n)
        goto out;
    size_t m = n - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    char *w = buf_reserve(plain, m + 1);
    if (!w)
        goto out;
    if (crypto_secretbox_open_easy((unsigned char *)w, box + crypto_secretbox_NONCEBYTES,
                                   n - crypto_secretbox_NONCEBYTES, box, g_key))
        goto out;
    buf_commit(plain, m);
    rc = 0;
out:
    sodium_memzero(box, n);
    free(box);
    return rc;
}
