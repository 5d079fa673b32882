/*
 * resource.h — the declarative resource engine (ARCHITECTURE §4, issue 5).
 *
 * A resource is DATA: a static const struct resource naming its table, its
 * fields (type, limits, validators, who may write them), its owner column
 * and a policy per action. resource_register() turns it into routes:
 *
 *   GET    <path>        list: {data, meta}, page/limit, skip_total, sort,
 *                        bracket filters, filter= expressions, q (full text)
 *   POST   <path>        create: 201 + Location + ETag
 *   GET    <path>/{id}   read, with ETag
 *   PATCH  <path>/{id}   update; If-Match → 412 when stale
 *   DELETE <path>/{id}   delete (soft when declared); If-Match honoured
 *
 * Table conventions (the migration must follow them):
 *   id TEXT PRIMARY KEY (UUIDv7), version INTEGER NOT NULL DEFAULT 1,
 *   created_at, updated_at (timestamps: integer ms / timestamptz),
 *   deleted_at (nullable timestamp) when soft_delete,
 *   the owner column (TEXT users.id) when owner is set,
 *   one column per field, named as the field. Types per field type below.
 *   Full text (any field with RF_SEARCH): SQLite an FTS5 external-content
 *   table "<table>_fts" (content='<table>', content_rowid='rowid') over the
 *   searchable columns, kept in sync by triggers; PostgreSQL a generated
 *   column "search_tsv tsvector" (to_tsvector('simple', ...)) with a GIN index.
 *
 * Field types and storage:
 *   RF_TEXT    TEXT                      min/max = length in code points
 *   RF_INT     INTEGER / BIGINT          min/max = value (0,0 = unchecked)
 *   RF_MONEY   INTEGER / BIGINT          minor units (>= 0 unless min < 0); pair
 *                                        it with a currency field (RC_CURRENCY)
 *   RF_BOOL    INTEGER 0/1 / BOOLEAN
 *   RF_TIME    INTEGER ms / TIMESTAMPTZ  RFC 3339 in and out
 *   RF_ENUM    TEXT (+ CHECK)            one of values
 *   RF_REF     TEXT                      id of a row of `ref` that the caller
 *                                        may see (else 422)
 *   RF_JSON    TEXT                      any JSON value, stored as its text
 *   RF_STRLIST TEXT                      JSON array of strings (min/max = items,
 *                                        each string at most 200 code points)
 *   RF_I18N    TEXT                      {"tr","en","pl"} strings; output picks
 *                                        the Accept-Language one (then en, then any)
 *
 * Validators (rf_check) are named, not regular expressions: email, url
 * (http/https), slug ([a-z0-9-]), currency (ISO 4217: three capitals), uuid.
 *
 * Visibility (who sees which rows in list, read, search; a row the caller
 * may not see is 404 everywhere and never listed):
 *   RP_PUBLIC          anyone, also anonymous; rows limited by public_where
 *                      unless the caller owns them or is staff
 *   RP_AUTH            as RP_PUBLIC, but a signed-in caller is required
 *   RP_OWNER           own rows only
 *   RP_OWNER_OR_STAFF  own rows; staff (admin, moderator) see all
 *   RP_STAFF, RP_ADMIN those roles only
 * Create: RP_AUTH (any signed-in non-guest... see create_guests), RP_STAFF,
 * RP_ADMIN, RP_PUBLIC (anonymous creates: no owner). Update/delete:
 * RP_OWNER, RP_OWNER_OR_STAFF, RP_STAFF, RP_ADMIN; a visible row the caller
 * may not change is 403.
 *
 * Example (a blog post: staff write, the public reads what is published):
 *
 *   static const char *const post_status[] = {"draft", "published", NULL};
 *   static const struct rfield post_fields[] = {
 *       {.name = "title", .type = RF_TEXT, .flags = RF_REQUIRED | RF_SORT | RF_SEARCH, .min = 1, .max = 200},
 *       {.name = "body", .type = RF_TEXT, .flags = RF_SEARCH, .max = 100000},
 *       {.name = "category_id", .type = RF_REF, .ref = &blog_categories, .flags = RF_FILTER},
 *       {.name = "status", .type = RF_ENUM, .values = post_status, .def = "\"draft\"", .flags = RF_FILTER},
 *       {.name = "author_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER},
 *       {0}};
 *   const struct resource blog_posts = {
 *       .name = "posts", .singular = "post", .path = "/api/v1/posts", .table = "blog_posts",
 *       .tag = "blog", .fields = post_fields, .owner = "author_id",
 *       .read = RP_PUBLIC, .public_where = "status = 'published'",
 *       .create = RP_STAFF, .update = RP_STAFF, .del = RP_STAFF,
 *       .title_field = "title", .soft_delete = true};
 *   ... in the module's register_routes: resource_register(&blog_posts);
 *
 * Return convention: handlers and hooks return 0 or HTTP_EFAIL (http.h).
 */
