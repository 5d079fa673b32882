/*
 * Unit tests for src/db/pgpool.c: the non-blocking, pipelined PostgreSQL
 * pool of a loop thread, driven by a real h2o loop and coroutines against a
 * real server. Skipped unless DATABASE_URL_PG is set:
 *
 *   eval "$(scripts/pgtmp.sh start)"
 *   DATABASE_URL_PG=$DATABASE_URL meson test -C build test_pgpool
 *   scripts/pgtmp.sh stop "$PGTMP_DIR"
 *
 * Includes pgpool.c to look at the connections (in flight, pinned, state).
 * No timing is asserted: deadlines are far from the sleeps they race.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "../../src/db/pgpool.c"

static h2o_evloop_t *loop;
static struct db_pool *pool;
static struct db *admin; /* a synchronous connection for setup and pg_terminate_backend */

static const char *pg_url(void)
{
    const char *u = getenv("DATABASE_URL_PG");
    return u && *u ? u : NULL;
}

static int setup(void **state)
{
    UNUSED(state);
    loop = h2o_evloop_create();
    coro_thread_init(loop);
    return 0;
}

static int teardown(void **state)
{
    UNUSED(state);
    coro_thread_release();
    h2o_evloop_destroy(loop);
    return 0;
}

static struct pgpool *open_pool(int size)
{
    struct buf err = BUF_INIT(BUF_MAX_SMALL);
    struct db_options opt = {.statement_timeout_ms = 30000};
    if (!pg_url())
        skip();
    pool = db_pool_open(pg_url(), &opt, size, &err);
    if (!pool)
        fail_msg("db_pool_open: %s", buf_cstr(&err));
    admin = db_open(pg_url(), NULL, &err);
    if (!admin)
        fail_msg("db_open: %s", buf_cstr(&err));
    buf_free(&err);
    return (struct pgpool *)pool;
}

static void close_pool(void)
{
    /* let abandoned statements finish so nothing is left in flight */
    db_pool_close(pool);
    pool = NULL;
    db_close(admin);
    admin = NULL;
}

/* Run the loop until *n reaches want (a hang guard, not a timing assert). */
static void run_until_n(const int *n, int want)
{
    int64_t guard = time_mono_ms() + 20000;
    while (*n < want && time_mono_ms() < guard)
        h2o_evloop_run(loop, 10);
    assert_int_equal(*n, want);
}

static int total_inflight(struct pgpool *p);

static void run_until_idle(struct pgpool *p)
{
    int64_t guard = time_mono_ms() + 20000;
    while (total_inflight(p) > 0) {
        assert_true(time_mono_ms() < guard);
        h2o_evloop_run(loop, 10);
    }
}

/* Run until connection i is up on another backend than old_pid. */
static void wait_new_backend(struct pgpool *p, int i, int old_pid)
{
    int64_t guard = time_mono_ms() + 20000;
    while (!(p->conns[i].state == PGC_UP && PQbackendPID(p->conns[i].c) != old_pid)) {
        assert_true(time_mono_ms() < guard);
        h2o_evloop_run(loop, 10);
    }
}

static void admin_exec(const char *sql)
{
    int rc = db_exec_script(admin, sql);
    if (rc)
        fail_msg("%s -> %d %s", sql, rc, db_errmsg(admin));
}

/* One request: a statement with one integer argument on its own handle. */
struct job {
    const char *sql;
    int64_t arg;
    bool has_arg;
    int64_t deadline_ms; /* relative; 0 = none */
    int rc;
    int64_t val, val2;
    int *ndone;
};

static void job_body(void *a)
{
    struct job *j = a;
    struct db *h = db_pool_get(pool);
    struct db_res *r;
    if (j->deadline_ms)
        db_set_deadline(h, time_mono_ms() + j->deadline_ms);
    j->rc = j->has_arg ? db_query(h, j->sql, DB_ARGS(DBA_INT(j->arg)), &r) : db_query(h, j->sql, DB_NOARGS, &r);
    if (j->rc == DB_OK) {
        if (db_next(r) == 1) {
            j->val = db_int(r, 0);
            if (db_ncols(r) > 1)
                j->val2 = db_int(r, 1);
        }
        db_res_free(r);
    }
    db_pool_put(pool, h);
    (*j->ndone)++;
}

static void spawn_job(struct job *j) { coro_spawn(job_body, j, NULL, NULL); }

