/*
 * test_resource.c — the resource engine's filter lexer/parser/compiler
 * (golden SQL + arguments, both dialects), sort, bracket filters, and the
 * bounded argument adder. (The career ATS scorer: test_career.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "resource/internal.h"
#include "resource/resource.h"

#include "core/banned.h"

/* ---- a descriptor to compile against ---- */

static const char *const st_values[] = {"draft", "published", NULL};
static const struct rfield t_fields[] = {
    {.name = "title", .type = RF_TEXT, .flags = RF_FILTER | RF_SORT},
    {.name = "price", .type = RF_MONEY, .flags = RF_FILTER | RF_SORT},
    {.name = "active", .type = RF_BOOL, .flags = RF_FILTER},
    {.name = "status", .type = RF_ENUM, .values = st_values, .flags = RF_FILTER},
    {.name = "published_at", .type = RF_TIME, .flags = RF_FILTER | RF_SORT | RF_NULLABLE},
    {.name = "tags", .type = RF_STRLIST, .flags = RF_FILTER},
    {.name = "owner_id", .type = RF_TEXT, .flags = RF_FILTER | RF_READONLY},
    {.name = "secret", .type = RF_TEXT},
    {0}};
static const struct resource t_res = {.name = "things", .singular = "thing", .path = "/api/v1/things",
                                      .table = "things", .fields = t_fields, .owner = "owner_id",
                                      .read = RP_OWNER, .create = RP_AUTH, .update = RP_OWNER, .del = RP_OWNER};

/* a tiny arena for decoded literals */
struct arena {
    void *p[256];
    size_t n;
};
static void *arena_alloc(void *ud, size_t n)
{
    struct arena *a = ud;
    assert_true(a->n < 256);
    return a->p[a->n++] = xmalloc(n ? n : 1);
}
static void arena_free(struct arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->p[i]);
    a->n = 0;
}

struct fx {
    struct arena a;
    struct rq q;
};

static void fx_begin(struct fx *f, enum db_kind kind)
{
    memset(f, 0, sizeof(*f));
    rq_init(&f->q, &t_res, kind, STRLIT("user-1"), 1700000000000, arena_alloc, &f->a);
}
static void fx_end(struct fx *f)
{
    rq_release(&f->q);
    arena_free(&f->a);
}

static void expect_expr(enum db_kind kind, const char *expr, const char *sql)
{
    struct fx f;
    fx_begin(&f, kind);
    int rc = rq_filter_expr(&f.q, str_c(expr));
    if (rc)
        fail_msg("%s: %s", expr, buf_cstr(&f.q.err_msg));
    assert_string_equal(buf_cstr(&f.q.sql), sql);
    fx_end(&f);
}

static void expect_error(const char *expr, int status, const char *field)
{
    struct fx f;
    fx_begin(&f, DB_SQLITE);
    assert_int_equal(rq_filter_expr(&f.q, str_c(expr)), -1);
    assert_int_equal(f.q.err_status, status);
    if (field)
        assert_string_equal(f.q.err_field, field);
    assert_string_equal(buf_cstr(&f.q.sql), ""); /* nothing half-written */
    assert_int_equal(f.q.nargs, 0);
    fx_end(&f);
}

static void test_expr_golden(void **state)
{
    (void)state;
    expect_expr(DB_SQLITE, "title = 'a'", " AND (t.title = ?)");
    expect_expr(DB_SQLITE, "price >= 100 && price < 200", " AND (t.price >= ? AND t.price < ?)");
    expect_expr(DB_SQLITE, "(status = 'draft' || status = \"published\") && active = true",
                " AND ((t.status = ? OR t.status = ?) AND t.active = ?)");
    expect_expr(DB_SQLITE, "title != 'x'", " AND (t.title IS NOT ?)");
    expect_expr(DB_POSTGRES, "title != 'x'", " AND (t.title IS DISTINCT FROM ?)");
    expect_expr(DB_SQLITE, "title ~ 'ab'", " AND (t.title LIKE ? ESCAPE '\\')");
    expect_expr(DB_POSTGRES, "title ~ 'ab'", " AND (t.title ILIKE ? ESCAPE '\\')");
    expect_expr(DB_SQLITE, "title !~ 'ab'", " AND ((t.title IS NULL OR NOT (t.title LIKE ? ESCAPE '\\')))");
    expect_expr(DB_SQLITE, "published_at = null", " AND (t.published_at IS NULL)");
    expect_expr(DB_SQLITE, "published_at != null", " AND (t.published_at IS NOT NULL)");
    expect_expr(DB_SQLITE, "published_at <= @now", " AND (t.published_at <= ms_ts(?))");
    expect_expr(DB_SQLITE, "owner_id = @me", " AND (t.owner_id = ?)");
    expect_expr(DB_SQLITE, "tags ~ 'go'", " AND (t.tags LIKE ? ESCAPE '\\')");
    expect_expr(DB_SQLITE, "  ", "");
}

