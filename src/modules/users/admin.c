/*
 * admin.c — admin user management (API.md §3 "Admin"): list with filters,
 * read, change role/status/name, delete. Every change is audited inside the
 * transaction that makes it, with before/after JSON.
 */
#include "core/timeutil.h"
#include "modules/audit/audit.h"
#include "modules/users/users_internal.h"

#include "core/banned.h"

/* The audited view of a user: id, role, status, name. The audit log is
 * immutable, so it must not keep personal data (email, phone, profile) that
 * DELETE /me has to be able to erase. */
static json_t *audit_view(const json_t *u)
{
    if (!u)
        return NULL;
    return json_pack("{s:O?,s:O?,s:O?,s:O?}", "id", json_object_get(u, "id"), "role", json_object_get(u, "role"),
                     "status", json_object_get(u, "status"), "name", json_object_get(u, "name"));
}

static json_t *user_json(struct db *db, str_t id, int *rc)
{
    struct buf b = BUF_INIT(16u << 10);
    struct jw w;
    bool found;
    json_t *v = NULL;
    jw_init(&w, &b);
    *rc = users__write_user_by_id(db, id, &w, &found);
    if (*rc == DB_OK && found && buf_ok(&b) && json_parse_strict(buf_str(&b), &v, NULL) != JSON_IN_OK)
        v = NULL;
    buf_free(&b);
    return v;
}

