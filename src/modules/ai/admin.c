/*
 * admin.c — admin routes of the ai module: providers (base URL, wire format,
 * model map), their keys (write-only: a key is sealed on arrival and never
 * leaves the server again — not in responses, logs, errors or the audit
 * log), anti-abuse flags, and AI-usage analytics.
 */
#include <sodium.h>

#include "core/timeutil.h"
#include "core/uuid.h"
#include "modules/ai/ai_internal.h"
#include "modules/audit/audit.h"

#include "db/dbjson.h"

#include "core/banned.h"

/* ---- providers ---- */

static int write_provider(struct db *db, str_t id, struct jw *w, bool *found)
{
    struct db_res *res;
    static const struct http_col cols[] = {{"id", COL_TEXT},          {"name", COL_TEXT},
                                           {"kind", COL_TEXT},        {"base_url", COL_TEXT},
                                           {"enabled", COL_BOOL},     {"cache", COL_BOOL},
                                           {"created_at", COL_TIME},  {"updated_at", COL_TIME},
                                           {NULL, COL_TEXT}};
    int rc = db_query(db,
                      "SELECT id, name, kind, base_url, enabled, cache_enabled, ts_ms(created_at), ts_ms(updated_at) "
                      "FROM ai_providers WHERE id = ?",
                      DB_ARGS(DBA_TEXT(id)), &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    *found = rc == 1;
    if (rc != 1) {
        db_res_free(res);
        return rc < 0 ? rc : DB_OK;
    }
    jw_obj_begin(w);
    http_write_cols(w, res, cols);
    db_res_free(res);
    jw_key(w, "models");
    jw_arr_begin(w);
    rc = db_query(db, "SELECT name, upstream, is_default, price_in, price_out FROM ai_models WHERE provider_id = ? "
                      "ORDER BY name",
                  DB_ARGS(DBA_TEXT(id)), &res);
    if (rc != DB_OK)
        return rc;
    while ((rc = db_next(res)) == 1) {
        jw_obj_begin(w);
        jw_key(w, "name");
        jw_str(w, db_text(res, 0));
        jw_key(w, "upstream");
        jw_str(w, db_text(res, 1));
        jw_key(w, "default");
        jw_bool(w, db_int(res, 2) != 0);
        jw_key(w, "price_in");
        jw_int(w, db_int(res, 3));
        jw_key(w, "price_out");
        jw_int(w, db_int(res, 4));
        jw_obj_end(w);
    }
    db_res_free(res);
    if (rc < 0)
        return rc;
    jw_arr_end(w);
    jw_key(w, "keys");
    jw_arr_begin(w);
    rc = db_query(db,
                  "SELECT id, label, status, retired_reason, ts_ms(created_at), ts_ms(retired_at) FROM ai_provider_keys "
                  "WHERE provider_id = ? ORDER BY id",
                  DB_ARGS(DBA_TEXT(id)), &res);
    if (rc != DB_OK)
        return rc;
    while ((rc = db_next(res)) == 1) {
        jw_obj_begin(w);
        jw_key(w, "id");
        jw_str(w, db_text(res, 0));
        jw_key(w, "label");
        jw_str(w, db_text(res, 1));
        jw_key(w, "status");
        jw_str(w, db_text(res, 2));
        jw_key(w, "retired_reason");
        jw_db_text(w, res, 3);
        jw_key(w, "created_at");
        jw_time(w, db_int(res, 4));
        jw_key(w, "retired_at");
        jw_db_time(w, res, 5);
        jw_obj_end(w);
    }
    db_res_free(res);
    if (rc < 0)
        return rc;
    jw_arr_end(w);
    jw_obj_end(w);
    return DB_OK;
}

static int write_provider_row(struct req *r, const struct db_res *res)
{
    bool found;
    return write_provider(r->db, db_text(res, 0), &r->w, &found);
}

static int h_providers_list(struct req *r)
{
    static const char *const allowed[] = {NULL};
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    const struct http_list_query q = {"id", "FROM ai_providers", "", "name, id", NULL};
    db_arg args[2];
    return http_list_each(r, &q, write_provider_row, args, 0, ARRAY_LEN(args));
}

static bool name_ok(str_t s)
{
    if (s.len < 1 || s.len > 64)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

static str_t jstr(const json_t *v) { return str_make(json_string_value(v), json_string_length(v)); }

/* Validate the models array (422 on error). */
static int check_models(struct req *r, const json_t *models)
{
    size_t i;
    json_t *m;
    int defaults = 0;
    json_array_foreach(models, i, m) {
        const char *k;
        json_t *v;
        if (!json_is_object(m))
            return http_invalid(r, "models", "each model is {name, upstream, default?, price_in?, price_out?}");
        json_object_foreach(m, k, v) {
            if (strcmp(k, "name") && strcmp(k, "upstream") && strcmp(k, "default") && strcmp(k, "price_in") &&
                strcmp(k, "price_out"))
                return http_invalid(r, "models", "unknown field in a model (allowed: name, upstream, default, "
                                                 "price_in, price_out)");
        }
        const json_t *name = json_object_get(m, "name"), *up = json_object_get(m, "upstream"),
                     *def = json_object_get(m, "default"), *pin = json_object_get(m, "price_in"),
                     *pout = json_object_get(m, "price_out");
        if (!json_is_string(name) || !ai__upstream_ok(jstr(name)))
            return http_invalid(r, "models.name", "must be 1..100 characters of A-Z a-z 0-9 . _ : -");
        if (!json_is_string(up) || !ai__upstream_ok(jstr(up)))
            return http_invalid(r, "models.upstream", "must be 1..100 characters of A-Z a-z 0-9 . _ : -");
        if (def && !json_is_boolean(def))
            return http_invalid(r, "models.default", "must be a boolean");
        if ((pin && (!json_is_integer(pin) || json_integer_value(pin) < 0 || json_integer_value(pin) > 1000000000)) ||
            (pout && (!json_is_integer(pout) || json_integer_value(pout) < 0 || json_integer_value(pout) > 1000000000)))
            return http_invalid(r, "models.price_in", "prices are integers in micro-USD per 1000 tokens");
        defaults += json_is_true(def);
        for (size_t k2 = 0; k2 < i; k2++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(models, k2), "name")),
                        json_string_value(name)))
                return http_invalid(r, "models.name", "appears twice");
    }
    if (defaults > 1)
        return http_invalid(r, "models.default", "at most one model may be the default");
    return 0;
}

