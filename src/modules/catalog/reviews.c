/*
 * reviews.c — product reviews (one per user per product) and reactions.
 *
 *   GET  /api/v1/products/{id}/reviews   public, the engine's list conventions
 *   POST /api/v1/products/{id}/reviews   signed-in non-guests; a second review of
 *                                        the same product is 409 (a unique index
 *                                        decides, so concurrency cannot beat it)
 *   GET|PATCH|DELETE /api/v1/reviews/{id} public read; the author edits; the
 *                                        author or staff delete
 *   POST   /api/v1/reviews/{id}/reactions {type: like|dislike}  one per user and
 *                                        review: 201 new, 200 changed or repeated
 *   DELETE /api/v1/reviews/{id}/reactions  take one's reaction back
 *
 * The likes/dislikes counters on the review change by +1/-1 in the same
 * transaction as the reaction row (never recounted), so they stay exact under
 * concurrent reactions on both engines. They do not bump the review's version:
 * its ETag guards the author's text, not the counters.
 */
#include "core/timeutil.h"
#include "core/uuid.h"
#include "modules/catalog/catalog.h"
#include "modules/users/identity.h"

#include "core/banned.h"

static int review_check(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id);

static const struct rfield review_fields[] = {
    {.name = "product_id", .type = RF_REF, .ref = &catalog_products, .flags = RF_REQUIRED | RF_FILTER | RF_CREATE_ONLY},
    {.name = "rating", .type = RF_INT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT, .min = 1, .max = 5},
    {.name = "title", .type = RF_TEXT, .max = 200, .def = "\"\""},
    {.name = "body", .type = RF_TEXT, .max = 5000, .def = "\"\""},
    {.name = "likes", .type = RF_INT, .flags = RF_READONLY | RF_FILTER | RF_SORT},
    {.name = "dislikes", .type = RF_INT, .flags = RF_READONLY | RF_SORT},
    {.name = "user_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER, .description = "the author"},
    {0}};
const struct resource catalog_reviews = {
    .name = "reviews", .singular = "review", .path = "/api/v1/reviews", .table = "catalog_reviews",
    .tag = "catalog", .fields = review_fields, .owner = "user_id",
    .read = RP_PUBLIC, .create = RP_AUTH, .update = RP_OWNER, .del = RP_OWNER_OR_STAFF,
    .routes = RR_LIST | RR_GET | RR_UPDATE | RR_DELETE, .check = review_check,
    .invalidates = &catalog_products}; /* its rating and rating_count */

/* A friendly 409 before the insert; the unique index stays the guarantee. */
static int review_check(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id)
{
    (void)res;
    (void)id;
    const json_t *p = json_object_get(body, "product_id");
    if (act != RA_CREATE || !json_is_string(p))
        return 0;
    int64_t n = 0;
    bool found;
    int rc = db_query_int(r->db, "SELECT count(*) FROM catalog_reviews WHERE product_id = ? AND user_id = ?",
                          DB_ARGS(DBA_TEXT(str_make(json_string_value(p), json_string_length(p))),
                                  DBA_TEXT(r->user_id)),
                          &n, &found);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (n)
        return http_fail(r, 409, "CONFLICT", "you have already reviewed this product");
    return 0;
}

static int h_product_reviews(struct req *r)
{
    str_t id = req_param(r, "id");
    if (resource_require(r, &catalog_products, id))
        return HTTP_EFAIL;
    return resource_list(r, &catalog_reviews, "t.product_id = ?", DB_ARGS(DBA_TEXT(id)));
}

static int h_product_review_create(struct req *r)
{
    str_t id = req_param(r, "id");
    if (identity_is_guest(r))
        return http_fail(r, 403, "FORBIDDEN", "guests cannot write reviews");
    if (resource_require(r, &catalog_products, id))
        return HTTP_EFAIL;
    json_object_set_new(r->body, "product_id", json_stringn(id.p, id.len));
    return resource_create(r, &catalog_reviews);
}

/* ---- reactions ---- */

struct react_ctx {
    str_t review_id, type; /* type empty: remove */
    bool created;
    int64_t likes, dislikes;
};

#define NO_REACTION "no such review, or no reaction of yours on it"

/* Inside the tx: the review must exist (else 404 with `missing`); *own: is it the caller's? */
static int load_review(struct req *r, struct react_ctx *c, bool *own, const char *missing)
{
    struct db_res *res;
    int rc = db_query(r->db, "SELECT user_id FROM catalog_reviews WHERE id = ?", DB_ARGS(DBA_TEXT(c->review_id)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? rc : http_fail(r, 404, "NOT_FOUND", "%s", missing);
    }
    *own = str_eq(db_text(res, 0), r->user_id);
    db_res_free(res);
    return DB_OK;
}

static int bump(struct db *db, str_t review_id, int dlikes, int ddislikes)
{
    return db_exec(db, "UPDATE catalog_reviews SET likes = likes + ?, dislikes = dislikes + ? WHERE id = ?",
                   DB_ARGS(DBA_INT(dlikes), DBA_INT(ddislikes), DBA_TEXT(review_id)), NULL);
}

static int counters(struct db *db, struct react_ctx *c)
{
    struct db_res *res;
    int rc = db_query(db, "SELECT likes, dislikes FROM catalog_reviews WHERE id = ?", DB_ARGS(DBA_TEXT(c->review_id)),
                      &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1) {
        c->likes = db_int(res, 0);
        c->dislikes = db_int(res, 1);
    }
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

static int tx_react(struct req *r, void *arg)
{
    struct react_ctx *c = arg;
    struct db *db = r->db;
    bool own = false, like = str_is(c->type, "like");
    int64_t changed = 0;
    c->created = false;
    int rc = load_review(r, c, &own, "no such review");
    if (rc != DB_OK)
        return rc;
    if (own)
        return http_fail(r, 403, "FORBIDDEN", "you cannot react to your own review");
    /* new reaction, or a change of type, or the same again (nothing to do) */
    rc = db_exec(db,
                 "INSERT INTO catalog_review_reactions (review_id, user_id, type, created_at) VALUES (?, ?, ?, ms_ts(?)) "
                 "ON CONFLICT (review_id, user_id) DO NOTHING",
                 DB_ARGS(DBA_TEXT(c->review_id), DBA_TEXT(r->user_id), DBA_TEXT(c->type), DBA_INT(time_now_ms())),
                 &changed);
    if (rc != DB_OK)
        return rc;
    if (changed == 1) {
        c->created = true;
        rc = bump(db, c->review_id, like ? 1 : 0, like ? 0 : 1);
    } else {
        rc = db_exec(db, "UPDATE catalog_review_reactions SET type = ? WHERE review_id = ? AND user_id = ? AND type <> ?",
                     DB_ARGS(DBA_TEXT(c->type), DBA_TEXT(c->review_id), DBA_TEXT(r->user_id), DBA_TEXT(c->type)),
                     &changed);
        if (rc == DB_OK && changed == 1)
            rc = bump(db, c->review_id, like ? 1 : -1, like ? -1 : 1);
    }
    return rc == DB_OK ? counters(db, c) : rc;
}

static int tx_unreact(struct req *r, void *arg)
{
    struct react_ctx *c = arg;
    struct db *db = r->db;
    struct db_res *res;
    bool own = false;
    int rc = load_review(r, c, &own, NO_REACTION);
    if (rc != DB_OK)
        return rc;
    rc = db_query(db, "SELECT type FROM catalog_review_reactions WHERE review_id = ? AND user_id = ?",
                  DB_ARGS(DBA_TEXT(c->review_id), DBA_TEXT(r->user_id)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? rc : http_fail(r, 404, "NOT_FOUND", NO_REACTION);
    }
    bool like = str_is(db_text(res, 0), "like");
    db_res_free(res);
    int64_t changed = 0;
    rc = db_exec(db, "DELETE FROM catalog_review_reactions WHERE review_id = ? AND user_id = ? AND type = ?",
                 DB_ARGS(DBA_TEXT(c->review_id), DBA_TEXT(r->user_id), DBA_CSTR(like ? "like" : "dislike")),
                 &changed);
    if (rc == DB_OK && changed == 1)
        rc = bump(db, c->review_id, like ? -1 : 0, like ? 0 : -1);
    return rc;
}

static int h_react(struct req *r)
{
    const json_t *t = json_object_get(r->body, "type");
    struct react_ctx c = {.review_id = req_param(r, "id"), .type = str_make(json_string_value(t), json_string_length(t))};
    if (!uuid_valid(c.review_id))
        return http_fail(r, 404, "NOT_FOUND", "no such review");
    if (identity_is_guest(r))
        return http_fail(r, 403, "FORBIDDEN", "guests cannot react to reviews");
    if (req_tx(r, DB_TX_WRITE, tx_react, &c))
        return HTTP_EFAIL;
    r->status = c.created ? 201 : 200;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "review_id");
    jw_str(&r->w, c.review_id);
    jw_key(&r->w, "type");
    jw_str(&r->w, c.type);
    jw_key(&r->w, "likes");
    jw_int(&r->w, c.likes);
    jw_key(&r->w, "dislikes");
    jw_int(&r->w, c.dislikes);
    jw_obj_end(&r->w);
    return 0;
}

static int h_unreact(struct req *r)
{
    struct react_ctx c = {.review_id = req_param(r, "id")};
    if (!uuid_valid(c.review_id))
        return http_fail(r, 404, "NOT_FOUND", "no such review");
    if (req_tx(r, DB_TX_WRITE, tx_unreact, &c))
        return HTTP_EFAIL;
    r->status = 204;
    return 0;
}

/* ---- routes ---- */

static const struct json_field review_f[] = {
    {.name = "rating", .type = JF_INT, .flags = JF_REQUIRED, .min = 1, .max = 5},
    {.name = "title", .type = JF_STRING, .max = 200},
    {.name = "body", .type = JF_STRING, .max = 5000},
    {0}};
static const struct json_schema review_s = {review_f, false};
static const char *const reaction_types[] = {"like", "dislike", NULL};
static const struct json_field react_f[] = {
    {.name = "type", .type = JF_STRING, .flags = JF_REQUIRED, .enum_values = reaction_types}, {0}};
static const struct json_schema react_s = {react_f, false};

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/products/{id}/reviews", .handler = h_product_reviews,
     .auth = AUTH_OPTIONAL, .rl = RL_READ, .flags = ROUTE_PAGINATED,
     .summary = "Reviews of a product (filters, sort, pages)", .tag = "catalog", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/Review"})},
    {.method = "POST", .pattern = "/api/v1/products/{id}/reviews", .handler = h_product_review_create,
     .auth = AUTH_USER, .rl = RL_WRITE, .input = &review_s,
     .summary = "Review a product (one review per user per product: 409 on a second)", .tag = "catalog",
     .errors = "403 409", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/Review"})},
    {.method = "POST", .pattern = "/api/v1/reviews/{id}/reactions", .handler = h_react, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &react_s,
     .summary = "React to a review (like|dislike; one per user: 201 new, 200 changed or repeated)",
     .tag = "catalog", .errors = "403",
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "review_id", "type", "likes", "dislikes" ],
         "properties" : {
             "review_id" : {"type" : "string", "format" : "uuid"},
             "type" : {"type" : "string", "enum" : [ "like", "dislike" ]},
             "likes" : {"type" : "integer", "minimum" : 0},
             "dislikes" : {"type" : "integer", "minimum" : 0}
         }
     })},
    {.method = "DELETE", .pattern = "/api/v1/reviews/{id}/reactions", .handler = h_unreact, .auth = AUTH_USER,
     .rl = RL_WRITE, .summary = "Take back one's reaction to a review", .tag = "catalog",
     .status = 204},
};

void catalog__reviews_register(void)
{
    resource_register(&catalog_reviews);
    router_add(routes, ARRAY_LEN(routes));
}
