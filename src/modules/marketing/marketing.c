/*
 * marketing.c — email marketing (API.md §10, issue 12 item 3).
 *
 *   /api/v1/email-lists                  CRUD (resource engine): a signed-in
 *                                        user's own lists; staff see and
 *                                        change all (audited)
 *   POST /api/v1/email-lists/{id}/subscribers   bulk import (up to 10,000 in
 *                                        one statement), deduplicated by the
 *                                        normalised address; double opt-in
 *   GET  /api/v1/email-lists/{id}/subscribers   the list's subscribers
 *   /api/v1/email-subscribers/{id}       GET, DELETE one subscriber
 *   /api/v1/campaigns                    CRUD: subject/html/text templates
 *                                        with {{name}}, {{email}},
 *                                        {{unsubscribe_url}}; editable while draft
 *   POST /api/v1/campaigns/{id}/send | /schedule {at} | /cancel
 *   GET  /api/v1/campaigns/{id}/stats | /recipients
 *
 * Sending is send.c's job; tracking links are track.c's routes.
 */
#include "core/timeutil.h"
#include "core/uuid.h"
#include "modules/audit/audit.h"
#include "modules/marketing/marketing.h"
#include "modules/marketing/marketing_internal.h"
#include "modules/users/identity.h"
#include "resource/resource.h"
#include "transport/mail.h"

#include "core/banned.h"

#define MK_IMPORT_MAX 10000
#define MK_IMPORT_BODY (4u << 20)
#define MK_NAME_MAX 200
#define MK_SCHEDULE_MAX_MS (366LL * 86400 * 1000)

/* ---------------------------------------------------------------- config */

static struct mk_config g_cfg;

const struct mk_config *mk__cfg(void) { return &g_cfg; }

int mk__config(const struct config *cfg, struct buf *err)
{
    free(g_cfg.base_url);
    g_cfg.base_url = config_env_dup("TEMEL_MARKETING_BASE_URL");
    if (!g_cfg.base_url) {
        struct buf b = BUF_INIT(256);
        (void)buf_printf(&b, "http://localhost:%d", cfg->port);
        g_cfg.base_url = buf_detach(&b, NULL);
    }
    size_t n = strlen(g_cfg.base_url);
    while (n && g_cfg.base_url[n - 1] == '/')
        g_cfg.base_url[--n] = '\0';
    if ((strncmp(g_cfg.base_url, "http://", 7) && strncmp(g_cfg.base_url, "https://", 8)) || n > 200) {
        (void)buf_puts(err, "TEMEL_MARKETING_BASE_URL: must be an http(s) origin of at most 200 characters");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)g_cfg.base_url[i] <= ' ' || g_cfg.base_url[i] == '"' || g_cfg.base_url[i] == '<' ||
            g_cfg.base_url[i] == '>' || (unsigned char)g_cfg.base_url[i] >= 0x7f) {
            (void)buf_puts(err, "TEMEL_MARKETING_BASE_URL: contains a character not allowed in a URL");
            return -1;
        }
    return config_env_int("TEMEL_MARKETING_DOMAIN_RATE", 50, 0, 100000, &g_cfg.domain_rate, err) ||
                   config_env_int("TEMEL_MARKETING_BATCH", 200, 1, 5000, &g_cfg.batch, err) ||
                   config_env_int("TEMEL_MARKETING_SLICE_MS", 60000, 2000, 3600000, &g_cfg.slice_ms, err) ||
                   config_env_int("TEMEL_MARKETING_MAX_ATTEMPTS", 3, 1, 20, &g_cfg.max_attempts, err)
               ? -1
               : 0;
}

/* ----------------------------------------------------------- descriptors */

static int list_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id);
static int campaign_check(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id);
static int campaign_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id);

