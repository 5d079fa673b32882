/*
 * idempotency.h — the Idempotency-Key convention of API.md §1, for every
 * route declared with ROUTE_IDEMPOTENT.
 *
 * With the header present, the handler runs inside ONE write transaction
 * together with the lookup and the stored response (handlers' own db_tx
 * calls join it, see db.h):
 *   - same key, same request hash, within 24 h → the stored status and body
 *     again, with Idempotent-Replayed: true; the handler does not run;
 *   - same key, different body → 422 IDEMPOTENCY_KEY_REUSED;
 *   - a concurrent duplicate waits on the first one's row lock (PostgreSQL:
 *     the primary key; SQLite: BEGIN IMMEDIATE) and then replays it — the
 *     two never both execute;
 *   - a handler that fails (4xx/5xx) rolls everything back and stores
 *     nothing, so a retry runs it again.
 * Keys are per caller (user id; anonymous callers by client address).
 */
#ifndef TEMEL_IDEMPOTENCY_H
#define TEMEL_IDEMPOTENCY_H

#include "http/http.h"

#define IDEMPOTENCY_TTL_MS (24ll * 3600 * 1000)

/* Run r->route->handler under the key. Returns what the handler would
 * (0 or HTTP_EFAIL); on replay sets r->status/r->out and the header. */
int idempotency_run(struct req *r, str_t key);

/* Delete expired keys (a jobs maintenance hook). 0 or a db_rc. */
int idempotency_purge(struct db *db, int64_t now_ms, int64_t *removed);

#endif