static void test_expr_args(void **state)
{
    (void)state;
    struct fx f;
    fx_begin(&f, DB_SQLITE);
    assert_int_equal(rq_filter_expr(&f.q, STRLIT("title ~ '50%_\\'off' && price > -5 && published_at > '2024-01-02' "
                                                 "&& owner_id = @me && active = false")),
                     0);
    assert_int_equal(f.q.nargs, 5);
    assert_int_equal(f.q.args[0].type, DB_T_TEXT);
    assert_true(str_eq(f.q.args[0].v.s, STRLIT("%50\\%\\_'off%")));
    assert_int_equal(f.q.args[1].type, DB_T_INT);
    assert_int_equal(f.q.args[1].v.i, -5);
    assert_int_equal(f.q.args[2].v.i, 1704153600000); /* 2024-01-02T00:00:00Z */
    assert_true(str_eq(f.q.args[3].v.s, STRLIT("user-1")));
    assert_int_equal(f.q.args[4].type, DB_T_BOOL);
    assert_int_equal(f.q.args[4].v.i, 0);
    fx_end(&f);
    /* @now is the clock given to rq_init */
    fx_begin(&f, DB_POSTGRES);
    assert_int_equal(rq_filter_expr(&f.q, STRLIT("published_at < @now")), 0);
    assert_int_equal(f.q.args[0].v.i, 1700000000000);
    fx_end(&f);
}

static void test_expr_errors(void **state)
{
    (void)state;
    expect_error("nope = 1", 422, "nope");
    expect_error("secret = 'x'", 422, "secret"); /* a field that is not filterable */
    expect_error("title = 'a", 400, "filter");   /* unterminated string */
    expect_error("title = ", 400, "filter");
    expect_error("title 'a'", 400, "filter");
    expect_error("(title = 'a'", 400, "filter");
    expect_error("title = 'a')", 400, "filter");
    expect_error("title = 'a' &&", 400, "filter");
    expect_error("title = 'a' & price = 1", 400, "filter");
    expect_error("price = 'x'", 422, "price");
    expect_error("price = 1.5", 422, "price");
    expect_error("price ~ '1'", 422, "price");
    expect_error("active = 'yes'", 422, "active");
    expect_error("active > true", 422, "active");
    expect_error("status = 'gone'", 422, "status");
    expect_error("published_at > 'yesterday'", 422, "published_at");
    expect_error("title > null", 422, "title");
    expect_error("title = @now", 422, "title");
    expect_error("title = @you", 400, "filter");
    expect_error("title = 'a'; DROP TABLE things", 400, "filter");
    expect_error("1 = 1", 400, "filter");
    /* depth and size limits */
    struct buf b = BUF_INIT(8192);
    for (int i = 0; i < 40; i++)
        (void)buf_putc(&b, '(');
    (void)buf_puts(&b, "title = 'a'");
    for (int i = 0; i < 40; i++)
        (void)buf_putc(&b, ')');
    expect_error(buf_cstr(&b), 400, "filter");
    buf_reset(&b);
    for (int i = 0; i < 41; i++)
        (void)buf_printf(&b, "%stitle = 'a'", i ? " || " : "");
    expect_error(buf_cstr(&b), 422, "filter");
    buf_reset(&b);
    for (int i = 0; i < 3000; i++)
        (void)buf_putc(&b, ' ');
    expect_error(buf_cstr(&b), 422, "filter");
    buf_free(&b);
}

