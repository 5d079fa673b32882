/*
 * test_db.c — unit tests for src/db (db.h, migrate.h) on SQLite, and on
 * PostgreSQL when DATABASE_URL_PG is set (skipped otherwise):
 *
 *   eval "$(scripts/pgtmp.sh start)"
 *   DATABASE_URL_PG=$DATABASE_URL meson test -C build test_db
 *   scripts/pgtmp.sh stop "$PGTMP_DIR"
 *
 * Includes db_internal.h to look at the statement cache and the
 * placeholder rewrite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/timeutil.h"
#include "db/db_internal.h"
#include "db/migrate.h"

#include "core/banned.h"

/* ---- helpers ---------------------------------------------------------------- */

struct tmpdb {
    char dir[64];
    struct buf url;
    struct buf path;
};

static void tmpdb_init(struct tmpdb *t)
{
    ASSERT(str_copy(t->dir, "/tmp/temel-test-db-XXXXXX", sizeof(t->dir)) > 0);
    ASSERT(mkdtemp(t->dir) != NULL);
    buf_init(&t->url, BUF_MAX_SMALL);
    buf_init(&t->path, BUF_MAX_SMALL);
    assert_int_equal(buf_printf(&t->path, "%s/sub/t.db", t->dir), 0);
    assert_int_equal(buf_printf(&t->url, "sqlite://%s", buf_cstr(&t->path)), 0);
}

static void tmpdb_release(struct tmpdb *t)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    struct buf p = BUF_INIT(BUF_MAX_SMALL);
    for (size_t i = 0; i < ARRAY_LEN(suffix); i++) {
        buf_reset(&p);
        assert_int_equal(buf_printf(&p, "%s%s", buf_cstr(&t->path), suffix[i]), 0);
        unlink(buf_cstr(&p));
    }
    buf_reset(&p);
    assert_int_equal(buf_printf(&p, "%s/sub", t->dir), 0);
    rmdir(buf_cstr(&p));
    rmdir(t->dir);
    buf_free(&p);
    buf_free(&t->url);
    buf_free(&t->path);
}

static struct db *open_ok(const char *url, int busy_ms)
{
    struct buf err = BUF_INIT(BUF_MAX_SMALL);
    struct db_options opt = {.busy_timeout_ms = busy_ms};
    struct db *db = db_open(url, &opt, &err);
    if (!db)
        fail_msg("db_open(%s): %s", url, buf_cstr(&err));
    buf_free(&err);
    return db;
}

static const char *pg_url(void) { return getenv("DATABASE_URL_PG"); }

static struct db *open_pg_or_skip(void)
{
    const char *u = pg_url();
    if (!u || !*u)
        skip();
    return open_ok(u, 0);
}

#define EXEC_OK(db, sql)                                                                                               \
    do {                                                                                                               \
        int rc_ = db_exec_script((db), (sql));                                                                         \
        if (rc_)                                                                                                       \
            fail_msg("%s -> %d %s", (sql), rc_, db_errmsg(db));                                                        \
    } while (0)

static int64_t qint(struct db *db, const char *sql)
{
    int64_t v;
    bool found;
    int rc = db_query_int(db, sql, DB_NOARGS, &v, &found);
    if (rc)
        fail_msg("%s -> %d %s", sql, rc, db_errmsg(db));
    assert_true(found);
    return v;
}

/* ---- placeholder rewrite ------------------------------------------------------ */

static void check_rewrite(const char *in, const char *want, int want_n)
{
    struct buf out = BUF_INIT(BUF_MAX_SQL);
    int n = -1;
    assert_int_equal(db__pg_rewrite(in, &out, &n), 0);
    assert_string_equal(buf_cstr(&out), want);
    assert_int_equal(n, want_n);
    buf_free(&out);
}

