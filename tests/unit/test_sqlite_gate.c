/* Unit tests for src/db/sqlite_gate: FIFO hand-off between threads and
 * coroutines, recursion, the loop-thread refusal, and many writers of one
 * file through db_tx with no busy error and no lost update. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <pthread.h>

#include <cmocka.h>

#define H2O_USE_EPOLL 1
#include <h2o.h>

#include "core/buf.h"
#include "core/coro.h"
#include "core/timeutil.h"
#include "db/db.h"
#include "db/sqlite_gate.h"

static char dbpath[512];

static int setup(void **state)
{
    (void)state;
    const char *dir = getenv("TEMEL_TEST_TMPDIR");
    struct buf b = BUF_INIT(sizeof(dbpath));
    (void)buf_printf(&b, "%s/gate-%d.db", dir ? dir : "/tmp", (int)getpid());
    assert_true(buf_ok(&b));
    assert_true(b.len < sizeof(dbpath));
    memcpy(dbpath, buf_cstr(&b), b.len + 1);
    buf_free(&b);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    struct buf b = BUF_INIT(sizeof(dbpath) + 8);
    unlink(dbpath);
    (void)buf_printf(&b, "%s-wal", dbpath);
    unlink(buf_cstr(&b));
    buf_reset(&b);
    (void)buf_printf(&b, "%s-shm", dbpath);
    unlink(buf_cstr(&b));
    buf_free(&b);
    return 0;
}

/* ---- order of hand-off -------------------------------------------------- */

struct order {
    pthread_mutex_t mu;
    char log[16];
    int n;
};

static void order_add(struct order *o, char c)
{
    pthread_mutex_lock(&o->mu);
    if (o->n < (int)sizeof(o->log) - 1)
        o->log[o->n++] = c;
    pthread_mutex_unlock(&o->mu);
}

struct tw {
    struct sq_gate *g;
    struct order *o;
    char name;
    pthread_t tid;
};

static void *thread_writer(void *arg)
{
    struct tw *w = arg;
    assert_true(sq_gate_enter(w->g));
    order_add(w->o, w->name);
    sq_gate_leave(w->g);
    return NULL;
}

/* Wait (hang guard only) until the gate has n waiters queued in all. */
static void until_waited(struct sq_gate *g, uint64_t n)
{
    int64_t guard = time_mono_ms() + 10000;
    while (sq_gate_stats(g).waited < n && time_mono_ms() < guard)
        usleep(1000);
    assert_true(sq_gate_stats(g).waited >= n);
}

static void t_fifo_threads(void **state)
{
    (void)state;
    struct sq_gate *g = sq_gate_get(":memory:");
    struct order o = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct tw w[3];
    assert_true(sq_gate_enter(g));
    for (int i = 0; i < 3; i++) {
        w[i] = (struct tw){.g = g, .o = &o, .name = (char)('a' + i)};
        pthread_create(&w[i].tid, NULL, thread_writer, &w[i]);
        until_waited(g, (uint64_t)i + 1); /* queued in this order */
    }
    order_add(&o, '0');
    sq_gate_leave(g);
    for (int i = 0; i < 3; i++)
        pthread_join(w[i].tid, NULL);
    o.log[o.n] = 0;
    assert_string_equal(o.log, "0abc");
    sq_gate_put(g);
}

static void t_recursive(void **state)
{
    (void)state;
    struct sq_gate *g = sq_gate_get(":memory:");
    struct order o = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct tw w = {.g = g, .o = &o, .name = 'b'};
    assert_true(sq_gate_enter(g));
    assert_true(sq_gate_enter(g)); /* the holder does not wait for itself */
    pthread_create(&w.tid, NULL, thread_writer, &w);
    until_waited(g, 1);
    sq_gate_leave(g); /* still held once */
    order_add(&o, 'a');
    sq_gate_leave(g);
    pthread_join(w.tid, NULL);
    o.log[o.n] = 0;
    assert_string_equal(o.log, "ab");
    sq_gate_put(g);
}

/* Same file, same gate: two opens share it; an in-memory one is private. */
static void t_shared_by_path(void **state)
{
    (void)state;
    FILE *f = fopen(dbpath, "a");
    assert_non_null(f);
    fclose(f);
    struct sq_gate *a = sq_gate_get(dbpath), *b = sq_gate_get(dbpath), *m = sq_gate_get(":memory:");
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, m);
    sq_gate_put(a);
    sq_gate_put(b);
    sq_gate_put(m);
}

