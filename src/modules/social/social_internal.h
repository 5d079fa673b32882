/*
 * social_internal.h — the social module's private pieces (only
 * src/modules/social includes it).
 *
 *   social.c    descriptors (accounts, posts), account create/patch with the
 *               token sealed at rest, post create/schedule, analytics, module
 *   publish.c   the "social.publish" job: one network call per attempt through
 *               the outbound HTTP client, in the network's own wire format
 */
#ifndef TEMEL_SOCIAL_INTERNAL_H
#define TEMEL_SOCIAL_INTERNAL_H

#include "core/buf.h"
#include "core/config.h"
#include "core/secret.h"

struct db;

#define SOCIAL_TOKEN_MAX 2048 /* bytes of one access token */

struct social_config {
    char *x_url;          /* TEMEL_SOCIAL_X_URL: X API v2 origin (default https://api.x.com) */
    int64_t max_attempts; /* TEMEL_SOCIAL_MAX_ATTEMPTS: publish attempts before the dead letter (5) */
};
const struct social_config *social__cfg(void);

/* The key sealing access tokens (secret_seal/secret_open). */
const unsigned char *social__key(void);

/* Enqueue the publish job of post id at run_at_ms. 0 or a db_rc. */
int social__enqueue_publish(struct db *db, str_t post_id, int64_t run_at_ms) WARN_UNUSED;
void social__register_jobs(void);

#endif
