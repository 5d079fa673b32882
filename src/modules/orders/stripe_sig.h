/*
 * stripe_sig.h — verifying a Stripe webhook's Stripe-Signature header.
 *
 * The header is "t=<unix seconds>,v1=<hex>,v1=<hex>,v0=...": a timestamp and
 * one or more signatures (several while a secret is being rolled). The
 * signed payload is "<t>.<raw body>"; a v1 signature is the lower-case hex
 * HMAC-SHA256 of it under the endpoint's secret ("whsec_..."), used as is.
 * Accepted when any v1 matches (compared in constant time, sodium_memcmp)
 * and |now - t| <= tolerance. Other schemes (v0) are ignored. No array of
 * signatures is kept: each v1 item is compared as the header is walked.
 */
#ifndef TEMEL_STRIPE_SIG_H
#define TEMEL_STRIPE_SIG_H

#include "core/common.h"

#define STRIPE_SIG_TOLERANCE_S 300 /* 5 minutes */
#define STRIPE_SIG_HEADER_MAX 4096 /* longer headers are malformed */

enum stripe_sig_rc {
    STRIPE_SIG_OK = 0,
    STRIPE_SIG_EMALFORMED = -1, /* no header, no or two t=, t not a number, too long */
    STRIPE_SIG_ENOSIG = -2,     /* no v1 signature in the header */
    STRIPE_SIG_ESTALE = -3,     /* the timestamp is outside the tolerance */
    STRIPE_SIG_EMISMATCH = -4,  /* no v1 matched */
};

int stripe_sig_verify(str_t header, str_t payload, str_t secret, int64_t now_s, int64_t tolerance_s) WARN_UNUSED;
const char *stripe_sig_strerror(int rc);

/* The v1 signature of payload at t (tests, the Stripe stand-in, and outbound
 * webhooks' Temel-Signature, which is the same scheme, use it):
 * 64 lower-case hex characters and a NUL into out. */
void stripe_sig_sign(str_t payload, str_t secret, int64_t t, char out[65]);

#endif
