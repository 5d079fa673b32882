/*
 * test_stripe.c — the Stripe-Signature verifier (src/modules/orders/stripe_sig.c):
 * a valid v1, any of several v1, the 5-minute tolerance at and past its edges,
 * tampered payloads and secrets, malformed headers, v0 ignored, and a known
 * vector computed independently (Python's hmac module).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "core/buf.h"
#include "modules/orders/stripe_sig.h"

#include "core/banned.h"

static const str_t secret = STRLIT("whsec_test_secret");
static const str_t payload = STRLIT("{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\"}");
#define T0 1700000000
#define KNOWN_SIG "22d8dc182f5c588077683bd378368e29765bfe5df2560112b4f28fef120f0e31"

static int verify(const char *header, int64_t now)
{
    return stripe_sig_verify(str_c(header), payload, secret, now, STRIPE_SIG_TOLERANCE_S);
}

static void header_for(struct buf *b, int64_t t, const char *before, const char *after)
{
    char sig[65];
    stripe_sig_sign(payload, secret, t, sig);
    buf_reset(b);
    (void)buf_printf(b, "t=%lld,%sv1=%s%s", (long long)t, before, sig, after);
}

static void test_known_vector(void **state)
{
    (void)state;
    /* python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_test_secret",
     *   b"1700000000.{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\"}",hashlib.sha256).hexdigest())' */
    char sig[65];
    stripe_sig_sign(payload, secret, T0, sig);
    assert_string_equal(sig, KNOWN_SIG);
}

static void test_valid_and_any_v1(void **state)
{
    (void)state;
    struct buf b = BUF_INIT(4096);
    header_for(&b, T0, "", "");
    assert_int_equal(verify(buf_cstr(&b), T0), STRIPE_SIG_OK);
    /* a rolled secret: the good signature second, third, with v0 and spaces around */
    header_for(&b, T0, "v1=0000000000000000000000000000000000000000000000000000000000000000,", "");
    assert_int_equal(verify(buf_cstr(&b), T0), STRIPE_SIG_OK);
    header_for(&b, T0, "v0=abc, v1=zz,", ",v1=1234");
    assert_int_equal(verify(buf_cstr(&b), T0), STRIPE_SIG_OK);
    buf_free(&b);
}

static void test_tolerance_edges(void **state)
{
    (void)state;
    struct buf b = BUF_INIT(4096);
    header_for(&b, T0, "", "");
    assert_int_equal(verify(buf_cstr(&b), T0 + 300), STRIPE_SIG_OK);
    assert_int_equal(verify(buf_cstr(&b), T0 - 300), STRIPE_SIG_OK);
    assert_int_equal(verify(buf_cstr(&b), T0 + 301), STRIPE_SIG_ESTALE);
    assert_int_equal(verify(buf_cstr(&b), T0 - 301), STRIPE_SIG_ESTALE);
    buf_free(&b);
}

static void test_mismatch(void **state)
{
    (void)state;
    struct buf b = BUF_INIT(4096);
    header_for(&b, T0, "", "");
    /* another payload, another secret, another timestamp than the signed one */
    assert_int_equal(stripe_sig_verify(buf_str(&b), STRLIT("{\"id\":\"evt_2\"}"), secret, T0, 300),
                     STRIPE_SIG_EMISMATCH);
    assert_int_equal(stripe_sig_verify(buf_str(&b), payload, STRLIT("whsec_other"), T0, 300), STRIPE_SIG_EMISMATCH);
    char sig[65];
    stripe_sig_sign(payload, secret, T0, sig);
    buf_reset(&b);
    (void)buf_printf(&b, "t=%d,v1=%s", T0 + 1, sig);
    assert_int_equal(verify(buf_cstr(&b), T0), STRIPE_SIG_EMISMATCH);
    /* one flipped hex digit */
    sig[10] = sig[10] == 'a' ? 'b' : 'a';
    buf_reset(&b);
    (void)buf_printf(&b, "t=%d,v1=%s", T0, sig);
    assert_int_equal(verify(buf_cstr(&b), T0), STRIPE_SIG_EMISMATCH);
    /* only a v0 (the test-mode scheme) is no signature */
    stripe_sig_sign(payload, secret, T0, sig);
    buf_reset(&b);
    (void)buf_printf(&b, "t=%d,v0=%s", T0, sig);
    assert_int_equal(verify(buf_cstr(&b), T0), STRIPE_SIG_ENOSIG);
    buf_free(&b);
}

static void test_malformed(void **state)
{
    (void)state;
    assert_int_equal(stripe_sig_verify(STR_NULL, payload, secret, T0, 300), STRIPE_SIG_EMALFORMED);
    assert_int_equal(verify("", T0), STRIPE_SIG_EMALFORMED);
    assert_int_equal(verify("v1=abcd", T0), STRIPE_SIG_EMALFORMED);
    assert_int_equal(verify("t=,v1=abcd", T0), STRIPE_SIG_EMALFORMED);
    assert_int_equal(verify("t=12x,v1=abcd", T0), STRIPE_SIG_EMALFORMED);
    assert_int_equal(verify("t=-5,v1=abcd", T0), STRIPE_SIG_EMALFORMED);
    assert_int_equal(verify("t=1700000000,t=1700000000,v1=abcd", T0), STRIPE_SIG_EMALFORMED);
    assert_int_equal(verify("t=1700000000", T0), STRIPE_SIG_ENOSIG);
    assert_int_equal(verify("t=1700000000,,,", T0), STRIPE_SIG_ENOSIG);
    /* the header bound: at STRIPE_SIG_HEADER_MAX it is read, one past it is malformed */
    struct buf b = BUF_INIT(8192);
    header_for(&b, T0, "", ",v0=");
    while (b.len < STRIPE_SIG_HEADER_MAX)
        (void)buf_putc(&b, 'a');
    assert_int_equal(b.len, STRIPE_SIG_HEADER_MAX);
    assert_int_equal(verify(buf_cstr(&b), T0), STRIPE_SIG_OK);
    (void)buf_putc(&b, 'a');
    assert_int_equal(verify(buf_cstr(&b), T0), STRIPE_SIG_EMALFORMED);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_vector), cmocka_unit_test(test_valid_and_any_v1),
        cmocka_unit_test(test_tolerance_edges), cmocka_unit_test(test_mismatch), cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