static void test_rewrite(void **state)
{
    UNUSED(state);
    check_rewrite("SELECT 1", "SELECT 1", 0);
    check_rewrite("", "", 0);
    check_rewrite("SELECT ?, ?", "SELECT $1, $2", 2);
    check_rewrite("?", "$1", 1);
    check_rewrite("a=?AND b=?", "a=$1AND b=$2", 2);
    check_rewrite("SELECT '?', ?", "SELECT '?', $1", 1);
    check_rewrite("SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1", 1);
    check_rewrite("SELECT E'\\'?', ?", "SELECT E'\\'?', $1", 1);
    check_rewrite("SELECT '\\', ?", "SELECT '\\', $1", 1); /* standard string: \ is plain */
    check_rewrite("SELECT \"a?\"\"b?\" FROM t WHERE x = ?", "SELECT \"a?\"\"b?\" FROM t WHERE x = $1", 1);
    check_rewrite("SELECT ? -- what?\n, ?", "SELECT $1 -- what?\n, $2", 2);
    check_rewrite("SELECT ? -- trailing?", "SELECT $1 -- trailing?", 1);
    check_rewrite("SELECT /* ? /* nested ? */ still ? */ ?", "SELECT /* ? /* nested ? */ still ? */ $1", 1);
    check_rewrite("SELECT $$ ? $$, ?", "SELECT $$ ? $$, $1", 1);
    check_rewrite("SELECT $tag$ ? $x$ ? $tag$, ?", "SELECT $tag$ ? $x$ ? $tag$, $1", 1);
    check_rewrite("SELECT 1/2, ?-?", "SELECT 1/2, $1-$2", 2);
    check_rewrite("SELECT 'unterminated ?", "SELECT 'unterminated ?", 0);
    check_rewrite("SELECT ?::int, a$b", "SELECT $1::int, a$b", 1);
}

/* ---- sqlite basics ------------------------------------------------------------ */

static void test_sqlite_types(void **state)
{
    struct db *db = open_ok("sqlite://:memory:", 0);
    struct db_res *r;
    int64_t changes = -1;
    static const char blob[] = {'a', '\0', 'b', (char)0xff};
    UNUSED(state);

    assert_int_equal(db_kind(db), DB_SQLITE);
    assert_string_equal(db_pick(db, "s", "p"), "s");
    EXEC_OK(db, "CREATE TABLE t (i INTEGER, d REAL, s TEXT, b BLOB, f INTEGER); CREATE TABLE u (x);");
    assert_int_equal(db_exec(db, "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                             DB_ARGS(DBA_INT(INT64_MAX), DBA_DOUBLE(2.5), DBA_CSTR("héllo"),
                                     DBA_BLOB(blob, sizeof(blob)), DBA_BOOL(1)),
                             &changes),
                     DB_OK);
    assert_int_equal(changes, 1);
    assert_int_equal(db_exec(db, "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                             DB_ARGS(DBA_NULL, DBA_NULL, DBA_TEXT(STR_NULL), DBA_NULL, DBA_BOOL(0)), NULL),
                     DB_OK);

    assert_int_equal(db_query(db, "SELECT i, d, s, b, f FROM t ORDER BY rowid", DB_NOARGS, &r), DB_OK);
    assert_int_equal(db_ncols(r), 5);
    assert_int_equal(db_next(r), 1);
    assert_true(db_int(r, 0) == INT64_MAX);
    assert_true(db_double(r, 1) == 2.5);
    assert_true(str_is(db_text(r, 2), "héllo"));
    {
        str_t b = db_text(r, 3);
        assert_int_equal(b.len, sizeof(blob));
        assert_memory_equal(b.p, blob, sizeof(blob));
        assert_int_equal(b.p[b.len], '\0');
    }
    assert_int_equal(db_int(r, 4), 1);
    assert_false(db_isnull(r, 0));
    assert_int_equal(db_next(r), 1);
    assert_true(db_isnull(r, 0));
    assert_int_equal(db_int(r, 0), 0);
    assert_true(db_double(r, 1) == 0.0);
    assert_false(db_isnull(r, 2)); /* empty text is not NULL */
    assert_int_equal(db_text(r, 2).len, 0);
    assert_true(db_isnull(r, 3));
    assert_int_equal(db_text(r, 3).len, 0);
    assert_string_equal(db_text(r, 3).p, "");
    assert_int_equal(db_int(r, 4), 0);
    assert_int_equal(db_next(r), 0);
    assert_int_equal(db_next(r), 0); /* stays done */
    db_res_free(r);

    /* no rows */
    assert_int_equal(db_query(db, "SELECT i FROM t WHERE i = ?", DB_ARGS(DBA_INT(42)), &r), DB_OK);
    assert_int_equal(db_next(r), 0);
    db_res_free(r);
    {
        int64_t v = 99;
        bool found = true;
        assert_int_equal(db_query_int(db, "SELECT i FROM t WHERE i = ?", DB_ARGS(DBA_INT(42)), &v, &found), DB_OK);
        assert_false(found);
        assert_int_equal(v, 0);
    }
    /* changes counts rows */
    assert_int_equal(db_exec(db, "UPDATE t SET f = 7", DB_NOARGS, &changes), DB_OK);
    assert_int_equal(changes, 2);

    /* errors: syntax, wrong parameter count, two statements in db_exec */
    assert_int_equal(db_exec(db, "SELEC 1", DB_NOARGS, NULL), DB_ERR);
    assert_non_null(strstr(db_errmsg(db), "syntax"));
    assert_int_equal(db_exec(db, "SELECT ?", DB_NOARGS, NULL), DB_ERR);
    assert_int_equal(db_exec(db, "SELECT 1; SELECT 2", DB_NOARGS, NULL), DB_ERR);
    assert_int_equal(db_exec(db, "SELECT 1;  ", DB_NOARGS, NULL), DB_OK);

    {
        int64_t us = -1;
        assert_int_equal(db_ping(db, &us), DB_OK);
        assert_true(us >= 0);
    }
    assert_true(db_stats(db)->queries >= 8);
    assert_true(db_stats(db)->errors >= 3);
    {
        uint64_t sum = 0;
        for (size_t i = 0; i < ARRAY_LEN(db_stats(db)->latency_buckets); i++)
            sum += db_stats(db)->latency_buckets[i];
        assert_true(sum == db_stats(db)->queries);
    }
    db_close(db);
}

