/*
 * images.c — product images through the files module (issue 11 item 5,
 * issue 13 item 2). API.md §9 is silent on the routes; they are:
 *
 *   POST   /api/v1/products/{id}/images            (admin) {file_id, alt?, position?}
 *          file_id: an image the caller uploaded with POST /files purpose
 *          "product"; attaching hands the file to the catalog (files_adopt:
 *          owner "catalog", out of the uploader's list and quota, so a staff
 *          account that goes takes no product image with it). position
 *          (0-based, default last) shifts the images from there on.
 *          At most CATALOG_IMAGES_MAX per product (409 past it). 201 with
 *          the product.
 *   DELETE /api/v1/products/{id}/images/{image_id}  (admin) forgets the file
 *          (row and bytes: files_forget); the others close the gap. 204.
 *   GET    /api/v1/products/{id}/images/{image_id}[?variant=thumbnail|medium|large]
 *          public: the bytes through the files module (files_send: local
 *          storage with Range, S3 a 302 to a presigned GET) while the
 *          product is live.
 *
 * Public readers need no auth: the image route is as public as the
 * product; it serves only files attached to a live product. Presigned
 * links were the other way, but they expire and change with every read of
 * the product (no caching, stale links in clients), where this URL is
 * stable.
 *
 * The product document's "images" (a column kept in the same transaction
 * as product_images) lists {id, file_id, position, alt, mime_type, size,
 * url, variants: {thumbnail, medium, large}}; a variant URL answers 404
 * until the files job has made it (seconds after the upload).
 * Deleting the product (soft delete) forgets all its image files.
 */
#include "core/timeutil.h"
#include "core/uuid.h"
#include "modules/catalog/catalog.h"
#include "modules/files/files.h"

#include "core/banned.h"

#define CATALOG_IMAGES_MAX 10
#define IMAGES_OWNER "catalog"

static const char *const variants[] = {"thumbnail", "medium", "large"};

/* Rewrite catalog_products.images from product_images (and bump the
 * product's version: its ETag changes). */
static int rebuild(struct db *db, str_t product_id)
{
    struct db_res *res;
    int rc = db_query(db,
                      "SELECT i.id, i.file_id, i.position, i.alt, f.mime_type, f.size FROM product_images i "
                      "JOIN files f ON f.id = i.file_id WHERE i.product_id = ? ORDER BY i.position, i.id",
                      DB_ARGS(DBA_TEXT(product_id)), &res);
    if (rc)
        return rc;
    struct buf json = BUF_INIT(256u << 10), url = BUF_INIT(512);
    struct jw w;
    jw_init(&w, &json);
    jw_arr_begin(&w);
    while ((rc = db_next(res)) == 1) {
        buf_reset(&url);
        (void)buf_printf(&url, "/api/v1/products/%.*s/images/%.*s", STR_FMT(product_id), STR_FMT(db_text(res, 0)));
        jw_obj_begin(&w);
        jw_key(&w, "id");
        jw_str(&w, db_text(res, 0));
        jw_key(&w, "file_id");
        jw_str(&w, db_text(res, 1));
        jw_key(&w, "position");
        jw_int(&w, db_int(res, 2));
        jw_key(&w, "alt");
        jw_str(&w, db_text(res, 3));
        jw_key(&w, "mime_type");
        jw_str(&w, db_text(res, 4));
        jw_key(&w, "size");
        jw_int(&w, db_int(res, 5));
        jw_key(&w, "url");
        jw_str(&w, buf_str(&url));
        jw_key(&w, "variants");
        jw_obj_begin(&w);
        size_t base = url.len;
        for (size_t i = 0; i < ARRAY_LEN(variants); i++) {
            url.len = base;
            (void)buf_printf(&url, "?variant=%s", variants[i]);
            jw_key(&w, variants[i]);
            jw_str(&w, buf_str(&url));
        }
        jw_obj_end(&w);
        jw_obj_end(&w);
    }
    db_res_free(res);
    jw_arr_end(&w);
    if (rc == 0)
        rc = buf_ok(&json) ? db_exec(db,
                                     "UPDATE catalog_products SET images = ?, version = version + 1, "
                                     "updated_at = ms_ts(?) WHERE id = ?",
                                     DB_ARGS(DBA_TEXT(buf_str(&json)), DBA_INT(time_now_ms()), DBA_TEXT(product_id)),
                                     NULL)
                           : DB_ERR;
    buf_free(&json);
    buf_free(&url);
    return rc;
}

/* The live product, locked against concurrent image changes (PostgreSQL;
 * SQLite's write transaction is alone already): 0, or 404 recorded. */
