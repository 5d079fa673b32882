/*
 * queue.c — the job table (jobs.h): registries, enqueue, claim, finish,
 * reclaim, cancel/retry, purge, counts and job metrics.
 *
 * Design:
 *  - A job exists iff the enqueuing transaction commits: jobs_enqueue is a
 *    plain INSERT on the caller's connection, so it joins whatever
 *    transaction is open there. unique_key dedupe is a partial unique index
 *    over the unfinished states plus INSERT … ON CONFLICT DO NOTHING; on a
 *    conflict the holder's id is returned with JOBS_EDUPLICATE.
 *  - Claim = one statement that picks the next ready row (priority, run_at,
 *    id) and marks it running with a lease: on PostgreSQL a MATERIALIZED CTE
 *    with FOR UPDATE SKIP LOCKED feeding an UPDATE … RETURNING; on SQLite an
 *    UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING inside BEGIN IMMEDIATE
 *    (SQLite has one writer, so no row can be taken twice).
 *  - Every end-of-attempt update is guarded by (state = 'running',
 *    locked_by = owner, attempt = n): a worker whose lease expired and whose
 *    job was reclaimed changes nothing (JO_LOST).
 *  - Timestamps go through ms_ts()/ts_ms() (db.h), so most SQL is shared.
 *    Clocks: the lease and run_at use the wall clock of the process that
 *    writes them; instances are assumed to run NTP (skew only shifts when a
 *    lease is considered expired).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <sodium.h>

#include "core/json.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "jobs/jobs_internal.h"

#include "core/banned.h"

const char *const jobs__state_names[8] = {"available", "scheduled", "running", "retryable",
                                          "succeeded", "failed",    "dead",    "cancelled"};
const char *const jobs__prio_names[3] = {"high", "normal", "low"};
const char *const jobs__outcome_names[JO_NOUTCOMES] = {"succeeded", "retried", "failed", "dead", "lost"};

int jobs__state_from(str_t s)
{
    for (int i = 0; i < (int)ARRAY_LEN(jobs__state_names); i++)
        if (str_eq(s, str_c(jobs__state_names[i])))
            return i;
    return -1;
}

/* ---- registries ------------------------------------------------------------ */

#define MAX_KINDS 256
#define MAX_LIMITS 32
static const struct job_kind *g_kinds[MAX_KINDS];
static size_t g_nkinds;
static const char *g_limit_names[MAX_LIMITS];
static int g_limit_max[MAX_LIMITS];
static size_t g_nlimits;

static bool name_ok(str_t s)
{
    if (s.len == 0 || s.len > JOBS_NAME_MAX)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == ':'))
            return false;
    }
    return true;
}

void jobs_register(const struct job_kind *k)
{
    if (!k || !k->kind || !k->handler || !name_ok(str_c(k->kind)) || (k->queue && !name_ok(str_c(k->queue))))
        BUG("jobs_register: kind needs a name ([A-Za-z0-9._:-], <= 64) and a handler");
    if (jobs__kind(k->kind))
        BUG("jobs_register: kind registered twice");
    if (g_nkinds == MAX_KINDS)
        BUG("jobs_register: too many kinds");
    g_kinds[g_nkinds++] = k;
}

const struct job_kind *jobs__kind_n(str_t kind)
{
    for (size_t i = 0; i < g_nkinds; i++)
        if (str_eq(kind, str_c(g_kinds[i]->kind)))
            return g_kinds[i];
    return NULL;
}

const struct job_kind *jobs__kind(const char *kind) { return jobs__kind_n(str_c(kind)); }

void jobs_queue_limit(const char *queue, int max)
{
    if (!queue || !name_ok(str_c(queue)) || max < 1)
        BUG("jobs_queue_limit: bad queue name or limit");
    for (size_t i = 0; i < g_nlimits; i++)
        if (!strcmp(g_limit_names[i], queue)) {
            g_limit_max[i] = max;
            return;
        }
    if (g_nlimits == MAX_LIMITS)
        BUG("jobs_queue_limit: too many limited queues");
    g_limit_names[g_nlimits] = xstrdup(queue);
    g_limit_max[g_nlimits++] = max;
}

int jobs__queue_limit_of(str_t queue)
{
    for (size_t i = 0; i < g_nlimits; i++)
        if (str_eq(queue, str_c(g_limit_names[i])))
            return g_limit_max[i];
    return 0;
}

