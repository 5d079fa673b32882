/* ratelimit.c — GCRA and the in-process store. See ratelimit.h. */
#include "http/ratelimit.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "redis/redis.h"

#include "core/banned.h"

int64_t rl_gcra(const struct rl_rule *rule, int64_t tat_ms, int64_t now_ms, struct rl_result *res)
{
    int64_t period_ms = rule->period_s * 1000;
    /* T in ms, rounded up so N requests never exceed the period's budget */
    int64_t t_ms = (period_ms + rule->limit - 1) / rule->limit;
    int64_t tau = t_ms * rule->limit; /* burst of exactly `limit` */
    int64_t base = tat_ms > now_ms ? tat_ms : now_ms;
    int64_t new_tat = base + t_ms;
    int64_t allow_at = new_tat - tau;
    res->limit = rule->limit;
    if (now_ms < allow_at) {
        res->allowed = false;
        res->remaining = 0;
        res->retry_after_s = (allow_at - now_ms + 999) / 1000;
        if (res->retry_after_s < 1)
            res->retry_after_s = 1;
        res->reset_s = (base - now_ms + 999) / 1000;
        return tat_ms;
    }
    res->allowed = true;
    res->retry_after_s = 0;
    res->remaining = (tau - (new_tat - now_ms)) / t_ms;
    if (res->remaining < 0)
        res->remaining = 0;
    res->reset_s = (new_tat - now_ms + 999) / 1000;
    return new_tat;
}

#define NSHARDS 16
#define PROBE 8

struct slot {
    uint64_t h;      /* 0 = empty */
    int64_t tat_ms;
};

struct shard {
    pthread_mutex_t mu;
    struct slot *slots;
};

struct mem_store {
    struct rl_store base;
    struct shard shards[NSHARDS];
    size_t per_shard; /* power of two */
    unsigned char hkey[crypto_shorthash_KEYBYTES];
};

static uint64_t key_hash(struct mem_store *m, enum rl_class cls, str_t key)
{
    unsigned char out[crypto_shorthash_BYTES];
    uint64_t h;
    /* keyed SipHash: clients cannot aim collisions at one shard */
    crypto_shorthash(out, (const unsigned char *)key.p, key.len, m->hkey);
    memcpy(&h, out, sizeof(h));
    h ^= (uint64_t)(cls + 1) * 0x9E3779B97F4A7C15ull;
    return h ? h : 1;
}

static int mem_take(struct rl_store *s, enum rl_class cls, str_t key, const struct rl_rule *rule, int64_t now_ms,
                    struct rl_result *res)
{
    struct mem_store *m = (struct mem_store *)s;
    uint64_t h = key_hash(m, cls, key);
    struct shard *sh = &m->shards[h % NSHARDS];
    size_t mask = m->per_shard - 1, start = (size_t)(h / NSHARDS) & mask;
    struct slot *found = NULL, *victim = NULL;

    pthread_mutex_lock(&sh->mu);
    for (size_t i = 0; i < PROBE; i++) {
        struct slot *sl = &sh->slots[(start + i) & mask];
        if (sl->h == h) {
            found = sl;
            break;
        }
        /* empty or fully replenished slots are free; else keep the stalest */
        if (sl->h == 0) {
            if (!victim || victim->h != 0)
                victim = sl;
        } else if (!victim || (victim->h != 0 && sl->tat_ms < victim->tat_ms)) {
            victim = sl;
        }
    }
    if (!found) {
        found = victim;
        found->h = h;
        found->tat_ms = 0;
    }
    found->tat_ms = rl_gcra(rule, found->tat_ms, now_ms, res);
    pthread_mutex_unlock(&sh->mu);
    return 0;
}

static void mem_destroy(struct rl_store *s)
{
    struct mem_store *m = (struct mem_store *)s;
    for (int i = 0; i < NSHARDS; i++) {
        pthread_mutex_destroy(&m->shards[i].mu);
        free(m->shards[i].slots);
    }
    free(m);
}

