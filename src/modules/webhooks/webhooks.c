/*
 * webhooks.c — outbound webhooks: emit, the delivery job, the admin API
 * (webhooks.h has the contract).
 *
 *   GET    /api/v1/webhooks                          list (admin), newest first
 *   POST   /api/v1/webhooks                          {url, events, secret?, description?, active?} → 201;
 *                                                    the secret is answered once (generated when absent)
 *   GET    /api/v1/webhooks/{id}                     one endpoint (never its secret), ETag
 *   PATCH  /api/v1/webhooks/{id}                     change fields (a new secret is answered once); If-Match
 *   DELETE /api/v1/webhooks/{id}                     204 (its deliveries go with it)
 *   GET    /api/v1/webhooks/{id}/deliveries          the delivery log (?state=, ?event=), newest first
 *   POST   /api/v1/webhooks/{id}/deliveries/{did}/redeliver   a new delivery of the same event → 202
 *
 * Every write is an admin action and audited (category "webhooks"; the
 * secret never enters the audit entry). Secrets are sealed at rest
 * (core/secret.h secret_seal, key derived from TEMEL_SECRET_KEY).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <sodium.h>

#include "auth/crypto.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "db/dbjson.h"
#include "http/http.h"
#include "jobs/jobs.h"
#include "modules/audit/audit.h"
#include "modules/orders/stripe_sig.h"
#include "modules/webhooks/webhooks.h"
#include "resource/resource.h"
#include "transport/http_client.h"

#include "core/banned.h"

#define SECRET_MIN 16
#define SECRET_MAX 256
#define URL_MAX 2000
#define EVENTS_MAX 16
#define ERROR_MAX 300

const char *const webhooks_events[] = {"user.created", "order.paid", "ai.job.finished", "ticket.created", NULL};

static struct {
    int64_t max_attempts, timeout_ms;
    unsigned char key[32];
} g;

static bool event_known(str_t e)
{
    for (const char *const *p = webhooks_events; *p; p++)
        if (str_eq(e, str_c(*p)))
            return true;
    return false;
}

/* ---- emit ------------------------------------------------------------------ */

/* One delivery row and its job. payload is the exact body sent. */
static int enqueue_delivery(struct db *db, str_t webhook_id, str_t event_id, str_t event, str_t payload,
                            str_t redelivery_of, char id_out[UUID_STR_LEN + 1])
{
    char job_id[37] = "";
    int64_t now = time_now_ms();
    struct buf p = BUF_INIT(256);
    struct job_opts o = JOB_OPTS_DEFAULT;
    o.max_attempts = (int)g.max_attempts;
    o.timeout_ms = (int)g.timeout_ms + 5000;
    uuid7_str(id_out);
    (void)buf_printf(&p, "{\"delivery_id\":\"%s\"}", id_out);
    int rc = jobs_enqueue(db, "webhook.deliver", buf_str(&p), &o, job_id);
    buf_free(&p);
    if (rc < 0)
        return rc;
    return db_exec(db,
                   "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, payload, job_id, redelivery_of, "
                   "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ms_ts(?), ms_ts(?))",
                   DB_ARGS(DBA_CSTR(id_out), DBA_TEXT(webhook_id), DBA_TEXT(event_id), DBA_TEXT(event),
                           DBA_TEXT(payload), DBA_CSTR(job_id),
                           redelivery_of.len ? DBA_TEXT(redelivery_of) : DBA_NULL, DBA_INT(now), DBA_INT(now)),
                   NULL);
}

int webhooks_emit(struct db *db, const char *event, const json_t *data)
{
    if (!event_known(str_c(event)) || !json_is_object(data))
        BUG("webhooks_emit: unknown event or data not an object");
    struct buf like = BUF_INIT(128);
    struct db_res *res;
    (void)buf_printf(&like, "%%\"%s\"%%", event); /* events are fixed names: no LIKE wildcards in them */
    int rc = db_query(db, db_pick(db, "SELECT id FROM webhooks WHERE active = 1 AND events LIKE ? ORDER BY id",
                                  "SELECT id FROM webhooks WHERE active AND events LIKE ? ORDER BY id"),
                      DB_ARGS(DBA_TEXT(buf_str(&like))), &res);
    buf_free(&like);
    if (rc != DB_OK)
        return rc;
    /* collect the ids first: a statement stays open while the next ones run otherwise */
    struct buf ids = BUF_INIT(1u << 20);
    size_t n = 0;
    while ((rc = db_next(res)) == 1) {
        (void)buf_put(&ids, db_text(res, 0));
        n++;
    }
    db_res_free(res);
    if (rc < 0 || n == 0 || !buf_ok(&ids)) {
        buf_free(&ids);
        return rc < 0 ? rc : buf_ok(&ids) ? DB_OK : DB_ERR;
    }
    char event_id[UUID_STR_LEN + 1], when[TIME_RFC3339_LEN + 1], did[UUID_STR_LEN + 1];
    struct buf body = BUF_INIT(AUDIT_MAX_JSON);
    struct jw w;
    uuid7_str(event_id);
    time_format_rfc3339(time_now_ms(), when);
    jw_init(&w, &body);
    jw_obj_begin(&w);
    jw_key(&w, "id");
    jw_cstr(&w, event_id);
    jw_key(&w, "type");
    jw_cstr(&w, event);
    jw_key(&w, "created_at");
    jw_cstr(&w, when);
    jw_key(&w, "data");
    jw_json(&w, data);
    jw_obj_end(&w);
    rc = buf_ok(&body) ? DB_OK : DB_ERR;
    for (size_t i = 0; i < n && rc == DB_OK; i++)
        rc = enqueue_delivery(db, str_make(ids.ptr + i * UUID_STR_LEN, UUID_STR_LEN), str_c(event_id), str_c(event),
                              buf_str(&body), STR_NULL, did);
    buf_free(&body);
    buf_free(&ids);
    return rc;
}