static void test_sqlite_open(void **state)
{
    struct tmpdb t;
    struct buf err = BUF_INIT(BUF_MAX_SMALL);
    struct db *db;
    UNUSED(state);

    assert_null(db_open("mysql://x", NULL, &err));
    assert_non_null(strstr(buf_cstr(&err), "scheme"));
    buf_reset(&err);
    assert_null(db_open("postgres://nobody:s3cr3tpw@127.0.0.1:1/none", NULL, &err));
    assert_true(err.len > 0);
    assert_null(strstr(buf_cstr(&err), "s3cr3tpw"));
    buf_free(&err);

    tmpdb_init(&t);
    db = open_ok(buf_cstr(&t.url), 0); /* creates the sub/ directory */
    assert_int_equal(access(buf_cstr(&t.path), F_OK), 0);
    {
        struct db_res *r;
        assert_int_equal(db_query(db, "PRAGMA journal_mode", DB_NOARGS, &r), DB_OK);
        assert_int_equal(db_next(r), 1);
        assert_true(str_is(db_text(r, 0), "wal"));
        db_res_free(r);
    }
    assert_int_equal(qint(db, "PRAGMA foreign_keys"), 1);
    assert_int_equal(qint(db, "PRAGMA synchronous"), 1); /* NORMAL */
    db_close(db);
    tmpdb_release(&t);
}

/* ---- statement cache ---------------------------------------------------------- */

static void check_cache_reuse(struct db *db)
{
    const char *sql = "SELECT ? + 1";
    size_t n0;
    int64_t v;

    assert_int_equal(db_query_int(db, sql, DB_ARGS(DBA_INT(1)), &v, NULL), DB_OK);
    assert_int_equal(v, 2);
    n0 = db->cache.n;
    assert_non_null(db__cache_get(&db->cache, sql, strlen(sql)));
    for (int i = 0; i < 100; i++) {
        assert_int_equal(db_query_int(db, sql, DB_ARGS(DBA_INT(i)), &v, NULL), DB_OK);
        assert_int_equal(v, i + 1);
    }
    assert_int_equal(db->cache.n, n0);

    /* nested: the same SQL while a result is open */
    {
        const char *q = "SELECT x FROM (SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 3) s WHERE x >= ? ORDER BY x";
        struct db_res *a, *b;
        size_t n1;
        assert_int_equal(db_query(db, q, DB_ARGS(DBA_INT(1)), &a), DB_OK);
        n1 = db->cache.n;
        assert_int_equal(db_next(a), 1);
        assert_int_equal(db_int(a, 0), 1);
        assert_int_equal(db_query(db, q, DB_ARGS(DBA_INT(2)), &b), DB_OK);
        assert_int_equal(db->cache.n, n1);
        assert_int_equal(db_next(b), 1);
        assert_int_equal(db_int(b, 0), 2);
        assert_int_equal(db_next(a), 1);
        assert_int_equal(db_int(a, 0), 2);
        assert_int_equal(db_next(b), 1);
        assert_int_equal(db_int(b, 0), 3);
        assert_int_equal(db_next(b), 0);
        db_res_free(b);
        assert_int_equal(db_next(a), 1);
        assert_int_equal(db_int(a, 0), 3);
        assert_int_equal(db_next(a), 0);
        db_res_free(a);
        /* the cached statement is usable again */
        assert_int_equal(db_query(db, q, DB_ARGS(DBA_INT(3)), &a), DB_OK);
        assert_int_equal(db_next(a), 1);
        assert_int_equal(db_int(a, 0), 3);
        db_res_free(a);
        assert_int_equal(db->cache.n, n1);
    }
}

