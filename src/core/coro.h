/*
 * coro.h — stackful coroutines and the per-thread scheduler that runs them
 * on the thread's h2o event loop (ARCHITECTURE §1: every handler runs in a
 * coroutine; waiting yields to the loop; handler code stays sequential).
 *
 * Model (lwan's coroutine per request, on h2o's evloop):
 *   - A loop thread calls coro_thread_init(loop) once. Other threads (job
 *     runner, CLI, the main thread) never do: there coro_self() is NULL and
 *     code that could wait takes its blocking path instead.
 *   - coro_spawn(fn, arg, on_done, done_arg) runs fn on its own stack until
 *     fn first waits or returns, then returns. When fn returns, on_done runs
 *     on the loop's own stack (inside coro_spawn if fn never waited), and the
 *     stack goes back to the thread's pool.
 *   - Waiting: coro_wait()/coro_wait_until() suspend the current coroutine;
 *     coro_wake(c) on the same thread makes it runnable. The scheduler
 *     resumes runnable coroutines from the loop (a zero timeout), never
 *     inside the waker's call, so a waker may hold any state it likes.
 *   - Stacks: CORO_STACK_SIZE bytes, mmap'd with a PROT_NONE guard page
 *     below (an overflow is a SIGSEGV, never silent corruption), pooled per
 *     thread (at most CORO_POOL_MAX kept). Deep recursion on a coroutine is
 *     bounded by the callers (JSON depth 32, filter terms, ...); tests drive
 *     those bounds through the real server.
 *   - ASan builds annotate every switch (__sanitizer_start/finish_switch_fiber)
 *     so the sanitizer keeps tracking each stack.
 *
 * Contract: a coroutine belongs to the thread that spawned it; every call
 * here except coro_wake_remote() is owner-thread only. A coroutine must not
 * wait while it holds something another coroutine of its thread needs
 * without that other one being able to wait for it (see db.h: a SQLite
 * transaction pins its connection; others queue).
 */
#ifndef TEMEL_CORO_H
#define TEMEL_CORO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CORO_STACK_SIZE (256u << 10)
#define CORO_POOL_MAX 256

struct st_h2o_evloop_t;
struct coro;
typedef void (*coro_fn)(void *arg);

/* Loop threads only: bind this thread's scheduler to its loop / tear it
 * down (after the loop has stopped; no coroutine may be alive). */
void coro_thread_init(struct st_h2o_evloop_t *loop);
void coro_thread_release(void);
/* This thread's loop, or NULL on a thread without a scheduler. */
struct st_h2o_evloop_t *coro_loop(void);

/* Start fn(arg) on a new coroutine (see above). Never fails (stack
 * allocation failure is fatal, like xmalloc). Returns the coroutine, which
 * may already be finished (then the pointer must not be used). */
void coro_spawn(coro_fn fn, void *arg, coro_fn on_done, void *done_arg);

/* The running coroutine, or NULL (not in a coroutine). */
struct coro *coro_self(void);

/* Suspend the running coroutine until coro_wake(). BUG() outside one. */
void coro_wait(void);
/* Suspend until coro_wake() or until deadline_mono_ms (CLOCK_MONOTONIC ms;
 * 0 = none). true = woken, false = timed out. */
bool coro_wait_until(int64_t deadline_mono_ms);
/* Sleep (yielding) for ms; outside a coroutine, nanosleep. */
void coro_sleep_ms(int64_t ms);
/* Make c runnable (owner thread). Waking a coroutine that is not waiting
 * (or already woken) does nothing. */
void coro_wake(struct coro *c);
/* From any thread: wake c on its owner thread. c must be waiting for it in
 * coro_wait_remote() (or about to): the message lives in the coroutine, so
 * exactly one remote wake goes with each coro_wait_remote(), and c does not
 * go on until that message has arrived (never a stale message in flight). */
void coro_wake_remote(struct coro *c);
/* Wait until the remote wake meant for this coroutine has arrived (it may
 * have been sent already). Other wakes meanwhile are ignored. */
void coro_wait_remote(void);

/* The running coroutine's deadline (CLOCK_MONOTONIC ms, 0 = none) for the
 * work it does, e.g. database statements on a connection it shares with
 * other coroutines (db.c applies it before each statement). Outside a
 * coroutine: set does nothing, get returns 0. */
void coro_set_deadline(int64_t deadline_mono_ms);
int64_t coro_get_deadline(void);

/* A FIFO of waiting coroutines (one thread). */
struct coro_wq {
    struct coro *head, *tail;
    size_t n;
};
/* Wait at the tail of q until woken by coro_wq_wake_one/all (true) or until
 * the deadline (false; then no longer queued). Deadline 0 = none. */
bool coro_wq_wait(struct coro_wq *q, int64_t deadline_mono_ms);
/* Wake the head of q (removing it); false when q is empty. */
bool coro_wq_wake_one(struct coro_wq *q);
void coro_wq_wake_all(struct coro_wq *q);

/* Counters for tests and /metrics (this thread). */
struct coro_stats {
    uint64_t spawned, switches, stacks_mapped;
    uint32_t live, pooled;
};
struct coro_stats coro_thread_stats(void);

#endif
