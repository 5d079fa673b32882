/* Unit tests for src/core/coro: spawn/wait/wake order, wait queues, deadlines,
 * remote wakes, stack reuse, and the switch cost (printed, never asserted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>

#include <cmocka.h>

#define H2O_USE_EPOLL 1
#include <h2o.h>

#include "core/coro.h"
#include "core/timeutil.h"

static h2o_evloop_t *loop;

static int setup(void **state)
{
    (void)state;
    loop = h2o_evloop_create();
    coro_thread_init(loop);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    coro_thread_release();
    h2o_evloop_run(loop, 0); /* let h2o finish closing the scheduler's queue socket */
    h2o_evloop_destroy(loop);
    return 0;
}

/* Run the loop until *flag is set (bounded by a hang guard, not a timing assert). */
static void run_until(const int *flag)
{
    int64_t guard = time_mono_ms() + 10000;
    while (!*flag && time_mono_ms() < guard)
        h2o_evloop_run(loop, 10);
    assert_true(*flag);
}

struct trace {
    char log[64];
    int n;
    int done;
    struct coro *waiter;
    struct coro_wq wq;
};

static void t_add(struct trace *t, char c)
{
    if (t->n < (int)sizeof(t->log) - 1)
        t->log[t->n++] = c;
}

static void on_done(void *arg) { ((struct trace *)arg)->done++; }

static void body_wait(void *arg)
{
    struct trace *t = arg;
    t_add(t, 'a');
    t->waiter = coro_self();
    coro_wait();
    t_add(t, 'c');
}

static void t_spawn_wait_wake(void **state)
{
    (void)state;
    struct trace t = {0};
    assert_null(coro_self());
    coro_spawn(body_wait, &t, on_done, &t);
    t_add(&t, 'b'); /* spawn returned at the first wait */
    assert_int_equal(t.done, 0);
    coro_wake(t.waiter);
    coro_wake(t.waiter); /* a second wake is a no-op */
    t_add(&t, 'w');      /* the wake does not run the coroutine inline */
    run_until(&t.done);
    t.log[t.n] = 0;
    assert_string_equal(t.log, "abwc");
    assert_int_equal(t.done, 1);
}

static void body_nowait(void *arg) { t_add(arg, 'x'); }

static void t_finish_without_wait(void **state)
{
    (void)state;
    struct trace t = {0};
    coro_spawn(body_nowait, &t, on_done, &t);
    assert_int_equal(t.done, 1); /* on_done ran inside coro_spawn */
    struct coro_stats st = coro_thread_stats();
    assert_int_equal(st.live, 0);
}

struct qarg {
    struct trace *t;
    char id;
};

static void body_queue(void *arg)
{
    struct qarg *q = arg;
    assert_true(coro_wq_wait(&q->t->wq, 0));
    t_add(q->t, q->id);
}

static void on_qdone(void *arg) { ((struct qarg *)arg)->t->done++; }

static void t_wait_queue_fifo(void **state)
{
    (void)state;
    struct trace t = {0};
    struct qarg a[4];
    for (int i = 0; i < 4; i++) {
        a[i].t = &t;
        a[i].id = (char)('1' + i);
        coro_spawn(body_queue, &a[i], on_qdone, &a[i]);
    }
    assert_int_equal(t.wq.n, 4);
    assert_true(coro_wq_wake_one(&t.wq));
    coro_wq_wake_all(&t.wq);
    assert_int_equal(t.wq.n, 0);
    assert_false(coro_wq_wake_one(&t.wq));
    while (t.done < 4)
        h2o_evloop_run(loop, 10);
    t.log[t.n] = 0;
    assert_string_equal(t.log, "1234");
}

static void body_timeout(void *arg)
{
    struct trace *t = arg;
    int64_t t0 = time_mono_ms();
    bool woken = coro_wq_wait(&t->wq, t0 + 20);
    assert_false(woken);
    assert_true(time_mono_ms() >= t0 + 20);
    assert_int_equal(t->wq.n, 0); /* left the queue on timeout */
    coro_sleep_ms(5);
    t_add(t, 't');
}

static void t_deadline(void **state)
{
    (void)state;
    struct trace t = {0};
    coro_spawn(body_timeout, &t, on_done, &t);
    assert_int_equal(t.wq.n, 1);
    run_until(&t.done);
    assert_int_equal(t.n, 1);
}

struct remote {
    struct coro *c;
    pthread_t tid;
    int done;
    int value;
};

static void *remote_thread(void *arg)
{
    struct remote *r = arg;
    r->value = 42;
    coro_wake_remote(r->c);
    return NULL;
}

static void body_remote(void *arg)
{
    struct remote *r = arg;
    r->c = coro_self();
    pthread_create(&r->tid, NULL, remote_thread, r);
    coro_wait_remote();
    assert_int_equal(r->value, 42);
}

static void on_rdone(void *arg) { ((struct remote *)arg)->done = 1; }

static void t_remote_wake(void **state)
{
    (void)state;
    struct remote r = {0};
    coro_spawn(body_remote, &r, on_rdone, &r);
    run_until(&r.done);
    pthread_join(r.tid, NULL);
}

/* Uses most of the stack: a coroutine stack really is CORO_STACK_SIZE. */
static size_t deep(size_t n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    if (n == 0)
        return (size_t)pad[0];
    return deep(n - 1) + (size_t)pad[0];
}

static void body_deep(void *arg)
{
    *(size_t *)arg = deep(CORO_STACK_SIZE / 1024 / 2);
}

static void t_stack_depth_and_reuse(void **state)
{
    (void)state;
    size_t v = 0;
    struct coro_stats before = coro_thread_stats();
    for (int i = 0; i < 100; i++)
        coro_spawn(body_deep, &v, NULL, NULL);
    struct coro_stats after = coro_thread_stats();
    assert_true(v > 0);
    assert_true(after.stacks_mapped - before.stacks_mapped <= 1); /* pooled, not mapped per spawn */
}

static struct coro *pingpong_peer;
static void body_ping(void *arg)
{
    long *n = arg;
    pingpong_peer = coro_self();
    while (*n > 0) {
        coro_wait();
        (*n)--;
    }
}

static void t_switch_cost(void **state)
{
    (void)state;
    long n = 200000, total = n;
    int64_t t0 = time_mono_us();
    for (int i = 0; i < 100000; i++)
        coro_spawn(body_nowait, &(struct trace){0}, NULL, NULL);
    int64_t t1 = time_mono_us();
    coro_spawn(body_ping, &n, NULL, NULL);
    int64_t t2 = time_mono_us();
    while (n > 0) {
        coro_wake(pingpong_peer);
        h2o_evloop_run(loop, 0);
    }
    int64_t t3 = time_mono_us();
    /* Printed for docs/PERFORMANCE.md, never asserted. */
    printf("# coro: spawn+finish %.1f ns; wait+wake+resume through the loop %.1f ns\n",
           (double)(t1 - t0) * 1000.0 / 100000, (double)(t3 - t2) * 1000.0 / (double)total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_spawn_wait_wake),  cmocka_unit_test(t_finish_without_wait),
        cmocka_unit_test(t_wait_queue_fifo),  cmocka_unit_test(t_deadline),
        cmocka_unit_test(t_remote_wake),      cmocka_unit_test(t_stack_depth_and_reuse),
        cmocka_unit_test(t_switch_cost),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
