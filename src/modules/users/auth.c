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

#include "auth/crypto.h"
#include "auth/password.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "modules/users/users_internal.h"

#include "core/banned.h"

static str_t body_str(const struct req *r, const char *key)
{
    const json_t *v = json_object_get(r->body, key);
    return v && json_is_string(v) ? str_make(json_string_value(v), json_string_length(v)) : STR_NULL;
}

/* ---- register ---- */

struct reg_ctx {
    struct req *r;
    str_t email, name;
    const char *hash;
    char id[UUID_STR_LEN + 1];
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

static int tx_register(struct db *db, void *arg)
{
    struct reg_ctx *c = arg;
    int64_t now = time_now_ms();
    int rc;
    uuid7_str(c->id);
    rc = db_exec(db,
                 "INSERT INTO users (id, email, password_hash, name, role, created_ip, created_at, updated_at) "
                 "VALUES (?, ?, ?, ?, 'user', ?, ms_ts(?), ms_ts(?))",
                 DB_ARGS(DBA_CSTR(c->id), DBA_TEXT(c->email), DBA_CSTR(c->hash), DBA_TEXT(c->name),
                         DBA_TEXT(req_client_ip(c->r)), DBA_INT(now), DBA_INT(now)),
                 NULL);
    if (rc != DB_OK)
        return rc;
    if ((rc = create_verify_token(db, str_c(c->id), c->email)) != DB_OK)
        return rc;
    return users__issue_tokens(c->r, db, str_c(c->id), STRLIT("user"), STR_NULL);
}

static int h_register(struct req *r)
{
    struct buf email = BUF_INIT(320);
    char hash[PASSWORD_HASH_MAX];
    const char *why;
    str_t pw = body_str(r, "password");
    int rc;
    if (users__normalize_email(body_str(r, "email"), &email)) {
        buf_free(&email);
        return http_invalid(r, "email", "must be a valid email address");
    }
    if ((why = password_policy(pw, buf_str(&email)))) {
        buf_free(&email);
        return http_invalid(r, "password", why);
    }
    if (password_hash(pw, hash)) {
        buf_free(&email);
        return http_fail(r, 503, "SERVICE_UNAVAILABLE", "cannot hash the password now");
    }
    struct reg_ctx c = {.r = r, .email = buf_str(&email), .name = body_str(r, "name"), .hash = hash};
    rc = db_tx(r->db, DB_TX_WRITE, tx_register, &c);
    buf_free(&email);
    if (rc == DB_ECONSTRAINT)
        return http_fail(r, 409, "CONFLICT", "an account with this email already exists");
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    r->status = 201;
    return 0;
}

/* ---- login ---- */

struct login_ctx {
    struct req *r;
    str_t user_id, role;
};

static int tx_login_ok(struct db *db, void *arg)
{
    struct login_ctx *c = arg;
    int rc = db_exec(db, "UPDATE users SET failed_logins = 0, locked_until = ms_ts(0) WHERE id = ?",
                     DB_ARGS(DBA_TEXT(c->user_id)), NULL);
    return rc ? rc : users__issue_tokens(c->r, db, c->user_id, c->role, STR_NULL);
}

static int h_login(struct req *r)
{
    struct buf email = BUF_INIT(320);
    str_t pw = body_str(r, "password");
    struct db_res *res = NULL;
    int64_t now = time_now_ms();
    int rc;
    if (users__normalize_email(body_str(r, "email"), &email)) {
        buf_free(&email);
        password_burn(pw);
        return http_fail(r, 401, "INVALID_CREDENTIALS", "invalid email or password");
    }
    rc = db_query(r->db,
                  "SELECT id, password_hash, role, status, failed_logins, ts_ms(locked_until) FROM users WHERE email = ?",
                  DB_ARGS(DBA_TEXT(buf_str(&email))), &res);
    buf_free(&email);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if ((rc = db_next(res)) != 1 || db_isnull(res, 1)) {
        db_res_free(res);
        if (rc < 0)
            return http_db_fail(r, rc);
        password_burn(pw); /* same cost as a real check: no timing oracle */
        return http_fail(r, 401, "INVALID_CREDENTIALS", "invalid email or password");
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
    int64_t failures = db_int(res, 4), locked_until = db_int(res, 5);
    db_res_free(res);

    if (locked_until > now) {
        r->err.retry_after_s = (locked_until - now + 999) / 1000;
        return http_fail(r, 429, "RATE_LIMIT_EXCEEDED", "too many failed logins for this account; retry later");
    }
    if (!password_verify(hash, pw)) {
        failures++;
        int64_t lock = 0;
        if (failures >= LOGIN_MAX_FAILURES) {
            int shift = (int)(failures - LOGIN_MAX_FAILURES);
            lock = now + (shift > 5 ? 15 * 60000 : (30000ll << shift));
        }
        rc = db_exec(r->db, "UPDATE users SET failed_logins = ?, locked_until = ms_ts(?) WHERE id = ?",
                     DB_ARGS(DBA_INT(failures), DBA_INT(lock), DBA_TEXT(id)), NULL);
        if (rc != DB_OK)
            return http_db_fail(r, rc);
        return http_fail(r, 401, "INVALID_CREDENTIALS", "invalid email or password");
    }
    if (banned)
        return http_fail(r, 403, "FORBIDDEN", "this account is banned");
    if (password_needs_rehash(hash)) {
        char nh[PASSWORD_HASH_MAX];
        /* best effort: a failed upgrade leaves the old (still valid) hash */
        if (password_hash(pw, nh) == 0 &&
            db_exec(r->db, "UPDATE users SET password_hash = ? WHERE id = ?", DB_ARGS(DBA_CSTR(nh), DBA_TEXT(id)),
                    NULL) != DB_OK)
            log_warn("password rehash not stored: %s", db_errmsg(r->db));
    }
    struct login_ctx c = {r, id, str_c(rolebuf)};
    rc = db_tx(r->db, DB_TX_WRITE, tx_login_ok, &c);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    return 0;
}

/* ---- refresh ---- */

struct refresh_ctx {
    struct req *r;
    char hash[65];
    int outcome; /* 0 ok, 1 invalid, 2 reuse detected (family revoked: commit that) */
};

static int tx_refresh(struct db *db, void *arg)
{
    struct refresh_ctx *c = arg;
    struct db_res *res;
    int64_t now = time_now_ms();
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
                      DB_ARGS(DBA_CSTR(c->hash)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        c->outcome = 1;
        return rc < 0 ? rc : 0;
    }
    char tid[40] = {0}, sid[40] = {0}, uid[40] = {0}, role[16] = {0};
    str_t v;
    v = db_text(res, 0);
    memcpy(tid, v.p, v.len < 39 ? v.len : 39);
    v = db_text(res, 1);
    memcpy(sid, v.p, v.len < 39 ? v.len : 39);
    v = db_text(res, 4);
    memcpy(uid, v.p, v.len < 39 ? v.len : 39);
    v = db_text(res, 6);
    memcpy(role, v.p, v.len < 15 ? v.len : 15);
    bool used = !db_isnull(res, 2);
    int64_t used_at = used ? db_int(res, 2) : 0, expires = db_int(res, 3);
    bool revoked = db_int(res, 5) != 0, banned = str_is(db_text(res, 7), "banned");
    db_res_free(res);

    if (revoked || expires <= now || banned) {
        c->outcome = 1;
        return 0;
    }
    if (used && now - used_at >= users__cfg()->refresh_grace_ms) {
        /* reuse of a rotated token: assume theft, end the whole family */
        c->outcome = 2;
        return users__revoke_session(db, str_c(sid));
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
    c->outcome = 0;
    return users__issue_tokens(c->r, db, str_c(uid), str_c(role), str_c(sid));
}

static int h_refresh(struct req *r)
{
    struct refresh_ctx c = {.r = r};
    str_t tok = body_str(r, "refresh_token");
    sha256_hex(tok, c.hash);
    int rc = db_tx(r->db, DB_TX_WRITE, tx_refresh, &c);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (c.outcome == 2) {
        log_warn("refresh token reuse detected; session revoked");
        return http_fail(r, 401, "UNAUTHORIZED", "refresh token reuse detected; the session was revoked");
    }
    if (c.outcome == 1)
        return http_fail(r, 401, "UNAUTHORIZED", "invalid or expired refresh token");
    return 0;
}

/* ---- logout ---- */

struct logout_ctx {
    struct req *r;
    bool all;
};

static int tx_logout(struct db *db, void *arg)
{
    struct logout_ctx *c = arg;
    struct req *r = c->r;
    int rc;
    if (c->all)
        return users__revoke_all_sessions(db, r->user_id);
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

static int h_logout(struct req *r)
{
    struct logout_ctx c = {r, false};
    int rc = db_tx(r->db, DB_TX_WRITE, tx_logout, &c);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    r->status = 204;
    return 0;
}

static int h_logout_all(struct req *r)
{
    struct logout_ctx c = {r, true};
    int rc = db_tx(r->db, DB_TX_WRITE, tx_logout, &c);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    r->status = 204;
    return 0;
}

/* ---- password reset ---- */

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
    int rc = db_query(db, "SELECT id FROM users WHERE email = ? AND status = 'active'", DB_ARGS(DBA_TEXT(c->email)),
                      &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    if (rc == 1) {
        str_t v = db_text(res, 0);
        memcpy(uid, v.p, v.len < 39 ? v.len : 39);
    }
    db_res_free(res);
    if (rc != 1)
        return rc < 0 ? rc : 0; /* unknown email: same 202, nothing sent */
    /* at most 3 live reset tokens per account: a mail bomb needs more than one endpoint */
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

static int h_forgot(struct req *r)
{
    struct buf email = BUF_INIT(320);
    if (users__normalize_email(body_str(r, "email"), &email) == 0) {
        struct forgot_ctx c = {buf_str(&email)};
        int rc = db_tx(r->db, DB_TX_WRITE, tx_forgot, &c);
        if (rc != DB_OK) {
            buf_free(&email);
            return http_db_fail(r, rc);
        }
    }
    buf_free(&email);
    r->status = 202; /* always: no account enumeration */
    jw_obj_begin(&r->w);
    jw_key(&r->w, "status");
    jw_cstr(&r->w, "accepted");
    jw_obj_end(&r->w);
    return 0;
}

struct token_ctx {
    const char *purpose;
    char hash[65];
    const char *pw_hash; /* reset: the new password's hash */
    bool ok;
};

static int tx_use_token(struct db *db, void *arg)
{
    struct token_ctx *c = arg;
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
        str_t v = db_text(res, 0);
        memcpy(id, v.p, v.len < 39 ? v.len : 39);
        v = db_text(res, 1);
        memcpy(uid, v.p, v.len < 39 ? v.len : 39);
    }
    db_res_free(res);
    if (rc != 1)
        return rc < 0 ? rc : 0;
    /* single use: the conditional update decides under concurrency */
    int64_t changed = 0;
    rc = db_exec(db, "UPDATE user_tokens SET used_at = ms_ts(?) WHERE id = ? AND used_at IS NULL",
                 DB_ARGS(DBA_INT(now), DBA_CSTR(id)), &changed);
    if (rc != DB_OK || changed != 1)
        return rc;
    if (c->pw_hash) {
        rc = db_exec(db,
                     "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = ms_ts(0), "
                     "updated_at = ms_ts(?) WHERE id = ?",
                     DB_ARGS(DBA_CSTR(c->pw_hash), DBA_INT(now), DBA_CSTR(uid)), NULL);
        if (rc == DB_OK)
            rc = users__revoke_all_sessions(db, str_c(uid));
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
    c->ok = rc == DB_OK;
    return rc;
}

static int h_reset(struct req *r)
{
    struct token_ctx c = {.purpose = "reset_password"};
    char hash[PASSWORD_HASH_MAX];
    str_t pw = body_str(r, "password");
    const char *why = password_policy(pw, STR_NULL);
    if (why)
        return http_invalid(r, "password", why);
    sha256_hex(body_str(r, "token"), c.hash);
    if (password_hash(pw, hash))
        return http_fail(r, 503, "SERVICE_UNAVAILABLE", "cannot hash the password now");
    c.pw_hash = hash;
    int rc = db_tx(r->db, DB_TX_WRITE, tx_use_token, &c);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (!c.ok)
        return http_invalid(r, "token", "is invalid or expired");
    r->status = 204;
    return 0;
}

static int h_verify_email(struct req *r)
{
    struct token_ctx c = {.purpose = "verify_email"};
    sha256_hex(body_str(r, "token"), c.hash);
    int rc = db_tx(r->db, DB_TX_WRITE, tx_use_token, &c);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (!c.ok)
        return http_invalid(r, "token", "is invalid or expired");
    r->status = 204;
    return 0;
}

struct resend_ctx {
    struct req *r;
};

static int tx_resend(struct db *db, void *arg)
{
    struct req *r = ((struct resend_ctx *)arg)->r;
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
    struct resend_ctx c = {r};
    int rc = db_tx(r->db, DB_TX_WRITE, tx_resend, &c);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    r->status = 202;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "status");
    jw_cstr(&r->w, "accepted");
    jw_obj_end(&r->w);
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
        if (users__normalize_email(e, dest))
            return http_invalid(r, "email", "must be a valid email address");
    } else {
        *channel = "phone";
        if (!users__phone_ok(p))
            return http_invalid(r, "phone", "must be an E.164 number like +905551234567");
        (void)buf_put(dest, p);
    }
    return 0;
}

static void otp_hash(const char *channel, str_t dest, str_t code, char out[65])
{
    struct buf m = BUF_INIT(512);
    (void)buf_printf(&m, "%s|%.*s|%.*s", channel, STR_FMT(dest), STR_FMT(code));
    hmac_sha256_hex(users__otp_key(), buf_str(&m), out);
    sodium_memzero(m.ptr, m.len);
    buf_free(&m);
}

struct otp_ctx {
    struct req *r;
    const char *channel;
    str_t dest, code;
    int outcome; /* send: 0 sent, 1 throttled; verify: 0 ok, 1 wrong, 2 exhausted/none */
    int64_t retry_ms;
    char user_id[40];
    char role[16];
};

static int tx_send_otp(struct db *db, void *arg)
{
    struct otp_ctx *c = arg;
    int64_t now = time_now_ms(), last = 0;
    bool found;
    int rc = db_query_int(db,
                          "SELECT ts_ms(max(created_at)) FROM otp_codes WHERE channel = ? AND destination = ?",
                          DB_ARGS(DBA_CSTR(c->channel), DBA_TEXT(c->dest)), &last, &found);
    if (rc != DB_OK)
        return rc;
    if (found && last && now - last < OTP_RESEND_MS) {
        c->outcome = 1;
        c->retry_ms = OTP_RESEND_MS - (now - last);
        return 0;
    }
    char code[8], hash[65], id[UUID_STR_LEN + 1];
    snprintf(code, sizeof(code), "%06u", (unsigned)randombytes_uniform(1000000));
    otp_hash(c->channel, c->dest, str_make(code, 6), hash);
    uuid7_str(id);
    /* a new code replaces older ones */
    rc = db_exec(db,
                 "UPDATE otp_codes SET consumed_at = ms_ts(?) WHERE channel = ? AND destination = ? AND consumed_at IS NULL",
                 DB_ARGS(DBA_INT(now), DBA_CSTR(c->channel), DBA_TEXT(c->dest)), NULL);
    if (rc == DB_OK)
        rc = db_exec(db,
                     "INSERT INTO otp_codes (id, channel, destination, code_hash, created_at, expires_at) "
                     "VALUES (?, ?, ?, ?, ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(id), DBA_CSTR(c->channel), DBA_TEXT(c->dest), DBA_CSTR(hash), DBA_INT(now),
                             DBA_INT(now + OTP_TTL_MS)),
                     NULL);
    if (rc == DB_OK) {
        char *to = xstrndup(c->dest.p, c->dest.len);
        if (!strcmp(c->channel, "email")) {
            json_t *vars = json_pack("{s:s}", "code", code);
            rc = users__send_mail(db, to, "otp", vars);
            json_decref(vars);
        } else {
            struct buf text = BUF_INIT(256);
            (void)buf_printf(&text, "Your temel code is %s. It expires in 5 minutes.", code);
            rc = users__send_sms(db, to, buf_cstr(&text));
            buf_free(&text);
        }
        free(to);
    }
    sodium_memzero(code, sizeof(code));
    c->outcome = 0;
    return rc;
}

static int h_send_otp(struct req *r)
{
    struct buf dest = BUF_INIT(320);
    struct otp_ctx c = {.r = r};
    if (otp_target(r, &c.channel, &dest)) {
        buf_free(&dest);
        return HTTP_EFAIL;
    }
    c.dest = buf_str(&dest);
    int rc = db_tx(r->db, DB_TX_WRITE, tx_send_otp, &c);
    buf_free(&dest);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (c.outcome == 1) {
        r->err.retry_after_s = (c.retry_ms + 999) / 1000;
        return http_fail(r, 429, "RATE_LIMIT_EXCEEDED", "a code was sent recently; wait before asking again");
    }
    r->status = 202;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "status");
    jw_cstr(&r->w, "sent");
    jw_key(&r->w, "expires_in");
    jw_int(&r->w, OTP_TTL_MS / 1000);
    jw_obj_end(&r->w);
    return 0;
}

static int tx_verify_otp(struct db *db, void *arg)
{
    struct otp_ctx *c = arg;
    int64_t now = time_now_ms();
    struct db_res *res;
    char id[40] = {0}, want[65], stored[65] = {0};
    int rc = db_query(db,
                      db_pick(db,
                              "SELECT id, code_hash, attempts FROM otp_codes WHERE channel = ? AND destination = ? "
                              "AND consumed_at IS NULL AND expires_at > ms_ts(?) ORDER BY created_at DESC LIMIT 1",
                              "SELECT id, code_hash, attempts FROM otp_codes WHERE channel = ? AND destination = ? "
                              "AND consumed_at IS NULL AND expires_at > ms_ts(?) ORDER BY created_at DESC LIMIT 1 "
                              "FOR UPDATE"),
                      DB_ARGS(DBA_CSTR(c->channel), DBA_TEXT(c->dest), DBA_INT(now)), &res);
    if (rc != DB_OK)
        return rc;
    int64_t attempts = 0;
    if ((rc = db_next(res)) == 1) {
        str_t v = db_text(res, 0);
        memcpy(id, v.p, v.len < 39 ? v.len : 39);
        v = db_text(res, 1);
        memcpy(stored, v.p, v.len < 64 ? v.len : 64);
        attempts = db_int(res, 2);
    }
    db_res_free(res);
    if (rc != 1) {
        c->outcome = 2;
        return rc < 0 ? rc : 0;
    }
    if (attempts >= OTP_MAX_ATTEMPTS) {
        c->outcome = 2;
        return 0;
    }
    otp_hash(c->channel, c->dest, c->code, want);
    if (c->code.len != 6 || !ct_equal(str_make(want, 64), str_make(stored, 64))) {
        c->outcome = 1;
        /* count the failure; the fifth one burns the code */
        return db_exec(db, "UPDATE otp_codes SET attempts = attempts + 1 WHERE id = ?", DB_ARGS(DBA_CSTR(id)), NULL);
    }
    int64_t changed = 0;
    rc = db_exec(db, "UPDATE otp_codes SET consumed_at = ms_ts(?) WHERE id = ? AND consumed_at IS NULL",
                 DB_ARGS(DBA_INT(now), DBA_CSTR(id)), &changed);
    if (rc != DB_OK)
        return rc;
    if (changed != 1) {
        c->outcome = 2;
        return 0;
    }
    /* find or create the account */
    bool email = !strcmp(c->channel, "email");
    rc = db_query(db, email ? "SELECT id, role, status FROM users WHERE email = ?" : "SELECT id, role, status FROM users WHERE phone = ?",
                  DB_ARGS(DBA_TEXT(c->dest)), &res);
    if (rc != DB_OK)
        return rc;
    bool banned = false;
    if ((rc = db_next(res)) == 1) {
        str_t v = db_text(res, 0);
        memcpy(c->user_id, v.p, v.len < 39 ? v.len : 39);
        v = db_text(res, 1);
        memcpy(c->role, v.p, v.len < 15 ? v.len : 15);
        banned = str_is(db_text(res, 2), "banned");
    }
    db_res_free(res);
    if (rc < 0)
        return rc;
    if (banned) {
        c->outcome = 3;
        return 0;
    }
    if (rc == 0) {
        uuid7_str(c->user_id);
        memcpy(c->role, "user", 5);
        rc = db_exec(db,
                     email ? "INSERT INTO users (id, email, role, email_verified, profile_complete, created_ip, created_at, "
                             "updated_at) VALUES (?, ?, 'user', ?, ?, ?, ms_ts(?), ms_ts(?))"
                           : "INSERT INTO users (id, phone, role, email_verified, profile_complete, created_ip, created_at, "
                             "updated_at) VALUES (?, ?, 'user', ?, ?, ?, ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(c->user_id), DBA_TEXT(c->dest), DBA_BOOL(email), DBA_BOOL(false),
                             DBA_TEXT(req_client_ip(c->r)), DBA_INT(now), DBA_INT(now)),
                     NULL);
        if (rc != DB_OK)
            return rc;
    } else if (email) {
        rc = db_exec(db, "UPDATE users SET email_verified = ? WHERE id = ?", DB_ARGS(DBA_BOOL(true), DBA_CSTR(c->user_id)),
                     NULL);
        if (rc != DB_OK)
            return rc;
    }
    c->outcome = 0;
    return users__issue_tokens(c->r, db, str_c(c->user_id), str_c(c->role), STR_NULL);
}