static int lock_product(struct req *r, str_t id)
{
    struct db_res *res;
    int rc = db_query(r->db,
                      db_kind(r->db) == DB_POSTGRES
                          ? "SELECT id FROM catalog_products WHERE id = ? AND deleted_at IS NULL FOR UPDATE"
                          : "SELECT id FROM catalog_products WHERE id = ? AND deleted_at IS NULL",
                      DB_ARGS(DBA_TEXT(id)), &res);
    if (rc)
        return rc;
    rc = db_next(res);
    db_res_free(res);
    if (rc < 0)
        return rc;
    return rc == 1 ? 0 : http_fail(r, 404, "NOT_FOUND", "no such product");
}

struct attach_ctx {
    str_t product_id, file_id, alt;
    const json_t *position;
    char id[UUID_STR_LEN + 1];
};

static int tx_attach(struct req *r, void *arg)
{
    struct attach_ctx *c = arg;
    int rc;
    if ((rc = lock_product(r, c->product_id)))
        return rc;
    int64_t count = 0;
    bool found;
    if ((rc = db_query_int(r->db, "SELECT count(*) FROM product_images WHERE product_id = ?",
                           DB_ARGS(DBA_TEXT(c->product_id)), &count, &found)))
        return rc;
    if (count >= CATALOG_IMAGES_MAX)
        return http_fail(r, 409, "CONFLICT", "a product has at most %d images", CATALOG_IMAGES_MAX);
    int64_t pos = c->position ? json_integer_value(c->position) : count;
    if (pos > count)
        return http_invalid(r, "position", "must be at most the number of images (append: leave it out)");
    bool moved;
    if ((rc = files_adopt(r->db, c->file_id, r->user_id, "product", IMAGES_OWNER, &moved)))
        return rc;
    if (!moved)
        return http_invalid(r, "file_id", "must be an image you uploaded with POST /files, purpose product");
    if ((rc = db_exec(r->db, "UPDATE product_images SET position = position + 1 WHERE product_id = ? AND position >= ?",
                      DB_ARGS(DBA_TEXT(c->product_id), DBA_INT(pos)), NULL)))
        return rc;
    if ((rc = db_exec(r->db,
                      "INSERT INTO product_images (id, product_id, file_id, position, alt, created_at) "
                      "VALUES (?, ?, ?, ?, ?, ms_ts(?))",
                      DB_ARGS(DBA_CSTR(c->id), DBA_TEXT(c->product_id), DBA_TEXT(c->file_id), DBA_INT(pos),
                              DBA_TEXT(c->alt), DBA_INT(time_now_ms())),
                      NULL)))
        return rc;
    return rebuild(r->db, c->product_id);
}

static int h_attach(struct req *r)
{
    const json_t *f = json_object_get(r->body, "file_id"), *a = json_object_get(r->body, "alt");
    struct attach_ctx c = {.product_id = req_param(r, "id"),
                           .file_id = str_make(json_string_value(f), json_string_length(f)),
                           .alt = a ? str_make(json_string_value(a), json_string_length(a)) : STRLIT(""),
                           .position = json_object_get(r->body, "position")};
    if (!uuid_valid(c.product_id))
        return http_fail(r, 404, "NOT_FOUND", "no such product");
    if (!uuid_valid(c.file_id))
        return http_invalid(r, "file_id", "must be an image you uploaded with POST /files, purpose product");
    uuid7_str(c.id);
    if (req_tx(r, DB_TX_WRITE, tx_attach, &c))
        return HTTP_EFAIL;
    resource_cache_bump(&catalog_products); /* the product document's images changed */
    return resource_respond(r, &catalog_products, c.product_id, 201);
}

struct detach_ctx {
    str_t product_id, image_id;
};

static int tx_detach(struct req *r, void *arg)
{
    struct detach_ctx *c = arg;
    int rc;
    if ((rc = lock_product(r, c->product_id)))
        return rc;
    struct db_res *res;
    if ((rc = db_query(r->db, "SELECT file_id, position FROM product_images WHERE id = ? AND product_id = ?",
                       DB_ARGS(DBA_TEXT(c->image_id), DBA_TEXT(c->product_id)), &res)))
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? rc : http_fail(r, 404, "NOT_FOUND", "no such image");
    }
    int64_t pos = db_int(res, 1);
    rc = files_forget(r->db, db_text(res, 0)); /* the product_images row goes with it */
    db_res_free(res);
    if (rc == DB_OK)
        rc = db_exec(r->db, "UPDATE product_images SET position = position - 1 WHERE product_id = ? AND position > ?",
                     DB_ARGS(DBA_TEXT(c->product_id), DBA_INT(pos)), NULL);
    return rc ? rc : rebuild(r->db, c->product_id);
}

