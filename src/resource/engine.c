/*
 * engine.c — the generic handlers of the resource engine (resource.h):
 * registration, visibility, list/get/create/update/delete, validation of
 * descriptor rules the JSON schema cannot express, ETags, change hooks,
 * GET /api/v1/search and the OpenAPI fragments.
 *
 * Design: resource_register() derives everything that does not change per
 * request once — the SELECT column list, the create and update JSON
 * schemas (validated by the HTTP layer before a handler runs), the route
 * table — into a heap `struct rt` that the routes carry as ctx. A handler
 * then builds one SQL text from descriptor identifiers only, and binds
 * every value.
 *
 * Concurrency: updates and deletes are conditional on the row's version
 * (UPDATE ... WHERE id = ? AND version = ?), so If-Match is exact even
 * across instances and a lost race is a 412, never a silent overwrite.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "http/problem.h"
#include "resource/resource.h"

#include "core/banned.h"

#define MAX_RESOURCES 64
#define MAX_FIELDS 48
#define MAX_HOOKS 16
#define NBASE 5 /* id, version, created_at, updated_at, owner */
#define STRLIST_ITEM_MAX 200
#define SEARCH_MAX_HITS 200

struct rt {
    const struct resource *res;
    char *cols;          /* "t.id, t.version, ts_ms(t.created_at), ..." */
    char *item_pattern;  /* "<path>/{id}" */
    struct json_field create_f[MAX_FIELDS + 1], update_f[MAX_FIELDS + 1];
    struct json_schema create_s, update_s;
    json_t *defaults[MAX_FIELDS];
    int nfields;
    bool searchable, has_i18n;
    struct route routes[5];
};

static struct rt *g_rts[MAX_RESOURCES];
static size_t g_nrts;

struct hook {
    enum res_hook_when when;
    resource_change_fn fn;
    void *ud;
};
static struct hook g_hooks[MAX_HOOKS];
static size_t g_nhooks;

void resource_on_change(enum res_hook_when when, resource_change_fn fn, void *ud)
{
    if (g_nhooks == MAX_HOOKS)
        FATAL("too many resource change hooks");
    g_hooks[g_nhooks++] = (struct hook){when, fn, ud};
}

static struct rt *rt_of(const struct resource *res)
{
    for (size_t i = 0; i < g_nrts; i++)
        if (g_rts[i]->res == res)
            return g_rts[i];
    return NULL;
}

static void *pool_alloc(void *ud, size_t n) { return h2o_mem_alloc_pool((h2o_mem_pool_t *)ud, n); }

static char *pool_strdup(struct req *r, str_t s)
{
    char *p = h2o_mem_alloc_pool(r->pool, s.len + 1);
    if (s.len)
        memcpy(p, s.p, s.len);
    p[s.len] = '\0';
    return p;
}

/* ---- roles and visibility ---- */

struct caller resource_caller(struct req *r)
{
    return (struct caller){r->user_id, r->role, lang_from_header(req_header_get(r, "accept-language"))};
}

unsigned resource_role_bits(const struct caller *who)
{
    if (!who->user_id.len)
        return 0;
    if (str_is(who->role, "admin"))
        return ROLE_ADMIN;
    if (str_is(who->role, "moderator"))
        return ROLE_MODERATOR;
    if (str_is(who->role, "guest"))
        return ROLE_GUEST;
    return ROLE_USER;
}

/* Append the conditions that limit rows to what the caller may see. */
static int visibility(const struct caller *who, const struct resource *res, struct rq *q)
{
    unsigned roles = resource_role_bits(who);
    bool staff = (roles & ROLE_STAFF) != 0, signed_in = roles != 0;
    if (res->soft_delete)
        (void)buf_puts(&q->sql, " AND t.deleted_at IS NULL");
    switch (res->read) {
    case RP_PUBLIC:
    case RP_AUTH:
        if (staff || !res->public_where)
            return 0;
        /* (t.owner = ? OR 1=1 AND (expr)): own rows, or rows the expression admits */
        (void)buf_puts(&q->sql, " AND (");
        if (res->owner && signed_in) {
            (void)buf_printf(&q->sql, "t.%s = ? OR ", res->owner);
            if (rq_arg(q, STRLIT("filter"), DBA_TEXT(who->user_id)))
                return -1;
        }
        (void)buf_puts(&q->sql, "1=1");
        q->all_fields = true;
        int rc = rq_filter_expr(q, str_c(res->public_where));
        q->all_fields = false;
        if (rc)
            return -1;
        (void)buf_putc(&q->sql, ')');
        return 0;
    case RP_OWNER_OR_STAFF:
        if (staff)
            return 0;
        /* fall through */
    case RP_OWNER:
        if (!signed_in) {
            (void)buf_puts(&q->sql, " AND 1=0");
            return 0;
        }
        (void)buf_printf(&q->sql, " AND t.%s = ?", res->owner);
        return rq_arg(q, STRLIT("filter"), DBA_TEXT(who->user_id));
    case RP_STAFF:
        if (!staff)
            (void)buf_puts(&q->sql, " AND 1=0");
        return 0;
    case RP_ADMIN:
        if (!(roles & ROLE_ADMIN))
            (void)buf_puts(&q->sql, " AND 1=0");
        return 0;
    case RP_DENY: (void)buf_puts(&q->sql, " AND 1=0"); return 0;
    }
    return 0;
}

/* May the caller change (update/delete) a row it can see, owned by owner? */
static bool may_write(const struct caller *who, enum rpolicy p, str_t owner)
{
    unsigned roles = resource_role_bits(who);
    switch (p) {
    case RP_OWNER: return roles && owner.len && str_eq(owner, who->user_id);
    case RP_OWNER_OR_STAFF: return (roles & ROLE_STAFF) || (roles && owner.len && str_eq(owner, who->user_id));
    case RP_STAFF: return (roles & ROLE_STAFF) != 0;
    case RP_ADMIN: return (roles & ROLE_ADMIN) != 0;
    case RP_PUBLIC: return true;
    case RP_AUTH: return roles != 0;
    case RP_DENY: return false;
    }
    return false;
}

/* pool NULL: the rq's literals live until rq_release() (rq_init) */
static void rq_begin(struct rq *q, const struct caller *who, struct db *db, const struct resource *res,
                     h2o_mem_pool_t *pool)
{
    rq_init(q, res, db_kind(db), who->user_id, time_now_ms(), pool ? pool_alloc : NULL, pool);
}

/* Turn an rq error into the request's error. */
static int rq_http_fail(struct req *r, struct rq *q)
{
    if (q->err_status == 422)
        http_field_error(r, q->err_field ? pool_strdup(r, str_c(q->err_field)) : "filter",
                         pool_strdup(r, buf_str(&q->err_msg)));
    return http_fail(r, q->err_status ? q->err_status : 500, NULL, "%s", buf_cstr(&q->err_msg));
}

/* ---- output ---- */

static enum lang req_lang(struct req *r) { return lang_from_header(req_header_get(r, "accept-language")); }

