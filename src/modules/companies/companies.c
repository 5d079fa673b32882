/*
 * companies.c — corporate accounts: the routes listed in companies.h.
 *
 * Access is decided per request by one indexed read of company_members
 * (companies_require): not a member → 404, so a company's existence never
 * leaks; a write a member's role does not allow → 403. Writes that depend on
 * roles run in one transaction that re-reads the role under lock
 * (PostgreSQL: FOR UPDATE on the member row; SQLite: one writer), so a
 * member removed meanwhile cannot act, and the unique index "one owner per
 * company" holds even when two ownership hand-overs race.
 *
 * Invitations: a random token (32 bytes, base64url, prefix "inv_") goes
 * into the mail only; the row keeps its SHA-256. Accepting it is one
 * conditional UPDATE (status pending → accepted) and the member INSERT in
 * one transaction: a token is used once even when clicked twice at once.
 */
#include <stdio.h>

#include "auth/crypto.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "modules/audit/audit.h"
#include "modules/catalog/catalog.h"
#include "modules/companies/companies_internal.h"
#include "modules/users/identity.h"
#include "transport/mail.h"

#include "core/banned.h"

#define INVITE_TTL_DEFAULT_S (7 * 24 * 3600)

static int64_t invite_ttl_s = INVITE_TTL_DEFAULT_S;

static const char *const role_names[] = {"", "member", "admin", "owner"};

static enum company_role role_of(str_t s)
{
    for (int i = 1; i < (int)ARRAY_LEN(role_names); i++)
        if (str_eq(s, str_c(role_names[i])))
            return (enum company_role)i;
    return COMPANY_NONE;
}

static int role_read(struct db *db, str_t company_id, str_t user_id, bool lock, enum company_role *out)
{
#define ROLE_SQL "SELECT role FROM company_members WHERE company_id = ? AND user_id = ?"
    struct db_res *res;
    *out = COMPANY_NONE;
    if (!uuid_valid(company_id))
        return DB_OK;
    int rc = db_query(db, lock ? db_pick(db, ROLE_SQL, ROLE_SQL " FOR UPDATE") : ROLE_SQL,
                      DB_ARGS(DBA_TEXT(company_id), DBA_TEXT(user_id)), &res);
#undef ROLE_SQL
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1)
        *out = role_of(db_text(res, 0));
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

int companies_role(struct db *db, str_t company_id, str_t user_id, enum company_role *out)
{
    return role_read(db, company_id, user_id, false, out);
}

/* Inside a handler or its transaction: the caller's role, 404 / 403 recorded. */
static int require(struct req *r, bool lock, enum company_role need, enum company_role *out)
{
    enum company_role role;
    int rc = role_read(r->db, req_param(r, "id"), r->user_id, lock, &role);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (role == COMPANY_NONE)
        return http_fail(r, 404, "NOT_FOUND", "no such company");
    if (role < need)
        return http_fail(r, 403, "FORBIDDEN", "this needs the %s role in the company", role_names[need]);
    if (out)
        *out = role;
    return 0;
}

int companies_require(struct req *r, enum company_role need, enum company_role *out)
{
    return require(r, false, need, out);
}

static int audit(struct req *r, const char *action, str_t target, json_t *after)
{
    struct audit_entry e = {.action = action, .category = "companies", .target_type = "company",
                            .target_id = target, .after = after, .success = true};
    int rc = audit_record_req(r, &e);
    json_decref(after);
    return rc;
}

static str_t body_text(struct req *r, const char *key)
{
    const json_t *v = json_object_get(r->body, key);
    return json_is_string(v) ? str_make(json_string_value(v), json_string_length(v)) : STR_NULL;
}

static void location(struct req *r, const char *fmt, str_t a, str_t b)
{
    struct buf *loc = req_buf(r, 256);
    (void)buf_printf(loc, fmt, STR_FMT(a), STR_FMT(b));
    req_header(r, "location", buf_str(loc));
}

/* Answer the one row sql selects (cols) with status; none: 404 "no such <what>". */
static int respond_one(struct req *r, const char *sql, const db_arg *args, size_t nargs,
                       const struct http_col *cols, const char *what, int status)
{
    struct db_res *res;
    int rc = db_query(r->db, sql, args, nargs, &res);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if ((rc = db_next(res)) == 1)
        http_write_row(&r->w, res, cols);
    db_res_free(res);
    if (rc != 1)
        return rc < 0 ? http_db_fail(r, rc) : http_fail(r, 404, "NOT_FOUND", "no such %s", what);
    r->status = status;
    return 0;
}

/* ---- companies ---- */

#define COMPANY_COLS "c.id, c.name, c.tax_id, m.role, ts_ms(c.created_at), ts_ms(c.updated_at)"
static const struct http_col company_cols[] = {{"id", COL_TEXT},         {"name", COL_TEXT},
                                               {"tax_id", COL_TEXT},     {"role", COL_TEXT},
                                               {"created_at", COL_TIME}, {"updated_at", COL_TIME},
                                               {NULL, COL_TEXT}};

static void company_row(struct jw *w, const struct db_res *res) { http_write_row(w, res, company_cols); }

static int respond_company(struct req *r, str_t id, int status)
{
    return respond_one(r,
                       "SELECT " COMPANY_COLS " FROM companies c JOIN company_members m ON m.company_id = c.id "
                       "AND m.user_id = ? WHERE c.id = ?",
                       DB_ARGS(DBA_TEXT(r->user_id), DBA_TEXT(id)), company_cols, "company", status);
}

struct create_ctx {
    char id[UUID_STR_LEN + 1];
};

static int tx_create(struct req *r, void *arg)
{
    struct create_ctx *c = arg;
    int64_t now = time_now_ms();
    str_t tax = body_text(r, "tax_id");
    int rc = db_exec(r->db,
                     "INSERT INTO companies (id, version, name, tax_id, created_by, created_at, updated_at) "
                     "VALUES (?, 1, ?, ?, ?, ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(c->id), DBA_TEXT(body_text(r, "name")), DBA_TEXT(tax.p ? tax : STRLIT("")),
                             DBA_TEXT(r->user_id), DBA_INT(now), DBA_INT(now)),
                     NULL);
    if (rc == DB_OK)
        rc = db_exec(r->db,
                     "INSERT INTO company_members (company_id, user_id, role, created_at) VALUES (?, ?, 'owner', ms_ts(?))",
                     DB_ARGS(DBA_CSTR(c->id), DBA_TEXT(r->user_id), DBA_INT(now)), NULL);
    return rc == DB_OK ? audit(r, "company.create", str_c(c->id), json_pack("{s:O?}", "name",
                                                                                json_object_get(r->body, "name")))
                       : rc;
}