static int h_verify_otp(struct req *r)
{
    struct buf dest = BUF_INIT(320);
    struct otp_ctx c = {.r = r, .code = body_str(r, "code")};
    if (otp_target(r, &c.channel, &dest)) {
        buf_free(&dest);
        return HTTP_EFAIL;
    }
    c.dest = buf_str(&dest);
    int rc = db_tx(r->db, DB_TX_WRITE, tx_verify_otp, &c);
    buf_free(&dest);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (c.outcome == 1)
        return http_fail(r, 401, "INVALID_CREDENTIALS", "the code is wrong");
    if (c.outcome == 2)
        return http_fail(r, 401, "INVALID_CREDENTIALS", "no valid code: it expired, was used, or had too many attempts");
    if (c.outcome == 3)
        return http_fail(r, 403, "FORBIDDEN", "this account is banned");
    return 0;
}

/* ---- guests ---- */

struct guest_ctx {
    struct req *r;
};

static int tx_guest(struct db *db, void *arg)
{
    struct req *r = ((struct guest_ctx *)arg)->r;
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
    struct guest_ctx c = {r};
    int rc = db_tx(r->db, DB_TX_WRITE, tx_guest, &c);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    r->status = 201;
    return 0;
}

struct migrate_ctx {
    struct req *r;
    struct jwt_claims g;
    bool found;
};

