/*
 * sqlite.c — the SQLite backend of db.h.
 *
 * Design: one sqlite3 handle per struct db, opened NOMUTEX (the connection
 * belongs to one thread). Statements are prepared with
 * SQLITE_PREPARE_PERSISTENT and kept in the per-connection cache keyed by SQL
 * text; after use they are reset and their bindings cleared, so the cached
 * statement holds no locks and no caller memory. A cached statement that is
 * still in use by an open db_res (the caller runs the same SQL while
 * iterating) is not shared: that query gets a fresh statement, finalized when
 * its result is freed.
 *
 * db_query steps once before returning, so errors (constraint, busy,
 * timeout) surface from db_query and the statistics cover the first row.
 *
 * Busy: our busy handler waits up to busy_timeout_ms, but never past the
 * deadline; SQLITE_BUSY then comes back as DB_EBUSY (db_tx retries, and its
 * next BEGIN fails with DB_ETIMEOUT once the deadline has passed).
 *
 * Deadline: a progress handler (every SQLITE_PROGRESS_OPS VM ops) interrupts
 * the statement once db->deadline_ms has passed; the SQLITE_INTERRUPT it
 * causes is reported as DB_ETIMEOUT.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "core/timeutil.h"
#include "db/db_internal.h"
#include "db/sqlite_gate.h"

#include "core/banned.h"

#define SQLITE_PROGRESS_OPS 1000

struct sq_db {
    struct db base;
    sqlite3 *h;
    bool timed_out; /* set by the progress handler */
    int64_t busy_since_ms;
    struct sq_gate *gate; /* the file's write gate and checkpointer */
};

struct sq_res {
    struct db_res base;
    sqlite3_stmt *st;
    struct db_cache_ent *ent; /* NULL when the statement is not cached */
    int pending;              /* result of the first step not yet returned: 1 row, 0 done */
    bool first;
    bool done;
};

static int map_rc(struct sq_db *s, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return DB_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return DB_EBUSY;
    case SQLITE_CONSTRAINT:
        return DB_ECONSTRAINT;
    case SQLITE_INTERRUPT:
        return s->timed_out ? DB_ETIMEOUT : DB_ERR;
    default:
        return DB_ERR;
    }
}

static int sq_fail(struct sq_db *s, int rc, const char *sql)
{
    int drc = map_rc(s, rc);
    if (drc == DB_ETIMEOUT)
        return db__fail(&s->base, drc, "sqlite: statement deadline passed: %.200s", sql);
    return db__fail(&s->base, drc, "sqlite: %s (%d): %.200s", sqlite3_errmsg(s->h), rc, sql);
}

static int on_progress(void *arg)
{
    struct sq_db *s = arg;
    if (s->base.deadline_ms > 0 && time_mono_ms() >= s->base.deadline_ms) {
        s->timed_out = true;
        return 1;
    }
    return 0;
}

/* Busy handler: like sqlite3_busy_timeout (sleep 1, 2, 5, ... ms until
 * busy_timeout_ms), but it also gives up once the deadline has passed. */
static int on_busy(void *arg, int count)
{
    static const int delays_ms[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
    struct sq_db *s = arg;
    int64_t now = time_mono_ms(), sleep_ms;
    if (coro_self())
        return 0; /* never sleep on a loop thread: db.c yields and retries */
    if (count == 0)
        s->busy_since_ms = now;
    if (now - s->busy_since_ms >= s->base.opt.busy_timeout_ms)
        return 0;
    if (s->base.deadline_ms > 0 && now >= s->base.deadline_ms)
        return 0;
    sleep_ms = delays_ms[count < (int)ARRAY_LEN(delays_ms) ? count : (int)ARRAY_LEN(delays_ms) - 1];
    if (sleep_ms > s->base.opt.busy_timeout_ms - (now - s->busy_since_ms))
        sleep_ms = s->base.opt.busy_timeout_ms - (now - s->busy_since_ms);
    if (s->base.deadline_ms > 0 && sleep_ms > s->base.deadline_ms - now)
        sleep_ms = s->base.deadline_ms - now;
    sqlite3_sleep((int)(sleep_ms > 0 ? sleep_ms : 1));
    return 1;
}

static void sq_deadline_changed(struct db *db)
{
    struct sq_db *s = (struct sq_db *)db;
    if (db->deadline_ms > 0)
        sqlite3_progress_handler(s->h, SQLITE_PROGRESS_OPS, on_progress, s);
    else
        sqlite3_progress_handler(s->h, 0, NULL, NULL);
}

static void release_stmt(sqlite3_stmt *st, struct db_cache_ent *ent)
{
    if (ent) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        ent->busy = false;
    } else {
        sqlite3_finalize(st);
    }
}