static int h_create(struct req *r)
{
    struct create_ctx c;
    if (identity_is_guest(r))
        return http_fail(r, 403, "FORBIDDEN", "guests cannot create companies: register first");
    uuid7_str(c.id);
    if (req_tx(r, DB_TX_WRITE, tx_create, &c))
        return HTTP_EFAIL;
    location(r, "/api/v1/companies/%.*s%.*s", str_c(c.id), STRLIT(""));
    return respond_company(r, str_c(c.id), 201);
}

static int h_list(struct req *r)
{
    static const char *const allowed[] = {NULL};
    db_arg args[3] = {DBA_TEXT(r->user_id)};
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    const struct http_list_query q = {COMPANY_COLS, "FROM companies c JOIN company_members m ON m.company_id = c.id",
                                      " WHERE m.user_id = ?", "c.created_at DESC, c.id DESC", company_row};
    return http_list(r, &q, args, 1, ARRAY_LEN(args));
}

static int h_get(struct req *r)
{
    if (require(r, false, COMPANY_MEMBER, NULL))
        return HTTP_EFAIL;
    return respond_company(r, req_param(r, "id"), 200);
}

static int tx_patch(struct req *r, void *arg)
{
    (void)arg;
    str_t id = req_param(r, "id"), name = body_text(r, "name"), tax = body_text(r, "tax_id");
    if (require(r, true, COMPANY_ADMIN, NULL))
        return HTTP_EFAIL;
    int rc = db_exec(r->db,
                     "UPDATE companies SET name = coalesce(?, name), tax_id = coalesce(?, tax_id), "
                     "version = version + 1, updated_at = ms_ts(?) WHERE id = ?",
                     DB_ARGS(name.p ? DBA_TEXT(name) : DBA_NULL, tax.p ? DBA_TEXT(tax) : DBA_NULL,
                             DBA_INT(time_now_ms()), DBA_TEXT(id)),
                     NULL);
    return rc == DB_OK ? audit(r, "company.update", id, json_deep_copy(r->body)) : rc;
}

static int h_patch(struct req *r)
{
    if (req_tx(r, DB_TX_WRITE, tx_patch, NULL))
        return HTTP_EFAIL;
    return respond_company(r, req_param(r, "id"), 200);
}

static int tx_delete(struct req *r, void *arg)
{
    (void)arg;
    str_t id = req_param(r, "id");
    if (require(r, true, COMPANY_OWNER, NULL))
        return HTTP_EFAIL;
    int rc = db_exec(r->db, "DELETE FROM companies WHERE id = ?", DB_ARGS(DBA_TEXT(id)), NULL);
    return rc == DB_OK ? audit(r, "company.delete", id, NULL) : rc;
}

static int h_delete(struct req *r)
{
    if (req_tx(r, DB_TX_WRITE, tx_delete, NULL))
        return HTTP_EFAIL;
    r->status = 204;
    return 0;
}

/* ---- members ---- */

static const struct http_col member_cols[] = {{"user_id", COL_TEXT}, {"email", COL_TEXT},     {"name", COL_TEXT},
                                              {"role", COL_TEXT},    {"joined_at", COL_TIME}, {NULL, COL_TEXT}};
static void member_row(struct jw *w, const struct db_res *res) { http_write_row(w, res, member_cols); }

static int h_members(struct req *r)
{
    static const char *const allowed[] = {"role", NULL};
    const str_t *role = req_query(r, "role");
    db_arg args[4] = {DBA_TEXT(req_param(r, "id")), role ? DBA_TEXT(*role) : DBA_NULL};
    if (require(r, false, COMPANY_MEMBER, NULL) || http_query_allow(r, allowed))
        return HTTP_EFAIL;
    if (role && role_of(*role) == COMPANY_NONE)
        return http_invalid(r, "role", "must be owner, admin or member");
    const struct http_list_query q = {"m.user_id, u.email, u.name, m.role, ts_ms(m.created_at)",
                                      "FROM company_members m JOIN users u ON u.id = m.user_id",
                                      role ? " WHERE m.company_id = ? AND m.role = ?" : " WHERE m.company_id = ?",
                                      "m.created_at, m.user_id", member_row};
    return http_list(r, &q, args, role ? 2 : 1, ARRAY_LEN(args));
}

static int set_role(struct db *db, str_t company, str_t user, const char *role)
{
    return db_exec(db, "UPDATE company_members SET role = ? WHERE company_id = ? AND user_id = ?",
                   DB_ARGS(DBA_CSTR(role), DBA_TEXT(company), DBA_TEXT(user)), NULL);
}

static int tx_member_role(struct req *r, void *arg)
{
    (void)arg;
    str_t id = req_param(r, "id"), user = req_param(r, "user_id");
    enum company_role me, them, to = role_of(body_text(r, "role"));
    int rc;
    if (require(r, true, COMPANY_ADMIN, &me))
        return HTTP_EFAIL;
    if ((rc = role_read(r->db, id, user, true, &them)) != DB_OK)
        return rc;
    if (them == COMPANY_NONE)
        return http_fail(r, 404, "NOT_FOUND", "no such member");
    if (them == to)
        return DB_OK;
    if (them == COMPANY_OWNER)
        return http_fail(r, 409, "CONFLICT", "the owner's role changes only by handing ownership to another member");
    if (to == COMPANY_OWNER) { /* hand-over: the old owner stays as admin */
        if (me != COMPANY_OWNER)
            return http_fail(r, 403, "FORBIDDEN", "only the owner hands ownership over");
        if ((rc = set_role(r->db, id, r->user_id, "admin")) != DB_OK)
            return rc;
    }
    if ((rc = set_role(r->db, id, user, role_names[to])) != DB_OK)
        return rc;
    return audit(r, "company.member_role", id,
                 json_pack("{s:s%,s:s}", "user_id", user.p, user.len, "role", role_names[to]));
}

static int respond_member(struct req *r, str_t company, str_t user)
{
    return respond_one(r,
                       "SELECT m.user_id, u.email, u.name, m.role, ts_ms(m.created_at) FROM company_members m "
                       "JOIN users u ON u.id = m.user_id WHERE m.company_id = ? AND m.user_id = ?",
                       DB_ARGS(DBA_TEXT(company), DBA_TEXT(user)), member_cols, "member", 200);
}

