/*
 * credits.c — the ledger (see credits.h), its routes (API.md §4), plans and
 * the monthly grant, and `temel ledger verify`.
 *
 * Moving credit is five statements, all inside the caller's transaction:
 *   reserve  UPDATE accounts SET reserved += a WHERE available >= a   (row lock; 0 rows = short)
 *            INSERT reserve row
 *   confirm  INSERT confirm row ... ON CONFLICT DO NOTHING            (unique per reservation:
 *   refund   INSERT refund row  ... ON CONFLICT DO NOTHING             the database enforces once)
 *            then move the account only if the row went in
 * and the log is append-only (triggers refuse UPDATE and DELETE).
 */
#include <stdio.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "db/db.h"
#include "db/dbjson.h"
#include "http/http.h"
#include "jobs/jobs.h"
#include "modules/audit/audit.h"
#include "modules/credits/credits.h"
#include "modules/users/identity.h"

#include "core/banned.h"

/* ---- pricing and plans ---- */

struct price {
    const char *operation;
    int64_t cost;
};
static const struct price prices[] = {
    {"chat", 1}, {"generate", 2}, {"resume", 3}, {"cover-letter", 2}, {"image", 5},
};

/* free: credits granted on the 1st of each month (and on first use); paid
 * plans: granted with each paid period (orders/plans.c), price per period */
static const struct credits_plan plans[] = {
    {"free", 50, 20, false, 0, "TRY"},
    {"pro", 1000, 60, true, 19900, "TRY"},
    {"business", 5000, 300, true, 79900, "TRY"},
};

int64_t credits_price(const char *operation)
{
    for (size_t i = 0; i < ARRAY_LEN(prices); i++)
        if (!strcmp(prices[i].operation, operation))
            return prices[i].cost;
    return -1;
}

static const struct credits_plan *plan_by_name(str_t name)
{
    for (size_t i = 0; i < ARRAY_LEN(plans); i++)
        if (str_eq(name, str_c(plans[i].name)))
            return &plans[i];
    return NULL;
}

int credits_plan_find(str_t name, struct credits_plan *out)
{
    const struct credits_plan *p = plan_by_name(name);
    if (!p)
        return -1;
    *out = *p;
    return 0;
}

/* ---- the ledger ---- */

