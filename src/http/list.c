/*
 * list.c — the list envelope of API.md §1 for hand-written list routes:
 * check the query's keys against the route's filters, run the count and the
 * page, write {"data": [...], "meta": {...}}. (Descriptor resources use the
 * resource engine instead.)
 */
#include "db/db.h"
#include "http/http.h"

#include "core/banned.h"

void http_write_row(struct jw *w, const struct db_res *res, const struct http_col *cols)
{
    jw_obj_begin(w);
    http_write_cols(w, res, cols);
    jw_obj_end(w);
}

void http_write_cols(struct jw *w, const struct db_res *res, const struct http_col *cols)
{
    for (int c = 0; cols[c].key; c++) {
        jw_key(w, cols[c].key);
        if (db_isnull(res, c)) {
            jw_null(w);
            continue;
        }
        switch (cols[c].kind) {
        case COL_TEXT: jw_str(w, db_text(res, c)); break;
        case COL_INT: jw_int(w, db_int(res, c)); break;
        case COL_BOOL: jw_bool(w, db_int(res, c) != 0); break;
        case COL_TIME: jw_time(w, db_int(res, c)); break;
        case COL_JSON: jw_raw(w, db_text(res, c)); break;
        }
    }
}

int http_query_allow(struct req *r, const char *const *allowed)
{
    for (int i = 0; i < r->q.n; i++) {
        str_t k = r->q.p[i].key;
        bool ok = str_is(k, "page") || str_is(k, "limit");
        for (const char *const *a = allowed; !ok && *a; a++)
            ok = str_eq(k, str_c(*a));
        if (ok)
            continue;
        struct buf *msg = req_buf(r, 1024);
        (void)buf_puts(msg, "is not a filter here (allowed:");
        for (const char *const *a = allowed; *a; a++)
            (void)buf_printf(msg, " %s,", *a);
        (void)buf_puts(msg, " page, limit)");
        return http_invalid(r, k.p, buf_cstr(msg));
    }
    return 0;
}

/* Every row of res as a JSON array (res is freed). 0 or a db_rc. */
static int write_rows(struct req *r, struct db_res *res, const struct http_list_query *q, http_row_fn row_db)
{
    int rc;
    jw_arr_begin(&r->w);
    while ((rc = db_next(res)) == 1) {
        if (!row_db)
            q->row(&r->w, res);
        else if ((rc = row_db(r, res)) != DB_OK)
            break;
    }
    jw_arr_end(&r->w);
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

static int list(struct req *r, const struct http_list_query *q, http_row_fn row_db, db_arg *args, size_t nargs,
                size_t cap)
{
    struct buf *sql = req_buf(r, BUF_MAX_SQL);
    struct db_res *res;
    int64_t total = 0;
    bool found;
    int rc;
    ASSERT(nargs + 2 <= cap);
    (void)buf_printf(sql, "SELECT count(*) %s%s", q->from, q->where ? q->where : "");
    rc = buf_ok(sql) ? db_query_int(r->db, buf_cstr(sql), args, nargs, &total, &found) : DB_ERR;
    if (rc != DB_OK)
        goto fail;
    buf_reset(sql);
    (void)buf_printf(sql, "SELECT %s %s%s ORDER BY %s LIMIT ? OFFSET ?", q->cols, q->from, q->where ? q->where : "",
                     q->order);
    args[nargs++] = DBA_INT(r->limit);
    args[nargs++] = DBA_INT((r->page - 1) * r->limit);
    rc = buf_ok(sql) ? db_query(r->db, buf_cstr(sql), args, nargs, &res) : DB_ERR;
    if (rc != DB_OK)
        goto fail;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "data");
    if ((rc = write_rows(r, res, q, row_db)) < 0)
        goto fail;
    http_write_page_meta(r, total);
    jw_obj_end(&r->w);
    return 0;
fail:
    return http_db_fail(r, rc);
}

int http_list(struct req *r, const struct http_list_query *q, db_arg *args, size_t nargs, size_t cap)
{
    return list(r, q, NULL, args, nargs, cap);
}

int http_list_each(struct req *r, const struct http_list_query *q, http_row_fn row, db_arg *args, size_t nargs,
                   size_t cap)
{
    return list(r, q, row, args, nargs, cap);
}

int http_rows_all(struct req *r, const struct http_list_query *q, http_row_fn row, const db_arg *args, size_t nargs)
{
    struct buf sql = BUF_INIT(BUF_MAX_SQL);
    struct db_res *res;
    (void)buf_printf(&sql, "SELECT %s %s%s ORDER BY %s", q->cols, q->from, q->where ? q->where : "", q->order);
    int rc = buf_ok(&sql) ? db_query(r->db, buf_cstr(&sql), args, nargs, &res) : DB_ERR;
    buf_free(&sql);
    return rc != DB_OK ? rc : write_rows(r, res, q, row);
}
