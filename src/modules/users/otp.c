/*
 * otp.c — one-time codes by email or SMS (API.md §3, issue 9 #2 #4 #11).
 *
 * A code is 6 digits, lives OTP_TTL_MS, is stored as an HMAC (the OTP
 * pepper), and dies after OTP_MAX_ATTEMPTS wrong tries. Sign-in codes
 * (otp_codes.user_id NULL) and phone-proof codes for one account (user_id
 * set, PATCH /me) never stand in for each other.
 *
 * Limits per destination (channel + address), across all its codes:
 *   - one new code per OTP_RESEND_MS;
 *   - every wrong code is a row in otp_failures; OTP_FAIL_HOUR of them in an
 *     hour or OTP_FAIL_DAY in a day lock the destination — no new code and
 *     no verification (429 + Retry-After) until the oldest counted failure
 *     ages out. A new code therefore no longer buys five fresh guesses.
 * Serialisation: each step is check-then-write inside the caller's write
 * transaction. SQLite writers are serialised by BEGIN IMMEDIATE; on
 * PostgreSQL every step first takes a transaction advisory lock on the
 * destination, so two requests for one destination run one after the other.
 */
#include <sodium.h>
#include <stdio.h>

#include "auth/crypto.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "modules/users/users_internal.h"

#include "core/banned.h"

static void otp_hash(const struct otp_target *t, str_t code, char out[65])
{
    struct buf m = BUF_INIT(512);
    (void)buf_printf(&m, "%s|%.*s|%.*s", t->channel, STR_FMT(t->dest), STR_FMT(code));
    hmac_sha256_hex(users__otp_key(), buf_str(&m), out);
    sodium_memzero(m.ptr, m.len);
    buf_free(&m);
}

/* PostgreSQL: one transaction at a time per destination (class 7421). */
static int lock_destination(struct db *db, const struct otp_target *t)
{
    if (db_kind(db) != DB_POSTGRES)
        return DB_OK;
    struct buf k = BUF_INIT(400);
    (void)buf_printf(&k, "%s|%.*s", t->channel, STR_FMT(t->dest));
    int rc = db_exec(db, "SELECT pg_advisory_xact_lock(7421, hashtext(?))", DB_ARGS(DBA_TEXT(buf_str(&k))), NULL);
    buf_free(&k);
    return rc;
}

/* 0 when the destination may have codes, HTTP_EFAIL with 429 when it is locked. */
static int check_not_locked(struct req *r, struct db *db, const struct otp_target *t, int64_t now)
{
    struct db_res *res;
    int rc = db_query(db,
                      "SELECT count(*), ts_ms(min(created_at)), "
                      "sum(CASE WHEN created_at > ms_ts(?) THEN 1 ELSE 0 END), "
                      "ts_ms(min(CASE WHEN created_at > ms_ts(?) THEN created_at END)) "
                      "FROM otp_failures WHERE channel = ? AND destination = ? AND created_at > ms_ts(?)",
                      DB_ARGS(DBA_INT(now - HOUR_MS), DBA_INT(now - HOUR_MS), DBA_CSTR(t->channel), DBA_TEXT(t->dest),
                              DBA_INT(now - DAY_MS)),
                      &res);
    if (rc != DB_OK)
        return rc;
    int64_t day = 0, hour = 0, oldest_day = 0, oldest_hour = 0;
    if ((rc = db_next(res)) == 1) {
        day = db_int(res, 0);
        oldest_day = db_isnull(res, 1) ? 0 : db_int(res, 1);
        hour = db_isnull(res, 2) ? 0 : db_int(res, 2);
        oldest_hour = db_isnull(res, 3) ? 0 : db_int(res, 3);
    }
    db_res_free(res);
    if (rc < 0)
        return rc;
    int64_t until = 0;
    if (day >= OTP_FAIL_DAY)
        until = oldest_day + DAY_MS;
    else if (hour >= OTP_FAIL_HOUR)
        until = oldest_hour + HOUR_MS;
    if (until <= now)
        return 0;
    r->err.retry_after_s = (until - now + 999) / 1000;
    return http_fail(r, 429, "RATE_LIMIT_EXCEEDED", "too many wrong codes for this %s; retry later", t->channel);
}

