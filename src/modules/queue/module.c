/*
 * module.c — the jobs module: the queue's settings, health and metrics, its
 * admin routes, the built-in maintenance kind, and the test kinds when
 * TEMEL_ENV=test.
 *
 * Settings (a bad value exits 2 naming the variable):
 *   TEMEL_JOB_THREADS          runner threads in serve (2; 0 = none; worker needs >= 1)
 *   TEMEL_JOB_POLL_MS          idle poll for jobs enqueued by other processes (200)
 *   TEMEL_JOB_LEASE_MARGIN_MS  lease = job timeout + this (5000)
 *   TEMEL_JOB_BACKOFF_MS       retry backoff base (5000)
 *   TEMEL_JOB_RETENTION_DAYS   purge succeeded/cancelled jobs after (7)
 *   TEMEL_JOB_DRAIN_MS         shutdown wait for running jobs (10000)
 */
#include "modules/queue/queue.h"

#include "core/json.h"
#include "db/db.h"
#include "jobs/jobs_internal.h"
#include "modules/queue/queue_internal.h"

#include "core/banned.h"

static int config(const struct config *cfg, struct buf *err)
{
    struct jobs_config c = JOBS_CONFIG_DEFAULT;
    int64_t threads;
    UNUSED(cfg);
    if (config_env_int("TEMEL_JOB_THREADS", c.threads, 0, 64, &threads, err) ||
        config_env_int("TEMEL_JOB_POLL_MS", c.poll_ms, 10, 60000, &c.poll_ms, err) ||
        config_env_int("TEMEL_JOB_LEASE_MARGIN_MS", c.lease_margin_ms, 100, 3600000, &c.lease_margin_ms, err) ||
        config_env_int("TEMEL_JOB_BACKOFF_MS", c.backoff_ms, 1, 3600000, &c.backoff_ms, err) ||
        config_env_int("TEMEL_JOB_RETENTION_DAYS", c.retention_days, 1, 3650, &c.retention_days, err) ||
        config_env_int("TEMEL_JOB_DRAIN_MS", c.drain_ms, 0, 600000, &c.drain_ms, err))
        return -1;
    c.threads = (int)threads;
    jobs_configure(&c);
    return 0;
}

/* "queue": {"status", "pending", "running", "failed", "dead", "runner_threads"};
 * the queue being down never makes the instance unready (the database check does). */
static bool health(struct db *db, bool db_up, struct jw *w)
{
    struct jobs_counts jc;
    bool q_up = db_up && jobs_counts(db, &jc) == DB_OK;
    jw_key(w, "queue");
    jw_obj_begin(w);
    jw_key(w, "status");
    jw_cstr(w, q_up ? "up" : "down");
    if (q_up) {
        jw_key(w, "pending");
        jw_int(w, jc.available + jc.scheduled + jc.retryable);
        jw_key(w, "running");
        jw_int(w, jc.running);
        jw_key(w, "failed");
        jw_int(w, jc.failed);
        jw_key(w, "dead");
        jw_int(w, jc.dead);
    }
    jw_key(w, "runner_threads");
    jw_int(w, jobs_config()->threads);
    jw_obj_end(w);
    return true;
}

static void register_routes(void)
{
    queue__register_admin_routes();
    queue__register_test_routes();
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    UNUSED(db);
    UNUSED(err);
    if (cfg->env == ENV_TEST)
        queue__register_test_kinds();
    return 0;
}

const struct module jobs_module = {
    .name = "jobs",
    .config = config,
    .register_routes = register_routes,
    .register_jobs = jobs__register_builtin,
    .init = init,
    .health = health,
    .metrics = jobs_metrics_render, /* outcomes, durations, queue depth */
};
