/*
 * pg_internal.h — what the two PostgreSQL backends share: postgres.c (one
 * synchronous connection: job runner, CLI, start-up) and pgpool.c (the
 * non-blocking pipelined pool of the loop threads). Both define their own
 * struct db_ops; the code below is the part that does not depend on how a
 * statement travels: error mapping, parameter binding, the per-connection
 * statement names, result accessors. Only src/db/ includes this.
 */
#ifndef TEMEL_PG_INTERNAL_H
#define TEMEL_PG_INTERNAL_H

#include <libpq-fe.h>

#include "db/db_internal.h"

#define PG_MAX_PARAM_BYTES (256u << 20)

/* SQLSTATE -> enum db_rc: 40001/40P01/55P03 DB_EBUSY, class 23
 * DB_ECONSTRAINT, 57014 DB_ETIMEOUT, everything else DB_ERR. */
int pg__map_sqlstate(const char *st);
/* Record the error of res (NULL: the connection's own message) on db for
 * the log: SQLSTATE, primary message, the SQL (never DETAIL, never the
 * URL). Returns the mapped rc. */
int pg__fail(struct db *db, const PGconn *c, const PGresult *res, const char *sql);
/* 0A000 "cached plan must not change result type" / 26000 "prepared
 * statement does not exist": cured by preparing again. */
bool pg__stale_statement(const PGresult *res);
/* Length of m without trailing newlines/spaces (libpq messages end in \n). */
int pg__trimmed_len(const char *m);
/* Notice processor that drops server NOTICEs (they are not errors). */
void pg__on_notice(void *arg, const char *msg);

/* Connection keywords: defaults the URL may override, then the URL.
 * statement_timeout_ms > 0 adds `options=-c statement_timeout=N` (the
 * server-side backstop of the pool, set at connect). The arrays live in *k. */
struct pg_conninfo {
    const char *kw[8];
    const char *val[8];
    char options[64];
};
void pg__conninfo(struct pg_conninfo *k, const char *url, int64_t statement_timeout_ms);

/* Parameters of one statement as libpq wants them (text, BLOB as binary).
 * Scratch space owned by one connection/pool, grown as needed; valid until
 * the next pg__bind. */
struct pg_params {
    const char **values;
    int *lengths, *formats;
    size_t *offs;
    size_t cap;
    struct buf text;
};
void pg__params_init(struct pg_params *p);
void pg__params_free(struct pg_params *p);
int pg__bind(struct db *db, struct pg_params *p, const db_arg *args, size_t nargs, const char *sql);

/* Prepared-statement names of one server connection, kept in cache (keyed
 * by the original SQL; value: the malloc'd name "t<n>"). pg__stmt() looks
 * sql up: an entry that is not stale gives its name and st->text = NULL;
 * otherwise the `?` are rewritten into sqlbuf, st->text points at it, a new
 * name is recorded at once (the caller prepares it before executing) and
 * st->ent is the entry — mark it stale when the prepare fails. With the
 * cache full, the unnamed statement "" is used (st->ent NULL). */
struct pg_stmt {
    const char *name;
    const char *text;
    int nparams;
    struct db_cache_ent *ent;
};
int pg__stmt(struct db *db, struct db_cache *cache, unsigned *next_id, struct buf *sqlbuf, const char *sql,
             struct pg_stmt *st);
/* Mark sql's entry (if any) stale: prepared again before its next use. */
void pg__stmt_stale(struct db_cache *cache, const char *sql);

/* A fully materialised result as a struct db_res of db; takes res. */
struct db_res *pg__res_new(struct db *db, PGresult *res);
int pg__res_next(struct db_res *r);
int pg__res_ncols(const struct db_res *r);
bool pg__res_isnull(const struct db_res *r, int col);
int64_t pg__res_int(const struct db_res *r, int col);
double pg__res_double(const struct db_res *r, int col);
str_t pg__res_text(const struct db_res *r, int col);
void pg__res_free(struct db_res *r);
/* Rows changed by a command result (PQcmdTuples), 0 when none. */
int64_t pg__changes(PGresult *res);

#endif