static int h_detach(struct req *r)
{
    struct detach_ctx c = {.product_id = req_param(r, "id"), .image_id = req_param(r, "image_id")};
    if (!uuid_valid(c.product_id) || !uuid_valid(c.image_id))
        return http_fail(r, 404, "NOT_FOUND", "no such image");
    if (req_tx(r, DB_TX_WRITE, tx_detach, &c))
        return HTTP_EFAIL;
    resource_cache_bump(&catalog_products);
    r->status = 204;
    return 0;
}

static int h_image(struct req *r)
{
    static const char *const allowed[] = {"variant", NULL};
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    str_t pid = req_param(r, "id"), iid = req_param(r, "image_id");
    if (!uuid_valid(pid) || !uuid_valid(iid))
        return http_fail(r, 404, "NOT_FOUND", "no such image");
    struct db_res *res;
    int rc = db_query(r->db,
                      "SELECT i.file_id FROM product_images i JOIN catalog_products p ON p.id = i.product_id "
                      "WHERE i.id = ? AND i.product_id = ? AND p.deleted_at IS NULL",
                      DB_ARGS(DBA_TEXT(iid), DBA_TEXT(pid)), &res);
    if (rc)
        return http_rc(r, rc);
    struct buf *fid = req_buf(r, 64);
    if ((rc = db_next(res)) == 1)
        (void)buf_put(fid, db_text(res, 0));
    db_res_free(res);
    if (rc != 1)
        return rc < 0 ? http_rc(r, rc) : http_fail(r, 404, "NOT_FOUND", "no such image");
    return files_send(r, buf_str(fid), req_query(r, "variant"), 0);
}

/* A product's soft delete forgets its image files (rows and bytes). */
static int on_product_change(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id,
                             const json_t *before, const json_t *after, void *ud)
{
    (void)r;
    (void)before;
    (void)after;
    (void)ud;
    if (res != &catalog_products || act != RA_DELETE)
        return DB_OK;
    struct db_res *q;
    int rc = db_query(db, "SELECT file_id FROM product_images WHERE product_id = ?", DB_ARGS(DBA_TEXT(id)), &q);
    if (rc)
        return rc;
    while (rc == DB_OK && db_next(q) == 1)
        rc = files_forget(db, db_text(q, 0));
    db_res_free(q);
    if (rc == DB_OK)
        rc = db_exec(db, "UPDATE catalog_products SET images = '[]' WHERE id = ?", DB_ARGS(DBA_TEXT(id)), NULL);
    return rc;
}

static const struct json_field attach_f[] = {
    {.name = "file_id", .type = JF_STRING, .flags = JF_REQUIRED, .max = 64, .format = "uuid",
     .description = "an image uploaded with POST /files, purpose product"},
    {.name = "alt", .type = JF_STRING, .max = 300, .description = "alternative text"},
    {.name = "position", .type = JF_INT, .min = 0, .max = CATALOG_IMAGES_MAX - 1,
     .description = "0-based place among the product's images (default: last); later ones move down"},
    {0}};
static const struct json_schema attach_s = {attach_f, false};

static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/products/{id}/images", .handler = h_attach, .auth = AUTH_ADMIN,
     .rl = RL_WRITE, .input = &attach_s,
     .summary = "Attach an uploaded image (POST /files purpose product) to a product, at most 10; 201 with the product",
     .tag = "catalog", .errors = "409", .output = OPENAPI_JSON({"$ref": "#/components/schemas/Product"})},
    {.method = "DELETE", .pattern = "/api/v1/products/{id}/images/{image_id}", .handler = h_detach,
     .auth = AUTH_ADMIN, .rl = RL_WRITE, .summary = "Remove a product image (its file and bytes go too)",
     .tag = "catalog", .status = 204},
    {.method = "GET", .pattern = "/api/v1/products/{id}/images/{image_id}", .handler = h_image, .auth = AUTH_NONE,
     .rl = RL_READ,
     .summary = "A product image's bytes (public while the product is; ?variant=thumbnail|medium|large: WebP); "
                "S3 storage answers with a redirect to a presigned GET",
     .tag = "catalog", .output_type = "image/*",
     .params = OPENAPI_JSON([{"name": "variant", "in": "query", "required": false,
                              "schema": {"type": "string", "enum": ["thumbnail", "medium", "large"]}}]),
     .output = OPENAPI_JSON({"type": "string", "format": "binary"}), .status = 302},
};

void catalog__images_register(void)
{
    router_add(routes, ARRAY_LEN(routes));
    resource_on_change(RES_HOOK_TX, on_product_change, NULL);
}
