/* backup.c — see backup.h. */
#include "db/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fsutil.h"

#include "core/banned.h"

extern char **environ;

static bool is_sqlite(const char *url) { return str_has_prefix(str_c(url), STRLIT("sqlite://")); }
static const char *sqlite_path(const char *url) { return url + strlen("sqlite://"); }

int file_sha256_hex(const char *path, char out[65], int64_t *size, struct buf *err)
{
    crypto_hash_sha256_state st;
    unsigned char h[crypto_hash_sha256_BYTES];
    unsigned char *chunk = xmalloc(1u << 20);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int64_t total = 0;
    ssize_t n;
    if (fd < 0) {
        free(chunk);
        (void)buf_printf(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    crypto_hash_sha256_init(&st);
    while ((n = read(fd, chunk, 1u << 20)) > 0) {
        crypto_hash_sha256_update(&st, chunk, (unsigned long long)n);
        total += n;
    }
    int e = errno;
    close(fd);
    free(chunk);
    if (n < 0) {
        (void)buf_printf(err, "%s: %s", path, strerror(e));
        return -1;
    }
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(out, 65, h, sizeof(h));
    if (size)
        *size = total;
    return 0;
}

/* ---- SQLite ---------------------------------------------------------------- */

/* Copy the whole "main" database of src into dst in one step (one read
 * transaction on src). Busy/locked (a writer holds what we need): retry. */
static int sq_copy(sqlite3 *dst, sqlite3 *src, struct buf *err)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    int rc;
    if (!b) {
        (void)buf_printf(err, "sqlite backup: %s", sqlite3_errmsg(dst));
        return -1;
    }
    for (int tries = 0;; tries++) {
        rc = sqlite3_backup_step(b, -1);
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || tries > 500)
            break;
        sqlite3_sleep(10); /* CLI or job thread: never a loop */
    }
    int frc = sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE || frc != SQLITE_OK) {
        (void)buf_printf(err, "sqlite backup: %s", sqlite3_errstr(rc != SQLITE_DONE ? rc : frc));
        return -1;
    }
    return 0;
}

static sqlite3 *sq_open(const char *path, int flags, struct buf *err)
{
    sqlite3 *h = NULL;
    if (sqlite3_open_v2(path, &h, flags, NULL) != SQLITE_OK) {
        (void)buf_printf(err, "sqlite: cannot open %s: %s", path, h ? sqlite3_errmsg(h) : "out of memory");
        sqlite3_close_v2(h);
        return NULL;
    }
    sqlite3_busy_timeout(h, 10000);
    return h;
}

