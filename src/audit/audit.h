/*
 * audit.h — the append-only, hash-chained audit log (API.md §12): a service
 * below the modules that any floor above db may call. The audit module
 * (src/modules/audit) adds the routes, audit_record_req() and the key.
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
#ifndef TEMEL_AUDIT_SERVICE_H
#define TEMEL_AUDIT_SERVICE_H

#include <jansson.h>

#include "core/buf.h"
#include "core/common.h"

struct db;

struct audit_entry {
    str_t actor_id;       /* user id of who acted; empty = system */
    const char *action;   /* "user.role_change", "user.ban", "user.delete", "credits.grant", ... */
    const char *category; /* "users", "credits", "ai", "orders", "jobs", "auth" */
    const char *target_type; /* "user", "job", ... */
    str_t target_id;
    const json_t *before; /* may be NULL */
    const json_t *after;  /* may be NULL */
    bool success;
    /* request context (the audit module's audit_record_req() fills it from a request) */
    str_t ip, user_agent, endpoint, request_id;
};

/* Append one entry (call inside db_tx). 0 or a db_rc.
 * Call it LAST in the transaction, after the audited change: it locks the
 * chain head until commit (PostgreSQL), so every audited transaction takes
 * its own row locks first and the head last — one lock order, no deadlock,
 * and the head is held only for the commit. */
int audit_record(struct db *db, const struct audit_entry *e) WARN_UNUSED;
/* Same, and *seq_out / id_out (37 bytes) get the new entry's seq and id (either may be NULL). */
int audit_append(struct db *db, const struct audit_entry *e, int64_t *seq_out, char id_out[37]) WARN_UNUSED;
/* From a request: audit_record_req() in modules/audit/audit.h fills the context. */

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

/* The columns of audit_logs in struct audit_row order, then hash and mac, and
 * the reader of a row selected with them: *stored_hash gets the hash,
 * *stored_mac (when not NULL) the MAC (a view with p == NULL: no MAC, link
 * version 1). For verify and the admin list. */
#define AUDIT_ROW_COLS                                                                                                 \
    "seq, id, ts_ms(created_at), actor_id, action, category, target_type, target_id, before_json, after_json, ip, "   \
    "user_agent, endpoint, request_id, success, prev_hash, hash, mac"
struct db_res;
void audit_row_read(const struct db_res *res, struct audit_row *row, str_t *stored_hash, str_t *stored_mac);

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

#endif
