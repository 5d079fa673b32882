/*
 * write.c — POST <path>, PATCH and DELETE <path>/{id}: the descriptor rules
 * the JSON schema cannot express (validators, references, write roles),
 * then one transaction (req_tx) that writes the row, runs the module's
 * after_write hook and the change hooks.
 *
 * Concurrency: updates and deletes are conditional on the row's version
 * (UPDATE ... WHERE id = ? AND version = ?), so If-Match is exact even
 * across instances and a lost race is a 412, never a silent overwrite.
 */
#include "core/timeutil.h"
#include "core/uuid.h"
#include "resource/internal.h"

#include "core/banned.h"

#define STRLIST_ITEM_MAX 200

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
        if (json_is_string(v)) { /* one text, stored as the request's language (resource__i18n_value) */
            size_t n = utf8_len(json_string_value(v), json_string_length(v));
            if ((f->min || f->max) && ((int64_t)n < f->min || (int64_t)n > f->max))
                return n == 0 ? "must not be empty" : "has the wrong length";
            break;
        }
        if (!json_is_object(v))
            return "must be an object with tr, en or pl, or a string in the request's language";
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
        const struct rt *rt = f->ref ? resource__rt_of(f->ref) : NULL;
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

/* An i18n field's value to store (a new reference). An object is stored as
 * given; a plain string is the text in the request's language: on create
 * {"<lang>": text}, on update merged into the stored object (the other
 * languages stay). The row is read inside the write's transaction, and the
 * UPDATE is conditional on its version, so a concurrent change is a 412. */
static int i18n_value(struct req *r, const struct rt *t, const struct rfield *f, str_t id, const json_t *v,
                      json_t **out)
{
    static const char *const names[] = {"en", "tr", "pl"};
    *out = NULL;
    if (!json_is_string(v)) {
        *out = json_incref((json_t *)v);
        return DB_OK;
    }
    json_t *obj = NULL;
    if (id.len) {
        struct buf sql = BUF_INIT(BUF_MAX_SQL);
        struct db_res *res;
        (void)buf_printf(&sql, "SELECT %s FROM %s WHERE id = ?", f->name, t->res->table);
        int rc = buf_ok(&sql) ? db_query(r->db, buf_cstr(&sql), DB_ARGS(DBA_TEXT(id)), &res) : DB_ERR;
        buf_free(&sql);
        if (rc != DB_OK)
            return rc;
        if ((rc = db_next(res)) == 1 && !db_isnull(res, 0)) {
            str_t stored = db_text(res, 0);
            obj = json_loadb(stored.p, stored.len, 0, NULL);
        }
        db_res_free(res);
        if (rc < 0) {
            json_decref(obj);
            return rc;
        }
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        obj = json_object();
    }
    json_object_set(obj, names[resource__lang(r)], (json_t *)v);
    *out = obj;
    return DB_OK;
}

/* Bind f's value v as the next argument (ph: its placeholder). DB_OK or a db_rc. */
static int add_value(struct req *r, const struct rt *t, const struct rfield *f, str_t id, const json_t *v,
                     struct buf *tmp, const char **ph, db_arg *args, int cap, int *na, int *full)
{
    json_t *o = NULL;
    if (f->type == RF_I18N && json_is_string(v)) {
        int rc = i18n_value(r, t, f, id, v, &o);
        if (rc != DB_OK)
            return rc;
        v = o;
    }
    *full |= args_add(args, na, cap, to_arg(f, v, tmp, ph));
    json_decref(o);
    return DB_OK;
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
    struct buf tmp[RESOURCE_MAX_FIELDS];
    db_arg args[RESOURCE_MAX_FIELDS + 8];
    int na = 0, full = 0;
    int64_t now = time_now_ms();
    int rc = DB_OK;
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
        if ((rc = add_value(r, t, f, STR_NULL, v, &tmp[i], &ph, args, (int)ARRAY_LEN(args), &na, &full)) != DB_OK)
            break;
        (void)buf_printf(&cols, ", %s", f->name);
        (void)buf_printf(&vals, ", %s", ph);
    }
    (void)buf_printf(&sql, "INSERT INTO %s (%s) VALUES (%s)", res->table, buf_cstr(&cols), buf_cstr(&vals));
    if (rc == DB_OK)
        rc = buf_ok(&sql) && !full ? db_exec(db, buf_cstr(&sql), args, (size_t)na, NULL) : DB_ERR;
    for (int i = 0; i < t->nfields; i++)
        buf_free(&tmp[i]);
    buf_free(&cols);
    buf_free(&vals);
    buf_free(&sql);
    if (rc == DB_OK && res->after_write)
        rc = res->after_write(r, db, res, RA_CREATE, c->sid);
    if (rc == DB_OK && resource__have_hooks()) {
        json_decref(c->after);
        c->after = resource__row_json(&c->who, db, t, c->sid);
        rc = resource__run_hooks(RES_HOOK_TX, r, db, t, RA_CREATE, c->sid, NULL, c->after);
    }
    return write_rc(r, t, rc);
}

