/*
 * main.c — the command line. Thin: every command is a call into src/.
 *
 *   temel serve                   migrate up, then serve HTTP (and run jobs) until SIGTERM
 *   temel worker                  migrate up, then run jobs only (no HTTP) until SIGTERM
 *   temel migrate up|down [N]|status
 *   temel user create [--admin|--moderator] --email E --password P [--name N]
 *   temel ledger verify           recompute every credit balance from the log (exit 1 on a difference)
 *   temel backup create [--to DIR] | list [--dir DIR] | verify FILE | restore FILE --yes
 *   temel openapi                 print the OpenAPI document
 *   temel version
 *
 * Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.
 */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "redis/redis.h"
#include "core/config.h"
#include "core/log.h"
#include "core/module.h"
#include "core/timeutil.h"
#include "db/db.h"
#include "db/migrate.h"
#include "http/idempotency.h"
#include "http/server.h"
#include "jobs/jobs.h"
#include "modules/backup/backup.h"
#include "modules/credits/credits.h"
#include "modules/users/identity.h"

#include "core/banned.h"

static void usage(void)
{
    fputs("usage: temel serve | worker | migrate up|down [N]|status | seed | openapi | version\n"
          "       temel user create [--admin|--moderator] --email E --password P [--name N]\n"
          "       temel ledger verify\n"
          "       temel backup create [--to DIR] | list [--dir DIR] | verify FILE | restore FILE --yes\n",
          stderr);
}

static int load_config(struct config *cfg)
{
    struct buf err = BUF_INIT(1024);
    if (config_load_dotenv(".env", &err) || config_from_env(cfg, &err) || redis_config(&err) || modules_config(cfg, &err)) {
        fprintf(stderr, "temel: config: %s\n", buf_cstr(&err));
        buf_free(&err);
        return -1;
    }
    buf_free(&err);
    log_init(cfg->log_level, cfg->log_format);
    return 0;
}

static struct db *open_db(const struct config *cfg)
{
    struct buf err = BUF_INIT(1024);
    struct db_options o = {.busy_timeout_ms = 5000, .statement_timeout_ms = 0};
    struct db *db = db_open(cfg->database_url, &o, &err);
    if (!db)
        fprintf(stderr, "temel: database: %s\n", buf_cstr(&err));
    buf_free(&err);
    return db;
}

static int cmd_migrate(const struct config *cfg, int argc, char **argv)
{
    struct buf out = BUF_INIT(1u << 20);
    int64_t steps = 0;
    int rc;
    if (argc < 1) {
        usage();
        return 2;
    }
    if (argc >= 2 && parse_i64(str_c(argv[1]), 1, 100000, &steps)) {
        fprintf(stderr, "temel: migrate: N must be a positive integer\n");
        return 2;
    }
    struct db *db = open_db(cfg);
    if (!db)
        return 1;
    if (!strcmp(argv[0], "up"))
        rc = migrate_up(db, (int)steps, &out);
    else if (!strcmp(argv[0], "down"))
        rc = migrate_down(db, steps ? (int)steps : 1, &out);
    else if (!strcmp(argv[0], "status"))
        rc = migrate_status(db, &out);
    else {
        db_close(db);
        usage();
        return 2;
    }
    fputs(buf_cstr(&out), stdout);
    if (rc != DB_OK)
        fprintf(stderr, "temel: migrate %s failed: %s\n", argv[0], db_errmsg(db));
    db_close(db);
    buf_free(&out);
    return rc == DB_OK ? 0 : 1;
}

