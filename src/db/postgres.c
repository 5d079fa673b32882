/*
 * postgres.c — the PostgreSQL backend of db.h (libpq, synchronous).
 *
 * Design: one PGconn per struct db. A statement is prepared on first use
 * under a generated name ("t1", "t2", ...) after rewriting `?` to `$n`, and
 * the name is cached per connection keyed by the original SQL text; later
 * runs are a single PQexecPrepared round trip. Parameters go as text (so the
 * server infers their types), except BLOB which goes as binary bytea; results
 * come back as text, fully materialised in the PGresult — so, unlike SQLite,
 * a statement may be run again while an earlier result is still open.
 * bytea columns are decoded, so db_text() returns the raw bytes.
 *
 * A broken connection (PQstatus bad) is reset once and the statement retried,
 * but only outside a transaction (inside one, the transaction is gone; the
 * error goes to db_tx which rolls back). A reset loses every prepared
 * statement, so the cache is emptied.
 *
 * Deadline: statement_timeout is set (parameterised set_config) to the time
 * left before each statement, but only when that differs from the value in
 * force by more than 50 ms; 57014 comes back as DB_ETIMEOUT. A set_config
 * inside a transaction that is rolled back is undone by the server, so the
 * remembered value is then forgotten.
 *
 * Error messages carry SQLSTATE and the primary message only (no DETAIL,
 * which may quote row values) and never the connection URL.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/timeutil.h"
#include "db/db_internal.h"

#include "core/banned.h"

#define PG_BYTEA_OID 17
#define PG_TIMEOUT_SLACK_MS 50
#define PG_MAX_PARAM_BYTES (256u << 20)

struct pg_db {
    struct db base;
    PGconn *c;
    unsigned next_stmt;
    int64_t cur_timeout_ms;  /* statement_timeout in force; -1 = unknown */
    bool timeout_set_in_tx;  /* a rollback would undo it */
    /* per-call scratch for parameters, grown as needed */
    const char **values;
    int *lengths, *formats;
    size_t *offs;
    size_t scratch_cap;
    struct buf text;
    struct buf sqlbuf;
};

struct pg_res {
    struct db_res base;
    PGresult *r;
    int row, nrows, ncols;
    unsigned char **dec; /* decoded bytea of the current row, per column (malloc) */
    size_t *declen;
};

static int map_sqlstate(const char *st)
{
    if (!st)
        return DB_ERR;
    if (!strcmp(st, "40001") || !strcmp(st, "40P01") || !strcmp(st, "55P03"))
        return DB_EBUSY;
    if (st[0] == '2' && st[1] == '3')
        return DB_ECONSTRAINT;
    if (!strcmp(st, "57014"))
        return DB_ETIMEOUT;
    return DB_ERR;
}

static int trimmed_len(const char *m)
{
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    return (int)n;
}

/* Record the error of res (may be NULL: connection-level error). */
static int pg_fail(struct pg_db *s, const PGresult *res, const char *sql)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    int rc = map_sqlstate(state);
    if (!msg)
        msg = PQerrorMessage(s->c);
    return db__fail(&s->base, rc, "postgres: %s%s%.*s: %.200s", state ? state : "", state ? " " : "",
                    trimmed_len(msg), msg, sql);
}

/* Make sure the connection is usable; reset a broken one (outside a tx). */
static int pg_ensure_conn(struct pg_db *s)
{
    if (PQstatus(s->c) == CONNECTION_OK)
        return DB_OK;
    if (s->base.in_tx)
        return db__fail(&s->base, DB_ERR, "postgres: connection lost inside a transaction");
    PQreset(s->c);
    db__cache_clear(&s->base.cache, free);
    s->cur_timeout_ms = -1;
    if (PQstatus(s->c) != CONNECTION_OK) {
        const char *m = PQerrorMessage(s->c);
        return db__fail(&s->base, DB_ERR, "postgres: reconnect failed: %.*s", trimmed_len(m), m);
    }
    return DB_OK;
}

static bool retryable_loss(struct pg_db *s, int attempt)
{
    return attempt == 0 && !s->base.in_tx && PQstatus(s->c) == CONNECTION_BAD;
}

