/*
 * server.c — h2o glue and the request path (ARCHITECTURE §5):
 *
 *   request id → header limits → route match → CORS preflight → authenticate
 *   → rate limit (headers on every /api response) → 404/405 → body limits and
 *   strict JSON → query parsing → handler → response or problem+json
 *   → access log + metrics.
 *
 * Threads: N loop threads, each with an h2o_context, a SO_REUSEPORT
 * listener, a database connection and a metrics shard. The main thread only
 * waits for signals. Shutdown: each loop closes its listener, asks h2o to
 * stop keep-alive (GOAWAY on HTTP/2), and exits once its connections are
 * gone, or when it has been quiet for 500 ms after a 1 s grace, or at the
 * deadline — whichever comes first. Handlers are synchronous, so no request
 * is mid-handler when the loop sees the shutdown message.
 */
#include "http/server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/module.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "db/db.h"
#include "db/migrate.h"
#include "http/http.h"
#include "http/idempotency.h"
#include "http/metrics.h"
#include "http/problem.h"
#include "http/ratelimit.h"

#include "core/banned.h"

#define MAX_HEADERS 64
#define MAX_HEADER_BYTES (16u << 10)
#define SHUTDOWN_DEADLINE_MS 10000

struct thread_ctx {
    int idx;
    pthread_t tid;
    int listen_fd;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    h2o_socket_t *listener;
    struct db *db;
    struct metrics_shard *metrics;
    h2o_multithread_receiver_t shutdown_rx;
    h2o_timeout_entry_t tick;       /* 1 s: metrics snapshots */
    h2o_timeout_entry_t drain_tick; /* 100 ms while shutting down */
    h2o_timeout_entry_t log_flush;  /* end of loop iteration */
    struct buf logbuf;
    int64_t conns; /* open client connections (owner thread only) */
    int64_t deferred; /* requests waiting in http_defer() */
    bool shutting_down, exit;
    int64_t shutdown_at_ms, last_req_ms;
};

static const struct config *g_cfg;
static h2o_globalconf_t g_conf;
static SSL_CTX *g_ssl;
static struct rl_store *g_rl;
static int64_t g_started_ms;
static struct thread_ctx *g_threads;
static http_authenticator g_auth;
static _Thread_local struct thread_ctx *tls_thr;
static pthread_barrier_t g_ready; /* loop threads + main: receivers registered */
static sem_t g_done;              /* posted by each loop thread when drained */

const struct config *server_config(void) { return g_cfg; }
int64_t server_uptime_s(void) { return (time_now_ms() - g_started_ms) / 1000; }
void http_set_authenticator(http_authenticator fn) { g_auth = fn; }

/* ---- small helpers for handlers ---- */