/* Migrate up, register module jobs, run module init hooks. */
static int prepare(const struct config *cfg)
{
    struct buf out = BUF_INIT(1u << 20);
    struct db *db = open_db(cfg);
    int rc = 1;
    if (!db)
        return 1;
    if (migrate_up(db, 0, &out) != DB_OK) {
        fprintf(stderr, "temel: migrations failed: %s\n%s", db_errmsg(db), buf_cstr(&out));
        goto out;
    }
    if (out.len)
        log_info("migrations: %.*s", (int)(out.ptr[out.len - 1] == '\n' ? out.len - 1 : out.len), buf_cstr(&out));
    jobs_maintenance_register("idempotency_keys", idempotency_purge);
    for (const struct module *const *m = temel_modules; *m; m++)
        if ((*m)->register_jobs)
            (*m)->register_jobs();
    for (const struct module *const *m = temel_modules; *m; m++) {
        buf_reset(&out);
        if ((*m)->init && (*m)->init(cfg, db, &out)) {
            fprintf(stderr, "temel: %s: %s\n", (*m)->name, buf_cstr(&out));
            goto out;
        }
    }
    rc = 0;
out:
    buf_free(&out);
    db_close(db);
    return rc;
}

/* `temel seed`: migrate, init, then every module's idempotent seed hook. */
static int cmd_seed(const struct config *cfg)
{
    struct buf out = BUF_INIT(64u << 10);
    struct db *db;
    int rc = 0;
    if (prepare(cfg) || !(db = open_db(cfg)))
        return 1;
    for (const struct module *const *m = temel_modules; *m && rc == 0; m++) {
        buf_reset(&out);
        if ((*m)->seed && (*m)->seed(db, &out)) {
            fprintf(stderr, "temel: seed %s: %s\n", (*m)->name, buf_cstr(&out));
            rc = 1;
        } else {
            fputs(buf_cstr(&out), stdout);
        }
    }
    db_close(db);
    buf_free(&out);
    return rc;
}

/* The job runner, inside serve or alone in `temel worker` (src/jobs/jobs.h). */
/* Block SIGTERM/SIGINT in this thread before any thread starts, so every
 * thread inherits the mask and only sigwait() sees them. */
static void block_stop_signals(sigset_t *sigs)
{
    sigemptyset(sigs);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
}

static struct jobs_runner *start_runner(const struct config *cfg, int threads)
{
    struct buf err = BUF_INIT(1024);
    struct jobs_runner *r = jobs_runner_start(cfg, threads, &err);
    if (!r)
        fprintf(stderr, "temel: job runner: %s\n", buf_cstr(&err));
    buf_free(&err);
    return r;
}

static int cmd_worker(const struct config *cfg)
{
    sigset_t sigs;
    int sig = 0;
    const struct jobs_config *jc = jobs_config();
    if (jc->threads < 1) {
        fputs("temel: worker: TEMEL_JOB_THREADS must be at least 1\n", stderr);
        return 2;
    }
    if (prepare(cfg))
        return 1;
    block_stop_signals(&sigs);
    struct jobs_runner *r = start_runner(cfg, jc->threads);
    if (!r)
        return 1;
    sigwait(&sigs, &sig);
    log_info("signal %d: stopping the job runner", sig);
    jobs_runner_stop(r, time_mono_ms() + jc->drain_ms);
    return 0;
}

static int cmd_user(const struct config *cfg, int argc, char **argv)
{
    const char *email = NULL, *password = NULL, *name = "", *role = "user";
    struct buf err = BUF_INIT(1024), out = BUF_INIT(1u << 20);
    int rc;
    if (argc < 1 || strcmp(argv[0], "create")) {
        usage();
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--admin"))
            role = "admin";
        else if (!strcmp(argv[i], "--moderator"))
            role = "moderator";
        else if (!strcmp(argv[i], "--email") && i + 1 < argc)
            email = argv[++i];
        else if (!strcmp(argv[i], "--password") && i + 1 < argc)
            password = argv[++i];
        else if (!strcmp(argv[i], "--name") && i + 1 < argc)
            name = argv[++i];
        else {
            usage();
            return 2;
        }
    }
    if (!email || !password) {
        usage();
        return 2;
    }
    struct db *db = open_db(cfg);
    if (!db)
        return 1;
    if (migrate_up(db, 0, &out) != DB_OK) {
        fprintf(stderr, "temel: migrations failed: %s\n", db_errmsg(db));
        db_close(db);
        buf_free(&out);
        return 1;
    }
    rc = identity_create_user(db, email, password, name, role, &err);
    if (rc)
        fprintf(stderr, "temel: user create: %s\n", buf_cstr(&err));
    else
        printf("created %s user %s\n", role, email);
    db_close(db);
    buf_free(&err);
    buf_free(&out);
    /* invalid input is a usage error (2); a duplicate or database failure is 1 */
    return rc == 0 ? 0 : rc > 0 ? 2 : 1;
}