static const struct rfield list_fields[] = {
    {.name = "name", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT, .min = 1, .max = 200},
    {.name = "description", .type = RF_TEXT, .max = 2000, .def = "\"\""},
    {.name = "double_opt_in", .type = RF_BOOL, .flags = RF_FILTER, .def = "true",
     .description = "new subscribers stay pending until they confirm by mail"},
    {.name = "owner_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER},
    {0}};
const struct resource email_lists = {
    .name = "email_lists", .singular = "email list", .path = "/api/v1/email-lists", .table = "email_lists",
    .tag = "marketing", .fields = list_fields, .owner = "owner_id",
    .read = RP_OWNER_OR_STAFF, .create = RP_AUTH, .update = RP_OWNER_OR_STAFF, .del = RP_OWNER_OR_STAFF,
    .after_write = list_after_write};

static const char *const sub_status[] = {"pending", "active", "unsubscribed", "bounced", NULL};
static const struct rfield sub_fields[] = {
    {.name = "list_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER},
    {.name = "email", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER | RF_SORT},
    {.name = "name", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER | RF_SORT},
    {.name = "status", .type = RF_ENUM, .values = sub_status, .flags = RF_READONLY | RF_FILTER | RF_SORT},
    {.name = "confirmed_at", .type = RF_TIME, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER | RF_SORT},
    {.name = "unsubscribed_at", .type = RF_TIME, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER | RF_SORT},
    {.name = "owner_id", .type = RF_TEXT, .flags = RF_READONLY},
    {0}};
const struct resource email_subscribers = {
    .name = "email_subscribers", .singular = "subscriber", .path = "/api/v1/email-subscribers",
    .table = "email_subscribers", .tag = "marketing", .fields = sub_fields, .owner = "owner_id",
    .read = RP_OWNER_OR_STAFF, .update = RP_OWNER_OR_STAFF, .del = RP_OWNER_OR_STAFF,
    .routes = RR_GET | RR_DELETE, .after_write = list_after_write};

static const char *const campaign_status[] = {"draft", "scheduled", "sending", "sent", "cancelled", NULL};
static const struct rfield campaign_fields[] = {
    {.name = "list_id", .type = RF_REF, .ref = &email_lists, .flags = RF_REQUIRED | RF_FILTER | RF_CREATE_ONLY},
    {.name = "name", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT, .min = 1, .max = 200},
    {.name = "subject", .type = RF_TEXT, .flags = RF_REQUIRED, .min = 1, .max = 500,
     .description = "template: {{name}}, {{email}}, {{unsubscribe_url}}"},
    {.name = "html", .type = RF_TEXT, .max = 60000, .def = "\"\"",
     .description = "template; variables are HTML-escaped; http(s) links are tracked"},
    {.name = "text", .type = RF_TEXT, .flags = RF_REQUIRED, .min = 1, .max = 60000, .description = "template"},
    {.name = "status", .type = RF_ENUM, .values = campaign_status, .flags = RF_READONLY | RF_FILTER | RF_SORT,
     .def = "\"draft\""},
    {.name = "links", .type = RF_JSON, .flags = RF_READONLY, .description = "the tracked links of the HTML",
     .schema = OPENAPI_JSON({"type" : "array", "description" : "the tracked links of the HTML, in order (empty until sent)",
                             "items" : {"type" : "string", "format" : "uri"}})},
    {.name = "scheduled_at", .type = RF_TIME, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER | RF_SORT},
    {.name = "started_at", .type = RF_TIME, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER | RF_SORT},
    {.name = "finished_at", .type = RF_TIME, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER | RF_SORT},
    {.name = "owner_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER},
    {0}};
const struct resource campaigns = {
    .name = "campaigns", .singular = "campaign", .path = "/api/v1/campaigns", .table = "campaigns",
    .tag = "marketing", .fields = campaign_fields, .owner = "owner_id",
    .read = RP_OWNER_OR_STAFF, .create = RP_AUTH, .update = RP_OWNER_OR_STAFF, .del = RP_OWNER_OR_STAFF,
    .check = campaign_check, .after_write = campaign_after_write};

/* ------------------------------------------------------------- behaviour */

static const char *act_name(const struct resource *res, enum raction act)
{
    static const char *const names[3][3] = {
        {"email_list.create", "email_list.update", "email_list.delete"},
        {"email_subscriber.create", "email_subscriber.update", "email_subscriber.delete"},
        {"campaign.create", "campaign.update", "campaign.delete"}};
    int k = res == &email_lists ? 0 : res == &email_subscribers ? 1 : 2;
    return names[k][act - RA_CREATE];
}

static int list_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id)
{
    (void)db;
    return audit_record_staff(r, "marketing", act_name(res, act), res->singular, id);
}

static const char *const template_fields[] = {"subject", "text", "html", NULL};

/* Templates must render with the variables a send provides. */
static int campaign_check(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id)
{
    (void)res;
    if (act == RA_UPDATE) {
        if (resource_require(r, &campaigns, id)) /* 404 before anything is said about it */
            return HTTP_EFAIL;
        /* before the write's version check: a campaign that left draft is a
         * 409 whatever its version (after_write re-checks inside the tx) */
        struct db_res *q = NULL;
        int rc = db_query(r->db, "SELECT status FROM campaigns WHERE id = ?", DB_ARGS(DBA_TEXT(id)), &q);
        if (rc)
            return http_db_fail(r, rc);
        bool locked = (rc = db_next(q)) == 1 && !str_is(db_text(q, 0), "draft");
        db_res_free(q);
        if (rc < 0)
            return http_db_fail(r, rc);
        if (locked)
            return http_fail(r, 409, "CONFLICT", "only a draft campaign can be changed");
    }
    json_t *vars = json_pack("{s:s, s:s, s:s}", "name", "n", "email", "e@example.com", "unsubscribe_url", "u");
    int bad = 0;
    for (const char *const *f = template_fields; *f; f++) {
        const char *t = json_string_value(json_object_get(body, *f));
        if (!t)
            continue;
        struct buf out = BUF_INIT(1u << 20), err = BUF_INIT(256);
        if (mail_render(t, vars, !strcmp(*f, "html"), &out, &err)) {
            http_field_error(r, *f, buf_move_to_pool(&err, r->pool).p);
            bad++;
        }
        buf_free(&out);
        buf_free(&err);
    }
    json_decref(vars);
    if (bad)
        return http_fail(r, 422, "VALIDATION_ERROR",
                         "a template uses an unknown variable or a malformed placeholder (known: name, email, "
                         "unsubscribe_url)");
    return 0;
}

static int campaign_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id)
{
    int rc;
    if (act == RA_UPDATE || act == RA_CREATE) {
        struct db_res *q = NULL;
        struct buf links = BUF_INIT(1u << 20);
        bool draft = false;
        if ((rc = db_query(db, "SELECT status, html FROM campaigns WHERE id = ?", DB_ARGS(DBA_TEXT(id)), &q)))
            return rc;
        if ((rc = db_next(q)) == 1) {
            draft = str_is(db_text(q, 0), "draft");
            mk__links_json(db_text(q, 1).p, &links);
        }
        db_res_free(q);
        if (rc < 0) {
            buf_free(&links);
            return rc;
        }
        if (!draft) {
            buf_free(&links);
            return http_fail(r, 409, "CONFLICT", "only a draft campaign can be changed");
        }
        rc = db_exec(db, "UPDATE campaigns SET links = ? WHERE id = ?", DB_ARGS(DBA_TEXT(buf_str(&links)), DBA_TEXT(id)),
                     NULL);
        buf_free(&links);
        if (rc)
            return rc;
    }
    return audit_record_staff(r, "marketing", act_name(res, act), "campaign", id);
}

/* ---------------------------------------------------------- bulk import */

static const struct json_field import_f[] = {
    {.name = "subscribers", .type = JF_ARRAY, .flags = JF_REQUIRED, .min = 1, .max = MK_IMPORT_MAX,
     .description = "at most 10,000 per request",
     .schema = OPENAPI_JSON({"type": "array", "minItems": 1, "maxItems": 10000,
                             "items": {"type": "object", "additionalProperties": false, "required": ["email"],
                                       "properties": {"email": {"type": "string", "format": "email",
                                                                "maxLength": 254},
                                                      "name": {"type": "string", "maxLength": 200}}}})},
    {.name = "skip_confirmation", .type = JF_BOOL,
     .description = "import as active although the list has double opt-in (consent obtained elsewhere)"},
    {0}};
static const struct json_schema import_s = {import_f, false};

/* Trim and lower-case an address into out; false when it is not one we would mail. */
static bool normalise_email(const char *in, size_t n, struct buf *out)
{
    while (n && (*in == ' ' || *in == '\t'))
        in++, n--;
    while (n && (in[n - 1] == ' ' || in[n - 1] == '\t'))
        n--;
    if (n == 0 || n > MAIL_MAX_ADDR)
        return false;
    buf_reset(out);
    for (size_t i = 0; i < n; i++)
        (void)buf_putc(out, (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]));
    const char *a = buf_cstr(out), *at = strrchr(a, '@');
    return mail_addr_ok(a) && at && strchr(at, '.') && at[strlen(at) - 1] != '.';
}

