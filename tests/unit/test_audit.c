/*
 * test_audit.c — unit tests for src/audit (the chain service): the canonical encoding,
 * the chain on a migrated temp SQLite database (append, verify, tamper with
 * the append-only triggers dropped), and concurrent appends. The same chain
 * tests run on PostgreSQL when DATABASE_URL_PG is set (in a private schema):
 *
 *   eval "$(scripts/pgtmp.sh start)"
 *   DATABASE_URL_PG=$DATABASE_URL meson test -C build test_audit
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/timeutil.h"
#include "core/uuid.h"
#include "db/db.h"
#include "db/migrate.h"
#include "audit/audit.h"

#include "core/banned.h"

/* ---- helpers ------------------------------------------------------------------ */

struct testdb {
    char dir[64];
    struct buf url;
    struct buf schema; /* PostgreSQL: the private schema */
    enum db_kind kind;
};

static struct db *open_ok(const char *url)
{
    struct buf err = BUF_INIT(BUF_MAX_SMALL);
    struct db *db = db_open(url, NULL, &err);
    if (!db)
        fail_msg("db_open(%s): %s", url, buf_cstr(&err));
    buf_free(&err);
    return db;
}

#define EXEC_OK(db, sql)                                                                                               \
    do {                                                                                                               \
        int rc_ = db_exec_script((db), (sql));                                                                         \
        if (rc_)                                                                                                       \
            fail_msg("%s -> %d %s", (sql), rc_, db_errmsg(db));                                                        \
    } while (0)

static void migrate_ok(struct db *db)
{
    struct buf out = BUF_INIT(BUF_MAX_SMALL * 4);
    int rc = migrate_up(db, 0, &out);
    if (rc)
        fail_msg("migrate_up: %d %s", rc, db_errmsg(db));
    buf_free(&out);
}

/* A fresh migrated database of the given kind; returns a connection. Skips
 * PostgreSQL tests without DATABASE_URL_PG. */
static struct db *testdb_open(struct testdb *t, enum db_kind kind)
{
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    buf_init(&t->url, BUF_MAX_SMALL);
    buf_init(&t->schema, BUF_MAX_SMALL);
    if (kind == DB_SQLITE) {
        ASSERT(str_copy(t->dir, "/tmp/temel-test-audit-XXXXXX", sizeof(t->dir)) > 0);
        ASSERT(mkdtemp(t->dir) != NULL);
        assert_int_equal(buf_printf(&t->url, "sqlite://%s/a.db", t->dir), 0);
    } else {
        const char *pg = getenv("DATABASE_URL_PG");
        char rnd[17];
        unsigned char b[8];
        if (!pg || !*pg)
            skip();
        randombytes_buf(b, sizeof(b));
        sodium_bin2hex(rnd, sizeof(rnd), b, sizeof(b));
        assert_int_equal(buf_printf(&t->schema, "t_audit_%s", rnd), 0);
        struct db *admin = open_ok(pg);
        struct buf sql = BUF_INIT(BUF_MAX_SMALL);
        assert_int_equal(buf_printf(&sql, "CREATE SCHEMA %s", buf_cstr(&t->schema)), 0);
        EXEC_OK(admin, buf_cstr(&sql));
        buf_free(&sql);
        db_close(admin);
        assert_int_equal(buf_printf(&t->url, "%s%coptions=-c%%20search_path%%3D%s", pg, strchr(pg, '?') ? '&' : '?',
                                    buf_cstr(&t->schema)),
                         0);
    }
    struct db *db = open_ok(buf_cstr(&t->url));
    migrate_ok(db);
    return db;
}