static int total_inflight(struct pgpool *p)
{
    int n = 0;
    for (int i = 0; i < p->n; i++) {
        assert_true(p->conns[i].inflight <= PGP_DEPTH_MAX);
        n += p->conns[i].inflight;
    }
    return n;
}

/* ---- many coroutines, few connections ------------------------------------------ */

#define NJOBS 60

static void t_pipelined_results_to_the_right_coroutine(void **state)
{
    struct pgpool *p = open_pool(2);
    struct job j[NJOBS];
    int ndone = 0;
    int64_t pids[2] = {0, 0};
    int npids = 0;
    UNUSED(state);
    for (int i = 0; i < NJOBS; i++) {
        j[i] = (struct job){.sql = "SELECT ?::int * 3, pg_backend_pid()", .arg = i, .has_arg = true, .ndone = &ndone};
        spawn_job(&j[i]);
    }
    /* every statement is on the wire before any result came back */
    assert_int_equal(total_inflight(p), NJOBS);
    assert_true(p->conns[0].inflight > 1 && p->conns[1].inflight > 1);
    run_until_n(&ndone, NJOBS);
    for (int i = 0; i < NJOBS; i++) {
        bool seen = false;
        assert_int_equal(j[i].rc, DB_OK);
        assert_int_equal(j[i].val, i * 3);
        for (int k = 0; k < npids; k++)
            seen |= pids[k] == j[i].val2;
        if (!seen) {
            assert_true(npids < 2); /* two connections, two backends */
            pids[npids++] = j[i].val2;
        }
    }
    assert_int_equal(total_inflight(p), 0);
    /* statistics: one statement per job, summed over the handles */
    assert_int_equal(db_pool_stats(pool)->queries, NJOBS);
    close_pool();
}

static void t_failing_statement_spares_its_neighbours(void **state)
{
    struct pgpool *p = open_pool(1);
    int ndone = 0;
    struct job a = {.sql = "SELECT ?::int", .arg = 1, .has_arg = true, .ndone = &ndone};
    struct job b = {.sql = "SELECT 1 / ?::int", .arg = 0, .has_arg = true, .ndone = &ndone};
    struct job c = {.sql = "SELECT ?::int", .arg = 3, .has_arg = true, .ndone = &ndone};
    struct job d = {.sql = "SELEC broken", .ndone = &ndone};
    struct job e = {.sql = "SELECT ?::int + 1", .arg = 4, .has_arg = true, .ndone = &ndone};
    UNUSED(state);
    spawn_job(&a);
    spawn_job(&b);
    spawn_job(&c);
    spawn_job(&d);
    spawn_job(&e);
    assert_int_equal(p->conns[0].inflight, 5); /* one connection, one pipeline */
    run_until_n(&ndone, 5);
    assert_int_equal(a.rc, DB_OK);
    assert_int_equal(a.val, 1);
    assert_int_equal(b.rc, DB_ERR); /* 22012 division by zero */
    assert_int_equal(c.rc, DB_OK);
    assert_int_equal(c.val, 3);
    assert_int_equal(d.rc, DB_ERR); /* its Parse failed: the name is stale, not reused */
    assert_int_equal(e.rc, DB_OK);
    assert_int_equal(e.val, 5);
    /* the same broken SQL again: prepared afresh, fails the same way */
    ndone = 0;
    spawn_job(&d);
    spawn_job(&c);
    run_until_n(&ndone, 2);
    assert_int_equal(d.rc, DB_ERR);
    assert_int_equal(c.rc, DB_OK);
    close_pool();
}

/* ---- transactions ------------------------------------------------------------------------ */

struct txjob {
    int calls;
    int rc;
    int64_t pid;
    bool hold;    /* wait inside the transaction until released */
    bool holding; /* it waits there now */
    bool release;
    bool fail_first; /* raise a serialization failure on the first run */
    int ret;         /* returned by fn (non-zero: roll back) */
    int *ndone;
    struct pgh *h;
};

static int tx_fn(struct db *db, void *arg)
{
    struct txjob *t = arg;
    int rc;
    bool found;
    t->calls++;
    t->h = (struct pgh *)db;
    if ((rc = db_query_int(db, "SELECT pg_backend_pid()", DB_NOARGS, &t->pid, &found)) != DB_OK)
        return rc;
    if (t->fail_first && t->calls == 1)
        return db_exec_script(db, "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$");
    if ((rc = db_exec(db, "INSERT INTO pgpool_tx (v) VALUES (?)", DB_ARGS(DBA_INT(t->calls)), NULL)) != DB_OK)
        return rc;
    t->holding = t->hold;
    while (t->hold && !t->release)
        coro_sleep_ms(5);
    if ((rc = db_exec(db, "INSERT INTO pgpool_tx (v) VALUES (?)", DB_ARGS(DBA_INT(100 + t->calls)), NULL)) != DB_OK)
        return rc;
    return t->ret;
}

