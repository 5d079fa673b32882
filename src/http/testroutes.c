/*
 * testroutes.c — routes that exist only with TEMEL_ENV=test. They exercise
 * the core machinery (strict bodies, path/query parsing, pagination,
 * deadlines, UUIDv7) through the real server before domain modules exist.
 * Never registered in development or production (router_freeze drops them).
 */
#include "core/coro.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "db/db.h"
#include "http/http.h"
#include "http/server.h"

#include "core/banned.h"

static const struct json_field echo_fields[] = {
    {.name = "name", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 100},
    {.name = "count", .type = JF_INT, .min = 0, .max = 1000},
    {.name = "tags", .type = JF_ARRAY_STR, .min = 0, .max = 20},
    {.name = "meta", .type = JF_OBJECT},
    {0},
};
static const struct json_schema echo_schema = {.fields = echo_fields};

static int echo(struct req *r)
{
    jw_obj_begin(&r->w);
    jw_key(&r->w, "data");
    jw_json(&r->w, r->body);
    jw_obj_end(&r->w);
    return 0;
}

static int item(struct req *r)
{
    str_t id = req_param(r, "id");
    if (!uuid_valid(id))
        return http_invalid(r, "id", "must be a UUID");
    jw_obj_begin(&r->w);
    jw_key(&r->w, "data");
    jw_obj_begin(&r->w);
    jw_key(&r->w, "id");
    jw_str(&r->w, id);
    jw_key(&r->w, "page");
    jw_int(&r->w, r->page);
    jw_key(&r->w, "limit");
    jw_int(&r->w, r->limit);
    jw_key(&r->w, "query");
    jw_obj_begin(&r->w);
    for (int i = 0; i < r->q.n; i++) {
        jw_key_str(&r->w, r->q.p[i].key);
        jw_str(&r->w, r->q.p[i].value);
    }
    jw_obj_end(&r->w);
    jw_obj_end(&r->w);
    jw_obj_end(&r->w);
    return 0;
}

static int slow(struct req *r)
{
    int64_t n = 0;
    bool found;
    /* a query that runs for minutes unless the deadline interrupts it */
    int rc = db_query_int(r->db,
                          "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000000) "
                          "SELECT count(*) FROM c",
                          DB_NOARGS, &n, &found);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    jw_obj_begin(&r->w);
    jw_key(&r->w, "count");
    jw_int(&r->w, n);
    jw_obj_end(&r->w);
    return 0;
}

/* A handler that waits ?ms= (default 300) by yielding its coroutine: the
 * loop serves other requests meanwhile (test only). */
static int sleep_h(struct req *r)
{
    int64_t ms = 300, t0 = time_mono_ms();
    const str_t *q = req_query(r, "ms");
    if (q && parse_i64(*q, 0, 60000, &ms))
        return http_invalid(r, "ms", "must be 0..60000");
    coro_sleep_ms(ms);
    jw_obj_begin(&r->w);
    jw_key(&r->w, "slept_ms");
    jw_int(&r->w, time_mono_ms() - t0);
    jw_obj_end(&r->w);
    return 0;
}

static int uuids(struct req *r)
{
    int64_t n = 10;
    const str_t *q = req_query(r, "n");
    char u[UUID_STR_LEN + 1];
    if (q && parse_i64(*q, 1, 1000, &n))
        return http_invalid(r, "n", "must be an integer between 1 and 1000");
    jw_obj_begin(&r->w);
    jw_key(&r->w, "data");
    jw_arr_begin(&r->w);
    for (int64_t i = 0; i < n; i++) {
        uuid7_str(u);
        jw_str(&r->w, str_make(u, UUID_STR_LEN));
    }
    jw_arr_end(&r->w);
    jw_obj_end(&r->w);
    return 0;
}

/* A counter in app_meta: proves a handler ran (or did not) under Idempotency-Key. */
static const struct json_field counter_fields[] = {
    {.name = "amount", .type = JF_INT, .flags = JF_REQUIRED, .min = 1, .max = 1000},
    {.name = "fail", .type = JF_BOOL},
    {0},
};
static const struct json_schema counter_schema = {.fields = counter_fields};