static const char *field_name(struct req *r, size_t i, const char *key)
{
    struct buf b = BUF_INIT(64);
    (void)buf_printf(&b, "subscribers[%zu]%s%s", i, key[0] ? "." : "", key);
    return buf_move_to_pool(&b, r->pool).p;
}

struct import {
    str_t list_id, owner_id;
    struct buf *rows; /* JSON array text */
    const char *status;
    int64_t received, imported;
};

static int tx_import(struct req *r, void *arg)
{
    struct import *im = arg;
    int64_t now = time_now_ms();
    int rc = db_exec(
        r->db,
        db_pick(r->db,
                "INSERT INTO email_subscribers (id, owner_id, list_id, email, name, status, created_at, updated_at) "
                "SELECT json_extract(e.value, '$.id'), ?, ?, json_extract(e.value, '$.email'), "
                "json_extract(e.value, '$.name'), CASE WHEN EXISTS (SELECT 1 FROM email_suppressions x "
                "WHERE x.email = json_extract(e.value, '$.email')) THEN 'unsubscribed' ELSE ? END, ?, ? "
                "FROM json_each(?) AS e WHERE true ON CONFLICT (list_id, email) DO NOTHING",
                "INSERT INTO email_subscribers (id, owner_id, list_id, email, name, status, created_at, updated_at) "
                "SELECT e->>'id', ?, ?, e->>'email', e->>'name', CASE WHEN EXISTS (SELECT 1 FROM email_suppressions x "
                "WHERE x.email = e->>'email') THEN 'unsubscribed' ELSE ?::text END, ms_ts(?), ms_ts(?) "
                "FROM json_array_elements(?::json) AS e ON CONFLICT (list_id, email) DO NOTHING"),
        DB_ARGS(DBA_TEXT(im->owner_id), DBA_TEXT(im->list_id), DBA_CSTR(im->status), DBA_INT(now), DBA_INT(now),
                DBA_TEXT(buf_str(im->rows))),
        &im->imported);
    if (rc == DB_OK && im->imported > 0 && !strcmp(im->status, "pending"))
        rc = mk__enqueue_confirm(r->db, im->list_id);
    if (rc == DB_OK && !str_eq(im->owner_id, r->user_id))
        rc = audit_record_staff(r, "marketing", "email_list.import", "email list", im->list_id);
    return rc;
}

