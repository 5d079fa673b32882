/*
 * admin.c — the jobs admin API (API.md §6).
 *
 *   GET    /api/v1/admin/queues            counts by state per queue
 *   GET    /api/v1/admin/jobs              ?state=&queue=&kind=, paginated, newest first
 *   GET    /api/v1/admin/jobs/{id}         one job (with payload and result)
 *   POST   /api/v1/admin/jobs/{id}/retry   failed/dead/cancelled → available (attempts start again); else 409
 *   DELETE /api/v1/admin/jobs/{id}         available/scheduled/retryable → cancelled, 204;
 *                                          already cancelled → 204; running or finished → 409
 *
 * The list leaves payloads out (they may carry personal data such as an
 * e-mail address); the single-job read includes it.
 */
#include <stdio.h>

#include "core/timeutil.h"
#include "core/uuid.h"
#include "http/http.h"
#include "jobs/jobs_internal.h"
#include "modules/queue/queue_internal.h"
#include "modules/audit/audit.h"

#include "db/dbjson.h"

#include "core/banned.h"

#define JOB_COLS                                                                                                       \
    "id, kind, queue, priority, state, attempt, max_attempts, timeout_ms, ts_ms(run_at), locked_by, "                  \
    "ts_ms(locked_until), last_error, progress, result, unique_key, ts_ms(created_at), ts_ms(updated_at), "           \
    "ts_ms(started_at), ts_ms(finished_at)"

static void put_time(struct jw *w, const char *key, const struct db_res *r, int col)
{
    jw_key(w, key);
    jw_db_time(w, r, col);
}

static void put_text(struct jw *w, const char *key, const struct db_res *r, int col)
{
    jw_key(w, key);
    jw_db_text(w, r, col);
}

/* One job object from a row of JOB_COLS (+ payload as column 19 when with_payload). */
static void write_job(struct jw *w, const struct db_res *r, bool with_payload)
{
    int64_t prio = db_int(r, 3);
    jw_obj_begin(w);
    put_text(w, "id", r, 0);
    put_text(w, "kind", r, 1);
    put_text(w, "queue", r, 2);
    jw_key(w, "priority");
    jw_cstr(w, prio >= 0 && prio <= 2 ? jobs__prio_names[prio] : "normal");
    put_text(w, "state", r, 4);
    jw_key(w, "attempt");
    jw_int(w, db_int(r, 5));
    jw_key(w, "max_attempts");
    jw_int(w, db_int(r, 6));
    jw_key(w, "timeout_ms");
    jw_int(w, db_int(r, 7));
    put_time(w, "run_at", r, 8);
    put_text(w, "locked_by", r, 9);
    put_time(w, "locked_until", r, 10);
    put_text(w, "last_error", r, 11);
    jw_key(w, "progress");
    jw_int(w, db_int(r, 12));
    jw_key(w, "result");
    if (db_isnull(r, 13))
        jw_null(w);
    else
        jw_raw(w, db_text(r, 13)); /* validated JSON when stored */
    put_text(w, "unique_key", r, 14);
    put_time(w, "created_at", r, 15);
    put_time(w, "updated_at", r, 16);
    put_time(w, "started_at", r, 17);
    put_time(w, "finished_at", r, 18);
    if (with_payload) {
        const struct job_kind *k = jobs__kind_n(db_text(r, 1));
        jw_key(w, "payload");
        if (k && k->sensitive)
            jw_raw(w, STRLIT("{\"redacted\":true}")); /* secrets stay out of admin screens */
        else
            jw_raw(w, db_text(r, 19)); /* validated JSON object at enqueue */
    }
    jw_obj_end(w);
}

