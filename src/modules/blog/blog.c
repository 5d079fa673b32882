/*
 * blog.c — the blog (API.md §9, seed 001) on the resource engine.
 *
 *   /api/v1/blog/categories   public read, staff write
 *   /api/v1/blog/posts        the public reads published posts; staff write
 *                             and see drafts; published_at is kept by us
 *   /api/v1/blog/comments     signed-in users write; a comment is pending
 *                             until staff set status approved (PATCH), and
 *                             until then only its author and staff see it.
 *                             An author's edit sends it back to pending.
 *   /api/v1/blog/posts/{id}/comments   the comments of one visible post
 *
 * The behaviour that is more than data: published_at, re-moderation after
 * an edit, the nested comment routes, and the personal-data hooks.
 */
#include "core/timeutil.h"
#include "modules/blog/blog.h"
#include "modules/users/identity.h"

#include "core/banned.h"

/* ---- descriptors ---- */

static const struct rfield category_fields[] = {
    {.name = "name", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT, .min = 1, .max = 100},
    {.name = "slug", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT, .min = 1, .max = 100,
     .check = RC_SLUG},
    {.name = "description", .type = RF_TEXT, .max = 2000, .def = "\"\""},
    {0}};
const struct resource blog_categories = {
    .name = "blog_categories", .singular = "blog category", .path = "/api/v1/blog/categories",
    .table = "blog_categories", .tag = "blog", .fields = category_fields,
    .read = RP_PUBLIC, .create = RP_STAFF, .update = RP_STAFF, .del = RP_STAFF};

static int post_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id);

static const char *const post_status[] = {"draft", "published", NULL};
static const struct rfield post_fields[] = {
    {.name = "title", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT | RF_SEARCH, .min = 1, .max = 200},
    {.name = "body", .type = RF_TEXT, .flags = RF_SEARCH, .max = 100000, .def = "\"\""},
    {.name = "category_id", .type = RF_REF, .ref = &blog_categories, .flags = RF_NULLABLE | RF_FILTER},
    {.name = "status", .type = RF_ENUM, .values = post_status, .flags = RF_FILTER | RF_SORT, .def = "\"draft\""},
    {.name = "author_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER | RF_NULLABLE,
     .description = "the staff member who wrote it"},
    {.name = "published_at", .type = RF_TIME, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER | RF_SORT,
     .description = "set when the post is first published"},
    {0}};
const struct resource blog_posts = {
    .name = "blog_posts", .singular = "post", .path = "/api/v1/blog/posts", .table = "blog_posts",
    .tag = "blog", .fields = post_fields, .owner = "author_id",
    .read = RP_PUBLIC, .public_where = "status = 'published'",
    .create = RP_STAFF, .update = RP_STAFF, .del = RP_STAFF,
    .soft_delete = true, .title_field = "title", .after_write = post_after_write};

static int comment_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id);

static const char *const comment_status[] = {"pending", "approved", "rejected", NULL};
static const struct rfield comment_fields[] = {
    {.name = "post_id", .type = RF_REF, .ref = &blog_posts, .flags = RF_REQUIRED | RF_FILTER | RF_CREATE_ONLY},
    {.name = "body", .type = RF_TEXT, .flags = RF_REQUIRED, .min = 1, .max = 5000},
    {.name = "status", .type = RF_ENUM, .values = comment_status, .flags = RF_FILTER | RF_SORT,
     .def = "\"pending\"", .write_roles = ROLE_STAFF,
     .description = "moderation: pending until staff approve or reject (staff only)"},
    {.name = "user_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER, .description = "the author"},
    {0}};
const struct resource blog_comments = {
    .name = "blog_comments", .singular = "comment", .path = "/api/v1/blog/comments", .table = "blog_comments",
    .tag = "blog", .fields = comment_fields, .owner = "user_id",
    .read = RP_PUBLIC, .public_where = "status = 'approved'",
    .create = RP_AUTH, .update = RP_OWNER_OR_STAFF, .del = RP_OWNER_OR_STAFF,
    .after_write = comment_after_write};

/* ---- behaviour ---- */

/* published_at: set the first time a post is published, cleared by a return to draft. */
static int post_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id)
{
    (void)r;
    (void)res;
    if (act == RA_DELETE)
        return DB_OK;
    return db_exec(db,
                   "UPDATE blog_posts SET published_at = CASE WHEN status = 'published' "
                   "THEN coalesce(published_at, ms_ts(?)) ELSE NULL END WHERE id = ?",
                   DB_ARGS(DBA_INT(time_now_ms()), DBA_TEXT(id)), NULL);
}

