/*
 * db.h — the one storage interface; sqlite.c and postgres.c implement it.
 *
 * A `struct db` is one connection, owned by one thread (each event-loop
 * thread and each job thread opens its own). Statements are prepared once
 * per connection and cached, keyed by their SQL text.
 *
 * SQL is written once with `?` placeholders; the PostgreSQL backend rewrites
 * them to $1..$n when it prepares (outside quoted strings and comments).
 * Where the dialects differ, pick the text with db_pick(db, sqlite, pg).
 *
 * Timestamps are integer UTC ms on SQLite and timestamptz on PostgreSQL
 * (ARCHITECTURE §2). Write `ms_ts(?)` with an epoch-ms argument and read
 * `ts_ms(col)` to get epoch ms back: both functions exist on both engines
 * (SQLite: registered at connect as the identity; PostgreSQL: migration 0003).
 *
 * Return convention (STYLE §7): 0 is OK, negative enum db_rc is an error.
 * db_errmsg() describes the last error for the log — never for a client.
 */
#ifndef TEMEL_DB_H
#define TEMEL_DB_H

#include "core/buf.h"
#include "core/common.h"

enum db_kind { DB_SQLITE = 1, DB_POSTGRES = 2 };

enum db_rc {
    DB_OK = 0,
    DB_ERR = -1,        /* anything else: syntax, I/O, connection lost */
    DB_EBUSY = -2,      /* retryable: SQLITE_BUSY/LOCKED, PG 40001 serialization, 40P01 deadlock */
    DB_ECONSTRAINT = -3,/* unique / foreign-key / check violation (SQLITE_CONSTRAINT, PG class 23) */
    DB_ETIMEOUT = -4,   /* the deadline passed (sqlite progress handler, PG 57014) */
    DB_EUNAVAIL = -5,   /* no connection now: pool queue full, connection lost mid-statement (→ 503) */
};

enum db_type { DB_T_NULL = 0, DB_T_INT, DB_T_DOUBLE, DB_T_TEXT, DB_T_BLOB, DB_T_BOOL };

typedef struct db_arg {
    enum db_type type;
    union {
        int64_t i;
        double d;
        str_t s; /* TEXT and BLOB; need not be NUL-terminated */
    } v;
} db_arg;

#define DBA_NULL ((db_arg){.type = DB_T_NULL})
#define DBA_INT(x) ((db_arg){.type = DB_T_INT, .v.i = (int64_t)(x)})
#define DBA_BOOL(x) ((db_arg){.type = DB_T_BOOL, .v.i = (x) ? 1 : 0})
#define DBA_DOUBLE(x) ((db_arg){.type = DB_T_DOUBLE, .v.d = (x)})
#define DBA_TEXT(x) ((db_arg){.type = DB_T_TEXT, .v.s = (x)})   /* x is a str_t */
#define DBA_CSTR(x) ((db_arg){.type = DB_T_TEXT, .v.s = str_c(x)})
#define DBA_BLOB(p, n) ((db_arg){.type = DB_T_BLOB, .v.s = {(const char *)(p), (n)}})
/* DB_ARGS(a, b, c) expands to `array, count` for the functions below. */
#define DB_ARGS(...) ((const db_arg[]){__VA_ARGS__}), (sizeof((const db_arg[]){__VA_ARGS__}) / sizeof(db_arg))
#define DB_NOARGS NULL, 0

struct db;
struct db_res;

struct db_options {
    int busy_timeout_ms;        /* sqlite busy_timeout; default 5000 */
    int statement_timeout_ms;   /* PG statement_timeout set at connect; 0 = none */
};

/* url: sqlite:///abs/path.db, sqlite://relative/path.db, sqlite://:memory:,
 * postgres://... or postgresql://... (passed to libpq). The parent directory
 * of a SQLite file is created if missing. On error returns NULL and writes a
 * message (without the password) into err. */
struct db *db_open(const char *url, const struct db_options *opt, struct buf *err);
void db_close(struct db *db);
enum db_kind db_kind(const struct db *db);
const char *db_errmsg(const struct db *db);
static inline const char *db_pick(const struct db *db, const char *sqlite_sql, const char *pg_sql)
{
    return db_kind(db) == DB_SQLITE ? sqlite_sql : pg_sql;
}

/* Run a statement that returns rows. *out must be freed with db_res_free()
 * before the same SQL text is run again on this connection (if it is not,
 * a fresh uncached statement is used, so correctness does not depend on it). */
int db_query(struct db *db, const char *sql, const db_arg *args, size_t nargs, struct db_res **out) WARN_UNUSED;
/* 1 = a row is available, 0 = no more rows, < 0 = enum db_rc error. */
int db_next(struct db_res *r) WARN_UNUSED;
int db_ncols(const struct db_res *r);
bool db_isnull(const struct db_res *r, int col);
int64_t db_int(const struct db_res *r, int col);  /* NULL -> 0; PG booleans 't'/'f' -> 1/0 */
double db_double(const struct db_res *r, int col);
str_t db_text(const struct db_res *r, int col);   /* NUL-terminated; valid until the next db_next/db_res_free */
void db_res_free(struct db_res *r);

