/*
 * test_jobs.c — unit tests for src/jobs (queue, cron) on SQLite, and on
 * PostgreSQL when DATABASE_URL_PG is set (a private database is created
 * and dropped; skipped otherwise):
 *
 *   eval "$(scripts/pgtmp.sh start)"
 *   DATABASE_URL_PG=$DATABASE_URL meson test -C build test_jobs
 *
 * Every table function takes the clock as an argument, so time moves here
 * by arithmetic: no test sleeps or measures time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/timeutil.h"
#include "db/migrate.h"
#include "jobs/jobs_internal.h"

#include "core/banned.h"

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z, a Thursday */
#define MIN 60000LL
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

/* ---- cron parsing ------------------------------------------------------------ */

static struct cron_expr parse_ok(const char *s)
{
    struct cron_expr e;
    struct buf err = BUF_INIT(256);
    if (cron_parse(s, &e, &err))
        fail_msg("cron_parse(%s): %s", s, buf_cstr(&err));
    buf_free(&err);
    return e;
}

static void test_cron_parse(void **state)
{
    UNUSED(state);
    struct cron_expr e = parse_ok("* * * * *");
    assert_true(e.minute == (1ull << 60) - 1);
    assert_int_equal(e.hour, (1u << 24) - 1);
    assert_int_equal(e.month, 0x1ffe);
    assert_int_equal(e.dow, 0x7f);
    assert_true(e.dom_star && e.dow_star);

    e = parse_ok("1,5,10 0-3 */10 1-12/3 *");
    assert_true(e.minute == ((1ull << 1) | (1ull << 5) | (1ull << 10)));
    assert_int_equal(e.hour, 0xf);
    assert_int_equal(e.dom, (1u << 1) | (1u << 11) | (1u << 21) | (1u << 31));
    assert_int_equal(e.month, (1u << 1) | (1u << 4) | (1u << 7) | (1u << 10));
    assert_true(e.dom_star); /* starts with '*': Vixie's rule counts it as a star */

    e = parse_ok("5/20 10-22/6 * * *"); /* a/step = a..max by step */
    assert_true(e.minute == ((1ull << 5) | (1ull << 25) | (1ull << 45)));
    assert_int_equal(e.hour, (1u << 10) | (1u << 16) | (1u << 22));
    e = parse_ok("0 0 * * 7"); /* 7 is Sunday */
    assert_int_equal(e.dow, 1);
    e = parse_ok("0 0 * * 0");
    assert_int_equal(e.dow, 1);
    e = parse_ok("0 0 * * 5-7");
    assert_int_equal(e.dow, (1 << 5) | (1 << 6) | 1);
    e = parse_ok("0 0 * jan,Dec mon-fri");
    assert_int_equal(e.month, (1 << 1) | (1 << 12));
    assert_int_equal(e.dow, 0x3e);
    e = parse_ok("  0   12  *  *  *  ");
    assert_int_equal(e.hour, 1u << 12);

    static const char *const bad[] = {"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *",
                                      "* * 32 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *",
                                      "a * * * *", "1,,2 * * * *", "1- * * * *", "-1 * * * *", "* * * foo *",
                                      "1000 * * * *", "*/ * * * *", "1,2, * * * *"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct cron_expr x;
        if (cron_parse(bad[i], &x, NULL) == 0)
            fail_msg("cron_parse accepted \"%s\"", bad[i]);
    }
}

