/* metrics.c — see metrics.h. */
#include "http/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "db/db.h"
#include "http/http.h"
#include "http/ratelimit.h"
#include "redis/redis.h"

#include "core/banned.h"

typedef _Atomic uint64_t ctr_t;
#define CTR_ADD(c, n) atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (n), memory_order_relaxed)
#define CTR_GET(c) atomic_load_explicit(&(c), memory_order_relaxed)

static const int status_list[] = {200, 201, 202, 204, 301, 302, 304, 400, 401, 402, 403, 404, 405,
                                  409, 410, 412, 413, 415, 422, 429, 431, 500, 502, 503, 504};
#define NSTATUS (ARRAY_LEN(status_list) + 1) /* + "other" */
static const double lat_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5};
#define NLAT (ARRAY_LEN(lat_bounds) + 1)
static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "OTHER"};
#define NMETHODS ARRAY_LEN(methods)
#define NDBLAT 12

struct key_ctrs {
    ctr_t status[NSTATUS];
    ctr_t lat[NLAT];
    ctr_t sum_us;
};

struct metrics_shard {
    struct metrics_shard *next;
    size_t nkeys; /* routes + one per method for unmatched */
    struct key_ctrs *keys;
    ctr_t rl_refusals[RL_NCLASSES];
    ctr_t conns;
    ctr_t db_queries, db_us, db_errors, db_lat[NDBLAT];
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_shard *g_shards;
static unsigned char status_slot[600];

static void init_slots(void)
{
    memset(status_slot, NSTATUS - 1, sizeof(status_slot));
    for (size_t i = 0; i < ARRAY_LEN(status_list); i++)
        status_slot[status_list[i]] = (unsigned char)i;
}

struct metrics_shard *metrics_shard_new(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct metrics_shard *s = xcalloc(1, sizeof(*s));
    pthread_once(&once, init_slots);
    s->nkeys = router_count() + NMETHODS;
    s->keys = xcalloc(s->nkeys, sizeof(*s->keys));
    pthread_mutex_lock(&g_mu);
    s->next = g_shards;
    g_shards = s;
    pthread_mutex_unlock(&g_mu);
    return s;
}

static size_t method_idx(str_t m)
{
    for (size_t i = 0; i < NMETHODS - 1; i++)
        if (str_eq(m, str_c(methods[i])))
            return i;
    return NMETHODS - 1;
}

void metrics_request(struct metrics_shard *s, int route_id, str_t method, int status, int64_t dur_us)
{
    size_t k = route_id >= 0 ? (size_t)route_id : router_count() + method_idx(method);
    struct key_ctrs *c = &s->keys[k];
    size_t b = 0;
    double secs = (double)dur_us / 1e6;
    CTR_ADD(c->status[status >= 0 && status < 600 ? status_slot[status] : NSTATUS - 1], 1);
    while (b < NLAT - 1 && secs > lat_bounds[b])
        b++;
    CTR_ADD(c->lat[b], 1);
    CTR_ADD(c->sum_us, (uint64_t)(dur_us > 0 ? dur_us : 0));
}

void metrics_rl_refusal(struct metrics_shard *s, enum rl_class cls) { CTR_ADD(s->rl_refusals[cls], 1); }

void metrics_set_conns(struct metrics_shard *s, int64_t open)
{
    atomic_store_explicit(&s->conns, (uint64_t)(open > 0 ? open : 0), memory_order_relaxed);
}

void metrics_set_db(struct metrics_shard *s, const struct db_stats *st)
{
    atomic_store_explicit(&s->db_queries, st->queries, memory_order_relaxed);
    atomic_store_explicit(&s->db_us, st->query_us_total, memory_order_relaxed);
    atomic_store_explicit(&s->db_errors, st->errors, memory_order_relaxed);
    for (int i = 0; i < NDBLAT; i++)
        atomic_store_explicit(&s->db_lat[i], st->latency_buckets[i], memory_order_relaxed);
}

int64_t metrics_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, rss = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lld %lld", &size, &rss) != 2)
        rss = 0;
    fclose(f);
    return (int64_t)rss * sysconf(_SC_PAGESIZE);
}

static void label_route(struct buf *o, size_t k)
{
    const struct route *rt = router_get(k);
    if (rt)
        (void)buf_printf(o, "route=\"%s\",method=\"%s\"", rt->pattern, rt->method);
    else
        (void)buf_printf(o, "route=\"unmatched\",method=\"%s\"", methods[k - router_count()]);
}

