/*
 * migrate.h — schema migrations embedded in the binary (migrations/<dialect>/
 * NNNN_name.up.sql and .down.sql, compiled in by tools/embed_migrations.py),
 * recorded in schema_migrations(version, name, applied_at).
 * Each migration runs in its own transaction; PostgreSQL holds an advisory
 * lock for the whole run so concurrent starters do not race.
 */
#ifndef TEMEL_MIGRATE_H
#define TEMEL_MIGRATE_H

#include "db/db.h"

struct migration {
    int version;
    const char *name;
    const char *up;
    const char *down;
};

/* The embedded list for a dialect, ordered by version. */
const struct migration *migrations_for(enum db_kind kind, size_t *count);

/* steps 0 = all pending. Human-readable progress lines go to out. */
int migrate_up(struct db *db, int steps, struct buf *out) WARN_UNUSED;
int migrate_down(struct db *db, int steps, struct buf *out) WARN_UNUSED;
/* One line per known migration: "0001 init applied 2026-11-22T10:00:00.000Z" or "... pending". */
int migrate_status(struct db *db, struct buf *out) WARN_UNUSED;
/* Highest applied version (0 if none) and number pending. */
int migrate_current(struct db *db, int *version, int *pending) WARN_UNUSED;

#endif
