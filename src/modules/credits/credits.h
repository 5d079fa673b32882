/*
 * credits.h — the credit ledger (API.md §4). The ONLY code that moves credit.
 *
 * Per user: an account row (balance, reserved) and an append-only log of
 * transactions: reserve, confirm, refund, grant, purchase, adjust.
 * Invariants, at every commit:
 *   balance   = Σ grant + Σ purchase + Σ adjust − Σ confirm
 *   reserved  = Σ reserve still in state 'reserved'
 *   available = balance − reserved ≥ 0          (a CHECK constraint too)
 * Every function runs INSIDE the caller's write transaction (db_tx; the
 * account row is locked: FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on
 * SQLite) and is a BUG() outside one. Settlement is exactly-once by
 * construction: confirm/refund change a reservation only while it is
 * 'reserved' (a conditional UPDATE); a second call reports applied=false.
 */
#ifndef TEMEL_CREDITS_H
#define TEMEL_CREDITS_H

#include "core/module.h"

struct db;

enum credits_rc {
    CREDITS_OK = 0,
    CREDITS_INSUFFICIENT = 1, /* available < amount: nothing changed (→ 402) */
    CREDITS_NOT_FOUND = 2,    /* no such reservation */
    /* negative: enum db_rc */
};

/* Reserve amount (> 0) for user; out_id (37 bytes) gets the reservation id. */
int credits_reserve(struct db *db, str_t user_id, int64_t amount, const char *reference, char *out_id) WARN_UNUSED;
/* Settle a reservation. *applied is true only for the call that settled it. */
int credits_confirm(struct db *db, str_t reservation_id, bool *applied) WARN_UNUSED;
int credits_refund(struct db *db, str_t reservation_id, bool *applied) WARN_UNUSED;
/* Add (or, for "adjust", add or remove) credit: type is "grant", "purchase" or "adjust".
 * An adjust may not take available below zero (CREDITS_INSUFFICIENT). */
int credits_add(struct db *db, str_t user_id, const char *type, int64_t amount, const char *reference,
                char *out_id) WARN_UNUSED;

/* Cost of an operation ("chat", "generate", "resume", "cover-letter", "image");
 * -1 if unknown. */
int64_t credits_price(const char *operation);

struct credits_balance {
    int64_t balance, reserved, available;
};
int credits_get(struct db *db, str_t user_id, struct credits_balance *out) WARN_UNUSED;

/* The user's plan (free when none was chosen): for plan-specific limits. */
struct credits_plan {
    const char *name;
    int64_t monthly;    /* credits granted each month (paid plans: each paid period) */
    int64_t ai_per_min; /* AI requests per minute */
    bool paid;
    int64_t price; /* per period, minor units of currency; 0 for free */
    const char *currency;
};
int credits_plan_of(struct db *db, str_t user_id, struct credits_plan *out) WARN_UNUSED;
/* The plan called name: 0, or -1 when there is none. */
int credits_plan_find(str_t name, struct credits_plan *out);
/* A paid period's credits as a "grant" with reference "plan:<order_id>",
 * at most once per order (a unique index on the reference): *applied is
 * true only for the call that added it. Inside the caller's transaction. */
int credits_grant_period(struct db *db, str_t user_id, int64_t amount, str_t order_id, bool *applied) WARN_UNUSED;

/* Recompute every account from the log and check every settlement.
 * 0 = consistent, 1 = problems (described in out), < 0 a db_rc. */
int credits_verify(struct db *db, struct buf *out) WARN_UNUSED;

extern const struct module credits_module;

#endif
