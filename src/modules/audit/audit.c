/*
 * audit.c — the audit module: the HTTP face of the audit service
 * (src/audit): audit_record_req() (an entry with the request's context),
 * the admin routes, the test-only route, and the MAC key read from the
 * environment (TEMEL_SECRET_KEY) by its config hook.
 *
 *   GET  /api/v1/admin/audit-logs          newest first, filtered, paginated
 *   GET  /api/v1/admin/audit-logs/verify   the first broken link, if any
 *   POST /api/v1/_test/audit               one entry (TEMEL_ENV=test only)
 */
#include "modules/audit/audit.h"

#include <sodium.h>

#include "core/module.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "db/db.h"
#include "http/http.h"
#include "modules/users/identity.h"

#include "core/banned.h"

/* Fill the request context into e; endpoint memory comes from r->pool. */
static void fill_from_req(struct req *r, struct audit_entry *e)
{
    if (!e->actor_id.len)
        e->actor_id = r->user_id;
    e->ip = req_client_ip(r);
    e->user_agent = req_header_get(r, "user-agent");
    if (!e->user_agent.p)
        e->user_agent = STRLIT("");
    if (r->route) {
        size_t ml = strlen(r->route->method), pl = strlen(r->route->pattern);
        char *p = h2o_mem_alloc_pool(r->pool, st_add(st_add(ml, pl), 2));
        memcpy(p, r->route->method, ml);
        p[ml] = ' ';
        memcpy(p + ml + 1, r->route->pattern, pl);
        p[ml + 1 + pl] = '\0';
        e->endpoint = str_make(p, ml + 1 + pl);
    } else {
        e->endpoint = STRLIT("");
    }
    e->request_id = str_make(r->request_id, r->request_id_len);
}

int audit_record_req(struct req *r, struct audit_entry *e)
{
    fill_from_req(r, e);
    return audit_record(r->db, e);
}

int audit_record_staff(struct req *r, const char *category, const char *action, const char *target_type,
                       str_t target_id)
{
    if (!identity_is_staff(r))
        return DB_OK;
    struct audit_entry e = {.action = action, .category = category, .target_type = target_type,
                            .target_id = target_id, .success = true};
    return audit_record_req(r, &e);
}

/* ---- routes ------------------------------------------------------------- */

static void write_entry(struct jw *w, const struct db_res *res)
{
    struct audit_row row;
    str_t hash;
    audit_row_read(res, &row, &hash, NULL);
    jw_obj_begin(w);
    jw_key(w, "id");
    jw_str(w, row.id);
    jw_key(w, "seq");
    jw_int(w, row.seq);
    jw_key(w, "actor_id");
    row.actor_id.p ? jw_str(w, row.actor_id) : jw_null(w);
    jw_key(w, "action");
    jw_str(w, row.action);
    jw_key(w, "category");
    jw_str(w, row.category);
    jw_key(w, "target_type");
    row.target_type.p ? jw_str(w, row.target_type) : jw_null(w);
    jw_key(w, "target_id");
    row.target_id.p ? jw_str(w, row.target_id) : jw_null(w);
    const str_t js[2] = {row.before_json, row.after_json};
    const char *const names[2] = {"before", "after"};
    for (int i = 0; i < 2; i++) {
        json_t *tmp = NULL;
        jw_key(w, names[i]);
        if (!js[i].p)
            jw_null(w);
        else if (json_parse_strict(js[i], &tmp, NULL) == JSON_IN_OK)
            jw_raw(w, js[i]); /* the stored canonical text, byte for byte */
        else
            jw_str(w, js[i]); /* edited in the database into non-JSON: shown, not trusted */
        json_decref(tmp);
    }
    jw_key(w, "ip");
    jw_str(w, row.ip);
    jw_key(w, "user_agent");
    jw_str(w, row.user_agent);
    jw_key(w, "endpoint");
    jw_str(w, row.endpoint);
    jw_key(w, "request_id");
    jw_str(w, row.request_id);
    jw_key(w, "success");
    jw_bool(w, row.success);
    jw_key(w, "created_at");
    jw_time(w, row.created_at_ms);
    jw_key(w, "prev_hash");
    jw_str(w, row.prev_hash);
    jw_key(w, "hash");
    jw_str(w, hash);
    jw_obj_end(w);
}

static const char *const eq_filters[] = {"actor_id", "action", "category", "target_type", "target_id"};
#define LIST_MAX_ARGS 12