/* Prepare exactly one statement (anything but blanks and ';' after it is refused). */
static int prepare_one(struct sq_db *s, const char *sql, size_t len, unsigned flags, sqlite3_stmt **stp)
{
    const char *tail = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(s->h, sql, (int)len, flags, &st, &tail);
    *stp = NULL;
    if (rc != SQLITE_OK)
        return sq_fail(s, rc, sql);
    if (!st)
        return db__fail(&s->base, DB_ERR, "sqlite: empty statement");
    if (tail && *tail) {
        while (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == '\r' || *tail == ';')
            tail++;
        if (*tail) {
            sqlite3_finalize(st);
            return db__fail(&s->base, DB_ERR, "sqlite: more than one statement (use db_exec_script): %.200s", sql);
        }
    }
    *stp = st;
    return DB_OK;
}

/* Find or prepare the statement for sql and bind args. On success *stp is
 * ready to step and *entp says whether it is cached (mark busy). */
static int sq_prepare(struct sq_db *s, const char *sql, const db_arg *args, size_t nargs, bool copy_text,
                      sqlite3_stmt **stp, struct db_cache_ent **entp)
{
    size_t len = strlen(sql);
    struct db_cache_ent *ent = db__cache_get(&s->base.cache, sql, len);
    sqlite3_stmt *st = NULL;
    int rc;

    *stp = NULL;
    *entp = NULL;
    s->timed_out = false;
    if (db__deadline_passed(&s->base))
        return db__fail(&s->base, DB_ETIMEOUT, "sqlite: deadline passed before: %.200s", sql);

    if (ent && !ent->busy) {
        st = ent->val;
    } else {
        /* A busy cached statement means a nested use: run a private copy. */
        if ((rc = prepare_one(s, sql, len, ent ? 0 : SQLITE_PREPARE_PERSISTENT, &st)) != DB_OK)
            return rc;
        if (!ent)
            ent = db__cache_put(&s->base.cache, sql, len, st);
        else
            ent = NULL; /* private copy: finalize after use */
    }
    if ((size_t)sqlite3_bind_parameter_count(st) != nargs) {
        int want = sqlite3_bind_parameter_count(st);
        if (!ent)
            sqlite3_finalize(st);
        return db__fail(&s->base, DB_ERR, "sqlite: statement wants %d parameters, got %zu: %.200s", want, nargs,
                        sql);
    }
    for (size_t i = 0; i < nargs; i++) {
        const db_arg *a = &args[i];
        int col = (int)i + 1;
        sqlite3_destructor_type d = copy_text ? SQLITE_TRANSIENT : SQLITE_STATIC;
        switch (a->type) {
        case DB_T_NULL:
            rc = sqlite3_bind_null(st, col);
            break;
        case DB_T_INT:
        case DB_T_BOOL:
            rc = sqlite3_bind_int64(st, col, a->v.i);
            break;
        case DB_T_DOUBLE:
            rc = sqlite3_bind_double(st, col, a->v.d);
            break;
        case DB_T_TEXT: /* a NULL pointer would bind SQL NULL: bind "" instead */
            rc = sqlite3_bind_text64(st, col, a->v.s.p ? a->v.s.p : "", a->v.s.len, d, SQLITE_UTF8);
            break;
        case DB_T_BLOB:
            rc = sqlite3_bind_blob64(st, col, a->v.s.p ? a->v.s.p : "", a->v.s.len, d);
            break;
        default:
            BUG("bad db_arg type");
        }
        if (rc != SQLITE_OK) {
            int r = sq_fail(s, rc, sql);
            release_stmt(st, ent);
            return r;
        }
    }
    if (ent)
        ent->busy = true;
    *stp = st;
    *entp = ent;
    return DB_OK;
}