static int insert_models(struct db *db, str_t provider_id, const json_t *models)
{
    size_t i;
    json_t *m;
    int rc = DB_OK;
    bool has_default = false;
    json_array_foreach(models, i, m) {
        const json_t *pin = json_object_get(m, "price_in"), *pout = json_object_get(m, "price_out");
        bool def = json_is_true(json_object_get(m, "default"));
        has_default = has_default || def;
        rc = db_exec(db,
                     "INSERT INTO ai_models (name, provider_id, upstream, is_default, price_in, price_out) "
                     "VALUES (?, ?, ?, ?, ?, ?)",
                     DB_ARGS(DBA_TEXT(jstr(json_object_get(m, "name"))), DBA_TEXT(provider_id),
                             DBA_TEXT(jstr(json_object_get(m, "upstream"))), DBA_BOOL(def),
                             DBA_INT(pin ? json_integer_value(pin) : 0), DBA_INT(pout ? json_integer_value(pout) : 0)),
                     NULL);
        if (rc != DB_OK)
            return rc;
    }
    if (has_default) /* one default across all providers */
        rc = db_exec(db, "UPDATE ai_models SET is_default = false WHERE provider_id <> ? AND is_default = true",
                     DB_ARGS(DBA_TEXT(provider_id)), NULL);
    return rc;
}

/* The audited view of a provider: no keys, ever. */
static json_t *provider_view(struct db *db, str_t id, int *rc)
{
    struct buf b = BUF_INIT(1u << 20);
    struct jw w;
    bool found = false;
    json_t *v = NULL;
    jw_init(&w, &b);
    *rc = write_provider(db, id, &w, &found);
    if (*rc == DB_OK && found && buf_ok(&b) && json_parse_strict(buf_str(&b), &v, NULL) == JSON_IN_OK)
        json_object_del(v, "keys");
    buf_free(&b);
    return v;
}

struct prov_ctx {
    str_t id;
    char new_id[UUID_STR_LEN + 1];
};

