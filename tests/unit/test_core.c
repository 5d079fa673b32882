/* Unit tests for src/core: buf, JSON writer/reader, config, UUIDv7, time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/json.h"
#include "core/timeutil.h"
#include "core/uuid.h"

static void t_buf_cap_is_sticky(void **state)
{
    (void)state;
    struct buf b = BUF_INIT(8);
    assert_int_equal(buf_puts(&b, "12345"), BUF_OK);
    assert_int_equal(buf_puts(&b, "6789"), BUF_ETOOBIG); /* 9 > 8 */
    assert_false(buf_ok(&b));
    assert_string_equal(buf_cstr(&b), "12345");          /* unchanged */
    assert_int_equal(buf_putc(&b, 'x'), BUF_ETOOBIG);    /* sticky */
    buf_reset(&b);
    assert_true(buf_ok(&b));
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "ab"), BUF_OK);
    assert_string_equal(buf_cstr(&b), "42-ab");
    assert_int_equal(buf_put_i64(&b, INT64_MIN), BUF_ETOOBIG);
    buf_free(&b);
    struct buf c = BUF_INIT(64);
    assert_int_equal(buf_put_i64(&c, INT64_MIN), BUF_OK);
    assert_string_equal(buf_cstr(&c), "-9223372036854775808");
    buf_free(&c);
}