static int respond_row(struct req *r, const struct rt *t, str_t id, int status)
{
    struct caller who = resource_caller(r);
    struct db_res *row;
    int rc = resource__select_one(&who, r->db, t, id, &row);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (!row) /* written but not visible to its writer (e.g. a public_where it fails) */
        return http_fail(r, 404, "NOT_FOUND", "no such %s", t->res->singular);
    resource_respond_returned(r, t->res, row, status);
    db_res_free(row);
    return 0;
}

const char *resource_returning_cols(const struct resource *res)
{
    const struct rt *t = resource__rt_of(res);
    ASSERT(t);
    return t->rcols;
}

void resource_respond_returned(struct req *r, const struct resource *res, struct db_res *row, int status)
{
    const struct rt *t = resource__rt_of(res);
    enum lang lang = resource_caller(r).lang;
    struct buf et = BUF_INIT(64);
    ASSERT(t);
    resource__etag_of(t, db_int(row, 1), lang, &et);
    req_header(r, "etag", buf_str(&et));
    buf_free(&et);
    resource__write_row(&r->w, t, row, lang);
    r->status = status;
}

int resource_respond(struct req *r, const struct resource *res, str_t id, int status)
{
    const struct rt *t = resource__rt_of(res);
    ASSERT(t);
    return respond_row(r, t, id, status);
}

static bool if_match(struct req *r, const struct rt *t, int64_t version)
{
    str_t im = req_header_get(r, "if-match");
    if (!im.p)
        return true;
    struct buf et = BUF_INIT(64);
    resource__etag_of(t, version, resource__lang(r), &et);
    bool ok = http_etag_matches(im, buf_str(&et));
    buf_free(&et);
    return ok;
}

bool resource_if_match(struct req *r, const struct resource *res, int64_t version)
{
    const struct rt *t = resource__rt_of(res);
    ASSERT(t);
    return if_match(r, t, version);
}

int resource__h_create(struct req *r)
{
    const struct rt *t = r->route->ctx;
    return resource_create(r, t->res);
}

int resource_create(struct req *r, const struct resource *res)
{
    const struct rt *t = resource__rt_of(res);
    struct write_ctx c = {.who = resource_caller(r), .t = t};
    ASSERT(t);
    unsigned roles = resource_role_bits(&c.who);
    if (res->create == RP_AUTH && roles == ROLE_GUEST && !res->create_guests)
        return http_fail(r, 403, "FORBIDDEN", "guests cannot create %s", res->name);
    if (!resource__may_write(&c.who, res->create, r->user_id))
        return http_fail(r, 403, "FORBIDDEN", "you may not create %s", res->name);
    if (check_body_rules(r, t, r->body))
        return HTTP_EFAIL;
    uuid7_str(c.id);
    c.sid = str_c(c.id);
    if (res->check && res->check(r, res, RA_CREATE, r->body, STR_NULL))
        return HTTP_EFAIL;
    int rc = req_tx(r, DB_TX_WRITE, tx_create, &c);
    if (rc == 0)
        resource_cache_bump(res);
    if (rc == 0 && resource__have_hooks())
        (void)resource__run_hooks(RES_HOOK_COMMIT, r, r->db, t, RA_CREATE, c.sid, NULL, c.after);
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
    int rc = resource__select_one(&c->who, r->db, c->t, c->sid, &row);
    if (rc != DB_OK)
        return rc;
    if (!row)
        return http_fail(r, 404, "NOT_FOUND", "no such %s", sing);
    bool allowed = resource__may_write(&c->who, p, db_text(row, 4));
    c->version = db_int(row, 1);
    db_res_free(row);
    if (!allowed)
        return http_fail(r, 403, "FORBIDDEN", "you may not change this %s", sing);
    if (!if_match(r, c->t, c->version))
        return precondition_failed(r, c->t);
    if (resource__have_hooks()) {
        json_decref(c->before);
        c->before = resource__row_json(&c->who, r->db, c->t, c->sid);
    }
    return DB_OK;
}

