/*
 * audit.h — the audit module: the audit service (audit/audit.h) plus what
 * needs a request. Modules include this header.
 */
#ifndef TEMEL_AUDIT_MODULE_H
#define TEMEL_AUDIT_MODULE_H

#include "audit/audit.h"
#include "core/module.h"

struct req;

/* audit_record() taking actor (unless set), IP, user agent, endpoint
 * ("PATCH /api/v1/users/{id}") and request id from the request. Inside the
 * request's transaction (req_tx/db_tx), last. 0 or a db_rc. */
int audit_record_req(struct req *r, struct audit_entry *e) WARN_UNUSED;

/* For routes that owners and staff share: a successful action on
 * target_type/target_id is recorded only when the caller is staff (admin or
 * moderator) — staff acting on anyone's data is audited, an owner managing
 * its own is not. Same rules as audit_record_req. 0 or a db_rc. */
int audit_record_staff(struct req *r, const char *category, const char *action, const char *target_type,
                       str_t target_id) WARN_UNUSED;

/* Module descriptor (routes: GET /api/v1/admin/audit-logs, .../verify; with
 * TEMEL_ENV=test also POST /api/v1/_test/audit, which records one entry). */
extern const struct module audit_module;

#endif
