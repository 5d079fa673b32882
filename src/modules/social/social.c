/*
 * social.c — social publishing (API.md §10, issue 12 item 5).
 *
 *   /api/v1/social/accounts        POST (network, name, access_token,
 *                                  instance_url for Mastodon), PATCH (name,
 *                                  access_token), GET list/one, DELETE. The
 *                                  token is sealed at rest (core/secret.h)
 *                                  and never output; token_hint shows its end.
 *   /api/v1/social/posts           POST (account_id, text, media URLs, at?),
 *                                  GET list/one, DELETE
 *   POST /api/v1/social/posts/{id}/schedule {at}   the scheduler publishes it
 *   GET  /api/v1/social/analytics  counts by status and network, per account,
 *                                  published per day
 * Accounts and posts belong to the user who made them; staff see and act on
 * all (audited). Publishing is publish.c's job.
 */
#include <sodium.h>

#include "core/timeutil.h"
#include "core/uuid.h"
#include "modules/audit/audit.h"
#include "modules/social/social.h"
#include "modules/social/social_internal.h"
#include "modules/users/identity.h"
#include "resource/resource.h"

#include "core/banned.h"

#define SOCIAL_MEDIA_MAX 4
#define SOCIAL_SCHEDULE_PAST_MS 60000LL /* "now" as seen by a client whose clock is behind */
#define SOCIAL_SCHEDULE_MAX_MS (366LL * 86400 * 1000)

/* ---------------------------------------------------------------- config */

static struct social_config g_cfg;
static unsigned char g_key[SECRET_KEY_BYTES];

const struct social_config *social__cfg(void) { return &g_cfg; }
const unsigned char *social__key(void) { return g_key; }