static int tx_update(struct req *r, void *arg)
{
    struct write_ctx *c = arg;
    struct db *db = r->db;
    const struct rt *t = c->t;
    const struct resource *res = t->res;
    struct buf sql = BUF_INIT(BUF_MAX_SQL), tmp[RESOURCE_MAX_FIELDS];
    db_arg args[RESOURCE_MAX_FIELDS + 8];
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
        if ((rc = add_value(r, t, f, c->sid, v, &tmp[i], &ph, args, (int)ARRAY_LEN(args), &na, &full)) != DB_OK)
            break;
        (void)buf_printf(&sql, ", %s = %s", f->name, ph);
    }
    (void)buf_puts(&sql, " WHERE id = ? AND version = ?");
    full |= ARGS_ADD(args, na, DBA_TEXT(c->sid));
    full |= ARGS_ADD(args, na, DBA_INT(c->version));
    if (rc == DB_OK)
        rc = buf_ok(&sql) && !full ? db_exec(db, buf_cstr(&sql), args, (size_t)na, &changed) : DB_ERR;
    for (int i = 0; i < t->nfields; i++)
        buf_free(&tmp[i]);
    buf_free(&sql);
    if (rc == DB_OK && changed != 1) /* changed between our read and our write */
        return precondition_failed(r, t);
    if (rc == DB_OK && res->after_write)
        rc = res->after_write(r, db, res, RA_UPDATE, c->sid);
    if (rc == DB_OK && resource__have_hooks()) {
        json_decref(c->after);
        c->after = resource__row_json(&c->who, db, t, c->sid);
        rc = resource__run_hooks(RES_HOOK_TX, r, db, t, RA_UPDATE, c->sid, c->before, c->after);
    }
    return write_rc(r, t, rc);
}

int resource__h_update(struct req *r)
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
    if (rc == 0)
        resource_cache_bump(res);
    if (rc == 0 && resource__have_hooks())
        (void)resource__run_hooks(RES_HOOK_COMMIT, r, r->db, t, RA_UPDATE, c.sid, c.before, c.after);
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
    if (rc == DB_OK && resource__have_hooks())
        rc = resource__run_hooks(RES_HOOK_TX, r, db, c->t, RA_DELETE, c->sid, c->before, NULL);
    return write_rc(r, c->t, rc);
}

int resource__h_delete(struct req *r)
{
    const struct rt *t = r->route->ctx;
    struct write_ctx c = {.who = resource_caller(r), .t = t, .sid = req_param(r, "id")};
    if (!uuid_valid(c.sid))
        return http_fail(r, 404, "NOT_FOUND", "no such %s", t->res->singular);
    int rc = req_tx(r, DB_TX_WRITE, tx_delete, &c);
    if (rc == 0)
        resource_cache_bump(t->res);
    if (rc == 0 && resource__have_hooks())
        (void)resource__run_hooks(RES_HOOK_COMMIT, r, r->db, t, RA_DELETE, c.sid, c.before, NULL);
    json_decref(c.before);
    if (rc)
        return rc;
    r->status = 204;
    return 0;
}