static int tx_provider_create(struct req *r, void *arg)
{
    struct prov_ctx *c = arg;
    struct db *db = r->db;
    const json_t *en = json_object_get(r->body, "enabled"), *cache = json_object_get(r->body, "cache");
    int64_t now = time_now_ms();
    int rc;
    uuid7_str(c->new_id);
    rc = db_exec(db,
                 "INSERT INTO ai_providers (id, name, kind, base_url, enabled, cache_enabled, created_at, updated_at) "
                 "VALUES (?, ?, ?, ?, ?, ?, ms_ts(?), ms_ts(?))",
                 DB_ARGS(DBA_CSTR(c->new_id), DBA_TEXT(jstr(json_object_get(r->body, "name"))),
                         DBA_TEXT(jstr(json_object_get(r->body, "kind"))),
                         DBA_TEXT(jstr(json_object_get(r->body, "base_url"))), DBA_BOOL(!en || json_is_true(en)),
                         DBA_BOOL(!cache || json_is_true(cache)), DBA_INT(now), DBA_INT(now)),
                 NULL);
    if (rc == DB_OK)
        rc = insert_models(db, str_c(c->new_id), json_object_get(r->body, "models"));
    if (rc == DB_ECONSTRAINT)
        return http_fail(r, 409, "CONFLICT", "a provider with this name, or a model with one of these names, exists");
    json_t *after = rc == DB_OK ? provider_view(db, str_c(c->new_id), &rc) : NULL;
    if (rc == DB_OK) {
        struct audit_entry e = {.action = "ai.provider_create", .category = "ai", .target_type = "ai_provider",
                                .target_id = str_c(c->new_id), .after = after, .success = true};
        rc = audit_record_req(r, &e);
    }
    json_decref(after);
    return rc;
}

static int h_provider_create(struct req *r)
{
    if (!name_ok(jstr(json_object_get(r->body, "name"))))
        return http_invalid(r, "name", "must be 1..64 characters of a-z 0-9 - _");
    if (!ai__base_url_ok(jstr(json_object_get(r->body, "base_url"))))
        return http_invalid(r, "base_url", "must be an http(s) URL without credentials, query or fragment");
    if (check_models(r, json_object_get(r->body, "models")))
        return HTTP_EFAIL;
    struct prov_ctx c = {0};
    if (req_tx(r, DB_TX_WRITE, tx_provider_create, &c))
        return HTTP_EFAIL;
    bool found;
    r->status = 201;
    return http_rc(r, write_provider(r->db, str_c(c.new_id), &r->w, &found));
}

static int tx_provider_patch(struct req *r, void *arg)
{
    struct prov_ctx *c = arg;
    struct db *db = r->db;
    const json_t *en = json_object_get(r->body, "enabled"), *base = json_object_get(r->body, "base_url"),
                 *models = json_object_get(r->body, "models"), *cache = json_object_get(r->body, "cache");
    int rc;
    json_t *before = provider_view(db, c->id, &rc), *after = NULL;
    if (rc != DB_OK)
        return rc;
    if (!before)
        return http_fail(r, 404, "NOT_FOUND", "no such provider");
    int64_t now = time_now_ms();
    rc = db_exec(db, "UPDATE ai_providers SET updated_at = ms_ts(?) WHERE id = ?", DB_ARGS(DBA_INT(now), DBA_TEXT(c->id)),
                 NULL);
    if (rc == DB_OK && en)
        rc = db_exec(db, "UPDATE ai_providers SET enabled = ? WHERE id = ?", DB_ARGS(DBA_BOOL(json_is_true(en)), DBA_TEXT(c->id)),
                     NULL);
    if (rc == DB_OK && cache) /* off: no answer of this provider is served from, or stored in, the cache */
        rc = db_exec(db, "UPDATE ai_providers SET cache_enabled = ? WHERE id = ?",
                     DB_ARGS(DBA_BOOL(json_is_true(cache)), DBA_TEXT(c->id)), NULL);
    if (rc == DB_OK && base)
        rc = db_exec(db, "UPDATE ai_providers SET base_url = ? WHERE id = ?", DB_ARGS(DBA_TEXT(jstr(base)), DBA_TEXT(c->id)),
                     NULL);
    if (rc == DB_OK && models) {
        rc = db_exec(db, "DELETE FROM ai_models WHERE provider_id = ?", DB_ARGS(DBA_TEXT(c->id)), NULL);
        if (rc == DB_OK)
            rc = insert_models(db, c->id, models);
    }
    if (rc == DB_ECONSTRAINT) {
        json_decref(before);
        return http_fail(r, 409, "CONFLICT", "a model with one of these names exists");
    }
    if (rc == DB_OK)
        after = provider_view(db, c->id, &rc);
    if (rc == DB_OK) {
        struct audit_entry e = {.action = "ai.provider_update", .category = "ai", .target_type = "ai_provider",
                                .target_id = c->id, .before = before, .after = after, .success = true};
        rc = audit_record_req(r, &e);
    }
    json_decref(before);
    json_decref(after);
    return rc;
}

static int h_provider_patch(struct req *r)
{
    const json_t *base = json_object_get(r->body, "base_url"), *models = json_object_get(r->body, "models");
    if (base && !ai__base_url_ok(jstr(base)))
        return http_invalid(r, "base_url", "must be an http(s) URL without credentials, query or fragment");
    if (models && check_models(r, models))
        return HTTP_EFAIL;
    struct prov_ctx c = {.id = req_param(r, "id")};
    if (req_tx(r, DB_TX_WRITE, tx_provider_patch, &c))
        return HTTP_EFAIL;
    bool found;
    return http_rc(r, write_provider(r->db, c.id, &r->w, &found));
}