size_t jobs__limited_queues(const char *const **names, const int **limits)
{
    *names = g_limit_names;
    *limits = g_limit_max;
    return g_nlimits;
}

/* ---- enqueue --------------------------------------------------------------- */

static const char SQL_INSERT[] =
    "INSERT INTO jobs (id, kind, queue, priority, payload, state, attempt, max_attempts, timeout_ms, run_at, "
    "unique_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ms_ts(?), ?, ms_ts(?), ms_ts(?)) "
    "ON CONFLICT DO NOTHING";
static const char SQL_UNIQUE_HOLDER[] =
    "SELECT id FROM jobs WHERE unique_key = ? AND state IN ('available', 'scheduled', 'running', 'retryable')";

int jobs__enqueue_at(struct db *db, const char *kind, str_t payload, const struct job_opts *opts, char *id_out,
                     int64_t now_ms)
{
    const struct job_kind *k = kind ? jobs__kind(kind) : NULL;
    struct job_opts o = opts ? *opts : JOB_OPTS_DEFAULT;
    json_t *v = NULL;
    char id[UUID_STR_LEN + 1];
    if (id_out)
        id_out[0] = '\0';
    if (!k) {
        log_warn("jobs_enqueue: unknown kind %.64s", kind ? kind : "(null)");
        return JOBS_EINVAL;
    }
    if (payload.len > JOBS_PAYLOAD_MAX || json_parse_strict(payload, &v, NULL) != JSON_IN_OK)
        return JOBS_EINVAL;
    bool is_obj = json_is_object(v);
    json_decref(v);
    if (!is_obj)
        return JOBS_EINVAL;
    const char *queue = o.queue ? o.queue : k->queue ? k->queue : "default";
    int max_attempts = o.max_attempts ? o.max_attempts : JOBS_DEFAULT_ATTEMPTS;
    int64_t timeout = o.timeout_ms ? o.timeout_ms : k->timeout_ms ? k->timeout_ms : JOBS_DEFAULT_TIMEOUT_MS;
    if (!name_ok(str_c(queue)) || (int)o.priority < JOB_PRIO_HIGH || o.priority > JOB_PRIO_LOW ||
        max_attempts < 1 || max_attempts > JOBS_MAX_ATTEMPTS || timeout < 1 || timeout > JOBS_MAX_TIMEOUT_MS ||
        (o.unique_key && (!*o.unique_key || strlen(o.unique_key) > JOBS_UNIQUE_MAX)))
        return JOBS_EINVAL;
    int64_t run_at = o.run_at_ms > now_ms ? o.run_at_ms : now_ms;
    const char *state = run_at > now_ms ? "scheduled" : "available";

    for (int tries = 0; tries < 3; tries++) {
        int64_t changes = 0;
        uuid7_str(id);
        int rc = db_exec(db, SQL_INSERT,
                         DB_ARGS(DBA_CSTR(id), DBA_CSTR(kind), DBA_CSTR(queue), DBA_INT(o.priority), DBA_TEXT(payload),
                                 DBA_CSTR(state), DBA_INT(max_attempts), DBA_INT(timeout), DBA_INT(run_at),
                                 o.unique_key ? DBA_CSTR(o.unique_key) : DBA_NULL, DBA_INT(now_ms), DBA_INT(now_ms)),
                         &changes);
        if (rc != DB_OK)
            return rc;
        if (changes == 1) {
            if (id_out)
                memcpy(id_out, id, sizeof(id));
            jobs__notify();
            return JOBS_OK;
        }
        if (!o.unique_key)
            return DB_ERR; /* cannot happen: a fresh UUIDv7 collided */
        struct db_res *r;
        rc = db_query(db, SQL_UNIQUE_HOLDER, DB_ARGS(DBA_CSTR(o.unique_key)), &r);
        if (rc != DB_OK)
            return rc;
        rc = db_next(r);
        if (rc == 1 && id_out)
            str_copy(id_out, db_text(r, 0).p, UUID_STR_LEN + 1);
        db_res_free(r);
        if (rc < 0)
            return rc;
        if (rc == 1)
            return JOBS_EDUPLICATE;
        /* the holder finished between the two statements: insert again */
    }
    return DB_EBUSY;
}

int jobs_enqueue(struct db *db, const char *kind, str_t payload, const struct job_opts *opts, char *id_out)
{
    return jobs__enqueue_at(db, kind, payload, opts, id_out, time_now_ms());
}