static void tx_body(void *a)
{
    struct txjob *t = a;
    struct db *h = db_pool_get(pool);
    t->rc = db_tx(h, DB_TX_WRITE, tx_fn, t);
    db_pool_put(pool, h);
    (*t->ndone)++;
}

static int64_t admin_int(const char *sql)
{
    int64_t v = -1;
    bool found;
    int rc = db_query_int(admin, sql, DB_NOARGS, &v, &found);
    if (rc)
        fail_msg("%s -> %d %s", sql, rc, db_errmsg(admin));
    return v;
}

static void run_until_holding(struct txjob *t)
{
    int64_t guard = time_mono_ms() + 20000;
    while (!t->holding) {
        assert_true(time_mono_ms() < guard);
        h2o_evloop_run(loop, 10);
    }
    assert_non_null(t->h->pin);
}

static void t_transaction_pins_a_connection(void **state)
{
    struct pgpool *p = open_pool(2);
    int ndone = 0, njobs = 0;
    struct txjob t = {.hold = true, .ndone = &ndone};
    struct job j[20];
    UNUSED(state);
    admin_exec("DROP TABLE IF EXISTS pgpool_tx; CREATE TABLE pgpool_tx (v INTEGER)");
    coro_spawn(tx_body, &t, NULL, NULL);
    /* run until the transaction holds its connection */
    run_until_holding(&t);
    for (int i = 0; i < 20; i++) {
        j[i] = (struct job){.sql = "SELECT pg_backend_pid()", .ndone = &njobs};
        spawn_job(&j[i]);
    }
    run_until_n(&njobs, 20);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(j[i].rc, DB_OK);
        assert_true(j[i].val != t.pid); /* never on the pinned connection */
    }
    /* not committed yet: the other session does not see the first row */
    assert_int_equal(admin_int("SELECT count(*) FROM pgpool_tx"), 0);
    t.release = true;
    run_until_n(&ndone, 1);
    assert_int_equal(t.rc, 0);
    assert_int_equal(admin_int("SELECT count(*) FROM pgpool_tx"), 2);
    for (int i = 0; i < p->n; i++)
        assert_null(p->conns[i].pinned);

    /* a non-zero return rolls back */
    ndone = 0;
    t = (struct txjob){.ret = 7, .ndone = &ndone};
    coro_spawn(tx_body, &t, NULL, NULL);
    run_until_n(&ndone, 1);
    assert_int_equal(t.rc, 7);
    assert_int_equal(admin_int("SELECT count(*) FROM pgpool_tx"), 2);

    /* a serialization failure: rolled back and run again */
    ndone = 0;
    t = (struct txjob){.fail_first = true, .ndone = &ndone};
    coro_spawn(tx_body, &t, NULL, NULL);
    run_until_n(&ndone, 1);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.calls, 2);
    assert_int_equal(admin_int("SELECT count(*) FROM pgpool_tx WHERE v = 2"), 1);
    admin_exec("DROP TABLE pgpool_tx");
    close_pool();
}

/* read-modify-write under FOR UPDATE: lost updates would show if a
 * transaction's statements left its connection or ran outside BEGIN */
static int tx_increment(struct db *db, void *arg)
{
    int64_t v;
    bool found;
    int rc = db_query_int(db, "SELECT v FROM pgpool_tx WHERE v >= 0 FOR UPDATE", DB_NOARGS, &v, &found);
    UNUSED(arg);
    if (rc)
        return rc;
    coro_sleep_ms(1); /* let the others run into the lock meanwhile */
    return db_exec(db, "UPDATE pgpool_tx SET v = ?", DB_ARGS(DBA_INT(v + 1)), NULL);
}

static void incr_body(void *a)
{
    struct job *j = a;
    struct db *h = db_pool_get(pool);
    j->rc = db_tx(h, DB_TX_WRITE, tx_increment, NULL);
    db_pool_put(pool, h);
    (*j->ndone)++;
}