static void test_cron_match_next(void **state)
{
    UNUSED(state);
    /* T0 is Thursday 2026-01-01 00:00 */
    struct cron_expr e = parse_ok("0 0 * * 4");
    assert_true(cron_matches(&e, T0));
    assert_false(cron_matches(&e, T0 + MIN));
    assert_true(cron_next(&e, T0) == T0 + 7 * DAY);

    /* dom and dow both restricted: either matches (Vixie cron) */
    e = parse_ok("0 0 13 * 5");
    assert_true(cron_next(&e, T0) == T0 + 1 * DAY);            /* Fri 2 Jan */
    assert_true(cron_next(&e, T0 + 7 * DAY) == T0 + 8 * DAY);   /* Fri 9 Jan */
    assert_true(cron_next(&e, T0 + 8 * DAY) == T0 + 12 * DAY);  /* Tue 13 Jan (dom) */
    assert_true(cron_next(&e, T0 + 12 * DAY) == T0 + 15 * DAY); /* Fri 16 Jan (dow) */
    /* dow '*': dom alone decides */
    e = parse_ok("0 0 13 * *");
    assert_true(cron_next(&e, T0) == T0 + 12 * DAY);
    /* dom '*' with dow restricted: dow alone decides */
    e = parse_ok("0 0 * * 5");
    assert_true(cron_next(&e, T0) == T0 + 1 * DAY);
    /* a starred step still counts as '*' for the day rule */
    e = parse_ok("0 0 */2 * 5");
    assert_false(cron_matches(&e, T0 + 2 * DAY)); /* Sat 3 Jan: dom yes, dow no */

    e = parse_ok("*/15 * * * *");
    assert_true(cron_next(&e, T0) == T0 + 15 * MIN);
    assert_true(cron_next(&e, T0 + 14 * MIN + 59999) == T0 + 15 * MIN);
    assert_true(cron_next(&e, T0 - 1) == T0);
    e = parse_ok("30 2 * * *");
    assert_true(cron_next(&e, T0) == T0 + 2 * HOUR + 30 * MIN);
    assert_true(cron_next(&e, T0 + 3 * HOUR) == T0 + DAY + 2 * HOUR + 30 * MIN);
    e = parse_ok("0 0 1 3 *"); /* across months */
    assert_true(cron_next(&e, T0) == 1772323200000LL); /* 2026-03-01 */
    e = parse_ok("0 0 29 2 *"); /* leap day: 2028 */
    assert_true(cron_next(&e, T0) == 1835395200000LL);
    e = parse_ok("0 0 31 2 *"); /* never */
    assert_true(cron_next(&e, T0) == -1);
    e = parse_ok("59 23 31 12 *");
    assert_true(cron_next(&e, T0) == T0 + 364 * DAY + 23 * HOUR + 59 * MIN);
}

/* ---- databases ----------------------------------------------------------------- */

struct tdb {
    struct db *db;
    char dir[64];
    char pgname[64];
    struct buf url;
};

static void migrate_or_fail(struct db *db)
{
    struct buf out = BUF_INIT(1u << 20);
    if (migrate_up(db, 0, &out) != DB_OK)
        fail_msg("migrate_up: %s\n%s", db_errmsg(db), buf_cstr(&out));
    buf_free(&out);
}

static struct db *open_url(const char *url)
{
    struct buf err = BUF_INIT(1024);
    struct db *db = db_open(url, NULL, &err);
    if (!db)
        fail_msg("db_open(%s): %s", url, buf_cstr(&err));
    buf_free(&err);
    return db;
}

/* engine 0 = SQLite file, 1 = a fresh PostgreSQL database (false: skip). */
static bool tdb_open(struct tdb *t, int engine)
{
    memset(t, 0, sizeof(*t));
    buf_init(&t->url, 1024);
    if (engine == 0) {
        ASSERT(str_copy(t->dir, "/tmp/temel-test-jobs-XXXXXX", sizeof(t->dir)) > 0);
        ASSERT(mkdtemp(t->dir) != NULL);
        (void)buf_printf(&t->url, "sqlite://%s/j.db", t->dir);
    } else {
        const char *pg = getenv("DATABASE_URL_PG");
        if (!pg || !*pg) {
            buf_free(&t->url);
            return false;
        }
        struct db *admin = open_url(pg);
        (void)buf_printf(&t->url, "%s", pg);
        char *slash = strrchr(t->url.ptr, '/');
        ASSERT(slash && slash > t->url.ptr + 12);
        t->url.len = (size_t)(slash - t->url.ptr) + 1;
        t->url.ptr[t->url.len] = '\0';
        struct buf sql = BUF_INIT(256);
        (void)buf_printf(&sql, "temel_unit_jobs_%ld", (long)getpid());
        str_copy(t->pgname, buf_cstr(&sql), sizeof(t->pgname));
        buf_reset(&sql);
        (void)buf_printf(&sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->pgname);
        if (db_exec_script(admin, buf_cstr(&sql)) != DB_OK)
            fail_msg("drop database: %s", db_errmsg(admin));
        buf_reset(&sql);
        (void)buf_printf(&sql, "CREATE DATABASE %s", t->pgname);
        if (db_exec_script(admin, buf_cstr(&sql)) != DB_OK)
            fail_msg("create database: %s", db_errmsg(admin));
        buf_free(&sql);
        db_close(admin);
        (void)buf_puts(&t->url, t->pgname);
    }
    t->db = open_url(buf_cstr(&t->url));
    migrate_or_fail(t->db);
    return true;
}