/* ---- claim ----------------------------------------------------------------- */

#define CLAIM_COLS "id, kind, queue, payload, attempt, max_attempts, timeout_ms"
#define READY "state IN ('available', 'scheduled', 'retryable')"

/* INDEXED BY: without statistics SQLite prefers jobs_state_queue plus a sort, O(ready jobs) per claim */
static const char SQL_CLAIM_SQLITE[] =
    "UPDATE jobs SET state = 'running', attempt = attempt + 1, locked_by = ?, locked_until = ? + timeout_ms + ?, "
    "started_at = ?, updated_at = ?, progress = 0 WHERE id = (SELECT id FROM jobs INDEXED BY jobs_claim WHERE " READY
    " AND run_at <= ? ORDER BY priority, run_at, id LIMIT 1) RETURNING " CLAIM_COLS;
static const char SQL_CLAIM_SQLITE_EX[] =
    "UPDATE jobs SET state = 'running', attempt = attempt + 1, locked_by = ?, locked_until = ? + timeout_ms + ?, "
    "started_at = ?, updated_at = ?, progress = 0 WHERE id = (SELECT id FROM jobs INDEXED BY jobs_claim WHERE " READY
    " AND run_at <= ? AND queue NOT IN (SELECT value FROM json_each(?)) ORDER BY priority, run_at, id LIMIT 1) "
    "RETURNING " CLAIM_COLS;
#define PG_CLAIM_TAIL                                                                                                  \
    " ORDER BY priority, run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) "                                                  \
    "UPDATE jobs j SET state = 'running', attempt = j.attempt + 1, locked_by = ?, "                                    \
    "locked_until = ms_ts(?::bigint + j.timeout_ms + ?::bigint), started_at = ms_ts(?), updated_at = ms_ts(?), "       \
    "progress = 0 FROM next WHERE j.id = next.id "                                                                     \
    "RETURNING j.id, j.kind, j.queue, j.payload, j.attempt, j.max_attempts, j.timeout_ms"
static const char SQL_CLAIM_PG[] =
    "WITH next AS MATERIALIZED (SELECT id FROM jobs WHERE " READY " AND run_at <= ms_ts(?)" PG_CLAIM_TAIL;
static const char SQL_CLAIM_PG_EX[] = "WITH next AS MATERIALIZED (SELECT id FROM jobs WHERE " READY
                                      " AND run_at <= ms_ts(?) AND queue NOT IN "
                                      "(SELECT json_array_elements_text(?::json))" PG_CLAIM_TAIL;

struct claim_ctx {
    const char *owner;
    str_t exclude_json;
    bool has_exclude;
    int64_t margin, now;
    struct jobs_claimed *out;
    int got;
};

static int claim_run(struct db *db, void *arg)
{
    struct claim_ctx *c = arg;
    struct db_res *r;
    int rc;
    c->got = 0;
    if (db_kind(db) == DB_SQLITE) {
        if (c->has_exclude)
            rc = db_query(db, SQL_CLAIM_SQLITE_EX,
                          DB_ARGS(DBA_CSTR(c->owner), DBA_INT(c->now), DBA_INT(c->margin), DBA_INT(c->now),
                                  DBA_INT(c->now), DBA_INT(c->now), DBA_TEXT(c->exclude_json)),
                          &r);
        else
            rc = db_query(db, SQL_CLAIM_SQLITE,
                          DB_ARGS(DBA_CSTR(c->owner), DBA_INT(c->now), DBA_INT(c->margin), DBA_INT(c->now),
                                  DBA_INT(c->now), DBA_INT(c->now)),
                          &r);
    } else {
        if (c->has_exclude)
            rc = db_query(db, SQL_CLAIM_PG_EX,
                          DB_ARGS(DBA_INT(c->now), DBA_TEXT(c->exclude_json), DBA_CSTR(c->owner), DBA_INT(c->now),
                                  DBA_INT(c->margin), DBA_INT(c->now), DBA_INT(c->now)),
                          &r);
        else
            rc = db_query(db, SQL_CLAIM_PG,
                          DB_ARGS(DBA_INT(c->now), DBA_CSTR(c->owner), DBA_INT(c->now), DBA_INT(c->margin),
                                  DBA_INT(c->now), DBA_INT(c->now)),
                          &r);
    }
    if (rc != DB_OK)
        return rc;
    rc = db_next(r);
    if (rc == 1) {
        struct jobs_claimed *o = c->out;
        str_copy(o->id, db_text(r, 0).p, sizeof(o->id));
        str_copy(o->kind, db_text(r, 1).p, sizeof(o->kind));
        str_copy(o->queue, db_text(r, 2).p, sizeof(o->queue));
        if (!o->payload.max)
            buf_init(&o->payload, JOBS_PAYLOAD_MAX + 1);
        buf_reset(&o->payload);
        (void)buf_put(&o->payload, db_text(r, 3));
        o->attempt = (int)db_int(r, 4);
        o->max_attempts = (int)db_int(r, 5);
        o->timeout_ms = db_int(r, 6);
        c->got = 1;
        rc = db_next(r); /* run the statement to its end (SQLite: before COMMIT) */
        if (rc > 0)
            rc = 0;
    }
    db_res_free(r);
    return rc < 0 ? rc : 0;
}

