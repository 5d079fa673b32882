/*
 * personal.c — the shop's personal data (API.md §3): GET /me/export,
 * DELETE /me and POST /auth/migrate-guest-data. Every hook runs inside the
 * identity module's transaction.
 *
 * Guest migration moves the guest's cart and favorites into the account:
 * a product in both carts ends as one line with the quantities added,
 * capped at 99; a product in both favorite lists stays one favorite.
 */
#include "core/timeutil.h"
#include "core/uuid.h"
#include "modules/catalog/catalog.h"

#include "core/banned.h"

#define GUEST_ROWS_MAX (16u << 20)

static int export_reactions(struct db *db, str_t user_id, struct jw *w)
{
    struct db_res *dr;
    int rc = db_query(db,
                      "SELECT review_id, type, ts_ms(created_at) FROM catalog_review_reactions WHERE user_id = ? "
                      "ORDER BY review_id",
                      DB_ARGS(DBA_TEXT(user_id)), &dr);
    if (rc != DB_OK)
        return rc;
    static const struct http_col cols[] = {{"review_id", COL_TEXT}, {"type", COL_TEXT}, {"created_at", COL_TIME},
                                           {NULL, COL_TEXT}};
    jw_arr_begin(w);
    while ((rc = db_next(dr)) == 1)
        http_write_row(w, dr, cols);
    db_res_free(dr);
    jw_arr_end(w);
    return rc < 0 ? rc : DB_OK;
}

int catalog__export(struct db *db, str_t user_id, struct jw *w)
{
    static const struct {
        const char *key;
        const struct resource *res;
    } parts[] = {{"cart", &catalog_cart_items},
                 {"favorites", &catalog_favorites},
                 {"addresses", &catalog_addresses},
                 {"reviews", &catalog_reviews}};
    int rc;
    jw_obj_begin(w);
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
        jw_key(w, parts[i].key);
        if ((rc = resource_export_rows(db, user_id, parts[i].res, w)) != DB_OK)
            return rc;
    }
    jw_key(w, "review_reactions");
    if ((rc = export_reactions(db, user_id, w)) != DB_OK)
        return rc;
    jw_obj_end(w);
    return DB_OK;
}

int catalog__delete(struct db *db, str_t user_id)
{
    static const char *const sqls[] = {
        /* the user's reactions leave the counters of other people's reviews first */
        "UPDATE catalog_reviews SET likes = likes - 1 WHERE id IN "
        "(SELECT review_id FROM catalog_review_reactions WHERE user_id = ? AND type = 'like')",
        "UPDATE catalog_reviews SET dislikes = dislikes - 1 WHERE id IN "
        "(SELECT review_id FROM catalog_review_reactions WHERE user_id = ? AND type = 'dislike')",
        "DELETE FROM catalog_review_reactions WHERE user_id = ?",
        "DELETE FROM catalog_reviews WHERE user_id = ?",
        "DELETE FROM catalog_cart_items WHERE user_id = ?",
        "DELETE FROM catalog_favorites WHERE user_id = ?",
        "DELETE FROM catalog_addresses WHERE user_id = ?",
    };
    for (size_t i = 0; i < ARRAY_LEN(sqls); i++) {
        int rc = db_exec(db, sqls[i], DB_ARGS(DBA_TEXT(user_id)), NULL);
        if (rc != DB_OK)
            return rc;
    }
    return DB_OK;
}

/* The guest's (product_id, quantity) pairs as "id\tqty\n" lines. */
static int guest_rows(struct db *db, const char *sql, str_t guest_id, struct buf *out)
{
    struct db_res *dr;
    int rc = db_query(db, sql, DB_ARGS(DBA_TEXT(guest_id)), &dr);
    if (rc != DB_OK)
        return rc;
    while ((rc = db_next(dr)) == 1) {
        (void)buf_put(out, db_text(dr, 0));
        (void)buf_printf(out, "\t%lld\n", (long long)db_int(dr, 1));
    }
    db_res_free(dr);
    if (rc < 0)
        return rc;
    return buf_ok(out) ? DB_OK : DB_ERR;
}

