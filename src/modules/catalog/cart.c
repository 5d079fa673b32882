/*
 * cart.c — the caller's cart and favorites (API.md §9; guests too).
 *
 *   GET    /api/v1/me/cart             {"items":[...], "total", "currency", "totals"}
 *   POST   /api/v1/me/cart             {product_id, quantity 1..99 (default 1)}:
 *                                      add-or-increase; 201 new line, 200 existing
 *   GET    /api/v1/me/cart/{item_id}   one line (engine)
 *   PUT    /api/v1/me/cart/{item_id}   {quantity 1..99} (If-Match honoured)
 *   DELETE /api/v1/me/cart/{item_id}   (engine)
 *   GET    /api/v1/me/favorites        list, newest first, each with its product
 *                                      expanded ("product": null once it is no
 *                                      longer sold); filter product_id; pages
 *   POST   /api/v1/me/favorites        {product_id}: 201 new, 200 already there
 *   GET|DELETE /api/v1/me/favorites/{id}  (engine)
 * Another user's line or favorite is 404 everywhere (owner policy).
 *
 * Concurrency: add-or-increase is ONE statement, an upsert whose update arm
 * only applies while the sum stays <= 99:
 *   INSERT ... ON CONFLICT (user_id, product_id) DO UPDATE SET quantity =
 *   quantity + excluded.quantity WHERE quantity + excluded.quantity <= 99
 *   RETURNING id
 * PostgreSQL serialises it on the row (or the unique index for the first
 * insert), SQLite on its single writer, so N concurrent adds of 1 end at
 * exactly N, and a line never passes 99 (no row returned: 422). Whether the
 * line is new is read from the returned id: ours (just generated) or not.
 */
#include <stdio.h>

#include "core/timeutil.h"
#include "core/uuid.h"
#include "modules/catalog/catalog.h"
#include "modules/users/identity.h"

#include "core/banned.h"

static const struct rfield cart_fields[] = {
    {.name = "product_id", .type = RF_REF, .ref = &catalog_products, .flags = RF_READONLY | RF_FILTER},
    {.name = "quantity", .type = RF_INT, .flags = RF_READONLY | RF_FILTER | RF_SORT, .min = 1,
     .max = CART_MAX_QUANTITY},
    {0}};
const struct resource catalog_cart_items = {
    .name = "cart_items", .singular = "cart line", .path = "/api/v1/me/cart", .table = "catalog_cart_items",
    .tag = "cart", .fields = cart_fields, .owner = "user_id",
    .read = RP_OWNER, .create = RP_DENY, .update = RP_DENY, .del = RP_OWNER, .routes = RR_GET | RR_DELETE};

static const struct rfield favorite_fields[] = {
    {.name = "product_id", .type = RF_REF, .ref = &catalog_products, .flags = RF_READONLY | RF_FILTER},
    {0}};
const struct resource catalog_favorites = {
    .name = "favorites", .singular = "favorite", .path = "/api/v1/me/favorites", .table = "catalog_favorites",
    .tag = "cart", .fields = favorite_fields, .owner = "user_id",
    .read = RP_OWNER, .create = RP_DENY, .update = RP_DENY, .del = RP_OWNER,
    .routes = RR_GET | RR_DELETE};

static str_t body_text(struct req *r, const char *key)
{
    const json_t *v = json_object_get(r->body, key);
    return json_is_string(v) ? str_make(json_string_value(v), json_string_length(v)) : STR_NULL;
}

int catalog_product_live(struct db *db, str_t product_id, bool *live)
{
    int64_t n = 0;
    bool found;
    *live = false;
    if (!uuid_valid(product_id))
        return DB_OK;
    int rc = db_query_int(db, "SELECT count(*) FROM catalog_products WHERE id = ? AND deleted_at IS NULL",
                          DB_ARGS(DBA_TEXT(product_id)), &n, &found);
    *live = n > 0;
    return rc;
}

/* ---- GET /me/cart ---- */

#define MAX_CURRENCIES 8

struct total {
    char currency[4];
    int64_t sum;
};