int users__otp_issue(struct req *r, struct db *db, const struct otp_target *t)
{
    int64_t now = time_now_ms(), last = 0;
    bool found;
    int rc;
    if ((rc = lock_destination(db, t)) != DB_OK || (rc = check_not_locked(r, db, t, now)) != 0)
        return rc;
    rc = db_query_int(db, "SELECT ts_ms(max(created_at)) FROM otp_codes WHERE channel = ? AND destination = ?",
                      DB_ARGS(DBA_CSTR(t->channel), DBA_TEXT(t->dest)), &last, &found);
    if (rc != DB_OK)
        return rc;
    if (found && last && now - last < OTP_RESEND_MS) {
        r->err.retry_after_s = (OTP_RESEND_MS - (now - last) + 999) / 1000;
        return http_fail(r, 429, "RATE_LIMIT_EXCEEDED", "a code was sent recently; wait before asking again");
    }
    char code[8], hash[65], id[UUID_STR_LEN + 1];
    snprintf(code, sizeof(code), "%06u", (unsigned)randombytes_uniform(1000000));
    otp_hash(t, str_make(code, 6), hash);
    uuid7_str(id);
    /* a new code replaces older ones of the same purpose */
    rc = db_exec(db,
                 "UPDATE otp_codes SET consumed_at = ms_ts(?) WHERE channel = ? AND destination = ? AND "
                 "consumed_at IS NULL AND coalesce(user_id, '') = ?",
                 DB_ARGS(DBA_INT(now), DBA_CSTR(t->channel), DBA_TEXT(t->dest), DBA_TEXT(t->user_id)), NULL);
    if (rc == DB_OK)
        rc = db_exec(db,
                     "INSERT INTO otp_codes (id, channel, destination, code_hash, user_id, created_at, expires_at) "
                     "VALUES (?, ?, ?, ?, ?, ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(id), DBA_CSTR(t->channel), DBA_TEXT(t->dest), DBA_CSTR(hash),
                             t->user_id.len ? DBA_TEXT(t->user_id) : DBA_NULL, DBA_INT(now), DBA_INT(now + OTP_TTL_MS)),
                     NULL);
    if (rc == DB_OK) {
        char *to = xstrndup(t->dest.p, t->dest.len);
        if (!strcmp(t->channel, "email")) {
            json_t *vars = json_pack("{s:s}", "code", code);
            rc = users__send_mail(db, to, "otp", vars);
            json_decref(vars);
        } else {
            struct buf text = BUF_INIT(256);
            (void)buf_printf(&text, "Your temel code is %s. It expires in 5 minutes.", code);
            rc = users__send_sms(db, to, buf_cstr(&text));
            sodium_memzero(text.ptr, text.len);
            buf_free(&text);
        }
        free(to);
    }
    sodium_memzero(code, sizeof(code));
    return rc;
}

int users__otp_check(struct req *r, struct db *db, const struct otp_target *t, str_t code)
{
    int64_t now = time_now_ms(), attempts = 0;
    struct db_res *res;
    char id[40] = {0}, want[65], stored[65] = {0};
    int rc;
    if ((rc = lock_destination(db, t)) != DB_OK || (rc = check_not_locked(r, db, t, now)) != 0)
        return rc;
    rc = db_query(db,
                  db_pick(db,
                          "SELECT id, code_hash, attempts FROM otp_codes WHERE channel = ? AND destination = ? "
                          "AND coalesce(user_id, '') = ? AND consumed_at IS NULL AND expires_at > ms_ts(?) "
                          "ORDER BY created_at DESC LIMIT 1",
                          "SELECT id, code_hash, attempts FROM otp_codes WHERE channel = ? AND destination = ? "
                          "AND coalesce(user_id, '') = ? AND consumed_at IS NULL AND expires_at > ms_ts(?) "
                          "ORDER BY created_at DESC LIMIT 1 FOR UPDATE"),
                  DB_ARGS(DBA_CSTR(t->channel), DBA_TEXT(t->dest), DBA_TEXT(t->user_id), DBA_INT(now)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1) {
        users__col_copy(res, 0, id, sizeof(id));
        users__col_copy(res, 1, stored, sizeof(stored));
        attempts = db_int(res, 2);
    }
    db_res_free(res);
    if (rc < 0)
        return rc;
    if (rc == 0 || attempts >= OTP_MAX_ATTEMPTS) {
        return http_fail(r, 401, "INVALID_CREDENTIALS", "no valid code: it expired, was used, or had too many attempts");
    }
    otp_hash(t, code, want);
    if (code.len != 6 || !ct_equal(str_make(want, 64), str_make(stored, 64))) {
        char fid[UUID_STR_LEN + 1];
        uuid7_str(fid);
        /* the fifth wrong try burns the code; every one counts against the destination */
        rc = db_exec(db, "UPDATE otp_codes SET attempts = attempts + 1 WHERE id = ?", DB_ARGS(DBA_CSTR(id)), NULL);
        if (rc == DB_OK)
            rc = db_exec(db, "INSERT INTO otp_failures (id, channel, destination, created_at) VALUES (?, ?, ?, ms_ts(?))",
                         DB_ARGS(DBA_CSTR(fid), DBA_CSTR(t->channel), DBA_TEXT(t->dest), DBA_INT(now)), NULL);
        if (rc != DB_OK)
            return rc;
        http_fail(r, 401, "INVALID_CREDENTIALS", "the code is wrong");
        return USERS_OTP_WRONG;
    }
    int64_t changed = 0;
    rc = db_exec(db, "UPDATE otp_codes SET consumed_at = ms_ts(?) WHERE id = ? AND consumed_at IS NULL",
                 DB_ARGS(DBA_INT(now), DBA_CSTR(id)), &changed);
    if (rc != DB_OK)
        return rc;
    if (changed != 1) {
        return http_fail(r, 401, "INVALID_CREDENTIALS", "no valid code: it expired, was used, or had too many attempts");
    }
    return 0;
}

int users__otp_purge(struct db *db, int64_t now, int64_t *removed)
{
    int64_t a = 0, b = 0;
    int rc = db_exec(db, "DELETE FROM otp_codes WHERE expires_at <= ms_ts(?)", DB_ARGS(DBA_INT(now)), &a);
    if (rc == DB_OK)
        rc = db_exec(db, "DELETE FROM otp_failures WHERE created_at <= ms_ts(?)", DB_ARGS(DBA_INT(now - DAY_MS)), &b);
    *removed = a + b;
    return rc;
}
