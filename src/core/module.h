/*
 * module.h — how a module plugs into temel (ARCHITECTURE §4): one table
 * entry per module in src/modules.c; code below src/modules/ never names a
 * module. A module brings its own settings, routes, jobs, health and
 * metrics through these hooks.
 *
 * Order of calls at start:
 *   config()            every command, right after the core settings are read:
 *                       read and validate the module's own environment
 *                       variables and keep the values; 0, or -1 with
 *                       "VAR: reason" in err (main exits 2 with it)
 *   register_routes()   before the route table is frozen (serve only)
 *   register_jobs()     job handlers and cron entries (serve and worker)
 *   init()              once, main thread, after migrations, with a DB connection
 * `temel seed` (after migrations and init): seed() loads the module's demo
 * data. It must be idempotent (running it twice changes nothing) and may
 * write human-readable notes (such as demo credentials) to out.
 *
 * While serving, on the event-loop threads (with that thread's connection):
 *   health()   GET /health and /health/ready: write the module's members of
 *              the open "services" object ("name": {"status": ..., ...});
 *              db_up says whether the database answered. Return false when
 *              the instance must not take traffic (ready → 503).
 *   metrics()  GET /metrics: append Prometheus text lines to out.
 * Every hook may be NULL.
 */
#ifndef TEMEL_MODULE_H
#define TEMEL_MODULE_H

#include "core/buf.h"
#include "core/config.h"

struct db;
struct jw;

struct module {
    const char *name;
    int (*config)(const struct config *cfg, struct buf *err);
    void (*register_routes)(void);
    void (*register_jobs)(void);
    int (*init)(const struct config *cfg, struct db *db, struct buf *err);
    int (*seed)(struct db *db, struct buf *out); /* 0, or -1 with the reason in out */
    bool (*health)(struct db *db, bool db_up, struct jw *w);
    void (*metrics)(struct db *db, struct buf *out);
};

/* NULL-terminated, in src/modules.c */
extern const struct module *const temel_modules[];

/* Run every module's config hook in table order; 0, or -1 with the first
 * error in err ("VAR: reason"). */
int modules_config(const struct config *cfg, struct buf *err) WARN_UNUSED;

#endif