static bool http_origin_ok(const char *u)
{
    size_t n = strlen(u);
    if ((strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) || n > 200 || u[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= ' ' || (unsigned char)u[i] >= 0x7f || u[i] == '"' || u[i] == '<' ||
            u[i] == '>' || u[i] == '\\' || u[i] == '?' || u[i] == '#')
            return false;
    return true;
}

static int config(const struct config *cfg, struct buf *err)
{
    (void)cfg;
    free(g_cfg.x_url);
    g_cfg.x_url = config_env_dup("TEMEL_SOCIAL_X_URL");
    if (!g_cfg.x_url)
        g_cfg.x_url = xstrdup("https://api.x.com");
    if (!http_origin_ok(g_cfg.x_url)) {
        (void)buf_puts(err, "TEMEL_SOCIAL_X_URL: must be an http(s) URL without a trailing '/', query or fragment");
        return -1;
    }
    return config_env_int("TEMEL_SOCIAL_MAX_ATTEMPTS", 5, 1, 20, &g_cfg.max_attempts, err);
}

/* ----------------------------------------------------------- descriptors */

static const char *const networks[] = {"mastodon", "x", NULL};
static const struct rfield account_fields[] = {
    {.name = "network", .type = RF_ENUM, .values = networks, .flags = RF_READONLY | RF_FILTER | RF_SORT},
    {.name = "name", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER | RF_SORT},
    {.name = "instance_url", .type = RF_TEXT, .flags = RF_READONLY | RF_NULLABLE,
     .description = "Mastodon: the instance the account lives on"},
    {.name = "token_hint", .type = RF_TEXT, .flags = RF_READONLY,
     .description = "the last characters of the access token (the token itself is never shown)"},
    {.name = "owner_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER},
    {0}};
const struct resource social_accounts = {
    .name = "social_accounts", .singular = "social account", .path = "/api/v1/social/accounts",
    .table = "social_accounts", .tag = "social", .fields = account_fields, .owner = "owner_id",
    .read = RP_OWNER_OR_STAFF, .create = RP_AUTH, .update = RP_OWNER_OR_STAFF, .del = RP_OWNER_OR_STAFF,
    .routes = RR_LIST | RR_GET | RR_DELETE};

static int post_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id);

static const char *const post_status[] = {"draft", "scheduled", "published", "failed", NULL};
static const struct rfield post_fields[] = {
    {.name = "account_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER},
    {.name = "network", .type = RF_ENUM, .values = networks, .flags = RF_READONLY | RF_FILTER | RF_SORT},
    {.name = "text", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER},
    {.name = "media", .type = RF_STRLIST, .flags = RF_READONLY},
    {.name = "status", .type = RF_ENUM, .values = post_status, .flags = RF_READONLY | RF_FILTER | RF_SORT},
    {.name = "scheduled_at", .type = RF_TIME, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER | RF_SORT},
    {.name = "published_at", .type = RF_TIME, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER | RF_SORT},
    {.name = "network_post_id", .type = RF_TEXT, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER},
    {.name = "network_url", .type = RF_TEXT, .flags = RF_READONLY | RF_NULLABLE},
    {.name = "attempts", .type = RF_INT, .flags = RF_READONLY | RF_FILTER | RF_SORT},
    {.name = "last_error", .type = RF_TEXT, .flags = RF_READONLY | RF_NULLABLE},
    {.name = "owner_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER},
    {0}};
const struct resource social_posts = {
    .name = "social_posts", .singular = "social post", .path = "/api/v1/social/posts", .table = "social_posts",
    .tag = "social", .fields = post_fields, .owner = "owner_id",
    .read = RP_OWNER_OR_STAFF, .create = RP_AUTH, .update = RP_OWNER_OR_STAFF, .del = RP_OWNER_OR_STAFF,
    .routes = RR_LIST | RR_GET | RR_DELETE, .after_write = post_after_write};

/* ------------------------------------------------------------- behaviour */

static int post_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id)
{
    (void)db;
    (void)res;
    return act == RA_DELETE ? audit_record_staff(r, "social", "social_post.delete", "social post", id) : DB_OK;
}

static const char *jstr(const json_t *body, const char *key)
{
    return json_string_value(json_object_get(body, key));
}

/* The token's hint: its last four characters after an ellipsis ("…" alone when short). */
static void token_hint(const char *t, struct buf *out)
{
    size_t n = strlen(t);
    (void)buf_puts(out, "\xe2\x80\xa6");
    if (n >= 16)
        (void)buf_append(out, t + n - 4, 4);
}

static bool token_ok(const char *t)
{
    for (; *t; t++)
        if ((unsigned char)*t <= ' ' || (unsigned char)*t >= 0x7f)
            return false;
    return true;
}

/* ---- accounts ---- */

static const struct json_field account_create_f[] = {
    {.name = "network", .type = JF_STRING, .flags = JF_REQUIRED, .enum_values = networks},
    {.name = "name", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 200},
    {.name = "access_token", .type = JF_STRING, .flags = JF_REQUIRED, .min = 8, .max = SOCIAL_TOKEN_MAX,
     .description = "Mastodon: an access token with write:statuses; X: an OAuth 2.0 user access token "
                    "with tweet.write. Stored sealed, never shown again."},
    {.name = "instance_url", .type = JF_STRING, .max = 200,
     .format = "uri", .description = "Mastodon only: https://instance.example (required)"},
    {0}};
static const struct json_schema account_create_s = {account_create_f, false};

static const struct json_field account_patch_f[] = {
    {.name = "name", .type = JF_STRING, .min = 1, .max = 200},
    {.name = "access_token", .type = JF_STRING, .min = 8, .max = SOCIAL_TOKEN_MAX},
    {0}};
static const struct json_schema account_patch_s = {account_patch_f, false};

struct account_write {
    char id[UUID_STR_LEN + 1];
    struct buf sealed, hint;
    bool create;
};

static int tx_account(struct req *r, void *arg)
{
    struct account_write *a = arg;
    int64_t now = time_now_ms(), n = 0;
    const json_t *b = r->body;
    int rc;
    if (a->create) {
        rc = db_exec(r->db,
                     "INSERT INTO social_accounts (id, owner_id, network, name, instance_url, token_sealed, token_hint, "
                     "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(a->id), DBA_TEXT(r->user_id), DBA_CSTR(jstr(b, "network")),
                             DBA_CSTR(jstr(b, "name")),
                             jstr(b, "instance_url") ? DBA_CSTR(jstr(b, "instance_url")) : DBA_NULL,
                             DBA_TEXT(buf_str(&a->sealed)), DBA_TEXT(buf_str(&a->hint)), DBA_INT(now), DBA_INT(now)),
                     NULL);
        return rc ? rc : audit_record_staff(r, "social", "social_account.create", "social account", str_c(a->id));
    }
    rc = db_exec(r->db,
                 "UPDATE social_accounts SET name = coalesce(?, name), token_sealed = coalesce(?, token_sealed), "
                 "token_hint = coalesce(?, token_hint), updated_at = ms_ts(?), version = version + 1 WHERE id = ?",
                 DB_ARGS(jstr(b, "name") ? DBA_CSTR(jstr(b, "name")) : DBA_NULL,
                         a->sealed.len ? DBA_TEXT(buf_str(&a->sealed)) : DBA_NULL,
                         a->hint.len ? DBA_TEXT(buf_str(&a->hint)) : DBA_NULL, DBA_INT(now), DBA_CSTR(a->id)),
                 &n);
    if (rc == DB_OK && n == 0)
        return http_fail(r, 404, "NOT_FOUND", "no such social account");
    return rc ? rc : audit_record_staff(r, "social", "social_account.update", "social account", str_c(a->id));
}

static int account_write(struct req *r, struct account_write *a)
{
    const char *tok = jstr(r->body, "access_token");
    a->sealed = BUF_INIT(8u * SOCIAL_TOKEN_MAX);
    a->hint = BUF_INIT(64);
    if (tok && !token_ok(tok))
        return http_invalid(r, "access_token", "must be printable ASCII without spaces");
    if (tok) {
        secret_seal(g_key, str_c(tok), &a->sealed);
        token_hint(tok, &a->hint);
    }
    int rc = req_tx(r, DB_TX_WRITE, tx_account, a);
    buf_free(&a->sealed);
    buf_free(&a->hint);
    if (rc)
        return HTTP_EFAIL;
    return resource_respond(r, &social_accounts, str_c(a->id), a->create ? 201 : 200);
}

static int h_account_create(struct req *r)
{
    struct account_write a = {.create = true};
    const char *net = jstr(r->body, "network"), *inst = jstr(r->body, "instance_url");
    if (identity_is_guest(r))
        return http_fail(r, 403, "FORBIDDEN", "guests cannot connect social accounts");
    if (!strcmp(net, "mastodon") && (!inst || !http_origin_ok(inst)))
        return http_invalid(r, "instance_url", "Mastodon needs the instance's http(s) origin, e.g. https://mastodon.social");
    if (!strcmp(net, "x") && inst)
        return http_invalid(r, "instance_url", "only Mastodon accounts have an instance");
    uuid7_str(a.id);
    return account_write(r, &a);
}

static int h_account_patch(struct req *r)
{
    struct account_write a = {.create = false};
    str_t id = req_param(r, "id");
    if (resource_require(r, &social_accounts, id))
        return HTTP_EFAIL;
    if (id.len != UUID_STR_LEN)
        return http_fail(r, 404, "NOT_FOUND", "no such social account");
    memcpy(a.id, id.p, id.len);
    a.id[id.len] = '\0';
    return account_write(r, &a);
}

/* ---- posts ---- */

static const struct json_field post_create_f[] = {
    {.name = "account_id", .type = JF_STRING, .flags = JF_REQUIRED, .min = 36, .max = 36, .format = "uuid"},
    {.name = "text", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 500,
     .description = "at most 500 characters on Mastodon, 280 on X (media links count)"},
    {.name = "media", .type = JF_ARRAY_STR, .max = SOCIAL_MEDIA_MAX, .description = "http(s) URLs of images"},
    {.name = "at", .type = JF_STRING, .max = 40, .format = "date-time", .description = "schedule at once (RFC 3339)"},
    {0}};
static const struct json_schema post_create_s = {post_create_f, false};

static const struct json_field schedule_f[] = {
    {.name = "at", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 40, .format = "date-time",
     .description = "RFC 3339; now or later, within a year"},
    {0}};
static const struct json_schema schedule_s = {schedule_f, false};

static int parse_at(struct req *r, const char *at, int64_t *out)
{
    int64_t now = time_now_ms();
    if (time_parse_rfc3339(str_c(at), out))
        return http_invalid(r, "at", "must be an RFC 3339 time");
    if (*out < now - SOCIAL_SCHEDULE_PAST_MS || *out > now + SOCIAL_SCHEDULE_MAX_MS)
        return http_invalid(r, "at", "must be now or later, within a year");
    if (*out < now)
        *out = now;
    return 0;
}

static bool media_url_ok(const char *u)
{
    size_t n = strlen(u);
    if (n > 1000 || (strncmp(u, "https://", 8) && strncmp(u, "http://", 7)))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= ' ' || u[i] == '"' || u[i] == '<' || u[i] == '>')
            return false;
    return true;
}