static void write_i18n(struct jw *w, str_t stored, enum lang lang)
{
    static const char *const names[] = {"en", "tr", "pl"};
    json_t *o = json_loadb(stored.p, stored.len, 0, NULL);
    json_t *v = o ? json_object_get(o, names[lang]) : NULL;
    if (o && !json_is_string(v))
        v = json_object_get(o, "en");
    if (o && !json_is_string(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(o, k, x) if (json_is_string(x))
        {
            v = x;
            break;
        }
    }
    if (json_is_string(v))
        jw_str(w, str_make(json_string_value(v), json_string_length(v)));
    else
        jw_null(w);
    json_decref(o);
}

void resource_write_i18n(struct req *r, struct jw *w, str_t stored) { write_i18n(w, stored, req_lang(r)); }

/* Write the row at res's current position, selected with rt->cols. */
static void write_row(struct jw *w, const struct rt *t, struct db_res *res, enum lang lang)
{
    jw_obj_begin(w);
    jw_key(w, "id");
    jw_str(w, db_text(res, 0));
    for (int i = 0; i < t->nfields; i++) {
        const struct rfield *f = &t->res->fields[i];
        int c = NBASE + i;
        if (f->flags & RF_PRIVATE)
            continue;
        jw_key(w, f->name);
        if (db_isnull(res, c)) {
            jw_null(w);
            continue;
        }
        switch (f->type) {
        case RF_INT:
        case RF_MONEY: jw_int(w, db_int(res, c)); break;
        case RF_BOOL: jw_bool(w, db_int(res, c) != 0); break;
        case RF_TIME: jw_time(w, db_int(res, c)); break;
        case RF_JSON:
        case RF_STRLIST: jw_raw(w, db_text(res, c)); break; /* validated JSON, written by us */
        case RF_I18N: write_i18n(w, db_text(res, c), lang); break;
        default: jw_str(w, db_text(res, c)); break;
        }
    }
    jw_key(w, "created_at");
    jw_time(w, db_int(res, 2));
    jw_key(w, "updated_at");
    jw_time(w, db_int(res, 3));
    jw_obj_end(w);
}

static void etag_of(const struct rt *t, int64_t version, enum lang lang, struct buf *out)
{
    static const char *const names[] = {"en", "tr", "pl"};
    (void)buf_printf(out, "\"v%lld%s%s\"", (long long)version, t->has_i18n ? "-" : "", t->has_i18n ? names[lang] : "");
}

/* Does an If-Match / If-None-Match header value match etag? ("*", lists, W/ ignored) */
static bool etag_matches(str_t header, str_t etag)
{
    const char *p = header.p, *end = header.p + header.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        str_t tag = str_make(s, (size_t)(p - s));
        while (tag.len && tag.p[tag.len - 1] == ' ')
            tag.len--;
        if (str_is(tag, "*"))
            return true;
        if (tag.len > 2 && tag.p[0] == 'W' && tag.p[1] == '/')
            tag = str_make(tag.p + 2, tag.len - 2);
        if (str_eq(tag, etag))
            return true;
    }
    return false;
}

/* Select one visible row into *out (caller frees); DB_OK with *out NULL when none. */
static int select_one(const struct caller *who, struct db *db, const struct rt *t, str_t id, struct db_res **out)
{
    struct rq q;
    int rc;
    *out = NULL;
    if (!uuid_valid(id))
        return DB_OK; /* not an id we could have issued: simply not found */
    rq_begin(&q, who, db, t->res, NULL);
    if (rq_arg(&q, STRLIT("id"), DBA_TEXT(id)) || visibility(who, t->res, &q)) {
        rq_release(&q);
        return DB_ERR;
    }
    struct buf sql = BUF_INIT(BUF_MAX_SQL);
    (void)buf_printf(&sql, "SELECT %s FROM %s t WHERE t.id = ?%s", t->cols, t->res->table, buf_cstr(&q.sql));
    rc = buf_ok(&sql) ? db_query(db, buf_cstr(&sql), q.args, (size_t)q.nargs, out) : DB_ERR;
    buf_free(&sql);
    rq_release(&q);
    if (rc != DB_OK)
        return rc;
    rc = db_next(*out);
    if (rc != 1) {
        db_res_free(*out);
        *out = NULL;
        return rc < 0 ? rc : DB_OK;
    }
    return DB_OK;
}

int resource_write(const struct caller *who, struct db *db, const struct resource *res, str_t id, struct jw *w,
                   bool *found)
{
    const struct rt *t = rt_of(res);
    struct db_res *row;
    ASSERT(t);
    int rc = select_one(who, db, t, id, &row);
    *found = row != NULL;
    if (rc == DB_OK && row) {
        write_row(w, t, row, who->lang);
        db_res_free(row);
    }
    return rc;
}

int resource_visible(const struct caller *who, struct db *db, const struct resource *res, str_t id, bool *visible)
{
    const struct rt *t = rt_of(res);
    struct db_res *row;
    ASSERT(t);
    int rc = select_one(who, db, t, id, &row);
    *visible = row != NULL;
    if (row)
        db_res_free(row);
    return rc;
}

int resource_require(struct req *r, const struct resource *res, str_t id)
{
    struct caller who = resource_caller(r);
    bool vis = false;
    int rc = resource_visible(&who, r->db, res, id, &vis);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    return vis ? 0 : http_fail(r, 404, "NOT_FOUND", "no such %s", res->singular);
}

#define EXPORT_IDS_MAX (16u << 20)

int resource_export_rows(struct db *db, str_t user_id, const struct resource *res, struct jw *w)
{
    const struct caller owner = {user_id, STRLIT("user"), LANG_EN};
    struct buf sql = BUF_INIT(1024), ids = BUF_INIT(EXPORT_IDS_MAX);
    struct db_res *dr;
    ASSERT(res->owner);
    (void)buf_printf(&sql, "SELECT id FROM %s WHERE %s = ? ORDER BY id", res->table, res->owner);
    int rc = db_query(db, buf_cstr(&sql), DB_ARGS(DBA_TEXT(user_id)), &dr);
    buf_free(&sql);
    if (rc != DB_OK)
        return rc;
    /* ids first (one statement at a time), then each row through the row writer */
    while ((rc = db_next(dr)) == 1) {
        (void)buf_put(&ids, db_text(dr, 0));
        (void)buf_putc(&ids, '\n');
    }
    db_res_free(dr);
    if (rc < 0 || !buf_ok(&ids)) {
        buf_free(&ids);
        return rc < 0 ? rc : DB_ERR;
    }
    jw_arr_begin(w);
    const char *p = buf_cstr(&ids), *end = p + ids.len;
    while (rc >= 0 && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        bool found;
        rc = resource_write(&owner, db, res, str_make(p, (size_t)(nl - p)), w, &found);
        p = nl + 1;
    }
    jw_arr_end(w);
    buf_free(&ids);
    return rc < 0 ? rc : DB_OK;
}

/* The row as a jansson value (for change hooks); NULL when not visible. */
static json_t *row_json(const struct caller *who, struct db *db, const struct rt *t, str_t id)
{
    struct buf b = BUF_INIT(BUF_MAX_JSON_RESPONSE);
    struct jw w;
    bool found = false;
    json_t *v = NULL;
    jw_init(&w, &b);
    if (resource_write(who, db, t->res, id, &w, &found) == DB_OK && found && buf_ok(&b))
        v = json_loadb(b.ptr, b.len, 0, NULL);
    buf_free(&b);
    return v;
}

static bool have_hooks(void) { return g_nhooks > 0; }

static int run_hooks(enum res_hook_when when, struct req *r, struct db *db, const struct rt *t, enum raction act,
                     str_t id, const json_t *before, const json_t *after)
{
    for (size_t i = 0; i < g_nhooks; i++) {
        if (g_hooks[i].when != when)
            continue;
        int rc = g_hooks[i].fn(r, db, t->res, act, id, before, after, g_hooks[i].ud);
        if (rc && when == RES_HOOK_TX)
            return rc;
    }
    return 0;
}

/* ---- list ---- */

static bool searchable_fts(const struct rt *t) { return t->searchable; }

/* Words of q for FTS5: runs of letters/digits (any non-ASCII byte counts as a
 * letter), each quoted, ANDed. Returns the number of words. */
static int fts5_query(str_t q, struct buf *out)
{
    int n = 0;
    size_t i = 0;
    while (i < q.len && n < 16) {
        while (i < q.len && !((unsigned char)q.p[i] >= 0x80 || (q.p[i] >= '0' && q.p[i] <= '9') ||
                              (q.p[i] >= 'a' && q.p[i] <= 'z') || (q.p[i] >= 'A' && q.p[i] <= 'Z')))
            i++;
        size_t s = i;
        while (i < q.len && ((unsigned char)q.p[i] >= 0x80 || (q.p[i] >= '0' && q.p[i] <= '9') ||
                             (q.p[i] >= 'a' && q.p[i] <= 'z') || (q.p[i] >= 'A' && q.p[i] <= 'Z')))
            i++;
        if (i > s) {
            (void)buf_printf(out, "%s\"%.*s\"", n ? " " : "", (int)(i - s), q.p + s);
            n++;
        }
    }
    return n;
}

