/*
 * stripe.c — paying orders through Stripe (API.md §9, issue 11 item 2).
 *
 *   POST /api/v1/orders/{id}/pay   → {"client_secret", "payment_intent"}
 *   POST /api/v1/webhooks/stripe   Stripe's events (Stripe-Signature verified)
 *   POST /api/v1/admin/orders/{id}/refund  (admin) the job orders.stripe_refund asks
 *                                  Stripe for a full refund (POST /v1/refunds,
 *                                  Idempotency-Key refund-<order id>); the order
 *                                  is refunded when charge.refunded arrives
 *
 * /pay and the rule that handlers never call a third party (ARCHITECTURE §1):
 * the PaymentIntent is created by the job orders.stripe_intent, on a runner
 * thread, through the outbound HTTP client. The handler enqueues it (unique
 * per order: concurrent /pay calls share one job) and then waits for its
 * result the way the AI routes do — http_defer polls the order row every
 * 100 ms from the request's coroutine, so the loop serves others meanwhile.
 * The job stores the intent's id and client_secret on the order; the poll
 * answers with them, 502 when the job failed for good (Stripe refused), or
 * 503 with Retry-After when Stripe has not answered within
 * STRIPE_PAY_WAIT_S (the job keeps trying; calling /pay again picks the
 * stored secret up). An order that already has its intent answers at once.
 * Stripe's Idempotency-Key is the order id, so a job that runs twice (its
 * lease expired) still makes one PaymentIntent.
 *
 * The webhook: the signature is checked over the raw body (stripe_sig.h);
 * then in ONE transaction the event id is inserted into stripe_events
 * (ON CONFLICT DO NOTHING: a replay inserts nothing, answers 200 and
 * changes nothing) and the event is applied:
 *   payment_intent.succeeded       pending → paid (amount and currency must
 *                                  match the order); credits orders add the
 *                                  purchase to the ledger (item 3)
 *   payment_intent.payment_failed  payment_status "failed"; the order stays
 *                                  pending (the customer may try again)
 *   charge.refunded                fully refunded: paid → refunded
 * An event for an order that can no longer take it (paid after expiry) is
 * recorded on the order's payment_status for staff to refund; Stripe gets
 * 200 either way (a non-2xx makes it resend for days).
 *
 * Settings (the module's config hook):
 *   TEMEL_STRIPE_SECRET_KEY      sk_... (without it /pay answers 503)
 *   TEMEL_STRIPE_WEBHOOK_SECRET  whsec_... (without it the webhook answers 503)
 *   TEMEL_STRIPE_API_URL         default https://api.stripe.com (tests: a local stand-in;
 *                                a private address must be in TEMEL_OUTBOUND_ALLOW)
 */
#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "jobs/jobs.h"
#include "modules/audit/audit.h"
#include "modules/orders/orders_internal.h"
#include "modules/orders/stripe_sig.h"
#include "transport/http_client.h"

#include "core/banned.h"

#define STRIPE_PAY_WAIT_S 20
#define STRIPE_JOB_TIMEOUT_MS 15000
#define STRIPE_WEBHOOK_MAX (256u << 10)

static char *secret_key, *webhook_secret, *api_url;

static char *env_dup(const char *name, const char *def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        v = def;
    return v ? strdup(v) : NULL;
}

int orders__stripe_config(const struct config *cfg, struct buf *err)
{
    (void)cfg;
    free(secret_key);
    free(webhook_secret);
    free(api_url);
    secret_key = env_dup("TEMEL_STRIPE_SECRET_KEY", NULL);
    webhook_secret = env_dup("TEMEL_STRIPE_WEBHOOK_SECRET", NULL);
    api_url = env_dup("TEMEL_STRIPE_API_URL", "https://api.stripe.com");
    size_t n = strlen(api_url);
    while (n && api_url[n - 1] == '/')
        api_url[--n] = '\0';
    if (strncmp(api_url, "https://", 8) && strncmp(api_url, "http://", 7)) {
        (void)buf_puts(err, "TEMEL_STRIPE_API_URL: must be an http:// or https:// URL");
        return -1;
    }
    for (const char *p = secret_key; p && *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            (void)buf_puts(err, "TEMEL_STRIPE_SECRET_KEY: must not contain spaces or control characters");
            return -1;
        }
    return 0;
}

/* ---- the job: create the PaymentIntent ---- */