#ifndef TEMEL_RESOURCE_H
#define TEMEL_RESOURCE_H

#include "core/json.h"
#include "db/db.h"
#include "http/http.h"
#include "http/problem.h"

/* RF_NUMBER: a real number the database computes (RF_READONLY only), e.g. an average. */
enum rf_type { RF_TEXT = 1, RF_INT, RF_MONEY, RF_BOOL, RF_TIME, RF_ENUM, RF_REF, RF_JSON, RF_STRLIST, RF_I18N, RF_NUMBER };

enum rf_flags {
    RF_REQUIRED = 1 << 0,    /* must be present on create */
    RF_NULLABLE = 1 << 1,    /* null is a valid value */
    RF_READONLY = 1 << 2,    /* set by the server only; a client sending it gets 422 */
    RF_FILTER = 1 << 3,      /* usable in bracket filters and filter= */
    RF_SORT = 1 << 4,        /* usable in sort= */
    RF_SEARCH = 1 << 5,      /* part of the full-text index (see the table conventions) */
    RF_PRIVATE = 1 << 6,     /* stored, never output */
    RF_CREATE_ONLY = 1 << 7, /* may be set on create, not changed by PATCH */
};

enum rf_check { RC_NONE = 0, RC_EMAIL, RC_URL, RC_SLUG, RC_CURRENCY, RC_UUID };

/* Role bits for rfield.write_roles. */
enum role_bits {
    ROLE_GUEST = 1 << 0,
    ROLE_USER = 1 << 1,
    ROLE_MODERATOR = 1 << 2,
    ROLE_ADMIN = 1 << 3,
    ROLE_STAFF = ROLE_MODERATOR | ROLE_ADMIN,
};

struct resource;

struct rfield {
    const char *name; /* JSON name = column name */
    enum rf_type type;
    unsigned flags;
    int64_t min, max;
    const char *const *values;  /* RF_ENUM: NULL-terminated */
    enum rf_check check;
    const char *def;            /* default on create as JSON text ("\"draft\"", "0", "[]"), NULL = none */
    unsigned write_roles;       /* 0 = whoever the action's policy admits; else only these roles may set it */
    const struct resource *ref; /* RF_REF: the referenced resource */
    const char *description;    /* OpenAPI */
    const char *schema;         /* OpenAPI: the output JSON Schema of an RF_JSON field (OPENAPI_JSON) */
};

enum rpolicy { RP_DENY = 0, RP_PUBLIC, RP_AUTH, RP_OWNER, RP_OWNER_OR_STAFF, RP_STAFF, RP_ADMIN };

enum raction { RA_CREATE = 1, RA_UPDATE, RA_DELETE };

/* Which generic routes to register (0 = all five). */
enum rroutes { RR_LIST = 1 << 0, RR_GET = 1 << 1, RR_CREATE = 1 << 2, RR_UPDATE = 1 << 3, RR_DELETE = 1 << 4 };

struct resource {
    const char *name;     /* plural, e.g. "resumes": the type name in /search and events */
    const char *singular; /* "resume": messages and OpenAPI */
    const char *path;     /* "/api/v1/resumes" */
    const char *table;
    const char *tag;      /* OpenAPI tag */
    const struct rfield *fields; /* {0}-terminated */
    const char *owner;    /* owner column (users.id), NULL = none */
    enum rpolicy read, create, update, del;
    const char *public_where; /* filter expression: what non-owner, non-staff callers see (RP_PUBLIC/RP_AUTH) */
    bool soft_delete;
    bool create_guests;   /* RP_AUTH create: guests too (default: guests are 403) */
    unsigned routes;      /* enum rroutes; 0 = all */
    const char *title_field; /* text field shown as the title of /search hits (NULL: not searchable there) */
    const char *default_sort; /* sort= spec used when a list has none, e.g. "priority_rank:desc,created_at:asc"
                               * (RF_SORT fields; NULL: newest first) */
    /* Optional: a row count the module keeps up to date (by triggers) per value of
     * one field, in kept_count_table(<kept_count_field> PRIMARY KEY, n) — e.g.
     * products per category. A list whose only condition is that field's equality
     * (or none at all) takes its total from there instead of count(*) over the
     * matching rows; any other filter, search or visibility rule counts the rows.
     * The table must count exactly the rows such a list shows (for soft_delete:
     * deleted_at IS NULL). */
    const char *kept_count_table;
    const char *kept_count_field;
    /* Public read cache (cache.c; with REDIS_URL and TEMEL_PUBLIC_CACHE_TTL_S > 0): anonymous GET
     * <path> and <path>/{id} answers are kept in Redis, shared by the instances, and dropped by
     * every write of the engine to this resource after it commits. A module whose own SQL changes
     * the rows calls resource_cache_bump() after its commit. */
    bool public_cache;
    /* A write to this resource changes what another one answers (a review moves its product's
     * rating): that one's public cache is bumped too. */
    const struct resource *invalidates;
    /* Optional hooks. check runs before a create/update is written (body is
     * the validated input; for updates, id is the row): return 0 or http_fail.
     * after_write runs inside the write transaction, after the row changed. */
    int (*check)(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id);
    int (*after_write)(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id);
};

