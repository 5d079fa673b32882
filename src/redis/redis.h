/*
 * redis.h — the Redis client (hiredis) shared by every floor above: rate
 * limits, caches, pub/sub between instances. docs/internals.md has a page.
 *
 * Settings (redis_config): REDIS_URL = redis://[[user]:pass@]host[:port][/db]
 * (unset: no Redis; every call returns RDS_EDOWN and callers use their local
 * path), TEMEL_REDIS_TIMEOUT_MS (per call, default 250).
 *
 * Threads:
 *   - A loop thread calls redis_thread_init(loop, idx) after
 *     coro_thread_init: it gets one command connection and (when it has
 *     subscriptions) one subscriber connection, both hiredis async contexts
 *     driven by the loop's socket events (an evloop socket on a dup of the
 *     fd, H2O_SOCKET_FLAG_DONT_READ: h2o reports readiness, hiredis reads and
 *     writes). A 50 ms loop timer reconnects (backoff 50 ms doubling to 2 s;
 *     a failed attempt never blocks the loop — but a host *name* is resolved
 *     by hiredis with getaddrinfo at connect: use an address or localhost)
 *     and drops a connection whose oldest command has waited past 4× the
 *     call timeout (a hung server), failing its calls.
 *   - Any other thread (job runners, the main thread, CLI) gets a
 *     thread-local synchronous connection with the same timeout, reconnected
 *     with the same backoff (a call in a backoff window fails at once).
 *
 * Calls (any thread):
 *   redis_cmd(&reply, fmt, ...)   hiredis format ("%s", "%b" ptr+len, "%lld").
 *   redis_cmdv(&reply, argc, argv, lens)
 *   redis_eval(script, &reply, nkeys, argc, argv, lens)   EVALSHA, loading
 *                                  the script on NOSCRIPT, then once more.
 *   In a coroutine on a loop thread the coroutine waits (the loop serves
 *   others) until the reply or min(call timeout, coroutine deadline). On a
 *   loop thread outside a coroutine a call that needs a reply returns
 *   RDS_EDOWN (a loop never blocks).
 *   Returns 0 with *reply set (it may be a REDIS_REPLY_ERROR: check type;
 *   free it with redis_reply_free), or RDS_EDOWN (not configured, not
 *   connected, connection lost) / RDS_ETIMEOUT, with *reply NULL.
 *   redis_send(fmt, ...)          fire and forget (no reply kept): on a loop
 *                                  thread it is queued on the connection and
 *                                  never waits. 0 or RDS_EDOWN.
 *   redis_publish(channel, msg, len)  = redis_send("PUBLISH %s %b").
 *
 * Pub/sub:
 *   redis_subscribe(channel, pattern, cb, arg)  on a loop thread: cb(arg,
 *       channel, msg, len) runs on that loop (not in a coroutine) for every
 *       message on the channel (PSUBSCRIBE when pattern). After every
 *       (re)subscription the entry gets cb(arg, channel, NULL, 0): messages
 *       may have been missed meanwhile (drop what they would have told).
 *       At most REDIS_SUBS_MAX entries per loop; -1 past it.
 *   redis_unsubscribe(channel, pattern, cb, arg)  the same entry, removed.
 *   redis_listen(channel, cb, arg)  before the server starts (main thread,
 *       a module's init): a process-wide subscription delivered on loop 0.
 *
 * Outage: redis_available() is false from the first failure (connect,
 * connection lost, timeout) until a connection answers again; one log line
 * when an outage starts and one when it ends. Caches skip Redis while it is
 * false; the rate limiter tries anyway (fast: a connection in backoff fails
 * at once) and falls back to its local store.
 */
#ifndef TEMEL_REDIS_H
#define TEMEL_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum { RDS_EDOWN = -1, RDS_ETIMEOUT = -2 };

#define REDIS_SUBS_MAX 256
#define REDIS_LISTEN_MAX 32

struct st_h2o_evloop_t;

/* Read REDIS_URL and TEMEL_REDIS_TIMEOUT_MS; 0, or -1 with "VAR: reason". */
int redis_config(struct buf *err);
/* Parse a redis:// URL (exposed for the unit test). Fills host (malloc'd),
 * port, db, user/pass (malloc'd or NULL); 0 or -1 with the reason in err. */
struct redis_url {
    char *host, *user, *pass;
    int port, db;
};
int redis_url_parse(const char *url, struct redis_url *out, struct buf *err);
void redis_url_free(struct redis_url *u);

bool redis_configured(void);
bool redis_available(void);

void redis_thread_init(struct st_h2o_evloop_t *loop, int idx);
void redis_thread_release(void);

int redis_cmd(redisReply **reply, const char *fmt, ...);
int redis_cmdv(redisReply **reply, int argc, const char **argv, const size_t *lens);
int redis_send(const char *fmt, ...);
int redis_publish(const char *channel, const void *msg, size_t len);
void redis_reply_free(redisReply *r);

struct redis_script {
    const char *src;
    char sha[41];      /* filled on first use (by whichever thread comes first) */
    _Atomic bool ready; /* sha is complete */
};
int redis_eval(struct redis_script *s, redisReply **reply, int nkeys, int argc, const char **argv, const size_t *lens);

typedef void (*redis_msg_cb)(void *arg, const char *channel, const char *msg, size_t len);
int redis_subscribe(const char *channel, bool pattern, redis_msg_cb cb, void *arg);
void redis_unsubscribe(const char *channel, bool pattern, redis_msg_cb cb, void *arg);
int redis_listen(const char *channel, redis_msg_cb cb, void *arg);

/* Caches in Redis (the AI response cache, the public read cache). A cache
 * never fails its caller: a call that gets no usable answer (not configured,
 * outage, timeout, an error reply) counts one skip in
 * temel_redis_cache_skipped_total (the warning metric) and the caller goes
 * on without the cache. On a loop thread outside a coroutine a get skips.
 *   redis_cache_get(key, out)   1 hit (the value appended to out; a value
 *                               larger than out's cap is a miss), 0 miss,
 *                               RDS_EDOWN skipped.
 *   redis_cache_put(key, head, body, ttl_ms)   SET key "<head>\n<body>" PX
 *                               ttl_ms (the value formatted straight from both
 *                               parts), fire and forget on a loop; 0 or
 *                               RDS_EDOWN (skipped).
 *   redis_cache_skip()          count one skip (a caller's own script). */
int redis_cache_get(const char *key, struct buf *out);
int redis_cache_put(const char *key, str_t head, str_t body, int64_t ttl_ms);
void redis_cache_skip(void);

struct redis_stats {
    uint64_t calls, errors, timeouts, reconnects, outages, messages, cache_skips;
    bool up;
};
struct redis_stats redis_stats(void);
/* Prometheus lines (temel_redis_*) for /metrics. */
void redis_metrics(struct buf *out);

#endif