static int sq_exec(sqlite3 *h, const char *sql, struct buf *err)
{
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    (void)buf_printf(err, "sqlite: %s", msg ? msg : sqlite3_errmsg(h));
    sqlite3_free(msg);
    return -1;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int sq_dump(const char *url, const char *path, struct buf *err)
{
    struct buf part = BUF_INIT(4096);
    sqlite3 *src = NULL, *dst = NULL;
    int rc = -1;
    (void)buf_printf(&part, "%s.part", path);
    (void)unlink(buf_cstr(&part));
    if (!(src = sq_open(sqlite_path(url), SQLITE_OPEN_READWRITE, err)) ||
        !(dst = sq_open(buf_cstr(&part), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err)))
        goto out;
    if (sq_copy(dst, src, err) || sq_exec(dst, "PRAGMA journal_mode=DELETE", err))
        goto out;
    sqlite3_close_v2(dst);
    dst = NULL;
    if (chmod(buf_cstr(&part), 0600) || fsync_path(buf_cstr(&part)) || rename(buf_cstr(&part), path)) {
        (void)buf_printf(err, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    sqlite3_close_v2(dst);
    sqlite3_close_v2(src);
    if (rc)
        (void)unlink(buf_cstr(&part));
    buf_free(&part);
    return rc;
}

/* mkdir -p of the directory holding path (nothing when it has none). */
static int mkdir_parent(const char *path)
{
    char *d = xstrdup(path), *slash = strrchr(d, '/');
    int rc = 0;
    if (slash && slash != d) {
        *slash = '\0';
        rc = fs_mkdir_p(d, 0700);
    }
    free(d);
    return rc;
}

static int sq_load(const char *url, const char *path, struct buf *err)
{
    sqlite3 *src = NULL, *dst = NULL;
    int rc = -1;
    if (mkdir_parent(sqlite_path(url)) ||
        !(src = sq_open(path, SQLITE_OPEN_READONLY, err)) ||
        !(dst = sq_open(sqlite_path(url), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err)))
        goto out;
    if (sq_exec(src, "SELECT count(*) FROM sqlite_master", err) || sq_copy(dst, src, err) ||
        sq_exec(dst, "PRAGMA journal_mode=WAL", err))
        goto out;
    rc = 0;
out:
    if (rc && !err->len)
        (void)buf_printf(err, "%s: cannot create its directory", sqlite_path(url));
    sqlite3_close_v2(dst);
    sqlite3_close_v2(src);
    return rc;
}

/* ---- PostgreSQL ------------------------------------------------------------ */

/* environ without PG* variables, plus url's settings as libpq's variables. */
static char **pg_env(const char *url, struct buf *err)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &msg);
    size_t n = 0, k = 0;
    if (!opts) {
        (void)buf_printf(err, "DATABASE_URL: %s", msg ? msg : "cannot be parsed");
        PQfreemem(msg);
        return NULL;
    }
    for (char **e = environ; *e; e++)
        n++;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        n++;
    char **env = xcalloc(n + 1, sizeof(*env));
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "PG", 2))
            env[k++] = xstrdup(*e);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !o->envvar || !*o->val)
            continue;
        struct buf kv = BUF_INIT(8192);
        (void)buf_printf(&kv, "%s=%s", o->envvar, o->val);
        env[k++] = buf_detach(&kv, NULL);
    }
    PQconninfoFree(opts);
    return env;
}

static void env_free(char **env)
{
    for (char **e = env; e && *e; e++) {
        sodium_memzero(*e, strlen(*e)); /* may hold PGPASSWORD */
        free(*e);
    }
    free(env);
}

/* Run argv[0] (from PATH) with url's connection in its environment; stderr
 * of the tool goes to ours. 0 when it exits 0. */
static int pg_tool(const char *url, char *const argv[], struct buf *err)
{
    char **env = pg_env(url, err);
    pid_t pid;
    int st = 0, rc;
    if (!env)
        return -1;
    rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, env);
    env_free(env);
    if (rc) {
        (void)buf_printf(err, "%s: %s", argv[0], strerror(rc));
        return -1;
    }
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            (void)buf_printf(err, "%s: waitpid: %s", argv[0], strerror(errno));
            return -1;
        }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        (void)buf_printf(err, "%s failed (exit %d)", argv[0], WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return -1;
    }
    return 0;
}

static int pg_exec(const char *url, const char *sql, struct buf *err)
{
    PGconn *c = PQconnectdb(url);
    int rc = -1;
    if (PQstatus(c) != CONNECTION_OK) {
        (void)buf_printf(err, "postgres: %s", PQerrorMessage(c));
    } else {
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
            rc = 0;
        else
            (void)buf_printf(err, "postgres: %s", PQresultErrorMessage(res));
        PQclear(res);
    }
    PQfinish(c);
    return rc;
}

/* The database name of url (libpq's parse), malloc'd, or NULL. */
static char *pg_dbname(const char *url)
{
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    char *name = NULL;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "dbname") && o->val)
            name = xstrdup(o->val);
    PQconninfoFree(opts);
    return name;
}

