/*
 * catalog.h — the shop (API.md §9, seeds 001/004): categories, products,
 * reviews with reactions, the cart, favorites and addresses. The
 * descriptors are public so other modules (orders, search, admin) can name
 * them.
 */
#ifndef TEMEL_CATALOG_H
#define TEMEL_CATALOG_H

#include "core/module.h"
#include "resource/resource.h"

extern const struct resource catalog_categories, catalog_products, catalog_reviews;
extern const struct resource catalog_cart_items, catalog_favorites, catalog_addresses;
extern const struct module catalog_module;

/* A cart line holds 1..CART_MAX_QUANTITY of one product. */
#define CART_MAX_QUANTITY 99
#define CATALOG_STR_(x) #x
#define CATALOG_STR(x) CATALOG_STR_(x)
#define CART_MAX_QUANTITY_TEXT CATALOG_STR(CART_MAX_QUANTITY) /* "99", for SQL text and messages */

/* Is product_id a live (not withdrawn) product? For a cart add that changed
 * no row: which refusal to give (no such product, or the line is full). */
int catalog_product_live(struct db *db, str_t product_id, bool *live) WARN_UNUSED;

/* Answer a cart: {"items":[{id, product_id, quantity, name (request language),
 * unit_price, currency, line_total, stock, available[, added_by], created_at,
 * updated_at}], "total", "currency", "totals": {currency: sum}} (withdrawn
 * products are listed, not charged). lines_sql takes the owner as its one
 * argument and selects, in this order: line id, product id, quantity,
 * ts_ms(created), ts_ms(updated), product name, price, currency, stock, 1 when
 * the product is live else 0[, added_by]. 0 or HTTP_EFAIL. */
int catalog_cart_respond(struct req *r, const char *lines_sql, str_t owner, bool added_by);

/* ---- between the files of the module ---- */
void catalog__cart_register(void);    /* cart.c: /me/cart and /me/favorites */
void catalog__reviews_register(void); /* reviews.c: reviews and reactions */
void catalog__images_register(void);  /* images.c: product images (files module) */
int catalog__seed(struct db *db, struct buf *out); /* seed.c */
/* personal data (personal.c) */
int catalog__export(struct db *db, str_t user_id, struct jw *w);
int catalog__delete(struct db *db, str_t user_id);
int catalog__migrate_guest(struct db *db, str_t guest_id, str_t user_id);

#endif