static int h_member_role(struct req *r)
{
    if (req_tx(r, DB_TX_WRITE, tx_member_role, NULL))
        return HTTP_EFAIL;
    return respond_member(r, req_param(r, "id"), req_param(r, "user_id"));
}

static int tx_member_remove(struct req *r, void *arg)
{
    (void)arg;
    str_t id = req_param(r, "id"), user = req_param(r, "user_id");
    bool self = str_eq(user, r->user_id);
    enum company_role me, them;
    int rc;
    if (require(r, true, self ? COMPANY_MEMBER : COMPANY_ADMIN, &me))
        return HTTP_EFAIL;
    if ((rc = role_read(r->db, id, user, true, &them)) != DB_OK)
        return rc;
    if (them == COMPANY_NONE)
        return http_fail(r, 404, "NOT_FOUND", "no such member");
    if (them == COMPANY_OWNER)
        return http_fail(r, 409, "CONFLICT", "the owner cannot leave: hand ownership to another member first");
    if (them == COMPANY_ADMIN && !self && me != COMPANY_OWNER)
        return http_fail(r, 403, "FORBIDDEN", "only the owner removes an admin");
    rc = db_exec(r->db, "DELETE FROM company_members WHERE company_id = ? AND user_id = ?",
                 DB_ARGS(DBA_TEXT(id), DBA_TEXT(user)), NULL);
    return rc == DB_OK ? audit(r, "company.member_remove", id, json_pack("{s:s%}", "user_id", user.p, user.len)) : rc;
}

static int h_member_remove(struct req *r)
{
    if (req_tx(r, DB_TX_WRITE, tx_member_remove, NULL))
        return HTTP_EFAIL;
    r->status = 204;
    return 0;
}

/* ---- invitations ---- */

#define INVITE_COLS "id, email, role, status, ts_ms(expires_at), ts_ms(created_at)"
static const struct http_col invite_cols[] = {{"id", COL_TEXT},         {"email", COL_TEXT},
                                              {"role", COL_TEXT},       {"status", COL_TEXT},
                                              {"expires_at", COL_TIME}, {"created_at", COL_TIME},
                                              {NULL, COL_TEXT}};
static void invite_row(struct jw *w, const struct db_res *res) { http_write_row(w, res, invite_cols); }

struct invite_ctx {
    char id[UUID_STR_LEN + 1];
    struct buf *email;
};

static int tx_invite(struct req *r, void *arg)
{
    struct invite_ctx *c = arg;
    str_t company = req_param(r, "id");
    int64_t now = time_now_ms(), n = 0;
    bool found;
    if (require(r, true, COMPANY_ADMIN, NULL))
        return HTTP_EFAIL;
    int rc = db_query_int(r->db,
                          "SELECT count(*) FROM company_members m JOIN users u ON u.id = m.user_id "
                          "WHERE m.company_id = ? AND lower(u.email) = lower(?)",
                          DB_ARGS(DBA_TEXT(company), DBA_TEXT(buf_str(c->email))), &n, &found);
    if (rc != DB_OK)
        return rc;
    if (n)
        return http_fail(r, 409, "CONFLICT", "%s is already a member", buf_cstr(c->email));
    /* a new invitation replaces a pending one for the same address */
    rc = db_exec(r->db,
                 "UPDATE company_invitations SET status = 'revoked', updated_at = ms_ts(?) "
                 "WHERE company_id = ? AND lower(email) = lower(?) AND status = 'pending'",
                 DB_ARGS(DBA_INT(now), DBA_TEXT(company), DBA_TEXT(buf_str(c->email))), NULL);
    if (rc != DB_OK)
        return rc;
    struct buf token = BUF_INIT(128);
    char hash[65];
    token_random(&token, "inv_", 32);
    sha256_hex(buf_str(&token), hash);
    str_t role = body_text(r, "role");
    rc = db_exec(r->db,
                 "INSERT INTO company_invitations (id, company_id, email, role, token_hash, invited_by, status, "
                 "expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ms_ts(?), ms_ts(?), ms_ts(?))",
                 DB_ARGS(DBA_CSTR(c->id), DBA_TEXT(company), DBA_TEXT(buf_str(c->email)),
                         DBA_TEXT(role.p ? role : STRLIT("member")), DBA_CSTR(hash), DBA_TEXT(r->user_id),
                         DBA_INT(now + invite_ttl_s * 1000), DBA_INT(now), DBA_INT(now)),
                 NULL);
    if (rc == DB_OK) {
        struct db_res *res;
        str_t cname = STRLIT("");
        rc = db_query(r->db, "SELECT name FROM companies WHERE id = ?", DB_ARGS(DBA_TEXT(company)), &res);
        if (rc == DB_OK && db_next(res) == 1)
            cname = db_text(res, 0);
        json_t *vars = json_pack("{s:s%,s:s%,s:s%,s:I}", "company", cname.p, cname.len, "token", token.ptr,
                                 token.len, "role", role.p ? role.p : "member", role.p ? role.len : 6, "days",
                                 (json_int_t)(invite_ttl_s / 86400));
        if (rc == DB_OK)
            db_res_free(res);
        if (rc == DB_OK)
            rc = mail_enqueue(r->db, buf_cstr(c->email), "company_invite", vars);
        json_decref(vars);
        if (rc == MAIL_EINVAL)
            rc = http_invalid(r, "email", "cannot be mailed");
    }
    buf_free(&token);
    if (rc != DB_OK)
        return rc;
    return audit(r, "company.invite", company,
                 json_pack("{s:s,s:s}", "email", buf_cstr(c->email), "role", role.p ? role.p : "member"));
}

static int respond_invite(struct req *r, const char *id, int status)
{
    return respond_one(r, "SELECT " INVITE_COLS " FROM company_invitations WHERE id = ?", DB_ARGS(DBA_CSTR(id)),
                       invite_cols, "invitation", status);
}

static int h_invite(struct req *r)
{
    struct invite_ctx c = {.email = req_buf(r, 320)};
    if (identity_normalize_email(body_text(r, "email"), c.email))
        return http_invalid(r, "email", "must be a valid email address");
    uuid7_str(c.id);
    if (req_tx(r, DB_TX_WRITE, tx_invite, &c))
        return HTTP_EFAIL;
    location(r, "/api/v1/companies/%.*s/invitations/%.*s", req_param(r, "id"), str_c(c.id));
    return respond_invite(r, c.id, 201);
}

