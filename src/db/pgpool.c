/*
 * pgpool.c — the PostgreSQL pool for loop threads (db.h db_pool_*).
 *
 * For now: one synchronous connection per loop thread, as before the
 * coroutine runtime (every round trip blocks the loop). Being replaced by
 * non-blocking connections in pipeline mode (issue: runtime).
 */
#include "db/db_internal.h"

#include "core/banned.h"

struct db_pool *db__pg_pool_open(const char *url, const struct db_options *opt, int size, struct buf *err)
{
    struct db *db = db__pg_open(url, opt, err);
    UNUSED(size);
    return db ? db__single_pool(db) : NULL;
}