static int set_timeout(struct pg_db *s, int64_t ms)
{
    struct buf v = BUF_INIT(32);
    const char *vals[1];
    PGresult *res;
    int rc = DB_OK;
    (void)buf_put_i64(&v, ms);
    vals[0] = buf_cstr(&v);
    res = PQexecParams(s->c, "SELECT set_config('statement_timeout', $1, false)", 1, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pg_fail(s, res, "SELECT set_config('statement_timeout', ...)");
        s->cur_timeout_ms = -1;
    } else {
        s->cur_timeout_ms = ms;
        if (s->base.in_tx)
            s->timeout_set_in_tx = true;
    }
    PQclear(res);
    buf_free(&v);
    return rc;
}

/* Bring statement_timeout in line with the deadline (and the base option). */
static int pg_sync_timeout(struct pg_db *s)
{
    int64_t want = s->base.opt.statement_timeout_ms, cur = s->cur_timeout_ms;
    if (s->base.deadline_ms > 0) {
        int64_t left = s->base.deadline_ms - time_mono_ms();
        if (left <= 0)
            return db__fail(&s->base, DB_ETIMEOUT, "postgres: deadline passed");
        if (want == 0 || left < want)
            want = left;
    }
    if (cur == want)
        return DB_OK;
    if (cur > 0 && want > 0 && cur - want <= PG_TIMEOUT_SLACK_MS && want - cur <= PG_TIMEOUT_SLACK_MS)
        return DB_OK;
    return set_timeout(s, want);
}

static void grow_scratch(struct pg_db *s, size_t n)
{
    if (n <= s->scratch_cap)
        return;
    s->values = xrealloc(s->values, st_mult(n, sizeof(*s->values)));
    s->lengths = xrealloc(s->lengths, st_mult(n, sizeof(*s->lengths)));
    s->formats = xrealloc(s->formats, st_mult(n, sizeof(*s->formats)));
    s->offs = xrealloc(s->offs, st_mult(n, sizeof(*s->offs)));
    s->scratch_cap = n;
}

/* Fill s->values/lengths/formats from args. */
static int pg_bind(struct pg_db *s, const db_arg *args, size_t nargs, const char *sql)
{
    grow_scratch(s, nargs);
    buf_reset(&s->text);
    for (size_t i = 0; i < nargs; i++) {
        const db_arg *a = &args[i];
        s->formats[i] = 0;
        s->lengths[i] = 0;
        s->values[i] = NULL;
        s->offs[i] = SIZE_MAX;
        switch (a->type) {
        case DB_T_NULL:
            break;
        case DB_T_INT:
            s->offs[i] = s->text.len;
            (void)buf_put_i64(&s->text, a->v.i);
            (void)buf_putc(&s->text, '\0');
            break;
        case DB_T_BOOL: /* '1'/'0' parse as both boolean and integer */
            s->offs[i] = s->text.len;
            (void)buf_append(&s->text, a->v.i ? "1" : "0", 2);
            break;
        case DB_T_DOUBLE:
            s->offs[i] = s->text.len;
            (void)buf_printf(&s->text, "%.17g", a->v.d);
            (void)buf_putc(&s->text, '\0');
            break;
        case DB_T_TEXT:
            s->offs[i] = s->text.len;
            if (a->v.s.len)
                (void)buf_append(&s->text, a->v.s.p, a->v.s.len);
            (void)buf_putc(&s->text, '\0');
            break;
        case DB_T_BLOB:
            if (a->v.s.len > (size_t)INT32_MAX)
                return db__fail(&s->base, DB_ERR, "postgres: blob parameter too large: %.200s", sql);
            s->values[i] = a->v.s.p ? a->v.s.p : "";
            s->lengths[i] = (int)a->v.s.len;
            s->formats[i] = 1;
            break;
        default:
            BUG("bad db_arg type");
        }
    }
    if (!buf_ok(&s->text))
        return db__fail(&s->base, DB_ERR, "postgres: parameters too large: %.200s", sql);
    for (size_t i = 0; i < nargs; i++)
        if (s->offs[i] != SIZE_MAX)
            s->values[i] = s->text.ptr + s->offs[i];
    return DB_OK;
}

/* Find or create the prepared statement for sql. *name is borrowed. A
 * cached entry marked stale is prepared again under a new name. */
