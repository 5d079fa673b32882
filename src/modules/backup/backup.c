/*
 * backup.c — manifests, retention, verify and restore over db/backup.h, the
 * CLI, the admin routes and the scheduled job (backup.h has the contract).
 */
#include "modules/backup/backup.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "db/backup.h"
#include "db/db.h"
#include "db/migrate.h"
#include "http/http.h"
#include "jobs/jobs.h"
#include "jobs/jobs_internal.h"
#include "modules/audit/audit.h"
#include "modules/credits/credits.h"
#include "storage/storage.h"

#include "core/banned.h"

#define MANIFEST_SUFFIX ".manifest.json"
#define MANIFEST_MAX (64u << 10)
#define LIST_MAX 10000 /* manifests read from one directory */

static struct {
    char *dir, *cron, *upload;
    int64_t keep;
} g;

static const char *engine_of(const char *url)
{
    return str_has_prefix(str_c(url), STRLIT("sqlite://")) ? "sqlite" : "postgres";
}

static int newest_known_version(const char *url)
{
    size_t n;
    const struct migration *ms =
        migrations_for(!strcmp(engine_of(url), "sqlite") ? DB_SQLITE : DB_POSTGRES, &n);
    return n ? ms[n - 1].version : 0;
}

static struct db *open_url(const char *url, struct buf *err)
{
    struct db_options o = {.busy_timeout_ms = 10000, .statement_timeout_ms = 0};
    return db_open(url, &o, err);
}

static int schema_version(const char *url, int *version, struct buf *err)
{
    int pending = 0;
    struct db *db = open_url(url, err);
    if (!db)
        return -1;
    int rc = migrate_current(db, version, &pending);
    if (rc != DB_OK)
        (void)buf_printf(err, "schema version: %s", db_errmsg(db));
    db_close(db);
    return rc == DB_OK ? 0 : -1;
}

/* ---- manifests ------------------------------------------------------------- */

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n > m && !strcmp(s + n - m, suf);
}

static json_t *read_manifest(const char *path, struct buf *err)
{
    json_error_t je;
    json_t *m = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!m || !json_is_object(m) || !json_is_string(json_object_get(m, "file")) ||
        !json_is_string(json_object_get(m, "sha256")) || !json_is_integer(json_object_get(m, "schema_version")) ||
        !json_is_string(json_object_get(m, "engine"))) {
        (void)buf_printf(err, "%s: not a temel backup manifest", path);
        json_decref(m);
        return NULL;
    }
    return m;
}

static int cmp_desc(const void *a, const void *b) { return strcmp(*(char *const *)b, *(char *const *)a); }

/* The manifests' names in dir, newest first (names sort by time). *n gets
 * the count; a missing directory is an empty list. Free with names_free. */
static char **manifest_names(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    size_t cap = 16;
    char **v = xcalloc(cap, sizeof(*v));
    struct dirent *e;
    *n = 0;
    while (d && (e = readdir(d)) && *n < LIST_MAX) {
        if (e->d_name[0] == '.' || !has_suffix(e->d_name, MANIFEST_SUFFIX))
            continue;
        if (*n + 1 == cap)
            v = xrealloc(v, st_mult(cap *= 2, sizeof(*v)));
        v[(*n)++] = xstrdup(e->d_name);
    }
    if (d)
        closedir(d);
    qsort(v, *n, sizeof(*v), cmp_desc);
    return v;
}

static void names_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static char *join(const char *dir, const char *name)
{
    struct buf b = BUF_INIT(8192);
    (void)buf_printf(&b, "%s/%s", dir, name);
    return buf_detach(&b, NULL);
}

/* Remove all but the newest keep backups of dir (copy and manifest). */
static void retain(const char *dir, int64_t keep)
{
    size_t n;
    char **v = manifest_names(dir, &n);
    for (size_t i = (size_t)keep; i < n; i++) {
        char *m = join(dir, v[i]);
        v[i][strlen(v[i]) - strlen(MANIFEST_SUFFIX)] = '\0';
        char *f = join(dir, v[i]);
        if (unlink(f) && errno != ENOENT)
            log_warn("backup retention: %s: %s", f, strerror(errno));
        (void)unlink(m);
        log_info("backup retention: removed %s", v[i]);
        free(m);
        free(f);
    }
    names_free(v, n);
}