static void t_concurrent_transactions_are_isolated(void **state)
{
    int ndone = 0;
    struct job j[40];
    open_pool(4);
    UNUSED(state);
    admin_exec("DROP TABLE IF EXISTS pgpool_tx; CREATE TABLE pgpool_tx (v INTEGER); INSERT INTO pgpool_tx VALUES (0)");
    for (int i = 0; i < 40; i++) {
        j[i] = (struct job){.ndone = &ndone};
        coro_spawn(incr_body, &j[i], NULL, NULL);
    }
    run_until_n(&ndone, 40);
    for (int i = 0; i < 40; i++)
        assert_int_equal(j[i].rc, DB_OK);
    assert_int_equal(admin_int("SELECT v FROM pgpool_tx"), 40);
    admin_exec("DROP TABLE pgpool_tx");
    close_pool();
}

static void t_pool_exhaustion_fails_fast(void **state)
{
    struct pgpool *p = open_pool(1);
    int ndone = 0, njobs = 0;
    struct txjob t = {.hold = true, .ndone = &ndone};
    struct job j[PGP_WAIT_PER_CONN + 1];
    UNUSED(state);
    admin_exec("DROP TABLE IF EXISTS pgpool_tx; CREATE TABLE pgpool_tx (v INTEGER)");
    coro_spawn(tx_body, &t, NULL, NULL);
    run_until_holding(&t);
    /* the only connection is pinned: statements queue, up to the bound */
    for (int i = 0; i < PGP_WAIT_PER_CONN; i++) {
        j[i] = (struct job){.sql = "SELECT ?::int", .arg = i, .has_arg = true, .ndone = &njobs};
        spawn_job(&j[i]);
    }
    assert_int_equal(p->wq.n, PGP_WAIT_PER_CONN);
    assert_int_equal(njobs, 0);
    /* one past the bound: refused at once, nothing queued */
    j[PGP_WAIT_PER_CONN] = (struct job){.sql = "SELECT 1", .ndone = &njobs};
    spawn_job(&j[PGP_WAIT_PER_CONN]);
    assert_int_equal(njobs, 1);
    assert_int_equal(j[PGP_WAIT_PER_CONN].rc, DB_EUNAVAIL);
    assert_int_equal(p->wq.n, PGP_WAIT_PER_CONN);
    /* the transaction ends: the queue drains in order, every one succeeds */
    t.release = true;
    run_until_n(&ndone, 1);
    run_until_n(&njobs, PGP_WAIT_PER_CONN + 1);
    assert_int_equal(t.rc, 0);
    for (int i = 0; i < PGP_WAIT_PER_CONN; i++) {
        assert_int_equal(j[i].rc, DB_OK);
        assert_int_equal(j[i].val, i);
    }
    admin_exec("DROP TABLE pgpool_tx");
    close_pool();
}

/* ---- deadlines ----------------------------------------------------------------------------- */

static void t_deadline_inside_a_pipelined_batch(void **state)
{
    struct pgpool *p = open_pool(1);
    int ndone = 0;
    struct job a = {.sql = "SELECT ?::int", .arg = 1, .has_arg = true, .ndone = &ndone};
    /* sleeps 2 s; its request gives up after 100 ms */
    struct job slow = {.sql = "SELECT 7 FROM pg_sleep(2)", .deadline_ms = 100, .ndone = &ndone};
    /* behind the slow one, no deadline: waits for it, then gets its own result */
    struct job c = {.sql = "SELECT ?::int", .arg = 3, .has_arg = true, .ndone = &ndone};
    /* behind it with a short deadline: times out too */
    struct job d = {.sql = "SELECT ?::int", .arg = 4, .has_arg = true, .deadline_ms = 150, .ndone = &ndone};
    UNUSED(state);
    spawn_job(&a);
    spawn_job(&slow);
    spawn_job(&c);
    spawn_job(&d);
    assert_int_equal(p->conns[0].inflight, 4);
    run_until_n(&ndone, 4);
    assert_int_equal(a.rc, DB_OK);
    assert_int_equal(a.val, 1);
    assert_int_equal(slow.rc, DB_ETIMEOUT);
    assert_int_equal(d.rc, DB_ETIMEOUT);
    assert_int_equal(c.rc, DB_OK);
    assert_int_equal(c.val, 3); /* not the abandoned 7 */
    /* the abandoned results were discarded: nothing left in flight */
    run_until_idle(p);
    close_pool();
}