/* ---- coroutines on a loop, and a thread, in one queue -------------------- */

static h2o_evloop_t *loop;

struct cw {
    struct sq_gate *g;
    struct order *o;
    char name;
    bool hold; /* the first one holds until released by the test */
    volatile int release, done;
};

static void coro_writer(void *arg)
{
    struct cw *c = arg;
    assert_true(sq_gate_enter(c->g));
    order_add(c->o, c->name);
    while (c->hold && !c->release)
        coro_sleep_ms(1);
    sq_gate_leave(c->g);
}

static void on_cdone(void *arg) { ((struct cw *)arg)->done = 1; }

static void t_coroutines_and_thread(void **state)
{
    (void)state;
    struct sq_gate *g = sq_gate_get(":memory:");
    struct order o = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct cw c1 = {.g = g, .o = &o, .name = '1', .hold = true}, c2 = {.g = g, .o = &o, .name = '2'};
    struct tw t = {.g = g, .o = &o, .name = 't'};
    int64_t guard = time_mono_ms() + 10000;
    loop = h2o_evloop_create();
    coro_thread_init(loop);
    /* a loop thread outside any coroutine never waits here */
    assert_false(sq_gate_enter(g));
    coro_spawn(coro_writer, &c1, on_cdone, &c1); /* holds */
    coro_spawn(coro_writer, &c2, on_cdone, &c2); /* queued first */
    until_waited(g, 1);
    pthread_create(&t.tid, NULL, thread_writer, &t); /* queued second */
    until_waited(g, 2);
    c1.release = 1;
    while ((!c1.done || !c2.done) && time_mono_ms() < guard)
        h2o_evloop_run(loop, 10);
    pthread_join(t.tid, NULL);
    assert_true(c1.done && c2.done);
    o.log[o.n] = 0;
    assert_string_equal(o.log, "12t");
    coro_thread_release();
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    sq_gate_put(g);
}

/* ---- many writers of one file through db_tx ------------------------------ */

#define WRITERS 4
#define ROUNDS 150

static int bump(struct db *db, void *arg)
{
    int64_t v;
    (void)arg;
    int rc = db_query_int(db, "SELECT n FROM counter WHERE id = 1", DB_NOARGS, &v, NULL);
    if (rc)
        return rc;
    return db_exec(db, "UPDATE counter SET n = ? WHERE id = 1", DB_ARGS(DBA_INT(v + 1)), NULL);
}

static void *db_writer(void *arg)
{
    int *fails = arg;
    struct buf err = BUF_INIT(256);
    struct buf url = BUF_INIT(600);
    (void)buf_printf(&url, "sqlite://%s", dbpath);
    struct db *db = db_open(buf_cstr(&url), NULL, &err);
    assert_non_null(db);
    for (int i = 0; i < ROUNDS; i++)
        if (db_tx(db, DB_TX_WRITE, bump, NULL) != DB_OK)
            (*fails)++;
    db_close(db);
    buf_free(&err);
    buf_free(&url);
    return NULL;
}

static void t_db_writers(void **state)
{
    (void)state;
    struct buf err = BUF_INIT(256);
    struct buf url = BUF_INIT(600);
    pthread_t tid[WRITERS];
    int fails[WRITERS] = {0};
    int64_t n = 0;
    (void)buf_printf(&url, "sqlite://%s", dbpath);
    struct db *db = db_open(buf_cstr(&url), NULL, &err);
    assert_non_null(db);
    assert_int_equal(db_exec_script(db, "DROP TABLE IF EXISTS counter; CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER);"
                                        "INSERT INTO counter VALUES (1, 0);"),
                     DB_OK);
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&tid[i], NULL, db_writer, &fails[i]);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(tid[i], NULL);
    assert_int_equal(db_query_int(db, "SELECT n FROM counter WHERE id = 1", DB_NOARGS, &n, NULL), DB_OK);
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(fails[i], 0);
    assert_int_equal(n, WRITERS * ROUNDS);
    db_close(db);
    buf_free(&err);
    buf_free(&url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_fifo_threads),
        cmocka_unit_test(t_recursive),
        cmocka_unit_test(t_shared_by_path),
        cmocka_unit_test(t_coroutines_and_thread),
        cmocka_unit_test(t_db_writers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