static int h_import(struct req *r)
{
    str_t id = req_param(r, "id");
    if (resource_require(r, &email_lists, id))
        return HTTP_EFAIL;
    struct db_res *q = NULL;
    struct import im = {.list_id = id};
    bool opt_in = true;
    int rc = db_query(r->db, "SELECT owner_id, double_opt_in FROM email_lists WHERE id = ?", DB_ARGS(DBA_TEXT(id)), &q);
    if (rc)
        return http_db_fail(r, rc);
    if ((rc = db_next(q)) == 1) {
        struct buf o = BUF_INIT(64);
        (void)buf_put(&o, db_text(q, 0));
        im.owner_id = buf_move_to_pool(&o, r->pool);
        opt_in = db_int(q, 1) != 0;
    }
    db_res_free(q);
    if (rc != 1)
        return rc < 0 ? http_db_fail(r, rc) : http_fail(r, 404, "NOT_FOUND", "no such email list");
    im.status = opt_in && !json_is_true(json_object_get(r->body, "skip_confirmation")) ? "pending" : "active";

    const json_t *arr = json_object_get(r->body, "subscribers");
    struct buf email = BUF_INIT(MAIL_MAX_ADDR + 64);
    struct jw w;
    im.rows = req_buf(r, MK_IMPORT_BODY * 2);
    jw_init(&w, im.rows);
    jw_arr_begin(&w);
    int bad = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *it = json_array_get(arr, i), *e = json_object_get(it, "email"), *nm = json_object_get(it, "name");
        const char *key;
        json_t *v;
        bool ok = json_is_object(it);
        if (!ok) {
            http_field_error(r, field_name(r, i, ""), "must be an object {email, name}");
        } else {
            json_object_foreach((json_t *)it, key, v) if (strcmp(key, "email") && strcmp(key, "name"))
            {
                http_field_error(r, field_name(r, i, key), "unknown field");
                ok = false;
            }
            if (!json_is_string(e) || !normalise_email(json_string_value(e), json_string_length(e), &email)) {
                http_field_error(r, field_name(r, i, "email"), "must be a valid email address");
                ok = false;
            }
            if (nm && (!json_is_string(nm) ||
                       utf8_len(json_string_value(nm), json_string_length(nm)) > MK_NAME_MAX)) {
                http_field_error(r, field_name(r, i, "name"), "must be a string of at most 200 characters");
                ok = false;
            }
        }
        if (!ok) {
            if (++bad >= JSON_VERR_MAX)
                break;
            continue;
        }
        char sid[UUID_STR_LEN + 1];
        uuid7_str(sid);
        jw_obj_begin(&w);
        jw_key(&w, "id");
        jw_cstr(&w, sid);
        jw_key(&w, "email");
        jw_str(&w, buf_str(&email));
        jw_key(&w, "name");
        jw_str(&w, nm ? str_make(json_string_value(nm), json_string_length(nm)) : STRLIT(""));
        jw_obj_end(&w);
        im.received++;
    }
    jw_arr_end(&w);
    buf_free(&email);
    if (bad)
        return http_fail(r, 422, "VALIDATION_ERROR", "%d subscriber(s) are invalid; nothing was imported", bad);
    if (!buf_ok(im.rows))
        return http_fail(r, 413, "PAYLOAD_TOO_LARGE", "the import is too large");
    if (req_tx(r, DB_TX_WRITE, tx_import, &im))
        return HTTP_EFAIL;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "received");
    jw_int(&r->w, im.received);
    jw_key(&r->w, "imported");
    jw_int(&r->w, im.imported);
    jw_key(&r->w, "duplicates");
    jw_int(&r->w, im.received - im.imported);
    jw_key(&r->w, "status");
    jw_cstr(&r->w, im.status);
    jw_obj_end(&r->w);
    return 0;
}