static void test_sqlite_cache(void **state)
{
    struct db *db = open_ok("sqlite://:memory:", 0);
    UNUSED(state);
    check_cache_reuse(db);
    db_close(db);
}

/* ---- transactions ------------------------------------------------------------- */

struct tx_arg {
    int calls;
    int ret;
    struct db *other; /* holds the write lock; released after the first failure */
};

static int tx_insert(struct db *db, void *p)
{
    struct tx_arg *a = p;
    int rc;
    a->calls++;
    assert_true(db_in_tx(db));
    rc = db_exec(db, "INSERT INTO t (v) VALUES (?)", DB_ARGS(DBA_INT(a->calls)), NULL);
    if (rc == DB_EBUSY && a->other) {
        EXEC_OK(a->other, "COMMIT");
        a->other = NULL;
    }
    return rc ? rc : a->ret;
}

static void check_tx_commit_rollback(struct db *db)
{
    struct tx_arg a = {0};
    assert_int_equal(db_tx(db, DB_TX_WRITE, tx_insert, &a), 0);
    assert_false(db_in_tx(db));
    assert_int_equal(qint(db, "SELECT count(*) FROM t"), 1);
    a = (struct tx_arg){.ret = 7};
    assert_int_equal(db_tx(db, DB_TX_SERIALIZABLE, tx_insert, &a), 7);
    assert_int_equal(a.calls, 1);
    assert_false(db_in_tx(db));
    assert_int_equal(qint(db, "SELECT count(*) FROM t"), 1);
    a = (struct tx_arg){.ret = 0};
    assert_int_equal(db_tx(db, DB_TX_READ, tx_insert, &a), 0);
    assert_int_equal(qint(db, "SELECT count(*) FROM t"), 2);
}

static void test_sqlite_tx(void **state)
{
    struct tmpdb t;
    struct db *a, *b;
    struct tx_arg arg;
    int64_t t0;
    UNUSED(state);

    tmpdb_init(&t);
    a = open_ok(buf_cstr(&t.url), 0);
    b = open_ok(buf_cstr(&t.url), 1); /* 1 ms busy timeout: fail fast */
    EXEC_OK(a, "CREATE TABLE t (v INTEGER)");
    check_tx_commit_rollback(a);

    /* b's write hits a's write lock; fn releases it, the retry succeeds */
    EXEC_OK(a, "BEGIN IMMEDIATE; INSERT INTO t (v) VALUES (100)");
    arg = (struct tx_arg){.other = a};
    assert_int_equal(db_tx(b, DB_TX_READ, tx_insert, &arg), 0);
    assert_int_equal(arg.calls, 2);
    assert_int_equal(qint(b, "SELECT count(*) FROM t"), 4);

    /* BEGIN IMMEDIATE itself busy while a holds the lock: retried, then gives up */
    EXEC_OK(a, "BEGIN IMMEDIATE; INSERT INTO t (v) VALUES (101)");
    arg = (struct tx_arg){0};
    t0 = time_mono_ms();
    assert_int_equal(db_tx(b, DB_TX_WRITE, tx_insert, &arg), DB_EBUSY);
    assert_int_equal(arg.calls, 0);
    assert_true(time_mono_ms() - t0 < 2000);
    /* same with the busy error coming from fn: fn ran 8 times */
    arg = (struct tx_arg){0};
    assert_int_equal(db_tx(b, DB_TX_READ, tx_insert, &arg), DB_EBUSY);
    assert_int_equal(arg.calls, 8);
    assert_false(db_in_tx(b));
    /* a long busy timeout still ends at the deadline */
    {
        struct db *c = open_ok(buf_cstr(&t.url), 60000);
        t0 = time_mono_ms();
        db_set_deadline(c, t0 + 200);
        arg = (struct tx_arg){0};
        assert_int_equal(db_tx(c, DB_TX_WRITE, tx_insert, &arg), DB_ETIMEOUT);
        assert_true(time_mono_ms() - t0 < 2000);
        db_close(c);
    }
    EXEC_OK(a, "ROLLBACK");
    assert_int_equal(qint(b, "SELECT count(*) FROM t"), 4);

    db_close(b);
    db_close(a);
    tmpdb_release(&t);
}