/* ---- keys ---- */

struct key_ctx {
    str_t provider_id, key_id;
    char new_id[UUID_STR_LEN + 1];
    int64_t now;
};

static int provider_exists(struct db *db, str_t id, bool *found)
{
    int64_t one;
    return db_query_int(db, "SELECT 1 FROM ai_providers WHERE id = ?", DB_ARGS(DBA_TEXT(id)), &one, found);
}

static int tx_key_add(struct req *r, void *arg)
{
    struct key_ctx *c = arg;
    struct db *db = r->db;
    const json_t *key = json_object_get(r->body, "key"), *label = json_object_get(r->body, "label");
    bool found;
    int rc = provider_exists(db, c->provider_id, &found);
    if (rc != DB_OK)
        return rc;
    if (!found)
        return http_fail(r, 404, "NOT_FOUND", "no such provider");
    struct buf sealed = BUF_INIT(8u * AI_KEY_MAX);
    ai__seal(jstr(key), &sealed);
    uuid7_str(c->new_id);
    c->now = time_now_ms();
    rc = db_exec(db,
                 "INSERT INTO ai_provider_keys (id, provider_id, label, secret, status, created_at) "
                 "VALUES (?, ?, ?, ?, 'active', ms_ts(?))",
                 DB_ARGS(DBA_CSTR(c->new_id), DBA_TEXT(c->provider_id), label ? DBA_TEXT(jstr(label)) : DBA_CSTR(""),
                         DBA_TEXT(buf_str(&sealed)), DBA_INT(c->now)),
                 NULL);
    sodium_memzero(sealed.ptr ? sealed.ptr : c->new_id, sealed.ptr ? sealed.len : 0);
    buf_free(&sealed);
    if (rc == DB_OK) {
        json_t *after = json_pack("{s:s,s:s%,s:s%,s:s}", "id", c->new_id, "provider_id", c->provider_id.p,
                                  c->provider_id.len, "label", label ? json_string_value(label) : "",
                                  label ? json_string_length(label) : 0, "status", "active");
        struct audit_entry e = {.action = "ai.key_add", .category = "ai", .target_type = "ai_provider_key",
                                .target_id = str_c(c->new_id), .after = after, .success = true};
        rc = audit_record_req(r, &e);
        json_decref(after);
    }
    return rc;
}

static int h_key_add(struct req *r)
{
    const json_t *key = json_object_get(r->body, "key");
    const char *k = json_string_value(key);
    for (size_t i = 0; i < json_string_length(key); i++)
        if ((unsigned char)k[i] <= ' ' || (unsigned char)k[i] >= 0x7f)
            return http_invalid(r, "key", "must be printable ASCII without spaces");
    struct key_ctx c = {.provider_id = req_param(r, "id")};
    if (req_tx(r, DB_TX_WRITE, tx_key_add, &c))
        return HTTP_EFAIL;
    const json_t *label = json_object_get(r->body, "label");
    r->status = 201;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "id");
    jw_cstr(&r->w, c.new_id);
    jw_key(&r->w, "provider_id");
    jw_str(&r->w, c.provider_id);
    jw_key(&r->w, "label");
    jw_str(&r->w, label ? jstr(label) : STRLIT(""));
    jw_key(&r->w, "status");
    jw_cstr(&r->w, "active");
    jw_key(&r->w, "created_at");
    jw_time(&r->w, c.now);
    jw_obj_end(&r->w);
    return 0;
}

static int tx_key_delete(struct req *r, void *arg)
{
    struct key_ctx *c = arg;
    struct db *db = r->db;
    struct db_res *res;
    int rc = db_query(db, "SELECT label, status FROM ai_provider_keys WHERE id = ? AND provider_id = ?",
                      DB_ARGS(DBA_TEXT(c->key_id), DBA_TEXT(c->provider_id)), &res);
    if (rc != DB_OK)
        return rc;
    json_t *before = NULL;
    if ((rc = db_next(res)) == 1)
        before = json_pack("{s:s%,s:s%,s:s,s:s}", "id", c->key_id.p, c->key_id.len, "provider_id", c->provider_id.p,
                           c->provider_id.len, "label", db_text(res, 0).p, "status", db_text(res, 1).p);
    db_res_free(res);
    if (rc < 0)
        return rc;
    if (!before)
        return http_fail(r, 404, "NOT_FOUND", "no such key for this provider");
    rc = db_exec(db, "DELETE FROM ai_provider_keys WHERE id = ?", DB_ARGS(DBA_TEXT(c->key_id)), NULL);
    if (rc == DB_OK) {
        struct audit_entry e = {.action = "ai.key_delete", .category = "ai", .target_type = "ai_provider_key",
                                .target_id = c->key_id, .before = before, .success = true};
        rc = audit_record_req(r, &e);
    }
    json_decref(before);
    return rc;
}

