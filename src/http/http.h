/*
 * http.h — what a handler sees: the route table entry it was declared in,
 * and the per-request context `struct req`.
 *
 * The error convention — one way to fail, the same in every module:
 *   0            the response is in r->status / r->out (JSON written via r->w)
 *   HTTP_EFAIL   an error was recorded with http_fail()/http_invalid()/
 *                http_db_fail(); the server turns it into problem+json.
 *                HTTP_EFAIL is distinct from every enum db_rc, so a code
 *                path that may return either tells them apart by value.
 *   HTTP_DEFER   the response comes later (http_defer).
 * Handlers never write an error body, never reset r->out before failing
 * (the server discards the body of a failed request) and never carry a
 * private outcome number out of a transaction to map it by hand: a write
 * transaction runs through req_tx(), whose callback fails with
 * `return http_fail(...)` (rolled back, the error propagates) or returns a
 * db_rc (rolled back, mapped once by http_db_fail). API.md §1.
 * All request memory comes from r->pool (h2o's per-request arena).
 */
#ifndef TEMEL_HTTP_H
#define TEMEL_HTTP_H

#define H2O_USE_EPOLL 1
#include <h2o.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/json.h"
#include "db/db.h"

struct req;

typedef int (*http_handler)(struct req *r);

/* HTTP_EFAIL is far below every enum db_rc (problem.c asserts it). */
enum { HTTP_OK = 0, HTTP_EFAIL = -1000, HTTP_DEFER = 1 };

/* Who may call a route. The identity module installs the authenticator. */
enum route_auth { AUTH_NONE = 0, AUTH_OPTIONAL, AUTH_USER, AUTH_STAFF, AUTH_ADMIN };

enum route_flags {
    ROUTE_TEST_ONLY = 1 << 0, /* registered only when TEMEL_ENV=test */
    ROUTE_NO_BODY = 1 << 1,   /* a body is refused (415 if it has a type, 413 if large) */
    ROUTE_RAW_BODY = 1 << 2,  /* body passed through unparsed (r->entity) */
    ROUTE_PAGINATED = 1 << 3, /* page/limit query parameters validated before the handler */
    ROUTE_HIDDEN = 1 << 4,    /* left out of the OpenAPI document */
    ROUTE_BODY_OPTIONAL = 1 << 5, /* an empty body is allowed (r->body stays NULL) */
    ROUTE_IDEMPOTENT = 1 << 6,    /* honours Idempotency-Key (http/idempotency.h) */
};

/* Parts of an OpenAPI operation a route's openapi hook may add to. */
enum openapi_part {
    OPENAPI_PARAMS,   /* append parameter objects (the "parameters" array is open) */
    OPENAPI_RESPONSE, /* write one JSON schema value: the 2XX response body (only when .output is NULL) */
};

/* A JSON Schema written as JSON in C source: OPENAPI_JSON({"type": "string", "format": "uuid"})
 * is the text of that JSON. Used for `struct route.output`, `json_field.schema` and
 * `struct openapi_schema.json`; the document generator parses every one (bad JSON is fatal
 * at startup, and `temel openapi` fails). Refer to a shared schema with
 * {"$ref": "#/components/schemas/Name"}. */
#define OPENAPI_JSON(...) #__VA_ARGS__

/* A shared schema in the document's components.schemas (listed once, referenced by $ref).
 * Register a static one with openapi_schema_add() from register_routes; json is its
 * OPENAPI_JSON text, or write(w, ctx) writes it (one JSON value). A duplicate name is a BUG(). */
struct openapi_schema {
    const char *name;
    const char *json;
    void (*write)(struct jw *w, const void *ctx);
    const void *ctx;
    struct openapi_schema *next; /* the registry's list */
};
void openapi_schema_add(struct openapi_schema *s);

#define ROUTE_MAX_PARAMS 8
#define HTTP_BODY_DEFAULT (64u << 10)  /* 64 KiB unless a route says otherwise */
#define HTTP_BODY_MAX (16u << 20)      /* h2o's global cap: the largest route limit */