/* FROM + WHERE + ORDER for a search over t: adds the join (SQLite), the
 * match condition (args into q) and the rank expression (args into oargs). */
struct search_sql {
    struct buf from, rank;
    struct buf ftsq;
    db_arg oargs[2];
    int noargs;
};

static int add_search(struct db *db, const struct rt *t, str_t text, struct rq *q, struct search_sql *s)
{
    const char *tab = t->res->table;
    if (db_kind(db) == DB_SQLITE) {
        if (fts5_query(text, &s->ftsq) == 0) {
            (void)buf_puts(&q->sql, " AND 1=0");
            (void)buf_puts(&s->rank, "t.id");
            return 0;
        }
        (void)buf_printf(&s->from, " JOIN %s_fts ON %s_fts.rowid = t.rowid", tab, tab);
        (void)buf_printf(&q->sql, " AND %s_fts MATCH ?", tab);
        (void)buf_printf(&s->rank, "bm25(%s_fts)", tab); /* lower is better */
        return rq_arg(q, STRLIT("q"), DBA_TEXT(buf_str(&s->ftsq)));
    }
    (void)buf_puts(&q->sql, " AND t.search_tsv @@ plainto_tsquery('simple', ?)");
    (void)buf_puts(&s->rank, "-ts_rank(t.search_tsv, plainto_tsquery('simple', ?))");
    if (rq_arg(q, STRLIT("q"), DBA_TEXT(text)))
        return -1;
    return ARGS_ADD(s->oargs, s->noargs, DBA_TEXT(text)); /* cannot fill: one per search */
}

static bool reserved_param(str_t k)
{
    return str_is(k, "page") || str_is(k, "limit") || str_is(k, "sort") || str_is(k, "q") || str_is(k, "filter") ||
           str_is(k, "skip_total");
}

int resource_list(struct req *r, const struct resource *res, const char *extra_where, const db_arg *xargs,
                  size_t nxargs)
{
    const struct rt *t = rt_of(res);
    struct rq q;
    struct search_sql s = {BUF_INIT(512), BUF_INIT(512), BUF_INIT(2048), {{0}}, 0};
    struct buf order = BUF_INIT(1024), sql = BUF_INIT(BUF_MAX_SQL);
    const str_t *sort = NULL, *text = NULL;
    bool skip_total = false;
    int rc = HTTP_OK, drc;
    struct caller who = resource_caller(r);
    ASSERT(t);
    rq_begin(&q, &who, r->db, res, r->pool);
    if (extra_where) {
        (void)buf_printf(&q.sql, " AND (%s)", extra_where);
        for (size_t i = 0; i < nxargs; i++)
            if (rq_arg(&q, STRLIT("filter"), xargs[i])) {
                rc = rq_http_fail(r, &q);
                goto out;
            }
    }
    if (visibility(&who, res, &q)) {
        rc = rq_http_fail(r, &q);
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
                rc = rq_http_fail(r, &q);
                goto out;
            }
        } else if (!reserved_param(k) && rq_filter_bracket(&q, k, v)) {
            rc = rq_http_fail(r, &q);
            goto out;
        }
    }
    if (text) {
        if (!searchable_fts(t)) {
            rc = http_invalid(r, "q", "this resource has no full-text search");
            goto out;
        }
        if (add_search(r->db, t, *text, &q, &s)) {
            rc = rq_http_fail(r, &q);
            goto out;
        }
    }
    if (sort || !text) {
        if (rq_sort(&q, sort ? *sort : STR_NULL, &order)) {
            rc = rq_http_fail(r, &q);
            goto out;
        }
    } else {
        (void)buf_printf(&order, " ORDER BY %s, t.id DESC", buf_cstr(&s.rank));
    }
    int64_t total = 0;
    if (!skip_total) {
        bool found;
        (void)buf_printf(&sql, "SELECT count(*) FROM %s t%s WHERE 1=1%s", res->table, buf_cstr(&s.from),
                         buf_cstr(&q.sql));
        if (!buf_ok(&sql) || !buf_ok(&q.sql)) {
            rc = http_fail(r, 422, "VALIDATION_ERROR", "the query is too complex");
            goto out;
        }
        if ((drc = db_query_int(r->db, buf_cstr(&sql), q.args, (size_t)q.nargs, &total, &found)) != DB_OK) {
            rc = http_db_fail(r, drc);
            goto out;
        }
        buf_reset(&sql);
    }
    /* data: WHERE args, then ORDER BY args, then LIMIT/OFFSET (room for all: q.nargs <= RQ_MAX_ARGS) */
    db_arg args[RQ_MAX_ARGS + ARRAY_LEN(s.oargs) + 2];
    int na = 0, full = 0;
    for (int i = 0; i < q.nargs; i++)
        full |= ARGS_ADD(args, na, q.args[i]);
    for (int i = 0; i < s.noargs && !(sort); i++)
        full |= ARGS_ADD(args, na, s.oargs[i]);
    int64_t fetch = skip_total ? r->limit + 1 : r->limit;
    full |= ARGS_ADD(args, na, DBA_INT(fetch));
    full |= ARGS_ADD(args, na, DBA_INT((r->page - 1) * r->limit));
    if (full) {
        rc = http_fail(r, 422, "VALIDATION_ERROR", "the query is too complex");
        goto out;
    }
    if (r->page > 1 && !text)
        /* deferred join: the pages before this one are skipped over ids alone (an index
         * scan), and only the rows returned are read and projected — both engines would
         * otherwise read and project every skipped row (PostgreSQL ~3 µs each) */
        (void)buf_printf(&sql, "SELECT %s FROM %s t JOIN (SELECT t.id FROM %s t WHERE 1=1%s%s LIMIT ? OFFSET ?) k "
                               "ON k.id = t.id%s",
                         t->cols, res->table, res->table, buf_cstr(&q.sql), buf_cstr(&order), buf_cstr(&order));
    else
        (void)buf_printf(&sql, "SELECT %s FROM %s t%s WHERE 1=1%s%s LIMIT ? OFFSET ?", t->cols, res->table,
                         buf_cstr(&s.from), buf_cstr(&q.sql), buf_cstr(&order));
    if (!buf_ok(&sql)) {
        rc = http_fail(r, 422, "VALIDATION_ERROR", "the query is too complex");
        goto out;
    }
    struct db_res *dr;
    if ((drc = db_query(r->db, buf_cstr(&sql), args, (size_t)na, &dr)) != DB_OK) {
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
        write_row(&r->w, t, dr, who.lang);
        n++;
    }
    db_res_free(dr);
    if (drc < 0) {
        rc = http_db_fail(r, drc);
        goto out;
    }
    jw_arr_end(&r->w);
    jw_key(&r->w, "meta");
    jw_obj_begin(&r->w);
    if (!skip_total) {
        jw_key(&r->w, "total");
        jw_int(&r->w, total);
    }
    jw_key(&r->w, "page");
    jw_int(&r->w, r->page);
    jw_key(&r->w, "limit");
    jw_int(&r->w, r->limit);
    if (!skip_total) {
        jw_key(&r->w, "pages");
        jw_int(&r->w, (total + r->limit - 1) / r->limit);
    } else {
        jw_key(&r->w, "has_more");
        jw_bool(&r->w, more);
    }
    jw_obj_end(&r->w);
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

static int h_list(struct req *r)
{
    const struct rt *t = r->route->ctx;
    return resource_list(r, t->res, NULL, NULL, 0);
}

/* ---- get ---- */

static int h_get(struct req *r)
{
    const struct rt *t = r->route->ctx;
    struct caller who = resource_caller(r);
    struct db_res *row;
    int rc = select_one(&who, r->db, t, req_param(r, "id"), &row);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (!row)
        return http_fail(r, 404, "NOT_FOUND", "no such %s", t->res->singular);
    enum lang lang = who.lang;
    struct buf et = BUF_INIT(64);
    etag_of(t, db_int(row, 1), lang, &et);
    str_t inm = req_header_get(r, "if-none-match");
    if (inm.p && etag_matches(inm, buf_str(&et))) {
        r->status = 304;
    } else {
        write_row(&r->w, t, row, lang);
    }
    req_header(r, "etag", buf_str(&et));
    buf_free(&et);
    db_res_free(row);
    return 0;
}

