/*
 * request.c — the request path (ARCHITECTURE §5) as a table of stages, run
 * in the request's own coroutine (core/coro.h):
 *
 *   header limits → Host → route match → CORS preflight → authenticate →
 *   rate limit (headers on every /api response) → 404/405/400 → query →
 *   body limits and strict JSON → pagination → CPU admission → handler
 *   (idempotency, deferred polling) — then, on the loop's own stack, the
 *   response or problem+json, access log and metrics.
 *
 * Each stage is `int stage(struct box *)`: 0 goes on, HTTP_EFAIL stops with
 * the recorded error, STAGE_DONE stops with the response already set.
 *
 * Lifetimes: h2o frees its request (h->pool, headers, body) when the client
 * goes away — possibly while our coroutine waits for the database. So the
 * request gets its own heap box and arena (r->pool); method, path, headers,
 * body and peer address are copied in before the coroutine starts, and a
 * shared entry on h->pool only marks the box's `h` gone (STYLE §2). The
 * coroutine always runs to its end (a transaction is never abandoned half
 * way); a gone request is logged as 499 and nothing is sent.
 */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>

#include "core/coro.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "core/workpool.h"
#include "db/db.h"
#include "http/idempotency.h"
#include "http/metrics.h"
#include "http/problem.h"
#include "http/ratelimit.h"
#include "http/server_internal.h"

#include "core/banned.h"

#define MAX_HEADERS 64
#define MAX_HEADER_BYTES (16u << 10)
#define DEFER_POLL_MS 100
#define STAGE_DONE 2

struct req_out_hdr {
    struct req_out_hdr *next;
    str_t name, value;
};

#define BOX_KEEP 256 /* finished boxes kept per loop: no malloc per request */

struct box {
    struct req r;
    struct box *next_free;
    h2o_mem_pool_t pool;
    h2o_req_t *h;      /* NULL once the client has gone */
    struct box **slot; /* on h->pool; cleared before the box is freed */
    struct thread_ctx *t;
    int rc;
    int match_rc, auth_rc;
    bool no_host, cpu_admitted;
    http_poll_fn poll;
    void *poll_arg;
    int64_t poll_deadline_ms;
    http_takeover_fn takeover; /* http_takeover: the connection's new owner */
    void *takeover_arg;
    http_task_fn task; /* http_task: a request without h2o's */
    http_task_done_fn task_done;
    void *task_arg;
};

static struct box *box_of(struct req *r) { return (struct box *)r; }

/* ---- helpers for handlers ---- */

static void on_req_buf_dispose(void *p) { buf_free(p); }

struct buf *req_buf(struct req *r, size_t max)
{
    struct buf *b = h2o_mem_alloc_shared(r->pool, sizeof(*b), on_req_buf_dispose);
    buf_init(b, max);
    return b;
}

str_t req_param(const struct req *r, const char *name)
{
    for (int i = 0; i < r->m.nparams; i++)
        if (!strcmp(r->m.names[i], name))
            return r->m.params[i];
    return str_make("", 0);
}

const str_t *req_query(const struct req *r, const char *key) { return query_get(&r->q, key); }

/* h2o's own copy (NUL-terminated), as a str_t */
static str_t pool_dup(h2o_mem_pool_t *pool, const char *p, size_t n)
{
    h2o_iovec_t v = h2o_strdup(pool, p, n);
    return str_make(v.base, v.len);
}

void req_header(struct req *r, const char *name, str_t value)
{
    struct req_out_hdr *o = h2o_mem_alloc_pool(r->pool, sizeof(*o)), **tail = &r->out_hdrs;
    o->next = NULL;
    o->name = pool_dup(r->pool, name, strlen(name));
    o->value = pool_dup(r->pool, value.p ? value.p : "", value.len);
    while (*tail)
        tail = &(*tail)->next;
    *tail = o;
}

str_t req_header_get(const struct req *r, const char *name_lower)
{
    size_t nl = strlen(name_lower);
    for (size_t i = 0; i < r->nhdrs; i++)
        if (memeq(r->hdrs[i].name.p, r->hdrs[i].name.len, name_lower, nl))
            return r->hdrs[i].value;
    return STR_NULL;
}

/* Does an If-Match / If-None-Match header value match etag? ("*", lists, W/ ignored) */
bool http_etag_matches(str_t header, str_t etag)
{
    const char *p = header.p, *end = header.p + header.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        str_t tag = str_make(s, (size_t)(p - s));
        while (tag.len && tag.p[tag.len - 1] == ' ')
            tag.len--;
        if (str_is(tag, "*"))
            return true;
        if (tag.len > 2 && tag.p[0] == 'W' && tag.p[1] == '/')
            tag = str_make(tag.p + 2, tag.len - 2);
        if (str_eq(tag, etag))
            return true;
    }
    return false;
}

