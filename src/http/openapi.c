/*
 * openapi.c — the OpenAPI 3.1 document, generated once from the frozen route
 * table (API.md §2): each route's input schema, its response schema
 * (`output`, or the openapi hook), the error responses the stages and the
 * handler can give, its security requirement, and the shared components.
 * docs/internals.md "Describing a route" is the guide for route authors.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/log.h"
#include "http/http.h"
#include "http/server.h"

#include "core/banned.h"

/* ---- shared schemas ---- */

static struct openapi_schema *schemas; /* registration order reversed; written sorted by name */

void openapi_schema_add(struct openapi_schema *s)
{
    for (const struct openapi_schema *o = schemas; o; o = o->next)
        if (!strcmp(o->name, s->name))
            FATAL("OpenAPI schema %s registered twice", s->name);
    ASSERT(s->json || s->write);
    s->next = schemas;
    schemas = s;
}

/* The core's own components. */
#define PROBLEM_JSON                                                                                                   \
    OPENAPI_JSON({"type" : "object",                                                                                   \
                  "description" : "RFC 9457 problem details (API.md §1)",                                              \
                  "required" : [ "type", "title", "status", "code", "request_id" ],                                    \
                  "properties" : {                                                                                     \
                      "type" : {"type" : "string"},                                                                    \
                      "title" : {"type" : "string"},                                                                   \
                      "status" : {"type" : "integer", "minimum" : 400, "maximum" : 599},                               \
                      "detail" : {"type" : "string"},                                                                  \
                      "code" : {"type" : "string", "description" : "stable machine code, e.g. VALIDATION_ERROR"},      \
                      "request_id" : {"type" : "string", "description" : "the X-Request-Id of the request"},           \
                      "errors" : {                                                                                     \
                          "type" : "array",                                                                            \
                          "items" : {                                                                                  \
                              "type" : "object",                                                                       \
                              "required" : [ "field", "message" ],                                                     \
                              "properties" : {"field" : {"type" : "string"}, "message" : {"type" : "string"}}          \
                          }                                                                                            \
                      },                                                                                               \
                      "retry_after" : {"type" : "integer"},                                                            \
                      "migrate_to" : {"type" : "string"}                                                               \
                  }})
#define PAGE_META_JSON                                                                                                 \
    OPENAPI_JSON({"type" : "object",                                                                                   \
                  "required" : [ "page", "limit" ],                                                                    \
                  "properties" : {                                                                                     \
                      "total" : {"type" : "integer", "minimum" : 0},                                                   \
                      "page" : {"type" : "integer", "minimum" : 1},                                                    \
                      "limit" : {"type" : "integer", "minimum" : 1, "maximum" : 100},                                  \
                      "pages" : {"type" : "integer", "minimum" : 0},                                                   \
                      "has_more" : {"type" : "boolean", "description" : "only with skip_total=true"}                   \
                  }})
static struct openapi_schema core_schemas[] = {
    {.name = "Problem", .json = PROBLEM_JSON},
    {.name = "PageMeta", .json = PAGE_META_JSON},
};

/* ---- error responses ---- */

struct err_resp {
    int status;
    const char *name, *description;
};
static const struct err_resp err_resps[] = {
    {400, "BadRequest", "BAD_REQUEST: malformed JSON, bad query syntax, or a body where none is taken"},
    {401, "Unauthorized", "UNAUTHORIZED: no, invalid or expired credentials"},
    {402, "PaymentRequired", "INSUFFICIENT_CREDITS"},
    {403, "Forbidden", "FORBIDDEN: the caller's role may not do this"},
    {404, "NotFound", "NOT_FOUND: no such resource, or one the caller may not see"},
    {409, "Conflict", "CONFLICT: the state does not allow it (duplicate, in use, in flight)"},
    {410, "Gone", "GONE: expired or deprecated (see migrate_to)"},
    {412, "PreconditionFailed", "PRECONDITION_FAILED: If-Match no longer matches"},
    {413, "PayloadTooLarge", "PAYLOAD_TOO_LARGE: the body exceeds the route's limit"},
    {415, "UnsupportedMediaType", "UNSUPPORTED_MEDIA_TYPE: the body is not application/json"},
    {422, "ValidationFailed", "VALIDATION_ERROR (errors[] names the fields) or IDEMPOTENCY_KEY_REUSED"},
    {429, "TooManyRequests", "RATE_LIMIT_EXCEEDED (Retry-After says when to retry)"},
};
#define NERR ARRAY_LEN(err_resps)