/* ---- the delivery job ------------------------------------------------------- */

/* "t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>" into out: Temel-Signature
 * is Stripe's scheme, so the one implementation of it signs (orders/stripe_sig.h). */
static void sign(str_t secret, int64_t ts, str_t body, struct buf *out)
{
    char hex[65];
    stripe_sig_sign(body, secret, ts, hex);
    (void)buf_printf(out, "t=%lld,v1=%s", (long long)ts, hex);
}

static int record_attempt(struct db *db, const char *id, const char *state, int attempt, long status,
                          const char *error, int64_t duration_ms)
{
    return db_exec(db,
                   "UPDATE webhook_deliveries SET state = ?, attempts = ?, response_status = ?, error = ?, "
                   "duration_ms = ?, updated_at = ms_ts(?) WHERE id = ?",
                   DB_ARGS(DBA_CSTR(state), DBA_INT(attempt), status ? DBA_INT(status) : DBA_NULL,
                           error && *error ? DBA_CSTR(error) : DBA_NULL,
                           duration_ms >= 0 ? DBA_INT(duration_ms) : DBA_NULL, DBA_INT(time_now_ms()),
                           DBA_CSTR(id)),
                   NULL);
}

struct target {
    char *url, *event, *payload, *sealed;
    bool active;
};

static void target_free(struct target *t)
{
    free(t->url);
    free(t->event);
    free(t->payload);
    free(t->sealed);
}

