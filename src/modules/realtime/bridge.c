/*
 * bridge.c — events and presence across instances through Redis pub/sub
 * (REDIS_URL; src/redis). Without Redis every function here does nothing
 * and an instance works alone.
 *
 * One Redis channel, "temel:rt", carries two kinds of message, each tagged
 * with the sending instance's id (a UUIDv7 made at start):
 *   E <instance>\n<channel>\n<frame>     an event (the frame clients get)
 *   P <instance>\n<snapshot JSON>        that instance's presence rows
 * Events: realtime_publish() delivers locally at once and publishes; each
 * instance delivers what others published (its own come back and are
 * skipped). When Redis is down, redis_publish fails at once: local delivery
 * goes on, nothing waits, and src/redis reconnects with backoff.
 * Presence: each instance publishes its snapshot when its presence changes
 * (checked every RT_PRESENCE_CHECK_MS) and every RT_PRESENCE_EVERY_MS; the
 * rows of an instance not heard from for three periods are dropped, so a
 * crashed instance's users go offline.
 */
#include <stdlib.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "modules/realtime/realtime_internal.h"
#include "redis/redis.h"

#include "core/banned.h"

#define RT_BUS "temel:rt"
#define RT_PRESENCE_CHECK_MS 200

char rt_instance_id[UUID_STR_LEN + 1];
static int g_dirty;      /* presence changed since the last snapshot (atomic) */
static int g_started;    /* the snapshot timer runs (atomic) */
static h2o_timeout_t g_presence_to;
static h2o_timeout_entry_t g_presence_tick;
static h2o_loop_t *g_loop;
static int64_t g_last_snapshot_ms;

bool rt_bridge_up(void) { return redis_configured() && redis_available(); }

static void publish_snapshot(void)
{
    struct buf b = BUF_INIT(BUF_MAX_JSON_RESPONSE);
    (void)buf_printf(&b, "P %s\n", rt_instance_id);
    rt_presence_snapshot(&b);
    if (buf_ok(&b))
        (void)redis_publish(RT_BUS, b.ptr, b.len);
    buf_free(&b);
    g_last_snapshot_ms = time_mono_ms();
}

static void on_presence_tick(h2o_timeout_entry_t *e)
{
    (void)e;
    if (__atomic_exchange_n(&g_dirty, 0, __ATOMIC_ACQ_REL) ||
        time_mono_ms() - g_last_snapshot_ms >= RT_PRESENCE_EVERY_MS)
        publish_snapshot();
    h2o_timeout_link(g_loop, &g_presence_to, &g_presence_tick);
}

void rt_bridge_start(void)
{
    if (!redis_configured() || __atomic_exchange_n(&g_started, 1, __ATOMIC_ACQ_REL))
        return;
    g_loop = http_loop_context()->loop;
    h2o_timeout_init(g_loop, &g_presence_to, RT_PRESENCE_CHECK_MS);
    g_presence_tick.cb = on_presence_tick;
    h2o_timeout_link(g_loop, &g_presence_to, &g_presence_tick);
}

void rt_bridge_presence_changed(void) { __atomic_store_n(&g_dirty, 1, __ATOMIC_RELEASE); }

void rt_bridge_publish(struct rt_msg *m)
{
    if (!redis_configured())
        return;
    struct buf b = BUF_INIT(BUF_MAX_JSON_RESPONSE + 256);
    (void)buf_printf(&b, "E %s\n", rt_instance_id);
    (void)buf_append(&b, m->channel, m->channel_len);
    (void)buf_putc(&b, '\n');
    (void)buf_append(&b, m->frame, m->frame_len);
    if (buf_ok(&b))
        (void)redis_publish(RT_BUS, b.ptr, b.len); /* down: the local delivery already happened */
    buf_free(&b);
}

/* "<kind> <instance>\n<rest>": 0 with the parts, or -1 */
static int split(const char *msg, size_t len, char *kind, str_t *inst, str_t *rest)
{
    const char *nl = len > 2 ? memchr(msg, '\n', len) : NULL;
    if (!nl || msg[1] != ' ')
        return -1;
    *kind = msg[0];
    *inst = str_make(msg + 2, (size_t)(nl - msg - 2));
    *rest = str_make(nl + 1, len - (size_t)(nl + 1 - msg));
    return 0;
}

/* On loop 0 (redis_listen), for every message of every instance. */
static void on_bus(void *arg, const char *channel, const char *msg, size_t len)
{
    char kind;
    str_t inst, rest;
    (void)arg;
    (void)channel;
    if (!msg) { /* (re)subscribed: what we missed is gone; tell the others who is here */
        rt_bridge_presence_changed();
        return;
    }
    if (split(msg, len, &kind, &inst, &rest) || str_eq(inst, str_c(rt_instance_id)))
        return;
    if (kind == 'P') {
        rt_presence_remote(inst, rest, time_now_ms());
    } else if (kind == 'E') {
        const char *nl = memchr(rest.p, '\n', rest.len);
        if (!nl || nl == rest.p || (size_t)(nl - rest.p) > RT_MAX_CHANNEL)
            return;
        struct rt_msg *m = rt_msg_wrap(str_make(rest.p, (size_t)(nl - rest.p)),
                                       str_make(nl + 1, rest.len - (size_t)(nl + 1 - rest.p)));
        rt_deliver_local(m);
        rt_msg_unref(m);
    }
}

int rt_bridge_init(struct buf *err)
{
    uuid7_str(rt_instance_id);
    if (!redis_configured())
        return 0;
    if (redis_listen(RT_BUS, on_bus, NULL)) {
        (void)buf_puts(err, "REDIS_URL: realtime cannot listen on Redis (too many listeners)");
        return -1;
    }
    return 0;
}
