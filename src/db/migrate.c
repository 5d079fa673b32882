/*
 * migrate.c — apply and roll back the embedded migrations (migrate.h).
 *
 * Design: schema_migrations(version, name, applied_at) records what ran.
 * Each migration runs in its own db_tx(DB_TX_WRITE): its script and the
 * schema_migrations row commit or roll back together. Inside the
 * transaction the row is checked again, so a second process that raced us
 * skips a migration the first one already applied (SQLite serialises the
 * write transactions; PostgreSQL additionally holds an advisory lock for the
 * whole run, so two starters never interleave).
 *
 * applied_at is integer ms (UTC) in SQLite and timestamptz in PostgreSQL;
 * both are read back as epoch ms.
 */
#include "db/migrate.h"

#include <stdlib.h>

#include "core/timeutil.h"

#include "core/banned.h"

/* "temelmig" in ASCII: the pg_advisory_lock key of the migrator. */
#define MIGRATE_LOCK_KEY INT64_C(0x74656d656c6d6967)
/* fn return value: the migration was applied (or reverted) meanwhile. */
#define MIGRATE_SKIP 1

struct applied {
    int version;
    char *name;
    int64_t at_ms;
};

struct applied_list {
    struct applied *v;
    size_t n, cap;
};

static void applied_free(struct applied_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static const struct applied *applied_find(const struct applied_list *l, int version)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].version == version)
            return &l->v[i];
    return NULL;
}

static int table_exists(struct db *db, bool *exists)
{
    int64_t n;
    int rc = db_query_int(db,
                          db_pick(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                                  "SELECT count(*) FROM pg_catalog.pg_tables "
                                  "WHERE tablename = ? AND schemaname = current_schema()"),
                          DB_ARGS(DBA_CSTR("schema_migrations")), &n, NULL);
    *exists = rc == DB_OK && n > 0;
    return rc;
}

static int ensure_table(struct db *db)
{
    return db_exec(db,
                   db_pick(db,
                           "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                           "name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
                           "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                           "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"),
                   DB_NOARGS, NULL);
}

/* Load schema_migrations (ascending by version); empty if the table is missing. */
static int load_applied(struct db *db, struct applied_list *l)
{
    struct db_res *r;
    bool exists;
    int rc = table_exists(db, &exists);
    if (rc || !exists)
        return rc;
    rc = db_query(db,
                  db_pick(db, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version",
                          "SELECT version, name, (extract(epoch FROM applied_at) * 1000)::bigint "
                          "FROM schema_migrations ORDER BY version"),
                  DB_NOARGS, &r);
    if (rc)
        return rc;
    while ((rc = db_next(r)) == 1) {
        str_t name = db_text(r, 1);
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 16;
            l->v = xrealloc(l->v, st_mult(l->cap, sizeof(*l->v)));
        }
        l->v[l->n].version = (int)db_int(r, 0);
        l->v[l->n].name = xstrndup(name.p, name.len);
        l->v[l->n].at_ms = db_int(r, 2);
        l->n++;
    }
    db_res_free(r);
    return rc < 0 ? rc : DB_OK;
}

static int lock_run(struct db *db)
{
    if (db_kind(db) != DB_POSTGRES)
        return DB_OK;
    return db_exec(db, "SELECT pg_advisory_lock(?)", DB_ARGS(DBA_INT(MIGRATE_LOCK_KEY)), NULL);
}

static void unlock_run(struct db *db)
{
    /* On failure the lock still ends with the session; nothing more to do. */
    if (db_kind(db) == DB_POSTGRES && db_exec(db, "SELECT pg_advisory_unlock(?)", DB_ARGS(DBA_INT(MIGRATE_LOCK_KEY)), NULL)) {
    }
}

struct step_ctx {
    const struct migration *m;
    bool up;
};

static int step_fn(struct db *db, void *arg)
{
    const struct step_ctx *c = arg;
    bool found;
    int64_t one;
    int rc = db_query_int(db, "SELECT 1 FROM schema_migrations WHERE version = ?", DB_ARGS(DBA_INT(c->m->version)),
                          &one, &found);
    if (rc)
        return rc;
    if (found != c->up) {
        if ((rc = db_exec_script(db, c->up ? c->m->up : c->m->down)) != DB_OK)
            return rc;
        if (c->up)
            return db_exec(db,
                           db_pick(db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                                   "INSERT INTO schema_migrations (version, name, applied_at) "
                                   "VALUES (?, ?, to_timestamp(?::bigint / 1000.0))"),
                           DB_ARGS(DBA_INT(c->m->version), DBA_CSTR(c->m->name), DBA_INT(time_now_ms())), NULL);
        return db_exec(db, "DELETE FROM schema_migrations WHERE version = ?", DB_ARGS(DBA_INT(c->m->version)),
                       NULL);
    }
    return MIGRATE_SKIP;
}