/* ---- create ------------------------------------------------------------------ */

/* Put the copy and its manifest (in dir) under backups/ of the s3:// target
 * (storage/storage.h: TEMEL_STORAGE_URL's form, keys from AWS_*). */
static int upload(const struct config *cfg, const char *target, const char *dir, const char *name, struct buf *err)
{
    struct storage *st = NULL;
    int rc = -1;
    if (storage_open(target, cfg->data_dir, &st, err))
        return -1;
    if (storage_kind(st) != STORAGE_S3) {
        (void)buf_puts(err, "the upload target must be an s3:// URL");
        goto out;
    }
    rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        struct buf key = BUF_INIT(512), path = BUF_INIT(8192);
        (void)buf_printf(&key, "backups/%s%s", name, i ? MANIFEST_SUFFIX : "");
        (void)buf_printf(&path, "%s/%s%s", dir, name, i ? MANIFEST_SUFFIX : "");
        rc = storage_put_file(st, buf_cstr(&key), buf_cstr(&path), false,
                              i ? "application/json" : "application/octet-stream", err) == STORAGE_OK ? 0 : -1;
        buf_free(&key);
        buf_free(&path);
    }
out:
    storage_close(st);
    return rc;
}

/* Copy the database into dir; the manifest's JSON text goes to manifest.
 * dir may be an s3:// URL: the copy is made in TEMEL_BACKUP_DIR (kept there
 * under its retention) and uploaded; so is every copy when TEMEL_BACKUP_UPLOAD
 * names a target. */
static int backup_create(const struct config *cfg, const char *dir, struct buf *manifest, struct buf *err)
{
    const char *upload_to = g.upload;
    if (str_has_prefix(str_c(dir), STRLIT("s3://"))) {
        upload_to = dir;
        dir = g.dir;
    }
    char when[TIME_RFC3339_LEN + 1], stamp[32], sha[65];
    int64_t t0 = time_mono_ms(), now = time_now_ms(), size = 0;
    int version = 0, rc = -1;
    const char *engine = engine_of(cfg->database_url);
    struct buf name = BUF_INIT(256);
    char *path = NULL;
    if (fs_mkdir_p(dir, 0700)) {
        (void)buf_printf(err, "%s: %s", dir, strerror(errno));
        return -1;
    }
    time_format_rfc3339(now, when);
    /* 2026-12-04T17:00:00.123Z → 20261204T170000123Z: sortable, no ':' */
    size_t k = 0;
    for (const char *p = when; *p && k + 1 < sizeof(stamp); p++)
        if (*p != '-' && *p != ':' && *p != '.')
            stamp[k++] = *p;
    stamp[k] = '\0';
    (void)buf_printf(&name, "temel-%s-%s.%s", stamp, engine, !strcmp(engine, "sqlite") ? "sqlite" : "pgdump");
    path = join(dir, buf_cstr(&name));
    if (schema_version(cfg->database_url, &version, err) || db_dump(cfg->database_url, path, err) ||
        file_sha256_hex(path, sha, &size, err))
        goto out;
    json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:I,s:s,s:I}", "format", "temel-backup-v1", "file",
                          buf_cstr(&name), "engine", engine, "created_at", when, "schema_version", version, "sha256",
                          sha, "size", (json_int_t)size, "temel_version", TEMEL_VERSION, "duration_ms",
                          (json_int_t)(time_mono_ms() - t0));
    char *text = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(m);
    struct buf mname = BUF_INIT(300);
    (void)buf_printf(&mname, "%s%s", buf_cstr(&name), MANIFEST_SUFFIX);
    if (fs_write_atomic(dir, buf_cstr(&mname), str_c(text), 0600, err) == 0) {
        rc = upload_to ? upload(cfg, upload_to, dir, buf_cstr(&name), err) : 0;
        if (rc == 0) {
            (void)buf_puts(manifest, text);
        } else { /* not uploaded: no half backup stays behind */
            char *mpath = join(dir, buf_cstr(&mname));
            (void)unlink(mpath);
            free(mpath);
        }
    }
    buf_free(&mname);
    free(text);
