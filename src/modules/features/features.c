/*
 * features.c — feature flags (API.md §12, issue 14 item 5).
 *
 *   GET  /api/v1/features                 {"features": {key: bool}} for the caller
 *   /api/v1/admin/features                admin CRUD (resource engine): key, description,
 *                                         enabled, rollout_percent (0..100), roles
 *   /api/v1/admin/feature-overrides       admin CRUD: flag_id, user_id, enabled
 *
 * Evaluation for a caller (user id u, role ro; anonymous: no u, no role):
 *   an override (flag, u) decides when there is one; else the flag must be
 *   enabled, ro must be in roles (an empty list admits everyone, also the
 *   anonymous), and bucket(key, u) < rollout_percent, where bucket is a
 *   BLAKE2b hash of "key\0u" mod 100 — stable across requests, instances and
 *   restarts. A partial rollout (< 100) never includes the anonymous.
 *
 * Cache: one snapshot of every flag and override per process, reloaded when
 * older than its TTL or when its generation is behind g_gen. A write bumps
 * g_gen here and publishes on Redis channel temel:features; every instance
 * listens (redis_listen, loop 0) and bumps its own (also after a
 * resubscription, when messages may have been missed). The write hook runs
 * inside the write transaction, so for a second after an invalidation the
 * snapshot is reloaded on every read (a reader racing the commit cannot pin
 * the old state for a whole TTL). TTL: TEMEL_FEATURES_TTL_S (default 60)
 * while Redis is available, TEMEL_FEATURES_LOCAL_TTL_S (default 5) without it.
 */
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/config.h"
#include "core/log.h"
#include "core/module.h"
#include "core/timeutil.h"
#include "redis/redis.h"
#include "resource/resource.h"

#include "core/banned.h"

#define CHANNEL "temel:features"
#define BYPASS_MS 1000

static int64_t g_ttl_s = 60, g_local_ttl_s = 5;

/* ---- descriptors ---- */

static int flag_check(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id);
static int after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id);

static const struct rfield flag_fields[] = {
    {.name = "key", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT | RF_CREATE_ONLY, .min = 1, .max = 64,
     .description = "the name clients see: [a-z0-9_.-]"},
    {.name = "description", .type = RF_TEXT, .max = 500, .def = "\"\""},
    {.name = "enabled", .type = RF_BOOL, .flags = RF_FILTER, .def = "false"},
    {.name = "rollout_percent", .type = RF_INT, .min = 0, .max = 100, .def = "100",
     .description = "share of signed-in users (by a stable hash of the user id) who get it"},
    {.name = "roles", .type = RF_STRLIST, .max = 4, .def = "[]",
     .description = "roles that get it (guest, user, moderator, admin); empty: everyone"},
    {0}};
const struct resource features_flags = {
    .name = "feature_flags", .singular = "feature flag", .path = "/api/v1/admin/features", .table = "feature_flags",
    .tag = "features", .fields = flag_fields, .read = RP_ADMIN, .create = RP_ADMIN, .update = RP_ADMIN,
    .del = RP_ADMIN, .check = flag_check, .after_write = after_write};

static const struct rfield override_fields[] = {
    {.name = "flag_id", .type = RF_REF, .ref = &features_flags, .flags = RF_REQUIRED | RF_FILTER | RF_CREATE_ONLY},
    {.name = "user_id", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_CREATE_ONLY, .check = RC_UUID},
    {.name = "enabled", .type = RF_BOOL, .flags = RF_REQUIRED, .description = "this user gets the flag (or not)"},
    {0}};
const struct resource features_overrides = {
    .name = "feature_overrides", .singular = "feature override", .path = "/api/v1/admin/feature-overrides",
    .table = "feature_overrides", .tag = "features", .fields = override_fields, .read = RP_ADMIN,
    .create = RP_ADMIN, .update = RP_ADMIN, .del = RP_ADMIN, .after_write = after_write};

static const char *const role_names[] = {"guest", "user", "moderator", "admin", NULL};

