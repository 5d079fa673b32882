/*
 * config.h — the core settings from the environment (and an optional .env
 * file whose values never override the real environment), validated once at
 * start. A bad value is an error naming the variable; main() exits 2 with it.
 *
 * Only what the core floors use lives here (listen address, database,
 * environment, threads, timeouts, CORS, logging, TLS, rate limits, data
 * directory, the process secret). A module reads its own variables in its
 * `config` hook (core/module.h) with the config_env_* helpers below, and
 * keeps the values itself.
 */
#ifndef TEMEL_CONFIG_H
#define TEMEL_CONFIG_H

#include "core/buf.h"

enum temel_env { ENV_DEVELOPMENT, ENV_PRODUCTION, ENV_TEST };
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_JSON, LOG_TEXT };

/* Rate-limit classes (API.md §1). RL_NONE routes are never limited. */
enum rl_class { RL_READ, RL_WRITE, RL_AUTH, RL_AI, RL_EMAIL, RL_NCLASSES, RL_NONE = RL_NCLASSES };

struct rl_rule {
    int64_t limit;    /* requests ... */
    int64_t period_s; /* ... per this many seconds */
};

#define CONFIG_MAX_CORS 32

struct config {
    char *host;
    int port;
    char *database_url;
    enum temel_env env;
    int threads;            /* event-loop threads */
    int max_connections;    /* TEMEL_MAX_CONNECTIONS: open client connections per loop (default 10000) */
    int cpu_threads;        /* TEMEL_CPU_THREADS: worker threads for argon2id etc. (default: cores) */
    int cpu_queue;          /* TEMEL_CPU_QUEUE: requests admitted to the worker pool at once (default 64) */
    char *cors_origins[CONFIG_MAX_CORS];
    int n_cors;
    bool trust_proxy;
    char *metrics_token;    /* NULL = open */
    enum log_level log_level;
    enum log_format log_format;
    char *tls_cert, *tls_key;
    int64_t request_timeout_ms;
    int db_pool;            /* TEMEL_DB_POOL: PostgreSQL connections per event-loop thread (default 4) */
    struct rl_rule rate[RL_NCLASSES];
    char *data_dir;         /* for disk checks, secrets; default "data" */
    char *secret_key;       /* TEMEL_SECRET_KEY (>= 32 chars): the process secret (AI provider keys at rest,
                               the audit chain's MAC); required in production, else generated once into
                               <data_dir>/secret.key by its users */
};

extern const char *const rl_class_names[RL_NCLASSES]; /* "read", "write", ... */

/* Load .env from path (missing file is fine) into the process environment
 * without overriding variables already set. Malformed lines are an error. */
int config_load_dotenv(const char *path, struct buf *err) WARN_UNUSED;
/* One .env line of n bytes, modified in place (fuzzed: tests/fuzz/fuzz_dotenv.c):
 * 0 blank or comment; 1 a pair, *key and *value point into line ("export "
 * dropped, spaces around the key trimmed, one pair of matching quotes around
 * the value removed); -1 not KEY=VALUE; -2 a key outside [A-Za-z0-9_]. */
int config_dotenv_line(char *line, size_t n, char **key, char **value);
/* Fill c from the environment; 0, or -1 with "VAR: reason" in err. */
int config_from_env(struct config *c, struct buf *err) WARN_UNUSED;
void config_free(struct config *c);
/* Parse "N/S" (N requests per S seconds). */
int config_parse_rate(const char *s, struct rl_rule *out) WARN_UNUSED;

/* Helpers for config hooks. Each reads one variable (unset or empty = the
 * default) and returns 0, or -1 with "NAME: reason" in err. */
int config_env_int(const char *name, int64_t def, int64_t min, int64_t max, int64_t *out, struct buf *err) WARN_UNUSED;
int config_env_bool(const char *name, bool def, bool *out, struct buf *err) WARN_UNUSED;
/* A malloc'd copy of the variable's value, or NULL when unset or empty. */
char *config_env_dup(const char *name);

#endif