static void testdb_release(struct testdb *t)
{
    if (t->kind == DB_SQLITE) {
        static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
        struct buf p = BUF_INIT(BUF_MAX_SMALL);
        for (size_t i = 0; i < ARRAY_LEN(suffix); i++) {
            buf_reset(&p);
            assert_int_equal(buf_printf(&p, "%s/a.db%s", t->dir, suffix[i]), 0);
            unlink(buf_cstr(&p));
        }
        rmdir(t->dir);
        buf_free(&p);
    } else {
        struct db *admin = open_ok(getenv("DATABASE_URL_PG"));
        struct buf sql = BUF_INIT(BUF_MAX_SMALL);
        assert_int_equal(buf_printf(&sql, "DROP SCHEMA %s CASCADE", buf_cstr(&t->schema)), 0);
        EXEC_OK(admin, buf_cstr(&sql));
        buf_free(&sql);
        db_close(admin);
    }
    buf_free(&t->url);
    buf_free(&t->schema);
}

struct rec_arg {
    const struct audit_entry *e;
};

static int tx_record(struct db *db, void *arg)
{
    struct rec_arg *a = arg;
    return audit_record(db, a->e);
}

static void record_ok(struct db *db, const struct audit_entry *e)
{
    struct rec_arg a = {e};
    int rc = db_tx(db, DB_TX_WRITE, tx_record, &a);
    if (rc)
        fail_msg("audit_record: %d %s", rc, db_errmsg(db));
}

static int64_t qint(struct db *db, const char *sql, const db_arg *args, size_t nargs)
{
    int64_t v = 0;
    bool found = false;
    int rc = db_query_int(db, sql, args, nargs, &v, &found);
    if (rc)
        fail_msg("%s -> %d %s", sql, rc, db_errmsg(db));
    assert_true(found);
    return v;
}

static struct audit_verify verify_ok(struct db *db)
{
    struct audit_verify v;
    int rc = audit_verify(db, &v);
    if (rc)
        fail_msg("audit_verify: %d %s", rc, db_errmsg(db));
    return v;
}

/* ---- canonical encoding ------------------------------------------------------- */

static struct audit_row sample_row(void)
{
    struct audit_row r = {
        .seq = 7,
        .id = STRLIT("01a201bf-48dc-70e3-ab3f-f08b88db1bb7"),
        .created_at_ms = 1795325642972,
        .actor_id = STRLIT("u1"),
        .action = STRLIT("user.ban"),
        .category = STRLIT("users"),
        .target_type = STRLIT("user"),
        .target_id = STRLIT("u2"),
        .before_json = STRLIT("{\"status\":\"active\"}"),
        .after_json = STR_NULL,
        .ip = STRLIT("127.0.0.1"),
        .user_agent = STRLIT(""),
        .endpoint = STRLIT("PATCH /api/v1/users/{id}"),
        .request_id = STRLIT("rid"),
        .success = true,
        .prev_hash = STRLIT("ab"),
    };
    return r;
}

static void hash_of(const struct audit_row *r, char out[AUDIT_HASH_HEX + 1])
{
    audit_hash_hex(r, out);
    assert_int_equal(strlen(out), AUDIT_HASH_HEX);
}

static void test_canonical(void **state)
{
    UNUSED(state);
    struct audit_row r = sample_row();
    struct buf b = BUF_INIT(BUF_MAX_SMALL);
    audit_canonical(&r, &b);
    assert_true(buf_ok(&b));
    assert_string_equal(buf_cstr(&b), "temel.audit.v1\n"
                                      "S2:ab"
                                      "I7;"
                                      "S36:01a201bf-48dc-70e3-ab3f-f08b88db1bb7"
                                      "I1795325642972;"
                                      "S2:u1"
                                      "S8:user.ban"
                                      "S5:users"
                                      "S4:user"
                                      "S2:u2"
                                      "S19:{\"status\":\"active\"}"
                                      "N"
                                      "S9:127.0.0.1"
                                      "S0:"
                                      "S24:PATCH /api/v1/users/{id}"
                                      "S3:rid"
                                      "I1;");

    /* the hash is SHA-256 of exactly those bytes, in lower-case hex */
    unsigned char h[crypto_hash_sha256_BYTES];
    char want[AUDIT_HASH_HEX + 1], got[AUDIT_HASH_HEX + 1];
    crypto_hash_sha256(h, (const unsigned char *)b.ptr, b.len);
    sodium_bin2hex(want, sizeof(want), h, sizeof(h));
    hash_of(&r, got);
    assert_string_equal(got, want);
    buf_free(&b);
}