static int h_list(struct req *r)
{
    const str_t *role = req_query(r, "role"), *status = req_query(r, "status"), *q = req_query(r, "q");
    static const char *const allowed[] = {"role", "status", "q", NULL};
    struct buf *where = req_buf(r, 512), *like = req_buf(r, 512);
    db_arg args[8];
    size_t n = 0;
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    /* validate everything before allocating anything */
    if (role && !str_is(*role, "admin") && !str_is(*role, "moderator") && !str_is(*role, "user") &&
        !str_is(*role, "guest"))
        return http_invalid(r, "role", "must be admin, moderator, user or guest");
    if (status && !str_is(*status, "active") && !str_is(*status, "banned"))
        return http_invalid(r, "status", "must be active or banned");
    (void)buf_puts(where, " WHERE 1 = 1");
    if (role) {
        (void)buf_puts(where, " AND role = ?");
        args[n++] = DBA_TEXT(*role);
    }
    if (status) {
        (void)buf_puts(where, " AND status = ?");
        args[n++] = DBA_TEXT(*status);
    }
    if (q && q->len) {
        /* case-insensitive contains over email and name; % and _ in the input are literal */
        (void)buf_putc(like, '%');
        for (size_t i = 0; i < q->len && i < 100; i++) {
            char c = q->p[i];
            if (c == '%' || c == '_' || c == '\\')
                (void)buf_putc(like, '\\');
            (void)buf_putc(like, (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c);
        }
        (void)buf_putc(like, '%');
        (void)buf_puts(where, " AND (lower(coalesce(email, '')) LIKE ? ESCAPE '\\' OR lower(name) LIKE ? ESCAPE '\\')");
        args[n++] = DBA_TEXT(buf_str(like));
        args[n++] = DBA_TEXT(buf_str(like));
    }
    const struct http_list_query lq = {USER_COLS, "FROM users", buf_cstr(where), "created_at DESC, id DESC",
                                      users__write_user};
    return http_list(r, &lq, args, n, ARRAY_LEN(args));
}

static int h_get(struct req *r)
{
    bool found;
    int rc = users__write_user_by_id(r->db, req_param(r, "id"), &r->w, &found);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (!found)
        return http_fail(r, 404, "NOT_FOUND", "no such user");
    return 0;
}

struct admin_ctx {
    str_t id;
    bool del;
};

static int tx_admin_change(struct req *r, void *arg)
{
    struct admin_ctx *c = arg;
    struct db *db = r->db;
    int rc;
    json_t *before = user_json(db, c->id, &rc), *after = NULL;
    if (rc != DB_OK)
        return rc;
    if (!before)
        return http_fail(r, 404, "NOT_FOUND", "no such user");
    const json_t *role = c->del ? NULL : json_object_get(r->body, "role"),
                 *status = c->del ? NULL : json_object_get(r->body, "status"),
                 *name = c->del ? NULL : json_object_get(r->body, "name");
    /* an admin cannot lock themselves out */
    if (str_eq(c->id, r->user_id) && (c->del || (role && strcmp(json_string_value(role), "admin")) ||
                                      (status && strcmp(json_string_value(status), "active")))) {
        json_decref(before);
        return http_fail(r, 409, "CONFLICT", "admins cannot demote, ban or delete themselves");
    }
    int64_t now = time_now_ms();
    if (c->del) {
        rc = db_exec(db, "DELETE FROM users WHERE id = ?", DB_ARGS(DBA_TEXT(c->id)), NULL);
    } else {
        rc = DB_OK;
        if (role)
            rc = db_exec(db, "UPDATE users SET role = ? WHERE id = ?", DB_ARGS(DBA_CSTR(json_string_value(role)), DBA_TEXT(c->id)),
                         NULL);
        if (rc == DB_OK && status)
            rc = db_exec(db, "UPDATE users SET status = ? WHERE id = ?",
                         DB_ARGS(DBA_CSTR(json_string_value(status)), DBA_TEXT(c->id)), NULL);
        if (rc == DB_OK && name)
            rc = db_exec(db, "UPDATE users SET name = ? WHERE id = ?",
                         DB_ARGS(DBA_TEXT(str_make(json_string_value(name), json_string_length(name))), DBA_TEXT(c->id)),
                         NULL);
        if (rc == DB_OK)
            rc = db_exec(db, "UPDATE users SET updated_at = ms_ts(?) WHERE id = ?", DB_ARGS(DBA_INT(now), DBA_TEXT(c->id)),
                         NULL);
        /* a ban ends every session at once */
        if (rc == DB_OK && status && !strcmp(json_string_value(status), "banned"))
            rc = users__revoke_all_sessions(db, c->id);
        if (rc == DB_OK)
            after = user_json(db, c->id, &rc);
    }
    if (rc == DB_OK) {
        const char *action = c->del ? "user.delete"
                             : role ? "user.role_change"
                             : status ? (!strcmp(json_string_value(status), "banned") ? "user.ban" : "user.status_change")
                                      : "user.update";
        json_t *ab = audit_view(before), *aa = audit_view(after);
        struct audit_entry e = {.action = action,
                                .category = "users",
                                .target_type = "user",
                                .target_id = c->id,
                                .before = ab,
                                .after = aa,
                                .success = true};
        rc = audit_record_req(r, &e);
        json_decref(ab);
        json_decref(aa);
    }
    if (rc == DB_OK && after) {
        jw_json(&r->w, after);
    }
    json_decref(before);
    json_decref(after);
    return rc;
}

static int admin_change(struct req *r, bool del)
{
    struct admin_ctx c = {req_param(r, "id"), del};
    return req_tx(r, DB_TX_WRITE, tx_admin_change, &c);
}

static int h_patch(struct req *r) { return admin_change(r, false); }
static int h_delete(struct req *r) { return admin_change(r, true); }

static const char *const roles[] = {"admin", "moderator", "user", "guest", NULL};
static const char *const statuses[] = {"active", "banned", NULL};
static const struct json_field patch_f[] = {
    {.name = "role", .type = JF_STRING, .enum_values = roles},
    {.name = "status", .type = JF_STRING, .enum_values = statuses},
    {.name = "name", .type = JF_STRING, .min = 1, .max = 100},
    {0}};
static const struct json_schema patch_s = {patch_f, false};

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/users", .handler = h_list, .auth = AUTH_ADMIN, .rl = RL_READ, .flags = ROUTE_PAGINATED, .summary = "List users (filters: role, status, q)", .tag = "admin", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/User"})},
    {.method = "GET", .pattern = "/api/v1/users/{id}", .handler = h_get, .auth = AUTH_ADMIN, .rl = RL_READ, .summary = "One user", .tag = "admin", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/User"})},
    {.method = "PATCH", .pattern = "/api/v1/users/{id}", .handler = h_patch, .auth = AUTH_ADMIN, .rl = RL_WRITE, .input = &patch_s, .summary = "Change role, status (active|banned) or name; audited", .tag = "admin", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/User"})},
    {.method = "DELETE", .pattern = "/api/v1/users/{id}", .handler = h_delete, .auth = AUTH_ADMIN, .rl = RL_WRITE, .summary = "Delete a user; audited", .tag = "admin", .status = 204},
};

void users__register_admin_routes(void) { router_add(routes, ARRAY_LEN(routes)); }
