/*
 * me.c — the caller's own account: /me (GET, PATCH, DELETE), export,
 * complete-profile, sessions and API keys (API.md §3).
 */
#include <sodium.h>

#include "auth/crypto.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "modules/users/users_internal.h"

#include "db/dbjson.h"

#include "core/banned.h"

int users__h_me(struct req *r)
{
    bool found;
    if (r->ident) { /* rendered by the authenticator from the session statement */
        jw_raw(&r->w, buf_str(r->ident));
        return 0;
    }
    int rc = users__write_user_by_id(r->db, r->user_id, &r->w, &found);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (!found)
        return http_fail(r, 404, "NOT_FOUND", "no such user");
    return 0;
}

/* PATCH /me and POST /me/complete-profile share tx_patch_me (arg: bool
 * complete): only the fields in the schema can arrive (anything else was a
 * 422 before the handler ran). */
/* A phone is stored only once a code sent to it was entered (issue 9 #2):
 * PATCH /me {"phone": "+90..."} sends an SMS code bound to this account and
 * leaves the stored phone as it is; POST /me/phone/verify {phone, code}
 * stores it. null removes the phone at once. */
static int tx_patch_me(struct req *r, void *arg)
{
    bool complete = *(bool *)arg;
    struct db *db = r->db;
    int64_t now = time_now_ms();
    const json_t *name = json_object_get(r->body, "name"), *phone = json_object_get(r->body, "phone"),
                 *locale = json_object_get(r->body, "locale"), *profile = json_object_get(r->body, "profile");
    int rc = DB_OK;
    if (name)
        rc = db_exec(db, "UPDATE users SET name = ? WHERE id = ?",
                     DB_ARGS(DBA_TEXT(str_make(json_string_value(name), json_string_length(name))), DBA_TEXT(r->user_id)),
                     NULL);
    if (rc == DB_OK && phone && json_is_null(phone))
        rc = db_exec(db, "UPDATE users SET phone = NULL, phone_verified = ? WHERE id = ?",
                     DB_ARGS(DBA_BOOL(false), DBA_TEXT(r->user_id)), NULL);
    if (rc == DB_OK && phone && !json_is_null(phone)) {
        str_t p = str_make(json_string_value(phone), json_string_length(phone));
        int64_t same = 0;
        bool found;
        rc = db_query_int(db, "SELECT count(*) FROM users WHERE id = ? AND phone = ?",
                          DB_ARGS(DBA_TEXT(r->user_id), DBA_TEXT(p)), &same, &found);
        /* whoever holds the number gets the code; whether another account has it is not said here */
        if (rc == DB_OK && same == 0) {
            struct otp_target t = {"phone", p, r->user_id};
            rc = users__otp_issue(r, db, &t);
        }
    }
    if (rc == DB_OK && locale)
        rc = db_exec(db, "UPDATE users SET locale = ? WHERE id = ?", DB_ARGS(DBA_CSTR(json_string_value(locale)), DBA_TEXT(r->user_id)),
                     NULL);
    if (rc == DB_OK && profile) {
        struct buf pj = BUF_INIT(16u << 10);
        struct jw w;
        jw_init(&w, &pj);
        jw_json(&w, profile);
        rc = buf_ok(&pj) ? db_exec(db, "UPDATE users SET profile = ? WHERE id = ?",
                                   DB_ARGS(DBA_TEXT(buf_str(&pj)), DBA_TEXT(r->user_id)), NULL)
                         : DB_ERR;
        buf_free(&pj);
    }
    if (rc == DB_OK && complete)
        rc = db_exec(db, "UPDATE users SET profile_complete = ? WHERE id = ?",
                     DB_ARGS(DBA_BOOL(true), DBA_TEXT(r->user_id)), NULL);
    if (rc == DB_OK)
        rc = db_exec(db, "UPDATE users SET updated_at = ms_ts(?) WHERE id = ?",
                     DB_ARGS(DBA_INT(now), DBA_TEXT(r->user_id)), NULL);
    return rc;
}