static void test_canonical_unambiguous(void **state)
{
    UNUSED(state);
    struct audit_row a = sample_row(), b;
    char ha[AUDIT_HASH_HEX + 1], hb[AUDIT_HASH_HEX + 1];
    hash_of(&a, ha);

    /* a byte moved across a field boundary */
    b = a;
    b.action = STRLIT("user.ba");
    b.category = STRLIT("nusers");
    hash_of(&b, hb);
    assert_string_not_equal(ha, hb);
    /* NULL and empty differ */
    b = a;
    b.after_json = STRLIT("");
    hash_of(&b, hb);
    assert_string_not_equal(ha, hb);
    b = a;
    b.user_agent = STR_NULL;
    hash_of(&b, hb);
    assert_string_not_equal(ha, hb);
    /* every scalar is covered */
    b = a;
    b.success = false;
    hash_of(&b, hb);
    assert_string_not_equal(ha, hb);
    b = a;
    b.seq = 8;
    hash_of(&b, hb);
    assert_string_not_equal(ha, hb);
    b = a;
    b.created_at_ms++;
    hash_of(&b, hb);
    assert_string_not_equal(ha, hb);
    b = a;
    b.prev_hash = STRLIT("ac");
    hash_of(&b, hb);
    assert_string_not_equal(ha, hb);
    /* a string that looks like the encoding itself does not collide */
    b = a;
    b.target_type = STRLIT("userS2:u2");
    b.target_id = STR_NULL;
    hash_of(&b, hb);
    assert_string_not_equal(ha, hb);
    /* and the same row hashes the same */
    b = a;
    hash_of(&b, hb);
    assert_string_equal(ha, hb);
}

/* ---- the chain ---------------------------------------------------------------- */

static void append_three(struct db *db)
{
    json_t *before = json_pack("{s:s, s:i}", "role", "user", "n", 1);
    json_t *after = json_pack("{s:s, s:i}", "role", "admin", "n", 2);
    struct audit_entry e1 = {.actor_id = STRLIT("admin-1"),
                             .action = "user.role_change",
                             .category = "users",
                             .target_type = "user",
                             .target_id = STRLIT("user-1"),
                             .before = before,
                             .after = after,
                             .success = true,
                             .ip = STRLIT("10.0.0.1"),
                             .user_agent = STRLIT("ua/1"),
                             .endpoint = STRLIT("PATCH /api/v1/users/{id}"),
                             .request_id = STRLIT("req-1")};
    struct audit_entry e2 = {.action = "jobs.retry", .category = "jobs", .success = false};
    struct audit_entry e3 = e1;
    e3.action = "user.ban";
    e3.target_id = STRLIT("user-2");
    record_ok(db, &e1);
    record_ok(db, &e2);
    record_ok(db, &e3);
    json_decref(before);
    json_decref(after);
}

static void drop_triggers(struct db *db)
{
    if (db_kind(db) == DB_SQLITE)
        EXEC_OK(db, "DROP TRIGGER audit_logs_no_update; DROP TRIGGER audit_logs_no_delete");
    else
        EXEC_OK(db, "ALTER TABLE audit_logs DISABLE TRIGGER USER");
}

static void restore_triggers(struct db *db)
{
    if (db_kind(db) == DB_POSTGRES)
        EXEC_OK(db, "ALTER TABLE audit_logs ENABLE TRIGGER USER");
}

/* The head's trigger only lets it move forward by one: tests step around it. */
static void head_trigger(struct db *db, bool on)
{
    if (db_kind(db) == DB_POSTGRES)
        EXEC_OK(db, on ? "ALTER TABLE audit_head ENABLE TRIGGER USER" : "ALTER TABLE audit_head DISABLE TRIGGER USER");
    else if (!on)
        EXEC_OK(db, "DROP TRIGGER IF EXISTS audit_head_forward");
}

