/*
 * delivery.c — the delivery module: reads the outbound transports' settings
 * (TEMEL_MAIL_*, TEMEL_SMS_*, TEMEL_OUTBOUND_ALLOW; transport/delivery.h),
 * registers the mail.send and sms.send jobs, and with TEMEL_ENV=test the
 * routes and the "_test" template the API tests enqueue through:
 *   POST /api/v1/_test/mail   {"to","template","vars"} → 202 {"data":{"job_id"}}
 *   POST /api/v1/_test/sms    {"to","text"}            → 202 {"data":{"job_id"}}
 */
#include "modules/delivery/delivery.h"

#include "http/http.h"
#include "transport/delivery.h"
#include "transport/mail.h"
#include "transport/sms.h"

#include "core/banned.h"

static int config(const struct config *cfg, struct buf *err)
{
    struct delivery_config c = {0};
    if (delivery_config_from_env(&c, cfg->data_dir, err)) {
        delivery_config_free(&c);
        return -1;
    }
    delivery_configure(&c); /* kept for the life of the process */
    return 0;
}

/* ---- test-only routes ---- */

static const struct json_field test_mail_fields[] = {
    {.name = "to", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 320},
    {.name = "template", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 64},
    {.name = "vars", .type = JF_OBJECT},
    {0},
};
static const struct json_schema test_mail_schema = {.fields = test_mail_fields};
static const struct json_field test_sms_fields[] = {
    {.name = "to", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 32},
    {.name = "text", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = SMS_MAX_TEXT},
    {0},
};
static const struct json_schema test_sms_schema = {.fields = test_sms_fields};

static int delivery_enqueued(struct req *r, int rc, const char *id, const char *field)
{
    if (rc == MAIL_EINVAL || rc == SMS_EINVAL)
        return http_invalid(r, field, "invalid recipient, template or variables");
    if (rc < 0)
        return http_db_fail(r, rc);
    r->status = 202;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "data");
    jw_obj_begin(&r->w);
    jw_key(&r->w, "job_id");
    jw_cstr(&r->w, id);
    jw_obj_end(&r->w);
    jw_obj_end(&r->w);
    return 0;
}

static int test_mail(struct req *r)
{
    char id[37] = "";
    int rc = mail_enqueue_ex(r->db, json_string_value(json_object_get(r->body, "to")),
                             json_string_value(json_object_get(r->body, "template")),
                             json_object_get(r->body, "vars"), NULL, id);
    return delivery_enqueued(r, rc, id, "to");
}

static int test_sms(struct req *r)
{
    char id[37] = "";
    int rc = sms_enqueue_ex(r->db, json_string_value(json_object_get(r->body, "to")),
                            json_string_value(json_object_get(r->body, "text")), NULL, id);
    return delivery_enqueued(r, rc, id, "to");
}

static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/_test/mail", .handler = test_mail, .rl = RL_WRITE, .input = &test_mail_schema,
     .summary = "Enqueue a templated mail (test only)", .tag = "test", .flags = ROUTE_TEST_ONLY},
    {.method = "POST", .pattern = "/api/v1/_test/sms", .handler = test_sms, .rl = RL_WRITE, .input = &test_sms_schema,
     .summary = "Enqueue an SMS (test only)", .tag = "test", .flags = ROUTE_TEST_ONLY},
};

static void register_routes(void) { router_add(routes, ARRAY_LEN(routes)); }

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    UNUSED(db);
    UNUSED(err);
    /* a template the API tests render (UTF-8 subject, escaped HTML) */
    if (cfg->env == ENV_TEST)
        mail_template_register("_test", "Test: {{subject}}", "Hello {{name}},\n\n{{body}}\n",
                               "<p>Hello {{name}},</p><p>{{body}}</p>");
    return 0;
}

const struct module delivery_module = {
    .name = "delivery",
    .config = config,
    .register_routes = register_routes,
    .register_jobs = delivery_register_jobs, /* mail.send, sms.send */
    .init = init,
};
