/*
 * catalog.c — the shop's catalog (API.md §9, seeds 001/004) on the resource
 * engine, and the module entry.
 *
 *   /api/v1/categories   public read; admin write. Seeded by migration 0010
 *                        with the seven categories of seed 004; name and
 *                        description in the Accept-Language language.
 *   /api/v1/products     public read with filters (category slug, price
 *                        range, stock, rating_count), sort (price, stock,
 *                        rating, ...), q (full text over the tr/en/pl names
 *                        and descriptions); admin write; soft delete. Also
 *                        hits of GET /search (type "products", title = the
 *                        name in the request's language). rating and
 *                        rating_count are kept by triggers on catalog_reviews
 *                        (migration 0025): the review's insert, rating change
 *                        or delete moves them in the same transaction.
 *   /api/v1/me/addresses the caller's own addresses (CRUD); one default.
 * Product images (files module) live in images.c.
 * Reviews and reactions live in reviews.c; cart and favorites in cart.c;
 * personal-data hooks in personal.c; `temel seed` in seed.c.
 */
#include "modules/catalog/catalog.h"
#include "modules/users/identity.h"

#include "core/banned.h"

/* ---- categories ---- */

static const struct rfield category_fields[] = {
    {.name = "slug", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT, .min = 1, .max = 100,
     .check = RC_SLUG, .description = "products name their category by this slug"},
    {.name = "name", .type = RF_I18N, .flags = RF_REQUIRED, .min = 1, .max = 100},
    {.name = "description", .type = RF_I18N, .flags = RF_NULLABLE, .max = 2000},
    {.name = "position", .type = RF_INT, .flags = RF_FILTER | RF_SORT, .min = 0, .max = 1000000, .def = "0",
     .description = "display order (sort=position)"},
    {0}};
const struct resource catalog_categories = {
    .name = "categories", .singular = "category", .path = "/api/v1/categories", .table = "catalog_categories",
    .tag = "catalog", .fields = category_fields,
    .read = RP_PUBLIC, .create = RP_ADMIN, .update = RP_ADMIN, .del = RP_ADMIN, .public_cache = true};

/* ---- products ---- */

static int product_check(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id);

static const struct rfield product_fields[] = {
    {.name = "category", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT, .min = 1, .max = 100,
     .check = RC_SLUG, .description = "the category slug"},
    {.name = "sku", .type = RF_TEXT, .flags = RF_NULLABLE | RF_FILTER | RF_SORT, .min = 1, .max = 64,
     .description = "stock-keeping unit, unique when set"},
    {.name = "name", .type = RF_I18N, .flags = RF_REQUIRED | RF_SEARCH, .min = 1, .max = 200},
    {.name = "description", .type = RF_I18N, .flags = RF_NULLABLE | RF_SEARCH, .max = 10000},
    {.name = "price", .type = RF_MONEY, .flags = RF_REQUIRED | RF_FILTER | RF_SORT, .min = 0,
     .max = 1000000000000LL},
    {.name = "currency", .type = RF_TEXT, .flags = RF_FILTER, .check = RC_CURRENCY, .def = "\"TRY\""},
    {.name = "stock", .type = RF_INT, .flags = RF_FILTER | RF_SORT, .min = 0, .max = 1000000000, .def = "0"},
    {.name = "rating", .type = RF_NUMBER, .flags = RF_READONLY | RF_NULLABLE | RF_SORT,
     .description = "average review rating (1-5, two decimals; null without reviews), kept in step with the reviews "
                    "in each review's own transaction; sort=rating:desc lists unrated products last"},
    {.name = "rating_count", .type = RF_INT, .flags = RF_READONLY | RF_FILTER | RF_SORT,
     .description = "number of reviews"},
    {.name = "images", .type = RF_JSON, .flags = RF_READONLY,
     .description = "the product's images in order (POST /products/{id}/images); url and the variants' URLs are "
                    "public; a variant answers 404 until it is made",
     .schema = OPENAPI_JSON({"type": "array", "items": {"type": "object",
         "required": ["id", "file_id", "position", "alt", "mime_type", "size", "url", "variants"],
         "properties": {"id": {"type": "string", "format": "uuid"}, "file_id": {"type": "string", "format": "uuid"},
             "position": {"type": "integer", "minimum": 0}, "alt": {"type": "string"}, "mime_type": {"type": "string"},
             "size": {"type": "integer"}, "url": {"type": "string"},
             "variants": {"type": "object", "properties": {"thumbnail": {"type": "string"},
                 "medium": {"type": "string"}, "large": {"type": "string"}}}}}})},
    {0}};
