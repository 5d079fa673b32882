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

/* A new pending order (its expiry job enqueued) owned by the caller, inside
 * the caller's transaction. address: JSON object text or STR_NULL; credits:
 * for kind "credits", else 0. */
struct order_head {
    const char *id, *kind, *currency;
    int64_t total, credits;
    str_t address;
};
int orders__insert(struct req *r, const struct order_head *h) WARN_UNUSED;
/* One line: line_total = unit_price * quantity (the caller checked overflow). */
int orders__insert_line(struct db *db, const char *order_id, int64_t position, const char *product_id, str_t name,
                        int64_t unit_price, int64_t quantity, const char *currency) WARN_UNUSED;

/* A stored {"tr","en","pl"} value as a plain string of the request's
 * language (pool memory; "" when none). */
str_t orders__name_in_lang(struct req *r, str_t stored);

/* packs.c: credit packs and buying them (issue 11 item 3) */
void orders__packs_register_routes(void);
/* Inside the transaction that marks the order paid: a credits order adds
 * its credits to the buyer's ledger as a "purchase" (once: the transition
 * to paid happens once). Other orders: nothing. 0 or a db_rc. */
int orders__credit_purchase(struct db *db, str_t order_id) WARN_UNUSED;
/* Inside the transaction that marks it refunded: a credits order takes its
 * credits back (an "adjust"), as far as they are still available. */
int orders__credit_refund(struct db *db, str_t order_id) WARN_UNUSED;

/* stripe.c */
int orders__stripe_config(const struct config *cfg, struct buf *err);
void orders__stripe_register_routes(void);
void orders__stripe_register_jobs(void);

#endif
