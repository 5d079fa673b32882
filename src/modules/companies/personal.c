/*
 * personal.c — what the companies module keeps about a person, for
 * GET /me/export and DELETE /me (identity's user-data hooks).
 *
 * Export ("companies"): the caller's memberships (company, role, joined),
 * the invitations addressed to their email and the ones they sent, and the
 * company orders they placed (with their lines).
 *
 * Deletion: refused (409) while the caller owns a company that has other
 * members — nobody would own it; they hand ownership over or delete the
 * company first. A company the caller owns alone is deleted with the
 * account (its orders stay: they are financial records). Memberships go;
 * invitations to the caller's email go; where the caller is named as the
 * one who invited, accepted, added a cart line or an address, the name is
 * cleared and the company's row stays.
 */
#include "http/http.h"
#include "modules/companies/companies_internal.h"

#include "core/banned.h"

/* Write every row of sql (one user_id argument, or two) as objects. */
static int rows(struct db *db, struct jw *w, const char *sql, str_t user_id, int nargs, const struct http_col *cols)
{
    struct db_res *res;
    int rc = nargs == 2 ? db_query(db, sql, DB_ARGS(DBA_TEXT(user_id), DBA_TEXT(user_id)), &res)
                        : db_query(db, sql, DB_ARGS(DBA_TEXT(user_id)), &res);
    if (rc != DB_OK)
        return rc;
    jw_arr_begin(w);
    while ((rc = db_next(res)) == 1)
        http_write_row(w, res, cols);
    jw_arr_end(w);
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

/* The company orders the user placed, each with its lines. */
static int orders(struct db *db, struct jw *w, str_t user_id)
{
    static const struct http_col order_cols[] = {
        {"id", COL_TEXT},       {"company_id", COL_TEXT}, {"kind", COL_TEXT},       {"status", COL_TEXT},
        {"total", COL_INT},     {"currency", COL_TEXT},   {"address", COL_JSON},    {"created_at", COL_TIME},
        {"paid_at", COL_TIME},  {NULL, COL_TEXT}};
    struct db_res *res;
    int rc = db_query(db,
                      "SELECT o.id, o.company_id, o.kind, o.status, o.total, o.currency, o.address, "
                      "ts_ms(o.created_at), ts_ms(o.paid_at), l.product_id, l.name, l.unit_price, l.quantity, "
                      "l.line_total FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id "
                      "WHERE o.user_id = ? AND o.company_id IS NOT NULL ORDER BY o.created_at, o.id, l.position",
                      DB_ARGS(DBA_TEXT(user_id)), &res);
    if (rc != DB_OK)
        return rc;
    char last[64] = "";
    jw_arr_begin(w);
    while ((rc = db_next(res)) == 1) {
        str_t id = db_text(res, 0);
        if (!str_eq(id, str_c(last))) {
            if (last[0]) {
                jw_arr_end(w);
                jw_obj_end(w);
            }
            (void)str_copy(last, id.p, sizeof(last));
            jw_obj_begin(w);
            http_write_cols(w, res, order_cols);
            jw_key(w, "items");
            jw_arr_begin(w);
        }
        if (!db_isnull(res, 9)) {
            jw_obj_begin(w);
            jw_key(w, "product_id");
            jw_str(w, db_text(res, 9));
            jw_key(w, "name");
            jw_str(w, db_text(res, 10));
            jw_key(w, "unit_price");
            jw_int(w, db_int(res, 11));
            jw_key(w, "quantity");
            jw_int(w, db_int(res, 12));
            jw_key(w, "line_total");
            jw_int(w, db_int(res, 13));
            jw_obj_end(w);
        }
    }
    if (last[0]) {
        jw_arr_end(w);
        jw_obj_end(w);
    }
    jw_arr_end(w);
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

static int export_data(struct db *db, str_t user_id, struct jw *w)
{
    static const struct http_col member_cols[] = {{"company_id", COL_TEXT}, {"name", COL_TEXT},
                                                  {"tax_id", COL_TEXT},     {"role", COL_TEXT},
                                                  {"joined_at", COL_TIME},  {NULL, COL_TEXT}};
    static const struct http_col received_cols[] = {{"id", COL_TEXT},         {"company_id", COL_TEXT},
                                                    {"company_name", COL_TEXT}, {"email", COL_TEXT},
                                                    {"role", COL_TEXT},       {"status", COL_TEXT},
                                                    {"expires_at", COL_TIME}, {"created_at", COL_TIME},
                                                    {NULL, COL_TEXT}};
    static const struct http_col sent_cols[] = {{"id", COL_TEXT},         {"company_id", COL_TEXT},
                                                {"email", COL_TEXT},      {"role", COL_TEXT},
                                                {"status", COL_TEXT},     {"created_at", COL_TIME},
                                                {NULL, COL_TEXT}};
    int rc;
    jw_obj_begin(w);
    jw_key(w, "memberships");
    if ((rc = rows(db, w,
                   "SELECT c.id, c.name, c.tax_id, m.role, ts_ms(m.created_at) FROM company_members m "
                   "JOIN companies c ON c.id = m.company_id WHERE m.user_id = ? ORDER BY m.created_at, c.id",
                   user_id, 1, member_cols)) != DB_OK)
        return rc;
    jw_key(w, "invitations_received");
    if ((rc = rows(db, w,
                   "SELECT i.id, i.company_id, c.name, i.email, i.role, i.status, ts_ms(i.expires_at), "
                   "ts_ms(i.created_at) FROM company_invitations i JOIN companies c ON c.id = i.company_id "
                   "JOIN users u ON u.id = ? WHERE lower(i.email) = lower(u.email) OR i.accepted_by = ? "
                   "ORDER BY i.created_at, i.id",
                   user_id, 2, received_cols)) != DB_OK)
        return rc;
    jw_key(w, "invitations_sent");
    if ((rc = rows(db, w,
                   "SELECT id, company_id, email, role, status, ts_ms(created_at) FROM company_invitations "
                   "WHERE invited_by = ? ORDER BY created_at, id",
                   user_id, 1, sent_cols)) != DB_OK)
        return rc;
    jw_key(w, "orders");
    if ((rc = orders(db, w, user_id)) != DB_OK)
        return rc;
    jw_obj_end(w);
    return DB_OK;
}

static int refuse_delete(struct db *db, str_t user_id, struct buf *why)
{
    struct db_res *res;
    int rc = db_query(db,
                      "SELECT c.id, c.name, (SELECT count(*) FROM company_members o WHERE o.company_id = c.id "
                      "AND o.user_id <> ?) FROM company_members m JOIN companies c ON c.id = m.company_id "
                      "WHERE m.user_id = ? AND m.role = 'owner' ORDER BY c.created_at, c.id",
                      DB_ARGS(DBA_TEXT(user_id), DBA_TEXT(user_id)), &res);
    if (rc != DB_OK)
        return rc;
    int refused = 0;
    while (!refused && (rc = db_next(res)) == 1) {
        if (db_int(res, 2) > 0) {
            str_t id = db_text(res, 0), name = db_text(res, 1);
            (void)buf_printf(why,
                             "you own the company \"%.*s\" (%.*s), which has %lld other member(s): hand ownership "
                             "over (PATCH /api/v1/companies/%.*s/members/{user_id} {\"role\": \"owner\"}) or delete "
                             "the company first",
                             STR_FMT(name), STR_FMT(id), (long long)db_int(res, 2), STR_FMT(id));
            refused = 1;
        }
    }
    db_res_free(res);
    return rc < 0 ? rc : refused;
}

static int delete_data(struct db *db, str_t user_id)
{
    static const char *const sqls[] = {
        /* a company the user owns alone goes with the account (refuse_delete
         * refused the ones with other members); its orders stay */
        "DELETE FROM companies WHERE id IN (SELECT company_id FROM company_members WHERE user_id = ? AND role = 'owner')",
        "DELETE FROM company_members WHERE user_id = ?",
        "DELETE FROM company_invitations WHERE lower(email) = (SELECT lower(email) FROM users WHERE id = ?)",
        "UPDATE company_invitations SET invited_by = NULL WHERE invited_by = ?",
        "UPDATE company_invitations SET accepted_by = NULL WHERE accepted_by = ?",
        "UPDATE company_addresses SET created_by = NULL WHERE created_by = ?",
        "UPDATE company_cart_items SET added_by = NULL WHERE added_by = ?",
        "UPDATE companies SET created_by = NULL WHERE created_by = ?",
    };
    for (size_t i = 0; i < ARRAY_LEN(sqls); i++) {
        int rc = db_exec(db, sqls[i], DB_ARGS(DBA_TEXT(user_id)), NULL);
        if (rc != DB_OK)
            return rc;
    }
    return DB_OK;
}

static const struct user_data_hooks hooks = {
    .name = "companies", .export_data = export_data, .delete_data = delete_data, .refuse_delete = refuse_delete};

void companies__register_user_data(void) { identity_register_user_data(&hooks); }