struct route {
    const char *method;  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern; /* "/api/v1/things/{id}" — {name} matches one segment */
    http_handler handler;
    enum route_auth auth;
    enum rl_class rl;    /* RL_NONE: not rate limited */
    size_t body_max;     /* 0 = HTTP_BODY_DEFAULT */
    const struct json_schema *input; /* JSON body schema (NULL = no JSON body) */
    const char *summary; /* OpenAPI */
    const char *tag;     /* OpenAPI grouping */
    unsigned flags;
    /* OpenAPI, docs/internals.md "Describing a route": the 2XX JSON body as a JSON Schema
     * (OPENAPI_JSON(...)); for a ROUTE_PAGINATED route, the schema of ONE item: the generator
     * wraps it in the list envelope {"data": [item], "meta": PageMeta}. NULL: no body described. */
    const char *output;
    /* The 2XX media type when it is not application/json ("text/plain", "image/png", ...):
     * then .output is that body's schema, e.g. {"type": "string", "format": "binary"}. */
    const char *output_type;
    /* A success answer without a body: 204 (no content), 301/302/303/307 (a redirect, Location says where),
     * 304 (not modified) or 101 (a protocol upgrade). Alone it is the route's only success answer; beside .output it is a second one
     * (e.g. a download that answers the bytes, or a redirect to storage). 0: none.
     * A route whose only success is 204 starts each request with r->status 204 (request.c). */
    int status;
    /* Extra 4xx statuses the handler itself answers, e.g. "402 409 410". The generator adds
     * those the stages give (400; 401/403 from auth; 404 with path parameters; 413/415/422 with
     * a body; 422 for pages; 429 when rate limited). */
    const char *errors;
    /* ROUTE_RAW_BODY: the requestBody's "content" object as JSON, e.g. OPENAPI_JSON({"multipart/form-data":
     * {"schema": {...}}}); NULL: application/octet-stream. */
    const char *raw_body;
    /* More OpenAPI parameter objects (query, header) as a JSON array:
     * OPENAPI_JSON([{"name": "job_id", "in": "query", "required": true, "schema": {...}}]). */
    const char *params;
    /* The operation's security requirement as JSON when auth does not say it (e.g. /metrics' token). */
    const char *security;
    /* Optional, for generic handlers such as the resource engine: data the
     * handler reads as r->route->ctx, and a hook that adds query parameters
     * and the response schema to the route's OpenAPI operation. */
    const void *ctx;
    void (*openapi)(const struct route *rt, struct jw *w, enum openapi_part part);
    /* filled by the router */
    int id;
};

/* Register a module's routes (before server start). The array must live
 * for the whole process. Duplicate method+pattern is a BUG(). */
void router_add(struct route *routes, size_t n);
/* Freeze the table: build the matcher, assign ids. Called once by the server. */
void router_freeze(bool include_test_routes);
size_t router_count(void);
const struct route *router_get(size_t id);

enum match_rc { MATCH_OK = 0, MATCH_NOT_FOUND = -1, MATCH_BAD_METHOD = -2, MATCH_BAD_PATH = -3 };
struct route_match {
    const struct route *route;
    str_t params[ROUTE_MAX_PARAMS];   /* percent-decoded, pool memory */
    const char *names[ROUTE_MAX_PARAMS];
    int nparams;
    unsigned allow_mask;              /* methods allowed on this path (for 405 Allow / CORS) */
};
/* Match a raw path (no query). pool may be NULL when no decoding is needed
 * (tests), in which case params point into the path when possible. */
int router_match(str_t method, str_t path, h2o_mem_pool_t *pool, struct route_match *m);
/* "GET, POST" for an allow mask, written into b. */
void router_allow_header(unsigned mask, struct buf *b);

