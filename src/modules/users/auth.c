/*
 * auth.c — the /api/v1/auth routes: register, login, refresh (rotation with reuse
 * detection), logout, password reset, email verification, OTP, guests.
 *
 * Refresh tokens (GoTrue-style rotation): each is single use. Presenting a
 * used one within TEMEL_REFRESH_REUSE_GRACE_MS (default 10 s) (a client that lost the response)
 * rotates again inside the same family; later, it is treated as theft and
 * the whole family (the session) is revoked.
 */
#include <sodium.h>
#include <stdlib.h>

#include "auth/crypto.h"
#include "auth/password.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "jobs/jobs.h"
#include "modules/audit/audit.h"
#include "modules/users/users_internal.h"

#include "modules/webhooks/webhooks.h"

#include "core/banned.h"

static str_t body_str(const struct req *r, const char *key)
{
    const json_t *v = json_object_get(r->body, key);
    return v && json_is_string(v) ? str_make(json_string_value(v), json_string_length(v)) : STR_NULL;
}

/* 202 {"status":"accepted"} */
static void write_accepted(struct req *r)
{
    r->status = 202;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "status");
    jw_cstr(&r->w, "accepted");
    jw_obj_end(&r->w);
}

/* ---- register ---- */

struct reg_ctx {
    str_t email, name;
    const char *hash;
};

static int create_verify_token(struct db *db, str_t user_id, str_t email)
{
    struct buf tok = BUF_INIT(128);
    char hash[65], id[UUID_STR_LEN + 1];
    int64_t now = time_now_ms();
    token_random(&tok, "", 32);
    sha256_hex(buf_str(&tok), hash);
    uuid7_str(id);
    int rc = db_exec(db,
                     "INSERT INTO user_tokens (id, user_id, purpose, token_hash, created_at, expires_at) "
                     "VALUES (?, ?, 'verify_email', ?, ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(id), DBA_TEXT(user_id), DBA_CSTR(hash), DBA_INT(now), DBA_INT(now + VERIFY_TTL_MS)),
                     NULL);
    if (rc == DB_OK) {
        json_t *vars = json_pack("{s:s%}", "token", tok.ptr, tok.len);
        char *to = xstrndup(email.p, email.len);
        rc = users__send_mail(db, to, "verify_email", vars);
        free(to);
        json_decref(vars);
    }
    sodium_memzero(tok.ptr, tok.len);
    buf_free(&tok);
    return rc;
}

/* A taken email answers like a success (issue 9 #10): 202, no tokens, and
 * a mail to the address's owner — the caller learns nothing the owner does
 * not. The hash was computed either way, so both paths cost about the same.
 * ON CONFLICT DO NOTHING decides "taken" in the insert itself, so two
 * concurrent registrations of one address cannot tell each other apart. */
static int tx_register(struct req *r, void *arg)
{
    const struct reg_ctx *c = arg;
    struct db *db = r->db;
    int64_t now = time_now_ms(), added = 0;
    char id[UUID_STR_LEN + 1];
    uuid7_str(id);
    int rc = db_exec(db,
                     "INSERT INTO users (id, email, password_hash, name, role, created_ip, created_at, updated_at) "
                     "VALUES (?, ?, ?, ?, 'user', ?, ms_ts(?), ms_ts(?)) ON CONFLICT DO NOTHING",
                     DB_ARGS(DBA_CSTR(id), DBA_TEXT(c->email), DBA_CSTR(c->hash), DBA_TEXT(c->name),
                             DBA_TEXT(req_client_ip(r)), DBA_INT(now), DBA_INT(now)),
                     &added);
    if (rc != DB_OK)
        return rc;
    if (added == 0) {
        char *to = xstrndup(c->email.p, c->email.len);
        rc = users__send_mail(db, to, "account_exists", NULL);
        free(to);
        if (rc == DB_OK)
            write_accepted(r);
        return rc;
    }
    if ((rc = users__created(db, str_c(id))) != DB_OK || (rc = create_verify_token(db, str_c(id), c->email)) != DB_OK)
        return rc;
    json_t *ev = json_pack("{s:s,s:s%,s:s%,s:s}", "id", id, "email", c->email.p, c->email.len, "name", c->name.p,
                           c->name.len, "role", "user");
    rc = webhooks_emit(db, "user.created", ev);
    json_decref(ev);
    if (rc != DB_OK)
        return rc;
    r->status = 201;
    return users__issue_tokens(r, db, str_c(id), STRLIT("user"), STR_NULL);
}

static int h_register(struct req *r)
{
    struct buf *email = req_buf(r, 320);
    char hash[PASSWORD_HASH_MAX];
    const char *why;
    str_t pw = body_str(r, "password");
    if (identity_normalize_email(body_str(r, "email"), email))
        return http_invalid(r, "email", "must be a valid email address");
    if ((why = password_policy(pw, buf_str(email))))
        return http_invalid(r, "password", why);
    if (users__pw_hash(pw, hash))
        return http_fail(r, 503, "SERVICE_UNAVAILABLE", "cannot hash the password now");
    struct reg_ctx c = {buf_str(email), body_str(r, "name"), hash};
    return req_tx(r, DB_TX_WRITE, tx_register, &c);
}

