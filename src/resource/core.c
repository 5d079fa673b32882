/*
 * core.c — the resource engine's core (resource.h): the table of registered
 * resources, change hooks, who may see and change which rows (the caller
 * value), the row writer and ETags, one visible row by id, and the GDPR
 * export. The routes live in list.c (list, get), write.c (create, update,
 * delete), search.c (/search); register.c derives them from a descriptor;
 * openapi.c describes them.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/timeutil.h"
#include "core/uuid.h"
#include "resource/internal.h"

#include "core/banned.h"

#define MAX_HOOKS 16

struct rt *resource__rts[RESOURCE_MAX];
size_t resource__nrts;

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

struct rt *resource__rt_of(const struct resource *res)
{
    for (size_t i = 0; i < resource__nrts; i++)
        if (resource__rts[i]->res == res)
            return resource__rts[i];
    return NULL;
}

static void *pool_alloc(void *ud, size_t n) { return h2o_mem_alloc_pool((h2o_mem_pool_t *)ud, n); }

char *resource__strdup(struct req *r, str_t s)
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
    return (struct caller){r->user_id, r->role, resource__lang(r)};
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
int resource__visibility(const struct caller *who, const struct resource *res, struct rq *q)
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
bool resource__may_write(const struct caller *who, enum rpolicy p, str_t owner)
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
void resource__rq_begin(struct rq *q, const struct caller *who, struct db *db, const struct resource *res,
                     h2o_mem_pool_t *pool)
{
    rq_init(q, res, db_kind(db), who->user_id, time_now_ms(), pool ? pool_alloc : NULL, pool);
}

/* Turn an rq error into the request's error. */
int resource__rq_http_fail(struct req *r, struct rq *q)
{
    if (q->err_status == 422)
        http_field_error(r, q->err_field ? resource__strdup(r, str_c(q->err_field)) : "filter",
                         resource__strdup(r, buf_str(&q->err_msg)));
    return http_fail(r, q->err_status ? q->err_status : 500, NULL, "%s", buf_cstr(&q->err_msg));
}

/* ---- output ---- */

enum lang resource__lang(struct req *r) { return lang_from_header(req_header_get(r, "accept-language")); }

/* One JSON string token at p (on its '"'): the end past its closing quote,
 * or NULL when it is not a well-formed string without raw control bytes or
 * when it holds an escape and keys must be plain (then the caller parses). */
static const char *scan_string(const char *p, const char *end, bool plain)
{
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c != '\\')
            continue;
        if (plain || ++p >= end)
            return NULL;
        if (*p == 'u') {
            for (int i = 0; i < 4; i++)
                if (++p >= end || !((*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')))
                    return NULL;
        } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
            return NULL;
        }
    }
    return NULL;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
        p++;
    return p;
}

/* The stored i18n text is a flat object of strings written by us: pick the
 * member for lang, else "en", else the first one, as its raw JSON token —
 * no parse, no re-escaping (W1 renders two of them per product). false:
 * the text has another shape (resource__write_i18n then parses it). */
static bool i18n_pick_raw(str_t stored, const char *lang, str_t *tok)
{
    const char *p = stored.p, *end = stored.p + stored.len;
    str_t want = {0}, en = {0}, first = {0};
    p = skip_ws(p, end);
    if (p >= end || *p++ != '{')
        return false;
    p = skip_ws(p, end);
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            const char *k = p, *v;
            str_t key;
            if (p >= end || *p != '"' || !(p = scan_string(p, end, true)))
                return false;
            key = (str_t){k + 1, (size_t)(p - k - 2)};
            p = skip_ws(p, end);
            if (p >= end || *p++ != ':')
                return false;
            p = skip_ws(p, end);
            v = p;
            if (p >= end || *p != '"' || !(p = scan_string(p, end, false)))
                return false;
            if (!first.p)
                first = (str_t){v, (size_t)(p - v)};
            if (str_eq(key, str_c(lang))) /* a repeated key: the last one wins, as in jansson */
                want = (str_t){v, (size_t)(p - v)};
            if (str_is(key, "en"))
                en = (str_t){v, (size_t)(p - v)};
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            return false;
        }
    }
    if (skip_ws(p, end) != end)
        return false;
    *tok = want.p ? want : en.p ? en : first;
    return true;
}

