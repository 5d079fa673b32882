/*
 * workpool.h — a bounded pool of threads for CPU-heavy work (argon2id
 * today; PDF and image work later), so an event loop never spends tens of
 * milliseconds of CPU on one request (ARCHITECTURE §1, STYLE §13).
 *
 * work_run(fn, arg) from a coroutine queues fn(arg) on the pool and waits
 * (yielding; the loop serves other requests) until it has run. Anywhere
 * else (job threads, CLI, tests, or before work_init) it runs fn inline.
 *
 * Admission is separate from queueing: a request that will need the pool
 * takes a ticket with work_admit() before its handler runs, and gives it
 * back with work_release(). At most `queue_max` tickets are out at once
 * process-wide; past that work_admit() refuses and the request answers
 * 503 + Retry-After instead of queueing without bound. work_run itself
 * never refuses (its callers were admitted).
 */
#ifndef TEMEL_WORKPOOL_H
#define TEMEL_WORKPOOL_H

#include <stdbool.h>

/* Start `threads` workers (>= 1); queue_max tickets (>= 1). Once, from main. */
void work_init(int threads, int queue_max);
/* Stop the workers (after the loops have stopped). */
void work_shutdown(void);

void work_run(void (*fn)(void *arg), void *arg);

bool work_admit(void);
void work_release(void);

/* For /metrics and tests. */
struct work_stats {
    long queued, running, admitted, refused_total, done_total;
};
struct work_stats work_stats(void);

#endif