static int err_index(int status)
{
    for (size_t i = 0; i < NERR; i++)
        if (err_resps[i].status == status)
            return (int)i;
    return -1;
}

/* Which error responses an operation has: bit i = err_resps[i]. */
static unsigned route_errors(const struct route *rt)
{
    unsigned m = 0;
#define ADD(st) (m |= 1u << err_index(st))
    ADD(400); /* bad query syntax: every route */
    if (rt->auth != AUTH_NONE)
        ADD(401);
    if (rt->auth == AUTH_STAFF || rt->auth == AUTH_ADMIN)
        ADD(403);
    if (strchr(rt->pattern, '{'))
        ADD(404);
    if (rt->input || (rt->flags & ROUTE_RAW_BODY)) {
        ADD(413);
        if (rt->input)
            ADD(415);
    }
    if (rt->input || (rt->flags & ROUTE_PAGINATED))
        ADD(422);
    if (rt->flags & ROUTE_IDEMPOTENT) {
        ADD(409);
        ADD(422);
    }
    if (rt->rl != RL_NONE)
        ADD(429);
    for (const char *p = rt->errors; p && *p;) {
        char *end;
        long st = strtol(p, &end, 10);
        if (end == p || err_index((int)st) < 0)
            FATAL("route %s %s: errors \"%s\": unknown status", rt->method, rt->pattern, rt->errors);
        ADD((int)st);
        for (p = end; *p == ' ' || *p == ','; p++) {
        }
    }
#undef ADD
    return m;
}

/* ---- schemas ---- */

/* Write a JSON Schema text given in C source, checked to be JSON. */
static void raw_schema(struct jw *w, const char *json, const struct route *rt)
{
    json_error_t e;
    json_t *v = json_loads(json, JSON_DECODE_ANY, &e);
    if (!v)
        FATAL("OpenAPI schema of %s %s is not JSON (%s): %s", rt ? rt->method : "component",
              rt ? rt->pattern : "", e.text, json);
    json_decref(v);
    jw_raw(w, str_c(json));
}

static void type_with_null(struct jw *w, const char *type, bool nullable)
{
    jw_key(w, "type");
    if (!nullable) {
        jw_cstr(w, type);
        return;
    }
    jw_arr_begin(w);
    jw_cstr(w, type);
    jw_cstr(w, "null");
    jw_arr_end(w);
}

static void schema_for_field(struct jw *w, const struct json_field *f, const struct route *rt)
{
    bool nullable = f->flags & JF_NULLABLE;
    bool ranged = f->min || f->max;
    if (f->schema) {
        raw_schema(w, f->schema, rt);
        return;
    }
    jw_obj_begin(w);
    switch (f->type) {
    case JF_STRING:
        type_with_null(w, "string", nullable);
        if (ranged) {
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
            if (nullable)
                jw_null(w);
            jw_arr_end(w);
        }
        break;
    case JF_INT:
    case JF_NUMBER:
        type_with_null(w, f->type == JF_INT ? "integer" : "number", nullable);
        if (ranged) {
            jw_key(w, "minimum");
            jw_int(w, f->min);
            if (f->max != INT64_MAX) {
                jw_key(w, "maximum");
                jw_int(w, f->max);
            }
        }
        break;
    case JF_BOOL: type_with_null(w, "boolean", nullable); break;
    case JF_OBJECT:
        type_with_null(w, "object", nullable);
        jw_key(w, "additionalProperties");
        jw_bool(w, true);
        break;
    case JF_ARRAY_STR:
    case JF_ARRAY:
        type_with_null(w, "array", nullable);
        jw_key(w, "items");
        if (f->type == JF_ARRAY_STR)
            jw_raw(w, STRLIT("{\"type\":\"string\"}"));
        else
            jw_raw(w, STRLIT("{}"));
        if (ranged) {
            jw_key(w, "minItems");
            jw_int(w, f->min);
            jw_key(w, "maxItems");
            jw_int(w, f->max);
        }
        break;
    case JF_ANY: break;
    }
    if (f->format) {
        jw_key(w, "format");
        jw_cstr(w, f->format);
    }
    if (f->description) {
        jw_key(w, "description");
        jw_cstr(w, f->description);
    }
    jw_obj_end(w);
}

