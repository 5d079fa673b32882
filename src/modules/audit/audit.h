/*
 * audit.h — the append-only, hash-chained audit log (API.md §12).
 *
 * Every admin action (role change, ban, delete, credit grant, provider key
 * change, refund, order status) calls audit_record() INSIDE the transaction
 * that makes the change, so the entry exists iff the change commits.
 *
 * Chain: entries are numbered by seq (1, 2, ...); hash = SHA-256 over the
 * previous entry's hash and a canonical encoding of this entry's fields;
 * mac = HMAC-SHA256 over the same bytes under a key derived from
 * TEMEL_SECRET_KEY, and the head row carries a MAC over (seq, hash). A
 * database writer can recompute hashes, not MACs: a consistently rewritten
 * tail is still reported at its first changed entry ("mac mismatch").
 * Link versions: entries written before migration 0013 have no MAC (v1,
 * hash only). They are a prefix of the chain and stay protected through the
 * first keyed entry, whose MAC covers their last hash (its prev_hash).
 * Limit: if every MAC of a chain is removed it reads like a never-keyed
 * (pre-0013) chain, so verify reports keyed_entries; on an installation
 * that has recorded anything since 0013, keyed_entries == 0 is the alarm.
 * Appends are serialised on a one-row head table (FOR UPDATE on PostgreSQL;
 * SQLite writers are already serialised by BEGIN IMMEDIATE).
 */
#ifndef TEMEL_AUDIT_H
#define TEMEL_AUDIT_H

#include <jansson.h>

#include "core/buf.h"
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

/* Append one entry (call inside db_tx). 0 or a db_rc.
 * Call it LAST in the transaction, after the audited change: it locks the
 * chain head until commit (PostgreSQL), so every audited transaction takes
 * its own row locks first and the head last — one lock order, no deadlock,
 * and the head is held only for the commit. */
int audit_record(struct db *db, const struct audit_entry *e) WARN_UNUSED;
/* Same, taking actor, IP, user agent, endpoint ("PATCH /api/v1/users/{id}") and
 * request id from the request. */
int audit_record_req(struct req *r, struct audit_entry *e) WARN_UNUSED;

/*
 * Limits: text fields are cut to AUDIT_MAX_TEXT bytes (user agent and
 * endpoint included) on a UTF-8 boundary, and control bytes or invalid UTF-8
 * become '?', before hashing — what is stored is exactly what was hashed.
 * before/after are written through the JSON writer (canonical escaping, the
 * object's own key order) and stored as that text; more than
 * AUDIT_MAX_JSON bytes of it is DB_ERR (the change must not commit unaudited).
 * audit_record() outside a transaction is a BUG().
 */
#define AUDIT_MAX_TEXT 512
#define AUDIT_MAX_JSON (256u << 10)

/* ---- the chain (exposed for verify, the CLI and tests) ---- */

#define AUDIT_HASH_HEX 64
/* prev_hash of seq 1: 64 '0' characters. */
extern const char audit_genesis_hash[AUDIT_HASH_HEX + 1];

/* One stored entry as hashed. A view with p == NULL is SQL NULL (actor_id,
 * target_type, target_id, before_json, after_json may be NULL; the others
 * are never NULL, possibly empty). */
struct audit_row {
    int64_t seq;
    str_t id;
    int64_t created_at_ms; /* UTC epoch ms */
    str_t actor_id, action, category, target_type, target_id;
    str_t before_json, after_json;
    str_t ip, user_agent, endpoint, request_id;
    bool success;
    str_t prev_hash;
};

/* The canonical, unambiguous encoding that is hashed: the tag
 * "temel.audit.v1\n", then every field in the order of struct audit_row with
 * prev_hash FIRST: a string as 'S' <decimal byte length> ':' <bytes>, NULL as
 * 'N', an integer (seq, created_at_ms, success 0/1) as 'I' <decimal> ';'.
 * Appends to out (check buf_ok()). */
void audit_canonical(const struct audit_row *row, struct buf *out);
/* hash = lower-case hex SHA-256 (libsodium) of audit_canonical(row). */
void audit_hash_hex(const struct audit_row *row, char out[AUDIT_HASH_HEX + 1]);
/* hash as above and mac = lower-case hex HMAC-SHA256 of the same bytes under
 * the audit key (mac may be NULL). */
void audit_link(const struct audit_row *row, char hash[AUDIT_HASH_HEX + 1], char mac[AUDIT_HASH_HEX + 1]);
/* The head's MAC: HMAC-SHA256 of "temel.audit.head.v1\n" I<seq>; S<len>:<hash>. */
void audit_head_mac_hex(int64_t seq, str_t hash, char out[AUDIT_HASH_HEX + 1]);
/* The MAC key (set by the module's config hook from TEMEL_SECRET_KEY,
 * context "temel.audit.chain-mac.v1"; tests set their own). */
void audit_set_key(const unsigned char key[32]);

struct audit_verify {
    bool ok;
    int64_t entries;  /* entries checked (the head's seq when ok) */
    int64_t keyed_entries; /* of those, entries with a MAC (all but a pre-0013 prefix) */
    /* when !ok: the first broken link */
    int64_t broken_seq;
    char broken_id[40]; /* "" when there is no row at broken_seq */
    const char *reason; /* "hash mismatch", "mac mismatch", "mac missing", "seq gap", "prev_hash mismatch",
                           "head mismatch" */
};
/* Walk the chain in seq order in batches (bounded memory) up to the head
 * read at the start (appends racing with verify are not checked). Each row:
 * seq must be the previous seq + 1 ("seq gap"), prev_hash the previous hash
 * ("prev_hash mismatch"), hash the recomputed hash ("hash mismatch"), mac
 * the recomputed MAC ("mac mismatch"; an entry without one after a keyed
 * entry: "mac missing"). At the end the head must name the last row: rows
 * missing from the end are a "seq gap" at the first missing seq (broken_id
 * ""), a different hash or a wrong or missing head MAC (when any entry is
 * keyed) is a "head mismatch" at the head's seq.
 * Not inside a transaction of the caller's. 0 or a db_rc. */
int audit_verify(struct db *db, struct audit_verify *out) WARN_UNUSED;

/* Module descriptor (routes: GET /api/v1/admin/audit-logs, .../verify; with
 * TEMEL_ENV=test also POST /api/v1/_test/audit, which records one entry). */
extern const struct module audit_module;

#endif