static int h_subscribers(struct req *r)
{
    str_t id = req_param(r, "id");
    if (resource_require(r, &email_lists, id))
        return HTTP_EFAIL;
    return resource_list(r, &email_subscribers, "t.list_id = ?", DB_ARGS(DBA_TEXT(id)));
}

/* ------------------------------------------------- send / schedule / cancel */

enum mk_op { OP_SEND, OP_SCHEDULE, OP_CANCEL };

struct op {
    enum mk_op op;
    str_t id;
    int64_t at;
};

static int tx_op(struct req *r, void *arg)
{
    struct op *o = arg;
    struct buf st = BUF_INIT(32);
    struct db_res *q = NULL;
    int64_t now = time_now_ms();
    int rc = db_query(r->db,
                      db_pick(r->db, "SELECT status FROM campaigns WHERE id = ?",
                              "SELECT status FROM campaigns WHERE id = ? FOR UPDATE"),
                      DB_ARGS(DBA_TEXT(o->id)), &q);
    if (rc)
        return rc;
    if ((rc = db_next(q)) == 1)
        (void)buf_put(&st, db_text(q, 0));
    db_res_free(q);
    if (rc < 0)
        return rc;
    const char *s = buf_cstr(&st), *to = NULL, *action = NULL;
    if (o->op == OP_SEND && !strcmp(s, "draft")) {
        to = "sending", action = "campaign.send";
    } else if (o->op == OP_SCHEDULE && !strcmp(s, "draft")) {
        to = "scheduled", action = "campaign.schedule";
    } else if (o->op == OP_CANCEL && !strcmp(s, "scheduled")) {
        to = "draft", action = "campaign.unschedule";
    } else if (o->op == OP_CANCEL && !strcmp(s, "sending")) {
        to = "cancelled", action = "campaign.cancel";
    } else {
        rc = http_fail(r, 409, "CONFLICT", "the campaign is %s", s);
        buf_free(&st); /* s points into it */
        return rc;
    }
    buf_free(&st);
    rc = db_exec(r->db,
                 "UPDATE campaigns SET status = ?, scheduled_at = ms_ts(?), updated_at = ms_ts(?), version = version + 1 "
                 "WHERE id = ?",
                 DB_ARGS(DBA_CSTR(to), o->op == OP_SCHEDULE ? DBA_INT(o->at) : DBA_NULL, DBA_INT(now),
                         DBA_TEXT(o->id)),
                 NULL);
    if (rc == DB_OK && o->op != OP_CANCEL)
        rc = mk__enqueue_send(r->db, o->id, o->op == OP_SCHEDULE ? o->at : 0);
    if (rc == DB_OK)
        rc = audit_record_staff(r, "marketing", action, "campaign", o->id);
    return rc;
}

