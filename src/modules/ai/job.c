/*
 * job.c — the "ai.run" job: one AI request from queue to settlement.
 *
 * Exactly once, whatever happens to the runner:
 *   - The request row leaves 'queued' only in ai__settle(), by a guarded
 *     UPDATE (WHERE status = 'queued') in the same transaction as the
 *     ledger call; a second settle (a reclaimed lease that ran the job again,
 *     on_dead after a settled attempt) changes nothing and moves no credit.
 *   - A reclaimed job whose row is already settled finishes without calling
 *     the provider again. One that died between the provider's answer and
 *     the settle calls the provider again (the answer was never stored), and
 *     still settles once.
 *   - Permanent errors (4xx other than 408/425/429, refused destination,
 *     malformed JSON on the last attempt, no usable key) settle as 'failed'
 *     and refund at once (JOB_FAIL). Transient ones (429, 5xx, timeouts,
 *     connection errors, malformed JSON before the last attempt) return
 *     JOB_RETRY; the last attempt settles as failed itself so the client sees
 *     the real reason. on_dead (dead by lease loss, failed, cancelled) settles
 *     whatever is still queued — inside the transaction that marks the job.
 *
 * Keys: the provider's active keys are used round-robin (a process-wide
 * counter); a key answered 401/403 is retired (audited, by id only) and the
 * next one is tried within the same attempt. Plain keys exist only in a
 * buffer wiped right after the call; they are never logged or stored in an
 * error.
 */
#include <sodium.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "transport/http_client.h"
#include "jobs/jobs.h"
#include "modules/ai/ai_internal.h"
#include "modules/audit/audit.h"
#include "modules/credits/credits.h"
#include "modules/webhooks/webhooks.h"

#include "core/banned.h"

static ai_event_fn g_hook;
void ai_set_event_hook(ai_event_fn fn) { g_hook = fn; }
void ai__emit(const char *event, str_t user_id, str_t job_id, int progress)
{
    if (g_hook)
        g_hook(event, user_id, job_id, progress);
}

/* ---- settle ---- */