static int patch_me(struct req *r, bool complete)
{
    const json_t *phone = json_object_get(r->body, "phone");
    if (phone && !json_is_null(phone) &&
        !users__phone_ok(str_make(json_string_value(phone), json_string_length(phone))))
        return http_invalid(r, "phone", "must be an E.164 number like +905551234567");
    int rc = req_tx(r, DB_TX_WRITE, tx_patch_me, &complete);
    return rc ? rc : users__h_me(r);
}

struct phone_ctx {
    str_t phone, code;
};

static int tx_verify_phone(struct req *r, void *arg)
{
    struct phone_ctx *c = arg;
    struct db *db = r->db;
    struct otp_target t = {"phone", c->phone, r->user_id};
    int64_t taken = 0;
    bool found;
    int rc = users__otp_check(r, db, &t, c->code);
    if (rc == USERS_OTP_WRONG)
        return 0; /* keep the counted failure */
    if (rc)
        return rc;
    rc = db_query_int(db, "SELECT count(*) FROM users WHERE phone = ? AND id <> ?",
                      DB_ARGS(DBA_TEXT(c->phone), DBA_TEXT(r->user_id)), &taken, &found);
    if (rc != DB_OK)
        return rc;
    if (taken) {
        /* only the number's holder gets here; still, no owner is named */
        return http_fail(r, 409, "CONFLICT", "this phone number cannot be added to this account");
    }
    return db_exec(db, "UPDATE users SET phone = ?, phone_verified = ?, updated_at = ms_ts(?) WHERE id = ?",
                   DB_ARGS(DBA_TEXT(c->phone), DBA_BOOL(true), DBA_INT(time_now_ms()), DBA_TEXT(r->user_id)), NULL);
}

static int h_verify_phone(struct req *r)
{
    const json_t *phone = json_object_get(r->body, "phone"), *code = json_object_get(r->body, "code");
    struct phone_ctx c = {str_make(json_string_value(phone), json_string_length(phone)),
                          str_make(json_string_value(code), json_string_length(code))};
    if (!users__phone_ok(c.phone))
        return http_invalid(r, "phone", "must be an E.164 number like +905551234567");
    int rc = req_tx(r, DB_TX_WRITE, tx_verify_phone, &c);
    return rc ? rc : users__h_me(r);
}

static int h_patch_me(struct req *r) { return patch_me(r, false); }
static int h_complete_profile(struct req *r) { return patch_me(r, true); }

static int tx_delete_me(struct req *r, void *arg)
{
    (void)arg;
    struct db *db = r->db;
    const struct user_data_hooks *const *hooks;
    size_t n = users__hooks(&hooks);
    int rc;
    struct buf *why = req_buf(r, 512);
    for (size_t i = 0; i < n; i++) {
        if (hooks[i]->refuse_delete && (rc = hooks[i]->refuse_delete(db, r->user_id, why)) != 0)
            return rc > 0 ? http_fail(r, 409, "CONFLICT", "%s", buf_cstr(why)) : rc;
    }
    for (size_t i = 0; i < n; i++)
        if (hooks[i]->delete_data && (rc = hooks[i]->delete_data(db, r->user_id)) != DB_OK)
            return rc;
    /* phone-proof codes name a number and are bound to the account */
    if ((rc = db_exec(db, "DELETE FROM otp_codes WHERE user_id = ?", DB_ARGS(DBA_TEXT(r->user_id)), NULL)) != DB_OK)
        return rc;
    /* sessions, refresh tokens, API keys, OTP-less tokens cascade */
    return db_exec(db, "DELETE FROM users WHERE id = ?", DB_ARGS(DBA_TEXT(r->user_id)), NULL);
}

static int h_delete_me(struct req *r)
{
    return req_tx(r, DB_TX_WRITE, tx_delete_me, NULL);
}