static struct audit_verify expect_broken(struct db *db, int64_t seq, const char *reason)
{
    struct audit_verify v = verify_ok(db);
    assert_false(v.ok);
    assert_int_equal(v.broken_seq, seq);
    assert_string_equal(v.reason, reason);
    return v;
}

/* Issue 9 item 13: recompute the unkeyed hashes of a rewritten tail (what a
 * database writer without TEMEL_SECRET_KEY can do) from seq `from` on, and
 * point the head at the new last hash. */
static void rehash_tail(struct db *db, int64_t from, bool null_macs)
{
    char prev[AUDIT_HASH_HEX + 1];
    int64_t last = qint(db, "SELECT seq FROM audit_head WHERE id = 1", DB_NOARGS);
    memcpy(prev, audit_genesis_hash, sizeof(prev));
    for (int64_t seq = 1; seq <= last; seq++) {
        struct db_res *res;
        struct audit_row row;
        char h[AUDIT_HASH_HEX + 1];
        assert_int_equal(db_query(db,
                                  "SELECT seq, id, ts_ms(created_at), actor_id, action, category, target_type, "
                                  "target_id, before_json, after_json, ip, user_agent, endpoint, request_id, success, "
                                  "hash FROM audit_logs WHERE seq = ?",
                                  DB_ARGS(DBA_INT(seq)), &res),
                         DB_OK);
        assert_int_equal(db_next(res), 1);
#define OPT(c) (db_isnull(res, c) ? STR_NULL : db_text(res, c))
        row = (struct audit_row){db_int(res, 0), db_text(res, 1), db_int(res, 2), OPT(3), db_text(res, 4),
                                 db_text(res, 5), OPT(6), OPT(7), OPT(8), OPT(9), db_text(res, 10), db_text(res, 11),
                                 db_text(res, 12), db_text(res, 13), db_int(res, 14) != 0,
                                 str_make(prev, AUDIT_HASH_HEX)};
#undef OPT
        if (seq < from) {
            assert_int_equal(str_copy(prev, db_text(res, 15).p, sizeof(prev)), AUDIT_HASH_HEX);
            db_res_free(res);
            continue;
        }
        audit_hash_hex(&row, h);
        db_res_free(res);
        assert_int_equal(db_exec(db, null_macs ? "UPDATE audit_logs SET prev_hash = ?, hash = ?, mac = NULL WHERE seq = ?"
                                               : "UPDATE audit_logs SET prev_hash = ?, hash = ? WHERE seq = ?",
                                 DB_ARGS(DBA_CSTR(prev), DBA_CSTR(h), DBA_INT(seq)), NULL),
                         DB_OK);
        memcpy(prev, h, sizeof(prev));
    }
    head_trigger(db, false);
    assert_int_equal(db_exec(db, "UPDATE audit_head SET hash = ? WHERE id = 1", DB_ARGS(DBA_CSTR(prev)), NULL), DB_OK);
    head_trigger(db, true);
}