static int campaign_op(struct req *r, enum mk_op op)
{
    struct op o = {op, req_param(r, "id"), 0};
    if (resource_require(r, &campaigns, o.id))
        return HTTP_EFAIL;
    if (op == OP_SCHEDULE) {
        const char *at = json_string_value(json_object_get(r->body, "at"));
        int64_t now = time_now_ms();
        if (!at || time_parse_rfc3339(str_c(at), &o.at))
            return http_invalid(r, "at", "must be an RFC 3339 time");
        if (o.at <= now || o.at > now + MK_SCHEDULE_MAX_MS)
            return http_invalid(r, "at", "must be in the future, within a year");
    }
    if (req_tx(r, DB_TX_WRITE, tx_op, &o))
        return HTTP_EFAIL;
    return resource_respond(r, &campaigns, o.id, op == OP_CANCEL ? 200 : 202);
}

static int h_send(struct req *r) { return campaign_op(r, OP_SEND); }
static int h_schedule(struct req *r) { return campaign_op(r, OP_SCHEDULE); }
static int h_cancel(struct req *r) { return campaign_op(r, OP_CANCEL); }

/* ---------------------------------------------------------------- stats */

static double ratio(int64_t a, int64_t b) { return b > 0 ? (double)a / (double)b : 0.0; }

static int h_stats(struct req *r)
{
    str_t id = req_param(r, "id");
    if (resource_require(r, &campaigns, id))
        return HTTP_EFAIL;
    struct db_res *q = NULL;
    int rc = db_query(r->db,
                      "SELECT count(*), "
                      "coalesce(sum(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), 0), "
                      "coalesce(sum(CASE WHEN state = 'sent' THEN 1 ELSE 0 END), 0), "
                      "coalesce(sum(CASE WHEN state = 'bounced' THEN 1 ELSE 0 END), 0), "
                      "coalesce(sum(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0), "
                      "coalesce(sum(CASE WHEN state = 'skipped' THEN 1 ELSE 0 END), 0), "
                      "coalesce(sum(open_count), 0), "
                      "coalesce(sum(CASE WHEN opened_at IS NOT NULL THEN 1 ELSE 0 END), 0), "
                      "coalesce(sum(click_count), 0), "
                      "coalesce(sum(CASE WHEN clicked_at IS NOT NULL THEN 1 ELSE 0 END), 0), "
                      "coalesce(sum(CASE WHEN unsubscribed_at IS NOT NULL THEN 1 ELSE 0 END), 0) "
                      "FROM campaign_recipients WHERE campaign_id = ?",
                      DB_ARGS(DBA_TEXT(id)), &q);
    if (rc)
        return http_db_fail(r, rc);
    if ((rc = db_next(q)) != 1) {
        db_res_free(q);
        return http_db_fail(r, rc < 0 ? rc : DB_ERR);
    }
    int64_t v[11];
    for (int i = 0; i < 11; i++)
        v[i] = db_int(q, i);
    db_res_free(q);
    int64_t delivered = v[2], bounces = v[3], sent = delivered + bounces;
    const struct {
        const char *key;
        int64_t v;
    } counts[] = {{"recipients", v[0]}, {"queued", v[1]},        {"sent", sent},         {"delivered", delivered},
                  {"bounces", bounces}, {"failed", v[4]},        {"skipped", v[5]},      {"opens", v[6]},
                  {"unique_opens", v[7]}, {"clicks", v[8]},      {"unique_clicks", v[9]}, {"unsubscribes", v[10]}};
    const struct {
        const char *key;
        double v;
    } rates[] = {{"delivery", ratio(delivered, sent)}, {"bounce", ratio(bounces, sent)},
                 {"open", ratio(v[7], delivered)},     {"click", ratio(v[9], delivered)},
                 {"click_to_open", ratio(v[9], v[7])}, {"unsubscribe", ratio(v[10], delivered)}};
    struct jw *w = &r->w;
    jw_obj_begin(w);
    jw_key(w, "campaign_id");
    jw_str(w, id);
    for (size_t i = 0; i < ARRAY_LEN(counts); i++) {
        jw_key(w, counts[i].key);
        jw_int(w, counts[i].v);
    }
    jw_key(w, "rates");
    jw_obj_begin(w);
    for (size_t i = 0; i < ARRAY_LEN(rates); i++) {
        jw_key(w, rates[i].key);
        jw_double(w, rates[i].v);
    }
    jw_obj_end(w);
    jw_obj_end(w);
    return 0;
}

