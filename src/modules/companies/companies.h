/*
 * companies.h — corporate accounts (API.md §9 "companies with members", issue 11 item 4).
 *
 * A company has members with one role each: owner (exactly one), admin,
 * member. Everything under /api/v1/companies/{id} is visible to its members
 * only: anyone else gets 404, as if it did not exist (API.md §1); a member
 * whose role is too low for a write gets 403.
 *
 *   POST   /companies                          {name, tax_id?} → 201, the caller is the owner
 *   GET    /companies                          the caller's companies (with "role")
 *   GET|PATCH|DELETE /companies/{id}           read: members; PATCH: owner/admin; DELETE: owner
 *   GET    /companies/{id}/members             members (user_id, email, name, role, joined_at)
 *   PATCH  /companies/{id}/members/{user_id}   {role}: owner/admin set admin|member; the owner
 *                                              alone hands "owner" over (and becomes admin)
 *   DELETE /companies/{id}/members/{user_id}   owner/admin remove; anyone leaves; the owner
 *                                              cannot leave before handing ownership over (409)
 *   POST   /companies/{id}/invitations         {email, role admin|member} (owner/admin): a mail
 *                                              with a single-use token (stored hashed) valid
 *                                              TEMEL_COMPANY_INVITE_TTL_S (default 7 days)
 *   GET    /companies/{id}/invitations         owner/admin; DELETE .../{inv_id} revokes
 *   POST   /companies/invitations/accept       {token}: the signed-in account whose email the
 *                                              invitation names joins (403 other account,
 *                                              410 expired/used/revoked, 409 already a member)
 *   GET|POST /companies/{id}/addresses, GET|PATCH|DELETE .../{address_id}
 *                                              the address book: members read, owner/admin write
 *   GET|POST /companies/{id}/cart, PUT|DELETE .../{item_id}
 *                                              the shared cart: every member
 * Company orders (POST|GET /companies/{id}/orders, GET .../{order_id}) are in
 * the orders module, which asks companies_role() here.
 */
#ifndef TEMEL_COMPANIES_H
#define TEMEL_COMPANIES_H

#include "core/module.h"

struct db;
struct req;

enum company_role { COMPANY_NONE = 0, COMPANY_MEMBER, COMPANY_ADMIN, COMPANY_OWNER };

/* The role of user in company (COMPANY_NONE: not a member, or no such
 * company). 0 or a db_rc. */
int companies_role(struct db *db, str_t company_id, str_t user_id, enum company_role *out) WARN_UNUSED;

/* For a handler: the caller must be a member of the company in the path
 * parameter "id" (else 404 "no such company") with at least role need
 * (else 403). 0, or HTTP_EFAIL with the error recorded. */
int companies_require(struct req *r, enum company_role need, enum company_role *out) WARN_UNUSED;

extern const struct module companies_module;

#endif
