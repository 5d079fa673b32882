/*
 * ops.c — operational endpoints (API.md §2): health, metrics, the OpenAPI
 * document generated from the route table, and the docs page.
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/statvfs.h>

#include "core/log.h"
#include "core/module.h"
#include "core/timeutil.h"
#include "db/db.h"
#include "db/migrate.h"
#include "http/http.h"
#include "http/metrics.h"
#include "http/server.h"
#include "http/server_internal.h" /* g_srv_auth: the installed authenticator */

#include "core/banned.h"

#define DISK_MIN_FREE (64ll << 20)     /* below this: not ready */
#define DISK_WARN_FREE (1024ll << 20)  /* below this: degraded */

static int live(struct req *r)
{
    jw_obj_begin(&r->w);
    jw_key(&r->w, "status");
    jw_cstr(&r->w, "ok");
    jw_obj_end(&r->w);
    return 0;
}

/* Writes the /health body; returns true when the instance can serve. The
 * services object is written first (into its own buffer): a module's health
 * hook may turn the status. Without detail only {"status"} is written. */
static bool health_body(struct req *r, bool detail)
{
    struct jw sw, *w = &sw;
    int64_t lat_us = 0;
    bool db_up = db_ping(r->db, &lat_us) == DB_OK;
    int version = 0, pending = 0;
    if (db_up && migrate_current(r->db, &version, &pending) != DB_OK)
        db_up = false;
    struct statvfs vfs;
    const char *dir = r->cfg->data_dir;
    bool disk_known = statvfs(dir, &vfs) == 0 || statvfs(".", &vfs) == 0;
    int64_t free_b = disk_known ? (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize : -1;
    bool disk_ok = !disk_known || free_b >= DISK_MIN_FREE;
    bool disk_warn = disk_known && free_b < DISK_WARN_FREE;
    int64_t rss = metrics_rss_bytes();
    bool ready = db_up && disk_ok && pending == 0;
    struct buf *services = req_buf(r, 64u << 10);

    jw_init(w, services);
    jw_obj_begin(w);
    jw_key(w, "database");
    jw_obj_begin(w);
    jw_key(w, "status");
    jw_cstr(w, db_up ? "up" : "down");
    jw_key(w, "engine");
    jw_cstr(w, db_kind(r->db) == DB_SQLITE ? "sqlite" : "postgres");
    jw_key(w, "latency_ms");
    jw_double(w, (double)lat_us / 1000.0);
    jw_key(w, "schema_version");
    jw_int(w, version);
    jw_key(w, "pending_migrations");
    jw_int(w, pending);
    jw_obj_end(w);
    /* each module's services (the job queue, ...) */
    for (const struct module *const *m = temel_modules; *m; m++)
        if ((*m)->health && !(*m)->health(r->db, db_up, w))
            ready = false;
    jw_key(w, "disk");
    jw_obj_begin(w);
    jw_key(w, "status");
    jw_cstr(w, !disk_ok ? "down" : disk_warn ? "low" : "up");
    jw_key(w, "path");
    jw_cstr(w, dir);
    jw_key(w, "free_bytes");
    jw_int(w, free_b);
    jw_obj_end(w);
    jw_key(w, "memory");
    jw_obj_begin(w);
    jw_key(w, "status");
    jw_cstr(w, "up");
    jw_key(w, "rss_bytes");
    jw_int(w, rss);
    jw_obj_end(w);
    jw_obj_end(w);
    if (!buf_ok(services)) { /* a module wrote more than 64 KiB: a bug, not input */
        log_error("health: the services object exceeds its buffer");
        buf_reset(services);
        (void)buf_puts(services, "{}");
        ready = false;
    }

    w = &r->w;
    jw_obj_begin(w);
    jw_key(w, "status");
    jw_cstr(w, !ready ? "unhealthy" : disk_warn ? "degraded" : "healthy");
    if (detail) {
        jw_key(w, "version");
        jw_cstr(w, TEMEL_VERSION);
        jw_key(w, "uptime_s");
        jw_int(w, server_uptime_s());
        jw_key(w, "services");
        jw_raw(w, buf_str(services));
    }
    jw_obj_end(w);
    return ready;
}

/*
 * Who may read GET /health (full) and /metrics (security issue 9): with
 * TEMEL_ENV=production, or whenever TEMEL_METRICS_TOKEN is set, the caller
 * presents `Authorization: Bearer <metrics token>` or is an admin (JWT or
 * admin API key, through the installed authenticator); in development and
 * test without a token they stay open. Both are rate limited per client
 * (TEMEL_RATE_LIMIT_READ's rule). /health/live and /health/ready stay public
 * and unlimited; when the detail is closed, /health/ready answers only
 * {"status"} unless the metrics token comes with it.
 */
static bool ops_open(const struct req *r) { return !r->cfg->metrics_token && r->cfg->env != ENV_PRODUCTION; }

/* The metrics token, compared in constant time over its length. */
static bool has_metrics_token(const struct req *r)
{
    const char *tok = r->cfg->metrics_token;
    if (!tok)
        return false;
    str_t a = req_header_get(r, "authorization");
    size_t tl = strlen(tok);
    bool ok = a.p && a.len == tl + 7 && memcmp(a.p, "Bearer ", 7) == 0;
    unsigned char diff = ok ? 0 : 1;
    if (ok)
        for (size_t i = 0; i < tl; i++)
            diff |= (unsigned char)(a.p[7 + i] ^ tok[i]);
    return diff == 0;
}

/* 0 when the caller may read the detailed endpoints, else HTTP_EFAIL
 * (429 over the limit, 401/403). The limit comes first, so anonymous floods
 * are counted too; it is the read class's rule in its own space per client. */
static int ops_guard(struct req *r)
{
    if (http_rate_limit(r, "ops", req_client_ip(r), &r->cfg->rate[RL_READ]))
        return HTTP_EFAIL;
    if (ops_open(r) || has_metrics_token(r))
        return 0;
    if (req_header_get(r, "authorization").p && g_srv_auth) /* an admin's JWT or API key */
        return g_srv_auth(r, AUTH_ADMIN) == 0 ? 0 : HTTP_EFAIL;
    req_header(r, "www-authenticate", STRLIT("Bearer realm=\"metrics\""));
    return http_fail(r, 401, "UNAUTHORIZED", "a valid metrics token or an admin token is required");
}

static int health(struct req *r)
{
    if (ops_guard(r))
        return HTTP_EFAIL;
    health_body(r, true);
    return 0;
}

static int ready(struct req *r)
{
    if (!health_body(r, ops_open(r) || has_metrics_token(r)))
        r->status = 503;
    return 0;
}

static int metrics(struct req *r)
{
    if (ops_guard(r))
        return HTTP_EFAIL;
    r->out.max = BUF_MAX_METRICS;
    metrics_render(&r->out);
    for (const struct module *const *m = temel_modules; *m; m++)
        if ((*m)->metrics)
            (*m)->metrics(r->db, &r->out);
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return 0;
}

/* ---- OpenAPI ---- */

static pthread_once_t openapi_once = PTHREAD_ONCE_INIT;
static struct buf openapi_doc;

static void schema_for_field(struct jw *w, const struct json_field *f)
{
    jw_obj_begin(w);
    switch (f->type) {
    case JF_STRING:
        jw_key(w, "type");
        jw_cstr(w, "string");
        if (f->min || f->max) {
            jw_key(w, "minLength");
            jw_int(w, f->min);
            jw_key(w, "maxLength");
            jw_int(w, f->max);
        }
        if (f->enum_values) {
            jw_key(w, "enum");
            jw_arr_begin(w);
            for (const char *const *e = f->enum_values; *e; e++)
                jw_cstr(w, *e);
            jw_arr_end(w);
        }
        break;
    case JF_INT:
    case JF_NUMBER:
        jw_key(w, "type");
        jw_cstr(w, f->type == JF_INT ? "integer" : "number");
        if (f->min || f->max) {
            jw_key(w, "minimum");
            jw_int(w, f->min);
            jw_key(w, "maximum");
            jw_int(w, f->max);
        }
        break;
    case JF_BOOL:
        jw_key(w, "type");
        jw_cstr(w, "boolean");
        break;
    case JF_OBJECT:
        jw_key(w, "type");
        jw_cstr(w, "object");
        break;
    case JF_ARRAY_STR:
    case JF_ARRAY:
        jw_key(w, "type");
        jw_cstr(w, "array");
        if (f->type == JF_ARRAY_STR) {
            jw_key(w, "items");
            jw_obj_begin(w);
            jw_key(w, "type");
            jw_cstr(w, "string");
            jw_obj_end(w);
        }
        if (f->min || f->max) {
            jw_key(w, "minItems");
            jw_int(w, f->min);
            jw_key(w, "maxItems");
            jw_int(w, f->max);
        }
        break;
    case JF_ANY: break;
    }
    if (f->description) {
        jw_key(w, "description");
        jw_cstr(w, f->description);
    }
    jw_obj_end(w);
}

static void write_operation(struct jw *w, const struct route *rt, const struct config *cfg)
{
    struct buf opid = BUF_INIT(256);
    for (const char *m = rt->method; *m; m++)
        (void)buf_putc(&opid, (char)(*m | 0x20));
    for (const char *p = rt->pattern; *p; p++)
        (void)buf_putc(&opid, (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
                                  ? *p
                                  : '_');
    char lower[8] = {0};
    for (size_t i = 0; rt->method[i] && i < sizeof(lower) - 1; i++)
        lower[i] = (char)(rt->method[i] | 0x20);
    jw_key(w, lower);
    jw_obj_begin(w);
    jw_key(w, "operationId");
    jw_str(w, buf_str(&opid));
    buf_free(&opid);
    jw_key(w, "summary");
    jw_cstr(w, rt->summary ? rt->summary : "");
    jw_key(w, "tags");
    jw_arr_begin(w);
    jw_cstr(w, rt->tag ? rt->tag : "default");
    jw_arr_end(w);
    if (rt->rl != RL_NONE) {
        jw_key(w, "x-rate-limit");
        jw_obj_begin(w);
        jw_key(w, "class");
        jw_cstr(w, rl_class_names[rt->rl]);
        jw_key(w, "limit");
        jw_int(w, cfg->rate[rt->rl].limit);
        jw_key(w, "period_s");
        jw_int(w, cfg->rate[rt->rl].period_s);
        jw_obj_end(w);
    }
    jw_key(w, "parameters");
    jw_arr_begin(w);
    for (const char *p = rt->pattern; (p = strchr(p, '{')); p++) {
        const char *e = strchr(p, '}');
        jw_obj_begin(w);
        jw_key(w, "name");
        jw_str(w, str_make(p + 1, (size_t)(e - p - 1)));
        jw_key(w, "in");
        jw_cstr(w, "path");
        jw_key(w, "required");
        jw_bool(w, true);
        jw_key(w, "schema");
        jw_raw(w, STRLIT("{\"type\":\"string\"}"));
        jw_obj_end(w);
    }
    if (rt->flags & ROUTE_PAGINATED) {
        jw_raw(w, STRLIT("{\"name\":\"page\",\"in\":\"query\",\"schema\":{\"type\":\"integer\",\"minimum\":1,"
                         "\"default\":1}}"));
        jw_raw(w, STRLIT("{\"name\":\"limit\",\"in\":\"query\",\"schema\":{\"type\":\"integer\",\"minimum\":1,"
                         "\"maximum\":100,\"default\":20}}"));
    }
    if (rt->openapi)
        rt->openapi(rt, w, OPENAPI_PARAMS);
    jw_arr_end(w);
    if (rt->input) {
        jw_key(w, "requestBody");
        jw_obj_begin(w);
        jw_key(w, "required");
        jw_bool(w, true);
        jw_key(w, "content");
        jw_obj_begin(w);
        jw_key(w, "application/json");
        jw_obj_begin(w);
        jw_key(w, "schema");
        jw_obj_begin(w);
        jw_key(w, "type");
        jw_cstr(w, "object");
        jw_key(w, "additionalProperties");
        jw_bool(w, rt->input->allow_unknown);
        jw_key(w, "properties");
        jw_obj_begin(w);
        for (const struct json_field *f = rt->input->fields; f && f->name; f++) {
            jw_key(w, f->name);
            schema_for_field(w, f);
        }
        jw_obj_end(w);
        jw_key(w, "required");
        jw_arr_begin(w);
        for (const struct json_field *f = rt->input->fields; f && f->name; f++)
            if (f->flags & JF_REQUIRED)
                jw_cstr(w, f->name);
        jw_arr_end(w);
        jw_obj_end(w);
        jw_obj_end(w);
        jw_obj_end(w);
        jw_obj_end(w);
    }
    if (rt->auth != AUTH_NONE && rt->auth != AUTH_OPTIONAL) {
        jw_key(w, "security");
        jw_raw(w, STRLIT("[{\"bearerAuth\":[]}]"));
    }
    jw_key(w, "responses");
    if (rt->openapi) { /* {"2XX":{"description","content":{"application/json":{"schema":<hook>}}},"default":...} */
        jw_obj_begin(w);
        jw_key(w, "2XX");
        jw_obj_begin(w);
        jw_key(w, "description");
        jw_cstr(w, "Success");
        jw_key(w, "content");
        jw_obj_begin(w);
        jw_key(w, "application/json");
        jw_obj_begin(w);
        jw_key(w, "schema");
        rt->openapi(rt, w, OPENAPI_RESPONSE);
        jw_obj_end(w);
        jw_obj_end(w);
        jw_obj_end(w);
        jw_key(w, "default");
        jw_raw(w, STRLIT("{\"description\":\"Error\",\"content\":{\"application/problem+json\":{\"schema\":{\"$ref\":"
                         "\"#/components/schemas/Problem\"}}}}"));
        jw_obj_end(w);
    } else {
        jw_raw(w, STRLIT("{\"2XX\":{\"description\":\"Success\"},\"default\":{\"description\":\"Error\",\"content\":{"
                         "\"application/problem+json\":{\"schema\":{\"$ref\":\"#/components/schemas/Problem\"}}}}}"));
    }
    jw_obj_end(w);
}

static void build_openapi(void)
{
    const struct config *cfg = server_config();
    struct jw w;
    size_t n = router_count();
    buf_init(&openapi_doc, 4u << 20);
    jw_init(&w, &openapi_doc);
    jw_obj_begin(&w);
    jw_key(&w, "openapi");
    jw_cstr(&w, "3.1.0");
    jw_key(&w, "info");
    jw_obj_begin(&w);
    jw_key(&w, "title");
    jw_cstr(&w, "temel API");
    jw_key(&w, "version");
    jw_cstr(&w, TEMEL_VERSION);
    jw_key(&w, "description");
    struct buf d = BUF_INIT(4096);
    (void)buf_puts(&d, "Errors are RFC 9457 problem+json. Rate limits per class and key (user, else client IP); "
                       "current limits:");
    for (int i = 0; i < RL_NCLASSES; i++)
        (void)buf_printf(&d, " %s %lld/%llds;", rl_class_names[i], (long long)cfg->rate[i].limit,
                         (long long)cfg->rate[i].period_s);
    jw_str(&w, buf_str(&d));
    buf_free(&d);
    jw_obj_end(&w);
    jw_key(&w, "paths");
    jw_obj_begin(&w);
    for (size_t i = 0; i < n; i++) {
        const struct route *rt = router_get(i);
        bool seen = false;
        if (rt->flags & ROUTE_HIDDEN)
            continue;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcmp(router_get(j)->pattern, rt->pattern) && !(router_get(j)->flags & ROUTE_HIDDEN);
        if (seen)
            continue;
        jw_key(&w, rt->pattern);
        jw_obj_begin(&w);
        for (size_t j = i; j < n; j++)
            if (!strcmp(router_get(j)->pattern, rt->pattern) && !(router_get(j)->flags & ROUTE_HIDDEN))
                write_operation(&w, router_get(j), cfg);
        jw_obj_end(&w);
    }
    jw_obj_end(&w);
    jw_key(&w, "components");
    jw_raw(&w, STRLIT("{\"securitySchemes\":{\"bearerAuth\":{\"type\":\"http\",\"scheme\":\"bearer\","
                      "\"bearerFormat\":\"JWT\"}},\"schemas\":{\"Problem\":{\"type\":\"object\",\"required\":["
                      "\"type\",\"title\",\"status\",\"code\",\"request_id\"],\"properties\":{\"type\":{\"type\":"
                      "\"string\"},\"title\":{\"type\":\"string\"},\"status\":{\"type\":\"integer\"},\"detail\":{"
                      "\"type\":\"string\"},\"code\":{\"type\":\"string\"},\"request_id\":{\"type\":\"string\"},"
                      "\"errors\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"field\":{"
                      "\"type\":\"string\"},\"message\":{\"type\":\"string\"}}}}}}}}"));
    jw_obj_end(&w);
    if (!buf_ok(&openapi_doc))
        FATAL("OpenAPI document exceeds its buffer");
}

str_t ops_openapi_json(void)
{
    pthread_once(&openapi_once, build_openapi);
    return buf_str(&openapi_doc);
}

static int openapi(struct req *r)
{
    jw_raw(&r->w, ops_openapi_json());
    return 0;
}

static const char docs_html[] =
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>temel API</title>"
    "<meta name=viewport content='width=device-width,initial-scale=1'><style>"
    "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}header{background:#1d3557;color:#fff;padding:12px "
    "20px}main{padding:10px 20px;max-width:1100px}details{border:1px solid #ddd;border-radius:4px;margin:6px "
    "0}summary{cursor:pointer;padding:6px 8px}code{font:13px ui-monospace,monospace}.m{display:inline-block;"
    "width:64px;font-weight:bold}.GET{color:#2a7}.POST{color:#27c}.PUT,.PATCH{color:#c80}.DELETE{color:#c33}"
    "pre{background:#f6f6f6;padding:8px;overflow:auto}.b{padding:6px 10px}input,textarea{font:inherit;width:100%;"
    "box-sizing:border-box}</style></head><body><header><b>temel API</b> — <span id=v></span> · <a "
    "style=color:#fff href=/api/v1/openapi.json>openapi.json</a></header><main><p><label>Bearer token <input "
    "id=tok placeholder='access token (optional)'></label></p><div id=ops>loading…</div></main><script>"
    "const esc=s=>String(s).replace(/[&<>\"']/g,c=>'&#'+c.charCodeAt(0)+';');"
    "fetch('/api/v1/openapi.json').then(r=>r.json()).then(d=>{document.getElementById('v').textContent="
    "d.info.version;let h='';for(const[p,item]of Object.entries(d.paths))for(const[m,op]of Object.entries(item)){"
    "const M=m.toUpperCase(),id='o'+Math.random().toString(36).slice(2);"
    "h+=`<details><summary><span class='m ${M}'>${M}</span><code>${esc(p)}</code> — ${esc(op.summary||'')}"
    "</summary><div class=b><pre>${esc(JSON.stringify({parameters:op.parameters,requestBody:op.requestBody,"
    "x_rate_limit:op['x-rate-limit']},null,2))}</pre><input id=${id}p value='${esc(p)}'>"
    "${M!=='GET'&&M!=='DELETE'?`<textarea id=${id}b rows=4>{}</textarea>`:''}<button "
    "onclick=\"go('${M}','${id}')\">Send</button><pre id=${id}r></pre></div></details>`}"
    "document.getElementById('ops').innerHTML=h});"
    "async function go(m,id){const b=document.getElementById(id+'b'),t=document.getElementById('tok').value,"
    "o={method:m,headers:{}};if(b){o.body=b.value;o.headers['Content-Type']='application/json'}"
    "if(t)o.headers.Authorization='Bearer '+t;const r=await fetch(document.getElementById(id+'p').value,o);"
    "document.getElementById(id+'r').textContent=r.status+'\\n'+await r.text()}"
    "</script></body></html>";

static int docs(struct req *r)
{
    (void)buf_append(&r->out, docs_html, sizeof(docs_html) - 1);
    r->content_type = "text/html; charset=utf-8";
    req_header(r, "content-security-policy",
               STRLIT("default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'"));
    return 0;
}

static struct route routes[] = {
    {.method = "GET", .pattern = "/health/live", .handler = live, .rl = RL_NONE, .summary = "Liveness: the process runs", .tag = "ops"},
    {.method = "GET", .pattern = "/health/ready", .handler = ready, .rl = RL_NONE, .summary = "Readiness: database, migrations and disk usable (503 otherwise)", .tag = "ops"},
    {.method = "GET", .pattern = "/health", .handler = health, .rl = RL_NONE, .summary = "Health with per-service checks (production or with TEMEL_METRICS_TOKEN: the token or an admin; rate limited)", .tag = "ops"},
    {.method = "GET", .pattern = "/metrics", .handler = metrics, .rl = RL_NONE, .summary = "Prometheus metrics (production or with TEMEL_METRICS_TOKEN: the token or an admin; rate limited)", .tag = "ops"},
    {.method = "GET", .pattern = "/api/v1/openapi.json", .handler = openapi, .rl = RL_READ, .summary = "This OpenAPI 3.1 document", .tag = "ops"},
    {.method = "GET", .pattern = "/api/docs", .handler = docs, .rl = RL_READ, .summary = "Interactive API documentation page", .tag = "ops"},
};

void ops_register(void) { router_add(routes, ARRAY_LEN(routes)); }
