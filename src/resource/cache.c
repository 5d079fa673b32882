/*
 * cache.c — the public read cache of resources that declare public_cache
 * (resource.h): anonymous GET <path> and GET <path>/{id} answers kept in
 * Redis for a short time and shared by every instance.
 *
 * Keys are stamped with a version per resource:
 *   temel:pc:v:<name>                          the version (INCR on write)
 *   temel:pc:<name>:<version>:<lang>:<raw path> "<etag>\n<body>", PX ttl
 * A read asks for the version and the entry under it in one script; a miss
 * runs the handler and stores its 200 under the version it read. A write
 * bumps the version AFTER its transaction commits, waiting for Redis' reply
 * before the response goes out — so a client that saw the write answered
 * reads, on any instance, under the new version: a miss, then the committed
 * row. A reader that read the old version and the old row just before the
 * commit stores them under the old version, which nobody reads any more:
 * the stale fill cannot be served (the race a delete-on-write cache has).
 *
 * Only anonymous callers (what they see does not depend on who asks) and
 * only 200s; the language is part of the key (the body is localized) and
 * the ETag is kept with the body, so If-None-Match gets its 304 from the
 * cache. Redis not answering (or not configured) is a miss that is not
 * stored (temel_redis_cache_skipped_total): the handler answers as always.
 * A bump that Redis did not take (an outage during the write) leaves other
 * instances' entries of the old version alive until their TTL: that TTL
 * (TEMEL_PUBLIC_CACHE_TTL_S) bounds such staleness.
 */
#include "core/log.h"
#include "redis/redis.h"
#include "resource/internal.h"

#include "core/banned.h"

#define KEY_PREFIX "temel:pc:"
#define RAW_PATH_MAX 1024 /* a longer request (a huge filter) is not cached */
#define ENTRY_MAX (4u << 20)

static int64_t g_ttl_ms;

void resource_cache_configure(int64_t ttl_ms) { g_ttl_ms = ttl_ms; }

static struct redis_script lookup_script = {
    .src = "local v = redis.call('GET', KEYS[1]) or '0' "
           "local e = redis.call('GET', ARGV[1] .. v .. ARGV[2]) "
           "if e then return {v, e} end return {v}"};

static void version_key(const struct resource *res, struct buf *out)
{
    (void)buf_printf(out, KEY_PREFIX "v:%s", res->name);
}

bool resource__cache_wanted(struct req *r, const struct resource *res)
{
    return res->public_cache && g_ttl_ms > 0 && redis_configured() && r->user_id.len == 0 &&
           r->raw_path.len <= RAW_PATH_MAX;
}

/* A hit: the ETag, then 304 when If-None-Match matches it, else the body. */
static void answer(struct req *r, str_t etag, str_t body)
{
    str_t inm = req_header_get(r, "if-none-match");
    if (etag.len) {
        req_header(r, "etag", etag);
        if (inm.p && http_etag_matches(inm, etag)) {
            r->status = 304;
            return;
        }
    }
    jw_raw(&r->w, body);
}

int resource__cache_lookup(struct req *r, const struct resource *res, struct resource_cache_entry *e)
{
    static const char *const langs[] = {"en", "tr", "pl"};
    /* request-pool buffers: nothing to free on the way out */
    struct buf *vk = req_buf(r, 128), *pre = req_buf(r, 128), *suf = req_buf(r, RAW_PATH_MAX + 16);
    redisReply *rep = NULL;
    int hit = 0;
    e->key = NULL;
    version_key(res, vk);
    (void)buf_printf(pre, KEY_PREFIX "%s:", res->name);
    (void)buf_printf(suf, ":%s:%.*s", langs[resource__lang(r)], STR_FMT(r->raw_path));
    const char *argv[] = {vk->ptr, pre->ptr, suf->ptr};
    const size_t lens[] = {vk->len, pre->len, suf->len};
    if (redis_eval(&lookup_script, &rep, 1, 3, argv, lens) || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        redis_reply_free(rep);
        redis_cache_skip();
        return -1;
    }
    if (rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_STRING) {
        const char *p = rep->element[1]->str, *nl = memchr(p, '\n', rep->element[1]->len);
        if (nl) { /* answered straight from the reply: the body is copied once, into the response */
            answer(r, str_make(p, (size_t)(nl - p)), str_make(nl + 1, rep->element[1]->len - (size_t)(nl + 1 - p)));
            hit = 1;
        }
    }
    if (!hit) { /* the entry's key under the version read: where the miss is stored */
        struct buf *key = req_buf(r, 2 * RAW_PATH_MAX);
        (void)buf_printf(key, "%.*s%.*s%.*s", (int)pre->len, pre->ptr, (int)rep->element[0]->len,
                         rep->element[0]->str, (int)suf->len, suf->ptr);
        e->key = buf_ok(key) ? buf_cstr(key) : NULL;
    }
    redis_reply_free(rep);
    return hit;
}

void resource__cache_store(struct req *r, const struct resource_cache_entry *e, str_t etag)
{
    if (!e->key || (r->status != 0 && r->status != 200) || !buf_ok(&r->out))
        return;
    if (etag.len + 1 + r->out.len <= ENTRY_MAX)
        (void)redis_cache_put(e->key, etag, buf_str(&r->out), g_ttl_ms);
}

static void bump_one(const struct resource *res)
{
    struct buf vk = BUF_INIT(128);
    redisReply *rep = NULL;
    version_key(res, &vk);
    if (redis_cmd(&rep, "INCR %s", buf_cstr(&vk)) || rep->type != REDIS_REPLY_INTEGER) {
        redis_cache_skip();
        log_warn("public cache: the %s version was not bumped (Redis did not answer): other instances may "
                 "answer from their entries for up to TEMEL_PUBLIC_CACHE_TTL_S",
                 res->name);
    }
    redis_reply_free(rep);
    buf_free(&vk);
}

void resource_cache_bump(const struct resource *res)
{
    if (g_ttl_ms <= 0 || !redis_configured())
        return;
    if (res->public_cache)
        bump_one(res);
    if (res->invalidates && res->invalidates->public_cache)
        bump_one(res->invalidates);
}
