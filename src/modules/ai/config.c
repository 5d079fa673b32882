/* config.c — the ai module's settings (ai_internal.h). TEMEL_SECRET_KEY, which
 * encrypts provider keys at rest, is a core setting (core/config.h). */
#include "modules/ai/ai_internal.h"

#include "core/banned.h"

static struct ai_config g_cfg = {.ai_cache_ttl_s = 86400, .ai_timeout_ms = 60000, .ai_max_attempts = 3,
                                 .ai_abuse_threshold = 70};

const struct ai_config *ai__cfg(void) { return &g_cfg; }

int ai__config(const struct config *cfg, struct buf *err)
{
    UNUSED(cfg);
    return config_env_int("TEMEL_AI_CACHE_TTL_S", 86400, 0, 30 * 86400, &g_cfg.ai_cache_ttl_s, err) ||
                   config_env_int("TEMEL_AI_TIMEOUT_MS", 60000, 1000, 600000, &g_cfg.ai_timeout_ms, err) ||
                   config_env_int("TEMEL_AI_MAX_ATTEMPTS", 3, 1, 20, &g_cfg.ai_max_attempts, err) ||
                   config_env_int("TEMEL_AI_ABUSE_THRESHOLD", 70, 1, 1000, &g_cfg.ai_abuse_threshold, err)
               ? -1
               : 0;
}