struct rl_store *rl_store_memory(size_t slots)
{
    struct mem_store *m = xcalloc(1, sizeof(*m));
    size_t per = 64;
    while (per * NSHARDS < slots)
        per *= 2;
    m->base.take = mem_take;
    m->base.destroy = mem_destroy;
    m->per_shard = per;
    crypto_shorthash_keygen(m->hkey);
    for (int i = 0; i < NSHARDS; i++) {
        pthread_mutex_init(&m->shards[i].mu, NULL);
        m->shards[i].slots = xcalloc(per, sizeof(struct slot));
    }
    return &m->base;
}

/* ---- the shared store (Redis) ---- */

/* KEYS[1] the key; ARGV[1] T (ms), ARGV[2] tau (ms). The same step as
 * rl_gcra() on the server's clock; returns {stored TAT before, now} so the
 * caller recomputes the same decision (and its headers) with rl_gcra(). */
static struct redis_script gcra_script = {
    .src = "local t = tonumber(ARGV[1]) local tau = tonumber(ARGV[2]) "
           "local tm = redis.call('TIME') local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000) "
           "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') "
           "local base = tat if now > base then base = now end "
           "local new_tat = base + t "
           "if now >= new_tat - tau then redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now) end "
           "return {tat, now}",
};

struct redis_rl {
    struct rl_store base;
    struct rl_store *local;
};

static _Atomic uint64_t g_fallbacks;
static _Atomic int64_t g_fallback_logged; /* the outage (redis_stats().outages) last logged */

uint64_t rl_fallbacks(void) { return atomic_load(&g_fallbacks); }

static int redis_take(struct rl_store *s, enum rl_class cls, str_t key, const struct rl_rule *rule, int64_t now_ms,
                      struct rl_result *res)
{
    struct redis_rl *m = (struct redis_rl *)s;
    char kb[600], tb[24], taub[24];
    int64_t t_ms = (rule->period_s * 1000 + rule->limit - 1) / rule->limit;
    redisReply *rep = NULL;
    int kn = snprintf(kb, sizeof(kb), "temel:rl:%s:%.*s", rl_class_names[cls], (int)(key.len > 512 ? 512 : key.len),
                      key.p);
    int tn = snprintf(tb, sizeof(tb), "%lld", (long long)t_ms);
    int taun = snprintf(taub, sizeof(taub), "%lld", (long long)(t_ms * rule->limit));
    const char *argv[] = {kb, tb, taub};
    size_t lens[] = {(size_t)kn, (size_t)tn, (size_t)taun};
    int rc = redis_eval(&gcra_script, &rep, 1, 3, argv, lens);
    if (!rc && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[0]->type == REDIS_REPLY_INTEGER &&
        rep->element[1]->type == REDIS_REPLY_INTEGER) {
        (void)rl_gcra(rule, rep->element[0]->integer, rep->element[1]->integer, res);
        redis_reply_free(rep);
        return 0;
    }
    {
        int64_t outage = (int64_t)redis_stats().outages, last = atomic_load(&g_fallback_logged);
        if (outage != last && atomic_compare_exchange_strong(&g_fallback_logged, &last, outage))
            log_warn("rate limit: Redis did not answer (%s); limits are per instance until it is back",
                     rc == RDS_ETIMEOUT ? "timeout" : rc ? "unavailable" : rep->type == REDIS_REPLY_ERROR ? rep->str : "bad reply");
    }
    redis_reply_free(rep);
    atomic_fetch_add(&g_fallbacks, 1);
    return m->local->take(m->local, cls, key, rule, now_ms, res);
}

static void redis_destroy(struct rl_store *s)
{
    struct redis_rl *m = (struct redis_rl *)s;
    m->local->destroy(m->local);
    free(m);
}

struct rl_store *rl_store_redis(struct rl_store *local)
{
    struct redis_rl *m = xcalloc(1, sizeof(*m));
    m->base.take = redis_take;
    m->base.destroy = redis_destroy;
    m->local = local;
    return &m->base;
}