static int pg_prepare(struct pg_db *s, const char *sql, const char **name, int *nparams)
{
    size_t len = strlen(sql);
    struct db_cache_ent *ent = db__cache_get(&s->base.cache, sql, len);
    struct buf nb = BUF_INIT(32);
    PGresult *res;
    bool full;

    if (ent && !ent->stale) {
        *name = ent->val;
        *nparams = ent->nparams;
        return DB_OK;
    }
    buf_reset(&s->sqlbuf);
    if (db__pg_rewrite(sql, &s->sqlbuf, nparams) != 0)
        return db__fail(&s->base, DB_ERR, "postgres: statement too long: %.200s", sql);
    full = !ent && s->base.cache.n >= DB_CACHE_MAX;
    if (full) {
        (void)buf_puts(&nb, ""); /* the unnamed statement, replaced on each use */
    } else {
        (void)buf_putc(&nb, 't');
        (void)buf_put_i64(&nb, ++s->next_stmt);
    }
    res = PQprepare(s->c, buf_cstr(&nb), buf_cstr(&s->sqlbuf), *nparams, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        int rc = pg_fail(s, res, sql);
        PQclear(res);
        buf_free(&nb);
        return rc;
    }
    PQclear(res);
    if (full) {
        buf_free(&nb);
        *name = "";
        return DB_OK;
    }
    if (ent) {
        /* The old server-side statement is left to the session: DEALLOCATE
         * would cost a round trip and fail inside an aborted transaction. */
        free(ent->val);
        ent->val = buf_detach(&nb, NULL);
        ent->stale = false;
    } else {
        ent = db__cache_put(&s->base.cache, sql, len, buf_detach(&nb, NULL));
    }
    ent->nparams = *nparams;
    *name = ent->val;
    return DB_OK;
}

/* 0A000 "cached plan must not change result type" (the table changed under
 * a prepared SELECT *) and 26000 "prepared statement does not exist" are
 * cured by preparing again. */
static bool stale_statement(const PGresult *res)
{
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return st && (!strcmp(st, "0A000") || !strcmp(st, "26000"));
}

/* Run one parameterised statement; on success *out holds the result. */
static int pg_run(struct pg_db *s, const char *sql, const db_arg *args, size_t nargs, PGresult **out)
{
    *out = NULL;
    for (int attempt = 0;; attempt++) {
        const char *name = NULL;
        int nparams = 0, rc;
        PGresult *res;
        ExecStatusType st;

        if ((rc = pg_ensure_conn(s)) != DB_OK)
            return rc;
        if ((rc = pg_sync_timeout(s)) != DB_OK) {
            if (rc != DB_ETIMEOUT && retryable_loss(s, attempt))
                continue;
            return rc;
        }
        if ((rc = pg_prepare(s, sql, &name, &nparams)) != DB_OK) {
            if (retryable_loss(s, attempt))
                continue;
            return rc;
        }
        if ((size_t)nparams != nargs)
            return db__fail(&s->base, DB_ERR, "postgres: statement wants %d parameters, got %zu: %.200s", nparams,
                            nargs, sql);
        if ((rc = pg_bind(s, args, nargs, sql)) != DB_OK)
            return rc;
        res = PQexecPrepared(s->c, name, nparams, s->values, s->lengths, s->formats, 0);
        st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            *out = res;
            return DB_OK;
        }
        if (retryable_loss(s, attempt)) {
            PQclear(res);
            continue;
        }
        rc = pg_fail(s, res, sql);
        if (stale_statement(res)) {
            struct db_cache_ent *ent = db__cache_get(&s->base.cache, sql, strlen(sql));
            if (ent)
                ent->stale = true;
            if (attempt == 0 && !s->base.in_tx) {
                PQclear(res);
                continue;
            }
            if (s->base.in_tx) /* the transaction is lost; db_tx's retry prepares afresh */
                rc = DB_EBUSY;
        }
        PQclear(res);
        return rc;
    }
}

/* Run sql without parameters through the simple protocol (several
 * statements allowed). */
static int pg_simple(struct pg_db *s, const char *sql, bool sync_timeout)
{
    for (int attempt = 0;; attempt++) {
        PGresult *res;
        ExecStatusType st;
        int rc;
        if ((rc = pg_ensure_conn(s)) != DB_OK)
            return rc;
        if (sync_timeout && (rc = pg_sync_timeout(s)) != DB_OK) {
            if (rc != DB_ETIMEOUT && retryable_loss(s, attempt))
                continue;
            return rc;
        }
        res = PQexec(s->c, sql);
        st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK || st == PGRES_EMPTY_QUERY) {
            PQclear(res);
            return DB_OK;
        }
        if (retryable_loss(s, attempt)) {
            PQclear(res);
            continue;
        }
        rc = pg_fail(s, res, sql);
        PQclear(res);
        return rc;
    }
}