/* Register the generic routes of res (call from a module's register_routes).
 * The descriptor must live for the process; inconsistencies are a BUG() at
 * start (unknown owner policy without owner, bad public_where, ...). The
 * first call also registers GET /api/v1/search over every registered
 * resource with a title_field and searchable fields. */
void resource_register(const struct resource *res);

/* ---- building blocks for modules with custom routes ---- */

/* Who is asking: what visibility, write policies and the output language
 * depend on. A request's caller is resource_caller(r); work outside any
 * request (exports, jobs) builds its own, e.g. {user_id, STRLIT("user"), LANG_EN}. */
struct caller {
    str_t user_id; /* empty: anonymous */
    str_t role;    /* "user", "guest", "moderator", "admin" */
    enum lang lang;
};
struct caller resource_caller(struct req *r);
/* The caller's role bits (ROLE_*; 0 when anonymous). */
unsigned resource_role_bits(const struct caller *who);

/* Serve a list of res for r (the route needs ROUTE_PAGINATED), with an
 * extra SQL condition on the table alias `t` (may be NULL) and its args. */
int resource_list(struct req *r, const struct resource *res, const char *extra_where, const db_arg *args,
                  size_t nargs);
/* Create a row of res from r->body, as POST <path> does (policy, field
 * rules, 201 + Location + ETag). For custom routes that fill some fields
 * themselves (a parent id from the path) before calling: r->body must hold
 * only fields of res's create schema, already validated. */
int resource_create(struct req *r, const struct resource *res);
/* Write the row id of res as a JSON object to w if who may see it.
 * *found = false when missing or invisible. db may be a transaction's. */
int resource_write(const struct caller *who, struct db *db, const struct resource *res, str_t id, struct jw *w,
                   bool *found) WARN_UNUSED;
/* May who see the row id of res? 0 and *visible; < 0 a db_rc. */
int resource_visible(const struct caller *who, struct db *db, const struct resource *res, str_t id, bool *visible)
    WARN_UNUSED;
/* The row id of res must be visible to r's caller: 0, or 404 "no such
 * <singular>" (or the database error) recorded. */
int resource_require(struct req *r, const struct resource *res, str_t id);
/* resource_require and the read of the row in one statement, for routes
 * that need their own columns of it: "SELECT <cols> FROM <table> t WHERE
 * t.id = ? AND <r's caller's visibility>" (cols may name t and hold
 * subqueries; no other placeholders). 0 with *row on that row (the caller
 * frees it), or the 404 / database error recorded and *row NULL. */
int resource_require_row(struct req *r, const struct resource *res, str_t id, const char *cols, struct db_res **row);
/* The GDPR export (GET /me/export) of one resource: every row of res owned
 * by user_id, as that user sees it, written to w as a JSON array. 0 or a db_rc. */
int resource_export_rows(struct db *db, str_t user_id, const struct resource *res, struct jw *w) WARN_UNUSED;
/* Respond with the row id (status 200/201), its ETag header set; 404 when
 * the caller may not see it. */
int resource_respond(struct req *r, const struct resource *res, str_t id, int status);
/* The row writer for hand-written queries over res's table: for each of
 * names (fields of res, or id/created_at/updated_at; NULL-terminated) write
 * "name": value into w's open object from the row's next column, starting
 * at column first, typed as the descriptor says (select RF_TIME columns as
 * ts_ms(...); SQL NULL is null). Returns the column after the last. A name
 * res does not have is a BUG(). */
int resource_write_fields(struct jw *w, const struct resource *res, const char *const *names, const struct db_res *row,
                          int first, enum lang lang);
/* A write that returns its row in the same statement: put
 * resource_returning_cols(res) in its RETURNING clause, then answer with
 * the row at res's position (ETag set, status). One round trip instead of
 * a write and a read. (Registered resources only.) */