static int tx_migrate_guest(struct db *db, void *arg)
{
    struct migrate_ctx *c = arg;
    struct req *r = c->r;
    int64_t n = 0;
    bool found;
    /* the guest token must still name a live guest */
    int rc = db_query_int(db, "SELECT count(*) FROM users WHERE id = ? AND role = 'guest'",
                          DB_ARGS(DBA_CSTR(c->g.sub)), &n, &found);
    if (rc != DB_OK)
        return rc;
    if (n == 0)
        return 0;
    c->found = true;
    const struct user_data_hooks *const *hooks;
    size_t nh = users__hooks(&hooks);
    jw_obj_begin(&r->w);
    jw_key(&r->w, "migrated");
    jw_arr_begin(&r->w);
    for (size_t i = 0; i < nh; i++) {
        if (!hooks[i]->migrate_guest)
            continue;
        if ((rc = hooks[i]->migrate_guest(db, str_c(c->g.sub), r->user_id)) != DB_OK)
            return rc;
        jw_cstr(&r->w, hooks[i]->name);
    }
    jw_arr_end(&r->w);
    jw_key(&r->w, "guest_id");
    jw_cstr(&r->w, c->g.sub);
    jw_obj_end(&r->w);
    /* the guest account ends here (its sessions cascade) */
    return db_exec(db, "DELETE FROM users WHERE id = ? AND role = 'guest'", DB_ARGS(DBA_CSTR(c->g.sub)), NULL);
}