static int h_invites(struct req *r)
{
    static const char *const allowed[] = {NULL};
    db_arg args[3] = {DBA_TEXT(req_param(r, "id"))};
    if (require(r, false, COMPANY_ADMIN, NULL) || http_query_allow(r, allowed))
        return HTTP_EFAIL;
    const struct http_list_query q = {INVITE_COLS, "FROM company_invitations", " WHERE company_id = ?",
                                      "created_at DESC, id DESC", invite_row};
    return http_list(r, &q, args, 1, ARRAY_LEN(args));
}

static int tx_revoke(struct req *r, void *arg)
{
    (void)arg;
    str_t id = req_param(r, "id"), inv = req_param(r, "inv_id");
    int64_t changed = 0;
    if (require(r, true, COMPANY_ADMIN, NULL))
        return HTTP_EFAIL;
    int rc = db_exec(r->db,
                     "UPDATE company_invitations SET status = 'revoked', updated_at = ms_ts(?) "
                     "WHERE id = ? AND company_id = ? AND status = 'pending'",
                     DB_ARGS(DBA_INT(time_now_ms()), DBA_TEXT(inv), DBA_TEXT(id)), &changed);
    if (rc != DB_OK)
        return rc;
    if (changed != 1)
        return http_fail(r, 404, "NOT_FOUND", "no such pending invitation");
    return audit(r, "company.invite_revoke", id, json_pack("{s:s%}", "invitation_id", inv.p, inv.len));
}

static int h_revoke(struct req *r)
{
    if (req_tx(r, DB_TX_WRITE, tx_revoke, NULL))
        return HTTP_EFAIL;
    r->status = 204;
    return 0;
}

struct accept_ctx {
    char company[UUID_STR_LEN + 1];
};

