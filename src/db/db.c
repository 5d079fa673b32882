/*
 * db.c — the dialect-independent half of db.h.
 *
 * Design: db_open() picks a backend from the URL scheme; every other public
 * call goes through db->ops. This file owns what must behave the same on
 * both dialects: error text, per-statement statistics (one time_mono_us
 * pair per call), the deadline value, and db_tx's retry loop. It also holds
 * the statement cache table both backends use and the `?` -> `$n` rewrite.
 */
#include "db/db_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "core/timeutil.h"

#include "core/banned.h"

const double db_latency_bounds_s[11] = {50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3,
                                        5e-3,  10e-3,  25e-3,  50e-3,  100e-3};
static const int64_t latency_bounds_us[11] = {50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000};

#define TX_MAX_ATTEMPTS 8

/* ---- base ---------------------------------------------------------------- */

void db__base_init(struct db *db, const struct db_ops *ops, enum db_kind kind, const struct db_options *opt)
{
    memset(db, 0, sizeof(*db));
    db->ops = ops;
    db->kind = kind;
    buf_init(&db->err, BUF_MAX_SMALL);
    if (opt)
        db->opt = *opt;
    if (db->opt.busy_timeout_ms <= 0)
        db->opt.busy_timeout_ms = 5000;
    if (db->opt.statement_timeout_ms < 0)
        db->opt.statement_timeout_ms = 0;
}

void db__base_release(struct db *db) { buf_free(&db->err); }

int db__fail(struct db *db, int rc, const char *fmt, ...)
{
    va_list ap;
    buf_reset(&db->err);
    va_start(ap, fmt);
    (void)buf_vprintf(&db->err, fmt, ap);
    va_end(ap);
    if (!buf_ok(&db->err)) {
        buf_reset(&db->err);
        (void)buf_puts(&db->err, "database error (message too long)");
    }
    return rc;
}

void db__clear_err(struct db *db) { buf_reset(&db->err); }

bool db__deadline_passed(const struct db *db) { return db->deadline_ms > 0 && time_mono_ms() >= db->deadline_ms; }

static void stat_add(struct db *db, int64_t t0, int rc)
{
    int64_t us = time_mono_us() - t0;
    size_t i = 0;
    if (us < 0)
        us = 0;
    db->stats.queries++;
    db->stats.query_us_total += (uint64_t)us;
    if (rc < 0)
        db->stats.errors++;
    while (i < ARRAY_LEN(latency_bounds_us) && us > latency_bounds_us[i])
        i++;
    db->stats.latency_buckets[i]++;
}

/* ---- sharing a connection between coroutines ---------------------------------- */

/* Before any statement: if another coroutine's transaction owns the
 * connection, wait for it (FIFO). Outside coroutines this is one branch. */
static int enter(struct db *db)
{
    struct coro *self = coro_self();
    int64_t d;
    if (!self)
        return DB_OK;
    /* the connection may be shared: statements run under this coroutine's deadline */
    if ((d = coro_get_deadline()) != db->deadline_ms) {
        db->deadline_ms = d;
        db->ops->deadline_changed(db);
    }
    while (db->owner && db->owner != self)
        if (!coro_wq_wait(&db->turn, db->deadline_ms))
            return db__fail(db, DB_ETIMEOUT, "deadline passed waiting for the connection");
    return DB_OK;
}

static void release_owner(struct db *db)
{
    db->owner = NULL;
    coro_wq_wake_one(&db->turn);
}

/* SQLite on a loop thread: a statement outside a transaction that meets
 * the write lock held elsewhere (busy handler returns at once inside a
 * coroutine) yields and tries again, until busy_timeout or the deadline. */
static bool busy_wait(struct db *db, int rc, int64_t *since_ms)
{
    int64_t now;
    if (rc != DB_EBUSY || db->in_tx || db->kind != DB_SQLITE || !coro_self())
        return false;
    now = time_mono_ms();
    if (!*since_ms)
        *since_ms = now;
    if (now - *since_ms >= db->opt.busy_timeout_ms || (db->deadline_ms && now >= db->deadline_ms))
        return false;
    coro_sleep_ms(1);
    return true;
}

/* The write gate (SQLite): taken by writers, in order, before the connection. */
static bool gate_enter(struct db *db) { return db->ops->write_enter && db->ops->write_enter(db); }