/* 1 found, 0 gone (the endpoint was deleted with its deliveries), < 0 db_rc */
static int load_target(struct db *db, const char *delivery_id, struct target *t)
{
    struct db_res *res;
    int rc = db_query(db,
                      "SELECT w.url, d.event, d.payload, w.secret_sealed, w.active FROM webhook_deliveries d "
                      "JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?",
                      DB_ARGS(DBA_CSTR(delivery_id)), &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    if (rc == 1) {
        t->url = xstrdup(db_text(res, 0).p);
        t->event = xstrdup(db_text(res, 1).p);
        t->payload = xstrndup(db_text(res, 2).p, db_text(res, 2).len);
        t->sealed = xstrdup(db_text(res, 3).p);
        t->active = db_int(res, 4) != 0;
    }
    db_res_free(res);
    return rc;
}

static enum job_result deliver(struct job *j, struct buf *result, struct buf *error)
{
    const char *did = json_string_value(json_object_get(j->payload, "delivery_id"));
    struct target t = {0};
    struct buf secret = BUF_INIT(SECRET_MAX + 1), sig = BUF_INIT(256), err = BUF_INIT(ERROR_MAX);
    enum job_result out = JOB_RETRY;
    char ua[64];
    if (!did || !uuid_valid(str_c(did))) {
        (void)buf_puts(error, "payload has no delivery_id");
        return JOB_FAIL;
    }
    int rc = load_target(j->db, did, &t);
    if (rc < 0) {
        (void)buf_puts(error, "database error loading the delivery");
        return JOB_RETRY;
    }
    if (rc == 0) {
        (void)buf_puts(result, "{\"skipped\":\"endpoint deleted\"}");
        return JOB_OK;
    }
    if (!t.active) {
        (void)buf_puts(error, "endpoint disabled");
        (void)record_attempt(j->db, did, "failed", j->attempt - 1, 0, "endpoint disabled", -1);
        out = JOB_FAIL;
        goto done;
    }
    if (secret_open(g.key, str_c(t.sealed), SECRET_MAX, &secret)) {
        (void)buf_puts(error, "the endpoint's secret cannot be opened (TEMEL_SECRET_KEY changed?)");
        (void)record_attempt(j->db, did, "failed", j->attempt - 1, 0, "secret unreadable", -1);
        out = JOB_FAIL;
        goto done;
    }
    sign(buf_str(&secret), time_now_ms() / 1000, str_c(t.payload), &sig);
    (void)snprintf(ua, sizeof(ua), "temel-webhooks/%s", TEMEL_VERSION);
    struct httpc_request rq = HTTPC_REQUEST_INIT;
    rq.method = "POST";
    rq.url = t.url;
    rq.body = str_c(t.payload);
    if (httpc_add_header(&rq, "Content-Type", "application/json") ||
        httpc_add_header(&rq, "Temel-Signature", buf_cstr(&sig)) || httpc_add_header(&rq, "Temel-Event", t.event) ||
        httpc_add_header(&rq, "Temel-Delivery", did) || httpc_add_header(&rq, "User-Agent", ua))
        BUG("webhooks: request headers"); /* five of HTTPC_MAX_REQ_HEADERS */
    rq.timeout_ms = (int)g.timeout_ms;
    rq.deadline_mono_ms = j->deadline_mono_ms;
    rq.max_retries = 0; /* retries are the job's, with backoff, each one logged */
    rq.body_max = 64u << 10;
    rq.allow = httpc_allow_outbound();
    struct httpc_response rs;
    int64_t t0 = time_mono_ms();
    rc = httpc_perform(&rq, &rs, &err);
    int64_t took = time_mono_ms() - t0;
    out = httpc_job_result(rc, rs.status);
    if (rc == HTTPC_EREFUSED) {
        buf_reset(&err);
        (void)buf_printf(&err, "refused: %s (TEMEL_OUTBOUND_ALLOW)", rs.refused_reason);
    } else if (rc == HTTPC_OK && out != JOB_OK) {
        buf_reset(&err);
        (void)buf_printf(&err, "HTTP %ld", rs.status);
    } else if (rc != HTTPC_OK && !err.len) {
        (void)buf_puts(&err, httpc_strerror(rc));
    }
    httpc_response_free(&rs);
    const char *state = out == JOB_OK                                       ? "succeeded"
                        : out == JOB_RETRY && j->attempt < j->max_attempts ? "retrying"
                                                                            : "failed";
    if (record_attempt(j->db, did, state, j->attempt, rc == HTTPC_OK ? rs.status : 0, buf_cstr(&err), took) != DB_OK)
        log_warn("webhook delivery %s: the attempt could not be recorded: %s", did, db_errmsg(j->db));
    if (out == JOB_OK)
        (void)buf_printf(result, "{\"status\":%ld}", rs.status);
    else
        (void)buf_put(error, buf_str(&err));
done:
    if (secret.ptr)
        sodium_memzero(secret.ptr, secret.len);
    buf_free(&secret);
    buf_free(&sig);
    buf_free(&err);
    target_free(&t);
    return out;
}

/* The job went dead without recording (lease lost on the last attempt) or was cancelled. */
static int on_dead(struct db *db, const char *job_id, json_t *payload)
{
    UNUSED(job_id);
    const char *did = json_string_value(json_object_get(payload, "delivery_id"));
    if (!did)
        return DB_OK;
    return db_exec(db,
                   "UPDATE webhook_deliveries SET state = 'failed', updated_at = ms_ts(?) WHERE id = ? "
                   "AND state IN ('pending', 'retrying')",
                   DB_ARGS(DBA_INT(time_now_ms()), DBA_CSTR(did)), NULL);
}

static const struct job_kind deliver_kind = {
    .kind = "webhook.deliver", .handler = deliver, .queue = "webhooks", .timeout_ms = 30000, .on_dead = on_dead};

/* ---- admin API ------------------------------------------------------------ */

#define HOOK_COLS "id, version, url, events, description, active, ts_ms(created_at), ts_ms(updated_at)"

static void write_hook(struct jw *w, const struct db_res *res, const char *secret)
{
    jw_obj_begin(w);
    jw_key(w, "id");
    jw_db_text(w, res, 0);
    jw_key(w, "url");
    jw_db_text(w, res, 2);
    jw_key(w, "events");
    jw_raw(w, db_text(res, 3)); /* a JSON array we wrote */
    jw_key(w, "description");
    jw_db_text(w, res, 4);
    jw_key(w, "active");
    jw_bool(w, db_int(res, 5) != 0);
    if (secret) {
        jw_key(w, "secret");
        jw_cstr(w, secret);
    }
    jw_key(w, "created_at");
    jw_db_time(w, res, 6);
    jw_key(w, "updated_at");
    jw_db_time(w, res, 7);
    jw_obj_end(w);
}

static void write_hook_row(struct jw *w, const struct db_res *res) { write_hook(w, res, NULL); }

/* Answer the endpoint id with its ETag; 404 when missing. */
static int respond_hook(struct req *r, str_t id, int status, const char *secret)
{
    struct db_res *res;
    int rc = db_query(r->db, "SELECT " HOOK_COLS " FROM webhooks WHERE id = ?", DB_ARGS(DBA_TEXT(id)), &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    rc = db_next(res);
    if (rc == 1) {
        struct buf *etag = req_buf(r, 32);
        (void)buf_printf(etag, "\"v%lld\"", (long long)db_int(res, 1));
        req_header(r, "etag", buf_str(etag));
        write_hook(&r->w, res, secret);
        r->status = status;
    }
    db_res_free(res);
    if (rc < 0)
        return http_db_fail(r, rc);
    return rc == 1 ? 0 : http_fail(r, 404, "NOT_FOUND", "no such webhook");
}

/* An http(s) URL without credentials whose host, when an IP literal, the
 * SSRF guard would let through (hosts by name are checked when delivering,
 * after DNS). 0, or HTTP_EFAIL with a 422 on field "url". */
static int check_url(struct req *r, const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL;
    int out = 0;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) || (strcmp(scheme, "http") && strcmp(scheme, "https"))) {
        out = http_invalid(r, "url", "must be an absolute http or https URL");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK && user) {
        out = http_invalid(r, "url", "must not carry credentials");
        goto done;
    }
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    char bare[64] = "";
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && hl < sizeof(bare)) /* IPv6 literal: [addr] */
        memcpy(bare, host + 1, hl - 2);
    else
        (void)str_copy(bare, host, sizeof(bare));
    bool literal = false;
    if (inet_pton(AF_INET, bare, &s4->sin_addr) == 1) {
        ss.ss_family = AF_INET;
        literal = true;
    } else if (inet_pton(AF_INET6, bare, &s6->sin6_addr) == 1) {
        ss.ss_family = AF_INET6;
        literal = true;
    }
    const struct httpc_allow *allow = httpc_allow_outbound();
    if (literal && httpc_addr_blocked((struct sockaddr *)&ss) && !httpc_allow_addr(allow, (struct sockaddr *)&ss) &&
        !httpc_allow_host(allow, bare))
        out = http_invalid(r, "url", "private, loopback and link-local addresses are refused (TEMEL_OUTBOUND_ALLOW)");
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_url_cleanup(u);
    return out;
}

