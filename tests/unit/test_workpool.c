/* Unit tests for src/core/workpool: inline off the loops, on worker threads from coroutines
 * (the loop keeps running), admission tickets to their bound and one past. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include <cmocka.h>

#define H2O_USE_EPOLL 1
#include <h2o.h>

#include "core/coro.h"
#include "core/timeutil.h"
#include "core/workpool.h"

static h2o_evloop_t *loop;

static int setup(void **state)
{
    (void)state;
    loop = h2o_evloop_create();
    coro_thread_init(loop);
    work_init(2, 3);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    work_shutdown();
    coro_thread_release();
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    return 0;
}

struct job {
    pthread_t ran_on;
    int value;
};

static void square(void *arg)
{
    struct job *j = arg;
    j->ran_on = pthread_self();
    j->value *= j->value;
}

static void t_inline_outside_a_coroutine(void **state)
{
    (void)state;
    struct job j = {.value = 7};
    work_run(square, &j);
    assert_int_equal(j.value, 49);
    assert_true(pthread_equal(j.ran_on, pthread_self()));
}

struct co {
    struct job j;
    int done;
};

static void body(void *arg)
{
    struct co *c = arg;
    work_run(square, &c->j);
}

static void on_done(void *arg) { ((struct co *)arg)->done = 1; }

static void t_on_workers_from_coroutines(void **state)
{
    (void)state;
    enum { N = 50 };
    struct co cs[N];
    for (int i = 0; i < N; i++) {
        cs[i] = (struct co){.j = {.value = i}};
        coro_spawn(body, &cs[i], on_done, &cs[i]);
        assert_int_equal(cs[i].done, 0); /* waiting for its worker, not run inline */
    }
    int64_t guard = time_mono_ms() + 10000;
    int left = N;
    while (left && time_mono_ms() < guard) {
        h2o_evloop_run(loop, 10);
        left = 0;
        for (int i = 0; i < N; i++)
            left += !cs[i].done;
    }
    assert_int_equal(left, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(cs[i].j.value, i * i);
        assert_false(pthread_equal(cs[i].j.ran_on, pthread_self()));
    }
    struct work_stats st = work_stats();
    assert_int_equal(st.queued, 0);
    assert_true(st.done_total >= N);
}

static void t_admission_bound(void **state)
{
    (void)state;
    /* queue_max is 3: three tickets, the fourth is refused, a release makes room again */
    long refused = work_stats().refused_total;
    assert_true(work_admit());
    assert_true(work_admit());
    assert_true(work_admit());
    assert_false(work_admit());
    assert_int_equal(work_stats().refused_total, refused + 1);
    assert_int_equal(work_stats().admitted, 3);
    work_release();
    assert_true(work_admit());
    assert_false(work_admit());
    for (int i = 0; i < 3; i++)
        work_release();
    assert_int_equal(work_stats().admitted, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_inline_outside_a_coroutine),
        cmocka_unit_test(t_on_workers_from_coroutines),
        cmocka_unit_test(t_admission_bound),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