static void check_chain(enum db_kind kind)
{
    struct testdb t;
    struct db *db = testdb_open(&t, kind);
    struct audit_verify v;

    /* empty chain verifies */
    v = verify_ok(db);
    assert_true(v.ok);
    assert_int_equal(v.entries, 0);

    append_three(db);
    v = verify_ok(db);
    assert_true(v.ok);
    assert_int_equal(v.entries, 3);
    assert_int_equal(qint(db, "SELECT seq FROM audit_head WHERE id = 1", DB_NOARGS), 3);
    assert_int_equal(qint(db, "SELECT count(*) FROM audit_logs WHERE seq = 1 AND prev_hash = ?",
                          DB_ARGS(DBA_CSTR(audit_genesis_hash))),
                     1);
    /* stored exactly as hashed: before_json is the writer's canonical text */
    assert_int_equal(qint(db, "SELECT count(*) FROM audit_logs WHERE before_json = ?",
                          DB_ARGS(DBA_CSTR("{\"role\":\"user\",\"n\":1}"))),
                     2);
    /* a system entry has NULL actor, target, before and after */
    assert_int_equal(qint(db,
                          "SELECT count(*) FROM audit_logs WHERE seq = 2 AND actor_id IS NULL AND target_type IS NULL "
                          "AND target_id IS NULL AND before_json IS NULL AND after_json IS NULL",
                          DB_NOARGS),
                     1);
    /* created_at reads back to the millisecond that was hashed (timestamptz on PG) */
    assert_true(qint(db, "SELECT ts_ms(created_at) FROM audit_logs WHERE seq = 1", DB_NOARGS) > 1700000000000);

    /* append-only: the triggers refuse UPDATE and DELETE, and the head cannot go back */
    assert_int_not_equal(db_exec(db, "UPDATE audit_logs SET action = 'x' WHERE seq = 2", DB_NOARGS, NULL), DB_OK);
    assert_int_not_equal(db_exec(db, "DELETE FROM audit_logs WHERE seq = 3", DB_NOARGS, NULL), DB_OK);
    assert_int_not_equal(db_exec(db, "UPDATE audit_head SET seq = 2 WHERE id = 1", DB_NOARGS, NULL), DB_OK);
    assert_int_not_equal(db_exec(db, "DELETE FROM audit_head", DB_NOARGS, NULL), DB_OK);
    v = verify_ok(db);
    assert_true(v.ok);

    /* tamper with one field of seq 2: verify names seq 2 */
    drop_triggers(db);
    assert_int_equal(db_exec(db, "UPDATE audit_logs SET success = ? WHERE seq = 2", DB_ARGS(DBA_BOOL(true)), NULL),
                     DB_OK);
    v = verify_ok(db);
    assert_false(v.ok);
    assert_int_equal(v.broken_seq, 2);
    assert_string_equal(v.reason, "hash mismatch");
    assert_int_equal(v.entries, 1);
    assert_int_equal(strlen(v.broken_id), UUID_STR_LEN);

    /* ... and with its unkeyed hash recomputed too: its MAC does not match */
    rehash_tail(db, 2, false);
    v = verify_ok(db);
    assert_false(v.ok);
    assert_int_equal(v.broken_seq, 2); /* the keyed MAC still names the edited entry */
    assert_string_equal(v.reason, "mac mismatch");
    assert_int_equal(v.entries, 1);

    /* a row removed from the end: a gap at the head's seq */
    assert_int_equal(db_exec(db, "DELETE FROM audit_logs WHERE seq >= 2", DB_NOARGS, NULL), DB_OK);
    v = verify_ok(db);
    assert_false(v.ok);
    assert_int_equal(v.broken_seq, 2);
    assert_string_equal(v.reason, "seq gap");
    assert_string_equal(v.broken_id, "");
    assert_int_equal(v.entries, 1);
    restore_triggers(db);

    db_close(db);
    testdb_release(&t);
}

/* A fresh database with six entries. */
static struct db *open_six(struct testdb *t, enum db_kind kind)
{
    struct db *db = testdb_open(t, kind);
    append_three(db);
    append_three(db);
    return db;
}

static void check_gap_and_edit(enum db_kind kind)
{
    struct testdb t;
    struct db *db = open_six(&t, kind);
    struct audit_verify v;
    drop_triggers(db);
    /* a row removed from the middle */
    assert_int_equal(db_exec(db, "DELETE FROM audit_logs WHERE seq = 4", DB_NOARGS, NULL), DB_OK);
    v = verify_ok(db);
    assert_false(v.ok);
    assert_int_equal(v.broken_seq, 5);
    assert_string_equal(v.reason, "seq gap");
    assert_int_equal(v.entries, 3);
    /* an earlier edit of before_json is found first */
    assert_int_equal(db_exec(db, "UPDATE audit_logs SET before_json = ? WHERE seq = 1",
                             DB_ARGS(DBA_CSTR("{\"role\":\"admin\",\"n\":1}")), NULL),
                     DB_OK);
    v = verify_ok(db);
    assert_false(v.ok);
    assert_int_equal(v.broken_seq, 1);
    assert_string_equal(v.reason, "hash mismatch");
    assert_int_equal(v.entries, 0);
    restore_triggers(db);
    db_close(db);
    testdb_release(&t);
}