static int flag_check(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id)
{
    const json_t *k = json_object_get(body, "key"), *roles = json_object_get(body, "roles"), *v;
    size_t i;
    UNUSED(res);
    UNUSED(act);
    UNUSED(id);
    if (k) {
        const char *s = json_string_value(k);
        for (const char *p = s; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-'))
                return http_invalid(r, "key", "use a-z, 0-9, '_', '.' and '-'");
    }
    json_array_foreach(roles, i, v)
    {
        bool known = false;
        for (int j = 0; role_names[j] && !known; j++)
            known = !strcmp(json_string_value(v), role_names[j]);
        if (!known)
            return http_invalid(r, "roles", "each role is one of guest, user, moderator, admin");
    }
    return 0;
}

/* ---- the snapshot ---- */

struct flag {
    char *key;
    bool enabled;
    int pct;
    unsigned roles; /* 1 << index in role_names; 0 = everyone */
};
struct ovr { /* sorted by user_id: a caller's overrides are one run */
    size_t flag; /* index into flags */
    char *user_id;
    bool enabled;
};
struct snap {
    struct flag *flags;
    size_t nflags;
    struct ovr *ovrs;
    size_t novrs;
    uint64_t gen;
    int64_t loaded_ms;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct snap *g_snap;
static _Atomic uint64_t g_gen = 1;
static _Atomic int64_t g_bypass_until;
static _Atomic uint64_t g_loads, g_invalidations;

static void snap_free(struct snap *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nflags; i++)
        free(s->flags[i].key);
    for (size_t i = 0; i < s->novrs; i++)
        free(s->ovrs[i].user_id);
    free(s->flags);
    free(s->ovrs);
    free(s);
}

static void invalidate(void)
{
    atomic_fetch_add(&g_gen, 1);
    atomic_fetch_add(&g_invalidations, 1);
    atomic_store(&g_bypass_until, time_mono_ms() + BYPASS_MS);
}

static void on_message(void *arg, const char *channel, const char *msg, size_t len)
{
    UNUSED(arg);
    UNUSED(channel);
    UNUSED(msg);
    UNUSED(len);
    invalidate(); /* a change elsewhere, or (msg NULL) a resubscription: changes may have been missed */
}

static int after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id)
{
    UNUSED(r);
    UNUSED(db);
    UNUSED(res);
    UNUSED(act);
    UNUSED(id);
    invalidate();
    if (redis_configured())
        (void)redis_publish(CHANNEL, "changed", 7);
    return 0;
}

static unsigned role_bits_of(const char *json_text)
{
    json_t *a = json_loads(json_text, 0, NULL), *v;
    unsigned bits = 0;
    size_t i;
    json_array_foreach(a, i, v)
    {
        for (int j = 0; role_names[j]; j++)
            if (json_is_string(v) && !strcmp(json_string_value(v), role_names[j]))
                bits |= 1u << j;
    }
    json_decref(a);
    return bits;
}

/* strcmp of a stored user id with a view (which need not end in NUL). */
static int user_cmp(const char *stored, str_t user)
{
    int c = strncmp(stored, user.p, user.len);
    return c ? c : stored[user.len] != '\0';
}

static int ovr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ovr *)a)->user_id, ((const struct ovr *)b)->user_id);
}

static int snap_load(struct db *db, struct snap **out)
{
    struct snap *s = xcalloc(1, sizeof(*s));
    struct db_res *res;
    size_t cap = 0;
    s->gen = atomic_load(&g_gen); /* read first: a change during the load leaves this one stale */
    int rc = db_query(db, "SELECT key, enabled, rollout_percent, roles FROM feature_flags ORDER BY key", DB_NOARGS,
                      &res);
    if (rc != DB_OK)
        goto fail;
    while ((rc = db_next(res)) == 1) {
        if (s->nflags == cap) {
            cap = cap ? cap * 2 : 16;
            s->flags = xrealloc(s->flags, cap * sizeof(*s->flags));
        }
        str_t k = db_text(res, 0);
        s->flags[s->nflags++] = (struct flag){.key = xstrdup(k.p),
                                              .enabled = db_int(res, 1) != 0,
                                              .pct = (int)db_int(res, 2),
                                              .roles = role_bits_of(db_text(res, 3).p)};
    }
    db_res_free(res);
    if (rc < 0)
        goto fail;
    cap = 0;
    rc = db_query(db,
                  "SELECT f.key, o.user_id, o.enabled FROM feature_overrides o JOIN feature_flags f ON f.id = o.flag_id",
                  DB_NOARGS, &res);
    if (rc != DB_OK)
        goto fail;
    while ((rc = db_next(res)) == 1) {
        str_t k = db_text(res, 0);
        size_t fi = s->nflags;
        for (size_t i = 0; i < s->nflags; i++)
            if (str_eq(k, str_c(s->flags[i].key)))
                fi = i;
        if (fi == s->nflags) /* a flag created after the first query: the next load has it */
            continue;
        if (s->novrs == cap) {
            cap = cap ? cap * 2 : 16;
            s->ovrs = xrealloc(s->ovrs, cap * sizeof(*s->ovrs));
        }
        s->ovrs[s->novrs++] = (struct ovr){.flag = fi, .user_id = xstrdup(db_text(res, 1).p),
                                           .enabled = db_int(res, 2) != 0};
    }
    db_res_free(res);
    if (rc < 0)
        goto fail;
    if (s->novrs > 1) /* qsort's array may not be NULL, even for 0 elements (UBSan) */
        qsort(s->ovrs, s->novrs, sizeof(*s->ovrs), ovr_cmp);
    s->loaded_ms = time_mono_ms();
    atomic_fetch_add(&g_loads, 1);
    *out = s;
    return DB_OK;
fail:
    snap_free(s);
    return rc;
}

static bool snap_fresh(const struct snap *s, int64_t now)
{
    int64_t ttl = (redis_available() ? g_ttl_s : g_local_ttl_s) * 1000;
    return s && s->gen == atomic_load(&g_gen) && now - s->loaded_ms < ttl && now >= atomic_load(&g_bypass_until);
}