/* Client address: the peer, or with TEMEL_TRUST_PROXY the last address in
 * X-Forwarded-For (the one our own proxy appended). */
str_t req_client_ip(struct req *r)
{
    if (r->cfg->trust_proxy) {
        str_t xff = req_header_get(r, "x-forwarded-for");
        if (xff.p && xff.len) {
            size_t e = xff.len, s;
            while (e && (xff.p[e - 1] == ' ' || xff.p[e - 1] == ','))
                e--;
            s = e;
            while (s && xff.p[s - 1] != ',')
                s--;
            while (s < e && xff.p[s] == ' ')
                s++;
            if (e > s && e - s <= 64)
                return str_make(xff.p + s, e - s);
        }
    }
    if (!r->peer_len)
        return STRLIT("unknown");
    char *host = h2o_mem_alloc_pool(r->pool, NI_MAXHOST);
    size_t n = h2o_socket_getnumerichost((struct sockaddr *)&r->peer, r->peer_len, host);
    if (n == SIZE_MAX)
        return STRLIT("unknown");
    return str_make(host, n);
}

int http_rate_limit(struct req *r, const char *name, str_t key, const struct rl_rule *rule)
{
    struct rl_result res;
    struct buf *k = req_buf(r, 512);
    (void)buf_puts(k, name);
    (void)buf_putc(k, ':');
    (void)buf_put(k, key);
    /* the AI class space, keyed by name: separate from the route limits */
    if (g_srv_rl->take(g_srv_rl, RL_AI, buf_str(k), rule, time_now_ms(), &res) != 0 || res.allowed)
        return 0;
    metrics_rl_refusal(r->thr->metrics, RL_AI);
    r->err.retry_after_s = res.retry_after_s;
    return http_fail(r, 429, "RATE_LIMIT_EXCEEDED", "%s: limit of %lld requests per %lld s exceeded", name,
                     (long long)rule->limit, (long long)rule->period_s);
}

void http_write_page_meta(struct req *r, int64_t total)
{
    jw_key(&r->w, "meta");
    jw_obj_begin(&r->w);
    jw_key(&r->w, "total");
    jw_int(&r->w, total);
    jw_key(&r->w, "page");
    jw_int(&r->w, r->page);
    jw_key(&r->w, "limit");
    jw_int(&r->w, r->limit);
    jw_key(&r->w, "pages");
    jw_int(&r->w, (total + r->limit - 1) / r->limit);
    jw_obj_end(&r->w);
}

int http_defer(struct req *r, http_poll_fn poll, void *arg, int64_t deadline_mono_ms)
{
    struct box *b = box_of(r);
    b->poll = poll;
    b->poll_arg = arg;
    b->poll_deadline_ms = deadline_mono_ms;
    return HTTP_DEFER;
}

void http_takeover(struct req *r, http_takeover_fn fn, void *arg)
{
    struct box *b = box_of(r);
    b->takeover = fn;
    b->takeover_arg = arg;
}

static void *pool_alloc(void *ud, size_t n) { return h2o_mem_alloc_pool((h2o_mem_pool_t *)ud, n); }

/* ---- the stages ---- */

static bool request_id_ok(str_t s)
{
    if (s.len == 0 || s.len > 64)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return false;
    }
    return true;
}

static const char *origin_allowed(const struct config *cfg, str_t origin)
{
    if (!origin.p)
        return NULL;
    for (int i = 0; i < cfg->n_cors; i++)
        if (str_eq(origin, str_c(cfg->cors_origins[i])))
            return cfg->cors_origins[i];
    return NULL;
}

static bool content_type_is_json(str_t ct)
{
    size_t n = ct.len;
    for (size_t i = 0; i < ct.len; i++)
        if (ct.p[i] == ';') {
            n = i;
            break;
        }
    while (n && ct.p[n - 1] == ' ')
        n--;
    return str_ieq(str_make(ct.p, n), STRLIT("application/json"));
}

static void on_json_dispose(void *p)
{
    json_t **slot = p;
    if (*slot)
        json_decref(*slot);
}

static int stage_headers(struct box *b)
{
    struct req *r = &b->r;
    size_t hbytes = 0;
    for (size_t i = 0; i < r->nhdrs; i++)
        hbytes += r->hdrs[i].name.len + r->hdrs[i].value.len + 4;
    if (r->nhdrs > MAX_HEADERS || hbytes > MAX_HEADER_BYTES)
        return http_fail(r, 431, "BAD_REQUEST", "request headers are too large (max %d headers, %u bytes)",
                         MAX_HEADERS, MAX_HEADER_BYTES);
    /* RFC 9112 §3.2: an HTTP/1.1 request without Host is 400. */
    if (b->no_host)
        return http_fail(r, 400, "BAD_REQUEST", "HTTP/1.1 requests need a Host header");
    return 0;
}

