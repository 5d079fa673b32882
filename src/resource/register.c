/*
 * register.c — resource_register(): derive once what does not change per
 * request — the SELECT column list, the create and update JSON schemas
 * (validated by the HTTP layer before a handler runs), the route table —
 * into a heap `struct rt` that the routes carry as ctx. A handler then
 * builds one SQL text from descriptor identifiers only, and binds every value.
 */
#include <stdio.h>
#include <stdlib.h>

#include "resource/internal.h"

#include "core/banned.h"

/* ---- registration ---- */

static enum route_auth auth_for(enum rpolicy p, bool read)
{
    switch (p) {
    case RP_PUBLIC: return AUTH_OPTIONAL;
    case RP_STAFF: return AUTH_STAFF;
    case RP_ADMIN: return AUTH_ADMIN;
    default: return read ? AUTH_USER : AUTH_USER;
    }
}

static enum jf_type jf_for(enum rf_type t)
{
    switch (t) {
    case RF_INT:
    case RF_MONEY: return JF_INT;
    case RF_BOOL: return JF_BOOL;
    case RF_NUMBER: return JF_NUMBER;
    case RF_JSON: return JF_ANY;
    case RF_STRLIST: return JF_ARRAY_STR;
    case RF_I18N: return JF_ANY; /* an object or a string: write.c checks it */
    default: return JF_STRING;
    }
}

static char *xprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
static char *xprintf(const char *fmt, ...)
{
    struct buf b = BUF_INIT(BUF_MAX_SQL);
    va_list ap;
    va_start(ap, fmt);
    (void)buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (!buf_ok(&b))
        BUG("resource: string too long");
    return buf_detach(&b, NULL);
}

/* What a list must look like for its total to come from res->kept_count_table:
 * compiled once by the engine's own visibility and filter code (for an
 * anonymous caller — the kept count counts what everyone sees), so the shapes
 * kept_total() compares against cannot drift from what a request compiles. */
static void kept_count_init(struct rt *t)
{
    const struct resource *res = t->res;
    if (!res->kept_count_field || res->read != RP_PUBLIC || res->public_where)
        FATAL("resource %s: a kept count needs kept_count_field and a public read without public_where", res->name);
    for (int k = 0; k < 2; k++) {
        struct rq q;
        struct caller anon = {0};
        rq_init(&q, res, k ? DB_POSTGRES : DB_SQLITE, STR_NULL, 0, NULL, NULL);
        if (resource__visibility(&anon, res, &q) || q.nargs)
            FATAL("resource %s: kept count: unexpected visibility rule", res->name);
        t->kept_vis[k] = xstrdup(buf_cstr(&q.sql));
        if (rq_filter_bracket(&q, str_c(res->kept_count_field), STRLIT("x")) || q.nargs != 1)
            FATAL("resource %s: kept count: %s is not an equality filter", res->name, res->kept_count_field);
        t->kept_eq[k] = xstrdup(buf_cstr(&q.sql));
        rq_release(&q);
    }
    t->kept_all = xprintf(", (SELECT CAST(coalesce(sum(n), 0) AS BIGINT) FROM %s)", res->kept_count_table);
    t->kept_one = xprintf(", coalesce((SELECT n FROM %s WHERE %s = ?), 0)", res->kept_count_table,
                          res->kept_count_field);
}

