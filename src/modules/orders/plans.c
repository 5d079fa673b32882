/*
 * plans.c — paid plans as subscriptions (issue 11 item 3; API.md §3 Plans),
 * paid through the same order and Stripe path as goods and credit packs.
 *
 *   GET    /api/v1/me/subscription  the plan, its period, whether it ends at
 *                                   period end, the renewal's state
 *   POST   /api/v1/me/subscription  {plan} (Idempotency-Key)
 *            free      → as DELETE
 *            paid      → 201, a pending order of kind "plan" (pay it with
 *                        POST /orders/{id}/pay); 200 with the same order
 *                        while one for that plan is still unpaid; 200 and
 *                        the subscription when it only undoes a cancel;
 *                        409 when that plan is already running
 *   DELETE /api/v1/me/subscription  cancel at period end (the plan and its
 *                                   credits stay until then; no renewal)
 *
 * Life of a subscription (one credit_subscriptions row per user):
 *   - the order's transition to paid (webhook payment_intent.succeeded, in its
 *     transaction) starts the period — or, for the same plan still running,
 *     appends one after the current period — and grants the plan's monthly
 *     credits as a "grant" ledger entry with reference plan:<order id>: once,
 *     because the transition to paid happens once and a unique index on the
 *     reference refuses a second row; it enqueues two jobs for that period:
 *   - plans.cycle step "renew" at period end − TEMEL_PLAN_RENEW_LEAD_S: a
 *     renewal order charged off-session with the card Stripe saved from the
 *     first payment (setup_future_usage); its succeeded webhook extends the
 *     period like any paid plan order.
 *   - plans.cycle step "end" at period end: if the period was not extended
 *     (cancelled, renewal failed or unpaid), the plan drops to free and a
 *     still-unpaid renewal order is cancelled.
 *   Each step acts only while the row still has the period_end it was made
 *   for, so a late, repeated or duplicate job changes nothing.
 * Periods are calendar months (TEMEL_PLAN_PERIOD_S > 0 sets seconds instead,
 * for tests and trials). Switching to another paid plan starts a new period
 * when paid (no proration).
 */
#include <stdio.h>
#include <time.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "jobs/jobs.h"
#include "modules/audit/audit.h"
#include "modules/credits/credits.h"
#include "modules/orders/orders_internal.h"
#include "modules/users/identity.h"

#include "core/banned.h"

#define PLAN_RENEW_LEAD_DEFAULT_S 86400

static int64_t period_s;                               /* 0: calendar months */
static int64_t renew_lead_s = PLAN_RENEW_LEAD_DEFAULT_S; /* charge this long before period end */

int orders__plans_config(struct buf *err)
{
    const char *v = getenv("TEMEL_PLAN_PERIOD_S");
    period_s = 0;
    renew_lead_s = PLAN_RENEW_LEAD_DEFAULT_S;
    if (v && *v && parse_i64(str_c(v), 0, 366ll * 24 * 3600, &period_s)) {
        (void)buf_puts(err, "TEMEL_PLAN_PERIOD_S: must be an integer in 0..31622400 (seconds; 0 = calendar month)");
        return -1;
    }
    v = getenv("TEMEL_PLAN_RENEW_LEAD_S");
    if (v && *v && parse_i64(str_c(v), 0, 28ll * 24 * 3600, &renew_lead_s)) {
        (void)buf_puts(err, "TEMEL_PLAN_RENEW_LEAD_S: must be an integer in 0..2419200 (seconds)");
        return -1;
    }
    if (period_s && renew_lead_s >= period_s) {
        (void)buf_puts(err, "TEMEL_PLAN_RENEW_LEAD_S: must be shorter than TEMEL_PLAN_PERIOD_S");
        return -1;
    }
    return 0;
}

/* One period after (dir 1) or before (dir -1) ms: a calendar month (the day
 * clamped to the month's length: Jan 31 → Feb 28/29), or period_s. */
