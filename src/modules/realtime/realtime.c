/*
 * realtime.c — the module entry: settings, routes, the realtime.publish job,
 * the admin broadcast and presence, health and metrics.
 *
 *   GET  /api/v1/realtime                     WebSocket (ws.c)
 *   GET  /api/v1/realtime/sse?channels=       Server-Sent Events (sse.c)
 *   POST /api/v1/admin/realtime/broadcast     {channel?, event, data?} (admin)
 *   GET  /api/v1/admin/presence               users online now (staff; pages)
 *
 * Settings: TEMEL_REALTIME_PING_MS (30000), TEMEL_REALTIME_AUTH_TIMEOUT_MS
 * (10000), TEMEL_REALTIME_MAX_MESSAGE (4096 bytes); with REDIS_URL (src/redis)
 * events and presence span every instance (bridge.c).
 */
#include <stdlib.h>

#include "core/log.h"
#include "jobs/jobs.h"
#include "modules/ai/ai.h"
#include "modules/audit/audit.h"
#include "modules/support/support.h"
#include "modules/realtime/realtime_internal.h"
#include "redis/redis.h"

#include "core/banned.h"

/* ---- publishing from a transaction ---- */

int realtime_publish_tx(struct db *db, const char *channel, const char *event, str_t data_json)
{
    struct buf p = BUF_INIT(BUF_MAX_JSON_RESPONSE);
    struct jw w;
    jw_init(&w, &p);
    jw_obj_begin(&w);
    rt_event_fields(&w, str_c(channel), str_c(event), data_json);
    jw_obj_end(&w);
    struct job_opts o = JOB_OPTS_DEFAULT;
    o.priority = JOB_PRIO_HIGH;
    o.max_attempts = 1; /* at most once, like every realtime delivery */
    int rc = buf_ok(&p) ? jobs_enqueue(db, "realtime.publish", buf_str(&p), &o, NULL) : DB_ERR;
    buf_free(&p);
    return rc == JOBS_EDUPLICATE ? 0 : rc;
}

static enum job_result job_publish(struct job *j, struct buf *result, struct buf *error)
{
    (void)result;
    const char *ch = json_string_value(json_object_get(j->payload, "channel"));
    const char *ev = json_string_value(json_object_get(j->payload, "event"));
    json_t *data = json_object_get(j->payload, "data");
    if (!ch || !ev) {
        (void)buf_puts(error, "payload needs channel and event");
        return JOB_FAIL;
    }
    char *text = data && !json_is_null(data) ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    realtime_publish(ch, ev, text ? str_c(text) : STR_NULL);
    free(text);
    return JOB_OK;
}

/* ---- admin: broadcast ---- */

static bool event_name_ok(str_t e)
{
    if (e.len == 0 || e.len > RT_MAX_EVENT)
        return false;
    for (size_t i = 0; i < e.len; i++) {
        char c = e.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == ':'))
            return false;
    }
    return true;
}

static int tx_audit(struct req *r, void *arg) { return audit_record_req(r, arg); }

static int h_broadcast(struct req *r)
{
    json_t *jc = json_object_get(r->body, "channel"), *data = json_object_get(r->body, "data");
    str_t ch = jc ? str_make(json_string_value(jc), json_string_length(jc)) : STRLIT("broadcast");
    str_t ev = str_make(json_string_value(json_object_get(r->body, "event")),
                        json_string_length(json_object_get(r->body, "event")));
    struct buf *why = req_buf(r, 512);
    if (rt_channel_syntax(ch, why))
        return http_invalid(r, "channel", buf_cstr(why));
    if (!event_name_ok(ev))
        return http_invalid(r, "event", "1..64 characters of A-Z, a-z, 0-9 and . _ - :");
    char *text = data && !json_is_null(data) ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char chan[RT_MAX_CHANNEL + 1], evn[RT_MAX_EVENT + 1];
    (void)str_copy(chan, ch.p, sizeof(chan));
    (void)str_copy(evn, ev.p, sizeof(evn));
    json_t *after = json_pack("{s:s,s:s}", "channel", chan, "event", evn);
    struct audit_entry e = {.actor_id = r->user_id, .action = "realtime.broadcast", .category = "realtime",
                            .target_type = "channel", .target_id = str_c(chan), .after = after, .success = true};
    int rc = req_tx(r, DB_TX_WRITE, tx_audit, &e);
    json_decref(after);
    if (rc) {
        free(text);
        return HTTP_EFAIL;
    }
    realtime_publish(chan, evn, text ? str_c(text) : STR_NULL);
    free(text);
    r->status = 202;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "channel");
    jw_cstr(&r->w, chan);
    jw_key(&r->w, "event");
    jw_cstr(&r->w, evn);
    jw_obj_end(&r->w);
    return 0;
}