static int h_list(struct req *r)
{
    static const char *const allowed[] = {"actor_id", "action", "category", "target_type", "target_id",
                                          "success", "created_at[gte]", "created_at[lte]", NULL};
    struct buf *where = req_buf(r, 1024);
    db_arg args[LIST_MAX_ARGS];
    size_t n = 0;
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    (void)buf_puts(where, " WHERE 1 = 1");
    for (size_t j = 0; j < ARRAY_LEN(eq_filters); j++) {
        const str_t *v = req_query(r, eq_filters[j]);
        if (!v)
            continue;
        if (v->len > AUDIT_MAX_TEXT) {
            return http_invalid(r, eq_filters[j], "is too long");
        }
        (void)buf_printf(where, " AND %s = ?", eq_filters[j]); /* name from the whitelist above */
        args[n++] = DBA_TEXT(*v);
    }
    const str_t *succ = req_query(r, "success");
    if (succ) {
        if (!str_is(*succ, "true") && !str_is(*succ, "false")) {
            return http_invalid(r, "success", "must be true or false");
        }
        (void)buf_puts(where, " AND success = ?");
        args[n++] = DBA_BOOL(str_is(*succ, "true"));
    }
    static const char *const time_keys[2] = {"created_at[gte]", "created_at[lte]"};
    static const char *const time_ops[2] = {">=", "<="};
    for (int j = 0; j < 2; j++) {
        const str_t *v = req_query(r, time_keys[j]);
        int64_t ms;
        if (!v)
            continue;
        if (time_parse_rfc3339(*v, &ms)) {
            return http_invalid(r, time_keys[j], "must be an RFC 3339 date or time");
        }
        (void)buf_printf(where, " AND created_at %s ms_ts(?)", time_ops[j]);
        args[n++] = DBA_INT(ms);
    }

    const struct http_list_query q = {AUDIT_ROW_COLS, "FROM audit_logs", buf_cstr(where), "seq DESC", write_entry};
    return http_list(r, &q, args, n, ARRAY_LEN(args));
}

static int h_verify(struct req *r)
{
    struct audit_verify v;
    int rc = audit_verify(r->db, &v);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    jw_obj_begin(&r->w);
    jw_key(&r->w, "ok");
    jw_bool(&r->w, v.ok);
    jw_key(&r->w, "entries");
    jw_int(&r->w, v.entries);
    jw_key(&r->w, "keyed_entries");
    jw_int(&r->w, v.keyed_entries);
    if (!v.ok) {
        jw_key(&r->w, "broken_at");
        jw_obj_begin(&r->w);
        jw_key(&r->w, "seq");
        jw_int(&r->w, v.broken_seq);
        jw_key(&r->w, "id");
        v.broken_id[0] ? jw_cstr(&r->w, v.broken_id) : jw_null(&r->w);
        jw_obj_end(&r->w);
        jw_key(&r->w, "reason");
        jw_cstr(&r->w, v.reason);
    }
    jw_obj_end(&r->w);
    return 0;
}

/* POST /api/v1/_test/audit (TEMEL_ENV=test only): one entry through the same
 * path a module uses (request context + append in a write transaction). */
struct test_ctx {
    struct audit_entry e;
    int64_t seq;
    char id[UUID_STR_LEN + 1];
};

static int tx_test_record(struct req *r, void *arg)
{
    struct test_ctx *c = arg;
    return audit_append(r->db, &c->e, &c->seq, c->id);
}

static const json_t *json_or_null(const json_t *v) { return v && !json_is_null(v) ? v : NULL; }

static int h_test_record(struct req *r)
{
    const json_t *b = r->body, *tid = json_object_get(b, "target_id"), *succ = json_object_get(b, "success");
    struct test_ctx c = {0};
    c.e.action = json_string_value(json_object_get(b, "action"));
    c.e.category = json_string_value(json_object_get(b, "category"));
    c.e.target_type = json_string_value(json_object_get(b, "target_type"));
    if (tid)
        c.e.target_id = str_make(json_string_value(tid), json_string_length(tid));
    c.e.before = json_or_null(json_object_get(b, "before"));
    c.e.after = json_or_null(json_object_get(b, "after"));
    c.e.success = succ ? json_is_true(succ) : true;
    fill_from_req(r, &c.e);
    if (req_tx(r, DB_TX_WRITE, tx_test_record, &c))
        return HTTP_EFAIL;
    r->status = 201;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "id");
    jw_cstr(&r->w, c.id);
    jw_key(&r->w, "seq");
    jw_int(&r->w, c.seq);
    jw_obj_end(&r->w);
    return 0;
}