static int counter(struct req *r)
{
    int64_t amount = json_integer_value(json_object_get(r->body, "amount")), v = 0;
    bool found;
    int rc = db_exec(r->db,
                     db_pick(r->db,
                             "INSERT INTO app_meta (key, value) VALUES ('test_counter', ?) ON CONFLICT (key) DO UPDATE "
                             "SET value = CAST(CAST(app_meta.value AS INTEGER) + excluded.value AS TEXT)",
                             "INSERT INTO app_meta (key, value) VALUES ('test_counter', ?) ON CONFLICT (key) DO UPDATE "
                             "SET value = (app_meta.value::bigint + excluded.value::bigint)::text"),
                     DB_ARGS(DBA_INT(amount)), NULL);
    if (rc == DB_OK)
        rc = db_query_int(r->db, "SELECT CAST(value AS INTEGER) FROM app_meta WHERE key = 'test_counter'", DB_NOARGS, &v,
                          &found);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (json_is_true(json_object_get(r->body, "fail")))
        return http_fail(r, 409, "CONFLICT", "asked to fail after writing");
    r->status = 201;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "counter");
    jw_int(&r->w, v);
    jw_obj_end(&r->w);
    return 0;
}

static int counter_get(struct req *r)
{
    int64_t v = 0;
    bool found;
    int rc = db_query_int(r->db, "SELECT CAST(value AS INTEGER) FROM app_meta WHERE key = 'test_counter'", DB_NOARGS,
                          &v, &found);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    jw_obj_begin(&r->w);
    jw_key(&r->w, "counter");
    jw_int(&r->w, v);
    jw_obj_end(&r->w);
    return 0;
}


/* Deferred response: answers after ?ms= (default 300) or at ?timeout_ms=. */
struct wait_state {
    int64_t until;
    int polls;
};

static int wait_poll(struct req *r, void *arg, bool timed_out)
{
    struct wait_state *w = arg;
    w->polls++;
    bool done = time_mono_ms() >= w->until;
    if (!done && !timed_out)
        return HTTP_DEFER;
    r->status = done ? 200 : 202;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "done");
    jw_bool(&r->w, done);
    jw_key(&r->w, "polls");
    jw_int(&r->w, w->polls);
    jw_obj_end(&r->w);
    return 0;
}

static int wait_h(struct req *r)
{
    int64_t ms = 300, timeout = 60000;
    const str_t *q = req_query(r, "ms"), *t = req_query(r, "timeout_ms");
    if (q && parse_i64(*q, 0, 60000, &ms))
        return http_invalid(r, "ms", "must be 0..60000");
    if (t && parse_i64(*t, 0, 60000, &timeout))
        return http_invalid(r, "timeout_ms", "must be 0..60000");
    struct wait_state *w = h2o_mem_alloc_pool(r->pool, sizeof(*w));
    w->until = time_mono_ms() + ms;
    w->polls = 0;
    return http_defer(r, wait_poll, w, time_mono_ms() + timeout);
}

/* POST /_test/req-tx[?fail=1]: a req_tx callback whose first attempt writes
 * output, records an error and then asks for a retry (DB_EBUSY); the retry
 * answers {"attempt":2}, or fails with its own 422. Nothing of the first
 * attempt may survive into the response. */
struct retry_ctx {
    int attempt;
    bool fail_again;
};

static int tx_retry(struct req *r, void *arg)
{
    struct retry_ctx *c = arg;
    c->attempt++;
    r->status = 201;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "attempt");
    jw_int(&r->w, c->attempt);
    if (c->attempt == 1) {
        http_field_error(r, "first", "recorded by the failed attempt");
        (void)http_fail(r, 503, NULL, "the failed attempt");
        r->err.retry_after_s = 7;
        return DB_EBUSY; /* db_tx rolls back and runs this again */
    }
    if (c->fail_again)
        return http_invalid(r, "second", "recorded by the last attempt");
    jw_obj_end(&r->w);
    r->status = 200;
    return 0;
}

static int req_tx_h(struct req *r)
{
    struct retry_ctx c = {0, req_query(r, "fail") != NULL};
    return req_tx(r, DB_TX_WRITE, tx_retry, &c);
}

