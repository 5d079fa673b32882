/*
 * config.h — settings from the environment (and an optional .env file whose
 * values never override the real environment), validated once at start.
 * A bad value is an error naming the variable; main() exits 2 with it.
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
    char *cors_origins[CONFIG_MAX_CORS];
    int n_cors;
    bool trust_proxy;
    char *metrics_token;    /* NULL = open */
    enum log_level log_level;
    enum log_format log_format;
    char *tls_cert, *tls_key;
    int64_t request_timeout_ms;
    int db_pool;            /* TEMEL_DB_POOL: PostgreSQL connections per event-loop thread (default 4) */
    /* ---- jobs (src/jobs: queue, runner, scheduler) ---- */
    int job_threads;             /* TEMEL_JOB_THREADS: runner threads in serve (default 2, 0 = none) */
    int64_t job_poll_ms;         /* TEMEL_JOB_POLL_MS: idle poll for jobs enqueued elsewhere (200) */
    int64_t job_lease_margin_ms; /* TEMEL_JOB_LEASE_MARGIN_MS: lease = job timeout + this (5000) */
    int64_t job_backoff_ms;      /* TEMEL_JOB_BACKOFF_MS: retry backoff base (5000) */
    int64_t job_retention_days;  /* TEMEL_JOB_RETENTION_DAYS: purge succeeded/cancelled after (7) */
    int64_t job_drain_ms;        /* TEMEL_JOB_DRAIN_MS: shutdown wait for running jobs (10000) */
    /* ---- end jobs ---- */
    struct rl_rule rate[RL_NCLASSES];
    char *data_dir;         /* for disk checks, secrets; default "data" */
    /* identity */
    char *jwt_secret;       /* TEMEL_JWT_SECRET (>= 32 bytes); required in production,
                               else generated once into <data_dir>/jwt.secret */
    int64_t access_ttl_s, refresh_ttl_s;
    int64_t refresh_grace_ms; /* a used refresh token may be retried this long (lost response) */
    char *admin_email, *admin_password; /* bootstrap admin on first start */
    /* ---- delivery (src/jobs: http_client, mail, sms) ---- */
    char *mail_url;       /* TEMEL_MAIL_URL: smtp[s]://[user:pass@]host[:port] or file:///dir;
                             default file://<data_dir>/mail */
    char *mail_from;      /* TEMEL_MAIL_FROM: "Name <addr>" or addr; default "temel <noreply@localhost>" */
    char *sms_url;        /* TEMEL_SMS_URL: file:///dir or https://[user:pass@]provider/...;
                             default file://<data_dir>/sms */
    char *sms_from;       /* TEMEL_SMS_FROM: sender number/name; required with an HTTP provider */
    char *outbound_allow; /* TEMEL_OUTBOUND_ALLOW: hosts, IPs, CIDRs the outbound client may reach
                             although private/loopback/link-local; NULL = none */
    /* ---- end delivery ---- */
    /* ---- ai (src/modules/ai) ---- */
    char *secret_key;           /* TEMEL_SECRET_KEY (>= 32 chars): encrypts provider keys at rest; required in
                                   production, else generated once into <data_dir>/secret.key */
    int64_t ai_cache_ttl_s;     /* TEMEL_AI_CACHE_TTL_S: response cache lifetime (86400; 0 = no cache) */
    int64_t ai_timeout_ms;      /* TEMEL_AI_TIMEOUT_MS: one "ai.run" attempt, provider call included (60000) */
    int64_t ai_max_attempts;    /* TEMEL_AI_MAX_ATTEMPTS: tries per AI job before it is refunded (3) */
    int64_t ai_abuse_threshold; /* TEMEL_AI_ABUSE_THRESHOLD: suspicion score that flags a user (70) */
    /* ---- end ai ---- */
};

extern const char *const rl_class_names[RL_NCLASSES]; /* "read", "write", ... */

/* Load .env from path (missing file is fine) into the process environment
 * without overriding variables already set. Malformed lines are an error. */
int config_load_dotenv(const char *path, struct buf *err) WARN_UNUSED;
/* Fill c from the environment; 0, or -1 with "VAR: reason" in err. */
int config_from_env(struct config *c, struct buf *err) WARN_UNUSED;
void config_free(struct config *c);
/* Parse "N/S" (N requests per S seconds). */
int config_parse_rate(const char *s, struct rl_rule *out) WARN_UNUSED;

#endif