/* ---- input checks the JSON schema cannot express ---- */

static bool check_email(str_t s)
{
    const char *at = memchr(s.p, '@', s.len);
    if (!at || at == s.p || at == s.p + s.len - 1 || s.len > 254)
        return false;
    str_t dom = str_make(at + 1, s.len - (size_t)(at - s.p) - 1);
    if (memchr(dom.p, '@', dom.len) || !memchr(dom.p, '.', dom.len) || dom.p[0] == '.' || dom.p[dom.len - 1] == '.')
        return false;
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.p[i] <= ' ')
            return false;
    return true;
}

static bool check_url(str_t s)
{
    str_t rest;
    if (str_has_prefix(s, STRLIT("https://")))
        rest = str_make(s.p + 8, s.len - 8);
    else if (str_has_prefix(s, STRLIT("http://")))
        rest = str_make(s.p + 7, s.len - 7);
    else
        return false;
    if (rest.len == 0 || rest.p[0] == '/')
        return false;
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.p[i] <= ' ' || s.p[i] == '"' || s.p[i] == '<' || s.p[i] == '>' || s.p[i] == '\\')
            return false;
    return true;
}

static bool check_slug(str_t s)
{
    if (!s.len || s.p[0] == '-' || s.p[s.len - 1] == '-')
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!((s.p[i] >= 'a' && s.p[i] <= 'z') || (s.p[i] >= '0' && s.p[i] <= '9') || s.p[i] == '-'))
            return false;
    return true;
}

static bool check_currency(str_t s)
{
    return s.len == 3 && s.p[0] >= 'A' && s.p[0] <= 'Z' && s.p[1] >= 'A' && s.p[1] <= 'Z' && s.p[2] >= 'A' &&
           s.p[2] <= 'Z';
}

static const char *check_value(const struct caller *who, struct db *db, const struct rfield *f, const json_t *v)
{
    if (json_is_null(v))
        return NULL;
    str_t s = json_is_string(v) ? str_make(json_string_value(v), json_string_length(v)) : STR_NULL;
    switch (f->check) {
    case RC_EMAIL:
        if (!check_email(s))
            return "must be a valid email address";
        break;
    case RC_URL:
        if (!check_url(s))
            return "must be an http or https URL";
        break;
    case RC_SLUG:
        if (!check_slug(s))
            return "must be a slug (a-z, 0-9 and -)";
        break;
    case RC_CURRENCY:
        if (!check_currency(s))
            return "must be an ISO 4217 currency code like TRY";
        break;
    case RC_UUID:
        if (!uuid_valid(s))
            return "must be a UUID";
        break;
    case RC_NONE: break;
    }
    switch (f->type) {
    case RF_TIME: {
        int64_t ms;
        if (time_parse_rfc3339(s, &ms))
            return "must be an RFC 3339 time";
        break;
    }
    case RF_MONEY:
        if (f->min == 0 && json_integer_value(v) < 0)
            return "must not be negative";
        break;
    case RF_STRLIST: {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            size_t n = utf8_len(json_string_value(x), json_string_length(x));
            if (n == 0 || n > STRLIST_ITEM_MAX)
                return "items must be 1 to 200 characters long";
        }
        break;
    }
    case RF_I18N: {
        const char *k;
        json_t *x;
        if (json_object_size(v) == 0)
            return "needs at least one of tr, en, pl";
        json_object_foreach((json_t *)v, k, x)
        {
            if (strcmp(k, "tr") && strcmp(k, "en") && strcmp(k, "pl"))
                return "keys must be tr, en or pl";
            if (!json_is_string(x))
                return "values must be strings";
            size_t n = utf8_len(json_string_value(x), json_string_length(x));
            if ((f->min || f->max) && ((int64_t)n < f->min || (int64_t)n > f->max))
                return "a translation has the wrong length";
        }
        break;
    }
    case RF_REF: {
        bool vis = false;
        const struct rt *rt = f->ref ? rt_of(f->ref) : NULL;
        if (!rt || resource_visible(who, db, f->ref, s, &vis) != DB_OK || !vis)
            return "does not refer to an existing item";
        break;
    }
    default: break;
    }
    return NULL;
}

/* Roles, validators and references over a validated body. 0 or HTTP_EFAIL. */
static int check_body_rules(struct req *r, const struct rt *t, const json_t *body)
{
    struct caller who = resource_caller(r);
    unsigned roles = resource_role_bits(&who);
    for (int i = 0; i < t->nfields; i++) {
        const struct rfield *f = &t->res->fields[i];
        const json_t *v = json_object_get(body, f->name);
        const char *msg;
        if (!v)
            continue;
        if (f->write_roles && !(f->write_roles & roles))
            http_field_error(r, f->name, "may not be set by you");
        else if ((msg = check_value(&who, r->db, f, v)))
            http_field_error(r, f->name, msg);
    }
    if (r->err.nerrs)
        return http_fail(r, 422, "VALIDATION_ERROR", "%s %s", r->err.errs[0].field, r->err.errs[0].message);
    return 0;
}

/* A JSON value to its db_arg (strings point into v; JSON text goes into tmp). */
static db_arg to_arg(const struct rfield *f, const json_t *v, struct buf *tmp, const char **ph)
{
    *ph = "?";
    if (json_is_null(v))
        return DBA_NULL;
    switch (f->type) {
    case RF_INT:
    case RF_MONEY: return DBA_INT(json_integer_value(v));
    case RF_BOOL: return DBA_BOOL(json_is_true(v));
    case RF_TIME: {
        int64_t ms = 0;
        if (time_parse_rfc3339(str_make(json_string_value(v), json_string_length(v)), &ms))
            ms = 0; /* checked before: check_value() */
        *ph = "ms_ts(?)";
        return DBA_INT(ms);
    }
    case RF_JSON:
    case RF_STRLIST:
    case RF_I18N: {
        struct jw w;
        buf_init(tmp, 1u << 20);
        jw_init(&w, tmp);
        jw_json(&w, v);
        return DBA_TEXT(buf_str(tmp));
    }
    default: return DBA_TEXT(str_make(json_string_value(v), json_string_length(v)));
    }
}

/* ---- create ---- */

/* A transaction of a write: r's caller, the resource and the row. The
 * callbacks fail through http_fail (404/403/412/409) or return a db_rc. */
struct write_ctx {
    struct caller who;
    const struct rt *t;
    char id[UUID_STR_LEN + 1];
    str_t sid;
    int64_t version;     /* update/delete: the version the change applied to */
    json_t *before, *after;
};

/* The end of a write transaction: a constraint is 409, else rc as it is. */
static int write_rc(struct req *r, const struct rt *t, int rc)
{
    if (rc == DB_ECONSTRAINT)
        return http_fail(r, 409, "CONFLICT", "this %s conflicts with an existing one", t->res->singular);
    return rc;
}

static int precondition_failed(struct req *r, const struct rt *t)
{
    return http_fail(r, 412, "PRECONDITION_FAILED", "the %s changed since it was read (If-Match)", t->res->singular);
}