out:
    if (rc)
        (void)unlink(path);
    else
        retain(dir, g.keep);
    free(path);
    buf_free(&name);
    return rc;
}

/* ---- verify and restore -------------------------------------------------------- */

/* FILE (the copy or its manifest) → the manifest and the copy's path; the
 * engine (DATABASE_URL's) and then the checksum are checked. */
static json_t *open_backup(const struct config *cfg, const char *file, char **copy_path, struct buf *err)
{
    struct buf mpath = BUF_INIT(8192);
    char sha[65];
    int64_t size = 0;
    if (has_suffix(file, MANIFEST_SUFFIX))
        (void)buf_puts(&mpath, file);
    else
        (void)buf_printf(&mpath, "%s%s", file, MANIFEST_SUFFIX);
    json_t *m = read_manifest(buf_cstr(&mpath), err);
    if (!m) {
        buf_free(&mpath);
        return NULL;
    }
    const char *engine = json_string_value(json_object_get(m, "engine"));
    struct buf cp = BUF_INIT(8192);
    if (strcmp(engine, engine_of(cfg->database_url))) {
        (void)buf_printf(err, "the copy is a %s backup; DATABASE_URL is %s", engine, engine_of(cfg->database_url));
        goto fail;
    }
    /* the copy sits next to its manifest, under the name the manifest gives */
    const char *slash = strrchr(buf_cstr(&mpath), '/');
    const char *fname = json_string_value(json_object_get(m, "file"));
    if (strchr(fname, '/') || fname[0] == '.') {
        (void)buf_puts(err, "manifest: bad file name");
        goto fail;
    }
    if (slash)
        (void)buf_append(&cp, buf_cstr(&mpath), (size_t)(slash - buf_cstr(&mpath)) + 1);
    (void)buf_puts(&cp, fname);
    if (file_sha256_hex(buf_cstr(&cp), sha, &size, err))
        goto fail;
    if (strcmp(sha, json_string_value(json_object_get(m, "sha256")))) {
        (void)buf_printf(err, "%s: SHA-256 mismatch (the copy was changed or damaged)", buf_cstr(&cp));
        goto fail;
    }
    buf_free(&mpath);
    *copy_path = buf_detach(&cp, NULL);
    return m;
fail:
    json_decref(m);
    buf_free(&mpath);
    buf_free(&cp);
    return NULL;
}

/* Load the copy into a scratch database and check it there: schema version,
 * the credit ledger, the audit chain. Findings go to out; 0 clean, 1 not. */
static int verify_copy(const struct config *cfg, const json_t *m, const char *copy, struct buf *out,
                       struct buf *err)
{
    char *scratch = NULL, *tmpdir = join(g.dir, ".verify");
    struct db *db = NULL;
    struct audit_verify av;
    int version = 0, rc = -1;
    if (db_scratch_create(cfg->database_url, tmpdir, &scratch, err))
        goto done;
    if (db_load(scratch, copy, err) || !(db = open_url(scratch, err)) || schema_version(scratch, &version, err))
        goto done;
    rc = 0;
    (void)buf_printf(out, "checksum: ok\nschema_version: %d\n", version);
    if (version != json_integer_value(json_object_get(m, "schema_version"))) {
        (void)buf_printf(out, "schema: manifest says %lld\n",
                         (long long)json_integer_value(json_object_get(m, "schema_version")));
        rc = 1;
    }
    struct buf ledger = BUF_INIT(4u << 20);
    int lrc = credits_verify(db, &ledger);
    (void)buf_printf(out, "ledger: %s\n", lrc == 0 ? "ok" : lrc > 0 ? "PROBLEMS" : "error");
    if (lrc)
        (void)buf_put(out, buf_str(&ledger));
    buf_free(&ledger);
    if (lrc)
        rc = 1;
    if (audit_verify(db, &av) != DB_OK) {
        (void)buf_puts(out, "audit chain: error\n");
        rc = 1;
    } else if (av.ok) {
        (void)buf_printf(out, "audit chain: ok (%lld entries)\n", (long long)av.entries);
    } else {
        (void)buf_printf(out, "audit chain: BROKEN at seq %lld (%s)\n", (long long)av.broken_seq, av.reason);
        rc = 1;
    }
done:
    if (db)
        db_close(db);
    if (scratch)
        db_scratch_drop(cfg->database_url, scratch);
    free(scratch);
    (void)rmdir(tmpdir);
    free(tmpdir);
    return rc;
}

