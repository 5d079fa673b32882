/*
 * ratelimit.h — GCRA (generic cell rate algorithm) limits per class and key.
 *
 * A rule "N per S seconds" has emission interval T = S/N and burst
 * tolerance S: a fresh key may spend N requests at once, then one per T.
 * The state per key is one number, the theoretical arrival time (TAT).
 *
 * The store is an interface (struct rl_store) so a Redis backend can replace
 * the in-process one; rl_gcra() is the shared arithmetic both use.
 */
#ifndef TEMEL_RATELIMIT_H
#define TEMEL_RATELIMIT_H

#include "core/config.h"

struct rl_result {
    bool allowed;
    int64_t limit;
    int64_t remaining;
    int64_t reset_s;       /* seconds until the bucket is full again */
    int64_t retry_after_s; /* when refused: seconds until one request is allowed */
};

/* Pure GCRA step: given the stored TAT (0 = never seen) and now (ms), decide
 * and return the TAT to store (unchanged when refused). */
int64_t rl_gcra(const struct rl_rule *rule, int64_t tat_ms, int64_t now_ms, struct rl_result *res);

struct rl_store {
    /* Take one request for (class, key). Must be thread-safe. Returns 0, or
     * -1 when the store is unavailable (the caller then allows: fail open). */
    int (*take)(struct rl_store *s, enum rl_class cls, str_t key, const struct rl_rule *rule, int64_t now_ms,
                struct rl_result *res);
    void (*destroy)(struct rl_store *s);
};

/* In-process store: sharded, fixed memory (slots entries), evicts the
 * stalest entry of a probe window when full. */
struct rl_store *rl_store_memory(size_t slots);

/* Shared store (redis/redis.h configured): one Lua script (EVALSHA) runs the
 * same GCRA step on the Redis server's clock, so every instance spends one
 * budget per key. When Redis does not answer (down, timeout, error reply)
 * the step runs on `local` instead, counted by rl_fallbacks() and logged
 * once per outage. Takes ownership of local. */
struct rl_store *rl_store_redis(struct rl_store *local);
/* Requests decided by the local store because Redis did not answer. */
uint64_t rl_fallbacks(void);

#endif