static int tx_create(struct req *r, void *arg)
{
    struct write_ctx *c = arg;
    struct db *db = r->db;
    const struct rt *t = c->t;
    const struct resource *res = t->res;
    struct buf cols = BUF_INIT(BUF_MAX_SQL), vals = BUF_INIT(BUF_MAX_SQL), sql = BUF_INIT(BUF_MAX_SQL);
    struct buf tmp[MAX_FIELDS];
    db_arg args[MAX_FIELDS + 8];
    int na = 0, full = 0;
    int64_t now = time_now_ms();
    int rc;
    memset(tmp, 0, sizeof(tmp));
    (void)buf_puts(&cols, "id, version, created_at, updated_at");
    (void)buf_puts(&vals, "?, 1, ms_ts(?), ms_ts(?)");
    full |= ARGS_ADD(args, na, DBA_TEXT(c->sid));
    full |= ARGS_ADD(args, na, DBA_INT(now));
    full |= ARGS_ADD(args, na, DBA_INT(now));
    if (res->owner && r->user_id.len) {
        (void)buf_printf(&cols, ", %s", res->owner);
        (void)buf_puts(&vals, ", ?");
        full |= ARGS_ADD(args, na, DBA_TEXT(r->user_id));
    }
    for (int i = 0; i < t->nfields; i++) {
        const struct rfield *f = &res->fields[i];
        const json_t *v = (f->flags & RF_READONLY) ? NULL : json_object_get(r->body, f->name);
        const char *ph;
        if (!v)
            v = t->defaults[i];
        if (!v || (res->owner && !strcmp(f->name, res->owner)))
            continue;
        full |= ARGS_ADD(args, na, to_arg(f, v, &tmp[i], &ph));
        (void)buf_printf(&cols, ", %s", f->name);
        (void)buf_printf(&vals, ", %s", ph);
    }
    (void)buf_printf(&sql, "INSERT INTO %s (%s) VALUES (%s)", res->table, buf_cstr(&cols), buf_cstr(&vals));
    rc = buf_ok(&sql) && !full ? db_exec(db, buf_cstr(&sql), args, (size_t)na, NULL) : DB_ERR;
    for (int i = 0; i < t->nfields; i++)
        buf_free(&tmp[i]);
    buf_free(&cols);
    buf_free(&vals);
    buf_free(&sql);
    if (rc == DB_OK && res->after_write)
        rc = res->after_write(r, db, res, RA_CREATE, c->sid);
    if (rc == DB_OK && have_hooks()) {
        json_decref(c->after);
        c->after = row_json(&c->who, db, t, c->sid);
        rc = run_hooks(RES_HOOK_TX, r, db, t, RA_CREATE, c->sid, NULL, c->after);
    }
    return write_rc(r, t, rc);
}

static int respond_row(struct req *r, const struct rt *t, str_t id, int status)
{
    struct caller who = resource_caller(r);
    struct db_res *row;
    int rc = select_one(&who, r->db, t, id, &row);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (!row) /* written but not visible to its writer (e.g. a public_where it fails) */
        return http_fail(r, 404, "NOT_FOUND", "no such %s", t->res->singular);
    struct buf et = BUF_INIT(64);
    etag_of(t, db_int(row, 1), who.lang, &et);
    req_header(r, "etag", buf_str(&et));
    buf_free(&et);
    write_row(&r->w, t, row, who.lang);
    db_res_free(row);
    r->status = status;
    return 0;
}

int resource_respond(struct req *r, const struct resource *res, str_t id, int status)
{
    const struct rt *t = rt_of(res);
    ASSERT(t);
    return respond_row(r, t, id, status);
}

static bool if_match(struct req *r, const struct rt *t, int64_t version)
{
    str_t im = req_header_get(r, "if-match");
    if (!im.p)
        return true;
    struct buf et = BUF_INIT(64);
    etag_of(t, version, req_lang(r), &et);
    bool ok = etag_matches(im, buf_str(&et));
    buf_free(&et);
    return ok;
}

bool resource_if_match(struct req *r, const struct resource *res, int64_t version)
{
    const struct rt *t = rt_of(res);
    ASSERT(t);
    return if_match(r, t, version);
}

static int h_create(struct req *r)
{
    const struct rt *t = r->route->ctx;
    return resource_create(r, t->res);
}

int resource_create(struct req *r, const struct resource *res)
{
    const struct rt *t = rt_of(res);
    struct write_ctx c = {.who = resource_caller(r), .t = t};
    ASSERT(t);
    unsigned roles = resource_role_bits(&c.who);
    if (res->create == RP_AUTH && roles == ROLE_GUEST && !res->create_guests)
        return http_fail(r, 403, "FORBIDDEN", "guests cannot create %s", res->name);
    if (!may_write(&c.who, res->create, r->user_id))
        return http_fail(r, 403, "FORBIDDEN", "you may not create %s", res->name);
    if (check_body_rules(r, t, r->body))
        return HTTP_EFAIL;
    uuid7_str(c.id);
    c.sid = str_c(c.id);
    if (res->check && res->check(r, res, RA_CREATE, r->body, STR_NULL))
        return HTTP_EFAIL;
    int rc = req_tx(r, DB_TX_WRITE, tx_create, &c);
    if (rc == 0 && have_hooks())
        (void)run_hooks(RES_HOOK_COMMIT, r, r->db, t, RA_CREATE, c.sid, NULL, c.after);
    json_decref(c.after);
    if (rc)
        return rc;
    struct buf loc = BUF_INIT(512);
    (void)buf_printf(&loc, "%s/%s", res->path, c.id);
    req_header(r, "location", buf_str(&loc));
    buf_free(&loc);
    return respond_row(r, t, c.sid, 201);
}

/* ---- update and delete ---- */

/* Inside a tx: find the visible row, check the policy and If-Match. */
static int load_for_write(struct req *r, struct write_ctx *c, enum rpolicy p)
{
    const char *sing = c->t->res->singular;
    struct db_res *row;
    int rc = select_one(&c->who, r->db, c->t, c->sid, &row);
    if (rc != DB_OK)
        return rc;
    if (!row)
        return http_fail(r, 404, "NOT_FOUND", "no such %s", sing);
    bool allowed = may_write(&c->who, p, db_text(row, 4));
    c->version = db_int(row, 1);
    db_res_free(row);
    if (!allowed)
        return http_fail(r, 403, "FORBIDDEN", "you may not change this %s", sing);
    if (!if_match(r, c->t, c->version))
        return precondition_failed(r, c->t);
    if (have_hooks()) {
        json_decref(c->before);
        c->before = row_json(&c->who, r->db, c->t, c->sid);
    }
    return DB_OK;
}

static int tx_update(struct req *r, void *arg)
{
    struct write_ctx *c = arg;
    struct db *db = r->db;
    const struct rt *t = c->t;
    const struct resource *res = t->res;
    struct buf sql = BUF_INIT(BUF_MAX_SQL), tmp[MAX_FIELDS];
    db_arg args[MAX_FIELDS + 8];
    int na = 0, full = 0;
    int64_t changed = 0;
    int rc;
    if ((rc = load_for_write(r, c, res->update)) != DB_OK)
        return rc;
    memset(tmp, 0, sizeof(tmp));
    (void)buf_printf(&sql, "UPDATE %s SET version = version + 1, updated_at = ms_ts(?)", res->table);
    full |= ARGS_ADD(args, na, DBA_INT(time_now_ms()));
    for (int i = 0; i < t->nfields; i++) {
        const struct rfield *f = &res->fields[i];
        const json_t *v = json_object_get(r->body, f->name);
        const char *ph;
        if (!v || (f->flags & (RF_READONLY | RF_CREATE_ONLY)))
            continue;
        full |= ARGS_ADD(args, na, to_arg(f, v, &tmp[i], &ph));
        (void)buf_printf(&sql, ", %s = %s", f->name, ph);
    }
    (void)buf_puts(&sql, " WHERE id = ? AND version = ?");
    full |= ARGS_ADD(args, na, DBA_TEXT(c->sid));
    full |= ARGS_ADD(args, na, DBA_INT(c->version));
    rc = buf_ok(&sql) && !full ? db_exec(db, buf_cstr(&sql), args, (size_t)na, &changed) : DB_ERR;
    for (int i = 0; i < t->nfields; i++)
        buf_free(&tmp[i]);
    buf_free(&sql);
    if (rc == DB_OK && changed != 1) /* changed between our read and our write */
        return precondition_failed(r, t);
    if (rc == DB_OK && res->after_write)
        rc = res->after_write(r, db, res, RA_UPDATE, c->sid);
    if (rc == DB_OK && have_hooks()) {
        json_decref(c->after);
        c->after = row_json(&c->who, db, t, c->sid);
        rc = run_hooks(RES_HOOK_TX, r, db, t, RA_UPDATE, c->sid, c->before, c->after);
    }
    return write_rc(r, t, rc);
}