static void tdb_close(struct tdb *t)
{
    db_close(t->db);
    if (t->pgname[0]) {
        struct db *admin = open_url(getenv("DATABASE_URL_PG"));
        struct buf sql = BUF_INIT(256);
        (void)buf_printf(&sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->pgname);
        if (db_exec_script(admin, buf_cstr(&sql)) != DB_OK)
            fail_msg("drop database: %s", db_errmsg(admin));
        buf_free(&sql);
        db_close(admin);
    } else {
        static const char *const suffix[] = {"", "-wal", "-shm"};
        for (size_t i = 0; i < ARRAY_LEN(suffix); i++) {
            struct buf p = BUF_INIT(256);
            (void)buf_printf(&p, "%s/j.db%s", t->dir, suffix[i]);
            unlink(buf_cstr(&p));
            buf_free(&p);
        }
        rmdir(t->dir);
    }
    buf_free(&t->url);
}

static int64_t q_int(struct db *db, const char *sql, const db_arg *args, size_t n)
{
    int64_t v = -1;
    bool found = false;
    if (db_query_int(db, sql, args, n, &v, &found) != DB_OK)
        fail_msg("%s: %s", sql, db_errmsg(db));
    return found ? v : -1;
}

static const char *q_state(struct db *db, const char *id, char out[16])
{
    struct db_res *r;
    assert_int_equal(db_query(db, "SELECT state FROM jobs WHERE id = ?", DB_ARGS(DBA_CSTR(id)), &r), DB_OK);
    assert_int_equal(db_next(r), 1);
    str_copy(out, db_text(r, 0).p, 16);
    db_res_free(r);
    return out;
}

/* ---- job kinds for these tests ------------------------------------------------- */

static enum job_result k_ok(struct job *j, struct buf *result, struct buf *error)
{
    UNUSED(j);
    UNUSED(result);
    UNUSED(error);
    return JOB_OK;
}

static int k_on_dead(struct db *db, const char *job_id, json_t *payload)
{
    const char *tag = json_string_value(json_object_get(payload, "tag"));
    return db_exec(db, "INSERT INTO app_meta (key, value) VALUES (?, ?)",
                   DB_ARGS(DBA_CSTR(job_id), DBA_CSTR(tag ? tag : "dead")), NULL);
}

static int setup_kinds(void **state)
{
    static const struct job_kind kinds[] = {
        {.kind = "unit.ok", .handler = k_ok, .queue = "unit"},
        {.kind = "unit.dead", .handler = k_ok, .queue = "unit", .timeout_ms = 1000, .on_dead = k_on_dead},
        {.kind = "unit.other", .handler = k_ok, .queue = "other"},
    };
    UNUSED(state);
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
        jobs_register(&kinds[i]);
    cron_register("unit.every5", "*/5 * * * *", "unit.ok", "{\"from\":\"cron\"}");
    return 0;
}

static int claim(struct db *db, int64_t now, struct jobs_claimed *c)
{
    int rc = jobs__claim(db, "unit:1:w0", NULL, 0, 1000, now, c);
    if (rc < 0)
        fail_msg("claim: %s", db_errmsg(db));
    return rc;
}

static struct job_opts opts(enum job_priority p, int64_t run_at)
{
    struct job_opts o = JOB_OPTS_DEFAULT;
    o.priority = p;
    o.run_at_ms = run_at;
    return o;
}

/* ---- queue tests (each engine) --------------------------------------------------- */

