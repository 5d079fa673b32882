/*
 * testkinds.c — job kinds and routes that exist only with TEMEL_ENV=test,
 * for the API tests and bench/jobs.sh. Never registered otherwise (the kinds
 * by the jobs module's init hook, the routes are ROUTE_TEST_ONLY).
 *
 * Kinds (queue "test"):
 *   test.noop      succeeds with {"ok":true}
 *   test.fail      {"permanent":bool}: JOB_FAIL or JOB_RETRY; on_dead records
 *                  app_meta key "job-dead:<id>" inside the marking transaction
 *   test.sleep     {"ms":N,"first_only":bool}: sleeps (never past its deadline)
 *   test.record    {"file":path,"label":s}: appends "<label or id>\n" with O_APPEND
 *   test.progress  sets progress 50, then succeeds
 *   test.cron      (queue "test-cron") fired by the cron entry "test.every_minute"
 * Routes:
 *   POST /api/v1/_test/jobs          enqueue (count, delay_ms, rollback, ...)
 *   GET  /api/v1/_test/jobs/counts   jobs_counts(), optionally ?queue=
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "http/http.h"
#include "jobs/jobs_internal.h"
#include "modules/queue/queue_internal.h"

#include "core/banned.h"

static enum job_result k_noop(struct job *j, struct buf *result, struct buf *error)
{
    UNUSED(j);
    UNUSED(error);
    (void)buf_puts(result, "{\"ok\":true}");
    return JOB_OK;
}

static enum job_result k_fail(struct job *j, struct buf *result, struct buf *error)
{
    UNUSED(result);
    (void)buf_printf(error, "test failure on attempt %d", j->attempt);
    return json_is_true(json_object_get(j->payload, "permanent")) ? JOB_FAIL : JOB_RETRY;
}

static int k_fail_dead(struct db *db, const char *job_id, json_t *payload)
{
    struct buf key = BUF_INIT(128);
    UNUSED(payload);
    (void)buf_printf(&key, "job-dead:%s", job_id);
    int rc = db_exec(db, "INSERT INTO app_meta (key, value) VALUES (?, 'dead') ON CONFLICT DO NOTHING",
                     DB_ARGS(DBA_TEXT(buf_str(&key))), NULL);
    buf_free(&key);
    return rc;
}

static enum job_result k_sleep(struct job *j, struct buf *result, struct buf *error)
{
    json_int_t ms = json_integer_value(json_object_get(j->payload, "ms"));
    UNUSED(result);
    UNUSED(error);
    if (json_is_true(json_object_get(j->payload, "first_only")) && j->attempt > 1)
        return JOB_OK;
    int64_t until = time_mono_ms() + ms;
    if (until > j->deadline_mono_ms)
        until = j->deadline_mono_ms; /* honour the deadline */
    while (time_mono_ms() < until)
        usleep(5000);
    return JOB_OK;
}

static enum job_result k_record(struct job *j, struct buf *result, struct buf *error)
{
    const char *file = json_string_value(json_object_get(j->payload, "file"));
    const char *label = json_string_value(json_object_get(j->payload, "label"));
    struct buf line = BUF_INIT(512);
    UNUSED(result);
    if (!file) {
        (void)buf_puts(error, "payload.file is required");
        return JOB_FAIL;
    }
    (void)buf_printf(&line, "%s\n", label ? label : j->id);
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line.ptr, line.len) != (ssize_t)line.len) {
        (void)buf_printf(error, "append failed: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        buf_free(&line);
        return JOB_RETRY;
    }
    close(fd);
    buf_free(&line);
    return JOB_OK;
}

static enum job_result k_progress(struct job *j, struct buf *result, struct buf *error)
{
    if (job_progress(j, 50) != DB_OK) {
        (void)buf_puts(error, "progress update failed");
        return JOB_RETRY;
    }
    (void)buf_puts(result, "{\"progress_set\":50}");
    return JOB_OK;
}

void queue__register_test_kinds(void)
{
    static const struct job_kind kinds[] = {
        {.kind = "test.noop", .handler = k_noop, .queue = "test"},
        {.kind = "test.fail", .handler = k_fail, .queue = "test", .on_dead = k_fail_dead},
        {.kind = "test.sleep", .handler = k_sleep, .queue = "test"},
        {.kind = "test.record", .handler = k_record, .queue = "test"},
        {.kind = "test.progress", .handler = k_progress, .queue = "test"},
        {.kind = "test.cron", .handler = k_noop, .queue = "test-cron"},
    };
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
        jobs_register(&kinds[i]);
    cron_register("test.every_minute", "* * * * *", "test.cron", "{}");
}

/* ---- routes ----------------------------------------------------------------- */

static const char *const prio_enum[] = {"high", "normal", "low", NULL};
static const struct json_field enqueue_fields[] = {
    {.name = "kind", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 64},
    {.name = "payload", .type = JF_OBJECT},
    {.name = "queue", .type = JF_STRING, .min = 1, .max = 64},
    {.name = "priority", .type = JF_STRING, .enum_values = prio_enum},
    {.name = "delay_ms", .type = JF_INT, .min = -86400000, .max = 86400000},
    {.name = "max_attempts", .type = JF_INT, .min = 1, .max = 100},
    {.name = "unique_key", .type = JF_STRING, .min = 1, .max = 200},
    {.name = "timeout_ms", .type = JF_INT, .min = 1, .max = 3600000},
    {.name = "count", .type = JF_INT, .min = 1, .max = 10000},
    {.name = "rollback", .type = JF_BOOL},
    {0},
};
static const struct json_schema enqueue_schema = {.fields = enqueue_fields};