/* ---- command line ------------------------------------------------------------ */

static void usage(void)
{
    fputs("usage: temel backup create [--to DIR] | list [--dir DIR] | verify FILE | restore FILE --yes\n", stderr);
}

static int cli_create(const struct config *cfg, int argc, char **argv)
{
    const char *dir = g.dir;
    struct buf m = BUF_INIT(MANIFEST_MAX), err = BUF_INIT(4096);
    if (argc == 2 && !strcmp(argv[0], "--to"))
        dir = argv[1];
    else if (argc != 0) {
        usage();
        return 2;
    }
    int rc = backup_create(cfg, dir, &m, &err);
    if (rc)
        fprintf(stderr, "temel: backup create: %s\n", buf_cstr(&err));
    else
        printf("%s\n", buf_cstr(&m));
    buf_free(&m);
    buf_free(&err);
    return rc ? 1 : 0;
}

static int cli_list(int argc, char **argv)
{
    const char *dir = g.dir;
    size_t n;
    if (argc == 2 && !strcmp(argv[0], "--dir"))
        dir = argv[1];
    else if (argc != 0) {
        usage();
        return 2;
    }
    char **v = manifest_names(dir, &n);
    for (size_t i = 0; i < n; i++) {
        struct buf err = BUF_INIT(1024);
        char *p = join(dir, v[i]);
        json_t *m = read_manifest(p, &err);
        if (m)
            printf("%s  %s  %s  schema %lld  %lld bytes  sha256 %s\n",
                   json_string_value(json_object_get(m, "created_at")), json_string_value(json_object_get(m, "file")),
                   json_string_value(json_object_get(m, "engine")),
                   (long long)json_integer_value(json_object_get(m, "schema_version")),
                   (long long)json_integer_value(json_object_get(m, "size")),
                   json_string_value(json_object_get(m, "sha256")));
        else
            fprintf(stderr, "temel: backup list: %s\n", buf_cstr(&err));
        json_decref(m);
        free(p);
        buf_free(&err);
    }
    names_free(v, n);
    return 0;
}

static int cli_verify(const struct config *cfg, const char *file)
{
    struct buf out = BUF_INIT(8u << 20), err = BUF_INIT(4096);
    char *copy = NULL;
    int rc = -1;
    json_t *m = open_backup(cfg, file, &copy, &err);
    if (m)
        rc = verify_copy(cfg, m, copy, &out, &err);
    fputs(buf_cstr(&out), stdout);
    if (rc < 0)
        fprintf(stderr, "temel: backup verify: %s\n", buf_cstr(&err));
    printf("verify: %s\n", rc == 0 ? "ok" : "FAILED");
    json_decref(m);
    free(copy);
    buf_free(&out);
    buf_free(&err);
    return rc == 0 ? 0 : 1;
}