static void t_slow_statement_does_not_hold_others(void **state)
{
    struct pgpool *p = open_pool(2);
    int ndone = 0, nquick = 0;
    struct job slow = {.sql = "SELECT 7 FROM pg_sleep(2)", .deadline_ms = 100, .ndone = &ndone};
    struct job q[10];
    UNUSED(state);
    spawn_job(&slow);
    run_until_n(&ndone, 1);
    assert_int_equal(slow.rc, DB_ETIMEOUT);
    /* the connection still runs the abandoned statement: new ones go to the other */
    for (int i = 0; i < 10; i++) {
        q[i] = (struct job){.sql = "SELECT ?::int", .arg = i, .has_arg = true, .deadline_ms = 1000, .ndone = &nquick};
        spawn_job(&q[i]);
    }
    run_until_n(&nquick, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(q[i].rc, DB_OK);
        assert_int_equal(q[i].val, i);
    }
    assert_int_equal(p->conns[0].inflight + p->conns[1].inflight, 1); /* the abandoned one */
    close_pool();
}

static void run_for_ms(int64_t ms)
{
    int64_t until = time_mono_ms() + ms;
    while (time_mono_ms() < until)
        h2o_evloop_run(loop, 10);
}

static void t_long_statement_is_avoided(void **state)
{
    struct pgpool *p = open_pool(2);
    int nslow = 0, nquick = 0, slow_pid;
    struct job slow = {.sql = "SELECT 7 FROM pg_sleep(3)", .ndone = &nslow};
    struct job q[10];
    UNUSED(state);
    spawn_job(&slow);
    slow_pid = PQbackendPID(p->conns[0].inflight ? p->conns[0].c : p->conns[1].c);
    run_for_ms(100); /* the slow one is now older than PGP_STALL_MS */
    for (int i = 0; i < 10; i++) {
        q[i] = (struct job){.sql = "SELECT pg_backend_pid()", .ndone = &nquick};
        spawn_job(&q[i]);
    }
    run_until_n(&nquick, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(q[i].rc, DB_OK);
        assert_true(q[i].val != slow_pid); /* none queued behind the long statement */
    }
    assert_int_equal(nslow, 0);
    run_until_n(&nslow, 1);
    assert_int_equal(slow.rc, DB_OK);
    assert_int_equal(slow.val, 7);
    close_pool();
}

/* ---- a lost connection ------------------------------------------------------------------------- */

static void kill_backend(PGconn *c)
{
    int64_t ok = 0;
    int rc = db_query_int(admin, "SELECT pg_terminate_backend(?::int)::int", DB_ARGS(DBA_INT(PQbackendPID(c))), &ok,
                          NULL);
    if (rc)
        fail_msg("pg_terminate_backend: %s", db_errmsg(admin));
    assert_int_equal(ok, 1);
}

