/*
 * certificates.c — certificate templates and certificates (API.md §10,
 * issue 12 item 4): descriptors, routes and the module entry.
 *
 *   /api/v1/certificate-templates          staff CRUD: name, title, body with
 *                                          {{name}} {{event}} {{date}} {{city}}
 *                                          {{number}} variables, primary and
 *                                          text colours (#RRGGBB), logo_url
 *   POST /api/v1/certificates/generate     (staff) {event_id, template_id} → 202
 *                                          and a job rendering one PDF per
 *                                          checked-in attendee still without one
 *   GET  /api/v1/certificates[/{id}]       own (staff: all)
 *   GET  /api/v1/certificates/{id}/download   the PDF (owner or staff)
 *   GET  /api/v1/certificates/verify/{number} public: name, event, date, status
 *   POST /api/v1/certificates/{id}/revoke  (staff) {reason}
 *
 * The PDF is a file (files module, purpose certificate, owned by the
 * attendee; certificate_files links them) stored through the files
 * module's internal API by the job (render.c); a download answers its bytes
 * (200, application/pdf, on local and S3 storage alike). Certificates
 * rendered before kept the PDF base64 in the row: those are decoded on the
 * worker pool as before.
 */
#include <sodium.h>

#include <stdlib.h>

#include "core/timeutil.h"
#include "core/uuid.h"
#include "core/workpool.h"
#include "modules/audit/audit.h"
#include "modules/certificates/certificates_internal.h"
#include "modules/events/events.h"
#include "modules/files/files.h"
#include "modules/users/identity.h"
#include "transport/mail.h"

#include "core/banned.h"

static char *g_public_url;

const char *certificates__public_url(void) { return g_public_url; }

json_t *certificates__sample_vars(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "Ada Yılmaz", "event", "Örnek Etkinlik", "date",
                     "2026-12-04", "city", "İstanbul", "number", "CERT-2026-ABCDEFGHJK");
}

/* ---- descriptors ---- */

static int template_check(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id);

static const struct rfield template_fields[] = {
    {.name = "name", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT, .min = 1, .max = 100},
    {.name = "title", .type = RF_TEXT, .flags = RF_REQUIRED, .min = 1, .max = 200,
     .description = "the heading, e.g. \"Katılım Sertifikası\""},
    {.name = "body", .type = RF_TEXT, .flags = RF_REQUIRED, .min = 1, .max = CERT_BODY_MAX,
     .description = "text with {{name}}, {{event}}, {{date}}, {{city}}, {{number}}"},
    {.name = "primary_color", .type = RF_TEXT, .max = 7, .def = "\"#1F3A93\"", .description = "#RRGGBB"},
    {.name = "text_color", .type = RF_TEXT, .max = 7, .def = "\"#222222\"", .description = "#RRGGBB"},
    {.name = "logo_url", .type = RF_TEXT, .flags = RF_NULLABLE, .max = 2000, .check = RC_URL,
     .description = "a PNG fetched when certificates are rendered (left out if it cannot be fetched)"},
    {.name = "created_by", .type = RF_TEXT, .flags = RF_READONLY | RF_NULLABLE},
    {0}};
const struct resource certificate_templates = {
    .name = "certificate_templates", .singular = "certificate template", .path = "/api/v1/certificate-templates",
    .table = "certificate_templates", .tag = "certificates", .fields = template_fields, .owner = "created_by",
    .read = RP_STAFF, .create = RP_STAFF, .update = RP_STAFF, .del = RP_STAFF, .check = template_check};

