/*
 * test_users.c — unit tests for the pure pieces of src/modules/users (the
 * identity module): email and phone validation, the access policy, the
 * module's settings (its config hook), API-token hashing, and
 * identity_create_user's input checks on a migrated in-memory SQLite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <cmocka.h>
#include <sodium.h>

#include "auth/crypto.h"
#include "db/db.h"
#include "db/migrate.h"
#include "modules/users/users_internal.h"

#include "core/banned.h"

static void t_email(void **state)
{
    struct buf out = BUF_INIT(320);
    UNUSED(state);
    assert_int_equal(identity_normalize_email(STRLIT("  Ada@Example.COM\t"), &out), 0);
    assert_int_equal(strcasecmp(buf_cstr(&out), "ada@example.com"), 0); /* trimmed */
    assert_non_null(strstr(buf_cstr(&out), "@example.com"));            /* the domain is lower-cased */
    static const char *const bad[] = {
        "", "   ", "ada", "@example.com", "ada@", "ada@example", "ada@.example.com", "ada@example.com.",
        "a b@example.com", "ada@exa@mple.com", "\"ada\"@example.com", "ada@example.com\r\nBcc: x@y.z",
        "ada<x>@example.com", "adä@example.com",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        buf_reset(&out);
        if (identity_normalize_email(str_c(bad[i]), &out) == 0)
            fail_msg("accepted %s", bad[i]);
    }
    /* lengths: local part up to 64, the whole address up to 254 */
    struct buf a = BUF_INIT(512);
    for (int i = 0; i < 64; i++)
        (void)buf_putc(&a, 'l');
    (void)buf_puts(&a, "@example.com");
    buf_reset(&out);
    assert_int_equal(identity_normalize_email(buf_str(&a), &out), 0);
    buf_reset(&a);
    for (int i = 0; i < 65; i++)
        (void)buf_putc(&a, 'l');
    (void)buf_puts(&a, "@example.com");
    assert_int_equal(identity_normalize_email(buf_str(&a), &out), -1);
    buf_reset(&a);
    (void)buf_puts(&a, "adam@");
    while (a.len < 251)
        (void)buf_puts(&a, "d.");
    (void)buf_puts(&a, "com"); /* 254 bytes */
    buf_reset(&out);
    assert_int_equal(a.len, 254);
    assert_int_equal(identity_normalize_email(buf_str(&a), &out), 0);
    (void)buf_putc(&a, 'm');
    assert_int_equal(identity_normalize_email(buf_str(&a), &out), -1);
    buf_free(&a);
    buf_free(&out);
}

static void t_phone(void **state)
{
    UNUSED(state);
    assert_true(users__phone_ok(STRLIT("+905551234567")));
    assert_true(users__phone_ok(STRLIT("+15550001")));          /* 8 digits */
    assert_true(users__phone_ok(STRLIT("+123456789012345")));   /* 15 digits */
    assert_false(users__phone_ok(STRLIT("+1555000")));          /* 7 */
    assert_false(users__phone_ok(STRLIT("+1234567890123456"))); /* 16 */
    assert_false(users__phone_ok(STRLIT("905551234567")));
    assert_false(users__phone_ok(STRLIT("+05551234567")));
    assert_false(users__phone_ok(STRLIT("+90 555 123 45")));
    assert_false(users__phone_ok(STR_NULL));
}

static void t_access(void **state)
{
    UNUSED(state);
    str_t owner = STRLIT("u-1"), other = STRLIT("u-2");
    struct req me = {.user_id = owner, .role = STRLIT("user")};
    struct req mod = {.user_id = other, .role = STRLIT("moderator")};
    struct req admin = {.user_id = other, .role = STRLIT("admin")};
    struct req anon = {.role = STR_NULL};
    for (int rule = ACCESS_OWNER; rule <= ACCESS_OWNER_OR_ADMIN; rule++) {
        assert_true(identity_can_access(&me, owner, (enum access_rule)rule));
        assert_false(identity_can_access(&anon, owner, (enum access_rule)rule));
        assert_false(identity_can_access(&me, other, (enum access_rule)rule) && rule == ACCESS_OWNER);
    }
    assert_false(identity_can_access(&mod, owner, ACCESS_OWNER));
    assert_true(identity_can_access(&mod, owner, ACCESS_OWNER_OR_STAFF));
    assert_false(identity_can_access(&mod, owner, ACCESS_OWNER_OR_ADMIN));
    assert_false(identity_can_access(&admin, owner, ACCESS_OWNER));
    assert_true(identity_can_access(&admin, owner, ACCESS_OWNER_OR_STAFF));
    assert_true(identity_can_access(&admin, owner, ACCESS_OWNER_OR_ADMIN));
    assert_false(identity_can_access(&me, other, ACCESS_OWNER_OR_STAFF));
    /* an empty caller never owns an empty owner id */
    assert_false(identity_can_access(&anon, STR_NULL, ACCESS_OWNER));
}

static const char *const config_vars[] = {"TEMEL_JWT_SECRET",   "TEMEL_ACCESS_TTL_S",   "TEMEL_REFRESH_TTL_S",
                                          "TEMEL_REFRESH_REUSE_GRACE_MS", "TEMEL_ADMIN_EMAIL", "TEMEL_ADMIN_PASSWORD"};

static void clear_env(void)
{
    for (size_t i = 0; i < ARRAY_LEN(config_vars); i++)
        unsetenv(config_vars[i]);
}

/* The config hook fails and names `var`. */
static void config_fails(const struct config *core, const char *var)
{
    struct buf err = BUF_INIT(512);
    assert_int_equal(users__config(core, &err), -1);
    if (strncmp(buf_cstr(&err), var, strlen(var)) != 0)
        fail_msg("error '%s' does not name %s", buf_cstr(&err), var);
    buf_free(&err);
}

