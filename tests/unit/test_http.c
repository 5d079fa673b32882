/* Unit tests for src/http: router, query parser, problem builder, GCRA. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "http/http.h"
#include "http/problem.h"
#include "http/ratelimit.h"

static int h_dummy(struct req *r)
{
    (void)r;
    return 0;
}

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/users", .handler = h_dummy},
    {.method = "POST", .pattern = "/api/v1/users", .handler = h_dummy},
    {.method = "GET", .pattern = "/api/v1/users/me", .handler = h_dummy},
    {.method = "GET", .pattern = "/api/v1/users/{id}", .handler = h_dummy},
    {.method = "PATCH", .pattern = "/api/v1/users/{id}", .handler = h_dummy},
    {.method = "DELETE", .pattern = "/api/v1/users/{id}", .handler = h_dummy},
    {.method = "GET", .pattern = "/api/v1/users/{user_id}/keys/{key_id}", .handler = h_dummy},
    {.method = "GET", .pattern = "/api/v1/users/me/sessions", .handler = h_dummy},
    {.method = "GET", .pattern = "/health", .handler = h_dummy},
    {.method = "GET", .pattern = "/api/v1/_test/only", .handler = h_dummy, .flags = ROUTE_TEST_ONLY},
    {.method = "GET", .pattern = "/p/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", .handler = h_dummy}, /* ROUTE_MAX_PARAMS */
};

static int setup_router(void **state)
{
    (void)state;
    router_add(routes, ARRAY_LEN(routes));
    router_freeze(false);
    return 0;
}

static void t_router_match(void **state)
{
    (void)state;
    struct route_match m;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);

    assert_int_equal(router_count(), ARRAY_LEN(routes) - 1); /* test-only route dropped */
    assert_int_equal(router_match(STRLIT("GET"), STRLIT("/api/v1/users"), &pool, &m), MATCH_OK);
    assert_ptr_equal(m.route, &routes[0]);
    assert_int_equal(router_match(STRLIT("POST"), STRLIT("/api/v1/users"), &pool, &m), MATCH_OK);
    assert_ptr_equal(m.route, &routes[1]);
    /* a literal beats a parameter */
    assert_int_equal(router_match(STRLIT("GET"), STRLIT("/api/v1/users/me"), &pool, &m), MATCH_OK);
    assert_ptr_equal(m.route, &routes[2]);
    /* ... but the walk backtracks into the parameter when the literal dead-ends */
    assert_int_equal(router_match(STRLIT("PATCH"), STRLIT("/api/v1/users/me"), &pool, &m), MATCH_BAD_METHOD);
    assert_int_equal(router_match(STRLIT("GET"), STRLIT("/api/v1/users/me/keys/k1"), &pool, &m), MATCH_OK);
    assert_ptr_equal(m.route, &routes[6]);
    assert_int_equal(m.nparams, 2);
    assert_string_equal(m.names[0], "user_id");
    assert_true(str_is(m.params[0], "me"));
    assert_string_equal(m.names[1], "key_id");
    assert_true(str_is(m.params[1], "k1"));
    /* parameters are percent-decoded */
    assert_int_equal(router_match(STRLIT("GET"), STRLIT("/api/v1/users/a%20b"), &pool, &m), MATCH_OK);
    assert_ptr_equal(m.route, &routes[3]);
    assert_true(str_is(m.params[0], "a b"));
    assert_int_equal(router_match(STRLIT("GET"), STRLIT("/api/v1/users/a%2"), &pool, &m), MATCH_BAD_PATH);
    assert_int_equal(router_match(STRLIT("GET"), STRLIT("/api/v1/users/%00"), &pool, &m), MATCH_BAD_PATH);
    /* HEAD is GET */
    assert_int_equal(router_match(STRLIT("HEAD"), STRLIT("/health"), &pool, &m), MATCH_OK);
    h2o_mem_clear_pool(&pool);
}