int jobs__claim(struct db *db, const char *owner, const char *const *exclude, size_t n_exclude,
                int64_t lease_margin_ms, int64_t now_ms, struct jobs_claimed *out)
{
    struct buf ex = BUF_INIT(BUF_MAX_SMALL);
    struct claim_ctx c = {.owner = owner, .margin = lease_margin_ms, .now = now_ms, .out = out};
    int rc;
    if (n_exclude) {
        struct jw w;
        jw_init(&w, &ex);
        jw_arr_begin(&w);
        for (size_t i = 0; i < n_exclude; i++)
            jw_cstr(&w, exclude[i]);
        jw_arr_end(&w);
        c.exclude_json = buf_str(&ex);
        c.has_exclude = true;
    }
    if (db_kind(db) == DB_SQLITE)
        rc = db_tx(db, DB_TX_WRITE, claim_run, &c);
    else
        rc = claim_run(db, &c);
    buf_free(&ex);
    return rc < 0 ? rc : c.got;
}

/* ---- finish ---------------------------------------------------------------- */

#define GUARD " WHERE id = ? AND state = 'running' AND locked_by = ? AND attempt = ?"

int64_t jobs__backoff_ms(int64_t base_ms, int attempt)
{
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < JOBS_BACKOFF_CAP_MS; i++)
        d *= 2;
    if (d > JOBS_BACKOFF_CAP_MS)
        d = JOBS_BACKOFF_CAP_MS;
    /* equal jitter: [d/2, d] */
    int64_t half = d / 2;
    return d - half + (half > 0 ? (int64_t)randombytes_uniform((uint32_t)(half + 1 > 0x7fffffff ? 0x7fffffff : half + 1)) : 0);
}

static int call_on_dead(struct db *db, const char *kind, const char *id, str_t payload)
{
    const struct job_kind *k = jobs__kind(kind);
    json_t *v = NULL;
    int rc;
    if (!k || !k->on_dead)
        return 0;
    if (json_parse_strict(payload, &v, NULL) != JSON_IN_OK)
        v = json_object();
    rc = k->on_dead(db, id, v);
    json_decref(v);
    if (rc)
        log_warn("job %s (%s): on_dead hook failed (%d)", id, kind, rc);
    return rc;
}

struct finish_ctx {
    const struct jobs_claimed *c;
    const char *owner;
    const char *state; /* "failed" or "dead" */
    str_t error;
    int64_t now;
    bool changed;
};

static int finish_dead_tx(struct db *db, void *arg)
{
    struct finish_ctx *f = arg;
    int64_t changes = 0;
    int rc = db_exec(db,
                     "UPDATE jobs SET state = ?, last_error = ?, locked_by = NULL, locked_until = NULL, "
                     "finished_at = ms_ts(?), updated_at = ms_ts(?)" GUARD,
                     DB_ARGS(DBA_CSTR(f->state), DBA_TEXT(f->error), DBA_INT(f->now), DBA_INT(f->now),
                             DBA_CSTR(f->c->id), DBA_CSTR(f->owner), DBA_INT(f->c->attempt)),
                     &changes);
    f->changed = changes == 1;
    if (rc != DB_OK || !f->changed)
        return rc;
    return call_on_dead(db, f->c->kind, f->c->id, buf_str(&f->c->payload));
}

