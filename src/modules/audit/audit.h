/*
 * audit.h — the append-only, hash-chained audit log (API.md §12).
 *
 * Every admin action (role change, ban, delete, credit grant, provider key
 * change, refund, order status) calls audit_record() INSIDE the transaction
 * that makes the change, so the entry exists iff the change commits.
 *
 * Chain: entries are numbered by seq (1, 2, ...); hash = SHA-256 over the
 * previous entry's hash and a canonical encoding of this entry's fields.
 * Appends are serialised on a one-row head table (FOR UPDATE on PostgreSQL;
 * SQLite writers are already serialised by BEGIN IMMEDIATE).
 */
#ifndef TEMEL_AUDIT_H
#define TEMEL_AUDIT_H

#include <jansson.h>

#include "core/common.h"

struct db;
struct req;

struct audit_entry {
    str_t actor_id;       /* user id of who acted; empty = system */
    const char *action;   /* "user.role_change", "user.ban", "user.delete", "credits.grant", ... */
    const char *category; /* "users", "credits", "ai", "orders", "jobs", "auth" */
    const char *target_type; /* "user", "job", ... */
    str_t target_id;
    const json_t *before; /* may be NULL */
    const json_t *after;  /* may be NULL */
    bool success;
    /* request context; filled from r by audit_record_req() */
    str_t ip, user_agent, endpoint, request_id;
};

/* Append one entry (call inside db_tx). 0 or a db_rc. */
int audit_record(struct db *db, const struct audit_entry *e) WARN_UNUSED;
/* Same, taking actor, IP, user agent, endpoint ("PATCH /api/v1/users/{id}") and
 * request id from the request. */
int audit_record_req(struct req *r, struct audit_entry *e) WARN_UNUSED;

/* Module descriptor (routes: GET /api/v1/admin/audit-logs, .../verify). */
extern const struct module audit_module;

#endif
