/*
 * workpool.c — see workpool.h.
 *
 * One mutex-protected FIFO of jobs and a condition variable for the
 * workers. A job lives on the waiting coroutine's stack (it waits until the
 * worker's remote wake has arrived, so the stack outlives the job); the
 * worker runs it and sends the coroutine a remote wake through its loop's
 * multithread queue.
 */
#include "core/workpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/common.h"
#include "core/coro.h"

#include "core/banned.h"

struct work_job {
    void (*fn)(void *);
    void *arg;
    struct coro *waiter;
    struct work_job *next;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct work_job *head, *tail;
    pthread_t *tids;
    int nthreads;
    bool stop, started;
    long queued, running, refused_total, done_total;
    atomic_long admitted;
    long queue_max;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *worker(void *arg)
{
    UNUSED(arg);
    pthread_mutex_lock(&W.mu);
    for (;;) {
        while (!W.head && !W.stop)
            pthread_cond_wait(&W.cv, &W.mu);
        if (!W.head && W.stop)
            break;
        struct work_job *j = W.head;
        W.head = j->next;
        if (!W.head)
            W.tail = NULL;
        W.queued--;
        W.running++;
        pthread_mutex_unlock(&W.mu);
        j->fn(j->arg);
        /* the message's queue (a mutex) orders fn's writes before the waiter reads them */
        coro_wake_remote(j->waiter);
        pthread_mutex_lock(&W.mu);
        W.running--;
        W.done_total++;
    }
    pthread_mutex_unlock(&W.mu);
    return NULL;
}

void work_init(int threads, int queue_max)
{
    if (W.started)
        return;
    W.nthreads = threads < 1 ? 1 : threads;
    W.queue_max = queue_max < 1 ? 1 : queue_max;
    W.tids = xcalloc((size_t)W.nthreads, sizeof(*W.tids));
    for (int i = 0; i < W.nthreads; i++)
        if (pthread_create(&W.tids[i], NULL, worker, NULL) != 0)
            FATAL("cannot start a worker thread");
    W.started = true;
}

void work_shutdown(void)
{
    if (!W.started)
        return;
    pthread_mutex_lock(&W.mu);
    W.stop = true;
    pthread_cond_broadcast(&W.cv);
    pthread_mutex_unlock(&W.mu);
    for (int i = 0; i < W.nthreads; i++)
        pthread_join(W.tids[i], NULL);
    free(W.tids);
    W.tids = NULL;
    W.started = false;
    W.stop = false;
}

void work_run(void (*fn)(void *arg), void *arg)
{
    struct coro *self = coro_self();
    if (!self || !W.started) {
        fn(arg);
        return;
    }
    struct work_job j = {.fn = fn, .arg = arg, .waiter = self, .next = NULL};
    pthread_mutex_lock(&W.mu);
    if (W.tail)
        W.tail->next = &j;
    else
        W.head = &j;
    W.tail = &j;
    W.queued++;
    pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
    coro_wait_remote(); /* j lives on this stack until the worker's wake has arrived */
}

bool work_admit(void)
{
    if (!W.started)
        return true;
    long n = atomic_fetch_add(&W.admitted, 1);
    if (n >= W.queue_max) {
        atomic_fetch_sub(&W.admitted, 1);
        pthread_mutex_lock(&W.mu);
        W.refused_total++;
        pthread_mutex_unlock(&W.mu);
        return false;
    }
    return true;
}

void work_release(void)
{
    if (W.started)
        atomic_fetch_sub(&W.admitted, 1);
}

struct work_stats work_stats(void)
{
    struct work_stats s;
    pthread_mutex_lock(&W.mu);
    s.queued = W.queued;
    s.running = W.running;
    s.refused_total = W.refused_total;
    s.done_total = W.done_total;
    pthread_mutex_unlock(&W.mu);
    s.admitted = atomic_load(&W.admitted);
    return s;
}