/* More entries than one verify batch, and text cleaning before hashing. */
static void check_long_chain(enum db_kind kind)
{
    struct testdb t;
    struct db *db = testdb_open(&t, kind);
    struct buf ua = BUF_INIT(4096);
    for (int i = 0; i < 700; i++)
        (void)buf_putc(&ua, (char)(i % 3 == 0 ? 0x01 : i % 3 == 1 ? (char)0xff : 'a'));
    (void)buf_puts(&ua, "\xc3\xa9"); /* past the cut: never half a character */
    struct audit_entry e = {.action = "x.y", .category = "test", .user_agent = buf_str(&ua), .success = true};
    for (int i = 0; i < 600; i++)
        record_ok(db, &e);
    struct audit_verify v = verify_ok(db);
    assert_true(v.ok);
    assert_int_equal(v.entries, 600);
    assert_int_equal(qint(db, "SELECT count(*) FROM audit_logs WHERE length(user_agent) = ?",
                          DB_ARGS(DBA_INT(AUDIT_MAX_TEXT))),
                     600);
    assert_int_equal(qint(db, "SELECT count(*) FROM audit_logs WHERE user_agent LIKE '?\?a?\?a%'", DB_NOARGS), 600);
    buf_free(&ua);
    db_close(db);
    testdb_release(&t);
}

/* Concurrent appends from several connections keep seq contiguous. */
struct worker {
    const char *url;
    int n;
    int failures;
};

static void *append_worker(void *arg)
{
    struct worker *w = arg;
    struct db *db = open_ok(w->url);
    struct audit_entry e = {.action = "x.concurrent", .category = "test", .success = true};
    struct rec_arg a = {&e};
    for (int i = 0; i < w->n; i++)
        if (db_tx(db, DB_TX_WRITE, tx_record, &a) != DB_OK)
            w->failures++;
    db_close(db);
    return NULL;
}

