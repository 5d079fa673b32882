/*
 * runner.c — runner threads and the scheduler thread (jobs.h).
 *
 * Design:
 *  - N worker threads, each with its own DB connection, loop: claim one job,
 *    run its handler, record the end of the attempt. The lease owner is
 *    "host:pid:thread".
 *  - Idle cost: at most one idle thread (the "poller") waits with a timeout
 *    of TEMEL_JOB_POLL_MS to see jobs enqueued by other processes; the other
 *    idle threads wait without a timeout. A local jobs_enqueue wakes them
 *    all (jobs__notify); a thread that claimed a job wakes one more, so a
 *    backlog fans out to every thread. Because a local enqueue may still be
 *    inside its transaction when the notify arrives, a thread woken by a
 *    notify that then finds nothing looks once more after 20 ms.
 *  - Per-queue limits (jobs_queue_limit) are per process: claims skip the
 *    queues at their limit, and when any limit exists claims are serialised
 *    within the process so two threads cannot both take the last slot.
 *  - SQLite has one writer: the runner's own writes (claim, finish) take a
 *    process mutex instead of meeting in SQLite's busy handler, whose
 *    millisecond sleeps would cap throughput at a few hundred jobs/s.
 *  - The scheduler thread (own connection) fires cron entries once a minute
 *    and reclaims expired leases once a second.
 *  - Stop: no new claims; running handlers finish (they honour their own
 *    deadlines); threads not done at the stop deadline are abandoned.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/json.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "jobs/jobs_internal.h"

#include "core/banned.h"

#define RECHECK_MS 20
#define REAP_INTERVAL_MS 1000
#define DB_RETRY_MS 1000
#define RESULT_MAX (1u << 20)

struct rthread {
    struct jobs_runner *r;
    int idx;
    pthread_t tid;
    struct db *db;
    char owner[160];
    atomic_bool done;
};

struct jobs_runner {
    const struct config *cfg;
    int n;
    struct rthread *t;
    struct rthread sched;
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* idle workers */
    pthread_cond_t sched_cv; /* the scheduler's sleep */
    bool stopping;
    bool poller_busy;
    uint64_t wake_seq;
    int *running;            /* per limited queue (jobs__limited_queues order) */
    size_t nlimits;
    pthread_mutex_t claim_mu; /* serialises claims when limits exist, and every runner write on SQLite */
    bool serialize;           /* limits exist or the database is SQLite */
    bool sqlite;
};

static _Atomic(struct jobs_runner *) g_runner;
static struct jobs_config g_jcfg = JOBS_CONFIG_DEFAULT;

const struct jobs_config *jobs_config(void) { return &g_jcfg; }
void jobs_configure(const struct jobs_config *c) { g_jcfg = *c; }
int64_t jobs_backoff_ms(int attempt) { return jobs__backoff_ms(g_jcfg.backoff_ms, attempt); }
static char g_owner_prefix[128];
static pthread_once_t g_owner_once = PTHREAD_ONCE_INIT;

static void owner_init(void)
{
    char host[64];
    if (gethostname(host, sizeof(host)) != 0)
        str_copy(host, "host", sizeof(host));
    host[sizeof(host) - 1] = '\0';
    struct buf b = BUF_INIT(sizeof(g_owner_prefix) - 1);
    (void)buf_printf(&b, "%s:%ld", host, (long)getpid());
    str_copy(g_owner_prefix, buf_ok(&b) ? buf_cstr(&b) : "temel", sizeof(g_owner_prefix));
    buf_free(&b);
}

const char *jobs__owner_prefix(void)
{
    pthread_once(&g_owner_once, owner_init);
    return g_owner_prefix;
}