static void test_bracket(void **state)
{
    (void)state;
    struct fx f;
    fx_begin(&f, DB_SQLITE);
    assert_int_equal(rq_filter_bracket(&f.q, STRLIT("title"), STRLIT("a")), 0);
    assert_int_equal(rq_filter_bracket(&f.q, STRLIT("price[gte]"), STRLIT("10")), 0);
    assert_int_equal(rq_filter_bracket(&f.q, STRLIT("price[lt]"), STRLIT("20")), 0);
    assert_int_equal(rq_filter_bracket(&f.q, STRLIT("status[in]"), STRLIT("draft,published")), 0);
    assert_int_equal(rq_filter_bracket(&f.q, STRLIT("title[like]"), STRLIT("x_y")), 0);
    assert_int_equal(rq_filter_bracket(&f.q, STRLIT("title[ne]"), STRLIT("z")), 0);
    assert_int_equal(rq_filter_bracket(&f.q, STRLIT("published_at[gt]"), STRLIT("2024-01-01")), 0);
    assert_int_equal(rq_filter_bracket(&f.q, STRLIT("active"), STRLIT("true")), 0);
    assert_string_equal(buf_cstr(&f.q.sql),
                        " AND t.title = ? AND t.price >= ? AND t.price < ? AND t.status IN (?, ?) AND t.title LIKE ? "
                        "ESCAPE '\\' AND t.title IS NOT ? AND t.published_at > ms_ts(?) AND t.active = ?");
    assert_int_equal(f.q.nargs, 9);
    assert_true(str_eq(f.q.args[5].v.s, STRLIT("%x\\_y%")));
    /* errors leave nothing behind */
    size_t len = f.q.sql.len;
    assert_int_equal(rq_filter_bracket(&f.q, STRLIT("nope"), STRLIT("1")), -1);
    assert_int_equal(f.q.err_status, 422);
    assert_string_equal(f.q.err_field, "nope");
    assert_int_equal(f.q.sql.len, len);
    fx_end(&f);
    fx_begin(&f, DB_SQLITE);
    assert_int_equal(rq_filter_bracket(&f.q, STRLIT("price[between]"), STRLIT("1")), -1);
    assert_int_equal(f.q.err_status, 422);
    fx_end(&f);
    fx_begin(&f, DB_SQLITE);
    assert_int_equal(rq_filter_bracket(&f.q, STRLIT("price[in]"), STRLIT("1,x")), -1);
    assert_int_equal(f.q.err_status, 422);
    assert_string_equal(buf_cstr(&f.q.sql), "");
    assert_int_equal(f.q.nargs, 0);
    fx_end(&f);
    fx_begin(&f, DB_SQLITE);
    assert_int_equal(rq_filter_bracket(&f.q, STRLIT("price[gt"), STRLIT("1")), -1);
    assert_int_equal(f.q.err_status, 400);
    fx_end(&f);
}

/* Issue 9 item 1: every argument goes through one bounded adder. */
static void test_args_bound(void **state)
{
    (void)state;
    /* ARGS_ADD on a 3-slot array: 3 fit, the 4th writes nothing (the canary after it survives) */
    struct {
        db_arg a[3];
        db_arg canary;
    } s;
    int n = 0;
    s.canary = DBA_INT(4242);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ARGS_ADD(s.a, n, DBA_INT(i)), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ARGS_ADD(s.a, n, DBA_INT(99)), -1);
    assert_int_equal(n, 3);
    assert_int_equal(s.canary.v.i, 4242);
    /* rq_arg: RQ_MAX_ARGS fit, one more is a 422 naming the parameter, nargs unchanged */
    struct fx f;
    fx_begin(&f, DB_SQLITE);
    for (int i = 0; i < RQ_MAX_ARGS; i++)
        assert_int_equal(rq_arg(&f.q, STRLIT("filter"), DBA_INT(i)), 0);
    assert_int_equal(f.q.nargs, RQ_MAX_ARGS);
    assert_int_equal(f.q.err_status, 0);
    assert_int_equal(rq_arg(&f.q, STRLIT("q"), DBA_TEXT(STRLIT("x"))), -1);
    assert_int_equal(f.q.nargs, RQ_MAX_ARGS);
    assert_int_equal(f.q.err_status, 422);
    assert_string_equal(f.q.err_field, "q");
    assert_int_equal(f.q.args[RQ_MAX_ARGS - 1].v.i, RQ_MAX_ARGS - 1);
    fx_end(&f);
    /* a filter expression that would pass the bound leaves no clause and no argument behind */
    fx_begin(&f, DB_SQLITE);
    for (int i = 0; i < RQ_MAX_ARGS - 1; i++)
        assert_int_equal(rq_arg(&f.q, STRLIT("filter"), DBA_INT(i)), 0);
    assert_int_equal(rq_filter_expr(&f.q, STRLIT("price>=0 || price>=1")), -1);
    assert_int_equal(f.q.nargs, RQ_MAX_ARGS - 1);
    assert_int_equal(f.q.err_status, 422);
    assert_string_equal(buf_cstr(&f.q.sql), "");
    fx_end(&f);
}