/* The caller's live sessions and API keys: a list route each, and parts of the export. */
static const struct http_list_query sessions_q = {
    "id, user_agent, ip, ts_ms(created_at), ts_ms(last_used_at), ts_ms(expires_at)", "FROM sessions",
    " WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ms_ts(?)", "created_at DESC, id DESC", NULL};
static const struct http_list_query api_keys_q = {
    "id, name, prefix, scopes, ts_ms(created_at), ts_ms(last_used_at)", "FROM api_keys", " WHERE user_id = ?",
    "created_at DESC, id DESC", NULL};

static int session_row(struct req *r, const struct db_res *res)
{
    static const struct http_col cols[] = {{"id", COL_TEXT},         {"user_agent", COL_TEXT},  {"ip", COL_TEXT},
                                           {"created_at", COL_TIME}, {"last_used_at", COL_TIME}, {"expires_at", COL_TIME},
                                           {NULL, 0}};
    jw_obj_begin(&r->w);
    http_write_cols(&r->w, res, cols);
    jw_key(&r->w, "current");
    jw_bool(&r->w, str_eq(db_text(res, 0), r->session_id));
    jw_obj_end(&r->w);
    return DB_OK;
}

static int api_key_row(struct req *r, const struct db_res *res)
{
    static const struct http_col cols[] = {{"id", COL_TEXT},     {"name", COL_TEXT},       {"prefix", COL_TEXT},
                                           {"scopes", COL_JSON}, {"created_at", COL_TIME}, {"last_used_at", COL_TIME},
                                           {NULL, 0}};
    http_write_row(&r->w, res, cols);
    return DB_OK;
}

static int tx_export(struct req *r, void *arg)
{
    (void)arg;
    struct db *db = r->db;
    struct jw *w = &r->w;
    bool found;
    const struct user_data_hooks *const *hooks;
    size_t n = users__hooks(&hooks);
    int rc;
    jw_obj_begin(w);
    jw_key(w, "exported_at");
    jw_time(w, time_now_ms());
    jw_key(w, "user");
    if ((rc = users__write_user_by_id(db, r->user_id, w, &found)) != DB_OK)
        return rc;
    if (!found)
        jw_null(w);
    jw_key(w, "sessions");
    if ((rc = http_rows_all(r, &sessions_q, session_row, DB_ARGS(DBA_TEXT(r->user_id), DBA_INT(time_now_ms())))) !=
        DB_OK)
        return rc;
    jw_key(w, "api_keys");
    if ((rc = http_rows_all(r, &api_keys_q, api_key_row, DB_ARGS(DBA_TEXT(r->user_id)))) != DB_OK)
        return rc;
    jw_key(w, "photo");
    if ((rc = users__photo_write_meta(db, r->user_id, w)) != DB_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (!hooks[i]->export_data)
            continue;
        jw_key(w, hooks[i]->name);
        if ((rc = hooks[i]->export_data(db, r->user_id, w)) != DB_OK)
            return rc;
    }
    jw_obj_end(w);
    return 0;
}

static int h_export(struct req *r)
{
    if (req_tx(r, DB_TX_READ, tx_export, NULL))
        return HTTP_EFAIL;
    req_header(r, "content-disposition", STRLIT("attachment; filename=\"temel-export.json\""));
    return 0;
}

static const char *const no_filters[] = {NULL};

static int h_sessions(struct req *r)
{
    db_arg args[4] = {DBA_TEXT(r->user_id), DBA_INT(time_now_ms())};
    if (http_query_allow(r, no_filters))
        return HTTP_EFAIL;
    return http_list_each(r, &sessions_q, session_row, args, 2, ARRAY_LEN(args));
}

static int h_delete_session(struct req *r)
{
    int64_t changed = 0;
    /* only the caller's own: another user's id is simply not found */
    int rc = db_exec(r->db, "UPDATE sessions SET revoked_at = ms_ts(?) WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
                     DB_ARGS(DBA_INT(time_now_ms()), DBA_TEXT(req_param(r, "id")), DBA_TEXT(r->user_id)), &changed);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (changed != 1)
        return http_fail(r, 404, "NOT_FOUND", "no such session");
    return 0;
}

