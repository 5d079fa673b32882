/*
 * orders.c — orders (API.md §9, issue 11 item 1) and the module entry.
 *
 *   POST  /api/v1/orders                {address_id} (Idempotency-Key): the cart
 *                                       becomes an order; 201 with the order
 *   GET   /api/v1/orders                the caller's orders (status filter, pages)
 *   GET   /api/v1/orders/{id}           one order with its lines (owner or admin)
 *   POST  /api/v1/orders/{id}/cancel    pending → cancelled (stock back)
 *   GET   /api/v1/admin/orders          ?status=&user_id= (admin)
 *   PATCH /api/v1/orders/{id}           {status} (admin; the state machine)
 *
 * Never oversold: each line takes its stock with ONE conditional statement
 *   UPDATE catalog_products SET stock = stock - q WHERE id = ? AND stock >= q
 * inside the order's write transaction. PostgreSQL locks the row and
 * re-evaluates `stock >= q` on the committed row after waiting for another
 * writer (READ COMMITTED), SQLite has one writer at a time (BEGIN
 * IMMEDIATE): whichever way transactions interleave — in one process or
 * several on one database — the sum taken never exceeds the stock, and a
 * line that finds too little (0 rows) rolls the whole order back with 409
 * naming the product. Lines take their rows in product id order, so two
 * orders never wait on each other in a cycle.
 *
 * Giving stock back happens only in orders__transition, in the transaction
 * whose conditional status UPDATE (WHERE status = <read under lock>) moved the
 * order to cancelled: one transaction can do that, so stock comes back once.
 * Expiry: every order enqueues orders.expire at its expiry time, and a cron
 * sweep (every minute) catches any left over; both cancel only an order still
 * pending and past its expires_at.
 */
#include <stdio.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "http/problem.h"
#include "jobs/jobs.h"
#include "modules/audit/audit.h"
#include "modules/catalog/catalog.h"
#include "modules/companies/companies.h"
#include "modules/orders/orders_internal.h"
#include "modules/realtime/realtime.h"
#include "modules/users/identity.h"
#include "transport/mail.h"

#include "modules/webhooks/webhooks.h"

#include "core/banned.h"

static int64_t order_ttl_s = ORDER_TTL_DEFAULT_S;

int64_t orders__ttl_s(void) { return order_ttl_s; }

/* ---- the state machine ---- */

struct edge {
    const char *from, *to;
};
static const struct edge edges[] = {
    {"pending", "paid"},     {"paid", "shipped"},      {"shipped", "delivered"}, {"pending", "cancelled"},
    {"paid", "cancelled"},   {"paid", "refunded"},
};
static const char *const statuses[] = {"pending", "paid", "shipped", "delivered", "cancelled", "refunded", NULL};

static bool edge_ok(str_t from, const char *to)
{
    for (size_t i = 0; i < ARRAY_LEN(edges); i++)
        if (str_eq(from, str_c(edges[i].from)) && !strcmp(edges[i].to, to))
            return true;
    return false;
}

/* ---- customer mail (tr/en/pl by the user's locale) ---- */

struct status_words {
    const char *locale, *words[6]; /* in the order of statuses[] */
};
static const struct status_words status_words[] = {
    {"en", {"received", "paid", "shipped", "delivered", "cancelled", "refunded"}},
    {"tr", {"alındı", "ödendi", "kargoya verildi", "teslim edildi", "iptal edildi", "iade edildi"}},
    {"pl", {"przyjęte", "opłacone", "wysłane", "dostarczone", "anulowane", "zwrócone"}},
};

static void register_templates(void)
{
    mail_template_register("order_status_en", "Your order {{order_id}} is {{status}}",
                           "Hello {{name}},\n\nyour order {{order_id}} is now {{status}}.\n"
                           "Total: {{total}} {{currency}} (minor units).\n",
                           "<p>Hello {{name}},</p><p>your order <code>{{order_id}}</code> is now "
                           "<b>{{status}}</b>.</p><p>Total: {{total}} {{currency}} (minor units).</p>");
    mail_template_register("order_status_tr", "{{order_id}} numaralı siparişiniz {{status}}",
                           "Merhaba {{name}},\n\n{{order_id}} numaralı siparişiniz {{status}}.\n"
                           "Toplam: {{total}} {{currency}} (kuruş).\n",
                           "<p>Merhaba {{name}},</p><p><code>{{order_id}}</code> numaralı siparişiniz "
                           "<b>{{status}}</b>.</p><p>Toplam: {{total}} {{currency}} (kuruş).</p>");
    mail_template_register("order_status_pl", "Twoje zamówienie {{order_id}}: {{status}}",
                           "Dzień dobry {{name}},\n\ntwoje zamówienie {{order_id}} jest teraz: {{status}}.\n"
                           "Suma: {{total}} {{currency}} (grosze).\n",
                           "<p>Dzień dobry {{name}},</p><p>twoje zamówienie <code>{{order_id}}</code> jest teraz: "
                           "<b>{{status}}</b>.</p><p>Suma: {{total}} {{currency}} (grosze).</p>");
}