static int h_update(struct req *r)
{
    const struct rt *t = r->route->ctx;
    const struct resource *res = t->res;
    struct write_ctx c = {.who = resource_caller(r), .t = t, .sid = req_param(r, "id")};
    if (!uuid_valid(c.sid))
        return http_fail(r, 404, "NOT_FOUND", "no such %s", res->singular);
    if (check_body_rules(r, t, r->body))
        return HTTP_EFAIL;
    if (res->check && res->check(r, res, RA_UPDATE, r->body, c.sid))
        return HTTP_EFAIL;
    int rc = req_tx(r, DB_TX_WRITE, tx_update, &c);
    if (rc == 0 && have_hooks())
        (void)run_hooks(RES_HOOK_COMMIT, r, r->db, t, RA_UPDATE, c.sid, c.before, c.after);
    json_decref(c.before);
    json_decref(c.after);
    return rc ? rc : respond_row(r, t, c.sid, 200);
}

static int tx_delete(struct req *r, void *arg)
{
    struct write_ctx *c = arg;
    struct db *db = r->db;
    const struct resource *res = c->t->res;
    struct buf sql = BUF_INIT(1024);
    int64_t changed = 0;
    int rc;
    if ((rc = load_for_write(r, c, res->del)) != DB_OK)
        return rc;
    if (res->soft_delete) {
        (void)buf_printf(&sql, "UPDATE %s SET deleted_at = ms_ts(?), version = version + 1 WHERE id = ? AND version = ?",
                         res->table);
        rc = db_exec(db, buf_cstr(&sql), DB_ARGS(DBA_INT(time_now_ms()), DBA_TEXT(c->sid), DBA_INT(c->version)),
                     &changed);
    } else {
        (void)buf_printf(&sql, "DELETE FROM %s WHERE id = ? AND version = ?", res->table);
        rc = db_exec(db, buf_cstr(&sql), DB_ARGS(DBA_TEXT(c->sid), DBA_INT(c->version)), &changed);
    }
    buf_free(&sql);
    if (rc == DB_OK && changed != 1)
        return precondition_failed(r, c->t);
    if (rc == DB_OK && res->after_write)
        rc = res->after_write(r, db, res, RA_DELETE, c->sid);
    if (rc == DB_OK && have_hooks())
        rc = run_hooks(RES_HOOK_TX, r, db, c->t, RA_DELETE, c->sid, c->before, NULL);
    return write_rc(r, c->t, rc);
}

static int h_delete(struct req *r)
{
    const struct rt *t = r->route->ctx;
    struct write_ctx c = {.who = resource_caller(r), .t = t, .sid = req_param(r, "id")};
    if (!uuid_valid(c.sid))
        return http_fail(r, 404, "NOT_FOUND", "no such %s", t->res->singular);
    int rc = req_tx(r, DB_TX_WRITE, tx_delete, &c);
    if (rc == 0 && have_hooks())
        (void)run_hooks(RES_HOOK_COMMIT, r, r->db, t, RA_DELETE, c.sid, c.before, NULL);
    json_decref(c.before);
    if (rc)
        return rc;
    r->status = 204;
    return 0;
}

/* ---- /api/v1/search over every searchable resource ---- */

struct hit {
    const struct rt *t;
    char *id, *title;
    double score; /* higher is better */
};

static int hit_cmp(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return strcmp(y->id, x->id); /* newest first among equals */
}

static bool type_listed(str_t types, const char *name)
{
    const char *p = types.p, *end = types.p + types.len;
    while (p <= end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        if (str_eq(str_make(p, (size_t)((c ? c : end) - p)), str_c(name)))
            return true;
        if (!c)
            break;
        p = c + 1;
    }
    return false;
}

static int search_one(struct req *r, const struct rt *t, str_t text, int64_t want, struct hit *hits, size_t *nhits)
{
    struct rq q;
    struct search_sql s = {BUF_INIT(512), BUF_INIT(512), BUF_INIT(2048), {{0}}, 0};
    struct buf sql = BUF_INIT(BUF_MAX_SQL);
    db_arg args[RQ_MAX_ARGS + ARRAY_LEN(s.oargs) + 1];
    int na = 0, full = 0;
    int rc = DB_OK;
    struct caller who = resource_caller(r);
    rq_begin(&q, &who, r->db, t->res, r->pool);
    if (visibility(&who, t->res, &q) || add_search(r->db, t, text, &q, &s)) {
        rc = DB_ERR;
        goto out;
    }
    for (int i = 0; i < s.noargs; i++) /* the rank is in the SELECT list: its arguments come first */
        full |= ARGS_ADD(args, na, s.oargs[i]);
    for (int i = 0; i < q.nargs; i++)
        full |= ARGS_ADD(args, na, q.args[i]);
    full |= ARGS_ADD(args, na, DBA_INT(want));
    if (full) {
        rc = DB_ERR;
        goto out;
    }
    (void)buf_printf(&sql, "SELECT t.id, t.%s, %s FROM %s t%s WHERE 1=1%s ORDER BY 3, t.id DESC LIMIT ?",
                     t->res->title_field, buf_cstr(&s.rank), t->res->table, buf_cstr(&s.from), buf_cstr(&q.sql));
    struct db_res *dr;
    if ((rc = db_query(r->db, buf_cstr(&sql), args, (size_t)na, &dr)) != DB_OK)
        goto out;
    while ((rc = db_next(dr)) == 1 && *nhits < SEARCH_MAX_HITS) {
        struct hit *h = &hits[(*nhits)++];
        h->t = t;
        h->id = pool_strdup(r, db_text(dr, 0));
        h->title = pool_strdup(r, db_text(dr, 1));
        h->score = -db_double(dr, 2);
    }
    db_res_free(dr);
    rc = rc < 0 ? rc : DB_OK;
out:
    buf_free(&s.from);
    buf_free(&s.rank);
    buf_free(&s.ftsq);
    buf_free(&sql);
    rq_release(&q);
    return rc;
}

static int h_search(struct req *r)
{
    const str_t *qp = req_query(r, "q"), *types = req_query(r, "types");
    struct hit *hits = h2o_mem_alloc_pool(r->pool, sizeof(struct hit) * SEARCH_MAX_HITS);
    size_t nhits = 0;
    if (!qp || qp->len == 0)
        return http_invalid(r, "q", "is required");
    if (qp->len > 500)
        return http_invalid(r, "q", "is longer than 500 bytes");
    for (int i = 0; i < r->q.n; i++) {
        str_t k = r->q.p[i].key;
        if (!(str_is(k, "q") || str_is(k, "types") || str_is(k, "page") || str_is(k, "limit")))
            return http_invalid(r, pool_strdup(r, k), "is not a parameter of /search");
    }
    if (types) { /* every listed type must exist */
        const char *p = types->p, *end = types->p + types->len;
        while (p <= end) {
            const char *c = memchr(p, ',', (size_t)(end - p));
            str_t name = str_make(p, (size_t)((c ? c : end) - p));
            bool known = false;
            for (size_t i = 0; i < g_nrts && !known; i++)
                known = g_rts[i]->searchable && g_rts[i]->res->title_field && str_eq(name, str_c(g_rts[i]->res->name));
            if (!known) {
                struct buf m = BUF_INIT(256);
                (void)buf_printf(&m, "has an unknown type '%.*s'", (int)(name.len > 64 ? 64 : name.len), name.p);
                char *msg = pool_strdup(r, buf_str(&m));
                buf_free(&m);
                return http_invalid(r, "types", msg);
            }
            if (!c)
                break;
            p = c + 1;
        }
    }
    int64_t want = r->page * r->limit;
    if (want > SEARCH_MAX_HITS)
        want = SEARCH_MAX_HITS;
    for (size_t i = 0; i < g_nrts; i++) {
        const struct rt *t = g_rts[i];
        if (!t->searchable || !t->res->title_field || (types && !type_listed(*types, t->res->name)))
            continue;
        int rc = search_one(r, t, *qp, want, hits, &nhits);
        if (rc != DB_OK)
            return http_db_fail(r, rc);
    }
    qsort(hits, nhits, sizeof(*hits), hit_cmp);
    size_t from = (size_t)((r->page - 1) * r->limit);
    jw_obj_begin(&r->w);
    jw_key(&r->w, "data");
    jw_arr_begin(&r->w);
    for (size_t i = from; i < nhits && i < from + (size_t)r->limit; i++) {
        jw_obj_begin(&r->w);
        jw_key(&r->w, "type");
        jw_cstr(&r->w, hits[i].t->res->name);
        jw_key(&r->w, "id");
        jw_cstr(&r->w, hits[i].id);
        jw_key(&r->w, "title");
        jw_cstr(&r->w, hits[i].title);
        jw_key(&r->w, "score");
        jw_double(&r->w, hits[i].score);
        jw_obj_end(&r->w);
    }
    jw_arr_end(&r->w);
    jw_key(&r->w, "meta");
    jw_obj_begin(&r->w);
    jw_key(&r->w, "total");
    jw_int(&r->w, (int64_t)nhits);
    jw_key(&r->w, "page");
    jw_int(&r->w, r->page);
    jw_key(&r->w, "limit");
    jw_int(&r->w, r->limit);
    jw_obj_end(&r->w);
    jw_obj_end(&r->w);
    return 0;
}

