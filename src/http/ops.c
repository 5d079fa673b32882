/*
 * ops.c — operational endpoints (API.md §2): health, metrics, the OpenAPI
 * document generated from the route table, and the docs page.
 */
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

/* ---- OpenAPI (the document: openapi.c) ---- */

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

#define OPS_SECURITY OPENAPI_JSON([ {}, {"metricsToken" : []}, {"bearerAuth" : []}, {"apiKeyAuth" : []} ])
#define STATUS_OUT(...) OPENAPI_JSON({"type" : "object", "required" : ["status"], "properties" : {"status" : {"type" : "string", "enum" : [__VA_ARGS__]}}})
/* GET /health (and /health/ready with the detail): the services object has one member per module. */
#define HEALTH_OUT                                                                                                     \
    OPENAPI_JSON({                                                                                                     \
        "type" : "object",                                                                                             \
        "required" : ["status"],                                                                                       \
        "properties" : {                                                                                               \
            "status" : {"type" : "string", "enum" : [ "healthy", "degraded", "unhealthy" ]},                           \
            "version" : {"type" : "string"},                                                                           \
            "uptime_s" : {"type" : "integer", "minimum" : 0},                                                          \
            "services" : {                                                                                             \
                "type" : "object",                                                                                     \
                "description" : "database, disk, memory and one member per module (queue, redis, ...)",                \
                "additionalProperties" : {                                                                             \
                    "type" : "object",                                                                                 \
                    "required" : ["status"],                                                                           \
                    "properties" : {"status" : {"type" : "string"}},                                                   \
                    "additionalProperties" : true                                                                      \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    })

static struct route routes[] = {
    {.method = "GET", .pattern = "/health/live", .handler = live, .rl = RL_NONE, .summary = "Liveness: the process runs", .tag = "ops",
     .output = STATUS_OUT("ok")},
    {.method = "GET", .pattern = "/health/ready", .handler = ready, .rl = RL_NONE, .summary = "Readiness: database, migrations and disk usable (503 otherwise)", .tag = "ops",
     .output = HEALTH_OUT},
    {.method = "GET", .pattern = "/health", .handler = health, .rl = RL_NONE, .summary = "Health with per-service checks (production or with TEMEL_METRICS_TOKEN: the token or an admin; rate limited)", .tag = "ops",
     .output = HEALTH_OUT, .security = OPS_SECURITY, .errors = "401 403 429"},
    {.method = "GET", .pattern = "/metrics", .handler = metrics, .rl = RL_NONE, .summary = "Prometheus metrics (production or with TEMEL_METRICS_TOKEN: the token or an admin; rate limited)", .tag = "ops",
     .security = OPS_SECURITY, .errors = "401 403 429", .output_type = "text/plain",
     .output = OPENAPI_JSON({"type" : "string", "description" : "Prometheus text exposition format 0.0.4"})},
    {.method = "GET", .pattern = "/api/v1/openapi.json", .handler = openapi, .rl = RL_READ, .summary = "This OpenAPI 3.1 document", .tag = "ops",
     .output = OPENAPI_JSON({"type" : "object", "description" : "an OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0)",
                             "required" : [ "openapi", "info", "servers", "paths", "components" ],
                             "properties" : {
                                 "openapi" : {"type" : "string", "enum" : ["3.1.0"]},
                                 "info" : {"type" : "object", "required" : [ "title", "version" ], "additionalProperties" : true,
                                           "properties" : {"title" : {"type" : "string"}, "version" : {"type" : "string"}}},
                                 "servers" : {"type" : "array", "items" : {"type" : "object", "required" : ["url"], "additionalProperties" : true, "properties" : {"url" : {"type" : "string"}}}},
                                 "paths" : {"type" : "object", "description" : "path → method → operation", "additionalProperties" : {"type" : "object", "additionalProperties" : {"type" : "object", "additionalProperties" : true, "properties" : {"operationId" : {"type" : "string"}, "summary" : {"type" : "string"}}}}},
                                 "components" : {"type" : "object", "additionalProperties" : true, "properties" : {"schemas" : {"type" : "object", "additionalProperties" : {"type" : "object", "additionalProperties" : true}}}}
                             }})},
    {.method = "GET", .pattern = "/api/docs", .handler = docs, .rl = RL_READ, .summary = "Interactive API documentation page", .tag = "ops",
     .output_type = "text/html", .output = OPENAPI_JSON({"type" : "string"})},
};

void ops_register(void) { router_add(routes, ARRAY_LEN(routes)); }