static void input_schema(struct jw *w, const struct route *rt)
{
    jw_obj_begin(w);
    jw_key(w, "type");
    jw_cstr(w, "object");
    jw_key(w, "additionalProperties");
    jw_bool(w, rt->input->allow_unknown);
    jw_key(w, "properties");
    jw_obj_begin(w);
    for (const struct json_field *f = rt->input->fields; f && f->name; f++) {
        jw_key(w, f->name);
        schema_for_field(w, f, rt);
    }
    jw_obj_end(w);
    jw_key(w, "required");
    jw_arr_begin(w);
    for (const struct json_field *f = rt->input->fields; f && f->name; f++)
        if (f->flags & JF_REQUIRED)
            jw_cstr(w, f->name);
    jw_arr_end(w);
    jw_obj_end(w);
}

/* The 2XX body's schema, or false when the route describes none. */
static bool write_output(struct jw *w, const struct route *rt)
{
    if (!rt->output) { /* the hook may write one, or nothing */
        if (!rt->openapi)
            return false;
        size_t before = w->b->len;
        rt->openapi(rt, w, OPENAPI_RESPONSE);
        return w->b->len > before;
    }
    if (!(rt->flags & ROUTE_PAGINATED)) {
        raw_schema(w, rt->output, rt);
        return true;
    }
    jw_obj_begin(w);
    jw_key(w, "type");
    jw_cstr(w, "object");
    jw_key(w, "required");
    jw_raw(w, STRLIT("[\"data\",\"meta\"]"));
    jw_key(w, "properties");
    jw_obj_begin(w);
    jw_key(w, "data");
    jw_obj_begin(w);
    jw_key(w, "type");
    jw_cstr(w, "array");
    jw_key(w, "items");
    raw_schema(w, rt->output, rt);
    jw_obj_end(w);
    jw_key(w, "meta");
    jw_raw(w, STRLIT("{\"$ref\":\"#/components/schemas/PageMeta\"}"));
    jw_obj_end(w);
    jw_obj_end(w);
    return true;
}

/* ---- operations ---- */

/* The success answer without a body (struct route.status). */
static void write_bodiless(struct jw *w, const struct route *rt)
{
    char code[4] = {(char)('0' + rt->status / 100 % 10), (char)('0' + rt->status / 10 % 10),
                    (char)('0' + rt->status % 10), 0};
    if (rt->status != 101 && rt->status != 204 && rt->status != 304 && rt->status != 301 && rt->status != 302 &&
        rt->status != 303 && rt->status != 307)
        FATAL("route %s %s: status %d is not 101, 204, 304 or a redirect", rt->method, rt->pattern, rt->status);
    jw_key(w, code);
    jw_obj_begin(w);
    jw_key(w, "description");
    if (rt->status == 204) {
        jw_cstr(w, "No Content: done, no body");
    } else if (rt->status == 304) {
        jw_cstr(w, "Not Modified: the If-None-Match ETag still matches");
    } else if (rt->status == 101) {
        jw_cstr(w, "Switching Protocols: the connection continues as a WebSocket");
        jw_key(w, "headers");
        jw_raw(w, STRLIT("{\"Upgrade\":{\"schema\":{\"type\":\"string\",\"enum\":[\"websocket\"]}},"
                         "\"Sec-WebSocket-Accept\":{\"schema\":{\"type\":\"string\"}}}"));
    } else {
        jw_cstr(w, "Redirect: the Location header says where");
        jw_key(w, "headers");
        jw_raw(w, STRLIT("{\"Location\":{\"required\":true,\"schema\":{\"type\":\"string\",\"format\":"
                         "\"uri-reference\"}}}"));
    }
    jw_obj_end(w);
}

static unsigned used_errors; /* the error responses some operation refers to (only those are listed) */

