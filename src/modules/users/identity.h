/*
 * identity.h — who the caller is and what they may do; shared machinery for
 * every module (API.md §3, issue 4).
 *
 * Authentication (installed into the HTTP layer by the users module):
 *   Authorization: Bearer <JWT>      access token; its session must be live
 *   Authorization: Bearer tml_...    API key
 * Role and status are read from the database on every request, so a role
 * change, a ban or a logout takes effect at once (not at token expiry).
 * Tokens in query strings are never read.
 *
 * Ownership policy: a resource the caller may not see is 404 (no existence
 * leak); 403 is for visible-but-forbidden actions.
 */
#ifndef TEMEL_IDENTITY_H
#define TEMEL_IDENTITY_H

#include "core/json.h"
#include "core/module.h"
#include "http/http.h"

struct db;

bool identity_is_staff(const struct req *r); /* admin or moderator */
bool identity_is_admin(const struct req *r);
bool identity_is_guest(const struct req *r);
/* Normalise an email into out as accounts store it: trim, lower-case all of
 * it; -1 if invalid. Only printable ASCII is accepted (mail transports here do
 * not speak SMTPUTF8), so every accepted address is already NFC: no Unicode
 * normalisation is needed for two spellings to compare equal. */
int identity_normalize_email(str_t in, struct buf *out) WARN_UNUSED;

enum access_rule {
    ACCESS_OWNER,          /* only the owner */
    ACCESS_OWNER_OR_STAFF, /* the owner, or admin/moderator */
    ACCESS_OWNER_OR_ADMIN,
};
/* May the caller act on a row owned by owner_id under rule? */
bool identity_can_access(const struct req *r, str_t owner_id, enum access_rule rule);
/* Convenience: http_fail(404) unless identity_can_access(). */
int identity_require_access(struct req *r, str_t owner_id, enum access_rule rule) WARN_UNUSED;

/* Modules that keep personal data register these so export, account
 * deletion and guest migration cover it. All run inside the caller's db_tx. */
struct user_data_hooks {
    const char *name; /* key in the export document */
    int (*export_data)(struct db *db, str_t user_id, struct jw *w); /* writes one JSON value */
    int (*delete_data)(struct db *db, str_t user_id);
    int (*migrate_guest)(struct db *db, str_t guest_id, str_t user_id);
    /* Before any delete_data: 1 when the account may not be deleted now
     * (why says what to do first; DELETE /me answers 409), 0, or a db_rc. */
    int (*refuse_delete)(struct db *db, str_t user_id, struct buf *why);
    /* A (non-guest) account was just created, in the transaction that created it (registration, OTP
     * sign-up, `temel user create`): e.g. the credits module writes the free plan's grant here. */
    int (*created)(struct db *db, str_t user_id);
};
void identity_register_user_data(const struct user_data_hooks *h);

extern const struct module users_module;

/* For `temel user create`: create a user (role admin|moderator|user).
 * 0 ok, 1 invalid input (err says which), < 0 a db_rc (DB_ECONSTRAINT: exists). */
int identity_create_user(struct db *db, const char *email, const char *password, const char *name, const char *role,
                         struct buf *err) WARN_UNUSED;

#endif
