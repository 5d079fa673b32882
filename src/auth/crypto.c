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

/* Table-driven decoder (libsodium's constant-time one was 5% of a JWT
 * request): what it decodes is never secret — tokens are compared after
 * decoding, in constant time. Canonical input only: no padding, no
 * whitespace, unused trailing bits must be zero. */
static const signed char b64u_val[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,  ['I'] = 9,
    ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
    ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27,
    ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45,
    ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
    ['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63,
    ['_'] = 64,
}; /* value + 1; 0 = not in the alphabet */

long b64url_decode(str_t in, unsigned char *out, size_t outcap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    if (in.len % 4 == 1)
        return -1;
    for (size_t i = 0; i < in.len; i++) {
        int v = b64u_val[(unsigned char)in.p[i]] - 1;
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == outcap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1)) /* non-zero leftover bits: not canonical */
        return -1;
    return (long)o;
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
