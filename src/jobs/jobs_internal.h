/*
 * jobs_internal.h — what queue.c, runner.c and cron.c share, and what the
 * queue's admin face (src/modules/queue) and tests/unit/test_jobs.c drive
 * directly. Not a public interface.
 *
 * Layering: queue.c owns the table (enqueue, claim, finish, reap, counts)
 * and the in-process registries and metrics; runner.c owns threads and
 * waiting; cron.c owns expressions, the scheduler tick and maintenance.
 * The HTTP admin routes live in src/modules/queue (nothing here includes
 * http/). Every function taking `now_ms` uses it as the wall clock (epoch
 * ms) so tests can move time.
 */
#ifndef TEMEL_JOBS_INTERNAL_H
#define TEMEL_JOBS_INTERNAL_H

#include "db/db.h"
#include "jobs/jobs.h"

#define JOBS_DEFAULT_TIMEOUT_MS 30000
#define JOBS_DEFAULT_ATTEMPTS 3
#define JOBS_MAX_ATTEMPTS 100
#define JOBS_MAX_TIMEOUT_MS (24 * 3600 * 1000)
#define JOBS_NAME_MAX 64       /* kind, queue */
#define JOBS_UNIQUE_MAX 200    /* unique_key bytes */
#define JOBS_PAYLOAD_MAX (1u << 20)
#define JOBS_ERROR_MAX 1000    /* last_error bytes stored */
#define JOBS_BACKOFF_CAP_MS (3600 * 1000)

extern const char *const jobs__state_names[8]; /* index = enum below */
enum jobs_state {
    JS_AVAILABLE, JS_SCHEDULED, JS_RUNNING, JS_RETRYABLE, JS_SUCCEEDED, JS_FAILED, JS_DEAD, JS_CANCELLED
};
extern const char *const jobs__prio_names[3]; /* "high", "normal", "low" */
int jobs__state_from(str_t s);                /* -1 if unknown */

/* ---- registries (filled before the runner starts, read-only after) ---- */
const struct job_kind *jobs__kind(const char *kind);
const struct job_kind *jobs__kind_n(str_t kind);
int jobs__queue_limit_of(str_t queue); /* 0 = unlimited */
size_t jobs__limited_queues(const char *const **names, const int **limits);

/* ---- the table ---- */
/* Same as jobs_enqueue with an explicit clock. */
int jobs__enqueue_at(struct db *db, const char *kind, str_t payload, const struct job_opts *opts, char *id_out,
                     int64_t now_ms) WARN_UNUSED;

struct jobs_claimed {
    char id[37];
    char kind[JOBS_NAME_MAX + 1];
    char queue[JOBS_NAME_MAX + 1];
    struct buf payload;
    int attempt, max_attempts;
    int64_t timeout_ms;
};
/* Claim the next ready job (priority, then run_at) for lease owner `owner`,
 * skipping the queues named in `exclude` (n_exclude may be 0). 1 = claimed
 * into *out (payload buffer reused across calls; free with buf_free), 0 = none,
 * < 0 = db_rc. */
int jobs__claim(struct db *db, const char *owner, const char *const *exclude, size_t n_exclude,
                int64_t lease_margin_ms, int64_t now_ms, struct jobs_claimed *out) WARN_UNUSED;

enum jobs_outcome { JO_SUCCEEDED, JO_RETRY, JO_FAILED, JO_DEAD, JO_LOST, JO_NOUTCOMES };
extern const char *const jobs__outcome_names[JO_NOUTCOMES];
/* Record the end of an attempt held by `owner`. rc is the handler's result;
 * a retry that has attempts left becomes retryable at now + backoff, else
 * dead (on_dead runs in the same transaction); JOB_FAIL becomes failed (on_dead
 * too). result (JSON or empty) and error (text) are stored. *outcome gets what
 * happened; JO_LOST when the lease was no longer ours (nothing changed). */
int jobs__finish(struct db *db, const struct jobs_claimed *c, const char *owner, enum job_result rc, str_t result,
                 str_t error, int64_t backoff_base_ms, int64_t now_ms, enum jobs_outcome *outcome) WARN_UNUSED;
/* Backoff before attempt n+1 after attempt n failed (with jitter). */
int64_t jobs__backoff_ms(int64_t base_ms, int attempt);
/* Reclaim running jobs whose lease ended before now: retryable (run at now)
 * when attempts remain, else dead (with on_dead). *n gets how many. */
int jobs__reap(struct db *db, int64_t now_ms, int *n) WARN_UNUSED;
/* Cancel (available/scheduled/retryable → cancelled, on_dead runs) or retry
 * (failed/dead/cancelled → available, attempts start again). Returns 0 done,
 * 1 not found, 2 wrong state (*state gets it), or db_rc (DB_ECONSTRAINT:
 * retry would break unique_key). */
int jobs__cancel(struct db *db, str_t id, int64_t now_ms, int *state) WARN_UNUSED;
int jobs__retry(struct db *db, str_t id, int64_t now_ms, int *state) WARN_UNUSED;
/* Delete succeeded/cancelled jobs finished before `before_ms`, in batches. */
int jobs__purge(struct db *db, int64_t before_ms, int64_t *removed) WARN_UNUSED;

/* ---- runner glue ---- */
/* What a handler's `struct job *` points into (job_progress needs the owner). */
struct jobs__run {
    struct job pub; /* first member */
    const char *owner;
};
/* A local enqueue happened: wake idle runner threads of this process. */
void jobs__notify(void);
/* Metrics from runner threads. */
void jobs__metrics_record(const char *queue, enum jobs_outcome o, int64_t dur_us);
/* Lease owner name of this process ("host:pid"); threads append ":N". */
const char *jobs__owner_prefix(void);

/* ---- cron ---- */
struct cron_expr {
    uint64_t minute;   /* bits 0..59 */
    uint32_t hour;     /* bits 0..23 */
    uint32_t dom;      /* bits 1..31 */
    uint16_t month;    /* bits 1..12 */
    uint8_t dow;       /* bits 0..6 (7 folded into 0) */
    bool dom_star, dow_star;
};
/* 0, or -1 with a reason in err (may be NULL). */
int cron_parse(const char *s, struct cron_expr *out, struct buf *err) WARN_UNUSED;
bool cron_matches(const struct cron_expr *e, int64_t minute_ms);
/* First matching minute strictly after after_ms (epoch ms, UTC); -1 if none
 * within 5 years (e.g. "0 0 31 2 *"). */
int64_t cron_next(const struct cron_expr *e, int64_t after_ms);
/* One scheduler pass at now_ms: fire due entries (each at most once), in one
 * transaction per entry. *fired gets how many were enqueued. */
int cron__tick(struct db *db, int64_t now_ms, int *fired) WARN_UNUSED;
size_t cron__count(void);
/* The built-in maintenance kind and cron entry. */
void jobs__register_builtin(void);
/* Retention for the maintenance job (set by the runner from its config). */
void jobs__set_retention_days(int64_t days);

#endif
