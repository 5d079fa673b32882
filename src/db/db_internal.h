/*
 * db_internal.h — what db.c shares with the backends (sqlite.c, postgres.c).
 * Not part of the public interface; only src/db/ and tests/unit/test_db.c
 * include it.
 *
 * Design: db.c owns everything that is the same for both dialects — URL
 * dispatch, the error message, statistics, db_tx and its retry loop, the
 * deadline value — and calls the backend through `struct db_ops`. Each
 * backend embeds `struct db` (and `struct db_res`) as its first member.
 * Backends do not count statistics; db.c does, once per public call.
 */
#ifndef TEMEL_DB_INTERNAL_H
#define TEMEL_DB_INTERNAL_H

#include "core/coro.h"
#include "db/db.h"

/*
 * Statement cache: an open-addressing hash table keyed by SQL text, owned
 * by one connection. Entries are heap objects, so a pointer to one stays
 * valid while the table grows. At most DB_CACHE_MAX entries: past that,
 * db__cache_put returns NULL and the caller runs the statement uncached.
 */
#define DB_CACHE_MAX 1024
struct db_cache_ent {
    char *sql;
    size_t len;
    uint32_t hash;
    bool busy;  /* sqlite: a db_res is using the statement */
    bool stale; /* postgres: prepare again before the next use */
    void *val;  /* backend's prepared statement */
    int nparams;
};
struct db_cache {
    struct db_cache_ent **slots;
    size_t cap, n;
};

struct db_ops {
    int (*query)(struct db *db, const char *sql, const db_arg *args, size_t nargs, struct db_res **out);
    int (*next)(struct db_res *r);
    int (*ncols)(const struct db_res *r);
    bool (*isnull)(const struct db_res *r, int col);
    int64_t (*get_int)(const struct db_res *r, int col);
    double (*get_double)(const struct db_res *r, int col);
    str_t (*get_text)(const struct db_res *r, int col);
    void (*res_free)(struct db_res *r);
    int (*exec)(struct db *db, const char *sql, const db_arg *args, size_t nargs, int64_t *changes);
    int (*exec_script)(struct db *db, const char *sql);
    int (*begin)(struct db *db, enum db_tx_mode mode);
    int (*commit)(struct db *db);
    int (*rollback)(struct db *db);
    void (*deadline_changed)(struct db *db); /* db->deadline_ms was set */
    void (*close)(struct db *db);
    /* SQLite only (NULL elsewhere): the file's write gate (sqlite_gate.h) —
     * enter returns false when not taken (then no leave) — and whether a
     * statement writes (prepares and caches it; false on a prepare error,
     * which the statement itself then reports). */
    bool (*write_enter)(struct db *db);
    void (*write_leave)(struct db *db);
    bool (*writes)(struct db *db, const char *sql);
};

struct db {
    const struct db_ops *ops;
    enum db_kind kind;
    bool in_tx;
    /* Coroutines sharing this connection (SQLite on a loop thread): the one
     * inside a transaction owns it, others wait their turn in FIFO order.
     * Writers first take the file's write gate (sqlite_gate.h), which orders
     * them across every thread of the process. */
    struct coro *owner;
    struct coro_wq turn;
    int64_t deadline_ms; /* CLOCK_MONOTONIC ms; 0 = none */
    struct buf err;      /* last error, for the log */
    struct db_stats stats;
    struct db_options opt;
    struct db_cache cache; /* prepared statements by SQL text; values are the backend's */
};

struct db_res {
    struct db *db;
    bool gated; /* a single writing statement holds the write gate until freed */
};

/* A pool for loop threads (db.h). The single-connection pool serves SQLite
 * (its handles are the one shared connection). */
struct db_pool_ops {
    struct db *(*get)(struct db_pool *p);
    void (*put)(struct db_pool *p, struct db *h);
    void (*close)(struct db_pool *p);
    const struct db_stats *(*stats)(struct db_pool *p);
};
struct db_pool {
    const struct db_pool_ops *ops;
};
struct db_pool *db__single_pool(struct db *db);
struct db_pool *db__pg_pool_open(const char *url, const struct db_options *opt, int size, struct buf *err);

/* Backend constructors: postgres gets the whole URL, sqlite the path after
 * "sqlite://". NULL + message in err on failure. */
struct db *db__sqlite_open(const char *path, const struct db_options *opt, struct buf *err);
struct db *db__pg_open(const char *url, const struct db_options *opt, struct buf *err);

/* Common initialisation of the embedded base. */
void db__base_init(struct db *db, const struct db_ops *ops, enum db_kind kind, const struct db_options *opt);
void db__base_release(struct db *db);

/* Record the last error (printf-like; truncated to fit). Returns rc so a
 * backend can write `return db__fail(db, DB_ERR, "...")`. */
int db__fail(struct db *db, int rc, const char *fmt, ...) PRINTF_LIKE(3, 4);
void db__clear_err(struct db *db);

/* true when a deadline is set and has passed. */
bool db__deadline_passed(const struct db *db);

struct db_cache_ent *db__cache_get(struct db_cache *c, const char *sql, size_t len);
struct db_cache_ent *db__cache_put(struct db_cache *c, const char *sql, size_t len, void *val);
/* Remove every entry, calling free_val on each value (may be NULL). */
void db__cache_clear(struct db_cache *c, void (*free_val)(void *val));

/*
 * Rewrite `?` placeholders to $1..$n (PostgreSQL), leaving alone any `?`
 * inside '...' / E'...' strings, "..." identifiers, $tag$...$tag$ strings,
 * -- line comments and (nested) block comments. *nparams gets n.
 * Returns 0, or -1 when out does not have room (its sticky error is set).
 * Note: PostgreSQL's jsonb `?`, `?|`, `?&` operators cannot be written in
 * temel SQL; use jsonb_exists(), jsonb_exists_any(), jsonb_exists_all().
 */
int db__pg_rewrite(const char *sql, struct buf *out, int *nparams);

#endif
