/*
 * dbjson.h — a column straight into the JSON writer, SQL NULL as JSON null
 * (the if-null-else pattern every handler needed).
 */
#ifndef TEMEL_DBJSON_H
#define TEMEL_DBJSON_H

#include "core/json.h"
#include "db/db.h"

void jw_db_text(struct jw *w, const struct db_res *r, int col); /* string or null */
void jw_db_time(struct jw *w, const struct db_res *r, int col); /* epoch ms → RFC 3339, or null */
void jw_db_int(struct jw *w, const struct db_res *r, int col);  /* integer or null */

#endif