static void t_router_misses(void **state)
{
    (void)state;
    struct route_match m;
    struct buf b = BUF_INIT(256);
    assert_int_equal(router_match(STRLIT("GET"), STRLIT("/api/v1/nope"), NULL, &m), MATCH_NOT_FOUND);
    assert_int_equal(router_match(STRLIT("GET"), STRLIT("/api/v1/users/"), NULL, &m), MATCH_NOT_FOUND);
    assert_int_equal(router_match(STRLIT("GET"), STRLIT("/api//v1/users"), NULL, &m), MATCH_NOT_FOUND);
    assert_int_equal(router_match(STRLIT("GET"), STRLIT("/"), NULL, &m), MATCH_NOT_FOUND);
    assert_int_equal(router_match(STRLIT("GET"), STRLIT(""), NULL, &m), MATCH_NOT_FOUND);
    assert_int_equal(router_match(STRLIT("GET"), STRLIT("api/v1/users"), NULL, &m), MATCH_NOT_FOUND);
    assert_int_equal(router_match(STRLIT("GET"), STRLIT("/api/v1/_test/only"), NULL, &m), MATCH_NOT_FOUND);
    assert_int_equal(router_match(STRLIT("PUT"), STRLIT("/api/v1/users/x"), NULL, &m), MATCH_BAD_METHOD);
    router_allow_header(m.allow_mask, &b);
    assert_string_equal(buf_cstr(&b), "GET, HEAD, PATCH, DELETE, OPTIONS");
    assert_int_equal(router_match(STRLIT("BREW"), STRLIT("/health"), NULL, &m), MATCH_BAD_METHOD);
    buf_free(&b);
}

/* Allocations of the parser under test, freed all at once (like a pool):
 * a failed parse may have allocated for the pair it rejected. */
static void *allocs[4 * QUERY_MAX_PARAMS + 8];
static size_t nallocs;

static void *heap_alloc(void *ud, size_t n)
{
    (void)ud;
    assert_true(nallocs < ARRAY_LEN(allocs));
    return allocs[nallocs++] = malloc(n);
}

static void free_query(struct query *q)
{
    (void)q;
    while (nallocs)
        free(allocs[--nallocs]);
}

static void t_query(void **state)
{
    (void)state;
    struct query q;
    assert_int_equal(query_parse(STRLIT("a=1&b=x%20y+z&&c&price%5Blte%5D=10&e="), &q, heap_alloc, NULL), QUERY_OK);
    assert_int_equal(q.n, 5);
    assert_true(str_is(*query_get(&q, "a"), "1"));
    assert_true(str_is(*query_get(&q, "b"), "x y z"));
    assert_true(str_is(*query_get(&q, "c"), ""));
    assert_true(str_is(*query_get(&q, "price[lte]"), "10"));
    assert_true(str_is(*query_get(&q, "e"), ""));
    assert_null(query_get(&q, "zz"));
    free_query(&q);
    /* first occurrence wins for query_get; all are kept */
    assert_int_equal(query_parse(STRLIT("a=1&a=2"), &q, heap_alloc, NULL), QUERY_OK);
    assert_int_equal(q.n, 2);
    assert_true(str_is(*query_get(&q, "a"), "1"));
    free_query(&q);
    /* UTF-8 decoded */
    assert_int_equal(query_parse(STRLIT("q=%C5%9Feker"), &q, heap_alloc, NULL), QUERY_OK);
    assert_true(str_is(*query_get(&q, "q"), "şeker"));
    free_query(&q);
    const char *bad[] = {"a=%zz", "a=%4", "a=%", "a=%00", "a=%ff", "=1", "a=%C5", "%=1"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        q.n = 0;
        assert_int_equal(query_parse(str_c(bad[i]), &q, heap_alloc, NULL), QUERY_EBAD);
        free_query(&q);
    }
    struct buf many = BUF_INIT(4096);
    for (int i = 0; i < 65; i++)
        (void)buf_printf(&many, "k%d=v&", i);
    assert_int_equal(query_parse(buf_str(&many), &q, heap_alloc, NULL), QUERY_ETOOMANY);
    free_query(&q);
    buf_free(&many);
}