struct post_create {
    char id[UUID_STR_LEN + 1];
    struct buf network, media;
    int64_t at; /* 0 = draft */
};

static int tx_post_create(struct req *r, void *arg)
{
    struct post_create *p = arg;
    int64_t now = time_now_ms();
    int rc = db_exec(r->db,
                     "INSERT INTO social_posts (id, owner_id, account_id, network, text, media, status, scheduled_at, "
                     "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ms_ts(?), ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(p->id), DBA_TEXT(r->user_id), DBA_CSTR(jstr(r->body, "account_id")),
                             DBA_TEXT(buf_str(&p->network)), DBA_CSTR(jstr(r->body, "text")),
                             DBA_TEXT(buf_str(&p->media)), DBA_CSTR(p->at ? "scheduled" : "draft"),
                             p->at ? DBA_INT(p->at) : DBA_NULL, DBA_INT(now), DBA_INT(now)),
                     NULL);
    if (rc == DB_OK && p->at)
        rc = social__enqueue_publish(r->db, str_c(p->id), p->at);
    if (rc == DB_OK)
        rc = audit_record_staff(r, "social", "social_post.create", "social post", str_c(p->id));
    return rc;
}

static int h_post_create(struct req *r)
{
    struct post_create p = {.network = BUF_INIT(16), .media = BUF_INIT(8192)};
    const char *acc = jstr(r->body, "account_id"), *text = jstr(r->body, "text"), *at = jstr(r->body, "at");
    const json_t *media = json_object_get(r->body, "media");
    struct caller who = resource_caller(r);
    bool visible = false;
    if (identity_is_guest(r))
        return http_fail(r, 403, "FORBIDDEN", "guests cannot post");
    int rc = resource_visible(&who, r->db, &social_accounts, str_c(acc), &visible);
    if (rc)
        return http_db_fail(r, rc);
    if (!visible)
        return http_invalid(r, "account_id", "no such social account");
    struct db_res *q = NULL;
    if ((rc = db_query(r->db, "SELECT network FROM social_accounts WHERE id = ?", DB_ARGS(DBA_CSTR(acc)), &q)))
        return http_db_fail(r, rc);
    if ((rc = db_next(q)) == 1)
        (void)buf_put(&p.network, db_text(q, 0));
    db_res_free(q);
    if (rc != 1) {
        buf_free(&p.network);
        return rc < 0 ? http_db_fail(r, rc) : http_invalid(r, "account_id", "no such social account");
    }
    /* the length the network will count: the text and a line per media link */
    size_t len = utf8_len(text, strlen(text));
    for (size_t i = 0; i < json_array_size(media); i++) {
        const char *u = json_string_value(json_array_get(media, i));
        if (!media_url_ok(u)) {
            buf_free(&p.network);
            return http_invalid(r, "media", "each item must be an http(s) URL");
        }
        len += 1 + strlen(u);
    }
    size_t max = str_is(buf_str(&p.network), "x") ? 280 : 500;
    if (len > max) {
        buf_free(&p.network);
        return http_invalid(r, "text", max == 280 ? "X allows 280 characters (media links included)"
                                                  : "Mastodon allows 500 characters (media links included)");
    }
    if (at && parse_at(r, at, &p.at)) {
        buf_free(&p.network);
        return HTTP_EFAIL;
    }
    struct jw w;
    jw_init(&w, &p.media);
    if (media)
        jw_json(&w, media);
    else
        jw_raw(&w, STRLIT("[]"));
    uuid7_str(p.id);
    rc = req_tx(r, DB_TX_WRITE, tx_post_create, &p);
    buf_free(&p.network);
    buf_free(&p.media);
    if (rc)
        return HTTP_EFAIL;
    return resource_respond(r, &social_posts, str_c(p.id), 201);
}