static int stage_route(struct box *b)
{
    struct req *r = &b->r;
    b->match_rc = router_match(r->method, r->path, r->pool, &r->m);
    r->route = r->m.route;
    return 0;
}

static int stage_preflight(struct box *b)
{
    struct req *r = &b->r;
    if (!str_is(r->method, "OPTIONS"))
        return 0;
    str_t acrm = req_header_get(r, "access-control-request-method");
    if (b->match_rc == MATCH_NOT_FOUND || b->match_rc == MATCH_BAD_PATH)
        return http_fail(r, 404, "NOT_FOUND", "no such resource");
    if (acrm.p && !r->cors_origin)
        return http_fail(r, 403, "FORBIDDEN", "origin not allowed");
    struct buf allow = BUF_INIT(128);
    router_allow_header(r->m.allow_mask, &allow);
    str_t a = buf_move_to_pool(&allow, r->pool);
    r->status = 204;
    if (acrm.p) {
        req_header(r, "access-control-allow-methods", a);
        req_header(r, "access-control-allow-headers",
                   STRLIT("Authorization, Content-Type, Idempotency-Key, If-Match, X-Request-Id, Accept-Language"));
        req_header(r, "access-control-max-age", STRLIT("600"));
    } else {
        req_header(r, "allow", a);
    }
    return STAGE_DONE;
}

/* Authenticate now (it sets the rate-limit key); a failure answers after
 * the rate limit, so unauthenticated floods are throttled too. */
static int stage_auth(struct box *b)
{
    struct req *r = &b->r;
    if (r->route && r->route->auth != AUTH_NONE) {
        if (g_srv_auth)
            b->auth_rc = g_srv_auth(r, r->route->auth);
        else if (r->route->auth != AUTH_OPTIONAL)
            b->auth_rc = http_fail(r, 401, "UNAUTHORIZED", "authentication required");
    }
    return 0;
}

static int stage_rate_limit(struct box *b)
{
    struct req *r = &b->r;
    struct rl_result rl = {0};
    if (!r->is_api)
        return 0;
    enum rl_class cls = r->route ? r->route->rl : RL_READ;
    if (cls == RL_NONE)
        return 0;
    str_t key = r->user_id.len ? r->user_id : req_client_ip(r);
    if (g_srv_rl->take(g_srv_rl, cls, key, &r->cfg->rate[cls], time_now_ms(), &rl) != 0)
        return 0;
    r->rl_checked = true;
    r->rl_limit = rl.limit;
    r->rl_remaining = rl.remaining;
    r->rl_reset_s = rl.reset_s;
    if (rl.allowed)
        return 0;
    metrics_rl_refusal(b->t->metrics, cls);
    r->err.retry_after_s = rl.retry_after_s;
    r->err.nerrs = 0;
    return http_fail(r, 429, "RATE_LIMIT_EXCEEDED", "rate limit of %lld requests per %lld s exceeded",
                     (long long)r->cfg->rate[cls].limit, (long long)r->cfg->rate[cls].period_s);
}

static int stage_match_errors(struct box *b)
{
    struct req *r = &b->r;
    if (b->match_rc == MATCH_NOT_FOUND)
        return http_fail(r, 404, "NOT_FOUND", "no such resource");
    if (b->match_rc == MATCH_BAD_PATH)
        return http_fail(r, 400, "BAD_REQUEST", "the path has invalid percent-encoding");
    if (b->match_rc == MATCH_BAD_METHOD) {
        struct buf allow = BUF_INIT(128);
        router_allow_header(r->m.allow_mask, &allow);
        req_header(r, "allow", buf_move_to_pool(&allow, r->pool));
        return http_fail(r, 405, "METHOD_NOT_ALLOWED", "%.*s is not allowed here", STR_FMT(r->method));
    }
    return b->auth_rc;
}

static int stage_query(struct box *b)
{
    struct req *r = &b->r;
    if (r->raw_path.len == r->path.len)
        return 0;
    str_t qs = str_make(r->raw_path.p + r->path.len + 1, r->raw_path.len - r->path.len - 1);
    int qrc = query_parse(qs, &r->q, pool_alloc, r->pool);
    if (qrc != QUERY_OK)
        return http_fail(r, 400, "BAD_REQUEST",
                         qrc == QUERY_ETOOMANY ? "too many query parameters (max 64)"
                                               : "the query string is malformed (bad percent-encoding, NUL, invalid "
                                                 "UTF-8 or an empty name)");
    return 0;
}

