/*
 * audit.c — the append-only, hash-chained audit log (API.md §12, audit.h):
 * a service below the modules (append, verify). Its HTTP face — the admin
 * routes, audit_record_req() and the MAC key from the environment — is the
 * audit module, src/modules/audit.
 *
 * Design:
 *   - audit_logs holds the entries; audit_head (one row) holds the last seq
 *     and hash. An append reads the head (FOR UPDATE on PostgreSQL; SQLite
 *     writers are serialised by BEGIN IMMEDIATE), inserts seq = head.seq + 1
 *     with prev_hash = head.hash, and moves the head — all inside the
 *     caller's transaction, so the entry exists iff the audited change commits.
 *   - hash = SHA-256 over audit_canonical(): length-prefixed fields, so no two
 *     different rows encode alike. mac = HMAC-SHA256 over the same bytes
 *     under a key derived from TEMEL_SECRET_KEY (core/secret.h), and the
 *     head carries a MAC over (seq, hash): without the key a database
 *     writer can recompute hashes but not MACs, so a rewritten tail shows.
 *     Entries written before migration 0013 have mac NULL (link version 1,
 *     hash only); they stay covered through the first keyed entry, whose MAC
 *     includes their last hash as prev_hash. Every text is cleaned (bounded, valid
 *     UTF-8, no control bytes) BEFORE hashing and stored as hashed; before/
 *     after are stored as the exact JSON text the writer produced.
 *   - There is no UPDATE or DELETE of audit_logs anywhere in the code; the
 *     migration adds triggers that refuse them (and TRUNCATE on PostgreSQL).
 *   - Verify streams the chain in seq order in batches (bounded memory) up
 *     to the head read at its start.
 */
#include <sodium.h>

#include "audit/audit.h"
#include "core/json.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "db/db.h"

#include "core/banned.h"

#define VERIFY_BATCH 256

const char audit_genesis_hash[AUDIT_HASH_HEX + 1] = "0000000000000000000000000000000000000000000000000000000000000000";

/* ---- canonical encoding ------------------------------------------------- */

static unsigned char g_mac_key[crypto_auth_hmacsha256_KEYBYTES];

void audit_set_key(const unsigned char key[32]) { memcpy(g_mac_key, key, sizeof(g_mac_key)); }

/* The encoding goes into a buffer (audit_canonical), or straight into a
 * SHA-256 and an HMAC state (audit_link), so hashing never depends on a size cap. */
struct canon_sink {
    struct buf *b;
    crypto_hash_sha256_state *h;
    crypto_auth_hmacsha256_state *m;
};

static void sink_put(struct canon_sink *s, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (s->b)
        (void)buf_append(s->b, p, n);
    if (s->h)
        crypto_hash_sha256_update(s->h, p, n);
    if (s->m)
        crypto_auth_hmacsha256_update(s->m, p, n);
}

static void canon_i64(struct canon_sink *s, char tag, int64_t v)
{
    char tmp[24];
    size_t n = sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--n] = '-';
    sink_put(s, &tag, 1);
    sink_put(s, tmp + n, sizeof(tmp) - n);
}

static void canon_int(struct canon_sink *s, int64_t v)
{
    canon_i64(s, 'I', v);
    sink_put(s, ";", 1);
}

static void canon_str(struct canon_sink *s, str_t v)
{
    if (!v.p) {
        sink_put(s, "N", 1);
        return;
    }
    canon_i64(s, 'S', (int64_t)v.len);
    sink_put(s, ":", 1);
    sink_put(s, v.p, v.len);
}

static void canon_write(struct canon_sink *s, const struct audit_row *row)
{
    sink_put(s, "temel.audit.v1\n", 15);
    canon_str(s, row->prev_hash);
    canon_int(s, row->seq);
    canon_str(s, row->id);
    canon_int(s, row->created_at_ms);
    canon_str(s, row->actor_id);
    canon_str(s, row->action);
    canon_str(s, row->category);
    canon_str(s, row->target_type);
    canon_str(s, row->target_id);
    canon_str(s, row->before_json);
    canon_str(s, row->after_json);
    canon_str(s, row->ip);
    canon_str(s, row->user_agent);
    canon_str(s, row->endpoint);
    canon_str(s, row->request_id);
    canon_int(s, row->success ? 1 : 0);
}

void audit_canonical(const struct audit_row *row, struct buf *out)
{
    struct canon_sink s = {out, NULL, NULL};
    canon_write(&s, row);
}

