/*
 * publish.c — "social.publish" {post_id}: the scheduler's side of a post.
 *
 * The job is enqueued with run_at = the post's scheduled time (the queue's
 * delayed jobs are the scheduler). One attempt = one HTTP call through the
 * outbound client (transport/http_client.h: SSRF rules, timeouts, no
 * redirects), in the network's wire format:
 *
 *   mastodon  POST {instance_url}/api/v1/statuses
 *             Authorization: Bearer <token>, Idempotency-Key: <post id>
 *             {"status": text, "visibility": "public"} → 200 {"id", "url", ...}
 *   x         POST {TEMEL_SOCIAL_X_URL}/2/tweets
 *             Authorization: Bearer <OAuth 2.0 user access token>
 *             {"text": text} → 201 {"data": {"id", "text"}}
 *
 * Media are URLs; they are published as links after the text (attaching
 * them needs each network's media upload endpoint first: not done yet).
 * Outcome: 2xx → published with the network's id; 408/425/429/5xx and
 * transport errors → retried by the queue with exponential backoff up to
 * TEMEL_SOCIAL_MAX_ATTEMPTS, then the dead letter (post 'failed'); other 4xx
 * → 'failed' at once. Every attempt records attempts and last_error.
 * Mastodon retries are safe (Idempotency-Key); X has no such key, so a
 * request whose answer was lost may publish twice there (at-least-once).
 */
#include <sodium.h>

#include "core/json.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "db/db.h"
#include "jobs/jobs.h"
#include "modules/social/social_internal.h"
#include "transport/http_client.h"

#include "core/banned.h"

int social__enqueue_publish(struct db *db, str_t post_id, int64_t run_at_ms)
{
    struct buf p = BUF_INIT(256);
    struct jw w;
    jw_init(&w, &p);
    jw_obj_begin(&w);
    jw_key(&w, "post_id");
    jw_str(&w, post_id);
    jw_obj_end(&w);
    struct job_opts o = JOB_OPTS_DEFAULT;
    o.run_at_ms = run_at_ms;
    o.max_attempts = (int)social__cfg()->max_attempts;
    int rc = jobs_enqueue(db, "social.publish", buf_str(&p), &o, NULL);
    buf_free(&p);
    return rc;
}

struct post {
    struct buf status, network, text, media, instance, sealed;
    int64_t scheduled_at;
};

static void post_free(struct post *p)
{
    buf_free(&p->status);
    buf_free(&p->network);
    buf_free(&p->text);
    buf_free(&p->media);
    buf_free(&p->instance);
    if (p->sealed.ptr)
        sodium_memzero(p->sealed.ptr, p->sealed.len);
    buf_free(&p->sealed);
}

static int post_load(struct db *db, const char *id, struct post *p, bool *found)
{
    struct db_res *res = NULL;
    int rc = db_query(db,
                      "SELECT p.status, p.network, p.text, p.media, coalesce(a.instance_url, ''), a.token_sealed, "
                      "coalesce(ts_ms(p.scheduled_at), 0) FROM social_posts p "
                      "JOIN social_accounts a ON a.id = p.account_id WHERE p.id = ?",
                      DB_ARGS(DBA_CSTR(id)), &res);
    if (rc)
        return rc;
    *found = false;
    if ((rc = db_next(res)) == 1) {
        *found = true;
        (void)buf_put(&p->status, db_text(res, 0));
        (void)buf_put(&p->network, db_text(res, 1));
        (void)buf_put(&p->text, db_text(res, 2));
        (void)buf_put(&p->media, db_text(res, 3));
        (void)buf_put(&p->instance, db_text(res, 4));
        (void)buf_put(&p->sealed, db_text(res, 5));
        p->scheduled_at = db_int(res, 6);
        rc = 0;
    }
    db_res_free(res);
    return rc;
}