static int stage_body(struct box *b)
{
    struct req *r = &b->r;
    const struct route *rt = r->route;
    size_t limit = rt->body_max ? rt->body_max : HTTP_BODY_DEFAULT;
    str_t e = r->entity;
    if (e.len > limit)
        return http_fail(r, 413, "PAYLOAD_TOO_LARGE", "the request body is larger than %zu bytes", limit);
    if (rt->flags & ROUTE_RAW_BODY)
        return 0;
    if (!rt->input) {
        if (e.len)
            return http_fail(r, 400, "BAD_REQUEST", "this endpoint does not take a request body");
        return 0;
    }
    if (e.len == 0 && (rt->flags & ROUTE_BODY_OPTIONAL))
        return 0;
    str_t ct = req_header_get(r, "content-type");
    if (!ct.p || !content_type_is_json(ct))
        return http_fail(r, 415, "UNSUPPORTED_MEDIA_TYPE", "the request body must be application/json");
    struct buf detail = BUF_INIT(256);
    json_t *body;
    int rc = json_parse_strict(e, &body, &detail);
    if (rc != JSON_IN_OK) {
        http_fail(r, 400, "BAD_REQUEST", "%s", buf_cstr(&detail));
        buf_free(&detail);
        return HTTP_EFAIL;
    }
    buf_free(&detail);
    /* the parsed body lives as long as the request */
    json_t **slot = h2o_mem_alloc_shared(r->pool, sizeof(*slot), on_json_dispose);
    *slot = body;
    r->body = body;
    int n = json_validate(body, rt->input, r->err.errs, JSON_VERR_MAX);
    if (n > 0) {
        r->err.nerrs = n;
        return http_fail(r, 422, "VALIDATION_ERROR", "%s %s", r->err.errs[0].field[0] ? r->err.errs[0].field : "body",
                         r->err.errs[0].message);
    }
    return 0;
}

static int stage_pagination(struct box *b)
{
    struct req *r = &b->r;
    if (!(r->route->flags & ROUTE_PAGINATED))
        return 0;
    const str_t *p = req_query(r, "page"), *l = req_query(r, "limit");
    r->page = 1;
    r->limit = 20;
    if (p && parse_i64(*p, 1, 1000000, &r->page))
        return http_invalid(r, "page", "must be an integer >= 1");
    if (l && parse_i64(*l, 1, 100, &r->limit))
        return http_invalid(r, "limit", "must be an integer between 1 and 100");
    return 0;
}

/* Routes of the auth class hash passwords (argon2id, tens of ms of CPU on
 * the worker pool): admit them only while the pool's queue has room, so an
 * overload answers 503 at once instead of queueing without bound. */
static int stage_cpu_admission(struct box *b)
{
    struct req *r = &b->r;
    if (r->route->rl != RL_AUTH)
        return 0;
    if (!work_admit()) {
        r->err.retry_after_s = 1;
        return http_fail(r, 503, "SERVICE_UNAVAILABLE", "the server is busy hashing passwords; retry shortly");
    }
    b->cpu_admitted = true;
    return 0;
}

static int stage_handler(struct box *b)
{
    struct req *r = &b->r;
    db_set_deadline(r->db, r->deadline_ms);
    str_t idem_key = (r->route->flags & ROUTE_IDEMPOTENT) ? req_header_get(r, "idempotency-key") : STR_NULL;
    if (r->route->status == 204 && !r->route->output)
        r->status = 204; /* the route's only success answer (struct route.status): handlers need not say it */
    int rc = idem_key.p ? idempotency_run(r, idem_key) : r->route->handler(r);
    /* A deferred answer: poll every 100 ms until it answers, the deadline,
     * shutdown, or the client leaving (then nobody is waiting for it). */
    while (rc == HTTP_DEFER) {
        (void)coro_wait_until(time_mono_ms() + DEFER_POLL_MS);
        if (!b->h) {
            rc = http_fail(r, 499, "CLIENT_CLOSED", "the client went away");
            break;
        }
        int64_t now = time_mono_ms();
        bool timed_out = now >= b->poll_deadline_ms || b->t->shutting_down;
        db_set_deadline(r->db, now + r->cfg->request_timeout_ms);
        rc = b->poll(r, b->poll_arg, timed_out);
        if (rc == HTTP_DEFER && timed_out) /* poll must answer once timed out */
            rc = http_fail(r, 500, "INTERNAL_ERROR", "a deferred request did not answer");
    }
    db_set_deadline(r->db, 0);
    return rc ? rc : STAGE_DONE;
}