/* Issue 9 item 1 audit: each request-filled array of src/http taken to its bound and one past. */
static void t_bounds(void **state)
{
    (void)state;
    struct route_match m;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    /* route parameters: a route with ROUTE_MAX_PARAMS of them binds all */
    assert_int_equal(ROUTE_MAX_PARAMS, 8);
    assert_int_equal(router_match(STRLIT("GET"), STRLIT("/p/1/2/3/4/5/6/7/8"), &pool, &m), MATCH_OK);
    assert_int_equal(m.nparams, ROUTE_MAX_PARAMS);
    assert_true(str_is(m.params[7], "8"));
    assert_int_equal(router_match(STRLIT("GET"), STRLIT("/p/1/2/3/4/5/6/7/8/9"), &pool, &m), MATCH_NOT_FOUND);
    /* path segments: 32 are split, the 33rd is a 404, never a write past segs[] */
    struct buf path = BUF_INIT(512);
    for (int i = 0; i < 32; i++)
        (void)buf_puts(&path, "/s");
    assert_int_equal(router_match(STRLIT("GET"), buf_str(&path), &pool, &m), MATCH_NOT_FOUND);
    (void)buf_puts(&path, "/s");
    assert_int_equal(router_match(STRLIT("GET"), buf_str(&path), &pool, &m), MATCH_NOT_FOUND);
    buf_free(&path);
    h2o_mem_clear_pool(&pool);
    /* query parameters: QUERY_MAX_PARAMS parse, one more is QUERY_ETOOMANY */
    struct query q;
    struct buf qs = BUF_INIT(4096);
    for (int i = 0; i < QUERY_MAX_PARAMS; i++)
        (void)buf_printf(&qs, "k%d=v&", i);
    assert_int_equal(query_parse(buf_str(&qs), &q, heap_alloc, NULL), QUERY_OK);
    assert_int_equal(q.n, QUERY_MAX_PARAMS);
    free_query(&q);
    (void)buf_puts(&qs, "last=1");
    assert_int_equal(query_parse(buf_str(&qs), &q, heap_alloc, NULL), QUERY_ETOOMANY);
    free_query(&q);
    buf_free(&qs);
    /* field errors of a request: JSON_VERR_MAX are kept, further ones are dropped */
    static struct req r;
    for (int i = 0; i < JSON_VERR_MAX; i++)
        http_field_error(&r, "f", "m");
    assert_int_equal(r.err.nerrs, JSON_VERR_MAX);
    http_field_error(&r, "last", "m");
    assert_int_equal(r.err.nerrs, JSON_VERR_MAX);
    assert_string_equal(r.err.errs[JSON_VERR_MAX - 1].field, "f");
}