static int pg_query(struct db *db, const char *sql, const db_arg *args, size_t nargs, struct db_res **out)
{
    struct pg_db *s = (struct pg_db *)db;
    PGresult *res;
    struct pg_res *r;
    int rc = pg_run(s, sql, args, nargs, &res);
    if (rc)
        return rc;
    r = xcalloc(1, sizeof(*r));
    r->base.db = db;
    r->r = res;
    r->row = -1;
    r->nrows = PQntuples(res);
    r->ncols = PQnfields(res);
    *out = &r->base;
    return DB_OK;
}

static void drop_decoded(struct pg_res *r)
{
    if (!r->dec)
        return;
    for (int i = 0; i < r->ncols; i++) {
        free(r->dec[i]);
        r->dec[i] = NULL;
    }
}

static int pg_next(struct db_res *res)
{
    struct pg_res *r = (struct pg_res *)res;
    drop_decoded(r);
    if (r->row < r->nrows)
        r->row++;
    return r->row < r->nrows ? 1 : 0;
}

static int pg_ncols(const struct db_res *res) { return ((const struct pg_res *)res)->ncols; }

static bool valid_cell(const struct pg_res *r, int col)
{
    return r->row >= 0 && r->row < r->nrows && col >= 0 && col < r->ncols;
}

static bool pg_isnull(const struct db_res *res, int col)
{
    const struct pg_res *r = (const struct pg_res *)res;
    return !valid_cell(r, col) || PQgetisnull(r->r, r->row, col);
}

static int64_t pg_int(const struct db_res *res, int col)
{
    const struct pg_res *r = (const struct pg_res *)res;
    const char *v;
    int64_t out;
    if (pg_isnull(res, col))
        return 0;
    v = PQgetvalue(r->r, r->row, col);
    if (v[0] == 't' && !v[1])
        return 1;
    if (v[0] == 'f' && !v[1])
        return 0;
    if (parse_i64(str_make(v, (size_t)PQgetlength(r->r, r->row, col)), INT64_MIN, INT64_MAX, &out) == 0)
        return out;
    return (int64_t)strtod(v, NULL); /* numeric / float text */
}

static double pg_double(const struct db_res *res, int col)
{
    const struct pg_res *r = (const struct pg_res *)res;
    const char *v;
    if (pg_isnull(res, col))
        return 0;
    v = PQgetvalue(r->r, r->row, col);
    if (v[0] == 't' && !v[1])
        return 1;
    return strtod(v, NULL);
}

static str_t pg_text(const struct db_res *cres, int col)
{
    /* The decoded-bytea cache is mutable state behind a const view. */
    struct pg_res *r = (struct pg_res *)(uintptr_t)cres;
    const char *v;
    if (pg_isnull(cres, col))
        return (str_t){"", 0};
    v = PQgetvalue(r->r, r->row, col);
    if (PQftype(r->r, col) == PG_BYTEA_OID) {
        if (!r->dec) {
            r->dec = xcalloc((size_t)r->ncols, sizeof(*r->dec));
            r->declen = xcalloc((size_t)r->ncols, sizeof(*r->declen));
        }
        if (!r->dec[col]) {
            /* PQunescapeBytea's buffer is not NUL-terminated: copy with one. */
            size_t n = 0;
            unsigned char *d = PQunescapeBytea((const unsigned char *)v, &n), *z;
            if (!d)
                FATAL("out of memory");
            z = xmalloc(st_add(n, 1));
            memcpy(z, d, n);
            z[n] = '\0';
            PQfreemem(d);
            r->dec[col] = z;
            r->declen[col] = n;
        }
        return (str_t){(const char *)r->dec[col], r->declen[col]};
    }
    return (str_t){v, (size_t)PQgetlength(r->r, r->row, col)};
}

static void pg_res_free(struct db_res *res)
{
    struct pg_res *r = (struct pg_res *)res;
    drop_decoded(r);
    free(r->dec);
    free(r->declen);
    PQclear(r->r);
    free(r);
}