static const struct http_col rcpt_cols[] = {
    {"id", COL_INT},          {"email", COL_TEXT},        {"name", COL_TEXT},          {"state", COL_TEXT},
    {"attempts", COL_INT},    {"error", COL_TEXT},        {"sent_at", COL_TIME},       {"opened_at", COL_TIME},
    {"open_count", COL_INT},  {"clicked_at", COL_TIME},   {"click_count", COL_INT},    {"unsubscribed_at", COL_TIME},
    {NULL, 0}};

static void rcpt_row(struct jw *w, const struct db_res *res) { http_write_row(w, res, rcpt_cols); }

static const char *const rcpt_states[] = {"queued", "sent", "failed", "bounced", "skipped", NULL};

static int h_recipients(struct req *r)
{
    static const char *const allowed[] = {"state", NULL};
    str_t id = req_param(r, "id");
    if (resource_require(r, &campaigns, id))
        return HTTP_EFAIL;
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    db_arg args[4];
    size_t n = 0;
    args[n++] = DBA_TEXT(id);
    const str_t *st = req_query(r, "state");
    if (st) {
        bool ok = false;
        for (const char *const *s = rcpt_states; *s; s++)
            ok = ok || str_eq(*st, str_c(*s));
        if (!ok)
            return http_invalid(r, "state", "must be one of queued, sent, failed, bounced, skipped");
        args[n++] = DBA_TEXT(*st);
    }
    struct http_list_query lq = {
        .cols = "id, email, name, state, attempts, error, ts_ms(sent_at), ts_ms(opened_at), open_count, "
                "ts_ms(clicked_at), click_count, ts_ms(unsubscribed_at)",
        .from = "FROM campaign_recipients",
        .where = st ? " WHERE campaign_id = ? AND state = ?" : " WHERE campaign_id = ?",
        .order = "id ASC",
        .row = rcpt_row};
    return http_list(r, &lq, args, n, ARRAY_LEN(args));
}

/* ---------------------------------------------------------------- routes */

static const struct json_field schedule_f[] = {
    {.name = "at", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 40, .format = "date-time",
     .description = "RFC 3339 time in the future (within a year)"},
    {0}};
static const struct json_schema schedule_s = {schedule_f, false};

#define CAMPAIGN_REF OPENAPI_JSON({"$ref": "#/components/schemas/Campaign"})