int catalog__migrate_guest(struct db *db, str_t guest_id, str_t user_id)
{
    struct buf rows = BUF_INIT(GUEST_ROWS_MAX);
    int64_t now = time_now_ms();
    int rc = guest_rows(db, "SELECT product_id, quantity FROM catalog_cart_items WHERE user_id = ? ORDER BY created_at, id",
                        guest_id, &rows);
    const char *upsert_line =
        db_pick(db,
                "INSERT INTO catalog_cart_items (id, version, user_id, product_id, quantity, created_at, updated_at) "
                "VALUES (?, 1, ?, ?, ?, ms_ts(?), ms_ts(?)) ON CONFLICT (user_id, product_id) DO UPDATE SET "
                "quantity = min(catalog_cart_items.quantity + excluded.quantity, 99), "
                "version = catalog_cart_items.version + 1, updated_at = excluded.updated_at",
                "INSERT INTO catalog_cart_items (id, version, user_id, product_id, quantity, created_at, updated_at) "
                "VALUES (?, 1, ?, ?, ?, ms_ts(?), ms_ts(?)) ON CONFLICT (user_id, product_id) DO UPDATE SET "
                "quantity = LEAST(catalog_cart_items.quantity + excluded.quantity, 99), "
                "version = catalog_cart_items.version + 1, updated_at = excluded.updated_at");
    const char *p = buf_cstr(&rows), *end = p + rows.len;
    while (rc == DB_OK && p < end) {
        const char *tab = memchr(p, '\t', (size_t)(end - p)), *nl = memchr(tab, '\n', (size_t)(end - tab));
        int64_t qty = 0;
        char id[UUID_STR_LEN + 1];
        if (parse_i64(str_make(tab + 1, (size_t)(nl - tab - 1)), 1, CART_MAX_QUANTITY, &qty))
            qty = 1; /* the CHECK constraint keeps stored lines in range */
        uuid7_str(id);
        rc = db_exec(db, upsert_line,
                     DB_ARGS(DBA_CSTR(id), DBA_TEXT(user_id), DBA_TEXT(str_make(p, (size_t)(tab - p))), DBA_INT(qty),
                             DBA_INT(now), DBA_INT(now)),
                     NULL);
        p = nl + 1;
    }
    if (rc == DB_OK)
        rc = db_exec(db, "DELETE FROM catalog_cart_items WHERE user_id = ?", DB_ARGS(DBA_TEXT(guest_id)), NULL);
    buf_reset(&rows);
    if (rc == DB_OK)
        rc = guest_rows(db, "SELECT product_id, 1 FROM catalog_favorites WHERE user_id = ? ORDER BY created_at, id",
                        guest_id, &rows);
    p = buf_cstr(&rows);
    end = p + rows.len;
    while (rc == DB_OK && p < end) {
        const char *tab = memchr(p, '\t', (size_t)(end - p)), *nl = memchr(tab, '\n', (size_t)(end - tab));
        char id[UUID_STR_LEN + 1];
        uuid7_str(id);
        rc = db_exec(db,
                     "INSERT INTO catalog_favorites (id, version, user_id, product_id, created_at, updated_at) "
                     "VALUES (?, 1, ?, ?, ms_ts(?), ms_ts(?)) ON CONFLICT (user_id, product_id) DO NOTHING",
                     DB_ARGS(DBA_CSTR(id), DBA_TEXT(user_id), DBA_TEXT(str_make(p, (size_t)(tab - p))), DBA_INT(now),
                             DBA_INT(now)),
                     NULL);
        p = nl + 1;
    }
    if (rc == DB_OK)
        rc = db_exec(db, "DELETE FROM catalog_favorites WHERE user_id = ?", DB_ARGS(DBA_TEXT(guest_id)), NULL);
    buf_free(&rows);
    return rc;
}
