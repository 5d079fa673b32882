/*
 * ai.c — the ai module: the submit path (reserve → enqueue → row, one
 * transaction), the waiting routes, the caller's jobs and usage, the
 * response cache. The job is in job.c, providers in provider.c, admin
 * routes in admin.c, anti-abuse in abuse.c.
 *
 * Submit: first the cache lookup (the caller + operation + model + canonical
 * input; only when the model's provider has its cache on) — in Redis when
 * REDIS_URL is set (shared by the instances), else the ai_cache table; then
 * in ONE db_tx (joining the idempotency transaction on /ai/submit):
 *   1. a hit records a 'succeeded', cached row with cost 0 — nothing
 *      reserved, no job;
 *   2. else jobs_enqueue("ai.run", queue "ai") + credits_reserve(cost,
 *      "ai:<job id>") (CREDITS_INSUFFICIENT rolls all back → 402) + the
 *      ai_requests row (id = the job id, status 'queued');
 *   3. anti-abuse: score, flag, staff mail (abuse.c).
 */
#include <sodium.h>

#include "core/timeutil.h"
#include "core/uuid.h"
#include "jobs/jobs.h"
#include "modules/ai/ai_internal.h"
#include "core/config.h"
#include "modules/credits/credits.h"

#include "db/dbjson.h"
#include "redis/redis.h"

#include "core/banned.h"

static const char *const prio_names[] = {"high", "normal", "low", NULL};
static const char *const operations[] = {"chat", "generate", "resume", "cover-letter", "image", NULL};

/* ---- the request object ---- */

const char *ai__status(str_t ai_status, str_t job_state)
{
    if (!str_is(ai_status, "queued"))
        return str_is(ai_status, "succeeded") ? "succeeded" : str_is(ai_status, "failed") ? "failed" : "cancelled";
    return str_is(job_state, "running") ? "running" : "queued";
}

void ai__write_request(struct jw *w, const struct db_res *res)
{
    str_t st = db_text(res, 3);
    const char *status = ai__status(st, db_isnull(res, 12) ? STR_NULL : db_text(res, 12));
    int64_t prio = db_int(res, 4), cost = db_int(res, 5);
    bool cached = db_int(res, 6) != 0, done = !str_is(st, "queued");
    jw_obj_begin(w);
    jw_key(w, "id");
    jw_str(w, db_text(res, 0));
    jw_key(w, "job_id");
    jw_str(w, db_text(res, 0));
    jw_key(w, "operation");
    jw_str(w, db_text(res, 1));
    jw_key(w, "model");
    jw_str(w, db_text(res, 2));
    jw_key(w, "status");
    jw_cstr(w, status);
    jw_key(w, "progress");
    jw_int(w, !strcmp(status, "succeeded") ? 100 : done ? 0 : db_int(res, 13));
    jw_key(w, "priority");
    jw_cstr(w, prio_names[prio >= 0 && prio <= 2 ? prio : 1]);
    jw_key(w, "cost");
    jw_int(w, cost);
    jw_key(w, "charged");
    jw_int(w, !strcmp(status, "succeeded") && !cached ? cost : 0);
    jw_key(w, "cached");
    jw_bool(w, cached);
    jw_key(w, "transaction_id");
    jw_db_text(w, res, 7);
    jw_key(w, "result");
    if (db_isnull(res, 8))
        jw_null(w);
    else
        jw_raw(w, db_text(res, 8)); /* written by this module's JSON writer */
    jw_key(w, "error");
    jw_db_text(w, res, 9);
    jw_key(w, "created_at");
    jw_time(w, db_int(res, 10));
    jw_key(w, "finished_at");
    jw_db_time(w, res, 11);
    jw_obj_end(w);
}