/* The frozen route table, for the OpenAPI contract test (every route that
 * is not hidden must be in the document). */
static int route_table(struct req *r)
{
    static const char *const auth[] = {"none", "optional", "user", "staff", "admin"};
    jw_obj_begin(&r->w);
    jw_key(&r->w, "data");
    jw_arr_begin(&r->w);
    for (size_t i = 0; i < router_count(); i++) {
        const struct route *rt = router_get(i);
        jw_obj_begin(&r->w);
        jw_key(&r->w, "method");
        jw_cstr(&r->w, rt->method);
        jw_key(&r->w, "pattern");
        jw_cstr(&r->w, rt->pattern);
        jw_key(&r->w, "auth");
        jw_cstr(&r->w, auth[rt->auth]);
        jw_key(&r->w, "hidden");
        jw_bool(&r->w, (rt->flags & ROUTE_HIDDEN) != 0);
        jw_key(&r->w, "test_only");
        jw_bool(&r->w, (rt->flags & ROUTE_TEST_ONLY) != 0);
        jw_key(&r->w, "paginated");
        jw_bool(&r->w, (rt->flags & ROUTE_PAGINATED) != 0);
        jw_key(&r->w, "has_output");
        jw_bool(&r->w, rt->output != NULL);
        jw_obj_end(&r->w);
    }
    jw_arr_end(&r->w);
    jw_obj_end(&r->w);
    return 0;
}

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/_test/routes", .handler = route_table, .rl = RL_READ,
     .summary = "The frozen route table (test only)", .tag = "test", .flags = ROUTE_TEST_ONLY | ROUTE_HIDDEN},
    {.method = "GET", .pattern = "/api/v1/_test/wait", .handler = wait_h, .rl = RL_READ,
     .summary = "A deferred response (test only)", .tag = "test", .flags = ROUTE_TEST_ONLY},
    {.method = "POST", .pattern = "/api/v1/_test/counter", .handler = counter, .auth = AUTH_OPTIONAL, .rl = RL_WRITE,
     .input = &counter_schema, .summary = "Add to a counter; honours Idempotency-Key (test only)", .tag = "test",
     .flags = ROUTE_TEST_ONLY | ROUTE_IDEMPOTENT},
    {.method = "GET", .pattern = "/api/v1/_test/counter", .handler = counter_get, .rl = RL_READ,
     .summary = "Read the counter (test only)", .tag = "test", .flags = ROUTE_TEST_ONLY},
    {.method = "POST", .pattern = "/api/v1/_test/echo", .handler = echo, .rl = RL_WRITE, .body_max = 64u << 10,
     .input = &echo_schema, .summary = "Echo a validated body (test only)", .tag = "test", .flags = ROUTE_TEST_ONLY},
    {.method = "GET", .pattern = "/api/v1/_test/items/{id}", .handler = item, .rl = RL_READ,
     .summary = "Path, query and pagination parsing (test only)", .tag = "test",
     .flags = ROUTE_TEST_ONLY | ROUTE_PAGINATED},
    {.method = "GET", .pattern = "/api/v1/_test/slow", .handler = slow, .rl = RL_READ,
     .summary = "A query slower than the request deadline (test only)", .tag = "test", .flags = ROUTE_TEST_ONLY},
    {.method = "POST", .pattern = "/api/v1/_test/req-tx", .handler = req_tx_h, .rl = RL_WRITE,
     .summary = "A transaction retried after its first attempt recorded an error (test only)", .tag = "test",
     .flags = ROUTE_TEST_ONLY | ROUTE_NO_BODY},
    {.method = "GET", .pattern = "/api/v1/_test/sleep", .handler = sleep_h, .rl = RL_READ,
     .summary = "A handler that yields for ?ms= (test only)", .tag = "test", .flags = ROUTE_TEST_ONLY},
    {.method = "GET", .pattern = "/api/v1/_test/uuid", .handler = uuids, .rl = RL_READ,
     .summary = "UUIDv7 sequence (test only)", .tag = "test", .flags = ROUTE_TEST_ONLY},
};

void testroutes_register(void)
{
    router_add(routes, ARRAY_LEN(routes));
}
