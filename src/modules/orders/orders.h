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

extern const struct module orders_module;

#endif