/* events: a non-empty array of known, distinct names → its JSON text in out. */
static int check_events(struct req *r, const json_t *events, struct buf *out)
{
    size_t i;
    json_t *v;
    json_array_foreach(events, i, v) {
        str_t e = str_c(json_string_value(v));
        if (!event_known(e))
            return http_invalid(r, "events", "unknown event (user.created, order.paid, ai.job.finished, ticket.created)");
        for (size_t k = 0; k < i; k++)
            if (str_eq(e, str_c(json_string_value(json_array_get(events, k)))))
                return http_invalid(r, "events", "lists an event twice");
    }
    struct jw w;
    jw_init(&w, out);
    jw_json(&w, events);
    return 0;
}

struct hook_write {
    str_t id;
    const char *url, *description, *secret;
    struct buf *events, *sealed;
    int active;          /* -1 unchanged */
    int64_t if_version;  /* PATCH with If-Match: the version it names; 0 = none */
    const char *action;
};

static json_t *hook_audit_view(const struct hook_write *c)
{
    json_t *o = json_object();
    if (c->url)
        json_object_set_new(o, "url", json_string(c->url));
    if (c->events && c->events->len)
        json_object_set_new(o, "events", json_loadb(c->events->ptr, c->events->len, 0, NULL));
    if (c->active >= 0)
        json_object_set_new(o, "active", json_boolean(c->active));
    if (c->secret)
        json_object_set_new(o, "secret", json_string("(changed)"));
    return o;
}