/* ---- admin: presence ---- */

static int h_presence(struct req *r)
{
    static const char *const allowed[] = {NULL};
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    struct rt_presence_row *rows;
    size_t n = rt_presence_list(&rows);
    int64_t from = (r->page - 1) * r->limit;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "data");
    jw_arr_begin(&r->w);
    for (int64_t i = from; i < (int64_t)n && i < from + r->limit; i++) {
        struct db_res *res;
        int rc = db_query(r->db, "SELECT email, name, role FROM users WHERE id = ?",
                          DB_ARGS(DBA_CSTR(rows[i].user_id)), &res);
        if (rc != DB_OK) {
            free(rows);
            return http_db_fail(r, rc);
        }
        rc = db_next(res);
        jw_obj_begin(&r->w);
        jw_key(&r->w, "user_id");
        jw_cstr(&r->w, rows[i].user_id);
        jw_key(&r->w, "email");
        if (rc == 1)
            jw_str(&r->w, db_text(res, 0));
        else
            jw_null(&r->w);
        jw_key(&r->w, "name");
        if (rc == 1)
            jw_str(&r->w, db_text(res, 1));
        else
            jw_null(&r->w);
        jw_key(&r->w, "role");
        if (rc == 1)
            jw_str(&r->w, db_text(res, 2));
        else
            jw_null(&r->w);
        jw_key(&r->w, "connections");
        jw_int(&r->w, rows[i].connections);
        jw_key(&r->w, "online_since");
        jw_time(&r->w, rows[i].since_ms);
        jw_obj_end(&r->w);
        db_res_free(res);
        if (rc < 0) {
            free(rows);
            return http_db_fail(r, rc);
        }
    }
    jw_arr_end(&r->w);
    http_write_page_meta(r, (int64_t)n);
    jw_obj_end(&r->w);
    free(rows);
    return 0;
}

/* ---- module ---- */

static int config(const struct config *cfg, struct buf *err)
{
    (void)cfg;
    if (config_env_int("TEMEL_REALTIME_PING_MS", 30000, 100, 3600000, &rt_cfg.ping_ms, err) ||
        config_env_int("TEMEL_REALTIME_AUTH_TIMEOUT_MS", 10000, 100, 600000, &rt_cfg.auth_timeout_ms, err) ||
        config_env_int("TEMEL_REALTIME_MAX_MESSAGE", 4096, 256, 1 << 20, &rt_cfg.max_message, err))
        return -1;
    return 0;
}

static const struct json_field broadcast_f[] = {
    {.name = "channel", .type = JF_STRING, .min = 1, .max = RT_MAX_CHANNEL,
     .description = "default broadcast (every connection); or user:<id>, tickets:<id>, staff, events:<id>, jobs:<id>"},
    {.name = "event", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = RT_MAX_EVENT,
     .description = "the event name clients see, e.g. maintenance.notice"},
    {.name = "data", .type = JF_ANY, .flags = JF_NULLABLE, .description = "any JSON value, sent as is"},
    {0}};