static void openapi_search(const struct route *rt, struct jw *w, enum openapi_part part)
{
    (void)rt;
    if (part == OPENAPI_PARAMS) {
        jw_raw(w, STRLIT("{\"name\":\"q\",\"in\":\"query\",\"required\":true,\"schema\":{\"type\":\"string\"}}"));
        jw_raw(w, STRLIT("{\"name\":\"types\",\"in\":\"query\",\"description\":\"comma-separated resource types\","
                         "\"schema\":{\"type\":\"string\"}}"));
        return;
    }
    jw_raw(w, STRLIT("{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\",\"items\":{\"type\":"
                     "\"object\",\"properties\":{\"type\":{\"type\":\"string\"},\"id\":{\"type\":\"string\"},"
                     "\"title\":{\"type\":\"string\"},\"score\":{\"type\":\"number\"}}}},\"meta\":{\"type\":"
                     "\"object\"}}}"));
}

static struct route search_routes[] = {
    {.method = "GET", .pattern = "/api/v1/search", .handler = h_search, .auth = AUTH_OPTIONAL, .rl = RL_READ,
     .flags = ROUTE_PAGINATED, .summary = "Full-text search across every type the caller may see", .tag = "search",
     .openapi = openapi_search},
};

/* ---- OpenAPI ---- */

static void field_schema(struct jw *w, const struct rfield *f)
{
    jw_obj_begin(w);
    switch (f->type) {
    case RF_INT:
    case RF_MONEY:
        jw_key(w, "type");
        jw_cstr(w, "integer");
        if (f->type == RF_MONEY) {
            jw_key(w, "description");
            jw_cstr(w, f->description ? f->description : "amount in minor units");
        }
        break;
    case RF_BOOL:
        jw_key(w, "type");
        jw_cstr(w, "boolean");
        break;
    case RF_TIME:
        jw_key(w, "type");
        jw_cstr(w, "string");
        jw_key(w, "format");
        jw_cstr(w, "date-time");
        break;
    case RF_JSON: break;
    case RF_STRLIST:
        jw_key(w, "type");
        jw_cstr(w, "array");
        jw_key(w, "items");
        jw_raw(w, STRLIT("{\"type\":\"string\"}"));
        break;
    case RF_I18N:
        jw_key(w, "type");
        jw_cstr(w, "string");
        jw_key(w, "description");
        jw_cstr(w, "in the Accept-Language language; written as {\"tr\",\"en\",\"pl\"}");
        break;
    default:
        jw_key(w, "type");
        jw_cstr(w, "string");
        if (f->values) {
            jw_key(w, "enum");
            jw_arr_begin(w);
            for (const char *const *e = f->values; *e; e++)
                jw_cstr(w, *e);
            jw_arr_end(w);
        }
        break;
    }
    if (f->description && f->type != RF_MONEY && f->type != RF_I18N) {
        jw_key(w, "description");
        jw_cstr(w, f->description);
    }
    jw_obj_end(w);
}

static void row_schema(struct jw *w, const struct rt *t)
{
    jw_obj_begin(w);
    jw_key(w, "type");
    jw_cstr(w, "object");
    jw_key(w, "properties");
    jw_obj_begin(w);
    jw_key(w, "id");
    jw_raw(w, STRLIT("{\"type\":\"string\",\"format\":\"uuid\"}"));
    for (int i = 0; i < t->nfields; i++)
        if (!(t->res->fields[i].flags & RF_PRIVATE)) {
            jw_key(w, t->res->fields[i].name);
            field_schema(w, &t->res->fields[i]);
        }
    jw_key(w, "created_at");
    jw_raw(w, STRLIT("{\"type\":\"string\",\"format\":\"date-time\"}"));
    jw_key(w, "updated_at");
    jw_raw(w, STRLIT("{\"type\":\"string\",\"format\":\"date-time\"}"));
    jw_obj_end(w);
    jw_obj_end(w);
}

static void query_param(struct jw *w, const char *name, const char *type, const char *desc)
{
    jw_obj_begin(w);
    jw_key(w, "name");
    jw_cstr(w, name);
    jw_key(w, "in");
    jw_cstr(w, "query");
    jw_key(w, "schema");
    jw_obj_begin(w);
    jw_key(w, "type");
    jw_cstr(w, type);
    jw_obj_end(w);
    jw_key(w, "description");
    jw_cstr(w, desc);
    jw_obj_end(w);
}

static void openapi_list(const struct route *route, struct jw *w, enum openapi_part part)
{
    const struct rt *t = route->ctx;
    if (part == OPENAPI_RESPONSE) {
        jw_obj_begin(w);
        jw_key(w, "type");
        jw_cstr(w, "object");
        jw_key(w, "properties");
        jw_obj_begin(w);
        jw_key(w, "data");
        jw_obj_begin(w);
        jw_key(w, "type");
        jw_cstr(w, "array");
        jw_key(w, "items");
        row_schema(w, t);
        jw_obj_end(w);
        jw_key(w, "meta");
        jw_raw(w, STRLIT("{\"type\":\"object\",\"properties\":{\"total\":{\"type\":\"integer\"},\"page\":{\"type\":"
                         "\"integer\"},\"limit\":{\"type\":\"integer\"},\"pages\":{\"type\":\"integer\"},"
                         "\"has_more\":{\"type\":\"boolean\"}}}"));
        jw_obj_end(w);
        jw_obj_end(w);
        return;
    }
    struct buf sortable = BUF_INIT(2048);
    (void)buf_puts(&sortable, "field:asc|desc, comma-separated; default created_at:desc. Sortable: id, created_at, "
                              "updated_at");
    for (int i = 0; i < t->nfields; i++)
        if (t->res->fields[i].flags & RF_SORT)
            (void)buf_printf(&sortable, ", %s", t->res->fields[i].name);
    query_param(w, "sort", "string", buf_cstr(&sortable));
    buf_free(&sortable);
    query_param(w, "filter", "string",
                "expression: field op value joined by && and || with parentheses; ops = != > >= < <= ~ !~; values "
                "'text', numbers, true, false, null, @now, @me");
    query_param(w, "skip_total", "boolean", "true: no count query; meta has has_more instead of total/pages");
    if (t->searchable)
        query_param(w, "q", "string", "full-text search (ranked when no sort is given)");
    for (int i = -3; i < t->nfields; i++) {
        static const char *const implicit[] = {"id", "created_at", "updated_at"};
        const struct rfield *f = i < 0 ? resource_field(t->res, str_c(implicit[i + 3])) : &t->res->fields[i];
        if (!(f->flags & RF_FILTER))
            continue;
        struct buf d = BUF_INIT(256);
        (void)buf_printf(&d, "equals; also %s[ne|gt|gte|lt|lte|in|like]", f->name);
        query_param(w, f->name, f->type == RF_INT || f->type == RF_MONEY ? "integer" : f->type == RF_BOOL ? "boolean"
                                                                                                          : "string",
                    buf_cstr(&d));
        buf_free(&d);
    }
}