/* Inside the transaction: mail the order's owner (when they have an email). */
static int enqueue_mail(struct db *db, str_t order_id, const char *status)
{
    struct db_res *res;
    int rc = db_query(db,
                      "SELECT u.email, u.locale, u.name, o.total, o.currency FROM orders o "
                      "JOIN users u ON u.id = o.user_id WHERE o.id = ?",
                      DB_ARGS(DBA_TEXT(order_id)), &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    if (rc != 1 || db_isnull(res, 0)) {
        db_res_free(res);
        return rc < 0 ? rc : DB_OK;
    }
    const struct status_words *sw = &status_words[0];
    for (size_t i = 0; i < ARRAY_LEN(status_words); i++)
        if (str_eq(db_text(res, 1), str_c(status_words[i].locale)))
            sw = &status_words[i];
    const char *word = status;
    for (size_t i = 0; statuses[i]; i++)
        if (!strcmp(statuses[i], status))
            word = sw->words[i];
    char tmpl[32], to[MAIL_MAX_ADDR + 1];
    (void)snprintf(tmpl, sizeof(tmpl), "order_status_%s", sw->locale);
    (void)str_copy(to, db_text(res, 0).p, sizeof(to));
    str_t name = db_text(res, 2), cur = db_text(res, 4);
    json_t *vars = json_pack("{s:s%,s:s,s:s%,s:I,s:s%}", "order_id", order_id.p, order_id.len, "status", word,
                             "name", name.p, name.len, "total", (json_int_t)db_int(res, 3), "currency", cur.p,
                             cur.len);
    db_res_free(res);
    rc = mail_enqueue(db, to, tmpl, vars);
    json_decref(vars);
    if (rc == MAIL_EINVAL) { /* an address we cannot mail: the status still changes */
        log_warn("orders: no status mail for order %.*s (address refused)", STR_FMT(order_id));
        return DB_OK;
    }
    return rc;
}

/* ---- stock back ---- */

static int release_stock(struct db *db, str_t order_id, int64_t now)
{
    int64_t changed = 0;
    int rc = db_exec(db, "UPDATE orders SET stock_released = ? WHERE id = ? AND stock_released = ? AND kind = 'goods'",
                     DB_ARGS(DBA_BOOL(true), DBA_TEXT(order_id), DBA_BOOL(false)), &changed);
    if (rc != DB_OK || changed != 1)
        return rc;
    /* one statement per product, in product id order (the lock order of order creation) */
    struct db_res *res;
    rc = db_query(db, "SELECT product_id, sum(quantity) FROM order_lines WHERE order_id = ? GROUP BY product_id "
                      "ORDER BY product_id",
                  DB_ARGS(DBA_TEXT(order_id)), &res);
    if (rc != DB_OK)
        return rc;
    struct {
        char id[UUID_STR_LEN + 1];
        int64_t q;
    } *ls = NULL;
    size_t n = 0, cap = 0;
    while ((rc = db_next(res)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            void *p = realloc(ls, cap * sizeof(*ls));
            if (!p)
                abort();
            ls = p;
        }
        (void)str_copy(ls[n].id, db_text(res, 0).p, sizeof(ls[n].id));
        ls[n++].q = db_int(res, 1);
    }
    db_res_free(res);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = db_exec(db,
                     "UPDATE catalog_products SET stock = stock + ?, version = version + 1, updated_at = ms_ts(?) "
                     "WHERE id = ?",
                     DB_ARGS(DBA_INT(ls[i].q), DBA_INT(now), DBA_CSTR(ls[i].id)), NULL);
    free(ls);
    return rc < 0 ? rc : DB_OK;
}

/* ---- the one status change ---- */

static orders_event_hook event_hook; /* the events module's (paid events) */

void orders_set_event_hook(orders_event_hook fn) { event_hook = fn; }

/* What the order's kind does on a status change, in the same transaction:
 * credits are bought or taken back, a plan's period starts or ends, an
 * event's seat is confirmed or given back (the events module's hook). */
static int kind_changed(struct db *db, const char *kind, str_t id, const char *to)
{
    bool paid = !strcmp(to, "paid"), refunded = !strcmp(to, "refunded");
    if (!strcmp(kind, "credits"))
        return paid ? orders__credit_purchase(db, id) : refunded ? orders__credit_refund(db, id) : DB_OK;
    if (!strcmp(kind, "plan"))
        return paid ? orders__plan_paid(db, id) : refunded ? orders__plan_refunded(db, id) : DB_OK;
    if (!strcmp(kind, "event") && event_hook)
        return event_hook(db, id, to);
    return DB_OK;
}

int orders_create_event(struct db *db, struct req *r, str_t user_id, const char *locale,
                        const struct orders_event_seat *seat, char id[37])
{
    uuid7_str(id);
    struct order_head h = {.id = id, .kind = "event", .currency = seat->currency, .total = seat->price,
                           .address = STR_NULL, .event = seat->event_id};
    char product[64];
    (void)snprintf(product, sizeof(product), "event:%.*s", STR_FMT(seat->event_id));
    int rc = r ? orders__insert(r, &h) : orders__insert_db(db, user_id, locale, &h);
    if (rc == DB_OK)
        rc = orders__insert_line(db, id, 0, product, seat->title, seat->price, 1, seat->currency);
    return rc == DB_OK ? orders__created(db, r, "events", str_c(id)) : rc;
}

int orders_cancel_pending(struct db *db, str_t order_id, const char *reason)
{
    int rc = orders__transition(db, NULL, "events", order_id, "cancelled", reason, "pending", NULL);
    return rc == ORDERS_ENOTFOUND || rc == ORDERS_ESTATE ? DB_OK : rc;
}

/* "order.status" on the owner's realtime channel, if the change commits. */
static int notify(struct db *db, const char *owner, str_t id, const char *from, const char *to)
{
    struct buf ch = BUF_INIT(128), d = BUF_INIT(256);
    struct jw w;
    (void)buf_printf(&ch, "user:%s", owner);
    jw_init(&w, &d);
    jw_obj_begin(&w);
    jw_key(&w, "order_id");
    jw_str(&w, id);
    jw_key(&w, "status");
    jw_cstr(&w, to);
    jw_key(&w, "previous_status");
    jw_cstr(&w, from);
    jw_obj_end(&w);
    int rc = realtime_publish_tx(db, buf_cstr(&ch), "order.status", buf_str(&d));
    buf_free(&ch);
    buf_free(&d);
    return rc;
}

/* order.paid for the outbound webhooks, in the paying transaction. */
static int emit_paid(struct db *db, str_t id)
{
    struct db_res *res;
    int rc = db_query(db, "SELECT user_id, kind, currency, total, ts_ms(paid_at) FROM orders WHERE id = ?",
                      DB_ARGS(DBA_TEXT(id)), &res);
    if (rc != DB_OK)
        return rc;
    json_t *ev = NULL;
    if ((rc = db_next(res)) == 1) {
        char paid[TIME_RFC3339_LEN + 1];
        time_format_rfc3339(db_int(res, 4), paid);
        ev = json_pack("{s:s%,s:s,s:s,s:s,s:I,s:s,s:s}", "id", id.p, id.len, "user_id", db_text(res, 0).p, "kind",
                       db_text(res, 1).p, "status", "paid", "total", (json_int_t)db_int(res, 3), "currency",
                       db_text(res, 2).p, "paid_at", paid);
    }
    db_res_free(res);
    if (rc < 0 || !ev)
        return rc < 0 ? rc : DB_OK;
    rc = webhooks_emit(db, "order.paid", ev);
    json_decref(ev);
    return rc;
}

int orders__transition(struct db *db, struct req *r, const char *via, str_t id, const char *to,
                       const char *reason, const char *only_from, char from_out[16])
{
    struct db_res *res;
    char from[16] = "", owner[UUID_STR_LEN + 1] = "", kind[16] = "";
    int64_t now = time_now_ms(), changed = 0;
    int rc = db_query(db,
                      db_pick(db, "SELECT status, user_id, kind FROM orders WHERE id = ?",
                              "SELECT status, user_id, kind FROM orders WHERE id = ? FOR UPDATE"),
                      DB_ARGS(DBA_TEXT(id)), &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    if (rc == 1) {
        (void)str_copy(from, db_text(res, 0).p, sizeof(from));
        (void)str_copy(owner, db_text(res, 1).p, sizeof(owner));
        (void)str_copy(kind, db_text(res, 2).p, sizeof(kind));
    }
    db_res_free(res);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return ORDERS_ENOTFOUND;
    if (from_out)
        memcpy(from_out, from, sizeof(from));
    if ((only_from && strcmp(from, only_from)) || !edge_ok(str_c(from), to))
        return ORDERS_ESTATE;
    rc = db_exec(db,
                 "UPDATE orders SET status = ?, cancel_reason = ?, version = version + 1, updated_at = ms_ts(?), "
                 "paid_at = CASE WHEN ? = 'paid' THEN ms_ts(?) ELSE paid_at END WHERE id = ? AND status = ?",
                 DB_ARGS(DBA_CSTR(to), reason ? DBA_CSTR(reason) : DBA_NULL, DBA_INT(now), DBA_CSTR(to), DBA_INT(now),
                         DBA_TEXT(id), DBA_CSTR(from)),
                 &changed);
    if (rc != DB_OK)
        return rc;
    if (changed != 1)
        return ORDERS_ESTATE; /* changed under us (SQLite cannot get here: one writer) */
    if (!strcmp(to, "cancelled") && (rc = release_stock(db, id, now)) != DB_OK)
        return rc;
    if (!strcmp(to, "paid") && (rc = emit_paid(db, id)) != DB_OK)
        return rc;
    if ((rc = kind_changed(db, kind, id, to)) != DB_OK)
        return rc;
    if ((rc = enqueue_mail(db, id, to)) != DB_OK || (rc = notify(db, owner, id, from, to)) != DB_OK)
        return rc;
    json_t *before = json_pack("{s:s}", "status", from);
    json_t *after = reason ? json_pack("{s:s,s:s}", "status", to, "reason", reason) : json_pack("{s:s}", "status", to);
    struct audit_entry e = {.action = "order.status", .category = "orders", .target_type = "order",
                            .target_id = id, .before = before, .after = after, .success = true};
    rc = orders__audit(db, r, via, &e);
    json_decref(before);
    json_decref(after);
    return rc;
}

int orders__created(struct db *db, struct req *r, const char *via, str_t id)
{
    struct db_res *res;
    int rc = db_query(db, "SELECT kind, total, currency FROM orders WHERE id = ?", DB_ARGS(DBA_TEXT(id)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? rc : DB_ERR;
    }
    str_t kind = db_text(res, 0), cur = db_text(res, 2);
    json_t *after = json_pack("{s:s,s:s%,s:I,s:s%}", "status", "pending", "kind", kind.p, kind.len, "total",
                              (json_int_t)db_int(res, 1), "currency", cur.p, cur.len);
    db_res_free(res);
    rc = enqueue_mail(db, id, "pending");
    struct audit_entry e = {.action = "order.create", .category = "orders", .target_type = "order", .target_id = id,
                            .after = after, .success = true};
    if (rc == DB_OK)
        rc = orders__audit(db, r, via, &e);
    json_decref(after);
    return rc;
}

int orders__audit(struct db *db, struct req *r, const char *via, struct audit_entry *e)
{
    if (r)
        return audit_record_req(r, e);
    e->ip = STRLIT("");
    e->user_agent = STRLIT("");
    e->endpoint = str_c(via);
    e->request_id = STRLIT("");
    return audit_record(db, e);
}

/* ---- writing an order ---- */

#define ORDER_COLS                                                                                                     \
    "id, user_id, kind, status, cancel_reason, currency, total, address, ts_ms(expires_at), ts_ms(paid_at), "        \
    "ts_ms(created_at), ts_ms(updated_at), payment_status, credits, plan, company_id, event_id"

/* A text column, or null when it is NULL. */
static void jw_text_or_null(struct jw *w, const struct db_res *res, int col)
{
    if (db_isnull(res, col))
        jw_null(w);
    else
        jw_str(w, db_text(res, col));
}

static void jw_time_or_null(struct jw *w, const struct db_res *res, int col, bool show)
{
    if (db_isnull(res, col) || !show)
        jw_null(w);
    else
        jw_time(w, db_int(res, col));
}

static void write_head(struct jw *w, const struct db_res *res)
{
    static const char *const text_keys[] = {"id", "user_id", "kind", "status", "cancel_reason", "currency"};
    for (int i = 0; i < (int)ARRAY_LEN(text_keys); i++) {
        jw_key(w, text_keys[i]);
        jw_text_or_null(w, res, i);
    }
    jw_key(w, "total");
    jw_int(w, db_int(res, 6));
    jw_key(w, "address");
    if (db_isnull(res, 7))
        jw_null(w);
    else
        jw_raw(w, db_text(res, 7)); /* written by us (build_address) */
    jw_key(w, "payment_status");
    jw_text_or_null(w, res, 12);
    jw_key(w, "credits"); /* kind credits: what the order buys */
    if (db_isnull(res, 13))
        jw_null(w);
    else
        jw_int(w, db_int(res, 13));
    jw_key(w, "plan"); /* kind plan: the plan one period of which the order pays */
    jw_text_or_null(w, res, 14);
    jw_key(w, "company_id"); /* a company order: placed from the company's cart */
    jw_text_or_null(w, res, 15);
    jw_key(w, "event_id"); /* kind event: the event one seat of which it pays */
    jw_text_or_null(w, res, 16);
    jw_key(w, "expires_at");
    jw_time_or_null(w, res, 8, str_is(db_text(res, 3), "pending"));
    jw_key(w, "paid_at");
    jw_time_or_null(w, res, 9, true);
    jw_key(w, "created_at");
    jw_time(w, db_int(res, 10));
    jw_key(w, "updated_at");
    jw_time(w, db_int(res, 11));
}

static void write_row(struct jw *w, const struct db_res *res)
{
    jw_obj_begin(w);
    write_head(w, res);
    jw_obj_end(w);
}

int orders__write(struct db *db, struct req *r, str_t id, str_t owner, struct jw *w, bool *found)
{
    (void)r;
    struct db_res *res;
    *found = false;
    int rc = db_query(db, "SELECT " ORDER_COLS " FROM orders WHERE id = ?", DB_ARGS(DBA_TEXT(id)), &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    if (rc != 1 || (owner.len && !str_eq(owner, db_text(res, 1)))) {
        db_res_free(res);
        return rc < 0 ? rc : DB_OK;
    }
    *found = true;
    jw_obj_begin(w);
    write_head(w, res);
    db_res_free(res);
    rc = db_query(db,
                  "SELECT product_id, name, unit_price, quantity, currency, line_total FROM order_lines "
                  "WHERE order_id = ? ORDER BY position",
                  DB_ARGS(DBA_TEXT(id)), &res);
    if (rc != DB_OK)
        return rc;
    jw_key(w, "items");
    jw_arr_begin(w);
    static const struct http_col line_cols[] = {{"product_id", COL_TEXT}, {"name", COL_TEXT},
                                                {"unit_price", COL_INT},  {"quantity", COL_INT},
                                                {"currency", COL_TEXT},   {"line_total", COL_INT},
                                                {NULL, COL_TEXT}};
    while ((rc = db_next(res)) == 1)
        http_write_row(w, res, line_cols);
    db_res_free(res);
    jw_arr_end(w);
    jw_obj_end(w);
    return rc < 0 ? rc : DB_OK;
}

int orders__respond(struct req *r, str_t id, int status)
{
    bool found;
    bool admin = str_is(r->role, "admin");
    int rc = orders__write(r->db, r, id, admin ? STR_NULL : r->user_id, &r->w, &found);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (!found)
        return http_fail(r, 404, "NOT_FOUND", "no such order");
    if (status == 201) {
        struct buf *loc = req_buf(r, 128);
        (void)buf_printf(loc, "/api/v1/orders/%.*s", STR_FMT(id));
        req_header(r, "location", buf_str(loc));
    }
    r->status = status;
    return 0;
}

static bool status_valid(str_t s);

/* ---- POST /orders ---- */

struct line {
    char cart_id[UUID_STR_LEN + 1];
    char product_id[UUID_STR_LEN + 1];
    str_t name; /* request language, pool memory */
    int64_t price, quantity, total;
    char currency[4];
};

struct create_ctx {
    str_t address_id;
    str_t company; /* empty: the caller's own cart and address book; else the company's */
    char id[UUID_STR_LEN + 1];
    struct line *lines; /* ORDER_MAX_LINES, pool memory; filled by lines_add only */
    size_t n;
};

/* The one adder for ctx->lines: -1 when the order already has ORDER_MAX_LINES. */
static int lines_add(struct create_ctx *c, const struct line *l)
{
    if (c->n >= ORDER_MAX_LINES)
        return -1;
    c->lines[c->n++] = *l;
    return 0;
}

/* The address as a JSON object text (the order keeps it even if the book changes). */
static int build_address(struct req *r, const struct create_ctx *c, str_t *out)
{
    str_t address_id = c->address_id;
    static const char *const cols[] = {"title", "full_name", "phone", "line1", "line2",
                                       "district", "city", "postal_code", "country"};
    struct db_res *res;
    if (!uuid_valid(address_id))
        return http_invalid(r, "address_id", "is not one of your addresses");
    int rc = db_query(r->db,
                      c->company.len ? "SELECT title, full_name, phone, line1, line2, district, city, postal_code, "
                                       "country FROM company_addresses WHERE id = ? AND company_id = ?"
                                     : "SELECT title, full_name, phone, line1, line2, district, city, postal_code, "
                                       "country FROM catalog_addresses WHERE id = ? AND user_id = ?",
                      DB_ARGS(DBA_TEXT(address_id), DBA_TEXT(c->company.len ? c->company : r->user_id)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? rc
                      : http_invalid(r, "address_id",
                                     c->company.len ? "is not in the company's address book" : "is not one of your addresses");
    }
    struct buf *b = req_buf(r, BUF_MAX_SMALL * 4);
    struct jw w;
    jw_init(&w, b);
    jw_obj_begin(&w);
    jw_key(&w, "id");
    jw_str(&w, address_id);
    for (size_t i = 0; i < ARRAY_LEN(cols); i++) {
        jw_key(&w, cols[i]);
        jw_str(&w, db_text(res, (int)i));
    }
    jw_obj_end(&w);
    db_res_free(res);
    if (!buf_ok(b))
        return DB_ERR;
    *out = buf_str(b);
    return DB_OK;
}

/* Read the cart (locking its lines on PostgreSQL) into c->lines, in product id order. */
static int read_cart(struct req *r, struct create_ctx *c)
{
    struct db_res *res;
#define CART_SQL(table, owner)                                                                                         \
    "SELECT c.id, c.product_id, c.quantity, p.name, p.price, p.currency, "                                             \
    "CASE WHEN p.deleted_at IS NULL THEN 1 ELSE 0 END FROM " table " c "                                               \
    "JOIN catalog_products p ON p.id = c.product_id WHERE c." owner " = ? ORDER BY c.product_id"
    int rc = db_query(r->db,
                      c->company.len ? db_pick(r->db, CART_SQL("company_cart_items", "company_id"),
                                               CART_SQL("company_cart_items", "company_id") " FOR UPDATE OF c")
                                     : db_pick(r->db, CART_SQL("catalog_cart_items", "user_id"),
                                               CART_SQL("catalog_cart_items", "user_id") " FOR UPDATE OF c"),
                      DB_ARGS(DBA_TEXT(c->company.len ? c->company : r->user_id)), &res);
#undef CART_SQL
    if (rc != DB_OK)
        return rc;
    bool full = false, gone = false;
    str_t gone_name = STR_NULL;
    while ((rc = db_next(res)) == 1) {
        struct line l = {.quantity = db_int(res, 2), .price = db_int(res, 4)};
        (void)str_copy(l.cart_id, db_text(res, 0).p, sizeof(l.cart_id));
        (void)str_copy(l.product_id, db_text(res, 1).p, sizeof(l.product_id));
        (void)str_copy(l.currency, db_text(res, 5).p, sizeof(l.currency));
        l.name = resource_i18n_text(r, db_text(res, 3));
        if (!db_int(res, 6) && !gone) {
            gone = true;
            gone_name = l.name;
        }
        if (lines_add(c, &l)) {
            full = true;
            break;
        }
    }
    db_res_free(res);
    if (rc < 0)
        return rc;
    if (full)
        return http_fail(r, 422, "VALIDATION_ERROR", "an order holds at most %d lines: remove some from the cart",
                         ORDER_MAX_LINES);
    if (c->n == 0)
        return http_fail(r, 422, "VALIDATION_ERROR", "the cart is empty");
    if (gone)
        return http_fail(r, 409, "CONFLICT", "\"%.*s\" is no longer sold: remove it from the cart",
                         STR_FMT(gone_name));
    return DB_OK;
}

static int tx_create(struct req *r, void *arg)
{
    struct create_ctx *c = arg;
    str_t address;
    int64_t now = time_now_ms(), total = 0;
    int rc = build_address(r, c, &address);
    if (rc)
        return rc;
    if ((rc = read_cart(r, c)))
        return rc;
    for (size_t i = 0; i < c->n; i++) {
        struct line *l = &c->lines[i];
        if (strcmp(l->currency, c->lines[0].currency))
            return http_fail(r, 422, "VALIDATION_ERROR", "the cart mixes currencies (%s and %s): one order is in one",
                             c->lines[0].currency, l->currency);
        if (__builtin_mul_overflow(l->price, l->quantity, &l->total) || __builtin_add_overflow(total, l->total, &total))
            return http_fail(r, 422, "VALIDATION_ERROR", "the order total is too large");
    }
    /* take the stock, line by line in product id order */
    for (size_t i = 0; i < c->n; i++) {
        struct line *l = &c->lines[i];
        int64_t changed = 0;
        rc = db_exec(r->db,
                     "UPDATE catalog_products SET stock = stock - ?, version = version + 1, updated_at = ms_ts(?) "
                     "WHERE id = ? AND deleted_at IS NULL AND stock >= ?",
                     DB_ARGS(DBA_INT(l->quantity), DBA_INT(now), DBA_CSTR(l->product_id), DBA_INT(l->quantity)),
                     &changed);
        if (rc != DB_OK)
            return rc;
        if (changed != 1) {
            http_field_error(r, "product_id", h2o_strdup(r->pool, l->product_id, SIZE_MAX).base);
            return http_fail(r, 409, "CONFLICT", "not enough stock for \"%.*s\" (product %s): %lld requested",
                             STR_FMT(l->name), l->product_id, (long long)l->quantity);
        }
    }
    struct order_head h = {.id = c->id, .kind = "goods", .currency = c->lines[0].currency, .total = total,
                           .address = address, .company = c->company};
    rc = orders__insert(r, &h);
    for (size_t i = 0; rc == DB_OK && i < c->n; i++) {
        struct line *l = &c->lines[i];
        rc = orders__insert_line(r->db, c->id, (int64_t)i, l->product_id, l->name, l->price, l->quantity,
                                 l->currency);
        if (rc == DB_OK)
            rc = db_exec(r->db,
                         c->company.len ? "DELETE FROM company_cart_items WHERE id = ?"
                                        : "DELETE FROM catalog_cart_items WHERE id = ?",
                         DB_ARGS(DBA_CSTR(l->cart_id)), NULL);
    }
    return rc == DB_OK ? orders__created(r->db, r, NULL, str_c(c->id)) : rc;
}

int orders__insert(struct req *r, const struct order_head *h)
{
    enum lang lang = lang_from_header(req_header_get(r, "accept-language"));
    static const char *const lang_names[] = {[LANG_EN] = "en", [LANG_TR] = "tr", [LANG_PL] = "pl"};
    return orders__insert_db(r->db, r->user_id, lang_names[lang], h);
}

int orders__insert_db(struct db *db, str_t user_id, const char *locale, const struct order_head *h)
{
    int64_t now = time_now_ms(), expires = now + order_ttl_s * 1000;
    int rc = db_exec(db,
                     "INSERT INTO orders (id, version, user_id, kind, status, currency, total, address, locale, credits, "
                     "plan, renewal, company_id, event_id, expires_at, created_at, updated_at) VALUES (?, 1, ?, ?, "
                     "'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ms_ts(?), ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(h->id), DBA_TEXT(user_id), DBA_CSTR(h->kind), DBA_CSTR(h->currency),
                             DBA_INT(h->total), h->address.p ? DBA_TEXT(h->address) : DBA_NULL, DBA_CSTR(locale),
                             h->credits ? DBA_INT(h->credits) : DBA_NULL, h->plan ? DBA_CSTR(h->plan) : DBA_NULL,
                             DBA_BOOL(h->renewal), h->company.len ? DBA_TEXT(h->company) : DBA_NULL,
                             h->event.len ? DBA_TEXT(h->event) : DBA_NULL, DBA_INT(expires),
                             DBA_INT(now), DBA_INT(now)),
                     NULL);
    if (rc != DB_OK)
        return rc;
    /* the expiry, at its time (the cron sweep is the safety net) */
    char payload[80];
    (void)snprintf(payload, sizeof(payload), "{\"order_id\":\"%s\"}", h->id);
    struct job_opts o = JOB_OPTS_DEFAULT;
    o.run_at_ms = expires;
    rc = jobs_enqueue(db, "orders.expire", str_c(payload), &o, NULL);
    return rc == JOBS_OK ? DB_OK : rc < 0 ? rc : DB_ERR;
}

int orders__insert_line(struct db *db, const char *order_id, int64_t position, const char *product_id, str_t name,
                        int64_t unit_price, int64_t quantity, const char *currency)
{
    char lid[UUID_STR_LEN + 1];
    uuid7_str(lid);
    return db_exec(db,
                   "INSERT INTO order_lines (id, order_id, position, product_id, name, unit_price, quantity, currency, "
                   "line_total) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   DB_ARGS(DBA_CSTR(lid), DBA_CSTR(order_id), DBA_INT(position), DBA_CSTR(product_id), DBA_TEXT(name),
                           DBA_INT(unit_price), DBA_INT(quantity), DBA_CSTR(currency), DBA_INT(unit_price * quantity)),
                   NULL);
}

static int create(struct req *r, str_t company)
{
    if (identity_is_guest(r)) /* API.md §3: a guest's cart moves into the account (migrate-guest-data) */
        return http_fail(r, 403, "FORBIDDEN", "guests cannot order: register or sign in, then "
                                              "POST /auth/migrate-guest-data brings this cart along");
    const json_t *a = json_object_get(r->body, "address_id");
    struct create_ctx c = {.address_id = str_make(json_string_value(a), json_string_length(a)), .company = company};
    c.lines = h2o_mem_alloc_pool(r->pool, sizeof(struct line) * ORDER_MAX_LINES);
    uuid7_str(c.id);
    if (req_tx(r, DB_TX_WRITE, tx_create, &c))
        return HTTP_EFAIL;
    resource_cache_bump(&catalog_products); /* the stock it took shows on the product pages */
    return orders__respond(r, str_c(c.id), 201);
}

static int h_create(struct req *r) { return create(r, STR_NULL); }

/* ---- company orders (the companies module decides membership) ---- */

static int h_company_create(struct req *r)
{
    if (companies_require(r, COMPANY_MEMBER, NULL))
        return HTTP_EFAIL;
    return create(r, req_param(r, "id"));
}

static int h_company_list(struct req *r)
{
    static const char *const allowed[] = {"status", NULL};
    const str_t *status = req_query(r, "status");
    db_arg args[4] = {DBA_TEXT(req_param(r, "id")), status ? DBA_TEXT(*status) : DBA_NULL};
    if (companies_require(r, COMPANY_MEMBER, NULL) || http_query_allow(r, allowed))
        return HTTP_EFAIL;
    if (status && !status_valid(*status))
        return http_invalid(r, "status", "must be pending, paid, shipped, delivered, cancelled or refunded");
    const struct http_list_query q = {ORDER_COLS, "FROM orders",
                                      status ? " WHERE company_id = ? AND status = ?" : " WHERE company_id = ?",
                                      "created_at DESC, id DESC", write_row};
    return http_list(r, &q, args, status ? 2 : 1, ARRAY_LEN(args));
}

static int h_company_get(struct req *r)
{
    str_t oid = req_param(r, "order_id");
    int64_t n = 0;
    bool found;
    if (companies_require(r, COMPANY_MEMBER, NULL))
        return HTTP_EFAIL;
    int rc = db_query_int(r->db, "SELECT count(*) FROM orders WHERE id = ? AND company_id = ?",
                          DB_ARGS(DBA_TEXT(oid), DBA_TEXT(req_param(r, "id"))), &n, &found);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (!n)
        return http_fail(r, 404, "NOT_FOUND", "no such order");
    rc = orders__write(r->db, r, oid, STR_NULL, &r->w, &found);
    return rc != DB_OK ? http_db_fail(r, rc) : 0;
}

/* ---- reading ---- */

static int h_get(struct req *r)
{
    str_t id = req_param(r, "id");
    if (!uuid_valid(id))
        return http_fail(r, 404, "NOT_FOUND", "no such order");
    return orders__respond(r, id, 200);
}

static bool status_valid(str_t s)
{
    for (size_t i = 0; statuses[i]; i++)
        if (str_eq(s, str_c(statuses[i])))
            return true;
    return false;
}

static int list(struct req *r, bool admin)
{
    static const char *const allowed_user[] = {"status", NULL};
    static const char *const allowed_admin[] = {"status", "user_id", NULL};
    const str_t *status = req_query(r, "status"), *user = admin ? req_query(r, "user_id") : NULL;
    struct buf *where = req_buf(r, 256);
    db_arg args[4];
    size_t n = 0;
    if (http_query_allow(r, admin ? allowed_admin : allowed_user))
        return HTTP_EFAIL;
    if (status && !status_valid(*status))
        return http_invalid(r, "status", "must be pending, paid, shipped, delivered, cancelled or refunded");
    (void)buf_puts(where, " WHERE 1 = 1");
    if (!admin) {
        (void)buf_puts(where, " AND user_id = ?");
        args[n++] = DBA_TEXT(r->user_id);
    } else if (user) {
        (void)buf_puts(where, " AND user_id = ?");
        args[n++] = DBA_TEXT(*user);
    }
    if (status) {
        (void)buf_puts(where, " AND status = ?");
        args[n++] = DBA_TEXT(*status);
    }
    const struct http_list_query q = {ORDER_COLS, "FROM orders", buf_cstr(where), "created_at DESC, id DESC",
                                      write_row};
    return http_list(r, &q, args, n, ARRAY_LEN(args));
}

static int h_list(struct req *r) { return list(r, false); }
static int h_admin_list(struct req *r) { return list(r, true); }

/* ---- status changes ---- */

struct change_ctx {
    str_t id;
    const char *to;
    bool own; /* the customer: only their order, only from pending */
};

static int tx_change(struct req *r, void *arg)
{
    struct change_ctx *c = arg;
    char from[16] = "";
    if (c->own) {
        int64_t n = 0;
        bool found;
        int rc = db_query_int(r->db, "SELECT count(*) FROM orders WHERE id = ? AND user_id = ?",
                              DB_ARGS(DBA_TEXT(c->id), DBA_TEXT(r->user_id)), &n, &found);
        if (rc != DB_OK)
            return rc;
        if (n == 0)
            return http_fail(r, 404, "NOT_FOUND", "no such order");
    }
    if (!c->own && !strcmp(c->to, "refunded")) {
        int64_t n = 0;
        bool found;
        int rc = db_query_int(r->db, "SELECT count(*) FROM orders WHERE id = ? AND payment_intent IS NOT NULL",
                              DB_ARGS(DBA_TEXT(c->id)), &n, &found);
        if (rc != DB_OK)
            return rc;
        if (n)
            return http_fail(r, 409, "CONFLICT",
                             "the order was paid through Stripe: refund it with POST /admin/orders/{id}/refund");
    }
    int rc = orders__transition(r->db, r, NULL, c->id, c->to, c->own ? "customer" : NULL, c->own ? "pending" : NULL,
                                from);
    if (rc == ORDERS_ENOTFOUND)
        return http_fail(r, 404, "NOT_FOUND", "no such order");
    if (rc == ORDERS_ESTATE)
        return http_fail(r, 409, "CONFLICT", "the order is %s: it cannot become %s", from, c->to);
    return rc;
}

static int change(struct req *r, const char *to, bool own)
{
    struct change_ctx c = {.id = req_param(r, "id"), .to = to, .own = own};
    if (!uuid_valid(c.id))
        return http_fail(r, 404, "NOT_FOUND", "no such order");
    if (req_tx(r, DB_TX_WRITE, tx_change, &c))
        return HTTP_EFAIL;
    if (!strcmp(to, "cancelled"))
        resource_cache_bump(&catalog_products); /* stock given back */
    return orders__respond(r, c.id, 200);
}

static int h_cancel(struct req *r) { return change(r, "cancelled", true); }

static int h_patch(struct req *r)
{
    const json_t *s = json_object_get(r->body, "status");
    return change(r, json_string_value(s), false);
}

/* ---- expiry ---- */

/* Cancel one order if it is still pending and past its time. */
struct expire_ctx {
    str_t id;
    int64_t now;
    bool done;
};

static int tx_expire(struct db *db, void *arg)
{
    struct expire_ctx *c = arg;
    int64_t n = 0;
    bool found;
    c->done = false;
    int rc = db_query_int(db, "SELECT count(*) FROM orders WHERE id = ? AND status = 'pending' AND expires_at <= ms_ts(?)",
                          DB_ARGS(DBA_TEXT(c->id), DBA_INT(c->now)), &n, &found);
    if (rc != DB_OK || n == 0)
        return rc;
    rc = orders__transition(db, NULL, "job orders.expire", c->id, "cancelled", "expired", "pending", NULL);
    if (rc == ORDERS_ENOTFOUND || rc == ORDERS_ESTATE)
        return DB_OK; /* paid or cancelled meanwhile */
    c->done = rc == DB_OK;
    return rc;
}

#define EXPIRE_BATCH 100

static enum job_result job_expire(struct job *j, struct buf *result, struct buf *error)
{
    const json_t *oid = json_object_get(j->payload, "order_id");
    int64_t now = time_now_ms(), expired = 0;
    if (json_is_string(oid)) {
        struct expire_ctx c = {.id = str_make(json_string_value(oid), json_string_length(oid)), .now = now};
        int rc = db_tx(j->db, DB_TX_WRITE, tx_expire, &c);
        if (rc != DB_OK) {
            (void)buf_printf(error, "expire: %s", db_errmsg(j->db));
            return JOB_RETRY;
        }
        expired = c.done;
    } else {
        /* the sweep: pending orders past their time, a batch per run */
        struct db_res *res;
        char ids[EXPIRE_BATCH][UUID_STR_LEN + 1];
        size_t n = 0;
        int rc = db_query(j->db,
                          "SELECT id FROM orders WHERE status = 'pending' AND expires_at <= ms_ts(?) "
                          "ORDER BY expires_at LIMIT " "100",
                          DB_ARGS(DBA_INT(now)), &res);
        if (rc != DB_OK) {
            (void)buf_printf(error, "expire sweep: %s", db_errmsg(j->db));
            return JOB_RETRY;
        }
        while (n < EXPIRE_BATCH && (rc = db_next(res)) == 1)
            (void)str_copy(ids[n++], db_text(res, 0).p, sizeof(ids[0]));
        db_res_free(res);
        for (size_t i = 0; i < n; i++) {
            struct expire_ctx c = {.id = str_c(ids[i]), .now = now};
            if (db_tx(j->db, DB_TX_WRITE, tx_expire, &c) != DB_OK) {
                (void)buf_printf(error, "expire sweep: %s", db_errmsg(j->db));
                return JOB_RETRY;
            }
            expired += c.done;
        }
    }
    if (expired > 0)
        resource_cache_bump(&catalog_products); /* stock given back */
    (void)buf_printf(result, "{\"expired\":%lld}", (long long)expired);
    return JOB_OK;
}

/* ---- module ---- */

static int config(const struct config *cfg, struct buf *err)
{
    (void)cfg;
    const char *v = getenv("TEMEL_ORDER_TTL_S");
    if (v && *v && parse_i64(str_c(v), 1, 30ll * 24 * 3600, &order_ttl_s)) {
        (void)buf_puts(err, "TEMEL_ORDER_TTL_S: must be an integer in 1..2592000 (seconds)");
        return -1;
    }
    if (orders__plans_config(err))
        return -1;
    return orders__stripe_config(cfg, err);
}

static const struct json_field create_f[] = {
    {.name = "address_id", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 64,
     .description = "one of the caller's addresses (/me/addresses); the order keeps a copy"},
    {0}};
static const struct json_schema create_s = {create_f, false};
static const struct json_field patch_f[] = {
    {.name = "status", .type = JF_STRING, .flags = JF_REQUIRED, .enum_values = statuses,
     .description = "pending → paid → shipped → delivered; pending|paid → cancelled; paid → refunded"},
    {0}};
static const struct json_schema patch_s = {patch_f, false};

/* OpenAPI: an order as write_head writes it, and with its lines (orders__write). */
static struct openapi_schema schemas[] = {
    {.name = "OrderSummary",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : [
             "id", "user_id", "kind", "status", "cancel_reason", "currency", "total", "address", "payment_status",
             "credits", "plan", "company_id", "expires_at", "paid_at", "created_at", "updated_at"
         ],
         "properties" : {
             "id" : {"type" : "string", "format" : "uuid"},
             "user_id" : {"type" : "string", "format" : "uuid"},
             "kind" : {"type" : "string", "enum" : [ "goods", "credits", "plan", "event" ]},
             "status" : {"type" : "string", "enum" : [ "pending", "paid", "shipped", "delivered", "cancelled", "refunded" ]},
             "cancel_reason" : {"type" : [ "string", "null" ]},
             "currency" : {"type" : "string", "pattern" : "^[A-Z]{3}$"},
             "total" : {"type" : "integer", "description" : "minor units"},
             "address" : {
                 "type" : [ "object", "null" ],
                 "description" : "a copy of the address at order time (goods)",
                 "properties" : {
                     "id" : {"type" : "string", "format" : "uuid"},
                     "title" : {"type" : [ "string", "null" ]},
                     "full_name" : {"type" : [ "string", "null" ]},
                     "phone" : {"type" : [ "string", "null" ]},
                     "line1" : {"type" : [ "string", "null" ]},
                     "line2" : {"type" : [ "string", "null" ]},
                     "district" : {"type" : [ "string", "null" ]},
                     "city" : {"type" : [ "string", "null" ]},
                     "postal_code" : {"type" : [ "string", "null" ]},
                     "country" : {"type" : [ "string", "null" ]}
                 }
             },
             "payment_status" : {"type" : [ "string", "null" ]},
             "credits" : {"type" : [ "integer", "null" ], "description" : "kind credits: the credits it buys"},
             "plan" : {"type" : [ "string", "null" ], "enum" : [ "pro", "business", null ],
                       "description" : "kind plan: the plan one period of which it pays"},
             "company_id" : {"type" : [ "string", "null" ], "format" : "uuid",
                             "description" : "a company order: placed from that company's cart"},
             "event_id" : {"type" : [ "string", "null" ], "format" : "uuid",
                           "description" : "kind event: the event one seat of which it pays"},
             "expires_at" : {"type" : [ "string", "null" ], "format" : "date-time", "description" : "pending orders only"},
             "paid_at" : {"type" : [ "string", "null" ], "format" : "date-time"},
             "created_at" : {"type" : "string", "format" : "date-time"},
             "updated_at" : {"type" : "string", "format" : "date-time"}
         }
     })},
    {.name = "Order",
     .json = OPENAPI_JSON({
         "allOf" : [
             {"$ref" : "#/components/schemas/OrderSummary"}, {
                 "type" : "object",
                 "required" : ["items"],
                 "properties" : {
                     "items" : {
                         "type" : "array",
                         "items" : {
                             "type" : "object",
                             "required" : [ "product_id", "name", "unit_price", "quantity", "currency", "line_total" ],
                             "properties" : {
                                 "product_id" : {"type" : [ "string", "null" ], "format" : "uuid"},
                                 "name" : {"type" : [ "string", "null" ], "description" : "the product's name at order time"},
                                 "unit_price" : {"type" : "integer"},
                                 "quantity" : {"type" : "integer", "minimum" : 1},
                                 "currency" : {"type" : "string"},
                                 "line_total" : {"type" : "integer"}
                             }
                         }
                     }
                 }
             }
         ]
     })},
};
#define ORDER_OUT OPENAPI_JSON({"$ref" : "#/components/schemas/Order"})
#define ORDER_SUMMARY_OUT OPENAPI_JSON({"$ref" : "#/components/schemas/OrderSummary"})

static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/orders", .handler = h_create, .auth = AUTH_USER, .rl = RL_WRITE,
     .input = &create_s, .flags = ROUTE_IDEMPOTENT,
     .summary = "Order the cart (Idempotency-Key): stock reserved atomically, cart emptied; 409 names a product "
                "without enough stock",
     .tag = "orders", .errors = "409", .output = ORDER_OUT},
    {.method = "POST", .pattern = "/api/v1/companies/{id}/orders", .handler = h_company_create, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &create_s, .flags = ROUTE_IDEMPOTENT,
     .summary = "Order the company's cart to one of its addresses (members; Idempotency-Key): the placing member "
                "owns and pays it, every member sees it",
     .tag = "companies", .errors = "409", .output = ORDER_OUT},
    {.method = "GET", .pattern = "/api/v1/companies/{id}/orders", .handler = h_company_list, .auth = AUTH_USER,
     .rl = RL_READ, .flags = ROUTE_PAGINATED, .summary = "The company's orders (members; filter: status)",
     .tag = "companies", .output = ORDER_SUMMARY_OUT},
    {.method = "GET", .pattern = "/api/v1/companies/{id}/orders/{order_id}", .handler = h_company_get,
     .auth = AUTH_USER, .rl = RL_READ, .summary = "One company order with its lines (members)", .tag = "companies",
     .output = ORDER_OUT},
    {.method = "GET", .pattern = "/api/v1/orders", .handler = h_list, .auth = AUTH_USER, .rl = RL_READ,
     .flags = ROUTE_PAGINATED, .summary = "The caller's orders (filter: status)", .tag = "orders",
     .output = ORDER_SUMMARY_OUT,
     .params = OPENAPI_JSON([ {"name" : "status", "in" : "query", "schema" : {"type" : "string", "enum" : [ "pending", "paid", "shipped", "delivered", "cancelled", "refunded" ]}} ])},
    {.method = "GET", .pattern = "/api/v1/orders/{id}", .handler = h_get, .auth = AUTH_USER, .rl = RL_READ,
     .summary = "One order with its lines", .tag = "orders", .output = ORDER_OUT},
    {.method = "POST", .pattern = "/api/v1/orders/{id}/cancel", .handler = h_cancel, .auth = AUTH_USER,
     .rl = RL_WRITE, .flags = ROUTE_BODY_OPTIONAL, .summary = "Cancel a pending order (its stock comes back)",
     .tag = "orders", .errors = "409 422", .output = ORDER_OUT},
    {.method = "GET", .pattern = "/api/v1/admin/orders", .handler = h_admin_list, .auth = AUTH_ADMIN, .rl = RL_READ,
     .flags = ROUTE_PAGINATED, .summary = "Every order (filters: status, user_id)", .tag = "admin",
     .output = ORDER_SUMMARY_OUT,
     .params = OPENAPI_JSON([
         {"name" : "status", "in" : "query", "schema" : {"type" : "string", "enum" : [ "pending", "paid", "shipped", "delivered", "cancelled", "refunded" ]}},
         {"name" : "user_id", "in" : "query", "schema" : {"type" : "string", "format" : "uuid"}}
     ])},
    {.method = "PATCH", .pattern = "/api/v1/orders/{id}", .handler = h_patch, .auth = AUTH_ADMIN, .rl = RL_WRITE,
     .input = &patch_s, .summary = "Change an order's status (admin; the state machine; audited, customer mailed)",
     .tag = "admin", .errors = "409", .output = ORDER_OUT},
};

static void register_routes(void)
{
    for (size_t i = 0; i < ARRAY_LEN(schemas); i++)
        openapi_schema_add(&schemas[i]);
    router_add(routes, ARRAY_LEN(routes));
    orders__stripe_register_routes();
    orders__packs_register_routes();
    orders__plans_register_routes();
}

static void register_jobs(void)
{
    static const struct job_kind kind = {.kind = "orders.expire", .handler = job_expire, .queue = "default",
                                         .timeout_ms = 120000};
    jobs_register(&kind);
    cron_register("orders.expire_sweep", "* * * * *", "orders.expire", "{}");
    orders__stripe_register_jobs();
    orders__plans_register_jobs();
    register_templates();
}

const struct module orders_module = {
    .name = "orders",
    .config = config,
    .register_routes = register_routes,
    .register_jobs = register_jobs,
};
