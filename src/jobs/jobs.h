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
 * good: dead at once — bad payload, permanent 4xx). `error` gets a short
 * message for last_error (never a secret).
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
enum { JOBS_OK = 0, JOBS_EDUPLICATE = 1 };
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
};
/* Register before the runner starts (module register_jobs hooks). */
void jobs_register(const struct job_kind *k);

/* Record progress 0..100 (own short transaction). */
int job_progress(struct job *j, int pct);

/* Cron: 5-field expression (min hour dom mon dow; *, lists, ranges, steps).
 * Each tick enqueues `kind` with `payload` (unique per entry and tick). */
void cron_register(const char *name, const char *expr, const char *kind, const char *payload_json);

/* The runner: `threads` worker threads plus the scheduler, each with its
 * own DB connection. Stop waits for running jobs until the deadline; jobs
 * still running then keep their lease and are reclaimed after it expires. */
struct jobs_runner;
struct jobs_runner *jobs_runner_start(const struct config *cfg, int threads, struct buf *err);
void jobs_runner_stop(struct jobs_runner *r, int64_t deadline_ms);

/* Counts for /health and /metrics (cheap query). */
struct jobs_counts {
    int64_t available, scheduled, running, retryable, succeeded, failed, dead, cancelled;
};
int jobs_counts(struct db *db, struct jobs_counts *out) WARN_UNUSED;
/* Prometheus lines for job metrics (appended to /metrics). */
void jobs_metrics_render(struct buf *out);

#endif