static int h_key_delete(struct req *r)
{
    struct key_ctx c = {.provider_id = req_param(r, "id"), .key_id = req_param(r, "key_id")};
    if (req_tx(r, DB_TX_WRITE, tx_key_delete, &c))
        return HTTP_EFAIL;
    r->status = 204;
    return 0;
}

/* ---- flags ---- */

static void write_flag(struct jw *w, const struct db_res *res)
{
    static const struct http_col cols[] = {
        {"id", COL_TEXT},    {"user_id", COL_TEXT}, {"email", COL_TEXT},     {"reason", COL_TEXT},
        {"score", COL_INT},  {"current_score", COL_INT}, {"signals", COL_JSON} /* written by abuse.c */,
        {"status", COL_TEXT}, {"created_at", COL_TIME}, {NULL, 0}};
    http_write_row(w, res, cols);
}

static int h_flags(struct req *r)
{
    static const char *const allowed[] = {"status", NULL};
    const str_t *status = req_query(r, "status");
    db_arg args[3];
    size_t n = 0;
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    if (status && !str_is(*status, "open") && !str_is(*status, "resolved"))
        return http_invalid(r, "status", "must be open or resolved");
    if (status)
        args[n++] = DBA_TEXT(*status);
    const struct http_list_query q = {
        "f.id, f.user_id, u.email, 'ai_abuse', f.score, COALESCE(s.score, 0), f.signals, f.status, "
        "ts_ms(f.created_at)",
        "FROM ai_flags f LEFT JOIN users u ON u.id = f.user_id LEFT JOIN ai_suspicion s ON s.user_id = f.user_id",
        status ? " WHERE f.status = ?" : "", "f.created_at DESC, f.id DESC", write_flag};
    return http_list(r, &q, args, n, ARRAY_LEN(args));
}

/* ---- analytics ---- */

/* Nearest-rank percentile of provider latency over [from, to) for one model
 * (all models when model.p == NULL), by an indexed ORDER BY … OFFSET. */
static int percentile(struct db *db, str_t model, int64_t from, int64_t to, int64_t n, int pct, int64_t *out)
{
    bool found;
    *out = 0;
    if (n <= 0)
        return DB_OK;
    int64_t rank = (n * pct + 99) / 100; /* 1-based */
    if (rank < 1)
        rank = 1;
    if (model.p)
        return db_query_int(db,
                            "SELECT latency_ms FROM ai_requests WHERE model = ? AND latency_ms IS NOT NULL AND NOT cached "
                            "AND created_at >= ms_ts(?) AND created_at < ms_ts(?) ORDER BY latency_ms LIMIT 1 OFFSET ?",
                            DB_ARGS(DBA_TEXT(model), DBA_INT(from), DBA_INT(to), DBA_INT(rank - 1)), out, &found);
    return db_query_int(db,
                        "SELECT latency_ms FROM ai_requests WHERE latency_ms IS NOT NULL AND NOT cached "
                        "AND created_at >= ms_ts(?) AND created_at < ms_ts(?) ORDER BY latency_ms LIMIT 1 OFFSET ?",
                        DB_ARGS(DBA_INT(from), DBA_INT(to), DBA_INT(rank - 1)), out, &found);
}

#define USAGE_COLS                                                                                                     \
    "count(*), sum(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END), sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), " \
    "sum(CASE WHEN cached THEN 1 ELSE 0 END), sum(tokens_in), sum(tokens_out), "                                        \
    "sum(CASE WHEN status = 'succeeded' AND NOT cached THEN cost ELSE 0 END), sum(usd_micros), "                       \
    "sum(CASE WHEN latency_ms IS NOT NULL AND NOT cached THEN 1 ELSE 0 END)"