/* Append "name=value&" form-encoded (RFC 1866 application/x-www-form-urlencoded). */
static void form_add(struct buf *b, const char *name, str_t value)
{
    static const char hex[] = "0123456789ABCDEF";
    if (b->len)
        (void)buf_putc(b, '&');
    for (int pass = 0; pass < 2; pass++) {
        str_t s = pass ? value : str_c(name);
        for (size_t i = 0; i < s.len; i++) {
            unsigned char c = (unsigned char)s.p[i];
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                c == '_' || c == '.' || c == '~') {
                (void)buf_putc(b, (char)c);
            } else {
                (void)buf_putc(b, '%');
                (void)buf_putc(b, hex[c >> 4]);
                (void)buf_putc(b, hex[c & 15]);
            }
        }
        if (!pass)
            (void)buf_putc(b, '=');
    }
}

/* Stripe refused for good: the waiting /pay answers 502; a renewal that
 * cannot be charged lets the plan end at period end. */
static int mark_intent_failed(struct db *db, const char *order_id)
{
    int rc = db_exec(db,
                     "UPDATE orders SET payment_status = 'intent_failed', updated_at = ms_ts(?) "
                     "WHERE id = ? AND client_secret IS NULL",
                     DB_ARGS(DBA_INT(time_now_ms()), DBA_CSTR(order_id)), NULL);
    return rc == DB_OK ? orders__plan_payment(db, order_id, false, STR_NULL) : rc;
}

/* POST a form to Stripe (path under api_url, e.g. "/v1/payment_intents") with
 * its Idempotency-Key; the answer's JSON in *out (NULL unless JOB_OK); what
 * went wrong in error. Returns the job result the call's outcome means. */
static enum job_result stripe_post(struct job *j, const char *path, str_t form, const char *idem, json_t **out,
                                   struct buf *error)
{
    struct buf url = BUF_INIT(1024), auth = BUF_INIT(512), err = BUF_INIT(256);
    *out = NULL;
    (void)buf_printf(&url, "%s%s", api_url, path);
    (void)buf_printf(&auth, "Bearer %s", secret_key);
    struct httpc_request rq = HTTPC_REQUEST_INIT;
    rq.method = "POST";
    rq.url = buf_cstr(&url);
    rq.body = form;
    if (httpc_add_header(&rq, "Authorization", buf_cstr(&auth)) ||
        httpc_add_header(&rq, "Content-Type", "application/x-www-form-urlencoded") ||
        httpc_add_header(&rq, "Idempotency-Key", idem))
        BUG("stripe: request headers"); /* three of HTTPC_MAX_REQ_HEADERS */
    rq.deadline_mono_ms = j->deadline_mono_ms;
    rq.allow = httpc_allow_outbound();
    struct httpc_response rs;
    int rc = httpc_perform(&rq, &rs, &err);
    if (auth.ptr)
        sodium_memzero(auth.ptr, auth.len);
    buf_free(&auth);
    buf_free(&url);
    enum job_result jr = httpc_job_result(rc, rs.status);
    if (jr == JOB_OK) {
        *out = json_loadb(rs.body.ptr ? rs.body.ptr : "", rs.body.len, 0, NULL);
        if (!json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
            (void)buf_puts(error, "Stripe answered something that is not a JSON object");
            jr = JOB_RETRY;
        }
    } else if (rc != HTTPC_OK) {
        (void)buf_printf(error, "Stripe: %s", buf_cstr(&err));
    } else {
        (void)buf_printf(error, "Stripe answered %ld", rs.status);
    }
    buf_free(&err);
    httpc_response_free(&rs);
    return jr;
}

/* A plan order's buyer becomes a Stripe customer once (Idempotency-Key
 * "customer-<user id>"), so the card of the first period can pay the next. */
static enum job_result plan_customer(struct job *j, struct plan_charge *pc, struct buf *error)
{
    if (pc->customer[0])
        return JOB_OK;
    struct buf form = BUF_INIT(1024);
    char idem[64];
    form_add(&form, "email", str_c(pc->email));
    form_add(&form, "metadata[user_id]", str_c(pc->user_id));
    (void)snprintf(idem, sizeof(idem), "customer-%s", pc->user_id);
    json_t *v;
    enum job_result jr = stripe_post(j, "/v1/customers", buf_str(&form), idem, &v, error);
    buf_free(&form);
    if (jr != JOB_OK)
        return jr;
    const json_t *id = json_object_get(v, "id");
    if (!json_is_string(id) || json_string_length(id) >= sizeof(pc->customer)) {
        (void)buf_puts(error, "Stripe answered a customer without id");
        json_decref(v);
        return JOB_RETRY;
    }
    (void)str_copy(pc->customer, json_string_value(id), sizeof(pc->customer));
    json_decref(v);
    if (orders__plan_set_customer(j->db, pc->user_id, pc->customer) != DB_OK) {
        (void)buf_printf(error, "store customer: %s", db_errmsg(j->db));
        return JOB_RETRY;
    }
    return JOB_OK;
}