static int tx_inner(struct db *db, void *p)
{
    int *fail = p;
    if (db_exec(db, "INSERT INTO t_join (v) VALUES (2)", DB_NOARGS, NULL) != DB_OK)
        return DB_ERR;
    return *fail;
}

static int tx_outer(struct db *db, void *p)
{
    int rc;
    if (db_exec(db, "INSERT INTO t_join (v) VALUES (1)", DB_NOARGS, NULL) != DB_OK)
        return DB_ERR;
    /* a db_tx inside a transaction joins it: no BEGIN, no commit of its own */
    rc = db_tx(db, DB_TX_WRITE, tx_inner, p);
    assert_true(db_in_tx(db));
    return rc;
}

static void test_sqlite_tx_nested_joins(void **state)
{
    struct db *db = open_ok("sqlite://:memory:", 0);
    int fail = 0;
    int64_t n = 0;
    bool found;
    UNUSED(state);
    assert_int_equal(db_exec_script(db, "CREATE TABLE t_join (v INTEGER)"), DB_OK);
    assert_int_equal(db_tx(db, DB_TX_WRITE, tx_outer, &fail), DB_OK);
    assert_int_equal(db_query_int(db, "SELECT count(*) FROM t_join", DB_NOARGS, &n, &found), DB_OK);
    assert_int_equal(n, 2);
    /* the inner failure rolls back the whole outer transaction */
    fail = 7;
    assert_int_equal(db_tx(db, DB_TX_WRITE, tx_outer, &fail), 7);
    assert_int_equal(db_query_int(db, "SELECT count(*) FROM t_join", DB_NOARGS, &n, &found), DB_OK);
    assert_int_equal(n, 2);
    assert_false(db_in_tx(db));
    db_close(db);
}

/* ---- constraints -------------------------------------------------------------- */

static void check_constraints(struct db *db)
{
    EXEC_OK(db, "CREATE TABLE parent (id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL);"
                "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id),"
                " n INTEGER CHECK (n > 0));");
    assert_int_equal(db_exec(db, "INSERT INTO parent (id, email) VALUES (?, ?)", DB_ARGS(DBA_INT(1), DBA_CSTR("a@x")),
                             NULL),
                     DB_OK);
    assert_int_equal(db_exec(db, "INSERT INTO parent (id, email) VALUES (?, ?)", DB_ARGS(DBA_INT(2), DBA_CSTR("a@x")),
                             NULL),
                     DB_ECONSTRAINT);
    assert_int_equal(db_exec(db, "INSERT INTO parent (id, email) VALUES (?, ?)", DB_ARGS(DBA_INT(3), DBA_NULL), NULL),
                     DB_ECONSTRAINT);
    assert_int_equal(db_exec(db, "INSERT INTO child (id, parent_id, n) VALUES (?, ?, ?)",
                             DB_ARGS(DBA_INT(1), DBA_INT(99), DBA_INT(1)), NULL),
                     DB_ECONSTRAINT);
    assert_int_equal(db_exec(db, "INSERT INTO child (id, parent_id, n) VALUES (?, ?, ?)",
                             DB_ARGS(DBA_INT(1), DBA_INT(1), DBA_INT(0)), NULL),
                     DB_ECONSTRAINT);
    assert_int_equal(db_exec(db, "INSERT INTO child (id, parent_id, n) VALUES (?, ?, ?)",
                             DB_ARGS(DBA_INT(1), DBA_INT(1), DBA_INT(1)), NULL),
                     DB_OK);
    /* the connection is fine after the errors */
    assert_int_equal(qint(db, "SELECT count(*) FROM child"), 1);
}

static void test_sqlite_constraint(void **state)
{
    struct db *db = open_ok("sqlite://:memory:", 0);
    UNUSED(state);
    check_constraints(db);
    db_close(db);
}

/* ---- deadline ----------------------------------------------------------------- */

#define SLOW_SQL_SQLITE                                                                                                \
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c"

static void check_deadline(struct db *db, const char *slow)
{
    int64_t t0 = time_mono_ms(), v;
    int rc;
    db_set_deadline(db, time_mono_ms() + 100);
    rc = db_query_int(db, slow, DB_NOARGS, &v, NULL);
    assert_int_equal(rc, DB_ETIMEOUT);
    assert_true(time_mono_ms() - t0 < 3000);
    /* past deadline: fails before running */
    db_set_deadline(db, time_mono_ms() - 1);
    assert_int_equal(db_query_int(db, "SELECT 1", DB_NOARGS, &v, NULL), DB_ETIMEOUT);
    /* cleared: works again */
    db_set_deadline(db, 0);
    assert_int_equal(qint(db, "SELECT 1"), 1);
    /* a generous deadline does not disturb normal statements */
    db_set_deadline(db, time_mono_ms() + 10000);
    assert_int_equal(qint(db, "SELECT 2"), 2);
    db_set_deadline(db, 0);
}

