/*
 * list.c — reading: GET <path> (filters, sort, search, pages) and
 * GET <path>/{id} with its ETag.
 */
#include "core/timeutil.h"
#include "resource/internal.h"

#include "core/banned.h"

static bool reserved_param(str_t k)
{
    return str_is(k, "page") || str_is(k, "limit") || str_is(k, "sort") || str_is(k, "q") || str_is(k, "filter") ||
           str_is(k, "skip_total");
}

/* The count subquery of a list whose conditions are exactly those the
 * resource's kept count counts (struct rt.kept_vis/kept_eq: compiled once by
 * the same code); NULL: count the rows. */
static const char *kept_total(const struct rt *t, const struct rq *q)
{
    if (!t->kept_all)
        return NULL;
    int k = q->kind == DB_POSTGRES;
    if (q->nargs == 0 && str_eq(buf_str(&q->sql), str_c(t->kept_vis[k])))
        return t->kept_all;
    if (q->nargs == 1 && str_eq(buf_str(&q->sql), str_c(t->kept_eq[k])))
        return t->kept_one;
    return NULL;
}

int resource_list(struct req *r, const struct resource *res, const char *extra_where, const db_arg *xargs,
                  size_t nxargs)
{
    const struct rt *t = resource__rt_of(res);
    struct rq q;
    struct search_sql s = {BUF_INIT(512), BUF_INIT(512), BUF_INIT(2048), {{0}}, 0};
    struct buf order = BUF_INIT(1024), sql = BUF_INIT(BUF_MAX_SQL);
    const str_t *sort = NULL, *text = NULL;
    bool skip_total = false;
    int rc = HTTP_OK, drc;
    struct caller who = resource_caller(r);
    ASSERT(t);
    resource__rq_begin(&q, &who, r->db, res, r->pool);
    if (extra_where) {
        (void)buf_printf(&q.sql, " AND (%s)", extra_where);
        for (size_t i = 0; i < nxargs; i++)
            if (rq_arg(&q, STRLIT("filter"), xargs[i])) {
                rc = resource__rq_http_fail(r, &q);
                goto out;
            }
    }
    if (resource__visibility(&who, res, &q)) {
        rc = resource__rq_http_fail(r, &q);
        goto out;
    }
    for (int i = 0; i < r->q.n; i++) {
        str_t k = r->q.p[i].key, v = r->q.p[i].value;
        if (str_is(k, "sort"))
            sort = &r->q.p[i].value;
        else if (str_is(k, "q"))
            text = v.len ? &r->q.p[i].value : NULL;
        else if (str_is(k, "skip_total")) {
            if (str_is(v, "true") || str_is(v, "1"))
                skip_total = true;
            else if (!(str_is(v, "false") || str_is(v, "0"))) {
                rc = http_invalid(r, "skip_total", "must be true or false");
                goto out;
            }
        } else if (str_is(k, "filter")) {
            if (rq_filter_expr(&q, v)) {
                rc = resource__rq_http_fail(r, &q);
                goto out;
            }
        } else if (!reserved_param(k) && rq_filter_bracket(&q, k, v)) {
            rc = resource__rq_http_fail(r, &q);
            goto out;
        }
    }
    if (text) {
        if (!t->searchable) {
            rc = http_invalid(r, "q", "this resource has no full-text search");
            goto out;
        }
        if (resource__add_search(r->db, t, *text, &q, &s)) {
            rc = resource__rq_http_fail(r, &q);
            goto out;
        }
    }
    if (sort || !text) {
        if (rq_sort(&q, sort ? *sort : STR_NULL, &order)) {
            rc = resource__rq_http_fail(r, &q);
            goto out;
        }
    } else {
        (void)buf_printf(&order, " ORDER BY %s, t.id DESC", buf_cstr(&s.rank));
    }
    /* One round trip (runtime issue): the page and, in the same statement, the
     * total as an uncorrelated scalar subquery (both engines evaluate it once,
     * with the same plan as a separate count). Only an empty page past the
     * first needs the count on its own. */
    int64_t total = 0;
    struct buf count_sql = BUF_INIT(BUF_MAX_SQL);
    const char *kept = skip_total || text ? NULL : kept_total(t, &q);
    if (kept)
        (void)buf_puts(&count_sql, kept);
    else if (!skip_total)
        (void)buf_printf(&count_sql, ", (SELECT count(*) FROM %s t%s WHERE 1=1%s)", res->table, buf_cstr(&s.from),
                         buf_cstr(&q.sql));
    /* args in text order: the count's WHERE args, the page's WHERE args, its ORDER BY args,
     * then LIMIT/OFFSET (room for all: q.nargs <= RQ_MAX_ARGS) */
    db_arg args[2 * RQ_MAX_ARGS + ARRAY_LEN(s.oargs) + 2];
    int na = 0, full = 0;
    for (int i = 0; i < q.nargs && !skip_total; i++)
        full |= ARGS_ADD(args, na, q.args[i]);
    for (int i = 0; i < q.nargs; i++)
        full |= ARGS_ADD(args, na, q.args[i]);
    for (int i = 0; i < s.noargs && !(sort); i++)
        full |= ARGS_ADD(args, na, s.oargs[i]);
    int64_t fetch = skip_total ? r->limit + 1 : r->limit;
    full |= ARGS_ADD(args, na, DBA_INT(fetch));
    full |= ARGS_ADD(args, na, DBA_INT((r->page - 1) * r->limit));
    if (full || !buf_ok(&count_sql) || !buf_ok(&q.sql)) {
        buf_free(&count_sql);
        rc = http_fail(r, 422, "VALIDATION_ERROR", "the query is too complex");
        goto out;
    }
    if (r->page > 1 && !text)
        /* deferred join: the pages before this one are skipped over ids alone (an index
         * scan), and only the rows returned are read and projected — both engines would
         * otherwise read and project every skipped row (PostgreSQL ~3 µs each) */
        (void)buf_printf(&sql,
                         "SELECT %s%s FROM %s t JOIN (SELECT t.id FROM %s t WHERE 1=1%s%s LIMIT ? OFFSET ?) k "
                         "ON k.id = t.id%s",
                         t->cols, buf_cstr(&count_sql), res->table, res->table, buf_cstr(&q.sql), buf_cstr(&order),
                         buf_cstr(&order));
    else
        (void)buf_printf(&sql, "SELECT %s%s FROM %s t%s WHERE 1=1%s%s LIMIT ? OFFSET ?", t->cols,
                         buf_cstr(&count_sql), res->table, buf_cstr(&s.from), buf_cstr(&q.sql), buf_cstr(&order));
    if (!buf_ok(&sql)) {
        buf_free(&count_sql);
        rc = http_fail(r, 422, "VALIDATION_ERROR", "the query is too complex");
        goto out;
    }
    struct db_res *dr;
    if ((drc = db_query(r->db, buf_cstr(&sql), args, (size_t)na, &dr)) != DB_OK) {
        buf_free(&count_sql);
        rc = http_db_fail(r, drc);
        goto out;
    }
    int64_t n = 0;
    bool more = false;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "data");
    jw_arr_begin(&r->w);
    while ((drc = db_next(dr)) == 1) {
        if (n == r->limit) {
            more = true;
            continue;
        }
        if (n == 0 && !skip_total)
            total = db_int(dr, db_ncols(dr) - 1);
        resource__write_row(&r->w, t, dr, who.lang);
        n++;
    }
    db_res_free(dr);
    if (drc < 0) {
        buf_free(&count_sql);
        rc = http_db_fail(r, drc);
        goto out;
    }
    if (n == 0 && !skip_total && r->page > 1) { /* past the last page: the total on its own */
        bool found;
        buf_reset(&sql);
        (void)buf_printf(&sql, "SELECT%s", buf_cstr(&count_sql) + 1);
        drc = buf_ok(&sql) ? db_query_int(r->db, buf_cstr(&sql), q.args, (size_t)q.nargs, &total, &found) : DB_ERR;
        if (drc != DB_OK) {
            buf_free(&count_sql);
            rc = http_db_fail(r, drc);
            goto out;
        }
    }
    buf_free(&count_sql);
    jw_arr_end(&r->w);
    if (!skip_total) {
        http_write_page_meta(r, total);
    } else { /* no count: whether a next page exists instead of total/pages */
        jw_key(&r->w, "meta");
        jw_obj_begin(&r->w);
        jw_key(&r->w, "page");
        jw_int(&r->w, r->page);
        jw_key(&r->w, "limit");
        jw_int(&r->w, r->limit);
        jw_key(&r->w, "has_more");
        jw_bool(&r->w, more);
        jw_obj_end(&r->w);
    }
    jw_obj_end(&r->w);