/* ---- query strings ---- */
#define QUERY_MAX_PARAMS 64
struct query_param {
    str_t key, value; /* decoded, NUL-terminated */
};
struct query {
    struct query_param p[QUERY_MAX_PARAMS];
    int n;
};
enum query_rc { QUERY_OK = 0, QUERY_EBAD = -1, QUERY_ETOOMANY = -2 };
/* Parse "a=1&b=x%20y" (without the '?'). Decoding: %XX and '+' as space;
 * bad escapes, NUL, invalid UTF-8 → QUERY_EBAD. alloc(ud, n) gives memory. */
typedef void *(*query_alloc_fn)(void *ud, size_t n);
int query_parse(str_t qs, struct query *q, query_alloc_fn alloc, void *ud) WARN_UNUSED;
/* url_decode() (one component) is in core/common.h. */
const str_t *query_get(const struct query *q, const char *key);

/* ---- the request ----
 * A request runs in its own coroutine on its loop thread (core/coro.h): a
 * handler may wait (database, worker pool, timers) and the loop serves other
 * requests meanwhile. The client may leave while a handler waits, so a
 * handler never sees h2o's request: what it reads (method, path, headers,
 * body, peer) was copied into the request's own pool at the start, and the
 * response is handed to h2o only when the handler has finished. */
struct req_hdr {
    str_t name; /* lower-case */
    str_t value;
};
struct req_out_hdr;

struct req {
    h2o_mem_pool_t *pool; /* the request's own arena; freed after the response */
    str_t method;
    str_t path;     /* without the query string */
    str_t raw_path; /* as sent, with the query string */
    str_t entity;   /* the request body */
    const struct req_hdr *hdrs;
    size_t nhdrs;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    int http_version; /* 0x101, 0x200, ... */
    const struct route *route;
    struct route_match m;
    struct query q;
    json_t *body;        /* validated JSON body or NULL */
    struct db *db;       /* this thread's connection */
    const struct config *cfg;
    struct thread_ctx *thr;
    int64_t start_us, deadline_ms;
    char request_id[72];
    size_t request_id_len;
    /* caller identity (set by the authenticator) */
    str_t user_id;
    str_t role;
    str_t session_id; /* JWT callers: the session (refresh family) */
    str_t api_key_id; /* API-key callers */
    struct buf *ident; /* the authenticator's rendering of the caller's row for its own module, or NULL */
    /* pagination (ROUTE_PAGINATED) */
    int64_t page, limit;
    /* response */
    int status;
    struct buf out;
    struct jw w;
    const char *content_type; /* default application/json */
    /* A file on disk as the 200 response instead of r->out (pool memory):
     * h2o streams it and answers Range/If-None-Match itself (206, 416). */
    const char *send_file;
    /* response metadata kept for finishing (possibly later, see http_defer) */
    bool is_api, rl_checked;
    int64_t rl_limit, rl_remaining, rl_reset_s;
    const char *cors_origin;
    struct req_out_hdr *out_hdrs; /* req_header(), applied when the response is sent */
    /* recorded error */
    struct {
        int status;
        const char *code;
        struct buf detail;
        struct json_verr errs[JSON_VERR_MAX];
        int nerrs;
        int64_t retry_after_s; /* 429/503 */
    } err;
};

/* A growable buffer that lives as long as the request: its memory is freed
 * with the request pool, so an early return cannot leak it (STYLE §1). */
struct buf *req_buf(struct req *r, size_t max);

/* The list envelope's `"meta": {"total","page","limit","pages"}` (API.md §1)
 * for a ROUTE_PAGINATED route, written as the next key of the open object. */
void http_write_page_meta(struct req *r, int64_t total);

/* Hand-written list routes (ROUTE_PAGINATED): the allowed query keys (besides
 * page and limit; NULL-terminated) → 422 naming an unknown one; then the
 * count and the page, written as {"data": [...], "meta": {...}}.
 * from is "FROM ..." (with joins), where is "" or " WHERE ..." built from
 * whitelisted names with `?` for every value, order is "col DESC, id DESC".
 * args must have room for two more (LIMIT/OFFSET): cap is its size. */
