/*
 * module.h — how a module plugs into temel (ARCHITECTURE §4): one table
 * entry per module in src/modules.c; core code never names a module.
 *
 * Order of calls at start (serve and worker):
 *   register_routes()   before the route table is frozen (serve only)
 *   register_jobs()     job handlers and cron entries (serve and worker)
 *   init()              once, main thread, after migrations, with a DB connection
 * `temel seed` (after migrations and init): seed() loads the module's demo
 * data. It must be idempotent (running it twice changes nothing) and may
 * write human-readable notes (such as demo credentials) to out.
 * Every hook may be NULL.
 */
#ifndef TEMEL_MODULE_H
#define TEMEL_MODULE_H

#include "core/buf.h"
#include "core/config.h"

struct db;

struct module {
    const char *name;
    void (*register_routes)(void);
    void (*register_jobs)(void);
    int (*init)(const struct config *cfg, struct db *db, struct buf *err);
    int (*seed)(struct db *db, struct buf *out); /* 0, or -1 with the reason in out */
};

/* NULL-terminated, in src/modules.c */
extern const struct module *const temel_modules[];

#endif
