/* Unit tests for src/auth: HS256 JWT, passwords, token crypto. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <sodium.h>

#include "auth/crypto.h"
#include "auth/jwt.h"
#include "auth/password.h"

static const unsigned char secret[] = "0123456789abcdef0123456789abcdef-unit";
static const struct jwt_key key = {secret, sizeof(secret) - 1};

static struct jwt_claims claims(int64_t iat, int64_t exp)
{
    struct jwt_claims c = {.iat = iat, .exp = exp};
    memcpy(c.sub, "0190b5f2-0000-7000-8000-000000000001", 36);
    memcpy(c.role, "user", 4);
    memcpy(c.jti, "0190b5f2-0000-7000-8000-000000000002", 36);
    memcpy(c.sid, "0190b5f2-0000-7000-8000-000000000003", 36);
    return c;
}

static void t_jwt_roundtrip(void **state)
{
    (void)state;
    struct buf t = BUF_INIT(JWT_MAX_LEN);
    struct jwt_claims in = claims(1000, 2000), out;
    jwt_sign(&key, &in, &t);
    assert_true(buf_ok(&t));
    assert_int_equal(jwt_verify(&key, buf_str(&t), 1500, &out), JWT_OK);
    assert_string_equal(out.sub, in.sub);
    assert_string_equal(out.role, "user");
    assert_string_equal(out.sid, in.sid);
    assert_int_equal(out.exp, 2000);
    /* expiry is exclusive; iat more than 60 s ahead is refused */
    assert_int_equal(jwt_verify(&key, buf_str(&t), 2000, &out), JWT_EEXPIRED);
    assert_int_equal(jwt_verify(&key, buf_str(&t), 939, &out), JWT_EEXPIRED);
    /* another key */
    static const unsigned char other[] = "another-secret-that-is-long-enough-32";
    struct jwt_key k2 = {other, sizeof(other) - 1};
    assert_int_equal(jwt_verify(&k2, buf_str(&t), 1500, &out), JWT_ESIG);
    buf_free(&t);
}

static void t_jwt_tamper(void **state)
{
    (void)state;
    struct buf t = BUF_INIT(JWT_MAX_LEN);
    struct jwt_claims in = claims(1000, 2000), out;
    jwt_sign(&key, &in, &t);
    /* flip every byte of the token once: never accepted */
    for (size_t i = 0; i < t.len; i++) {
        char saved = t.ptr[i];
        t.ptr[i] = saved == 'A' ? 'B' : 'A';
        assert_int_not_equal(jwt_verify(&key, buf_str(&t), 1500, &out), JWT_OK);
        t.ptr[i] = saved;
    }
    assert_int_equal(jwt_verify(&key, STRLIT(""), 1500, &out), JWT_EMALFORMED);
    assert_int_equal(jwt_verify(&key, STRLIT("a.b"), 1500, &out), JWT_EMALFORMED);
    assert_int_equal(jwt_verify(&key, STRLIT("a.b.c.d"), 1500, &out), JWT_EMALFORMED);
    buf_free(&t);
}

/* header.payload.signature with an arbitrary header, signed with key */
static void forge(const char *header_json, const char *payload_json, bool sign, struct buf *out)
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    b64url_encode(out, header_json, strlen(header_json));
    (void)buf_putc(out, '.');
    b64url_encode(out, payload_json, strlen(payload_json));
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key.secret, key.len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)out->ptr, out->len);
    crypto_auth_hmacsha256_final(&st, mac);
    (void)buf_putc(out, '.');
    if (sign)
        b64url_encode(out, mac, sizeof(mac));
}

