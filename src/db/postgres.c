/*
 * postgres.c — the PostgreSQL backend of db.h (libpq, synchronous), and the
 * code both PostgreSQL backends share (pg_internal.h; pgpool.c is the
 * non-blocking pool of the loop threads).
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
#include <stdio.h>
#include <stdlib.h>

#include "core/timeutil.h"
#include "db/pg_internal.h"

#include "core/banned.h"

#define PG_BYTEA_OID 17
#define PG_TIMEOUT_SLACK_MS 50

/* ==== shared with pgpool.c (pg_internal.h) ==================================== */

int pg__map_sqlstate(const char *st)
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

int pg__trimmed_len(const char *m)
{
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    return (int)n;
}

int pg__fail(struct db *db, const PGconn *c, const PGresult *res, const char *sql)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    int rc = pg__map_sqlstate(state);
    if (!msg)
        msg = c ? PQerrorMessage(c) : "unknown error";
    return db__fail(db, rc, "postgres: %s%s%.*s: %.200s", state ? state : "", state ? " " : "", pg__trimmed_len(msg),
                    msg, sql);
}

bool pg__stale_statement(const PGresult *res)
{
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return st && (!strcmp(st, "0A000") || !strcmp(st, "26000"));
}

void pg__on_notice(void *arg, const char *msg)
{
    UNUSED(arg);
    UNUSED(msg);
}

void pg__conninfo(struct pg_conninfo *k, const char *url, int64_t statement_timeout_ms)
{
    int i = 0;
    k->kw[i] = "connect_timeout", k->val[i++] = "10";
    k->kw[i] = "fallback_application_name", k->val[i++] = "temel";
    k->kw[i] = "client_encoding", k->val[i++] = "UTF8";
    if (statement_timeout_ms > 0) {
        struct buf b = BUF_INIT(sizeof(k->options));
        (void)buf_puts(&b, "-c statement_timeout=");
        (void)buf_put_i64(&b, statement_timeout_ms);
        memcpy(k->options, buf_cstr(&b), b.len + 1);
        buf_free(&b);
        k->kw[i] = "options", k->val[i++] = k->options;
    }
    k->kw[i] = "dbname", k->val[i++] = url; /* expanded: the URL overrides the defaults above */
    k->kw[i] = NULL, k->val[i] = NULL;
}

void pg__params_init(struct pg_params *p)
{
    memset(p, 0, sizeof(*p));
    buf_init(&p->text, PG_MAX_PARAM_BYTES);
}

void pg__params_free(struct pg_params *p)
{
    free(p->values);
    free(p->lengths);
    free(p->formats);
    free(p->offs);
    buf_free(&p->text);
    memset(p, 0, sizeof(*p));
}

static void grow_params(struct pg_params *p, size_t n)
{
    if (n <= p->cap)
        return;
    p->values = xrealloc(p->values, st_mult(n, sizeof(*p->values)));
    p->lengths = xrealloc(p->lengths, st_mult(n, sizeof(*p->lengths)));
    p->formats = xrealloc(p->formats, st_mult(n, sizeof(*p->formats)));
    p->offs = xrealloc(p->offs, st_mult(n, sizeof(*p->offs)));
    p->cap = n;
}

int pg__bind(struct db *db, struct pg_params *p, const db_arg *args, size_t nargs, const char *sql)
{
    grow_params(p, nargs);
    buf_reset(&p->text);
    for (size_t i = 0; i < nargs; i++) {
        const db_arg *a = &args[i];
        p->formats[i] = 0;
        p->lengths[i] = 0;
        p->values[i] = NULL;
        p->offs[i] = SIZE_MAX;
        switch (a->type) {
        case DB_T_NULL: break;
        case DB_T_INT:
            p->offs[i] = p->text.len;
            (void)buf_put_i64(&p->text, a->v.i);
            (void)buf_putc(&p->text, '\0');
            break;
        case DB_T_BOOL: /* '1'/'0' parse as both boolean and integer */
            p->offs[i] = p->text.len;
            (void)buf_append(&p->text, a->v.i ? "1" : "0", 2);
            break;
        case DB_T_DOUBLE:
            p->offs[i] = p->text.len;
            (void)buf_printf(&p->text, "%.17g", a->v.d);
            (void)buf_putc(&p->text, '\0');
            break;
        case DB_T_TEXT:
            p->offs[i] = p->text.len;
            if (a->v.s.len)
                (void)buf_append(&p->text, a->v.s.p, a->v.s.len);
            (void)buf_putc(&p->text, '\0');
            break;
        case DB_T_BLOB:
            if (a->v.s.len > (size_t)INT32_MAX)
                return db__fail(db, DB_ERR, "postgres: blob parameter too large: %.200s", sql);
            p->values[i] = a->v.s.p ? a->v.s.p : "";
            p->lengths[i] = (int)a->v.s.len;
            p->formats[i] = 1;
            break;
        default: BUG("bad db_arg type");
        }
    }
    if (!buf_ok(&p->text))
        return db__fail(db, DB_ERR, "postgres: parameters too large: %.200s", sql);
    for (size_t i = 0; i < nargs; i++)
        if (p->offs[i] != SIZE_MAX)
            p->values[i] = p->text.ptr + p->offs[i];
    return DB_OK;
}