static void check_concurrent(enum db_kind kind)
{
    struct testdb t;
    struct db *db = testdb_open(&t, kind);
    enum { NT = 6, PER = 30 };
    pthread_t th[NT];
    struct worker w[NT];
    for (int i = 0; i < NT; i++) {
        w[i] = (struct worker){buf_cstr(&t.url), PER, 0};
        assert_int_equal(pthread_create(&th[i], NULL, append_worker, &w[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    struct audit_verify v = verify_ok(db);
    assert_true(v.ok);
    assert_int_equal(v.entries, NT * PER);
    assert_int_equal(qint(db, "SELECT max(seq) - min(seq) + 1 FROM audit_logs", DB_NOARGS), NT * PER);
    db_close(db);
    testdb_release(&t);
}

static void check_mac(enum db_kind kind)
{
    struct testdb t;
    struct db *db = open_six(&t, kind);
    struct audit_verify v = verify_ok(db);
    assert_true(v.ok);
    assert_int_equal(v.entries, 6);
    assert_int_equal(v.keyed_entries, 6);
    assert_int_equal(qint(db, "SELECT count(*) FROM audit_logs WHERE length(mac) = 64", DB_NOARGS), 6);
    drop_triggers(db);

    /* entries written before migration 0013 (mac NULL) are a valid prefix */
    assert_int_equal(db_exec(db, "UPDATE audit_logs SET mac = NULL WHERE seq <= 2", DB_NOARGS, NULL), DB_OK);
    v = verify_ok(db);
    assert_true(v.ok);
    assert_int_equal(v.entries, 6);
    assert_int_equal(v.keyed_entries, 4);
    /* ... but an unkeyed entry after a keyed one is not */
    assert_int_equal(db_exec(db, "UPDATE audit_logs SET mac = NULL WHERE seq = 5", DB_NOARGS, NULL), DB_OK);
    v = expect_broken(db, 5, "mac missing");
    db_close(db);
    testdb_release(&t);

    /* the tail rewritten consistently with unkeyed hashes: the first changed entry is named */
    db = open_six(&t, kind);
    drop_triggers(db);
    assert_int_equal(db_exec(db, "UPDATE audit_logs SET target_id = 'someone-else' WHERE seq = 4", DB_NOARGS, NULL),
                     DB_OK);
    rehash_tail(db, 4, false);
    v = expect_broken(db, 4, "mac mismatch");
    assert_int_equal(v.entries, 3);
    /* ... also with the MACs of the rewritten entries removed */
    rehash_tail(db, 4, true);
    v = expect_broken(db, 4, "mac missing");
    db_close(db);
    testdb_release(&t);

    /* a head whose MAC does not match, and a verifier with another key */
    db = testdb_open(&t, kind);
    append_three(db);
    v = verify_ok(db);
    assert_true(v.ok);
    static const unsigned char other[32] = {1};
    audit_set_key(other);
    v = expect_broken(db, 1, "mac mismatch");
    audit_set_key((const unsigned char[32]){0});
    head_trigger(db, false);
    assert_int_equal(db_exec(db, "UPDATE audit_head SET mac = NULL WHERE id = 1", DB_NOARGS, NULL), DB_OK);
    v = expect_broken(db, 3, "head mismatch");
    head_trigger(db, true);
    db_close(db);
    testdb_release(&t);
}

static void test_sqlite_mac(void **state)
{
    UNUSED(state);
    check_mac(DB_SQLITE);
}
static void test_pg_mac(void **state)
{
    UNUSED(state);
    check_mac(DB_POSTGRES);
}

static void test_sqlite_chain(void **state)
{
    UNUSED(state);
    check_chain(DB_SQLITE);
}
static void test_sqlite_gap_and_edit(void **state)
{
    UNUSED(state);
    check_gap_and_edit(DB_SQLITE);
}
static void test_sqlite_long_chain(void **state)
{
    UNUSED(state);
    check_long_chain(DB_SQLITE);
}
static void test_sqlite_concurrent(void **state)
{
    UNUSED(state);
    check_concurrent(DB_SQLITE);
}
static void test_pg_chain(void **state)
{
    UNUSED(state);
    check_chain(DB_POSTGRES);
}
static void test_pg_gap_and_edit(void **state)
{
    UNUSED(state);
    check_gap_and_edit(DB_POSTGRES);
}
static void test_pg_long_chain(void **state)
{
    UNUSED(state);
    check_long_chain(DB_POSTGRES);
}
static void test_pg_concurrent(void **state)
{
    UNUSED(state);
    check_concurrent(DB_POSTGRES);
}

/* Recording outside a transaction is a programmer error. */
static void test_outside_tx_is_bug(void **state)
{
    pid_t pid;
    int status = 0;
    UNUSED(state);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct db *db = open_ok("sqlite://:memory:");
        struct audit_entry e = {.action = "x.y", .category = "test"};
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        (void)!audit_record(db, &e);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_canonical_unambiguous),
        cmocka_unit_test(test_sqlite_chain),
        cmocka_unit_test(test_sqlite_gap_and_edit),
        cmocka_unit_test(test_sqlite_long_chain),
        cmocka_unit_test(test_sqlite_concurrent),
        cmocka_unit_test(test_outside_tx_is_bug),
        cmocka_unit_test(test_pg_chain),
        cmocka_unit_test(test_pg_gap_and_edit),
        cmocka_unit_test(test_pg_long_chain),
        cmocka_unit_test(test_pg_concurrent),
        cmocka_unit_test(test_sqlite_mac),
        cmocka_unit_test(test_pg_mac),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