/* The connection is in a transaction of the caller's (another coroutine's
 * transaction may be open on it: the caller then waits in enter()). */
static bool own_tx(const struct db *db) { return db->in_tx && db->owner == coro_self(); }

/* A statement outside the caller's transaction that writes takes the gate
 * first (before waiting for the connection: never hold one, wait for the other). */
static bool gate_statement(struct db *db, const char *sql)
{
    return !own_tx(db) && db->ops->writes && db->ops->writes(db, sql) && gate_enter(db);
}

/* ---- open / close ---------------------------------------------------------- */

/* mkdir -p of the directory part of path (nothing for a bare file name). */
static int make_parent_dirs(const char *path, struct buf *err)
{
    struct buf d = BUF_INIT(BUF_MAX_SMALL);
    const char *slash = strrchr(path, '/');
    int rc = 0;
    if (!slash || slash == path)
        return 0;
    if (buf_append(&d, path, (size_t)(slash - path))) {
        buf_free(&d);
        if (err)
            (void)buf_puts(err, "sqlite path too long");
        return -1;
    }
    for (char *p = d.ptr + 1;; p++) {
        char c = *p;
        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (mkdir(d.ptr, 0755) != 0 && errno != EEXIST) {
            if (err)
                (void)buf_printf(err, "cannot create directory %s: %s", d.ptr, strerror(errno));
            rc = -1;
            break;
        }
        *p = c;
        if (c == '\0')
            break;
    }
    buf_free(&d);
    return rc;
}

struct db *db_open(const char *url, const struct db_options *opt, struct buf *err)
{
    str_t u = str_c(url);
    if (str_has_prefix(u, STRLIT("sqlite://"))) {
        const char *path = url + strlen("sqlite://");
        if (!*path) {
            if (err)
                (void)buf_puts(err, "DATABASE_URL: sqlite:// needs a path");
            return NULL;
        }
        if (strcmp(path, ":memory:") != 0 && make_parent_dirs(path, err) != 0)
            return NULL;
        return db__sqlite_open(path, opt, err);
    }
    if (str_has_prefix(u, STRLIT("postgres://")) || str_has_prefix(u, STRLIT("postgresql://")))
        return db__pg_open(url, opt, err);
    if (err)
        (void)buf_puts(err, "DATABASE_URL: unknown scheme (want sqlite:// or postgres://)");
    return NULL;
}

void db_close(struct db *db)
{
    if (db)
        db->ops->close(db);
}

enum db_kind db_kind(const struct db *db) { return db->kind; }

const char *db_errmsg(const struct db *db) { return buf_cstr(&db->err); }

bool db_in_tx(const struct db *db) { return db->in_tx; }

const struct db_stats *db_stats(const struct db *db) { return &db->stats; }

void db_set_deadline(struct db *db, int64_t deadline_mono_ms)
{
    coro_set_deadline(deadline_mono_ms);
    db->deadline_ms = deadline_mono_ms > 0 ? deadline_mono_ms : 0;
    db->ops->deadline_changed(db);
}

/* ---- statements ------------------------------------------------------------ */

int db_query(struct db *db, const char *sql, const db_arg *args, size_t nargs, struct db_res **out)
{
    int64_t t0 = time_mono_us(), since = 0;
    int rc;
    bool gated = gate_statement(db, sql);
    *out = NULL;
    if ((rc = enter(db)) == DB_OK) {
        do
            rc = db->ops->query(db, sql, args, nargs, out);
        while (busy_wait(db, rc, &since));
        stat_add(db, t0, rc);
    }
    if (gated) {
        if (rc == DB_OK)
            (*out)->gated = true; /* the statement may hold the write lock until freed */
        else
            db->ops->write_leave(db);
    }
    return rc;
}

int db_next(struct db_res *r) { return r->db->ops->next(r); }
int db_ncols(const struct db_res *r) { return r->db->ops->ncols(r); }
bool db_isnull(const struct db_res *r, int col) { return r->db->ops->isnull(r, col); }
int64_t db_int(const struct db_res *r, int col) { return r->db->ops->get_int(r, col); }
double db_double(const struct db_res *r, int col) { return r->db->ops->get_double(r, col); }
str_t db_text(const struct db_res *r, int col) { return r->db->ops->get_text(r, col); }