static int tx_hook_write(struct req *r, void *arg)
{
    struct hook_write *c = arg;
    int64_t now = time_now_ms(), changed = 0;
    int rc;
    if (!strcmp(c->action, "webhook.create")) {
        rc = db_exec(r->db,
                     "INSERT INTO webhooks (id, url, events, secret_sealed, description, active, created_by, "
                     "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_TEXT(c->id), DBA_CSTR(c->url), DBA_TEXT(buf_str(c->events)),
                             DBA_TEXT(buf_str(c->sealed)), DBA_CSTR(c->description ? c->description : ""),
                             DBA_BOOL(c->active != 0), DBA_TEXT(r->user_id), DBA_INT(now), DBA_INT(now)),
                     &changed);
    } else if (!strcmp(c->action, "webhook.update")) {
        rc = db_exec(r->db,
                     "UPDATE webhooks SET url = COALESCE(?, url), events = COALESCE(?, events), "
                     "secret_sealed = COALESCE(?, secret_sealed), description = COALESCE(?, description), "
                     "active = CASE WHEN ? < 0 THEN active ELSE ? END, version = version + 1, updated_at = ms_ts(?) "
                     "WHERE id = ? AND (? = 0 OR version = ?)",
                     DB_ARGS(c->url ? DBA_CSTR(c->url) : DBA_NULL,
                             c->events->len ? DBA_TEXT(buf_str(c->events)) : DBA_NULL,
                             c->sealed->len ? DBA_TEXT(buf_str(c->sealed)) : DBA_NULL,
                             c->description ? DBA_CSTR(c->description) : DBA_NULL, DBA_INT(c->active),
                             DBA_BOOL(c->active > 0), DBA_INT(now), DBA_TEXT(c->id), DBA_INT(c->if_version),
                             DBA_INT(c->if_version)),
                     &changed);
    } else {
        rc = db_exec(r->db, "DELETE FROM webhooks WHERE id = ?", DB_ARGS(DBA_TEXT(c->id)), &changed);
    }
    if (rc != DB_OK)
        return rc;
    if (changed != 1) {
        if (c->if_version) {
            int64_t n = 0;
            bool found = false;
            if ((rc = db_query_int(r->db, "SELECT count(*) FROM webhooks WHERE id = ?", DB_ARGS(DBA_TEXT(c->id)), &n,
                                   &found)) != DB_OK)
                return rc;
            if (n)
                return http_fail(r, 412, "PRECONDITION_FAILED", "the webhook changed since that ETag");
        }
        return http_fail(r, 404, "NOT_FOUND", "no such webhook");
    }
    json_t *after = strcmp(c->action, "webhook.delete") ? hook_audit_view(c) : NULL;
    struct audit_entry e = {.action = c->action, .category = "webhooks", .target_type = "webhook",
                            .target_id = c->id, .after = after, .success = true};
    rc = audit_record_req(r, &e);
    json_decref(after);
    return rc;
}

/* If-Match "vN" → N; 0 when absent; -1 when unparsable (never matches). */
static int64_t if_match_version(struct req *r)
{
    str_t h = req_header_get(r, "if-match");
    int64_t v = 0;
    if (!h.p)
        return 0;
    if (h.len > 2 && h.p[0] == 'W' && h.p[1] == '/')
        h = str_make(h.p + 2, h.len - 2);
    if (h.len < 4 || h.p[0] != '"' || h.p[1] != 'v' || h.p[h.len - 1] != '"' ||
        parse_i64(str_make(h.p + 2, h.len - 3), 1, INT64_MAX, &v))
        return -1;
    return v;
}

/* Fill c from the body (create or patch); the secret's plain text (given or
 * generated) goes to secret_out for the one answer that shows it. */
static int read_hook_body(struct req *r, struct hook_write *c, bool create, struct buf *secret_out)
{
    const json_t *b = r->body;
    const json_t *events = json_object_get(b, "events"), *active = json_object_get(b, "active"),
                 *secret = json_object_get(b, "secret");
    c->url = json_string_value(json_object_get(b, "url"));
    c->description = json_string_value(json_object_get(b, "description"));
    c->active = active ? json_is_true(active) : create ? 1 : -1;
    c->events = req_buf(r, 4096);
    c->sealed = req_buf(r, 2 * (SECRET_MAX + 64));
    if (c->url && check_url(r, c->url))
        return HTTP_EFAIL;
    if (events && check_events(r, events, c->events))
        return HTTP_EFAIL;
    if (secret) {
        c->secret = json_string_value(secret);
        (void)buf_puts(secret_out, c->secret);
    } else if (create) {
        token_random(secret_out, "whsec_", 24);
        c->secret = buf_cstr(secret_out);
    }
    if (c->secret)
        secret_seal(g.key, str_c(c->secret), c->sealed);
    return 0;
}

static int h_create(struct req *r)
{
    char id[UUID_STR_LEN + 1];
    struct buf *secret = req_buf(r, SECRET_MAX + 1);
    struct hook_write c = {.action = "webhook.create"};
    uuid7_str(id);
    c.id = str_c(id);
    if (read_hook_body(r, &c, true, secret) || req_tx(r, DB_TX_WRITE, tx_hook_write, &c))
        return HTTP_EFAIL;
    struct buf *loc = req_buf(r, 128);
    (void)buf_printf(loc, "/api/v1/webhooks/%s", id);
    req_header(r, "location", buf_str(loc));
    return respond_hook(r, c.id, 201, buf_cstr(secret));
}

static int h_get(struct req *r)
{
    str_t id = req_param(r, "id");
    if (!uuid_valid(id))
        return http_fail(r, 404, "NOT_FOUND", "no such webhook");
    return respond_hook(r, id, 200, NULL);
}

static int h_patch(struct req *r)
{
    struct buf *secret = req_buf(r, SECRET_MAX + 1);
    struct hook_write c = {.action = "webhook.update", .id = req_param(r, "id")};
    if (!uuid_valid(c.id))
        return http_fail(r, 404, "NOT_FOUND", "no such webhook");
    if ((c.if_version = if_match_version(r)) < 0)
        return http_fail(r, 412, "PRECONDITION_FAILED", "the webhook changed since that ETag");
    if (read_hook_body(r, &c, false, secret) || req_tx(r, DB_TX_WRITE, tx_hook_write, &c))
        return HTTP_EFAIL;
    return respond_hook(r, c.id, 200, c.secret ? buf_cstr(secret) : NULL);
}

