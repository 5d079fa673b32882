/*
 * personal.h — personal data of the shop and blog modules (API.md §3):
 * GET /me/export, DELETE /me and guest migration cover them.
 */
#ifndef TEMEL_CATALOG_PERSONAL_H
#define TEMEL_CATALOG_PERSONAL_H

#include "core/json.h"
#include "resource/resource.h"

/* Write every row of res owned by user_id (res->owner) as a JSON array, each
 * row as the engine outputs it to its owner. Runs inside the caller's tx. */
int catalog_export_rows(struct db *db, str_t user_id, const struct resource *res, struct jw *w) WARN_UNUSED;

#endif