void resource_register(const struct resource *res)
{
    struct rt *t = xcalloc(1, sizeof(*t));
    struct buf cols = BUF_INIT(BUF_MAX_SQL), rcols = BUF_INIT(BUF_MAX_SQL);
    int nc = 0, nu = 0;
    ASSERT(res->name && res->singular && res->path && res->table && res->fields);
    if (resource__nrts == RESOURCE_MAX)
        FATAL("too many resources");
    if ((res->read == RP_OWNER || res->read == RP_OWNER_OR_STAFF || res->update == RP_OWNER ||
         res->update == RP_OWNER_OR_STAFF || res->del == RP_OWNER || res->del == RP_OWNER_OR_STAFF) &&
        !res->owner)
        FATAL("resource %s: an owner policy needs an owner column", res->name);
    t->res = res;
    (void)buf_printf(&cols, "t.id, t.version, ts_ms(t.created_at), ts_ms(t.updated_at), %s%s",
                     res->owner ? "t." : "NULL", res->owner ? res->owner : "");
    (void)buf_printf(&rcols, "id, version, ts_ms(created_at), ts_ms(updated_at), %s",
                     res->owner ? res->owner : "NULL");
    for (const struct rfield *f = res->fields; f->name; f++) {
        int i = t->nfields++;
        if (t->nfields > RESOURCE_MAX_FIELDS)
            FATAL("resource %s: too many fields", res->name);
        if (f->type == RF_TIME) {
            (void)buf_printf(&cols, ", ts_ms(t.%s)", f->name);
            (void)buf_printf(&rcols, ", ts_ms(%s)", f->name);
        } else {
            (void)buf_printf(&cols, ", t.%s", f->name);
            (void)buf_printf(&rcols, ", %s", f->name);
        }
        if (f->flags & RF_SEARCH)
            t->searchable = true;
        if (f->type == RF_I18N)
            t->has_i18n = true;
        if (f->type == RF_ENUM && !f->values)
            FATAL("resource %s: enum %s without values", res->name, f->name);
        if (f->type == RF_REF && !f->ref)
            FATAL("resource %s: ref %s without a target", res->name, f->name);
        if (f->def) {
            t->defaults[i] = json_loads(f->def, JSON_DECODE_ANY, NULL);
            if (!t->defaults[i])
                FATAL("resource %s: default of %s is not JSON", res->name, f->name);
        }
        if (f->flags & RF_READONLY)
            continue;
        struct json_field jf = {.name = f->name,
                                .type = jf_for(f->type),
                                .flags = f->flags & RF_NULLABLE ? JF_NULLABLE : 0,
                                .enum_values = f->type == RF_ENUM ? f->values : NULL,
                                .description = f->description};
        if (f->type != RF_I18N && f->type != RF_MONEY) {
            jf.min = f->min;
            jf.max = f->max;
        } else if (f->type == RF_MONEY) {
            jf.min = f->min;
            jf.max = f->max ? f->max : INT64_MAX;
        }
        resource__openapi_input(f, &jf);
        t->create_f[nc] = jf;
        if (f->flags & RF_REQUIRED)
            t->create_f[nc].flags |= JF_REQUIRED;
        nc++;
        if (!(f->flags & RF_CREATE_ONLY))
            t->update_f[nu++] = jf;
    }
    if (!buf_ok(&cols) || !buf_ok(&rcols))
        FATAL("resource %s: column list too long", res->name);
    t->cols = buf_detach(&cols, NULL);
    t->rcols = buf_detach(&rcols, NULL);
    t->create_s = (struct json_schema){t->create_f, false};
    t->update_s = (struct json_schema){t->update_f, false};
    t->item_pattern = xprintf("%s/{id}", res->path);
    if (res->public_where) { /* compile once now: a bad expression is a programming error */
        struct rq q;
        rq_init(&q, res, DB_SQLITE, STRLIT("x"), 0, NULL, NULL);
        q.all_fields = true;
        if (rq_filter_expr(&q, str_c(res->public_where)))
            FATAL("resource %s: public_where: %s", res->name, buf_cstr(&q.err_msg));
        rq_release(&q);
    }
    if (res->kept_count_table)
        kept_count_init(t);
    resource__openapi_register(t);
    unsigned want = res->routes ? res->routes : (RR_LIST | RR_GET | RR_CREATE | RR_UPDATE | RR_DELETE);
    size_t n = 0;
    const char *sing = res->singular;
    if (want & RR_LIST)
        t->routes[n++] = (struct route){.method = "GET", .pattern = res->path, .handler = resource__h_list,
                                        .auth = auth_for(res->read, true), .rl = RL_READ, .flags = ROUTE_PAGINATED,
                                        .summary = xprintf("List %s (filters, sort, search, pages)", res->name),
                                        .tag = res->tag, .ctx = t, .openapi = resource__openapi_list,
                                        .output = t->schema_ref};
    if ((want & RR_CREATE) && res->create != RP_DENY)
        t->routes[n++] = (struct route){.method = "POST", .pattern = res->path, .handler = resource__h_create,
                                        .auth = auth_for(res->create, false), .rl = RL_WRITE, .input = &t->create_s,
                                        .summary = xprintf("Create a %s (201 + Location)", sing), .tag = res->tag,
                                        .ctx = t, .openapi = resource__openapi_item, .output = t->schema_ref,
                                        .errors = "409"};
    if (want & RR_GET)
        t->routes[n++] = (struct route){.method = "GET", .pattern = t->item_pattern, .handler = resource__h_get,
                                        .auth = auth_for(res->read, true), .rl = RL_READ,
                                        .summary = xprintf("Get a %s (ETag)", sing), .tag = res->tag, .ctx = t,
                                        .openapi = resource__openapi_item, .output = t->schema_ref};
    if ((want & RR_UPDATE) && res->update != RP_DENY)
        t->routes[n++] = (struct route){.method = "PATCH", .pattern = t->item_pattern, .handler = resource__h_update,
                                        .auth = auth_for(res->update, false), .rl = RL_WRITE, .input = &t->update_s,
                                        .summary = xprintf("Update a %s (If-Match)", sing), .tag = res->tag,
                                        .ctx = t, .openapi = resource__openapi_item, .output = t->schema_ref,
                                        .errors = "403 409 412"};
    if ((want & RR_DELETE) && res->del != RP_DENY)
        t->routes[n++] = (struct route){.method = "DELETE", .pattern = t->item_pattern, .handler = resource__h_delete,
                                        .auth = auth_for(res->del, false), .rl = RL_WRITE,
                                        .summary = xprintf("Delete a %s%s (If-Match)", sing,
                                                           res->soft_delete ? " (soft)" : ""),
                                        .tag = res->tag, .ctx = t, .openapi = resource__openapi_item,
                                        .errors = "403 409 412", .status = 204};
    if (resource__nrts == 0)
        resource__search_register();
    resource__rts[resource__nrts++] = t;
    if (n)
        router_add(t->routes, n);
}
