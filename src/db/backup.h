/*
 * backup.h — copying a whole database to a file and back, per engine (the
 * backup module, src/modules/backup, adds manifests, verify and schedules).
 *
 *   SQLite      the online backup API (sqlite3_backup_*) from a connection
 *               of its own, in one step: one read transaction, so the copy
 *               is the database as of the moment the step began while other
 *               connections go on writing (WAL). The file is a plain SQLite
 *               database (journal_mode=DELETE).
 *   PostgreSQL  `pg_dump --format=custom` (one snapshot); loading is
 *               `pg_restore --single-transaction` into an emptied schema.
 *               Connection settings reach the tools through PG* environment
 *               variables of the child (libpq's own names), never argv, so
 *               a password is not visible in the process list.
 *
 * Everything here blocks (files, child processes): CLI and job threads only.
 * Errors: 0, or -1 with a short reason in err (never a password).
 */
#ifndef TEMEL_DB_BACKUP_H
#define TEMEL_DB_BACKUP_H

#include "core/buf.h"

/* Copy the database behind url into a new file path (written as path.part,
 * then renamed). */
int db_dump(const char *url, const char *path, struct buf *err) WARN_UNUSED;
/* Replace the whole content of url's database with the copy in path (what
 * db_dump wrote for the same engine). Stop the servers first. */
int db_load(const char *url, const char *path, struct buf *err) WARN_UNUSED;
/* A new empty database of url's engine to load a copy into: SQLite a file in
 * dir, PostgreSQL a database `temel_scratch_<hex>` on url's cluster (needs
 * CREATEDB). *scratch_url gets its URL (free it); db_scratch_drop removes it. */
int db_scratch_create(const char *url, const char *dir, char **scratch_url, struct buf *err) WARN_UNUSED;
void db_scratch_drop(const char *url, const char *scratch_url);

/* Lower-case hex SHA-256 of a file's content; *size gets its length. */
int file_sha256_hex(const char *path, char out[65], int64_t *size, struct buf *err) WARN_UNUSED;

#endif
