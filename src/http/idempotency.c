/* idempotency.c — see idempotency.h. */
#include "http/idempotency.h"

#include <sodium.h>

#include "core/timeutil.h"
#include "db/db.h"

#include "core/banned.h"

struct idem_ctx {
    str_t owner, key;
    char hash[65];
    bool replayed;
};

/* The stored response under the key, if any: replayed into r (*found), or
 * 422 when the key came with another request. 0, HTTP_EFAIL or a db_rc. */
static int load(struct req *r, struct idem_ctx *c, bool *found)
{
    struct db *db = r->db;
    struct db_res *res;
    bool reused = false;
    int64_t now = time_now_ms();
    int rc = db_query(db,
                      db_pick(db,
                              "SELECT request_hash, response_status, response_body, content_type, ts_ms(expires_at) "
                              "FROM idempotency_keys WHERE owner = ? AND key = ?",
                              "SELECT request_hash, response_status, response_body, content_type, ts_ms(expires_at) "
                              "FROM idempotency_keys WHERE owner = ? AND key = ? FOR UPDATE"),
                      DB_ARGS(DBA_TEXT(c->owner), DBA_TEXT(c->key)), &res);
    if (rc != DB_OK)
        return rc;
    *found = false;
    if ((rc = db_next(res)) == 1) {
        if (db_int(res, 4) <= now) {
            /* expired: forget it and run as new */
            db_res_free(res);
            return db_exec(db, "DELETE FROM idempotency_keys WHERE owner = ? AND key = ?",
                           DB_ARGS(DBA_TEXT(c->owner), DBA_TEXT(c->key)), NULL);
        }
        *found = true;
        if (!str_eq(db_text(res, 0), str_make(c->hash, 64))) {
            reused = true;
        } else {
            c->replayed = true;
            r->status = (int)db_int(res, 1);
            buf_reset(&r->out);
            (void)buf_put(&r->out, db_text(res, 2));
            str_t ct = db_text(res, 3);
            char *p = h2o_mem_alloc_pool(r->pool, ct.len + 1);
            memcpy(p, ct.p, ct.len);
            p[ct.len] = '\0';
            r->content_type = p;
        }
    }
    db_res_free(res);
    if (rc < 0)
        return rc;
    if (reused)
        return http_fail(r, 422, "IDEMPOTENCY_KEY_REUSED",
                         "this Idempotency-Key was used with a different request in the last 24 hours");
    return DB_OK;
}

/* req_tx puts r's response back as it was before a retried attempt. */
static int tx_idem(struct req *r, void *arg)
{
    struct idem_ctx *c = arg;
    struct db *db = r->db;
    bool found;
    int rc;
    c->replayed = false;
    if ((rc = load(r, c, &found)) != DB_OK || found)
        return rc;
    /* claim the key first: a concurrent duplicate blocks here until we finish */
    int64_t now = time_now_ms(), changed = 0;
    rc = db_exec(db,
                 db_pick(db,
                         "INSERT INTO idempotency_keys (owner, key, request_hash, response_status, response_body, "
                         "content_type, created_at, expires_at) VALUES (?, ?, ?, 0, '', '', ms_ts(?), ms_ts(?))",
                         "INSERT INTO idempotency_keys (owner, key, request_hash, response_status, response_body, "
                         "content_type, created_at, expires_at) VALUES (?, ?, ?, 0, '', '', ms_ts(?), ms_ts(?)) "
                         "ON CONFLICT DO NOTHING"),
                 DB_ARGS(DBA_TEXT(c->owner), DBA_TEXT(c->key), DBA_CSTR(c->hash), DBA_INT(now),
                         DBA_INT(now + IDEMPOTENCY_TTL_MS)),
                 &changed);
    if (rc != DB_OK)
        return rc;
    if (changed == 0) /* PostgreSQL: the other request committed while we waited */
        return (rc = load(r, c, &found)) != DB_OK ? rc : (found ? DB_OK : DB_EBUSY);
    rc = r->route->handler(r);
    if (rc == HTTP_DEFER)
        BUG("a ROUTE_IDEMPOTENT handler may not defer its response");
    if (rc != 0) /* roll back the handler's writes and the claim */
        return http_rc(r, rc);
    if (!buf_ok(&r->out))
        return DB_ERR;
    return db_exec(db,
                   "UPDATE idempotency_keys SET response_status = ?, response_body = ?, content_type = ? "
                   "WHERE owner = ? AND key = ?",
                   DB_ARGS(DBA_INT(r->status), DBA_TEXT(buf_str(&r->out)), DBA_CSTR(r->content_type),
                           DBA_TEXT(c->owner), DBA_TEXT(c->key)),
                   NULL);
}

int idempotency_run(struct req *r, str_t key)
{
    struct idem_ctx c = {.key = key};
    struct buf owner = BUF_INIT(128), line = BUF_INIT(BUF_MAX_SMALL);
    crypto_hash_sha256_state st;
    unsigned char digest[crypto_hash_sha256_BYTES];
    int rc;
    if (key.len == 0 || key.len > 255)
        return http_invalid(r, "Idempotency-Key", "must be 1 to 255 characters");
    for (size_t i = 0; i < key.len; i++)
        if ((unsigned char)key.p[i] < 0x21 || (unsigned char)key.p[i] > 0x7e)
            return http_invalid(r, "Idempotency-Key", "must be printable ASCII without spaces");
    if (r->user_id.len)
        (void)buf_put(&owner, r->user_id);
    else {
        (void)buf_puts(&owner, "ip:");
        (void)buf_put(&owner, req_client_ip(r));
    }
    c.owner = buf_str(&owner);
    /* the request's identity: method, route (with its parameters) and body */
    (void)buf_printf(&line, "%s %.*s\n", r->route->method, (int)r->raw_path.len, r->raw_path.p);
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)line.ptr, line.len);
    if (r->entity.len)
        crypto_hash_sha256_update(&st, (const unsigned char *)r->entity.p, r->entity.len);
    crypto_hash_sha256_final(&st, digest);
    sodium_bin2hex(c.hash, sizeof(c.hash), digest, sizeof(digest));
    buf_free(&line);

    rc = req_tx(r, DB_TX_WRITE, tx_idem, &c);
    buf_free(&owner);
    if (rc == 0 && c.replayed)
        req_header(r, "idempotent-replayed", STRLIT("true"));
    return rc;
}

int idempotency_purge(struct db *db, int64_t now_ms, int64_t *removed)
{
    return db_exec(db, "DELETE FROM idempotency_keys WHERE expires_at <= ms_ts(?)", DB_ARGS(DBA_INT(now_ms)), removed);
}