static enum job_result job_intent(struct job *j, struct buf *result, struct buf *error)
{
    const json_t *oid = json_object_get(j->payload, "order_id");
    if (!json_is_string(oid) || !secret_key) {
        (void)buf_puts(error, !secret_key ? "TEMEL_STRIPE_SECRET_KEY is not set" : "payload without order_id");
        return JOB_FAIL;
    }
    char order_id[UUID_STR_LEN + 1], currency[8] = "";
    (void)str_copy(order_id, json_string_value(oid), sizeof(order_id));
    struct db_res *res;
    int64_t total = 0;
    bool usable = false;
    int rc = db_query(j->db, "SELECT total, currency, status, client_secret FROM orders WHERE id = ?",
                      DB_ARGS(DBA_CSTR(order_id)), &res);
    if (rc != DB_OK) {
        (void)buf_printf(error, "read order: %s", db_errmsg(j->db));
        return JOB_RETRY;
    }
    if ((rc = db_next(res)) == 1) {
        usable = str_is(db_text(res, 2), "pending") && db_isnull(res, 3);
        total = db_int(res, 0);
        str_t cur = db_text(res, 1);
        for (size_t i = 0; i < cur.len && i + 1 < sizeof(currency); i++)
            currency[i] = (char)(cur.p[i] >= 'A' && cur.p[i] <= 'Z' ? cur.p[i] + 32 : cur.p[i]);
    }
    db_res_free(res);
    struct plan_charge pc;
    if (rc >= 0 && usable)
        rc = orders__plan_charge(j->db, order_id, &pc);
    if (rc < 0) {
        (void)buf_printf(error, "read order: %s", db_errmsg(j->db));
        return JOB_RETRY;
    }
    if (!usable) { /* gone, no longer pending, or the intent exists already */
        (void)buf_puts(result, "{\"skipped\":true}");
        return JOB_OK;
    }
    enum job_result jr = JOB_OK;
    if (pc.plan && (jr = plan_customer(j, &pc, error)) != JOB_OK)
        return jr;
    struct buf body = BUF_INIT(1024);
    char amount[24];
    (void)snprintf(amount, sizeof(amount), "%lld", (long long)total);
    form_add(&body, "amount", str_c(amount));
    form_add(&body, "currency", str_c(currency));
    form_add(&body, "metadata[order_id]", str_c(order_id));
    if (pc.plan)
        form_add(&body, "customer", str_c(pc.customer));
    if (pc.renewal) { /* the saved card, charged without the customer present */
        form_add(&body, "payment_method", str_c(pc.payment_method));
        form_add(&body, "off_session", STRLIT("true"));
        form_add(&body, "confirm", STRLIT("true"));
    } else {
        form_add(&body, "automatic_payment_methods[enabled]", STRLIT("true"));
        if (pc.plan) /* keep the card for the renewals */
            form_add(&body, "setup_future_usage", STRLIT("off_session"));
    }
    json_t *v;
    jr = stripe_post(j, "/v1/payment_intents", buf_str(&body), order_id, &v, error);
    buf_free(&body);
    if (jr == JOB_OK) {
        const json_t *id = json_object_get(v, "id"), *cs = json_object_get(v, "client_secret");
        if (!json_is_string(id) || !json_is_string(cs)) {
            (void)buf_puts(error, "Stripe answered without id and client_secret");
            jr = JOB_RETRY;
        } else {
            rc = db_exec(j->db,
                         "UPDATE orders SET payment_intent = ?, client_secret = ?, payment_status = ?, "
                         "updated_at = ms_ts(?) WHERE id = ? AND client_secret IS NULL",
                         DB_ARGS(DBA_CSTR(json_string_value(id)), DBA_CSTR(json_string_value(cs)),
                                 DBA_CSTR(pc.renewal ? "processing" : "requires_payment"), DBA_INT(time_now_ms()),
                                 DBA_CSTR(order_id)),
                         NULL);
            if (rc != DB_OK) {
                (void)buf_printf(error, "store intent: %s", db_errmsg(j->db));
                jr = JOB_RETRY;
            } else {
                (void)buf_puts(result, "{\"payment_intent\":");
                (void)buf_printf(result, "\"%s\"}", json_string_value(id)); /* Stripe ids are [A-Za-z0-9_] */
            }
        }
    }
    json_decref(v);
    if (jr == JOB_FAIL && mark_intent_failed(j->db, order_id) != DB_OK)
        return JOB_RETRY;
    return jr;
}