static void write_security(struct jw *w, const struct route *rt)
{
    jw_key(w, "security");
    if (rt->security)
        raw_schema(w, rt->security, rt);
    else if (rt->auth == AUTH_NONE)
        jw_raw(w, STRLIT("[]"));
    else if (rt->auth == AUTH_OPTIONAL) /* {}: anonymous callers too */
        jw_raw(w, STRLIT("[{},{\"bearerAuth\":[]},{\"apiKeyAuth\":[]}]"));
    else
        jw_raw(w, STRLIT("[{\"bearerAuth\":[]},{\"apiKeyAuth\":[]}]"));
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
    if (rt->flags & ROUTE_IDEMPOTENT)
        jw_raw(w, STRLIT("{\"name\":\"Idempotency-Key\",\"in\":\"header\",\"description\":\"same key and body "
                         "within 24 h replays the first response\",\"schema\":{\"type\":\"string\",\"maxLength\":"
                         "255}}"));
    if (rt->params) {
        json_error_t e;
        json_t *v = json_loads(rt->params, 0, &e), *x;
        size_t i;
        if (!json_is_array(v))
            FATAL("route %s %s: params is not a JSON array (%s)", rt->method, rt->pattern, v ? "" : e.text);
        json_array_foreach(v, i, x) jw_json(w, x);
        json_decref(v);
    }
    if (rt->openapi)
        rt->openapi(rt, w, OPENAPI_PARAMS);
    jw_arr_end(w);
    if (rt->input) {
        jw_key(w, "requestBody");
        jw_obj_begin(w);
        jw_key(w, "required");
        jw_bool(w, !(rt->flags & ROUTE_BODY_OPTIONAL));
        jw_key(w, "content");
        jw_obj_begin(w);
        jw_key(w, "application/json");
        jw_obj_begin(w);
        jw_key(w, "schema");
        input_schema(w, rt);
        jw_obj_end(w);
        jw_obj_end(w);
        jw_obj_end(w);
    }
    if (rt->flags & ROUTE_RAW_BODY) {
        jw_key(w, "requestBody");
        jw_obj_begin(w);
        jw_key(w, "required");
        jw_bool(w, !(rt->flags & ROUTE_BODY_OPTIONAL));
        jw_key(w, "content");
        if (rt->raw_body)
            raw_schema(w, rt->raw_body, rt);
        else
            jw_raw(w, STRLIT("{\"application/octet-stream\":{\"schema\":{\"type\":\"string\",\"format\":\"binary\"}}}"));
        jw_obj_end(w);
    }
    write_security(w, rt);
    jw_key(w, "responses");
    jw_obj_begin(w);
    struct buf body = BUF_INIT(1u << 20);
    struct jw bw;
    jw_init(&bw, &body);
    bool described = write_output(&bw, rt);
    if (described && !buf_ok(&body))
        FATAL("OpenAPI: the response schema of %s %s exceeds 1 MiB", rt->method, rt->pattern);
    if (described || !rt->status) { /* without either, a bare 2XX: tests/api/test_openapi_contract.py names it */
        jw_key(w, "2XX");
        jw_obj_begin(w);
        jw_key(w, "description");
        jw_cstr(w, "Success");
        if (described) {
            jw_key(w, "content");
            jw_obj_begin(w);
            jw_key(w, rt->output_type ? rt->output_type : "application/json");
            jw_obj_begin(w);
            jw_key(w, "schema");
            jw_raw(w, buf_str(&body));
            jw_obj_end(w);
            jw_obj_end(w);
        }
        jw_obj_end(w);
    }
    buf_free(&body);
    if (rt->status)
        write_bodiless(w, rt);
    unsigned errs = route_errors(rt);
    used_errors |= errs;
    for (size_t i = 0; i < NERR; i++)
        if (errs & (1u << i)) {
            char code[8] = {(char)('0' + err_resps[i].status / 100), (char)('0' + err_resps[i].status / 10 % 10),
                            (char)('0' + err_resps[i].status % 10), 0};
            jw_key(w, code);
            jw_obj_begin(w);
            jw_key(w, "$ref");
            struct buf ref = BUF_INIT(128);
            (void)buf_printf(&ref, "#/components/responses/%s", err_resps[i].name);
            jw_str(w, buf_str(&ref));
            buf_free(&ref);
            jw_obj_end(w);
        }
    jw_key(w, "default");
    jw_raw(w, STRLIT("{\"$ref\":\"#/components/responses/Error\"}"));
    jw_obj_end(w);
    jw_obj_end(w);
}

static int cmp_schema(const void *a, const void *b)
{
    return strcmp((*(const struct openapi_schema *const *)a)->name, (*(const struct openapi_schema *const *)b)->name);
}