struct sched {
    str_t id;
    int64_t at;
};

static int tx_schedule(struct req *r, void *arg)
{
    struct sched *s = arg;
    int64_t now = time_now_ms(), n = 0;
    int rc = db_exec(r->db,
                     "UPDATE social_posts SET status = 'scheduled', scheduled_at = ms_ts(?), attempts = 0, "
                     "last_error = NULL, updated_at = ms_ts(?), version = version + 1 "
                     "WHERE id = ? AND status IN ('draft', 'failed', 'scheduled')",
                     DB_ARGS(DBA_INT(s->at), DBA_INT(now), DBA_TEXT(s->id)), &n);
    if (rc)
        return rc;
    if (n == 0)
        return http_fail(r, 409, "CONFLICT", "the post is already published");
    rc = social__enqueue_publish(r->db, s->id, s->at);
    return rc ? rc : audit_record_staff(r, "social", "social_post.schedule", "social post", s->id);
}

static int h_schedule(struct req *r)
{
    struct sched s = {req_param(r, "id"), 0};
    if (resource_require(r, &social_posts, s.id))
        return HTTP_EFAIL;
    if (parse_at(r, jstr(r->body, "at"), &s.at))
        return HTTP_EFAIL;
    if (req_tx(r, DB_TX_WRITE, tx_schedule, &s))
        return HTTP_EFAIL;
    return resource_respond(r, &social_posts, s.id, 202);
}

