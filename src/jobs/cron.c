/*
 * cron.c — 5-field cron expressions, the scheduler tick, and the built-in
 * maintenance job (jobs.h).
 *
 * Design:
 *  - An expression is five bit sets (minute, hour, day of month, month, day
 *    of week) evaluated in UTC. Day rule as in Vixie cron: when either day
 *    field starts with '*', both must match; otherwise either may.
 *  - job_cron(name, last_tick) remembers the last minute an entry was
 *    handled for. A tick fires an entry when its first matching minute after
 *    last_tick is <= now, and sets last_tick to the current minute: however
 *    long the downtime, a missed entry fires once.
 *  - Exactly one instance fires: each entry is handled in its own write
 *    transaction that locks its job_cron row (SELECT … FOR UPDATE on
 *    PostgreSQL, BEGIN IMMEDIATE on SQLite) after taking a transaction-level
 *    advisory lock on PostgreSQL (an instance that does not get it skips the
 *    entry; the holder is handling it). The enqueue joins that transaction.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/json.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "jobs/jobs_internal.h"

#include "core/banned.h"

/* ---- parsing ---------------------------------------------------------------- */

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* A number or (for month/dow) a 3-letter name at *p; advances *p. */
static int parse_val(const char **p, int field, int *out)
{
    const char *s = *p;
    if (*s >= '0' && *s <= '9') {
        int v = 0, n = 0;
        while (*s >= '0' && *s <= '9' && n < 3) {
            v = v * 10 + (*s++ - '0');
            n++;
        }
        if (*s >= '0' && *s <= '9')
            return -1;
        *out = v;
        *p = s;
        return 0;
    }
    const char *const *names = field == 3 ? month_names : field == 4 ? dow_names : NULL;
    int nn = field == 3 ? 12 : 7, base = field == 3 ? 1 : 0;
    if (!names)
        return -1;
    for (int i = 0; i < nn; i++) {
        bool eq = true;
        for (int k = 0; k < 3 && eq; k++)
            eq = s[k] && (s[k] | 0x20) == names[i][k];
        if (eq) {
            *out = i + base;
            *p = s + 3;
            return 0;
        }
    }
    return -1;
}

/* One field (text up to the next space) into bits; *star when it starts with '*'. */
static int parse_field(const char **pp, int field, uint64_t *bits, bool *star)
{
    static const int lo[] = {0, 0, 1, 1, 0}, hi[] = {59, 23, 31, 12, 7};
    const char *p = *pp;
    *bits = 0;
    *star = *p == '*';
    for (;;) {
        int a, b, step = 1;
        bool single = false;
        if (*p == '*') {
            a = lo[field];
            b = hi[field];
            p++;
        } else {
            if (parse_val(&p, field, &a))
                return -1;
            b = a;
            single = true;
            if (*p == '-') {
                p++;
                single = false;
                if (parse_val(&p, field, &b))
                    return -1;
            }
        }
        if (*p == '/') {
            p++;
            if (*p < '0' || *p > '9' || parse_val(&p, 0, &step) || step < 1)
                return -1;
            if (single) /* "a/step" means a..max by step */
                b = hi[field];
        }
        if (a < lo[field] || b > hi[field] || a > b)
            return -1;
        for (int v = a; v <= b; v += step)
            *bits |= 1ull << v;
        if (*p == ',') {
            p++;
            continue;
        }
        break;
    }
    if (*p && *p != ' ' && *p != '\t')
        return -1;
    *pp = p;
    return 0;
}

int cron_parse(const char *s, struct cron_expr *out, struct buf *err)
{
    static const char *const fields[] = {"minute", "hour", "day of month", "month", "day of week"};
    uint64_t bits[5];
    bool star[5];
    const char *p = s;
    memset(out, 0, sizeof(*out));
    for (int f = 0; f < 5; f++) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p) {
            if (err)
                (void)buf_printf(err, "cron: expected 5 fields, missing the %s", fields[f]);
            return -1;
        }
        if (parse_field(&p, f, &bits[f], &star[f])) {
            if (err)
                (void)buf_printf(err, "cron: bad %s field", fields[f]);
            return -1;
        }
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p) {
        if (err)
            (void)buf_puts(err, "cron: more than 5 fields");
        return -1;
    }
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->dom = (uint32_t)bits[2];
    out->month = (uint16_t)bits[3];
    out->dow = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 is Sunday too */
    out->dom_star = star[2];
    out->dow_star = star[4];
    return 0;
}

