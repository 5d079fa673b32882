/* crypto.c — see crypto.h. */
#include "auth/crypto.h"

#include <sodium.h>

#include "core/banned.h"

void b64url_encode(struct buf *out, const void *p, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *w = buf_reserve(out, cap);
    if (!w)
        return;
    sodium_bin2base64(w, cap, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    buf_commit(out, strlen(w));
}

long b64url_decode(str_t in, unsigned char *out, size_t outcap)
{
    size_t len = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, outcap, in.p, in.len, NULL, &len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
        end != in.p + in.len)
        return -1;
    return (long)len;
}

void token_random(struct buf *out, const char *prefix, size_t nbytes)
{
    unsigned char r[64];
    ASSERT(nbytes <= sizeof(r));
    randombytes_buf(r, nbytes);
    (void)buf_puts(out, prefix);
    b64url_encode(out, r, nbytes);
    sodium_memzero(r, sizeof(r));
}

void sha256_hex(str_t s, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)s.p, s.len);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

void hmac_sha256_hex(const unsigned char key[32], str_t s, char out[65])
{
    unsigned char h[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(h, (const unsigned char *)s.p, s.len, key);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

bool ct_equal(str_t a, str_t b)
{
    if (a.len != b.len)
        return false;
    return a.len == 0 || sodium_memcmp(a.p, b.p, a.len) == 0;
}
