/*
 * identity.c — the users module's core: secrets, the authenticator the HTTP
 * layer calls, token issuance, ownership helpers, personal-data hooks,
 * bootstrap admin. Routes are in auth.c, me.c and admin.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/crypto.h"
#include "auth/password.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "jobs/jobs.h"
#include "transport/mail.h"
#include "transport/sms.h"
#include "modules/users/users_internal.h"

#include "db/dbjson.h"

#include "core/banned.h"

static struct buf g_secret;      /* JWT HMAC key material */
static struct jwt_key g_jwt_key;
static unsigned char g_otp_key[32];

const struct jwt_key *users__jwt_key(void) { return &g_jwt_key; }
const unsigned char *users__otp_key(void) { return g_otp_key; }

/* ---- secrets ---- */

/* TEMEL_JWT_SECRET, else <data_dir>/jwt.secret (created once, 0600). */
static int load_secret(const struct config *cfg, struct buf *err)
{
    buf_init(&g_secret, 1024);
    if (users__cfg()->jwt_secret) {
        (void)buf_puts(&g_secret, users__cfg()->jwt_secret);
    } else {
        struct buf path = BUF_INIT(4096);
        (void)buf_printf(&path, "%s/jwt.secret", cfg->data_dir);
        if (fs_mkdir_p(cfg->data_dir, 0700)) {
            (void)buf_printf(err, "TEMEL_DATA_DIR: cannot create %s: %s", cfg->data_dir, strerror(errno));
            buf_free(&path);
            return -1;
        }
        int fd = open(buf_cstr(&path), O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
            struct buf tmp = BUF_INIT(4096);
            (void)buf_printf(&tmp, "%s.%d.tmp", buf_cstr(&path), (int)getpid());
            token_random(&g_secret, "", 48);
            int wfd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            bool ok = wfd >= 0 && write(wfd, g_secret.ptr, g_secret.len) == (ssize_t)g_secret.len && fsync(wfd) == 0;
            if (wfd >= 0)
                close(wfd);
            /* link() fails if another process won the race: then read theirs */
            if (ok && link(buf_cstr(&tmp), buf_cstr(&path)) == 0) {
                unlink(buf_cstr(&tmp));
                buf_free(&tmp);
                buf_free(&path);
                goto derive;
            }
            unlink(buf_cstr(&tmp));
            buf_free(&tmp);
            buf_reset(&g_secret);
            fd = open(buf_cstr(&path), O_RDONLY | O_CLOEXEC);
        }
        if (fd < 0) {
            (void)buf_printf(err, "TEMEL_JWT_SECRET: not set and %s is unreadable: %s", buf_cstr(&path),
                             strerror(errno));
            buf_free(&path);
            return -1;
        }
        char *w = buf_reserve(&g_secret, 512);
        ssize_t n = w ? read(fd, w, 512) : -1;
        close(fd);
        if (n < 32) {
            (void)buf_printf(err, "TEMEL_JWT_SECRET: %s is too short", buf_cstr(&path));
            buf_free(&path);
            return -1;
        }
        buf_commit(&g_secret, (size_t)n);
        buf_free(&path);
    }
derive:
    g_jwt_key.secret = (const unsigned char *)g_secret.ptr;
    g_jwt_key.len = g_secret.len;
    /* key separation: the OTP pepper is HMAC(secret, "temel-otp") */
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, g_jwt_key.secret, g_jwt_key.len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)"temel-otp", 9);
    crypto_auth_hmacsha256_final(&st, g_otp_key);
    return 0;
}

/* ---- helpers ---- */

int identity_normalize_email(str_t in, struct buf *out)
{
    while (in.len && (in.p[0] == ' ' || in.p[0] == '\t'))
        in.p++, in.len--;
    while (in.len && (in.p[in.len - 1] == ' ' || in.p[in.len - 1] == '\t'))
        in.len--;
    const char *at = in.len ? memchr(in.p, '@', in.len) : NULL;
    if (!at || in.len > 254)
        return -1;
    size_t local = (size_t)(at - in.p), dom = in.len - local - 1;
    if (local == 0 || local > 64 || dom < 3 || memchr(at + 1, '@', dom) || !memchr(at + 1, '.', dom) ||
        at[1] == '.' || in.p[in.len - 1] == '.')
        return -1;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.p[i];
        /* ASCII only: mail transports do not speak SMTPUTF8 */
        if (c <= ' ' || c >= 0x7f || c == '"' || c == '(' || c == ')' || c == ',' || c == ':' || c == ';' ||
            c == '<' || c == '>' || c == '[' || c == ']' || c == '\\')
            return -1;
    }
    /* all of it: Victim@x and victim@x are one account (issue 9 #12) */
    for (size_t i = 0; i < in.len; i++) {
        char c = in.p[i];
        (void)buf_putc(out, (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c);
    }
    return buf_ok(out) && utf8_valid(buf_str(out)) ? 0 : -1;
}