static bool day_matches(const struct cron_expr *e, const struct tm *tm)
{
    bool d = (e->dom >> tm->tm_mday) & 1, w = (e->dow >> tm->tm_wday) & 1;
    return (e->dom_star || e->dow_star) ? (d && w) : (d || w);
}

bool cron_matches(const struct cron_expr *e, int64_t minute_ms)
{
    struct tm tm;
    time_t t = (time_t)(minute_ms / 1000);
    gmtime_r(&t, &tm);
    return ((e->minute >> tm.tm_min) & 1) && ((e->hour >> tm.tm_hour) & 1) && ((e->month >> (tm.tm_mon + 1)) & 1) &&
           day_matches(e, &tm);
}

int64_t cron_next(const struct cron_expr *e, int64_t after_ms)
{
    int64_t t = (after_ms >= 0 ? after_ms / 60000 : (after_ms - 59999) / 60000) * 60000 + 60000;
    int64_t limit = t + (int64_t)5 * 366 * 86400 * 1000;
    struct tm tm;
    while (t <= limit) {
        time_t s = (time_t)(t / 1000);
        gmtime_r(&s, &tm);
        if (!((e->month >> (tm.tm_mon + 1)) & 1)) { /* to the 1st of next month */
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
            t = (int64_t)timegm(&tm) * 1000;
            continue;
        }
        if (!day_matches(e, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
            t = (int64_t)timegm(&tm) * 1000;
            continue;
        }
        if (!((e->hour >> tm.tm_hour) & 1)) {
            t = (t / 3600000 + 1) * 3600000;
            continue;
        }
        if (!((e->minute >> tm.tm_min) & 1)) {
            t += 60000;
            continue;
        }
        return t;
    }
    return -1;
}

/* ---- registry --------------------------------------------------------------- */

struct cron_entry {
    char *name, *expr, *kind, *payload;
    struct cron_expr e;
};
#define MAX_CRON 128
static struct cron_entry g_cron[MAX_CRON];
static size_t g_ncron;

void cron_register(const char *name, const char *expr, const char *kind, const char *payload_json)
{
    struct cron_expr e;
    struct buf err = BUF_INIT(256);
    if (!name || !*name || strlen(name) > JOBS_NAME_MAX || !kind)
        BUG("cron_register: needs a name (<= 64 bytes) and a kind");
    if (!expr || cron_parse(expr, &e, &err))
        FATAL("cron_register %s: %s", name, buf_cstr(&err));
    buf_free(&err);
    for (size_t i = 0; i < g_ncron; i++)
        if (!strcmp(g_cron[i].name, name))
            BUG("cron_register: name registered twice");
    if (g_ncron == MAX_CRON)
        BUG("cron_register: too many entries");
    g_cron[g_ncron++] = (struct cron_entry){xstrdup(name), xstrdup(expr), xstrdup(kind),
                                            xstrdup(payload_json ? payload_json : "{}"), e};
}

size_t cron__count(void) { return g_ncron; }

/* ---- tick ------------------------------------------------------------------- */

struct tick_ctx {
    const struct cron_entry *c;
    int64_t now;
    bool fired;
};

static int tick_entry(struct db *db, void *arg)
{
    struct tick_ctx *t = arg;
    const struct cron_entry *c = t->c;
    int64_t minute = t->now / 60000 * 60000, last = 0;
    bool found = false;
    int rc;
    t->fired = false;
    if (db_kind(db) == DB_POSTGRES) {
        int64_t got = 0;
        /* key: (class 7420 = temel cron, hashtext(name)) */
        rc = db_query_int(db, "SELECT pg_try_advisory_xact_lock(7420, hashtext(?))::int", DB_ARGS(DBA_CSTR(c->name)),
                          &got, &found);
        if (rc != DB_OK || !got)
            return rc; /* another instance holds this entry right now */
    }
    rc = db_exec(db, "INSERT INTO job_cron (name, last_tick, updated_at) VALUES (?, ms_ts(?), ms_ts(?)) "
                     "ON CONFLICT DO NOTHING",
                 DB_ARGS(DBA_CSTR(c->name), DBA_INT(minute - 60000), DBA_INT(t->now)), NULL);
    if (rc != DB_OK)
        return rc;
    rc = db_query_int(db,
                      db_pick(db, "SELECT ts_ms(last_tick) FROM job_cron WHERE name = ?",
                              "SELECT ts_ms(last_tick) FROM job_cron WHERE name = ? FOR UPDATE"),
                      DB_ARGS(DBA_CSTR(c->name)), &last, &found);
    if (rc != DB_OK || !found)
        return rc;
    int64_t next = cron_next(&c->e, last);
    if (next < 0 || next > t->now)
        return DB_OK;
    struct buf key = BUF_INIT(256);
    (void)buf_printf(&key, "cron:%s:%lld", c->name, (long long)minute);
    struct job_opts o = JOB_OPTS_DEFAULT;
    o.unique_key = buf_cstr(&key);
    char id[37];
    rc = jobs__enqueue_at(db, c->kind, str_c(c->payload), &o, id, t->now);
    buf_free(&key);
    if (rc == JOBS_EINVAL) {
        log_error("cron %s: cannot enqueue kind %s (unknown kind or bad payload); skipped", c->name, c->kind);
        rc = DB_OK;
    } else if (rc == JOBS_OK || rc == JOBS_EDUPLICATE) {
        t->fired = rc == JOBS_OK;
        rc = DB_OK;
    }
    if (rc != DB_OK)
        return rc;
    return db_exec(db, "UPDATE job_cron SET last_tick = ms_ts(?), updated_at = ms_ts(?) WHERE name = ?",
                   DB_ARGS(DBA_INT(minute), DBA_INT(t->now), DBA_CSTR(c->name)), NULL);
}

int cron__tick(struct db *db, int64_t now_ms, int *fired)
{
    int rc = DB_OK;
    *fired = 0;
    for (size_t i = 0; i < g_ncron; i++) {
        struct tick_ctx t = {.c = &g_cron[i], .now = now_ms};
        int r = db_tx(db, DB_TX_WRITE, tick_entry, &t);
        if (r != DB_OK) {
            rc = r; /* try the others anyway */
            continue;
        }
        if (t.fired) {
            (*fired)++;
            log_info("cron %s: enqueued %s", g_cron[i].name, g_cron[i].kind);
        }
    }
    return rc;
}

/* ---- maintenance ------------------------------------------------------------ */

struct purge_hook {
    const char *name;
    jobs_purge_fn fn;
};
#define MAX_HOOKS 32
static struct purge_hook g_hooks[MAX_HOOKS];
static size_t g_nhooks;
static _Atomic int64_t g_retention_days = 7;

void jobs__set_retention_days(int64_t days) { g_retention_days = days; }

void jobs_maintenance_register(const char *name, jobs_purge_fn fn)
{
    if (!name || !fn || g_nhooks == MAX_HOOKS)
        BUG("jobs_maintenance_register: needs a name and a function (at most 32 hooks)");
    g_hooks[g_nhooks++] = (struct purge_hook){name, fn};
}

static enum job_result maintenance(struct job *j, struct buf *result, struct buf *error)
{
    int64_t now = time_now_ms(), removed = 0;
    struct jw w;
    enum job_result res = JOB_OK;
    int rc = jobs__purge(j->db, now - g_retention_days * 86400 * 1000, &removed);
    if (rc != DB_OK) {
        (void)buf_printf(error, "purging jobs: %s", db_errmsg(j->db));
        return JOB_RETRY;
    }
    jw_init(&w, result);
    jw_obj_begin(&w);
    jw_key(&w, "jobs_purged");
    jw_int(&w, removed);
    jw_key(&w, "hooks");
    jw_obj_begin(&w);
    for (size_t i = 0; i < g_nhooks; i++) {
        int64_t n = 0;
        rc = g_hooks[i].fn(j->db, now, &n);
        jw_key_str(&w, str_c(g_hooks[i].name));
        if (rc) {
            jw_null(&w);
            if (!error->len)
                (void)buf_printf(error, "maintenance hook %s failed", g_hooks[i].name);
            res = JOB_RETRY;
        } else {
            jw_int(&w, n);
        }
    }
    jw_obj_end(&w);
    jw_obj_end(&w);
    if (removed)
        log_info("jobs maintenance: %lld finished job(s) purged", (long long)removed);
    return res;
}

void jobs__register_builtin(void)
{
    static const struct job_kind k = {
        .kind = "jobs.maintenance", .handler = maintenance, .queue = "maintenance", .timeout_ms = 600000};
    jobs_register(&k);
    cron_register("jobs.maintenance", "7 * * * *", "jobs.maintenance", "{}");
}
