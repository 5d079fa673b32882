/*
 * search.c — full text: the match and rank clauses a list's `q` adds
 * (SQLite FTS5, PostgreSQL tsvector), and GET /api/v1/search over every
 * searchable resource the caller may see.
 */
#include <stdlib.h>

#include "core/timeutil.h"
#include "resource/internal.h"

#include "core/banned.h"

#define SEARCH_MAX_HITS 200

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



int resource__add_search(struct db *db, const struct rt *t, str_t text, struct rq *q, struct search_sql *s)
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
    resource__rq_begin(&q, &who, r->db, t->res, r->pool);
    if (resource__visibility(&who, t->res, &q) || resource__add_search(r->db, t, text, &q, &s)) {
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
    const struct rfield *tf = resource_field(t->res, str_c(t->res->title_field));
    bool i18n = tf && tf->type == RF_I18N; /* the title in the request's language */
    if ((rc = db_query(r->db, buf_cstr(&sql), args, (size_t)na, &dr)) != DB_OK)
        goto out;
    while ((rc = db_next(dr)) == 1 && *nhits < SEARCH_MAX_HITS) {
        struct hit *h = &hits[(*nhits)++];
        h->t = t;
        h->id = resource__strdup(r, db_text(dr, 0));
        h->title = resource__strdup(r, i18n ? resource_i18n_text(r, db_text(dr, 1)) : db_text(dr, 1));
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
            return http_invalid(r, resource__strdup(r, k), "is not a parameter of /search");
    }
    if (types) { /* every listed type must exist */
        const char *p = types->p, *end = types->p + types->len;
        while (p <= end) {
            const char *c = memchr(p, ',', (size_t)(end - p));
            str_t name = str_make(p, (size_t)((c ? c : end) - p));
            bool known = false;
            for (size_t i = 0; i < resource__nrts && !known; i++) {
                const struct rt *t = resource__rts[i];
                known = t->searchable && t->res->title_field && str_eq(name, str_c(t->res->name));
            }
            if (!known) {
                struct buf m = BUF_INIT(256);
                (void)buf_printf(&m, "has an unknown type '%.*s'", (int)(name.len > 64 ? 64 : name.len), name.p);
                char *msg = resource__strdup(r, buf_str(&m));
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
    for (size_t i = 0; i < resource__nrts; i++) {
        const struct rt *t = resource__rts[i];
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
    }
}

static struct route search_routes[] = {
    {.method = "GET", .pattern = "/api/v1/search", .handler = h_search, .auth = AUTH_OPTIONAL, .rl = RL_READ,
     .flags = ROUTE_PAGINATED, .summary = "Full-text search across every type the caller may see", .tag = "search",
     .openapi = openapi_search,
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "type", "id", "title", "score" ],
         "properties" : {
             "type" : {"type" : "string", "description" : "the resource type, e.g. products"},
             "id" : {"type" : "string", "format" : "uuid"},
             "title" : {"type" : "string"},
             "score" : {"type" : "number"}
         }
     })},
};

void resource__search_register(void) { router_add(search_routes, ARRAY_LEN(search_routes)); }
