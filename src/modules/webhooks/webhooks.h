/*
 * webhooks.h — outbound webhooks (API.md §12, issue 14 item 5).
 *
 * An admin registers endpoints (`/api/v1/webhooks {url, events, secret}`)
 * for platform events: user.created, order.paid, ai.job.finished and
 * ticket.created (the creation of a row of the "tickets" resource, followed
 * through resource_on_change). A module that makes such an event happen calls
 * webhooks_emit() INSIDE the transaction of the change: one delivery row
 * and one `webhook.deliver` job per subscribed, active endpoint are written
 * in that transaction, so a delivery exists iff the change commits.
 *
 * The job POSTs the event through the outbound HTTP client (its SSRF guard:
 * private and loopback addresses only with TEMEL_OUTBOUND_ALLOW) with
 *   Temel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 *   Temel-Event: <event>, Temel-Delivery: <delivery id>
 * and retries with the queue's exponential backoff up to
 * TEMEL_WEBHOOK_MAX_ATTEMPTS; every attempt updates the delivery log
 * (`GET /api/v1/webhooks/{id}/deliveries`). Body:
 *   {"id": <event id>, "type": <event>, "created_at": <RFC 3339>, "data": {...}}
 * The event id is the same for every endpoint and every redelivery.
 */
#ifndef TEMEL_WEBHOOKS_H
#define TEMEL_WEBHOOKS_H

#include <jansson.h>

#include "core/module.h"

struct db;

/* The events an endpoint may subscribe to (NULL-terminated). */
extern const char *const webhooks_events[];

/* Queue a delivery of event (one of webhooks_events) with data (a JSON
 * object, not stolen) to every active endpoint subscribed to it. Call inside
 * the transaction that makes the change. 0 or a db_rc; an unknown event is
 * a BUG() (events are code, not input). */
int webhooks_emit(struct db *db, const char *event, const json_t *data) WARN_UNUSED;

extern const struct module webhooks_module;

#endif