/* Run a statement that returns no rows; *changes (may be NULL) gets the
 * number of rows changed. */
int db_exec(struct db *db, const char *sql, const db_arg *args, size_t nargs, int64_t *changes) WARN_UNUSED;
/* Run several ;-separated statements without parameters (migrations, pragmas). */
int db_exec_script(struct db *db, const char *sql) WARN_UNUSED;

/* Convenience: first column of the first row as an integer. DB_OK with
 * *found=false when there is no row. */
int db_query_int(struct db *db, const char *sql, const db_arg *args, size_t nargs, int64_t *out, bool *found) WARN_UNUSED;

enum db_tx_mode {
    DB_TX_READ,         /* sqlite BEGIN DEFERRED; PG BEGIN (read committed) */
    DB_TX_WRITE,        /* sqlite BEGIN IMMEDIATE; PG BEGIN (read committed; use FOR UPDATE) */
    DB_TX_SERIALIZABLE, /* sqlite BEGIN IMMEDIATE; PG BEGIN ISOLATION LEVEL SERIALIZABLE */
};
typedef int (*db_tx_fn)(struct db *db, void *arg);
/* Run fn inside a transaction. fn returns 0 to commit, non-zero to roll back
 * (that value is returned). When fn or COMMIT fails with DB_EBUSY the whole
 * transaction is rolled back and fn runs again (up to 8 times, with a short
 * randomised backoff); fn must therefore keep no side effects outside the
 * database. A db_tx() inside a transaction joins it: fn runs in the outer
 * transaction, and its non-zero result makes the outer one roll back (the
 * outer fn should return it). The idempotency layer relies on this to put a
 * whole handler and its stored response into one transaction. */
int db_tx(struct db *db, enum db_tx_mode mode, db_tx_fn fn, void *arg);
bool db_in_tx(const struct db *db);

/* Deadline (CLOCK_MONOTONIC ms, 0 = none) for statements run from now on:
 * past it they fail with DB_ETIMEOUT. SQLite uses a progress handler; PG sets
 * statement_timeout to the time left (only when it changes by > 50 ms). */
void db_set_deadline(struct db *db, int64_t deadline_mono_ms);

/* Round trip (SELECT 1); *latency_us gets the time taken. */
int db_ping(struct db *db, int64_t *latency_us) WARN_UNUSED;

/* ---- loop threads: one handle per request (ARCHITECTURE §1) ----------------
 *
 * Each event-loop thread opens one db_pool (after coro_thread_init). A request
 * takes a handle with db_pool_get() and returns it with db_pool_put(); the
 * handle is a `struct db` for every call above, used only by that request's
 * coroutine. Handler code stays sequential: where a call must wait it yields
 * the coroutine (core/coro.h) and the loop serves other requests.
 *
 *   SQLite: every handle of a thread is the thread's one connection;
 *     statements run inline (microseconds, no yield). A transaction pins the
 *     connection to its coroutine: another coroutine's call waits its turn
 *     (FIFO) instead of joining someone else's transaction. Writers (write
 *     transactions, single statements that write) first take the file's
 *     write gate (sqlite_gate.h: FIFO across the process, yielding); only a
 *     lock held by another process makes BEGIN IMMEDIATE yield and retry
 *     (1 ms steps) until busy_timeout or the deadline — never a sleep
 *     inside the loop.
 *   PostgreSQL: see postgres.c / pgpool.c — non-blocking connections in
 *     pipeline mode shared by the thread's requests; a transaction pins one.
 *
 * Off the loops (job runner, CLI) nothing changes: use db_open().
 */
struct db_pool;
/* size: PostgreSQL connections per pool (TEMEL_DB_POOL); SQLite ignores it. */
struct db_pool *db_pool_open(const char *url, const struct db_options *opt, int size, struct buf *err);
struct db *db_pool_get(struct db_pool *p);
void db_pool_put(struct db_pool *p, struct db *h);
void db_pool_close(struct db_pool *p);
/* Summed counters of the pool's connections. */
const struct db_stats *db_pool_stats(struct db_pool *p);

/* Per-connection counters for /metrics: statements run and their total time. */
struct db_stats {
    uint64_t queries;
    uint64_t query_us_total;
    uint64_t errors;
    uint64_t latency_buckets[12]; /* <=50us,100,250,500,1ms,2.5,5,10,25,50,100,+Inf */
};
const struct db_stats *db_stats(const struct db *db);
extern const double db_latency_bounds_s[11];

#endif