static void run_ordering(struct db *db)
{
    char a[37], b[37], c[37], d[37], e[37];
    struct jobs_claimed cl;
    memset(&cl, 0, sizeof(cl));
    struct job_opts o;
    int64_t now = T0 + 10 * MIN;
    /* run_at in the past is "now" at enqueue time: enqueue at staggered clocks instead */
    o = opts(JOB_PRIO_LOW, 0);
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), &o, a, now - 3000), JOBS_OK);
    o = opts(JOB_PRIO_NORMAL, 0);
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), &o, b, now - 1000), JOBS_OK);
    o = opts(JOB_PRIO_HIGH, 0);
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), &o, c, now - 500), JOBS_OK);
    o = opts(JOB_PRIO_HIGH, 0);
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), &o, d, now - 2000), JOBS_OK);
    o = opts(JOB_PRIO_HIGH, now + MIN); /* delayed: highest priority, but not yet */
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), &o, e, now), JOBS_OK);
    char st[16];
    assert_string_equal(q_state(db, e, st), "scheduled");
    assert_string_equal(q_state(db, a, st), "available");

    const char *want[] = {d, c, b, a};
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        assert_int_equal(claim(db, now, &cl), 1);
        assert_string_equal(cl.id, want[i]);
        assert_int_equal(cl.attempt, 1);
        assert_string_equal(cl.queue, "unit");
    }
    assert_int_equal(claim(db, now, &cl), 0);
    assert_int_equal(claim(db, now + MIN - 1, &cl), 0); /* a delayed job does not run early */
    assert_int_equal(claim(db, now + MIN, &cl), 1);
    assert_string_equal(cl.id, e);
    assert_string_equal(q_state(db, e, st), "running");
    assert_int_equal(q_int(db, "SELECT count(*) FROM jobs WHERE state = 'running'", DB_NOARGS), 5);
    buf_free(&cl.payload);
}

static void run_exclude_queue(struct db *db)
{
    char a[37], b[37];
    struct jobs_claimed cl;
    memset(&cl, 0, sizeof(cl));
    const char *ex[] = {"other"};
    assert_int_equal(jobs__enqueue_at(db, "unit.other", STRLIT("{\"x\":1}"), NULL, a, T0), JOBS_OK);
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), NULL, b, T0 + 1), JOBS_OK);
    assert_int_equal(jobs__claim(db, "unit:1:w0", ex, 1, 1000, T0 + 5, &cl), 1);
    assert_string_equal(cl.id, b);
    assert_int_equal(jobs__claim(db, "unit:1:w0", ex, 1, 1000, T0 + 5, &cl), 0);
    assert_int_equal(jobs__claim(db, "unit:1:w0", NULL, 0, 1000, T0 + 5, &cl), 1);
    assert_string_equal(cl.id, a);
    assert_true(str_is(buf_str(&cl.payload), "{\"x\":1}"));
    buf_free(&cl.payload);
}

static void run_unique(struct db *db)
{
    char a[37], b[37], c[37];
    struct jobs_claimed cl;
    enum jobs_outcome o;
    memset(&cl, 0, sizeof(cl));
    struct job_opts op = JOB_OPTS_DEFAULT;
    op.unique_key = "unit:key";
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), &op, a, T0), JOBS_OK);
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), &op, b, T0), JOBS_EDUPLICATE);
    assert_string_equal(a, b);
    assert_int_equal(claim(db, T0, &cl), 1); /* still unfinished while running */
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), &op, b, T0), JOBS_EDUPLICATE);
    assert_string_equal(a, b);
    assert_int_equal(jobs__finish(db, &cl, "unit:1:w0", JOB_OK, STRLIT("{\"r\":1}"), STR_NULL, 1000, T0 + 1, &o),
                     DB_OK);
    assert_int_equal(o, JO_SUCCEEDED);
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), &op, c, T0 + 2), JOBS_OK);
    assert_string_not_equal(a, c);
    assert_int_equal(q_int(db, "SELECT count(*) FROM jobs WHERE unique_key = 'unit:key'", DB_NOARGS), 2);
    assert_int_equal(q_int(db, "SELECT progress FROM jobs WHERE id = ?", DB_ARGS(DBA_CSTR(a))), 100);
    /* bad input */
    assert_int_equal(jobs__enqueue_at(db, "no.such.kind", STRLIT("{}"), NULL, b, T0), JOBS_EINVAL);
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("[1]"), NULL, b, T0), JOBS_EINVAL);
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{bad"), NULL, b, T0), JOBS_EINVAL);
    op = JOB_OPTS_DEFAULT;
    op.max_attempts = -1;
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), &op, b, T0), JOBS_EINVAL);
    op = JOB_OPTS_DEFAULT;
    op.queue = "bad queue";
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), &op, b, T0), JOBS_EINVAL);
    buf_free(&cl.payload);
}

static int tx_enqueue_then_rollback(struct db *db, void *arg)
{
    char *id = arg;
    if (jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), NULL, id, T0) != JOBS_OK)
        return -100;
    return 7; /* roll back */
}

static int tx_enqueue_commit(struct db *db, void *arg)
{
    return jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), NULL, arg, T0);
}