/* Write the caller's request id; *found false when it is not theirs. */
static int write_own_request(struct db *db, str_t id, str_t user_id, struct jw *w, bool *final, bool *found)
{
    struct db_res *res;
    int rc = db_query(db, "SELECT " AI_REQ_COLS AI_REQ_FROM " WHERE a.id = ? AND a.user_id = ?",
                      DB_ARGS(DBA_TEXT(id), DBA_TEXT(user_id)), &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    *found = rc == 1;
    if (rc == 1) {
        *final = !str_is(db_text(res, 3), "queued");
        ai__write_request(w, res);
    }
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

/* ---- cache ---- */

/* With REDIS_URL the cache lives in Redis (shared by every instance, expiring by
 * itself): the key "temel:ai:<cache key>" holds "<tokens_in> <tokens_out>\n<result>".
 * Redis not answering is a miss (counted in temel_redis_cache_skipped_total),
 * never an error; the table is not consulted then. Without Redis: the table. */
#define AI_REDIS_PREFIX "temel:ai:"

static void redis_key(const char *key, char out[sizeof(AI_REDIS_PREFIX) + 64])
{
    memcpy(out, AI_REDIS_PREFIX, sizeof(AI_REDIS_PREFIX) - 1);
    str_copy(out + sizeof(AI_REDIS_PREFIX) - 1, key, 65);
}

static void redis_get(const char *key, struct buf *result, int64_t *tin, int64_t *tout, bool *found)
{
    char rk[sizeof(AI_REDIS_PREFIX) + 64];
    struct buf v = BUF_INIT(AI_RESULT_MAX + 64);
    redis_key(key, rk);
    if (redis_cache_get(rk, &v) == 1) {
        str_t s = buf_str(&v);
        const char *nl = memchr(s.p, '\n', s.len), *sp = nl ? memchr(s.p, ' ', (size_t)(nl - s.p)) : NULL;
        int64_t a, b;
        if (sp && !parse_i64(str_make(s.p, (size_t)(sp - s.p)), 0, INT64_MAX, &a) &&
            !parse_i64(str_make(sp + 1, (size_t)(nl - sp - 1)), 0, INT64_MAX, &b) &&
            buf_put(result, str_make(nl + 1, s.len - (size_t)(nl + 1 - s.p))) == BUF_OK) {
            *tin = a;
            *tout = b;
            *found = true;
        }
    }
    buf_free(&v);
}

int ai__cache_get(struct db *db, const char *key, int64_t now_ms, struct buf *result, int64_t *tin, int64_t *tout,
                  bool *found)
{
    struct db_res *res;
    *found = false;
    if (redis_configured()) {
        redis_get(key, result, tin, tout, found);
        return DB_OK;
    }
    int rc = db_query(db, "SELECT result, tokens_in, tokens_out FROM ai_cache WHERE key = ? AND expires_at > ms_ts(?)",
                      DB_ARGS(DBA_CSTR(key), DBA_INT(now_ms)), &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    if (rc == 1) {
        (void)buf_put(result, db_text(res, 0));
        *tin = db_int(res, 1);
        *tout = db_int(res, 2);
        *found = buf_ok(result);
    }
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

int ai__cache_put(struct db *db, const char *key, str_t result, int64_t tin, int64_t tout, int64_t now_ms)
{
    int64_t ttl = ai__cfg()->ai_cache_ttl_s;
    if (ttl <= 0)
        return DB_OK;
    if (redis_configured()) {
        char rk[sizeof(AI_REDIS_PREFIX) + 64], head[48];
        redis_key(key, rk);
        int n = snprintf(head, sizeof(head), "%lld %lld", (long long)tin, (long long)tout);
        (void)redis_cache_put(rk, str_make(head, (size_t)n), result, ttl * 1000);
        return DB_OK;
    }
    return db_exec(db,
                   "INSERT INTO ai_cache (key, result, tokens_in, tokens_out, created_at, expires_at) "
                   "VALUES (?, ?, ?, ?, ms_ts(?), ms_ts(?)) ON CONFLICT (key) DO UPDATE SET result = excluded.result, "
                   "tokens_in = excluded.tokens_in, tokens_out = excluded.tokens_out, created_at = excluded.created_at, "
                   "expires_at = excluded.expires_at",
                   DB_ARGS(DBA_CSTR(key), DBA_TEXT(result), DBA_INT(tin), DBA_INT(tout), DBA_INT(now_ms),
                           DBA_INT(now_ms + ttl * 1000)),
                   NULL);
}

static int cache_purge(struct db *db, int64_t now_ms, int64_t *removed)
{
    *removed = 0;
    for (;;) {
        int64_t n = 0;
        int rc = db_exec(db,
                         "DELETE FROM ai_cache WHERE key IN (SELECT key FROM ai_cache WHERE expires_at < ms_ts(?) "
                         "LIMIT 1000)",
                         DB_ARGS(DBA_INT(now_ms)), &n);
        if (rc != DB_OK)
            return rc;
        *removed += n;
        if (n < 1000)
            return DB_OK;
    }
}

/* ---- submit ---- */

struct submit {
    const char *operation;
    char model[128];
    struct buf input; /* canonical JSON */
    char hash[65];
    bool cache_on; /* the model's provider caches answers */
    int prio;
    int64_t cost;
    /* the cache's answer, looked up before the transaction (a Redis wait holds no write lock) */
    struct buf hit;
    int64_t tin, tout;
    bool found;
    /* out */
    char id[UUID_STR_LEN + 1], txid[40];
    bool cached;
};

static int tx_submit(struct req *r, void *arg)
{
    struct submit *s = arg;
    struct db *db = r->db;
    int64_t now = time_now_ms();
    struct buf ref = BUF_INIT(64);
    int rc = DB_OK;
    s->cached = false;
    s->txid[0] = '\0';
    if (s->found) {
        /* a hit costs nothing: no reservation, no job */
        s->cached = true;
        uuid7_str(s->id);
        rc = db_exec(db,
                     "INSERT INTO ai_requests (id, user_id, operation, model, status, priority, input, input_hash, "
                     "cost, cached, result, tokens_in, tokens_out, latency_ms, created_at, finished_at) "
                     "VALUES (?, ?, ?, ?, 'succeeded', ?, ?, ?, 0, true, ?, ?, ?, 0, ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(s->id), DBA_TEXT(r->user_id), DBA_CSTR(s->operation), DBA_CSTR(s->model),
                             DBA_INT(s->prio), DBA_TEXT(buf_str(&s->input)), DBA_CSTR(s->hash),
                             DBA_TEXT(buf_str(&s->hit)), DBA_INT(s->tin), DBA_INT(s->tout), DBA_INT(now),
                             DBA_INT(now)),
                     NULL);
    } else {
        struct job_opts o = JOB_OPTS_DEFAULT;
        o.queue = "ai";
        o.priority = (enum job_priority)s->prio;
        o.max_attempts = (int)ai__cfg()->ai_max_attempts;
        o.timeout_ms = (int)ai__cfg()->ai_timeout_ms;
        struct buf payload = BUF_INIT(256);
        (void)buf_printf(&payload, "{\"operation\":\"%s\"}", s->operation); /* from the fixed list */
        rc = jobs_enqueue(db, "ai.run", buf_str(&payload), &o, s->id);
        buf_free(&payload);
        if (rc != JOBS_OK) {
            rc = rc < 0 && rc != JOBS_EINVAL ? rc : DB_ERR;
            goto out;
        }
        if (s->cost > 0) {
            (void)buf_printf(&ref, "ai:%s", s->id);
            rc = credits_reserve(db, r->user_id, s->cost, buf_cstr(&ref), s->txid);
            if (rc == CREDITS_INSUFFICIENT) { /* roll back the job too */
                rc = http_fail(r, 402, "INSUFFICIENT_CREDITS",
                               "this operation costs %lld credits; available credit is short", (long long)s->cost);
                goto out;
            }
            if (rc != CREDITS_OK) {
                rc = rc < 0 ? rc : DB_ERR;
                goto out;
            }
        }
        rc = db_exec(db,
                     "INSERT INTO ai_requests (id, user_id, operation, model, status, priority, input, input_hash, "
                     "reservation_id, cost, created_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ms_ts(?))",
                     DB_ARGS(DBA_CSTR(s->id), DBA_TEXT(r->user_id), DBA_CSTR(s->operation), DBA_CSTR(s->model),
                             DBA_INT(s->prio), DBA_TEXT(buf_str(&s->input)), DBA_CSTR(s->hash),
                             s->txid[0] ? DBA_CSTR(s->txid) : DBA_NULL, DBA_INT(s->cost), DBA_INT(now)),
                     NULL);
    }
    if (rc == DB_OK)
        rc = ai__abuse_check(db, r->user_id, s->hash, now);
out:
    buf_free(&ref);
    return rc;
}

/* Resolve the public model name: the one asked for (enabled provider), or the
 * default. 0 with s->model and s->cache_on set; 1 unknown; <0 db_rc. */
static int resolve_model(struct db *db, const json_t *model, struct submit *s)
{
    struct db_res *res;
    int rc;
    if (model)
        rc = db_query(db,
                      "SELECT m.name, p.cache_enabled FROM ai_models m JOIN ai_providers p ON p.id = m.provider_id "
                      "WHERE m.name = ? AND p.enabled = true",
                      DB_ARGS(DBA_TEXT(str_make(json_string_value(model), json_string_length(model)))), &res);
    else
        rc = db_query(db,
                      "SELECT m.name, p.cache_enabled FROM ai_models m JOIN ai_providers p ON p.id = m.provider_id "
                      "WHERE p.enabled = true ORDER BY m.is_default DESC, m.name LIMIT 1",
                      DB_NOARGS, &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    if (rc == 1) {
        str_copy(s->model, db_text(res, 0).p, sizeof(s->model));
        s->cache_on = db_int(res, 1) != 0;
    }
    db_res_free(res);
    return rc < 0 ? rc : rc == 1 ? 0 : 1;
}

/* The shared submit path. 0 with s filled (committed), or HTTP_EFAIL. */
static int submit(struct req *r, const char *operation, struct submit *s)
{
    const char *field = NULL, *message = NULL;
    json_t *norm;
    int rc;
    memset(s, 0, sizeof(*s));
    s->operation = operation;
    s->prio = JOB_PRIO_NORMAL;
    if (!strcmp(operation, "image"))
        return http_invalid(r, "operation", "image generation is not available on this server");
    s->cost = credits_price(operation);
    if (s->cost < 0)
        return http_invalid(r, "operation", "has no price: unknown operation");
    const json_t *prio = json_object_get(r->body, "priority");
    if (prio) {
        for (int i = 0; prio_names[i]; i++)
            if (!strcmp(json_string_value(prio), prio_names[i]))
                s->prio = i;
    }
    /* the plan sets the AI quota per minute, and high priority is for paid plans */
    struct credits_plan plan;
    rc = credits_plan_of(r->db, r->user_id, &plan);
    if (rc < 0)
        return http_db_fail(r, rc);
    struct rl_rule quota = {plan.ai_per_min, 60};
    if (http_rate_limit(r, "plan", r->user_id, &quota))
        return HTTP_EFAIL;
    if (s->prio == JOB_PRIO_HIGH && !plan.paid)
        s->prio = JOB_PRIO_NORMAL;
    norm = ai__normalize_input(json_object_get(r->body, "input"), &field, &message);
    if (!norm)
        return http_invalid(r, field, message);
    buf_init(&s->input, 4u * AI_MAX_TOTAL + 4096);
    ai__input_text(norm, &s->input);
    json_decref(norm);
    if (!buf_ok(&s->input)) {
        buf_free(&s->input);
        return http_invalid(r, "input", "is too large");
    }
    rc = resolve_model(r->db, json_object_get(r->body, "model"), s);
    if (rc) {
        buf_free(&s->input);
        return rc < 0 ? http_db_fail(r, rc)
                      : http_invalid(r, "model", json_object_get(r->body, "model") ? "is not an available model"
                                                                                   : "no model is configured");
    }
    ai__input_hash(operation, str_c(s->model), buf_str(&s->input), s->hash);
    buf_init(&s->hit, AI_RESULT_MAX);
    if (ai__cfg()->ai_cache_ttl_s > 0 && s->cache_on) {
        char key[65];
        ai__cache_key(r->user_id, s->hash, key);
        rc = ai__cache_get(r->db, key, time_now_ms(), &s->hit, &s->tin, &s->tout, &s->found);
    }
    if (rc == DB_OK)
        rc = req_tx(r, DB_TX_WRITE, tx_submit, s);
    else
        rc = http_db_fail(r, rc);
    buf_free(&s->hit);
    buf_free(&s->input);
    return rc;
}

static int h_submit(struct req *r)
{
    struct submit s;
    const json_t *op = json_object_get(r->body, "operation");
    if (submit(r, json_string_value(op), &s))
        return HTTP_EFAIL;
    r->status = s.cached ? 200 : 202;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "job_id");
    jw_cstr(&r->w, s.id);
    jw_key(&r->w, "status");
    jw_cstr(&r->w, s.cached ? "succeeded" : "queued");
    jw_key(&r->w, "cost");
    jw_int(&r->w, s.cached ? 0 : s.cost);
    jw_key(&r->w, "transaction_id");
    jw_cstr(&r->w, s.txid[0] ? s.txid : NULL);
    jw_key(&r->w, "cached");
    jw_bool(&r->w, s.cached);
    jw_obj_end(&r->w);
    return 0;
}

/* ---- the waiting routes: /ai/chat, /ai/generate, /ai/resume, /ai/cover-letter ---- */

struct waiter {
    char id[UUID_STR_LEN + 1];
};

static int answer_job(struct req *r, str_t id, bool timed_out)
{
    bool final = false, found = false;
    struct buf tmp = BUF_INIT(BUF_MAX_JSON_RESPONSE);
    struct jw w;
    jw_init(&w, &tmp);
    int rc = write_own_request(r->db, id, r->user_id, &w, &final, &found);
    if (rc != DB_OK) {
        buf_free(&tmp);
        return http_db_fail(r, rc);
    }
    if (!found) {
        buf_free(&tmp);
        return http_fail(r, 404, "NOT_FOUND", "no such AI job");
    }
    if (!final && !timed_out) {
        buf_free(&tmp);
        return HTTP_DEFER; /* keep waiting */
    }
    jw_raw(&r->w, buf_str(&tmp));
    buf_free(&tmp);
    if (!final) {
        struct buf loc = BUF_INIT(128);
        (void)buf_printf(&loc, "/api/v1/ai/jobs/%.*s", STR_FMT(id));
        req_header(r, "location", buf_str(&loc));
        buf_free(&loc);
        r->status = 202;
    }
    return 0;
}

static int poll_job(struct req *r, void *arg, bool timed_out)
{
    struct waiter *wt = arg;
    return answer_job(r, str_c(wt->id), timed_out);
}

static int wait_route(struct req *r, const char *operation)
{
    int64_t wait = AI_WAIT_DEFAULT_S;
    const str_t *q = req_query(r, "wait");
    const json_t *bw = json_object_get(r->body, "wait");
    if (q && parse_i64(*q, 0, AI_WAIT_MAX_S, &wait))
        return http_invalid(r, "wait", "must be an integer in 0..60 (seconds)");
    if (bw)
        wait = json_integer_value(bw);
    struct submit s;
    if (submit(r, operation, &s))
        return HTTP_EFAIL;
    if (s.cached || wait == 0)
        return answer_job(r, str_c(s.id), true);
    struct waiter *wt = h2o_mem_alloc_pool(r->pool, sizeof(*wt));
    memcpy(wt->id, s.id, sizeof(wt->id));
    return http_defer(r, poll_job, wt, time_mono_ms() + wait * 1000);
}

static int h_chat(struct req *r) { return wait_route(r, "chat"); }
static int h_generate(struct req *r) { return wait_route(r, "generate"); }
static int h_resume(struct req *r) { return wait_route(r, "resume"); }
static int h_cover_letter(struct req *r) { return wait_route(r, "cover-letter"); }

/* ---- the caller's jobs ---- */

static int h_job_get(struct req *r)
{
    bool final, found;
    int rc = write_own_request(r->db, req_param(r, "id"), r->user_id, &r->w, &final, &found);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (!found)
        return http_fail(r, 404, "NOT_FOUND", "no such AI job");
    return 0;
}

static int h_jobs_list(struct req *r)
{
    const str_t *status = req_query(r, "status"), *op = req_query(r, "operation");
    static const char *const allowed[] = {"status", "operation", NULL};
    struct buf *where = req_buf(r, 512);
    db_arg args[8];
    size_t n = 0;
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    (void)buf_puts(where, " WHERE a.user_id = ?");
    args[n++] = DBA_TEXT(r->user_id);
    if (status) {
        if (str_is(*status, "running") || str_is(*status, "queued")) {
            (void)buf_puts(where, str_is(*status, "running")
                                       ? " AND a.status = 'queued' AND j.state = 'running'"
                                       : " AND a.status = 'queued' AND (j.state IS NULL OR j.state <> 'running')");
        } else if (str_is(*status, "succeeded") || str_is(*status, "failed") || str_is(*status, "cancelled")) {
            (void)buf_puts(where, " AND a.status = ?");
            args[n++] = DBA_TEXT(*status);
        } else {
            return http_invalid(r, "status", "must be queued, running, succeeded, failed or cancelled");
        }
    }
    if (op) {
        bool ok = false;
        for (int i = 0; operations[i]; i++)
            ok = ok || str_eq(*op, str_c(operations[i]));
        if (!ok) {
            return http_invalid(r, "operation", "must be chat, generate, resume, cover-letter or image");
        }
        (void)buf_puts(where, " AND a.operation = ?");
        args[n++] = DBA_TEXT(*op);
    }
    const struct http_list_query q = {AI_REQ_COLS, AI_REQ_FROM, buf_cstr(where), "a.created_at DESC, a.id DESC",
                                      ai__write_request};
    return http_list(r, &q, args, n, ARRAY_LEN(args));
}


/* The job's on_dead hook (job.c) does the refund and marks the row
 * 'cancelled' inside jobs_cancel's marking step, which joins this
 * transaction; the lock order is the job row, then ours, then the ledger's —
 * the same as when a runner marks a job dead. */
static int started(struct req *r)
{
    return http_fail(r, 409, "CONFLICT", "the job has already started or finished; only a queued job can be cancelled");
}

static int tx_cancel(struct req *r, void *arg)
{
    const str_t *id = arg;
    struct db_res *res;
    int state = -1;
    int rc = db_query(r->db, "SELECT status FROM ai_requests WHERE id = ? AND user_id = ?",
                      DB_ARGS(DBA_TEXT(*id), DBA_TEXT(r->user_id)), &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    bool queued = rc == 1 && str_is(db_text(res, 0), "queued");
    db_res_free(res);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return http_fail(r, 404, "NOT_FOUND", "no such AI job");
    if (!queued)
        return started(r);
    rc = jobs_cancel(r->db, *id, time_now_ms(), &state);
    if (rc > 0) /* running (or gone): it has started */
        return started(r);
    return rc;
}

static int h_cancel(struct req *r)
{
    str_t id = req_param(r, "id");
    if (req_tx(r, DB_TX_WRITE, tx_cancel, &id))
        return HTTP_EFAIL;
    ai__emit("ai:error", r->user_id, id, 0);
    bool final, found;
    return http_rc(r, write_own_request(r->db, id, r->user_id, &r->w, &final, &found));
}

/* ---- usage ---- */

/* from/to query parameters (YYYY-MM-DD or RFC 3339), default the last 30 days;
 * [from, to) in epoch ms, to exclusive (a date means the end of that day). */
int ai__usage_range(struct req *r, int64_t *from, int64_t *to)
{
    const str_t *f = req_query(r, "from"), *t = req_query(r, "to");
    int64_t now = time_now_ms(), day = 86400000;
    *to = (now / day + 1) * day;
    if (t) {
        if (time_parse_rfc3339(*t, to))
            return http_invalid(r, "to", "must be a date (YYYY-MM-DD) or an RFC 3339 time");
        if (t->len == 10)
            *to += day;
    }
    *from = *to - 30 * day;
    if (f && time_parse_rfc3339(*f, from))
        return http_invalid(r, "from", "must be a date (YYYY-MM-DD) or an RFC 3339 time");
    if (*from >= *to || *to - *from > 400 * day)
        return http_invalid(r, "from", "must be before to, at most 400 days apart");
    for (int i = 0; i < r->q.n; i++) {
        str_t k = r->q.p[i].key;
        if (!str_is(k, "from") && !str_is(k, "to"))
            return http_invalid(r, k.p, "is not a parameter here (allowed: from, to)");
    }
    return 0;
}

static int h_me_usage(struct req *r)
{
    int64_t from, to;
    if (ai__usage_range(r, &from, &to))
        return HTTP_EFAIL;
    struct db_res *res;
    int rc = db_query(
        r->db,
        db_pick(r->db,
                "SELECT date(created_at / 1000, 'unixepoch') AS d, count(*), "
                "sum(CASE WHEN NOT cached AND latency_ms IS NOT NULL THEN 1 ELSE 0 END), "
                "sum(CASE WHEN cached THEN 1 ELSE 0 END), "
                "sum(CASE WHEN status = 'succeeded' AND NOT cached THEN cost ELSE 0 END), "
                "sum(tokens_in), sum(tokens_out), sum(usd_micros) "
                "FROM ai_requests WHERE user_id = ? AND created_at >= ? AND created_at < ? GROUP BY d ORDER BY d",
                "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS d, count(*), "
                "sum(CASE WHEN NOT cached AND latency_ms IS NOT NULL THEN 1 ELSE 0 END), "
                "sum(CASE WHEN cached THEN 1 ELSE 0 END), "
                "sum(CASE WHEN status = 'succeeded' AND NOT cached THEN cost ELSE 0 END), "
                "sum(tokens_in), sum(tokens_out), sum(usd_micros) "
                "FROM ai_requests WHERE user_id = ? AND created_at >= ms_ts(?) AND created_at < ms_ts(?) "
                "GROUP BY d ORDER BY d"),
        DB_ARGS(DBA_TEXT(r->user_id), DBA_INT(from), DBA_INT(to)), &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    static const char *const names[] = {"requests", "ai_calls", "cache_hits", "credits_spent",
                                        "tokens_in", "tokens_out", "cost_usd_micros"};
    int64_t tot[7] = {0};
    jw_obj_begin(&r->w);
    jw_key(&r->w, "from");
    jw_time(&r->w, from);
    jw_key(&r->w, "to");
    jw_time(&r->w, to);
    jw_key(&r->w, "data");
    jw_arr_begin(&r->w);
    while ((rc = db_next(res)) == 1) {
        jw_obj_begin(&r->w);
        jw_key(&r->w, "date");
        jw_str(&r->w, db_text(res, 0));
        for (int i = 0; i < 7; i++) {
            int64_t v = db_int(res, i + 1);
            tot[i] += v;
            jw_key(&r->w, names[i]);
            jw_int(&r->w, v);
        }
        jw_obj_end(&r->w);
    }
    db_res_free(res);
    if (rc < 0)
        return http_db_fail(r, rc);
    jw_arr_end(&r->w);
    jw_key(&r->w, "totals");
    jw_obj_begin(&r->w);
    for (int i = 0; i < 7; i++) {
        jw_key(&r->w, names[i]);
        jw_int(&r->w, tot[i]);
    }
    jw_obj_end(&r->w);
    jw_obj_end(&r->w);
    return 0;
}

/* ---- routes ---- */

#define INPUT_DESC "a prompt string, or {prompt | messages[{role: user|assistant, content}], system?, max_tokens?, temperature?}"
#define INPUT_SCHEMA OPENAPI_JSON({"$ref" : "#/components/schemas/AiInput"})
static const struct json_field submit_f[] = {
    {.name = "operation", .type = JF_STRING, .flags = JF_REQUIRED, .enum_values = operations,
     .description = "cost per GET /credits/pricing"},
    {.name = "model", .type = JF_STRING, .min = 1, .max = 100, .description = "a public model name; default: the configured default"},
    {.name = "input", .type = JF_ANY, .flags = JF_REQUIRED, .description = INPUT_DESC, .schema = INPUT_SCHEMA},
    {.name = "priority", .type = JF_STRING, .enum_values = prio_names, .description = "queue priority (default normal)"},
    {0}};
static const struct json_schema submit_s = {submit_f, false};

static const struct json_field wait_f[] = {
    {.name = "model", .type = JF_STRING, .min = 1, .max = 100, .description = "a public model name; default: the configured default"},
    {.name = "input", .type = JF_ANY, .flags = JF_REQUIRED, .description = INPUT_DESC, .schema = INPUT_SCHEMA},
    {.name = "priority", .type = JF_STRING, .enum_values = prio_names, .description = "queue priority (default normal)"},
    {.name = "wait", .type = JF_INT, .min = 0, .max = AI_WAIT_MAX_S,
     .description = "seconds to wait for the result (default 20; also a query parameter)"},
    {0}};
static const struct json_schema wait_s = {wait_f, false};

#define WAIT_SUMMARY(op)                                                                                               \
    op " — reserve, queue, and wait up to `wait` s: 200 with the finished job, or 202 with the job to poll"

/* OpenAPI: the input every submit route takes, and the request object (ai__write_request). */
static struct openapi_schema schemas[] = {
    {.name = "AiInput",
     .json = OPENAPI_JSON({
         "description" : "a prompt, or a conversation (100000 code points in all)",
         "oneOf" : [
             {"type" : "string", "minLength" : 1, "maxLength" : 50000},
             {
                 "type" : "object",
                 "additionalProperties" : false,
                 "description" : "exactly one of prompt or messages",
                 "properties" : {
                     "prompt" : {"type" : "string", "minLength" : 1, "maxLength" : 50000},
                     "messages" : {
                         "type" : "array",
                         "minItems" : 1,
                         "maxItems" : 100,
                         "description" : "the last one from the user",
                         "items" : {
                             "type" : "object",
                             "required" : [ "role", "content" ],
                             "additionalProperties" : false,
                             "properties" : {
                                 "role" : {"type" : "string", "enum" : [ "user", "assistant" ]},
                                 "content" : {"type" : "string", "minLength" : 1, "maxLength" : 50000}
                             }
                         }
                     },
                     "system" : {"type" : "string", "maxLength" : 50000},
                     "max_tokens" : {"type" : "integer", "minimum" : 1, "maximum" : 32768},
                     "temperature" : {"type" : "number", "minimum" : 0, "maximum" : 2}
                 }
             }
         ]
     })},
    {.name = "AiUsage",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "requests", "ai_calls", "cache_hits", "credits_spent", "tokens_in", "tokens_out", "cost_usd_micros" ],
         "properties" : {
             "requests" : {"type" : "integer"},
             "ai_calls" : {"type" : "integer"},
             "cache_hits" : {"type" : "integer"},
             "credits_spent" : {"type" : "integer"},
             "tokens_in" : {"type" : "integer"},
             "tokens_out" : {"type" : "integer"},
             "cost_usd_micros" : {"type" : "integer"}
         }
     })},
    {.name = "AiJob",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : [
             "id", "job_id", "operation", "model", "status", "progress", "priority", "cost", "charged", "cached",
             "transaction_id", "result", "error", "created_at", "finished_at"
         ],
         "properties" : {
             "id" : {"type" : "string", "format" : "uuid"},
             "job_id" : {"type" : "string", "format" : "uuid", "description" : "the same as id"},
             "operation" : {"type" : "string", "enum" : [ "chat", "generate", "resume", "cover-letter", "image" ]},
             "model" : {"type" : "string"},
             "status" : {"type" : "string", "enum" : [ "queued", "running", "succeeded", "failed", "cancelled" ]},
             "progress" : {"type" : "integer", "minimum" : 0, "maximum" : 100},
             "priority" : {"type" : "string", "enum" : [ "high", "normal", "low" ]},
             "cost" : {"type" : "integer", "minimum" : 0, "description" : "credits reserved"},
             "charged" : {"type" : "integer", "minimum" : 0, "description" : "credits taken (succeeded and not cached)"},
             "cached" : {"type" : "boolean"},
             "transaction_id" : {"type" : [ "string", "null" ]},
             "result" : {
                 "type" : [ "object", "null" ],
                 "properties" : {
                     "text" : {"type" : "string"},
                     "finish_reason" : {"type" : [ "string", "null" ]},
                     "usage" : {
                         "type" : "object",
                         "properties" : {"input_tokens" : {"type" : "integer"}, "output_tokens" : {"type" : "integer"}}
                     }
                 }
             },
             "error" : {"type" : [ "string", "null" ]},
             "created_at" : {"type" : "string", "format" : "date-time"},
             "finished_at" : {"type" : [ "string", "null" ], "format" : "date-time"}
         }
     })},
};
#define JOB_OUT OPENAPI_JSON({"$ref" : "#/components/schemas/AiJob"})