void db_res_free(struct db_res *r)
{
    struct db *db;
    bool gated;
    if (!r)
        return;
    db = r->db;
    gated = r->gated;
    db->ops->res_free(r);
    if (gated)
        db->ops->write_leave(db);
}

int db_exec(struct db *db, const char *sql, const db_arg *args, size_t nargs, int64_t *changes)
{
    int64_t t0 = time_mono_us(), since = 0;
    int rc;
    bool gated = gate_statement(db, sql);
    if (changes)
        *changes = 0;
    if ((rc = enter(db)) == DB_OK) {
        do
            rc = db->ops->exec(db, sql, args, nargs, changes);
        while (busy_wait(db, rc, &since));
        stat_add(db, t0, rc);
    }
    if (gated)
        db->ops->write_leave(db);
    return rc;
}

int db_exec_script(struct db *db, const char *sql)
{
    int64_t t0 = time_mono_us(), since = 0;
    int rc;
    bool gated = !own_tx(db) && gate_enter(db); /* a script may write */
    if ((rc = enter(db)) == DB_OK) {
        do
            rc = db->ops->exec_script(db, sql);
        while (busy_wait(db, rc, &since));
        stat_add(db, t0, rc);
    }
    if (gated)
        db->ops->write_leave(db);
    return rc;
}

int db_query_int(struct db *db, const char *sql, const db_arg *args, size_t nargs, int64_t *out, bool *found)
{
    struct db_res *r;
    int rc = db_query(db, sql, args, nargs, &r);
    *out = 0;
    if (found)
        *found = false;
    if (rc)
        return rc;
    rc = db_next(r);
    if (rc == 1) {
        *out = db_int(r, 0);
        if (found)
            *found = true;
        rc = DB_OK;
    }
    db_res_free(r);
    return rc;
}

int db_ping(struct db *db, int64_t *latency_us)
{
    int64_t t0 = time_mono_us(), v;
    int rc = db_query_int(db, "SELECT 1", DB_NOARGS, &v, NULL);
    if (latency_us)
        *latency_us = time_mono_us() - t0;
    return rc;
}

/* ---- transactions ----------------------------------------------------------- */