/* An edit by its author (not staff) sends a comment back to moderation. */
static int comment_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id)
{
    (void)res;
    if (act != RA_UPDATE || identity_is_staff(r) || !json_object_get(r->body, "body"))
        return DB_OK;
    return db_exec(db, "UPDATE blog_comments SET status = 'pending' WHERE id = ?", DB_ARGS(DBA_TEXT(id)), NULL);
}

static int h_post_comments(struct req *r)
{
    str_t id = req_param(r, "id");
    if (resource_require(r, &blog_posts, id))
        return HTTP_EFAIL;
    return resource_list(r, &blog_comments, "t.post_id = ?", DB_ARGS(DBA_TEXT(id)));
}

static int h_post_comment_create(struct req *r)
{
    str_t id = req_param(r, "id");
    if (resource_require(r, &blog_posts, id))
        return HTTP_EFAIL;
    json_object_set_new(r->body, "post_id", json_stringn(id.p, id.len));
    return resource_create(r, &blog_comments);
}

/* ---- personal data ---- */

static int export_data(struct db *db, str_t user_id, struct jw *w)
{
    int rc;
    jw_obj_begin(w);
    jw_key(w, "comments");
    if ((rc = resource_export_rows(db, user_id, &blog_comments, w)) != DB_OK)
        return rc;
    jw_obj_end(w);
    return DB_OK;
}

/* Comments are the user's own words: deleted. Posts are the site's: kept, without their author. */
static int delete_data(struct db *db, str_t user_id)
{
    int rc = db_exec(db, "DELETE FROM blog_comments WHERE user_id = ?", DB_ARGS(DBA_TEXT(user_id)), NULL);
    if (rc == DB_OK)
        rc = db_exec(db, "UPDATE blog_posts SET author_id = NULL WHERE author_id = ?", DB_ARGS(DBA_TEXT(user_id)),
                     NULL);
    return rc;
}

static const struct user_data_hooks blog_user_data = {
    .name = "blog", .export_data = export_data, .delete_data = delete_data};

/* ---- routes ---- */

static const struct json_field comment_f[] = {
    {.name = "body", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 5000}, {0}};
static const struct json_schema comment_s = {comment_f, false};

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/blog/posts/{id}/comments", .handler = h_post_comments,
     .auth = AUTH_OPTIONAL, .rl = RL_READ, .flags = ROUTE_PAGINATED,
     .summary = "Comments of a post: approved ones, plus the caller's own (staff: all)", .tag = "blog", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/Comment"})},
    {.method = "POST", .pattern = "/api/v1/blog/posts/{id}/comments", .handler = h_post_comment_create,
     .auth = AUTH_USER, .rl = RL_WRITE, .input = &comment_s,
     .summary = "Comment on a post (pending until staff approve it)", .tag = "blog", .errors = "403", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/Comment"})},
};

static void register_routes(void)
{
    resource_register(&blog_categories);
    resource_register(&blog_posts);
    resource_register(&blog_comments);
    router_add(routes, ARRAY_LEN(routes));
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    (void)cfg;
    (void)db;
    (void)err;
    identity_register_user_data(&blog_user_data);
    return 0;
}

const struct module blog_module = {
    .name = "blog",
    .register_routes = register_routes,
    .init = init,
};