const char *resource_returning_cols(const struct resource *res);
void resource_respond_returned(struct req *r, const struct resource *res, struct db_res *row, int status);
/* Write a stored RF_I18N value ({"tr","en","pl"} JSON text) as the string
 * of r's Accept-Language (then en, then any; null when there is none). */
void resource_write_i18n(struct req *r, struct jw *w, str_t stored);
/* The same as a plain string (request pool memory; "" when none). */
str_t resource_i18n_text(struct req *r, str_t stored);
/* true when the request has no If-Match, or it matches the row version. */
bool resource_if_match(struct req *r, const struct resource *res, int64_t version);

/* ---- the public read cache (cache.c) ---- */
/* The entries' lifetime; 0 (the default) = no public cache. */
void resource_cache_configure(int64_t ttl_ms);
/* After a commit that changed rows of res (or of what res invalidates) by
 * other means than the engine's writes: every instance's cached answers of
 * it are dropped. Waits for Redis' reply in a coroutine (or on a job
 * thread), so call it before answering; a no-op without Redis. */
void resource_cache_bump(const struct resource *res);

/* ---- change events (realtime, webhooks, audit subscribe here) ----
 * before/after are the row as output (NULL for create/delete respectively).
 * RES_HOOK_TX callbacks run inside the write transaction (audit: return a
 * db_rc to roll back); RES_HOOK_COMMIT callbacks run after the commit. */
enum res_hook_when { RES_HOOK_TX, RES_HOOK_COMMIT };
typedef int (*resource_change_fn)(struct req *r, struct db *db, const struct resource *res, enum raction act,
                                  str_t id, const json_t *before, const json_t *after, void *ud);
void resource_on_change(enum res_hook_when when, resource_change_fn fn, void *ud);

/* ---- filters, sort and search compiled to SQL (filter.c; no HTTP) ---- */

/* The one bounded adder for SQL argument arrays in src/resource: appends v
 * as a[*n] when *n < cap; when full it writes nothing and returns -1.
 * ARGS_ADD takes a real array (not a pointer) and derives cap from it. */
static inline WARN_UNUSED int args_add(db_arg *a, int *n, int cap, db_arg v)
{
    if (*n < 0 || *n >= cap)
        return -1;
    a[(*n)++] = v;
    return 0;
}
#define ARGS_ADD(arr, n, v) args_add((arr), &(n), (int)ARRAY_LEN(arr), (v))

#define RQ_MAX_ARGS 96
struct rq {
    /* in */
    const struct resource *res;
    enum db_kind kind;
    str_t me;       /* the caller's user id (empty: anonymous; @me is then NULL) */
    int64_t now_ms; /* @now */
    void *(*alloc)(void *ud, size_t n); /* memory for decoded literals; NULL: the rq's own, freed by rq_release */
    void *ud;
    void *heap;
    bool all_fields; /* trusted expressions (public_where): any field, not only RF_FILTER ones */
    /* out: " AND (...)" fragments over alias t, and their arguments */
    struct buf sql;
    db_arg args[RQ_MAX_ARGS];
    int nargs;
    /* error: 400 (syntax) or 422 (unknown field, wrong type); err_field
     * names the offending field or parameter, err_msg says what is wrong */
    int err_status;
    const char *err_field;
    struct buf err_msg;
};
void rq_init(struct rq *q, const struct resource *res, enum db_kind kind, str_t me, int64_t now_ms,
             void *(*alloc)(void *, size_t), void *ud);
void rq_release(struct rq *q);
/* Append a to q's arguments (args_add). Past RQ_MAX_ARGS nothing is written:
 * q records a 422 naming param (the query parameter that asked for it) and
 * -1 is returned. */
int rq_arg(struct rq *q, str_t param, db_arg a) WARN_UNUSED;
/* A filter= expression (PocketBase subset: = != > >= < <= ~ !~ && || ( ),
 * 'str' "str" numbers true false null @now @me). 0 or -1 (error in q). */
int rq_filter_expr(struct rq *q, str_t expr) WARN_UNUSED;
/* One bracket filter parameter: key "field" or "field[op]" (op: ne gt gte lt
 * lte in like), value as given. 0 or -1. */
int rq_filter_bracket(struct rq *q, str_t key, str_t value) WARN_UNUSED;
/* sort=field:asc,other:desc → " ORDER BY ..." into out (always ending with a
 * unique id tiebreaker). An empty spec gives the resource's default_sort, or
 * newest first. */
int rq_sort(struct rq *q, str_t spec, struct buf *out) WARN_UNUSED;
/* The field of res called name (the implicit id/created_at/updated_at
 * included), or NULL. */
const struct rfield *resource_field(const struct resource *res, str_t name);

#endif