static void t_jwt_alg_pinned(void **state)
{
    (void)state;
    const char *payload = "{\"sub\":\"u\",\"role\":\"admin\",\"sid\":\"s\",\"jti\":\"j\",\"iat\":1000,\"exp\":2000}";
    struct jwt_claims out;
    const char *bad_headers[] = {"{\"alg\":\"none\"}", "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", "{\"alg\":\"hs256\"}",
                                 "{\"typ\":\"JWT\"}", "{\"alg\":\"HS256\",\"typ\":\"JOSE+x\"}",
                                 "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"alg\":\"RS256\"}", "[\"HS256\"]",
                                 "{\"alg\":\"HS256\",\"alg\":\"none\"}"};
    for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
        for (int sign = 0; sign < 2; sign++) {
            struct buf t = BUF_INIT(JWT_MAX_LEN);
            forge(bad_headers[i], payload, sign, &t);
            int rc = jwt_verify(&key, buf_str(&t), 1500, &out);
            assert_true(rc == JWT_EALG || rc == JWT_EMALFORMED);
            buf_free(&t);
        }
    }
    /* a correctly signed HS256 token with missing claims is malformed */
    struct buf t = BUF_INIT(JWT_MAX_LEN);
    forge("{\"alg\":\"HS256\"}", "{\"sub\":\"u\",\"iat\":1000,\"exp\":2000}", true, &t);
    assert_int_equal(jwt_verify(&key, buf_str(&t), 1500, &out), JWT_EMALFORMED);
    buf_reset(&t);
    forge("{\"alg\":\"HS256\"}", payload, true, &t);
    assert_int_equal(jwt_verify(&key, buf_str(&t), 1500, &out), JWT_OK);
    assert_string_equal(out.role, "admin");
    buf_free(&t);
}

static void t_b64url(void **state)
{
    (void)state;
    unsigned char out[16];
    struct buf b = BUF_INIT(64);
    b64url_encode(&b, "\xfb\xff", 2);
    assert_string_equal(buf_cstr(&b), "-_8");
    assert_int_equal(b64url_decode(STRLIT("-_8"), out, sizeof(out)), 2);
    assert_int_equal(b64url_decode(STRLIT("-_8="), out, sizeof(out)), -1); /* no padding */
    assert_int_equal(b64url_decode(STRLIT("+/8"), out, sizeof(out)), -1);  /* not the standard alphabet */
    assert_int_equal(b64url_decode(STRLIT("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), out, 4), -1);
    buf_free(&b);
}

static void t_password(void **state)
{
    (void)state;
    char h[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash(STRLIT("correct horse battery"), h), 0);
    assert_true(strncmp(h, "$argon2id$", 10) == 0);
    assert_true(strstr(h, "m=32768,t=3") != NULL);
    assert_true(password_verify(h, STRLIT("correct horse battery")));
    assert_false(password_verify(h, STRLIT("correct horse batterx")));
    assert_false(password_verify("", STRLIT("x")));
    assert_false(password_needs_rehash(h));
    assert_null(password_policy(STRLIT("correct horse battery"), STRLIT("a@b.com")));
    assert_non_null(password_policy(STRLIT("short"), STR_NULL));
    assert_non_null(password_policy(STRLIT("Password123"), STR_NULL));      /* common, any case */
    assert_non_null(password_policy(STRLIT("someone@x.com"), STRLIT("someone@x.com")));
    assert_non_null(password_policy(STRLIT("someone12345"), STRLIT("someone12345@x.com")));
    assert_non_null(password_policy(STRLIT("zzzzzzzzzzzz"), STR_NULL));
    assert_null(password_policy(STRLIT("şifremçokgüçlü"), STR_NULL));       /* 14 code points */
    assert_non_null(password_policy(STRLIT("şğüöçıİ"), STR_NULL));          /* 7 code points, 14 bytes */
}

static void t_ct_equal_and_hashes(void **state)
{
    (void)state;
    char a[65], b[65];
    assert_true(ct_equal(STRLIT("abc"), STRLIT("abc")));
    assert_false(ct_equal(STRLIT("abc"), STRLIT("abd")));
    assert_false(ct_equal(STRLIT("abc"), STRLIT("ab")));
    sha256_hex(STRLIT("abc"), a);
    assert_string_equal(a, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    static const unsigned char k[32] = {1};
    hmac_sha256_hex(k, STRLIT("x"), a);
    hmac_sha256_hex(k, STRLIT("y"), b);
    assert_int_equal(strlen(a), 64);
    assert_string_not_equal(a, b);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_jwt_roundtrip), cmocka_unit_test(t_jwt_tamper), cmocka_unit_test(t_jwt_alg_pinned),
        cmocka_unit_test(t_b64url),        cmocka_unit_test(t_password),   cmocka_unit_test(t_ct_equal_and_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