typedef int (*stage_fn)(struct box *b);
static const stage_fn stages[] = {
    stage_headers,      stage_route, stage_preflight, stage_auth,       stage_rate_limit,    stage_match_errors,
    stage_query,        stage_body,  stage_pagination, stage_cpu_admission, stage_handler,
};

static void run(void *arg)
{
    struct box *b = arg;
    int rc = 0;
    for (size_t i = 0; i < ARRAY_LEN(stages) && rc == 0; i++) {
        if (i > 0 && !b->h) { /* gone while we waited: nothing more to do */
            rc = http_fail(&b->r, 499, "CLIENT_CLOSED", "the client went away");
            break;
        }
        rc = stages[i](b);
    }
    b->rc = rc == STAGE_DONE ? 0 : rc;
}

/* ---- the response (on the loop's stack) ---- */

static void add_hdr(h2o_req_t *h, const char *name, size_t nl, const char *v, size_t vl, bool copy)
{
    if (copy) {
        h2o_iovec_t n = h2o_strdup(&h->pool, name, nl), val = h2o_strdup(&h->pool, v, vl);
        h2o_add_header_by_str(&h->pool, &h->res.headers, n.base, n.len, 0, NULL, val.base, val.len);
    } else {
        h2o_add_header_by_str(&h->pool, &h->res.headers, name, nl, 1, NULL, v, vl);
    }
}
#define ADD_HDR(h, n, v) add_hdr((h), n, sizeof(n) - 1, v, sizeof(v) - 1, false)

static void add_hdr_int(h2o_req_t *h, const char *name, size_t nl, int64_t v)
{
    struct buf tmp = BUF_INIT(23);
    (void)buf_put_i64(&tmp, v);
    add_hdr(h, name, nl, tmp.ptr, tmp.len, true);
    buf_free(&tmp);
}
#define ADD_HDR_INT(h, n, v) add_hdr_int((h), n, sizeof(n) - 1, (v))