static int64_t period_step(int64_t ms, int dir)
{
    if (period_s)
        return ms + dir * period_s * 1000;
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    int day = tm.tm_mday;
    tm.tm_mon += dir;
    if (tm.tm_mon == 12) {
        tm.tm_mon = 0;
        tm.tm_year++;
    } else if (tm.tm_mon < 0) {
        tm.tm_mon = 11;
        tm.tm_year--;
    }
    int y = tm.tm_year + 1900, max = dim[tm.tm_mon];
    if (tm.tm_mon == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        max = 29;
    tm.tm_mday = day < max ? day : max;
    return (int64_t)timegm(&tm) * 1000 + ms % 1000;
}

/* The end of a period that starts at start_ms. */
static int64_t period_end_of(int64_t start_ms) { return period_step(start_ms, 1); }

/* ---- the subscription row ---- */

struct sub {
    bool exists, cancel;
    char plan[16], renewal[16], ended[32];
    int64_t start, end; /* 0 when none */
};

static int sub_read(struct db *db, str_t user_id, bool lock, struct sub *s)
{
#define SUB_SELECT                                                                                                     \
    "SELECT plan, ts_ms(period_start), ts_ms(period_end), cancel_at_period_end, renewal_status, ended_reason "       \
    "FROM credit_subscriptions WHERE user_id = ?"
    struct db_res *res;
    memset(s, 0, sizeof(*s));
    memcpy(s->plan, "free", 5);
    int rc = db_query(db, lock ? db_pick(db, SUB_SELECT, SUB_SELECT " FOR UPDATE") : SUB_SELECT,
                      DB_ARGS(DBA_TEXT(user_id)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1) {
        s->exists = true;
        (void)str_copy(s->plan, db_text(res, 0).p, sizeof(s->plan));
        s->start = db_isnull(res, 1) ? 0 : db_int(res, 1);
        s->end = db_isnull(res, 2) ? 0 : db_int(res, 2);
        s->cancel = db_int(res, 3) != 0;
        if (!db_isnull(res, 4))
            (void)str_copy(s->renewal, db_text(res, 4).p, sizeof(s->renewal));
        if (!db_isnull(res, 5))
            (void)str_copy(s->ended, db_text(res, 5).p, sizeof(s->ended));
    }
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

/* Make sure the row exists (so FOR UPDATE has something to lock). */
static int sub_ensure(struct db *db, str_t user_id)
{
    return db_exec(db,
                   "INSERT INTO credit_subscriptions (user_id, plan, updated_at) VALUES (?, 'free', ms_ts(?)) "
                   "ON CONFLICT (user_id) DO NOTHING",
                   DB_ARGS(DBA_TEXT(user_id), DBA_INT(time_now_ms())), NULL);
}

static bool sub_paid(const struct sub *s)
{
    struct credits_plan p;
    return credits_plan_find(str_c(s->plan), &p) == 0 && p.paid && s->end;
}

static int audit_sub(struct db *db, struct req *r, const char *action, str_t user_id, const char *plan,
                     const char *detail)
{
    json_t *after = json_pack("{s:s,s:s?}", "plan", plan, "detail", detail);
    struct audit_entry e = {.action = action, .category = "credits", .target_type = "user", .target_id = user_id,
                            .after = after, .success = true};
    int rc = orders__audit(db, r, "job plans.cycle", &e);
    json_decref(after);
    return rc;
}

/* ---- the period's jobs ---- */

static int enqueue_cycle(struct db *db, str_t user_id, int64_t end, const char *step, int64_t run_at)
{
    char payload[160], key[128];
    (void)snprintf(payload, sizeof(payload), "{\"user_id\":\"%.*s\",\"period_end\":%lld,\"step\":\"%s\"}",
                   STR_FMT(user_id), (long long)end, step);
    (void)snprintf(key, sizeof(key), "plans:%s:%.*s:%lld", step, STR_FMT(user_id), (long long)end);
    struct job_opts o = JOB_OPTS_DEFAULT;
    o.run_at_ms = run_at;
    o.unique_key = key;
    o.max_attempts = 10;
    int rc = jobs_enqueue(db, "plans.cycle", str_c(payload), &o, NULL);
    return rc == JOBS_OK || rc == JOBS_EDUPLICATE ? DB_OK : rc < 0 ? rc : DB_ERR;
}

/* The buyer and plan of a plan order (*found false for other kinds). */
static int plan_order_read(struct db *db, str_t order_id, char user[UUID_STR_LEN + 1], char plan[16], bool *found)
{
    struct db_res *res;
    *found = false;
    int rc = db_query(db, "SELECT user_id, plan FROM orders WHERE id = ? AND kind = 'plan'", DB_ARGS(DBA_TEXT(order_id)),
                      &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1) {
        (void)str_copy(user, db_text(res, 0).p, UUID_STR_LEN + 1);
        (void)str_copy(plan, db_text(res, 1).p, 16);
        *found = true;
    }
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

int orders__plan_paid(struct db *db, str_t order_id)
{
    char user[UUID_STR_LEN + 1], plan[16];
    bool found;
    int rc = plan_order_read(db, order_id, user, plan, &found);
    if (rc != DB_OK || !found)
        return rc;
    struct credits_plan p;
    if (credits_plan_find(str_c(plan), &p) || !p.paid)
        return DB_ERR; /* the CHECK and the route allow only paid plan names */
    struct sub s;
    int64_t now = time_now_ms();
    if ((rc = sub_ensure(db, str_c(user))) != DB_OK || (rc = sub_read(db, str_c(user), true, &s)) != DB_OK)
        return rc;
    /* the same plan still running: the new period follows the current one */
    int64_t start = !strcmp(s.plan, plan) && s.end > now ? s.end : now, end = period_end_of(start);
    rc = db_exec(db,
                 "UPDATE credit_subscriptions SET plan = ?, period_start = ms_ts(?), period_end = ms_ts(?), "
                 "cancel_at_period_end = ?, renewal_status = NULL, ended_reason = NULL, updated_at = ms_ts(?) "
                 "WHERE user_id = ?",
                 DB_ARGS(DBA_CSTR(plan), DBA_INT(start), DBA_INT(end), DBA_BOOL(false), DBA_INT(now), DBA_CSTR(user)),
                 NULL);
    bool applied = false;
    if (rc == DB_OK)
        rc = credits_grant_period(db, str_c(user), p.monthly, order_id, &applied);
    if (rc > 0)
        rc = DB_ERR;
    if (rc == DB_OK && !applied)
        log_warn("plans: order %.*s was granted before", STR_FMT(order_id));
    int64_t renew_at = end - renew_lead_s * 1000;
    if (rc == DB_OK)
        rc = enqueue_cycle(db, str_c(user), end, "renew", renew_at > now ? renew_at : now);
    if (rc == DB_OK)
        rc = enqueue_cycle(db, str_c(user), end, "end", end);
    return rc;
}

int orders__plan_payment(struct db *db, const char *order_id, bool succeeded, str_t payment_method)
{
    if (succeeded) {
        if (!payment_method.len || payment_method.len > 120)
            return DB_OK;
        return db_exec(db,
                       "UPDATE credit_subscriptions SET payment_method = ? WHERE user_id = "
                       "(SELECT user_id FROM orders WHERE id = ? AND kind = 'plan')",
                       DB_ARGS(DBA_TEXT(payment_method), DBA_CSTR(order_id)), NULL);
    }
    return db_exec(db,
                   "UPDATE credit_subscriptions SET renewal_status = 'failed', updated_at = ms_ts(?) "
                   "WHERE renewal_status = 'pending' AND user_id = "
                   "(SELECT user_id FROM orders WHERE id = ? AND kind = 'plan' AND renewal = ?)",
                   DB_ARGS(DBA_INT(time_now_ms()), DBA_CSTR(order_id), DBA_BOOL(true)), NULL);
}

int orders__plan_charge(struct db *db, const char *order_id, struct plan_charge *out)
{
    struct db_res *res;
    memset(out, 0, sizeof(*out));
    int rc = db_query(db,
                      "SELECT o.renewal, o.user_id, u.email, s.stripe_customer, s.payment_method FROM orders o "
                      "JOIN users u ON u.id = o.user_id LEFT JOIN credit_subscriptions s ON s.user_id = o.user_id "
                      "WHERE o.id = ? AND o.kind = 'plan'",
                      DB_ARGS(DBA_CSTR(order_id)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1) {
        out->plan = true;
        out->renewal = db_int(res, 0) != 0;
        (void)str_copy(out->user_id, db_text(res, 1).p, sizeof(out->user_id));
        if (!db_isnull(res, 2))
            (void)str_copy(out->email, db_text(res, 2).p, sizeof(out->email));
        if (!db_isnull(res, 3))
            (void)str_copy(out->customer, db_text(res, 3).p, sizeof(out->customer));
        if (!db_isnull(res, 4))
            (void)str_copy(out->payment_method, db_text(res, 4).p, sizeof(out->payment_method));
    }
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

int orders__plan_set_customer(struct db *db, const char *user_id, const char *customer)
{
    return db_exec(db,
                   "INSERT INTO credit_subscriptions (user_id, plan, updated_at, stripe_customer) "
                   "VALUES (?, 'free', ms_ts(?), ?) ON CONFLICT (user_id) DO UPDATE SET stripe_customer = "
                   "excluded.stripe_customer WHERE credit_subscriptions.stripe_customer IS NULL",
                   DB_ARGS(DBA_CSTR(user_id), DBA_INT(time_now_ms()), DBA_CSTR(customer)), NULL);
}

/* A new plan order (initial or renewal) inside the caller's transaction. */
static int plan_order(struct db *db, struct req *r, str_t user, const char *locale, const struct credits_plan *p,
                      bool renewal, char id[UUID_STR_LEN + 1])
{
    char product[32], name[64];
    uuid7_str(id);
    (void)snprintf(product, sizeof(product), "plan:%s", p->name);
    (void)snprintf(name, sizeof(name), "%s plan, 1 %s", p->name, period_s ? "period" : "month");
    struct order_head h = {.id = id, .kind = "plan", .currency = p->currency, .total = p->price,
                           .address = STR_NULL, .plan = p->name, .renewal = renewal};
    int rc = r ? orders__insert(r, &h) : orders__insert_db(db, user, locale, &h);
    if (rc == DB_OK)
        rc = orders__insert_line(db, id, 0, product, str_c(name), p->price, 1, p->currency);
    return rc == DB_OK ? orders__created(db, r, "job plans.cycle", str_c(id)) : rc;
}

struct cycle_ctx {
    str_t user;
    int64_t end;
    bool renew;
    const char *outcome;
};

static int cycle_renew(struct db *db, struct cycle_ctx *c, const struct sub *s)
{
    struct credits_plan p;
    struct db_res *res;
    char locale[8] = "en", id[UUID_STR_LEN + 1];
    if (s->cancel || s->renewal[0]) {
        c->outcome = s->cancel ? "cancelled" : "renewal exists";
        return DB_OK;
    }
    if (credits_plan_find(str_c(s->plan), &p))
        return DB_ERR;
    int rc = db_query(db,
                      "SELECT u.locale, s.payment_method IS NOT NULL FROM users u JOIN credit_subscriptions s "
                      "ON s.user_id = u.id WHERE u.id = ?",
                      DB_ARGS(DBA_TEXT(c->user)), &res);
    if (rc != DB_OK)
        return rc;
    bool card = false;
    if ((rc = db_next(res)) == 1) {
        if (!db_isnull(res, 0))
            (void)str_copy(locale, db_text(res, 0).p, sizeof(locale));
        card = db_int(res, 1) != 0;
    }
    db_res_free(res);
    if (rc < 0)
        return rc;
    if (!card) { /* nothing to charge: the plan ends at period end */
        c->outcome = "no card";
        return db_exec(db, "UPDATE credit_subscriptions SET renewal_status = 'failed' WHERE user_id = ?",
                       DB_ARGS(DBA_TEXT(c->user)), NULL);
    }
    if ((rc = plan_order(db, NULL, c->user, locale, &p, true, id)) != DB_OK)
        return rc;
    rc = db_exec(db, "UPDATE credit_subscriptions SET renewal_status = 'pending', updated_at = ms_ts(?) WHERE user_id = ?",
                 DB_ARGS(DBA_INT(time_now_ms()), DBA_TEXT(c->user)), NULL);
    if (rc == DB_OK)
        rc = orders__stripe_enqueue_intent(db, str_c(id));
    c->outcome = "renewal ordered";
    return rc == DB_OK ? audit_sub(db, NULL, "subscription.renew", c->user, p.name, id) : rc;
}

/* The plan drops to free now (ended_reason why); an unpaid renewal can no
 * longer pay a period that is over: it is cancelled. */
static int end_now(struct db *db, str_t user, const char *why)
{
    struct db_res *res;
    char ids[8][UUID_STR_LEN + 1];
    size_t n = 0;
    int rc = db_exec(db,
                     "UPDATE credit_subscriptions SET plan = 'free', period_start = NULL, period_end = NULL, "
                     "cancel_at_period_end = ?, renewal_status = NULL, ended_reason = ?, updated_at = ms_ts(?) "
                     "WHERE user_id = ?",
                     DB_ARGS(DBA_BOOL(false), DBA_CSTR(why), DBA_INT(time_now_ms()), DBA_TEXT(user)), NULL);
    if (rc != DB_OK)
        return rc;
    rc = db_query(db,
                  "SELECT id FROM orders WHERE user_id = ? AND kind = 'plan' AND renewal = ? AND status = 'pending' "
                  "ORDER BY id LIMIT 8",
                  DB_ARGS(DBA_TEXT(user), DBA_BOOL(true)), &res);
    if (rc != DB_OK)
        return rc;
    while (n < ARRAY_LEN(ids) && (rc = db_next(res)) == 1)
        (void)str_copy(ids[n++], db_text(res, 0).p, sizeof(ids[0]));
    db_res_free(res);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        rc = orders__transition(db, NULL, "job plans.cycle", str_c(ids[i]), "cancelled", "subscription_ended",
                                "pending", NULL);
        if (rc < 0)
            return rc;
    }
    return DB_OK;
}

static int cycle_end(struct db *db, struct cycle_ctx *c, const struct sub *s)
{
    const char *why = s->cancel                        ? "cancelled"
                      : !strcmp(s->renewal, "failed")   ? "renewal_failed"
                      : !strcmp(s->renewal, "refunded") ? "refunded"
                                                        : "not_renewed";
    int rc = end_now(db, c->user, why);
    if (rc != DB_OK)
        return rc;
    c->outcome = why;
    return audit_sub(db, NULL, "subscription.end", c->user, s->plan, why);
}

int orders__plan_refunded(struct db *db, str_t order_id)
{
    struct db_res *res;
    char user[UUID_STR_LEN + 1], plan[16], latest[UUID_STR_LEN + 1] = "";
    bool found;
    int rc = plan_order_read(db, order_id, user, plan, &found);
    if (rc != DB_OK || !found)
        return rc;
    struct sub s;
    struct credits_plan p;
    if ((rc = sub_ensure(db, str_c(user))) != DB_OK || (rc = sub_read(db, str_c(user), true, &s)) != DB_OK)
        return rc;
    /* the order that paid the running period is the last plan order paid
     * (each payment sets the period); an older one's period is over */
    rc = db_query(db,
                  "SELECT id FROM orders WHERE user_id = ? AND kind = 'plan' AND paid_at IS NOT NULL "
                  "ORDER BY paid_at DESC, id DESC LIMIT 1",
                  DB_ARGS(DBA_CSTR(user)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1)
        (void)str_copy(latest, db_text(res, 0).p, sizeof(latest));
    db_res_free(res);
    if (rc < 0)
        return rc;
    if (!str_eq(str_c(latest), order_id) || !sub_paid(&s) || strcmp(s.plan, plan) ||
        credits_plan_find(str_c(plan), &p))
        return DB_OK; /* an older period, or a plan that ended already: the running one stays */
    int64_t now = time_now_ms();
    const char *detail;
    if (s.start > now) {
        /* a renewal paid ahead and refunded before its period began: the
         * period before it runs to its end, then the plan drops to free */
        detail = "refunded before its period began: the plan ends at the end of the previous period";
        rc = db_exec(db,
                     "UPDATE credit_subscriptions SET period_start = ms_ts(?), period_end = ms_ts(?), "
                     "renewal_status = 'refunded', updated_at = ms_ts(?) WHERE user_id = ?",
                     DB_ARGS(DBA_INT(period_step(s.start, -1)), DBA_INT(s.start), DBA_INT(now), DBA_CSTR(user)), NULL);
    } else {
        detail = "the running period was refunded: the plan ends now";
        rc = end_now(db, str_c(user), "refunded");
    }
    /* the period's credits go back as far as they are unspent */
    if (rc == DB_OK)
        rc = orders__credit_take_back(db, str_c(user), p.monthly, order_id);
    return rc == DB_OK ? audit_sub(db, NULL, "subscription.refund", str_c(user), plan, detail) : rc;
}

static int tx_cycle(struct db *db, void *arg)
{
    struct cycle_ctx *c = arg;
    struct sub s;
    int rc = sub_read(db, c->user, true, &s);
    if (rc != DB_OK)
        return rc;
    if (!sub_paid(&s) || s.end != c->end) {
        c->outcome = "period moved on";
        return DB_OK;
    }
    return c->renew ? cycle_renew(db, c, &s) : cycle_end(db, c, &s);
}

static enum job_result job_cycle(struct job *j, struct buf *result, struct buf *error)
{
    const json_t *u = json_object_get(j->payload, "user_id"), *e = json_object_get(j->payload, "period_end"),
                 *st = json_object_get(j->payload, "step");
    if (!json_is_string(u) || !json_is_integer(e) || !json_is_string(st)) {
        (void)buf_puts(error, "payload needs user_id, period_end and step");
        return JOB_FAIL;
    }
    struct cycle_ctx c = {.user = str_make(json_string_value(u), json_string_length(u)),
                          .end = json_integer_value(e), .renew = !strcmp(json_string_value(st), "renew")};
    if (db_tx(j->db, DB_TX_WRITE, tx_cycle, &c) != DB_OK) {
        (void)buf_printf(error, "plans.cycle: %s", db_errmsg(j->db));
        return JOB_RETRY;
    }
    (void)buf_printf(result, "{\"outcome\":\"%s\"}", c.outcome ? c.outcome : "");
    return JOB_OK;
}

/* ---- routes ---- */

static void jw_ms_or_null(struct jw *w, int64_t ms)
{
    if (ms)
        jw_time(w, ms);
    else
        jw_null(w);
}

static int write_sub(struct req *r)
{
    struct sub s;
    struct credits_plan p;
    int rc = sub_read(r->db, r->user_id, false, &s);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (credits_plan_find(str_c(s.plan), &p))
        (void)credits_plan_find(STRLIT("free"), &p);
    struct db_res *res;
    rc = db_query(r->db,
                  "SELECT id FROM orders WHERE user_id = ? AND kind = 'plan' AND renewal = ? AND status = 'pending' "
                  "ORDER BY created_at DESC, id DESC LIMIT 1",
                  DB_ARGS(DBA_TEXT(r->user_id), DBA_BOOL(false)), &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    struct jw *w = &r->w;
    jw_obj_begin(w);
    jw_key(w, "plan");
    jw_cstr(w, p.name);
    jw_key(w, "monthly_credits");
    jw_int(w, p.monthly);
    jw_key(w, "ai_requests_per_minute");
    jw_int(w, p.ai_per_min);
    jw_key(w, "paid");
    jw_bool(w, p.paid);
    jw_key(w, "price");
    jw_int(w, p.price);
    jw_key(w, "currency");
    jw_cstr(w, p.currency);
    jw_key(w, "current_period_start");
    jw_ms_or_null(w, p.paid ? s.start : 0);
    jw_key(w, "current_period_end");
    jw_ms_or_null(w, p.paid ? s.end : 0);
    jw_key(w, "cancel_at_period_end");
    jw_bool(w, s.cancel);
    jw_key(w, "renewal");
    if (s.renewal[0])
        jw_cstr(w, s.renewal);
    else
        jw_null(w);
    jw_key(w, "ended_reason");
    if (s.ended[0])
        jw_cstr(w, s.ended);
    else
        jw_null(w);
    jw_key(w, "pending_order_id");
    if ((rc = db_next(res)) == 1)
        jw_str(w, db_text(res, 0));
    else
        jw_null(w);
    jw_obj_end(w);
    db_res_free(res);
    return rc < 0 ? http_db_fail(r, rc) : 0;
}

static int h_get(struct req *r) { return write_sub(r); }

static int tx_cancel(struct req *r, void *arg)
{
    (void)arg;
    struct sub s;
    int rc = sub_read(r->db, r->user_id, true, &s);
    if (rc != DB_OK || !sub_paid(&s) || s.cancel)
        return rc;
    rc = db_exec(r->db, "UPDATE credit_subscriptions SET cancel_at_period_end = ?, updated_at = ms_ts(?) WHERE user_id = ?",
                 DB_ARGS(DBA_BOOL(true), DBA_INT(time_now_ms()), DBA_TEXT(r->user_id)), NULL);
    return rc == DB_OK ? audit_sub(r->db, r, "subscription.cancel", r->user_id, s.plan, "at period end") : rc;
}

static int h_delete(struct req *r)
{
    if (req_tx(r, DB_TX_WRITE, tx_cancel, NULL))
        return HTTP_EFAIL;
    return write_sub(r);
}

struct subscribe_ctx {
    struct credits_plan p;
    char id[UUID_STR_LEN + 1];
    int status; /* 201 new order, 200 the unpaid one again, 0 resumed (answer the subscription) */
};

static int tx_subscribe(struct req *r, void *arg)
{
    struct subscribe_ctx *c = arg;
    struct sub s;
    int rc = sub_ensure(r->db, r->user_id);
    if (rc == DB_OK)
        rc = sub_read(r->db, r->user_id, true, &s);
    if (rc != DB_OK)
        return rc;
    if (sub_paid(&s) && !strcmp(s.plan, c->p.name)) {
        if (!s.cancel) {
            char until[TIME_RFC3339_LEN + 1];
            time_format_rfc3339(s.end, until);
            return http_fail(r, 409, "CONFLICT", "the %s plan is already running (until %s)", c->p.name, until);
        }
        c->status = 0; /* undo the cancel: the renewal will charge as before */
        rc = db_exec(r->db, "UPDATE credit_subscriptions SET cancel_at_period_end = ?, updated_at = ms_ts(?) "
                            "WHERE user_id = ?",
                     DB_ARGS(DBA_BOOL(false), DBA_INT(time_now_ms()), DBA_TEXT(r->user_id)), NULL);
        return rc == DB_OK ? audit_sub(r->db, r, "subscription.resume", r->user_id, s.plan, NULL) : rc;
    }
    /* one unpaid order per plan: asking again answers it again */
    struct db_res *res;
    rc = db_query(r->db,
                  "SELECT id FROM orders WHERE user_id = ? AND kind = 'plan' AND plan = ? AND renewal = ? "
                  "AND status = 'pending' ORDER BY id LIMIT 1",
                  DB_ARGS(DBA_TEXT(r->user_id), DBA_CSTR(c->p.name), DBA_BOOL(false)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1) {
        (void)str_copy(c->id, db_text(res, 0).p, sizeof(c->id));
        c->status = 200;
    }
    db_res_free(res);
    if (rc != 0)
        return rc < 0 ? rc : DB_OK;
    c->status = 201;
    return plan_order(r->db, r, r->user_id, NULL, &c->p, false, c->id);
}

static int h_post(struct req *r)
{
    const json_t *plan = json_object_get(r->body, "plan");
    struct subscribe_ctx c = {.status = 0};
    if (credits_plan_find(str_make(json_string_value(plan), json_string_length(plan)), &c.p))
        return http_invalid(r, "plan", "must be free, pro or business");
    if (identity_is_guest(r))
        return http_fail(r, 403, "FORBIDDEN", "guests have no subscription: register first");
    if (!c.p.paid)
        return h_delete(r);
    if (req_tx(r, DB_TX_WRITE, tx_subscribe, &c))
        return HTTP_EFAIL;
    return c.status ? orders__respond(r, str_c(c.id), c.status) : write_sub(r);
}

static const char *const plan_names[] = {"free", "pro", "business", NULL};
static const struct json_field sub_f[] = {
    {.name = "plan", .type = JF_STRING, .flags = JF_REQUIRED, .enum_values = plan_names,
     .description = "free cancels at period end; a paid plan answers the order that pays its first period"},
    {0}};
static const struct json_schema sub_s = {sub_f, false};

static struct openapi_schema sub_schema = {
    .name = "Subscription",
    .json = OPENAPI_JSON({
        "type" : "object",
        "required" : [
            "plan", "monthly_credits", "ai_requests_per_minute", "paid", "price", "currency", "current_period_start",
            "current_period_end", "cancel_at_period_end", "renewal", "ended_reason", "pending_order_id"
        ],
        "properties" : {
            "plan" : {"type" : "string", "enum" : [ "free", "pro", "business" ]},
            "monthly_credits" : {"type" : "integer"},
            "ai_requests_per_minute" : {"type" : "integer"},
            "paid" : {"type" : "boolean"},
            "price" : {"type" : "integer", "description" : "per period, minor units"},
            "currency" : {"type" : "string"},
            "current_period_start" : {"type" : [ "string", "null" ], "format" : "date-time"},
            "current_period_end" : {"type" : [ "string", "null" ], "format" : "date-time"},
            "cancel_at_period_end" : {"type" : "boolean"},
            "renewal" : {"type" : [ "string", "null" ], "enum" : [ "pending", "failed", "refunded", null ]},
            "ended_reason" : {"type" : [ "string", "null" ], "enum" : [ "cancelled", "renewal_failed", "not_renewed", "refunded", null ]},
            "pending_order_id" : {"type" : [ "string", "null" ], "format" : "uuid",
                                  "description" : "an unpaid order for a paid plan, if any"}
        }
    })};
#define SUB_OUT OPENAPI_JSON({"$ref" : "#/components/schemas/Subscription"})

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/me/subscription", .output = SUB_OUT, .handler = h_get, .auth = AUTH_USER, .rl = RL_READ,
     .summary = "The caller's plan, its current period, cancel_at_period_end and the renewal's state",
     .tag = "credits"},
    {.method = "POST", .pattern = "/api/v1/me/subscription", .output = OPENAPI_JSON({"oneOf" : [ {"$ref" : "#/components/schemas/Order"}, {"$ref" : "#/components/schemas/Subscription"} ],
                            "description" : "201/200: the order that pays the plan; 200 after undoing a cancel: the subscription"}), .handler = h_post, .auth = AUTH_USER, .rl = RL_WRITE,
     .input = &sub_s, .flags = ROUTE_IDEMPOTENT,
     .summary = "Choose a plan: a paid plan answers 201 with a pending order of kind plan (pay it with "
                "/orders/{id}/pay; the plan starts when Stripe reports the payment); 409 when it already runs",
     .tag = "credits"},
    {.method = "DELETE", .pattern = "/api/v1/me/subscription", .output = SUB_OUT, .handler = h_delete, .auth = AUTH_USER,
     .rl = RL_WRITE, .summary = "Cancel the paid plan at the end of its period (no renewal)", .tag = "credits"},
};

void orders__plans_register_routes(void)
{
    openapi_schema_add(&sub_schema);
    router_add(routes, ARRAY_LEN(routes));
}

void orders__plans_register_jobs(void)
{
    static const struct job_kind kind = {.kind = "plans.cycle", .handler = job_cycle, .queue = "payments",
                                         .timeout_ms = 60000};
    jobs_register(&kind);
}