static const char *const known_scopes[] = {"read", "write", "ai", "admin", NULL};

static int h_create_key(struct req *r)
{
    const json_t *name = json_object_get(r->body, "name"), *scopes = json_object_get(r->body, "scopes");
    struct buf key = BUF_INIT(128), sj = BUF_INIT(1024);
    struct jw w;
    char hash[65], id[UUID_STR_LEN + 1];
    size_t i;
    json_t *s;
    int64_t now = time_now_ms();
    if (identity_is_guest(r))
        return http_fail(r, 403, "FORBIDDEN", "guests cannot create API keys");
    /* a key could otherwise mint itself wider scopes */
    if (r->api_key_id.len)
        return http_fail(r, 403, "FORBIDDEN", "API keys cannot create API keys; sign in");
    if (scopes && json_array_size(scopes) == 0)
        return http_invalid(r, "scopes", "give at least one scope (read, write, ai, admin)");
    jw_init(&w, &sj);
    jw_arr_begin(&w);
    if (scopes) {
        json_array_foreach(scopes, i, s)
        {
            bool ok = false;
            for (const char *const *k = known_scopes; *k; k++)
                ok |= strcmp(*k, json_string_value(s)) == 0;
            if (!ok) {
                buf_free(&sj);
                return http_invalid(r, "scopes", "contains an unknown scope (known: read, write, ai, admin)");
            }
            if (!strcmp(json_string_value(s), "admin") && !identity_is_admin(r)) {
                buf_free(&sj);
                return http_fail(r, 403, "FORBIDDEN", "only admins may create admin-scoped keys");
            }
            jw_cstr(&w, json_string_value(s));
        }
    }
    if (!scopes)
        jw_cstr(&w, "read"); /* the least a key can do */
    jw_arr_end(&w);
    token_random(&key, "tml_", 32);
    sha256_hex(buf_str(&key), hash);
    uuid7_str(id);
    int rc = db_exec(r->db,
                     "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ms_ts(?))",
                     DB_ARGS(DBA_CSTR(id), DBA_TEXT(r->user_id),
                             DBA_TEXT(str_make(json_string_value(name), json_string_length(name))),
                             DBA_TEXT(str_make(key.ptr, 12)), DBA_CSTR(hash), DBA_TEXT(buf_str(&sj)), DBA_INT(now)),
                     NULL);
    if (rc != DB_OK) {
        sodium_memzero(key.ptr, key.len);
        buf_free(&key);
        buf_free(&sj);
        return http_db_fail(r, rc);
    }
    r->status = 201;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "id");
    jw_cstr(&r->w, id);
    jw_key(&r->w, "name");
    jw_str(&r->w, str_make(json_string_value(name), json_string_length(name)));
    jw_key(&r->w, "prefix");
    jw_str(&r->w, str_make(key.ptr, 12));
    jw_key(&r->w, "scopes");
    jw_raw(&r->w, buf_str(&sj));
    jw_key(&r->w, "created_at");
    jw_time(&r->w, now);
    jw_key(&r->w, "key"); /* shown once; only its hash is stored */
    jw_str(&r->w, buf_str(&key));
    jw_obj_end(&r->w);
    sodium_memzero(key.ptr, key.len);
    buf_free(&key);
    buf_free(&sj);
    return 0;
}

static int h_list_keys(struct req *r)
{
    db_arg args[3] = {DBA_TEXT(r->user_id)};
    if (http_query_allow(r, no_filters))
        return HTTP_EFAIL;
    return http_list_each(r, &api_keys_q, api_key_row, args, 1, ARRAY_LEN(args));
}

