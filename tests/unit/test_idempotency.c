/*
 * test_idempotency.c — unit tests for src/http/idempotency.c on a migrated
 * in-memory SQLite database, with a request built by hand (no server):
 * the first call runs the handler and stores its response; the same key
 * and request replays it without running the handler; the same key with
 * another body is 422; keys are per caller; a failing handler stores
 * nothing and rolls its writes back; bad keys are 422; an expired key runs
 * again and idempotency_purge removes expired keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/timeutil.h"
#include "db/db.h"
#include "db/migrate.h"
#include "http/idempotency.h"

#include "core/banned.h"

static struct db *g_db;
static int g_calls;
static bool g_fail;

/* Writes a row (so a rollback is visible) and answers 201 {"n": calls}. */
static int handler(struct req *r)
{
    char key[32];
    g_calls++;
    (void)snprintf(key, sizeof(key), "idem-%d", g_calls);
    int rc = db_exec(r->db, "INSERT INTO app_meta (key, value) VALUES (?, 'x')", DB_ARGS(DBA_CSTR(key)), NULL);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (g_fail)
        return http_fail(r, 409, "CONFLICT", "told to fail");
    r->status = 201;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "n");
    jw_int(&r->w, g_calls);
    jw_obj_end(&r->w);
    return 0;
}

static struct route g_route = {.method = "POST", .pattern = "/api/v1/things", .handler = handler,
                               .flags = ROUTE_IDEMPOTENT};

struct fake {
    h2o_mem_pool_t pool;
    struct req r;
};

static void fake_init(struct fake *f, const char *user, const char *body)
{
    memset(f, 0, sizeof(*f));
    h2o_mem_init_pool(&f->pool);
    f->r.pool = &f->pool;
    f->r.method = STRLIT("POST");
    f->r.path = f->r.raw_path = STRLIT("/api/v1/things");
    f->r.entity = str_c(body);
    f->r.route = &g_route;
    f->r.db = g_db;
    f->r.user_id = str_c(user);
    f->r.status = 200;
    f->r.content_type = "application/json";
    buf_init(&f->r.out, 1u << 20);
    jw_init(&f->r.w, &f->r.out);
    buf_init(&f->r.err.detail, BUF_MAX_SMALL);
}

static void fake_release(struct fake *f)
{
    buf_free(&f->r.out);
    buf_free(&f->r.err.detail);
    h2o_mem_clear_pool(&f->pool);
}

/* A replay adds one response header (Idempotent-Replayed); a run adds none. */
static bool replayed(const struct fake *f) { return f->r.out_hdrs != NULL; }

static int64_t count(const char *sql)
{
    int64_t n = -1;
    bool found;
    assert_int_equal(db_query_int(g_db, sql, DB_NOARGS, &n, &found), DB_OK);
    return n;
}

/* One call: returns idempotency_run's result; *f stays for inspection (release it). */
static int call(struct fake *f, const char *user, const char *key, const char *body)
{
    fake_init(f, user, body);
    return idempotency_run(&f->r, str_c(key));
}

static int setup(void **state)
{
    struct buf err = BUF_INIT(BUF_MAX_SMALL), out = BUF_INIT(1u << 20);
    UNUSED(state);
    g_db = db_open("sqlite://:memory:", NULL, &err);
    if (!g_db || migrate_up(g_db, 0, &out) != DB_OK)
        fail_msg("database: %s", buf_cstr(&err));
    buf_free(&err);
    buf_free(&out);
    return 0;
}

static int teardown(void **state)
{
    UNUSED(state);
    db_close(g_db);
    return 0;
}

static void t_run_then_replay(void **state)
{
    struct fake a, b;
    UNUSED(state);
    g_calls = 0;
    assert_int_equal(call(&a, "u1", "k-1", "{\"x\":1}"), 0);
    assert_int_equal(g_calls, 1);
    assert_int_equal(a.r.status, 201);
    assert_string_equal(buf_cstr(&a.r.out), "{\"n\":1}");
    assert_false(replayed(&a));
    assert_int_equal(call(&b, "u1", "k-1", "{\"x\":1}"), 0);
    assert_int_equal(g_calls, 1); /* the handler did not run again */
    assert_int_equal(b.r.status, 201);
    assert_string_equal(buf_cstr(&b.r.out), "{\"n\":1}");
    assert_true(replayed(&b));
    assert_int_equal(count("SELECT count(*) FROM app_meta WHERE key LIKE 'idem-%'"), 1);
    fake_release(&a);
    fake_release(&b);
}

