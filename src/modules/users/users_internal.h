/* users_internal.h — shared by the files of the users module only. */
#ifndef TEMEL_USERS_INTERNAL_H
#define TEMEL_USERS_INTERNAL_H

#include "auth/jwt.h"
#include "db/db.h"
#include "modules/users/identity.h"

#define OTP_TTL_MS (5 * 60 * 1000)
#define OTP_MAX_ATTEMPTS 5
#define OTP_RESEND_MS (60 * 1000)
#define RESET_TTL_MS (30 * 60 * 1000)
#define VERIFY_TTL_MS (48 * 3600 * 1000)
#define LOGIN_MAX_FAILURES 5
/* Wrong OTP codes per destination, across codes and purposes (issue 9 #4):
 * at OTP_FAIL_HOUR in an hour or OTP_FAIL_DAY in a day the destination gets
 * no new code and no verification until the oldest counted failure ages out. */
#define OTP_FAIL_HOUR 10
#define OTP_FAIL_DAY 20
#define HOUR_MS (3600 * 1000ll)
#define DAY_MS (24 * HOUR_MS)

/* Columns of USER_COLS, in order. */
#define USER_COLS "id, email, phone, name, role, status, locale, profile, email_verified, profile_complete, ts_ms(created_at)"
/* The same columns, qualified for a join with the users table as `u`. */
#define USER_COLS_U                                                                                                  \
    "u.id, u.email, u.phone, u.name, u.role, u.status, u.locale, u.profile, u.email_verified, u.profile_complete, "  \
    "ts_ms(u.created_at)"
enum { UC_ID, UC_EMAIL, UC_PHONE, UC_NAME, UC_ROLE, UC_STATUS, UC_LOCALE, UC_PROFILE, UC_EVERIFIED, UC_PCOMPLETE,
       UC_CREATED };

/* The module's settings (config.c; a bad value exits 2 naming the variable). */
struct users_config {
    char *jwt_secret;         /* TEMEL_JWT_SECRET (>= 32 bytes); required in production, else
                                 generated once into <data_dir>/jwt.secret */
    int64_t access_ttl_s;     /* TEMEL_ACCESS_TTL_S (900) */
    int64_t refresh_ttl_s;    /* TEMEL_REFRESH_TTL_S (7 days) */
    int64_t refresh_grace_ms; /* TEMEL_REFRESH_REUSE_GRACE_MS: a used refresh token may be retried
                                 this long (lost response; 10000) */
    char *admin_email, *admin_password; /* TEMEL_ADMIN_EMAIL/PASSWORD: bootstrap admin on first start */
};
const struct users_config *users__cfg(void);
int users__config(const struct config *cfg, struct buf *err); /* the module's config hook */

const struct jwt_key *users__jwt_key(void);
const unsigned char *users__otp_key(void); /* 32 bytes, derived from the JWT secret */

/* Copy a text column into dst (cap bytes, NUL-terminated, cut to fit). */
void users__col_copy(const struct db_res *res, int col, char *dst, size_t cap);

/* Write a user object from a row selected with USER_COLS. */
void users__write_user(struct jw *w, const struct db_res *res);
/* Load and write a user by id; DB_OK with *found false when missing. */
/* GET /me (me.c): the authenticator renders the caller's row for it from
 * its own session statement (one statement per request, runtime issue). */
int users__h_me(struct req *r);
int users__write_user_by_id(struct db *db, str_t id, struct jw *w, bool *found);

/* E.164-ish phone: "+" and 8–15 digits. */
bool users__phone_ok(str_t phone);

/* Create a session + refresh token and write the token response object:
 * {"user":{...},"access_token","refresh_token","token_type","expires_in"}.
 * Runs inside the caller's db_tx. */
int users__issue_tokens(struct req *r, struct db *db, str_t user_id, str_t role, str_t session_id_or_empty);

/* Revoke one session / all of a user's sessions (inside a tx). */
int users__revoke_session(struct db *db, str_t session_id);
int users__revoke_all_sessions(struct db *db, str_t user_id);

/* Delete every API key of a user (inside a tx): password reset, logout-all,
 * the first OTP sign-in to an unclaimed account. */
int users__revoke_api_keys(struct db *db, str_t user_id);


/* Password work, counted for the test-only /api/v1/test/identity/work
 * route (proves which requests hash and which do not, without timing). */
int users__pw_hash(str_t pw, char out[128]) WARN_UNUSED;
bool users__pw_verify(const char *hash, str_t pw);
void users__pw_burn(str_t pw);

/* One-time codes (otp.c). A target is a channel ("email"|"phone") and a
 * destination; user_id empty = a sign-in code, else a code that proves a
 * phone for that account (PATCH /me). Both run inside the caller's write tx
 * and serialise per destination (SQLite: BEGIN IMMEDIATE; PostgreSQL: an
 * advisory lock on the destination), so check-then-insert cannot race. */
struct otp_target {
    const char *channel;
    str_t dest;
    str_t user_id;
};
/* Send a new code: 0, HTTP_EFAIL (429 recorded: resend too soon or the
 * destination is locked), or a db_rc. */
int users__otp_issue(struct req *r, struct db *db, const struct otp_target *t);
/* Check code: 0 = right (consumed); USERS_OTP_WRONG = 401 recorded and the
 * failure written (the req_tx callback returns 0 so that it commits, and
 * req_tx then fails with the 401);
 * HTTP_EFAIL = refused, nothing written (401 no live code, 429 the
 * destination is locked); or a db_rc. */
enum { USERS_OTP_WRONG = 2 };
int users__otp_check(struct req *r, struct db *db, const struct otp_target *t, str_t code);
int users__otp_purge(struct db *db, int64_t now, int64_t *removed);

/* Registered personal-data hooks. */
size_t users__hooks(const struct user_data_hooks *const **out);
/* Run every hook's created() for a new account, inside the transaction that created it. */
int users__created(struct db *db, str_t user_id);

/* Deliver a templated mail / an SMS as a job inside the caller's tx. */
int users__send_mail(struct db *db, const char *to, const char *tmpl, json_t *vars);
int users__send_sms(struct db *db, const char *to, const char *text);

/* Profile photo (photo.c): a file (purpose avatar) the user_photos row points at. */
#define USERS_PHOTO_MAX (2u << 20) /* the image itself */
int users__h_photo_upload(struct req *r);
int users__h_photo_get(struct req *r);
int users__h_photo_delete(struct req *r);
/* Guest data moving to user_id: the guest's photo becomes the account's
 * unless it has one (then the guest's file is forgotten). DB_* rc. */
int users__photo_migrate_guest(struct db *db, str_t guest_id, str_t user_id);
/* {"mime_type","size"} or null, for the export. DB_* rc. */
int users__photo_write_meta(struct db *db, str_t user_id, struct jw *w);
/* At start: move photos of <data_dir>/photos (before the files module kept
 * them) into files; what cannot be moved stays there and is logged. */
void users__photo_migrate(const struct config *cfg, struct db *db);

void users__register_auth_routes(void);
void users__register_me_routes(void);
void users__register_admin_routes(void);
void users__register_templates(void);
void users__register_test_routes(void);
void users__register_jobs(void);

#endif