bool users__phone_ok(str_t p)
{
    if (p.len < 9 || p.len > 16 || p.p[0] != '+' || p.p[1] == '0')
        return false;
    for (size_t i = 1; i < p.len; i++)
        if (p.p[i] < '0' || p.p[i] > '9')
            return false;
    return true;
}

void users__col_copy(const struct db_res *res, int col, char *dst, size_t cap)
{
    str_t v = db_text(res, col);
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    memcpy(dst, v.p, n);
    dst[n] = '\0';
}

void users__write_user(struct jw *w, const struct db_res *res)
{
    jw_obj_begin(w);
    jw_key(w, "id");
    jw_str(w, db_text(res, UC_ID));
    jw_key(w, "email");
    jw_db_text(w, res, UC_EMAIL);
    jw_key(w, "phone");
    jw_db_text(w, res, UC_PHONE);
    jw_key(w, "name");
    jw_str(w, db_text(res, UC_NAME));
    jw_key(w, "role");
    jw_str(w, db_text(res, UC_ROLE));
    jw_key(w, "status");
    jw_str(w, db_text(res, UC_STATUS));
    jw_key(w, "locale");
    jw_str(w, db_text(res, UC_LOCALE));
    jw_key(w, "profile");
    jw_raw(w, db_text(res, UC_PROFILE)); /* stored only after strict parsing as a JSON object */
    jw_key(w, "email_verified");
    jw_bool(w, db_int(res, UC_EVERIFIED) != 0);
    jw_key(w, "profile_complete");
    jw_bool(w, db_int(res, UC_PCOMPLETE) != 0);
    jw_key(w, "created_at");
    jw_time(w, db_int(res, UC_CREATED));
    jw_obj_end(w);
}