static void test_sqlite_deadline(void **state)
{
    struct db *db = open_ok("sqlite://:memory:", 0);
    UNUSED(state);
    check_deadline(db, SLOW_SQL_SQLITE);
    db_close(db);
}

/* ---- migrations --------------------------------------------------------------- */

static void check_migrations(struct db *db)
{
    struct buf out = BUF_INIT(BUF_MAX_SMALL * 4);
    size_t n;
    const struct migration *ms = migrations_for(db_kind(db), &n);
    int version = -1, pending = -1;

    assert_true(n >= 1);
    assert_int_equal(ms[0].version, 1);
    assert_string_equal(ms[0].name, "init");
    for (size_t i = 1; i < n; i++)
        assert_true(ms[i].version > ms[i - 1].version);

    assert_int_equal(migrate_current(db, &version, &pending), DB_OK);
    assert_int_equal(version, 0);
    assert_int_equal(pending, (int)n);
    assert_int_equal(migrate_status(db, &out), DB_OK);
    assert_non_null(strstr(buf_cstr(&out), "0001 init pending\n"));

    buf_reset(&out);
    if (migrate_up(db, 1, &out) != DB_OK)
        fail_msg("migrate_up: %s", buf_cstr(&out));
    assert_non_null(strstr(buf_cstr(&out), "0001 init up"));
    assert_int_equal(migrate_current(db, &version, &pending), DB_OK);
    assert_int_equal(version, 1);
    assert_int_equal(pending, (int)n - 1);

    buf_reset(&out);
    assert_int_equal(migrate_up(db, 0, &out), DB_OK);
    assert_int_equal(migrate_current(db, &version, &pending), DB_OK);
    assert_int_equal(version, ms[n - 1].version);
    assert_int_equal(pending, 0);
    buf_reset(&out);
    assert_int_equal(migrate_up(db, 0, &out), DB_OK);
    assert_non_null(strstr(buf_cstr(&out), "no pending"));

    /* app_meta exists and stamps updated_at */
    assert_int_equal(db_exec(db, "INSERT INTO app_meta (key, value) VALUES (?, ?)",
                             DB_ARGS(DBA_CSTR("k"), DBA_CSTR("v")), NULL),
                     DB_OK);
    assert_true(qint(db, db_pick(db, "SELECT updated_at FROM app_meta",
                                 "SELECT (extract(epoch FROM updated_at) * 1000)::bigint FROM app_meta")) >
                time_now_ms() - 60000);

    buf_reset(&out);
    assert_int_equal(migrate_status(db, &out), DB_OK);
    assert_non_null(strstr(buf_cstr(&out), "0001 init applied 20"));
    assert_null(strstr(buf_cstr(&out), "pending"));

    buf_reset(&out);
    if (migrate_down(db, 0, &out) != DB_OK)
        fail_msg("migrate_down: %s", buf_cstr(&out));
    assert_non_null(strstr(buf_cstr(&out), "0001 init down"));
    assert_int_equal(migrate_current(db, &version, &pending), DB_OK);
    assert_int_equal(version, 0);
    assert_int_equal(pending, (int)n);
    assert_int_equal(db_exec(db, "SELECT * FROM app_meta", DB_NOARGS, NULL), DB_ERR); /* table gone */
    buf_reset(&out);
    assert_int_equal(migrate_down(db, 1, &out), DB_OK);
    assert_non_null(strstr(buf_cstr(&out), "nothing to roll back"));
    buf_reset(&out);
    assert_int_equal(migrate_status(db, &out), DB_OK);
    assert_non_null(strstr(buf_cstr(&out), "0001 init pending\n"));
    /* up again after down */
    buf_reset(&out);
    assert_int_equal(migrate_up(db, 0, &out), DB_OK);
    assert_int_equal(migrate_current(db, &version, &pending), DB_OK);
    assert_int_equal(pending, 0);
    buf_free(&out);
}

static void test_sqlite_migrations(void **state)
{
    struct tmpdb t;
    struct db *db;
    UNUSED(state);
    tmpdb_init(&t);
    db = open_ok(buf_cstr(&t.url), 0);
    check_migrations(db);
    db_close(db);
    tmpdb_release(&t);
}

/* ---- PostgreSQL (DATABASE_URL_PG) --------------------------------------------- */