static int tx_accept(struct req *r, void *arg)
{
    struct accept_ctx *c = arg;
    char hash[65], inv[UUID_STR_LEN + 1], status[16];
    struct db_res *res;
    sha256_hex(body_text(r, "token"), hash);
    int rc = db_query(r->db,
                      db_pick(r->db,
                              "SELECT i.id, i.company_id, i.role, i.status, ts_ms(i.expires_at), "
                              "lower(i.email) = lower(u.email) FROM company_invitations i JOIN users u ON u.id = ? "
                              "WHERE i.token_hash = ?",
                              "SELECT i.id, i.company_id, i.role, i.status, ts_ms(i.expires_at), "
                              "lower(i.email) = lower(u.email) FROM company_invitations i JOIN users u ON u.id = ? "
                              "WHERE i.token_hash = ? FOR UPDATE OF i"),
                      DB_ARGS(DBA_TEXT(r->user_id), DBA_CSTR(hash)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? rc : http_fail(r, 404, "NOT_FOUND", "no such invitation");
    }
    (void)str_copy(inv, db_text(res, 0).p, sizeof(inv));
    (void)str_copy(c->company, db_text(res, 1).p, sizeof(c->company));
    enum company_role role = role_of(db_text(res, 2));
    (void)str_copy(status, db_text(res, 3).p, sizeof(status));
    int64_t expires = db_int(res, 4);
    bool mine = db_int(res, 5) != 0;
    db_res_free(res);
    if (strcmp(status, "pending"))
        return http_fail(r, 410, "GONE", "this invitation was %s", status);
    if (expires <= time_now_ms())
        return http_fail(r, 410, "GONE", "this invitation has expired: ask for a new one");
    if (!mine)
        return http_fail(r, 403, "FORBIDDEN", "this invitation is for another email address");
    int64_t changed = 0, now = time_now_ms();
    rc = db_exec(r->db,
                 "INSERT INTO company_members (company_id, user_id, role, created_at) VALUES (?, ?, ?, ms_ts(?)) "
                 "ON CONFLICT (company_id, user_id) DO NOTHING",
                 DB_ARGS(DBA_CSTR(c->company), DBA_TEXT(r->user_id), DBA_CSTR(role_names[role]), DBA_INT(now)),
                 &changed);
    if (rc != DB_OK)
        return rc;
    if (changed != 1)
        return http_fail(r, 409, "CONFLICT", "you are already a member of this company");
    rc = db_exec(r->db,
                 "UPDATE company_invitations SET status = 'accepted', accepted_by = ?, updated_at = ms_ts(?) "
                 "WHERE id = ? AND status = 'pending'",
                 DB_ARGS(DBA_TEXT(r->user_id), DBA_INT(now), DBA_CSTR(inv)), &changed);
    if (rc != DB_OK)
        return rc;
    if (changed != 1) /* SQLite cannot get here (one writer); PostgreSQL holds the row */
        return http_fail(r, 410, "GONE", "this invitation was used meanwhile");
    return audit(r, "company.join", str_c(c->company), json_pack("{s:s,s:s}", "role", role_names[role], "via",
                                                                 "invitation"));
}

static int h_accept(struct req *r)
{
    struct accept_ctx c;
    if (identity_is_guest(r))
        return http_fail(r, 403, "FORBIDDEN", "guests cannot join companies: register with the invited address");
    if (req_tx(r, DB_TX_WRITE, tx_accept, &c))
        return HTTP_EFAIL;
    return respond_company(r, str_c(c.company), 200);
}

/* ---- the address book ---- */

static const char *const addr_names[] = {"title", "full_name", "phone", "line1", "line2",
                                         "district", "city", "postal_code", "country"};
#define ADDR_COLS                                                                                                      \
    "id, title, full_name, phone, line1, line2, district, city, postal_code, country, ts_ms(created_at), "          \
    "ts_ms(updated_at)"
static const struct http_col addr_cols[] = {
    {"id", COL_TEXT},    {"title", COL_TEXT},       {"full_name", COL_TEXT}, {"phone", COL_TEXT},
    {"line1", COL_TEXT}, {"line2", COL_TEXT},       {"district", COL_TEXT},  {"city", COL_TEXT},
    {"postal_code", COL_TEXT}, {"country", COL_TEXT}, {"created_at", COL_TIME}, {"updated_at", COL_TIME},
    {NULL, COL_TEXT}};
static void addr_row(struct jw *w, const struct db_res *res) { http_write_row(w, res, addr_cols); }

static int respond_addr(struct req *r, str_t company, str_t id, int status)
{
    return respond_one(r, "SELECT " ADDR_COLS " FROM company_addresses WHERE id = ? AND company_id = ?",
                       DB_ARGS(DBA_TEXT(id), DBA_TEXT(company)), addr_cols, "address", status);
}

static int h_addrs(struct req *r)
{
    static const char *const allowed[] = {NULL};
    db_arg args[3] = {DBA_TEXT(req_param(r, "id"))};
    if (require(r, false, COMPANY_MEMBER, NULL) || http_query_allow(r, allowed))
        return HTTP_EFAIL;
    const struct http_list_query q = {ADDR_COLS, "FROM company_addresses", " WHERE company_id = ?",
                                      "created_at DESC, id DESC", addr_row};
    return http_list(r, &q, args, 1, ARRAY_LEN(args));
}

static int h_addr_get(struct req *r)
{
    if (require(r, false, COMPANY_MEMBER, NULL))
        return HTTP_EFAIL;
    return respond_addr(r, req_param(r, "id"), req_param(r, "address_id"), 200);
}

struct addr_ctx {
    char id[UUID_STR_LEN + 1];
    bool create;
};

/* Create (every text field, defaults "" and country TR) or change (the
 * fields sent) one address: one statement either way. */
static int tx_addr_write(struct req *r, void *arg)
{
    struct addr_ctx *c = arg;
    str_t company = req_param(r, "id");
    int64_t now = time_now_ms(), changed = 0;
    db_arg args[ARRAY_LEN(addr_names) + 5];
    size_t n = 0;
    struct buf *sql = req_buf(r, 1024);
    if (require(r, true, COMPANY_ADMIN, NULL))
        return HTTP_EFAIL;
    if (c->create) {
        (void)buf_puts(sql, "INSERT INTO company_addresses (id, company_id, created_by, created_at, updated_at");
        args[n++] = DBA_CSTR(c->id);
        args[n++] = DBA_TEXT(company);
        args[n++] = DBA_TEXT(r->user_id);
        args[n++] = DBA_INT(now);
        args[n++] = DBA_INT(now);
        for (size_t i = 0; i < ARRAY_LEN(addr_names); i++) {
            str_t v = body_text(r, addr_names[i]);
            (void)buf_printf(sql, ", %s", addr_names[i]);
            args[n++] = DBA_TEXT(v.p ? v : !strcmp(addr_names[i], "country") ? STRLIT("TR") : STRLIT(""));
        }
        (void)buf_puts(sql, ") VALUES (?, ?, ?, ms_ts(?), ms_ts(?), ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    } else {
        (void)buf_puts(sql, "UPDATE company_addresses SET updated_at = ms_ts(?)");
        args[n++] = DBA_INT(now);
        for (size_t i = 0; i < ARRAY_LEN(addr_names); i++) {
            str_t v = body_text(r, addr_names[i]);
            if (!v.p)
                continue;
            (void)buf_printf(sql, ", %s = ?", addr_names[i]);
            args[n++] = DBA_TEXT(v);
        }
        (void)buf_puts(sql, " WHERE id = ? AND company_id = ?");
        args[n++] = DBA_TEXT(req_param(r, "address_id"));
        args[n++] = DBA_TEXT(company);
    }
    if (!buf_ok(sql))
        return DB_ERR;
    int rc = db_exec(r->db, buf_cstr(sql), args, n, &changed);
    if (rc != DB_OK)
        return rc;
    if (changed != 1)
        return http_fail(r, 404, "NOT_FOUND", "no such address");
    return DB_OK;
}

static int h_addr_create(struct req *r)
{
    struct addr_ctx c = {.create = true};
    uuid7_str(c.id);
    if (req_tx(r, DB_TX_WRITE, tx_addr_write, &c))
        return HTTP_EFAIL;
    location(r, "/api/v1/companies/%.*s/addresses/%.*s", req_param(r, "id"), str_c(c.id));
    return respond_addr(r, req_param(r, "id"), str_c(c.id), 201);
}

static int h_addr_patch(struct req *r)
{
    struct addr_ctx c = {.create = false};
    if (req_tx(r, DB_TX_WRITE, tx_addr_write, &c))
        return HTTP_EFAIL;
    return respond_addr(r, req_param(r, "id"), req_param(r, "address_id"), 200);
}

static int tx_addr_delete(struct req *r, void *arg)
{
    (void)arg;
    int64_t changed = 0;
    if (require(r, true, COMPANY_ADMIN, NULL))
        return HTTP_EFAIL;
    int rc = db_exec(r->db, "DELETE FROM company_addresses WHERE id = ? AND company_id = ?",
                     DB_ARGS(DBA_TEXT(req_param(r, "address_id")), DBA_TEXT(req_param(r, "id"))), &changed);
    if (rc == DB_OK && changed != 1)
        return http_fail(r, 404, "NOT_FOUND", "no such address");
    return rc;
}

static int h_addr_delete(struct req *r)
{
    if (req_tx(r, DB_TX_WRITE, tx_addr_delete, NULL))
        return HTTP_EFAIL;
    r->status = 204;
    return 0;
}

/* ---- the shared cart ---- */

static int h_cart(struct req *r)
{
    if (require(r, false, COMPANY_MEMBER, NULL))
        return HTTP_EFAIL;
    return catalog_cart_respond(r,
                                "SELECT c.id, c.product_id, c.quantity, ts_ms(c.created_at), ts_ms(c.updated_at), "
                                "p.name, p.price, p.currency, p.stock, CASE WHEN p.deleted_at IS NULL THEN 1 ELSE 0 "
                                "END, c.added_by FROM company_cart_items c JOIN catalog_products p "
                                "ON p.id = c.product_id WHERE c.company_id = ? ORDER BY c.created_at, c.id",
                                req_param(r, "id"), true);
}

static int respond_line(struct req *r, str_t company, str_t id, int status)
{
    static const struct http_col cols[] = {{"id", COL_TEXT},         {"product_id", COL_TEXT},
                                           {"quantity", COL_INT},    {"added_by", COL_TEXT},
                                           {"created_at", COL_TIME}, {"updated_at", COL_TIME},
                                           {NULL, COL_TEXT}};
    return respond_one(r,
                       "SELECT id, product_id, quantity, added_by, ts_ms(created_at), ts_ms(updated_at) "
                       "FROM company_cart_items WHERE id = ? AND company_id = ?",
                       DB_ARGS(DBA_TEXT(id), DBA_TEXT(company)), cols, "cart line", status);
}

struct line_ctx {
    char id[UUID_STR_LEN + 1];
    char got[UUID_STR_LEN + 1];
};

/* Add-or-increase in one statement, as the personal cart does: the upsert's
 * update arm applies only while the line stays <= 99. */
static int tx_cart_add(struct req *r, void *arg)
{
    struct line_ctx *c = arg;
    str_t company = req_param(r, "id"), product = body_text(r, "product_id");
    const json_t *q = json_object_get(r->body, "quantity");
    int64_t qty = q ? json_integer_value(q) : 1, now = time_now_ms();
    struct db_res *res;
    if (require(r, true, COMPANY_MEMBER, NULL))
        return HTTP_EFAIL;
    if (!uuid_valid(product))
        return http_invalid(r, "product_id", "is not a product on sale");
    int rc = db_query(r->db,
                      "INSERT INTO company_cart_items (id, company_id, product_id, quantity, added_by, created_at, "
                      "updated_at) SELECT ?, ?, p.id, ?, ?, ms_ts(?), ms_ts(?) FROM catalog_products p "
                      "WHERE p.id = ? AND p.deleted_at IS NULL ON CONFLICT (company_id, product_id) DO UPDATE SET "
                      "quantity = company_cart_items.quantity + excluded.quantity, updated_at = excluded.updated_at "
                      "WHERE company_cart_items.quantity + excluded.quantity <= " CART_MAX_QUANTITY_TEXT " RETURNING id",
                      DB_ARGS(DBA_CSTR(c->id), DBA_TEXT(company), DBA_INT(qty), DBA_TEXT(r->user_id), DBA_INT(now),
                              DBA_INT(now), DBA_TEXT(product)),
                      &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) == 1)
        (void)str_copy(c->got, db_text(res, 0).p, sizeof(c->got));
    db_res_free(res);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        bool live;
        if ((rc = catalog_product_live(r->db, product, &live)) != DB_OK)
            return rc;
        return live ? http_invalid(r, "quantity", "a cart line holds at most " CART_MAX_QUANTITY_TEXT)
                    : http_invalid(r, "product_id", "is not a product on sale");
    }
    return DB_OK;
}