int pg__stmt(struct db *db, struct db_cache *cache, unsigned *next_id, struct buf *sqlbuf, const char *sql,
             struct pg_stmt *st)
{
    size_t len = strlen(sql);
    struct db_cache_ent *ent = db__cache_get(cache, sql, len);
    struct buf nb = BUF_INIT(32);

    memset(st, 0, sizeof(*st));
    if (ent && !ent->stale) {
        st->name = ent->val;
        st->nparams = ent->nparams;
        return DB_OK;
    }
    buf_reset(sqlbuf);
    if (db__pg_rewrite(sql, sqlbuf, &st->nparams) != 0)
        return db__fail(db, DB_ERR, "postgres: statement too long: %.200s", sql);
    st->text = buf_cstr(sqlbuf);
    if (!ent && cache->n >= DB_CACHE_MAX) {
        st->name = ""; /* the unnamed statement, replaced on each use */
        return DB_OK;
    }
    (void)buf_putc(&nb, 't');
    (void)buf_put_i64(&nb, ++*next_id);
    if (ent) {
        /* The old server-side statement is left to the session: DEALLOCATE
         * would cost a round trip and fail inside an aborted transaction. */
        free(ent->val);
        ent->val = buf_detach(&nb, NULL);
        ent->stale = false;
    } else {
        ent = db__cache_put(cache, sql, len, buf_detach(&nb, NULL));
    }
    ent->nparams = st->nparams;
    st->name = ent->val;
    st->ent = ent;
    return DB_OK;
}

void pg__stmt_stale(struct db_cache *cache, const char *sql)
{
    struct db_cache_ent *ent = db__cache_get(cache, sql, strlen(sql));
    if (ent)
        ent->stale = true;
}

struct pg_res {
    struct db_res base;
    PGresult *r;
    int row, nrows, ncols;
    unsigned char **dec; /* decoded bytea of the current row, per column (malloc) */
    size_t *declen;
};

