/*
 * openapi.c — the OpenAPI fragments of a resource's routes: the row schema
 * derived from the descriptor, the list's query parameters and envelope.
 */
#include "resource/internal.h"

#include "core/banned.h"

/* ---- OpenAPI ---- */

static void field_schema(struct jw *w, const struct rfield *f)
{
    jw_obj_begin(w);
    switch (f->type) {
    case RF_INT:
    case RF_MONEY:
        jw_key(w, "type");
        jw_cstr(w, "integer");
        if (f->type == RF_MONEY) {
            jw_key(w, "description");
            jw_cstr(w, f->description ? f->description : "amount in minor units");
        }
        break;
    case RF_BOOL:
        jw_key(w, "type");
        jw_cstr(w, "boolean");
        break;
    case RF_TIME:
        jw_key(w, "type");
        jw_cstr(w, "string");
        jw_key(w, "format");
        jw_cstr(w, "date-time");
        break;
    case RF_JSON: break;
    case RF_STRLIST:
        jw_key(w, "type");
        jw_cstr(w, "array");
        jw_key(w, "items");
        jw_raw(w, STRLIT("{\"type\":\"string\"}"));
        break;
    case RF_I18N:
        jw_key(w, "type");
        jw_cstr(w, "string");
        jw_key(w, "description");
        jw_cstr(w, "in the Accept-Language language; written as {\"tr\",\"en\",\"pl\"}");
        break;
    default:
        jw_key(w, "type");
        jw_cstr(w, "string");
        if (f->values) {
            jw_key(w, "enum");
            jw_arr_begin(w);
            for (const char *const *e = f->values; *e; e++)
                jw_cstr(w, *e);
            jw_arr_end(w);
        }
        break;
    }
    if (f->description && f->type != RF_MONEY && f->type != RF_I18N) {
        jw_key(w, "description");
        jw_cstr(w, f->description);
    }
    jw_obj_end(w);
}

static void row_schema(struct jw *w, const struct rt *t)
{
    jw_obj_begin(w);
    jw_key(w, "type");
    jw_cstr(w, "object");
    jw_key(w, "properties");
    jw_obj_begin(w);
    jw_key(w, "id");
    jw_raw(w, STRLIT("{\"type\":\"string\",\"format\":\"uuid\"}"));
    for (int i = 0; i < t->nfields; i++)
        if (!(t->res->fields[i].flags & RF_PRIVATE)) {
            jw_key(w, t->res->fields[i].name);
            field_schema(w, &t->res->fields[i]);
        }
    jw_key(w, "created_at");
    jw_raw(w, STRLIT("{\"type\":\"string\",\"format\":\"date-time\"}"));
    jw_key(w, "updated_at");
    jw_raw(w, STRLIT("{\"type\":\"string\",\"format\":\"date-time\"}"));
    jw_obj_end(w);
    jw_obj_end(w);
}

static void query_param(struct jw *w, const char *name, const char *type, const char *desc)
{
    jw_obj_begin(w);
    jw_key(w, "name");
    jw_cstr(w, name);
    jw_key(w, "in");
    jw_cstr(w, "query");
    jw_key(w, "schema");
    jw_obj_begin(w);
    jw_key(w, "type");
    jw_cstr(w, type);
    jw_obj_end(w);
    jw_key(w, "description");
    jw_cstr(w, desc);
    jw_obj_end(w);
}

void resource__openapi_list(const struct route *route, struct jw *w, enum openapi_part part)
{
    const struct rt *t = route->ctx;
    if (part == OPENAPI_RESPONSE) {
        jw_obj_begin(w);
        jw_key(w, "type");
        jw_cstr(w, "object");
        jw_key(w, "properties");
        jw_obj_begin(w);
        jw_key(w, "data");
        jw_obj_begin(w);
        jw_key(w, "type");
        jw_cstr(w, "array");
        jw_key(w, "items");
        row_schema(w, t);
        jw_obj_end(w);
        jw_key(w, "meta");
        jw_raw(w, STRLIT("{\"type\":\"object\",\"properties\":{\"total\":{\"type\":\"integer\"},\"page\":{\"type\":"
                         "\"integer\"},\"limit\":{\"type\":\"integer\"},\"pages\":{\"type\":\"integer\"},"
                         "\"has_more\":{\"type\":\"boolean\"}}}"));
        jw_obj_end(w);
        jw_obj_end(w);
        return;
    }
    struct buf sortable = BUF_INIT(2048);
    (void)buf_puts(&sortable, "field:asc|desc, comma-separated; default created_at:desc. Sortable: id, created_at, "
                              "updated_at");
    for (int i = 0; i < t->nfields; i++)
        if (t->res->fields[i].flags & RF_SORT)
            (void)buf_printf(&sortable, ", %s", t->res->fields[i].name);
    query_param(w, "sort", "string", buf_cstr(&sortable));
    buf_free(&sortable);
    query_param(w, "filter", "string",
                "expression: field op value joined by && and || with parentheses; ops = != > >= < <= ~ !~; values "
                "'text', numbers, true, false, null, @now, @me");
    query_param(w, "skip_total", "boolean", "true: no count query; meta has has_more instead of total/pages");
    if (t->searchable)
        query_param(w, "q", "string", "full-text search (ranked when no sort is given)");
    for (int i = -3; i < t->nfields; i++) {
        static const char *const implicit[] = {"id", "created_at", "updated_at"};
        const struct rfield *f = i < 0 ? resource_field(t->res, str_c(implicit[i + 3])) : &t->res->fields[i];
        if (!(f->flags & RF_FILTER))
            continue;
        struct buf d = BUF_INIT(256);
        (void)buf_printf(&d, "equals; also %s[ne|gt|gte|lt|lte|in|like]", f->name);
        query_param(w, f->name, f->type == RF_INT || f->type == RF_MONEY ? "integer" : f->type == RF_BOOL ? "boolean"
                                                                                                          : "string",
                    buf_cstr(&d));
        buf_free(&d);
    }
}

void resource__openapi_item(const struct route *route, struct jw *w, enum openapi_part part)
{
    if (part == OPENAPI_RESPONSE)
        row_schema(w, route->ctx);
    else if (!strcmp(route->method, "PATCH") || !strcmp(route->method, "DELETE"))
        jw_raw(w, STRLIT("{\"name\":\"If-Match\",\"in\":\"header\",\"description\":\"the ETag last read; 412 when "
                         "it no longer matches\",\"schema\":{\"type\":\"string\"}}"));
}