static int sq_query(struct db *db, const char *sql, const db_arg *args, size_t nargs, struct db_res **out)
{
    struct sq_db *s = (struct sq_db *)db;
    struct sq_res *r;
    sqlite3_stmt *st;
    struct db_cache_ent *ent;
    int rc = sq_prepare(s, sql, args, nargs, true, &st, &ent);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        int r2 = sq_fail(s, rc, sql);
        release_stmt(st, ent);
        return r2;
    }
    r = xcalloc(1, sizeof(*r));
    r->base.db = db;
    r->st = st;
    r->ent = ent;
    r->first = true;
    r->pending = rc == SQLITE_ROW ? 1 : 0;
    if (rc == SQLITE_DONE) {
        r->done = true;
        sqlite3_reset(st); /* release read locks now */
    }
    *out = &r->base;
    return DB_OK;
}

static int sq_next(struct db_res *res)
{
    struct sq_res *r = (struct sq_res *)res;
    struct sq_db *s = (struct sq_db *)res->db;
    int rc;
    if (r->first) {
        r->first = false;
        return r->pending;
    }
    if (r->done)
        return 0;
    rc = sqlite3_step(r->st);
    if (rc == SQLITE_ROW)
        return 1;
    r->done = true;
    if (rc == SQLITE_DONE) {
        sqlite3_reset(r->st);
        return 0;
    }
    rc = sq_fail(s, rc, sqlite3_sql(r->st));
    sqlite3_reset(r->st);
    s->base.stats.errors++;
    return rc;
}

static int sq_ncols(const struct db_res *res) { return sqlite3_column_count(((const struct sq_res *)res)->st); }

static bool sq_isnull(const struct db_res *res, int col)
{
    return sqlite3_column_type(((const struct sq_res *)res)->st, col) == SQLITE_NULL;
}

static int64_t sq_int(const struct db_res *res, int col) { return sqlite3_column_int64(((const struct sq_res *)res)->st, col); }

static double sq_double(const struct db_res *res, int col)
{
    return sqlite3_column_double(((const struct sq_res *)res)->st, col);
}

static str_t sq_text(const struct db_res *res, int col)
{
    sqlite3_stmt *st = ((const struct sq_res *)res)->st;
    /* column_text also serves blobs: same bytes, plus the NUL db.h promises */
    const char *p = (const char *)sqlite3_column_text(st, col);
    if (!p)
        return (str_t){"", 0};
    return (str_t){p, (size_t)sqlite3_column_bytes(st, col)};
}

static void sq_res_free(struct db_res *res)
{
    struct sq_res *r = (struct sq_res *)res;
    release_stmt(r->st, r->ent);
    free(r);
}

static int sq_exec(struct db *db, const char *sql, const db_arg *args, size_t nargs, int64_t *changes)
{
    struct sq_db *s = (struct sq_db *)db;
    sqlite3_stmt *st;
    struct db_cache_ent *ent;
    int rc = sq_prepare(s, sql, args, nargs, false, &st, &ent);
    if (rc)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) {
        int r2 = sq_fail(s, rc, sql);
        release_stmt(st, ent);
        return r2;
    }
    if (changes)
        *changes = sqlite3_changes64(s->h);
    release_stmt(st, ent);
    return DB_OK;
}

static int sq_exec_script(struct db *db, const char *sql)
{
    struct sq_db *s = (struct sq_db *)db;
    char *msg = NULL;
    int rc;
    s->timed_out = false;
    if (db__deadline_passed(db))
        return db__fail(db, DB_ETIMEOUT, "sqlite: deadline passed before script");
    rc = sqlite3_exec(s->h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int drc = map_rc(s, rc);
        db__fail(db, drc, "sqlite: script failed: %s (%d)", msg ? msg : sqlite3_errstr(rc), rc);
        sqlite3_free(msg);
        return drc;
    }
    return DB_OK;
}

static int sq_begin(struct db *db, enum db_tx_mode mode)
{
    return sq_exec(db, mode == DB_TX_READ ? "BEGIN DEFERRED" : "BEGIN IMMEDIATE", DB_NOARGS, NULL);
}

static int sq_commit(struct db *db) { return sq_exec(db, "COMMIT", DB_NOARGS, NULL); }

static int sq_rollback(struct db *db)
{
    struct sq_db *s = (struct sq_db *)db;
    /* ROLLBACK must run even past the deadline. */
    int64_t dl = db->deadline_ms;
    int rc;
    db->deadline_ms = 0;
    rc = sq_exec(db, "ROLLBACK", DB_NOARGS, NULL);
    db->deadline_ms = dl;
    if (rc && sqlite3_get_autocommit(s->h))
        rc = DB_OK; /* SQLite already rolled back (e.g. after an I/O error) */
    return rc;
}

