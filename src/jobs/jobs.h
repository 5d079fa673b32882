/*
 * jobs.h — the durable job queue (ARCHITECTURE §1, API.md §6).
 *
 * Every third-party call (mail, SMS, webhooks, AI providers, payments) runs
 * as a job, never on an event loop. Jobs live in the database table `jobs`
 * on both engines; a job exists iff the transaction that enqueued it commits.
 *
 * Handlers are registered by kind ("mail.send") in a table at start. A
 * handler runs on a runner thread with that thread's own DB connection; it
 * returns JOB_OK (succeeded; `result` may hold JSON), JOB_RETRY (failed, try
 * again with backoff until max_attempts, then dead), or JOB_FAIL (failed for
 * good at once — bad payload, permanent 4xx: state `failed`, which is a dead
 * letter like `dead`, only the reason differs). `error` gets a short
 * message for last_error (never a secret).
 *
 * States: available (ready) · scheduled (run_at in the future at enqueue) ·
 * running (leased) · retryable (waiting for its backoff) · succeeded ·
 * failed (JOB_FAIL) · dead (attempts used up, or lease expired on the last
 * attempt) · cancelled (admin). available/scheduled/retryable are claimable
 * once run_at has passed; the last four are final (admin may retry
 * failed/dead/cancelled).
 *
 * Timeouts and leases: a claim sets locked_until = now + timeout + lease
 * margin (TEMEL_JOB_LEASE_MARGIN_MS). Handlers MUST honour
 * j->deadline_mono_ms (pass it to outbound calls; the thread's DB
 * connection already has it as its statement deadline): the runner cannot
 * interrupt a handler, a handler that returns after its deadline is counted
 * as a failed attempt whatever it returned, and once its lease has expired
 * another worker may reclaim and run the job again. Delivery is therefore
 * at-least-once; make handlers idempotent.
 *
 * Backoff after a failed attempt n: base * 2^(n-1), capped at 1 h, with
 * "equal jitter" (half fixed, half random); base = TEMEL_JOB_BACKOFF_MS.
 */
#ifndef TEMEL_JOBS_H
#define TEMEL_JOBS_H

#include <jansson.h>

#include "core/buf.h"
#include "core/config.h"

struct db;

enum job_priority { JOB_PRIO_HIGH = 0, JOB_PRIO_NORMAL = 1, JOB_PRIO_LOW = 2 };

struct job_opts {
    const char *queue;          /* NULL: the kind's registered queue, else "default" */
    enum job_priority priority; /* default JOB_PRIO_NORMAL (0-init is HIGH: use JOB_OPTS_DEFAULT) */
    int64_t run_at_ms;          /* epoch ms; 0 = now */
    int max_attempts;           /* 0 = 3 */
    const char *unique_key;     /* dedupe while an unfinished job has the same key; NULL = none */
    int timeout_ms;             /* 0 = the kind's default (30 s) */
};
#define JOB_OPTS_DEFAULT ((struct job_opts){NULL, JOB_PRIO_NORMAL, 0, 0, NULL, 0})

/* Enqueue. When db is inside db_tx() the job joins that transaction.
 * payload must be a JSON object text. id_out (may be NULL) receives the
 * UUIDv7 (37 bytes). With a unique_key already held by an unfinished job,
 * returns JOBS_EDUPLICATE and id_out gets the existing job's id. */
enum { JOBS_OK = 0, JOBS_EDUPLICATE = 1, JOBS_EINVAL = -16 /* unknown kind, payload not an object, bad opts */ };
/* Other negative values are enum db_rc from the database. */
int jobs_enqueue(struct db *db, const char *kind, str_t payload, const struct job_opts *opts, char *id_out) WARN_UNUSED;

enum job_result { JOB_OK = 0, JOB_RETRY = -1, JOB_FAIL = -2 };

struct job {
    char id[37];
    const char *kind;
    const char *queue;
    json_t *payload;   /* parsed object, owned by the runner */
    int attempt;       /* 1-based: this is the Nth try */
    int max_attempts;
    int64_t deadline_mono_ms; /* the job's timeout; handlers pass it to outbound calls */
    struct db *db;     /* the runner thread's connection */
    const struct config *cfg;
};

typedef enum job_result (*job_handler)(struct job *j, struct buf *result, struct buf *error);

struct job_kind {
    const char *kind;     /* "mail.send" */
    job_handler handler;
    const char *queue;    /* default queue for this kind */
    int timeout_ms;       /* default 30000 */
    /* called when a job of this kind goes dead/cancelled, inside the transaction that
     * marks it (e.g. refund credit). May be NULL. */
    int (*on_dead)(struct db *db, const char *job_id, json_t *payload);
    /* The payload carries secrets (a reset link, an OTP): the admin API shows
     * it redacted, and it is wiped ('{}') once the job succeeds, fails or dies. */
    bool sensitive;
};
/* Register before the runner starts (module register_jobs hooks). The
 * struct must live for the whole process; registering a kind twice is a BUG(). */