static const struct json_field test_fields[] = {
    {.name = "action", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 100},
    {.name = "category", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 100},
    {.name = "target_type", .type = JF_STRING, .min = 0, .max = 100},
    {.name = "target_id", .type = JF_STRING, .min = 0, .max = 200},
    {.name = "before", .type = JF_ANY, .flags = JF_NULLABLE},
    {.name = "after", .type = JF_ANY, .flags = JF_NULLABLE},
    {.name = "success", .type = JF_BOOL},
    {0},
};
static const struct json_schema test_schema = {.fields = test_fields};

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/admin/audit-logs", .handler = h_list, .auth = AUTH_ADMIN, .rl = RL_READ,
     .flags = ROUTE_PAGINATED,
     .summary = "Audit log, newest first (filters: actor_id, action, category, target_type, target_id, success, "
                "created_at[gte], created_at[lte])",
     .tag = "admin",
     .params = OPENAPI_JSON([
         {"name" : "actor_id", "in" : "query", "schema" : {"type" : "string"}},
         {"name" : "action", "in" : "query", "schema" : {"type" : "string"}},
         {"name" : "category", "in" : "query", "schema" : {"type" : "string"}},
         {"name" : "target_type", "in" : "query", "schema" : {"type" : "string"}},
         {"name" : "target_id", "in" : "query", "schema" : {"type" : "string"}},
         {"name" : "success", "in" : "query", "schema" : {"type" : "boolean"}},
         {"name" : "created_at[gte]", "in" : "query", "schema" : {"type" : "string", "format" : "date-time"}},
         {"name" : "created_at[lte]", "in" : "query", "schema" : {"type" : "string", "format" : "date-time"}}
     ]),
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [
             "id", "seq", "actor_id", "action", "category", "target_type", "target_id", "before", "after", "ip",
             "user_agent", "endpoint", "request_id", "success", "created_at", "prev_hash", "hash"
         ],
         "properties" : {
             "id" : {"type" : "string", "format" : "uuid"},
             "seq" : {"type" : "integer", "minimum" : 1},
             "actor_id" : {"type" : [ "string", "null" ]},
             "action" : {"type" : "string"},
             "category" : {"type" : "string"},
             "target_type" : {"type" : [ "string", "null" ]},
             "target_id" : {"type" : [ "string", "null" ]},
             "before" : {"description" : "the target before the change (JSON), or null"},
             "after" : {"description" : "the target after the change (JSON), or null"},
             "ip" : {"type" : "string"},
             "user_agent" : {"type" : "string"},
             "endpoint" : {"type" : "string", "description" : "METHOD /pattern"},
             "request_id" : {"type" : "string"},
             "success" : {"type" : "boolean"},
             "created_at" : {"type" : "string", "format" : "date-time"},
             "prev_hash" : {"type" : "string"},
             "hash" : {"type" : "string"}
         }
     })},
    {.method = "GET", .pattern = "/api/v1/admin/audit-logs/verify", .handler = h_verify, .auth = AUTH_ADMIN,
     .rl = RL_READ, .summary = "Verify the audit hash chain; the first broken link if any", .tag = "admin",
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "ok", "entries", "keyed_entries" ],
         "properties" : {
             "ok" : {"type" : "boolean"},
             "entries" : {"type" : "integer", "minimum" : 0},
             "keyed_entries" : {"type" : "integer", "minimum" : 0},
             "broken_at" : {
                 "type" : "object",
                 "required" : [ "seq", "id" ],
                 "properties" : {"seq" : {"type" : "integer"}, "id" : {"type" : [ "string", "null" ]}}
             },
             "reason" : {"type" : "string"}
         }
     })},
    {.method = "POST", .pattern = "/api/v1/_test/audit", .handler = h_test_record, .auth = AUTH_OPTIONAL,
     .rl = RL_WRITE, .body_max = 300u << 10, .input = &test_schema, .summary = "Record one audit entry (test only)",
     .tag = "test", .flags = ROUTE_TEST_ONLY},
};

static void register_routes(void) { router_add(routes, ARRAY_LEN(routes)); }

/* The MAC key, for every command (the CLI may record entries too). */
static int config(const struct config *cfg, struct buf *err)
{
    unsigned char key[SECRET_KEY_BYTES];
    if (secret_derive(cfg, "temel.audit.chain-mac.v1", key, err))
        return -1;
    audit_set_key(key);
    sodium_memzero(key, sizeof(key));
    return 0;
}

const struct module audit_module = {
    .name = "audit",
    .config = config,
    .register_routes = register_routes,
};