static void respond(struct box *b)
{
    static h2o_generator_t generator = {NULL, NULL};
    struct req *r = &b->r;
    struct thread_ctx *t = b->t;
    h2o_req_t *h = b->h;
    int status;

    if (b->rc) {
        status = r->err.status ? r->err.status : 500;
        if (status >= 500 && status != 503) {
            struct log_line l;
            if (log_begin(&l, LOG_ERROR, "handler failed")) {
                log_str(&l, "request_id", str_make(r->request_id, r->request_id_len));
                log_str(&l, "detail", buf_str(&r->err.detail));
                log_end(&l);
            }
        }
        buf_reset(&r->out);
        problem_write(&r->out, status, r->err.code ? r->err.code : problem_code(status),
                      problem_title(status, lang_from_header(req_header_get(r, "accept-language"))),
                      buf_str(&r->err.detail), r->err.errs, r->err.nerrs,
                      str_make(r->request_id, r->request_id_len));
        r->content_type = "application/problem+json";
    } else {
        status = r->status;
    }
    if (!buf_ok(&r->out)) {
        buf_reset(&r->out);
        r->out.err = 0;
        status = 500;
        problem_write(&r->out, 500, "INTERNAL_ERROR", problem_title(500, LANG_EN),
                      STRLIT("the response was too large"), NULL, 0, str_make(r->request_id, r->request_id_len));
        r->content_type = "application/problem+json";
    }
    int64_t dur_us = time_mono_us() - r->start_us;
    if (!h) /* the client left: count and log it, send nothing */
        status = 499;
    metrics_request(t->metrics, r->route ? r->route->id : -1, r->method, status, dur_us);
    metrics_set_db(t->metrics, db_pool_stats(t->dbp));
    if (!h) {
        log_access(str_make(r->request_id, r->request_id_len), r->method, r->route ? r->route->pattern : "unmatched",
                   status, dur_us, 0, r->user_id);
        if (b->takeover && !b->rc)
            b->takeover(NULL, b->takeover_arg);
        return;
    }
    bool file = !b->rc && status == 200 && r->send_file;
    str_t body = buf_move_to_pool(&r->out, &h->pool);
    h->res.status = status;
    h->res.reason = http_reason(status);
    if (file) {
        body.len = 0; /* h2o adds the file's type and length */
    } else if (status != 204 && status != 304 && status != 101) {
        h2o_iovec_t ct = h2o_strdup(&h->pool, r->content_type, strlen(r->content_type));
        h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct.base, ct.len);
    } else {
        body.len = 0;
    }
    add_hdr(h, "x-request-id", 12, r->request_id, r->request_id_len, true);
    ADD_HDR(h, "x-content-type-options", "nosniff");
    ADD_HDR(h, "x-frame-options", "DENY");
    ADD_HDR(h, "referrer-policy", "no-referrer");
    if (r->user_id.len || r->is_api)
        ADD_HDR(h, "cache-control", "no-store");
    if (r->rl_checked) {
        ADD_HDR_INT(h, "x-ratelimit-limit", r->rl_limit);
        ADD_HDR_INT(h, "x-ratelimit-remaining", r->rl_remaining);
        ADD_HDR_INT(h, "x-ratelimit-reset", r->rl_reset_s);
    }
    if (b->rc && r->err.retry_after_s > 0)
        ADD_HDR_INT(h, "retry-after", r->err.retry_after_s);
    for (struct req_out_hdr *o = r->out_hdrs; o; o = o->next)
        add_hdr(h, o->name.p, o->name.len, o->value.p, o->value.len, true);
    if (r->cors_origin) {
        /* configuration strings: they outlive every request */
        h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("access-control-allow-origin"), 1, NULL,
                              r->cors_origin, strlen(r->cors_origin));
        ADD_HDR(h, "access-control-allow-credentials", "true");
        ADD_HDR(h, "access-control-expose-headers",
                "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, ETag, "
                "Location, Idempotent-Replayed");
    }
    if (r->cfg->n_cors)
        ADD_HDR(h, "vary", "Origin");
    if (b->takeover && !b->rc) { /* the connection stays open: its new owner answers */
        log_access(str_make(r->request_id, r->request_id_len), r->method, r->route->pattern, status, dur_us, 0,
                   r->user_id);
        b->takeover(h, b->takeover_arg);
        return;
    }
    if (file) {
        log_access(str_make(r->request_id, r->request_id_len), r->method, r->route->pattern, status, dur_us, 0,
                   r->user_id);
        /* our arena is cleared after this: h2o keeps the type in its own pool */
        h2o_iovec_t mime = h2o_strdup(&h->pool, r->content_type, strlen(r->content_type));
        if (h2o_file_send(h, 200, "OK", r->send_file, mime, 0) == 0)
            return;
        /* gone since the handler looked: a plain 404 (headers so far stay) */
        h->res.status = 404;
        h->res.reason = http_reason(404);
        body = STRLIT("");
    }
    h->res.content_length = body.len;
    if (!file)
        log_access(str_make(r->request_id, r->request_id_len), r->method, r->route ? r->route->pattern : "unmatched",
                   status, dur_us, (int64_t)body.len, r->user_id);

    h2o_start_response(h, &generator);
    h2o_iovec_t iov = h2o_iovec_init(body.p, body.len);
    h2o_send(h, &iov, body.len ? 1 : 0, H2O_SEND_STATE_FINAL);
}

static void box_release(struct box *b);

static void on_done(void *arg)
{
    struct box *b = arg;
    struct thread_ctx *t = b->t;
    /* detach from h2o's request first: once the response is sent, h2o may
     * dispose its pool at any time */
    if (b->h)
        *b->slot = NULL;
    /* give back what the request held before the client can see the answer
     * (it may send its next request to another loop at once) */
    if (b->cpu_admitted)
        work_release();
    db_pool_put(t->dbp, b->r.db);
    b->r.db = NULL;
    respond(b);
    box_release(b);
}

/* Free what the request holds and keep its box for the next one. */
static void box_release(struct box *b)
{
    struct thread_ctx *t = b->t;
    buf_free(&b->r.out);
    buf_free(&b->r.err.detail);
    h2o_mem_clear_pool(&b->pool);
    if (t->nfree_boxes < BOX_KEEP) {
        b->next_free = t->free_boxes;
        t->free_boxes = b;
        t->nfree_boxes++;
    } else {
        free(b);
    }
    t->live_reqs--;
    t->last_req_ms = time_mono_ms();
}

static void on_h2o_gone(void *p)
{
    struct box **slot = p;
    if (*slot)
        (*slot)->h = NULL;
}

