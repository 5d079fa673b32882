/*
 * admin_ui.c — the admin dashboard at /admin (API.md §12, issue 14 item 4).
 *
 *   GET /admin          index.html
 *   GET /admin/{file}   app.js, app.css, ... (the embedded files; else 404)
 *
 * Plain HTML/CSS/JS compiled into the binary (static_files.h); nothing is
 * read from disk and nothing is built at run time. The page itself is
 * public: every piece of data comes from the admin API with the bearer token
 * the page obtains by signing in (POST /api/v1/auth/login), so the server's
 * checks are the ones every other client meets.
 *
 * Headers: a strict Content-Security-Policy (own scripts and styles only, no
 * inline code, fetch to this origin only, no framing), the file's ETag with
 * `Cache-Control: no-cache` (revalidated on every load, 304 when unchanged,
 * so an upgraded binary is picked up at once).
 */
#include "modules/admin_ui/admin_ui.h"

#include "http/http.h"
#include "modules/admin_ui/static_files.h"

#include "core/banned.h"

#define CSP                                                                                                            \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "             \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static const struct static_file *find(str_t name)
{
    for (size_t i = 0; i < admin_ui_files_count; i++)
        if (str_eq(name, str_c(admin_ui_files[i].name)))
            return &admin_ui_files[i];
    return NULL;
}

static int serve(struct req *r, const struct static_file *f)
{
    if (!f)
        return http_fail(r, 404, "NOT_FOUND", "no such file");
    req_header(r, "content-security-policy", STRLIT(CSP));
    req_header(r, "cache-control", STRLIT("no-cache"));
    req_header(r, "etag", str_c(f->etag));
    str_t inm = req_header_get(r, "if-none-match");
    if (inm.p && http_etag_matches(inm, str_c(f->etag))) {
        r->status = 304;
        return 0;
    }
    r->content_type = f->content_type;
    (void)buf_append(&r->out, f->data, f->len);
    return 0;
}

static int h_index(struct req *r) { return serve(r, find(STRLIT("index.html"))); }

static int h_file(struct req *r) { return serve(r, find(req_param(r, "file"))); }

static struct route routes[] = {
    {.method = "GET", .pattern = "/admin", .handler = h_index, .rl = RL_READ, .flags = ROUTE_NO_BODY,
     .summary = "The admin dashboard (HTML; sign in with an admin account)", .tag = "admin",
     .output_type = "text/html", .output = OPENAPI_JSON({"type" : "string", "description" : "index.html"}),
     .status = 304},
    {.method = "GET", .pattern = "/admin/{file}", .handler = h_file, .rl = RL_READ, .flags = ROUTE_NO_BODY,
     .summary = "The admin dashboard's scripts and styles", .tag = "admin",
     .output_type = "text/*",
     .output = OPENAPI_JSON({"type" : "string", "description" : "an embedded file: text/javascript or text/css by its name"}),
     .status = 304},
};

static void register_routes(void) { router_add(routes, ARRAY_LEN(routes)); }

const struct module admin_ui_module = {
    .name = "admin_ui",
    .register_routes = register_routes,
};