static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/ai/submit", .handler = h_submit, .auth = AUTH_USER, .rl = RL_AI,
     .body_max = AI_BODY_MAX, .input = &submit_s, .flags = ROUTE_IDEMPOTENT, .tag = "ai",
     .summary = "Submit an AI job: credit reserved and job queued in one transaction → 202 {job_id, status, cost, "
                "transaction_id}; a cache hit is 200, status succeeded, cost 0; 402 INSUFFICIENT_CREDITS",
     .errors = "402 403",
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "job_id", "status", "cost", "transaction_id", "cached" ],
         "properties" : {
             "job_id" : {"type" : "string", "format" : "uuid"},
             "status" : {"type" : "string", "enum" : [ "queued", "succeeded" ]},
             "cost" : {"type" : "integer", "minimum" : 0},
             "transaction_id" : {"type" : [ "string", "null" ]},
             "cached" : {"type" : "boolean"}
         }
     })},
    {.method = "POST", .pattern = "/api/v1/ai/chat", .handler = h_chat, .auth = AUTH_USER, .rl = RL_AI,
     .body_max = AI_BODY_MAX, .input = &wait_s, .tag = "ai", .errors = "402 403", .output = JOB_OUT, .summary = WAIT_SUMMARY("Chat")},
    {.method = "POST", .pattern = "/api/v1/ai/generate", .handler = h_generate, .auth = AUTH_USER, .rl = RL_AI,
     .body_max = AI_BODY_MAX, .input = &wait_s, .tag = "ai", .errors = "402 403", .output = JOB_OUT, .summary = WAIT_SUMMARY("Generate text")},
    {.method = "POST", .pattern = "/api/v1/ai/resume", .handler = h_resume, .auth = AUTH_USER, .rl = RL_AI,
     .body_max = AI_BODY_MAX, .input = &wait_s, .tag = "ai", .errors = "402 403", .output = JOB_OUT, .summary = WAIT_SUMMARY("Resume writing")},
    {.method = "POST", .pattern = "/api/v1/ai/cover-letter", .handler = h_cover_letter, .auth = AUTH_USER,
     .rl = RL_AI, .body_max = AI_BODY_MAX, .input = &wait_s, .tag = "ai", .errors = "402 403", .output = JOB_OUT, .summary = WAIT_SUMMARY("Cover letter")},
    {.method = "GET", .pattern = "/api/v1/ai/jobs", .handler = h_jobs_list, .auth = AUTH_USER, .rl = RL_READ,
     .flags = ROUTE_PAGINATED, .tag = "ai",
     .summary = "The caller's AI jobs, newest first (filters: status, operation)", .output = JOB_OUT,
     .params = OPENAPI_JSON([
         {"name" : "status", "in" : "query", "schema" : {"type" : "string", "enum" : [ "queued", "running", "succeeded", "failed", "cancelled" ]}},
         {"name" : "operation", "in" : "query", "schema" : {"type" : "string", "enum" : [ "chat", "generate", "resume", "cover-letter", "image" ]}}
     ])},
    {.method = "GET", .pattern = "/api/v1/ai/jobs/{id}", .handler = h_job_get, .auth = AUTH_USER, .rl = RL_READ,
     .tag = "ai", .summary = "One AI job: status queued|running|succeeded|failed|cancelled, progress, result or error",
     .output = JOB_OUT},
    {.method = "POST", .pattern = "/api/v1/ai/jobs/{id}/cancel", .handler = h_cancel, .auth = AUTH_USER,
     .rl = RL_WRITE, .flags = ROUTE_BODY_OPTIONAL, .tag = "ai",
     .summary = "Cancel a queued AI job and refund its reservation (409 once it has started)", .errors = "409",
     .output = JOB_OUT},
    {.method = "GET", .pattern = "/api/v1/me/usage", .handler = h_me_usage, .auth = AUTH_USER, .rl = RL_READ,
     .tag = "ai", .summary = "The caller's AI usage by UTC day (from, to): requests, AI calls, cache hits, credits "
                             "spent, tokens, upstream cost in micro-USD",
     .errors = "422",
     .params = AI_RANGE_PARAMS,
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "from", "to", "data", "totals" ],
         "properties" : {
             "from" : {"type" : "string", "format" : "date-time"},
             "to" : {"type" : "string", "format" : "date-time"},
             "data" : {"type" : "array", "items" : {"allOf" : [ {"type" : "object", "required" : ["date"], "properties" : {"date" : {"type" : "string", "format" : "date"}}}, {"$ref" : "#/components/schemas/AiUsage"} ]}},
             "totals" : {"$ref" : "#/components/schemas/AiUsage"}
         }
     })},
};

void ai__register_user_routes(void)
{
    for (size_t i = 0; i < ARRAY_LEN(schemas); i++)
        openapi_schema_add(&schemas[i]);
    router_add(routes, ARRAY_LEN(routes));
}

/* ---- module ---- */

static void register_routes(void)
{
    ai__register_user_routes();
    ai__register_admin_routes();
}

static void register_jobs(void)
{
    ai__register_jobs();
    ai__register_abuse_templates();
    jobs_maintenance_register("ai.cache", cache_purge);
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    (void)db;
    return ai__crypto_init(cfg, err);
}

const struct module ai_module = {
    .name = "ai",
    .config = ai__config,
    .register_routes = register_routes,
    .register_jobs = register_jobs,
    .init = init,
};