static int run_step(struct db *db, const struct migration *m, bool up, struct buf *out)
{
    struct step_ctx c = {m, up};
    int64_t t0 = time_mono_ms();
    int rc = db_tx(db, DB_TX_WRITE, step_fn, &c);
    if (rc == MIGRATE_SKIP)
        return MIGRATE_SKIP;
    if (rc) {
        (void)buf_printf(out, "%04d %s %s FAILED: %s\n", m->version, m->name, up ? "up" : "down", db_errmsg(db));
        return rc;
    }
    (void)buf_printf(out, "%04d %s %s (%lld ms)\n", m->version, m->name, up ? "up" : "down",
                     (long long)(time_mono_ms() - t0));
    return DB_OK;
}

int migrate_up(struct db *db, int steps, struct buf *out)
{
    struct applied_list al = {0};
    size_t n, done = 0;
    const struct migration *ms = migrations_for(db_kind(db), &n);
    int rc;

    if ((rc = lock_run(db)) != DB_OK) {
        (void)buf_printf(out, "migrate: cannot take the migration lock: %s\n", db_errmsg(db));
        return rc;
    }
    if ((rc = ensure_table(db)) != DB_OK || (rc = load_applied(db, &al)) != DB_OK) {
        (void)buf_printf(out, "migrate: cannot read schema_migrations: %s\n", db_errmsg(db));
        goto out;
    }
    for (size_t i = 0; i < n && (steps <= 0 || done < (size_t)steps); i++) {
        if (applied_find(&al, ms[i].version))
            continue;
        rc = run_step(db, &ms[i], true, out);
        if (rc == MIGRATE_SKIP) {
            rc = DB_OK;
            continue;
        }
        if (rc)
            goto out;
        done++;
    }
    for (size_t i = 0; i < al.n; i++) {
        bool known = false;
        for (size_t j = 0; j < n && !known; j++)
            known = ms[j].version == al.v[i].version;
        if (!known)
            (void)buf_printf(out, "warning: applied migration %04d %s is not in this binary\n", al.v[i].version,
                             al.v[i].name);
    }
    if (done == 0)
        (void)buf_puts(out, "no pending migrations\n");
out:
    applied_free(&al);
    unlock_run(db);
    return rc;
}

int migrate_down(struct db *db, int steps, struct buf *out)
{
    struct applied_list al = {0};
    size_t n, done = 0;
    const struct migration *ms = migrations_for(db_kind(db), &n);
    int rc;

    if ((rc = lock_run(db)) != DB_OK) {
        (void)buf_printf(out, "migrate: cannot take the migration lock: %s\n", db_errmsg(db));
        return rc;
    }
    if ((rc = load_applied(db, &al)) != DB_OK) {
        (void)buf_printf(out, "migrate: cannot read schema_migrations: %s\n", db_errmsg(db));
        goto out;
    }
    for (size_t i = al.n; i-- > 0 && (steps <= 0 || done < (size_t)steps);) {
        const struct migration *m = NULL;
        for (size_t j = 0; j < n && !m; j++)
            if (ms[j].version == al.v[i].version)
                m = &ms[j];
        if (!m) {
            (void)buf_printf(out, "%04d %s: cannot roll back, not in this binary\n", al.v[i].version, al.v[i].name);
            rc = DB_ERR;
            goto out;
        }
        rc = run_step(db, m, false, out);
        if (rc == MIGRATE_SKIP) {
            rc = DB_OK;
            continue;
        }
        if (rc)
            goto out;
        done++;
    }
    if (done == 0)
        (void)buf_puts(out, "nothing to roll back\n");
out:
    applied_free(&al);
    unlock_run(db);
    return rc;
}

int migrate_status(struct db *db, struct buf *out)
{
    struct applied_list al = {0};
    size_t n;
    const struct migration *ms = migrations_for(db_kind(db), &n);
    size_t i = 0, j = 0;
    int rc = load_applied(db, &al);
    if (rc) {
        (void)buf_printf(out, "migrate: cannot read schema_migrations: %s\n", db_errmsg(db));
        return rc;
    }
    /* Merge the two version-ordered lists. */
    while (i < n || j < al.n) {
        char ts[TIME_RFC3339_LEN + 1];
        if (j >= al.n || (i < n && ms[i].version < al.v[j].version)) {
            (void)buf_printf(out, "%04d %s pending\n", ms[i].version, ms[i].name);
            i++;
        } else if (i >= n || al.v[j].version < ms[i].version) {
            time_format_rfc3339(al.v[j].at_ms, ts);
            (void)buf_printf(out, "%04d %s applied %s (not in this binary)\n", al.v[j].version, al.v[j].name, ts);
            j++;
        } else {
            time_format_rfc3339(al.v[j].at_ms, ts);
            (void)buf_printf(out, "%04d %s applied %s\n", ms[i].version, ms[i].name, ts);
            i++;
            j++;
        }
    }
    applied_free(&al);
    return DB_OK;
}

int migrate_current(struct db *db, int *version, int *pending)
{
    struct applied_list al = {0};
    size_t n;
    const struct migration *ms = migrations_for(db_kind(db), &n);
    int rc = load_applied(db, &al);
    *version = 0;
    *pending = 0;
    if (rc)
        return rc;
    if (al.n)
        *version = al.v[al.n - 1].version;
    for (size_t i = 0; i < n; i++)
        if (!applied_find(&al, ms[i].version))
            (*pending)++;
    applied_free(&al);
    return DB_OK;
}
