/*
 * test_migrate.c — unit tests for src/db/migrate.c beyond test_db's
 * up/down/status round: the two dialects carry the same migrations
 * (versions, names, both directions); partial up and down move exactly N
 * steps; a full down leaves no table behind but schema_migrations (every
 * down script undoes its up), and up again rebuilds the same schema.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "db/db.h"
#include "db/migrate.h"

#include "core/banned.h"

static struct db *open_mem(void)
{
    struct buf err = BUF_INIT(BUF_MAX_SMALL);
    struct db *db = db_open("sqlite://:memory:", NULL, &err);
    if (!db)
        fail_msg("db_open: %s", buf_cstr(&err));
    buf_free(&err);
    return db;
}

static void t_dialects_match(void **state)
{
    size_t ns, np;
    UNUSED(state);
    const struct migration *s = migrations_for(DB_SQLITE, &ns), *p = migrations_for(DB_POSTGRES, &np);
    assert_true(ns >= 1);
    assert_int_equal(ns, np);
    for (size_t i = 0; i < ns; i++) {
        /* increasing from 1; gaps are allowed (helpers land reserved numbers in any order) */
        assert_true(i == 0 ? s[i].version == 1 : s[i].version > s[i - 1].version);
        assert_int_equal(p[i].version, s[i].version);
        assert_string_equal(p[i].name, s[i].name);
        assert_true(s[i].up && *s[i].up && s[i].down && *s[i].down);
        assert_true(p[i].up && *p[i].up && p[i].down && *p[i].down);
    }
}

static void expect(struct db *db, int version, int pending)
{
    int v = -1, p = -1;
    assert_int_equal(migrate_current(db, &v, &p), DB_OK);
    assert_int_equal(v, version);
    assert_int_equal(p, pending);
}

/* Names of the schema's tables, indexes and triggers, sorted, one per line. */
static void schema_of(struct db *db, struct buf *out)
{
    struct db_res *res;
    buf_reset(out);
    assert_int_equal(db_query(db,
                              "SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                              "ORDER BY type, name",
                              DB_NOARGS, &res),
                     DB_OK);
    while (db_next(res) == 1) {
        (void)buf_put(out, db_text(res, 0));
        (void)buf_putc(out, '\n');
    }
    db_res_free(res);
}

static void t_steps_and_full_round(void **state)
{
    struct buf out = BUF_INIT(1u << 20), first = BUF_INIT(1u << 20), again = BUF_INIT(1u << 20);
    size_t n;
    UNUSED(state);
    const struct migration *all = migrations_for(DB_SQLITE, &n);
    struct db *db = open_mem();
    int total = (int)n, last = all[n - 1].version;

    assert_int_equal(migrate_up(db, 3, &out), DB_OK);
    expect(db, 3, total - 3);
    assert_int_equal(migrate_down(db, 2, &out), DB_OK);
    expect(db, 1, total - 1);
    buf_reset(&out);
    assert_int_equal(migrate_status(db, &out), DB_OK);
    assert_non_null(strstr(buf_cstr(&out), "0001 init applied"));
    assert_non_null(strstr(buf_cstr(&out), "0002 "));
    assert_null(strstr(buf_cstr(&out), "0002 jobs applied"));

    assert_int_equal(migrate_up(db, 0, &out), DB_OK);
    expect(db, last, 0);
    schema_of(db, &first);

    assert_int_equal(migrate_down(db, total, &out), DB_OK);
    expect(db, 0, total);
    schema_of(db, &again);
    /* everything the ups created is gone; only the migrations' own table stays */
    struct buf left = BUF_INIT(4096);
    for (const char *l = buf_cstr(&again), *e; (e = strchr(l, '\n')); l = e + 1) {
        str_t line = str_make(l, (size_t)(e - l));
        if (!memmem(line.p, line.len, "schema_migrations", 17))
            (void)buf_append(&left, l, line.len + 1);
    }
    if (left.len)
        fail_msg("left after a full migrate down:\n%s", buf_cstr(&left));

    assert_int_equal(migrate_up(db, 0, &out), DB_OK);
    schema_of(db, &again);
    assert_string_equal(buf_cstr(&again), buf_cstr(&first));
    db_close(db);
    buf_free(&left);
    buf_free(&out);
    buf_free(&first);
    buf_free(&again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_dialects_match),
        cmocka_unit_test(t_steps_and_full_round),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