int ai__settle(struct db *db, str_t id, const struct ai_outcome *o, bool *applied)
{
    struct db_res *res;
    int64_t now = time_now_ms();
    char reservation[40] = "";
    json_t *ev = NULL;
    *applied = false;
    int rc = db_query(db,
                      "UPDATE ai_requests SET status = ?, result = ?, error = ?, cached = ?, provider = ?, "
                      "tokens_in = ?, tokens_out = ?, usd_micros = ?, latency_ms = ?, finished_at = ms_ts(?) "
                      "WHERE id = ? AND status = 'queued' RETURNING reservation_id, user_id, operation, model",
                      DB_ARGS(DBA_CSTR(o->ok ? "succeeded" : o->status), o->ok ? DBA_TEXT(o->result) : DBA_NULL,
                              o->ok ? DBA_NULL : DBA_TEXT(o->error), DBA_BOOL(o->cached),
                              o->provider.len ? DBA_TEXT(o->provider) : DBA_NULL, DBA_INT(o->tokens_in),
                              DBA_INT(o->tokens_out), DBA_INT(o->usd_micros),
                              o->latency_ms >= 0 ? DBA_INT(o->latency_ms) : DBA_NULL, DBA_INT(now), DBA_TEXT(id)),
                      &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    if (rc == 1) {
        *applied = true;
        if (!db_isnull(res, 0))
            str_copy(reservation, db_text(res, 0).p, sizeof(reservation));
        ev = json_pack("{s:s%,s:s,s:s,s:s,s:s,s:b}", "id", id.p, id.len, "user_id", db_text(res, 1).p, "operation",
                       db_text(res, 2).p, "model", db_text(res, 3).p, "status", o->ok ? "succeeded" : o->status,
                       "cached", o->cached);
        rc = db_next(res); /* run to the end (SQLite) */
    }
    db_res_free(res);
    if (rc >= 0 && ev)
        rc = webhooks_emit(db, "ai.job.finished", ev); /* the outcome commits with its webhooks */
    json_decref(ev);
    if (rc < 0)
        return rc;
    if (!*applied || !reservation[0])
        return DB_OK;
    bool moved = false;
    if (o->ok && !o->cached)
        rc = credits_confirm(db, str_c(reservation), &moved);
    else
        rc = credits_refund(db, str_c(reservation), &moved);
    if (rc < 0)
        return rc;
    if (rc != CREDITS_OK || !moved)
        /* the row was queued, so the reservation must have been open: a broken invariant */
        log_error("ai request %.*s: reservation %s was not open when settling (%d)", STR_FMT(id), reservation, rc);
    return DB_OK;
}

struct settle_ctx {
    str_t id;
    const struct ai_outcome *o;
    bool applied;
};

static int tx_settle(struct db *db, void *arg)
{
    struct settle_ctx *c = arg;
    return ai__settle(db, c->id, c->o, &c->applied);
}

/* Settle, then (once committed, by the run that applied it) store a fresh
 * answer under cache_key: the cache (Redis or the table) is no part of the
 * ledger's transaction — an entry lost to a crash is only a later miss. */
static int settle(struct db *db, str_t id, const struct ai_outcome *o, const char *cache_key, bool *applied)
{
    struct settle_ctx c = {id, o, false};
    int rc = db_tx(db, DB_TX_WRITE, tx_settle, &c);
    *applied = c.applied;
    if (rc == DB_OK && c.applied && cache_key &&
        ai__cache_put(db, cache_key, o->result, o->tokens_in, o->tokens_out, time_now_ms()) != DB_OK)
        log_warn("ai request %.*s: its answer was not cached (database error)", STR_FMT(id));
    return rc;
}

/* ---- keys ---- */

struct key_set {
    char ids[AI_KEYS_MAX][40];
    struct buf secrets[AI_KEYS_MAX];
    int n;
};

static void keys_free(struct key_set *k)
{
    for (int i = 0; i < k->n; i++)
        buf_free(&k->secrets[i]);
    k->n = 0;
}

static int keys_load(struct db *db, str_t provider_id, struct key_set *k)
{
    struct db_res *res;
    k->n = 0;
    int rc = db_query(db,
                      "SELECT id, secret FROM ai_provider_keys WHERE provider_id = ? AND status = 'active' ORDER BY id",
                      DB_ARGS(DBA_TEXT(provider_id)), &res);
    if (rc != DB_OK)
        return rc;
    while ((rc = db_next(res)) == 1 && k->n < AI_KEYS_MAX) {
        str_copy(k->ids[k->n], db_text(res, 0).p, sizeof(k->ids[0]));
        buf_init(&k->secrets[k->n], 8u * AI_KEY_MAX);
        (void)buf_put(&k->secrets[k->n], db_text(res, 1));
        k->n++;
    }
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

struct retire_ctx {
    const char *key_id;
    long status;
};

static int tx_retire(struct db *db, void *arg)
{
    struct retire_ctx *c = arg;
    int64_t changes = 0, now = time_now_ms();
    int rc = db_exec(db,
                     "UPDATE ai_provider_keys SET status = 'retired', retired_reason = ?, retired_at = ms_ts(?) "
                     "WHERE id = ? AND status = 'active'",
                     DB_ARGS(DBA_CSTR(c->status == 401 ? "provider answered 401" : "provider answered 403"),
                             DBA_INT(now), DBA_CSTR(c->key_id)),
                     &changes);
    if (rc != DB_OK || changes != 1)
        return rc;
    json_t *after = json_pack("{s:s,s:I}", "status", "retired", "provider_status", (json_int_t)c->status);
    struct audit_entry e = {.action = "ai.key_retire", .category = "ai", .target_type = "ai_provider_key",
                            .target_id = str_c(c->key_id), .after = after, .success = true,
                            .ip = STRLIT(""), .user_agent = STRLIT(""), .endpoint = STRLIT("job ai.run"),
                            .request_id = STRLIT("")};
    rc = audit_record(db, &e);
    json_decref(after);
    return rc;
}

/* ---- the handler ---- */

struct upstream {
    char provider_id[40], provider[128], upstream[128];
    struct buf base_url;
    int kind;
    int64_t price_in, price_out;
    bool cache_on; /* the provider's answers may be cached */
};

static int load_upstream(struct db *db, str_t model, struct upstream *u, bool *found)
{
    struct db_res *res;
    int rc = db_query(db,
                      "SELECT p.id, p.name, p.kind, p.base_url, m.upstream, m.price_in, m.price_out, p.cache_enabled "
                      "FROM ai_models m "
                      "JOIN ai_providers p ON p.id = m.provider_id WHERE m.name = ? AND p.enabled = true",
                      DB_ARGS(DBA_TEXT(model)), &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    *found = rc == 1;
    if (rc == 1) {
        str_copy(u->provider_id, db_text(res, 0).p, sizeof(u->provider_id));
        str_copy(u->provider, db_text(res, 1).p, sizeof(u->provider));
        u->kind = ai__kind_from(db_text(res, 2));
        (void)buf_put(&u->base_url, db_text(res, 3));
        str_copy(u->upstream, db_text(res, 4).p, sizeof(u->upstream));
        u->price_in = db_int(res, 5);
        u->price_out = db_int(res, 6);
        u->cache_on = db_int(res, 7) != 0;
        *found = u->kind >= 0;
    }
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

struct reqrow {
    struct buf user_id, operation, model, input;
    char hash[65];
    char status[16];
};

static int load_request(struct db *db, const char *id, struct reqrow *q, bool *found)
{
    struct db_res *res;
    int rc = db_query(db, "SELECT user_id, operation, model, input, input_hash, status FROM ai_requests WHERE id = ?",
                      DB_ARGS(DBA_CSTR(id)), &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    *found = rc == 1;
    if (rc == 1) {
        (void)buf_put(&q->user_id, db_text(res, 0));
        (void)buf_put(&q->operation, db_text(res, 1));
        (void)buf_put(&q->model, db_text(res, 2));
        (void)buf_put(&q->input, db_text(res, 3));
        str_copy(q->hash, db_text(res, 4).p, sizeof(q->hash));
        str_copy(q->status, db_text(res, 5).p, sizeof(q->status));
    }
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

static unsigned g_rr; /* round-robin position, shared by runner threads */

/* Result JSON stored for the client. */
static void write_result(struct buf *out, str_t text, str_t finish, int64_t tin, int64_t tout)
{
    struct jw w;
    jw_init(&w, out);
    jw_obj_begin(&w);
    jw_key(&w, "text");
    jw_str(&w, text);
    jw_key(&w, "finish_reason");
    if (finish.len)
        jw_str(&w, finish);
    else
        jw_null(&w);
    jw_key(&w, "usage");
    jw_obj_begin(&w);
    jw_key(&w, "input_tokens");
    jw_int(&w, tin);
    jw_key(&w, "output_tokens");
    jw_int(&w, tout);
    jw_obj_end(&w);
    jw_obj_end(&w);
}

enum call_rc { CALL_OK, CALL_RETRY, CALL_FAIL };

/* One provider call with key rotation. On CALL_OK, resp holds the 2xx answer. */
static enum call_rc call_provider(struct job *j, const struct upstream *u, str_t url, str_t body,
                                  struct httpc_response *rs, struct buf *error, int64_t *latency_ms)
{
    struct key_set *keys = xcalloc(1, sizeof(*keys));
    enum call_rc out = CALL_FAIL;
    int rc = keys_load(j->db, str_c(u->provider_id), keys);
    if (rc != DB_OK) {
        (void)buf_puts(error, "database error while loading provider keys");
        out = CALL_RETRY;
        goto done;
    }
    if (keys->n == 0) {
        (void)buf_printf(error, "provider %s has no active key", u->provider);
        goto done;
    }
    unsigned start = __atomic_fetch_add(&g_rr, 1, __ATOMIC_RELAXED);
    int refused = 0;
    for (int t = 0; t < keys->n; t++) {
        int k = (int)((start + (unsigned)t) % (unsigned)keys->n);
        struct buf plain = BUF_INIT(4u * AI_KEY_MAX), hval = BUF_INIT(4u * AI_KEY_MAX + 16);
        struct buf err = BUF_INIT(512);
        if (ai__open(buf_str(&keys->secrets[k]), &plain)) {
            log_warn("ai: provider key %s cannot be decrypted (TEMEL_SECRET_KEY changed?); skipped", keys->ids[k]);
            buf_free(&plain);
            buf_free(&hval);
            buf_free(&err);
            continue;
        }
        struct httpc_request rq = HTTPC_REQUEST_INIT;
        rq.method = "POST";
        rq.url = url.p;
        rq.body = body;
        const char *hname = ai__auth_header((enum ai_kind)u->kind, buf_str(&plain), &hval);
        if (httpc_add_header(&rq, "Content-Type", "application/json") || httpc_add_header(&rq, hname, buf_cstr(&hval)) ||
            (u->kind == AI_ANTHROPIC && httpc_add_header(&rq, "anthropic-version", "2023-06-01")))
            BUG("ai: request headers"); /* three of HTTPC_MAX_REQ_HEADERS */
        rq.deadline_mono_ms = j->deadline_mono_ms - 250; /* leave time to settle */
        rq.timeout_ms = (int)ai__cfg()->ai_timeout_ms;
        rq.max_retries = 1;
        rq.retry_5xx = true;
        rq.allow = httpc_allow_outbound();
        httpc_response_free(rs);
        int64_t t0 = time_mono_ms();
        rc = httpc_perform(&rq, rs, &err);
        *latency_ms = time_mono_ms() - t0;
        if (plain.ptr)
            sodium_memzero(plain.ptr, plain.cap);
        if (hval.ptr)
            sodium_memzero(hval.ptr, hval.cap);
        buf_free(&plain);
        buf_free(&hval);
        if (rc == HTTPC_OK && (rs->status == 401 || rs->status == 403)) {
            struct retire_ctx rc2 = {keys->ids[k], rs->status};
            if (db_tx(j->db, DB_TX_WRITE, tx_retire, &rc2) != DB_OK)
                log_error("ai: could not retire provider key %s", keys->ids[k]);
            else
                log_warn("ai: provider %s answered %ld: key %s retired", u->provider, rs->status, keys->ids[k]);
            refused++;
            buf_free(&err);
            continue;
        }
        if (rc != HTTPC_OK) {
            /* err is the client's short message: scheme://host, never the key (headers are not logged) */
            (void)buf_printf(error, "provider call failed: %s", httpc_strerror(rc));
            out = httpc_job_result(rc, 0) == JOB_RETRY ? CALL_RETRY : CALL_FAIL;
        } else if (rs->status >= 200 && rs->status < 300) {
            out = CALL_OK;
        } else {
            (void)buf_printf(error, "provider answered HTTP %ld", rs->status);
            out = httpc_job_result(HTTPC_OK, rs->status) == JOB_RETRY ? CALL_RETRY : CALL_FAIL;
        }
        buf_free(&err);
        goto done;
    }
    (void)buf_printf(error, refused ? "every key of provider %s was refused (401/403)" : "no usable key for provider %s",
                     u->provider);
done:
    keys_free(keys);
    free(keys);
    return out;
}

static enum job_result run(struct job *j, struct buf *result, struct buf *error)
{
    struct reqrow q = {BUF_INIT(64), BUF_INIT(64), BUF_INIT(256), BUF_INIT(4u * AI_MAX_TOTAL + 4096), "", ""};
    struct upstream u = {.base_url = BUF_INIT(1024)};
    struct buf url = BUF_INIT(2048), body = BUF_INIT(8u * AI_MAX_TOTAL + 65536), text = BUF_INIT(AI_RESULT_MAX),
               finish = BUF_INIT(128), res_json = BUF_INIT(AI_RESULT_MAX + 1024), cached = BUF_INIT(AI_RESULT_MAX);
    struct httpc_response rs;
    struct ai_outcome o = {.latency_ms = -1};
    json_t *norm = NULL;
    str_t id = str_c(j->id);
    enum job_result jr = JOB_FAIL;
    bool found = false, applied = false;
    int64_t tin = 0, tout = 0;
    char cache_key[65];
    memset(&rs, 0, sizeof(rs));
    buf_init(&rs.body, 1);
    buf_init(&rs.headers, 1);

    int rc = load_request(j->db, j->id, &q, &found);
    if (rc != DB_OK) {
        (void)buf_puts(error, "database error while loading the request");
        jr = JOB_RETRY;
        goto out;
    }
    if (!found) {
        (void)buf_puts(error, "no AI request for this job (deleted with its user?)");
        goto out;
    }
    if (strcmp(q.status, "queued")) {
        /* settled by an earlier run of this job (its lease was reclaimed): nothing to call */
        (void)buf_printf(result, "{\"status\":\"%s\"}", q.status);
        jr = strcmp(q.status, "failed") ? JOB_OK : JOB_FAIL;
        if (jr == JOB_FAIL)
            (void)buf_puts(error, "already failed");
        goto out;
    }
    ai__emit("ai:generating", buf_str(&q.user_id), id, 0);

    rc = load_upstream(j->db, buf_str(&q.model), &u, &found);
    if (rc != DB_OK) {
        (void)buf_puts(error, "database error while loading the provider");
        jr = JOB_RETRY;
        goto out;
    }
    if (!found) {
        o = (struct ai_outcome){.status = "failed", .error = STRLIT("the model is no longer available"), .latency_ms = -1};
        goto settle_it;
    }
    /* the same user's identical request may have finished since this one was queued */
    ai__cache_key(buf_str(&q.user_id), q.hash, cache_key);
    if (ai__cfg()->ai_cache_ttl_s > 0 && u.cache_on) {
        rc = ai__cache_get(j->db, cache_key, time_now_ms(), &cached, &tin, &tout, &found);
        if (rc == DB_OK && found) {
            o = (struct ai_outcome){.ok = true, .cached = true, .result = buf_str(&cached), .tokens_in = tin,
                                    .tokens_out = tout, .latency_ms = 0};
            goto settle_it;
        }
    }
    if (json_parse_strict(buf_str(&q.input), &norm, NULL) != JSON_IN_OK ||
        ai__build_request((enum ai_kind)u.kind, buf_cstr(&u.base_url), u.upstream, norm,
                          ai__operation_system(buf_cstr(&q.operation)), &url, &body)) {
        o = (struct ai_outcome){.status = "failed", .error = STRLIT("the stored input cannot be sent"), .latency_ms = -1};
        goto settle_it;
    }
    (void)job_progress(j, 10);
    ai__emit("ai:progress", buf_str(&q.user_id), id, 10);

    struct buf cerr = BUF_INIT(512);
    int64_t latency = 0;
    enum call_rc cr = call_provider(j, &u, buf_str(&url), buf_str(&body), &rs, &cerr, &latency);
    if (cr == CALL_OK) {
        if (ai__parse_response((enum ai_kind)u.kind, buf_str(&rs.body), &text, &finish, &tin, &tout)) {
            buf_reset(&cerr);
            (void)buf_puts(&cerr, "the provider's answer was malformed");
            cr = CALL_RETRY;
        }
    }
    if (cr == CALL_RETRY && j->attempt < j->max_attempts) {
        (void)buf_put(error, buf_str(&cerr));
        buf_free(&cerr);
        jr = JOB_RETRY;
        goto out;
    }
    (void)job_progress(j, 90);
    if (cr == CALL_OK) {
        write_result(&res_json, buf_str(&text), buf_str(&finish), tin, tout);
        if (!buf_ok(&res_json)) {
            o = (struct ai_outcome){.status = "failed", .error = STRLIT("the provider's answer is too large"),
                                    .latency_ms = latency};
        } else {
            o = (struct ai_outcome){.ok = true, .result = buf_str(&res_json), .provider = str_c(u.provider),
                                    .tokens_in = tin, .tokens_out = tout, .latency_ms = latency,
                                    .usd_micros = (tin * u.price_in + tout * u.price_out) / 1000};
        }
    } else {
        (void)buf_put(error, buf_str(&cerr));
        o = (struct ai_outcome){.status = "failed", .error = buf_str(error), .provider = str_c(u.provider),
                                .latency_ms = rs.status ? latency : -1};
    }
    buf_free(&cerr);

settle_it:
    rc = settle(j->db, id, &o, o.ok && !o.cached && u.cache_on ? cache_key : NULL, &applied);
    if (rc != DB_OK) {
        buf_reset(error);
        (void)buf_puts(error, "database error while settling");
        jr = JOB_RETRY; /* nothing committed: the next attempt settles */
        goto out;
    }
    (void)buf_printf(result, "{\"status\":\"%s\",\"cached\":%s}", o.ok ? "succeeded" : "failed",
                     o.cached ? "true" : "false");
    if (!o.ok && !error->len)
        (void)buf_put(error, o.error);
    jr = o.ok ? JOB_OK : JOB_FAIL;
    if (applied)
        ai__emit(o.ok ? "ai:complete" : "ai:error", buf_str(&q.user_id), id, o.ok ? 100 : 0);
out:
    json_decref(norm);
    httpc_response_free(&rs);
    buf_free(&q.user_id);
    buf_free(&q.operation);
    buf_free(&q.model);
    buf_free(&q.input);
    buf_free(&u.base_url);
    buf_free(&url);
    buf_free(&body);
    buf_free(&text);
    buf_free(&finish);
    buf_free(&res_json);
    buf_free(&cached);
    return jr;
}

/* Dead (lease lost on the last attempt, retries used up), failed or
 * cancelled: settle whatever is still queued, inside the marking transaction. */
static int on_dead(struct db *db, const char *job_id, json_t *payload)
{
    struct db_res *res;
    bool cancelled = false, applied;
    (void)payload;
    int rc = db_query(db, "SELECT state FROM jobs WHERE id = ?", DB_ARGS(DBA_CSTR(job_id)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1)
        cancelled = str_is(db_text(res, 0), "cancelled");
    db_res_free(res);
    if (rc < 0)
        return rc;
    struct ai_outcome o = {.status = cancelled ? "cancelled" : "failed",
                           .error = cancelled ? STRLIT("cancelled before it started")
                                              : STRLIT("the job could not be completed (attempts used up or worker lost)"),
                           .latency_ms = -1};
    return ai__settle(db, str_c(job_id), &o, &applied);
}

static const struct job_kind ai_run_kind = {
    .kind = "ai.run",
    .handler = run,
    .queue = "ai",
    .timeout_ms = 60000, /* each job carries TEMEL_AI_TIMEOUT_MS */
    .on_dead = on_dead,
};

void ai__register_jobs(void) { jobs_register(&ai_run_kind); }