static void t_parse_i64(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(parse_i64(STRLIT("42"), 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(parse_i64(STRLIT("-9223372036854775808"), INT64_MIN, 0, &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(parse_i64(STRLIT("9223372036854775808"), 0, INT64_MAX, &v), -1);
    assert_int_equal(parse_i64(STRLIT("101"), 0, 100, &v), -1);
    assert_int_equal(parse_i64(STRLIT(""), 0, 100, &v), -1);
    assert_int_equal(parse_i64(STRLIT("-"), -5, 100, &v), -1);
    assert_int_equal(parse_i64(STRLIT(" 1"), 0, 100, &v), -1);
    assert_int_equal(parse_i64(STRLIT("1e3"), 0, 10000, &v), -1);
    assert_int_equal(parse_i64(STRLIT("+1"), 0, 100, &v), -1);
}

static char *write_str(str_t s)
{
    struct buf b = BUF_INIT(1024);
    struct jw w;
    jw_init(&w, &b);
    jw_str(&w, s);
    assert_true(buf_ok(&b));
    return buf_detach(&b, NULL);
}

static void t_json_escaping(void **state)
{
    (void)state;
    char *o;
    o = write_str(STRLIT("a\"b\\c\n\t\x01\x1f"));
    assert_string_equal(o, "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\"");
    free(o);
    o = write_str(STRLIT("\0x"));
    assert_string_equal(o, "\"\\u0000x\"");
    free(o);
    o = write_str(STRLIT("şğü€😀")); /* valid UTF-8 passes through */
    assert_string_equal(o, "\"şğü€😀\"");
    free(o);
    o = write_str(STRLIT("a\xff" "b\xc3")); /* invalid bytes become U+FFFD */
    assert_string_equal(o, "\"a\xEF\xBF\xBD" "b\xEF\xBF\xBD\"");
    free(o);
    o = write_str(STRLIT("\xed\xa0\x80")); /* a UTF-16 surrogate is not UTF-8 */
    assert_string_equal(o, "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
    free(o);
    o = write_str(STRLIT("\xc0\xaf")); /* overlong '/' */
    assert_string_equal(o, "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
    free(o);
    o = write_str(STRLIT("\xe2\x80\xa8")); /* U+2028 escaped for JS embedding */
    assert_string_equal(o, "\"\\u2028\"");
    free(o);
}

static void t_json_structure(void **state)
{
    (void)state;
    struct buf b = BUF_INIT(1024);
    struct jw w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_key(&w, "a");
    jw_int(&w, -5);
    jw_key(&w, "b");
    jw_arr_begin(&w);
    jw_bool(&w, true);
    jw_null(&w);
    jw_double(&w, 1.5);
    jw_obj_begin(&w);
    jw_obj_end(&w);
    jw_arr_end(&w);
    jw_key_str(&w, STRLIT("k\""));
    jw_time(&w, 0);
    jw_obj_end(&w);
    assert_string_equal(buf_cstr(&b), "{\"a\":-5,\"b\":[true,null,1.5,{}],\"k\\\"\":\"1970-01-01T00:00:00.000Z\"}");
    /* the output is valid JSON */
    json_t *v;
    assert_int_equal(json_parse_strict(buf_str(&b), &v, NULL), JSON_IN_OK);
    json_decref(v);
    buf_free(&b);
}

static void t_json_strict_input(void **state)
{
    (void)state;
    json_t *v = NULL;
    struct buf d = BUF_INIT(512);
    assert_int_equal(json_parse_strict(STRLIT("{\"a\":1}"), &v, &d), JSON_IN_OK);
    json_decref(v);
    assert_int_equal(json_parse_strict(STRLIT("{\"a\":1,\"a\":2}"), &v, &d), JSON_IN_SYNTAX);
    assert_int_equal(json_parse_strict(STRLIT("{\"a\":"), &v, &d), JSON_IN_SYNTAX);
    assert_int_equal(json_parse_strict(STRLIT("{\"a\":\"\xff\"}"), &v, &d), JSON_IN_SYNTAX);
    assert_int_equal(json_parse_strict(STRLIT("{\"a\":\"\\u0000\"}"), &v, &d), JSON_IN_SYNTAX);
    assert_int_equal(json_parse_strict(STRLIT("  "), &v, &d), JSON_IN_EMPTY);
    assert_int_equal(json_parse_strict(STRLIT("{} {}"), &v, &d), JSON_IN_SYNTAX);
    /* depth: 32 ok, 33 refused; brackets inside strings do not count */
    struct buf deep = BUF_INIT(4096);
    for (int i = 0; i < 32; i++)
        (void)buf_putc(&deep, '[');
    for (int i = 0; i < 32; i++)
        (void)buf_putc(&deep, ']');
    assert_int_equal(json_parse_strict(buf_str(&deep), &v, &d), JSON_IN_OK);
    json_decref(v);
    buf_reset(&deep);
    for (int i = 0; i < 33; i++)
        (void)buf_putc(&deep, '[');
    for (int i = 0; i < 33; i++)
        (void)buf_putc(&deep, ']');
    assert_int_equal(json_parse_strict(buf_str(&deep), &v, &d), JSON_IN_TOO_DEEP);
    assert_int_equal(json_parse_strict(STRLIT("{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}"), &v, &d), JSON_IN_OK);
    json_decref(v);
    buf_free(&deep);
    buf_free(&d);
}

static void t_json_validate(void **state)
{
    (void)state;
    static const char *const colors[] = {"red", "blue", NULL};
    static const struct json_field f[] = {
        {.name = "name", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 3},
        {.name = "n", .type = JF_INT, .min = 0, .max = 10},
        {.name = "color", .type = JF_STRING, .enum_values = colors},
        {0},
    };
    static const struct json_schema s = {.fields = f};
    struct json_verr e[JSON_VERR_MAX];
    json_t *v;
    assert_int_equal(json_parse_strict(STRLIT("{\"name\":\"şüğ\",\"n\":10,\"color\":\"red\"}"), &v, NULL), 0);
    assert_int_equal(json_validate(v, &s, e, JSON_VERR_MAX), 0); /* 3 code points, not 6 bytes */
    json_decref(v);
    assert_int_equal(json_parse_strict(STRLIT("{\"n\":11,\"x\":1,\"color\":\"green\"}"), &v, NULL), 0);
    int n = json_validate(v, &s, e, JSON_VERR_MAX);
    assert_int_equal(n, 4);
    assert_string_equal(e[0].field, "x");
    assert_string_equal(e[0].message, "is not an allowed field");
    assert_string_equal(e[1].field, "name");
    assert_string_equal(e[1].message, "is required");
    assert_string_equal(e[2].field, "n");
    assert_string_equal(e[3].field, "color");
    json_decref(v);
    assert_int_equal(json_parse_strict(STRLIT("[1]"), &v, NULL), 0);
    assert_int_equal(json_validate(v, &s, e, JSON_VERR_MAX), 1);
    json_decref(v);
    assert_int_equal(json_parse_strict(STRLIT("{\"name\":\"\"}"), &v, NULL), 0);
    assert_int_equal(json_validate(v, &s, e, JSON_VERR_MAX), 1);
    assert_string_equal(e[0].message, "must not be empty");
    json_decref(v);
    /* the error array is filled to max_errs and no further (issue 9 item 1 audit) */
    struct {
        struct json_verr e[JSON_VERR_MAX];
        struct json_verr canary;
    } g;
    for (int extra = 0; extra <= 1; extra++) {
        g.canary = (struct json_verr){"canary", "canary"};
        v = json_object();
        json_object_set_new(v, "name", json_string("ok"));
        for (int i = 0; i < JSON_VERR_MAX + extra; i++) { /* JSON_VERR_MAX (+1) unknown fields */
            char k[16];
            (void)snprintf(k, sizeof(k), "u%d", i);
            json_object_set_new(v, k, json_integer(i));
        }
        assert_int_equal(json_validate(v, &s, g.e, JSON_VERR_MAX), JSON_VERR_MAX);
        assert_string_equal(g.canary.field, "canary");
        json_decref(v);
    }
}

static void clear_env(void)
{
    const char *vars[] = {"PORT", "HOST", "DATABASE_URL", "TEMEL_ENV", "TEMEL_THREADS", "TEMEL_CORS_ORIGINS",
                          "TEMEL_TRUST_PROXY", "TEMEL_LOG_LEVEL", "TEMEL_LOG_FORMAT", "TEMEL_TLS_CERT",
                          "TEMEL_TLS_KEY", "TEMEL_REQUEST_TIMEOUT_MS", "TEMEL_RATE_LIMIT_READ", "TEMEL_METRICS_TOKEN"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

/* config_from_env with one variable set; returns the error text ("" if ok) */
static char *config_with(const char *name, const char *value)
{
    struct config c;
    struct buf err = BUF_INIT(512);
    clear_env();
    if (name)
        setenv(name, value, 1);
    int rc = config_from_env(&c, &err);
    config_free(&c);
    if (rc == 0)
        assert_int_equal(err.len, 0);
    else
        assert_true(err.len > 0);
    return buf_detach(&err, NULL);
}

static void expect_config_error(const char *name, const char *value)
{
    char *e = config_with(name, value);
    /* the message starts with the variable's name */
    assert_true(strncmp(e, name, strlen(name)) == 0);
    free(e);
}

static void t_config(void **state)
{
    (void)state;
    struct config c;
    struct buf err = BUF_INIT(512);
    clear_env();
    assert_int_equal(config_from_env(&c, &err), 0);
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.host, "127.0.0.1");
    assert_string_equal(c.database_url, "sqlite://data/temel.db");
    assert_int_equal(c.rate[RL_READ].limit, 600);
    config_free(&c);

    expect_config_error("PORT", "abc");
    expect_config_error("PORT", "0");
    expect_config_error("PORT", "70000");
    expect_config_error("TEMEL_THREADS", "0");
    expect_config_error("TEMEL_LOG_LEVEL", "loud");
    expect_config_error("TEMEL_LOG_FORMAT", "xml");
    expect_config_error("DATABASE_URL", "mysql://x");
    expect_config_error("TEMEL_CORS_ORIGINS", "*");
    expect_config_error("TEMEL_CORS_ORIGINS", "https://a.com/path");
    expect_config_error("TEMEL_RATE_LIMIT_READ", "abc");
    expect_config_error("TEMEL_RATE_LIMIT_READ", "10/0");
    expect_config_error("TEMEL_TRUST_PROXY", "maybe");
    char *e = config_with("TEMEL_TLS_CERT", "/nonexistent"); /* key missing: names the key */
    assert_true(strncmp(e, "TEMEL_TLS_KEY:", 14) == 0);
    free(e);
    expect_config_error("TEMEL_REQUEST_TIMEOUT_MS", "5");

    clear_env();
    setenv("TEMEL_CORS_ORIGINS", "https://a.example, http://localhost:3000/", 1);
    setenv("TEMEL_RATE_LIMIT_READ", "5/60", 1);
    assert_int_equal(config_from_env(&c, &err), 0);
    assert_int_equal(c.n_cors, 2);
    assert_string_equal(c.cors_origins[1], "http://localhost:3000");
    assert_int_equal(c.rate[RL_READ].limit, 5);
    assert_int_equal(c.rate[RL_READ].period_s, 60);
    config_free(&c);
    buf_free(&err);
    clear_env();
}

static void t_dotenv(void **state)
{
    (void)state;
    char path[] = "/tmp/temel-dotenv-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "# comment\nexport TEMEL_T1=one\nTEMEL_T2 = \"two words\"\n\nTEMEL_T3=keep\n";
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    setenv("TEMEL_T3", "real", 1);
    struct buf err = BUF_INIT(256);
    assert_int_equal(config_load_dotenv(path, &err), 0);
    assert_string_equal(getenv("TEMEL_T1"), "one");
    assert_string_equal(getenv("TEMEL_T2"), "two words");
    assert_string_equal(getenv("TEMEL_T3"), "real"); /* the real environment wins */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "no equals sign\n", 15), 15);
    close(fd);
    assert_int_equal(config_load_dotenv(path, &err), -1);
    assert_int_equal(config_load_dotenv("/nonexistent/.env", &err), -1 + 1); /* missing is fine */
    unlink(path);
    buf_free(&err);
}

static void t_uuid7(void **state)
{
    (void)state;
    uint8_t prev[16], cur[16];
    char s[UUID_STR_LEN + 1];
    uuid7_at(prev, 1000);
    /* same millisecond, many ids: strictly increasing */
    for (int i = 0; i < 10000; i++) {
        uuid7_at(cur, 1000);
        assert_true(memcmp(prev, cur, 16) < 0);
        assert_int_equal(cur[6] >> 4, 7);       /* version */
        assert_int_equal(cur[8] >> 6, 2);       /* variant 10 */
        memcpy(prev, cur, 16);
    }
    /* clock going backwards still increases */
    uuid7_at(cur, 10);
    assert_true(memcmp(prev, cur, 16) < 0);
    /* time order across milliseconds, and the timestamp is where it belongs */
    uuid7_at(prev, 1700000000000);
    uuid7_at(cur, 1700000000001);
    assert_true(memcmp(prev, cur, 16) < 0);
    assert_int_equal(((uint64_t)cur[0] << 40 | (uint64_t)cur[1] << 32 | (uint64_t)cur[2] << 24 |
                      (uint64_t)cur[3] << 16 | (uint64_t)cur[4] << 8 | cur[5]),
                     1700000000001ull);
    uuid_format(cur, s);
    assert_int_equal(strlen(s), 36);
    uint8_t back[16];
    assert_int_equal(uuid_parse(str_c(s), back), 0);
    assert_memory_equal(back, cur, 16);
    assert_false(uuid_valid(STRLIT("0190b5f2-0000-7000-8000-00000000000")));
    assert_false(uuid_valid(STRLIT("0190b5f2-0000-7000-8000-00000000000g")));
    assert_false(uuid_valid(STRLIT("0190b5f200000-7000-8000-00000000000")));
}

static void t_time(void **state)
{
    (void)state;
    char t[TIME_RFC3339_LEN + 1];
    int64_t ms;
    time_format_rfc3339(1795341600123, t);
    assert_string_equal(t, "2026-11-22T10:00:00.123Z");
    assert_int_equal(time_parse_rfc3339(STRLIT("2026-11-22T10:00:00.123Z"), &ms), 0);
    assert_true(ms == 1795341600123);
    assert_int_equal(time_parse_rfc3339(STRLIT("2026-11-22T13:00:00+03:00"), &ms), 0);
    assert_true(ms == 1795341600000);
    assert_int_equal(time_parse_rfc3339(STRLIT("2024-01-01"), &ms), 0);
    assert_true(ms == 1704067200000);
    assert_int_equal(time_parse_rfc3339(STRLIT("2023-02-29"), &ms), -1);
    assert_int_equal(time_parse_rfc3339(STRLIT("2024-13-01"), &ms), -1);
    assert_int_equal(time_parse_rfc3339(STRLIT("2024-01-01T25:00:00Z"), &ms), -1);
    assert_int_equal(time_parse_rfc3339(STRLIT("2024-01-01T10:00:00"), &ms), -1);
    time_format_rfc3339(-1, t);
    assert_string_equal(t, "1969-12-31T23:59:59.999Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_buf_cap_is_sticky), cmocka_unit_test(t_parse_i64),    cmocka_unit_test(t_json_escaping),
        cmocka_unit_test(t_json_structure),    cmocka_unit_test(t_json_strict_input),
        cmocka_unit_test(t_json_validate),     cmocka_unit_test(t_config),       cmocka_unit_test(t_dotenv),
        cmocka_unit_test(t_uuid7),             cmocka_unit_test(t_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