static void write_components(struct jw *w)
{
    jw_key(w, "components");
    jw_obj_begin(w);
    jw_key(w, "securitySchemes");
    jw_raw(w, STRLIT("{\"bearerAuth\":{\"type\":\"http\",\"scheme\":\"bearer\",\"bearerFormat\":\"JWT\","
                     "\"description\":\"the access token from /auth/login or /auth/register\"},"
                     "\"apiKeyAuth\":{\"type\":\"http\",\"scheme\":\"bearer\",\"bearerFormat\":\"tml_ API key\","
                     "\"description\":\"an API key from POST /me/api-keys, sent as Authorization: Bearer tml_...\"},"
                     "\"metricsToken\":{\"type\":\"http\",\"scheme\":\"bearer\",\"description\":\"TEMEL_METRICS_"
                     "TOKEN (ops routes only)\"}}"));
    jw_key(w, "responses");
    jw_obj_begin(w);
    for (size_t i = 0; i <= NERR; i++) {
        if (i < NERR && !(used_errors & (1u << i)))
            continue;
        jw_key(w, i < NERR ? err_resps[i].name : "Error");
        jw_obj_begin(w);
        jw_key(w, "description");
        jw_cstr(w, i < NERR ? err_resps[i].description : "INTERNAL_ERROR 500 or SERVICE_UNAVAILABLE 503");
        if (i < NERR && err_resps[i].status == 429) {
            jw_key(w, "headers");
            jw_raw(w, STRLIT("{\"Retry-After\":{\"description\":\"seconds\",\"schema\":{\"type\":\"integer\"}}}"));
        }
        jw_key(w, "content");
        jw_raw(w, STRLIT("{\"application/problem+json\":{\"schema\":{\"$ref\":\"#/components/schemas/Problem\"}}}"));
        jw_obj_end(w);
    }
    jw_obj_end(w);
    jw_key(w, "schemas");
    jw_obj_begin(w);
    size_t n = 0;
    for (const struct openapi_schema *s = schemas; s; s = s->next)
        n++;
    const struct openapi_schema **v = xcalloc(n ? n : 1, sizeof(*v));
    n = 0;
    for (const struct openapi_schema *s = schemas; s; s = s->next)
        v[n++] = s;
    qsort(v, n, sizeof(*v), cmp_schema);
    for (size_t i = 0; i < n; i++) {
        jw_key(w, v[i]->name);
        if (v[i]->json)
            raw_schema(w, v[i]->json, NULL);
        else
            v[i]->write(w, v[i]->ctx);
    }
    free(v);
    jw_obj_end(w);
    jw_obj_end(w);
}

static pthread_once_t doc_once = PTHREAD_ONCE_INIT;
static struct buf doc;

static void build(void)
{
    const struct config *cfg = server_config();
    struct jw w;
    size_t n = router_count();
    for (size_t i = 0; i < ARRAY_LEN(core_schemas); i++)
        openapi_schema_add(&core_schemas[i]);
    buf_init(&doc, 8u << 20);
    jw_init(&w, &doc);
    jw_obj_begin(&w);
    jw_key(&w, "openapi");
    jw_cstr(&w, "3.1.0");
    jw_key(&w, "info");
    jw_obj_begin(&w);
    jw_key(&w, "title");
    jw_cstr(&w, "temel API");
    jw_key(&w, "version");
    jw_cstr(&w, TEMEL_VERSION);
    jw_key(&w, "license");
    jw_raw(&w, STRLIT("{\"name\":\"Proprietary\",\"url\":\"https://temel.local/license\"}"));
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
    jw_key(&w, "servers"); /* this instance as configured; the paths carry the /api/v1 prefix */
    struct buf url = BUF_INIT(512);
    bool any = !cfg->host || !strcmp(cfg->host, "0.0.0.0") || !strcmp(cfg->host, "::") || !cfg->host[0];
    bool v6 = !any && strchr(cfg->host, ':');
    (void)buf_printf(&url, "%s://%s%s%s:%d", cfg->tls_cert ? "https" : "http", v6 ? "[" : "",
                     any ? "localhost" : cfg->host, v6 ? "]" : "", cfg->port);
    jw_arr_begin(&w);
    jw_obj_begin(&w);
    jw_key(&w, "url");
    jw_str(&w, buf_str(&url));
    jw_key(&w, "description");
    jw_cstr(&w, "this instance as configured (HOST, PORT, TLS)");
    jw_obj_end(&w);
    jw_arr_end(&w);
    buf_free(&url);
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
    write_components(&w);
    jw_obj_end(&w);
    if (!buf_ok(&doc))
        FATAL("OpenAPI document exceeds its buffer");
}

str_t ops_openapi_json(void)
{
    pthread_once(&doc_once, build);
    return buf_str(&doc);
}