static int cmd_ledger(const struct config *cfg, int argc, char **argv)
{
    struct buf out = BUF_INIT(4u << 20);
    if (argc < 1 || strcmp(argv[0], "verify")) {
        usage();
        return 2;
    }
    struct db *db = open_db(cfg);
    if (!db)
        return 1;
    int rc = credits_verify(db, &out);
    fputs(buf_cstr(&out), stdout);
    if (rc < 0)
        fprintf(stderr, "temel: ledger verify: %s\n", db_errmsg(db));
    db_close(db);
    buf_free(&out);
    return rc == 0 ? 0 : 1;
}

static int cmd_serve(const struct config *cfg)
{
    const struct jobs_config *jc = jobs_config();
    struct jobs_runner *jr = NULL;
    sigset_t sigs;
    if (prepare(cfg))
        return 1;
    server_init(cfg);
    if (jc->threads > 0) {
        block_stop_signals(&sigs); /* runner threads must not take SIGTERM */
        if (!(jr = start_runner(cfg, jc->threads)))
            return 1;
    }
    int rc = server_run();
    jobs_runner_stop(jr, time_mono_ms() + jc->drain_ms);
    return rc;
}

int main(int argc, char **argv)
{
    struct config cfg;
    const char *cmd = argc > 1 ? argv[1] : "";
    int rc;

    /* glibc returns memory at the top of a thread's arena to the kernel as
     * soon as it exceeds the trim threshold (128 KiB): on a server that
     * frees per-request buffers that is an madvise() with a TLB shootdown
     * across every core, many times a second (perf: 18% of the cycles of a
     * cart write on SQLite). Fixed thresholds keep freed memory for reuse;
     * the peak RSS is unchanged. docs/PERFORMANCE.md, "Runtime issue". */
    (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
    (void)mallopt(M_MMAP_THRESHOLD, 4 << 20);

    if (sodium_init() < 0) {
        fputs("temel: libsodium failed to initialise\n", stderr);
        return 1;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        puts("temel " TEMEL_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage();
        return 0;
    }
    if (strcmp(cmd, "serve") && strcmp(cmd, "worker") && strcmp(cmd, "migrate") && strcmp(cmd, "openapi") &&
        strcmp(cmd, "user") && strcmp(cmd, "ledger") && strcmp(cmd, "seed") && strcmp(cmd, "backup")) {
        usage();
        return 2;
    }
    if (load_config(&cfg)) {
        config_free(&cfg);
        return 2;
    }
    if (!strcmp(cmd, "serve")) {
        rc = cmd_serve(&cfg);
    } else if (!strcmp(cmd, "worker")) {
        rc = cmd_worker(&cfg);
    } else if (!strcmp(cmd, "migrate")) {
        rc = cmd_migrate(&cfg, argc - 2, argv + 2);
    } else if (!strcmp(cmd, "user")) {
        rc = cmd_user(&cfg, argc - 2, argv + 2);
    } else if (!strcmp(cmd, "ledger")) {
        rc = cmd_ledger(&cfg, argc - 2, argv + 2);
    } else if (!strcmp(cmd, "backup")) {
        rc = backup_cli(&cfg, argc - 2, argv + 2);
    } else if (!strcmp(cmd, "seed")) {
        rc = cmd_seed(&cfg);
    } else {
        server_init(&cfg);
        str_t doc = ops_openapi_json();
        fwrite(doc.p, 1, doc.len, stdout);
        fputc('\n', stdout);
        rc = 0;
    }
    config_free(&cfg);
    return rc;
}