static int h_cart_add(struct req *r)
{
    struct line_ctx c = {.got = ""};
    uuid7_str(c.id);
    if (req_tx(r, DB_TX_WRITE, tx_cart_add, &c))
        return HTTP_EFAIL;
    bool created = !strcmp(c.got, c.id);
    if (created)
        location(r, "/api/v1/companies/%.*s/cart/%.*s", req_param(r, "id"), str_c(c.got));
    return respond_line(r, req_param(r, "id"), str_c(c.got), created ? 201 : 200);
}

static int tx_cart_set(struct req *r, void *arg)
{
    (void)arg;
    int64_t changed = 0;
    if (require(r, true, COMPANY_MEMBER, NULL))
        return HTTP_EFAIL;
    int rc = db_exec(r->db,
                     "UPDATE company_cart_items SET quantity = ?, updated_at = ms_ts(?) WHERE id = ? AND company_id = ?",
                     DB_ARGS(DBA_INT(json_integer_value(json_object_get(r->body, "quantity"))), DBA_INT(time_now_ms()),
                             DBA_TEXT(req_param(r, "item_id")), DBA_TEXT(req_param(r, "id"))),
                     &changed);
    if (rc == DB_OK && changed != 1)
        return http_fail(r, 404, "NOT_FOUND", "no such cart line");
    return rc;
}

static int h_cart_set(struct req *r)
{
    if (req_tx(r, DB_TX_WRITE, tx_cart_set, NULL))
        return HTTP_EFAIL;
    return respond_line(r, req_param(r, "id"), req_param(r, "item_id"), 200);
}

static int tx_cart_delete(struct req *r, void *arg)
{
    (void)arg;
    int64_t changed = 0;
    if (require(r, true, COMPANY_MEMBER, NULL))
        return HTTP_EFAIL;
    int rc = db_exec(r->db, "DELETE FROM company_cart_items WHERE id = ? AND company_id = ?",
                     DB_ARGS(DBA_TEXT(req_param(r, "item_id")), DBA_TEXT(req_param(r, "id"))), &changed);
    if (rc == DB_OK && changed != 1)
        return http_fail(r, 404, "NOT_FOUND", "no such cart line");
    return rc;
}

static int h_cart_delete(struct req *r)
{
    if (req_tx(r, DB_TX_WRITE, tx_cart_delete, NULL))
        return HTTP_EFAIL;
    r->status = 204;
    return 0;
}

/* ---- module ---- */

static int config(const struct config *cfg, struct buf *err)
{
    (void)cfg;
    const char *v = getenv("TEMEL_COMPANY_INVITE_TTL_S");
    invite_ttl_s = INVITE_TTL_DEFAULT_S;
    if (v && *v && parse_i64(str_c(v), 60, 90ll * 24 * 3600, &invite_ttl_s)) {
        (void)buf_puts(err, "TEMEL_COMPANY_INVITE_TTL_S: must be an integer in 60..7776000 (seconds)");
        return -1;
    }
    return 0;
}

static const char *const invite_roles[] = {"admin", "member", NULL};
static const char *const all_roles[] = {"owner", "admin", "member", NULL};
static const struct json_field company_f[] = {
    {.name = "name", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 200},
    {.name = "tax_id", .type = JF_STRING, .max = 32, .description = "tax number (vergi numarası), optional"},
    {0}};
static const struct json_schema company_s = {company_f, false};
static const struct json_field company_patch_f[] = {
    {.name = "name", .type = JF_STRING, .min = 1, .max = 200}, {.name = "tax_id", .type = JF_STRING, .max = 32}, {0}};
static const struct json_schema company_patch_s = {company_patch_f, false};
static const struct json_field role_f[] = {
    {.name = "role", .type = JF_STRING, .flags = JF_REQUIRED, .enum_values = all_roles,
     .description = "owner hands ownership over (the owner only; the old owner becomes admin)"},
    {0}};
static const struct json_schema role_s = {role_f, false};
static const struct json_field invite_f[] = {
    {.name = "email", .type = JF_STRING, .flags = JF_REQUIRED, .min = 3, .max = 254, .format = "email"},
    {.name = "role", .type = JF_STRING, .enum_values = invite_roles, .description = "default member"},
    {0}};
static const struct json_schema invite_s = {invite_f, false};
static const struct json_field accept_f[] = {
    {.name = "token", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 200,
     .description = "the token from the invitation mail"},
    {0}};