/* Copy what the handler may read out of h2o's request (see the top). */
static void copy_inputs(struct box *b, h2o_req_t *h)
{
    struct req *r = &b->r;
    h2o_mem_pool_t *p = r->pool;
    r->method = pool_dup(p, h->method.base, h->method.len);
    r->raw_path = pool_dup(p, h->path.base, h->path.len);
    r->path = str_make(r->raw_path.p, h->query_at == SIZE_MAX ? h->path.len : h->query_at);
    r->entity = h->entity.len ? pool_dup(p, h->entity.base, h->entity.len) : str_make("", 0);
    /* h2o keeps an HTTP/1.1 Upgrade header out of the list (h->upgrade): it is copied as "upgrade" */
    size_t n = h->headers.size + (h->upgrade.base ? 1 : 0);
    if (n) {
        struct req_hdr *hd = h2o_mem_alloc_pool(p, sizeof(*hd) * n);
        for (size_t i = 0; i < h->headers.size; i++) {
            hd[i].name = pool_dup(p, h->headers.entries[i].name->base, h->headers.entries[i].name->len);
            hd[i].value = pool_dup(p, h->headers.entries[i].value.base, h->headers.entries[i].value.len);
        }
        if (h->upgrade.base) {
            hd[n - 1].name = STRLIT("upgrade");
            hd[n - 1].value = pool_dup(p, h->upgrade.base, h->upgrade.len);
        }
        r->hdrs = hd;
        r->nhdrs = n;
    }
    r->peer_len = h->conn->callbacks->get_peername(h->conn, (struct sockaddr *)&r->peer);
    r->http_version = h->version;
    b->no_host = h->version == 0x101 && h->input.authority.base == h->hostconf->authority.hostport.base;
}

/* The client's X-Request-Id when it is well-formed, else a new UUIDv7, into
 * id (NUL-terminated); its length. */
static size_t pick_request_id(str_t in, char id[static 72])
{
    size_t n = UUID_STR_LEN;
    if (in.p && request_id_ok(in)) {
        memcpy(id, in.p, in.len);
        n = in.len;
    } else {
        uuid7_str(id);
    }
    id[n] = '\0';
    return n;
}

/* A box for a new request on this loop: from the loop's stack of finished
 * ones, or a new one; zeroed, with its pool and a database handle. */
static struct box *box_new(struct thread_ctx *t)
{
    struct box *b = t->free_boxes;
    if (b) {
        t->free_boxes = b->next_free;
        t->nfree_boxes--;
    } else {
        b = xmalloc(sizeof(*b));
    }
    struct req *r = &b->r;
    memset(b, 0, sizeof(*b));
    h2o_mem_init_pool(&b->pool);
    b->t = t;
    r->pool = &b->pool;
    r->cfg = g_srv_cfg;
    r->thr = t;
    r->db = db_pool_get(t->dbp);
    r->start_us = time_mono_us();
    r->deadline_ms = r->start_us / 1000 + g_srv_cfg->request_timeout_ms;
    r->status = 200;
    r->content_type = "application/json";
    buf_init(&r->out, BUF_MAX_JSON_RESPONSE);
    (void)buf_reserve(&r->out, 2048); /* one malloc for most responses, not a realloc chain from 64 bytes */
    buf_init(&r->err.detail, 1024);
    jw_init(&r->w, &r->out);
    return b;
}

int request_on_h2o(h2o_handler_t *self, h2o_req_t *h)
{
    struct thread_ctx *t = server_thread();
    struct box *b = box_new(t);
    struct req *r = &b->r;
    (void)self;

    server_conn_asked(h);
    b->h = h;
    b->slot = h2o_mem_alloc_shared(&h->pool, sizeof(*b->slot), on_h2o_gone);
    *b->slot = b;
    copy_inputs(b, h);
    r->request_id_len = pick_request_id(req_header_get(r, "x-request-id"), r->request_id);
    r->is_api = str_has_prefix(r->path, STRLIT("/api/"));
    r->cors_origin = origin_allowed(g_srv_cfg, req_header_get(r, "origin"));
    t->last_req_ms = r->start_us / 1000;
    t->live_reqs++;
    coro_spawn(run, b, on_done, b);
    return 0;
}

/* ---- tasks for long-lived connections (http_task) ---- */

static void run_task(void *arg)
{
    struct box *b = arg;
    struct req *r = &b->r;
    db_set_deadline(r->db, r->deadline_ms);
    b->rc = b->task(r, b->task_arg);
    db_set_deadline(r->db, 0);
}

static void on_task_done(void *arg)
{
    struct box *b = arg;
    struct thread_ctx *t = b->t;
    db_pool_put(t->dbp, b->r.db);
    b->r.db = NULL;
    b->task_done(&b->r, b->rc, b->task_arg);
    box_release(b);
}