int users__write_user_by_id(struct db *db, str_t id, struct jw *w, bool *found)
{
    struct db_res *res;
    int rc = db_query(db, "SELECT " USER_COLS " FROM users WHERE id = ?", DB_ARGS(DBA_TEXT(id)), &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    *found = rc == 1;
    if (rc == 1)
        users__write_user(w, res);
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

bool identity_is_staff(const struct req *r) { return str_is(r->role, "admin") || str_is(r->role, "moderator"); }
bool identity_is_admin(const struct req *r) { return str_is(r->role, "admin"); }
bool identity_is_guest(const struct req *r) { return str_is(r->role, "guest"); }

bool identity_can_access(const struct req *r, str_t owner_id, enum access_rule rule)
{
    if (r->user_id.len && str_eq(r->user_id, owner_id))
        return true;
    switch (rule) {
    case ACCESS_OWNER: return false;
    case ACCESS_OWNER_OR_STAFF: return identity_is_staff(r);
    case ACCESS_OWNER_OR_ADMIN: return identity_is_admin(r);
    }
    return false;
}

int identity_require_access(struct req *r, str_t owner_id, enum access_rule rule)
{
    if (identity_can_access(r, owner_id, rule))
        return 0;
    return http_fail(r, 404, "NOT_FOUND", "no such resource");
}

/* ---- personal-data hooks ---- */

#define MAX_HOOKS 32
static const struct user_data_hooks *g_hooks[MAX_HOOKS];
static size_t g_nhooks;

void identity_register_user_data(const struct user_data_hooks *h)
{
    if (g_nhooks == MAX_HOOKS)
        FATAL("too many user data hooks");
    g_hooks[g_nhooks++] = h;
}

size_t users__hooks(const struct user_data_hooks *const **out)
{
    *out = g_hooks;
    return g_nhooks;
}

int users__created(struct db *db, str_t user_id)
{
    int rc = DB_OK;
    for (size_t i = 0; i < g_nhooks && rc == DB_OK; i++)
        if (g_hooks[i]->created)
            rc = g_hooks[i]->created(db, user_id);
    return rc;
}

/* ---- delivery ---- */

int users__send_mail(struct db *db, const char *to, const char *tmpl, json_t *vars)
{
    return mail_enqueue(db, to, tmpl, vars);
}

int users__send_sms(struct db *db, const char *to, const char *text) { return sms_enqueue(db, to, text); }

/* ---- sessions and tokens ---- */

int users__revoke_session(struct db *db, str_t sid)
{
    return db_exec(db, "UPDATE sessions SET revoked_at = ms_ts(?) WHERE id = ? AND revoked_at IS NULL",
                   DB_ARGS(DBA_INT(time_now_ms()), DBA_TEXT(sid)), NULL);
}

int users__revoke_all_sessions(struct db *db, str_t uid)
{
    return db_exec(db, "UPDATE sessions SET revoked_at = ms_ts(?) WHERE user_id = ? AND revoked_at IS NULL",
                   DB_ARGS(DBA_INT(time_now_ms()), DBA_TEXT(uid)), NULL);
}

int users__revoke_api_keys(struct db *db, str_t uid)
{
    return db_exec(db, "DELETE FROM api_keys WHERE user_id = ?", DB_ARGS(DBA_TEXT(uid)), NULL);
}

/* ---- password work (counted) ---- */

static atomic_uint_fast64_t g_pw_hashes, g_pw_verifies;

int users__pw_hash(str_t pw, char out[PASSWORD_HASH_MAX])
{
    atomic_fetch_add(&g_pw_hashes, 1);
    return password_hash(pw, out);
}

bool users__pw_verify(const char *hash, str_t pw)
{
    atomic_fetch_add(&g_pw_verifies, 1);
    return password_verify(hash, pw);
}

void users__pw_burn(str_t pw)
{
    atomic_fetch_add(&g_pw_verifies, 1);
    password_burn(pw);
}

static int h_test_work(struct req *r)
{
    jw_obj_begin(&r->w);
    jw_key(&r->w, "password_hashes");
    jw_int(&r->w, (int64_t)atomic_load(&g_pw_hashes));
    jw_key(&r->w, "password_verifies");
    jw_int(&r->w, (int64_t)atomic_load(&g_pw_verifies));
    jw_obj_end(&r->w);
    return 0;
}

static struct route test_routes[] = {
    {.method = "GET", .pattern = "/api/v1/test/identity/work", .handler = h_test_work, .rl = RL_NONE,
     .summary = "Password hashes and verifications done so far (test only)", .tag = "test", .flags = ROUTE_TEST_ONLY},
};

void users__register_test_routes(void) { router_add(test_routes, ARRAY_LEN(test_routes)); }

int users__issue_tokens(struct req *r, struct db *db, str_t user_id, str_t role, str_t sid_in)
{
    const struct users_config *cfg = users__cfg();
    int64_t now = time_now_ms();
    char sid[UUID_STR_LEN + 1], rid[UUID_STR_LEN + 1], jti[UUID_STR_LEN + 1], hash[65];
    struct buf refresh = BUF_INIT(128), access = BUF_INIT(JWT_MAX_LEN);
    int rc;
    bool found;

    if (sid_in.len) {
        if (sid_in.len > UUID_STR_LEN)
            BUG("session id too long");
        memcpy(sid, sid_in.p, sid_in.len);
        sid[sid_in.len] = '\0';
        rc = db_exec(db, "UPDATE sessions SET last_used_at = ms_ts(?) WHERE id = ?",
                     DB_ARGS(DBA_INT(now), DBA_CSTR(sid)), NULL);
    } else {
        str_t ua = req_header_get(r, "user-agent");
        uuid7_str(sid);
        rc = db_exec(db,
                     "INSERT INTO sessions (id, user_id, user_agent, ip, created_at, last_used_at, expires_at) "
                     "VALUES (?, ?, ?, ?, ms_ts(?), ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(sid), DBA_TEXT(user_id), DBA_TEXT(str_make(ua.p ? ua.p : "", ua.len > 256 ? 256 : ua.len)),
                             DBA_TEXT(req_client_ip(r)), DBA_INT(now), DBA_INT(now),
                             DBA_INT(now + cfg->refresh_ttl_s * 1000)),
                     NULL);
    }
    if (rc != DB_OK)
        goto out;
    token_random(&refresh, "rt_", 32);
    sha256_hex(buf_str(&refresh), hash);
    uuid7_str(rid);
    rc = db_exec(db,
                 "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) "
                 "VALUES (?, ?, ?, ms_ts(?), ms_ts(?))",
                 DB_ARGS(DBA_CSTR(rid), DBA_CSTR(sid), DBA_CSTR(hash), DBA_INT(now),
                         DBA_INT(now + cfg->refresh_ttl_s * 1000)),
                 NULL);
    if (rc != DB_OK)
        goto out;

    struct jwt_claims c = {.iat = now / 1000, .exp = now / 1000 + cfg->access_ttl_s};
    uuid7_str(jti);
    memcpy(c.sub, user_id.p, user_id.len < sizeof(c.sub) - 1 ? user_id.len : sizeof(c.sub) - 1);
    memcpy(c.role, role.p, role.len < sizeof(c.role) - 1 ? role.len : sizeof(c.role) - 1);
    memcpy(c.jti, jti, UUID_STR_LEN);
    memcpy(c.sid, sid, UUID_STR_LEN);
    jwt_sign(&g_jwt_key, &c, &access);

    buf_reset(&r->out);
    jw_init(&r->w, &r->out);
    jw_obj_begin(&r->w);
    jw_key(&r->w, "user");
    rc = users__write_user_by_id(db, user_id, &r->w, &found);
    if (rc != DB_OK)
        goto out;
    if (!found) {
        rc = DB_ERR;
        goto out;
    }
    jw_key(&r->w, "access_token");
    jw_str(&r->w, buf_str(&access));
    jw_key(&r->w, "refresh_token");
    jw_str(&r->w, buf_str(&refresh));
    jw_key(&r->w, "token_type");
    jw_cstr(&r->w, "Bearer");
    jw_key(&r->w, "expires_in");
    jw_int(&r->w, cfg->access_ttl_s);
    jw_obj_end(&r->w);
out:
    if (refresh.ptr)
        sodium_memzero(refresh.ptr, refresh.len);
    buf_free(&refresh);
    buf_free(&access);
    return rc;
}

/* ---- the authenticator ---- */

static str_t pool_str(struct req *r, str_t s)
{
    char *p = h2o_mem_alloc_pool(r->pool, s.len + 1);
    memcpy(p, s.p, s.len);
    p[s.len] = '\0';
    return str_make(p, s.len);
}

/* Is "name" (quoted, e.g. "\"read\"") in the key's scopes? The text is the
 * JSON array h_create_key wrote from the whitelist, so a quoted-name search
 * is exact. */
static bool scope_has(str_t scopes, const char *quoted)
{
    size_t n = strlen(quoted);
    for (size_t i = 0; i + n <= scopes.len; i++)
        if (!memcmp(scopes.p + i, quoted, n))
            return true;
    return false;
}

/* API keys act only within their scopes (issue 9 #3): read = GET/HEAD,
 * write = every other method, admin = staff routes and any staff power a
 * handler checks (without it an admin's key acts as a plain user), ai =
 * the /api/v1/ai routes (in addition to read/write). */
static int check_scopes(struct req *r, str_t scopes, enum route_auth need)
{
    bool safe = str_is(r->method, "GET") || str_is(r->method, "HEAD");
    if (!scope_has(scopes, safe ? "\"read\"" : "\"write\""))
        return http_fail(r, 403, "FORBIDDEN", "this API key lacks the %s scope", safe ? "read" : "write");
    bool admin = scope_has(scopes, "\"admin\"");
    if ((need == AUTH_STAFF || need == AUTH_ADMIN) && !admin)
        return http_fail(r, 403, "FORBIDDEN", "this API key lacks the admin scope");
    if (!admin && identity_is_staff(r))
        r->role = STRLIT("user");
    if (r->route && str_has_prefix(str_c(r->route->pattern), STRLIT("/api/v1/ai/")) && !scope_has(scopes, "\"ai\""))
        return http_fail(r, 403, "FORBIDDEN", "this API key lacks the ai scope");
    return 0;
}

static int check_role(struct req *r, enum route_auth need)
{
    if (need == AUTH_STAFF && !identity_is_staff(r))
        return http_fail(r, 403, "FORBIDDEN", "staff only");
    if (need == AUTH_ADMIN && !identity_is_admin(r))
        return http_fail(r, 403, "FORBIDDEN", "admin only");
    return 0;
}

static int authenticate(struct req *r, enum route_auth need)
{
    str_t h = req_header_get(r, "authorization");
    struct db_res *res;
    int rc;
    if (!h.p) {
        if (need == AUTH_OPTIONAL)
            return 0;
        req_header(r, "www-authenticate", STRLIT("Bearer"));
        return http_fail(r, 401, "UNAUTHORIZED", "authentication required");
    }
    if (h.len < 8 || !str_ieq(str_make(h.p, 7), STRLIT("Bearer ")))
        return http_fail(r, 401, "UNAUTHORIZED", "expected an Authorization: Bearer token");
    str_t tok = str_make(h.p + 7, h.len - 7);
    int64_t now = time_now_ms();

    if (str_has_prefix(tok, STRLIT("tml_"))) {
        char hash[65];
        if (tok.len > 128)
            return http_fail(r, 401, "UNAUTHORIZED", "invalid API key");
        sha256_hex(tok, hash);
        rc = db_query(r->db,
                      "SELECT k.id, u.id, u.role, u.status, ts_ms(k.last_used_at), k.scopes FROM api_keys k "
                      "JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?",
                      DB_ARGS(DBA_CSTR(hash)), &res);
        if (rc != DB_OK)
            return http_db_fail(r, rc);
        if ((rc = db_next(res)) != 1) {
            db_res_free(res);
            return rc < 0 ? http_db_fail(r, rc) : http_fail(r, 401, "UNAUTHORIZED", "invalid API key");
        }
        r->api_key_id = pool_str(r, db_text(res, 0));
        r->user_id = pool_str(r, db_text(res, 1));
        r->role = pool_str(r, db_text(res, 2));
        bool banned = str_is(db_text(res, 3), "banned");
        int64_t last = db_isnull(res, 4) ? 0 : db_int(res, 4);
        str_t scopes = pool_str(r, db_text(res, 5));
        db_res_free(res);
        if (banned)
            return http_fail(r, 403, "FORBIDDEN", "this account is banned");
        if (check_scopes(r, scopes, need))
            return HTTP_EFAIL;
        /* at most one write a minute per key; a failure only delays last_used_at */
        if (now - last > 60000 && db_exec(r->db, "UPDATE api_keys SET last_used_at = ms_ts(?) WHERE id = ?",
                                          DB_ARGS(DBA_INT(now), DBA_TEXT(r->api_key_id)), NULL) != DB_OK)
            log_warn("api key last_used_at not stored: %s", db_errmsg(r->db));
        return check_role(r, need);
    }

    struct jwt_claims c;
    rc = jwt_verify(&g_jwt_key, tok, now / 1000, &c);
    if (rc != JWT_OK)
        return http_fail(r, 401, "UNAUTHORIZED", rc == JWT_EEXPIRED ? "the access token has expired"
                                                                       : "invalid access token");
    /* One statement: the session check and the caller's row (GET /me answers
     * from it without another round trip). */
    rc = db_query(r->db,
                  "SELECT " USER_COLS_U " FROM sessions s JOIN users u ON u.id = s.user_id "
                  "WHERE s.id = ? AND s.user_id = ? AND s.revoked_at IS NULL AND s.expires_at > ms_ts(?)",
                  DB_ARGS(DBA_CSTR(c.sid), DBA_CSTR(c.sub), DBA_INT(now)), &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? http_db_fail(r, rc) : http_fail(r, 401, "UNAUTHORIZED", "the session has ended");
    }
    r->user_id = pool_str(r, str_c(c.sub));
    r->session_id = pool_str(r, str_c(c.sid));
    r->role = pool_str(r, db_text(res, UC_ROLE)); /* the current role, not the token's */
    bool banned = str_is(db_text(res, UC_STATUS), "banned");
    if (!banned && r->route && r->route->handler == users__h_me) {
        struct buf *b = req_buf(r, BUF_MAX_JSON_RESPONSE);
        struct jw w;
        jw_init(&w, b);
        users__write_user(&w, res);
        if (buf_ok(b))
            r->ident = b;
    }
    db_res_free(res);
    if (banned)
        return http_fail(r, 403, "FORBIDDEN", "this account is banned");
    return check_role(r, need);
}

/* ---- creating users ---- */

int identity_create_user(struct db *db, const char *email, const char *password, const char *name, const char *role,
                         struct buf *err)
{
    struct buf e = BUF_INIT(320);
    char hash[PASSWORD_HASH_MAX], id[UUID_STR_LEN + 1];
    const char *why;
    int rc = 1; /* invalid input until proven otherwise */
    if (identity_normalize_email(str_c(email), &e)) {
        (void)buf_puts(err, "email: must be a valid email address");
        goto out;
    }
    if ((why = password_policy(str_c(password), buf_str(&e)))) {
        (void)buf_printf(err, "password: %s", why);
        goto out;
    }
    if (strcmp(role, "admin") && strcmp(role, "moderator") && strcmp(role, "user")) {
        (void)buf_puts(err, "role: must be admin, moderator or user");
        goto out;
    }
    if (users__pw_hash(str_c(password), hash)) {
        (void)buf_puts(err, "out of memory hashing the password");
        goto out;
    }
    int64_t now = time_now_ms();
    uuid7_str(id);
    rc = db_exec(db,
                 "INSERT INTO users (id, email, password_hash, name, role, email_verified, created_at, updated_at) "
                 "VALUES (?, ?, ?, ?, ?, ?, ms_ts(?), ms_ts(?))",
                 DB_ARGS(DBA_CSTR(id), DBA_TEXT(buf_str(&e)), DBA_CSTR(hash), DBA_CSTR(name ? name : ""),
                         DBA_CSTR(role), DBA_BOOL(true), DBA_INT(now), DBA_INT(now)),
                 NULL);
    if (rc == DB_OK)
        rc = users__created(db, str_c(id));
    if (rc == DB_ECONSTRAINT)
        (void)buf_printf(err, "a user with email %s already exists", buf_cstr(&e));
    else if (rc != DB_OK)
        (void)buf_printf(err, "database: %s", db_errmsg(db));
out:
    buf_free(&e);
    return rc;
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    if (load_secret(cfg, err))
        return -1;
    http_set_authenticator(authenticate);
    users__photo_migrate(cfg, db);
    const struct users_config *uc = users__cfg();
    if (uc->admin_email) {
        struct buf e = BUF_INIT(320);
        int64_t n = 0;
        bool found;
        if (identity_normalize_email(str_c(uc->admin_email), &e)) {
            (void)buf_puts(err, "TEMEL_ADMIN_EMAIL: must be a valid email address");
            buf_free(&e);
            return -1;
        }
        int rc = db_query_int(db, "SELECT count(*) FROM users WHERE email = ?", DB_ARGS(DBA_TEXT(buf_str(&e))), &n,
                              &found);
        buf_free(&e);
        if (rc != DB_OK) {
            (void)buf_printf(err, "database: %s", db_errmsg(db));
            return -1;
        }
        if (n == 0) {
            if (identity_create_user(db, uc->admin_email, uc->admin_password, "Administrator", "admin", err))
                return -1;
            log_info("bootstrap admin created");
        }
    }
    return 0;
}

/* Maintenance: expired or long-revoked credentials go (hourly, jobs.maintenance). */
static int purge(struct db *db, int64_t now, int64_t *removed)
{
    static const char *const sql[] = {
        "DELETE FROM user_tokens WHERE expires_at <= ms_ts(?)",
        "DELETE FROM refresh_tokens WHERE expires_at <= ms_ts(?)",
        "DELETE FROM sessions WHERE expires_at <= ms_ts(?) OR revoked_at <= ms_ts(?)", /* revoked a week ago */
    };
    int64_t n;
    int rc = users__otp_purge(db, now, removed);
    if (rc != DB_OK)
        return rc;
    for (size_t i = 0; i < ARRAY_LEN(sql); i++) {
        rc = i == 2 ? db_exec(db, sql[i], DB_ARGS(DBA_INT(now), DBA_INT(now - 7 * 86400000ll)), &n)
                        : db_exec(db, sql[i], DB_ARGS(DBA_INT(now)), &n);
        if (rc != DB_OK)
            return rc;
        *removed += n;
    }
    return DB_OK;
}

static void register_jobs(void)
{
    users__register_templates();
    users__register_jobs();
    jobs_maintenance_register("identity", purge);
}

static void register_routes(void)
{
    users__register_auth_routes();
    users__register_me_routes();
    users__register_admin_routes();
    users__register_test_routes();
}

const struct module users_module = {
    .name = "users",
    .config = users__config,
    .register_routes = register_routes,
    .register_jobs = register_jobs,
    .init = init,
};