void audit_link(const struct audit_row *row, char hash[AUDIT_HASH_HEX + 1], char mac[AUDIT_HASH_HEX + 1])
{
    crypto_hash_sha256_state st;
    crypto_auth_hmacsha256_state mt;
    unsigned char h[crypto_hash_sha256_BYTES], m[crypto_auth_hmacsha256_BYTES];
    struct canon_sink s = {NULL, &st, mac ? &mt : NULL};
    crypto_hash_sha256_init(&st);
    if (mac)
        crypto_auth_hmacsha256_init(&mt, g_mac_key, sizeof(g_mac_key));
    canon_write(&s, row);
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(hash, AUDIT_HASH_HEX + 1, h, sizeof(h));
    if (mac) {
        crypto_auth_hmacsha256_final(&mt, m);
        sodium_bin2hex(mac, AUDIT_HASH_HEX + 1, m, sizeof(m));
    }
}

void audit_hash_hex(const struct audit_row *row, char out[AUDIT_HASH_HEX + 1]) { audit_link(row, out, NULL); }

void audit_head_mac_hex(int64_t seq, str_t hash, char out[AUDIT_HASH_HEX + 1])
{
    crypto_auth_hmacsha256_state mt;
    unsigned char m[crypto_auth_hmacsha256_BYTES];
    struct canon_sink s = {NULL, NULL, &mt};
    crypto_auth_hmacsha256_init(&mt, g_mac_key, sizeof(g_mac_key));
    sink_put(&s, "temel.audit.head.v1\n", 20);
    canon_int(&s, seq);
    canon_str(&s, hash);
    crypto_auth_hmacsha256_final(&mt, m);
    sodium_bin2hex(out, AUDIT_HASH_HEX + 1, m, sizeof(m));
}

/* ---- recording ---------------------------------------------------------- */

/* Append s to out cut to max bytes on a character boundary; control bytes,
 * DEL and invalid UTF-8 become '?'. */
static void clean_text(struct buf *out, str_t s, size_t max)
{
    size_t i = 0, used = 0;
    while (i < s.len) {
        unsigned char c = (unsigned char)s.p[i];
        size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        bool ok = n == 1 ? (c >= 0x20 && c != 0x7F) : n > 1 && i + n <= s.len && utf8_valid(str_make(s.p + i, n));
        size_t width = ok ? n : 1; /* an invalid byte is skipped alone and written as one '?' */
        if (used + width > max)
            break;
        if (ok)
            (void)buf_append(out, s.p + i, n);
        else
            (void)buf_putc(out, '?');
        used += width;
        i += width;
    }
}

enum { T_ACTOR, T_ACTION, T_CATEGORY, T_TTYPE, T_TID, T_IP, T_UA, T_ENDPOINT, T_REQID, T_COUNT };

static db_arg arg_opt(str_t s) { return s.p ? DBA_TEXT(s) : DBA_NULL; }