/* ---- login ---- */

struct login_ctx {
    str_t user_id, role;
};

static int tx_login_ok(struct req *r, void *arg)
{
    struct login_ctx *c = arg;
    int rc = db_exec(r->db, "UPDATE users SET failed_logins = 0, locked_until = ms_ts(0) WHERE id = ?",
                     DB_ARGS(DBA_TEXT(c->user_id)), NULL);
    return rc ? rc : users__issue_tokens(r, r->db, c->user_id, c->role, STR_NULL);
}

/* One atomic increment (issue 9 #5): parallel wrong passwords all count.
 * From LOGIN_MAX_FAILURES on, the account locks for 30 s doubling per
 * further failure, at most 15 min; a lock is only ever extended. */
static int count_failure(struct db *db, str_t id, int64_t now)
{
    int64_t failures = 0;
    bool found;
    int rc = db_query_int(db, "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ? RETURNING failed_logins",
                          DB_ARGS(DBA_TEXT(id)), &failures, &found);
    if (rc != DB_OK || failures < LOGIN_MAX_FAILURES)
        return rc;
    int shift = (int)(failures - LOGIN_MAX_FAILURES);
    int64_t lock = now + (shift > 5 ? 15 * 60000 : (30000ll << shift));
    return db_exec(db, "UPDATE users SET locked_until = ms_ts(?) WHERE id = ? AND locked_until < ms_ts(?)",
                   DB_ARGS(DBA_INT(lock), DBA_TEXT(id), DBA_INT(lock)), NULL);
}

/* Unknown email, no password, wrong password and a locked account all
 * answer this, after one argon2id verification each (a dummy one when
 * there is no hash): same status, body and work (issue 9 #5). */
static int bad_credentials(struct req *r)
{
    return http_fail(r, 401, "INVALID_CREDENTIALS", "invalid email or password");
}

static int h_login(struct req *r)
{
    struct buf email = BUF_INIT(320);
    str_t pw = body_str(r, "password");
    struct db_res *res = NULL;
    int64_t now = time_now_ms();
    int rc;
    if (identity_normalize_email(body_str(r, "email"), &email)) {
        buf_free(&email);
        users__pw_burn(pw);
        return bad_credentials(r);
    }
    rc = db_query(r->db,
                  "SELECT id, password_hash, role, status, ts_ms(locked_until) FROM users WHERE email = ?",
                  DB_ARGS(DBA_TEXT(buf_str(&email))), &res);
    buf_free(&email);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if ((rc = db_next(res)) != 1 || db_isnull(res, 1)) {
        db_res_free(res);
        if (rc < 0)
            return http_db_fail(r, rc);
        users__pw_burn(pw); /* same cost as a real check: no timing oracle */
        return bad_credentials(r);
    }
    str_t id = str_make(h2o_mem_alloc_pool(r->pool, 40), 0);
    str_t uid = db_text(res, 0), role = db_text(res, 2);
    memcpy((char *)id.p, uid.p, uid.len < 39 ? uid.len : 39);
    id.len = uid.len < 39 ? uid.len : 39;
    char rolebuf[16] = {0}, hash[PASSWORD_HASH_MAX] = {0};
    memcpy(rolebuf, role.p, role.len < sizeof(rolebuf) - 1 ? role.len : sizeof(rolebuf) - 1);
    str_t h = db_text(res, 1);
    memcpy(hash, h.p, h.len < sizeof(hash) - 1 ? h.len : sizeof(hash) - 1);
    bool banned = str_is(db_text(res, 3), "banned");
    int64_t locked_until = db_int(res, 4);
    db_res_free(res);

    /* verify even when locked: a locked account must cost and answer like any other miss */
    bool ok = users__pw_verify(hash, pw);
    if (!ok) {
        if ((rc = count_failure(r->db, id, now)) != DB_OK)
            return http_db_fail(r, rc);
        return bad_credentials(r);
    }
    if (locked_until > now)
        return bad_credentials(r);
    if (banned)
        return http_fail(r, 403, "FORBIDDEN", "this account is banned");
    if (password_needs_rehash(hash)) {
        char nh[PASSWORD_HASH_MAX];
        /* best effort: a failed upgrade leaves the old (still valid) hash */
        if (users__pw_hash(pw, nh) == 0 &&
            db_exec(r->db, "UPDATE users SET password_hash = ? WHERE id = ?", DB_ARGS(DBA_CSTR(nh), DBA_TEXT(id)),
                    NULL) != DB_OK)
            log_warn("password rehash not stored: %s", db_errmsg(r->db));
    }
    struct login_ctx c = {id, str_c(rolebuf)};
    return req_tx(r, DB_TX_WRITE, tx_login_ok, &c);
}

/* ---- refresh ---- */

static int invalid_refresh(struct req *r)
{
    return http_fail(r, 401, "UNAUTHORIZED", "invalid or expired refresh token");
}