int jobs__finish(struct db *db, const struct jobs_claimed *c, const char *owner, enum job_result res, str_t result,
                 str_t error, int64_t backoff_base_ms, int64_t now_ms, enum jobs_outcome *outcome)
{
    int64_t changes = 0;
    int rc;
    if (error.len > JOBS_ERROR_MAX)
        error.len = JOBS_ERROR_MAX;
    while (error.len && (error.p[error.len - 1] & 0xC0) == 0x80) /* never cut a UTF-8 sequence */
        error.len--;
    if (error.len && (unsigned char)error.p[error.len - 1] >= 0xC0)
        error.len--;
    if (res == JOB_OK) {
        *outcome = JO_SUCCEEDED;
        rc = db_exec(db,
                     "UPDATE jobs SET state = 'succeeded', result = ?, progress = 100, locked_by = NULL, "
                     "locked_until = NULL, finished_at = ms_ts(?), updated_at = ms_ts(?)" GUARD,
                     DB_ARGS(result.len ? DBA_TEXT(result) : DBA_NULL, DBA_INT(now_ms), DBA_INT(now_ms),
                             DBA_CSTR(c->id), DBA_CSTR(owner), DBA_INT(c->attempt)),
                     &changes);
    } else if (res == JOB_RETRY && c->attempt < c->max_attempts) {
        *outcome = JO_RETRY;
        int64_t at = now_ms + jobs__backoff_ms(backoff_base_ms, c->attempt);
        rc = db_exec(db,
                     "UPDATE jobs SET state = 'retryable', run_at = ms_ts(?), last_error = ?, locked_by = NULL, "
                     "locked_until = NULL, updated_at = ms_ts(?)" GUARD,
                     DB_ARGS(DBA_INT(at), DBA_TEXT(error), DBA_INT(now_ms), DBA_CSTR(c->id), DBA_CSTR(owner),
                             DBA_INT(c->attempt)),
                     &changes);
    } else {
        struct finish_ctx f = {.c = c, .owner = owner, .state = res == JOB_FAIL ? "failed" : "dead",
                               .error = error, .now = now_ms};
        *outcome = res == JOB_FAIL ? JO_FAILED : JO_DEAD;
        rc = db_tx(db, DB_TX_WRITE, finish_dead_tx, &f);
        changes = f.changed;
    }
    if (rc == DB_OK && changes != 1)
        *outcome = JO_LOST;
    /* a sensitive payload (secrets for delivery) does not outlive the job */
    const struct job_kind *k = jobs__kind(c->kind);
    if (rc == DB_OK && changes == 1 && *outcome != JO_RETRY && k && k->sensitive)
        rc = db_exec(db, "UPDATE jobs SET payload = '{}' WHERE id = ? AND state IN ('succeeded', 'failed', 'dead')",
                     DB_ARGS(DBA_CSTR(c->id)), NULL);
    return rc;
}

/* ---- reclaim --------------------------------------------------------------- */

struct reap_ctx {
    int64_t now;
    bool done;
    char queue[JOBS_NAME_MAX + 1];
};

static int reap_one_dead(struct db *db, void *arg)
{
    struct reap_ctx *c = arg;
    struct db_res *r;
    char id[37], kind[JOBS_NAME_MAX + 1];
    struct buf payload = BUF_INIT(JOBS_PAYLOAD_MAX + 1);
    int rc = db_query(db,
                      db_pick(db,
                              "SELECT id, kind, payload, queue FROM jobs WHERE state = 'running' AND locked_until < ? "
                              "AND attempt >= max_attempts LIMIT 1",
                              "SELECT id, kind, payload, queue FROM jobs WHERE state = 'running' AND locked_until < ms_ts(?) "
                              "AND attempt >= max_attempts LIMIT 1 FOR UPDATE SKIP LOCKED"),
                      DB_ARGS(DBA_INT(c->now)), &r);
    if (rc != DB_OK)
        return rc;
    rc = db_next(r);
    if (rc == 1) {
        str_copy(id, db_text(r, 0).p, sizeof(id));
        str_copy(kind, db_text(r, 1).p, sizeof(kind));
        (void)buf_put(&payload, db_text(r, 2));
        str_copy(c->queue, db_text(r, 3).p, sizeof(c->queue));
    }
    db_res_free(r);
    c->done = rc != 1;
    if (rc != 1) {
        buf_free(&payload);
        return rc < 0 ? rc : 0;
    }
    rc = db_exec(db,
                 "UPDATE jobs SET state = 'dead', last_error = 'lease expired on the last attempt (worker lost or "
                 "handler overran its timeout)', locked_by = NULL, locked_until = NULL, finished_at = ms_ts(?), "
                 "updated_at = ms_ts(?) WHERE id = ? AND state = 'running'",
                 DB_ARGS(DBA_INT(c->now), DBA_INT(c->now), DBA_CSTR(id)), NULL);
    if (rc == DB_OK)
        rc = call_on_dead(db, kind, id, buf_str(&payload));
    const struct job_kind *k = jobs__kind(kind);
    if (rc == DB_OK && k && k->sensitive)
        rc = db_exec(db, "UPDATE jobs SET payload = '{}' WHERE id = ?", DB_ARGS(DBA_CSTR(id)), NULL);
    if (rc == DB_OK)
        log_warn("job %s (%s): lease expired on its last attempt: dead", id, kind);
    buf_free(&payload);
    return rc;
}