static const struct json_schema broadcast_s = {broadcast_f, false};

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/realtime", .handler = rt_h_websocket, .auth = AUTH_NONE, .rl = RL_READ,
     .summary = "WebSocket (HTTP/1.1 Upgrade): first message {type:auth,token}; then subscribe/unsubscribe to "
                "channels; events arrive as {type:event,channel,event,data}",
     .tag = "realtime", .status = 101},
    {.method = "GET", .pattern = "/api/v1/realtime/sse", .handler = rt_h_sse, .auth = AUTH_USER, .rl = RL_READ,
     .summary = "The realtime stream as Server-Sent Events (?channels=a,b); heartbeat comments keep it open",
     .tag = "realtime",
     .params = OPENAPI_JSON([ {"name" : "channels", "in" : "query", "description" : "comma-separated channel names", "schema" : {"type" : "string"}} ]),
     .output_type = "text/event-stream",
     .output = OPENAPI_JSON({"type" : "string", "description" : "Server-Sent Events: each event is `event: <name>` and `data: <JSON>` lines; `:` comment lines are heartbeats"})},
    {.method = "POST", .pattern = "/api/v1/admin/realtime/broadcast", .handler = h_broadcast, .auth = AUTH_ADMIN,
     .rl = RL_WRITE, .input = &broadcast_s,
     .summary = "Publish an event to a channel (default: every connection); audited", .tag = "admin",
     .output = OPENAPI_JSON({"type": "object", "required": ["channel", "event"], "properties": {
         "channel": {"type": "string", "description": "where it was published"},
         "event": {"type": "string"}}})},
    {.method = "GET", .pattern = "/api/v1/admin/presence", .handler = h_presence, .auth = AUTH_STAFF, .rl = RL_READ,
     .flags = ROUTE_PAGINATED, .summary = "Users online now (open realtime connections, every instance)",
     .tag = "admin",
     .output = OPENAPI_JSON({"type": "object", "required": ["user_id", "email", "name", "role", "connections",
                                                            "online_since"], "properties": {
         "user_id": {"type": "string", "format": "uuid"},
         "email": {"type": ["string", "null"], "format": "email"},
         "name": {"type": ["string", "null"]},
         "role": {"type": ["string", "null"]},
         "connections": {"type": "integer", "minimum": 1, "description": "open WebSocket and SSE connections"},
         "online_since": {"type": "string", "format": "date-time"}}})},
};

static void register_routes(void) { router_add(routes, ARRAY_LEN(routes)); }

/* AI jobs (API.md §5): ai:generating|progress|complete|error on the owner's
 * channel and on the job's own; called on a runner thread after the change
 * committed. */
static void on_ai_event(const char *event, str_t user_id, str_t job_id, int progress)
{
    struct buf d = BUF_INIT(256), ch = BUF_INIT(128);
    struct jw w;
    jw_init(&w, &d);
    jw_obj_begin(&w);
    jw_key(&w, "job_id");
    jw_str(&w, job_id);
    jw_key(&w, "progress");
    jw_int(&w, progress);
    jw_obj_end(&w);
    (void)buf_printf(&ch, "user:%.*s", STR_FMT(user_id));
    realtime_publish(buf_cstr(&ch), event, buf_str(&d));
    buf_reset(&ch);
    (void)buf_printf(&ch, "jobs:%.*s", STR_FMT(job_id));
    realtime_publish(buf_cstr(&ch), event, buf_str(&d));
    buf_free(&d);
    buf_free(&ch);
}

/* Support tickets (API.md §10): who hears what. An internal note goes to
 * staff only (tickets:<id> is the owner's too). Called after the change
 * committed, on the request's thread. */
static void publish_ticket(const char *channel_fmt, str_t id, const char *event, str_t data)
{
    struct buf ch = BUF_INIT(RT_MAX_CHANNEL + 1);
    (void)buf_printf(&ch, channel_fmt, STR_FMT(id));
    if (buf_ok(&ch))
        realtime_publish(buf_cstr(&ch), event, data);
    buf_free(&ch);
}