static int h_delete(struct req *r)
{
    struct hook_write c = {.action = "webhook.delete", .id = req_param(r, "id"), .active = -1};
    if (!uuid_valid(c.id))
        return http_fail(r, 404, "NOT_FOUND", "no such webhook");
    if (req_tx(r, DB_TX_WRITE, tx_hook_write, &c))
        return HTTP_EFAIL;
    r->status = 204;
    return 0;
}

static int h_list(struct req *r)
{
    static const char *const allowed[] = {NULL};
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    db_arg args[2];
    const struct http_list_query q = {HOOK_COLS, "FROM webhooks", "", "created_at DESC, id DESC", write_hook_row};
    return http_list(r, &q, args, 0, ARRAY_LEN(args));
}

#define DELIVERY_COLS                                                                                                  \
    "id, webhook_id, event_id, event, state, attempts, response_status, error, duration_ms, job_id, "                 \
    "redelivery_of, payload, ts_ms(created_at), ts_ms(updated_at)"

static const struct http_col delivery_cols[] = {
    {"id", COL_TEXT},        {"webhook_id", COL_TEXT},      {"event_id", COL_TEXT},  {"event", COL_TEXT},
    {"state", COL_TEXT},     {"attempts", COL_INT},         {"response_status", COL_INT}, {"error", COL_TEXT},
    {"duration_ms", COL_INT}, {"job_id", COL_TEXT},         {"redelivery_of", COL_TEXT},  {"payload", COL_JSON},
    {"created_at", COL_TIME}, {"updated_at", COL_TIME},     {NULL, 0},
};

static void write_delivery_row(struct jw *w, const struct db_res *res) { http_write_row(w, res, delivery_cols); }

/* 0 when the endpoint exists, else 404 recorded. */
static int require_hook(struct req *r, str_t id)
{
    int64_t n = 0;
    bool found = false;
    if (!uuid_valid(id))
        return http_fail(r, 404, "NOT_FOUND", "no such webhook");
    int rc = db_query_int(r->db, "SELECT count(*) FROM webhooks WHERE id = ?", DB_ARGS(DBA_TEXT(id)), &n, &found);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    return n ? 0 : http_fail(r, 404, "NOT_FOUND", "no such webhook");
}

static int h_deliveries(struct req *r)
{
    static const char *const allowed[] = {"state", "event", NULL};
    static const char *const states[] = {"pending", "retrying", "succeeded", "failed"};
    str_t id = req_param(r, "id");
    const str_t *state = req_query(r, "state"), *event = req_query(r, "event");
    struct buf *where = req_buf(r, 256);
    db_arg args[5];
    size_t n = 0;
    bool ok = !state;
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    for (size_t i = 0; state && i < ARRAY_LEN(states); i++)
        ok |= str_eq(*state, str_c(states[i]));
    if (!ok)
        return http_invalid(r, "state", "must be pending, retrying, succeeded or failed");
    if (event && !event_known(*event))
        return http_invalid(r, "event", "unknown event");
    if (require_hook(r, id))
        return HTTP_EFAIL;
    (void)buf_puts(where, " WHERE webhook_id = ?");
    args[n++] = DBA_TEXT(id);
    if (state) {
        (void)buf_puts(where, " AND state = ?");
        args[n++] = DBA_TEXT(*state);
    }
    if (event) {
        (void)buf_puts(where, " AND event = ?");
        args[n++] = DBA_TEXT(*event);
    }
    const struct http_list_query q = {DELIVERY_COLS, "FROM webhook_deliveries", buf_cstr(where),
                                      "created_at DESC, id DESC", write_delivery_row};
    return http_list(r, &q, args, n, ARRAY_LEN(args));
}

struct redeliver {
    str_t hook, delivery;
    char new_id[UUID_STR_LEN + 1];
};