int jobs__reap(struct db *db, int64_t now_ms, int *n)
{
    struct db_res *r;
    *n = 0;
    int rc = db_query(db,
                      "UPDATE jobs SET state = 'retryable', run_at = ms_ts(?), last_error = 'lease expired (worker lost "
                      "or handler overran its timeout)', locked_by = NULL, locked_until = NULL, updated_at = ms_ts(?) "
                      "WHERE state = 'running' AND locked_until < ms_ts(?) AND attempt < max_attempts RETURNING queue",
                      DB_ARGS(DBA_INT(now_ms), DBA_INT(now_ms), DBA_INT(now_ms)), &r);
    if (rc != DB_OK)
        return rc;
    while ((rc = db_next(r)) == 1) {
        jobs__metrics_record(db_text(r, 0).p, JO_LOST, -1);
        (*n)++;
    }
    db_res_free(r);
    if (rc < 0)
        return rc;
    if (*n)
        jobs__notify();
    for (int i = 0; i < 100; i++) {
        struct reap_ctx c = {.now = now_ms};
        rc = db_tx(db, DB_TX_WRITE, reap_one_dead, &c);
        if (rc != DB_OK)
            return rc;
        if (c.done)
            break;
        (*n)++;
        jobs__metrics_record(c.queue, JO_DEAD, -1);
    }
    return DB_OK;
}

/* ---- admin transitions ----------------------------------------------------- */

struct admin_ctx {
    str_t id;
    int64_t now;
    bool cancel;
    int outcome, state;
};

static int admin_tx(struct db *db, void *arg)
{
    struct admin_ctx *c = arg;
    struct db_res *r;
    char kind[JOBS_NAME_MAX + 1];
    struct buf payload = BUF_INIT(JOBS_PAYLOAD_MAX + 1);
    int rc = db_query(db,
                      db_pick(db, "SELECT state, kind, payload FROM jobs WHERE id = ?",
                              "SELECT state, kind, payload FROM jobs WHERE id = ? FOR UPDATE"),
                      DB_ARGS(DBA_TEXT(c->id)), &r);
    if (rc != DB_OK)
        return rc;
    rc = db_next(r);
    if (rc == 1) {
        c->state = jobs__state_from(db_text(r, 0));
        str_copy(kind, db_text(r, 1).p, sizeof(kind));
        (void)buf_put(&payload, db_text(r, 2));
    }
    db_res_free(r);
    if (rc != 1) {
        buf_free(&payload);
        c->outcome = 1;
        return rc < 0 ? rc : 0;
    }
    if (c->cancel) {
        if (c->state != JS_AVAILABLE && c->state != JS_SCHEDULED && c->state != JS_RETRYABLE) {
            c->outcome = 2;
            buf_free(&payload);
            return 0;
        }
        rc = db_exec(db,
                     "UPDATE jobs SET state = 'cancelled', finished_at = ms_ts(?), updated_at = ms_ts(?) "
                     "WHERE id = ?",
                     DB_ARGS(DBA_INT(c->now), DBA_INT(c->now), DBA_TEXT(c->id)), NULL);
        if (rc == DB_OK) {
            char id[37];
            str_copy(id, c->id.p, c->id.len + 1 < sizeof(id) ? c->id.len + 1 : sizeof(id));
            rc = call_on_dead(db, kind, id, buf_str(&payload));
        }
    } else {
        if (c->state != JS_FAILED && c->state != JS_DEAD && c->state != JS_CANCELLED) {
            c->outcome = 2;
            buf_free(&payload);
            return 0;
        }
        rc = db_exec(db,
                     "UPDATE jobs SET state = 'available', attempt = 0, run_at = ms_ts(?), progress = 0, "
                     "result = NULL, finished_at = NULL, updated_at = ms_ts(?) WHERE id = ?",
                     DB_ARGS(DBA_INT(c->now), DBA_INT(c->now), DBA_TEXT(c->id)), NULL);
    }
    buf_free(&payload);
    c->outcome = 0;
    return rc;
}