static int cli_restore(const struct config *cfg, int argc, char **argv)
{
    struct buf err = BUF_INIT(4096);
    const char *file = NULL;
    bool yes = false;
    char *copy = NULL;
    int rc = 1;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--yes"))
            yes = true;
        else if (!file)
            file = argv[i];
        else {
            usage();
            return 2;
        }
    }
    if (!file) {
        usage();
        return 2;
    }
    json_t *m = open_backup(cfg, file, &copy, &err);
    if (!m) {
        fprintf(stderr, "temel: backup restore: %s\n", buf_cstr(&err));
        goto out;
    }
    int64_t version = json_integer_value(json_object_get(m, "schema_version"));
    int newest = newest_known_version(cfg->database_url);
    if (version > newest) {
        fprintf(stderr,
                "temel: backup restore: refused: the backup's schema version %lld is newer than this binary's %d "
                "(restore it with the temel that wrote it)\n",
                (long long)version, newest);
        goto out;
    }
    if (!yes) {
        fprintf(stderr, "temel: backup restore replaces every row of the database; stop the servers and add --yes\n");
        rc = 2;
        goto out;
    }
    int64_t t0 = time_mono_ms();
    if (db_load(cfg->database_url, copy, &err)) {
        fprintf(stderr, "temel: backup restore: %s\n", buf_cstr(&err));
        goto out;
    }
    printf("restored %s (schema %lld) in %lld ms; `temel migrate up` (or serve) applies newer migrations\n",
           json_string_value(json_object_get(m, "file")), (long long)version, (long long)(time_mono_ms() - t0));
    rc = 0;
out:
    json_decref(m);
    free(copy);
    buf_free(&err);
    return rc;
}

int backup_cli(const struct config *cfg, int argc, char **argv)
{
    if (argc < 1) {
        usage();
        return 2;
    }
    if (!strcmp(argv[0], "create"))
        return cli_create(cfg, argc - 1, argv + 1);
    if (!strcmp(argv[0], "list"))
        return cli_list(argc - 1, argv + 1);
    if (!strcmp(argv[0], "verify") && argc == 2)
        return cli_verify(cfg, argv[1]);
    if (!strcmp(argv[0], "restore"))
        return cli_restore(cfg, argc - 1, argv + 1);
    usage();
    return 2;
}

/* ---- the job and the admin routes ---------------------------------------------- */

static enum job_result job_create(struct job *j, struct buf *result, struct buf *error)
{
    struct buf m = BUF_INIT(MANIFEST_MAX), err = BUF_INIT(4096);
    int rc = backup_create(j->cfg, g.dir, &m, &err);
    if (rc) {
        log_error("backup job %s: %s", j->id, buf_cstr(&err));
        (void)buf_put(error, buf_str(&err));
    } else {
        (void)buf_put(result, buf_str(&m));
    }
    buf_free(&m);
    buf_free(&err);
    return rc ? JOB_RETRY : JOB_OK;
}

static const struct job_kind create_kind = {
    .kind = "backup.create", .handler = job_create, .queue = "backups", .timeout_ms = 3600000};

static int h_list(struct req *r)
{
    static const char *const allowed[] = {NULL};
    size_t n;
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    char **v = manifest_names(g.dir, &n);
    size_t first = (size_t)((r->page - 1) * r->limit), last = first + (size_t)r->limit;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "data");
    jw_arr_begin(&r->w);
    for (size_t i = first; i < n && i < last; i++) {
        struct buf err = BUF_INIT(1024);
        char *p = join(g.dir, v[i]);
        json_t *m = read_manifest(p, &err);
        if (m)
            jw_json(&r->w, m);
        json_decref(m);
        free(p);
        buf_free(&err);
    }
    jw_arr_end(&r->w);
    http_write_page_meta(r, (int64_t)n);
    jw_obj_end(&r->w);
    names_free(v, n);
    return 0;
}

struct enq {
    char id[37];
    bool existing;
};

static int tx_enqueue(struct req *r, void *arg)
{
    struct enq *c = arg;
    struct job_opts o = JOB_OPTS_DEFAULT;
    o.unique_key = "backup.create";
    o.max_attempts = 1;
    int rc = jobs_enqueue(r->db, "backup.create", STRLIT("{}"), &o, c->id);
    if (rc < 0)
        return rc;
    c->existing = rc == JOBS_EDUPLICATE;
    struct audit_entry e = {.action = "backup.create", .category = "backups", .target_type = "job",
                            .target_id = str_c(c->id), .success = true};
    return audit_record_req(r, &e);
}