static void test_pg_types(void **state)
{
    struct db *db = open_pg_or_skip();
    struct db_res *r;
    static const char blob[] = {'a', '\0', 'b', (char)0xff, '\\'};
    int64_t changes = -1;
    UNUSED(state);

    assert_int_equal(db_kind(db), DB_POSTGRES);
    assert_string_equal(db_pick(db, "s", "p"), "p");
    EXEC_OK(db, "DROP TABLE IF EXISTS tt; CREATE TABLE tt (i BIGINT, d DOUBLE PRECISION, s TEXT, b BYTEA, f BOOLEAN)");
    assert_int_equal(db_exec(db, "INSERT INTO tt VALUES (?, ?, ?, ?, ?)",
                             DB_ARGS(DBA_INT(INT64_MIN), DBA_DOUBLE(2.5), DBA_CSTR("it's ? héllo"),
                                     DBA_BLOB(blob, sizeof(blob)), DBA_BOOL(1)),
                             &changes),
                     DB_OK);
    assert_int_equal(changes, 1);
    assert_int_equal(db_exec(db, "INSERT INTO tt VALUES (?, ?, ?, ?, ?)",
                             DB_ARGS(DBA_NULL, DBA_NULL, DBA_TEXT(STR_NULL), DBA_NULL, DBA_BOOL(0)), NULL),
                     DB_OK);
    assert_int_equal(db_query(db, "SELECT i, d, s, b, f, '?' AS q FROM tt /* ? */ ORDER BY i NULLS LAST", DB_NOARGS,
                              &r),
                     DB_OK);
    assert_int_equal(db_ncols(r), 6);
    assert_int_equal(db_next(r), 1);
    assert_true(db_int(r, 0) == INT64_MIN);
    assert_true(db_double(r, 1) == 2.5);
    assert_true(str_is(db_text(r, 2), "it's ? héllo"));
    {
        str_t b = db_text(r, 3);
        assert_int_equal(b.len, sizeof(blob));
        assert_memory_equal(b.p, blob, sizeof(blob));
        assert_int_equal(b.p[b.len], '\0');
    }
    assert_int_equal(db_int(r, 4), 1);
    assert_true(str_is(db_text(r, 5), "?"));
    assert_int_equal(db_next(r), 1);
    assert_true(db_isnull(r, 0));
    assert_int_equal(db_int(r, 0), 0);
    assert_false(db_isnull(r, 2));
    assert_int_equal(db_text(r, 2).len, 0);
    assert_true(db_isnull(r, 3));
    assert_int_equal(db_int(r, 4), 0);
    assert_int_equal(db_next(r), 0);
    assert_int_equal(db_next(r), 0);
    db_res_free(r);

    assert_int_equal(db_exec(db, "UPDATE tt SET f = ? WHERE f = ?", DB_ARGS(DBA_BOOL(1), DBA_BOOL(0)), &changes),
                     DB_OK);
    assert_int_equal(changes, 1);
    assert_int_equal(qint(db, "SELECT count(*) FROM tt WHERE f"), 2);
    assert_int_equal(db_exec(db, "SELEC 1", DB_NOARGS, NULL), DB_ERR);
    assert_non_null(strstr(db_errmsg(db), "42601"));
    assert_int_equal(db_exec(db, "SELECT ?::int", DB_NOARGS, NULL), DB_ERR);
    {
        int64_t us;
        assert_int_equal(db_ping(db, &us), DB_OK);
    }
    EXEC_OK(db, "DROP TABLE tt");
    db_close(db);
}

static void test_pg_cache(void **state)
{
    struct db *db = open_pg_or_skip();
    UNUSED(state);
    check_cache_reuse(db);
    db_close(db);
}

static int tx_pg_serial(struct db *db, void *p)
{
    struct tx_arg *a = p;
    a->calls++;
    if (a->calls == 1) /* a serialization failure, as the server would raise it */
        return db_exec_script(db, "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$");
    return db_exec(db, "INSERT INTO t (v) VALUES (?)", DB_ARGS(DBA_INT(a->calls)), NULL);
}

static void test_pg_tx(void **state)
{
    struct db *db = open_pg_or_skip();
    struct tx_arg a = {0};
    UNUSED(state);
    EXEC_OK(db, "DROP TABLE IF EXISTS t; CREATE TABLE t (v INTEGER)");
    check_tx_commit_rollback(db);
    assert_int_equal(db_tx(db, DB_TX_SERIALIZABLE, tx_pg_serial, &a), 0);
    assert_int_equal(a.calls, 2);
    assert_int_equal(qint(db, "SELECT count(*) FROM t WHERE v = 2"), 1);
    assert_int_equal(db_exec_script(db, "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40P01'; END $$"), DB_EBUSY);
    EXEC_OK(db, "DROP TABLE t");
    db_close(db);
}