static int admin_change(struct db *db, str_t id, int64_t now_ms, int *state, bool cancel)
{
    struct admin_ctx c = {.id = id, .now = now_ms, .cancel = cancel, .state = -1};
    int rc = db_tx(db, DB_TX_WRITE, admin_tx, &c);
    *state = c.state;
    if (rc != DB_OK)
        return rc;
    if (c.outcome == 0 && !cancel)
        jobs__notify();
    return c.outcome;
}

int jobs_cancel(struct db *db, str_t id, int64_t now_ms, int *state) { return jobs__cancel(db, id, now_ms, state); }

int jobs__cancel(struct db *db, str_t id, int64_t now_ms, int *state)
{
    return admin_change(db, id, now_ms, state, true);
}

int jobs__retry(struct db *db, str_t id, int64_t now_ms, int *state)
{
    return admin_change(db, id, now_ms, state, false);
}

int jobs__purge(struct db *db, int64_t before_ms, int64_t *removed)
{
    *removed = 0;
    for (;;) {
        int64_t n = 0;
        int rc = db_exec(db,
                         "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ('succeeded', 'cancelled') "
                         "AND finished_at < ms_ts(?) LIMIT 1000)",
                         DB_ARGS(DBA_INT(before_ms)), &n);
        if (rc != DB_OK)
            return rc;
        *removed += n;
        if (n < 1000)
            return DB_OK;
    }
}

/* ---- progress -------------------------------------------------------------- */

int job_progress(struct job *j, int pct)
{
    const struct jobs__run *v = (const struct jobs__run *)j; /* struct job is its first member */
    if (pct < 0)
        pct = 0;
    if (pct > 100)
        pct = 100;
    return db_exec(j->db,
                   "UPDATE jobs SET progress = ?, updated_at = ms_ts(?) WHERE id = ? AND state = 'running' "
                   "AND locked_by = ? AND attempt = ?",
                   DB_ARGS(DBA_INT(pct), DBA_INT(time_now_ms()), DBA_CSTR(j->id), DBA_CSTR(v->owner),
                           DBA_INT(j->attempt)),
                   NULL);
}

/* ---- counts ---------------------------------------------------------------- */

int jobs_counts(struct db *db, struct jobs_counts *out)
{
    struct db_res *r;
    memset(out, 0, sizeof(*out));
    int rc = db_query(db, "SELECT state, count(*) FROM jobs GROUP BY state", DB_NOARGS, &r);
    if (rc != DB_OK)
        return rc;
    while ((rc = db_next(r)) == 1) {
        int64_t n = db_int(r, 1);
        switch (jobs__state_from(db_text(r, 0))) {
        case JS_AVAILABLE: out->available = n; break;
        case JS_SCHEDULED: out->scheduled = n; break;
        case JS_RUNNING: out->running = n; break;
        case JS_RETRYABLE: out->retryable = n; break;
        case JS_SUCCEEDED: out->succeeded = n; break;
        case JS_FAILED: out->failed = n; break;
        case JS_DEAD: out->dead = n; break;
        case JS_CANCELLED: out->cancelled = n; break;
        default: break;
        }
    }
    db_res_free(r);
    return rc < 0 ? rc : DB_OK;
}

/* ---- metrics --------------------------------------------------------------- */

#define METRIC_QUEUES 64
static const int64_t dur_bounds_ms[] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000};
#define NBOUNDS ARRAY_LEN(dur_bounds_ms)
struct qmetrics {
    char name[JOBS_NAME_MAX + 1];
    uint64_t outcomes[JO_NOUTCOMES];
    uint64_t buckets[NBOUNDS + 1];
    uint64_t count, sum_us;
};
static pthread_mutex_t g_mmu = PTHREAD_MUTEX_INITIALIZER;
static struct qmetrics g_qm[METRIC_QUEUES + 1]; /* last slot: "(other)" once full */
static size_t g_nqm;