static const struct json_schema accept_s = {accept_f, false};
#define ADDR_FIELD(n, req, lo, hi) {.name = n, .type = JF_STRING, .flags = (req), .min = (lo), .max = (hi)}
static const struct json_field addr_f[] = {
    ADDR_FIELD("title", 0, 0, 50),        ADDR_FIELD("full_name", JF_REQUIRED, 1, 100),
    ADDR_FIELD("phone", 0, 0, 32),        ADDR_FIELD("line1", JF_REQUIRED, 1, 200),
    ADDR_FIELD("line2", 0, 0, 200),       ADDR_FIELD("district", 0, 0, 100),
    ADDR_FIELD("city", JF_REQUIRED, 1, 100), ADDR_FIELD("postal_code", 0, 0, 20),
    ADDR_FIELD("country", 0, 2, 2),       {0}};
static const struct json_schema addr_s = {addr_f, false};
static const struct json_field addr_patch_f[] = {
    ADDR_FIELD("title", 0, 0, 50),  ADDR_FIELD("full_name", 0, 1, 100), ADDR_FIELD("phone", 0, 0, 32),
    ADDR_FIELD("line1", 0, 1, 200), ADDR_FIELD("line2", 0, 0, 200),     ADDR_FIELD("district", 0, 0, 100),
    ADDR_FIELD("city", 0, 1, 100),  ADDR_FIELD("postal_code", 0, 0, 20), ADDR_FIELD("country", 0, 2, 2),
    {0}};
static const struct json_schema addr_patch_s = {addr_patch_f, false};
static const struct json_field cart_add_f[] = {
    {.name = "product_id", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 64, .format = "uuid"},
    {.name = "quantity", .type = JF_INT, .min = 1, .max = CART_MAX_QUANTITY,
     .description = "default 1; a line holds at most " CART_MAX_QUANTITY_TEXT},
    {0}};
static const struct json_schema cart_add_s = {cart_add_f, false};
static const struct json_field cart_set_f[] = {
    {.name = "quantity", .type = JF_INT, .flags = JF_REQUIRED, .min = 1, .max = CART_MAX_QUANTITY}, {0}};
static const struct json_schema cart_set_s = {cart_set_f, false};

/* OpenAPI: the shapes the handlers above write (company_cols, member_cols, invite_cols, addr_cols, the
 * cart line of respond_line); the shared cart is catalog's Cart. */
static struct openapi_schema schemas[] = {
    {.name = "Company",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "id", "name", "tax_id", "role", "created_at", "updated_at" ],
         "properties" : {
             "id" : {"type" : "string", "format" : "uuid"},
             "name" : {"type" : "string", "minLength" : 1, "maxLength" : 200},
             "tax_id" : {"type" : "string", "maxLength" : 32, "description" : "tax number (vergi numarası); empty when not given"},
             "role" : {"type" : "string", "enum" : [ "owner", "admin", "member" ], "description" : "the caller's role in the company"},
             "created_at" : {"type" : "string", "format" : "date-time"},
             "updated_at" : {"type" : "string", "format" : "date-time"}
         }
     })},
    {.name = "CompanyMember",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "user_id", "email", "name", "role", "joined_at" ],
         "properties" : {
             "user_id" : {"type" : "string", "format" : "uuid"},
             "email" : {"type" : [ "string", "null" ], "format" : "email"},
             "name" : {"type" : [ "string", "null" ]},
             "role" : {"type" : "string", "enum" : [ "owner", "admin", "member" ]},
             "joined_at" : {"type" : "string", "format" : "date-time"}
         }
     })},
    {.name = "CompanyInvitation",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "id", "email", "role", "status", "expires_at", "created_at" ],
         "properties" : {
             "id" : {"type" : "string", "format" : "uuid"},
             "email" : {"type" : "string", "format" : "email"},
             "role" : {"type" : "string", "enum" : [ "admin", "member" ]},
             "status" : {"type" : "string", "enum" : [ "pending", "accepted", "revoked" ]},
             "expires_at" : {"type" : "string", "format" : "date-time"},
             "created_at" : {"type" : "string", "format" : "date-time"}
         }
     })},
    {.name = "CompanyAddress",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : [
             "id", "title", "full_name", "phone", "line1", "line2", "district", "city", "postal_code", "country",
             "created_at", "updated_at"
         ],
         "properties" : {
             "id" : {"type" : "string", "format" : "uuid"},
             "title" : {"type" : "string", "maxLength" : 50, "description" : "empty when not given"},
             "full_name" : {"type" : "string", "minLength" : 1, "maxLength" : 100},
             "phone" : {"type" : "string", "maxLength" : 32},
             "line1" : {"type" : "string", "minLength" : 1, "maxLength" : 200},
             "line2" : {"type" : "string", "maxLength" : 200},
             "district" : {"type" : "string", "maxLength" : 100},
             "city" : {"type" : "string", "minLength" : 1, "maxLength" : 100},
             "postal_code" : {"type" : "string", "maxLength" : 20},
             "country" : {"type" : "string", "minLength" : 2, "maxLength" : 2, "description" : "ISO 3166-1 alpha-2; default TR"},
             "created_at" : {"type" : "string", "format" : "date-time"},
             "updated_at" : {"type" : "string", "format" : "date-time"}
         }
     })},
    {.name = "CompanyCartLine",
     .json = OPENAPI_JSON({
         "type" : "object",
         "required" : [ "id", "product_id", "quantity", "added_by", "created_at", "updated_at" ],
         "properties" : {
             "id" : {"type" : "string", "format" : "uuid"},
             "product_id" : {"type" : "string", "format" : "uuid"},
             "quantity" : {"type" : "integer", "minimum" : 1, "maximum" : 99},
             "added_by" : {"type" : [ "string", "null" ], "format" : "uuid", "description" : "the member who added the line"},
             "created_at" : {"type" : "string", "format" : "date-time"},
             "updated_at" : {"type" : "string", "format" : "date-time"}
         }
     })},
};
#define ROLE_PARAM                                                                                                     \
    OPENAPI_JSON([ {"name" : "role", "in" : "query", "schema" : {"type" : "string", "enum" : [ "owner", "admin", "member" ]}} ])
#define REF(name) "{\"$ref\":\"#/components/schemas/" name "\"}"

