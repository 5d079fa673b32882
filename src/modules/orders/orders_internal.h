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

/* At the end of the transaction that made order id (after its lines):
 * the customer's "received" mail and the audit entry order.create (from
 * the request r, or with r NULL as the system's with endpoint via). */
int orders__created(struct db *db, struct req *r, const char *via, str_t id) WARN_UNUSED;
/* Audit e from the request r, or (r NULL) as the system with endpoint via. */
struct audit_entry;
int orders__audit(struct db *db, struct req *r, const char *via, struct audit_entry *e) WARN_UNUSED;

/* Write the order as JSON (with its lines). *found false when missing or
 * (owner non-empty) not the owner's. */
int orders__write(struct db *db, struct req *r, str_t id, str_t owner, struct jw *w, bool *found) WARN_UNUSED;

/* Answer the order (status 200/201; 201 adds its Location); 404 when missing
 * or not the caller's (admins see every order). 0 or HTTP_EFAIL. */
int orders__respond(struct req *r, str_t id, int status);

/* A new pending order (its expiry job enqueued) owned by the caller, inside
 * the caller's transaction. address: JSON object text or STR_NULL; credits:
 * for kind "credits", else 0. */
struct order_head {
    const char *id, *kind, *currency;
    int64_t total, credits;
    str_t address;
    const char *plan; /* kind "plan": the plan's name, else NULL */
    bool renewal;     /* kind "plan": charged off-session by the renewal job */
    str_t company;    /* a company order: the company's id, else empty */
    str_t event;      /* kind "event": the event's id, else empty */
};
int orders__insert(struct req *r, const struct order_head *h) WARN_UNUSED;
/* The same for a job: the owner and the mail locale given. */
int orders__insert_db(struct db *db, str_t user_id, const char *locale, const struct order_head *h) WARN_UNUSED;
/* One line: line_total = unit_price * quantity (the caller checked overflow). */
int orders__insert_line(struct db *db, const char *order_id, int64_t position, const char *product_id, str_t name,
                        int64_t unit_price, int64_t quantity, const char *currency) WARN_UNUSED;

/* packs.c: credit packs and buying them (issue 11 item 3) */
void orders__packs_register_routes(void);
/* Inside the transaction that marks the order paid: a credits order adds
 * its credits to the buyer's ledger as a "purchase" (once: the transition
 * to paid happens once). Other orders: nothing. 0 or a db_rc. */
int orders__credit_purchase(struct db *db, str_t order_id) WARN_UNUSED;
/* Inside the transaction that marks it refunded: a credits order takes its
 * credits back (an "adjust"), as far as they are still available. */
int orders__credit_refund(struct db *db, str_t order_id) WARN_UNUSED;
/* Take up to credits back from user (an "adjust" with reference
 * "refund order:<order_id>"), as far as they are available. */
int orders__credit_take_back(struct db *db, str_t user, int64_t credits, str_t order_id) WARN_UNUSED;

/* plans.c: paid plans as subscriptions (issue 11 item 3) */
int orders__plans_config(struct buf *err);
void orders__plans_register_routes(void);
void orders__plans_register_jobs(void);
/* Inside the transaction that marks the order paid: a plan order starts
 * (or extends) the buyer's subscription by one period and grants the plan's
 * credits once. Other orders: nothing. 0 or a db_rc. */
int orders__plan_paid(struct db *db, str_t order_id) WARN_UNUSED;
/* Inside the webhook's transaction: Stripe's word on a plan order's payment.
 * succeeded: the card (payment_method) to charge renewals with; failed:
 * a renewal that failed is marked so (the plan ends at period end) — also
 * when the intent job could not charge it (Stripe refused for good). */
/* Inside the transaction that marks a plan order refunded: the order that
 * paid the running period ends the plan now (a renewal paid ahead: at the
 * end of the period before it) and takes the period's credits back as far
 * as unspent; an older period's order changes nothing. */
int orders__plan_refunded(struct db *db, str_t order_id) WARN_UNUSED;
int orders__plan_payment(struct db *db, const char *order_id, bool succeeded, str_t payment_method) WARN_UNUSED;
/* The intent job of a plan order: the Stripe customer of the buyer (NULL
 * until made), and for a renewal the saved card. Pool-free: copied into out. */
struct plan_charge {
    bool plan, renewal;
    char user_id[40], email[256], customer[128], payment_method[128];
};
int orders__plan_charge(struct db *db, const char *order_id, struct plan_charge *out) WARN_UNUSED;
int orders__plan_set_customer(struct db *db, const char *user_id, const char *customer) WARN_UNUSED;

/* stripe.c */
int orders__stripe_config(const struct config *cfg, struct buf *err);
void orders__stripe_register_routes(void);
void orders__stripe_register_jobs(void);
/* Enqueue the job that makes the order's PaymentIntent (one per order). */
int orders__stripe_enqueue_intent(struct db *db, str_t order_id) WARN_UNUSED;

#endif