/* Does sql write? Prepares and caches it (the query that follows finds it). */
static bool sq_writes(struct db *db, const char *sql)
{
    struct sq_db *s = (struct sq_db *)db;
    size_t len = strlen(sql);
    struct db_cache_ent *ent = db__cache_get(&db->cache, sql, len);
    sqlite3_stmt *st;
    if (ent)
        return !sqlite3_stmt_readonly(ent->val);
    if (prepare_one(s, sql, len, SQLITE_PREPARE_PERSISTENT, &st) != DB_OK) {
        db__clear_err(db); /* the statement itself reports it */
        return false;
    }
    if (!db__cache_put(&db->cache, sql, len, st)) {
        bool w = !sqlite3_stmt_readonly(st);
        sqlite3_finalize(st);
        return w;
    }
    return !sqlite3_stmt_readonly(st);
}

static bool sq_write_enter(struct db *db) { return sq_gate_enter(((struct sq_db *)db)->gate); }
static void sq_write_leave(struct db *db) { sq_gate_leave(((struct sq_db *)db)->gate); }

/* After each commit in WAL mode (replaces SQLite's automatic checkpoint). */
static int on_wal(void *arg, sqlite3 *h, const char *name, int pages)
{
    struct sq_db *s = arg;
    if (!sq_gate_wal(s->gate, pages))
        (void)sqlite3_wal_checkpoint_v2(h, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

static void finalize_val(void *val) { sqlite3_finalize(val); }

static void sq_close(struct db *db)
{
    struct sq_db *s = (struct sq_db *)db;
    db__cache_clear(&s->base.cache, finalize_val);
    sqlite3_close_v2(s->h);
    sq_gate_put(s->gate);
    db__base_release(db);
    free(s);
}

static const struct db_ops sqlite_ops = {
    .query = sq_query,
    .next = sq_next,
    .ncols = sq_ncols,
    .isnull = sq_isnull,
    .get_int = sq_int,
    .get_double = sq_double,
    .get_text = sq_text,
    .res_free = sq_res_free,
    .exec = sq_exec,
    .exec_script = sq_exec_script,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .deadline_changed = sq_deadline_changed,
    .close = sq_close,
    .write_enter = sq_write_enter,
    .write_leave = sq_write_leave,
    .writes = sq_writes,
};

/* ts_ms(x) and ms_ts(x): the identity on SQLite, where timestamps are
 * integer UTC ms. PostgreSQL defines the same names over timestamptz
 * (migration 0003), so one SQL text serves both dialects. */
static void fn_identity(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    sqlite3_result_value(ctx, argv[0]);
}

/* raise_error(msg): fails the statement with msg as the error text — lets a
 * migration refuse to run with a message naming what to fix (PostgreSQL has
 * RAISE EXCEPTION for that). */
static void fn_raise_error(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *msg = (const char *)sqlite3_value_text(argv[0]);
    sqlite3_result_error(ctx, msg ? msg : "raise_error", -1);
}

/* Process-wide, before the first connection: no global memory statistics
 * (each allocation would take a global mutex that every thread contends on). */
static void sqlite_global_init(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

struct db *db__sqlite_open(const char *path, const struct db_options *opt, struct buf *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_global_init);
    struct sq_db *s = xcalloc(1, sizeof(*s));
    int rc;
    db__base_init(&s->base, &sqlite_ops, DB_SQLITE, opt);
    rc = sqlite3_open_v2(path, &s->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (err)
            (void)buf_printf(err, "sqlite: cannot open %s: %s", path, s->h ? sqlite3_errmsg(s->h) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(s->h, 1);
    sqlite3_busy_handler(s->h, on_busy, s);
    sqlite3_create_function(s->h, "ts_ms", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_identity, NULL, NULL);
    sqlite3_create_function(s->h, "ms_ts", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_identity, NULL, NULL);
    sqlite3_create_function(s->h, "raise_error", 1, SQLITE_UTF8, NULL, fn_raise_error, NULL, NULL);
    if (sq_exec_script(&s->base, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA mmap_size=0;")) {
        if (err)
            (void)buf_printf(err, "%s", db_errmsg(&s->base));
        goto fail;
    }
    s->gate = sq_gate_get(path);
    sqlite3_wal_hook(s->h, on_wal, s);
    return &s->base;
fail:
    sqlite3_close_v2(s->h);
    db__base_release(&s->base);
    free(s);
    return NULL;
}