/* The one append path: audit_record() and the test route. */
static int record(struct db *db, const struct audit_entry *e, int64_t *seq_out, char id_out[UUID_STR_LEN + 1])
{
    struct buf t[T_COUNT], before = BUF_INIT(AUDIT_MAX_JSON), after = BUF_INIT(AUDIT_MAX_JSON);
    str_t in[T_COUNT] = {
        [T_ACTOR] = e->actor_id,
        [T_ACTION] = str_c(e->action),
        [T_CATEGORY] = str_c(e->category),
        [T_TTYPE] = str_c(e->target_type),
        [T_TID] = e->target_id,
        [T_IP] = e->ip,
        [T_UA] = e->user_agent,
        [T_ENDPOINT] = e->endpoint,
        [T_REQID] = e->request_id,
    };
    str_t v[T_COUNT];
    struct audit_row row;
    char prev[AUDIT_HASH_HEX + 1], hash[AUDIT_HASH_HEX + 1], mac[AUDIT_HASH_HEX + 1], hmac[AUDIT_HASH_HEX + 1];
    char id[UUID_STR_LEN + 1];
    struct db_res *res = NULL;
    int rc;

    if (!db_in_tx(db))
        BUG("audit_record() outside a transaction");
    if (!e->action || !*e->action || !e->category || !*e->category)
        BUG("audit entry without action or category");

    for (int i = 0; i < T_COUNT; i++) {
        buf_init(&t[i], AUDIT_MAX_TEXT + 8);
        clean_text(&t[i], in[i], AUDIT_MAX_TEXT);
        v[i] = buf_str(&t[i]);
    }
    /* empty actor (system), target type and target id are stored as NULL */
    if (!v[T_ACTOR].len)
        v[T_ACTOR] = STR_NULL;
    if (!v[T_TTYPE].len)
        v[T_TTYPE] = STR_NULL;
    if (!v[T_TID].len)
        v[T_TID] = STR_NULL;
    if (e->before) {
        struct jw w;
        jw_init(&w, &before);
        jw_json(&w, e->before);
    }
    if (e->after) {
        struct jw w;
        jw_init(&w, &after);
        jw_json(&w, e->after);
    }
    if (!buf_ok(&before) || !buf_ok(&after)) {
        log_error("audit: before/after JSON of %s exceeds %u bytes", e->action, AUDIT_MAX_JSON);
        rc = DB_ERR;
        goto out;
    }

    rc = db_query(db,
                  db_pick(db, "SELECT seq, hash FROM audit_head WHERE id = 1",
                          "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"),
                  DB_NOARGS, &res);
    if (rc != DB_OK)
        goto out;
    rc = db_next(res);
    if (rc != 1) {
        if (rc == 0) {
            log_error("audit: audit_head has no row");
            rc = DB_ERR;
        }
        goto out;
    }
    row.seq = db_int(res, 0) + 1;
    if (str_copy(prev, db_text(res, 1).p, sizeof(prev)) != AUDIT_HASH_HEX) {
        log_error("audit: audit_head hash is malformed");
        rc = DB_ERR;
        goto out;
    }
    db_res_free(res);
    res = NULL;

    uuid7_str(id);
    row.id = str_make(id, UUID_STR_LEN);
    row.created_at_ms = time_now_ms();
    row.actor_id = v[T_ACTOR];
    row.action = v[T_ACTION];
    row.category = v[T_CATEGORY];
    row.target_type = v[T_TTYPE];
    row.target_id = v[T_TID];
    row.before_json = e->before ? buf_str(&before) : STR_NULL;
    row.after_json = e->after ? buf_str(&after) : STR_NULL;
    row.ip = v[T_IP];
    row.user_agent = v[T_UA];
    row.endpoint = v[T_ENDPOINT];
    row.request_id = v[T_REQID];
    row.success = e->success;
    row.prev_hash = str_make(prev, AUDIT_HASH_HEX);
    audit_link(&row, hash, mac);
    audit_head_mac_hex(row.seq, str_make(hash, AUDIT_HASH_HEX), hmac);

    rc = db_exec(db,
                 "INSERT INTO audit_logs (id, seq, actor_id, action, category, target_type, target_id, before_json, "
                 "after_json, ip, user_agent, endpoint, request_id, success, created_at, prev_hash, hash, mac) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ms_ts(?), ?, ?, ?)",
                 DB_ARGS(DBA_TEXT(row.id), DBA_INT(row.seq), arg_opt(row.actor_id), DBA_TEXT(row.action),
                         DBA_TEXT(row.category), arg_opt(row.target_type), arg_opt(row.target_id),
                         arg_opt(row.before_json), arg_opt(row.after_json), DBA_TEXT(row.ip), DBA_TEXT(row.user_agent),
                         DBA_TEXT(row.endpoint), DBA_TEXT(row.request_id), DBA_BOOL(row.success),
                         DBA_INT(row.created_at_ms), DBA_TEXT(row.prev_hash), DBA_TEXT(str_make(hash, AUDIT_HASH_HEX)),
                         DBA_TEXT(str_make(mac, AUDIT_HASH_HEX))),
                 NULL);
    if (rc != DB_OK)
        goto out;
    int64_t changes = 0;
    rc = db_exec(db, "UPDATE audit_head SET seq = ?, hash = ?, mac = ? WHERE id = 1 AND seq = ?",
                 DB_ARGS(DBA_INT(row.seq), DBA_TEXT(str_make(hash, AUDIT_HASH_HEX)),
                         DBA_TEXT(str_make(hmac, AUDIT_HASH_HEX)), DBA_INT(row.seq - 1)),
                 &changes);
    if (rc == DB_OK && changes != 1) {
        log_error("audit: audit_head moved under a locked append");
        rc = DB_ERR;
    }
    if (rc == DB_OK) {
        if (seq_out)
            *seq_out = row.seq;
        if (id_out)
            memcpy(id_out, id, sizeof(id));
    }
out:
    if (res)
        db_res_free(res);
    for (int i = 0; i < T_COUNT; i++)
        buf_free(&t[i]);
    buf_free(&before);
    buf_free(&after);
    return rc;
}

int audit_record(struct db *db, const struct audit_entry *e) { return record(db, e, NULL, NULL); }

int audit_append(struct db *db, const struct audit_entry *e, int64_t *seq_out, char id_out[UUID_STR_LEN + 1])
{
    return record(db, e, seq_out, id_out);
}

/* ---- verify ------------------------------------------------------------- */

static str_t col_opt(const struct db_res *res, int c) { return db_isnull(res, c) ? STR_NULL : db_text(res, c); }