/* Randomised exponential backoff: up to 1, 2, 4, ... 32 ms (attempt 0..7). */
static void tx_backoff(int attempt)
{
    static _Thread_local uint64_t state;
    struct timespec ts;
    uint64_t cap_us = (uint64_t)1000 << (attempt < 5 ? attempt : 5), us;
    if (!state)
        state = (uint64_t)time_mono_us() ^ ((uint64_t)(uintptr_t)&state << 16) ^ 0x9e3779b97f4a7c15ull;
    state ^= state << 13; /* xorshift64 */
    state ^= state >> 7;
    state ^= state << 17;
    us = cap_us / 4 + state % (cap_us - cap_us / 4 + 1);
    if (coro_self()) {
        coro_sleep_ms((int64_t)(us + 999) / 1000);
        return;
    }
    ts.tv_sec = 0;
    ts.tv_nsec = (long)(us * 1000);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* BEGIN, waiting (yielding) for SQLite's write lock on a loop thread. */
static int tx_begin(struct db *db, enum db_tx_mode mode)
{
    int64_t since = 0;
    for (;;) {
        int64_t t0 = time_mono_us();
        int rc = db->ops->begin(db, mode);
        stat_add(db, t0, rc);
        if (rc != DB_EBUSY || db->kind != DB_SQLITE || !coro_self())
            return rc;
        int64_t now = time_mono_ms();
        if (!since)
            since = now;
        if (now - since >= db->opt.busy_timeout_ms)
            return rc;
        if (db->deadline_ms && now >= db->deadline_ms)
            return db__fail(db, DB_ETIMEOUT, "deadline passed waiting for the write lock");
        /* let this thread's readers use the connection while we wait */
        release_owner(db);
        coro_sleep_ms(1);
        if ((rc = enter(db)) != DB_OK)
            return rc;
        db->owner = coro_self();
    }
}

static int tx_run(struct db *db, enum db_tx_mode mode, db_tx_fn fn, void *arg)
{
    int rc = DB_EBUSY;
    for (int attempt = 0; attempt < TX_MAX_ATTEMPTS; attempt++) {
        int64_t t0;
        if (attempt > 0) {
            release_owner(db);
            tx_backoff(attempt - 1);
            if ((rc = enter(db)) != DB_OK)
                return rc;
            db->owner = coro_self();
        }
        rc = tx_begin(db, mode);
        if (rc == DB_EBUSY)
            continue;
        if (rc)
            return rc;
        db->in_tx = true;
        rc = fn(db, arg);
        if (rc == 0) {
            t0 = time_mono_us();
            rc = db->ops->commit(db);
            stat_add(db, t0, rc);
            if (rc == 0) {
                db->in_tx = false;
                return 0;
            }
        }
        /* Roll back, keeping the error message of the failure that caused it. */
        {
            struct buf saved = BUF_INIT(BUF_MAX_SMALL);
            (void)buf_put(&saved, buf_str(&db->err));
            t0 = time_mono_us();
            stat_add(db, t0, db->ops->rollback(db));
            buf_reset(&db->err);
            (void)buf_put(&db->err, buf_str(&saved));
            buf_free(&saved);
        }
        db->in_tx = false;
        if (rc != DB_EBUSY)
            return rc;
    }
    return rc;
}

int db_tx(struct db *db, enum db_tx_mode mode, db_tx_fn fn, void *arg)
{
    struct coro *self = coro_self();
    bool gated;
    int rc;
    if ((rc = enter(db)) != DB_OK)
        return rc;
    if (db->in_tx) /* join the enclosing transaction (ours); it owns commit and retry */
        return fn(db, arg);
    /* A SQLite writer first waits for the file's write gate (FIFO across the
     * process, yielding in a coroutine); then the transaction pins the
     * connection to this coroutine. */
    gated = mode != DB_TX_READ && gate_enter(db);
    if (gated && (rc = enter(db)) != DB_OK) {
        db->ops->write_leave(db);
        return rc;
    }
    if (!self) {
        rc = tx_run(db, mode, fn, arg);
    } else {
        db->owner = self;
        rc = tx_run(db, mode, fn, arg);
        if (db->owner == self)
            release_owner(db);
    }
    if (gated)
        db->ops->write_leave(db);
    return rc;
}

/* ---- pools for loop threads ---------------------------------------------------- */

struct single_pool {
    struct db_pool base;
    struct db *db;
};

static struct db *single_get(struct db_pool *p) { return ((struct single_pool *)p)->db; }
static void single_put(struct db_pool *p, struct db *h)
{
    UNUSED(p);
    UNUSED(h);
}
static void single_close(struct db_pool *p)
{
    db_close(((struct single_pool *)p)->db);
    free(p);
}
static const struct db_stats *single_stats(struct db_pool *p) { return db_stats(((struct single_pool *)p)->db); }

static const struct db_pool_ops single_ops = {single_get, single_put, single_close, single_stats};

struct db_pool *db__single_pool(struct db *db)
{
    struct single_pool *p = xcalloc(1, sizeof(*p));
    p->base.ops = &single_ops;
    p->db = db;
    return &p->base;
}

struct db_pool *db_pool_open(const char *url, const struct db_options *opt, int size, struct buf *err)
{
    str_t u = str_c(url);
    if (str_has_prefix(u, STRLIT("postgres://")) || str_has_prefix(u, STRLIT("postgresql://")))
        return db__pg_pool_open(url, opt, size, err);
    struct db *db = db_open(url, opt, err);
    return db ? db__single_pool(db) : NULL;
}

struct db *db_pool_get(struct db_pool *p) { return p->ops->get(p); }
void db_pool_put(struct db_pool *p, struct db *h) { p->ops->put(p, h); }
void db_pool_close(struct db_pool *p)
{
    if (p)
        p->ops->close(p);
}
const struct db_stats *db_pool_stats(struct db_pool *p) { return p->ops->stats(p); }

/* ---- statement cache -------------------------------------------------------- */

static uint32_t hash_sql(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

struct db_cache_ent *db__cache_get(struct db_cache *c, const char *sql, size_t len)
{
    uint32_t h;
    size_t i;
    if (!c->cap)
        return NULL;
    h = hash_sql(sql, len);
    for (i = h & (c->cap - 1); c->slots[i]; i = (i + 1) & (c->cap - 1)) {
        struct db_cache_ent *e = c->slots[i];
        if (e->hash == h && memeq(e->sql, e->len, sql, len))
            return e;
    }
    return NULL;
}

static void cache_insert_slot(struct db_cache *c, struct db_cache_ent *e)
{
    size_t i = e->hash & (c->cap - 1);
    while (c->slots[i])
        i = (i + 1) & (c->cap - 1);
    c->slots[i] = e;
}

struct db_cache_ent *db__cache_put(struct db_cache *c, const char *sql, size_t len, void *val)
{
    struct db_cache_ent *e;
    if (c->n >= DB_CACHE_MAX)
        return NULL;
    if ((c->n + 1) * 4 > c->cap * 3) { /* keep load <= 75% */
        struct db_cache_ent **old = c->slots;
        size_t oldcap = c->cap;
        c->cap = oldcap ? oldcap * 2 : 32;
        c->slots = xcalloc(c->cap, sizeof(*c->slots));
        for (size_t i = 0; i < oldcap; i++)
            if (old[i])
                cache_insert_slot(c, old[i]);
        free(old);
    }
    e = xcalloc(1, sizeof(*e));
    e->sql = xstrndup(sql, len);
    e->len = len;
    e->hash = hash_sql(sql, len);
    e->val = val;
    cache_insert_slot(c, e);
    c->n++;
    return e;
}

void db__cache_clear(struct db_cache *c, void (*free_val)(void *val))
{
    for (size_t i = 0; i < c->cap; i++) {
        struct db_cache_ent *e = c->slots[i];
        if (!e)
            continue;
        if (free_val)
            free_val(e->val);
        free(e->sql);
        free(e);
    }
    free(c->slots);
    c->slots = NULL;
    c->cap = c->n = 0;
}

/* ---- placeholder rewrite ---------------------------------------------------- */

static bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (unsigned char)c >= 0x80; }
static bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }

