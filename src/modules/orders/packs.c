/*
 * packs.c — credits for money (issue 11 item 3): the AI studio sells packs
 * of credits through the same order and Stripe path as goods.
 *
 *   /api/v1/credits/packs            public read; admin create/update/delete
 *                                    {name (tr/en/pl), credits, price, currency, active}
 *   POST /api/v1/credits/purchases   {pack_id} (Idempotency-Key) → 201, a pending
 *                                    order of kind "credits" (one line: the pack,
 *                                    no address, no stock); pay it with
 *                                    POST /orders/{id}/pay like any order
 * When the order becomes paid (the Stripe webhook, or an admin) the
 * transition adds a "purchase" ledger entry of the pack's credits in the
 * same transaction — once, because the transition to paid happens once.
 */
#include <stdio.h>

#include "core/uuid.h"
#include "modules/credits/credits.h"
#include "modules/orders/orders_internal.h"
#include "modules/users/identity.h"
#include "resource/resource.h"

#include "core/banned.h"

static const struct rfield pack_fields[] = {
    {.name = "name", .type = RF_I18N, .flags = RF_REQUIRED, .min = 1, .max = 200},
    {.name = "credits", .type = RF_INT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT, .min = 1, .max = 100000000,
     .description = "credits the pack adds to the buyer's balance"},
    {.name = "price", .type = RF_MONEY, .flags = RF_REQUIRED | RF_FILTER | RF_SORT, .min = 1,
     .max = 1000000000000LL, .description = "minor units of currency"},
    {.name = "currency", .type = RF_TEXT, .flags = RF_FILTER, .check = RC_CURRENCY, .def = "\"TRY\""},
    {.name = "active", .type = RF_BOOL, .flags = RF_FILTER, .def = "true",
     .description = "only active packs can be bought"},
    {0}};
static const struct resource credit_packs = {
    .name = "credit_packs", .singular = "credit pack", .path = "/api/v1/credits/packs", .table = "credit_packs",
    .tag = "credits", .fields = pack_fields,
    .read = RP_PUBLIC, .create = RP_ADMIN, .update = RP_ADMIN, .del = RP_ADMIN};

struct buy_ctx {
    str_t pack_id;
    char id[UUID_STR_LEN + 1];
};

static int tx_buy(struct req *r, void *arg)
{
    struct buy_ctx *c = arg;
    struct db_res *res;
    if (!uuid_valid(c->pack_id))
        return http_invalid(r, "pack_id", "is not a credit pack on sale");
    int rc = db_query(r->db, "SELECT name, credits, price, currency FROM credit_packs WHERE id = ? AND active = ?",
                      DB_ARGS(DBA_TEXT(c->pack_id), DBA_BOOL(true)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? rc : http_invalid(r, "pack_id", "is not a credit pack on sale");
    }
    str_t plain = resource_i18n_text(r, db_text(res, 0));
    char currency[8], pack[UUID_STR_LEN + 1];
    (void)str_copy(currency, db_text(res, 3).p, sizeof(currency));
    (void)str_copy(pack, c->pack_id.p, sizeof(pack));
    struct order_head h = {.id = c->id, .kind = "credits", .currency = currency, .total = db_int(res, 2),
                           .credits = db_int(res, 1), .address = STR_NULL};
    db_res_free(res);
    rc = orders__insert(r, &h);
    if (rc == DB_OK)
        rc = orders__insert_line(r->db, c->id, 0, pack, plain, h.total, 1, currency);
    return rc == DB_OK ? orders__created(r->db, r, NULL, str_c(c->id)) : rc;
}

static int h_buy(struct req *r)
{
    const json_t *p = json_object_get(r->body, "pack_id");
    struct buy_ctx c = {.pack_id = str_make(json_string_value(p), json_string_length(p))};
    if (identity_is_guest(r))
        return http_fail(r, 403, "FORBIDDEN", "guests cannot buy credits: register or sign in first");
    uuid7_str(c.id);
    if (req_tx(r, DB_TX_WRITE, tx_buy, &c))
        return HTTP_EFAIL;
    return orders__respond(r, str_c(c.id), 201);
}

/* The user and credits of a credits order (*found false for other kinds). */
static int credits_order(struct db *db, str_t order_id, char user[UUID_STR_LEN + 1], int64_t *credits, bool *found)
{
    struct db_res *res;
    *found = false;
    int rc = db_query(db, "SELECT user_id, credits FROM orders WHERE id = ? AND kind = 'credits'",
                      DB_ARGS(DBA_TEXT(order_id)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1) {
        (void)str_copy(user, db_text(res, 0).p, UUID_STR_LEN + 1);
        *credits = db_int(res, 1);
        *found = true;
    }
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

int orders__credit_take_back(struct db *db, str_t user, int64_t credits, str_t order_id)
{
    char ref[64];
    struct credits_balance b;
    /* as far as it is still available (spent credit stays spent) */
    int rc = credits_get(db, user, &b);
    if (rc != DB_OK)
        return rc;
    int64_t back = credits < b.available ? credits : b.available;
    if (back <= 0)
        return DB_OK;
    (void)snprintf(ref, sizeof(ref), "refund order:%.*s", STR_FMT(order_id));
    rc = credits_add(db, user, "adjust", -back, ref, NULL);
    return rc > 0 ? DB_ERR : rc;
}

int orders__credit_refund(struct db *db, str_t order_id)
{
    char user[UUID_STR_LEN + 1];
    int64_t credits = 0;
    bool found;
    int rc = credits_order(db, order_id, user, &credits, &found);
    if (rc != DB_OK || !found)
        return rc;
    return orders__credit_take_back(db, str_c(user), credits, order_id);
}

int orders__credit_purchase(struct db *db, str_t order_id)
{
    char user[UUID_STR_LEN + 1], ref[64];
    int64_t credits = 0;
    bool found;
    int rc = credits_order(db, order_id, user, &credits, &found);
    if (rc != DB_OK || !found)
        return rc;
    (void)snprintf(ref, sizeof(ref), "order:%.*s", STR_FMT(order_id));
    rc = credits_add(db, str_c(user), "purchase", credits, ref, NULL);
    return rc > 0 ? DB_ERR : rc; /* a purchase adds: it cannot be short */
}

static const struct json_field buy_f[] = {
    {.name = "pack_id", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 64,
     .description = "an active credit pack (/credits/packs)"},
    {0}};
static const struct json_schema buy_s = {buy_f, false};

static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/credits/purchases", .handler = h_buy, .auth = AUTH_USER, .rl = RL_WRITE,
     .input = &buy_s, .flags = ROUTE_IDEMPOTENT,
     .summary = "Buy a credit pack: a pending order of kind credits (pay it with /orders/{id}/pay; the credits "
                "arrive as a purchase ledger entry when it is paid)",
     .tag = "credits", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/Order"})},
};

void orders__packs_register_routes(void)
{
    resource_register(&credit_packs);
    router_add(routes, ARRAY_LEN(routes));
}