static void run_rollback(struct db *db)
{
    char id[37], id2[37];
    struct jobs_claimed cl;
    memset(&cl, 0, sizeof(cl));
    assert_int_equal(db_tx(db, DB_TX_WRITE, tx_enqueue_then_rollback, id), 7);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(q_int(db, "SELECT count(*) FROM jobs WHERE id = ?", DB_ARGS(DBA_CSTR(id))), 0);
    assert_int_equal(claim(db, T0 + HOUR, &cl), 0); /* never runs */
    assert_int_equal(db_tx(db, DB_TX_WRITE, tx_enqueue_commit, id2), 0);
    assert_int_equal(claim(db, T0 + HOUR, &cl), 1);
    assert_string_equal(cl.id, id2);
    buf_free(&cl.payload);
}

static void run_retry_dead(struct db *db)
{
    char id[37], st[16];
    struct jobs_claimed cl;
    enum jobs_outcome o;
    memset(&cl, 0, sizeof(cl));
    const int64_t base = 10000;
    int64_t now = T0;
    assert_int_equal(jobs__enqueue_at(db, "unit.dead", STRLIT("{\"tag\":\"retry\"}"), NULL, id, now), JOBS_OK);
    for (int attempt = 1; attempt <= 3; attempt++) {
        assert_int_equal(claim(db, now, &cl), 1);
        assert_int_equal(cl.attempt, attempt);
        assert_int_equal(cl.max_attempts, 3);
        assert_int_equal(jobs__finish(db, &cl, "unit:1:w0", JOB_RETRY, STR_NULL, STRLIT("boom"), base, now, &o),
                         DB_OK);
        if (attempt < 3) {
            assert_int_equal(o, JO_RETRY);
            assert_string_equal(q_state(db, id, st), "retryable");
            int64_t run_at = q_int(db, "SELECT ts_ms(run_at) FROM jobs WHERE id = ?", DB_ARGS(DBA_CSTR(id)));
            int64_t d = base << (attempt - 1); /* exponential, with jitter in [d/2, d] */
            assert_true(run_at >= now + d / 2 && run_at <= now + d);
            assert_int_equal(claim(db, run_at - 1, &cl), 0); /* not before its backoff */
            now = run_at;
        } else {
            assert_int_equal(o, JO_DEAD);
        }
    }
    assert_string_equal(q_state(db, id, st), "dead");
    /* on_dead ran in the marking transaction */
    assert_int_equal(q_int(db, "SELECT count(*) FROM app_meta WHERE key = ? AND value = 'retry'", DB_ARGS(DBA_CSTR(id))),
                     1);
    assert_int_equal(q_int(db, "SELECT attempt FROM jobs WHERE id = ?", DB_ARGS(DBA_CSTR(id))), 3);

    /* JOB_FAIL: failed at once, on_dead too */
    assert_int_equal(jobs__enqueue_at(db, "unit.dead", STRLIT("{\"tag\":\"fail\"}"), NULL, id, now), JOBS_OK);
    assert_int_equal(claim(db, now, &cl), 1);
    assert_int_equal(jobs__finish(db, &cl, "unit:1:w0", JOB_FAIL, STR_NULL, STRLIT("bad payload"), base, now, &o),
                     DB_OK);
    assert_int_equal(o, JO_FAILED);
    assert_string_equal(q_state(db, id, st), "failed");
    assert_int_equal(q_int(db, "SELECT count(*) FROM app_meta WHERE key = ?", DB_ARGS(DBA_CSTR(id))), 1);

    /* admin retry: failed → available, attempts start again; then 409-style refusals */
    int s = -1;
    assert_int_equal(jobs__retry(db, str_c(id), now, &s), 0);
    assert_int_equal(s, JS_FAILED);
    assert_string_equal(q_state(db, id, st), "available");
    assert_int_equal(q_int(db, "SELECT attempt FROM jobs WHERE id = ?", DB_ARGS(DBA_CSTR(id))), 0);
    assert_int_equal(jobs__retry(db, str_c(id), now, &s), 2);
    assert_int_equal(s, JS_AVAILABLE);
    /* cancel: available → cancelled (on_dead again) */
    assert_int_equal(db_exec(db, "DELETE FROM app_meta WHERE key = ?", DB_ARGS(DBA_CSTR(id)), NULL), DB_OK);
    assert_int_equal(jobs__cancel(db, str_c(id), now, &s), 0);
    assert_string_equal(q_state(db, id, st), "cancelled");
    assert_int_equal(q_int(db, "SELECT count(*) FROM app_meta WHERE key = ?", DB_ARGS(DBA_CSTR(id))), 1);
    assert_int_equal(jobs__cancel(db, str_c(id), now, &s), 2);
    assert_int_equal(s, JS_CANCELLED);
    assert_int_equal(jobs__cancel(db, STRLIT("01a201c6-0000-7000-8000-000000000000"), now, &s), 1);
    /* running cannot be cancelled */
    assert_int_equal(jobs__retry(db, str_c(id), now, &s), 0);
    assert_int_equal(claim(db, now, &cl), 1);
    assert_int_equal(jobs__cancel(db, str_c(id), now, &s), 2);
    assert_int_equal(s, JS_RUNNING);
    buf_free(&cl.payload);
}

