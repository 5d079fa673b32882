/*
 * backup.h — backups and restores (API.md §12, issue 14 item 3).
 *
 * A backup is two files in the backup directory (TEMEL_BACKUP_DIR, default
 * <data_dir>/backups):
 *   temel-<UTC time>-<engine>.<sqlite|pgdump>   the copy (db/backup.h: SQLite's online
 *                                               backup API, or pg_dump --format=custom)
 *   <that name>.manifest.json                   {"format":"temel-backup-v1", "file", "engine",
 *                                               "created_at", "schema_version", "sha256", "size",
 *                                               "temel_version", "duration_ms"}
 *
 * Command line (main.c → backup_cli):
 *   temel backup create [--to DIR|s3://bucket?endpoint=..&region=..]
 *                                       copy now; keeps the newest TEMEL_BACKUP_KEEP in DIR;
 *                                       s3://: made in TEMEL_BACKUP_DIR, then both files are put
 *                                       under backups/ through the storage interface (storage.h;
 *                                       AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)
 *   temel backup list [--dir DIR]       newest first
 *   temel backup verify FILE            checksum, then load into a scratch database and run the
 *                                       credit-ledger verify and the audit-chain verify there
 *   temel backup restore FILE --yes     checksum, refuse a schema newer than this binary, then
 *                                       replace the database's content (stop the servers first)
 * FILE is the copy or its manifest. Exit 0 ok, 1 failed, 2 usage.
 *
 * HTTP (admin): GET /api/v1/admin/backups (the manifests, {data, meta}),
 * POST /api/v1/admin/backups (a `backup.create` job, 202; audited).
 * Schedule: TEMEL_BACKUP_CRON (5-field cron, UTC; unset = none) enqueues the
 * same job; TEMEL_BACKUP_KEEP (default 7) copies are kept; TEMEL_BACKUP_UPLOAD
 * (an s3:// URL) uploads every copy the job makes. verify/restore read local
 * files (download a copy first).
 */
#ifndef TEMEL_BACKUP_MODULE_H
#define TEMEL_BACKUP_MODULE_H

#include "core/module.h"

int backup_cli(const struct config *cfg, int argc, char **argv);

extern const struct module backup_module;

#endif