static int pg_exec(struct db *db, const char *sql, const db_arg *args, size_t nargs, int64_t *changes)
{
    struct pg_db *s = (struct pg_db *)db;
    PGresult *res;
    int rc = pg_run(s, sql, args, nargs, &res);
    if (rc)
        return rc;
    if (changes) {
        const char *t = PQcmdTuples(res);
        if (parse_i64(str_c(t), 0, INT64_MAX, changes) != 0)
            *changes = 0;
    }
    PQclear(res);
    return DB_OK;
}

static int pg_exec_script(struct db *db, const char *sql) { return pg_simple((struct pg_db *)db, sql, true); }

static int pg_begin(struct db *db, enum db_tx_mode mode)
{
    struct pg_db *s = (struct pg_db *)db;
    s->timeout_set_in_tx = false;
    return pg_simple(s, mode == DB_TX_SERIALIZABLE ? "BEGIN ISOLATION LEVEL SERIALIZABLE" : "BEGIN", false);
}

static int pg_commit(struct db *db)
{
    struct pg_db *s = (struct pg_db *)db;
    int rc = pg_simple(s, "COMMIT", false);
    if (rc == DB_OK)
        s->timeout_set_in_tx = false;
    return rc;
}

static int pg_rollback(struct db *db)
{
    struct pg_db *s = (struct pg_db *)db;
    int rc = pg_simple(s, "ROLLBACK", false);
    if (s->timeout_set_in_tx)
        s->cur_timeout_ms = -1;
    s->timeout_set_in_tx = false;
    return rc;
}

/* Server NOTICEs ("table does not exist, skipping", ...) are not errors and
 * would otherwise go to stderr; temel drops them. */
static void on_notice(void *arg, const char *msg)
{
    UNUSED(arg);
    UNUSED(msg);
}

static void pg_deadline_changed(struct db *db) { UNUSED(db); /* applied lazily before the next statement */ }

static void pg_close(struct db *db)
{
    struct pg_db *s = (struct pg_db *)db;
    db__cache_clear(&s->base.cache, free);
    PQfinish(s->c);
    free(s->values);
    free(s->lengths);
    free(s->formats);
    free(s->offs);
    buf_free(&s->text);
    buf_free(&s->sqlbuf);
    db__base_release(db);
    free(s);
}

static const struct db_ops pg_ops = {
    .query = pg_query,
    .next = pg_next,
    .ncols = pg_ncols,
    .isnull = pg_isnull,
    .get_int = pg_int,
    .get_double = pg_double,
    .get_text = pg_text,
    .res_free = pg_res_free,
    .exec = pg_exec,
    .exec_script = pg_exec_script,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .deadline_changed = pg_deadline_changed,
    .close = pg_close,
};

struct db *db__pg_open(const char *url, const struct db_options *opt, struct buf *err)
{
    /* Keywords before dbname are defaults the URL may override. */
    static const char *const kw[] = {"connect_timeout", "fallback_application_name", "client_encoding", "dbname", NULL};
    const char *val[] = {"10", "temel", "UTF8", url, NULL};
    struct pg_db *s = xcalloc(1, sizeof(*s));

    db__base_init(&s->base, &pg_ops, DB_POSTGRES, opt);
    buf_init(&s->text, PG_MAX_PARAM_BYTES);
    buf_init(&s->sqlbuf, BUF_MAX_SQL);
    s->c = PQconnectdbParams(kw, val, 1);
    if (!s->c)
        FATAL("out of memory");
    if (PQstatus(s->c) != CONNECTION_OK) {
        const char *m = PQerrorMessage(s->c);
        /* PQhost/PQport/PQdb never include the password. */
        if (err)
            (void)buf_printf(err, "postgres: cannot connect to %s:%s/%s: %.*s", PQhost(s->c) ? PQhost(s->c) : "?",
                             PQport(s->c) ? PQport(s->c) : "?", PQdb(s->c) ? PQdb(s->c) : "?", trimmed_len(m), m);
        pg_close(&s->base);
        return NULL;
    }
    PQsetNoticeProcessor(s->c, on_notice, NULL);
    s->cur_timeout_ms = 0;
    if (s->base.opt.statement_timeout_ms > 0 && set_timeout(s, s->base.opt.statement_timeout_ms) != DB_OK) {
        if (err)
            (void)buf_printf(err, "%s", db_errmsg(&s->base));
        pg_close(&s->base);
        return NULL;
    }
    return &s->base;
}
