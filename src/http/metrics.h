/*
 * metrics.h — Prometheus counters, sharded per event-loop thread.
 *
 * Each loop thread owns one shard and is its only writer (relaxed atomic
 * load+store: no lock, no bus-locked RMW on the hot path); a scrape sums all
 * shards. Route labels are route patterns (bounded cardinality), never raw
 * paths; unmatched requests are route="unmatched".
 */
#ifndef TEMEL_METRICS_H
#define TEMEL_METRICS_H

#include "core/buf.h"
#include "core/config.h"

struct metrics_shard;
struct db_stats;

/* After router_freeze(): one shard per loop thread. */
struct metrics_shard *metrics_shard_new(void);
/* method: the request's method (used for unmatched requests). */
void metrics_request(struct metrics_shard *s, int route_id, str_t method, int status, int64_t dur_us);
void metrics_rl_refusal(struct metrics_shard *s, enum rl_class cls);
/* Snapshots from the owning thread (at accept/close, after each request). */
void metrics_set_conns(struct metrics_shard *s, int64_t open);
void metrics_set_db(struct metrics_shard *s, const struct db_stats *st);

/* Prometheus text exposition of everything. */
void metrics_render(struct buf *out);
/* Resident set size of this process in bytes (0 if unknown). */
int64_t metrics_rss_bytes(void);

#endif