/* The stable bucket 0..99 of (key, user). */
static int bucket(const char *key, str_t user)
{
    crypto_generichash_state st;
    unsigned char out[8];
    uint64_t h = 0;
    crypto_generichash_init(&st, NULL, 0, sizeof(out));
    crypto_generichash_update(&st, (const unsigned char *)key, strlen(key) + 1); /* with its NUL: a separator */
    crypto_generichash_update(&st, (const unsigned char *)user.p, user.len);
    crypto_generichash_final(&st, out, sizeof(out));
    for (int i = 0; i < 8; i++)
        h = (h << 8) | out[i];
    return (int)(h % 100);
}

/* The caller's overrides: [*lo, *hi) of s->ovrs (empty for the anonymous). */
static void user_overrides(const struct snap *s, str_t user, size_t *lo, size_t *hi)
{
    size_t a = 0, b = user.len ? s->novrs : 0;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (user_cmp(s->ovrs[m].user_id, user) < 0)
            a = m + 1;
        else
            b = m;
    }
    *lo = a;
    while (user.len && a < s->novrs && user_cmp(s->ovrs[a].user_id, user) == 0)
        a++;
    *hi = a;
}

static bool evaluate(const struct snap *s, size_t fi, size_t lo, size_t hi, str_t user, str_t role)
{
    const struct flag *f = &s->flags[fi];
    for (size_t i = lo; i < hi; i++)
        if (s->ovrs[i].flag == fi)
            return s->ovrs[i].enabled;
    if (!f->enabled)
        return false;
    if (f->roles) {
        bool in = false;
        for (int j = 0; role_names[j] && !in; j++)
            in = (f->roles & (1u << j)) && str_eq(role, str_c(role_names[j]));
        if (!in)
            return false;
    }
    if (f->pct >= 100)
        return true;
    return user.len && bucket(f->key, user) < f->pct;
}

static int h_features(struct req *r)
{
    struct caller who = resource_caller(r);
    int64_t now = time_mono_ms();
    struct snap *fresh = NULL;
    pthread_mutex_lock(&g_mu);
    bool ok = snap_fresh(g_snap, now);
    pthread_mutex_unlock(&g_mu);
    if (!ok) { /* load outside the lock: the coroutine may wait on the database */
        int rc = snap_load(r->db, &fresh);
        if (rc != DB_OK)
            return http_db_fail(r, rc);
    }
    pthread_mutex_lock(&g_mu);
    if (fresh) {
        if (!g_snap || fresh->gen >= g_snap->gen) {
            snap_free(g_snap);
            g_snap = fresh;
        } else {
            snap_free(fresh); /* someone loaded a newer one meanwhile */
        }
    }
    struct snap *s = g_snap;
    size_t lo, hi;
    user_overrides(s, who.user_id, &lo, &hi);
    jw_obj_begin(&r->w);
    jw_key(&r->w, "features");
    jw_obj_begin(&r->w);
    for (size_t i = 0; i < s->nflags; i++) {
        jw_key(&r->w, s->flags[i].key);
        jw_bool(&r->w, evaluate(s, i, lo, hi, who.user_id, who.role));
    }
    jw_obj_end(&r->w);
    jw_obj_end(&r->w);
    pthread_mutex_unlock(&g_mu);
    return 0;
}

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/features", .handler = h_features, .auth = AUTH_OPTIONAL, .rl = RL_READ,
     .summary = "Feature flags evaluated for the caller (overrides, roles, percentage rollout)", .tag = "features",
     .output = OPENAPI_JSON({"type" : "object", "required" : ["features"], "properties" : {
         "features" : {"type" : "object", "additionalProperties" : {"type" : "boolean"}}}})},
};

static void register_routes(void)
{
    resource_register(&features_flags);
    resource_register(&features_overrides);
    router_add(routes, ARRAY_LEN(routes));
}

static int config(const struct config *cfg, struct buf *err)
{
    UNUSED(cfg);
    return config_env_int("TEMEL_FEATURES_TTL_S", 60, 1, 86400, &g_ttl_s, err) ||
                   config_env_int("TEMEL_FEATURES_LOCAL_TTL_S", 5, 1, 3600, &g_local_ttl_s, err)
               ? -1
               : 0;
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    UNUSED(cfg);
    UNUSED(db);
    if (redis_configured() && redis_listen(CHANNEL, on_message, NULL)) {
        (void)buf_puts(err, "features: too many process-wide Redis subscriptions");
        return -1;
    }
    return 0;
}

static void metrics(struct db *db, struct buf *out)
{
    UNUSED(db);
    (void)buf_printf(out,
                     "# HELP temel_features_cache_loads_total Feature-flag snapshots loaded from the database.\n"
                     "# TYPE temel_features_cache_loads_total counter\ntemel_features_cache_loads_total %llu\n"
                     "# HELP temel_features_invalidations_total Feature-flag cache invalidations (local and Redis).\n"
                     "# TYPE temel_features_invalidations_total counter\ntemel_features_invalidations_total %llu\n",
                     (unsigned long long)atomic_load(&g_loads), (unsigned long long)atomic_load(&g_invalidations));
}

const struct module features_module = {
    .name = "features",
    .config = config,
    .register_routes = register_routes,
    .init = init,
    .metrics = metrics,
};
