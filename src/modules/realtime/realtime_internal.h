/*
 * realtime_internal.h — what the realtime module's files share. Only this
 * module includes it.
 *
 * Threads: every loop thread that has a realtime client has one hub (made
 * by the first client there). A hub owns its clients, its channel table and
 * its timers and is touched only by its thread; publications reach it
 * through its receiver on the loop's h2o message queue. The list of hubs
 * and the presence table are shared (a mutex, held for a few instructions).
 *
 * A client (WebSocket or SSE) never writes to its socket from inside a
 * delivery: it queues the frame and asks its hub to flush it at the end of
 * the loop iteration, the only place where a client may be closed and freed
 * (so a delivery loop never sees a client disappear under it).
 */
#ifndef TEMEL_REALTIME_INTERNAL_H
#define TEMEL_REALTIME_INTERNAL_H

#include "core/uuid.h"
#include "http/http.h"
#include "modules/realtime/realtime.h"

#define RT_MAX_SUBS 64          /* channels per connection */
#define RT_MAX_CHANNEL 80       /* bytes of a channel name */
#define RT_MAX_INFLIGHT 16      /* WebSocket requests waiting behind a permission check */
#define RT_MAX_BACKLOG (1u << 20) /* bytes queued for a slow client before it is dropped */
#define RT_MAX_EVENT 64         /* bytes of an event name */

struct rt_settings {
    int64_t ping_ms;         /* WebSocket ping / SSE heartbeat interval */
    int64_t auth_timeout_ms; /* the first WebSocket message must arrive within it */
    int64_t max_message;     /* bytes of one inbound WebSocket message */
};
extern struct rt_settings rt_cfg;

/* A published event: the frame is the same for every recipient. Shared by
 * every hub it is sent to (reference counted across threads). */
struct rt_msg {
    int refs; /* atomic */
    char *channel;
    size_t channel_len;
    char *frame; /* {"type":"event","channel","event","data"} */
    size_t frame_len;
};
struct rt_msg *rt_msg_new(str_t channel, str_t event, str_t data_json);
/* A message around a frame built elsewhere (another instance's). */
struct rt_msg *rt_msg_wrap(str_t channel, str_t frame);
void rt_msg_unref(struct rt_msg *m);
/* The "channel", "event" and "data" members of an event object (data: raw
 * JSON, or null when empty) — the frame clients get and the publish job's
 * payload. */
void rt_event_fields(struct jw *w, str_t channel, str_t event, str_t data_json);

struct rt_client;
struct rt_hub;
struct rt_sub;

struct rt_client_ops {
    const char *transport;                           /* "ws" | "sse" */
    void (*send)(struct rt_client *c, str_t frame);  /* queue only */
    void (*heartbeat)(struct rt_client *c);          /* ping tick; may mark the client for closing */
    void (*flush)(struct rt_client *c);              /* write what is queued; may free the client */
};

struct rt_client {
    const struct rt_client_ops *ops;
    struct rt_hub *hub;
    char user_id[UUID_STR_LEN + 1]; /* empty until authenticated */
    char role[16];
    struct rt_sub *subs; /* this client's subscriptions */
    int nsubs;
    bool in_presence;
    bool flush_queued;
    h2o_linklist_t link;       /* hub->clients */
    h2o_linklist_t flush_link; /* hub->flush */
};

/* The hub of the calling loop thread (made on first use). */
struct rt_hub *rt_hub_get(void);
void rt_hub_add(struct rt_hub *h, struct rt_client *c, const struct rt_client_ops *ops);
/* An authenticated client starts (WebSocket or SSE): it joins "broadcast"
 * and presence, and out gets its first frame {"type":"ready","user_id",
 * "role"[,"channels"]} (channels NULL: the member is left out). */
void rt_client_ready(struct rt_client *c, char *const *channels, int n, struct buf *out);
/* Leave every channel, presence and the hub (the client is freed by its owner). */
void rt_hub_remove(struct rt_client *c);
/* Ask the hub to call c->ops->flush at the end of this loop iteration. */
void rt_hub_want_flush(struct rt_client *c);
/* Per-hub timers for the first WebSocket message. */
void rt_hub_link_auth_timer(struct rt_hub *h, h2o_timeout_entry_t *e);
#define RT_CLOSE_POLL_MS 10
void rt_hub_link_close_timer(struct rt_hub *h, h2o_timeout_entry_t *e); /* RT_CLOSE_POLL_MS */

enum rt_sub_rc { RT_SUB_OK = 0, RT_SUB_ALREADY = 1, RT_SUB_EFULL = -1 };
/* Join a channel (the caller checked the permission): the bounded adder of
 * a client's subscriptions (RT_MAX_SUBS). */
int rt_subscribe(struct rt_client *c, str_t channel);
/* false when c was not on the channel */
bool rt_unsubscribe(struct rt_client *c, str_t channel);

/* Local delivery of m on every hub of this process. */
void rt_deliver_local(struct rt_msg *m);

/* Presence: users with at least one open authenticated connection here. */
void rt_presence_join(struct rt_client *c);
void rt_presence_leave(struct rt_client *c);
struct rt_presence_row {
    char user_id[UUID_STR_LEN + 1];
    int64_t connections;
    int64_t since_ms;
};
/* Every online user (merged across instances with Redis), newest first;
 * *rows is malloc'd (free it). */
size_t rt_presence_list(struct rt_presence_row **rows);
/* This process's own rows as JSON {"users":[[id,connections,since],...]}
 * for the other instances. */
void rt_presence_snapshot(struct buf *out);
/* Another instance's snapshot (or its departure when text is empty). */
void rt_presence_remote(str_t instance, str_t snapshot_json, int64_t now_ms);

/* Counters for /metrics. */
struct rt_stats {
    int64_t ws, sse, published, delivered, dropped_slow;
};
struct rt_stats rt_stats_get(void);
void rt_stat_add(int64_t *counter, int64_t n);
extern struct rt_stats rt_stats;

/* channels.c: "user:<id>" etc. Syntax first (a 422/error frame), then the
 * caller's right to read it: 0, or HTTP_EFAIL with 403 FORBIDDEN recorded. */
int rt_channel_syntax(str_t name, struct buf *why) WARN_UNUSED;
int rt_channel_allowed(struct req *r, str_t name) WARN_UNUSED;

/* ws.c / sse.c: the route handlers */
int rt_h_websocket(struct req *r);
int rt_h_sse(struct req *r);

/* bridge.c: Redis fan-out between instances (no-ops without REDIS_URL). */
#define RT_PRESENCE_EVERY_MS 5000 /* each instance's presence snapshot; 3 missed: its users are offline */
extern char rt_instance_id[UUID_STR_LEN + 1];
int rt_bridge_init(struct buf *err);        /* module init (main thread) */
void rt_bridge_start(void);                 /* on the first hub's loop */
void rt_bridge_publish(struct rt_msg *m);   /* any thread; takes a reference */
void rt_bridge_presence_changed(void);      /* any thread */
bool rt_bridge_up(void);

#endif