static int h_delete_key(struct req *r)
{
    int64_t changed = 0;
    int rc = db_exec(r->db, "DELETE FROM api_keys WHERE id = ? AND user_id = ?",
                     DB_ARGS(DBA_TEXT(req_param(r, "id")), DBA_TEXT(r->user_id)), &changed);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (changed != 1)
        return http_fail(r, 404, "NOT_FOUND", "no such API key");
    return 0;
}

static const char *const locales[] = {"en", "tr", "pl", NULL};
static const struct json_field patch_f[] = {
    {.name = "name", .type = JF_STRING, .min = 1, .max = 100},
    {.name = "phone", .type = JF_STRING, .flags = JF_NULLABLE, .min = 8, .max = 20},
    {.name = "locale", .type = JF_STRING, .enum_values = locales},
    {.name = "profile", .type = JF_OBJECT, .description = "free-form profile data (max 16 KiB)",
     .schema = OPENAPI_JSON({"$ref" : "#/components/schemas/Profile"})},
    {0}};
static const struct json_schema patch_s = {patch_f, false};
static const struct json_field complete_f[] = {
    {.name = "name", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 100},
    {.name = "phone", .type = JF_STRING, .flags = JF_NULLABLE, .min = 8, .max = 20},
    {.name = "locale", .type = JF_STRING, .enum_values = locales},
    {.name = "profile", .type = JF_OBJECT, .schema = OPENAPI_JSON({"$ref" : "#/components/schemas/Profile"})},
    {0}};
static const struct json_schema complete_s = {complete_f, false};
static const struct json_field phone_f[] = {
    {.name = "phone", .type = JF_STRING, .flags = JF_REQUIRED, .min = 8, .max = 20},
    {.name = "code", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 12},
    {0}};
static const struct json_schema phone_s = {phone_f, false};
static const struct json_field key_f[] = {
    {.name = "name", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 100},
    {.name = "scopes", .type = JF_ARRAY_STR, .min = 0, .max = 8},
    {0}};
static const struct json_schema key_s = {key_f, false};

/* OpenAPI: the account as users__write_user writes it, and its free-form profile. */
static struct openapi_schema schemas[] = {
    {.name = "Profile",
     .json = OPENAPI_JSON({
         "type" : "object",
         "description" : "free-form profile data the client owns (any JSON object, max 16 KiB)",
         "additionalProperties" : true
     })},
    {.name = "User",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : [
             "id", "email", "phone", "name", "role", "status", "locale", "profile", "email_verified",
             "profile_complete", "created_at"
         ],
         "properties" : {
             "id" : {"type" : "string", "format" : "uuid"},
             "email" : {"type" : [ "string", "null" ], "format" : "email"},
             "phone" : {"type" : [ "string", "null" ], "description" : "E.164, verified"},
             "name" : {"type" : "string"},
             "role" : {"type" : "string", "enum" : [ "guest", "user", "moderator", "admin" ]},
             "status" : {"type" : "string", "enum" : [ "active", "banned" ]},
             "locale" : {"type" : "string", "enum" : [ "en", "tr", "pl" ]},
             "profile" : {"$ref" : "#/components/schemas/Profile"},
             "email_verified" : {"type" : "boolean"},
             "profile_complete" : {"type" : "boolean"},
             "created_at" : {"type" : "string", "format" : "date-time"}
         }
     })},
    {.name = "AuthSession",
     .json = OPENAPI_JSON({
         "type" : "object",
         "description" : "a signed-in session: the account and its token pair",
         "required" : [ "user", "access_token", "refresh_token", "token_type", "expires_in" ],
         "properties" : {
             "user" : {"$ref" : "#/components/schemas/User"},
             "access_token" : {"type" : "string", "description" : "JWT for Authorization: Bearer"},
             "refresh_token" : {"type" : "string", "description" : "for POST /auth/refresh (rotated on use)"},
             "token_type" : {"type" : "string", "enum" : ["Bearer"]},
             "expires_in" : {"type" : "integer", "minimum" : 1, "description" : "seconds the access token lives"}
         }
     })},
    {.name = "Session", .json = OPENAPI_JSON({
        "type" : "object",
        "required" : [ "id", "user_agent", "ip", "created_at", "last_used_at", "expires_at", "current" ],
        "properties" : {
            "id" : {"type" : "string", "format" : "uuid"},
            "user_agent" : {"type" : [ "string", "null" ]},
            "ip" : {"type" : [ "string", "null" ]},
            "created_at" : {"type" : "string", "format" : "date-time"},
            "last_used_at" : {"type" : [ "string", "null" ], "format" : "date-time"},
            "expires_at" : {"type" : "string", "format" : "date-time"},
            "current" : {"type" : "boolean", "description" : "the session of this request's token"}
        }
    })},
    {.name = "ApiKey", .json = OPENAPI_JSON({
        "type" : "object",
        "required" : [ "id", "name", "prefix", "scopes", "created_at", "last_used_at" ],
        "properties" : {
            "id" : {"type" : "string", "format" : "uuid"},
            "name" : {"type" : "string"},
            "prefix" : {"type" : "string", "description" : "the first characters of the key, to recognise it"},
            "scopes" : {"type" : "array", "items" : {"type" : "string", "enum" : [ "read", "write", "ai", "admin" ]}},
            "created_at" : {"type" : "string", "format" : "date-time"},
            "last_used_at" : {"type" : [ "string", "null" ], "format" : "date-time"}
        }
    })},
    {.name = "Accepted",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : ["status"],
         "properties" : {"status" : {"type" : "string", "enum" : ["accepted"]}}
     })},
};