static void t_problem(void **state)
{
    (void)state;
    struct buf b = BUF_INIT(2048);
    struct json_verr e[] = {{"email", "must be a valid email address"}};
    problem_write(&b, 422, problem_code(422), problem_title(422, LANG_EN), STRLIT("bad \"input\""), e, 1,
                  STRLIT("rid-1"));
    json_t *v;
    assert_int_equal(json_parse_strict(buf_str(&b), &v, NULL), JSON_IN_OK);
    assert_string_equal(json_string_value(json_object_get(v, "type")), "about:blank");
    assert_string_equal(json_string_value(json_object_get(v, "title")), "Validation failed");
    assert_int_equal(json_integer_value(json_object_get(v, "status")), 422);
    assert_string_equal(json_string_value(json_object_get(v, "detail")), "bad \"input\"");
    assert_string_equal(json_string_value(json_object_get(v, "code")), "VALIDATION_ERROR");
    assert_string_equal(json_string_value(json_object_get(v, "request_id")), "rid-1");
    json_t *errs = json_object_get(v, "errors");
    assert_int_equal(json_array_size(errs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 0), "field")), "email");
    json_decref(v);
    buf_free(&b);

    assert_string_equal(problem_code(404), "NOT_FOUND");
    assert_string_equal(problem_code(429), "RATE_LIMIT_EXCEEDED");
    assert_string_equal(problem_code(599), "INTERNAL_ERROR");
    assert_string_equal(problem_title(404, LANG_TR), "Bulunamadı");
    assert_int_equal(lang_from_header(STRLIT("tr-TR,tr;q=0.9,en;q=0.8")), LANG_TR);
    assert_int_equal(lang_from_header(STRLIT("de, pl;q=0.5, en;q=0.4")), LANG_PL);
    assert_int_equal(lang_from_header(STRLIT("en;q=0.1, pl;q=0.9")), LANG_PL);
    assert_int_equal(lang_from_header(STRLIT("fr")), LANG_EN);
    assert_int_equal(lang_from_header(STRLIT("")), LANG_EN);
    assert_int_equal(lang_from_header(STRLIT("tr;q=0")), LANG_EN);
}

static void t_gcra(void **state)
{
    (void)state;
    struct rl_rule rule = {5, 60};
    struct rl_result r;
    int64_t tat = 0, now = 1000000;
    /* a burst of 5, remaining counting down */
    for (int i = 0; i < 5; i++) {
        tat = rl_gcra(&rule, tat, now, &r);
        assert_true(r.allowed);
        assert_int_equal(r.limit, 5);
        assert_int_equal(r.remaining, 4 - i);
    }
    int64_t kept = tat;
    tat = rl_gcra(&rule, tat, now, &r);
    assert_false(r.allowed);
    assert_int_equal(tat, kept); /* a refusal does not consume */
    assert_int_equal(r.retry_after_s, 12); /* one emission interval: 60 s / 5 */
    assert_int_equal(r.reset_s, 60);
    /* after 12 s exactly one more is allowed */
    tat = rl_gcra(&rule, tat, now + 11999, &r);
    assert_false(r.allowed);
    assert_int_equal(r.retry_after_s, 1);
    tat = rl_gcra(&rule, tat, now + 12000, &r);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 0);
    tat = rl_gcra(&rule, tat, now + 12000, &r);
    assert_false(r.allowed);
    /* after a full period the burst is back */
    tat = rl_gcra(&rule, tat, now + 12000 + 60000, &r);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 4);
}

static void t_rl_store(void **state)
{
    (void)state;
    struct rl_store *s = rl_store_memory(1024);
    struct rl_rule rule = {3, 10};
    struct rl_result r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s->take(s, RL_READ, STRLIT("1.2.3.4"), &rule, 5000, &r), 0);
        assert_true(r.allowed);
    }
    assert_int_equal(s->take(s, RL_READ, STRLIT("1.2.3.4"), &rule, 5000, &r), 0);
    assert_false(r.allowed);
    /* other keys and other classes have their own budget */
    assert_int_equal(s->take(s, RL_READ, STRLIT("1.2.3.5"), &rule, 5000, &r), 0);
    assert_true(r.allowed);
    assert_int_equal(s->take(s, RL_WRITE, STRLIT("1.2.3.4"), &rule, 5000, &r), 0);
    assert_true(r.allowed);
    /* thousands of keys in a small table: bounded memory, still answers */
    for (int i = 0; i < 20000; i++) {
        char k[32];
        int n = snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(s->take(s, RL_READ, str_make(k, (size_t)n), &rule, 5000, &r), 0);
        assert_true(r.allowed);
    }
    s->destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_router_match), cmocka_unit_test(t_router_misses), cmocka_unit_test(t_query),
        cmocka_unit_test(t_problem),      cmocka_unit_test(t_bounds),      cmocka_unit_test(t_gcra),          cmocka_unit_test(t_rl_store),
    };
    return cmocka_run_group_tests(tests, setup_router, NULL);
}