/* ---- analytics ---- */

static int h_analytics(struct req *r)
{
    static const char *const allowed[] = {"account_id", "days", NULL};
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    int64_t days = 30, now = time_now_ms();
    const str_t *d = req_query(r, "days"), *acc = req_query(r, "account_id");
    if (d && parse_i64(*d, 1, 366, &days))
        return http_invalid(r, "days", "must be an integer from 1 to 366");
    /* whose posts: the caller's own; staff everyone's */
    bool staff = identity_is_staff(r);
    struct buf where = BUF_INIT(256);
    db_arg args[4];
    size_t n = 0;
    (void)buf_puts(&where, staff ? " WHERE 1 = 1" : " WHERE p.owner_id = ?");
    if (!staff)
        args[n++] = DBA_TEXT(r->user_id);
    if (acc) {
        (void)buf_puts(&where, " AND p.account_id = ?");
        args[n++] = DBA_TEXT(*acc);
    }
    struct buf sql = BUF_INIT(4096);
    struct db_res *q = NULL;
    struct jw *w = &r->w;
    jw_obj_begin(w);
    /* totals by network and status */
    (void)buf_printf(&sql,
                     "SELECT p.network, p.status, count(*), coalesce(sum(p.attempts), 0) FROM social_posts p%s "
                     "GROUP BY p.network, p.status ORDER BY p.network, p.status",
                     buf_cstr(&where));
    int rc = db_query(r->db, buf_cstr(&sql), args, n, &q);
    int64_t total = 0, by[4] = {0};
    jw_key(w, "by_network");
    jw_obj_begin(w);
    struct buf cur = BUF_INIT(16);
    while (rc == DB_OK && (rc = db_next(q)) == 1) {
        if (!str_eq(db_text(q, 0), buf_str(&cur))) {
            if (cur.len)
                jw_obj_end(w);
            buf_reset(&cur);
            (void)buf_put(&cur, db_text(q, 0));
            jw_key_str(w, buf_str(&cur));
            jw_obj_begin(w);
        }
        jw_key_str(w, db_text(q, 1));
        jw_int(w, db_int(q, 2));
        total += db_int(q, 2);
        for (int i = 0; i < 4; i++)
            if (str_eq(db_text(q, 1), str_c(post_status[i])))
                by[i] += db_int(q, 2);
        rc = 0;
    }
    if (cur.len)
        jw_obj_end(w);
    jw_obj_end(w);
    buf_free(&cur);
    if (q)
        db_res_free(q);
    q = NULL;
    jw_key(w, "posts");
    jw_int(w, total);
    jw_key(w, "by_status");
    jw_obj_begin(w);
    for (int i = 0; i < 4; i++) {
        jw_key(w, post_status[i]);
        jw_int(w, by[i]);
    }
    jw_obj_end(w);
    jw_key(w, "success_rate");
    jw_double(w, by[2] + by[3] ? (double)by[2] / (double)(by[2] + by[3]) : 0.0);
    /* per account */
    if (rc == DB_OK) {
        buf_reset(&sql);
        (void)buf_printf(&sql,
                         "SELECT p.account_id, a.name, a.network, "
                         "coalesce(sum(CASE WHEN p.status = 'published' THEN 1 ELSE 0 END), 0), "
                         "coalesce(sum(CASE WHEN p.status = 'scheduled' THEN 1 ELSE 0 END), 0), "
                         "coalesce(sum(CASE WHEN p.status = 'failed' THEN 1 ELSE 0 END), 0), "
                         "max(ts_ms(p.published_at)) FROM social_posts p JOIN social_accounts a ON a.id = p.account_id%s "
                         "GROUP BY p.account_id, a.name, a.network ORDER BY p.account_id",
                         buf_cstr(&where));
        rc = db_query(r->db, buf_cstr(&sql), args, n, &q);
    }
    jw_key(w, "accounts");
    jw_arr_begin(w);
    static const struct http_col acols[] = {{"account_id", COL_TEXT}, {"name", COL_TEXT},      {"network", COL_TEXT},
                                            {"published", COL_INT},   {"scheduled", COL_INT},  {"failed", COL_INT},
                                            {"last_published_at", COL_TIME}, {NULL, 0}};
    while (rc == DB_OK && (rc = db_next(q)) == 1) {
        http_write_row(w, q, acols);
        rc = 0;
    }
    jw_arr_end(w);
    if (q)
        db_res_free(q);
    q = NULL;
    /* published per day (UTC), the last `days` days */
    int64_t since = (now / 86400000 - days + 1) * 86400000;
    if (rc == DB_OK) {
        buf_reset(&sql);
        (void)buf_printf(&sql,
                         "SELECT ts_ms(p.published_at) / 86400000, count(*) FROM social_posts p%s "
                         "AND p.status = 'published' AND p.published_at >= ms_ts(?) "
                         "GROUP BY ts_ms(p.published_at) / 86400000 ORDER BY 1",
                         buf_cstr(&where));
        args[n] = DBA_INT(since);
        rc = db_query(r->db, buf_cstr(&sql), args, n + 1, &q);
    }
    jw_key(w, "days");
    jw_int(w, days);
    jw_key(w, "published_per_day");
    jw_arr_begin(w);
    while (rc == DB_OK && (rc = db_next(q)) == 1) {
        char day[40];
        time_format_rfc3339(db_int(q, 0) * 86400000, day);
        jw_obj_begin(w);
        jw_key(w, "date");
        jw_str(w, str_make(day, 10));
        jw_key(w, "published");
        jw_int(w, db_int(q, 1));
        jw_obj_end(w);
        rc = 0;
    }
    jw_arr_end(w);
    jw_obj_end(w);
    if (q)
        db_res_free(q);
    buf_free(&sql);
    buf_free(&where);
    return rc < 0 ? http_db_fail(r, rc) : 0;
}

