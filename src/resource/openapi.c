/*
 * openapi.c — the OpenAPI fragments of a resource's routes: the row schema
 * derived from the descriptor, the list's query parameters and envelope.
 */
#include "resource/internal.h"

#include "core/banned.h"

/* ---- OpenAPI ---- */


/* The row's value of f as written by resource__write_row. Every field is
 * present; one that may be stored empty (nullable, or a client field neither
 * required nor defaulted) may be null. */
static void field_schema(struct jw *w, const struct rfield *f)
{
    bool nullable = (f->flags & RF_NULLABLE) || !(f->flags & (RF_REQUIRED | RF_READONLY) || f->def);
    const char *type = NULL, *format = NULL;
    if (f->schema) {
        if (nullable) {
            jw_obj_begin(w);
            jw_key(w, "anyOf");
            jw_arr_begin(w);
            jw_raw(w, str_c(f->schema));
            jw_raw(w, STRLIT("{\"type\":\"null\"}"));
            jw_arr_end(w);
            jw_obj_end(w);
        } else {
            jw_raw(w, str_c(f->schema));
        }
        return;
    }
    switch (f->type) {
    case RF_INT:
    case RF_MONEY: type = "integer"; break;
    case RF_BOOL: type = "boolean"; break;
    case RF_NUMBER: type = "number"; break;
    case RF_TIME:
        type = "string";
        format = "date-time";
        break;
    case RF_JSON: break;
    case RF_STRLIST: type = "array"; break;
    case RF_REF:
        type = "string";
        format = "uuid";
        break;
    default:
        type = "string";
        format = f->check == RC_EMAIL ? "email" : f->check == RC_URL ? "uri" : f->check == RC_UUID ? "uuid" : NULL;
        break;
    }
    jw_obj_begin(w);
    if (type) {
        jw_key(w, "type");
        if (nullable) {
            jw_arr_begin(w);
            jw_cstr(w, type);
            jw_cstr(w, "null");
            jw_arr_end(w);
        } else {
            jw_cstr(w, type);
        }
    }
    if (format) {
        jw_key(w, "format");
        jw_cstr(w, format);
    }
    if (f->type == RF_STRLIST) {
        jw_key(w, "items");
        jw_raw(w, STRLIT("{\"type\":\"string\"}"));
    }
    if (f->type == RF_ENUM && f->values) {
        jw_key(w, "enum");
        jw_arr_begin(w);
        for (const char *const *e = f->values; *e; e++)
            jw_cstr(w, *e);
        if (nullable)
            jw_null(w);
        jw_arr_end(w);
    }
    if (f->check == RC_CURRENCY) {
        jw_key(w, "pattern");
        jw_cstr(w, "^[A-Z]{3}$");
    }
    const char *desc = f->description;
    if (f->type == RF_MONEY && !desc)
        desc = "amount in minor units";
    if (f->type == RF_I18N && !desc)
        desc = "in the request's language (Accept-Language)";
    if (desc) {
        jw_key(w, "description");
        jw_cstr(w, desc);
    }
    jw_obj_end(w);
}

static void row_schema(struct jw *w, const void *ctx)
{
    const struct rt *t = ctx;
    jw_obj_begin(w);
    jw_key(w, "type");
    jw_cstr(w, "object");
    jw_key(w, "required");
    jw_arr_begin(w);
    jw_cstr(w, "id");
    for (int i = 0; i < t->nfields; i++)
        if (!(t->res->fields[i].flags & RF_PRIVATE))
            jw_cstr(w, t->res->fields[i].name);
    jw_cstr(w, "created_at");
    jw_cstr(w, "updated_at");
    jw_arr_end(w);
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

void resource__openapi_register(struct rt *t)
{
    struct buf name = BUF_INIT(256), ref = BUF_INIT(512);
    bool up = true;
    for (const char *p = t->res->singular; *p; p++) {
        bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
        if (alnum)
            (void)buf_putc(&name, up && *p >= 'a' && *p <= 'z' ? (char)(*p - 32) : *p);
        up = !alnum;
    }
    (void)buf_printf(&ref, "{\"$ref\":\"#/components/schemas/%s\"}", buf_cstr(&name));
    if (!buf_ok(&name) || !buf_ok(&ref))
        FATAL("resource %s: schema name too long", t->res->name);
    t->schema = (struct openapi_schema){.name = buf_detach(&name, NULL), .write = row_schema, .ctx = t};
    t->schema_ref = buf_detach(&ref, NULL);
    openapi_schema_add(&t->schema);
}

/* An i18n field on write: {"tr","en","pl"} (at least one) or one string,
 * the text in the request's language (write.c i18n_value). Made once per
 * field at registration. */
static const char *i18n_input(const struct rfield *f)
{
    struct buf b = BUF_INIT(4096), len = BUF_INIT(256);
    if (f->min || f->max)
        (void)buf_printf(&len, ",\"minLength\":%lld,\"maxLength\":%lld", (long long)f->min, (long long)f->max);
    (void)buf_printf(&b,
                     "{\"oneOf\":[{\"type\":\"object\",\"description\":\"one text per language\",\"minProperties\":1,"
                     "\"additionalProperties\":false,\"properties\":{\"tr\":{\"type\":\"string\"%s},\"en\":{\"type\":"
                     "\"string\"%s},\"pl\":{\"type\":\"string\"%s}}},{\"type\":\"string\"%s,\"description\":\"the text "
                     "in the request's language (Accept-Language, default en); an update keeps the other "
                     "languages\"}%s]}",
                     buf_cstr(&len), buf_cstr(&len), buf_cstr(&len), buf_cstr(&len),
                     (f->flags & RF_NULLABLE) ? ",{\"type\":\"null\"}" : "");
    buf_free(&len);
    if (!buf_ok(&b))
        FATAL("resource: i18n schema of %s too long", f->name);
    return buf_detach(&b, NULL);
}

/* What a create/update body's field is, beyond its JSON type. */
void resource__openapi_input(const struct rfield *f, struct json_field *jf)
{
    switch (f->type) {
    case RF_I18N: jf->schema = i18n_input(f); break;
    case RF_TIME: jf->format = "date-time"; break;
    case RF_REF: jf->format = "uuid"; break;
    default:
        jf->format = f->check == RC_EMAIL ? "email" : f->check == RC_URL ? "uri" : f->check == RC_UUID ? "uuid" : NULL;
        break;
    }
    if (f->type == RF_JSON && f->schema)
        jf->schema = f->schema;
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
    if (part == OPENAPI_RESPONSE) /* the route's output (the row's $ref) is used instead */
        return;
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
    if (part == OPENAPI_PARAMS && (!strcmp(route->method, "PATCH") || !strcmp(route->method, "DELETE")))
        jw_raw(w, STRLIT("{\"name\":\"If-Match\",\"in\":\"header\",\"description\":\"the ETag last read; 412 when "
                         "it no longer matches\",\"schema\":{\"type\":\"string\"}}"));
}