static void run_backoff(void)
{
    for (int a = 1; a <= 30; a++) {
        int64_t d = jobs__backoff_ms(1000, a);
        int64_t full = a >= 13 ? JOBS_BACKOFF_CAP_MS : (1000LL << (a - 1));
        if (full > JOBS_BACKOFF_CAP_MS)
            full = JOBS_BACKOFF_CAP_MS;
        assert_true(d >= full / 2 && d <= full);
    }
}

static void run_lease(struct db *db)
{
    char id[37], st[16];
    struct jobs_claimed cl, cl2;
    enum jobs_outcome o;
    memset(&cl, 0, sizeof(cl));
    memset(&cl2, 0, sizeof(cl2));
    int n = -1;
    /* unit.dead: timeout 1000 ms; claims use a 1000 ms margin: lease = now + 2000 */
    assert_int_equal(jobs__enqueue_at(db, "unit.dead", STRLIT("{\"tag\":\"lease\"}"), NULL, id, T0), JOBS_OK);
    assert_int_equal(claim(db, T0, &cl), 1);
    assert_int_equal(q_int(db, "SELECT ts_ms(locked_until) FROM jobs WHERE id = ?", DB_ARGS(DBA_CSTR(id))), T0 + 2000);
    assert_int_equal(jobs__reap(db, T0 + 1999, &n), DB_OK);
    assert_int_equal(n, 0);
    assert_string_equal(q_state(db, id, st), "running");
    assert_int_equal(jobs__reap(db, T0 + 2001, &n), DB_OK);
    assert_int_equal(n, 1);
    assert_string_equal(q_state(db, id, st), "retryable");
    /* the attempt counted; another worker takes it */
    assert_int_equal(jobs__claim(db, "unit:2:w0", NULL, 0, 1000, T0 + 2001, &cl2), 1);
    assert_int_equal(cl2.attempt, 2);
    /* the first worker comes back late: nothing changes */
    assert_int_equal(jobs__finish(db, &cl, "unit:1:w0", JOB_OK, STR_NULL, STR_NULL, 1000, T0 + 2002, &o), DB_OK);
    assert_int_equal(o, JO_LOST);
    assert_string_equal(q_state(db, id, st), "running");
    assert_int_equal(jobs__finish(db, &cl2, "unit:2:w0", JOB_OK, STR_NULL, STR_NULL, 1000, T0 + 2003, &o), DB_OK);
    assert_int_equal(o, JO_SUCCEEDED);
    assert_string_equal(q_state(db, id, st), "succeeded");

    /* the last attempt's lease expires: dead, with on_dead */
    struct job_opts op = JOB_OPTS_DEFAULT;
    op.max_attempts = 1;
    assert_int_equal(jobs__enqueue_at(db, "unit.dead", STRLIT("{\"tag\":\"lease-dead\"}"), &op, id, T0), JOBS_OK);
    assert_int_equal(claim(db, T0, &cl), 1);
    assert_int_equal(jobs__reap(db, T0 + 5000, &n), DB_OK);
    assert_int_equal(n, 1);
    assert_string_equal(q_state(db, id, st), "dead");
    assert_int_equal(
        q_int(db, "SELECT count(*) FROM app_meta WHERE key = ? AND value = 'lease-dead'", DB_ARGS(DBA_CSTR(id))), 1);
    buf_free(&cl.payload);
    buf_free(&cl2.payload);
}