void jobs__notify(void)
{
    struct jobs_runner *r = atomic_load(&g_runner);
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->wake_seq++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Wait on cv for ms (< 0: no timeout); mu held. */
static void cv_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    if (ms < 0) {
        pthread_cond_wait(cv, mu);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

/* ---- one attempt ----------------------------------------------------------- */

static void run_one(struct rthread *t, const struct jobs_claimed *c)
{
    struct jobs_runner *r = t->r;
    const struct job_kind *k = jobs__kind(c->kind);
    struct buf result = BUF_INIT(RESULT_MAX), error = BUF_INIT(BUF_MAX_SMALL);
    enum job_result res;
    json_t *payload = NULL;
    int64_t t0 = time_mono_us();

    if (!k) {
        res = JOB_RETRY;
        (void)buf_puts(&error, "no handler for this kind in this process");
    } else if (json_parse_strict(buf_str(&c->payload), &payload, NULL) != JSON_IN_OK || !json_is_object(payload)) {
        res = JOB_FAIL;
        (void)buf_puts(&error, "payload is not a JSON object");
    } else {
        struct jobs__run run = {.owner = t->owner};
        str_copy(run.pub.id, c->id, sizeof(run.pub.id));
        run.pub.kind = c->kind;
        run.pub.queue = c->queue;
        run.pub.payload = payload;
        run.pub.attempt = c->attempt;
        run.pub.max_attempts = c->max_attempts;
        run.pub.deadline_mono_ms = time_mono_ms() + c->timeout_ms;
        run.pub.db = t->db;
        run.pub.cfg = r->cfg;
        db_set_deadline(t->db, run.pub.deadline_mono_ms);
        res = k->handler(&run.pub, &result, &error);
        db_set_deadline(t->db, 0);
        if (db_in_tx(t->db))
            BUG("a job handler returned inside a transaction");
        if (res != JOB_OK && res != JOB_RETRY && res != JOB_FAIL) {
            res = JOB_FAIL;
            buf_reset(&error);
            (void)buf_puts(&error, "handler returned an unknown code");
        }
        if (time_mono_ms() > run.pub.deadline_mono_ms) {
            /* overran: counted as a failed attempt whatever it returned */
            res = JOB_RETRY;
            buf_reset(&error);
            (void)buf_printf(&error, "timeout: the handler ran past its %lld ms deadline", (long long)c->timeout_ms);
        }
    }
    json_decref(payload);
    int64_t dur_us = time_mono_us() - t0;

    str_t res_json = STR_NULL;
    if (res == JOB_OK && result.len) {
        json_t *v = NULL;
        if (buf_ok(&result) && json_parse_strict(buf_str(&result), &v, NULL) == JSON_IN_OK)
            res_json = buf_str(&result);
        else
            log_warn("job %s (%s): result is not valid JSON or too large; stored as null", c->id, c->kind);
        json_decref(v);
    }
    str_t err = buf_str(&error);
    if (!utf8_valid(err))
        err = STRLIT("(error message was not valid UTF-8)");

    enum jobs_outcome o = JO_LOST;
    int rc = DB_ERR;
    /* the attempt is done: record it even if the database hiccups (else the lease expires and it runs again) */
    for (int i = 0; i < 5; i++) {
        if (r->sqlite)
            pthread_mutex_lock(&r->claim_mu);
        rc = jobs__finish(t->db, c, t->owner, res, res_json, err, g_jcfg.backoff_ms, time_now_ms(), &o);
        if (r->sqlite)
            pthread_mutex_unlock(&r->claim_mu);
        if (rc == DB_OK)
            break;
        log_warn("job %s: recording the attempt failed: %s", c->id, db_errmsg(t->db));
        usleep(200000);
    }
    if (rc == DB_OK)
        jobs__metrics_record(c->queue, o, dur_us);

    struct log_line l;
    enum log_level lvl = o == JO_SUCCEEDED ? LOG_DEBUG : o == JO_RETRY ? LOG_INFO : LOG_WARN;
    if (log_begin(&l, lvl, "job")) {
        log_cstr(&l, "id", c->id);
        log_cstr(&l, "kind", c->kind);
        log_cstr(&l, "queue", c->queue);
        log_int(&l, "attempt", c->attempt);
        log_cstr(&l, "outcome", rc == DB_OK ? jobs__outcome_names[o] : "unrecorded");
        log_ms(&l, "duration_ms", dur_us);
        if (o != JO_SUCCEEDED && err.len)
            log_str(&l, "error", err);
        log_end(&l);
    }
    buf_free(&result);
    buf_free(&error);
}

/* ---- worker threads -------------------------------------------------------- */

static int limit_index(struct jobs_runner *r, const char *queue)
{
    const char *const *names;
    const int *limits;
    size_t n = jobs__limited_queues(&names, &limits);
    for (size_t i = 0; i < n && i < r->nlimits; i++)
        if (!strcmp(names[i], queue))
            return (int)i;
    return -1;
}

static void *worker_main(void *arg)
{
    struct rthread *t = arg;
    struct jobs_runner *r = t->r;
    struct jobs_claimed c;
    bool recheck = false;
    int64_t last_err_log = 0;
    memset(&c, 0, sizeof(c));

    for (;;) {
        const char *exclude[32];
        size_t nex = 0;
        const char *const *names;
        const int *limits;
        jobs__limited_queues(&names, &limits);

        pthread_mutex_lock(&r->mu);
        if (r->stopping) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        uint64_t seq = r->wake_seq;
        for (size_t i = 0; i < r->nlimits && nex < ARRAY_LEN(exclude); i++)
            if (r->running[i] >= limits[i])
                exclude[nex++] = names[i];
        pthread_mutex_unlock(&r->mu);

        if (r->serialize)
            pthread_mutex_lock(&r->claim_mu);
        int rc = jobs__claim(t->db, t->owner, exclude, nex, g_jcfg.lease_margin_ms, time_now_ms(), &c);
        int li = rc == 1 ? limit_index(r, c.queue) : -1;
        if (li >= 0) {
            pthread_mutex_lock(&r->mu);
            r->running[li]++;
            pthread_mutex_unlock(&r->mu);
        }
        if (r->serialize)
            pthread_mutex_unlock(&r->claim_mu);

        if (rc == 1) {
            recheck = false;
            pthread_mutex_lock(&r->mu);
            pthread_cond_signal(&r->cv); /* there may be more: wake a sibling */
            pthread_mutex_unlock(&r->mu);
            run_one(t, &c);
            if (li >= 0) {
                pthread_mutex_lock(&r->mu);
                r->running[li]--;
                pthread_cond_broadcast(&r->cv); /* a slot opened */
                pthread_mutex_unlock(&r->mu);
            }
            continue;
        }
        if (rc < 0) {
            int64_t now = time_mono_ms();
            if (now - last_err_log > 10000) {
                log_warn("job runner %s: claim failed: %s", t->owner, db_errmsg(t->db));
                last_err_log = now;
            }
        }

        pthread_mutex_lock(&r->mu);
        if (r->stopping) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        if (rc >= 0 && r->wake_seq != seq) { /* enqueued while we looked */
            pthread_mutex_unlock(&r->mu);
            recheck = true;
            continue;
        }
        if (rc < 0) {
            cv_wait_ms(&r->cv, &r->mu, DB_RETRY_MS);
        } else if (recheck) {
            recheck = false; /* the enqueuing transaction may not have committed yet */
            cv_wait_ms(&r->cv, &r->mu, RECHECK_MS);
        } else if (!r->poller_busy) {
            r->poller_busy = true;
            cv_wait_ms(&r->cv, &r->mu, g_jcfg.poll_ms);
            r->poller_busy = false;
        } else {
            cv_wait_ms(&r->cv, &r->mu, -1);
        }
        if (r->wake_seq != seq)
            recheck = true;
        pthread_mutex_unlock(&r->mu);
    }
    buf_free(&c.payload);
    atomic_store(&t->done, true);
    return NULL;
}

/* ---- scheduler thread ------------------------------------------------------ */

static void *sched_main(void *arg)
{
    struct rthread *t = arg;
    struct jobs_runner *r = t->r;
    int64_t next_cron = 0, next_reap = 0, last_err_log = 0;
    for (;;) {
        int64_t now = time_now_ms(), mono = time_mono_ms();
        int n = 0, rc = DB_OK;
        if (now >= next_cron) {
            rc = cron__tick(t->db, now, &n);
            next_cron = rc == DB_OK ? (now / 60000 + 1) * 60000 : now + DB_RETRY_MS;
        }
        if (rc == DB_OK && mono >= next_reap) {
            rc = jobs__reap(t->db, now, &n);
            next_reap = mono + REAP_INTERVAL_MS;
            if (rc == DB_OK && n)
                log_info("job leases expired: %d job(s) reclaimed", n);
        }
        if (rc != DB_OK && mono - last_err_log > 10000) {
            log_warn("job scheduler: %s", db_errmsg(t->db));
            last_err_log = mono;
        }
        int64_t wait = next_cron - time_now_ms();
        int64_t wr = next_reap - time_mono_ms();
        if (wr < wait)
            wait = wr;
        if (wait < 1)
            wait = 1;
        pthread_mutex_lock(&r->mu);
        if (!r->stopping)
            cv_wait_ms(&r->sched_cv, &r->mu, wait);
        bool stop = r->stopping;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
    }
    atomic_store(&t->done, true);
    return NULL;
}

/* ---- start / stop ---------------------------------------------------------- */

static int thread_open(struct jobs_runner *r, struct rthread *t, int idx, const char *role, struct buf *err)
{
    struct db_options o = {.busy_timeout_ms = 5000, .statement_timeout_ms = 0};
    struct buf name = BUF_INIT(sizeof(t->owner) - 1);
    t->r = r;
    t->idx = idx;
    atomic_init(&t->done, false);
    (void)buf_printf(&name, "%s:%s%d", jobs__owner_prefix(), role, idx);
    str_copy(t->owner, buf_ok(&name) ? buf_cstr(&name) : "temel", sizeof(t->owner));
    buf_free(&name);
    if (!(t->db = db_open(r->cfg->database_url, &o, err)))
        return -1;
    /* PostgreSQL: the runner's own state changes need not wait for the WAL flush. A crash can
     * lose the last few of them; the job then runs again (delivery is at-least-once anyway).
     * Enqueues happen on the caller's connection and keep its durability. */
    if (db_kind(t->db) == DB_POSTGRES && db_exec(t->db, "SET synchronous_commit = off", DB_NOARGS, NULL) != DB_OK) {
        (void)buf_printf(err, "job runner: %s", db_errmsg(t->db));
        db_close(t->db);
        t->db = NULL;
        return -1;
    }
    return 0;
}

static void runner_free(struct jobs_runner *r)
{
    for (int i = 0; i < r->n; i++)
        db_close(r->t[i].db);
    db_close(r->sched.db);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->claim_mu);
    pthread_cond_destroy(&r->cv);
    pthread_cond_destroy(&r->sched_cv);
    free(r->running);
    free(r->t);
    free(r);
}

struct jobs_runner *jobs_runner_start(const struct config *cfg, int threads, struct buf *err)
{
    struct jobs_runner *r = xcalloc(1, sizeof(*r));
    pthread_condattr_t ca;
    const char *const *names;
    const int *limits;
    if (threads < 1)
        BUG("jobs_runner_start: threads must be >= 1");
    if (atomic_load(&g_runner))
        BUG("jobs_runner_start: a runner is already running");
    r->cfg = cfg;
    r->n = threads;
    r->t = xcalloc((size_t)threads, sizeof(*r->t));
    r->nlimits = jobs__limited_queues(&names, &limits);
    r->running = xcalloc(r->nlimits ? r->nlimits : 1, sizeof(int));
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->claim_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_cond_init(&r->sched_cv, &ca);
    pthread_condattr_destroy(&ca);
    jobs__set_retention_days(g_jcfg.retention_days);

    for (int i = 0; i < threads; i++)
        if (thread_open(r, &r->t[i], i, "w", err))
            goto fail;
    if (thread_open(r, &r->sched, 0, "s", err))
        goto fail;
    r->sqlite = db_kind(r->sched.db) == DB_SQLITE;
    r->serialize = r->sqlite || r->nlimits;
    atomic_store(&g_runner, r);
    for (int i = 0; i < threads; i++)
        if (pthread_create(&r->t[i].tid, NULL, worker_main, &r->t[i]))
            FATAL("pthread_create failed");
    if (pthread_create(&r->sched.tid, NULL, sched_main, &r->sched))
        FATAL("pthread_create failed");
    log_info("job runner: %d thread(s), %zu cron entr%s, poll %lld ms", threads, cron__count(),
             cron__count() == 1 ? "y" : "ies", (long long)g_jcfg.poll_ms);
    return r;
fail:
    runner_free(r);
    return NULL;
}

/* Join t by the monotonic deadline; true if joined. */
static bool join_by(struct rthread *t, int64_t deadline_mono)
{
    while (!atomic_load(&t->done) && time_mono_ms() < deadline_mono)
        usleep(10000);
    if (!atomic_load(&t->done))
        return false;
    pthread_join(t->tid, NULL);
    return true;
}

void jobs_runner_stop(struct jobs_runner *r, int64_t deadline_ms)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_broadcast(&r->cv);
    pthread_cond_broadcast(&r->sched_cv);
    pthread_mutex_unlock(&r->mu);
    int left = 0;
    for (int i = 0; i < r->n; i++)
        if (!join_by(&r->t[i], deadline_ms))
            left++;
    if (!join_by(&r->sched, deadline_ms))
        left++;
    if (left) {
        /* their jobs keep the lease and are reclaimed after it; r stays allocated for them */
        log_warn("job runner: %d thread(s) still busy at the stop deadline; their jobs will be reclaimed", left);
        return;
    }
    atomic_store(&g_runner, NULL);
    runner_free(r);
    log_info("job runner stopped");
}