/* Retries used up: the waiting /pay answers 502. */
static int intent_dead(struct db *db, const char *job_id, json_t *payload)
{
    (void)job_id;
    const json_t *oid = json_object_get(payload, "order_id");
    return json_is_string(oid) ? mark_intent_failed(db, json_string_value(oid)) : DB_OK;
}

/* ---- POST /orders/{id}/pay ---- */

/* A Stripe job {"order_id"} of kind "orders.stripe_<what>", one at a time
 * per order (unique key "stripe_<what>:<order id>"). 0 or a db_rc. */
static int enqueue_stripe_job(struct db *db, const char *what, str_t order_id, int max_attempts)
{
    char payload[80], key[80], kind[40];
    (void)snprintf(payload, sizeof(payload), "{\"order_id\":\"%.*s\"}", STR_FMT(order_id));
    (void)snprintf(key, sizeof(key), "stripe_%s:%.*s", what, STR_FMT(order_id));
    (void)snprintf(kind, sizeof(kind), "orders.stripe_%s", what);
    struct job_opts o = JOB_OPTS_DEFAULT;
    o.unique_key = key;
    o.priority = JOB_PRIO_HIGH;
    o.max_attempts = max_attempts;
    int rc = jobs_enqueue(db, kind, str_c(payload), &o, NULL);
    return rc == JOBS_OK || rc == JOBS_EDUPLICATE ? DB_OK : rc < 0 ? rc : DB_ERR;
}

int orders__stripe_enqueue_intent(struct db *db, str_t order_id)
{
    return enqueue_stripe_job(db, "intent", order_id, 3);
}

struct pay_ctx {
    char id[UUID_STR_LEN + 1];
};

/* The order's intent, if the job has made it: 0 with the answer written,
 * HTTP_DEFER to keep waiting, HTTP_EFAIL after http_fail. */
static int answer_pay(struct req *r, const char *id, bool timed_out)
{
    struct db_res *res;
    int rc = db_query(r->db, "SELECT status, client_secret, payment_intent, payment_status FROM orders "
                             "WHERE id = ? AND user_id = ?",
                      DB_ARGS(DBA_CSTR(id), DBA_TEXT(r->user_id)), &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? http_db_fail(r, rc) : http_fail(r, 404, "NOT_FOUND", "no such order");
    }
    if (!db_isnull(res, 1)) {
        jw_obj_begin(&r->w);
        jw_key(&r->w, "client_secret");
        jw_str(&r->w, db_text(res, 1));
        jw_key(&r->w, "payment_intent");
        jw_str(&r->w, db_text(res, 2));
        jw_obj_end(&r->w);
        db_res_free(res);
        r->status = 200;
        return 0;
    }
    bool failed = str_is(db_text(res, 3), "intent_failed");
    db_res_free(res);
    if (failed)
        return http_fail(r, 502, "BAD_GATEWAY", "the payment provider refused to create the payment; try again");
    if (!timed_out)
        return HTTP_DEFER;
    r->err.retry_after_s = 2;
    return http_fail(r, 503, "SERVICE_UNAVAILABLE", "the payment provider has not answered yet; try again");
}

static int poll_pay(struct req *r, void *arg, bool timed_out)
{
    struct pay_ctx *c = arg;
    return answer_pay(r, c->id, timed_out);
}

struct pay_tx {
    str_t id;
    bool has_secret;
};