static void openapi_item(const struct route *route, struct jw *w, enum openapi_part part)
{
    if (part == OPENAPI_RESPONSE)
        row_schema(w, route->ctx);
    else if (!strcmp(route->method, "PATCH") || !strcmp(route->method, "DELETE"))
        jw_raw(w, STRLIT("{\"name\":\"If-Match\",\"in\":\"header\",\"description\":\"the ETag last read; 412 when "
                         "it no longer matches\",\"schema\":{\"type\":\"string\"}}"));
}

/* ---- registration ---- */

static enum route_auth auth_for(enum rpolicy p, bool read)
{
    switch (p) {
    case RP_PUBLIC: return AUTH_OPTIONAL;
    case RP_STAFF: return AUTH_STAFF;
    case RP_ADMIN: return AUTH_ADMIN;
    default: return read ? AUTH_USER : AUTH_USER;
    }
}

static enum jf_type jf_for(enum rf_type t)
{
    switch (t) {
    case RF_INT:
    case RF_MONEY: return JF_INT;
    case RF_BOOL: return JF_BOOL;
    case RF_JSON: return JF_ANY;
    case RF_STRLIST: return JF_ARRAY_STR;
    case RF_I18N: return JF_OBJECT;
    default: return JF_STRING;
    }
}

static char *xprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
static char *xprintf(const char *fmt, ...)
{
    struct buf b = BUF_INIT(BUF_MAX_SQL);
    va_list ap;
    va_start(ap, fmt);
    (void)buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (!buf_ok(&b))
        BUG("resource: string too long");
    return buf_detach(&b, NULL);
}

void resource_register(const struct resource *res)
{
    struct rt *t = xcalloc(1, sizeof(*t));
    struct buf cols = BUF_INIT(BUF_MAX_SQL);
    int nc = 0, nu = 0;
    ASSERT(res->name && res->singular && res->path && res->table && res->fields);
    if (g_nrts == MAX_RESOURCES)
        FATAL("too many resources");
    if ((res->read == RP_OWNER || res->read == RP_OWNER_OR_STAFF || res->update == RP_OWNER ||
         res->update == RP_OWNER_OR_STAFF || res->del == RP_OWNER || res->del == RP_OWNER_OR_STAFF) &&
        !res->owner)
        FATAL("resource %s: an owner policy needs an owner column", res->name);
    t->res = res;
    (void)buf_printf(&cols, "t.id, t.version, ts_ms(t.created_at), ts_ms(t.updated_at), %s%s",
                     res->owner ? "t." : "NULL", res->owner ? res->owner : "");
    for (const struct rfield *f = res->fields; f->name; f++) {
        int i = t->nfields++;
        if (t->nfields > MAX_FIELDS)
            FATAL("resource %s: too many fields", res->name);
        if (f->type == RF_TIME)
            (void)buf_printf(&cols, ", ts_ms(t.%s)", f->name);
        else
            (void)buf_printf(&cols, ", t.%s", f->name);
        if (f->flags & RF_SEARCH)
            t->searchable = true;
        if (f->type == RF_I18N)
            t->has_i18n = true;
        if (f->type == RF_ENUM && !f->values)
            FATAL("resource %s: enum %s without values", res->name, f->name);
        if (f->type == RF_REF && !f->ref)
            FATAL("resource %s: ref %s without a target", res->name, f->name);
        if (f->def) {
            t->defaults[i] = json_loads(f->def, JSON_DECODE_ANY, NULL);
            if (!t->defaults[i])
                FATAL("resource %s: default of %s is not JSON", res->name, f->name);
        }
        if (f->flags & RF_READONLY)
            continue;
        struct json_field jf = {.name = f->name,
                                .type = jf_for(f->type),
                                .flags = f->flags & RF_NULLABLE ? JF_NULLABLE : 0,
                                .enum_values = f->type == RF_ENUM ? f->values : NULL,
                                .description = f->description};
        if (f->type != RF_I18N && f->type != RF_MONEY) {
            jf.min = f->min;
            jf.max = f->max;
        } else if (f->type == RF_MONEY) {
            jf.min = f->min;
            jf.max = f->max ? f->max : INT64_MAX;
        }
        t->create_f[nc] = jf;
        if (f->flags & RF_REQUIRED)
            t->create_f[nc].flags |= JF_REQUIRED;
        nc++;
        if (!(f->flags & RF_CREATE_ONLY))
            t->update_f[nu++] = jf;
    }
    if (!buf_ok(&cols))
        FATAL("resource %s: column list too long", res->name);
    t->cols = buf_detach(&cols, NULL);
    t->create_s = (struct json_schema){t->create_f, false};
    t->update_s = (struct json_schema){t->update_f, false};
    t->item_pattern = xprintf("%s/{id}", res->path);
    if (res->public_where) { /* compile once now: a bad expression is a programming error */
        struct rq q;
        rq_init(&q, res, DB_SQLITE, STRLIT("x"), 0, NULL, NULL);
        q.all_fields = true;
        if (rq_filter_expr(&q, str_c(res->public_where)))
            FATAL("resource %s: public_where: %s", res->name, buf_cstr(&q.err_msg));
        rq_release(&q);
    }
    unsigned want = res->routes ? res->routes : (RR_LIST | RR_GET | RR_CREATE | RR_UPDATE | RR_DELETE);
    size_t n = 0;
    const char *sing = res->singular;
    if (want & RR_LIST)
        t->routes[n++] = (struct route){.method = "GET", .pattern = res->path, .handler = h_list,
                                        .auth = auth_for(res->read, true), .rl = RL_READ, .flags = ROUTE_PAGINATED,
                                        .summary = xprintf("List %s (filters, sort, search, pages)", res->name),
                                        .tag = res->tag, .ctx = t, .openapi = openapi_list};
    if ((want & RR_CREATE) && res->create != RP_DENY)
        t->routes[n++] = (struct route){.method = "POST", .pattern = res->path, .handler = h_create,
                                        .auth = auth_for(res->create, false), .rl = RL_WRITE, .input = &t->create_s,
                                        .summary = xprintf("Create a %s (201 + Location)", sing), .tag = res->tag,
                                        .ctx = t, .openapi = openapi_item};
    if (want & RR_GET)
        t->routes[n++] = (struct route){.method = "GET", .pattern = t->item_pattern, .handler = h_get,
                                        .auth = auth_for(res->read, true), .rl = RL_READ,
                                        .summary = xprintf("Get a %s (ETag)", sing), .tag = res->tag, .ctx = t,
                                        .openapi = openapi_item};
    if ((want & RR_UPDATE) && res->update != RP_DENY)
        t->routes[n++] = (struct route){.method = "PATCH", .pattern = t->item_pattern, .handler = h_update,
                                        .auth = auth_for(res->update, false), .rl = RL_WRITE, .input = &t->update_s,
                                        .summary = xprintf("Update a %s (If-Match)", sing), .tag = res->tag,
                                        .ctx = t, .openapi = openapi_item};
    if ((want & RR_DELETE) && res->del != RP_DENY)
        t->routes[n++] = (struct route){.method = "DELETE", .pattern = t->item_pattern, .handler = h_delete,
                                        .auth = auth_for(res->del, false), .rl = RL_WRITE,
                                        .summary = xprintf("Delete a %s%s (If-Match)", sing,
                                                           res->soft_delete ? " (soft)" : ""),
                                        .tag = res->tag, .ctx = t, .openapi = openapi_item};
    if (g_nrts == 0)
        router_add(search_routes, ARRAY_LEN(search_routes));
    g_rts[g_nrts++] = t;
    if (n)
        router_add(t->routes, n);
}