int catalog_cart_respond(struct req *r, const char *lines_sql, str_t owner, bool added_by)
{
    static const char *const line_fields[] = {"id", "product_id", "quantity", NULL};
    static const char *const line_times[] = {"created_at", "updated_at", NULL};
    enum lang lang = resource_caller(r).lang;
    struct db_res *res;
    struct total totals[MAX_CURRENCIES];
    size_t nt = 0;
    bool overflow = false;
    int rc = db_query(r->db, lines_sql, DB_ARGS(DBA_TEXT(owner)), &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    struct jw *w = &r->w;
    jw_obj_begin(w);
    jw_key(w, "items");
    jw_arr_begin(w);
    while ((rc = db_next(res)) == 1) {
        int64_t qty = db_int(res, 2), price = db_int(res, 6), line;
        bool available = db_int(res, 9) != 0;
        str_t cur = db_text(res, 7);
        if (__builtin_mul_overflow(qty, price, &line))
            overflow = true;
        jw_obj_begin(w);
        (void)resource_write_fields(w, &catalog_cart_items, line_fields, res, 0, lang);
        jw_key(w, "name");
        resource_write_i18n(r, w, db_text(res, 5));
        jw_key(w, "unit_price");
        jw_int(w, price);
        jw_key(w, "currency");
        jw_str(w, cur);
        jw_key(w, "line_total");
        jw_int(w, overflow ? 0 : line);
        jw_key(w, "stock");
        jw_int(w, db_int(res, 8));
        jw_key(w, "available");
        jw_bool(w, available);
        if (added_by) {
            jw_key(w, "added_by");
            jw_str(w, db_text(res, 10));
        }
        (void)resource_write_fields(w, &catalog_cart_items, line_times, res, 3, lang);
        jw_obj_end(w);
        if (!available || overflow)
            continue; /* a withdrawn product stays visible in the cart but is not charged */
        size_t i = 0;
        while (i < nt && !str_eq(str_c(totals[i].currency), cur))
            i++;
        if (i == nt) {
            if (nt == MAX_CURRENCIES || cur.len != 3) {
                overflow = true;
                continue;
            }
            memcpy(totals[nt].currency, cur.p, 3);
            totals[nt].currency[3] = '\0';
            totals[nt++].sum = 0;
        }
        if (__builtin_add_overflow(totals[i].sum, line, &totals[i].sum))
            overflow = true;
    }
    db_res_free(res);
    if (rc < 0)
        return http_db_fail(r, rc);
    if (overflow)
        return http_fail(r, 422, "VALIDATION_ERROR", "the cart total is too large to compute");
    jw_arr_end(w);
    /* one currency (the usual case): total + currency; several: totals only */
    jw_key(w, "total");
    if (nt <= 1)
        jw_int(w, nt ? totals[0].sum : 0);
    else
        jw_null(w);
    jw_key(w, "currency");
    if (nt <= 1)
        jw_cstr(w, nt ? totals[0].currency : "TRY");
    else
        jw_null(w);
    jw_key(w, "totals");
    jw_obj_begin(w);
    for (size_t i = 0; i < nt; i++) {
        jw_key_str(w, str_c(totals[i].currency));
        jw_int(w, totals[i].sum);
    }
    jw_obj_end(w);
    jw_obj_end(w);
    return 0;
}

static int h_cart(struct req *r)
{
    return catalog_cart_respond(r,
                                "SELECT c.id, c.product_id, c.quantity, ts_ms(c.created_at), ts_ms(c.updated_at), "
                                "p.name, p.price, p.currency, p.stock, CASE WHEN p.deleted_at IS NULL THEN 1 ELSE 0 "
                                "END FROM catalog_cart_items c JOIN catalog_products p ON p.id = c.product_id "
                                "WHERE c.user_id = ? ORDER BY c.created_at, c.id",
                                r->user_id, false);
}

/* ---- POST /me/cart ---- */

/* One statement (runtime issue, W3): the product must be live, the line is
 * created or its quantity raised up to the cap, and the line comes back —
 * no transaction, no second read. No row back means the product is not
 * live or the cap would be passed; only then a second statement says which. */
static char *g_add_sql;

static void build_add_sql(void)
{
    struct buf b = BUF_INIT(BUF_MAX_SQL);
    (void)buf_printf(&b,
                     "INSERT INTO catalog_cart_items (id, version, user_id, product_id, quantity, created_at, "
                     "updated_at) SELECT ?, 1, ?, p.id, ?, ms_ts(?), ms_ts(?) FROM catalog_products p "
                     "WHERE p.id = ? AND p.deleted_at IS NULL "
                     "ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = catalog_cart_items.quantity + "
                     "excluded.quantity, version = catalog_cart_items.version + 1, updated_at = excluded.updated_at "
                     "WHERE catalog_cart_items.quantity + excluded.quantity <= " CART_MAX_QUANTITY_TEXT " RETURNING %s",
                     resource_returning_cols(&catalog_cart_items));
    if (!buf_ok(&b))
        FATAL("cart: the add statement is too long");
    g_add_sql = buf_detach(&b, NULL);
}

static int h_cart_add(struct req *r)
{
    const json_t *q = json_object_get(r->body, "quantity");
    str_t product_id = body_text(r, "product_id");
    int64_t quantity = q ? json_integer_value(q) : 1, now = time_now_ms();
    char id[UUID_STR_LEN + 1];
    struct db_res *res;
    bool live;
    if (!uuid_valid(product_id))
        return http_invalid(r, "product_id", "does not refer to an existing product");
    uuid7_str(id);
    int rc = db_query(r->db, g_add_sql,
                      DB_ARGS(DBA_CSTR(id), DBA_TEXT(r->user_id), DBA_INT(quantity), DBA_INT(now), DBA_INT(now),
                              DBA_TEXT(product_id)),
                      &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if ((rc = db_next(res)) == 1) {
        bool created = str_eq(db_text(res, 0), str_c(id));
        resource_respond_returned(r, &catalog_cart_items, res, created ? 201 : 200);
        db_res_free(res);
        return 0;
    }
    db_res_free(res);
    if (rc < 0)
        return http_db_fail(r, rc);
    if ((rc = catalog_product_live(r->db, product_id, &live)) != DB_OK)
        return http_db_fail(r, rc);
    if (!live)
        return http_invalid(r, "product_id", "does not refer to an existing product");
    http_field_error(r, "quantity", "a cart line holds at most " CART_MAX_QUANTITY_TEXT);
    return http_fail(r, 422, "VALIDATION_ERROR", "the line would hold more than %d", CART_MAX_QUANTITY);
}

/* ---- PUT /me/cart/{item_id} ---- */

static int precondition_failed(struct req *r)
{
    return http_fail(r, 412, "PRECONDITION_FAILED", "the cart line changed since it was read (If-Match)");
}

struct set_ctx {
    str_t id;
    int64_t quantity;
};

static int tx_set(struct req *r, void *arg)
{
    struct set_ctx *c = arg;
    int64_t version = 0, changed = 0;
    bool found = false;
    int rc = db_query_int(r->db, "SELECT version FROM catalog_cart_items WHERE id = ? AND user_id = ?",
                          DB_ARGS(DBA_TEXT(c->id), DBA_TEXT(r->user_id)), &version, &found);
    if (rc != DB_OK)
        return rc;
    if (!found)
        return http_fail(r, 404, "NOT_FOUND", "no such cart line");
    if (!resource_if_match(r, &catalog_cart_items, version))
        return precondition_failed(r);
    rc = db_exec(r->db,
                 "UPDATE catalog_cart_items SET quantity = ?, version = version + 1, updated_at = ms_ts(?) "
                 "WHERE id = ? AND version = ?",
                 DB_ARGS(DBA_INT(c->quantity), DBA_INT(time_now_ms()), DBA_TEXT(c->id), DBA_INT(version)), &changed);
    if (rc == DB_OK && changed != 1)
        return precondition_failed(r);
    return rc;
}

static int h_cart_set(struct req *r)
{
    struct set_ctx c = {.id = req_param(r, "id"), .quantity = json_integer_value(json_object_get(r->body, "quantity"))};
    if (!uuid_valid(c.id))
        return http_fail(r, 404, "NOT_FOUND", "no such cart line");
    if (req_tx(r, DB_TX_WRITE, tx_set, &c))
        return HTTP_EFAIL;
    return resource_respond(r, &catalog_cart_items, c.id, 200);
}

/* ---- POST /me/favorites ---- */

struct fav_ctx {
    str_t product_id;
    char id[UUID_STR_LEN + 1];
    char fav[UUID_STR_LEN + 1];
    bool created;
};

static int tx_fav(struct req *r, void *arg)
{
    struct fav_ctx *c = arg;
    struct db_res *res;
    bool live;
    int64_t now = time_now_ms(), changed = 0;
    int rc = catalog_product_live(r->db, c->product_id, &live);
    if (rc != DB_OK)
        return rc;
    if (!live)
        return http_invalid(r, "product_id", "does not refer to an existing product");
    rc = db_exec(r->db,
                 "INSERT INTO catalog_favorites (id, version, user_id, product_id, created_at, updated_at) "
                 "VALUES (?, 1, ?, ?, ms_ts(?), ms_ts(?)) ON CONFLICT (user_id, product_id) DO NOTHING",
                 DB_ARGS(DBA_CSTR(c->id), DBA_TEXT(r->user_id), DBA_TEXT(c->product_id), DBA_INT(now), DBA_INT(now)),
                 &changed);
    if (rc != DB_OK)
        return rc;
    c->created = changed == 1;
    rc = db_query(r->db, "SELECT id FROM catalog_favorites WHERE user_id = ? AND product_id = ?",
                  DB_ARGS(DBA_TEXT(r->user_id), DBA_TEXT(c->product_id)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1)
        (void)str_copy(c->fav, db_text(res, 0).p, sizeof(c->fav));
    db_res_free(res);
    return rc == 1 ? DB_OK : rc < 0 ? rc : DB_ERR;
}

static int h_fav_add(struct req *r)
{
    struct fav_ctx c = {.product_id = body_text(r, "product_id")};
    uuid7_str(c.id);
    if (req_tx(r, DB_TX_WRITE, tx_fav, &c))
        return HTTP_EFAIL;
    if (c.created) {
        struct buf loc = BUF_INIT(256);
        (void)buf_printf(&loc, "%s/%s", catalog_favorites.path, c.fav);
        req_header(r, "location", buf_str(&loc));
        buf_free(&loc);
    }
    return resource_respond(r, &catalog_favorites, str_c(c.fav), c.created ? 201 : 200);
}

/* ---- routes ---- */

/* ---- GET /me/favorites: the products expanded ---- */

static int fav_row(struct req *r, const struct db_res *res)
{
    static const struct http_col cols[] = {{"id", COL_TEXT}, {"product_id", COL_TEXT}, {"created_at", COL_TIME},
                                           {"updated_at", COL_TIME}, {NULL, COL_TEXT}};
    struct caller who = resource_caller(r);
    bool found;
    jw_obj_begin(&r->w);
    http_write_cols(&r->w, res, cols);
    jw_key(&r->w, "product");
    int rc = resource_write(&who, r->db, &catalog_products, db_text(res, 1), &r->w, &found);
    if (rc == DB_OK && !found)
        jw_null(&r->w);
    jw_obj_end(&r->w);
    return rc;
}

static int h_fav_list(struct req *r)
{
    static const char *const allowed[] = {"product_id", NULL};
    const str_t *pid = req_query(r, "product_id");
    db_arg args[4] = {DBA_TEXT(r->user_id), pid ? DBA_TEXT(*pid) : DBA_NULL}; /* + limit, offset */
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    const struct http_list_query q = {"id, product_id, ts_ms(created_at), ts_ms(updated_at)", "FROM catalog_favorites",
                                      pid ? " WHERE user_id = ? AND product_id = ?" : " WHERE user_id = ?",
                                      "created_at DESC, id DESC", NULL};
    return http_list_each(r, &q, fav_row, args, pid ? 2 : 1, ARRAY_LEN(args));
}

static const struct json_field add_f[] = {
    {.name = "product_id", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 64, .format = "uuid"},
    {.name = "quantity", .type = JF_INT, .min = 1, .max = CART_MAX_QUANTITY,
     .description = "how many to add (default 1); the line holds at most 99"},
    {0}};
static const struct json_schema add_s = {add_f, false};
static const struct json_field set_f[] = {
    {.name = "quantity", .type = JF_INT, .flags = JF_REQUIRED, .min = 1, .max = CART_MAX_QUANTITY}, {0}};
static const struct json_schema set_s = {set_f, false};
static const struct json_field fav_f[] = {
    {.name = "product_id", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 64, .format = "uuid"}, {0}};
static const struct json_schema fav_s = {fav_f, false};

/* OpenAPI: what catalog_cart_respond writes (the caller's cart, and a company's with added_by). */
static struct openapi_schema cart_schemas[] = {
    {.name = "CartItem",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : [
             "id", "product_id", "quantity", "name", "unit_price", "currency", "line_total", "stock", "available",
             "created_at", "updated_at"
         ],
         "properties" : {
             "id" : {"type" : "string", "format" : "uuid"},
             "product_id" : {"type" : "string", "format" : "uuid"},
             "quantity" : {"type" : "integer", "minimum" : 1, "maximum" : 99},
             "name" : {"type" : [ "string", "null" ], "description" : "in the request's language"},
             "unit_price" : {"type" : "integer", "description" : "minor units"},
             "currency" : {"type" : "string", "pattern" : "^[A-Z]{3}$"},
             "line_total" : {"type" : "integer", "description" : "minor units"},
             "stock" : {"type" : "integer"},
             "available" : {"type" : "boolean", "description" : "false: the product was withdrawn (not charged)"},
             "added_by" : {"type" : "string", "format" : "uuid", "description" : "a company cart's line: the member who added it"},
             "created_at" : {"type" : "string", "format" : "date-time"},
             "updated_at" : {"type" : "string", "format" : "date-time"}
         }
     })},
    {.name = "Cart",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "items", "total", "currency", "totals" ],
         "properties" : {
             "items" : {"type" : "array", "items" : {"$ref" : "#/components/schemas/CartItem"}},
             "total" : {"type" : [ "integer", "null" ], "description" : "minor units; null when the cart holds several currencies"},
             "currency" : {"type" : [ "string", "null" ], "description" : "null when the cart holds several currencies"},
             "totals" : {"type" : "object", "additionalProperties" : {"type" : "integer"}, "description" : "per currency, minor units"}
         }
     })},
    {.name = "FavoriteWithProduct",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "id", "product_id", "created_at", "updated_at", "product" ],
         "properties" : {
             "id" : {"type" : "string", "format" : "uuid"},
             "product_id" : {"type" : "string", "format" : "uuid"},
             "created_at" : {"type" : "string", "format" : "date-time"},
             "updated_at" : {"type" : "string", "format" : "date-time"},
             "product" : {"anyOf" : [ {"$ref" : "#/components/schemas/Product"}, {"type" : "null"} ], "description" : "null once the product is no longer sold"}
         }
     })},
};

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/me/cart", .handler = h_cart, .auth = AUTH_USER, .rl = RL_READ,
     .summary = "The caller's cart: lines with prices in the request's language, total and currency", .tag = "cart",
     .output = OPENAPI_JSON({"$ref" : "#/components/schemas/Cart"})},
    {.method = "POST", .pattern = "/api/v1/me/cart", .handler = h_cart_add, .auth = AUTH_USER, .rl = RL_WRITE,
     .input = &add_s, .summary = "Add to the cart: 201 new line, 200 added to the existing line (max 99)",
     .tag = "cart",
     .output = OPENAPI_JSON({"$ref" : "#/components/schemas/CartLine"})},
    {.method = "PUT", .pattern = "/api/v1/me/cart/{id}", .handler = h_cart_set, .auth = AUTH_USER, .rl = RL_WRITE,
     .input = &set_s, .summary = "Set the quantity of a cart line (1-99; If-Match)", .tag = "cart",
     .errors = "412", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/CartLine"})},
    {.method = "GET", .pattern = "/api/v1/me/favorites", .handler = h_fav_list, .auth = AUTH_USER, .rl = RL_READ,
     .flags = ROUTE_PAGINATED,
     .summary = "The caller's favorites, newest first, each with its product expanded (filter: product_id)",
     .tag = "cart",
     .params = OPENAPI_JSON([ {"name" : "product_id", "in" : "query", "schema" : {"type" : "string", "format" : "uuid"}} ]),
     .output = OPENAPI_JSON({"$ref" : "#/components/schemas/FavoriteWithProduct"})},
    {.method = "POST", .pattern = "/api/v1/me/favorites", .handler = h_fav_add, .auth = AUTH_USER, .rl = RL_WRITE,
     .input = &fav_s, .summary = "Add a product to the favorites: 201 new, 200 already there", .tag = "cart",
     .output = OPENAPI_JSON({"$ref" : "#/components/schemas/Favorite"})},
};

void catalog__cart_register(void)
{
    resource_register(&catalog_cart_items);
    build_add_sql();
    resource_register(&catalog_favorites);
    for (size_t i = 0; i < ARRAY_LEN(cart_schemas); i++)
        openapi_schema_add(&cart_schemas[i]);
    router_add(routes, ARRAY_LEN(routes));
}
