/* jwt.c — HS256 sign/verify, see jwt.h. Untrusted input: fuzzed. */
#include "auth/jwt.h"

#include <sodium.h>

#include "auth/crypto.h"
#include "core/json.h"

#include "core/banned.h"

static const char header_b64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"; /* {"alg":"HS256","typ":"JWT"} */

static void hmac(const struct jwt_key *k, str_t msg, unsigned char out[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, k->secret, k->len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg.p, msg.len);
    crypto_auth_hmacsha256_final(&st, out);
}

void jwt_sign(const struct jwt_key *k, const struct jwt_claims *c, struct buf *out)
{
    struct buf payload = BUF_INIT(1024);
    struct jw w;
    unsigned char sig[crypto_auth_hmacsha256_BYTES];
    size_t start = out->len;
    jw_init(&w, &payload);
    jw_obj_begin(&w);
    jw_key(&w, "sub");
    jw_cstr(&w, c->sub);
    jw_key(&w, "role");
    jw_cstr(&w, c->role);
    jw_key(&w, "sid");
    jw_cstr(&w, c->sid);
    jw_key(&w, "jti");
    jw_cstr(&w, c->jti);
    jw_key(&w, "iat");
    jw_int(&w, c->iat);
    jw_key(&w, "exp");
    jw_int(&w, c->exp);
    jw_obj_end(&w);
    (void)buf_append(out, header_b64, sizeof(header_b64) - 1);
    (void)buf_putc(out, '.');
    b64url_encode(out, payload.ptr, payload.len);
    hmac(k, str_make(out->ptr + start, out->len - start), sig);
    (void)buf_putc(out, '.');
    b64url_encode(out, sig, sizeof(sig));
    buf_free(&payload);
}

static json_t *decode_json(str_t part)
{
    unsigned char raw[JWT_MAX_LEN];
    json_t *v = NULL;
    long n = b64url_decode(part, raw, sizeof(raw));
    if (n < 0 || json_parse_strict(str_make((const char *)raw, (size_t)n), &v, NULL) != JSON_IN_OK)
        return NULL;
    if (!json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static bool copy_claim(const json_t *obj, const char *name, char *dst, size_t cap)
{
    const json_t *v = json_object_get(obj, name);
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= cap)
        return false;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return true;
}

int jwt_verify(const struct jwt_key *k, str_t t, int64_t now_s, struct jwt_claims *out)
{
    const char *d1, *d2;
    json_t *hdr, *pl;
    unsigned char sig[crypto_auth_hmacsha256_BYTES], want[crypto_auth_hmacsha256_BYTES];
    int rc = JWT_EMALFORMED;
    if (t.len == 0 || t.len > JWT_MAX_LEN)
        return JWT_EMALFORMED;
    if (!(d1 = memchr(t.p, '.', t.len)) || !(d2 = memchr(d1 + 1, '.', (size_t)(t.p + t.len - d1 - 1))) ||
        memchr(d2 + 1, '.', (size_t)(t.p + t.len - d2 - 1)))
        return JWT_EMALFORMED;
    str_t h = str_make(t.p, (size_t)(d1 - t.p)), p = str_make(d1 + 1, (size_t)(d2 - d1 - 1)),
          s = str_make(d2 + 1, (size_t)(t.p + t.len - d2 - 1));

    /* 1. the header must say exactly HS256 — decided before touching the signature */
    if (!(hdr = decode_json(h)))
        return JWT_EMALFORMED;
    const json_t *alg = json_object_get(hdr, "alg"), *typ = json_object_get(hdr, "typ");
    bool alg_ok = json_is_string(alg) && strcmp(json_string_value(alg), "HS256") == 0 &&
                  (!typ || (json_is_string(typ) && strcmp(json_string_value(typ), "JWT") == 0)) &&
                  !json_object_get(hdr, "crit");
    json_decref(hdr);
    if (!alg_ok)
        return JWT_EALG;

    /* 2. signature over "header.payload", constant-time */
    if (b64url_decode(s, sig, sizeof(sig)) != (long)sizeof(sig))
        return JWT_ESIG;
    hmac(k, str_make(t.p, (size_t)(d2 - t.p)), want);
    if (sodium_memcmp(sig, want, sizeof(sig)) != 0)
        return JWT_ESIG;

    /* 3. claims */
    if (!(pl = decode_json(p)))
        return JWT_EMALFORMED;
    memset(out, 0, sizeof(*out));
    const json_t *iat = json_object_get(pl, "iat"), *exp = json_object_get(pl, "exp");
    if (!copy_claim(pl, "sub", out->sub, sizeof(out->sub)) || !copy_claim(pl, "role", out->role, sizeof(out->role)) ||
        !copy_claim(pl, "jti", out->jti, sizeof(out->jti)) || !copy_claim(pl, "sid", out->sid, sizeof(out->sid)) ||
        !json_is_integer(iat) || !json_is_integer(exp))
        goto out;
    out->iat = json_integer_value(iat);
    out->exp = json_integer_value(exp);
    if (out->exp <= now_s || out->iat > now_s + 60) {
        rc = JWT_EEXPIRED;
        goto out;
    }
    rc = JWT_OK;
out:
    json_decref(pl);
    return rc;
}