static int tx_select_star(struct db *db, void *p)
{
    struct tx_arg *a = p;
    struct db_res *r;
    int rc;
    a->calls++;
    if ((rc = db_query(db, "SELECT * FROM sp", DB_NOARGS, &r)) != DB_OK)
        return rc;
    a->ret = db_ncols(r);
    db_res_free(r);
    return 0;
}

static void test_pg_stale_plan(void **state)
{
    struct db *db = open_pg_or_skip();
    struct db_res *r;
    struct tx_arg a = {0};
    UNUSED(state);
    EXEC_OK(db, "DROP TABLE IF EXISTS sp; CREATE TABLE sp (a INTEGER); INSERT INTO sp VALUES (1)");
    assert_int_equal(db_query(db, "SELECT * FROM sp", DB_NOARGS, &r), DB_OK);
    assert_int_equal(db_ncols(r), 1);
    db_res_free(r);
    EXEC_OK(db, "ALTER TABLE sp ADD COLUMN b INTEGER");
    /* outside a transaction: prepared again and retried at once */
    assert_int_equal(db_query(db, "SELECT * FROM sp", DB_NOARGS, &r), DB_OK);
    assert_int_equal(db_ncols(r), 2);
    db_res_free(r);
    EXEC_OK(db, "ALTER TABLE sp ADD COLUMN c INTEGER");
    /* inside one: the transaction is lost, db_tx runs fn again */
    assert_int_equal(db_tx(db, DB_TX_READ, tx_select_star, &a), 0);
    assert_int_equal(a.calls, 2);
    assert_int_equal(a.ret, 3);
    EXEC_OK(db, "DROP TABLE sp");
    db_close(db);
}

static void test_pg_constraint(void **state)
{
    struct db *db = open_pg_or_skip();
    UNUSED(state);
    EXEC_OK(db, "DROP TABLE IF EXISTS child, parent");
    check_constraints(db);
    EXEC_OK(db, "DROP TABLE child, parent");
    db_close(db);
}

static void test_pg_deadline(void **state)
{
    struct db *db = open_pg_or_skip();
    UNUSED(state);
    check_deadline(db, "SELECT count(*) FROM pg_sleep(5)");
    db_close(db);
}

static void test_pg_reconnect(void **state)
{
    struct db *db = open_pg_or_skip(), *killer = open_ok(pg_url(), 0);
    int64_t pid = qint(db, "SELECT pg_backend_pid()"), ok;
    UNUSED(state);
    assert_int_equal(db_query_int(killer, "SELECT pg_terminate_backend(?::int)", DB_ARGS(DBA_INT(pid)), &ok, NULL),
                     DB_OK);
    assert_int_equal(ok, 1);
    usleep(100 * 1000);
    /* the next statement finds the connection dead, resets it and retries */
    assert_int_equal(qint(db, "SELECT pg_backend_pid()") != pid, 1);
    assert_int_equal(qint(db, "SELECT 5"), 5);
    db_close(killer);
    db_close(db);
}

static void test_pg_migrations(void **state)
{
    struct db *db = open_pg_or_skip();
    UNUSED(state);
    EXEC_OK(db, "DROP TABLE IF EXISTS app_meta, schema_migrations");
    check_migrations(db);
    EXEC_OK(db, "DROP TABLE IF EXISTS app_meta, schema_migrations");
    db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite),
        cmocka_unit_test(test_sqlite_types),
        cmocka_unit_test(test_sqlite_open),
        cmocka_unit_test(test_sqlite_cache),
        cmocka_unit_test(test_sqlite_tx),
        cmocka_unit_test(test_sqlite_tx_nested_joins),
        cmocka_unit_test(test_sqlite_constraint),
        cmocka_unit_test(test_sqlite_deadline),
        cmocka_unit_test(test_sqlite_migrations),
        cmocka_unit_test(test_pg_types),
        cmocka_unit_test(test_pg_cache),
        cmocka_unit_test(test_pg_tx),
        cmocka_unit_test(test_pg_stale_plan),
        cmocka_unit_test(test_pg_constraint),
        cmocka_unit_test(test_pg_deadline),
        cmocka_unit_test(test_pg_reconnect),
        cmocka_unit_test(test_pg_migrations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