static void test_sort(void **state)
{
    (void)state;
    struct fx f;
    struct buf o = BUF_INIT(1024);
    fx_begin(&f, DB_SQLITE);
    assert_int_equal(rq_sort(&f.q, STR_NULL, &o), 0);
    assert_string_equal(buf_cstr(&o), " ORDER BY t.created_at DESC, t.id DESC");
    buf_reset(&o);
    assert_int_equal(rq_sort(&f.q, STRLIT("price:desc,title"), &o), 0);
    assert_string_equal(buf_cstr(&o), " ORDER BY t.price DESC, t.title ASC, t.id ASC");
    buf_reset(&o);
    assert_int_equal(rq_sort(&f.q, STRLIT("tags"), &o), -1);
    assert_int_equal(f.q.err_status, 422);
    assert_string_equal(f.q.err_field, "sort");
    fx_end(&f);
    fx_begin(&f, DB_POSTGRES);
    buf_reset(&o);
    assert_int_equal(rq_sort(&f.q, STRLIT("published_at:asc"), &o), 0);
    assert_string_equal(buf_cstr(&o), " ORDER BY t.published_at ASC NULLS FIRST, t.id ASC");
    buf_reset(&o);
    assert_int_equal(rq_sort(&f.q, STRLIT("title:sideways"), &o), -1);
    fx_end(&f);
    fx_begin(&f, DB_SQLITE);
    buf_reset(&o);
    assert_int_equal(rq_sort(&f.q, STRLIT("title;DROP TABLE x"), &o), -1);
    assert_int_equal(f.q.err_status, 422);
    fx_end(&f);
    buf_free(&o);
}

/* i18n output: the raw fast path and the parsing fallback agree. */
static void i18n_is(const char *stored, enum lang lang, const char *want)
{
    struct buf b = BUF_INIT(4096);
    struct jw w;
    jw_init(&w, &b);
    resource__write_i18n(&w, str_c(stored), lang);
    assert_true(buf_ok(&b));
    assert_string_equal(buf_cstr(&b), want);
    buf_free(&b);
}

static void test_i18n_pick(void **state)
{
    (void)state;
    i18n_is("{\"en\":\"Tea\",\"tr\":\"\\u00c7ay\"}", LANG_TR, "\"\\u00c7ay\"");      /* raw token kept */
    i18n_is("{\"en\":\"Tea\",\"tr\":\"\\u00c7ay\"}", LANG_PL, "\"Tea\"");               /* → en */
    i18n_is("{\"tr\":\"\\u00c7ay\", \"pl\":\"Herbata\"}", LANG_EN, "\"\\u00c7ay\"");  /* → first */
    i18n_is(" { \"pl\" : \"a\\\"b\" , \"pl\":\"c\" } ", LANG_PL, "\"c\"");            /* last repeat wins */
    i18n_is("{}", LANG_EN, "null");
    i18n_is("{\"en\":\"ok\\n\"}", LANG_EN, "\"ok\\n\"");
    /* other shapes go through jansson and give the same answers */
    i18n_is("{\"\\u0065n\":\"escaped key\"}", LANG_EN, "\"escaped key\"");
    i18n_is("{\"en\":1,\"tr\":\"bir\"}", LANG_EN, "\"bir\"");
    i18n_is("{\"en\":\"x\"", LANG_EN, "null");     /* truncated */
    i18n_is("{\"en\":\"x\"} y", LANG_EN, "null");  /* trailing bytes */
    i18n_is("{\"en\":\"a\\q\"}", LANG_EN, "null"); /* bad escape */
    i18n_is("[\"en\"]", LANG_EN, "null");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expr_golden),     cmocka_unit_test(test_expr_args),
        cmocka_unit_test(test_expr_errors),     cmocka_unit_test(test_bracket),
        cmocka_unit_test(test_sort),            cmocka_unit_test(test_args_bound),
        cmocka_unit_test(test_i18n_pick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