static int tx_pay(struct req *r, void *arg)
{
    struct pay_tx *c = arg;
    struct db_res *res;
    int rc = db_query(r->db,
                      db_pick(r->db, "SELECT status, client_secret IS NOT NULL, payment_status FROM orders "
                                     "WHERE id = ? AND user_id = ?",
                              "SELECT status, client_secret IS NOT NULL, payment_status FROM orders "
                              "WHERE id = ? AND user_id = ? FOR UPDATE"),
                      DB_ARGS(DBA_TEXT(c->id), DBA_TEXT(r->user_id)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? rc : http_fail(r, 404, "NOT_FOUND", "no such order");
    }
    bool pending = str_is(db_text(res, 0), "pending");
    char status[16];
    (void)str_copy(status, db_text(res, 0).p, sizeof(status));
    c->has_secret = db_int(res, 1) != 0;
    bool failed = str_is(db_text(res, 2), "intent_failed");
    db_res_free(res);
    if (!pending)
        return http_fail(r, 409, "CONFLICT", "the order is %s: only a pending order is paid", status);
    if (c->has_secret)
        return DB_OK;
    if (failed && (rc = db_exec(r->db, "UPDATE orders SET payment_status = NULL WHERE id = ?",
                                DB_ARGS(DBA_TEXT(c->id)), NULL)) != DB_OK)
        return rc;
    return orders__stripe_enqueue_intent(r->db, c->id);
}

static int h_pay(struct req *r)
{
    struct pay_tx t = {.id = req_param(r, "id")};
    if (!uuid_valid(t.id))
        return http_fail(r, 404, "NOT_FOUND", "no such order");
    if (!secret_key)
        return http_fail(r, 503, "SERVICE_UNAVAILABLE", "payments are not configured (TEMEL_STRIPE_SECRET_KEY)");
    if (req_tx(r, DB_TX_WRITE, tx_pay, &t))
        return HTTP_EFAIL;
    struct pay_ctx *c = h2o_mem_alloc_pool(r->pool, sizeof(*c));
    (void)str_copy(c->id, t.id.p, sizeof(c->id));
    if (t.has_secret)
        return answer_pay(r, c->id, true);
    return http_defer(r, poll_pay, c, time_mono_ms() + STRIPE_PAY_WAIT_S * 1000);
}

/* ---- POST /webhooks/stripe ---- */

struct event {
    str_t id, type;
    const json_t *obj;
    bool replayed;
    const char *outcome;
};

static str_t jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? str_make(json_string_value(v), json_string_length(v)) : STR_NULL;
}