const struct resource catalog_products = {
    .name = "products", .singular = "product", .path = "/api/v1/products", .table = "catalog_products",
    .tag = "catalog", .fields = product_fields,
    .read = RP_PUBLIC, .create = RP_ADMIN, .update = RP_ADMIN, .del = RP_ADMIN,
    .soft_delete = true, .check = product_check, .title_field = "name", .public_cache = true,
    /* migration 0036's triggers: GET /products?category=X reads its total, not count(*) of the category */
    .kept_count_table = "catalog_product_counts", .kept_count_field = "category"};

/* The category slug must name a category (422, not the foreign key's 409). */
static int product_check(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id)
{
    (void)res;
    (void)act;
    (void)id;
    const json_t *c = json_object_get(body, "category");
    if (!json_is_string(c))
        return 0;
    int64_t n = 0;
    bool found;
    int rc = db_query_int(r->db, "SELECT count(*) FROM catalog_categories WHERE slug = ?",
                          DB_ARGS(DBA_TEXT(str_make(json_string_value(c), json_string_length(c)))), &n, &found);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (n == 0)
        return http_invalid(r, "category", "is not the slug of a category");
    return 0;
}

/* ---- addresses ---- */

static int address_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id);

static const struct rfield address_fields[] = {
    {.name = "title", .type = RF_TEXT, .flags = RF_FILTER | RF_SORT, .max = 50, .def = "\"\"",
     .description = "a label such as Ev or İş"},
    {.name = "full_name", .type = RF_TEXT, .flags = RF_REQUIRED, .min = 1, .max = 100},
    {.name = "phone", .type = RF_TEXT, .max = 32, .def = "\"\""},
    {.name = "line1", .type = RF_TEXT, .flags = RF_REQUIRED, .min = 1, .max = 200},
    {.name = "line2", .type = RF_TEXT, .max = 200, .def = "\"\""},
    {.name = "district", .type = RF_TEXT, .flags = RF_FILTER, .max = 100, .def = "\"\""},
    {.name = "city", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT, .min = 1, .max = 100},
    {.name = "postal_code", .type = RF_TEXT, .max = 20, .def = "\"\""},
    {.name = "country", .type = RF_TEXT, .flags = RF_FILTER, .min = 2, .max = 2, .def = "\"TR\"",
     .description = "ISO 3166-1 alpha-2"},
    {.name = "is_default", .type = RF_BOOL, .flags = RF_FILTER, .def = "false",
     .description = "at most one address is the default: setting it clears the others"},
    {0}};
const struct resource catalog_addresses = {
    .name = "addresses", .singular = "address", .path = "/api/v1/me/addresses", .table = "catalog_addresses",
    .tag = "catalog", .fields = address_fields, .owner = "user_id",
    .read = RP_OWNER, .create = RP_AUTH, .update = RP_OWNER, .del = RP_OWNER, .after_write = address_after_write};

/* One default address per user: a new default clears the others. */
static int address_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id)
{
    (void)res;
    const json_t *d = r->body ? json_object_get(r->body, "is_default") : NULL;
    if (act == RA_DELETE || !json_is_true(d))
        return DB_OK;
    return db_exec(db,
                   "UPDATE catalog_addresses SET is_default = ?, version = version + 1 "
                   "WHERE user_id = ? AND id <> ? AND is_default = ?",
                   DB_ARGS(DBA_BOOL(false), DBA_TEXT(r->user_id), DBA_TEXT(id), DBA_BOOL(true)), NULL);
}

/* ---- module ---- */

static const struct user_data_hooks catalog_user_data = {.name = "shop",
                                                         .export_data = catalog__export,
                                                         .delete_data = catalog__delete,
                                                         .migrate_guest = catalog__migrate_guest};

/* TEMEL_PUBLIC_CACHE_TTL_S: the public read cache of categories and products (resource.h). */
static int config(const struct config *cfg, struct buf *err)
{
    int64_t ttl_s;
    (void)cfg;
    if (config_env_int("TEMEL_PUBLIC_CACHE_TTL_S", 15, 0, 3600, &ttl_s, err))
        return -1;
    resource_cache_configure(ttl_s * 1000);
    return 0;
}

static void register_routes(void)
{
    resource_register(&catalog_categories);
    resource_register(&catalog_products);
    resource_register(&catalog_addresses);
    catalog__reviews_register();
    catalog__cart_register();
    catalog__images_register();
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    (void)cfg;
    (void)db;
    (void)err;
    identity_register_user_data(&catalog_user_data);
    return 0;
}

const struct module catalog_module = {
    .name = "catalog",
    .config = config,
    .register_routes = register_routes,
    .init = init,
    .seed = catalog__seed,
};
