/*
 * files.c — API.md §7. POST /files takes multipart/form-data (`file`,
 * optional `purpose`); the type comes from the bytes (sniff.c), never from
 * the name or the client's Content-Type; images are decoded once on the
 * worker pool (pixel limit: decompression bombs are refused) and get
 * thumbnail/medium/large WebP variants from a job. Bytes go to storage
 * (local directory or S3) from the worker pool; the row, the quota check
 * and the variants job are one transaction. Downloads: the owner, or anyone
 * with an HMAC-signed link until it expires; local files are sent by h2o
 * (Range), S3 objects by a redirect to a presigned GET.
 *
 * Request bodies: libh2o 2.2.5 hands a handler the complete body (no
 * streaming hook; docs/runtime.md), so one POST /files is at most
 * HTTP_BODY_MAX (16 MiB). Larger files go up in parts (upload.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/crypto.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "core/workpool.h"
#include "http/multipart.h"
#include "jobs/jobs.h"
#include "modules/files/files.h"
#include "modules/files/files_internal.h"
#include "modules/realtime/realtime.h"
#include "modules/users/identity.h"

#include "core/banned.h"

struct files_cfg files__cfg;

/* ---- purposes: which types, how large ---- */
#define T(x) (1u << (x))
#define IMAGES (T(FT_JPEG) | T(FT_PNG) | T(FT_WEBP) | T(FT_GIF))
#define DOCS (T(FT_PDF) | T(FT_DOCX) | T(FT_XLSX) | T(FT_TEXT) | T(FT_CSV))
struct purpose {
    const char *name;
    int64_t max;
    unsigned types;
};
static const struct purpose purposes[] = {
    {"attachment", HTTP_BODY_MAX - (64u << 10), IMAGES | DOCS}, /* the default */
    {"avatar", 5u << 20, IMAGES},
    {"product", 10u << 20, IMAGES},
    {"document", HTTP_BODY_MAX - (64u << 10), DOCS},
};

static const struct purpose *purpose_find(str_t name)
{
    for (size_t i = 0; i < ARRAY_LEN(purposes); i++)
        if (str_eq(name, str_c(purposes[i].name)))
            return &purposes[i];
    return NULL;
}

static const char *const variant_names[] = {"thumbnail", "medium", "large"};
static const int variant_px[] = {200, 800, 1600};

void files__key(struct buf *b, str_t id, const char *variant)
{
    if (variant)
        (void)buf_printf(b, "f/%.*s/%s.webp", STR_FMT(id), variant);
    else
        (void)buf_printf(b, "f/%.*s/original", STR_FMT(id));
}