/* The order an event names: metadata.order_id, else by payment intent id. */
static int event_order(struct req *r, str_t pi, const json_t *metadata, char out[UUID_STR_LEN + 1])
{
    str_t oid = jstr(metadata, "order_id");
    struct db_res *res;
    out[0] = '\0';
    int rc = db_query(r->db, "SELECT id FROM orders WHERE id = ? OR payment_intent = ? ORDER BY id LIMIT 1",
                      DB_ARGS(uuid_valid(oid) ? DBA_TEXT(oid) : DBA_NULL, pi.p ? DBA_TEXT(pi) : DBA_NULL), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1)
        (void)str_copy(out, db_text(res, 0).p, UUID_STR_LEN + 1);
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

static int set_payment_status(struct db *db, const char *order_id, const char *status)
{
    return db_exec(db, "UPDATE orders SET payment_status = ?, updated_at = ms_ts(?) WHERE id = ?",
                   DB_ARGS(DBA_CSTR(status), DBA_INT(time_now_ms()), DBA_CSTR(order_id)), NULL);
}

static int apply_succeeded(struct req *r, struct event *e, const char *order_id)
{
    int64_t total = 0;
    bool found;
    str_t cur = jstr(e->obj, "currency");
    int64_t amount = json_integer_value(json_object_get(e->obj, "amount_received"));
    if (!json_object_get(e->obj, "amount_received"))
        amount = json_integer_value(json_object_get(e->obj, "amount"));
    struct buf *where = req_buf(r, 64);
    for (size_t i = 0; i < cur.len && i < 8; i++)
        (void)buf_putc(where, (char)(cur.p[i] >= 'a' && cur.p[i] <= 'z' ? cur.p[i] - 32 : cur.p[i]));
    int rc = db_query_int(r->db, "SELECT total FROM orders WHERE id = ? AND currency = ?",
                          DB_ARGS(DBA_CSTR(order_id), DBA_TEXT(buf_str(where))), &total, &found);
    if (rc != DB_OK)
        return rc;
    if (!found || total != amount) {
        log_warn("stripe: event %.*s pays %lld %.*s for order %s: amount or currency differs",
                 STR_FMT(e->id), (long long)amount, STR_FMT(cur), order_id);
        e->outcome = "amount_mismatch";
        return set_payment_status(r->db, order_id, "amount_mismatch");
    }
    char from[16] = "";
    rc = orders__transition(r->db, r, "webhook stripe", str_c(order_id), "paid", NULL, "pending", from);
    if (rc == ORDERS_ESTATE) {
        /* paid after it expired or was cancelled: staff must refund it */
        log_warn("stripe: order %s was %s when its payment succeeded (refund it)", order_id, from);
        e->outcome = "paid_while_not_pending";
        return set_payment_status(r->db, order_id, "succeeded_not_pending");
    }
    if (rc != DB_OK)
        return rc < 0 ? rc : DB_ERR;
    e->outcome = "paid";
    if ((rc = orders__plan_payment(r->db, order_id, true, jstr(e->obj, "payment_method"))) != DB_OK)
        return rc;
    return set_payment_status(r->db, order_id, "succeeded");
}

static int tx_webhook(struct req *r, void *arg)
{
    struct event *e = arg;
    int64_t changed = 0;
    char order_id[UUID_STR_LEN + 1] = "";
    bool charge = str_is(e->type, "charge.refunded");
    str_t pi = charge ? jstr(e->obj, "payment_intent") : jstr(e->obj, "id");
    int rc = event_order(r, pi, json_object_get(e->obj, "metadata"), order_id);
    if (rc != DB_OK)
        return rc;
    rc = db_exec(r->db, "INSERT INTO stripe_events (id, type, order_id, created_at) VALUES (?, ?, ?, ms_ts(?)) "
                        "ON CONFLICT (id) DO NOTHING",
                 DB_ARGS(DBA_TEXT(e->id), DBA_TEXT(e->type), order_id[0] ? DBA_CSTR(order_id) : DBA_NULL,
                         DBA_INT(time_now_ms())),
                 &changed);
    if (rc != DB_OK)
        return rc;
    if (changed == 0) {
        e->replayed = true;
        e->outcome = "replayed";
        return DB_OK;
    }
    e->outcome = "ignored";
    if (!order_id[0])
        return DB_OK;
    if (str_is(e->type, "payment_intent.succeeded"))
        return apply_succeeded(r, e, order_id);
    if (str_is(e->type, "payment_intent.payment_failed")) {
        e->outcome = "failed";
        rc = orders__plan_payment(r->db, order_id, false, STR_NULL);
        return rc == DB_OK ? set_payment_status(r->db, order_id, "failed") : rc;
    }
    if (charge) {
        if (!json_is_true(json_object_get(e->obj, "refunded"))) {
            e->outcome = "partially_refunded";
            return set_payment_status(r->db, order_id, "partially_refunded");
        }
        rc = orders__transition(r->db, r, "webhook stripe", str_c(order_id), "refunded", NULL, "paid", NULL);
        if (rc == ORDERS_ESTATE || rc == ORDERS_ENOTFOUND)
            rc = DB_OK; /* not paid here (already refunded, or shipped): record the money side only */
        else
            e->outcome = "refunded";
        return rc == DB_OK ? set_payment_status(r->db, order_id, "refunded") : rc;
    }
    return DB_OK;
}

static int h_webhook(struct req *r)
{
    if (!webhook_secret)
        return http_fail(r, 503, "SERVICE_UNAVAILABLE", "Stripe webhooks are not configured");
    int vrc = stripe_sig_verify(req_header_get(r, "stripe-signature"), r->entity, str_c(webhook_secret),
                                time_now_ms() / 1000, STRIPE_SIG_TOLERANCE_S);
    if (vrc != STRIPE_SIG_OK)
        return http_fail(r, 400, "BAD_REQUEST", "%s", stripe_sig_strerror(vrc));
    json_t *root = json_loadb(r->entity.p ? r->entity.p : "", r->entity.len, JSON_REJECT_DUPLICATES, NULL);
    const json_t *data = json_object_get(root, "data");
    struct event e = {.id = jstr(root, "id"), .type = jstr(root, "type"), .obj = json_object_get(data, "object")};
    if (!e.id.len || e.id.len > 255 || !e.type.len || e.type.len > 100 || !json_is_object(e.obj)) {
        json_decref(root);
        return http_fail(r, 400, "BAD_REQUEST", "not a Stripe event (id, type, data.object)");
    }
    int rc = req_tx(r, DB_TX_WRITE, tx_webhook, &e);
    if (rc == 0) {
        jw_obj_begin(&r->w);
        jw_key(&r->w, "received");
        jw_bool(&r->w, true);
        jw_key(&r->w, "replayed");
        jw_bool(&r->w, e.replayed);
        jw_key(&r->w, "outcome");
        jw_cstr(&r->w, e.outcome);
        jw_obj_end(&r->w);
        r->status = 200;
    }
    json_decref(root);
    return rc;
}

/* ---- admin refunds: POST /admin/orders/{id}/refund → the job orders.stripe_refund ---- */

static int set_refund_failed(struct db *db, const char *order_id)
{
    return db_exec(db,
                   "UPDATE orders SET payment_status = 'refund_failed', updated_at = ms_ts(?) "
                   "WHERE id = ? AND payment_status = 'refund_pending'",
                   DB_ARGS(DBA_INT(time_now_ms()), DBA_CSTR(order_id)), NULL);
}

static enum job_result job_refund(struct job *j, struct buf *result, struct buf *error)
{
    const json_t *oid = json_object_get(j->payload, "order_id");
    if (!json_is_string(oid) || !secret_key) {
        (void)buf_puts(error, !secret_key ? "TEMEL_STRIPE_SECRET_KEY is not set" : "payload without order_id");
        return JOB_FAIL;
    }
    char order_id[UUID_STR_LEN + 1], pi[128] = "", idem[64];
    (void)str_copy(order_id, json_string_value(oid), sizeof(order_id));
    struct db_res *res;
    int rc = db_query(j->db,
                      "SELECT payment_intent FROM orders WHERE id = ? AND status = 'paid' AND "
                      "payment_status = 'refund_pending' AND payment_intent IS NOT NULL",
                      DB_ARGS(DBA_CSTR(order_id)), &res);
    if (rc != DB_OK) {
        (void)buf_printf(error, "read order: %s", db_errmsg(j->db));
        return JOB_RETRY;
    }
    if ((rc = db_next(res)) == 1)
        (void)str_copy(pi, db_text(res, 0).p, sizeof(pi));
    db_res_free(res);
    if (rc < 0) {
        (void)buf_printf(error, "read order: %s", db_errmsg(j->db));
        return JOB_RETRY;
    }
    if (!pi[0]) { /* refunded meanwhile (the webhook), or no longer asked for */
        (void)buf_puts(result, "{\"skipped\":true}");
        return JOB_OK;
    }
    struct buf form = BUF_INIT(512);
    form_add(&form, "payment_intent", str_c(pi));
    form_add(&form, "metadata[order_id]", str_c(order_id));
    (void)snprintf(idem, sizeof(idem), "refund-%s", order_id);
    json_t *v;
    enum job_result jr = stripe_post(j, "/v1/refunds", buf_str(&form), idem, &v, error);
    buf_free(&form);
    if (jr == JOB_OK) {
        const json_t *id = json_object_get(v, "id");
        /* the order becomes refunded when Stripe's charge.refunded arrives */
        (void)buf_printf(result, "{\"refund\":\"%s\"}", json_is_string(id) ? json_string_value(id) : "");
    }
    json_decref(v);
    if (jr == JOB_FAIL && set_refund_failed(j->db, order_id) != DB_OK)
        return JOB_RETRY;
    return jr;
}

static int refund_dead(struct db *db, const char *job_id, json_t *payload)
{
    (void)job_id;
    const json_t *oid = json_object_get(payload, "order_id");
    return json_is_string(oid) ? set_refund_failed(db, json_string_value(oid)) : DB_OK;
}

static int tx_refund(struct req *r, void *arg)
{
    str_t id = *(str_t *)arg;
    struct db_res *res;
    int rc = db_query(r->db,
                      db_pick(r->db, "SELECT status, payment_intent IS NOT NULL, payment_status FROM orders WHERE id = ?",
                              "SELECT status, payment_intent IS NOT NULL, payment_status FROM orders WHERE id = ? "
                              "FOR UPDATE"),
                      DB_ARGS(DBA_TEXT(id)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? rc : http_fail(r, 404, "NOT_FOUND", "no such order");
    }
    char status[16];
    (void)str_copy(status, db_text(res, 0).p, sizeof(status));
    bool stripe = db_int(res, 1) != 0, pending = str_is(db_text(res, 2), "refund_pending");
    db_res_free(res);
    if (strcmp(status, "paid"))
        return http_fail(r, 409, "CONFLICT", "the order is %s: only a paid order is refunded", status);
    if (!stripe)
        return http_fail(r, 409, "CONFLICT", "the order was not paid through Stripe: PATCH its status to refunded");
    if (pending)
        return DB_OK; /* asked already: the job is on its way */
    rc = db_exec(r->db, "UPDATE orders SET payment_status = 'refund_pending', updated_at = ms_ts(?) WHERE id = ?",
                 DB_ARGS(DBA_INT(time_now_ms()), DBA_TEXT(id)), NULL);
    if (rc == DB_OK)
        rc = enqueue_stripe_job(r->db, "refund", id, 5);
    if (rc != DB_OK)
        return rc;
    json_t *after = json_pack("{s:s}", "payment_status", "refund_pending");
    struct audit_entry e = {.action = "order.refund", .category = "orders", .target_type = "order", .target_id = id,
                            .after = after, .success = true};
    rc = orders__audit(r->db, r, NULL, &e);
    json_decref(after);
    return rc;
}

static int h_refund(struct req *r)
{
    str_t id = req_param(r, "id");
    if (!uuid_valid(id))
        return http_fail(r, 404, "NOT_FOUND", "no such order");
    if (!secret_key)
        return http_fail(r, 503, "SERVICE_UNAVAILABLE", "payments are not configured (TEMEL_STRIPE_SECRET_KEY)");
    if (req_tx(r, DB_TX_WRITE, tx_refund, &id))
        return HTTP_EFAIL;
    return orders__respond(r, id, 202);
}

/* ---- registration ---- */

static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/orders/{id}/pay", .handler = h_pay, .auth = AUTH_USER, .rl = RL_WRITE,
     .flags = ROUTE_BODY_OPTIONAL,
     .summary = "Pay a pending order: {client_secret, payment_intent} of its Stripe PaymentIntent (created by a job; "
                "503 + Retry-After while Stripe has not answered)",
     .tag = "orders", .errors = "409",
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "client_secret", "payment_intent" ],
         "properties" : {
             "client_secret" : {"type" : "string", "description" : "for Stripe.js confirmPayment"},
             "payment_intent" : {"type" : "string", "description" : "the PaymentIntent id (pi_...)"}
         }
     })},
    {.method = "POST", .pattern = "/api/v1/webhooks/stripe", .handler = h_webhook, .auth = AUTH_NONE,
     .rl = RL_NONE, .flags = ROUTE_RAW_BODY, .body_max = STRIPE_WEBHOOK_MAX,
     .summary = "Stripe events (Stripe-Signature: HMAC-SHA256 of t.payload, 5 min tolerance); each event id once",
     .tag = "orders",
     .raw_body = OPENAPI_JSON({"application/json" : {"schema" : {"type" : "object", "description" : "a Stripe event", "required" : [ "id", "type", "data" ], "additionalProperties" : true, "properties" : {"id" : {"type" : "string"}, "type" : {"type" : "string"}, "data" : {"type" : "object", "additionalProperties" : true}}}}}),
     .params = OPENAPI_JSON([ {"name" : "Stripe-Signature", "in" : "header", "required" : true, "schema" : {"type" : "string"}, "description" : "t=<unix time>,v1=<hex HMAC-SHA256>"} ]),
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "received", "replayed", "outcome" ],
         "properties" : {
             "received" : {"type" : "boolean"},
             "replayed" : {"type" : "boolean", "description" : "this event id was applied before"},
             "outcome" : {"type" : "string"}
         }
     })},
    {.method = "POST", .pattern = "/api/v1/admin/orders/{id}/refund", .handler = h_refund, .auth = AUTH_ADMIN,
     .rl = RL_WRITE, .flags = ROUTE_BODY_OPTIONAL | ROUTE_IDEMPOTENT,
     .summary = "Refund a paid order through Stripe (admin; audited): 202, payment_status refund_pending; the order "
                "becomes refunded when Stripe's charge.refunded arrives",
     .tag = "admin", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/Order"})},
};

void orders__stripe_register_routes(void) { router_add(routes, ARRAY_LEN(routes)); }

void orders__stripe_register_jobs(void)
{
    static const struct job_kind kind = {.kind = "orders.stripe_intent", .handler = job_intent, .queue = "payments",
                                         .timeout_ms = STRIPE_JOB_TIMEOUT_MS, .on_dead = intent_dead};
    static const struct job_kind refund = {.kind = "orders.stripe_refund", .handler = job_refund, .queue = "payments",
                                           .timeout_ms = STRIPE_JOB_TIMEOUT_MS, .on_dead = refund_dead};
    jobs_register(&kind);
    jobs_register(&refund);
}