struct enq_ctx {
    struct req *r;
    const char *kind;
    str_t payload;
    struct job_opts o;
    int64_t count;
    bool rollback;
    int64_t dup;
};

enum { ROLLED_BACK = 1 }; /* enq_tx: roll back on purpose, the response is written */

static int enq_tx(struct db *db, void *arg)
{
    struct enq_ctx *c = arg;
    struct jw *w = &c->r->w;
    char id[37];
    buf_reset(&c->r->out); /* db_tx may run this again */
    jw_init(w, &c->r->out);
    c->dup = 0;
    jw_obj_begin(w);
    jw_key(w, "ids");
    jw_arr_begin(w);
    for (int64_t i = 0; i < c->count; i++) {
        int rc = jobs_enqueue(db, c->kind, c->payload, &c->o, id);
        if (rc == JOBS_EDUPLICATE)
            c->dup++;
        else if (rc == JOBS_EINVAL)
            return http_invalid(c->r, "payload", "invalid job options");
        else if (rc != JOBS_OK)
            return rc;
        jw_cstr(w, id);
    }
    jw_arr_end(w);
    jw_key(w, "duplicates");
    jw_int(w, c->dup);
    jw_key(w, "rolled_back");
    jw_bool(w, c->rollback);
    jw_obj_end(w);
    return c->rollback ? ROLLED_BACK : 0;
}

static int h_enqueue(struct req *r)
{
    json_t *b = r->body, *v;
    struct enq_ctx c = {.r = r, .o = JOB_OPTS_DEFAULT, .count = 1};
    c.kind = json_string_value(json_object_get(b, "kind"));
    if (!jobs__kind(c.kind))
        return http_invalid(r, "kind", "is not a registered job kind");
    v = json_object_get(b, "payload");
    char *payload = v ? json_dumps(v, JSON_COMPACT) : xstrdup("{}");
    c.payload = str_c(payload);
    c.o.queue = json_string_value(json_object_get(b, "queue"));
    if ((v = json_object_get(b, "priority")))
        c.o.priority = !strcmp(json_string_value(v), "high")  ? JOB_PRIO_HIGH
                       : !strcmp(json_string_value(v), "low") ? JOB_PRIO_LOW
                                                              : JOB_PRIO_NORMAL;
    if ((v = json_object_get(b, "delay_ms")))
        c.o.run_at_ms = time_now_ms() + json_integer_value(v);
    if ((v = json_object_get(b, "max_attempts")))
        c.o.max_attempts = (int)json_integer_value(v);
    c.o.unique_key = json_string_value(json_object_get(b, "unique_key"));
    if ((v = json_object_get(b, "timeout_ms")))
        c.o.timeout_ms = (int)json_integer_value(v);
    if ((v = json_object_get(b, "count")))
        c.count = json_integer_value(v);
    c.rollback = json_is_true(json_object_get(b, "rollback"));
    int rc = db_tx(r->db, DB_TX_WRITE, enq_tx, &c);
    free(payload);
    r->status = rc == ROLLED_BACK ? 200 : 201;
    return rc == ROLLED_BACK ? 0 : http_rc(r, rc);
}

static int h_counts(struct req *r)
{
    const str_t *queue = req_query(r, "queue");
    struct db_res *res;
    int64_t n[8] = {0};
    int rc = queue ? db_query(r->db, "SELECT state, count(*) FROM jobs WHERE queue = ? GROUP BY state",
                              DB_ARGS(DBA_TEXT(*queue)), &res)
                   : db_query(r->db, "SELECT state, count(*) FROM jobs GROUP BY state", DB_NOARGS, &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    while ((rc = db_next(res)) == 1) {
        int s = jobs__state_from(db_text(res, 0));
        if (s >= 0)
            n[s] = db_int(res, 1);
    }
    db_res_free(res);
    if (rc < 0)
        return http_db_fail(r, rc);
    jw_obj_begin(&r->w);
    for (int s = 0; s < 8; s++) {
        jw_key(&r->w, jobs__state_names[s]);
        jw_int(&r->w, n[s]);
    }
    jw_obj_end(&r->w);
    return 0;
}

static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/_test/jobs", .handler = h_enqueue, .rl = RL_WRITE,
     .input = &enqueue_schema, .summary = "Enqueue test jobs (test only)", .tag = "test", .flags = ROUTE_TEST_ONLY},
    {.method = "GET", .pattern = "/api/v1/_test/jobs/counts", .handler = h_counts, .rl = RL_READ,
     .summary = "Job counts by state (test only)", .tag = "test", .flags = ROUTE_TEST_ONLY},
};

void queue__register_test_routes(void) { router_add(routes, ARRAY_LEN(routes)); }