struct http_list_query {
    const char *cols, *from, *where, *order;
    void (*row)(struct jw *w, const struct db_res *res);
};
/* A row writer for hand-written lists (where no resource descriptor
 * exists): column i of the row is written as cols[i].key with its kind;
 * SQL NULL is null. cols ends with {NULL}. */
enum http_col_kind { COL_TEXT, COL_INT, COL_BOOL, COL_TIME, COL_JSON /* JSON text written by us */ };
struct http_col {
    const char *key;
    enum http_col_kind kind;
};
void http_write_row(struct jw *w, const struct db_res *res, const struct http_col *cols);
/* The same columns written into the object that is open in w. */
void http_write_cols(struct jw *w, const struct db_res *res, const struct http_col *cols);
int http_query_allow(struct req *r, const char *const *allowed) WARN_UNUSED;
int http_list(struct req *r, const struct http_list_query *q, struct db_arg *args, size_t nargs, size_t cap);
/* The same for rows that need queries of their own: row writes one row to
 * r->w using r->db and returns 0 or a db_rc (which fails the list). q->row
 * is not used. */
typedef int (*http_row_fn)(struct req *r, const struct db_res *res);
int http_list_each(struct req *r, const struct http_list_query *q, http_row_fn row, struct db_arg *args, size_t nargs,
                   size_t cap);
/* Every row of q (no count, no pages) as a JSON array on r->w, for a
 * document such as the GDPR export; row as above, or NULL for q->row.
 * 0 or a db_rc (not recorded: for use inside a transaction). */
int http_rows_all(struct req *r, const struct http_list_query *q, http_row_fn row, const struct db_arg *args,
                  size_t nargs) WARN_UNUSED;

/* Path parameter by name (view, decoded), or an empty view. */
str_t req_param(const struct req *r, const char *name);
const str_t *req_query(const struct req *r, const char *key);
/* Add a response header (name lower-case; both copied into the pool). */
void req_header(struct req *r, const char *name, str_t value);
/* A request header's value, or STR_NULL. */
str_t req_header_get(const struct req *r, const char *name_lower);
/* Does an If-Match / If-None-Match header value name etag? ("*" or a list; W/ ignored) */
bool http_etag_matches(str_t header, str_t etag);

/* Deferred responses: a handler that must wait for something done elsewhere
 * (a job's result) calls http_defer() and returns HTTP_DEFER. The request's
 * coroutine then waits (the loop serves others) and every 100 ms calls
 * poll(r, arg, timed_out) (r->db usable, inside no transaction); poll returns
 * HTTP_DEFER to keep waiting, 0 when it has set the response, or
 * HTTP_EFAIL after http_fail(). Once deadline_mono_ms has passed, poll is
 * called one last time with timed_out = true and must answer. If the client
 * goes away, poll is never called again. arg must be request-pool memory. */
typedef int (*http_poll_fn)(struct req *r, void *arg, bool timed_out);
int http_defer(struct req *r, http_poll_fn poll, void *arg, int64_t deadline_mono_ms);

/* An extra rate limit inside a handler (e.g. a plan's AI quota): one
 * request against `rule` for `key` in limiter `name`'s own space. 0 when
 * allowed; otherwise records 429 RATE_LIMIT_EXCEEDED with Retry-After and
 * returns HTTP_EFAIL. */
struct rl_rule;
int http_rate_limit(struct req *r, const char *name, str_t key, const struct rl_rule *rule) WARN_UNUSED;

/* ---- long-lived connections (WebSocket, Server-Sent Events) ----
 * A handler that keeps the connection calls http_takeover(r, fn, arg) and
 * returns 0. Once the handler has finished, on the loop's own stack, the
 * server counts and logs the request with r->status (101 or 200), puts its
 * standard headers (X-Request-Id, nosniff, CORS, ...) on h2o's response and
 * calls fn(h, arg) with h2o's request instead of sending r->out: fn owns the
 * response from then on (h2o_upgrade_to_websocket, or h2o_start_response +
 * h2o_send). If the client left before, fn(NULL, arg) is called so that arg
 * can be released. arg is the caller's (heap) memory: the request's pool is
 * freed right after fn returns. */
