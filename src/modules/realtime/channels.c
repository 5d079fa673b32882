/*
 * channels.c — channel names and who may read them (realtime.h lists them).
 *
 *   user:<id>     the user themself (staff too: no — "own only")
 *   tickets:<id>  the ticket's owner, or staff
 *   staff         staff (admin, moderator)
 *   events:<id>   staff, or any signed-in user once the event is public
 *                 (published or cancelled, not deleted)
 *   jobs:<id>     the owner of the AI job
 *   broadcast     everyone
 * A channel the caller may not read answers the same whether or not the
 * thing exists (no existence leak).
 */
#include "modules/realtime/realtime_internal.h"
#include "modules/users/identity.h"

#include "core/banned.h"

struct kind {
    const char *prefix; /* with the colon; NULL-terminated list */
    bool has_id;
    /* SELECT the owner's user id of <id>, or NULL when no owner lookup */
    const char *owner_sql;
    /* or: a row for <id> means anyone may read it (staff always may) */
    const char *public_sql;
    enum access_rule rule;
    bool staff_only, anyone;
};

static const struct kind kinds[] = {
    {"user:", true, NULL, NULL, ACCESS_OWNER, false, false},
    {"tickets:", true, "SELECT user_id FROM tickets WHERE id = ?", NULL, ACCESS_OWNER_OR_STAFF, false, false},
    {"staff", false, NULL, NULL, ACCESS_OWNER, true, false},
    {"events:", true, NULL,
     "SELECT 1 FROM events WHERE id = ? AND status <> 'draft' AND deleted_at IS NULL", ACCESS_OWNER_OR_STAFF,
     false, false},
    {"jobs:", true, "SELECT user_id FROM ai_requests WHERE id = ?", NULL, ACCESS_OWNER, false, false},
    {"broadcast", false, NULL, NULL, ACCESS_OWNER, false, true},
};

static const struct kind *kind_of(str_t name, str_t *id)
{
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
        str_t p = str_c(kinds[i].prefix);
        if (!kinds[i].has_id && str_eq(name, p)) {
            *id = STR_NULL;
            return &kinds[i];
        }
        if (kinds[i].has_id && str_has_prefix(name, p)) {
            *id = str_make(name.p + p.len, name.len - p.len);
            return &kinds[i];
        }
    }
    return NULL;
}

static bool id_ok(str_t id)
{
    if (id.len == 0 || id.len > 64)
        return false;
    for (size_t i = 0; i < id.len; i++) {
        char c = id.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

int rt_channel_syntax(str_t name, struct buf *why)
{
    str_t id;
    const struct kind *k = kind_of(name, &id);
    if (!k) {
        (void)buf_puts(why, "unknown channel: expected user:<id>, tickets:<id>, staff, events:<id>, jobs:<id> or "
                            "broadcast");
        return -1;
    }
    if (k->has_id && !id_ok(id)) {
        (void)buf_printf(why, "the id after %s must be 1..64 characters of A-Z, a-z, 0-9, - and _", k->prefix);
        return -1;
    }
    return 0;
}

int rt_channel_allowed(struct req *r, str_t name)
{
    str_t id;
    const struct kind *k = kind_of(name, &id);
    if (!k)
        return http_fail(r, 403, "FORBIDDEN", "unknown channel");
    if (k->anyone)
        return 0;
    if (k->staff_only)
        return identity_is_staff(r) ? 0 : http_fail(r, 403, "FORBIDDEN", "the staff channel is for staff only");
    if (!k->owner_sql && !k->public_sql) /* user:<id> */
        return str_eq(id, r->user_id) ? 0 : http_fail(r, 403, "FORBIDDEN", "you may read only your own user channel");
    if (k->rule == ACCESS_OWNER_OR_STAFF && identity_is_staff(r))
        return 0;
    struct db_res *res;
    int rc = db_query(r->db, k->owner_sql ? k->owner_sql : k->public_sql, DB_ARGS(DBA_TEXT(id)), &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    rc = db_next(res);
    bool allowed = rc == 1 && (!k->owner_sql || identity_can_access(r, db_text(res, 0), k->rule));
    db_res_free(res);
    if (rc < 0)
        return http_db_fail(r, rc);
    return allowed ? 0 : http_fail(r, 403, "FORBIDDEN", "you may not read %.*s", STR_FMT(name));
}