int http_rate_limit(struct req *r, const char *name, str_t key, const struct rl_rule *rule)
{
    struct rl_result res;
    struct buf *k = req_buf(r, 512);
    (void)buf_puts(k, name);
    (void)buf_putc(k, ':');
    (void)buf_put(k, key);
    /* the AI class space, keyed by name: separate from the route limits */
    if (g_rl->take(g_rl, RL_AI, buf_str(k), rule, time_now_ms(), &res) != 0 || res.allowed)
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

void req_header(struct req *r, const char *name, str_t value)
{
    size_t nl = strlen(name);
    char *n = h2o_mem_alloc_pool(r->pool, nl + 1), *v = h2o_mem_alloc_pool(r->pool, value.len + 1);
    memcpy(n, name, nl + 1);
    memcpy(v, value.p, value.len);
    v[value.len] = '\0';
    h2o_add_header_by_str(r->pool, &r->h->res.headers, n, nl, 1, NULL, v, value.len);
}

str_t req_header_get(const struct req *r, const char *name_lower)
{
    ssize_t i = h2o_find_header_by_str(&r->h->headers, name_lower, strlen(name_lower), -1);
    if (i < 0)
        return STR_NULL;
    return str_make(r->h->headers.entries[i].value.base, r->h->headers.entries[i].value.len);
}

static void *pool_alloc(void *ud, size_t n) { return h2o_mem_alloc_pool((h2o_mem_pool_t *)ud, n); }

/* ---- pieces of the request path ---- */

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

static void set_request_id(struct req *r)
{
    str_t in = req_header_get(r, "x-request-id");
    if (in.p && request_id_ok(in)) {
        memcpy(r->request_id, in.p, in.len);
        r->request_id_len = in.len;
    } else {
        uuid7_str(r->request_id);
        r->request_id_len = UUID_STR_LEN;
    }
    r->request_id[r->request_id_len] = '\0';
}

/* Client address: the peer, or with TEMEL_TRUST_PROXY the last address in
 * X-Forwarded-For (the one our own proxy appended). */
str_t req_client_ip(struct req *r)
{
    if (g_cfg->trust_proxy) {
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
    struct sockaddr_storage ss;
    socklen_t sl = r->h->conn->callbacks->get_peername(r->h->conn, (struct sockaddr *)&ss);
    char *host = h2o_mem_alloc_pool(r->pool, NI_MAXHOST);
    size_t n = h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, host);
    if (n == SIZE_MAX)
        return STRLIT("unknown");
    return str_make(host, n);
}

static const char *origin_allowed(str_t origin)
{
    if (!origin.p)
        return NULL;
    for (int i = 0; i < g_cfg->n_cors; i++)
        if (str_eq(origin, str_c(g_cfg->cors_origins[i])))
            return g_cfg->cors_origins[i];
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

static int check_body(struct req *r)
{
    const struct route *rt = r->route;
    size_t limit = rt->body_max ? rt->body_max : HTTP_BODY_DEFAULT;
    h2o_iovec_t e = r->h->entity;
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
    int rc = json_parse_strict(str_make(e.base ? e.base : "", e.len), &body, &detail);
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

static int check_pagination(struct req *r)
{
    const str_t *p = req_query(r, "page"), *l = req_query(r, "limit");
    r->page = 1;
    r->limit = 20;
    if (p && parse_i64(*p, 1, 1000000, &r->page))
        return http_invalid(r, "page", "must be an integer >= 1");
    if (l && parse_i64(*l, 1, 100, &r->limit))
        return http_invalid(r, "limit", "must be an integer between 1 and 100");
    return 0;
}

static void add_header_lit(h2o_req_t *h, const char *name, size_t nl, const char *v, size_t vl)
{
    h2o_add_header_by_str(&h->pool, &h->res.headers, name, nl, 1, NULL, v, vl);
}
#define ADD_HDR(h, n, v) add_header_lit((h), n, sizeof(n) - 1, v, sizeof(v) - 1)

static void add_header_int(h2o_req_t *h, const char *name, size_t nl, int64_t v)
{
    char tmp[24];
    struct buf b = BUF_INIT(23);
    (void)buf_put_i64(&b, v);
    size_t n = b.len;
    memcpy(tmp, b.ptr, n);
    buf_free(&b);
    char *p = h2o_mem_alloc_pool(&h->pool, n);
    memcpy(p, tmp, n);
    h2o_add_header_by_str(&h->pool, &h->res.headers, name, nl, 1, NULL, p, n);
}
#define ADD_HDR_INT(h, n, v) add_header_int((h), n, sizeof(n) - 1, (v))

/* ---- the handler h2o calls ---- */

static void log_kick(void *arg);

static void finish(struct req *r, int rc);

/* ---- deferred responses (http_defer) ----
 * The waiting state lives on the heap, not in the request pool: the pool
 * dies when the client leaves, and a shared entry on it only marks the
 * deferral as gone; the next tick frees it (STYLE §2). */
struct deferred {
    struct req *r;
    struct thread_ctx *t;
    http_poll_fn poll;
    void *arg;
    int64_t deadline_ms;
    struct deferred **slot; /* in the request pool; cleared before we free */
    bool gone;
    h2o_timeout_entry_t tick;
};

static void on_deferred_req_gone(void *p)
{
    struct deferred **slot = p;
    if (*slot)
        (*slot)->gone = true;
}

static void on_deferred_tick(h2o_timeout_entry_t *e)
{
    struct deferred *d = H2O_STRUCT_FROM_MEMBER(struct deferred, tick, e);
    struct thread_ctx *t = d->t;
    if (d->gone) {
        t->deferred--;
        free(d);
        return;
    }
    struct req *r = d->r;
    int64_t now = time_mono_ms();
    bool timed_out = now >= d->deadline_ms || t->shutting_down;
    db_set_deadline(r->db, now + g_cfg->request_timeout_ms);
    int rc = d->poll(r, d->arg, timed_out);
    db_set_deadline(r->db, 0);
    if (rc == HTTP_DEFER && !timed_out) {
        h2o_timeout_link(t->ctx.loop, &t->ctx.hundred_ms_timeout, &d->tick);
        return;
    }
    if (rc == HTTP_DEFER) /* poll must answer once timed out */
        rc = http_fail(r, 500, "INTERNAL_ERROR", "a deferred request did not answer");
    *d->slot = NULL;
    t->deferred--;
    free(d);
    t->last_req_ms = now;
    finish(r, rc);
}

int http_defer(struct req *r, http_poll_fn poll, void *arg, int64_t deadline_mono_ms)
{
    struct deferred *d = xcalloc(1, sizeof(*d));
    d->r = r;
    d->t = r->thr;
    d->poll = poll;
    d->arg = arg;
    d->deadline_ms = deadline_mono_ms;
    d->tick.cb = on_deferred_tick;
    d->slot = h2o_mem_alloc_shared(r->pool, sizeof(*d->slot), on_deferred_req_gone);
    *d->slot = d;
    r->thr->deferred++;
    h2o_timeout_link(r->thr->ctx.loop, &r->thr->ctx.hundred_ms_timeout, &d->tick);
    return HTTP_DEFER;
}

/* Turn the handler's outcome into the response, then log and count it. */
static void finish(struct req *r, int rc)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *h = r->h;
    struct thread_ctx *t = r->thr;
    str_t method = str_make(h->method.base, h->method.len);
    const char *cors_origin = r->cors_origin;

    str_t body;
    int status;
    if (rc) {
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
        if (r->err.retry_after_s > 0)
            ADD_HDR_INT(h, "retry-after", r->err.retry_after_s);
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
    body = buf_move_to_pool(&r->out, r->pool);
    buf_free(&r->err.detail);

    h->res.status = status;
    h->res.reason = http_reason(status);
    if (status != 204 && status != 304) {
        h2o_add_header(r->pool, &h->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, r->content_type,
                       strlen(r->content_type));
    } else {
        body.len = 0;
    }
    h2o_add_header_by_str(r->pool, &h->res.headers, H2O_STRLIT("x-request-id"), 1, NULL, r->request_id,
                          r->request_id_len);
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
    if (cors_origin) {
        h2o_add_header_by_str(r->pool, &h->res.headers, H2O_STRLIT("access-control-allow-origin"), 1, NULL,
                              cors_origin, strlen(cors_origin));
        ADD_HDR(h, "access-control-allow-credentials", "true");
        ADD_HDR(h, "access-control-expose-headers",
                "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, ETag, "
                "Location, Idempotent-Replayed");
    }
    if (g_cfg->n_cors)
        ADD_HDR(h, "vary", "Origin");
    h->res.content_length = body.len;

    int64_t dur_us = time_mono_us() - r->start_us;
    metrics_request(t->metrics, r->route ? r->route->id : -1, method, status, dur_us);
    metrics_set_db(t->metrics, db_stats(t->db));
    log_access(str_make(r->request_id, r->request_id_len), method, r->route ? r->route->pattern : "unmatched",
               status, dur_us, (int64_t)body.len, r->user_id);

    h2o_start_response(h, &generator);
    h2o_iovec_t iov = h2o_iovec_init(body.p, body.len);
    h2o_send(h, &iov, body.len ? 1 : 0, H2O_SEND_STATE_FINAL);
}

static int on_req(h2o_handler_t *self, h2o_req_t *h)
{
    struct thread_ctx *t = tls_thr;
    struct req *r = h2o_mem_alloc_pool(&h->pool, sizeof(*r));
    struct rl_result rl = {0};
    bool is_api, rl_checked = false;
    const char *cors_origin;
    int rc = 0, mrc;
    str_t path, method;
    (void)self;

    memset(r, 0, sizeof(*r));
    r->h = h;
    r->pool = &h->pool;
    r->cfg = g_cfg;
    r->thr = t;
    r->db = t->db;
    r->start_us = time_mono_us();
    r->deadline_ms = r->start_us / 1000 + g_cfg->request_timeout_ms;
    r->status = 200;
    r->content_type = "application/json";
    buf_init(&r->out, BUF_MAX_JSON_RESPONSE);
    (void)buf_reserve(&r->out, 2048); /* one malloc for most responses, not a realloc chain from 64 bytes */
    buf_init(&r->err.detail, 1024);
    jw_init(&r->w, &r->out);
    set_request_id(r);
    t->last_req_ms = r->start_us / 1000;

    method = str_make(h->method.base, h->method.len);
    path = str_make(h->path.base, h->query_at == SIZE_MAX ? h->path.len : h->query_at);
    is_api = str_has_prefix(path, STRLIT("/api/"));
    cors_origin = origin_allowed(req_header_get(r, "origin"));

    /* header limits (h2o itself caps a request head at ~400 KiB / 100 headers) */
    size_t hbytes = 0;
    for (size_t i = 0; i < h->headers.size; i++)
        hbytes += h->headers.entries[i].name->len + h->headers.entries[i].value.len + 4;
    if (h->headers.size > MAX_HEADERS || hbytes > MAX_HEADER_BYTES) {
        rc = http_fail(r, 431, "BAD_REQUEST", "request headers are too large (max %d headers, %u bytes)",
                       MAX_HEADERS, MAX_HEADER_BYTES);
        goto respond;
    }

    /* RFC 9112 §3.2: an HTTP/1.1 request without Host is 400. h2o fills in
     * the default host's authority when Host is missing; detect that. */
    if (h->version == 0x101 && h->input.authority.base == h->hostconf->authority.hostport.base) {
        rc = http_fail(r, 400, "BAD_REQUEST", "HTTP/1.1 requests need a Host header");
        goto respond;
    }

    mrc = router_match(method, path, r->pool, &r->m);
    r->route = r->m.route;

    /* CORS preflight */
    if (str_is(method, "OPTIONS")) {
        str_t acrm = req_header_get(r, "access-control-request-method");
        if (mrc == MATCH_NOT_FOUND || mrc == MATCH_BAD_PATH) {
            rc = http_fail(r, 404, "NOT_FOUND", "no such resource");
            goto respond;
        }
        if (acrm.p && !cors_origin) {
            rc = http_fail(r, 403, "FORBIDDEN", "origin not allowed");
            goto respond;
        }
        struct buf allow = BUF_INIT(128);
        router_allow_header(r->m.allow_mask, &allow);
        str_t a = buf_move_to_pool(&allow, r->pool);
        r->status = 204;
        if (acrm.p) {
            h2o_add_header_by_str(r->pool, &h->res.headers, H2O_STRLIT("access-control-allow-methods"), 1, NULL, a.p,
                                  a.len);
            ADD_HDR(h, "access-control-allow-headers",
                    "Authorization, Content-Type, Idempotency-Key, If-Match, X-Request-Id, Accept-Language");
            ADD_HDR(h, "access-control-max-age", "600");
        } else {
            h2o_add_header_by_str(r->pool, &h->res.headers, H2O_STRLIT("allow"), 1, NULL, a.p, a.len);
        }
        goto respond;
    }

    /* authenticate (sets the rate-limit key); a failure answers after the rate limit */
    int auth_rc = 0;
    if (r->route && r->route->auth != AUTH_NONE) {
        if (g_auth)
            auth_rc = g_auth(r, r->route->auth);
        else if (r->route->auth != AUTH_OPTIONAL)
            auth_rc = http_fail(r, 401, "UNAUTHORIZED", "authentication required");
    }

    if (is_api) {
        enum rl_class cls = r->route ? r->route->rl : RL_READ;
        if (cls != RL_NONE) {
            str_t key = r->user_id.len ? r->user_id : req_client_ip(r);
            if (g_rl->take(g_rl, cls, key, &g_cfg->rate[cls], time_now_ms(), &rl) == 0) {
                rl_checked = true;
                if (!rl.allowed) {
                    metrics_rl_refusal(t->metrics, cls);
                    r->err.retry_after_s = rl.retry_after_s;
                    r->err.nerrs = 0;
                    rc = http_fail(r, 429, "RATE_LIMIT_EXCEEDED", "rate limit of %lld requests per %lld s exceeded",
                                   (long long)g_cfg->rate[cls].limit, (long long)g_cfg->rate[cls].period_s);
                    goto respond;
                }
            }
        }
    }
    if (mrc == MATCH_NOT_FOUND) {
        rc = http_fail(r, 404, "NOT_FOUND", "no such resource");
        goto respond;
    }
    if (mrc == MATCH_BAD_PATH) {
        rc = http_fail(r, 400, "BAD_REQUEST", "the path has invalid percent-encoding");
        goto respond;
    }
    if (mrc == MATCH_BAD_METHOD) {
        struct buf allow = BUF_INIT(128);
        router_allow_header(r->m.allow_mask, &allow);
        str_t a = buf_move_to_pool(&allow, r->pool);
        h2o_add_header_by_str(r->pool, &h->res.headers, H2O_STRLIT("allow"), 1, NULL, a.p, a.len);
        rc = http_fail(r, 405, "METHOD_NOT_ALLOWED", "%.*s is not allowed here", STR_FMT(method));
        goto respond;
    }
    if (auth_rc) {
        rc = auth_rc;
        goto respond;
    }
    if (h->query_at != SIZE_MAX) {
        str_t qs = str_make(h->path.base + h->query_at + 1, h->path.len - h->query_at - 1);
        int qrc = query_parse(qs, &r->q, pool_alloc, r->pool);
        if (qrc != QUERY_OK) {
            rc = http_fail(r, 400, "BAD_REQUEST",
                           qrc == QUERY_ETOOMANY ? "too many query parameters (max 64)"
                                                 : "the query string is malformed (bad percent-encoding, NUL, invalid UTF-8 or an empty name)");
            goto respond;
        }
    }
    if ((rc = check_body(r)))
        goto respond;
    if ((r->route->flags & ROUTE_PAGINATED) && (rc = check_pagination(r)))
        goto respond;

    db_set_deadline(r->db, r->deadline_ms);
    str_t idem_key = (r->route->flags & ROUTE_IDEMPOTENT) ? req_header_get(r, "idempotency-key") : STR_NULL;
    rc = idem_key.p ? idempotency_run(r, idem_key) : r->route->handler(r);
    db_set_deadline(r->db, 0);

respond:
    /* remember what finish() needs */
    r->is_api = is_api;
    r->cors_origin = cors_origin;
    if (rl_checked) {
        r->rl_checked = true;
        r->rl_limit = rl.limit;
        r->rl_remaining = rl.remaining;
        r->rl_reset_s = rl.reset_s;
    }
    if (rc == HTTP_DEFER)
        return 0; /* http_defer() answers later */
    finish(r, rc);
    return 0;
}

/* ---- per-thread loop ---- */

static void on_conn_close(void *data)
{
    struct thread_ctx *t = data;
    t->conns--;
    metrics_set_conns(t->metrics, t->conns);
}

static void on_log_flush(h2o_timeout_entry_t *e)
{
    (void)e;
    log_flush_thread();
}

static void log_kick(void *arg)
{
    struct thread_ctx *t = arg;
    if (!h2o_timeout_is_linked(&t->log_flush))
        h2o_timeout_link(t->ctx.loop, &t->ctx.zero_timeout, &t->log_flush);
}

static void on_tick(h2o_timeout_entry_t *e)
{
    struct thread_ctx *t = H2O_STRUCT_FROM_MEMBER(struct thread_ctx, tick, e);
    metrics_set_db(t->metrics, db_stats(t->db));
    h2o_timeout_link(t->ctx.loop, &t->ctx.one_sec_timeout, &t->tick);
}

static void on_drain_tick(h2o_timeout_entry_t *e)
{
    struct thread_ctx *t = H2O_STRUCT_FROM_MEMBER(struct thread_ctx, drain_tick, e);
    int64_t now = time_mono_ms(), since = now - t->shutdown_at_ms;
    if (t->conns == 0 || since >= SHUTDOWN_DEADLINE_MS ||
        (t->deferred == 0 && since >= 1000 && now - t->last_req_ms >= 500)) {
        t->exit = true;
        return;
    }
    h2o_timeout_link(t->ctx.loop, &t->ctx.hundred_ms_timeout, &t->drain_tick);
}

static void on_shutdown_msg(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    struct thread_ctx *t = H2O_STRUCT_FROM_MEMBER(struct thread_ctx, shutdown_rx, rx);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        free(m);
    }
    if (t->shutting_down)
        return;
    t->shutting_down = true;
    t->shutdown_at_ms = time_mono_ms();
    if (t->listener) {
        h2o_socket_read_stop(t->listener);
        h2o_socket_close(t->listener);
        t->listener = NULL;
    }
    h2o_context_request_shutdown(&t->ctx);
    h2o_timeout_link(t->ctx.loop, &t->ctx.hundred_ms_timeout, &t->drain_tick);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct thread_ctx *t = listener->data;
    h2o_socket_t *sock;
    if (err)
        return;
    /* accept a batch; each accepted socket goes to h2o (TLS handshake, HTTP/1 or 2) */
    for (int i = 0; i < 64; i++) {
        if (!(sock = h2o_evloop_socket_accept(listener)))
            break;
        t->conns++;
        metrics_set_conns(t->metrics, t->conns);
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = t;
        h2o_accept(&t->accept, sock);
    }
}

static void *thread_main(void *arg)
{
    struct thread_ctx *t = arg;
    tls_thr = t;
    h2o_context_init(&t->ctx, h2o_evloop_create(), &g_conf);
    t->accept.ctx = &t->ctx;
    t->accept.hosts = g_conf.hosts;
    t->accept.ssl_ctx = g_ssl;
    h2o_multithread_register_receiver(t->ctx.queue, &t->shutdown_rx, on_shutdown_msg);
    t->tick.cb = on_tick;
    t->drain_tick.cb = on_drain_tick;
    t->log_flush.cb = on_log_flush;
    buf_init(&t->logbuf, 1u << 20);
    log_thread_buffer(&t->logbuf, log_kick, t);
    h2o_timeout_link(t->ctx.loop, &t->ctx.one_sec_timeout, &t->tick);

    t->listener = h2o_evloop_socket_create(t->ctx.loop, t->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    t->listener->data = t;
    h2o_socket_read_start(t->listener, on_accept);
    pthread_barrier_wait(&g_ready);

    while (!t->exit)
        h2o_evloop_run(t->ctx.loop, INT32_MAX);

    log_flush_thread();
    log_thread_buffer(NULL, NULL, NULL);
    buf_free(&t->logbuf);
    db_close(t->db);
    t->db = NULL;
    /* Report done and park: the process exits with this thread alive, so
     * h2o's thread-local recycle caches stay reachable (not leaks) and no
     * connection memory is torn down under a socket h2o still owns. */
    sem_post(&g_done);
    for (;;)
        pause();
    return NULL;
}

static int open_listener(const char *host, int port, struct buf *err)
{
    struct addrinfo hints = {0}, *res = NULL;
    char portstr[8];
    int fd = -1, one = 1;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai) {
        (void)buf_printf(err, "HOST: cannot resolve %s: %s", host, gai_strerror(gai));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) || bind(fd, res->ai_addr, res->ai_addrlen) ||
        listen(fd, SOMAXCONN)) {
        (void)buf_printf(err, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int setup_tls(const struct config *cfg, struct buf *err)
{
    g_ssl = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(g_ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(g_ssl, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(g_ssl, cfg->tls_cert) != 1) {
        (void)buf_printf(err, "TEMEL_TLS_CERT: cannot load %s", cfg->tls_cert);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(g_ssl, cfg->tls_key, SSL_FILETYPE_PEM) != 1 || !SSL_CTX_check_private_key(g_ssl)) {
        (void)buf_puts(err, "TEMEL_TLS_KEY: cannot load the key or it does not match the certificate");
        return -1;
    }
    static const h2o_iovec_t alpn[] = {{H2O_STRLIT("h2")}, {H2O_STRLIT("http/1.1")}, {NULL, 0}};
    h2o_ssl_register_alpn_protocols(g_ssl, alpn);
    return 0;
}

void server_init(const struct config *cfg)
{
    g_cfg = cfg;
    g_started_ms = time_now_ms();
    ops_register();
    for (const struct module *const *m = temel_modules; *m; m++)
        if ((*m)->register_routes)
            (*m)->register_routes();
    if (cfg->env == ENV_TEST)
        testroutes_register();
    router_freeze(cfg->env == ENV_TEST);
}

int server_run(void)
{
    const struct config *cfg = g_cfg;
    struct buf err = BUF_INIT(1024);
    sigset_t sigs;
    int sig = 0, rc = 1;
    signal(SIGPIPE, SIG_IGN);
    g_rl = rl_store_memory(1u << 16);

    h2o_config_init(&g_conf);
    g_conf.server_name = h2o_iovec_init(H2O_STRLIT("temel"));
    g_conf.max_request_entity_size = HTTP_BODY_MAX;
    g_conf.http1.req_timeout = (uint64_t)(cfg->request_timeout_ms > 10000 ? cfg->request_timeout_ms : 10000);
    g_conf.http2.idle_timeout = 30000;
    g_conf.http2.graceful_shutdown_timeout = SHUTDOWN_DEADLINE_MS;
    h2o_hostconf_t *host = h2o_config_register_host(&g_conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;

    if (cfg->tls_cert && setup_tls(cfg, &err))
        goto fail;

    g_threads = xcalloc((size_t)cfg->threads, sizeof(*g_threads));
    for (int i = 0; i < cfg->threads; i++) {
        struct thread_ctx *t = &g_threads[i];
        struct db_options dbo = {.busy_timeout_ms = 5000, .statement_timeout_ms = (int)cfg->request_timeout_ms};
        t->idx = i;
        if ((t->listen_fd = open_listener(cfg->host, cfg->port, &err)) < 0)
            goto fail;
        if (!(t->db = db_open(cfg->database_url, &dbo, &err)))
            goto fail;
        t->metrics = metrics_shard_new();
    }

    /* signals go to the main thread only */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    pthread_barrier_init(&g_ready, NULL, (unsigned)cfg->threads + 1);
    sem_init(&g_done, 0, 0);
    for (int i = 0; i < cfg->threads; i++)
        pthread_create(&g_threads[i].tid, NULL, thread_main, &g_threads[i]);
    pthread_barrier_wait(&g_ready);

    log_info("listening on %s://%s:%d with %d threads", g_ssl ? "https" : "http", cfg->host, cfg->port,
             cfg->threads);
    sigwait(&sigs, &sig);
    log_info("signal %d: shutting down", sig);
    for (int i = 0; i < cfg->threads; i++) {
        h2o_multithread_message_t *m = xcalloc(1, sizeof(*m));
        h2o_multithread_send_message(&g_threads[i].shutdown_rx, m);
    }
    for (int i = 0; i < cfg->threads; i++)
        while (sem_wait(&g_done) != 0)
            ;
    log_info("stopped");
    rc = 0;
    goto out;
fail:
    log_error("%s", buf_cstr(&err));
    fprintf(stderr, "temel: %s\n", buf_cstr(&err));
out:
    buf_free(&err);
    return rc;
}