static int write_usage(struct req *r, struct db_res *res, int first, str_t model, int64_t from, int64_t to)
{
    static const char *const names[] = {"requests", "succeeded", "failed", "cache_hits", "tokens_in", "tokens_out",
                                        "credits", "cost_usd_micros"};
    int64_t v[9], p50 = 0, p95 = 0;
    for (int i = 0; i < 9; i++)
        v[i] = db_int(res, first + i);
    for (int i = 0; i < 8; i++) {
        jw_key(&r->w, names[i]);
        jw_int(&r->w, v[i]);
    }
    jw_key(&r->w, "cache_hit_rate");
    jw_double(&r->w, v[0] ? (double)v[3] / (double)v[0] : 0.0);
    int rc = percentile(r->db, model, from, to, v[8], 50, &p50);
    if (rc == DB_OK)
        rc = percentile(r->db, model, from, to, v[8], 95, &p95);
    jw_key(&r->w, "latency_p50_ms");
    jw_int(&r->w, p50);
    jw_key(&r->w, "latency_p95_ms");
    jw_int(&r->w, p95);
    return rc;
}

static int h_ai_usage(struct req *r)
{
    int64_t from, to;
    if (ai__usage_range(r, &from, &to))
        return HTTP_EFAIL;
    struct db_res *res;
    /* totals first, on a statement of their own (the per-model percentiles run queries too) */
    int rc = db_query(r->db, "SELECT " USAGE_COLS " FROM ai_requests WHERE created_at >= ms_ts(?) AND created_at < ms_ts(?)",
                      DB_ARGS(DBA_INT(from), DBA_INT(to)), &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    jw_obj_begin(&r->w);
    jw_key(&r->w, "from");
    jw_time(&r->w, from);
    jw_key(&r->w, "to");
    jw_time(&r->w, to);
    jw_key(&r->w, "totals");
    jw_obj_begin(&r->w);
    if ((rc = db_next(res)) == 1)
        rc = write_usage(r, res, 0, STR_NULL, from, to);
    db_res_free(res);
    jw_obj_end(&r->w);
    if (rc < 0)
        goto fail;
    /* models: collect names first, then one aggregate + two percentile lookups each */
    rc = db_query(r->db,
                  "SELECT DISTINCT model FROM ai_requests WHERE created_at >= ms_ts(?) AND created_at < ms_ts(?) "
                  "ORDER BY model LIMIT 1000",
                  DB_ARGS(DBA_INT(from), DBA_INT(to)), &res);
    if (rc != DB_OK)
        goto fail;
    char (*models)[128] = NULL;
    size_t n = 0;
    while ((rc = db_next(res)) == 1) {
        models = xrealloc(models, st_mult(n + 1, sizeof(*models)));
        str_copy(models[n++], db_text(res, 0).p, sizeof(models[0]));
    }
    db_res_free(res);
    jw_key(&r->w, "models");
    jw_arr_begin(&r->w);
    for (size_t i = 0; i < n && rc >= 0; i++) {
        rc = db_query(r->db,
                      "SELECT " USAGE_COLS " FROM ai_requests WHERE model = ? AND created_at >= ms_ts(?) "
                      "AND created_at < ms_ts(?)",
                      DB_ARGS(DBA_CSTR(models[i]), DBA_INT(from), DBA_INT(to)), &res);
        if (rc != DB_OK)
            break;
        jw_obj_begin(&r->w);
        jw_key(&r->w, "model");
        jw_cstr(&r->w, models[i]);
        if ((rc = db_next(res)) == 1)
            rc = write_usage(r, res, 0, str_c(models[i]), from, to);
        db_res_free(res);
        jw_obj_end(&r->w);
    }
    free(models);
    if (rc < 0)
        goto fail;
    jw_arr_end(&r->w);
    jw_obj_end(&r->w);
    return 0;
fail:
    return http_db_fail(r, rc);
}

/* ---- routes ---- */

static const char *const kinds[] = {"openai", "anthropic", "gemini", NULL};
#define MODELS_DESC                                                                                                    \
    "the model map: [{name (public), upstream (provider's model), default?, price_in?, price_out? (micro-USD per "    \
    "1000 tokens)}]"
/* OpenAPI: the model map on write, the provider and a key as written here, the usage figures. */
#define MODELS_SCHEMA                                                                                                  \
    OPENAPI_JSON({                                                                                                     \
        "type" : "array",                                                                                              \
        "minItems" : 1,                                                                                                \
        "maxItems" : 100,                                                                                              \
        "items" : {                                                                                                    \
            "type" : "object",                                                                                         \
            "required" : [ "name", "upstream" ],                                                                       \
            "properties" : {                                                                                           \
                "name" : {"type" : "string", "description" : "the public model name"},                                \
                "upstream" : {"type" : "string", "description" : "the provider's model name"},                        \
                "default" : {"type" : "boolean"},                                                                      \
                "price_in" : {"type" : "integer", "minimum" : 0, "description" : "micro-USD per 1000 input tokens"},   \
                "price_out" : {"type" : "integer", "minimum" : 0, "description" : "micro-USD per 1000 output tokens"}  \
            }                                                                                                          \
        }                                                                                                              \
    })
static struct openapi_schema schemas[] = {
    {.name = "AiProviderKey",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "id", "label", "status", "created_at" ],
         "properties" : {
             "id" : {"type" : "string", "format" : "uuid"},
             "provider_id" : {"type" : "string", "format" : "uuid"},
             "label" : {"type" : "string"},
             "status" : {"type" : "string", "enum" : [ "active", "retired" ]},
             "retired_reason" : {"type" : [ "string", "null" ]},
             "created_at" : {"type" : "string", "format" : "date-time"},
             "retired_at" : {"type" : [ "string", "null" ], "format" : "date-time"}
         }
     })},
    {.name = "AiProvider",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "id", "name", "kind", "base_url", "enabled", "cache", "created_at", "updated_at", "models", "keys" ],
         "properties" : {
             "id" : {"type" : "string", "format" : "uuid"},
             "name" : {"type" : "string"},
             "kind" : {"type" : "string", "enum" : [ "openai", "anthropic", "gemini" ]},
             "base_url" : {"type" : "string", "format" : "uri"},
             "enabled" : {"type" : "boolean"},
             "cache" : {"type" : "boolean"},
             "created_at" : {"type" : "string", "format" : "date-time"},
             "updated_at" : {"type" : "string", "format" : "date-time"},
             "models" : {
                 "type" : "array",
                 "items" : {
                     "type" : "object",
                     "required" : [ "name", "upstream", "default", "price_in", "price_out" ],
                     "properties" : {
                         "name" : {"type" : "string"},
                         "upstream" : {"type" : "string"},
                         "default" : {"type" : "boolean"},
                         "price_in" : {"type" : "integer"},
                         "price_out" : {"type" : "integer"}
                     }
                 }
             },
             "keys" : {"type" : "array", "items" : {"$ref" : "#/components/schemas/AiProviderKey"}}
         }
     })},
    {.name = "AiUsageFigures",
     .json = OPENAPI_JSON({
         "type" : "object",
         "properties" : {
             "requests" : {"type" : "integer"},
             "succeeded" : {"type" : "integer"},
             "failed" : {"type" : "integer"},
             "cache_hits" : {"type" : "integer"},
             "tokens_in" : {"type" : "integer"},
             "tokens_out" : {"type" : "integer"},
             "credits" : {"type" : "integer"},
             "cost_usd_micros" : {"type" : "integer"},
             "cache_hit_rate" : {"type" : "number", "minimum" : 0, "maximum" : 1},
             "latency_p50_ms" : {"type" : "integer"},
             "latency_p95_ms" : {"type" : "integer"}
         }
     })},
};
#define PROVIDER_OUT OPENAPI_JSON({"$ref" : "#/components/schemas/AiProvider"})