#define USER_OUT OPENAPI_JSON({"$ref" : "#/components/schemas/User"})
#define SESSION_OUT OPENAPI_JSON({"$ref" : "#/components/schemas/Session"})
#define API_KEY_OUT OPENAPI_JSON({"$ref" : "#/components/schemas/ApiKey"})
#define API_KEY_CREATED_OUT                                                                                            \
    OPENAPI_JSON({                                                                                                     \
        "type" : "object",                                                                                             \
        "required" : [ "id", "name", "prefix", "scopes", "created_at", "key" ],                                        \
        "properties" : {                                                                                               \
            "id" : {"type" : "string", "format" : "uuid"},                                                             \
            "name" : {"type" : "string"},                                                                              \
            "prefix" : {"type" : "string"},                                                                            \
            "scopes" : {"type" : "array", "items" : {"type" : "string", "enum" : [ "read", "write", "ai", "admin" ]}},  \
            "created_at" : {"type" : "string", "format" : "date-time"},                                                \
            "key" : {"type" : "string", "description" : "the secret (tml_...), shown only in this response"}          \
        }                                                                                                              \
    })

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/me", .handler = users__h_me, .auth = AUTH_USER, .rl = RL_READ, .summary = "The caller's account", .tag = "me", .output = USER_OUT},
    {.method = "GET", .pattern = "/api/v1/users/me", .handler = users__h_me, .auth = AUTH_USER, .rl = RL_READ, .summary = "Alias of GET /api/v1/me", .tag = "me", .output = USER_OUT},
    {.method = "PATCH", .pattern = "/api/v1/me", .handler = h_patch_me, .auth = AUTH_USER, .rl = RL_WRITE, .input = &patch_s, .body_max = 32u << 10, .summary = "Update name, locale, profile; a new phone is not stored but gets an SMS code (POST /api/v1/me/phone/verify stores it); phone null removes it", .tag = "me", .output = USER_OUT},
    {.method = "POST", .pattern = "/api/v1/me/phone/verify", .handler = h_verify_phone, .auth = AUTH_USER, .rl = RL_AUTH, .input = &phone_s, .summary = "Store the phone given to PATCH /me once its SMS code is entered (10 wrong codes an hour lock the number: 429)", .tag = "me", .output = USER_OUT},
    {.method = "DELETE", .pattern = "/api/v1/me", .handler = h_delete_me, .auth = AUTH_USER, .rl = RL_WRITE, .summary = "Delete the account and its personal data; 409 while the caller owns a company with other members (hand it over or delete it first); a company owned alone goes with the account", .tag = "me", .errors = "409", .status = 204},
    {.method = "GET", .pattern = "/api/v1/me/export", .handler = h_export, .auth = AUTH_USER, .rl = RL_READ, .summary = "All personal data as JSON", .tag = "me",
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "exported_at", "user", "sessions", "api_keys", "photo" ],
         "properties" : {
             "exported_at" : {"type" : "string", "format" : "date-time"},
             "user" : {"$ref" : "#/components/schemas/User"},
             "sessions" : {"type" : "array", "items" : {"$ref" : "#/components/schemas/Session"}},
             "api_keys" : {"type" : "array", "items" : {"$ref" : "#/components/schemas/ApiKey"}},
             "photo" : {"type" : [ "object", "null" ], "additionalProperties" : true},
             "companies" : {
                 "type" : "object",
                 "description" : "the caller's companies: memberships, invitations to their address and sent by them, company orders they placed",
                 "properties" : {
                     "memberships" : {"type" : "array", "items" : {"type" : "object", "properties" : {
                         "company_id" : {"type" : "string"}, "name" : {"type" : "string"}, "tax_id" : {"type" : "string"},
                         "role" : {"type" : "string", "enum" : [ "owner", "admin", "member" ]},
                         "joined_at" : {"type" : "string", "format" : "date-time"}}}},
                     "invitations_received" : {"type" : "array", "items" : {"type" : "object", "properties" : {
                         "id" : {"type" : "string"}, "company_id" : {"type" : "string"}, "company_name" : {"type" : "string"},
                         "email" : {"type" : "string"}, "role" : {"type" : "string"}, "status" : {"type" : "string"},
                         "expires_at" : {"type" : "string", "format" : "date-time"},
                         "created_at" : {"type" : "string", "format" : "date-time"}}}},
                     "invitations_sent" : {"type" : "array", "items" : {"type" : "object", "properties" : {
                         "id" : {"type" : "string"}, "company_id" : {"type" : "string"}, "email" : {"type" : "string"},
                         "role" : {"type" : "string"}, "status" : {"type" : "string"},
                         "created_at" : {"type" : "string", "format" : "date-time"}}}},
                     "orders" : {"type" : "array", "items" : {"type" : "object", "properties" : {
                         "id" : {"type" : "string"}, "company_id" : {"type" : "string"}, "kind" : {"type" : "string"},
                         "status" : {"type" : "string"}, "total" : {"type" : "integer"}, "currency" : {"type" : "string"},
                         "address" : {"type" : [ "object", "null" ], "description" : "the address copied at order time", "additionalProperties" : {"type" : [ "string", "null" ]}},
                         "created_at" : {"type" : "string", "format" : "date-time"},
                         "paid_at" : {"type" : [ "string", "null" ], "format" : "date-time"},
                         "items" : {"type" : "array", "items" : {"type" : "object", "properties" : {
                             "product_id" : {"type" : "string"}, "name" : {"type" : "string"},
                             "unit_price" : {"type" : "integer"}, "quantity" : {"type" : "integer"},
                             "line_total" : {"type" : "integer"}}}}}}}
                 }
             }
         },
         "additionalProperties" : {"description" : "one member per module that keeps personal data (its rows)"}
     })},
    {.method = "POST", .pattern = "/api/v1/me/complete-profile", .handler = h_complete_profile, .auth = AUTH_USER, .rl = RL_WRITE, .input = &complete_s, .body_max = 32u << 10, .summary = "Finish an OTP-created account", .tag = "me", .output = USER_OUT},
    {.method = "GET", .pattern = "/api/v1/me/sessions", .handler = h_sessions, .auth = AUTH_USER, .rl = RL_READ, .flags = ROUTE_PAGINATED, .summary = "Live sessions of the caller", .tag = "me", .output = SESSION_OUT},
    {.method = "DELETE", .pattern = "/api/v1/me/sessions/{id}", .handler = h_delete_session, .auth = AUTH_USER, .rl = RL_WRITE, .summary = "End one session", .tag = "me", .status = 204},
    {.method = "POST", .pattern = "/api/v1/me/api-keys", .handler = h_create_key, .auth = AUTH_USER, .rl = RL_WRITE, .input = &key_s, .summary = "Create an API key (shown once). Scopes: read = GET/HEAD, write = other methods, admin = staff routes and powers, ai = /api/v1/ai; default [\"read\"]. Not with an API key", .tag = "me", .output = API_KEY_CREATED_OUT},
    {.method = "GET", .pattern = "/api/v1/me/api-keys", .handler = h_list_keys, .auth = AUTH_USER, .rl = RL_READ, .flags = ROUTE_PAGINATED, .summary = "The caller's API keys (without secrets)", .tag = "me", .output = API_KEY_OUT},
    {.method = "DELETE", .pattern = "/api/v1/me/api-keys/{id}", .handler = h_delete_key, .auth = AUTH_USER, .rl = RL_WRITE, .summary = "Revoke an API key", .tag = "me", .status = 204},
    {.method = "POST", .pattern = "/api/v1/me/photo", .handler = users__h_photo_upload, .auth = AUTH_USER, .rl = RL_WRITE, .flags = ROUTE_RAW_BODY, .body_max = USERS_PHOTO_MAX + (64u << 10), .summary = "Upload the profile photo (multipart field photo or file; JPEG/PNG/WebP by magic bytes, max 2 MiB): it becomes a file (purpose avatar) with thumbnail/medium/large variants; an image that does not decode is 422 INVALID_IMAGE", .tag = "me",
     .errors = "415",
     .raw_body = OPENAPI_JSON({"multipart/form-data" : {"schema" : {"type" : "object", "properties" : {"photo" : {"type" : "string", "format" : "binary", "description" : "JPEG, PNG or WebP; the field may also be named file"}}}}}),
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "photo_url", "mime_type", "size", "sha256" ],
         "properties" : {
             "photo_url" : {"type" : "string"},
             "mime_type" : {"type" : "string", "enum" : [ "image/jpeg", "image/png", "image/webp" ]},
             "size" : {"type" : "integer", "minimum" : 1, "maximum" : 2097152},
             "sha256" : {"type" : "string", "pattern" : "^[0-9a-f]{64}$"},
             "file_id" : {"type" : "string", "format" : "uuid", "description" : "the photo as a file (GET /files/{id}: variants)"}
         }
     })},
    {.method = "GET", .pattern = "/api/v1/me/photo", .handler = users__h_photo_get, .auth = AUTH_USER, .rl = RL_READ, .summary = "The caller's profile photo (image bytes; ?variant=thumbnail|medium|large: a WebP variant once made)", .tag = "me",
     .params = OPENAPI_JSON([{"name" : "variant", "in" : "query", "required" : false, "schema" : {"type" : "string", "enum" : [ "thumbnail", "medium", "large" ]}}]),
     .output_type = "image/*", .output = OPENAPI_JSON({"type" : "string", "format" : "binary", "description" : "JPEG, PNG or WebP (Content-Type says which)"})},
    {.method = "DELETE", .pattern = "/api/v1/me/photo", .handler = users__h_photo_delete, .auth = AUTH_USER, .rl = RL_WRITE, .summary = "Remove the profile photo", .tag = "me", .status = 204},
};

void users__register_me_routes(void)
{
    for (size_t i = 0; i < ARRAY_LEN(schemas); i++)
        openapi_schema_add(&schemas[i]);
    router_add(routes, ARRAY_LEN(routes));
}