void http_task(str_t bearer, http_task_fn fn, http_task_done_fn done, void *arg)
{
    struct thread_ctx *t = server_thread();
    if (!t)
        BUG("http_task off a loop thread");
    struct box *b = box_new(t);
    struct req *r = &b->r;
    b->task = fn;
    b->task_done = done;
    b->task_arg = arg;
    r->method = STRLIT("GET");
    r->path = r->raw_path = STRLIT("/api/v1/realtime");
    r->entity = str_make("", 0);
    r->is_api = true;
    if (bearer.len) {
        struct req_hdr *hd = h2o_mem_alloc_pool(r->pool, sizeof(*hd));
        char *v = h2o_mem_alloc_pool(r->pool, bearer.len + 8);
        memcpy(v, "Bearer ", 7);
        memcpy(v + 7, bearer.p, bearer.len);
        v[bearer.len + 7] = '\0';
        hd->name = STRLIT("authorization");
        hd->value = str_make(v, bearer.len + 7);
        r->hdrs = hd;
        r->nhdrs = 1;
    }
    r->request_id_len = pick_request_id(STR_NULL, r->request_id);
    t->live_reqs++;
    coro_spawn(run_task, b, on_task_done, b);
}

h2o_context_t *http_loop_context(void)
{
    struct thread_ctx *t = server_thread();
    return t ? &t->ctx : NULL;
}

/* ---- errors h2o answers itself ----
 * h2o answers some requests before any handler runs: a body over its global
 * cap (HTTP_BODY_MAX) with 413, a broken chunked body or Content-Length, an
 * unknown Transfer-Encoding with 400, an unknown Expect with 417. It sends
 * them through the host's fallback path (no route matched yet), so a filter
 * there turns each into the same problem+json with request_id and headers
 * as every other error (API.md §1). What h2o does not answer at all (a
 * closed connection, an HTTP/2 stream reset) is listed in docs/http-errors.md. */
struct error_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
    bool sent;
};

static void error_ostream_send(h2o_ostream_t *self, h2o_req_t *h, h2o_iovec_t *bufs, size_t n, h2o_send_state_t st)
{
    struct error_ostream *e = (struct error_ostream *)self;
    (void)bufs;
    if (n && !e->sent) { /* h2o's text body, replaced by ours (none for HEAD) */
        e->sent = true;
        h2o_ostream_send_next(self, h, &e->body, 1, st);
    } else {
        h2o_ostream_send_next(self, h, NULL, 0, st);
    }
}

static void error_filter_setup(h2o_filter_t *self, h2o_req_t *h, h2o_ostream_t **slot)
{
    (void)self;
    int status = h->res.status;
    if (status >= 400) {
        char id[72];
        ssize_t i = h2o_find_header_by_str(&h->headers, H2O_STRLIT("x-request-id"), -1);
        size_t idlen = pick_request_id(
            i >= 0 ? str_make(h->headers.entries[i].value.base, h->headers.entries[i].value.len) : STR_NULL, id);
        i = h2o_find_header(&h->headers, H2O_TOKEN_ACCEPT_LANGUAGE, -1);
        enum lang lang = lang_from_header(i >= 0 ? str_make(h->headers.entries[i].value.base,
                                                            h->headers.entries[i].value.len)
                                                 : STR_NULL);
        struct buf detail = BUF_INIT(256), out = BUF_INIT(4096);
        if (status == 413)
            (void)buf_printf(&detail, "the request body is larger than %u bytes, the largest any route takes",
                             HTTP_BODY_MAX);
        else
            (void)buf_printf(&detail, "the request was refused before it was read: %s",
                             h->res.reason ? h->res.reason : http_reason(status));
        problem_write(&out, status, problem_code(status), problem_title(status, lang), buf_str(&detail), NULL, 0,
                      str_make(id, idlen));
        struct error_ostream *e = (struct error_ostream *)h2o_add_ostream(h, sizeof(*e), slot);
        e->super.do_send = error_ostream_send;
        e->body = h2o_strdup(&h->pool, out.ptr, out.len);
        e->sent = false;
        slot = &e->super.next;
        memset(&h->res.headers, 0, sizeof(h->res.headers));
        h->res.reason = http_reason(status);
        h->res.content_length = out.len;
        ADD_HDR(h, "content-type", "application/problem+json");
        add_hdr(h, "x-request-id", 12, id, idlen, true);
        ADD_HDR(h, "x-content-type-options", "nosniff");
        ADD_HDR(h, "x-frame-options", "DENY");
        ADD_HDR(h, "referrer-policy", "no-referrer");
        ADD_HDR(h, "cache-control", "no-store");
        log_access(str_make(id, idlen), str_make(h->method.base, h->method.len), "unread", status, 0,
                   (int64_t)out.len, STR_NULL);
        buf_free(&detail);
        buf_free(&out);
    }
    h2o_setup_next_ostream(h, slot);
}

void request_install_error_filter(h2o_pathconf_t *fallback)
{
    h2o_filter_t *f = h2o_create_filter(fallback, sizeof(*f));
    f->on_setup_ostream = error_filter_setup;
}
