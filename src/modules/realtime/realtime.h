/*
 * realtime.h — live updates (API.md §11, issue 13 item 4): WebSocket at
 * GET /api/v1/realtime, the same stream as Server-Sent Events at
 * GET /api/v1/realtime/sse?channels=, presence, and the publish API other
 * modules call.
 *
 * Channels: user:<id> (own only), tickets:<id> (owner or staff), staff
 * (staff only), events:<id> (any signed-in user), jobs:<id> (the AI job's
 * owner), broadcast (everyone; every connection is on it). A client receives
 * {"type":"event","channel","event","data"} for each publication on a
 * channel it joined.
 *
 * Delivery: at most once, to the connections open at the time, on every
 * loop thread of this process and — with REDIS_URL — of every instance.
 * Nothing is stored: a client that reconnects reads state through the REST
 * API.
 */
#ifndef TEMEL_REALTIME_H
#define TEMEL_REALTIME_H

#include "core/module.h"

struct db;

/* Publish event (a short name such as "order.status") on channel with data
 * (JSON text written by the caller, or an empty view for null). Callable
 * from any thread (loops, job runners); never blocks on the network: the
 * publication is handed to each loop's message queue (and to Redis). */
void realtime_publish(const char *channel, const char *event, str_t data_json);

/* The same, for a change made inside a transaction: published if and only
 * if the transaction commits (a "realtime.publish" job enqueued in it, run
 * at once by a runner thread). 0 or a db_rc. */
int realtime_publish_tx(struct db *db, const char *channel, const char *event, str_t data_json) WARN_UNUSED;

extern const struct module realtime_module;

#endif