/* "monthly:YYYY-MM" of now, from the RFC 3339 form */
static void month_ref(int64_t now_ms, char out[24])
{
    char ts[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(now_ms, ts);
    memcpy(out, "monthly:", 8);
    memcpy(out + 8, ts, 7);
    out[15] = '\0';
}

static int insert_tx(struct db *db, str_t user_id, const char *type, int64_t amount, const char *reservation_id,
                     const char *reference, char *out_id, int64_t *changed)
{
    char id[UUID_STR_LEN + 1];
    uuid7_str(id);
    if (out_id)
        memcpy(out_id, id, UUID_STR_LEN + 1);
    return db_exec(db,
                   "INSERT INTO credit_transactions (id, user_id, type, amount, reservation_id, reference, created_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ms_ts(?)) ON CONFLICT DO NOTHING",
                   DB_ARGS(DBA_CSTR(id), DBA_TEXT(user_id), DBA_CSTR(type), DBA_INT(amount),
                           reservation_id ? DBA_CSTR(reservation_id) : DBA_NULL, DBA_CSTR(reference ? reference : ""),
                           DBA_INT(time_now_ms())),
                   changed);
}

/* A grant under a reference a unique index guards: the log row goes in
 * first (ON CONFLICT DO NOTHING) and the balance moves only if it did. */
static int grant_once(struct db *db, str_t user_id, int64_t amount, const char *ref, bool *applied)
{
    int64_t changed = 0;
    *applied = false;
    int rc = insert_tx(db, user_id, "grant", amount, NULL, ref, NULL, &changed);
    if (rc != DB_OK || changed == 0)
        return rc;
    *applied = true;
    return db_exec(db, "UPDATE credit_accounts SET balance = balance + ?, updated_at = ms_ts(?) WHERE user_id = ?",
                   DB_ARGS(DBA_INT(amount), DBA_INT(time_now_ms()), DBA_TEXT(user_id)), NULL);
}

/* The plan's grant for this month, once (the unique index decides). */
static int grant_month(struct db *db, str_t user_id, const struct credits_plan *p, int64_t now)
{
    char ref[24];
    bool applied;
    month_ref(now, ref);
    return grant_once(db, user_id, p->monthly, ref, &applied);
}

/* Create the account on first use; non-guest users get this month's free grant. */
static int ensure_account(struct db *db, str_t user_id)
{
    int64_t changed = 0, now = time_now_ms(), n = 0;
    bool found;
    int rc = db_exec(db, "INSERT INTO credit_accounts (user_id, updated_at) VALUES (?, ms_ts(?)) ON CONFLICT DO NOTHING",
                     DB_ARGS(DBA_TEXT(user_id), DBA_INT(now)), &changed);
    if (rc != DB_OK || changed == 0)
        return rc;
    rc = db_query_int(db, "SELECT count(*) FROM users WHERE id = ? AND role <> 'guest' AND status = 'active'",
                      DB_ARGS(DBA_TEXT(user_id)), &n, &found);
    if (rc != DB_OK || n == 0)
        return rc;
    return grant_month(db, user_id, &plans[0], now);
}

int credits_reserve(struct db *db, str_t user_id, int64_t amount, const char *reference, char *out_id)
{
    int64_t changed = 0;
    int rc;
    if (!db_in_tx(db))
        BUG("credits_reserve outside a transaction");
    ASSERT(amount > 0);
    if ((rc = ensure_account(db, user_id)) != DB_OK)
        return rc;
    rc = db_exec(db,
                 "UPDATE credit_accounts SET reserved = reserved + ?, updated_at = ms_ts(?) "
                 "WHERE user_id = ? AND balance - reserved >= ?",
                 DB_ARGS(DBA_INT(amount), DBA_INT(time_now_ms()), DBA_TEXT(user_id), DBA_INT(amount)), &changed);
    if (rc != DB_OK)
        return rc;
    if (changed != 1)
        return CREDITS_INSUFFICIENT;
    return insert_tx(db, user_id, "reserve", amount, NULL, reference, out_id, NULL);
}

static int settle(struct db *db, str_t reservation_id, bool confirm, bool *applied)
{
    struct db_res *res;
    char uid[64] = {0}, rid[64] = {0};
    int64_t amount, changed = 0;
    int rc;
    *applied = false;
    if (!db_in_tx(db))
        BUG("credits settle outside a transaction");
    if (reservation_id.len >= sizeof(rid))
        return CREDITS_NOT_FOUND;
    memcpy(rid, reservation_id.p, reservation_id.len);
    rc = db_query(db, "SELECT user_id, amount FROM credit_transactions WHERE id = ? AND type = 'reserve'",
                  DB_ARGS(DBA_CSTR(rid)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? rc : CREDITS_NOT_FOUND;
    }
    str_t u = db_text(res, 0);
    memcpy(uid, u.p, u.len < sizeof(uid) - 1 ? u.len : sizeof(uid) - 1);
    amount = db_int(res, 1);
    db_res_free(res);
    rc = insert_tx(db, str_c(uid), confirm ? "confirm" : "refund", amount, rid, NULL, NULL, &changed);
    if (rc != DB_OK || changed == 0) /* already settled: nothing moves */
        return rc;
    if (confirm)
        rc = db_exec(db,
                     "UPDATE credit_accounts SET balance = balance - ?, reserved = reserved - ?, updated_at = ms_ts(?) "
                     "WHERE user_id = ?",
                     DB_ARGS(DBA_INT(amount), DBA_INT(amount), DBA_INT(time_now_ms()), DBA_CSTR(uid)), &changed);
    else
        rc = db_exec(db, "UPDATE credit_accounts SET reserved = reserved - ?, updated_at = ms_ts(?) WHERE user_id = ?",
                     DB_ARGS(DBA_INT(amount), DBA_INT(time_now_ms()), DBA_CSTR(uid)), &changed);
    if (rc == DB_OK && changed != 1)
        BUG("a reservation without an account");
    *applied = rc == DB_OK;
    return rc;
}

int credits_confirm(struct db *db, str_t reservation_id, bool *applied) { return settle(db, reservation_id, true, applied); }
int credits_refund(struct db *db, str_t reservation_id, bool *applied) { return settle(db, reservation_id, false, applied); }

int credits_add(struct db *db, str_t user_id, const char *type, int64_t amount, const char *reference, char *out_id)
{
    int64_t changed = 0;
    int rc;
    if (!db_in_tx(db))
        BUG("credits_add outside a transaction");
    if (strcmp(type, "grant") && strcmp(type, "purchase") && strcmp(type, "adjust"))
        BUG("credits_add: bad type");
    if ((rc = ensure_account(db, user_id)) != DB_OK)
        return rc;
    /* a negative adjust may not take available below zero */
    rc = db_exec(db,
                 "UPDATE credit_accounts SET balance = balance + ?, updated_at = ms_ts(?) "
                 "WHERE user_id = ? AND balance - reserved + ? >= 0",
                 DB_ARGS(DBA_INT(amount), DBA_INT(time_now_ms()), DBA_TEXT(user_id), DBA_INT(amount)), &changed);
    if (rc != DB_OK)
        return rc;
    if (changed != 1)
        return CREDITS_INSUFFICIENT;
    return insert_tx(db, user_id, type, amount, NULL, reference, out_id, NULL);
}

int credits_grant_period(struct db *db, str_t user_id, int64_t amount, str_t order_id, bool *applied)
{
    char ref[64];
    if (!db_in_tx(db))
        BUG("credits_grant_period outside a transaction");
    ASSERT(amount > 0);
    (void)snprintf(ref, sizeof(ref), "plan:%.*s", STR_FMT(order_id));
    int rc = ensure_account(db, user_id);
    return rc == DB_OK ? grant_once(db, user_id, amount, ref, applied) : rc;
}

int credits_get(struct db *db, str_t user_id, struct credits_balance *out)
{
    struct db_res *res;
    int rc = db_query(db, "SELECT balance, reserved FROM credit_accounts WHERE user_id = ?", DB_ARGS(DBA_TEXT(user_id)),
                      &res);
    memset(out, 0, sizeof(*out));
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1) {
        out->balance = db_int(res, 0);
        out->reserved = db_int(res, 1);
        out->available = out->balance - out->reserved;
    }
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

/* ---- routes ---- */

static int current_plan(struct db *db, str_t user_id, const struct credits_plan **out);


/* Read-only: an account opens with its free grant when the user is created
 * (on_user_created); a user from before that who never spent has no account
 * yet, and the grant they will get on first use is shown as their balance
 * (routes other than the AI path and the admin grant never write the ledger). */
static int h_balance(struct req *r)
{
    struct credits_balance b;
    const struct credits_plan *p;
    struct db_res *res;
    bool has_account = false;
    int rc = db_query(r->db, "SELECT balance, reserved FROM credit_accounts WHERE user_id = ?",
                      DB_ARGS(DBA_TEXT(r->user_id)), &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    memset(&b, 0, sizeof(b));
    if ((rc = db_next(res)) == 1) {
        has_account = true;
        b.balance = db_int(res, 0);
        b.reserved = db_int(res, 1);
    }
    db_res_free(res);
    if (rc < 0)
        return http_db_fail(r, rc);
    if (!has_account && !identity_is_guest(r))
        b.balance = plans[0].monthly;
    b.available = b.balance - b.reserved;
    if ((rc = current_plan(r->db, r->user_id, &p)) != DB_OK)
        return http_db_fail(r, rc);
    jw_obj_begin(&r->w);
    jw_key(&r->w, "balance");
    jw_int(&r->w, b.balance);
    jw_key(&r->w, "reserved");
    jw_int(&r->w, b.reserved);
    jw_key(&r->w, "available");
    jw_int(&r->w, b.available);
    jw_key(&r->w, "plan");
    jw_cstr(&r->w, p->name);
    jw_obj_end(&r->w);
    return 0;
}

static void write_tx(struct jw *w, const struct db_res *res)
{
    static const struct http_col cols[] = {{"id", COL_TEXT},        {"type", COL_TEXT},      {"amount", COL_INT},
                                           {"reservation_id", COL_TEXT}, {"reference", COL_TEXT}, {"created_at", COL_TIME},
                                           {NULL, 0}};
    http_write_row(w, res, cols);
}

/* The admin's ledger names whose entry each one is. */
static void write_admin_tx(struct jw *w, const struct db_res *res)
{
    static const struct http_col cols[] = {{"id", COL_TEXT},        {"type", COL_TEXT},      {"amount", COL_INT},
                                           {"reservation_id", COL_TEXT}, {"reference", COL_TEXT}, {"created_at", COL_TIME},
                                           {"user_id", COL_TEXT},   {NULL, 0}};
    http_write_row(w, res, cols);
}

static bool tx_type_valid(str_t type)
{
    static const char *const types[] = {"reserve", "confirm", "refund", "grant", "purchase", "adjust"};
    for (size_t i = 0; i < ARRAY_LEN(types); i++)
        if (str_eq(type, str_c(types[i])))
            return true;
    return false;
}

static int h_transactions(struct req *r)
{
    static const char *const allowed[] = {"type", NULL};
    const str_t *type = req_query(r, "type");
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    if (type && !tx_type_valid(*type))
        return http_invalid(r, "type", "must be reserve, confirm, refund, grant, purchase or adjust");
    db_arg args[4] = {DBA_TEXT(r->user_id), type ? DBA_TEXT(*type) : DBA_NULL};
    const struct http_list_query q = {"id, type, amount, reservation_id, reference, ts_ms(created_at)",
                                      "FROM credit_transactions",
                                      type ? " WHERE user_id = ? AND type = ?" : " WHERE user_id = ?",
                                      "created_at DESC, id DESC", write_tx};
    return http_list(r, &q, args, type ? 2 : 1, ARRAY_LEN(args));
}

/* The ledger of one user (or of everyone) for the admin dashboard. */
static int h_admin_transactions(struct req *r)
{
    static const char *const allowed[] = {"user_id", "type", NULL};
    const str_t *user = req_query(r, "user_id"), *type = req_query(r, "type");
    struct buf *where = req_buf(r, 128);
    db_arg args[4];
    size_t n = 0;
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    if (user && !uuid_valid(*user))
        return http_invalid(r, "user_id", "must be a user id");
    if (type && !tx_type_valid(*type))
        return http_invalid(r, "type", "must be reserve, confirm, refund, grant, purchase or adjust");
    (void)buf_puts(where, " WHERE 1 = 1");
    if (user) {
        (void)buf_puts(where, " AND user_id = ?");
        args[n++] = DBA_TEXT(*user);
    }
    if (type) {
        (void)buf_puts(where, " AND type = ?");
        args[n++] = DBA_TEXT(*type);
    }
    const struct http_list_query q = {"id, type, amount, reservation_id, reference, ts_ms(created_at), user_id",
                                      "FROM credit_transactions", buf_cstr(where), "created_at DESC, id DESC",
                                      write_admin_tx};
    return http_list(r, &q, args, n, ARRAY_LEN(args));
}

static void write_plan(struct jw *w, const struct credits_plan *p)
{
    jw_obj_begin(w);
    jw_key(w, "plan");
    jw_cstr(w, p->name);
    jw_key(w, "monthly_credits");
    jw_int(w, p->monthly);
    jw_key(w, "ai_requests_per_minute");
    jw_int(w, p->ai_per_min);
    jw_key(w, "paid");
    jw_bool(w, p->paid);
    jw_key(w, "price");
    jw_int(w, p->price);
    jw_key(w, "currency");
    jw_cstr(w, p->currency);
    jw_obj_end(w);
}

static int h_pricing(struct req *r)
{
    jw_obj_begin(&r->w);
    jw_key(&r->w, "operations");
    jw_arr_begin(&r->w);
    for (size_t i = 0; i < ARRAY_LEN(prices); i++) {
        jw_obj_begin(&r->w);
        jw_key(&r->w, "operation");
        jw_cstr(&r->w, prices[i].operation);
        jw_key(&r->w, "cost");
        jw_int(&r->w, prices[i].cost);
        jw_obj_end(&r->w);
    }
    jw_arr_end(&r->w);
    jw_key(&r->w, "plans");
    jw_arr_begin(&r->w);
    for (size_t i = 0; i < ARRAY_LEN(plans); i++)
        write_plan(&r->w, &plans[i]);
    jw_arr_end(&r->w);
    jw_obj_end(&r->w);
    return 0;
}

struct grant_ctx {
    str_t user_id, reason;
    int64_t amount;
    char id[UUID_STR_LEN + 1];
};

static int tx_grant(struct req *r, void *arg)
{
    struct grant_ctx *c = arg;
    struct db *db = r->db;
    int64_t n = 0;
    bool found;
    int rc = db_query_int(db, "SELECT count(*) FROM users WHERE id = ?", DB_ARGS(DBA_TEXT(c->user_id)), &n, &found);
    if (rc != DB_OK)
        return rc;
    if (n == 0)
        return http_invalid(r, "user_id", "no such user");
    struct buf ref = BUF_INIT(300);
    (void)buf_puts(&ref, "admin: ");
    (void)buf_put(&ref, c->reason);
    rc = credits_add(db, c->user_id, "grant", c->amount, buf_cstr(&ref), c->id);
    buf_free(&ref);
    if (rc != DB_OK)
        return rc;
    json_t *after = json_pack("{s:s%,s:I,s:s%}", "user_id", c->user_id.p, c->user_id.len, "amount", (json_int_t)c->amount,
                              "reason", c->reason.p, c->reason.len);
    struct audit_entry e = {.action = "credits.grant", .category = "credits", .target_type = "user",
                            .target_id = c->user_id, .after = after, .success = true};
    rc = audit_record_req(r, &e);
    json_decref(after);
    return rc;
}

static int h_grant(struct req *r)
{
    const json_t *uid = json_object_get(r->body, "user_id"), *reason = json_object_get(r->body, "reason");
    struct grant_ctx c = {.user_id = str_make(json_string_value(uid), json_string_length(uid)),
                          .reason = str_make(json_string_value(reason), json_string_length(reason)),
                          .amount = json_integer_value(json_object_get(r->body, "amount"))};
    if (req_tx(r, DB_TX_WRITE, tx_grant, &c))
        return HTTP_EFAIL;
    r->status = 201;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "id");
    jw_cstr(&r->w, c.id);
    jw_key(&r->w, "user_id");
    jw_str(&r->w, c.user_id);
    jw_key(&r->w, "type");
    jw_cstr(&r->w, "grant");
    jw_key(&r->w, "amount");
    jw_int(&r->w, c.amount);
    jw_key(&r->w, "reason");
    jw_str(&r->w, c.reason);
    jw_obj_end(&r->w);
    return 0;
}

/* ---- subscription ---- */

static int current_plan(struct db *db, str_t user_id, const struct credits_plan **out)
{
    struct db_res *res;
    int rc = db_query(db, "SELECT plan FROM credit_subscriptions WHERE user_id = ?", DB_ARGS(DBA_TEXT(user_id)), &res);
    *out = &plans[0];
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1) {
        const struct credits_plan *p = plan_by_name(db_text(res, 0));
        if (p)
            *out = p;
    }
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

int credits_plan_of(struct db *db, str_t user_id, struct credits_plan *out)
{
    const struct credits_plan *p;
    int rc = current_plan(db, user_id, &p);
    *out = *p;
    return rc;
}

/* ---- monthly grant job ---- */

struct monthly_ctx {
    str_t user_id;
    int64_t now;
};

static int tx_monthly(struct db *db, void *arg)
{
    struct monthly_ctx *c = arg;
    const struct credits_plan *p;
    int rc = ensure_account(db, c->user_id);
    if (rc == DB_OK)
        rc = current_plan(db, c->user_id, &p);
    if (rc == DB_OK && p->paid)
        return DB_OK; /* a paid plan's credits come with each paid period */
    return rc == DB_OK ? grant_month(db, c->user_id, p, c->now) : rc;
}

/* Every active non-guest user gets their plan's grant for this month, once:
 * one short transaction per user, and the unique index on the month's
 * reference makes a re-run (or a second instance) harmless. */
static enum job_result monthly_grant(struct job *j, struct buf *result, struct buf *error)
{
    char last[64] = "";
    int64_t users = 0, now = time_now_ms();
    for (;;) {
        struct db_res *res;
        char ids[100][40];
        int n = 0, rc;
        rc = db_query(j->db,
                      "SELECT id FROM users WHERE role <> 'guest' AND status = 'active' AND id > ? ORDER BY id LIMIT 100",
                      DB_ARGS(DBA_CSTR(last)), &res);
        if (rc != DB_OK) {
            (void)buf_printf(error, "listing users: %s", db_errmsg(j->db));
            return JOB_RETRY;
        }
        while (n < 100 && (rc = db_next(res)) == 1) {
            str_t id = db_text(res, 0);
            size_t l = id.len < 39 ? id.len : 39;
            memcpy(ids[n], id.p, l);
            ids[n][l] = '\0';
            n++;
        }
        db_res_free(res);
        if (rc < 0) {
            (void)buf_printf(error, "listing users: %s", db_errmsg(j->db));
            return JOB_RETRY;
        }
        for (int i = 0; i < n; i++) {
            struct monthly_ctx c = {str_c(ids[i]), now};
            if ((rc = db_tx(j->db, DB_TX_WRITE, tx_monthly, &c)) != DB_OK) {
                (void)buf_printf(error, "granting: %s", db_errmsg(j->db));
                return JOB_RETRY;
            }
        }
        users += n;
        if (n < 100)
            break;
        memcpy(last, ids[n - 1], sizeof(ids[0]));
    }
    (void)buf_printf(result, "{\"users\":%lld}", (long long)users);
    return JOB_OK;
}

/* ---- temel ledger verify ---- */

int credits_verify(struct db *db, struct buf *out)
{
    struct db_res *res;
    int64_t accounts = 0, bad = 0;
    /* recompute every account from the log, and check every settlement */
    int rc = db_query(db,
                      "SELECT a.user_id, a.balance, a.reserved, "
                      " coalesce((SELECT sum(amount) FROM credit_transactions t WHERE t.user_id = a.user_id "
                      "           AND t.type IN ('grant', 'purchase', 'adjust')), 0) "
                      " - coalesce((SELECT sum(amount) FROM credit_transactions t WHERE t.user_id = a.user_id "
                      "           AND t.type = 'confirm'), 0), "
                      " coalesce((SELECT sum(r.amount) FROM credit_transactions r WHERE r.user_id = a.user_id "
                      "           AND r.type = 'reserve' AND NOT EXISTS (SELECT 1 FROM credit_transactions s "
                      "           WHERE s.reservation_id = r.id)), 0) "
                      "FROM credit_accounts a ORDER BY a.user_id",
                      DB_NOARGS, &res);
    if (rc != DB_OK)
        return rc;
    while ((rc = db_next(res)) == 1) {
        accounts++;
        int64_t bal = db_int(res, 1), resv = db_int(res, 2), want_bal = db_int(res, 3), want_resv = db_int(res, 4);
        if (bal != want_bal || resv != want_resv || bal - resv < 0) {
            bad++;
            (void)buf_printf(out, "account %s: balance %lld (log says %lld), reserved %lld (log says %lld)\n",
                             db_text(res, 0).p, (long long)bal, (long long)want_bal, (long long)resv,
                             (long long)want_resv);
        }
    }
    db_res_free(res);
    if (rc < 0)
        return rc;
    /* settlements must match their reservation (same user, same amount) */
    rc = db_query(db,
                  "SELECT s.id FROM credit_transactions s LEFT JOIN credit_transactions r ON r.id = s.reservation_id "
                  "WHERE s.type IN ('confirm', 'refund') AND (r.id IS NULL OR r.type <> 'reserve' OR "
                  "r.user_id <> s.user_id OR r.amount <> s.amount)",
                  DB_NOARGS, &res);
    if (rc != DB_OK)
        return rc;
    while ((rc = db_next(res)) == 1) {
        bad++;
        (void)buf_printf(out, "settlement %s does not match its reservation\n", db_text(res, 0).p);
    }
    db_res_free(res);
    if (rc < 0)
        return rc;
    /* log entries of users without an account */
    int64_t orphans = 0;
    bool found;
    rc = db_query_int(db,
                      "SELECT count(*) FROM credit_transactions t WHERE NOT EXISTS "
                      "(SELECT 1 FROM credit_accounts a WHERE a.user_id = t.user_id)",
                      DB_NOARGS, &orphans, &found);
    if (rc != DB_OK)
        return rc;
    if (orphans) {
        bad++;
        (void)buf_printf(out, "%lld log entries belong to no account\n", (long long)orphans);
    }
    (void)buf_printf(out, "%s: %lld accounts checked, %lld problems\n", bad ? "LEDGER BROKEN" : "ledger ok",
                     (long long)accounts, (long long)bad);
    return bad ? 1 : 0;
}

/* ---- module ---- */

static const struct json_field grant_f[] = {
    {.name = "user_id", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 64},
    {.name = "amount", .type = JF_INT, .flags = JF_REQUIRED, .min = 1, .max = 1000000000},
    {.name = "reason", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 200},
    {0}};
static const struct json_schema grant_s = {grant_f, false};
/* OpenAPI: a plan as write_plan writes it. */
static struct openapi_schema plan_schema = {
    .name = "Plan",
    .json = OPENAPI_JSON({
        "type" : "object",
        "required" : [ "plan", "monthly_credits", "ai_requests_per_minute", "paid", "price", "currency" ],
        "properties" : {
            "plan" : {"type" : "string", "enum" : [ "free", "pro", "business" ]},
            "monthly_credits" : {"type" : "integer", "minimum" : 0},
            "ai_requests_per_minute" : {"type" : "integer", "minimum" : 0},
            "paid" : {"type" : "boolean"},
            "price" : {"type" : "integer", "minimum" : 0, "description" : "per period, minor units"},
            "currency" : {"type" : "string"}
        }
    })};

static struct openapi_schema tx_schema = {
    .name = "CreditTransaction",
    .json = OPENAPI_JSON({
        "type" : "object",
        "description" : "one ledger entry (API.md §8): reserve holds credit, confirm/refund settle a reservation",
        "required" : [ "id", "type", "amount", "reservation_id", "reference", "created_at" ],
        "properties" : {
            "id" : {"type" : "string", "format" : "uuid"},
            "type" : {"type" : "string", "enum" : [ "reserve", "confirm", "refund", "grant", "purchase", "adjust" ]},
            "amount" : {"type" : "integer"},
            "reservation_id" : {"type" : [ "string", "null" ], "description" : "confirm/refund: the reserve entry settled"},
            "reference" : {"type" : [ "string", "null" ], "description" : "what the entry is for (an AI job, an order, a grant's reason)"},
            "created_at" : {"type" : "string", "format" : "date-time"}
        }
    })};
#define TX_TYPE_PARAM                                                                                                  \
    OPENAPI_JSON({"name" : "type", "in" : "query", "schema" : {"type" : "string", "enum" : [ "reserve", "confirm", "refund", "grant", "purchase", "adjust" ]}})

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/credits/balance", .handler = h_balance, .auth = AUTH_USER, .rl = RL_READ,
     .summary = "The caller's balance, reserved and available credit", .tag = "credits",
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "balance", "reserved", "available", "plan" ],
         "properties" : {
             "balance" : {"type" : "integer"},
             "reserved" : {"type" : "integer", "minimum" : 0, "description" : "held by AI requests in flight"},
             "available" : {"type" : "integer"},
             "plan" : {"type" : "string", "enum" : [ "free", "pro", "business" ]}
         }
     })},
    {.method = "GET", .pattern = "/api/v1/credits/transactions", .handler = h_transactions, .auth = AUTH_USER,
     .rl = RL_READ, .flags = ROUTE_PAGINATED, .summary = "The caller's ledger (filter: type)", .tag = "credits",
     .params = "[" TX_TYPE_PARAM "]",
     .output = OPENAPI_JSON({"$ref" : "#/components/schemas/CreditTransaction"})},
    {.method = "GET", .pattern = "/api/v1/credits/pricing", .handler = h_pricing, .rl = RL_READ,
     .summary = "Cost per operation and the plans", .tag = "credits",
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "operations", "plans" ],
         "properties" : {
             "operations" : {
                 "type" : "array",
                 "items" : {
                     "type" : "object",
                     "required" : [ "operation", "cost" ],
                     "properties" : {"operation" : {"type" : "string"}, "cost" : {"type" : "integer", "minimum" : 0}}
                 }
             },
             "plans" : {"type" : "array", "items" : {"$ref" : "#/components/schemas/Plan"}}
         }
     })},
    {.method = "GET", .pattern = "/api/v1/admin/credits/transactions", .handler = h_admin_transactions,
     .auth = AUTH_ADMIN, .rl = RL_READ, .flags = ROUTE_PAGINATED | ROUTE_NO_BODY,
     .summary = "The credit ledger, newest first (filters: user_id, type)", .tag = "admin",
     .params = "[" OPENAPI_JSON({"name" : "user_id", "in" : "query", "schema" : {"type" : "string", "format" : "uuid"}}) "," TX_TYPE_PARAM "]",
     .output = OPENAPI_JSON({"allOf" : [ {"$ref" : "#/components/schemas/CreditTransaction"}, {"type" : "object", "required" : ["user_id"], "properties" : {"user_id" : {"type" : "string", "format" : "uuid"}}} ]})},
    {.method = "POST", .pattern = "/api/v1/admin/credits/grant", .handler = h_grant, .auth = AUTH_ADMIN,
     .rl = RL_WRITE, .input = &grant_s, .flags = ROUTE_IDEMPOTENT,
     .summary = "Grant credit to a user (Idempotency-Key; audited)", .tag = "admin",
     .output = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "id", "user_id", "type", "amount", "reason" ],
         "properties" : {
             "id" : {"type" : "string", "format" : "uuid"},
             "user_id" : {"type" : "string"},
             "type" : {"type" : "string", "enum" : ["grant"]},
             "amount" : {"type" : "integer", "minimum" : 1},
             "reason" : {"type" : "string"}
         }
     })},
};

/* A new account opens with this month's free grant in the ledger (issue 15 item 6): its balance is
 * explained entry by entry from the start. Accounts from before keep getting it on first use. */
static int on_user_created(struct db *db, str_t user_id) { return ensure_account(db, user_id); }
static const struct user_data_hooks credits_user_data = {.name = "credits", .created = on_user_created};

static void register_routes(void)
{
    identity_register_user_data(&credits_user_data);
    openapi_schema_add(&plan_schema);
    openapi_schema_add(&tx_schema);
    router_add(routes, ARRAY_LEN(routes));
}

static void register_jobs(void)
{
    static const struct job_kind kind = {.kind = "credits.monthly_grant", .handler = monthly_grant,
                                         .queue = "maintenance", .timeout_ms = 600000};
    jobs_register(&kind);
    cron_register("credits.monthly_grant", "5 0 1 * *", "credits.monthly_grant", "{}");
}

const struct module credits_module = {
    .name = "credits",
    .register_routes = register_routes,
    .register_jobs = register_jobs,
};
