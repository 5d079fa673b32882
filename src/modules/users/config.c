/* config.c — the users module's settings (users_internal.h). */
#include <stdlib.h>

#include "modules/users/users_internal.h"

#include "core/banned.h"

static struct users_config g_cfg = {.access_ttl_s = 900, .refresh_ttl_s = 7 * 86400, .refresh_grace_ms = 10000};

const struct users_config *users__cfg(void) { return &g_cfg; }

static void wipe_free(char *s)
{
    if (s)
        memset(s, 0, strlen(s)); /* secrets */
    free(s);
}

int users__config(const struct config *cfg, struct buf *err)
{
    struct users_config *c = &g_cfg;
    /* a second call (tests) replaces the first one's values */
    wipe_free(c->jwt_secret);
    free(c->admin_email);
    wipe_free(c->admin_password);
    c->jwt_secret = c->admin_email = c->admin_password = NULL;
    c->jwt_secret = config_env_dup("TEMEL_JWT_SECRET");
    if (c->jwt_secret && strlen(c->jwt_secret) < 32) {
        (void)buf_puts(err, "TEMEL_JWT_SECRET: must be at least 32 characters");
        return -1;
    }
    if (!c->jwt_secret && cfg->env == ENV_PRODUCTION) {
        (void)buf_puts(err, "TEMEL_JWT_SECRET: required when TEMEL_ENV=production");
        return -1;
    }
    if (config_env_int("TEMEL_ACCESS_TTL_S", 900, 30, 86400, &c->access_ttl_s, err) ||
        config_env_int("TEMEL_REFRESH_TTL_S", 7 * 86400, 60, 90 * 86400, &c->refresh_ttl_s, err) ||
        config_env_int("TEMEL_REFRESH_REUSE_GRACE_MS", 10000, 0, 60000, &c->refresh_grace_ms, err))
        return -1;
    c->admin_email = config_env_dup("TEMEL_ADMIN_EMAIL");
    c->admin_password = config_env_dup("TEMEL_ADMIN_PASSWORD");
    if (!!c->admin_email != !!c->admin_password) {
        (void)buf_puts(err, c->admin_email ? "TEMEL_ADMIN_PASSWORD: required when TEMEL_ADMIN_EMAIL is set"
                                           : "TEMEL_ADMIN_EMAIL: required when TEMEL_ADMIN_PASSWORD is set");
        return -1;
    }
    return 0;
}