void jobs__metrics_record(const char *queue, enum jobs_outcome o, int64_t dur_us)
{
    pthread_mutex_lock(&g_mmu);
    struct qmetrics *m = NULL;
    for (size_t i = 0; i < g_nqm && !m; i++)
        if (!strcmp(g_qm[i].name, queue))
            m = &g_qm[i];
    if (!m) {
        if (g_nqm < METRIC_QUEUES) {
            m = &g_qm[g_nqm++];
            str_copy(m->name, queue, sizeof(m->name));
        } else {
            m = &g_qm[METRIC_QUEUES];
            str_copy(m->name, "(other)", sizeof(m->name));
        }
    }
    m->outcomes[o]++;
    if (dur_us >= 0) {
        size_t b = 0;
        while (b < NBOUNDS && dur_us > dur_bounds_ms[b] * 1000)
            b++;
        m->buckets[b]++;
        m->count++;
        m->sum_us += (uint64_t)dur_us;
    }
    pthread_mutex_unlock(&g_mmu);
}

static void put_label(struct buf *out, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            (void)buf_putc(out, '\\');
        (void)buf_putc(out, *p == '\n' ? ' ' : *p);
    }
}

void jobs_metrics_render(struct db *db, struct buf *out)
{
    pthread_mutex_lock(&g_mmu);
    size_t n = g_nqm < METRIC_QUEUES ? g_nqm : METRIC_QUEUES + 1;
    (void)buf_puts(out, "# HELP temel_jobs_total Job attempts finished by this process, by queue and outcome "
                        "(lost: lease expired and reclaimed).\n# TYPE temel_jobs_total counter\n");
    for (size_t i = 0; i < n; i++)
        for (int o = 0; o < JO_NOUTCOMES; o++) {
            if (!g_qm[i].outcomes[o])
                continue;
            (void)buf_puts(out, "temel_jobs_total{queue=\"");
            put_label(out, g_qm[i].name);
            (void)buf_printf(out, "\",outcome=\"%s\"} %llu\n", jobs__outcome_names[o],
                             (unsigned long long)g_qm[i].outcomes[o]);
        }
    (void)buf_puts(out, "# HELP temel_job_duration_seconds Handler run time, by queue.\n"
                        "# TYPE temel_job_duration_seconds histogram\n");
    for (size_t i = 0; i < n; i++) {
        if (!g_qm[i].count)
            continue;
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBOUNDS; b++) {
            cum += g_qm[i].buckets[b];
            (void)buf_puts(out, "temel_job_duration_seconds_bucket{queue=\"");
            put_label(out, g_qm[i].name);
            if (b < NBOUNDS)
                (void)buf_printf(out, "\",le=\"%g\"} %llu\n", (double)dur_bounds_ms[b] / 1000.0,
                                 (unsigned long long)cum);
            else
                (void)buf_printf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        (void)buf_puts(out, "temel_job_duration_seconds_sum{queue=\"");
        put_label(out, g_qm[i].name);
        (void)buf_printf(out, "\"} %.6f\n", (double)g_qm[i].sum_us / 1e6);
        (void)buf_puts(out, "temel_job_duration_seconds_count{queue=\"");
        put_label(out, g_qm[i].name);
        (void)buf_printf(out, "\"} %llu\n", (unsigned long long)g_qm[i].count);
    }
    pthread_mutex_unlock(&g_mmu);
    if (!db)
        return;
    struct db_res *r;
    if (db_query(db,
                 "SELECT queue, state, count(*) FROM jobs WHERE state IN ('available', 'scheduled', 'running', "
                 "'retryable') GROUP BY queue, state ORDER BY queue, state",
                 DB_NOARGS, &r) != DB_OK)
        return;
    (void)buf_puts(out, "# HELP temel_jobs_queue_depth Unfinished jobs in the database, by queue and state.\n"
                        "# TYPE temel_jobs_queue_depth gauge\n");
    while (db_next(r) == 1) {
        (void)buf_puts(out, "temel_jobs_queue_depth{queue=\"");
        put_label(out, db_text(r, 0).p);
        (void)buf_printf(out, "\",state=\"%s\"} %lld\n", db_text(r, 1).p, (long long)db_int(r, 2));
    }
    db_res_free(r);
}