void jobs_register(const struct job_kind *k);

/* Per-queue concurrency: at most `max` jobs of `queue` run at once in one
 * runner (per process, not cluster-wide). Unlisted queues are limited only
 * by the thread count. Call before the runner starts. */
void jobs_queue_limit(const char *queue, int max);

/* Cancel a job that has not started (available/scheduled/retryable →
 * cancelled; its kind's on_dead runs in the same transaction, joining the
 * caller's). 0 done, 1 not found, 2 wrong state (*state gets the state's
 * index in JOB_STATE_NAMES order: available, scheduled, running, retryable,
 * succeeded, failed, dead, cancelled), or a db_rc. */
int jobs_cancel(struct db *db, str_t id, int64_t now_ms, int *state) WARN_UNUSED;

/* Record progress 0..100 (own short transaction; ignored once the lease is lost). */
int job_progress(struct job *j, int pct);

/* Cron: 5-field expression (min hour dom mon dow; *, lists, ranges, steps;
 * dow 0 and 7 are Sunday; when both dom and dow are restricted a day
 * matches either, as in Vixie cron), evaluated in UTC. Each tick enqueues
 * `kind` with `payload` (unique per entry and tick). With several instances
 * exactly one fires a tick (row lock on job_cron + advisory lock on
 * PostgreSQL). After downtime a missed entry fires once, not once per missed
 * tick. A malformed expression is a BUG() (entries are code, not input).
 * Strings are copied. */
void cron_register(const char *name, const char *expr, const char *kind, const char *payload_json);

/* Maintenance hooks: the built-in `jobs.maintenance` job (hourly) runs each
 * hook after purging finished jobs older than TEMEL_JOB_RETENTION_DAYS,
 * outside any transaction (open your own; keep each one short, e.g. delete
 * in batches); *removed gets the number of rows deleted. A hook returning
 * non-zero makes the job retry later. For
 * modules' purges (expired rate-limit and idempotency rows, tokens, ...). */
typedef int (*jobs_purge_fn)(struct db *db, int64_t now_ms, int64_t *removed);
void jobs_maintenance_register(const char *name, jobs_purge_fn fn);

/* The queue's settings. The jobs module reads them from the environment
 * (TEMEL_JOB_*, src/modules/jobs) and installs them with jobs_configure()
 * before the runner starts; until then jobs_config() gives the defaults. */
struct jobs_config {
    int threads;             /* TEMEL_JOB_THREADS: runner threads in serve (default 2, 0 = none) */
    int64_t poll_ms;         /* TEMEL_JOB_POLL_MS: idle poll for jobs enqueued elsewhere (200) */
    int64_t lease_margin_ms; /* TEMEL_JOB_LEASE_MARGIN_MS: lease = job timeout + this (5000) */
    int64_t backoff_ms;      /* TEMEL_JOB_BACKOFF_MS: retry backoff base (5000) */
    int64_t retention_days;  /* TEMEL_JOB_RETENTION_DAYS: purge succeeded/cancelled after (7) */
    int64_t drain_ms;        /* TEMEL_JOB_DRAIN_MS: shutdown wait for running jobs (10000) */
};
#define JOBS_CONFIG_DEFAULT ((struct jobs_config){2, 200, 5000, 5000, 7, 10000})
const struct jobs_config *jobs_config(void);
/* The queue's delay before retrying after failed attempt n (1-based): the
 * configured base doubling per attempt, capped at an hour, with jitter. For a
 * handler that retries part of its work itself (marketing's deferred
 * recipients), so that it backs off as the queue does. */
int64_t jobs_backoff_ms(int attempt);
void jobs_configure(const struct jobs_config *c);

/* The runner: `threads` worker threads plus the scheduler, each with its
 * own DB connection. Stop waits for running jobs until the deadline; jobs
 * still running then keep their lease and are reclaimed after it expires. */
struct jobs_runner;
/* NULL with a message in err when a DB connection cannot be opened. The
 * caller must have blocked the signals it waits for (the threads inherit
 * the mask). */
struct jobs_runner *jobs_runner_start(const struct config *cfg, int threads, struct buf *err);
/* deadline_ms is CLOCK_MONOTONIC ms (time_mono_ms() + budget). No new job is
 * claimed after the call. Threads still running a handler at the deadline
 * are abandoned (the process is about to exit) and r is not freed. */
void jobs_runner_stop(struct jobs_runner *r, int64_t deadline_ms);

/* Counts for /health and /metrics (cheap query). */
struct jobs_counts {
    int64_t available, scheduled, running, retryable, succeeded, failed, dead, cancelled;
};
int jobs_counts(struct db *db, struct jobs_counts *out) WARN_UNUSED;
/* Prometheus lines for job metrics (appended to /metrics): outcomes by
 * queue and the duration histogram of jobs run by this process, and queue
 * depth by queue and state from the database (db may be NULL: no depth).
 * (Signature change from the first draft: the depth gauge needs a connection.) */
void jobs_metrics_render(struct db *db, struct buf *out);

#endif