/* arg: the token's SHA-256 hex */
static int tx_refresh(struct req *r, void *arg)
{
    const char *token_hash = arg;
    struct db *db = r->db;
    struct db_res *res;
    int rc = db_query(db,
                      db_pick(db,
                              "SELECT t.id, t.session_id, ts_ms(t.used_at), ts_ms(t.expires_at), s.user_id, "
                              "s.revoked_at IS NOT NULL, u.role, u.status FROM refresh_tokens t "
                              "JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id "
                              "WHERE t.token_hash = ?",
                              "SELECT t.id, t.session_id, ts_ms(t.used_at), ts_ms(t.expires_at), s.user_id, "
                              "s.revoked_at IS NOT NULL, u.role, u.status FROM refresh_tokens t "
                              "JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id "
                              "WHERE t.token_hash = ? FOR UPDATE OF t, s"),
                      DB_ARGS(DBA_CSTR(token_hash)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? rc : invalid_refresh(r);
    }
    /* the clock after the row lock: a request that waited for a concurrent
     * rotation must not see that rotation's used_at in its future (it would
     * pass as a grace-window retry and rotate the family a second time) */
    int64_t now = time_now_ms();
    char tid[40], sid[40], uid[40], role[16];
    users__col_copy(res, 0, tid, sizeof(tid));
    users__col_copy(res, 1, sid, sizeof(sid));
    users__col_copy(res, 4, uid, sizeof(uid));
    users__col_copy(res, 6, role, sizeof(role));
    bool used = !db_isnull(res, 2);
    int64_t used_at = used ? db_int(res, 2) : 0, expires = db_int(res, 3);
    bool revoked = db_int(res, 5) != 0, banned = str_is(db_text(res, 7), "banned");
    db_res_free(res);

    if (revoked || expires <= now || banned)
        return invalid_refresh(r);
    if (used && now - used_at >= users__cfg()->refresh_grace_ms) {
        /* reuse of a rotated token: assume theft, end the whole family (committed, then 401) */
        if ((rc = users__revoke_session(db, str_c(sid))) != DB_OK)
            return rc;
        log_warn("refresh token reuse detected; session revoked");
        http_fail(r, 401, "UNAUTHORIZED", "refresh token reuse detected; the session was revoked");
        return 0;
    }
    /* single use: retire this token and any unused sibling (a grace-window retry) */
    rc = db_exec(db, "UPDATE refresh_tokens SET used_at = ms_ts(?) WHERE session_id = ? AND (used_at IS NULL OR id = ?)",
                 DB_ARGS(DBA_INT(now), DBA_CSTR(sid), DBA_CSTR(tid)), NULL);
    if (rc != DB_OK)
        return rc;
    /* keep the first use time so the grace window does not slide */
    if (used && (rc = db_exec(db, "UPDATE refresh_tokens SET used_at = ms_ts(?) WHERE id = ?",
                              DB_ARGS(DBA_INT(used_at), DBA_CSTR(tid)), NULL)) != DB_OK)
        return rc;
    return users__issue_tokens(r, db, str_c(uid), str_c(role), str_c(sid));
}

static int h_refresh(struct req *r)
{
    char hash[65];
    sha256_hex(body_str(r, "refresh_token"), hash);
    return req_tx(r, DB_TX_WRITE, tx_refresh, hash);
}

/* ---- logout ---- */

/* arg: bool all */
static int tx_logout(struct req *r, void *arg)
{
    bool all = *(bool *)arg;
    struct db *db = r->db;
    int rc;
    if (all) {
        /* every credential: sessions and API keys (issue 9 #3) */
        rc = users__revoke_all_sessions(db, r->user_id);
        return rc ? rc : users__revoke_api_keys(db, r->user_id);
    }
    if (r->session_id.len && (rc = users__revoke_session(db, r->session_id)) != DB_OK)
        return rc;
    str_t tok = r->body ? body_str(r, "refresh_token") : STR_NULL;
    if (tok.p) {
        char hash[65];
        sha256_hex(tok, hash);
        /* only a session of the caller's own */
        rc = db_exec(db,
                     "UPDATE sessions SET revoked_at = ms_ts(?) WHERE revoked_at IS NULL AND user_id = ? AND id = "
                     "(SELECT session_id FROM refresh_tokens WHERE token_hash = ?)",
                     DB_ARGS(DBA_INT(time_now_ms()), DBA_TEXT(r->user_id), DBA_CSTR(hash)), NULL);
        if (rc != DB_OK)
            return rc;
    }
    return 0;
}

static int logout(struct req *r, bool all)
{
    return req_tx(r, DB_TX_WRITE, tx_logout, &all);
}

static int h_logout(struct req *r) { return logout(r, false); }
static int h_logout_all(struct req *r) { return logout(r, true); }


/* ---- password reset ---- */

/* forgot-password only enqueues a users.forgot_password job: a known and an
 * unknown address cost the request exactly the same (issue 9 #10). The job
 * finds the account and mails a token. At most 3 live reset tokens per
 * account (a mail bomb needs more than one endpoint); the count and the
 * insert are serialised by a lock on the user's row (PostgreSQL FOR UPDATE;
 * SQLite BEGIN IMMEDIATE), so parallel requests cannot pass it together
 * (issue 9 #11). */
struct forgot_ctx {
    str_t email;
};

static int tx_forgot(struct db *db, void *arg)
{
    struct forgot_ctx *c = arg;
    int64_t now = time_now_ms(), n = 0;
    bool found;
    struct db_res *res;
    char uid[40] = {0}, hash[65], id[UUID_STR_LEN + 1];
    int rc = db_query(db,
                      db_pick(db, "SELECT id FROM users WHERE email = ? AND status = 'active'",
                              "SELECT id FROM users WHERE email = ? AND status = 'active' FOR UPDATE"),
                      DB_ARGS(DBA_TEXT(c->email)), &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    if (rc == 1) {
        str_t v = db_text(res, 0);
        memcpy(uid, v.p, v.len < 39 ? v.len : 39);
    }
    db_res_free(res);
    if (rc != 1)
        return rc < 0 ? rc : 0; /* unknown email: nothing sent */
    rc = db_query_int(db,
                      "SELECT count(*) FROM user_tokens WHERE user_id = ? AND purpose = 'reset_password' AND "
                      "used_at IS NULL AND expires_at > ms_ts(?)",
                      DB_ARGS(DBA_CSTR(uid), DBA_INT(now)), &n, &found);
    if (rc != DB_OK || n >= 3)
        return rc;
    struct buf tok = BUF_INIT(128);
    token_random(&tok, "", 32);
    sha256_hex(buf_str(&tok), hash);
    uuid7_str(id);
    rc = db_exec(db,
                 "INSERT INTO user_tokens (id, user_id, purpose, token_hash, created_at, expires_at) "
                 "VALUES (?, ?, 'reset_password', ?, ms_ts(?), ms_ts(?))",
                 DB_ARGS(DBA_CSTR(id), DBA_CSTR(uid), DBA_CSTR(hash), DBA_INT(now), DBA_INT(now + RESET_TTL_MS)), NULL);
    if (rc == DB_OK) {
        json_t *vars = json_pack("{s:s%}", "token", tok.ptr, tok.len);
        char *to = xstrndup(c->email.p, c->email.len);
        rc = users__send_mail(db, to, "reset_password", vars);
        free(to);
        json_decref(vars);
    }
    sodium_memzero(tok.ptr, tok.len);
    buf_free(&tok);
    return rc;
}

static enum job_result job_forgot(struct job *j, struct buf *result, struct buf *error)
{
    (void)result;
    const json_t *e = json_object_get(j->payload, "email");
    if (!json_is_string(e)) {
        (void)buf_puts(error, "payload without email");
        return JOB_FAIL;
    }
    struct forgot_ctx c = {str_make(json_string_value(e), json_string_length(e))};
    int rc = db_tx(j->db, DB_TX_WRITE, tx_forgot, &c);
    if (rc != DB_OK) {
        (void)buf_printf(error, "database: %s", db_errmsg(j->db));
        return JOB_RETRY;
    }
    return JOB_OK;
}

static const struct job_kind forgot_kind = {
    .kind = "users.forgot_password", .handler = job_forgot, .queue = "delivery", .sensitive = true};

void users__register_jobs(void) { jobs_register(&forgot_kind); }

static int h_forgot(struct req *r)
{
    struct buf email = BUF_INIT(320), payload = BUF_INIT(512);
    int rc = DB_OK;
    if (identity_normalize_email(body_str(r, "email"), &email) == 0) {
        struct jw w;
        jw_init(&w, &payload);
        jw_obj_begin(&w);
        jw_key(&w, "email");
        jw_str(&w, buf_str(&email));
        jw_obj_end(&w);
        struct job_opts o = JOB_OPTS_DEFAULT;
        rc = jobs_enqueue(r->db, forgot_kind.kind, buf_str(&payload), &o, NULL);
    }
    buf_free(&email);
    buf_free(&payload);
    if (rc != DB_OK)
        return http_db_fail(r, rc < 0 ? rc : DB_ERR);
    write_accepted(r); /* always: no account enumeration */
    return 0;
}

struct token_ctx {
    const char *purpose;
    char hash[65];
    const char *pw_hash; /* reset: the new password's hash */
};

static int tx_use_token(struct req *r, void *arg)
{
    struct token_ctx *c = arg;
    struct db *db = r->db;
    int64_t now = time_now_ms();
    struct db_res *res;
    char id[40] = {0}, uid[40] = {0};
    int rc = db_query(db,
                      "SELECT id, user_id FROM user_tokens WHERE token_hash = ? AND purpose = ? AND used_at IS NULL "
                      "AND expires_at > ms_ts(?)",
                      DB_ARGS(DBA_CSTR(c->hash), DBA_CSTR(c->purpose), DBA_INT(now)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1) {
        users__col_copy(res, 0, id, sizeof(id));
        users__col_copy(res, 1, uid, sizeof(uid));
    }
    db_res_free(res);
    if (rc != 1)
        return rc < 0 ? rc : http_invalid(r, "token", "is invalid or expired");
    /* single use: the conditional update decides under concurrency */
    int64_t changed = 0;
    rc = db_exec(db, "UPDATE user_tokens SET used_at = ms_ts(?) WHERE id = ? AND used_at IS NULL",
                 DB_ARGS(DBA_INT(now), DBA_CSTR(id)), &changed);
    if (rc != DB_OK)
        return rc;
    if (changed != 1)
        return http_invalid(r, "token", "is invalid or expired");
    if (c->pw_hash) {
        /* the mailed token proves the mailbox: the address is verified, and
         * every credential made before (sessions, API keys) ends (issue 9 #3) */
        rc = db_exec(db,
                     "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = ms_ts(0), "
                     "email_verified = ?, updated_at = ms_ts(?) WHERE id = ?",
                     DB_ARGS(DBA_CSTR(c->pw_hash), DBA_BOOL(true), DBA_INT(now), DBA_CSTR(uid)), NULL);
        if (rc == DB_OK)
            rc = users__revoke_all_sessions(db, str_c(uid));
        if (rc == DB_OK)
            rc = users__revoke_api_keys(db, str_c(uid));
        /* other reset links die with this one */
        if (rc == DB_OK)
            rc = db_exec(db,
                         "UPDATE user_tokens SET used_at = ms_ts(?) WHERE user_id = ? AND purpose = 'reset_password' "
                         "AND used_at IS NULL",
                         DB_ARGS(DBA_INT(now), DBA_CSTR(uid)), NULL);
    } else {
        rc = db_exec(db, "UPDATE users SET email_verified = ?, updated_at = ms_ts(?) WHERE id = ?",
                     DB_ARGS(DBA_BOOL(true), DBA_INT(now), DBA_CSTR(uid)), NULL);
    }
    return rc;
}

/* The token is checked before the new password is hashed (issue 9 #6): a
 * guessed token costs a lookup, not an argon2id run. tx_use_token checks it
 * again atomically. */
static int h_reset(struct req *r)
{
    struct token_ctx c = {.purpose = "reset_password"};
    char hash[PASSWORD_HASH_MAX];
    str_t pw = body_str(r, "password");
    struct db_res *res;
    sha256_hex(body_str(r, "token"), c.hash);
    int rc = db_query(r->db,
                      "SELECT u.email FROM user_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND "
                      "t.purpose = 'reset_password' AND t.used_at IS NULL AND t.expires_at > ms_ts(?)",
                      DB_ARGS(DBA_CSTR(c.hash), DBA_INT(time_now_ms())), &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? http_db_fail(r, rc) : http_invalid(r, "token", "is invalid or expired");
    }
    const char *why = password_policy(pw, db_isnull(res, 0) ? STR_NULL : db_text(res, 0));
    db_res_free(res);
    if (why)
        return http_invalid(r, "password", why);
    if (users__pw_hash(pw, hash))
        return http_fail(r, 503, "SERVICE_UNAVAILABLE", "cannot hash the password now");
    c.pw_hash = hash;
    return req_tx(r, DB_TX_WRITE, tx_use_token, &c);
}

static int h_verify_email(struct req *r)
{
    struct token_ctx c = {.purpose = "verify_email"};
    sha256_hex(body_str(r, "token"), c.hash);
    return req_tx(r, DB_TX_WRITE, tx_use_token, &c);
}

static int tx_resend(struct req *r, void *arg)
{
    (void)arg;
    struct db *db = r->db;
    struct db_res *res;
    int rc = db_query(db, "SELECT email, email_verified FROM users WHERE id = ?", DB_ARGS(DBA_TEXT(r->user_id)), &res);
    if (rc != DB_OK)
        return rc;
    char email[330] = {0};
    bool send = false;
    if ((rc = db_next(res)) == 1 && !db_isnull(res, 0) && !db_int(res, 1)) {
        str_t e = db_text(res, 0);
        if (e.len < sizeof(email)) {
            memcpy(email, e.p, e.len);
            send = true;
        }
    }
    db_res_free(res);
    if (rc < 0)
        return rc;
    return send ? create_verify_token(db, r->user_id, str_c(email)) : 0;
}

static int h_resend(struct req *r)
{
    if (req_tx(r, DB_TX_WRITE, tx_resend, NULL))
        return HTTP_EFAIL;
    write_accepted(r);
    return 0;
}

/* ---- OTP ---- */

/* channel + destination from {email} or {phone}; exactly one */
static int otp_target(struct req *r, const char **channel, struct buf *dest)
{
    str_t e = body_str(r, "email"), p = body_str(r, "phone");
    if ((e.p != NULL) == (p.p != NULL))
        return http_invalid(r, e.p ? "phone" : "email", "give exactly one of email or phone");
    if (e.p) {
        *channel = "email";
        if (identity_normalize_email(e, dest))
            return http_invalid(r, "email", "must be a valid email address");
    } else {
        *channel = "phone";
        if (!users__phone_ok(p))
            return http_invalid(r, "phone", "must be an E.164 number like +905551234567");
        (void)buf_put(dest, p);
    }
    return 0;
}

struct otp_ctx {
    struct otp_target t;
    str_t code;
    char user_id[40];
    char role[16];
};

static int tx_send_otp(struct req *r, void *arg)
{
    struct otp_ctx *c = arg;
    return users__otp_issue(r, r->db, &c->t);
}

static int h_send_otp(struct req *r)
{
    struct buf dest = BUF_INIT(320);
    struct otp_ctx c = {0};
    if (otp_target(r, &c.t.channel, &dest)) {
        buf_free(&dest);
        return HTTP_EFAIL;
    }
    c.t.dest = buf_str(&dest);
    int rc = req_tx(r, DB_TX_WRITE, tx_send_otp, &c);
    buf_free(&dest);
    if (rc)
        return rc;
    r->status = 202;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "status");
    jw_cstr(&r->w, "sent");
    jw_key(&r->w, "expires_in");
    jw_int(&r->w, OTP_TTL_MS / 1000);
    jw_obj_end(&r->w);
    return 0;
}

/* The first OTP sign-in to an account whose address was never proven (issue
 * 9 #2): whoever made it (a registration, an unproven phone) knew only the
 * address, and the code's owner wins. Its password is removed, its sessions
 * and API keys are revoked, and the address is marked verified. Returns the
 * audit views in *before / *after for the caller to record last. */
static int claim_account(struct db *db, const struct otp_ctx *c, bool email, bool had_password, json_t **before,
                         json_t **after)
{
    int64_t now = time_now_ms(), sessions = 0, keys = 0;
    str_t uid = str_c(c->user_id);
    int rc = db_exec(db,
                     email ? "UPDATE users SET password_hash = NULL, email_verified = ?, failed_logins = 0, "
                             "locked_until = ms_ts(0), updated_at = ms_ts(?) WHERE id = ?"
                           : "UPDATE users SET password_hash = NULL, phone_verified = ?, failed_logins = 0, "
                             "locked_until = ms_ts(0), updated_at = ms_ts(?) WHERE id = ?",
                     DB_ARGS(DBA_BOOL(true), DBA_INT(now), DBA_TEXT(uid)), NULL);
    if (rc == DB_OK)
        rc = db_exec(db, "UPDATE sessions SET revoked_at = ms_ts(?) WHERE user_id = ? AND revoked_at IS NULL",
                     DB_ARGS(DBA_INT(now), DBA_TEXT(uid)), &sessions);
    if (rc == DB_OK)
        rc = db_exec(db, "DELETE FROM api_keys WHERE user_id = ?", DB_ARGS(DBA_TEXT(uid)), &keys);
    if (rc != DB_OK)
        return rc;
    *before = json_pack("{s:s,s:b,s:b}", "channel", c->t.channel, "verified", 0, "password", had_password);
    *after = json_pack("{s:s,s:b,s:b,s:I,s:I}", "channel", c->t.channel, "verified", 1, "password", 0,
                       "sessions_revoked", (json_int_t)sessions, "api_keys_revoked", (json_int_t)keys);
    return DB_OK;
}

static int tx_verify_otp(struct req *r, void *arg)
{
    struct otp_ctx *c = arg;
    struct db *db = r->db;
    int64_t now = time_now_ms();
    struct db_res *res;
    int rc = users__otp_check(r, db, &c->t, c->code);
    if (rc == USERS_OTP_WRONG)
        return 0; /* keep the counted failure */
    if (rc)
        return rc;
    /* find or create the account */
    bool email = !strcmp(c->t.channel, "email");
    rc = db_query(db,
                  email ? "SELECT id, role, status, password_hash IS NOT NULL, email_verified FROM users WHERE email = ?"
                        : "SELECT id, role, status, password_hash IS NOT NULL, phone_verified FROM users WHERE phone = ?",
                  DB_ARGS(DBA_TEXT(c->t.dest)), &res);
    if (rc != DB_OK)
        return rc;
    bool banned = false, had_password = false, verified = false;
    if ((rc = db_next(res)) == 1) {
        users__col_copy(res, 0, c->user_id, sizeof(c->user_id));
        users__col_copy(res, 1, c->role, sizeof(c->role));
        banned = str_is(db_text(res, 2), "banned");
        had_password = db_int(res, 3) != 0;
        verified = db_int(res, 4) != 0;
    }
    db_res_free(res);
    if (rc < 0)
        return rc;
    if (banned) {
        http_fail(r, 403, "FORBIDDEN", "this account is banned");
        return 0; /* the code stays used */
    }
    json_t *before = NULL, *after = NULL;
    bool exists = rc == 1;
    rc = DB_OK;
    if (!exists) {
        uuid7_str(c->user_id);
        memcpy(c->role, "user", 5);
        rc = db_exec(db,
                     email ? "INSERT INTO users (id, email, role, email_verified, phone_verified, profile_complete, "
                             "created_ip, created_at, updated_at) VALUES (?, ?, 'user', ?, ?, ?, ?, ms_ts(?), ms_ts(?))"
                           : "INSERT INTO users (id, phone, role, email_verified, phone_verified, profile_complete, "
                             "created_ip, created_at, updated_at) VALUES (?, ?, 'user', ?, ?, ?, ?, ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(c->user_id), DBA_TEXT(c->t.dest), DBA_BOOL(email), DBA_BOOL(!email),
                             DBA_BOOL(false), DBA_TEXT(req_client_ip(r)), DBA_INT(now), DBA_INT(now)),
                     NULL);
        if (rc == DB_OK)
            rc = users__created(db, str_c(c->user_id));
    } else if (!verified) {
        rc = claim_account(db, c, email, had_password, &before, &after);
    }
    if (rc == DB_OK)
        rc = users__issue_tokens(r, db, str_c(c->user_id), str_c(c->role), STR_NULL);
    if (rc == DB_OK && after) {
        /* last: the audit chain head is locked until commit */
        struct audit_entry e = {.actor_id = str_c(c->user_id),
                                .action = "user.claimed_by_otp",
                                .category = "auth",
                                .target_type = "user",
                                .target_id = str_c(c->user_id),
                                .before = before,
                                .after = after,
                                .success = true};
        rc = audit_record_req(r, &e);
    }
    json_decref(before);
    json_decref(after);
    return rc;
}

static int h_verify_otp(struct req *r)
{
    struct buf dest = BUF_INIT(320);
    struct otp_ctx c = {.code = body_str(r, "code")};
    if (otp_target(r, &c.t.channel, &dest)) {
        buf_free(&dest);
        return HTTP_EFAIL;
    }
    c.t.dest = buf_str(&dest);
    int rc = req_tx(r, DB_TX_WRITE, tx_verify_otp, &c);
    buf_free(&dest);
    return rc;
}

/* ---- guests ---- */

static int tx_guest(struct req *r, void *arg)
{
    (void)arg;
    struct db *db = r->db;
    char id[UUID_STR_LEN + 1];
    int64_t now = time_now_ms();
    uuid7_str(id);
    int rc = db_exec(db,
                     "INSERT INTO users (id, name, role, created_ip, created_at, updated_at) "
                     "VALUES (?, 'Guest', 'guest', ?, ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(id), DBA_TEXT(req_client_ip(r)), DBA_INT(now), DBA_INT(now)), NULL);
    return rc ? rc : users__issue_tokens(r, db, str_c(id), STRLIT("guest"), STR_NULL);
}

static int h_guest(struct req *r)
{
    if (req_tx(r, DB_TX_WRITE, tx_guest, NULL))
        return HTTP_EFAIL;
    r->status = 201;
    return 0;
}

/* arg: the guest token's claims */
static int tx_migrate_guest(struct req *r, void *arg)
{
    const struct jwt_claims *g = arg;
    struct db *db = r->db;
    int64_t n = 0;
    bool found;
    /* the guest token must still name a live guest */
    int rc = db_query_int(db, "SELECT count(*) FROM users WHERE id = ? AND role = 'guest'",
                          DB_ARGS(DBA_CSTR(g->sub)), &n, &found);
    if (rc != DB_OK)
        return rc;
    if (n == 0)
        return http_invalid(r, "guest_token", "the guest account no longer exists");
    const struct user_data_hooks *const *hooks;
    size_t nh = users__hooks(&hooks);
    jw_obj_begin(&r->w);
    jw_key(&r->w, "migrated");
    jw_arr_begin(&r->w);
    for (size_t i = 0; i < nh; i++) {
        if (!hooks[i]->migrate_guest)
            continue;
        if ((rc = hooks[i]->migrate_guest(db, str_c(g->sub), r->user_id)) != DB_OK)
            return rc;
        jw_cstr(&r->w, hooks[i]->name);
    }
    jw_arr_end(&r->w);
    if ((rc = users__photo_migrate_guest(db, str_c(g->sub), r->user_id)) != DB_OK)
        return rc;
    jw_key(&r->w, "guest_id");
    jw_cstr(&r->w, g->sub);
    jw_obj_end(&r->w);
    /* the guest account ends here (its sessions cascade) */
    return db_exec(db, "DELETE FROM users WHERE id = ? AND role = 'guest'", DB_ARGS(DBA_CSTR(g->sub)), NULL);
}

static int h_migrate_guest(struct req *r)
{
    struct jwt_claims g;
    if (identity_is_guest(r))
        return http_fail(r, 403, "FORBIDDEN", "sign in to a real account to take over guest data");
    int vrc = jwt_verify(users__jwt_key(), body_str(r, "guest_token"), time_now_ms() / 1000, &g);
    if (vrc != JWT_OK || strcmp(g.role, "guest"))
        return http_invalid(r, "guest_token", "is not a valid guest access token");
    return req_tx(r, DB_TX_WRITE, tx_migrate_guest, &g);
}

/* ---- route table ---- */

#define F_EMAIL {.name = "email", .type = JF_STRING, .flags = JF_REQUIRED, .min = 3, .max = 254}
#define F_PASSWORD {.name = "password", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 1024}

static const struct json_field register_f[] = {F_EMAIL, F_PASSWORD,
                                               {.name = "name", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 100},
                                               {0}};
static const struct json_schema register_s = {register_f, false};
static const struct json_field login_f[] = {F_EMAIL, F_PASSWORD, {0}};
static const struct json_schema login_s = {login_f, false};
static const struct json_field refresh_f[] = {
    {.name = "refresh_token", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 512}, {0}};
static const struct json_schema refresh_s = {refresh_f, false};
static const struct json_field logout_f[] = {{.name = "refresh_token", .type = JF_STRING, .min = 1, .max = 512}, {0}};
static const struct json_schema logout_s = {logout_f, false};
static const struct json_field forgot_f[] = {F_EMAIL, {0}};
static const struct json_schema forgot_s = {forgot_f, false};
static const struct json_field reset_f[] = {{.name = "token", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 256},
                                            F_PASSWORD, {0}};
static const struct json_schema reset_s = {reset_f, false};
static const struct json_field verify_f[] = {{.name = "token", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 256},
                                             {0}};
static const struct json_schema verify_s = {verify_f, false};
static const struct json_field send_otp_f[] = {{.name = "email", .type = JF_STRING, .min = 3, .max = 254},
                                               {.name = "phone", .type = JF_STRING, .min = 8, .max = 20},
                                               {0}};
static const struct json_schema send_otp_s = {send_otp_f, false};
static const struct json_field verify_otp_f[] = {{.name = "email", .type = JF_STRING, .min = 3, .max = 254},
                                                 {.name = "phone", .type = JF_STRING, .min = 8, .max = 20},
                                                 {.name = "code", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 12},
                                                 {0}};
static const struct json_schema verify_otp_s = {verify_otp_f, false};
static const struct json_field migrate_f[] = {
    {.name = "guest_token", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = JWT_MAX_LEN}, {0}};
static const struct json_schema migrate_s = {migrate_f, false};

#define AUTHR(m, p, h, s, cls, sum, ...) {.method = m, .pattern = "/api/v1/auth/" p, .handler = h, .rl = cls, .input = s, .summary = sum, .tag = "auth", __VA_ARGS__}
static struct route routes[] = {
    AUTHR("POST", "register", h_register, &register_s, RL_AUTH, "Create an account: 201 with tokens; an email that already has an account gets 202 {status: accepted}, no tokens, and a mail to its owner (API.md said 409: changed against enumeration)",
          .output = OPENAPI_JSON({"oneOf" : [ {"$ref" : "#/components/schemas/AuthSession"}, {"$ref" : "#/components/schemas/Accepted"} ]})),
    AUTHR("POST", "login", h_login, &login_s, RL_AUTH, "Log in with email and password; unknown email, wrong password and a locked account all answer the same 401", .errors = "401", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/AuthSession"})),
    AUTHR("POST", "refresh", h_refresh, &refresh_s, RL_AUTH, "Rotate a refresh token for a new token pair", .errors = "401", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/AuthSession"})),
    AUTHR("POST", "logout", h_logout, &logout_s, RL_AUTH, "End this session (and the given refresh token's)", .auth = AUTH_USER,
          .flags = ROUTE_BODY_OPTIONAL, .status = 204),
    AUTHR("POST", "logout-all", h_logout_all, NULL, RL_AUTH, "End every session of the caller and revoke every API key", .auth = AUTH_USER, .status = 204),
    AUTHR("POST", "forgot-password", h_forgot, &forgot_s, RL_EMAIL, "Mail a password-reset link (always 202; the same work for known and unknown emails)", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/Accepted"})),
    AUTHR("POST", "reset-password", h_reset, &reset_s, RL_AUTH, "Set a new password with a reset token; ends all sessions and revokes every API key", .status = 204),
    AUTHR("POST", "verify-email", h_verify_email, &verify_s, RL_AUTH, "Confirm an email address with the mailed token", .status = 204),
    AUTHR("POST", "resend-verification", h_resend, NULL, RL_EMAIL, "Mail a new verification link", .auth = AUTH_USER, .output = OPENAPI_JSON({"$ref" : "#/components/schemas/Accepted"})),
    AUTHR("POST", "send-otp", h_send_otp, &send_otp_s, RL_EMAIL, "Send a one-time code by email or SMS (one a minute; 10 wrong codes an hour or 20 a day lock the address: 429)",
          .output = OPENAPI_JSON({"type" : "object", "required" : [ "status", "expires_in" ], "properties" : {"status" : {"type" : "string", "enum" : ["sent"]}, "expires_in" : {"type" : "integer", "description" : "seconds the code stays valid"}}})),
    AUTHR("POST", "verify-otp", h_verify_otp, &verify_otp_s, RL_AUTH, "Log in (or sign up) with a one-time code; the first one to an unverified account removes its password and revokes its sessions and API keys (audited)", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/AuthSession"})),
    AUTHR("POST", "guest", h_guest, NULL, RL_AUTH, "Create a guest user and return its tokens (201)", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/AuthSession"})),
    AUTHR("POST", "migrate-guest-data", h_migrate_guest, &migrate_s, RL_AUTH, "Move a guest's data into the caller's account",
          .auth = AUTH_USER, .errors = "403",
          .output = OPENAPI_JSON({"type" : "object", "required" : [ "migrated", "guest_id" ], "properties" : {"migrated" : {"type" : "array", "items" : {"type" : "string"}, "description" : "the modules that moved data"}, "guest_id" : {"type" : "string", "format" : "uuid"}}})),
};

void users__register_auth_routes(void) { router_add(routes, ARRAY_LEN(routes)); }