out:
    buf_free(&s.from);
    buf_free(&s.rank);
    buf_free(&s.ftsq);
    buf_free(&order);
    buf_free(&sql);
    rq_release(&q);
    return rc;
}

int resource__h_list(struct req *r)
{
    const struct rt *t = r->route->ctx;
    struct resource_cache_entry e = {0};
    int hit = resource__cache_wanted(r, t->res) ? resource__cache_lookup(r, t->res, &e) : -1;
    if (hit == 1)
        return 0;
    int rc = resource_list(r, t->res, NULL, NULL, 0);
    if (rc == 0 && hit == 0)
        resource__cache_store(r, &e, STR_NULL);
    return rc;
}

/* ---- get ---- */

int resource__h_get(struct req *r)
{
    const struct rt *t = r->route->ctx;
    struct caller who = resource_caller(r);
    struct resource_cache_entry e = {0};
    struct db_res *row;
    int hit = resource__cache_wanted(r, t->res) ? resource__cache_lookup(r, t->res, &e) : -1;
    if (hit == 1)
        return 0;
    int rc = resource__select_one(&who, r->db, t, req_param(r, "id"), &row);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (!row)
        return http_fail(r, 404, "NOT_FOUND", "no such %s", t->res->singular);
    enum lang lang = who.lang;
    struct buf et = BUF_INIT(64);
    resource__etag_of(t, db_int(row, 1), lang, &et);
    str_t inm = req_header_get(r, "if-none-match");
    if (inm.p && http_etag_matches(inm, buf_str(&et))) {
        r->status = 304;
    } else {
        resource__write_row(&r->w, t, row, lang);
    }
    req_header(r, "etag", buf_str(&et));
    if (hit == 0 && r->status != 304)
        resource__cache_store(r, &e, buf_str(&et));
    buf_free(&et);
    db_res_free(row);
    return 0;
}
