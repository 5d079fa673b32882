/* config.c — environment configuration, see config.h. */
#include "core/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/banned.h"

const char *const rl_class_names[RL_NCLASSES] = {"read", "write", "auth", "ai", "email"};
static const char *const rl_env_names[RL_NCLASSES] = {"TEMEL_RATE_LIMIT_READ", "TEMEL_RATE_LIMIT_WRITE",
                                                      "TEMEL_RATE_LIMIT_AUTH", "TEMEL_RATE_LIMIT_AI",
                                                      "TEMEL_RATE_LIMIT_EMAIL"};
static const struct rl_rule rl_defaults[RL_NCLASSES] = {{600, 60}, {120, 60}, {10, 60}, {30, 60}, {5, 60}};

static int trim_end(char *s, size_t n)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return (int)n;
}

int config_dotenv_line(char *line, size_t n, char **key, char **value)
{
    char *p = line, *eq, *val;
    trim_end(line, n);
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0' || *p == '#')
        return 0;
    if (strncmp(p, "export ", 7) == 0)
        p += 7;
    eq = strchr(p, '=');
    if (!eq || eq == p)
        return -1;
    *eq = '\0';
    trim_end(p, strlen(p));
    if (!*p)
        return -1;
    for (char *k = p; *k; k++)
        if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_'))
            return -2;
    val = eq + 1;
    while (*val == ' ' || *val == '\t')
        val++;
    size_t vl = strlen(val);
    if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
        val[vl - 1] = '\0';
        val++;
    }
    *key = p;
    *value = val;
    return 1;
}

int config_load_dotenv(const char *path, struct buf *err)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, *key, *val;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = 0;
    if (!f)
        return errno == ENOENT ? 0 : (buf_printf(err, "%s: cannot read: %s", path, strerror(errno)), -1);
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        int lr = config_dotenv_line(line, (size_t)n, &key, &val);
        if (lr == 0)
            continue;
        if (lr < 0) {
            (void)buf_printf(err, "%s:%d: %s", path, lineno, lr == -1 ? "expected KEY=VALUE" : "invalid variable name");
            rc = -1;
            break;
        }
        if (setenv(key, val, 0) != 0) {
            (void)buf_printf(err, "%s:%d: setenv failed", path, lineno);
            rc = -1;
            break;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

int config_parse_rate(const char *s, struct rl_rule *out)
{
    const char *slash = strchr(s, '/');
    int64_t n, p;
    if (!slash)
        return -1;
    if (parse_i64(str_make(s, (size_t)(slash - s)), 1, 1000000000, &n) ||
        parse_i64(str_c(slash + 1), 1, 86400 * 31, &p))
        return -1;
    out->limit = n;
    out->period_s = p;
    return 0;
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

int config_env_int(const char *name, int64_t def, int64_t min, int64_t max, int64_t *out, struct buf *err)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    if (parse_i64(str_c(v), min, max, out)) {
        (void)buf_printf(err, "%s: must be an integer in %lld..%lld", name, (long long)min, (long long)max);
        return -1;
    }
    return 0;
}

int config_env_bool(const char *name, bool def, bool *out, struct buf *err)
{
    const char *v = getenv(name);
    if (!v || !*v)
        *out = def;
    else if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"))
        *out = true;
    else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no"))
        *out = false;
    else {
        (void)buf_printf(err, "%s: must be 0 or 1", name);
        return -1;
    }
    return 0;
}

static int env_enum(const char *name, const char *def, const char *const *names, int *out, struct buf *err)
{
    const char *v = env_or(name, def);
    for (int i = 0; names[i]; i++)
        if (!strcmp(v, names[i])) {
            *out = i;
            return 0;
        }
    (void)buf_printf(err, "%s: must be one of", name);
    for (int i = 0; names[i]; i++)
        (void)buf_printf(err, "%s %s", i ? "," : "", names[i]);
    return -1;
}

static char *dup_or_null(const char *v) { return v && *v ? xstrdup(v) : NULL; }

char *config_env_dup(const char *name) { return dup_or_null(getenv(name)); }

static bool origin_ok(const char *o)
{
    /* scheme://host[:port], no path, no wildcard */
    const char *p = strstr(o, "://");
    if (!p || (strncmp(o, "http://", 7) && strncmp(o, "https://", 8)))
        return false;
    p += 3;
    if (!*p)
        return false;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '-' || *p == ':' || *p == '[' || *p == ']'))
            return false;
    return true;
}