static int pg_dump_to(const char *url, const char *path, struct buf *err)
{
    struct buf part = BUF_INIT(4096), file = BUF_INIT(4200);
    (void)buf_printf(&part, "%s.part", path);
    (void)buf_printf(&file, "--file=%s", buf_cstr(&part));
    char *const argv[] = {"pg_dump", "--format=custom", "--no-owner", "--no-privileges", (char *)buf_cstr(&file), NULL};
    int rc = pg_tool(url, argv, err);
    if (rc == 0 && (chmod(buf_cstr(&part), 0600) || fsync_path(buf_cstr(&part)) || rename(buf_cstr(&part), path))) {
        (void)buf_printf(err, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc)
        (void)unlink(buf_cstr(&part));
    buf_free(&part);
    buf_free(&file);
    return rc;
}

static int pg_load(const char *url, const char *path, struct buf *err)
{
    char *db = pg_dbname(url);
    struct buf dbarg = BUF_INIT(1024);
    int rc = -1;
    if (!db) {
        (void)buf_puts(err, "DATABASE_URL: names no database");
        return -1;
    }
    (void)buf_printf(&dbarg, "--dbname=%s", db);
    char *const argv[] = {"pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                          (char *)buf_cstr(&dbarg), (char *)path, NULL};
    /* the schema is dropped before pg_restore's own transaction: first make sure pg_restore runs
     * and can read the whole archive, so an unreadable copy leaves the database as it was */
    char *const list[] = {"pg_restore", "--list", "--file=/dev/null", (char *)path, NULL};
    /* everything goes: what the copy does not have must not stay behind */
    if (pg_tool(url, list, err) == 0 &&
        pg_exec(url, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public", err) == 0)
        rc = pg_tool(url, argv, err);
    free(db);
    buf_free(&dbarg);
    return rc;
}

/* url with its database name replaced by name: postgres://auth@host/name?query */
static char *pg_url_with_db(const char *url, const char *name)
{
    const char *auth = strstr(url, "://");
    struct buf out = BUF_INIT(8192);
    auth = auth ? auth + 3 : url;
    const char *slash = strchr(auth, '/'), *q = strchr(auth, '?');
    if (q && slash && slash > q)
        slash = NULL;
    const char *end_auth = slash ? slash : q ? q : url + strlen(url);
    (void)buf_append(&out, url, (size_t)(end_auth - url));
    (void)buf_printf(&out, "/%s%s", name, q ? q : "");
    return buf_detach(&out, NULL);
}

/* ---- the API ----------------------------------------------------------------- */

int db_dump(const char *url, const char *path, struct buf *err)
{
    return is_sqlite(url) ? sq_dump(url, path, err) : pg_dump_to(url, path, err);
}

int db_load(const char *url, const char *path, struct buf *err)
{
    return is_sqlite(url) ? sq_load(url, path, err) : pg_load(url, path, err);
}

int db_scratch_create(const char *url, const char *dir, char **scratch_url, struct buf *err)
{
    unsigned char rnd[6];
    char hex[13], name[40];
    struct buf u = BUF_INIT(8192);
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
    (void)snprintf(name, sizeof(name), "temel_scratch_%s", hex);
    if (is_sqlite(url)) {
        if (fs_mkdir_p(dir, 0700)) {
            (void)buf_printf(err, "%s: %s", dir, strerror(errno));
            return -1;
        }
        (void)buf_printf(&u, "sqlite://%s/%s.db", dir, name);
        *scratch_url = buf_detach(&u, NULL);
        return 0;
    }
    (void)buf_printf(&u, "CREATE DATABASE %s", name); /* name: [a-z0-9_] made here */
    int rc = pg_exec(url, buf_cstr(&u), err);
    buf_free(&u);
    if (rc)
        return -1;
    *scratch_url = pg_url_with_db(url, name);
    return 0;
}

void db_scratch_drop(const char *url, const char *scratch_url)
{
    struct buf e = BUF_INIT(1024), sql = BUF_INIT(256);
    if (is_sqlite(url)) {
        const char *p = sqlite_path(scratch_url);
        (void)unlink(p);
        (void)buf_printf(&sql, "%s-wal", p);
        (void)unlink(buf_cstr(&sql));
        buf_reset(&sql);
        (void)buf_printf(&sql, "%s-shm", p);
        (void)unlink(buf_cstr(&sql));
    } else {
        char *name = pg_dbname(scratch_url);
        if (name && !strncmp(name, "temel_scratch_", 14)) {
            (void)buf_printf(&sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
            (void)pg_exec(url, buf_cstr(&sql), &e);
        }
        free(name);
    }
    buf_free(&e);
    buf_free(&sql);
}