/* The text as published: the post's text, then each media URL on its own line. */
static void full_text(const struct post *p, struct buf *out)
{
    (void)buf_put(out, buf_str(&p->text));
    json_t *m = json_loads(buf_cstr(&p->media), 0, NULL);
    for (size_t i = 0; i < json_array_size(m); i++) {
        const char *u = json_string_value(json_array_get(m, i));
        if (u)
            (void)buf_printf(out, "\n%s", u);
    }
    json_decref(m);
}

static int record(struct db *db, const char *id, const char *status, const char *error)
{
    int64_t now = time_now_ms();
    return db_exec(db,
                   "UPDATE social_posts SET status = ?, attempts = attempts + 1, last_error = ?, "
                   "updated_at = ms_ts(?), version = version + 1 WHERE id = ? AND status = 'scheduled'",
                   DB_ARGS(DBA_CSTR(status), error ? DBA_CSTR(error) : DBA_NULL, DBA_INT(now), DBA_CSTR(id)), NULL);
}

static enum job_result job_publish(struct job *j, struct buf *result, struct buf *error)
{
    const char *id = json_string_value(json_object_get(j->payload, "post_id"));
    struct post p = {BUF_INIT(32), BUF_INIT(32), BUF_INIT(64u << 10), BUF_INIT(64u << 10), BUF_INIT(2048),
                     BUF_INIT(8u * SOCIAL_TOKEN_MAX), 0};
    struct buf token = BUF_INIT(SOCIAL_TOKEN_MAX + 1), auth = BUF_INIT(SOCIAL_TOKEN_MAX + 16),
               url = BUF_INIT(4096), body = BUF_INIT(128u << 10), text = BUF_INIT(64u << 10);
    struct httpc_response rs = {0};
    bool found = false, performed = false;
    enum job_result res = JOB_FAIL;
    int rc;