static const struct json_field provider_f[] = {
    {.name = "name", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 64, .description = "a-z 0-9 - _"},
    {.name = "kind", .type = JF_STRING, .flags = JF_REQUIRED, .enum_values = kinds,
     .description = "wire format: OpenAI-compatible chat completions, Anthropic messages, Gemini generateContent"},
    {.name = "base_url", .type = JF_STRING, .flags = JF_REQUIRED, .min = 8, .max = 500,
     .description = "e.g. https://api.openai.com/v1, https://api.anthropic.com/v1, "
                    "https://generativelanguage.googleapis.com/v1beta"},
    {.name = "models", .type = JF_ARRAY, .flags = JF_REQUIRED, .min = 1, .max = 100, .description = MODELS_DESC,
     .schema = MODELS_SCHEMA},
    {.name = "enabled", .type = JF_BOOL, .description = "default true"},
    {.name = "cache", .type = JF_BOOL,
     .description = "default true: answers are cached per user for TEMEL_AI_CACHE_TTL_S; false: never cached"},
    {0}};
static const struct json_schema provider_s = {provider_f, false};

static const struct json_field provider_patch_f[] = {
    {.name = "base_url", .type = JF_STRING, .min = 8, .max = 500},
    {.name = "models", .type = JF_ARRAY, .min = 1, .max = 100, .description = MODELS_DESC " (replaces the map)",
     .schema = MODELS_SCHEMA},
    {.name = "enabled", .type = JF_BOOL},
    {.name = "cache", .type = JF_BOOL, .description = "answers cached per user (true) or never (false)"},
    {0}};
static const struct json_schema provider_patch_s = {provider_patch_f, false};

