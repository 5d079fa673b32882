/*
 * orders.h — orders and payments (API.md §9, issue 11).
 *
 * An order is the caller's cart turned into lines frozen at the time of the
 * order (product id, name in the request's language, unit price, quantity,
 * currency) with the total in minor units; the stock of every line is taken
 * in the same transaction that empties the cart.
 *
 * Status machine (orders__transition is the only code that changes it):
 *   pending → paid → shipped → delivered
 *   pending | paid → cancelled        (stock back, exactly once)
 *   paid → refunded
 * Unpaid orders expire after TEMEL_ORDER_TTL_S (default 1800): the job
 * orders.expire cancels them (cancel_reason "expired").
 */
#ifndef TEMEL_ORDERS_H
#define TEMEL_ORDERS_H

#include "core/module.h"

struct db;
struct req;

extern const struct module orders_module;

/* Paid events (issue 12 item 1). Inside the caller's write transaction:
 * a pending order of kind "event" for one seat (one line "event:<id>",
 * its expiry job enqueued, mailed and audited like any order); id gets
 * the order's id. r: the buyer's own request (r->user_id is user_id; the
 * mail follows its Accept-Language, the audit names its caller), or NULL
 * (mailed in locale, audited as the system's). 0 or a db_rc. */
struct orders_event_seat {
    str_t event_id, title;
    int64_t price; /* minor units */
    const char *currency;
};
int orders_create_event(struct db *db, struct req *r, str_t user_id, const char *locale,
                        const struct orders_event_seat *seat, char id[37]) WARN_UNUSED;
/* Cancel the order if it is still pending (its registration was
 * cancelled); anything else is left alone. 0 or a db_rc. */
int orders_cancel_pending(struct db *db, str_t order_id, const char *reason) WARN_UNUSED;
/* Told inside the transaction of every status change of an event order
 * (to: paid, cancelled, refunded, ...). 0 or a db_rc. */
typedef int (*orders_event_hook)(struct db *db, str_t order_id, const char *to);
void orders_set_event_hook(orders_event_hook fn);

#endif