static int h_create(struct req *r)
{
    struct enq c = {0};
    if (req_tx(r, DB_TX_WRITE, tx_enqueue, &c))
        return HTTP_EFAIL;
    r->status = 202;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "data");
    jw_obj_begin(&r->w);
    jw_key(&r->w, "job_id");
    jw_cstr(&r->w, c.id);
    jw_key(&r->w, "already_queued");
    jw_bool(&r->w, c.existing);
    jw_key(&r->w, "dir");
    jw_cstr(&r->w, g.dir);
    jw_obj_end(&r->w);
    jw_obj_end(&r->w);
    return 0;
}

static const struct json_field no_fields[] = {{0}};
static const struct json_schema empty_body = {.fields = no_fields};

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/admin/backups", .handler = h_list, .auth = AUTH_ADMIN, .rl = RL_READ,
     .summary = "Backups in TEMEL_BACKUP_DIR (their manifests), newest first", .tag = "admin",
     .flags = ROUTE_NO_BODY | ROUTE_PAGINATED,
     .output = OPENAPI_JSON({"type": "object", "properties": {
         "format": {"type": "string", "enum": ["temel-backup-v1"]}, "file": {"type": "string"},
         "engine": {"type": "string", "enum": ["sqlite", "postgres"]}, "created_at": {"type": "string", "format": "date-time"},
         "schema_version": {"type": "integer"}, "sha256": {"type": "string"}, "size": {"type": "integer"},
         "temel_version": {"type": "string"}, "duration_ms": {"type": "integer"}},
         "required": ["file", "engine", "created_at", "schema_version", "sha256", "size"]})},
    {.method = "POST", .pattern = "/api/v1/admin/backups", .handler = h_create, .auth = AUTH_ADMIN, .rl = RL_WRITE,
     .input = &empty_body, .summary = "Start a backup (a backup.create job; 202 with its id)", .tag = "admin",
     .flags = ROUTE_BODY_OPTIONAL,
     .output = OPENAPI_JSON({"type": "object", "properties": {"data": {"type": "object", "properties": {
         "job_id": {"type": "string", "format": "uuid"}, "already_queued": {"type": "boolean"}, "dir": {"type": "string"}},
         "required": ["job_id", "already_queued", "dir"]}}, "required": ["data"]})},
};

static void register_routes(void) { router_add(routes, ARRAY_LEN(routes)); }

static void register_jobs(void)
{
    jobs_register(&create_kind);
    jobs_queue_limit("backups", 1);
    if (g.cron)
        cron_register("backup", g.cron, "backup.create", "{}");
}

static int config(const struct config *cfg, struct buf *err)
{
    struct cron_expr ce;
    struct buf d = BUF_INIT(4096);
    free(g.dir);
    free(g.cron);
    g.dir = config_env_dup("TEMEL_BACKUP_DIR");
    if (!g.dir || !*g.dir) {
        free(g.dir);
        (void)buf_printf(&d, "%s/backups", cfg->data_dir);
        g.dir = buf_detach(&d, NULL);
    }
    free(g.upload);
    g.upload = config_env_dup("TEMEL_BACKUP_UPLOAD");
    if (g.upload && !*g.upload) {
        free(g.upload);
        g.upload = NULL;
    }
    if (g.upload && !str_has_prefix(str_c(g.upload), STRLIT("s3://"))) {
        (void)buf_puts(err, "TEMEL_BACKUP_UPLOAD: must be an s3://bucket?endpoint=...&region=... URL");
        return -1;
    }
    g.cron = config_env_dup("TEMEL_BACKUP_CRON");
    if (g.cron && !*g.cron) {
        free(g.cron);
        g.cron = NULL;
    }
    if (g.cron && cron_parse(g.cron, &ce, err)) {
        struct buf why = BUF_INIT(512);
        (void)buf_put(&why, buf_str(err));
        buf_reset(err);
        (void)buf_printf(err, "TEMEL_BACKUP_CRON: %s", buf_cstr(&why));
        buf_free(&why);
        return -1;
    }
    return config_env_int("TEMEL_BACKUP_KEEP", 7, 1, 10000, &g.keep, err);
}

const struct module backup_module = {
    .name = "backup",
    .config = config,
    .register_routes = register_routes,
    .register_jobs = register_jobs,
};