static void t_reused_key_other_body(void **state)
{
    struct fake a;
    UNUSED(state);
    int calls = g_calls;
    assert_int_equal(call(&a, "u1", "k-1", "{\"x\":2}"), HTTP_EFAIL);
    assert_int_equal(a.r.err.status, 422);
    assert_string_equal(a.r.err.code, "IDEMPOTENCY_KEY_REUSED");
    assert_int_equal(g_calls, calls);
    fake_release(&a);
}

static void t_keys_are_per_caller(void **state)
{
    struct fake a;
    UNUSED(state);
    int calls = g_calls;
    assert_int_equal(call(&a, "u2", "k-1", "{\"x\":1}"), 0);
    assert_int_equal(g_calls, calls + 1);
    assert_false(replayed(&a));
    fake_release(&a);
}

static void t_failure_stores_nothing(void **state)
{
    struct fake a, b;
    UNUSED(state);
    int64_t rows = count("SELECT count(*) FROM app_meta WHERE key LIKE 'idem-%'");
    int calls = g_calls;
    g_fail = true;
    assert_int_equal(call(&a, "u1", "k-fail", "{}"), HTTP_EFAIL);
    g_fail = false;
    assert_int_equal(a.r.err.status, 409);
    assert_int_equal(count("SELECT count(*) FROM app_meta WHERE key LIKE 'idem-%'"), rows); /* rolled back */
    assert_int_equal(count("SELECT count(*) FROM idempotency_keys WHERE key = 'k-fail'"), 0);
    /* a retry runs the handler again */
    assert_int_equal(call(&b, "u1", "k-fail", "{}"), 0);
    assert_int_equal(g_calls, calls + 2);
    assert_false(replayed(&b));
    fake_release(&a);
    fake_release(&b);
}

static void t_bad_keys(void **state)
{
    struct fake a;
    char long_key[257];
    UNUSED(state);
    memset(long_key, 'k', 256);
    long_key[256] = '\0';
    const char *const bad[] = {"", long_key, "a b", "tab\tkey", "ünicode"};
    int calls = g_calls;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        assert_int_equal(call(&a, "u1", bad[i], "{}"), HTTP_EFAIL);
        assert_int_equal(a.r.err.status, 422);
        fake_release(&a);
    }
    long_key[255] = '\0'; /* 255 is allowed */
    assert_int_equal(call(&a, "u1", long_key, "{}"), 0);
    fake_release(&a);
    assert_int_equal(g_calls, calls + 1);
}

static void t_expiry_and_purge(void **state)
{
    struct fake a;
    UNUSED(state);
    int calls = g_calls;
    int64_t now = time_now_ms(), removed = -1;
    assert_int_equal(db_exec(g_db, "UPDATE idempotency_keys SET expires_at = ms_ts(?) WHERE key = 'k-1' AND owner = 'u1'",
                             DB_ARGS(DBA_INT(now - 1)), NULL),
                     DB_OK);
    assert_int_equal(call(&a, "u1", "k-1", "{\"x\":2}"), 0); /* expired: a new request, not a reuse */
    assert_int_equal(g_calls, calls + 1);
    assert_false(replayed(&a));
    fake_release(&a);
    int64_t before = count("SELECT count(*) FROM idempotency_keys");
    assert_true(before >= 3);
    assert_int_equal(idempotency_purge(g_db, now + IDEMPOTENCY_TTL_MS + 1000, &removed), DB_OK);
    assert_int_equal(removed, before);
    assert_int_equal(count("SELECT count(*) FROM idempotency_keys"), 0);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    /* in order: the tests share one database */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_run_then_replay),     cmocka_unit_test(t_reused_key_other_body),
        cmocka_unit_test(t_keys_are_per_caller), cmocka_unit_test(t_failure_stores_nothing),
        cmocka_unit_test(t_bad_keys),            cmocka_unit_test(t_expiry_and_purge),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