/* ---- the row as JSON ---- */
void files__write(struct jw *w, const struct db_res *res)
{
    str_t id = db_text(res, 0);
    struct buf url = BUF_INIT(256);
    (void)buf_printf(&url, "/api/v1/files/%.*s/download", STR_FMT(id));
    jw_obj_begin(w);
    jw_key(w, "id");
    jw_str(w, id);
    jw_key(w, "filename");
    jw_str(w, db_text(res, 1));
    jw_key(w, "size");
    jw_int(w, db_int(res, 2));
    jw_key(w, "mime_type");
    jw_str(w, db_text(res, 3));
    jw_key(w, "sha256");
    jw_str(w, db_text(res, 4));
    jw_key(w, "url");
    jw_str(w, buf_str(&url));
    jw_key(w, "variants");
    jw_raw(w, db_text(res, 5)); /* written by the variants job: valid JSON */
    jw_key(w, "variants_state");
    jw_str(w, db_text(res, 8));
    jw_key(w, "purpose");
    jw_str(w, db_text(res, 6));
    jw_key(w, "created_at");
    char ts[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(db_int(res, 7), ts);
    jw_cstr(w, ts);
    jw_obj_end(w);
    buf_free(&url);
}

/* ---- create ---- */
struct create_work {
    str_t data;
    const struct purpose *pp;
    char id[UUID_STR_LEN + 1];
    enum ftype t;
    const char *why;
    struct buf why_img, key, err;
    char sha[65];
    int w, h, rc; /* rc: 0 stored; 415 type; 422 image; 500 storage */
};

static void create_on_pool(void *arg)
{
    struct create_work *c = arg;
    c->t = files__sniff(c->data, &c->why);
    if (c->t == FT_NONE || !(c->pp->types & T(c->t))) {
        if (c->t != FT_NONE)
            c->why = "this type is not accepted for this purpose";
        c->rc = 415;
        return;
    }
    if (files__is_image(c->t) && files__image_check(c->data, files__cfg.max_pixels, &c->w, &c->h, &c->why_img)) {
        c->rc = 422;
        return;
    }
    sha256_hex(c->data, c->sha);
    files__key(&c->key, str_c(c->id), NULL);
    c->rc = storage_put(files__cfg.st, buf_cstr(&c->key), c->data, files__mime(c->t), &c->err) ? 500 : 0;
}

struct delete_work {
    str_t id;
    bool variants;
};

static void delete_on_pool(void *arg)
{
    struct delete_work *d = arg;
    struct buf key = BUF_INIT(512), err = BUF_INIT(1024);
    for (int i = -1; i < (d->variants ? 3 : 0); i++) {
        buf_reset(&key);
        files__key(&key, d->id, i < 0 ? NULL : variant_names[i]);
        if (storage_delete(files__cfg.st, buf_cstr(&key), &err)) {
            struct log_line l;
            if (log_begin(&l, LOG_WARN, "files: delete from storage failed")) {
                log_str(&l, "key", buf_str(&key));
                log_str(&l, "error", buf_str(&err));
                log_end(&l);
            }
            buf_reset(&err);
        }
    }
    buf_free(&key);
    buf_free(&err);
}

int files__quota_check(struct req *r, str_t user, int64_t add)
{
    int64_t used;
    bool found;
    int rc = db_query_int(r->db, "SELECT coalesce(sum(size), 0) FROM files WHERE owner_id = ?", DB_ARGS(DBA_TEXT(user)),
                          &used, &found);
    if (rc)
        return rc;
    if (used + add > files__cfg.quota_bytes)
        return http_fail(r, 413, "QUOTA_EXCEEDED", "the upload would exceed your storage quota (%lld of %lld bytes used)",
                         (long long)used, (long long)files__cfg.quota_bytes);
    return 0;
}

int files__insert_row(struct db *db, const struct files_new *a)
{
    return db_exec(db,
                   "INSERT INTO files (id, owner_id, purpose, filename, size, mime_type, sha256, storage_key, "
                   "variants_state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ms_ts(?))",
                   DB_ARGS(DBA_CSTR(a->id), DBA_TEXT(a->user), DBA_CSTR(a->purpose), DBA_TEXT(a->filename),
                           DBA_INT(a->size), DBA_CSTR(files__mime(a->t)), DBA_CSTR(a->sha), DBA_CSTR(a->key),
                           DBA_CSTR(files__is_image(a->t) ? "pending" : "none"), DBA_INT(time_now_ms())),
                   NULL);
}

static int enqueue_variants(struct db *db, const char *id)
{
    struct buf payload = BUF_INIT(256);
    (void)buf_printf(&payload, "{\"file_id\":\"%s\"}", id);
    struct job_opts o = JOB_OPTS_DEFAULT;
    o.max_attempts = 3;
    o.timeout_ms = 120000;
    int rc = jobs_enqueue(db, files__variants_kind.kind, buf_str(&payload), &o, NULL);
    buf_free(&payload);
    return rc == JOBS_EINVAL ? DB_ERR : rc;
}

/* files.purge for the ids in payload ({"ids":[...]}), in db's transaction. */
static int enqueue_purge(struct db *db, str_t payload)
{
    struct job_opts o = JOB_OPTS_DEFAULT;
    int rc = jobs_enqueue(db, "files.purge", payload, &o, NULL);
    return rc == JOBS_EINVAL ? DB_ERR : rc < 0 ? rc : 0;
}

int files_forget(struct db *db, str_t id)
{
    if (!uuid_valid(id))
        return DB_OK;
    int64_t n = 0;
    int rc = db_exec(db, "DELETE FROM files WHERE id = ?", DB_ARGS(DBA_TEXT(id)), &n);
    if (rc || n == 0)
        return rc;
    struct buf payload = BUF_INIT(256);
    (void)buf_printf(&payload, "{\"ids\":[\"%.*s\"]}", STR_FMT(id));
    rc = enqueue_purge(db, buf_str(&payload));
    buf_free(&payload);
    return rc;
}

int files_lookup(struct db *db, str_t id, struct db_res **row)
{
    *row = NULL;
    if (!uuid_valid(id))
        return DB_OK;
    struct db_res *res;
    int rc = db_query(db, "SELECT " FILES_REF_COLS " FROM files WHERE id = ?", DB_ARGS(DBA_TEXT(id)), &res);
    if (rc)
        return rc;
    if ((rc = db_next(res)) == 1) {
        *row = res;
        return DB_OK;
    }
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

int files_adopt(struct db *db, str_t id, str_t owner, const char *purpose, const char *new_owner, bool *moved)
{
    int64_t n = 0;
    *moved = false;
    if (!uuid_valid(id))
        return DB_OK;
    int rc = db_exec(db, "UPDATE files SET owner_id = ? WHERE id = ? AND owner_id = ? AND purpose = ?",
                     DB_ARGS(DBA_CSTR(new_owner), DBA_TEXT(id), DBA_TEXT(owner), DBA_CSTR(purpose)), &n);
    *moved = rc == DB_OK && n == 1;
    return rc;
}

int files_put_generated(struct db *db, str_t owner, const char *purpose, str_t filename, str_t data,
                        struct files_info *out, struct buf *err)
{
    const char *why;
    enum ftype t = files__sniff(data, &why);
    if (t == FT_NONE) {
        (void)buf_printf(err, "generated document: %s", why);
        return FILES_ESTORE;
    }
    if (!out->id[0])
        uuid7_str(out->id);
    struct buf key = BUF_INIT(512), name = BUF_INIT(512);
    files__key(&key, str_c(out->id), NULL);
    int rc = storage_put(files__cfg.st, buf_cstr(&key), data, files__mime(t), err) ? FILES_ESTORE : 0;
    if (rc == 0) {
        sha256_hex(data, out->sha256);
        files__sanitize_name(filename, &name);
        struct files_new row = {.id = out->id, .purpose = purpose, .sha = out->sha256, .key = buf_cstr(&key),
                                .user = owner, .filename = buf_str(&name), .size = (int64_t)data.len, .t = t};
        rc = files__insert_row(db, &row);
        if (rc == 0 && files__is_image(t))
            rc = enqueue_variants(db, out->id);
        out->mime = files__mime(t);
        out->size = (int64_t)data.len;
    }
    buf_free(&key);
    buf_free(&name);
    return rc;
}

static int create_tx(struct req *r, void *arg)
{
    struct files_new *a = arg;
    int rc;
    if (db_kind(r->db) == DB_POSTGRES) { /* one upload per user at a time past this point */
        struct db_res *res;
        if ((rc = db_query(r->db, "SELECT id FROM users WHERE id = ? FOR UPDATE", DB_ARGS(DBA_TEXT(a->user)), &res)))
            return rc;
        db_res_free(res);
    }
    if ((rc = files__quota_check(r, a->user, a->size)))
        return rc;
    if ((rc = files__insert_row(r->db, a)) || !files__is_image(a->t))
        return rc;
    return enqueue_variants(r->db, a->id);
}

static int write_one(struct req *r, str_t id)
{
    struct db_res *res;
    int rc = db_query(r->db, "SELECT " FILES_COLS " FROM files WHERE id = ?", DB_ARGS(DBA_TEXT(id)), &res);
    if (rc)
        return http_rc(r, rc);
    rc = db_next(res);
    if (rc == 1)
        files__write(&r->w, res);
    db_res_free(res);
    return rc == 1 ? 0 : http_rc(r, rc < 0 ? rc : DB_ERR);
}

/* Insert the row (quota, variants job) in one transaction; on failure the
 * stored bytes are removed (nothing refers to them). 0 or HTTP_EFAIL. */
static int insert_or_discard(struct req *r, const struct files_new *a)
{
    if (req_tx(r, DB_TX_WRITE, create_tx, (void *)a) == 0)
        return 0;
    struct delete_work d = {.id = str_c(a->id), .variants = false};
    work_run(delete_on_pool, &d);
    return HTTP_EFAIL;
}

int files__insert(struct req *r, const char *id, str_t user, const char *purpose, str_t filename, int64_t size,
                  enum ftype t, const char *sha, const char *key)
{
    struct files_new a = {.id = id, .purpose = purpose, .sha = sha, .key = key, .user = user, .filename = filename,
                          .size = size, .t = t};
    if (insert_or_discard(r, &a))
        return HTTP_EFAIL;
    r->status = 201;
    return write_one(r, str_c(id));
}

/* Store bytes as a new file of owner (worker pool: sniff, hash, image
 * check, storage; then one transaction: quota, row, variants job). */
static int create(struct req *r, str_t owner, str_t filename, const struct purpose *pp, str_t data,
                  struct files_info *out)
{
    if (data.len == 0)
        return http_invalid(r, "file", "is empty (0 bytes)");
    if ((int64_t)data.len > pp->max)
        return http_fail(r, 413, "PAYLOAD_TOO_LARGE", "files for %s may be at most %lld bytes", pp->name,
                         (long long)pp->max);
    int rc = files__quota_check(r, owner, (int64_t)data.len); /* before the work; again in the insert */
    if (rc)
        return http_rc(r, rc);
    struct create_work c = {.data = data, .pp = pp, .why_img = BUF_INIT(512), .key = BUF_INIT(512),
                            .err = BUF_INIT(1024)};
    uuid7_str(c.id);
    work_run(create_on_pool, &c);
    if (c.rc == 415)
        rc = http_fail(r, 415, "UNSUPPORTED_MEDIA_TYPE", "%s", c.why);
    else if (c.rc == 422)
        rc = http_fail(r, 422, "INVALID_IMAGE", "%s", buf_cstr(&c.why_img));
    else if (c.rc)
        rc = http_internal_error(r, "files: store failed", buf_cstr(&c.err));
    else {
        struct buf name = BUF_INIT(512);
        files__sanitize_name(filename, &name);
        struct files_new a = {.id = c.id, .purpose = pp->name, .sha = c.sha, .key = buf_cstr(&c.key), .user = owner,
                              .filename = buf_str(&name), .size = (int64_t)data.len, .t = c.t};
        rc = insert_or_discard(r, &a);
        buf_free(&name);
        if (rc == 0) {
            memcpy(out->id, c.id, sizeof out->id);
            memcpy(out->sha256, c.sha, sizeof out->sha256);
            out->mime = files__mime(c.t);
            out->size = (int64_t)data.len;
        }
    }
    buf_free(&c.why_img);
    buf_free(&c.key);
    buf_free(&c.err);
    return rc;
}

int files_create(struct req *r, str_t owner, const char *purpose, str_t filename, str_t data, struct files_info *out)
{
    const struct purpose *pp = purpose_find(str_c(purpose));
    if (!pp)
        return http_internal_error(r, "files: unknown purpose", purpose);
    return create(r, owner, filename, pp, data, out);
}

const char *files_sniff_mime(str_t data)
{
    const char *why;
    enum ftype t = files__sniff(data, &why);
    return t == FT_NONE ? NULL : files__mime(t);
}

/* ---- routes ---- */
static int h_upload(struct req *r)
{
    struct mp_form form;
    if (mp_parse_request(r, &form))
        return HTTP_EFAIL;
    const struct mp_part *file = mp_find(&form, "file"), *purpose = mp_find(&form, "purpose");
    if (!file)
        return http_invalid(r, "file", "is required (a multipart field named file)");
    const struct purpose *pp = purpose ? purpose_find(purpose->data) : &purposes[0];
    if (!pp)
        return http_invalid(r, "purpose", "must be one of attachment, avatar, product, document");
    struct files_info f;
    if (create(r, r->user_id, file->filename.p ? file->filename : STRLIT("file"), pp, file->data, &f))
        return HTTP_EFAIL;
    r->status = 201;
    return write_one(r, str_c(f.id));
}

static int h_list(struct req *r)
{
    static const char *const allowed[] = {"purpose", NULL};
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    struct db_arg args[4] = {DBA_TEXT(r->user_id)};
    size_t n = 1;
    const str_t *p = req_query(r, "purpose");
    if (p && !purpose_find(*p) && !str_is(*p, "export") && !str_is(*p, "certificate"))
        return http_invalid(r, "purpose", "unknown purpose");
    if (p)
        args[n++] = DBA_TEXT(*p);
    struct http_list_query q = {.cols = FILES_COLS,
                                .from = "FROM files",
                                .where = p ? " WHERE owner_id = ? AND purpose = ?" : " WHERE owner_id = ?",
                                .order = "created_at DESC, id DESC",
                                .row = files__write};
    return http_list(r, &q, args, n, ARRAY_LEN(args));
}

/* The caller's own file (404 for anyone else's: existence is not told).
 * sql: OWN_SQL(columns). */
#define OWN_SQL(cols) "SELECT " cols " FROM files WHERE id = ? AND owner_id = ?"
static int load_own(struct req *r, str_t id, struct db_res **res, const char *sql)
{
    if (!uuid_valid(id))
        return http_fail(r, 404, "NOT_FOUND", "no such file");
    int rc = db_query(r->db, sql, DB_ARGS(DBA_TEXT(id), DBA_TEXT(r->user_id)), res);
    if (rc)
        return http_rc(r, rc);
    rc = db_next(*res);
    if (rc == 1)
        return 0;
    db_res_free(*res);
    return rc < 0 ? http_rc(r, rc) : http_fail(r, 404, "NOT_FOUND", "no such file");
}

static int h_get(struct req *r)
{
    struct db_res *res;
    if (load_own(r, req_param(r, "id"), &res, OWN_SQL(FILES_COLS)))
        return HTTP_EFAIL;
    files__write(&r->w, res);
    db_res_free(res);
    return 0;
}

/* The caller's file goes as files_forget makes any file go: the row now,
 * the bytes by files.purge iff this commits. A certificate goes with its
 * certificate only (409). */
static int delete_tx(struct req *r, void *arg)
{
    str_t id = *(str_t *)arg;
    struct db_res *res;
    int rc = db_query(r->db, OWN_SQL("purpose"), DB_ARGS(DBA_TEXT(id), DBA_TEXT(r->user_id)), &res);
    if (rc)
        return rc;
    bool certificate = (rc = db_next(res)) == 1 && str_is(db_text(res, 0), "certificate");
    db_res_free(res);
    if (rc != 1)
        return rc < 0 ? rc : http_fail(r, 404, "NOT_FOUND", "no such file");
    if (certificate)
        return http_fail(r, 409, "CONFLICT", "this file is a certificate: it goes with its certificate");
    return files_forget(r->db, id);
}

static int h_delete(struct req *r)
{
    str_t id = req_param(r, "id");
    if (!uuid_valid(id))
        return http_fail(r, 404, "NOT_FOUND", "no such file");
    if (req_tx(r, DB_TX_WRITE, delete_tx, &id))
        return HTTP_EFAIL;
    r->status = 204;
    return 0;
}

/* ---- presigned links: HMAC(link_key, id \n variant \n expires) ---- */
static void link_sig(str_t id, str_t variant, int64_t expires, char out[65])
{
    struct buf m = BUF_INIT(512);
    (void)buf_printf(&m, "%.*s\n%.*s\n%lld", STR_FMT(id), STR_FMT(variant), (long long)expires);
    hmac_sha256_hex(files__cfg.link_key, buf_str(&m), out);
    buf_free(&m);
}

static int variant_index(str_t v)
{
    for (int i = 0; i < 3; i++)
        if (str_eq(v, str_c(variant_names[i])))
            return i;
    return -1;
}

static int h_presigned(struct req *r)
{
    static const char *const allowed[] = {"expires_in", "variant", NULL};
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    int64_t ttl = 300;
    const str_t *e = req_query(r, "expires_in"), *v = req_query(r, "variant");
    if (e && parse_i64(*e, 1, 7 * 86400, &ttl))
        return http_invalid(r, "expires_in", "must be an integer from 1 to 604800 (seconds)");
    if (v && variant_index(*v) < 0)
        return http_invalid(r, "variant", "must be thumbnail, medium or large");
    str_t id = req_param(r, "id");
    struct db_res *res;
    if (load_own(r, id, &res, OWN_SQL("id")))
        return HTTP_EFAIL;
    db_res_free(res);
    int64_t expires = time_now_ms() / 1000 + ttl;
    char sig[65];
    link_sig(id, v ? *v : STRLIT(""), expires, sig);
    struct buf url = BUF_INIT(1024);
    (void)buf_printf(&url, "/api/v1/files/%.*s/download?expires=%lld&sig=%s", STR_FMT(id), (long long)expires, sig);
    if (v)
        (void)buf_printf(&url, "&variant=%.*s", STR_FMT(*v));
    char ts[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(expires * 1000, ts);
    jw_obj_begin(&r->w);
    jw_key(&r->w, "url");
    jw_str(&r->w, buf_str(&url));
    jw_key(&r->w, "expires_at");
    jw_cstr(&r->w, ts);
    jw_obj_end(&r->w);
    buf_free(&url);
    return 0;
}

/* Content-Disposition: attachment; filename="ascii"; filename*=UTF-8''pct */
static void disposition(struct buf *b, const char *kind, str_t name)
{
    (void)buf_printf(b, "%s; filename=\"", kind);
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.p[i];
        (void)buf_putc(b, c >= 0x20 && c < 0x7F && c != '"' && c != '\\' ? (char)c : '_');
    }
    (void)buf_puts(b, "\"; filename*=UTF-8''");
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.p[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~", c))
            (void)buf_putc(b, (char)c);
        else
            (void)buf_printf(b, "%%%c%c", digits[c >> 4], digits[c & 15]);
    }
}

/* ---- local downloads: the whole file streamed by h2o (r->send_file), or
 * one range of it (206). libh2o 2.2.5's h2o_file_send() does not look at
 * Range, so a single satisfiable range up to RANGE_MAX bytes is read here
 * (on the worker pool); several ranges or a larger one get the whole file
 * (200), which RFC 9110 §14.2 allows; a range past the end is 416. */
#define RANGE_MAX (8u << 20)

/* "bytes=a-b" | "bytes=a-" | "bytes=-n" → [*from, *to]; 1 ok, 0 ignore, -1 unsatisfiable */
static int parse_range(str_t v, int64_t size, int64_t *from, int64_t *to)
{
    if (!str_has_prefix(v, STRLIT("bytes=")) || memchr(v.p, ',', v.len))
        return 0;
    str_t spec = str_make(v.p + 6, v.len - 6);
    const char *dash = memchr(spec.p, '-', spec.len);
    if (!dash)
        return 0;
    str_t a = str_make(spec.p, (size_t)(dash - spec.p)), b = str_make(dash + 1, spec.len - a.len - 1);
    int64_t x, y;
    if (a.len == 0) { /* suffix */
        if (parse_i64(b, 0, INT64_MAX, &y))
            return 0;
        if (y == 0)
            return -1;
        *from = y >= size ? 0 : size - y;
        *to = size - 1;
        return 1;
    }
    if (parse_i64(a, 0, INT64_MAX, &x))
        return 0;
    if (b.len == 0)
        y = size - 1;
    else if (parse_i64(b, 0, INT64_MAX, &y) || y < x)
        return 0;
    if (x >= size)
        return -1;
    *from = x;
    *to = y >= size ? size - 1 : y;
    return 1;
}

struct range_read {
    const char *path;
    int64_t from, to, size;
    char *into;
    int rc; /* 0, or -1 (open/read failed) */
};

static void stat_on_pool(void *arg)
{
    struct range_read *rr = arg;
    struct stat st;
    rr->rc = stat(rr->path, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -1;
    rr->size = rr->rc ? 0 : (int64_t)st.st_size;
}

static void read_on_pool(void *arg)
{
    struct range_read *rr = arg;
    int fd = open(rr->path, O_RDONLY | O_CLOEXEC);
    size_t want = (size_t)(rr->to - rr->from + 1), got = 0;
    while (fd >= 0 && got < want) {
        ssize_t n = pread(fd, rr->into + got, want - got, rr->from + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (fd >= 0)
        close(fd);
    rr->rc = got == want ? 0 : -1;
}

static int send_local(struct req *r, const char *path)
{
    str_t range = req_header_get(r, "range");
    struct range_read rr = {.path = path};
    if (range.p) {
        work_run(stat_on_pool, &rr);
        if (rr.rc)
            return http_fail(r, 404, "NOT_FOUND", "no such file");
        int k = parse_range(range, rr.size, &rr.from, &rr.to);
        if (k < 0) {
            struct buf cr = BUF_INIT(64);
            (void)buf_printf(&cr, "bytes */%lld", (long long)rr.size);
            req_header(r, "content-range", buf_str(&cr));
            buf_free(&cr);
            return http_fail(r, 416, "RANGE_NOT_SATISFIABLE", "the file has %lld bytes", (long long)rr.size);
        }
        if (k > 0 && rr.to - rr.from + 1 <= (int64_t)RANGE_MAX) {
            rr.into = buf_reserve(&r->out, (size_t)(rr.to - rr.from + 1));
            if (!rr.into)
                return http_internal_error(r, "files: range buffer", "reserve failed");
            work_run(read_on_pool, &rr);
            if (rr.rc)
                return http_fail(r, 404, "NOT_FOUND", "no such file");
            buf_commit(&r->out, (size_t)(rr.to - rr.from + 1));
            struct buf cr = BUF_INIT(128);
            (void)buf_printf(&cr, "bytes %lld-%lld/%lld", (long long)rr.from, (long long)rr.to, (long long)rr.size);
            req_header(r, "content-range", buf_str(&cr));
            buf_free(&cr);
            r->status = 206;
            return 0;
        }
    }
    r->send_file = h2o_strdup(r->pool, path, strlen(path)).base;
    r->status = 200;
    return 0;
}

struct proxy_read {
    const char *key;
    struct buf *out;
    struct buf err;
    int rc;
};

static void proxy_on_pool(void *arg)
{
    struct proxy_read *p = arg;
    p->rc = storage_get(files__cfg.st, p->key, p->out, &p->err);
}


/* files_send with the variant's index (-1: the original); owner (or NULL):
 * only a file of that owner, the same one query (else 404). */
static int send_file(struct req *r, str_t id, int vi, unsigned flags, const str_t *owner)
{
    if (!uuid_valid(id))
        return http_fail(r, 404, "NOT_FOUND", "no such file");
    struct db_res *res;
    int rc = owner ? db_query(r->db, "SELECT filename, mime_type, variants FROM files WHERE id = ? AND owner_id = ?",
                              DB_ARGS(DBA_TEXT(id), DBA_TEXT(*owner)), &res)
                   : db_query(r->db, "SELECT filename, mime_type, variants FROM files WHERE id = ?",
                              DB_ARGS(DBA_TEXT(id)), &res);
    if (rc)
        return http_rc(r, rc);
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? http_rc(r, rc) : http_fail(r, 404, "NOT_FOUND", "no such file");
    }
    if (vi >= 0 && !strstr(db_text(res, 2).p, variant_names[vi])) {
        db_res_free(res);
        return http_fail(r, 404, "NOT_FOUND", "the %s variant does not exist (yet)", variant_names[vi]);
    }
    const char *mime = vi >= 0 ? "image/webp" : h2o_strdup(r->pool, db_text(res, 1).p, db_text(res, 1).len).base;
    struct buf cd = BUF_INIT(2048), key = BUF_INIT(512), loc = BUF_INIT(8192);
    disposition(&cd, strncmp(mime, "image/", 6) == 0 ? "inline" : "attachment", db_text(res, 0));
    db_res_free(res);
    files__key(&key, id, vi >= 0 ? variant_names[vi] : NULL);
    if (storage_kind(files__cfg.st) == STORAGE_LOCAL) {
        rc = storage_local_path(files__cfg.st, buf_cstr(&key), &loc);
        if (rc == 0 && buf_ok(&loc)) {
            r->content_type = mime;
            req_header(r, "content-disposition", buf_str(&cd));
            req_header(r, "accept-ranges", STRLIT("bytes"));
            rc = send_local(r, buf_cstr(&loc));
        } else {
            rc = http_internal_error(r, "files: bad storage key", buf_cstr(&key));
        }
    } else if (flags & FILES_SEND_PROXY) { /* straight into the response (capped at 16 MiB) */
        struct proxy_read p = {.key = buf_cstr(&key), .out = &r->out, .err = BUF_INIT(1024)};
        work_run(proxy_on_pool, &p);
        if (p.rc == STORAGE_ENOTFOUND)
            rc = http_fail(r, 404, "NOT_FOUND", "no such file");
        else if (p.rc || !buf_ok(&r->out))
            rc = http_internal_error(r, "files: storage read failed", buf_cstr(&p.err));
        else {
            r->content_type = mime;
            req_header(r, "content-disposition", buf_str(&cd));
            r->status = 200;
            rc = 0;
        }
        buf_free(&p.err);
    } else {
        rc = storage_presign_get(files__cfg.st, buf_cstr(&key), 300, time_now_ms() / 1000, mime, buf_cstr(&cd), &loc);
        if (rc == 0) {
            r->status = 302;
            req_header(r, "location", buf_str(&loc));
        } else {
            rc = http_internal_error(r, "files: presign failed", buf_cstr(&key));
        }
    }
    buf_free(&cd);
    buf_free(&key);
    buf_free(&loc);
    return rc;
}

int files_send(struct req *r, str_t id, const str_t *variant, unsigned flags)
{
    int vi = variant ? variant_index(*variant) : -1;
    if (variant && vi < 0)
        return http_invalid(r, "variant", "must be thumbnail, medium or large");
    return send_file(r, id, vi, flags, NULL);
}

static int h_download(struct req *r)
{
    static const char *const allowed[] = {"variant", "expires", "sig", NULL};
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    str_t id = req_param(r, "id");
    const str_t *v = req_query(r, "variant"), *e = req_query(r, "expires"), *s = req_query(r, "sig");
    int vi = -1;
    if (v && (vi = variant_index(*v)) < 0)
        return http_invalid(r, "variant", "must be thumbnail, medium or large");
    if (!uuid_valid(id))
        return http_fail(r, 404, "NOT_FOUND", "no such file");
    bool by_link = e || s;
    if (by_link) {
        int64_t expires;
        char want[65];
        if (!e || !s || parse_i64(*e, 0, INT64_MAX / 1000, &expires))
            return http_fail(r, 403, "FORBIDDEN", "the link is not valid");
        link_sig(id, v ? *v : STRLIT(""), expires, want);
        if (!ct_equal(*s, str_c(want)))
            return http_fail(r, 403, "FORBIDDEN", "the link is not valid");
        if (expires < time_now_ms() / 1000)
            return http_fail(r, 403, "LINK_EXPIRED", "the link has expired");
    } else if (!r->user_id.len) {
        return http_fail(r, 401, "UNAUTHORIZED", "authentication required (or use a presigned link)");
    }
    return send_file(r, id, vi, 0, by_link ? NULL : &r->user_id); /* the owner's: 404 for anyone else's */
}

/* ---- the variants job ---- */
static void mark_failed(struct db *db, const char *id)
{
    if (db_exec(db, "UPDATE files SET variants_state = 'failed' WHERE id = ?", DB_ARGS(DBA_CSTR(id)), NULL))
    {
        struct log_line l;
        if (log_begin(&l, LOG_WARN, "files: cannot mark variants failed")) {
            log_cstr(&l, "file_id", id);
            log_end(&l);
        }
    }
}

static enum job_result job_variants(struct job *j, struct buf *result, struct buf *error)
{
    const char *id = json_string_value(json_object_get(j->payload, "file_id"));
    if (!id || !uuid_valid(str_c(id))) {
        (void)buf_puts(error, "payload without a file_id");
        return JOB_FAIL;
    }
    bool found;
    int64_t size;
    int rc = db_query_int(j->db, "SELECT size FROM files WHERE id = ?", DB_ARGS(DBA_CSTR(id)), &size, &found);
    if (rc) {
        (void)buf_puts(error, "database");
        return JOB_RETRY;
    }
    if (!found) { /* deleted meanwhile */
        (void)buf_puts(result, "{\"skipped\":\"deleted\"}");
        return JOB_OK;
    }
    struct buf data = BUF_INIT(HTTP_BODY_MAX + 1), key = BUF_INIT(512), err = BUF_INIT(1024), webp = BUF_INIT(32u << 20),
               json = BUF_INIT(4096);
    enum job_result out = JOB_RETRY;
    files__key(&key, str_c(id), NULL);
    rc = storage_get(files__cfg.st, buf_cstr(&key), &data, &err);
    if (rc) {
        (void)buf_printf(error, "storage: %s", buf_cstr(&err));
        out = rc == STORAGE_ENOTFOUND ? JOB_FAIL : JOB_RETRY;
        goto done;
    }
    int w, h;
    if (files__image_check(buf_str(&data), files__cfg.max_pixels, &w, &h, &err)) {
        (void)buf_printf(error, "image: %s", buf_cstr(&err));
        mark_failed(j->db, id);
        out = JOB_FAIL;
        goto done;
    }
    (void)buf_putc(&json, '{');
    for (int i = 0; i < 3; i++) {
        buf_reset(&webp);
        buf_reset(&key);
        if (files__image_webp(buf_str(&data), variant_px[i], &webp, &err)) {
            (void)buf_printf(error, "image: %s", buf_cstr(&err));
            mark_failed(j->db, id);
            out = JOB_FAIL;
            goto done;
        }
        files__key(&key, str_c(id), variant_names[i]);
        if (storage_put(files__cfg.st, buf_cstr(&key), buf_str(&webp), "image/webp", &err)) {
            (void)buf_printf(error, "storage: %s", buf_cstr(&err));
            goto done;
        }
        (void)buf_printf(&json, "%s\"%s\":{\"url\":\"/api/v1/files/%s/download?variant=%s\",\"size\":%zu,\"max_px\":%d}",
                         i ? "," : "", variant_names[i], id, variant_names[i], webp.len, variant_px[i]);
    }
    (void)buf_putc(&json, '}');
    struct db_res *res;
    if (db_query(j->db, "UPDATE files SET variants = ?, variants_state = 'ready' WHERE id = ? RETURNING owner_id",
                 DB_ARGS(DBA_TEXT(buf_str(&json)), DBA_CSTR(id)), &res)) {
        (void)buf_puts(error, "database");
        goto done;
    }
    bool updated = db_next(res) == 1;
    if (updated) {
        buf_reset(&key);
        buf_reset(&err);
        (void)buf_printf(&key, "user:%.*s", (int)db_text(res, 0).len, db_text(res, 0).p);
        (void)buf_printf(&err, "{\"file_id\":\"%s\",\"variants\":%s}", id, buf_cstr(&json));
    }
    /* SQLite commits a lone statement when it is reset, not at its first row: tell the
     * owner's clients only after that, so a client reading the file on the event sees it ready */
    db_res_free(res);
    if (updated && buf_ok(&key) && buf_ok(&err))
        realtime_publish(buf_cstr(&key), "file.variants_ready", buf_str(&err));
    buf_reset(&err);
    (void)buf_put(result, buf_str(&json));
    out = JOB_OK;
done:
    buf_free(&data);
    buf_free(&key);
    buf_free(&err);
    buf_free(&webp);
    buf_free(&json);
    return out;
}

const struct job_kind files__variants_kind = {
    .kind = "files.variants", .handler = job_variants, .queue = "files", .timeout_ms = 120000};

/* ---- personal data: export, account deletion, guest migration ----
 * Deleting an account deletes the rows in the caller's transaction and
 * enqueues files.purge for the stored bytes, so they go iff it commits. */
static int ud_export(struct db *db, str_t user_id, struct jw *w)
{
    struct db_res *res;
    int rc = db_query(db, "SELECT " FILES_COLS " FROM files WHERE owner_id = ? ORDER BY created_at, id",
                      DB_ARGS(DBA_TEXT(user_id)), &res);
    if (rc)
        return rc;
    jw_arr_begin(w);
    while ((rc = db_next(res)) == 1)
        files__write(w, res);
    jw_arr_end(w);
    db_res_free(res);
    return rc < 0 ? rc : 0;
}

static int ud_delete(struct db *db, str_t user_id)
{
    struct db_res *res;
    struct buf payload = BUF_INIT(4u << 20);
    int rc = db_query(db, "SELECT id FROM files WHERE owner_id = ?", DB_ARGS(DBA_TEXT(user_id)), &res);
    if (rc)
        return rc;
    int n = 0;
    (void)buf_puts(&payload, "{\"ids\":[");
    while ((rc = db_next(res)) == 1)
        (void)buf_printf(&payload, "%s\"%s\"", n++ ? "," : "", db_text(res, 0).p);
    db_res_free(res);
    (void)buf_puts(&payload, "]}");
    if (rc == 0 && n > 0) {
        rc = buf_ok(&payload) ? db_exec(db, "DELETE FROM files WHERE owner_id = ?", DB_ARGS(DBA_TEXT(user_id)), NULL)
                              : DB_ERR;
        if (rc == 0)
            rc = enqueue_purge(db, buf_str(&payload));
    }
    buf_free(&payload);
    return rc < 0 ? rc : 0;
}

static int ud_migrate(struct db *db, str_t guest_id, str_t user_id)
{
    return db_exec(db, "UPDATE files SET owner_id = ? WHERE owner_id = ?", DB_ARGS(DBA_TEXT(user_id), DBA_TEXT(guest_id)),
                   NULL);
}

static const struct user_data_hooks files_user_data = {
    .name = "files", .export_data = ud_export, .delete_data = ud_delete, .migrate_guest = ud_migrate};

static enum job_result job_purge(struct job *j, struct buf *result, struct buf *error)
{
    json_t *ids = json_object_get(j->payload, "ids");
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        const char *id = json_string_value(v);
        if (!id || !uuid_valid(str_c(id)))
            continue;
        struct delete_work d = {.id = str_c(id), .variants = true};
        delete_on_pool(&d); /* a job thread: runs inline */
    }
    (void)buf_printf(result, "{\"purged\":%zu}", json_array_size(ids));
    (void)error;
    return JOB_OK;
}

static const struct job_kind purge_kind = {.kind = "files.purge", .handler = job_purge, .queue = "files"};

/* ---- module ---- */
/* OpenAPI: a file as files__write writes it (upload.c and export.c refer to it too). */
static struct openapi_schema file_schema = {
    .name = "File",
    .json = OPENAPI_JSON({
        "type" : "object",
        "required" : [ "id", "filename", "size", "mime_type", "sha256", "url", "variants", "variants_state", "purpose", "created_at" ],
        "properties" : {
            "id" : {"type" : "string", "format" : "uuid"},
            "filename" : {"type" : "string", "description" : "sanitised"},
            "size" : {"type" : "integer", "minimum" : 0, "description" : "bytes"},
            "mime_type" : {"type" : "string", "description" : "from the bytes, not from the client"},
            "sha256" : {"type" : "string", "pattern" : "^[0-9a-f]{64}$"},
            "url" : {"type" : "string", "description" : "GET it for the bytes (the owner's credentials)"},
            "variants" : {
                "type" : "object",
                "description" : "images: thumbnail, medium and large WebP once variants_state is ready",
                "additionalProperties" : {
                    "type" : "object",
                    "required" : [ "url", "size", "max_px" ],
                    "properties" : {"url" : {"type" : "string"}, "size" : {"type" : "integer"}, "max_px" : {"type" : "integer"}}
                }
            },
            "variants_state" : {"type" : "string", "enum" : [ "none", "pending", "ready", "failed" ]},
            "purpose" : {"type" : "string", "enum" : [ "attachment", "avatar", "product", "document", "export" ]},
            "created_at" : {"type" : "string", "format" : "date-time"}
        }
    })};
#define FILE_OUT OPENAPI_JSON({"$ref" : "#/components/schemas/File"})
#define VARIANT_PARAM                                                                                                  \
    OPENAPI_JSON({"name" : "variant", "in" : "query", "schema" : {"type" : "string", "enum" : [ "thumbnail", "medium", "large" ]}})

static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/files", .handler = h_upload, .auth = AUTH_USER, .rl = RL_WRITE,
     .flags = ROUTE_RAW_BODY, .body_max = HTTP_BODY_MAX,
     .summary = "Upload a file (multipart: file, optional purpose attachment|avatar|product|document); type from the "
                "bytes; images get thumbnail/medium/large WebP variants",
     .tag = "files", .output = FILE_OUT,
     .raw_body = OPENAPI_JSON({"multipart/form-data" : {"schema" : {"type" : "object", "required" : ["file"], "properties" : {
         "file" : {"type" : "string", "format" : "binary"},
         "purpose" : {"type" : "string", "enum" : [ "attachment", "avatar", "product", "document" ], "description" : "default attachment"}}}}})},
    {.method = "GET", .pattern = "/api/v1/files", .handler = h_list, .auth = AUTH_USER, .rl = RL_READ,
     .flags = ROUTE_PAGINATED, .summary = "The caller's files (?purpose=)", .tag = "files",
     .params = OPENAPI_JSON([ {"name" : "purpose", "in" : "query", "schema" : {"type" : "string", "enum" : [ "attachment", "avatar", "product", "document", "export" ]}} ]),
     .output = FILE_OUT},
    {.method = "GET", .pattern = "/api/v1/files/{id}", .handler = h_get, .auth = AUTH_USER, .rl = RL_READ,
     .summary = "One of the caller's files", .tag = "files", .output = FILE_OUT},
    {.method = "GET", .pattern = "/api/v1/files/{id}/download", .handler = h_download, .auth = AUTH_OPTIONAL,
     .rl = RL_READ,
     .summary = "The file's bytes (?variant=thumbnail|medium|large): the owner, or anyone with a presigned link; "
                "Range requests; S3 storage answers with a redirect to a presigned GET",
     .tag = "files",
     .params = "[" VARIANT_PARAM "," OPENAPI_JSON({"name" : "expires", "in" : "query", "description" : "a presigned link's (with sig)", "schema" : {"type" : "integer"}}) "," OPENAPI_JSON({"name" : "sig", "in" : "query", "schema" : {"type" : "string"}}) "," OPENAPI_JSON({"name" : "Range", "in" : "header", "description" : "bytes=a-b: 206 with that part", "schema" : {"type" : "string"}}) "]",
     .output_type = "*/*",
     .output = OPENAPI_JSON({"type" : "string", "format" : "binary", "description" : "the bytes, as the file's mime_type (a variant: image/webp); 206 for a Range"}),
     .status = 302},
    {.method = "GET", .pattern = "/api/v1/files/{id}/presigned", .handler = h_presigned, .auth = AUTH_USER,
     .rl = RL_READ, .summary = "An HMAC-signed download link that works without authentication until it expires "
                               "(?expires_in=300, ?variant=)",
     .tag = "files",
     .params = "[" OPENAPI_JSON({"name" : "expires_in", "in" : "query", "schema" : {"type" : "integer", "minimum" : 1, "maximum" : 604800, "default" : 300}}) "," VARIANT_PARAM "]",
     .output = OPENAPI_JSON({"type" : "object", "required" : [ "url", "expires_at" ], "properties" : {
         "url" : {"type" : "string", "description" : "this server's download path with expires and sig"},
         "expires_at" : {"type" : "string", "format" : "date-time"}}})},
    {.method = "DELETE", .pattern = "/api/v1/files/{id}", .handler = h_delete, .auth = AUTH_USER, .rl = RL_WRITE,
     .summary = "Delete one of the caller's files (and its variants)", .tag = "files", .status = 204},
};

static void register_routes(void)
{
    openapi_schema_add(&file_schema);
    router_add(routes, ARRAY_LEN(routes));
    files__upload_routes();
    files__export_routes();
}

static void register_jobs(void)
{
    jobs_register(&files__variants_kind);
    jobs_register(&purge_kind);
    files__upload_jobs();
    jobs_queue_limit("files", 1); /* image work: one at a time per process */
    files__export_jobs();
}

static int config(const struct config *cfg, struct buf *err)
{
    int64_t mb;
    if (config_env_int("TEMEL_FILES_QUOTA_MB", 100, 1, 1 << 20, &mb, err) ||
        config_env_int("TEMEL_IMAGE_MAX_PIXELS", FILES_IMAGE_MAX_PIXELS_DEFAULT, 10000, 500000000,
                       &files__cfg.max_pixels, err))
        return -1;
    files__cfg.quota_bytes = mb << 20;
    files__cfg.data_dir = cfg->data_dir;
    char *url = config_env_dup("TEMEL_STORAGE_URL");
    storage_close(files__cfg.st);
    int rc = storage_open(url, cfg->data_dir, &files__cfg.st, err);
    free(url);
    return rc;
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    (void)db;
    identity_register_user_data(&files_user_data);
    return secret_derive(cfg, "temel files presigned links v1", files__cfg.link_key, err);
}

static bool health(struct db *db, bool db_up, struct jw *w)
{
    (void)db;
    (void)db_up;
    jw_key(w, "storage");
    jw_obj_begin(w);
    jw_key(w, "status");
    jw_cstr(w, "ok");
    jw_key(w, "backend");
    jw_cstr(w, storage_kind(files__cfg.st) == STORAGE_S3 ? "s3" : "local");
    jw_obj_end(w);
    return true;
}

const struct module files_module = {
    .name = "files",
    .config = config,
    .register_routes = register_routes,
    .register_jobs = register_jobs,
    .init = init,
    .health = health,
};
