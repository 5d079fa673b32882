/* stripe_sig.c — Stripe-Signature verification (see stripe_sig.h). */
#include <stdio.h>

#include <sodium.h>

#include "modules/orders/stripe_sig.h"

#include "core/banned.h"

static void mac(str_t payload, str_t secret, int64_t t, unsigned char out[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    char ts[24];
    int n = snprintf(ts, sizeof(ts), "%lld.", (long long)t);
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret.p, secret.len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, (unsigned long long)n);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)payload.p, payload.len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

void stripe_sig_sign(str_t payload, str_t secret, int64_t t, char out[65])
{
    unsigned char m[crypto_auth_hmacsha256_BYTES];
    mac(payload, secret, t, m);
    sodium_bin2hex(out, 65, m, sizeof(m));
}

/* The next comma-separated item of h from *pos: key and value views. */
static bool next_item(str_t h, size_t *pos, str_t *key, str_t *val)
{
    if (*pos >= h.len)
        return false;
    size_t start = *pos, end = start;
    while (end < h.len && h.p[end] != ',')
        end++;
    *pos = end + 1;
    str_t item = str_make(h.p + start, end - start);
    while (item.len && item.p[0] == ' ') {
        item.p++;
        item.len--;
    }
    const char *eq = memchr(item.p, '=', item.len);
    if (!eq) {
        *key = item;
        *val = STR_NULL;
        return true;
    }
    *key = str_make(item.p, (size_t)(eq - item.p));
    *val = str_make(eq + 1, item.len - (size_t)(eq - item.p) - 1);
    return true;
}

int stripe_sig_verify(str_t header, str_t payload, str_t secret, int64_t now_s, int64_t tolerance_s)
{
    str_t key, val;
    size_t pos = 0;
    int64_t t = 0;
    int nt = 0, nv1 = 0;
    if (!header.p || header.len == 0 || header.len > STRIPE_SIG_HEADER_MAX)
        return STRIPE_SIG_EMALFORMED;
    while (next_item(header, &pos, &key, &val))
        if (str_is(key, "t")) {
            if (nt++ || parse_i64(val, 0, INT64_MAX / 2, &t))
                return STRIPE_SIG_EMALFORMED;
        }
    if (nt != 1)
        return STRIPE_SIG_EMALFORMED;
    unsigned char want[crypto_auth_hmacsha256_BYTES];
    mac(payload, secret, t, want);
    bool match = false;
    pos = 0;
    while (next_item(header, &pos, &key, &val)) {
        unsigned char got[crypto_auth_hmacsha256_BYTES];
        size_t n = 0;
        if (!str_is(key, "v1"))
            continue;
        nv1++;
        if (val.len != 2 * sizeof(got) ||
            sodium_hex2bin(got, sizeof(got), val.p, val.len, NULL, &n, NULL) != 0 || n != sizeof(got))
            continue;
        if (sodium_memcmp(got, want, sizeof(want)) == 0)
            match = true; /* keep walking: the time taken does not depend on which one matched */
    }
    sodium_memzero(want, sizeof(want));
    if (nv1 == 0)
        return STRIPE_SIG_ENOSIG;
    if (t < now_s - tolerance_s || t > now_s + tolerance_s)
        return STRIPE_SIG_ESTALE;
    return match ? STRIPE_SIG_OK : STRIPE_SIG_EMISMATCH;
}

const char *stripe_sig_strerror(int rc)
{
    switch (rc) {
    case STRIPE_SIG_OK: return "ok";
    case STRIPE_SIG_EMALFORMED: return "malformed Stripe-Signature header";
    case STRIPE_SIG_ENOSIG: return "no v1 signature in Stripe-Signature";
    case STRIPE_SIG_ESTALE: return "Stripe-Signature timestamp outside the 5-minute tolerance";
    default: return "no v1 signature matches";
    }
}