void resource__write_i18n(struct jw *w, str_t stored, enum lang lang)
{
    static const char *const names[] = {"en", "tr", "pl"};
    str_t tok;
    if (i18n_pick_raw(stored, names[lang], &tok)) {
        if (tok.p)
            jw_raw(w, tok);
        else
            jw_null(w);
        return;
    }
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

void resource_write_i18n(struct req *r, struct jw *w, str_t stored)
{
    resource__write_i18n(w, stored, resource__lang(r));
}

str_t resource_i18n_text(struct req *r, str_t stored)
{
    struct buf b = BUF_INIT(BUF_MAX_SMALL * 4);
    struct jw w;
    jw_init(&w, &b);
    resource__write_i18n(&w, stored, resource__lang(r));
    json_t *v = buf_ok(&b) && b.len ? json_loadb(b.ptr, b.len, JSON_DECODE_ANY, NULL) : NULL;
    buf_free(&b);
    str_t out = STRLIT("");
    if (json_is_string(v)) {
        size_t len = json_string_length(v);
        char *p = h2o_mem_alloc_pool(r->pool, len + 1);
        memcpy(p, json_string_value(v), len + 1);
        out = str_make(p, len);
    }
    json_decref(v);
    return out;
}

/* Write the row at res's current position, selected with rt->cols. */
/* Column c of res as the value of field f. */
static void write_value(struct jw *w, const struct rfield *f, const struct db_res *res, int c, enum lang lang)
{
    if (db_isnull(res, c)) {
        jw_null(w);
        return;
    }
    switch (f->type) {
    case RF_INT:
    case RF_MONEY: jw_int(w, db_int(res, c)); break;
    case RF_BOOL: jw_bool(w, db_int(res, c) != 0); break;
    case RF_TIME: jw_time(w, db_int(res, c)); break;
    case RF_NUMBER: jw_double(w, db_double(res, c)); break;
    case RF_JSON:
    case RF_STRLIST: jw_raw(w, db_text(res, c)); break; /* validated JSON, written by us */
    case RF_I18N: resource__write_i18n(w, db_text(res, c), lang); break;
    default: jw_str(w, db_text(res, c)); break;
    }
}

int resource_write_fields(struct jw *w, const struct resource *res, const char *const *names, const struct db_res *row,
                          int first, enum lang lang)
{
    for (; *names; names++, first++) {
        const struct rfield *f = resource_field(res, str_c(*names));
        if (!f)
            FATAL("BUG: resource %s has no field %s", res->name, *names);
        jw_key(w, f->name);
        write_value(w, f, row, first, lang);
    }
    return first;
}

void resource__write_row(struct jw *w, const struct rt *t, struct db_res *res, enum lang lang)
{
    jw_obj_begin(w);
    jw_key(w, "id");
    jw_str(w, db_text(res, 0));
    for (int i = 0; i < t->nfields; i++) {
        const struct rfield *f = &t->res->fields[i];
        if (f->flags & RF_PRIVATE)
            continue;
        jw_key(w, f->name);
        write_value(w, f, res, RESOURCE_NBASE + i, lang);
    }
    jw_key(w, "created_at");
    jw_time(w, db_int(res, 2));
    jw_key(w, "updated_at");
    jw_time(w, db_int(res, 3));
    jw_obj_end(w);
}

void resource__etag_of(const struct rt *t, int64_t version, enum lang lang, struct buf *out)
{
    static const char *const names[] = {"en", "tr", "pl"};
    (void)buf_printf(out, "\"v%lld%s%s\"", (long long)version, t->has_i18n ? "-" : "", t->has_i18n ? names[lang] : "");
}

/* Select cols of one visible row into *out (caller frees); DB_OK with *out NULL when none. */
static int select_one_cols(const struct caller *who, struct db *db, const struct rt *t, const char *cols, str_t id,
                           struct db_res **out)
{
    struct rq q;
    int rc;
    *out = NULL;
    if (!uuid_valid(id))
        return DB_OK; /* not an id we could have issued: simply not found */
    resource__rq_begin(&q, who, db, t->res, NULL);
    if (rq_arg(&q, STRLIT("id"), DBA_TEXT(id)) || resource__visibility(who, t->res, &q)) {
        rq_release(&q);
        return DB_ERR;
    }
    struct buf sql = BUF_INIT(BUF_MAX_SQL);
    (void)buf_printf(&sql, "SELECT %s FROM %s t WHERE t.id = ?%s", cols, t->res->table, buf_cstr(&q.sql));
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

int resource__select_one(const struct caller *who, struct db *db, const struct rt *t, str_t id, struct db_res **out)
{
    return select_one_cols(who, db, t, t->cols, id, out);
}

int resource_write(const struct caller *who, struct db *db, const struct resource *res, str_t id, struct jw *w,
                   bool *found)
{
    const struct rt *t = resource__rt_of(res);
    struct db_res *row;
    ASSERT(t);
    int rc = resource__select_one(who, db, t, id, &row);
    *found = row != NULL;
    if (rc == DB_OK && row) {
        resource__write_row(w, t, row, who->lang);
        db_res_free(row);
    }
    return rc;
}

int resource_visible(const struct caller *who, struct db *db, const struct resource *res, str_t id, bool *visible)
{
    const struct rt *t = resource__rt_of(res);
    struct db_res *row;
    ASSERT(t);
    int rc = resource__select_one(who, db, t, id, &row);
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

int resource_require_row(struct req *r, const struct resource *res, str_t id, const char *cols, struct db_res **row)
{
    const struct rt *t = resource__rt_of(res);
    struct caller who = resource_caller(r);
    ASSERT(t);
    int rc = select_one_cols(&who, r->db, t, cols, id, row);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    return *row ? 0 : http_fail(r, 404, "NOT_FOUND", "no such %s", res->singular);
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
json_t *resource__row_json(const struct caller *who, struct db *db, const struct rt *t, str_t id)
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

bool resource__have_hooks(void) { return g_nhooks > 0; }

int resource__run_hooks(enum res_hook_when when, struct req *r, struct db *db, const struct rt *t, enum raction act,
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