#define C "/api/v1/companies/{id}"
static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/companies", .handler = h_create, .auth = AUTH_USER, .rl = RL_WRITE,
     .input = &company_s, .summary = "Create a company: the caller becomes its owner", .tag = "companies",
     .output = REF("Company")},
    {.method = "GET", .pattern = "/api/v1/companies", .handler = h_list, .auth = AUTH_USER, .rl = RL_READ,
     .flags = ROUTE_PAGINATED, .summary = "The caller's companies, with the caller's role", .tag = "companies",
     .output = REF("Company")},
    {.method = "POST", .pattern = "/api/v1/companies/invitations/accept", .handler = h_accept, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &accept_s,
     .summary = "Join a company with an invitation's token (the account must have the invited email)",
     .tag = "companies",
     .errors = "403 409 410", .output = REF("Company")},
    {.method = "GET", .pattern = C, .handler = h_get, .auth = AUTH_USER, .rl = RL_READ,
     .summary = "One company (members only)", .tag = "companies",
     .output = REF("Company")},
    {.method = "PATCH", .pattern = C, .handler = h_patch, .auth = AUTH_USER, .rl = RL_WRITE,
     .input = &company_patch_s, .summary = "Rename a company or set its tax id (owner/admin)", .tag = "companies",
     .output = REF("Company")},
    {.method = "DELETE", .pattern = C, .handler = h_delete, .auth = AUTH_USER, .rl = RL_WRITE,
     .summary = "Delete a company (owner; its orders stay)", .tag = "companies",
     .status = 204},
    {.method = "GET", .pattern = C "/members", .handler = h_members, .auth = AUTH_USER, .rl = RL_READ,
     .flags = ROUTE_PAGINATED, .summary = "The members and their roles (filter: role)", .tag = "companies",
     .params = ROLE_PARAM, .output = REF("CompanyMember")},
    {.method = "PATCH", .pattern = C "/members/{user_id}", .handler = h_member_role, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &role_s, .summary = "Change a member's role (owner/admin; ownership by the owner)",
     .tag = "companies",
     .errors = "409", .output = REF("CompanyMember")},
    {.method = "DELETE", .pattern = C "/members/{user_id}", .handler = h_member_remove, .auth = AUTH_USER,
     .rl = RL_WRITE, .summary = "Remove a member, or leave (yourself)", .tag = "companies",
     .errors = "409", .status = 204},
    {.method = "POST", .pattern = C "/invitations", .handler = h_invite, .auth = AUTH_USER, .rl = RL_WRITE,
     .input = &invite_s, .summary = "Invite by mail (owner/admin): a single-use token, valid 7 days by default",
     .tag = "companies",
     .errors = "409", .output = REF("CompanyInvitation")},
    {.method = "GET", .pattern = C "/invitations", .handler = h_invites, .auth = AUTH_USER, .rl = RL_READ,
     .flags = ROUTE_PAGINATED, .summary = "The company's invitations (owner/admin)", .tag = "companies",
     .output = REF("CompanyInvitation")},
    {.method = "DELETE", .pattern = C "/invitations/{inv_id}", .handler = h_revoke, .auth = AUTH_USER,
     .rl = RL_WRITE, .summary = "Revoke a pending invitation (owner/admin)", .tag = "companies",
     .status = 204},
    {.method = "GET", .pattern = C "/addresses", .handler = h_addrs, .auth = AUTH_USER, .rl = RL_READ,
     .flags = ROUTE_PAGINATED, .summary = "The company's address book (members)", .tag = "companies",
     .output = REF("CompanyAddress")},
    {.method = "POST", .pattern = C "/addresses", .handler = h_addr_create, .auth = AUTH_USER, .rl = RL_WRITE,
     .input = &addr_s, .summary = "Add an address to the company's book (owner/admin)", .tag = "companies",
     .output = REF("CompanyAddress")},
    {.method = "GET", .pattern = C "/addresses/{address_id}", .handler = h_addr_get, .auth = AUTH_USER,
     .rl = RL_READ, .summary = "One company address (members)", .tag = "companies",
     .output = REF("CompanyAddress")},
    {.method = "PATCH", .pattern = C "/addresses/{address_id}", .handler = h_addr_patch, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &addr_patch_s, .summary = "Change a company address (owner/admin)", .tag = "companies",
     .output = REF("CompanyAddress")},
    {.method = "DELETE", .pattern = C "/addresses/{address_id}", .handler = h_addr_delete, .auth = AUTH_USER,
     .rl = RL_WRITE, .summary = "Remove a company address (owner/admin)", .tag = "companies",
     .status = 204},
    {.method = "GET", .pattern = C "/cart", .handler = h_cart, .auth = AUTH_USER, .rl = RL_READ,
     .summary = "The company's shared cart (members)", .tag = "companies",
     .output = REF("Cart")},
    {.method = "POST", .pattern = C "/cart", .handler = h_cart_add, .auth = AUTH_USER, .rl = RL_WRITE,
     .input = &cart_add_s, .summary = "Add to the company cart: 201 new line, 200 raised (max 99)",
     .tag = "companies",
     .output = REF("CompanyCartLine")},
    {.method = "PUT", .pattern = C "/cart/{item_id}", .handler = h_cart_set, .auth = AUTH_USER, .rl = RL_WRITE,
     .input = &cart_set_s, .summary = "Set a company cart line's quantity (1-99)", .tag = "companies",
     .output = REF("CompanyCartLine")},
    {.method = "DELETE", .pattern = C "/cart/{item_id}", .handler = h_cart_delete, .auth = AUTH_USER,
     .rl = RL_WRITE, .summary = "Remove a company cart line", .tag = "companies",
     .status = 204},
};
#undef C
#undef REF
#undef ROLE_PARAM

static void register_routes(void)
{
    for (size_t i = 0; i < ARRAY_LEN(schemas); i++)
        openapi_schema_add(&schemas[i]);
    router_add(routes, ARRAY_LEN(routes));
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    (void)cfg;
    (void)db;
    (void)err;
    companies__register_user_data();
    return 0;
}

static void register_jobs(void)
{
    mail_template_register("company_invite", "You are invited to {{company}} on temel",
                           "Hello,\n\nyou are invited to join {{company}} as {{role}}.\n"
                           "Sign in (or register) with this email address and accept with the token:\n\n"
                           "  {{token}}\n\nThe invitation is valid for {{days}} days.\n",
                           "<p>Hello,</p><p>you are invited to join <b>{{company}}</b> as {{role}}.</p>"
                           "<p>Sign in (or register) with this email address and accept with the token:</p>"
                           "<p><code>{{token}}</code></p><p>The invitation is valid for {{days}} days.</p>");
}

const struct module companies_module = {
    .name = "companies",
    .config = config,
    .register_routes = register_routes,
    .register_jobs = register_jobs,
    .init = init,
};