static int h_migrate_guest(struct req *r)
{
    struct migrate_ctx c = {.r = r};
    if (identity_is_guest(r))
        return http_fail(r, 403, "FORBIDDEN", "sign in to a real account to take over guest data");
    int vrc = jwt_verify(users__jwt_key(), body_str(r, "guest_token"), time_now_ms() / 1000, &c.g);
    if (vrc != JWT_OK || strcmp(c.g.role, "guest"))
        return http_invalid(r, "guest_token", "is not a valid guest access token");
    int rc = db_tx(r->db, DB_TX_WRITE, tx_migrate_guest, &c);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (!c.found)
        return http_invalid(r, "guest_token", "the guest account no longer exists");
    return 0;
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
    AUTHR("POST", "register", h_register, &register_s, RL_AUTH, "Create an account; returns tokens (201)"),
    AUTHR("POST", "login", h_login, &login_s, RL_AUTH, "Log in with email and password"),
    AUTHR("POST", "refresh", h_refresh, &refresh_s, RL_AUTH, "Rotate a refresh token for a new token pair"),
    AUTHR("POST", "logout", h_logout, &logout_s, RL_AUTH, "End this session (and the given refresh token's)", .auth = AUTH_USER,
          .flags = ROUTE_BODY_OPTIONAL),
    AUTHR("POST", "logout-all", h_logout_all, NULL, RL_AUTH, "End every session of the caller", .auth = AUTH_USER),
    AUTHR("POST", "forgot-password", h_forgot, &forgot_s, RL_EMAIL, "Mail a password-reset link (always 202)"),
    AUTHR("POST", "reset-password", h_reset, &reset_s, RL_AUTH, "Set a new password with a reset token; ends all sessions"),
    AUTHR("POST", "verify-email", h_verify_email, &verify_s, RL_AUTH, "Confirm an email address with the mailed token"),
    AUTHR("POST", "resend-verification", h_resend, NULL, RL_EMAIL, "Mail a new verification link", .auth = AUTH_USER),
    AUTHR("POST", "send-otp", h_send_otp, &send_otp_s, RL_EMAIL, "Send a one-time code by email or SMS"),
    AUTHR("POST", "verify-otp", h_verify_otp, &verify_otp_s, RL_AUTH, "Log in (or sign up) with a one-time code"),
    AUTHR("POST", "guest", h_guest, NULL, RL_AUTH, "Create a guest user and return its tokens (201)"),
    AUTHR("POST", "migrate-guest-data", h_migrate_guest, &migrate_s, RL_AUTH, "Move a guest's data into the caller's account",
          .auth = AUTH_USER),
};

void users__register_auth_routes(void) { router_add(routes, ARRAY_LEN(routes)); }