void audit_row_read(const struct db_res *res, struct audit_row *row, str_t *stored_hash, str_t *stored_mac)
{
    row->seq = db_int(res, 0);
    row->id = db_text(res, 1);
    row->created_at_ms = db_int(res, 2);
    row->actor_id = col_opt(res, 3);
    row->action = db_text(res, 4);
    row->category = db_text(res, 5);
    row->target_type = col_opt(res, 6);
    row->target_id = col_opt(res, 7);
    row->before_json = col_opt(res, 8);
    row->after_json = col_opt(res, 9);
    row->ip = db_text(res, 10);
    row->user_agent = db_text(res, 11);
    row->endpoint = db_text(res, 12);
    row->request_id = db_text(res, 13);
    row->success = db_int(res, 14) != 0;
    row->prev_hash = db_text(res, 15);
    *stored_hash = db_text(res, 16);
    if (stored_mac)
        *stored_mac = col_opt(res, 17);
}

static void broken(struct audit_verify *out, int64_t seq, str_t id, const char *reason)
{
    out->ok = false;
    out->broken_seq = seq;
    out->broken_id[0] = '\0';
    if (id.p && id.len < sizeof(out->broken_id)) {
        memcpy(out->broken_id, id.p, id.len);
        out->broken_id[id.len] = '\0';
    }
    out->reason = reason;
}

static bool hex_eq(str_t stored, const char computed[AUDIT_HASH_HEX + 1])
{
    return stored.len == AUDIT_HASH_HEX && sodium_memcmp(stored.p, computed, AUDIT_HASH_HEX) == 0;
}

int audit_verify(struct db *db, struct audit_verify *out)
{
    char prev[AUDIT_HASH_HEX + 1], head_hash[AUDIT_HASH_HEX + 1], head_mac[AUDIT_HASH_HEX + 1];
    bool head_keyed;
    int64_t head_seq, last = 0;
    struct db_res *res;
    int rc;

    memset(out, 0, sizeof(*out));
    out->ok = true;
    rc = db_query(db, "SELECT seq, hash, mac FROM audit_head WHERE id = 1", DB_NOARGS, &res);
    if (rc != DB_OK)
        return rc;
    rc = db_next(res);
    if (rc != 1) {
        db_res_free(res);
        return rc == 0 ? DB_ERR : rc;
    }
    head_seq = db_int(res, 0);
    if (str_copy(head_hash, db_text(res, 1).p, sizeof(head_hash)) < 0)
        head_hash[0] = '\0'; /* too long: cannot match, reported below */
    head_keyed = !db_isnull(res, 2);
    if (!head_keyed || str_copy(head_mac, db_text(res, 2).p, sizeof(head_mac)) < 0)
        head_mac[0] = '\0';
    db_res_free(res);
    memcpy(prev, audit_genesis_hash, sizeof(prev));

    for (;;) {
        int n = 0;
        rc = db_query(db, "SELECT " AUDIT_ROW_COLS " FROM audit_logs WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                      DB_ARGS(DBA_INT(last), DBA_INT(head_seq), DBA_INT(VERIFY_BATCH)), &res);
        if (rc != DB_OK)
            return rc;
        while ((rc = db_next(res)) == 1) {
            struct audit_row row;
            str_t stored, stored_mac;
            char h[AUDIT_HASH_HEX + 1], m[AUDIT_HASH_HEX + 1];
            n++;
            audit_row_read(res, &row, &stored, &stored_mac);
            if (row.seq != last + 1) {
                broken(out, row.seq, row.id, "seq gap");
                break;
            }
            if (!str_eq(row.prev_hash, str_make(prev, AUDIT_HASH_HEX))) {
                broken(out, row.seq, row.id, "prev_hash mismatch");
                break;
            }
            audit_link(&row, h, m);
            if (!str_eq(stored, str_make(h, AUDIT_HASH_HEX))) {
                broken(out, row.seq, row.id, "hash mismatch");
                break;
            }
            /* a keyed link is never followed by an unkeyed one: only entries
             * written before migration 0013 (a prefix) lack a MAC */
            if (!stored_mac.p && out->keyed_entries) {
                broken(out, row.seq, row.id, "mac missing");
                break;
            }
            if (stored_mac.p && !hex_eq(stored_mac, m)) {
                broken(out, row.seq, row.id, "mac mismatch");
                break;
            }
            memcpy(prev, h, sizeof(prev));
            last = row.seq;
            out->entries++;
            out->keyed_entries += stored_mac.p != NULL;
        }
        db_res_free(res);
        if (rc < 0)
            return rc;
        if (!out->ok)
            return DB_OK;
        if (n < VERIFY_BATCH)
            break;
    }
    char want[AUDIT_HASH_HEX + 1];
    audit_head_mac_hex(head_seq, str_c(head_hash), want);
    if (last < head_seq)
        broken(out, last + 1, STR_NULL, "seq gap");
    else if (strcmp(head_hash, prev) != 0)
        broken(out, head_seq, STR_NULL, "head mismatch");
    else if (head_keyed ? !hex_eq(str_c(head_mac), want) : out->keyed_entries > 0)
        broken(out, head_seq, STR_NULL, "head mismatch"); /* keyed entries need a keyed head */
    return DB_OK;
}