static void on_support_event(const struct support_event *ev, void *ud)
{
    (void)ud;
    struct buf d = BUF_INIT(512);
    struct jw w;
    jw_init(&w, &d);
    jw_obj_begin(&w);
    jw_key(&w, "ticket_id");
    jw_str(&w, ev->ticket_id);
    jw_key(&w, "actor_id");
    jw_str(&w, ev->actor_id);
    if (ev->message_id.len) {
        jw_key(&w, "message_id");
        jw_str(&w, ev->message_id);
    }
    if (ev->kind == SUPPORT_TICKET_ASSIGNED) {
        jw_key(&w, "assignee_id");
        if (ev->assignee_id.len)
            jw_str(&w, ev->assignee_id);
        else
            jw_null(&w);
    }
    if (ev->staff_only) {
        jw_key(&w, "internal");
        jw_bool(&w, true);
    }
    jw_obj_end(&w);
    str_t data = buf_str(&d);
    if (ev->staff_only || ev->kind != SUPPORT_TICKET_MESSAGE)
        realtime_publish("staff", ev->name, data);
    if (!ev->staff_only && ev->kind != SUPPORT_TICKET_CREATED)
        publish_ticket("tickets:%.*s", ev->ticket_id, ev->name, data);
    if (!ev->staff_only && ev->kind == SUPPORT_TICKET_MESSAGE && !str_eq(ev->actor_id, ev->owner_id))
        publish_ticket("user:%.*s", ev->owner_id, ev->name, data);
    if (ev->kind == SUPPORT_TICKET_ASSIGNED && ev->assignee_id.len)
        publish_ticket("user:%.*s", ev->assignee_id, ev->name, data);
    buf_free(&d);
}

static void register_jobs(void)
{
    ai_set_event_hook(on_ai_event);
    static const struct job_kind kind = {.kind = "realtime.publish", .handler = job_publish, .queue = "default",
                                         .timeout_ms = 5000};
    jobs_register(&kind);
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    (void)cfg;
    (void)db;
    support_set_notifier(on_support_event, NULL);
    return rt_bridge_init(err);
}

static bool health(struct db *db, bool db_up, struct jw *w)
{
    (void)db;
    (void)db_up;
    if (!redis_configured())
        return true;
    jw_key(w, "realtime_redis");
    jw_obj_begin(w);
    jw_key(w, "status");
    jw_cstr(w, rt_bridge_up() ? "up" : "down");
    jw_obj_end(w);
    return true; /* a Redis outage degrades to local delivery: still ready */
}

static void metrics(struct db *db, struct buf *out)
{
    (void)db;
    struct rt_stats s = rt_stats_get();
    (void)buf_printf(out,
                     "# HELP temel_realtime_connections Open realtime connections by transport.\n"
                     "# TYPE temel_realtime_connections gauge\n"
                     "temel_realtime_connections{transport=\"websocket\"} %lld\n"
                     "temel_realtime_connections{transport=\"sse\"} %lld\n"
                     "# HELP temel_realtime_published_total Events published by this instance.\n"
                     "# TYPE temel_realtime_published_total counter\n"
                     "temel_realtime_published_total %lld\n"
                     "# HELP temel_realtime_delivered_total Event frames queued to local subscribers.\n"
                     "# TYPE temel_realtime_delivered_total counter\n"
                     "temel_realtime_delivered_total %lld\n"
                     "# HELP temel_realtime_dropped_slow_total Clients dropped for an unsent backlog over 1 MiB.\n"
                     "# TYPE temel_realtime_dropped_slow_total counter\n"
                     "temel_realtime_dropped_slow_total %lld\n",
                     (long long)s.ws, (long long)s.sse, (long long)s.published, (long long)s.delivered,
                     (long long)s.dropped_slow);
}

const struct module realtime_module = {
    .name = "realtime",
    .config = config,
    .register_routes = register_routes,
    .register_jobs = register_jobs,
    .init = init,
    .health = health,
    .metrics = metrics,
};