int config_from_env(struct config *c, struct buf *err)
{
    static const char *const envs[] = {"development", "production", "test", NULL};
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    static const char *const formats[] = {"json", "text", NULL};
    int64_t v;
    int e;
    memset(c, 0, sizeof(*c));

    c->host = xstrdup(env_or("HOST", "127.0.0.1"));
    if (config_env_int("PORT", 8080, 1, 65535, &v, err))
        return -1;
    c->port = (int)v;

    c->database_url = xstrdup(env_or("DATABASE_URL", "sqlite://data/temel.db"));
    if (strncmp(c->database_url, "sqlite://", 9) && strncmp(c->database_url, "postgres://", 11) &&
        strncmp(c->database_url, "postgresql://", 13)) {
        (void)buf_puts(err, "DATABASE_URL: must start with sqlite://, postgres:// or postgresql://");
        return -1;
    }
    if (!strncmp(c->database_url, "sqlite://", 9) && c->database_url[9] == '\0') {
        (void)buf_puts(err, "DATABASE_URL: sqlite:// needs a path");
        return -1;
    }

    if (env_enum("TEMEL_ENV", "development", envs, &e, err))
        return -1;
    c->env = (enum temel_env)e;

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (config_env_int("TEMEL_THREADS", ncpu > 0 ? ncpu : 1, 1, 256, &v, err))
        return -1;
    c->threads = (int)v;
    if (config_env_int("TEMEL_MAX_CONNECTIONS", 10000, 1, 1000000, &v, err))
        return -1;
    c->max_connections = (int)v;
    if (config_env_int("TEMEL_CPU_THREADS", ncpu > 0 ? ncpu : 1, 1, 64, &v, err))
        return -1;
    c->cpu_threads = (int)v;
    if (config_env_int("TEMEL_CPU_QUEUE", 64, 1, 100000, &v, err))
        return -1;
    c->cpu_queue = (int)v;

    const char *cors = getenv("TEMEL_CORS_ORIGINS");
    if (cors && *cors) {
        const char *p = cors;
        while (*p) {
            const char *end = strchr(p, ',');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            while (n && (*p == ' '))
                p++, n--;
            while (n && (p[n - 1] == ' ' || p[n - 1] == '/'))
                n--;
            if (n) {
                char *o = xstrndup(p, n);
                if (!origin_ok(o) || c->n_cors == CONFIG_MAX_CORS) {
                    (void)buf_printf(err, "TEMEL_CORS_ORIGINS: %s",
                                     c->n_cors == CONFIG_MAX_CORS ? "too many origins (max 32)"
                                                                  : "each origin must be http(s)://host[:port]; '*' "
                                                                    "is not allowed");
                    free(o);
                    return -1;
                }
                c->cors_origins[c->n_cors++] = o;
            }
            if (!end)
                break;
            p = end + 1;
        }
    }

    if (config_env_bool("TEMEL_TRUST_PROXY", false, &c->trust_proxy, err))
        return -1;
    c->metrics_token = dup_or_null(getenv("TEMEL_METRICS_TOKEN"));
    if (env_enum("TEMEL_LOG_LEVEL", "info", levels, &e, err))
        return -1;
    c->log_level = (enum log_level)e;
    if (env_enum("TEMEL_LOG_FORMAT", "json", formats, &e, err))
        return -1;
    c->log_format = (enum log_format)e;

    c->tls_cert = dup_or_null(getenv("TEMEL_TLS_CERT"));
    c->tls_key = dup_or_null(getenv("TEMEL_TLS_KEY"));
    if (!!c->tls_cert != !!c->tls_key) {
        (void)buf_puts(err, c->tls_cert ? "TEMEL_TLS_KEY: required when TEMEL_TLS_CERT is set"
                                        : "TEMEL_TLS_CERT: required when TEMEL_TLS_KEY is set");
        return -1;
    }
    if (c->tls_cert && (access(c->tls_cert, R_OK) || access(c->tls_key, R_OK))) {
        (void)buf_puts(err, access(c->tls_cert, R_OK) ? "TEMEL_TLS_CERT: file not readable"
                                                      : "TEMEL_TLS_KEY: file not readable");
        return -1;
    }

    if (config_env_int("TEMEL_REQUEST_TIMEOUT_MS", 10000, 50, 600000, &c->request_timeout_ms, err))
        return -1;
    if (config_env_int("TEMEL_DB_POOL", 4, 1, 64, &v, err))
        return -1;
    c->db_pool = (int)v;

    for (int i = 0; i < RL_NCLASSES; i++) {
        const char *r = getenv(rl_env_names[i]);
        c->rate[i] = rl_defaults[i];
        if (r && *r && config_parse_rate(r, &c->rate[i])) {
            (void)buf_printf(err, "%s: must be N/S (N requests per S seconds), e.g. 600/60", rl_env_names[i]);
            return -1;
        }
    }
    c->data_dir = xstrdup(env_or("TEMEL_DATA_DIR", "data"));

    c->secret_key = dup_or_null(getenv("TEMEL_SECRET_KEY"));
    if (c->secret_key && strlen(c->secret_key) < 32) {
        (void)buf_puts(err, "TEMEL_SECRET_KEY: must be at least 32 characters");
        return -1;
    }
    if (!c->secret_key && c->env == ENV_PRODUCTION) {
        (void)buf_puts(err, "TEMEL_SECRET_KEY: required when TEMEL_ENV=production");
        return -1;
    }
    return 0;
}

void config_free(struct config *c)
{
    free(c->host);
    free(c->database_url);
    for (int i = 0; i < c->n_cors; i++)
        free(c->cors_origins[i]);
    free(c->metrics_token);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->data_dir);
    if (c->secret_key)
        memset(c->secret_key, 0, strlen(c->secret_key));
    free(c->secret_key);
    memset(c, 0, sizeof(*c));
}