/* Writes the job or returns 404. */
static int write_job_by_id(struct req *r, str_t id)
{
    struct db_res *res;
    if (!uuid_valid(id))
        return http_fail(r, 404, "NOT_FOUND", "no such job");
    int rc = db_query(r->db, "SELECT " JOB_COLS ", payload FROM jobs WHERE id = ?", DB_ARGS(DBA_TEXT(id)), &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    rc = db_next(res);
    if (rc == 1)
        write_job(&r->w, res, true);
    db_res_free(res);
    if (rc < 0)
        return http_db_fail(r, rc);
    if (rc == 0)
        return http_fail(r, 404, "NOT_FOUND", "no such job");
    return 0;
}

/* ---- GET /admin/queues ------------------------------------------------------ */

#define MAX_Q 128
struct qrow {
    char name[JOBS_NAME_MAX + 1];
    int64_t n[8];
};

static struct qrow *qrow_get(struct qrow *q, size_t *nq, const char *name)
{
    for (size_t i = 0; i < *nq; i++)
        if (!strcmp(q[i].name, name))
            return &q[i];
    if (*nq == MAX_Q)
        return NULL;
    memset(&q[*nq], 0, sizeof(q[*nq]));
    str_copy(q[*nq].name, name, sizeof(q[*nq].name));
    return &q[(*nq)++];
}

static int h_queues(struct req *r)
{
    struct qrow *q = h2o_mem_alloc_pool(r->pool, sizeof(*q) * MAX_Q);
    size_t nq = 0;
    struct db_res *res;
    const char *const *names;
    const int *limits;
    size_t nl = jobs__limited_queues(&names, &limits);
    int rc = db_query(r->db, "SELECT queue, state, count(*) FROM jobs GROUP BY queue, state ORDER BY queue", DB_NOARGS,
                      &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    while ((rc = db_next(res)) == 1) {
        struct qrow *row = qrow_get(q, &nq, db_text(res, 0).p);
        int st = jobs__state_from(db_text(res, 1));
        if (row && st >= 0)
            row->n[st] = db_int(res, 2);
    }
    db_res_free(res);
    if (rc < 0)
        return http_db_fail(r, rc);
    for (size_t i = 0; i < nl; i++) /* configured queues appear even when empty */
        (void)qrow_get(q, &nq, names[i]);
    /* one page of the queues, in the list envelope (API.md §1) */
    size_t first = (size_t)((r->page - 1) * r->limit), last = first + (size_t)r->limit;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "data");
    jw_arr_begin(&r->w);
    for (size_t i = first; i < nq && i < last; i++) {
        int64_t total = 0;
        int lim = jobs__queue_limit_of(str_c(q[i].name));
        jw_obj_begin(&r->w);
        jw_key(&r->w, "queue");
        jw_cstr(&r->w, q[i].name);
        jw_key(&r->w, "counts");
        jw_obj_begin(&r->w);
        for (int s = 0; s < 8; s++) {
            jw_key(&r->w, jobs__state_names[s]);
            jw_int(&r->w, q[i].n[s]);
            total += q[i].n[s];
        }
        jw_obj_end(&r->w);
        jw_key(&r->w, "total");
        jw_int(&r->w, total);
        jw_key(&r->w, "concurrency");
        if (lim)
            jw_int(&r->w, lim);
        else
            jw_null(&r->w);
        jw_obj_end(&r->w);
    }
    jw_arr_end(&r->w);
    http_write_page_meta(r, (int64_t)nq);
    jw_obj_end(&r->w);
    return 0;
}

/* a list row: the job without its payload */
static void write_job_row(struct jw *w, const struct db_res *res) { write_job(w, res, false); }

/* ---- GET /admin/jobs -------------------------------------------------------- */

static int h_list(struct req *r)
{
    const str_t *state = req_query(r, "state"), *queue = req_query(r, "queue"), *kind = req_query(r, "kind");
    static const char *const allowed[] = {"state", "queue", "kind", NULL};
    struct buf *where = req_buf(r, 512);
    db_arg args[6];
    size_t n = 0;
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    /* validate everything before allocating anything */
    if (state && jobs__state_from(*state) < 0)
        return http_invalid(r, "state",
                            "must be available, scheduled, running, retryable, succeeded, failed, dead or cancelled");
    if (queue && (queue->len == 0 || queue->len > JOBS_NAME_MAX))
        return http_invalid(r, "queue", "must be 1 to 64 characters");
    if (kind && (kind->len == 0 || kind->len > JOBS_NAME_MAX))
        return http_invalid(r, "kind", "must be 1 to 64 characters");
    (void)buf_puts(where, " WHERE 1 = 1");
    if (state) {
        (void)buf_puts(where, " AND state = ?");
        args[n++] = DBA_TEXT(*state);
    }
    if (queue) {
        (void)buf_puts(where, " AND queue = ?");
        args[n++] = DBA_TEXT(*queue);
    }
    if (kind) {
        (void)buf_puts(where, " AND kind = ?");
        args[n++] = DBA_TEXT(*kind);
    }
    const struct http_list_query q = {JOB_COLS, "FROM jobs", buf_cstr(where), "id DESC", write_job_row};
    return http_list(r, &q, args, n, ARRAY_LEN(args));
}

static int h_get(struct req *r) { return write_job_by_id(r, req_param(r, "id")); }

/* ---- POST /admin/jobs/{id}/retry, DELETE /admin/jobs/{id} ------------------- */

/* Admin retry/cancel and their audit entry commit together (db_tx joins). */
struct admin_job_ctx {
    str_t id;
    bool cancel;
};

static int tx_admin_job(struct req *r, void *arg)
{
    const struct admin_job_ctx *c = arg;
    int state = -1;
    int rc = c->cancel ? jobs__cancel(r->db, c->id, time_now_ms(), &state)
                       : jobs__retry(r->db, c->id, time_now_ms(), &state);
    const char *state_name = state >= 0 ? jobs__state_names[state] : "unknown";
    if (rc == DB_ECONSTRAINT && !c->cancel)
        return http_fail(r, 409, "CONFLICT", "another unfinished job holds this job's unique_key");
    if (rc < 0)
        return rc;
    if (rc == 1)
        return http_fail(r, 404, "NOT_FOUND", "no such job");
    if (rc == 2 && !c->cancel)
        return http_fail(r, 409, "CONFLICT", "only failed, dead or cancelled jobs can be retried (this one is %s)",
                         state_name);
    if (rc == 2 && state != JS_CANCELLED)
        return http_fail(r, 409, "CONFLICT", "a %s job cannot be cancelled", state_name);
    struct audit_entry e = {.action = c->cancel ? "jobs.cancel" : "jobs.retry", .category = "jobs",
                            .target_type = "job", .target_id = c->id, .success = true};
    return audit_record_req(r, &e);
}

/* 0 when the job was retried or cancelled (and audited), or the error recorded. */
static int run_admin_job(struct req *r, bool cancel)
{
    struct admin_job_ctx c = {req_param(r, "id"), cancel};
    if (!uuid_valid(c.id))
        return http_fail(r, 404, "NOT_FOUND", "no such job");
    return req_tx(r, DB_TX_WRITE, tx_admin_job, &c);
}

static int h_retry(struct req *r)
{
    if (run_admin_job(r, false))
        return HTTP_EFAIL;
    return write_job_by_id(r, req_param(r, "id"));
}

static int h_cancel(struct req *r)
{
    if (run_admin_job(r, true))
        return HTTP_EFAIL;
    r->status = 204;
    return 0;
}

static const struct json_field no_fields[] = {{0}};
static const struct json_schema empty_body = {.fields = no_fields}; /* retry: no body or {} */

/* OpenAPI: a job as write_job writes it. */
static struct openapi_schema job_schema = {
    .name = "QueueJob",
    .json = OPENAPI_JSON({
        "type" : "object",
        "required" : [
            "id", "kind", "queue", "priority", "state", "attempt", "max_attempts", "timeout_ms", "run_at", "locked_by",
            "locked_until", "last_error", "progress", "result", "unique_key", "created_at", "updated_at", "started_at",
            "finished_at"
        ],
        "properties" : {
            "id" : {"type" : "string", "format" : "uuid"},
            "kind" : {"type" : "string"},
            "queue" : {"type" : "string"},
            "priority" : {"type" : "string", "enum" : [ "high", "normal", "low" ]},
            "state" : {"type" : "string", "enum" : [ "available", "scheduled", "running", "retryable", "succeeded", "failed", "dead", "cancelled" ]},
            "attempt" : {"type" : "integer", "minimum" : 0},
            "max_attempts" : {"type" : "integer", "minimum" : 1},
            "timeout_ms" : {"type" : "integer"},
            "run_at" : {"type" : [ "string", "null" ], "format" : "date-time"},
            "locked_by" : {"type" : [ "string", "null" ]},
            "locked_until" : {"type" : [ "string", "null" ], "format" : "date-time"},
            "last_error" : {"type" : [ "string", "null" ]},
            "progress" : {"type" : "integer", "minimum" : 0, "maximum" : 100},
            "result" : {"description" : "the handler's JSON result, or null"},
            "unique_key" : {"type" : [ "string", "null" ]},
            "created_at" : {"type" : [ "string", "null" ], "format" : "date-time"},
            "updated_at" : {"type" : [ "string", "null" ], "format" : "date-time"},
            "started_at" : {"type" : [ "string", "null" ], "format" : "date-time"},
            "finished_at" : {"type" : [ "string", "null" ], "format" : "date-time"},
            "payload" : {"type" : "object", "additionalProperties" : true, "description" : "GET /admin/jobs/{id} only; {redacted: true} for sensitive kinds"}
        }
    })};
#define JOB_OUT OPENAPI_JSON({"$ref" : "#/components/schemas/QueueJob"})

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/admin/queues", .handler = h_queues, .auth = AUTH_ADMIN, .rl = RL_READ,
     .summary = "Job counts by state for each queue", .tag = "jobs", .flags = ROUTE_NO_BODY | ROUTE_PAGINATED,
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "queue", "counts", "total", "concurrency" ],
         "properties" : {
             "queue" : {"type" : "string"},
             "counts" : {"type" : "object", "additionalProperties" : {"type" : "integer"}, "description" : "per state"},
             "total" : {"type" : "integer"},
             "concurrency" : {"type" : [ "integer", "null" ], "description" : "null: no limit"}
         }
     })},
    {.method = "GET", .pattern = "/api/v1/admin/jobs", .handler = h_list, .auth = AUTH_ADMIN, .rl = RL_READ,
     .summary = "List jobs, newest first (filters: state, queue, kind)", .tag = "jobs",
     .flags = ROUTE_PAGINATED | ROUTE_NO_BODY, .output = JOB_OUT,
     .params = OPENAPI_JSON([
         {"name" : "state", "in" : "query", "schema" : {"type" : "string", "enum" : [ "available", "scheduled", "running", "retryable", "succeeded", "failed", "dead", "cancelled" ]}},
         {"name" : "queue", "in" : "query", "schema" : {"type" : "string"}},
         {"name" : "kind", "in" : "query", "schema" : {"type" : "string"}}
     ])},
    {.method = "GET", .pattern = "/api/v1/admin/jobs/{id}", .handler = h_get, .auth = AUTH_ADMIN, .rl = RL_READ,
     .summary = "One job with its payload and result", .tag = "jobs", .flags = ROUTE_NO_BODY, .output = JOB_OUT},
    {.method = "POST", .pattern = "/api/v1/admin/jobs/{id}/retry", .handler = h_retry, .auth = AUTH_ADMIN,
     .rl = RL_WRITE, .input = &empty_body, .summary = "Run a failed, dead or cancelled job again (409 otherwise)",
     .tag = "jobs", .flags = ROUTE_BODY_OPTIONAL, .errors = "409", .output = JOB_OUT},
    {.method = "DELETE", .pattern = "/api/v1/admin/jobs/{id}", .handler = h_cancel, .auth = AUTH_ADMIN,
     .rl = RL_WRITE, .summary = "Cancel a job that has not started (409 when running or finished)", .tag = "jobs",
     .flags = ROUTE_NO_BODY, .errors = "409", .status = 204},
};

void queue__register_admin_routes(void)
{
    openapi_schema_add(&job_schema);
    router_add(routes, ARRAY_LEN(routes));
}