static void t_terminated_backend_fails_in_flight_then_recovers(void **state)
{
    struct pgpool *p = open_pool(2);
    int ndone = 0, nafter = 0, ntx = 0;
    struct job j[10], after[10];
    struct txjob t = {.hold = true, .ndone = &ntx};
    int old_pid[2] = {PQbackendPID(p->conns[0].c), PQbackendPID(p->conns[1].c)};
    UNUSED(state);
    admin_exec("DROP TABLE IF EXISTS pgpool_tx; CREATE TABLE pgpool_tx (v INTEGER)");
    /* a transaction holds one connection; statements run on the other */
    coro_spawn(tx_body, &t, NULL, NULL);
    run_until_holding(&t);
    for (int i = 0; i < 10; i++) {
        j[i] = (struct job){.sql = "SELECT ?::int FROM pg_sleep(1)", .arg = i, .has_arg = true, .ndone = &ndone};
        spawn_job(&j[i]);
    }
    assert_int_equal(total_inflight(p), 10);
    kill_backend(p->conns[0].c);
    kill_backend(p->conns[1].c);
    /* every in-flight statement fails cleanly, none hangs */
    run_until_n(&ndone, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(j[i].rc, DB_EUNAVAIL);
    /* the transaction's connection died: its next statement fails, db_tx rolls back */
    wait_new_backend(p, 0, old_pid[0]);
    wait_new_backend(p, 1, old_pid[1]);
    t.release = true;
    run_until_n(&ntx, 1);
    assert_int_equal(t.rc, DB_EUNAVAIL);
    assert_int_equal(admin_int("SELECT count(*) FROM pgpool_tx"), 0);
    /* both reconnected in the background; the next statements succeed */
    for (int i = 0; i < 10; i++) {
        after[i] = (struct job){.sql = "SELECT ?::int", .arg = i, .has_arg = true, .ndone = &nafter};
        spawn_job(&after[i]);
    }
    run_until_n(&nafter, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(after[i].rc, DB_OK);
        assert_int_equal(after[i].val, i);
    }
    admin_exec("DROP TABLE pgpool_tx");
    close_pool();
}

static void t_other_connection_serves_while_one_reconnects(void **state)
{
    struct pgpool *p = open_pool(2);
    int ndone = 0;
    struct job j[6];
    int old_pid = PQbackendPID(p->conns[0].c);
    UNUSED(state);
    kill_backend(p->conns[0].c);
    /* until the loop reads the EOF the pool does not know; a statement sent
     * there fails with DB_EUNAVAIL, one on the other connection succeeds */
    for (int i = 0; i < 6; i++) {
        j[i] = (struct job){.sql = "SELECT ?::int", .arg = i, .has_arg = true, .ndone = &ndone};
        spawn_job(&j[i]);
    }
    run_until_n(&ndone, 6);
    for (int i = 0; i < 6; i++)
        assert_true(j[i].rc == DB_OK || j[i].rc == DB_EUNAVAIL);
    wait_new_backend(p, 0, old_pid);
    ndone = 0;
    for (int i = 0; i < 6; i++) {
        j[i] = (struct job){.sql = "SELECT ?::int", .arg = i, .has_arg = true, .ndone = &ndone};
        spawn_job(&j[i]);
    }
    run_until_n(&ndone, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(j[i].rc, DB_OK);
    close_pool();
}

/* ---- outside a coroutine, stale plans ------------------------------------------------------------ */

static void t_handle_outside_a_coroutine(void **state)
{
    struct db *h;
    int64_t v = 0;
    bool found = false;
    open_pool(1);
    UNUSED(state);
    h = db_pool_get(pool);
    assert_int_equal(db_query_int(h, "SELECT ?::int + 1", DB_ARGS(DBA_INT(41)), &v, &found), DB_OK);
    assert_true(found);
    assert_int_equal(v, 42);
    /* the server-side backstop, set at connect from statement_timeout_ms */
    {
        struct db_res *r;
        assert_int_equal(db_query(h, "SHOW statement_timeout", DB_NOARGS, &r), DB_OK);
        assert_int_equal(db_next(r), 1);
        assert_string_equal(db_text(r, 0).p, "30s");
        db_res_free(r);
    }
    db_pool_put(pool, h);
    close_pool();
}

static int n_cols_body_rc;
static int n_cols_seen;
static void stale_body(void *a)
{
    struct db *h = db_pool_get(pool);
    struct db_res *r;
    n_cols_body_rc = db_query(h, "SELECT * FROM pgpool_sp", DB_NOARGS, &r);
    if (n_cols_body_rc == DB_OK) {
        n_cols_seen = db_ncols(r);
        db_res_free(r);
    }
    db_pool_put(pool, h);
    (*(int *)a)++;
}

static void t_stale_plan_prepared_again(void **state)
{
    int ndone = 0;
    open_pool(1);
    UNUSED(state);
    admin_exec("DROP TABLE IF EXISTS pgpool_sp; CREATE TABLE pgpool_sp (a INTEGER); INSERT INTO pgpool_sp VALUES (1)");
    coro_spawn(stale_body, &ndone, NULL, NULL);
    run_until_n(&ndone, 1);
    assert_int_equal(n_cols_body_rc, DB_OK);
    assert_int_equal(n_cols_seen, 1);
    admin_exec("ALTER TABLE pgpool_sp ADD COLUMN b INTEGER");
    coro_spawn(stale_body, &ndone, NULL, NULL);
    run_until_n(&ndone, 2);
    assert_int_equal(n_cols_body_rc, DB_OK);
    assert_int_equal(n_cols_seen, 2);
    admin_exec("DROP TABLE pgpool_sp");
    close_pool();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_pipelined_results_to_the_right_coroutine),
        cmocka_unit_test(t_failing_statement_spares_its_neighbours),
        cmocka_unit_test(t_transaction_pins_a_connection),
        cmocka_unit_test(t_concurrent_transactions_are_isolated),
        cmocka_unit_test(t_pool_exhaustion_fails_fast),
        cmocka_unit_test(t_deadline_inside_a_pipelined_batch),
        cmocka_unit_test(t_slow_statement_does_not_hold_others),
        cmocka_unit_test(t_long_statement_is_avoided),
        cmocka_unit_test(t_terminated_backend_fails_in_flight_then_recovers),
        cmocka_unit_test(t_other_connection_serves_while_one_reconnects),
        cmocka_unit_test(t_handle_outside_a_coroutine),
        cmocka_unit_test(t_stale_plan_prepared_again),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
