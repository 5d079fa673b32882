/*
 * internal.h — what the resource engine's files share (resource__ names,
 * STYLE §10). Nothing outside src/resource includes it.
 */
#ifndef TEMEL_RESOURCE_INTERNAL_H
#define TEMEL_RESOURCE_INTERNAL_H

#include "resource/resource.h"

#define RESOURCE_MAX 64
#define RESOURCE_MAX_FIELDS 48
#define RESOURCE_NBASE 5 /* selected before the fields: id, version, created_at, updated_at, owner */

/* A registered resource with everything derived from its descriptor. */
struct rt {
    const struct resource *res;
    char *cols;          /* "t.id, t.version, ts_ms(t.created_at), ..." */
    char *rcols;         /* the same unqualified, for RETURNING: "id, version, ts_ms(created_at), ..." */
    char *item_pattern;  /* "<path>/{id}" */
    struct json_field create_f[RESOURCE_MAX_FIELDS + 1], update_f[RESOURCE_MAX_FIELDS + 1];
    struct json_schema create_s, update_s;
    json_t *defaults[RESOURCE_MAX_FIELDS];
    int nfields;
    bool searchable, has_i18n;
    struct route routes[5];
    struct openapi_schema schema; /* components.schemas entry of the row (openapi.c) */
    char *schema_ref;             /* {"$ref": ...} to it: the routes' output */
    /* struct resource.kept_count_table: the conditions a list's total may be read
     * from the kept count for — as the engine itself compiles them, per dialect
     * ([0] SQLite, [1] PostgreSQL): the visibility rule alone, and that plus the
     * kept field's equality — and the two count subqueries (NULL: none kept) */
    char *kept_vis[2], *kept_eq[2];
    char *kept_all, *kept_one;
};

extern struct rt *resource__rts[RESOURCE_MAX];
extern size_t resource__nrts;
struct rt *resource__rt_of(const struct resource *res);
char *resource__strdup(struct req *r, str_t s);

/* ---- who sees and changes what (core.c) ---- */
/* Append to q the conditions that limit rows to what who may see. 0 or -1 (error in q). */
int resource__visibility(const struct caller *who, const struct resource *res, struct rq *q);
/* May who change (update/delete) a row it can see, owned by owner? */
bool resource__may_write(const struct caller *who, enum rpolicy p, str_t owner);
/* rq_init for who; pool NULL: the rq owns its literals until rq_release(). */
void resource__rq_begin(struct rq *q, const struct caller *who, struct db *db, const struct resource *res,
                        h2o_mem_pool_t *pool);
/* An rq error as r's error (400/422). Returns HTTP_EFAIL. */
int resource__rq_http_fail(struct req *r, struct rq *q);
enum lang resource__lang(struct req *r);

/* ---- rows (core.c) ---- */
void resource__write_i18n(struct jw *w, str_t stored, enum lang lang);
/* Write the row at res's current position, selected with t->cols. */
void resource__write_row(struct jw *w, const struct rt *t, struct db_res *res, enum lang lang);
void resource__etag_of(const struct rt *t, int64_t version, enum lang lang, struct buf *out);
/* One row visible to who into *out (caller frees); DB_OK with *out NULL when none. */
int resource__select_one(const struct caller *who, struct db *db, const struct rt *t, str_t id, struct db_res **out);
/* The row as a jansson value (for change hooks); NULL when not visible. */
json_t *resource__row_json(const struct caller *who, struct db *db, const struct rt *t, str_t id);
bool resource__have_hooks(void);
int resource__run_hooks(enum res_hook_when when, struct req *r, struct db *db, const struct rt *t, enum raction act,
                        str_t id, const json_t *before, const json_t *after);

/* ---- the public read cache (cache.c) ---- */
struct resource_cache_entry {
    const char *key; /* where a miss is stored (NULL: not stored) */
};
/* Is r's answer for res one the cache may hold (public_cache, on, anonymous)? */
bool resource__cache_wanted(struct req *r, const struct resource *res);
/* 1 hit, r answered (the ETag, then 304 when If-None-Match matches it, else
 * the body); 0 miss (e->key); -1 Redis did not answer. */
int resource__cache_lookup(struct req *r, const struct resource *res, struct resource_cache_entry *e);
/* After a miss: keep r's answer (a 200) with its ETag under e->key. */
void resource__cache_store(struct req *r, const struct resource_cache_entry *e, str_t etag);

/* ---- full text (search.c) ---- */
/* FROM + WHERE + ORDER for a search over t: adds the join (SQLite), the
 * match condition (args into q) and the rank expression (args into oargs). */
struct search_sql {
    struct buf from, rank;
    struct buf ftsq;
    db_arg oargs[2];
    int noargs;
};
int resource__add_search(struct db *db, const struct rt *t, str_t text, struct rq *q, struct search_sql *s);
void resource__search_register(void);

/* ---- route handlers and their OpenAPI hooks ---- */
int resource__h_list(struct req *r);   /* list.c */
int resource__h_get(struct req *r);
int resource__h_create(struct req *r); /* write.c */
int resource__h_update(struct req *r);
int resource__h_delete(struct req *r);
/* The row's shared schema and the create/update field schemas, at registration (openapi.c). */
void resource__openapi_register(struct rt *t);
void resource__openapi_input(const struct rfield *f, struct json_field *jf);
void resource__openapi_list(const struct route *route, struct jw *w, enum openapi_part part); /* openapi.c */
void resource__openapi_item(const struct route *route, struct jw *w, enum openapi_part part);

#endif