typedef void (*http_takeover_fn)(h2o_req_t *h, void *arg);
void http_takeover(struct req *r, http_takeover_fn fn, void *arg);

/* Work on behalf of a long-lived connection (a WebSocket message) that needs
 * what a handler has: a coroutine, this loop's database handle, the
 * authenticator. On a loop thread only: fn(r, arg) runs in a new coroutine
 * with a request of its own (method GET, path /api/v1/realtime, and when
 * bearer is not empty one header "authorization: Bearer <bearer>"); it
 * returns 0 or HTTP_EFAIL after http_fail() like a handler. Then done(r, rc,
 * arg) runs on the loop's stack (inside http_task() itself when fn never
 * waited) and r is freed after it returns. */
typedef int (*http_task_fn)(struct req *r, void *arg);
typedef void (*http_task_done_fn)(struct req *r, int rc, void *arg);
void http_task(str_t bearer, http_task_fn fn, http_task_done_fn done, void *arg);

/* This loop thread's h2o context, or NULL on any other thread. */
h2o_context_t *http_loop_context(void);

/* Client address: the peer, or with TEMEL_TRUST_PROXY the last X-Forwarded-For entry. */
str_t req_client_ip(struct req *r);

/* Record an error; returns HTTP_EFAIL for `return http_fail(...)`. */
int http_fail(struct req *r, int status, const char *code, const char *fmt, ...) PRINTF_LIKE(4, 5);
/* Add a field error to a 422 (call http_fail afterwards or use http_invalid). */
void http_field_error(struct req *r, const char *field, const char *message);
int http_invalid(struct req *r, const char *field, const char *message);
/* Map a db_rc to 409/503/500, logging the database's message with the request id. */
int http_db_fail(struct req *r, int db_rc);
/* A 500 for a fault on our side: logs `what` and `detail` (never sent) at
 * error level with the request id; the client gets only the request id. */
int http_internal_error(struct req *r, const char *what, const char *detail);
/* 0 passes through, HTTP_EFAIL passes through (already recorded), any other
 * value is a db_rc and goes to http_db_fail: `return http_rc(r, rc);`. */
int http_rc(struct req *r, int rc);

/* Run fn(r, arg) inside db_tx(r->db, mode, ...) — the one way a handler
 * writes in a transaction. fn uses r->db and returns:
 *   0            commit
 *   HTTP_EFAIL   after http_fail()/http_invalid(): roll back; req_tx
 *                returns HTTP_EFAIL with that error
 *   a db_rc < 0  roll back (DB_EBUSY: db_tx retries); req_tx maps it with
 *                http_db_fail
 *   0 after http_fail()  commit what was written (a failed attempt that
 *                must be counted), then req_tx returns HTTP_EFAIL with it
 * Before each retried attempt the recorded error, r->status and the
 * response written so far are put back as they were before the first
 * attempt, so a retry keeps nothing of the failed one. Joining an outer
 * transaction (the idempotency layer) works as db_tx's join does.
 * Returns 0 or HTTP_EFAIL: `if (req_tx(...)) return HTTP_EFAIL;`. */
typedef int (*req_tx_fn)(struct req *r, void *arg);
int req_tx(struct req *r, enum db_tx_mode mode, req_tx_fn fn, void *arg) WARN_UNUSED;

/* Authenticator installed by the identity module: fill r->user_id/role from the
 * request, return 0, or http_fail(401). NULL means no identity module: routes
 * needing a user answer 401. */
typedef int (*http_authenticator)(struct req *r, enum route_auth need);
void http_set_authenticator(http_authenticator fn);
/* Run the installed authenticator for `need` from inside a handler (for
 * routes that accept another credential first, such as /metrics' token):
 * 0 with r->user_id/role set, or HTTP_EFAIL after http_fail(401/403). */
int http_authenticate(struct req *r, enum route_auth need);

#endif