/* ---------------------------------------------------------------- routes */

#define ACCOUNT_REF OPENAPI_JSON({"$ref": "#/components/schemas/SocialAccount"})
#define POST_REF OPENAPI_JSON({"$ref": "#/components/schemas/SocialPost"})

static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/social/accounts", .handler = h_account_create, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &account_create_s,
     .summary = "Connect a social account (Mastodon or X); the access token is stored sealed", .tag = "social",
     .output = ACCOUNT_REF},
    {.method = "PATCH", .pattern = "/api/v1/social/accounts/{id}", .handler = h_account_patch, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &account_patch_s, .summary = "Rename a social account or replace its token",
     .tag = "social", .output = ACCOUNT_REF},
    {.method = "POST", .pattern = "/api/v1/social/posts", .handler = h_post_create, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &post_create_s, .summary = "Write a post (draft, or scheduled with at)",
     .tag = "social", .output = POST_REF},
    {.method = "POST", .pattern = "/api/v1/social/posts/{id}/schedule", .handler = h_schedule, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &schedule_s, .summary = "Schedule a post {at}; the scheduler publishes it",
     .tag = "social", .output = POST_REF, .errors = "409"},
    {.method = "GET", .pattern = "/api/v1/social/analytics", .handler = h_analytics, .auth = AUTH_USER,
     .rl = RL_READ, .summary = "Posts by network and status, per account, published per day (own; staff: all)",
     .tag = "social",
     .output = OPENAPI_JSON({"type": "object",
         "required": ["posts", "by_status", "by_network", "success_rate", "accounts", "days", "published_per_day"],
         "properties": {
         "posts": {"type": "integer"},
         "by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
         "by_network": {"type": "object", "description": "network -> status -> count",
                        "additionalProperties": {"type": "object", "additionalProperties": {"type": "integer"}}},
         "success_rate": {"type": "number", "description": "published / (published + failed)"},
         "accounts": {"type": "array", "items": {"type": "object",
             "required": ["account_id", "name", "network", "published", "scheduled", "failed", "last_published_at"],
             "properties": {
             "account_id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
             "network": {"type": "string", "enum": ["mastodon", "x"]}, "published": {"type": "integer"},
             "scheduled": {"type": "integer"}, "failed": {"type": "integer"},
             "last_published_at": {"type": ["string", "null"], "format": "date-time"}}}},
         "days": {"type": "integer"},
         "published_per_day": {"type": "array", "items": {"type": "object", "required": ["date", "published"],
                                                          "properties": {
             "date": {"type": "string", "format": "date"}, "published": {"type": "integer"}}}}}})},
};

static void register_routes(void)
{
    resource_register(&social_accounts);
    resource_register(&social_posts);
    router_add(routes, ARRAY_LEN(routes));
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    (void)db;
    if (sodium_init() < 0) {
        (void)buf_puts(err, "libsodium: initialisation failed");
        return -1;
    }
    return secret_derive(cfg, "temel.social.account-tokens.v1", g_key, err);
}

const struct module social_module = {
    .name = "social",
    .config = config,
    .register_routes = register_routes,
    .register_jobs = social__register_jobs,
    .init = init,
};