static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/email-lists/{id}/subscribers", .handler = h_import, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &import_s, .body_max = MK_IMPORT_BODY,
     .summary = "Import subscribers (bulk, up to 10,000; deduplicated by normalised address; double opt-in)",
     .tag = "marketing",
     .output = OPENAPI_JSON({"type": "object", "required": ["received", "imported", "duplicates", "status"],
                             "properties": {"received": {"type": "integer"}, "imported": {"type": "integer"},
                                            "duplicates": {"type": "integer"},
                                            "status": {"type": "string", "enum": ["pending", "active"]}}})},
    {.method = "GET", .pattern = "/api/v1/email-lists/{id}/subscribers", .handler = h_subscribers,
     .auth = AUTH_USER, .rl = RL_READ, .flags = ROUTE_PAGINATED, .summary = "Subscribers of a list",
     .tag = "marketing", .output = OPENAPI_JSON({"$ref": "#/components/schemas/Subscriber"})},
    {.method = "POST", .pattern = "/api/v1/campaigns/{id}/send", .handler = h_send, .auth = AUTH_USER,
     .rl = RL_WRITE, .summary = "Send a draft campaign now (a job mails it in batches)", .tag = "marketing",
     .output = CAMPAIGN_REF, .errors = "409"},
    {.method = "POST", .pattern = "/api/v1/campaigns/{id}/schedule", .handler = h_schedule, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &schedule_s, .summary = "Schedule a draft campaign {at}", .tag = "marketing",
     .output = CAMPAIGN_REF, .errors = "409"},
    {.method = "POST", .pattern = "/api/v1/campaigns/{id}/cancel", .handler = h_cancel, .auth = AUTH_USER,
     .rl = RL_WRITE, .summary = "Unschedule a scheduled campaign (back to draft) or stop one that is sending",
     .tag = "marketing", .output = CAMPAIGN_REF, .errors = "409"},
    {.method = "GET", .pattern = "/api/v1/campaigns/{id}/stats", .handler = h_stats, .auth = AUTH_USER,
     .rl = RL_READ, .summary = "Delivery, open, click, unsubscribe and bounce counts and rates", .tag = "marketing",
     .output = OPENAPI_JSON({"type": "object",
         "required": ["campaign_id", "recipients", "queued", "sent", "delivered", "bounces", "failed", "skipped", "opens",
                      "unique_opens", "clicks", "unique_clicks", "unsubscribes", "rates"],
         "properties": {
         "campaign_id": {"type": "string", "format": "uuid"}, "recipients": {"type": "integer"},
         "queued": {"type": "integer"}, "sent": {"type": "integer", "description": "delivered + bounces"},
         "delivered": {"type": "integer"}, "bounces": {"type": "integer"}, "failed": {"type": "integer"},
         "skipped": {"type": "integer"}, "opens": {"type": "integer"}, "unique_opens": {"type": "integer"},
         "clicks": {"type": "integer"}, "unique_clicks": {"type": "integer"}, "unsubscribes": {"type": "integer"},
         "rates": {"type": "object", "required": ["delivery", "bounce", "open", "click", "click_to_open", "unsubscribe"],
                   "properties": {
             "delivery": {"type": "number"}, "bounce": {"type": "number"}, "open": {"type": "number"},
             "click": {"type": "number"}, "click_to_open": {"type": "number"},
             "unsubscribe": {"type": "number"}}}}})},
    {.method = "GET", .pattern = "/api/v1/campaigns/{id}/recipients", .handler = h_recipients, .auth = AUTH_USER,
     .rl = RL_READ, .flags = ROUTE_PAGINATED, .summary = "Per-recipient delivery state and tracking (filter state)",
     .tag = "marketing",
     .output = OPENAPI_JSON({"type": "object",
         "required": ["id", "email", "name", "state", "attempts", "error", "sent_at", "opened_at", "open_count", "clicked_at",
                      "click_count", "unsubscribed_at"],
         "properties": {
         "id": {"type": "integer"}, "email": {"type": "string"}, "name": {"type": "string"},
         "state": {"type": "string", "enum": ["queued", "sent", "failed", "bounced", "skipped"]},
         "attempts": {"type": "integer"}, "error": {"type": ["string", "null"]},
         "sent_at": {"type": ["string", "null"], "format": "date-time"},
         "opened_at": {"type": ["string", "null"], "format": "date-time"}, "open_count": {"type": "integer"},
         "clicked_at": {"type": ["string", "null"], "format": "date-time"}, "click_count": {"type": "integer"},
         "unsubscribed_at": {"type": ["string", "null"], "format": "date-time"}}})},
};

static void register_routes(void)
{
    resource_register(&email_lists);
    resource_register(&email_subscribers);
    resource_register(&campaigns);
    router_add(routes, ARRAY_LEN(routes));
    mk__register_track_routes();
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    (void)db;
    return mk__tokens_init(cfg, err);
}

const struct module marketing_module = {
    .name = "marketing",
    .config = mk__config,
    .register_routes = register_routes,
    .register_jobs = mk__register_jobs,
    .init = init,
};