struct db_res *pg__res_new(struct db *db, PGresult *res)
{
    struct pg_res *r = xcalloc(1, sizeof(*r));
    r->base.db = db;
    r->r = res;
    r->row = -1;
    r->nrows = PQntuples(res);
    r->ncols = PQnfields(res);
    return &r->base;
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

int pg__res_next(struct db_res *res)
{
    struct pg_res *r = (struct pg_res *)res;
    drop_decoded(r);
    if (r->row < r->nrows)
        r->row++;
    return r->row < r->nrows ? 1 : 0;
}

int pg__res_ncols(const struct db_res *res) { return ((const struct pg_res *)res)->ncols; }

static bool valid_cell(const struct pg_res *r, int col)
{
    return r->row >= 0 && r->row < r->nrows && col >= 0 && col < r->ncols;
}

bool pg__res_isnull(const struct db_res *res, int col)
{
    const struct pg_res *r = (const struct pg_res *)res;
    return !valid_cell(r, col) || PQgetisnull(r->r, r->row, col);
}

int64_t pg__res_int(const struct db_res *res, int col)
{
    const struct pg_res *r = (const struct pg_res *)res;
    const char *v;
    int64_t out;
    if (pg__res_isnull(res, col))
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

double pg__res_double(const struct db_res *res, int col)
{
    const struct pg_res *r = (const struct pg_res *)res;
    const char *v;
    if (pg__res_isnull(res, col))
        return 0;
    v = PQgetvalue(r->r, r->row, col);
    if (v[0] == 't' && !v[1])
        return 1;
    return strtod(v, NULL);
}

str_t pg__res_text(const struct db_res *cres, int col)
{
    /* The decoded-bytea cache is mutable state behind a const view. */
    struct pg_res *r = (struct pg_res *)(uintptr_t)cres;
    const char *v;
    if (pg__res_isnull(cres, col))
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

void pg__res_free(struct db_res *res)
{
    struct pg_res *r = (struct pg_res *)res;
    drop_decoded(r);
    free(r->dec);
    free(r->declen);
    PQclear(r->r);
    free(r);
}

int64_t pg__changes(PGresult *res)
{
    int64_t n;
    if (parse_i64(str_c(PQcmdTuples(res)), 0, INT64_MAX, &n) != 0)
        return 0;
    return n;
}

/* ==== the synchronous backend ================================================== */

struct pg_db {
    struct db base;
    PGconn *c;
    unsigned next_stmt;
    int64_t cur_timeout_ms;  /* statement_timeout in force; -1 = unknown */
    bool timeout_set_in_tx;  /* a rollback would undo it */
    struct pg_params params; /* per-call scratch */
    struct buf sqlbuf;
};

static int pg_fail(struct pg_db *s, const PGresult *res, const char *sql) { return pg__fail(&s->base, s->c, res, sql); }

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
        return db__fail(&s->base, DB_ERR, "postgres: reconnect failed: %.*s", pg__trimmed_len(m), m);
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

/* Find or create the prepared statement for sql (prepared here at once). */
static int pg_prepare(struct pg_db *s, const char *sql, struct pg_stmt *st)
{
    PGresult *res;
    int rc = pg__stmt(&s->base, &s->base.cache, &s->next_stmt, &s->sqlbuf, sql, st);
    if (rc || !st->text)
        return rc;
    res = PQprepare(s->c, st->name, st->text, st->nparams, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = pg_fail(s, res, sql);
        if (st->ent)
            st->ent->stale = true;
    }
    PQclear(res);
    return rc;
}

/* Run one parameterised statement; on success *out holds the result. */
static int pg_run(struct pg_db *s, const char *sql, const db_arg *args, size_t nargs, PGresult **out)
{
    *out = NULL;
    for (int attempt = 0;; attempt++) {
        struct pg_stmt st;
        int rc;
        PGresult *res;
        ExecStatusType est;

        if ((rc = pg_ensure_conn(s)) != DB_OK)
            return rc;
        if ((rc = pg_sync_timeout(s)) != DB_OK) {
            if (rc != DB_ETIMEOUT && retryable_loss(s, attempt))
                continue;
            return rc;
        }
        if ((rc = pg_prepare(s, sql, &st)) != DB_OK) {
            if (retryable_loss(s, attempt))
                continue;
            return rc;
        }
        if ((size_t)st.nparams != nargs)
            return db__fail(&s->base, DB_ERR, "postgres: statement wants %d parameters, got %zu: %.200s", st.nparams,
                            nargs, sql);
        if ((rc = pg__bind(&s->base, &s->params, args, nargs, sql)) != DB_OK)
            return rc;
        res = PQexecPrepared(s->c, st.name, st.nparams, s->params.values, s->params.lengths, s->params.formats, 0);
        est = PQresultStatus(res);
        if (est == PGRES_TUPLES_OK || est == PGRES_COMMAND_OK) {
            *out = res;
            return DB_OK;
        }
        if (retryable_loss(s, attempt)) {
            PQclear(res);
            continue;
        }
        rc = pg_fail(s, res, sql);
        if (pg__stale_statement(res)) {
            pg__stmt_stale(&s->base.cache, sql);
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
    PGresult *res;
    int rc = pg_run((struct pg_db *)db, sql, args, nargs, &res);
    if (rc)
        return rc;
    *out = pg__res_new(db, res);
    return DB_OK;
}

static int pg_exec(struct db *db, const char *sql, const db_arg *args, size_t nargs, int64_t *changes)
{
    PGresult *res;
    int rc = pg_run((struct pg_db *)db, sql, args, nargs, &res);
    if (rc)
        return rc;
    if (changes)
        *changes = pg__changes(res);
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

static void pg_deadline_changed(struct db *db) { UNUSED(db); /* applied lazily before the next statement */ }

static void pg_close(struct db *db)
{
    struct pg_db *s = (struct pg_db *)db;
    db__cache_clear(&s->base.cache, free);
    PQfinish(s->c);
    pg__params_free(&s->params);
    buf_free(&s->sqlbuf);
    db__base_release(db);
    free(s);
}

static const struct db_ops pg_ops = {
    .query = pg_query,
    .next = pg__res_next,
    .ncols = pg__res_ncols,
    .isnull = pg__res_isnull,
    .get_int = pg__res_int,
    .get_double = pg__res_double,
    .get_text = pg__res_text,
    .res_free = pg__res_free,
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
    struct pg_conninfo k;
    struct pg_db *s = xcalloc(1, sizeof(*s));

    db__base_init(&s->base, &pg_ops, DB_POSTGRES, opt);
    pg__params_init(&s->params);
    buf_init(&s->sqlbuf, BUF_MAX_SQL);
    pg__conninfo(&k, url, 0); /* statement_timeout follows the deadline: set below and per statement */
    s->c = PQconnectdbParams(k.kw, k.val, 1);
    if (!s->c)
        FATAL("out of memory");
    if (PQstatus(s->c) != CONNECTION_OK) {
        const char *m = PQerrorMessage(s->c);
        /* PQhost/PQport/PQdb never include the password. */
        if (err)
            (void)buf_printf(err, "postgres: cannot connect to %s:%s/%s: %.*s", PQhost(s->c) ? PQhost(s->c) : "?",
                             PQport(s->c) ? PQport(s->c) : "?", PQdb(s->c) ? PQdb(s->c) : "?", pg__trimmed_len(m), m);
        pg_close(&s->base);
        return NULL;
    }
    PQsetNoticeProcessor(s->c, pg__on_notice, NULL);
    s->cur_timeout_ms = 0;
    if (s->base.opt.statement_timeout_ms > 0 && set_timeout(s, s->base.opt.statement_timeout_ms) != DB_OK) {
        if (err)
            (void)buf_printf(err, "%s", db_errmsg(&s->base));
        pg_close(&s->base);
        return NULL;
    }
    return &s->base;
}