void metrics_render(struct buf *o)
{
    size_t nkeys = router_count() + NMETHODS;
    struct key_ctrs *sum = xcalloc(nkeys, sizeof(*sum));
    uint64_t rl[RL_NCLASSES] = {0}, conns = 0, dbq = 0, dbus = 0, dberr = 0, dblat[NDBLAT] = {0};

    pthread_mutex_lock(&g_mu);
    for (struct metrics_shard *s = g_shards; s; s = s->next) {
        for (size_t k = 0; k < nkeys && k < s->nkeys; k++) {
            for (size_t i = 0; i < NSTATUS; i++)
                CTR_ADD(sum[k].status[i], CTR_GET(s->keys[k].status[i]));
            for (size_t i = 0; i < NLAT; i++)
                CTR_ADD(sum[k].lat[i], CTR_GET(s->keys[k].lat[i]));
            CTR_ADD(sum[k].sum_us, CTR_GET(s->keys[k].sum_us));
        }
        for (int i = 0; i < RL_NCLASSES; i++)
            rl[i] += CTR_GET(s->rl_refusals[i]);
        conns += CTR_GET(s->conns);
        dbq += CTR_GET(s->db_queries);
        dbus += CTR_GET(s->db_us);
        dberr += CTR_GET(s->db_errors);
        for (int i = 0; i < NDBLAT; i++)
            dblat[i] += CTR_GET(s->db_lat[i]);
    }
    pthread_mutex_unlock(&g_mu);

    (void)buf_puts(o, "# HELP temel_http_requests_total HTTP requests by route pattern, method and status.\n"
                      "# TYPE temel_http_requests_total counter\n");
    for (size_t k = 0; k < nkeys; k++) {
        for (size_t i = 0; i < NSTATUS; i++) {
            uint64_t v = CTR_GET(sum[k].status[i]);
            if (!v)
                continue;
            (void)buf_puts(o, "temel_http_requests_total{");
            label_route(o, k);
            if (i < ARRAY_LEN(status_list))
                (void)buf_printf(o, ",status=\"%d\"} %llu\n", status_list[i], (unsigned long long)v);
            else
                (void)buf_printf(o, ",status=\"other\"} %llu\n", (unsigned long long)v);
        }
    }
    (void)buf_puts(o, "# HELP temel_http_request_duration_seconds Time from request start to response.\n"
                      "# TYPE temel_http_request_duration_seconds histogram\n");
    for (size_t k = 0; k < nkeys; k++) {
        uint64_t cum = 0, total = 0;
        for (size_t i = 0; i < NLAT; i++)
            total += CTR_GET(sum[k].lat[i]);
        if (!total)
            continue;
        for (size_t i = 0; i < NLAT; i++) {
            cum += CTR_GET(sum[k].lat[i]);
            (void)buf_puts(o, "temel_http_request_duration_seconds_bucket{");
            label_route(o, k);
            if (i < NLAT - 1)
                (void)buf_printf(o, ",le=\"%g\"} %llu\n", lat_bounds[i], (unsigned long long)cum);
            else
                (void)buf_printf(o, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        (void)buf_puts(o, "temel_http_request_duration_seconds_sum{");
        label_route(o, k);
        (void)buf_printf(o, "} %.6f\n", (double)CTR_GET(sum[k].sum_us) / 1e6);
        (void)buf_puts(o, "temel_http_request_duration_seconds_count{");
        label_route(o, k);
        (void)buf_printf(o, "} %llu\n", (unsigned long long)total);
    }
    free(sum);

    (void)buf_puts(o, "# HELP temel_db_query_duration_seconds Database statement latency.\n"
                      "# TYPE temel_db_query_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < NDBLAT; i++) {
        cum += dblat[i];
        if (i < NDBLAT - 1)
            (void)buf_printf(o, "temel_db_query_duration_seconds_bucket{le=\"%g\"} %llu\n", db_latency_bounds_s[i],
                             (unsigned long long)cum);
        else
            (void)buf_printf(o, "temel_db_query_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                             (unsigned long long)cum);
    }
    (void)buf_printf(o,
                     "temel_db_query_duration_seconds_sum %.6f\ntemel_db_query_duration_seconds_count %llu\n"
                     "# HELP temel_db_errors_total Database statements that failed.\n"
                     "# TYPE temel_db_errors_total counter\ntemel_db_errors_total %llu\n",
                     (double)dbus / 1e6, (unsigned long long)dbq, (unsigned long long)dberr);

    (void)buf_puts(o, "# HELP temel_rate_limit_refusals_total Requests refused with 429, by class.\n"
                      "# TYPE temel_rate_limit_refusals_total counter\n");
    for (int i = 0; i < RL_NCLASSES; i++)
        (void)buf_printf(o, "temel_rate_limit_refusals_total{class=\"%s\"} %llu\n", rl_class_names[i],
                         (unsigned long long)rl[i]);
    if (redis_configured()) {
        (void)buf_printf(o,
                         "# HELP temel_ratelimit_fallback_total Rate-limit decisions made by the local store "
                         "because Redis did not answer.\n"
                         "# TYPE temel_ratelimit_fallback_total counter\ntemel_ratelimit_fallback_total %llu\n",
                         (unsigned long long)rl_fallbacks());
        redis_metrics(o);
    }
    (void)buf_printf(o,
                     "# HELP temel_http_connections_open Open client connections.\n"
                     "# TYPE temel_http_connections_open gauge\ntemel_http_connections_open %llu\n"
                     "# HELP temel_process_resident_memory_bytes Resident set size.\n"
                     "# TYPE temel_process_resident_memory_bytes gauge\n"
                     "temel_process_resident_memory_bytes %lld\n",
                     (unsigned long long)conns, (long long)metrics_rss_bytes());
}