    if (!id) {
        (void)buf_puts(error, "payload: post_id missing");
        goto out;
    }
    if ((rc = post_load(j->db, id, &p, &found))) {
        (void)buf_printf(error, "database: %s", db_errmsg(j->db));
        res = JOB_RETRY;
        goto out;
    }
    if (!found || !str_is(buf_str(&p.status), "scheduled") || p.scheduled_at > time_now_ms() + 1000) {
        res = JOB_OK; /* deleted, unscheduled, published, or a job of an earlier schedule */
        goto out;
    }
    if (secret_open(social__key(), buf_str(&p.sealed), SOCIAL_TOKEN_MAX, &token)) {
        (void)buf_puts(error, "the account's token cannot be opened (secret changed?)");
        (void)record(j->db, id, "failed", buf_cstr(error));
        goto out;
    }
    (void)buf_printf(&auth, "Bearer %s", buf_cstr(&token));
    full_text(&p, &text);
    struct jw w;
    jw_init(&w, &body);
    jw_obj_begin(&w);
    struct httpc_request rq = HTTPC_REQUEST_INIT;
    rq.method = "POST";
    rq.deadline_mono_ms = j->deadline_mono_ms;
    rq.allow = httpc_allow_outbound();
    rq.max_retries = 0; /* the queue retries, with its backoff, and records each attempt */
    bool mastodon = str_is(buf_str(&p.network), "mastodon");
    /* four of HTTPC_MAX_REQ_HEADERS: cannot fail */
    if (httpc_add_header(&rq, "Authorization", buf_cstr(&auth)) ||
        httpc_add_header(&rq, "Content-Type", "application/json") ||
        httpc_add_header(&rq, "Accept", "application/json") ||
        (mastodon && httpc_add_header(&rq, "Idempotency-Key", id)))
        BUG("social.publish: request headers");
    if (mastodon) {
        (void)buf_printf(&url, "%s/api/v1/statuses", buf_cstr(&p.instance));
        jw_key(&w, "status");
        jw_str(&w, buf_str(&text));
        jw_key(&w, "visibility");
        jw_cstr(&w, "public");
    } else {
        (void)buf_printf(&url, "%s/2/tweets", social__cfg()->x_url);
        jw_key(&w, "text");
        jw_str(&w, buf_str(&text));
    }
    jw_obj_end(&w);
    rq.url = buf_cstr(&url);
    rq.body = buf_str(&body);
    struct buf herr = BUF_INIT(256);
    rc = httpc_perform(&rq, &rs, &herr);
    performed = true;
    res = httpc_job_result(rc, rs.status);
    if (res == JOB_OK) {
        json_t *doc = json_loadb(rs.body.ptr ? rs.body.ptr : "", rs.body.len, 0, NULL);
        const json_t *o = mastodon ? doc : json_object_get(doc, "data");
        const json_t *pid = json_object_get(o, "id");
        const char *purl = mastodon ? json_string_value(json_object_get(o, "url")) : NULL;
        struct buf xurl = BUF_INIT(256);
        if (!json_is_string(pid) || json_string_length(pid) > 128) {
            json_decref(doc);
            buf_free(&herr);
            buf_free(&xurl);
            (void)buf_printf(error, "%s answered %ld without a post id", mastodon ? "mastodon" : "x", rs.status);
            res = JOB_RETRY;
            goto attempt_failed;
        }
        if (!mastodon) {
            (void)buf_printf(&xurl, "https://x.com/i/web/status/%s", json_string_value(pid));
            purl = buf_cstr(&xurl);
        }
        int64_t now = time_now_ms();
        rc = db_exec(j->db,
                     "UPDATE social_posts SET status = 'published', network_post_id = ?, network_url = ?, "
                     "published_at = ms_ts(?), attempts = attempts + 1, last_error = NULL, updated_at = ms_ts(?), "
                     "version = version + 1 WHERE id = ?",
                     DB_ARGS(DBA_CSTR(json_string_value(pid)), purl ? DBA_CSTR(purl) : DBA_NULL, DBA_INT(now),
                             DBA_INT(now), DBA_CSTR(id)),
                     NULL);
        jw_init(&w, result);
        jw_obj_begin(&w);
        jw_key(&w, "network_post_id");
        jw_cstr(&w, json_string_value(pid));
        jw_obj_end(&w);
        json_decref(doc);
        buf_free(&xurl);
        buf_free(&herr);
        if (rc) {
            /* published, but not recorded: retrying would publish again on X */
            log_error("social.publish: post %s published but not recorded: %s", id, db_errmsg(j->db));
        }
        goto out;
    }
    if (rc != HTTPC_OK)
        (void)buf_printf(error, "%s: %s", mastodon ? "mastodon" : "x", buf_cstr(&herr));
    else
        (void)buf_printf(error, "%s answered HTTP %ld", mastodon ? "mastodon" : "x", rs.status);
    buf_free(&herr);
attempt_failed:
    /* the last attempt, or a permanent refusal: the dead letter */
    (void)record(j->db, id, res == JOB_FAIL || j->attempt >= j->max_attempts ? "failed" : "scheduled",
                 buf_cstr(error));
out:
    if (performed)
        httpc_response_free(&rs);
    if (token.ptr)
        sodium_memzero(token.ptr, token.len);
    if (auth.ptr)
        sodium_memzero(auth.ptr, auth.len);
    buf_free(&token);
    buf_free(&auth);
    buf_free(&url);
    buf_free(&body);
    buf_free(&text);
    post_free(&p);
    return res;
}

/* A job that died without recording it (its lease expired on the last
 * attempt): the post goes to the dead letter too. */
static int on_dead(struct db *db, const char *job_id, json_t *payload)
{
    (void)job_id;
    const char *id = json_string_value(json_object_get(payload, "post_id"));
    if (!id)
        return DB_OK;
    return db_exec(db,
                   "UPDATE social_posts SET status = 'failed', last_error = coalesce(last_error, 'dead letter'), "
                   "version = version + 1 WHERE id = ? AND status = 'scheduled'",
                   DB_ARGS(DBA_CSTR(id)), NULL);
}

static const struct job_kind k_publish = {.kind = "social.publish", .handler = job_publish, .queue = "social",
                                          .timeout_ms = 30000, .on_dead = on_dead};

void social__register_jobs(void) { jobs_register(&k_publish); }