static const char *const cert_status[] = {"pending", "valid", "revoked", NULL};
static const struct rfield cert_fields[] = {
    {.name = "number", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER},
    {.name = "event_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER},
    {.name = "user_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER},
    {.name = "template_id", .type = RF_TEXT, .flags = RF_READONLY | RF_NULLABLE},
    {.name = "attendee_name", .type = RF_TEXT, .flags = RF_READONLY},
    {.name = "event_title", .type = RF_TEXT, .flags = RF_READONLY},
    {.name = "event_date", .type = RF_TIME, .flags = RF_READONLY | RF_SORT},
    {.name = "status", .type = RF_ENUM, .values = cert_status, .flags = RF_READONLY | RF_FILTER},
    {.name = "pdf_size", .type = RF_INT, .flags = RF_READONLY | RF_NULLABLE},
    {.name = "revoked_at", .type = RF_TIME, .flags = RF_READONLY | RF_NULLABLE},
    {.name = "revoke_reason", .type = RF_TEXT, .flags = RF_READONLY | RF_NULLABLE},
    {0}};
const struct resource certificates = {
    .name = "certificates", .singular = "certificate", .path = "/api/v1/certificates", .table = "certificates",
    .tag = "certificates", .fields = cert_fields, .owner = "user_id", .read = RP_OWNER_OR_STAFF,
    .routes = RR_LIST | RR_GET};

static bool color_ok(const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) != 7 || s[0] != '#')
        return false;
    for (int i = 1; i < 7; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

/* Colours are #RRGGBB; the body must render with the known variables. */
static int template_check(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id)
{
    (void)res;
    (void)act;
    (void)id;
    static const char *const colors[] = {"primary_color", "text_color"};
    for (size_t i = 0; i < ARRAY_LEN(colors); i++) {
        const json_t *v = json_object_get(body, colors[i]);
        if (v && !color_ok(v))
            http_field_error(r, colors[i], "must be a colour #RRGGBB");
    }
    const json_t *b = json_object_get(body, "body");
    if (json_is_string(b)) {
        json_t *vars = certificates__sample_vars();
        struct buf out = BUF_INIT(1u << 20), err = BUF_INIT(512);
        if (mail_render(json_string_value(b), vars, false, &out, &err))
            http_field_error(r, "body", "unknown variable or unclosed {{: use {{name}}, {{event}}, {{date}}, "
                                        "{{city}}, {{number}}");
        buf_free(&out);
        buf_free(&err);
        json_decref(vars);
    }
    if (r->err.nerrs)
        return http_fail(r, 422, "VALIDATION_ERROR", "invalid certificate template");
    return 0;
}

static int audit_change(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id,
                        const json_t *before, const json_t *after, void *ud)
{
    (void)db;
    (void)ud;
    if (res != &certificate_templates || !r)
        return DB_OK;
    static const char *const verbs[] = {[RA_CREATE] = "certificate_template.create",
                                        [RA_UPDATE] = "certificate_template.update",
                                        [RA_DELETE] = "certificate_template.delete"};
    struct audit_entry e = {.action = verbs[act], .category = "certificates", .target_type = "certificate_template",
                            .target_id = id, .before = before, .after = after, .success = true};
    return audit_record_req(r, &e);
}

/* ---- generate ---- */

struct gen_ctx {
    str_t event_id, template_id;
    char job[40];
    int64_t attendees;
    bool duplicate;
};

static int tx_generate(struct req *r, void *arg)
{
    struct gen_ctx *c = arg;
    bool found = false;
    int64_t one = 0;
    int rc = db_query_int(r->db, "SELECT 1 FROM certificate_templates WHERE id = ?", DB_ARGS(DBA_TEXT(c->template_id)),
                          &one, &found);
    if (rc != DB_OK)
        return rc;
    if (!found)
        return http_invalid(r, "template_id", "no such certificate template");
    rc = db_query_int(r->db,
                      "SELECT count(*) FROM event_registrations g WHERE g.event_id = ? AND g.status = 'confirmed' "
                      "AND g.checked_in_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM certificates c "
                      "WHERE c.event_id = g.event_id AND c.user_id = g.user_id)",
                      DB_ARGS(DBA_TEXT(c->event_id)), &c->attendees, &found);
    if (rc != DB_OK)
        return rc;
    struct buf *payload = req_buf(r, 512), *key = req_buf(r, 256);
    (void)buf_printf(payload, "{\"event_id\":\"%.*s\",\"template_id\":\"%.*s\"}", (int)c->event_id.len,
                     c->event_id.p, (int)c->template_id.len, c->template_id.p);
    (void)buf_printf(key, "certificates.generate:%.*s", (int)c->event_id.len, c->event_id.p);
    struct job_opts o = JOB_OPTS_DEFAULT;
    o.unique_key = buf_cstr(key);
    rc = jobs_enqueue(r->db, "certificates.generate", buf_str(payload), &o, c->job);
    if (rc < 0)
        return rc;
    c->duplicate = rc == JOBS_EDUPLICATE;
    json_t *after = json_pack("{s:s%, s:s%, s:I}", "template_id", c->template_id.p, c->template_id.len, "job_id",
                              c->job, strlen(c->job), "attendees", (json_int_t)c->attendees);
    struct audit_entry e = {.action = "certificates.generate", .category = "certificates", .target_type = "event",
                            .target_id = c->event_id, .after = after, .success = true};
    rc = after ? audit_record_req(r, &e) : DB_ERR;
    json_decref(after);
    return rc;
}

static int h_generate(struct req *r)
{
    struct gen_ctx c = {0};
    const json_t *e = json_object_get(r->body, "event_id"), *t = json_object_get(r->body, "template_id");
    c.event_id = str_make(json_string_value(e), json_string_length(e));
    c.template_id = str_make(json_string_value(t), json_string_length(t));
    if (!uuid_valid(c.event_id))
        return http_invalid(r, "event_id", "no such event");
    if (!uuid_valid(c.template_id))
        return http_invalid(r, "template_id", "no such certificate template");
    bool visible = false;
    struct caller who = resource_caller(r);
    int rc = resource_visible(&who, r->db, &events_events, c.event_id, &visible);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (!visible)
        return http_invalid(r, "event_id", "no such event");
    if (req_tx(r, DB_TX_WRITE, tx_generate, &c))
        return HTTP_EFAIL;
    r->status = 202;
    struct jw *w = &r->w;
    jw_obj_begin(w);
    jw_key(w, "job_id");
    jw_cstr(w, c.job);
    jw_key(w, "event_id");
    jw_str(w, c.event_id);
    jw_key(w, "template_id");
    jw_str(w, c.template_id);
    jw_key(w, "attendees");
    jw_int(w, c.attendees);
    jw_key(w, "already_running");
    jw_bool(w, c.duplicate);
    jw_obj_end(w);
    return 0;
}

/* ---- download ---- */

struct decode_work {
    str_t b64;
    unsigned char *bin;
    size_t cap, len;
    int rc;
};

static void do_decode(void *arg)
{
    struct decode_work *d = arg;
    d->rc = sodium_base642bin(d->bin, d->cap, d->b64.p, d->b64.len, NULL, &d->len, NULL,
                              sodium_base64_VARIANT_ORIGINAL);
}

static int h_download(struct req *r)
{
    str_t id = req_param(r, "id");
    struct db_res *q = NULL;
    if (resource_require_row(r, &certificates, id,
                             "t.status, t.pdf, t.number, (SELECT file_id FROM certificate_files WHERE certificate_id = t.id)",
                             &q))
        return HTTP_EFAIL;
    if (!str_is(db_text(q, 0), "pending") && !db_isnull(q, 3)) { /* a file (files module) */
        struct buf *fid = req_buf(r, 64);
        (void)buf_put(fid, db_text(q, 3));
        db_res_free(q);
        return files_send(r, buf_str(fid), NULL, FILES_SEND_PROXY);
    }
    if (str_is(db_text(q, 0), "pending") || db_isnull(q, 1)) {
        db_res_free(q);
        return http_fail(r, 409, "CONFLICT", "the certificate is not rendered yet");
    }
    /* rendered before certificates were files: base64 in the row */
    struct decode_work d = {.b64 = db_text(q, 1)};
    d.cap = d.b64.len / 4 * 3 + 3;
    struct buf *name = req_buf(r, 256);
    (void)buf_printf(name, "attachment; filename=\"%s.pdf\"", db_text(q, 2).p);
    d.bin = (unsigned char *)buf_reserve(&r->out, d.cap);
    if (d.bin)
        work_run(do_decode, &d);
    db_res_free(q);
    if (!d.bin || d.rc) {
        http_fail(r, 500, "INTERNAL_ERROR", "the stored certificate could not be read");
        return HTTP_EFAIL;
    }
    buf_commit(&r->out, d.len);
    r->content_type = "application/pdf";
    req_header(r, "content-disposition", buf_str(name));
    return 0;
}

/* ---- verify (public) ---- */

static int h_verify(struct req *r)
{
    str_t number = req_param(r, "number");
    struct db_res *q = NULL;
    int rc = db_query(r->db,
                      "SELECT number, attendee_name, event_title, ts_ms(event_date), status, ts_ms(revoked_at), "
                      "event_id FROM certificates WHERE number = ? AND status != 'pending'",
                      DB_ARGS(DBA_TEXT(number)), &q);
    if (rc == DB_OK && (rc = db_next(q)) == 0) {
        db_res_free(q);
        return http_fail(r, 404, "NOT_FOUND", "no certificate with this number");
    }
    if (rc < 0) {
        db_res_free(q);
        return http_db_fail(r, rc);
    }
    static const struct http_col cols[] = {{"number", COL_TEXT},     {"name", COL_TEXT},
                                           {"event", COL_TEXT},      {"date", COL_TIME},
                                           {"status", COL_TEXT},     {"revoked_at", COL_TIME},
                                           {"event_id", COL_TEXT},   {NULL, 0}};
    jw_obj_begin(&r->w);
    http_write_cols(&r->w, q, cols);
    jw_key(&r->w, "valid");
    jw_bool(&r->w, str_is(db_text(q, 4), "valid"));
    jw_obj_end(&r->w);
    db_res_free(q);
    return 0;
}

/* ---- revoke ---- */

static int tx_revoke(struct req *r, void *arg)
{
    str_t id = *(str_t *)arg;
    const char *reason = json_string_value(json_object_get(r->body, "reason"));
    int64_t n = 0, now = time_now_ms();
    int rc = db_exec(r->db,
                     "UPDATE certificates SET status = 'revoked', revoked_at = ms_ts(?), revoke_reason = ?, "
                     "version = version + 1, updated_at = ms_ts(?) WHERE id = ? AND status = 'valid'",
                     DB_ARGS(DBA_INT(now), reason ? DBA_CSTR(reason) : DBA_NULL, DBA_INT(now), DBA_TEXT(id)), &n);
    if (rc != DB_OK)
        return rc;
    if (n == 0)
        return http_fail(r, 409, "CONFLICT", "only a valid certificate can be revoked");
    json_t *after = json_pack("{s:s, s:s?}", "status", "revoked", "reason", reason);
    struct audit_entry e = {.action = "certificate.revoke", .category = "certificates", .target_type = "certificate",
                            .target_id = id, .after = after, .success = true};
    rc = after ? audit_record_req(r, &e) : DB_ERR;
    json_decref(after);
    return rc;
}

static int h_revoke(struct req *r)
{
    str_t id = req_param(r, "id");
    if (resource_require(r, &certificates, id))
        return HTTP_EFAIL;
    if (req_tx(r, DB_TX_WRITE, tx_revoke, &id))
        return HTTP_EFAIL;
    return resource_respond(r, &certificates, id, 200);
}

/* ---- module ---- */

static const struct json_field generate_f[] = {
    {.name = "event_id", .type = JF_STRING, .flags = JF_REQUIRED, .max = 64},
    {.name = "template_id", .type = JF_STRING, .flags = JF_REQUIRED, .max = 64},
    {0}};
static const struct json_schema generate_s = {generate_f, false};
static const struct json_field revoke_f[] = {{.name = "reason", .type = JF_STRING, .max = 500}, {0}};
static const struct json_schema revoke_s = {revoke_f, false};

static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/certificates/generate", .handler = h_generate, .auth = AUTH_STAFF,
     .rl = RL_WRITE, .input = &generate_s,
     .summary = "Render a certificate PDF for every checked-in attendee of an event who has none (a job; 202)",
     .tag = "certificates",
     .output = OPENAPI_JSON({"type": "object", "required": ["job_id", "event_id", "template_id", "attendees", "already_running"],
         "properties": {
         "job_id": {"type": "string", "format": "uuid", "description": "GET /api/v1/admin/jobs/{id}"},
         "event_id": {"type": "string", "format": "uuid"}, "template_id": {"type": "string", "format": "uuid"},
         "attendees": {"type": "integer", "description": "checked-in attendees still without a certificate"},
         "already_running": {"type": "boolean"}}})},
    {.method = "GET", .pattern = "/api/v1/certificates/{id}/download", .handler = h_download, .auth = AUTH_USER,
     .rl = RL_READ, .summary = "The certificate PDF (owner or staff)", .tag = "certificates", .errors = "409",
     .output_type = "application/pdf", .output = OPENAPI_JSON({"type" : "string", "format" : "binary"})},
    {.method = "GET", .pattern = "/api/v1/certificates/verify/{number}", .handler = h_verify, .auth = AUTH_NONE,
     .rl = RL_READ, .summary = "Public check of a certificate number: name, event, date, valid or revoked",
     .tag = "certificates",
     .output = OPENAPI_JSON({"type": "object", "required": ["number", "name", "event", "date", "status", "revoked_at", "event_id", "valid"],
         "properties": {
         "number": {"type": "string"}, "name": {"type": "string"}, "event": {"type": "string"},
         "date": {"type": "string", "format": "date-time"}, "status": {"type": "string", "enum": ["valid", "revoked"]},
         "revoked_at": {"type": ["string", "null"], "format": "date-time"}, "event_id": {"type": "string", "format": "uuid"},
         "valid": {"type": "boolean"}}})},
    {.method = "POST", .pattern = "/api/v1/certificates/{id}/revoke", .handler = h_revoke, .auth = AUTH_STAFF,
     .rl = RL_WRITE, .input = &revoke_s, .summary = "Revoke a certificate (staff); verification then says revoked",
     .tag = "certificates", .errors = "409", .output = OPENAPI_JSON({"$ref": "#/components/schemas/Certificate"})},
};

static void register_routes(void)
{
    resource_register(&certificate_templates);
    resource_register(&certificates);
    router_add(routes, ARRAY_LEN(routes));
    resource_on_change(RES_HOOK_TX, audit_change, NULL);
}

static int config(const struct config *cfg, struct buf *err)
{
    char *url = config_env_dup("TEMEL_PUBLIC_URL");
    if (!url) {
        struct buf def = BUF_INIT(512);
        (void)buf_printf(&def, "http://%s:%d", cfg->host, cfg->port);
        url = buf_detach(&def, NULL);
    } else if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        (void)buf_puts(err, "TEMEL_PUBLIC_URL: must start with http:// or https://");
        free(url);
        return -1;
    }
    size_t n = strlen(url);
    while (n > 8 && url[n - 1] == '/')
        url[--n] = '\0';
    free(g_public_url);
    g_public_url = url;
    return 0;
}

const struct module certificates_module = {
    .name = "certificates",
    .config = config,
    .register_routes = register_routes,
    .register_jobs = certificates__register_jobs,
};