static const struct json_field key_f[] = {
    {.name = "key", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = AI_KEY_MAX,
     .description = "the provider API key; stored encrypted, never returned"},
    {.name = "label", .type = JF_STRING, .max = 100, .description = "a name to tell keys apart"},
    {0}};
static const struct json_schema key_s = {key_f, false};

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/admin/ai/providers", .handler = h_providers_list, .auth = AUTH_ADMIN,
     .rl = RL_READ, .flags = ROUTE_PAGINATED, .tag = "admin",
     .summary = "AI providers: kind, base URL, model map, keys (id, label, status — never the key)", .output = PROVIDER_OUT},
    {.method = "POST", .pattern = "/api/v1/admin/ai/providers", .handler = h_provider_create, .auth = AUTH_ADMIN,
     .rl = RL_WRITE, .input = &provider_s, .tag = "admin",
     .summary = "Add an AI provider with its model map (201; 409 on a duplicate name or model); audited",
     .errors = "409", .output = PROVIDER_OUT},
    {.method = "PATCH", .pattern = "/api/v1/admin/ai/providers/{id}", .handler = h_provider_patch, .auth = AUTH_ADMIN,
     .rl = RL_WRITE, .input = &provider_patch_s, .tag = "admin",
     .summary = "Change a provider's base URL, model map, enabled flag or response cache; audited",
     .errors = "409", .output = PROVIDER_OUT},
    {.method = "POST", .pattern = "/api/v1/admin/ai/providers/{id}/keys", .handler = h_key_add, .auth = AUTH_ADMIN,
     .rl = RL_WRITE, .input = &key_s, .tag = "admin",
     .summary = "Add a provider key (encrypted at rest; used round-robin; retired when the provider answers "
                "401/403); 201 without the key; audited without the key",
     .output = OPENAPI_JSON({"$ref" : "#/components/schemas/AiProviderKey"})},
    {.method = "DELETE", .pattern = "/api/v1/admin/ai/providers/{id}/keys/{key_id}", .handler = h_key_delete,
     .auth = AUTH_ADMIN, .rl = RL_WRITE, .tag = "admin", .summary = "Delete a provider key; audited",
     .status = 204},
    {.method = "GET", .pattern = "/api/v1/admin/flags", .handler = h_flags, .auth = AUTH_ADMIN, .rl = RL_READ,
     .flags = ROUTE_PAGINATED, .tag = "admin",
     .summary = "Users flagged by the AI anti-abuse check (rapid-fire use, repeated prompts, many accounts from one "
                "IP), newest first (filter: status open|resolved)",
     .params = OPENAPI_JSON([ {"name" : "status", "in" : "query", "schema" : {"type" : "string", "enum" : [ "open", "resolved" ]}} ]),
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "id", "user_id", "email", "reason", "score", "current_score", "signals", "status", "created_at" ],
         "properties" : {
             "id" : {"type" : "string", "format" : "uuid"},
             "user_id" : {"type" : "string", "format" : "uuid"},
             "email" : {"type" : [ "string", "null" ]},
             "reason" : {"type" : "string"},
             "score" : {"type" : "integer"},
             "current_score" : {"type" : [ "integer", "null" ]},
             "signals" : {"type" : [ "object", "null" ], "additionalProperties" : true, "description" : "the anti-abuse signals that fired"},
             "status" : {"type" : "string", "enum" : [ "open", "resolved" ]},
             "created_at" : {"type" : "string", "format" : "date-time"}
         }
     })},
    {.method = "GET", .pattern = "/api/v1/admin/analytics/ai-usage", .handler = h_ai_usage, .auth = AUTH_ADMIN,
     .rl = RL_READ, .tag = "admin",
     .summary = "AI usage over [from, to) (default 30 days): totals and per model — requests, cache hit rate, "
                "tokens, credits, cost (micro-USD), latency p50/p95",
     .errors = "422",
     .params = AI_RANGE_PARAMS,
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "from", "to", "totals", "models" ],
         "properties" : {
             "from" : {"type" : "string", "format" : "date-time"},
             "to" : {"type" : "string", "format" : "date-time"},
             "totals" : {"$ref" : "#/components/schemas/AiUsageFigures"},
             "models" : {
                 "type" : "array",
                 "items" : {"allOf" : [ {"type" : "object", "required" : ["model"], "properties" : {"model" : {"type" : "string"}}}, {"$ref" : "#/components/schemas/AiUsageFigures"} ]}
             }
         }
     })},
};

void ai__register_admin_routes(void)
{
    for (size_t i = 0; i < ARRAY_LEN(schemas); i++)
        openapi_schema_add(&schemas[i]);
    router_add(routes, ARRAY_LEN(routes));
}