static void t_config(void **state)
{
    struct config core = {.env = ENV_TEST};
    struct buf err = BUF_INIT(512);
    UNUSED(state);
    clear_env();
    assert_int_equal(users__config(&core, &err), 0);
    assert_null(users__cfg()->jwt_secret);
    assert_int_equal(users__cfg()->access_ttl_s, 900);
    assert_int_equal(users__cfg()->refresh_ttl_s, 7 * 86400);
    assert_int_equal(users__cfg()->refresh_grace_ms, 10000);

    core.env = ENV_PRODUCTION;
    config_fails(&core, "TEMEL_JWT_SECRET"); /* required in production */
    setenv("TEMEL_JWT_SECRET", "too short", 1);
    config_fails(&core, "TEMEL_JWT_SECRET");
    setenv("TEMEL_JWT_SECRET", "0123456789abcdef0123456789abcdef", 1);
    assert_int_equal(users__config(&core, &err), 0);
    assert_string_equal(users__cfg()->jwt_secret, "0123456789abcdef0123456789abcdef");

    static const struct {
        const char *var, *val;
    } bad[] = {
        {"TEMEL_ACCESS_TTL_S", "29"},           {"TEMEL_ACCESS_TTL_S", "86401"}, {"TEMEL_ACCESS_TTL_S", "1e3"},
        {"TEMEL_REFRESH_TTL_S", "59"},          {"TEMEL_REFRESH_TTL_S", "-1"},
        {"TEMEL_REFRESH_REUSE_GRACE_MS", "60001"}, {"TEMEL_ADMIN_EMAIL", "root@example.com"},
        {"TEMEL_ADMIN_PASSWORD", "a strong admin password"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        setenv(bad[i].var, bad[i].val, 1);
        /* an admin email without a password names the missing one */
        config_fails(&core, !strcmp(bad[i].var, "TEMEL_ADMIN_EMAIL")      ? "TEMEL_ADMIN_PASSWORD"
                            : !strcmp(bad[i].var, "TEMEL_ADMIN_PASSWORD") ? "TEMEL_ADMIN_EMAIL"
                                                                          : bad[i].var);
        unsetenv(bad[i].var);
    }
    setenv("TEMEL_ACCESS_TTL_S", "30", 1);
    setenv("TEMEL_ADMIN_EMAIL", "root@example.com", 1);
    setenv("TEMEL_ADMIN_PASSWORD", "a strong admin password", 1);
    assert_int_equal(users__config(&core, &err), 0);
    assert_int_equal(users__cfg()->access_ttl_s, 30);
    assert_string_equal(users__cfg()->admin_email, "root@example.com");
    clear_env();
    buf_free(&err);
}

/* API keys and refresh tokens are stored as their SHA-256, never as text. */
static void t_token_hashing(void **state)
{
    struct buf a = BUF_INIT(128), b = BUF_INIT(128);
    char ha[65], hb[65], again[65];
    UNUSED(state);
    token_random(&a, "tml_", 32);
    token_random(&b, "tml_", 32);
    assert_true(str_has_prefix(buf_str(&a), STRLIT("tml_")));
    assert_true(a.len > 4 + 32);
    assert_false(str_eq(buf_str(&a), buf_str(&b)));
    sha256_hex(buf_str(&a), ha);
    sha256_hex(buf_str(&b), hb);
    sha256_hex(buf_str(&a), again);
    assert_string_equal(ha, again);
    assert_string_not_equal(ha, hb);
    assert_int_equal(strlen(ha), 64);
    assert_null(strstr(ha, buf_cstr(&a) + 4));
    buf_free(&a);
    buf_free(&b);
}

static void t_create_user(void **state)
{
    struct buf err = BUF_INIT(512), out = BUF_INIT(1u << 20);
    UNUSED(state);
    struct db *db = db_open("sqlite://:memory:", NULL, &err);
    assert_non_null(db);
    assert_int_equal(migrate_up(db, 0, &out), DB_OK);
    assert_int_equal(identity_create_user(db, "not an email", "a strong password 1", "A", "user", &err), 1);
    assert_non_null(strstr(buf_cstr(&err), "email"));
    buf_reset(&err);
    assert_int_equal(identity_create_user(db, "ada@example.com", "short", "A", "user", &err), 1);
    assert_non_null(strstr(buf_cstr(&err), "password"));
    buf_reset(&err);
    assert_int_equal(identity_create_user(db, "ada@example.com", "a strong password 1", "A", "root", &err), 1);
    assert_non_null(strstr(buf_cstr(&err), "role"));
    buf_reset(&err);
    assert_int_equal(identity_create_user(db, "ada@example.com", "a strong password 1", "Ada", "admin", &err), 0);
    struct db_res *res;
    assert_int_equal(db_query(db, "SELECT password_hash, role FROM users WHERE email = 'ada@example.com'", NULL, 0,
                              &res),
                     DB_OK);
    assert_int_equal(db_next(res), 1);
    assert_true(str_has_prefix(db_text(res, 0), STRLIT("$argon2id$")));
    assert_true(str_is(db_text(res, 1), "admin"));
    db_res_free(res);
    buf_reset(&err);
    assert_int_equal(identity_create_user(db, "ada@example.com", "another password 2", "Ada", "user", &err),
                     DB_ECONSTRAINT);
    db_close(db);
    buf_free(&err);
    buf_free(&out);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_email),  cmocka_unit_test(t_phone),         cmocka_unit_test(t_access),
        cmocka_unit_test(t_config), cmocka_unit_test(t_token_hashing), cmocka_unit_test(t_create_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