static int tx_redeliver(struct req *r, void *arg)
{
    struct redeliver *c = arg;
    struct db_res *res;
    int rc = db_query(r->db,
                      "SELECT event_id, event, payload FROM webhook_deliveries WHERE id = ? AND webhook_id = ?",
                      DB_ARGS(DBA_TEXT(c->delivery), DBA_TEXT(c->hook)), &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    if (rc != 1) {
        db_res_free(res);
        return rc < 0 ? rc : http_fail(r, 404, "NOT_FOUND", "no such delivery");
    }
    char *event_id = xstrdup(db_text(res, 0).p), *event = xstrdup(db_text(res, 1).p),
         *payload = xstrndup(db_text(res, 2).p, db_text(res, 2).len);
    db_res_free(res);
    rc = enqueue_delivery(r->db, c->hook, str_c(event_id), str_c(event), str_c(payload), c->delivery, c->new_id);
    free(event_id);
    free(event);
    free(payload);
    if (rc != DB_OK)
        return rc;
    json_t *after = json_pack("{s:s%,s:s}", "redelivery_of", c->delivery.p, c->delivery.len, "delivery_id", c->new_id);
    struct audit_entry e = {.action = "webhook.redeliver", .category = "webhooks", .target_type = "webhook",
                            .target_id = c->hook, .after = after, .success = true};
    rc = audit_record_req(r, &e);
    json_decref(after);
    return rc;
}

static int h_redeliver(struct req *r)
{
    struct redeliver c = {.hook = req_param(r, "id"), .delivery = req_param(r, "delivery_id")};
    struct db_res *res;
    if (require_hook(r, c.hook))
        return HTTP_EFAIL;
    if (!uuid_valid(c.delivery))
        return http_fail(r, 404, "NOT_FOUND", "no such delivery");
    if (req_tx(r, DB_TX_WRITE, tx_redeliver, &c))
        return HTTP_EFAIL;
    int rc = db_query(r->db, "SELECT " DELIVERY_COLS " FROM webhook_deliveries WHERE id = ?",
                      DB_ARGS(DBA_CSTR(c.new_id)), &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if ((rc = db_next(res)) == 1)
        write_delivery_row(&r->w, res);
    db_res_free(res);
    if (rc != 1)
        return http_db_fail(r, rc < 0 ? rc : DB_ERR);
    r->status = 202;
    return 0;
}

static const struct json_field create_fields[] = {
    {.name = "url", .type = JF_STRING, .flags = JF_REQUIRED, .min = 8, .max = URL_MAX,
     .description = "http or https URL the events are POSTed to"},
    {.name = "events", .type = JF_ARRAY_STR, .flags = JF_REQUIRED, .min = 1, .max = EVENTS_MAX,
     .description = "event names: user.created, order.paid, ai.job.finished, ticket.created"},
    {.name = "secret", .type = JF_STRING, .min = SECRET_MIN, .max = SECRET_MAX,
     .description = "HMAC key for Temel-Signature; generated (and answered once) when absent"},
    {.name = "description", .type = JF_STRING, .max = 200},
    {.name = "active", .type = JF_BOOL, .description = "default true"},
    {0},
};
static const struct json_schema create_schema = {.fields = create_fields};
static const struct json_field patch_fields[] = {
    {.name = "url", .type = JF_STRING, .min = 8, .max = URL_MAX},
    {.name = "events", .type = JF_ARRAY_STR, .min = 1, .max = EVENTS_MAX},
    {.name = "secret", .type = JF_STRING, .min = SECRET_MIN, .max = SECRET_MAX,
     .description = "a new secret (answered once)"},
    {.name = "description", .type = JF_STRING, .max = 200},
    {.name = "active", .type = JF_BOOL},
    {0},
};
static const struct json_schema patch_schema = {.fields = patch_fields};
static const struct json_field no_fields[] = {{0}};
static const struct json_schema empty_body = {.fields = no_fields};

static struct openapi_schema schemas[] = {
    {.name = "Webhook",
     .json = OPENAPI_JSON({"type": "object", "properties": {
         "id": {"type": "string", "format": "uuid"}, "url": {"type": "string", "format": "uri"},
         "events": {"type": "array", "items": {"type": "string", "enum": ["user.created", "order.paid", "ai.job.finished", "ticket.created"]}},
         "description": {"type": "string"}, "active": {"type": "boolean"},
         "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}},
         "required": ["id", "url", "events", "description", "active", "created_at", "updated_at"]})},
    {.name = "WebhookWithSecret",
     .json = OPENAPI_JSON({"allOf": [{"$ref": "#/components/schemas/Webhook"}, {"type": "object", "properties": {
         "secret": {"type": "string", "description": "the signing secret: answered only when set"}}}]})},
    {.name = "WebhookDelivery",
     .json = OPENAPI_JSON({"type": "object", "properties": {
         "id": {"type": "string", "format": "uuid"}, "webhook_id": {"type": "string", "format": "uuid"},
         "event_id": {"type": "string", "format": "uuid", "description": "the same for every endpoint and redelivery"},
         "event": {"type": "string"}, "state": {"type": "string", "enum": ["pending", "retrying", "succeeded", "failed"]},
         "attempts": {"type": "integer"}, "response_status": {"type": ["integer", "null"]},
         "error": {"type": ["string", "null"]}, "duration_ms": {"type": ["integer", "null"]},
         "job_id": {"type": ["string", "null"]}, "redelivery_of": {"type": ["string", "null"]},
         "payload": {"type": "object", "description": "the body that was signed and sent",
                     "properties": {"id": {"type": "string"}, "type": {"type": "string"},
                                    "created_at": {"type": "string", "format": "date-time"},
                                    "data": {"type": "object", "additionalProperties": true}}},
         "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}},
         "required": ["id", "webhook_id", "event_id", "event", "state", "attempts", "payload", "created_at"]})},
};
#define REF(n) "{\"$ref\": \"#/components/schemas/" n "\"}"

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/webhooks", .handler = h_list, .auth = AUTH_ADMIN, .rl = RL_READ,
     .summary = "List webhook endpoints", .tag = "webhooks", .flags = ROUTE_NO_BODY | ROUTE_PAGINATED,
     .output = REF("Webhook")},
    {.method = "POST", .pattern = "/api/v1/webhooks", .handler = h_create, .auth = AUTH_ADMIN, .rl = RL_WRITE,
     .input = &create_schema, .summary = "Register a webhook endpoint (the secret is answered once)",
     .tag = "webhooks", .output = REF("WebhookWithSecret")},
    {.method = "GET", .pattern = "/api/v1/webhooks/{id}", .handler = h_get, .auth = AUTH_ADMIN, .rl = RL_READ,
     .summary = "One webhook endpoint", .tag = "webhooks", .flags = ROUTE_NO_BODY, .output = REF("Webhook")},
    {.method = "PATCH", .pattern = "/api/v1/webhooks/{id}", .handler = h_patch, .auth = AUTH_ADMIN, .rl = RL_WRITE,
     .input = &patch_schema, .summary = "Change a webhook endpoint (If-Match honoured)", .tag = "webhooks",
     .output = REF("WebhookWithSecret"), .errors = "412"},
    {.method = "DELETE", .pattern = "/api/v1/webhooks/{id}", .handler = h_delete, .auth = AUTH_ADMIN,
     .rl = RL_WRITE, .summary = "Delete a webhook endpoint and its delivery log", .tag = "webhooks",
     .flags = ROUTE_NO_BODY, .status = 204},
    {.method = "GET", .pattern = "/api/v1/webhooks/{id}/deliveries", .handler = h_deliveries, .auth = AUTH_ADMIN,
     .rl = RL_READ, .summary = "The delivery log of an endpoint (filters: state, event)", .tag = "webhooks",
     .flags = ROUTE_NO_BODY | ROUTE_PAGINATED, .output = REF("WebhookDelivery")},
    {.method = "POST", .pattern = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", .handler = h_redeliver,
     .auth = AUTH_ADMIN, .rl = RL_WRITE, .input = &empty_body,
     .summary = "Deliver an event again (a new delivery with the same event id)", .tag = "webhooks",
     .flags = ROUTE_BODY_OPTIONAL, .output = REF("WebhookDelivery")},
};

/* ticket.created: support tickets are a resource named "tickets" (the support
 * module's descriptor); its creation is followed here, inside the write
 * transaction, through the resource engine's change events — so no module
 * needs to know the other, and without a tickets resource nothing fires. */
static int on_resource_change(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id,
                              const json_t *before, const json_t *after, void *ud)
{
    UNUSED(r);
    UNUSED(id);
    UNUSED(before);
    UNUSED(ud);
    if (act != RA_CREATE || strcmp(res->name, "tickets") || !json_is_object(after))
        return 0;
    return webhooks_emit(db, "ticket.created", after);
}

static void register_routes(void)
{
    resource_on_change(RES_HOOK_TX, on_resource_change, NULL);
    for (size_t i = 0; i < ARRAY_LEN(schemas); i++)
        openapi_schema_add(&schemas[i]);
    router_add(routes, ARRAY_LEN(routes));
}

static void register_jobs(void) { jobs_register(&deliver_kind); }

static int config(const struct config *cfg, struct buf *err)
{
    UNUSED(cfg);
    return config_env_int("TEMEL_WEBHOOK_MAX_ATTEMPTS", 6, 1, 50, &g.max_attempts, err) ||
                   config_env_int("TEMEL_WEBHOOK_TIMEOUT_MS", 10000, 100, 120000, &g.timeout_ms, err)
               ? -1
               : 0;
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    UNUSED(db);
    return secret_derive(cfg, "temel.webhooks.secrets.v1", g.key, err);
}

static void metrics(struct db *db, struct buf *out)
{
    struct db_res *res;
    if (db_query(db, "SELECT state, count(*) FROM webhook_deliveries GROUP BY state ORDER BY state", DB_NOARGS,
                 &res) != DB_OK)
        return;
    (void)buf_puts(out, "# HELP temel_webhook_deliveries Webhook deliveries by state.\n"
                        "# TYPE temel_webhook_deliveries gauge\n");
    while (db_next(res) == 1)
        (void)buf_printf(out, "temel_webhook_deliveries{state=\"%s\"} %lld\n", db_text(res, 0).p,
                         (long long)db_int(res, 1));
    db_res_free(res);
}

const struct module webhooks_module = {
    .name = "webhooks",
    .config = config,
    .register_routes = register_routes,
    .register_jobs = register_jobs,
    .init = init,
    .metrics = metrics,
};
