/* dbjson.c — see dbjson.h. */
#include "db/dbjson.h"

#include "core/banned.h"

void jw_db_text(struct jw *w, const struct db_res *r, int col)
{
    if (db_isnull(r, col))
        jw_null(w);
    else
        jw_str(w, db_text(r, col));
}

void jw_db_time(struct jw *w, const struct db_res *r, int col)
{
    if (db_isnull(r, col))
        jw_null(w);
    else
        jw_time(w, db_int(r, col));
}

void jw_db_int(struct jw *w, const struct db_res *r, int col)
{
    if (db_isnull(r, col))
        jw_null(w);
    else
        jw_int(w, db_int(r, col));
}