/* If s starts a dollar-quote tag ($$ or $name$), return the tag length, else 0. */
static size_t dollar_tag(const char *s)
{
    size_t i = 1;
    if (s[0] != '$')
        return 0;
    if (s[1] == '$')
        return 2;
    if (!is_ident_start(s[1]) || (unsigned char)s[1] >= 0x80)
        return 0;
    while (is_ident_char(s[i]))
        i++;
    return s[i] == '$' ? i + 1 : 0;
}

int db__pg_rewrite(const char *sql, struct buf *out, int *nparams)
{
    const char *p = sql, *start = sql;
    int n = 0;
    while (*p) {
        char c = *p;
        if (c == '\'') {
            /* E'..' strings allow backslash escapes; detect the E prefix. */
            bool esc = p > sql && (p[-1] == 'E' || p[-1] == 'e') && (p - 1 == sql || !is_ident_char(p[-2]));
            p++;
            while (*p) {
                if (esc && *p == '\\' && p[1]) {
                    p += 2;
                } else if (*p == '\'') {
                    if (p[1] == '\'')
                        p += 2;
                    else
                        break;
                } else {
                    p++;
                }
            }
            if (*p)
                p++;
        } else if (c == '"') {
            p++;
            while (*p && !(*p == '"' && p[1] != '"'))
                p += (*p == '"') ? 2 : 1;
            if (*p)
                p++;
        } else if (c == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
        } else if (c == '/' && p[1] == '*') {
            int depth = 1;
            p += 2;
            while (*p && depth) {
                if (p[0] == '/' && p[1] == '*') {
                    depth++;
                    p += 2;
                } else if (p[0] == '*' && p[1] == '/') {
                    depth--;
                    p += 2;
                } else {
                    p++;
                }
            }
        } else if (c == '$' && (p == sql || !is_ident_char(p[-1])) && dollar_tag(p)) {
            size_t tl = dollar_tag(p);
            const char *tag = p, *q = p + tl;
            while (*q && !(*q == '$' && strncmp(q, tag, tl) == 0))
                q++;
            p = *q ? q + tl : q;
        } else if (c == '?') {
            (void)buf_append(out, start, (size_t)(p - start));
            (void)buf_putc(out, '$');
            (void)buf_put_i64(out, ++n);
            p++;
            start = p;
        } else {
            p++;
        }
    }
    (void)buf_append(out, start, (size_t)(p - start));
    *nparams = n;
    return buf_ok(out) ? 0 : -1;
}
