/* orders_internal.h — between the files of the orders module. */
#ifndef TEMEL_ORDERS_INTERNAL_H
#define TEMEL_ORDERS_INTERNAL_H

#include "http/http.h"
#include "modules/orders/orders.h"

#define ORDER_MAX_LINES 100 /* lines of one order (cart lines); more is 422 */
#define ORDER_TTL_DEFAULT_S 1800

struct req;
struct db;

/* TEMEL_ORDER_TTL_S */
int64_t orders__ttl_s(void);

/* Change an order's status inside the caller's transaction, the one way a
 * status changes: checks the state machine, gives the stock back once on
 * cancel, enqueues the customer's mail and writes the audit entry (r may be
 * NULL: a job or a webhook, actor "system" with `via` as endpoint).
 * only_from: when not NULL, the order must be in this status (expiry:
 * "pending"). Returns 0; ORDERS_ENOTFOUND; ORDERS_ESTATE (the transition is
 * not allowed from the current status, copied to from_out); or a db_rc. */
enum { ORDERS_ENOTFOUND = 1, ORDERS_ESTATE = 2 };
int orders__transition(struct db *db, struct req *r, const char *via, str_t id, const char *to,
                       const char *reason, const char *only_from, char from_out[16]) WARN_UNUSED;

/* Write the order as JSON (with its lines). *found false when missing or
 * (owner non-empty) not the owner's. */
int orders__write(struct db *db, struct req *r, str_t id, str_t owner, struct jw *w, bool *found) WARN_UNUSED;

/* stripe.c */
int orders__stripe_config(const struct config *cfg, struct buf *err);
void orders__stripe_register_routes(void);
void orders__stripe_register_jobs(void);

#endif