static void run_cron_missed_once(struct db *db)
{
    int fired = -1;
    /* first pass at a matching minute: fires */
    assert_int_equal(cron__tick(db, T0 + 20 * MIN + 1500, &fired), DB_OK);
    assert_int_equal(fired, 1);
    /* same minute again, and the next non-matching minutes: nothing */
    assert_int_equal(cron__tick(db, T0 + 20 * MIN + 30000, &fired), DB_OK);
    assert_int_equal(fired, 0);
    assert_int_equal(cron__tick(db, T0 + 24 * MIN, &fired), DB_OK);
    assert_int_equal(fired, 0);
    /* next tick */
    assert_int_equal(cron__tick(db, T0 + 25 * MIN + 10, &fired), DB_OK);
    assert_int_equal(fired, 1);
    /* "downtime" of three hours (36 missed ticks): fires once */
    assert_int_equal(cron__tick(db, T0 + 3 * HOUR + 27 * MIN, &fired), DB_OK);
    assert_int_equal(fired, 1);
    assert_int_equal(cron__tick(db, T0 + 3 * HOUR + 28 * MIN, &fired), DB_OK);
    assert_int_equal(fired, 0);
    assert_int_equal(cron__tick(db, T0 + 3 * HOUR + 30 * MIN, &fired), DB_OK);
    assert_int_equal(fired, 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM jobs WHERE kind = 'unit.ok' AND payload = '{\"from\":\"cron\"}'",
                           DB_NOARGS),
                     4);
    assert_int_equal(q_int(db, "SELECT ts_ms(last_tick) FROM job_cron WHERE name = 'unit.every5'", DB_NOARGS),
                     T0 + 3 * HOUR + 30 * MIN);
}

static void run_purge_counts(struct db *db)
{
    char a[37], b[37];
    struct jobs_claimed cl;
    enum jobs_outcome o;
    int64_t removed = -1;
    struct jobs_counts jc;
    memset(&cl, 0, sizeof(cl));
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), NULL, a, T0), JOBS_OK);
    assert_int_equal(jobs__enqueue_at(db, "unit.ok", STRLIT("{}"), NULL, b, T0), JOBS_OK);
    assert_int_equal(claim(db, T0, &cl), 1);
    assert_int_equal(jobs__finish(db, &cl, "unit:1:w0", JOB_OK, STR_NULL, STR_NULL, 1000, T0, &o), DB_OK);
    assert_int_equal(jobs_counts(db, &jc), DB_OK);
    assert_true(jc.succeeded == 1 && jc.available == 1 && jc.running == 0);
    assert_int_equal(jobs__purge(db, T0, &removed), DB_OK); /* finished at T0: not before T0 */
    assert_int_equal(removed, 0);
    assert_int_equal(jobs__purge(db, T0 + 1, &removed), DB_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(jobs_counts(db, &jc), DB_OK);
    assert_true(jc.succeeded == 0 && jc.available == 1);
    buf_free(&cl.payload);
}

static void each_engine(void (*fn)(struct db *db))
{
    for (int engine = 0; engine < 2; engine++) {
        struct tdb t;
        if (!tdb_open(&t, engine))
            continue;
        fn(t.db);
        tdb_close(&t);
    }
}

static void test_ordering(void **state)
{
    UNUSED(state);
    each_engine(run_ordering);
}
static void test_exclude_queue(void **state)
{
    UNUSED(state);
    each_engine(run_exclude_queue);
}
static void test_unique(void **state)
{
    UNUSED(state);
    each_engine(run_unique);
}
static void test_rollback(void **state)
{
    UNUSED(state);
    each_engine(run_rollback);
}
static void test_retry_dead(void **state)
{
    UNUSED(state);
    run_backoff();
    each_engine(run_retry_dead);
}
static void test_lease(void **state)
{
    UNUSED(state);
    each_engine(run_lease);
}
static void test_cron_missed_once(void **state)
{
    UNUSED(state);
    each_engine(run_cron_missed_once);
}
static void test_purge_counts(void **state)
{
    UNUSED(state);
    each_engine(run_purge_counts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cron_parse),
        cmocka_unit_test(test_cron_match_next),
        cmocka_unit_test(test_ordering),
        cmocka_unit_test(test_exclude_queue),
        cmocka_unit_test(test_unique),
        cmocka_unit_test(test_rollback),
        cmocka_unit_test(test_retry_dead),
        cmocka_unit_test(test_lease),
        cmocka_unit_test(test_cron_missed_once),
        cmocka_unit_test(test_purge_counts),
    };
    return cmocka_run_group_tests(tests, setup_kinds, NULL);
}
