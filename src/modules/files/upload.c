/*
 * upload.c — files larger than one request body. libh2o 2.2.5 gives a
 * handler only the complete body (max_request_entity_size is global, 16 MiB;
 * no streaming hook before the body is in memory), so a big file comes in
 * parts of at most STORAGE_PART_SIZE (8 MiB), each one request:
 *
 *   POST /files/uploads {filename, size, purpose}   → 201 {upload_id, part_size, url}
 *   PUT  /files/uploads/{id}  Content-Range: bytes a-b/size, raw bytes
 *        → 202 {received} until the last part, then 201 with the file
 *
 * Parts are appended to <data_dir>/uploads/<id>.part at their offset (in
 * order; a part whose start is not the bytes received so far is 409). At the
 * end the file is checked from disk in 1 MiB steps (SHA-256, UTF-8 for text,
 * the zip's central directory for DOCX/XLSX) and handed to storage: renamed
 * into the local store, or sent to S3 as a multipart upload read from the
 * file 8 MiB at a time. The server holds at most one part per request in
 * memory, whatever the file's size.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/uuid.h"
#include "core/workpool.h"
#include "jobs/jobs.h"
#include "modules/files/files_internal.h"

#include "core/banned.h"

#define UPLOAD_MAX (1024LL << 20) /* 1 GiB per file (the quota still applies) */
#define SCAN_CHUNK (1u << 20)

static void upload_path(struct req *r, str_t id, const char *ext, struct buf *b)
{
    (void)buf_printf(b, "%s/uploads/%.*s.%s", r->cfg->data_dir, STR_FMT(id), ext);
}

static const char *const purposes[] = {"attachment", "document", NULL};
static const struct json_field start_fields[] = {
    {.name = "filename", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 255},
    {.name = "size", .type = JF_INT, .flags = JF_REQUIRED, .min = 1, .max = UPLOAD_MAX},
    {.name = "purpose", .type = JF_STRING, .enum_values = purposes},
    {0},
};
static const struct json_schema start_s = {.fields = start_fields};

struct io_work {
    const char *path, *meta_path;
    str_t data;
    int64_t at;
    int rc; /* 0, or an HTTP status */
    int64_t size_now;
    struct buf *meta;
};

static void start_on_pool(void *arg)
{
    struct io_work *w = arg;
    struct buf dir = BUF_INIT(4096), err = BUF_INIT(512);
    const char *slash = strrchr(w->path, '/');
    (void)buf_append(&dir, w->path, (size_t)(slash - w->path));
    int fd = -1;
    w->rc = 500;
    if (fs_mkdir_p(buf_cstr(&dir), 0700) == 0 &&
        (fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) >= 0 &&
        fs_write_atomic(buf_cstr(&dir), strrchr(w->meta_path, '/') + 1, buf_str(w->meta), 0600, &err) == 0)
        w->rc = 0;
    if (fd >= 0)
        close(fd);
    buf_free(&dir);
    buf_free(&err);
}

static int h_start(struct req *r)
{
    const char *name = json_string_value(json_object_get(r->body, "filename"));
    int64_t size = json_integer_value(json_object_get(r->body, "size"));
    const char *purpose = json_string_value(json_object_get(r->body, "purpose"));
    int qrc = files__quota_check(r, r->user_id, size); /* checked again when the file is inserted */
    if (qrc)
        return http_rc(r, qrc);
    char id[UUID_STR_LEN + 1];
    uuid7_str(id);
    struct buf path = BUF_INIT(4096), meta_path = BUF_INIT(4096), meta = BUF_INIT(4096);
    upload_path(r, str_c(id), "part", &path);
    upload_path(r, str_c(id), "json", &meta_path);
    struct jw w;
    jw_init(&w, &meta);
    jw_obj_begin(&w);
    jw_key(&w, "user");
    jw_str(&w, r->user_id);
    jw_key(&w, "filename");
    jw_cstr(&w, name);
    jw_key(&w, "size");
    jw_int(&w, size);
    jw_key(&w, "purpose");
    jw_cstr(&w, purpose ? purpose : "attachment");
    jw_obj_end(&w);
    struct io_work iw = {.path = buf_cstr(&path), .meta_path = buf_cstr(&meta_path), .meta = &meta};
    work_run(start_on_pool, &iw);
    int rc = 0;
    if (iw.rc)
        rc = http_internal_error(r, "files: cannot start an upload", buf_cstr(&path));
    else {
        r->status = 201;
        jw_obj_begin(&r->w);
        jw_key(&r->w, "upload_id");
        jw_cstr(&r->w, id);
        jw_key(&r->w, "part_size");
        jw_int(&r->w, STORAGE_PART_SIZE);
        jw_key(&r->w, "received");
        jw_int(&r->w, 0);
        jw_key(&r->w, "url");
        struct buf url = BUF_INIT(256);
        (void)buf_printf(&url, "/api/v1/files/uploads/%s", id);
        jw_str(&r->w, buf_str(&url));
        buf_free(&url);
        jw_obj_end(&r->w);
    }
    buf_free(&path);
    buf_free(&meta_path);
    buf_free(&meta);
    return rc;
}

static void read_meta_on_pool(void *arg)
{
    struct io_work *w = arg;
    int fd = open(w->meta_path, O_RDONLY | O_CLOEXEC);
    w->rc = 404;
    if (fd < 0)
        return;
    char *p = buf_reserve(w->meta, 4096);
    ssize_t n = p ? read(fd, p, 4095) : -1;
    close(fd);
    struct stat st;
    if (n > 0 && stat(w->path, &st) == 0) {
        buf_commit(w->meta, (size_t)n);
        w->size_now = (int64_t)st.st_size;
        w->rc = 0;
    }
}

static void append_on_pool(void *arg)
{
    struct io_work *w = arg;
    int fd = open(w->path, O_WRONLY | O_CLOEXEC);
    struct stat st;
    w->rc = 404;
    if (fd < 0)
        return;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        w->rc = 409; /* another part of this upload is being written */
    } else if (fstat(fd, &st) != 0 || (int64_t)st.st_size != w->at) {
        w->size_now = (int64_t)st.st_size;
        w->rc = 409;
    } else {
        size_t off = 0;
        while (off < w->data.len) {
            ssize_t n = pwrite(fd, w->data.p + off, w->data.len - off, w->at + (off_t)off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        w->rc = off == w->data.len ? 0 : 500;
        if (w->rc && ftruncate(fd, w->at) != 0)
            w->rc = 500;
        w->size_now = w->at + (int64_t)off;
    }
    close(fd); /* releases the lock */
}

/* The finished file: type, hash, storage. */
struct finish_work {
    const char *path, *id;
    enum ftype t;
    const char *why;
    char sha[65];
    struct buf key, err;
    int rc; /* 0, 415, 500 */
};

static void finish_on_pool(void *arg)
{
    struct finish_work *f = arg;
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    char *chunk = malloc(SCAN_CHUNK + 4);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    f->rc = 500;
    if (fd < 0 || !chunk || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
        goto out;
    /* the head decides the family; text is checked all the way */
    ssize_t n = read(fd, chunk, SCAN_CHUNK);
    if (n <= 0)
        goto out;
    str_t head = str_make(chunk, (size_t)n);
    f->t = files__sniff(head, &f->why); /* text/CSV from the first MiB; PDF by magic */
    bool text = f->t == FT_TEXT || f->t == FT_CSV;
    if (head.len >= 4 && memcmp(head.p, "PK\x03\x04", 4) == 0)
        f->t = files__sniff_zip_file(f->path, &f->why);
    else if (files__is_image(f->t)) {
        f->t = FT_NONE;
        f->why = "images larger than one request (16 MiB) are not accepted";
    } else if (f->t == FT_NONE && n == SCAN_CHUNK) {
        /* the first MiB may end inside a UTF-8 sequence: judge the text below */
        size_t cut = head.len;
        while (cut > head.len - 4 && ((unsigned char)head.p[cut - 1] & 0xC0) == 0x80)
            cut--;
        if (cut > 0 && (unsigned char)head.p[cut - 1] >= 0xC0)
            cut--;
        if (files__text_chunk_ok(str_make(head.p, cut))) {
            f->t = FT_TEXT;
            text = true;
        }
    }
    if (f->t == FT_NONE) {
        f->rc = 415;
        goto out;
    }
    /* hash everything; for text, check every byte (carrying a split code point) */
    size_t carry = 0;
    for (;;) {
        EVP_DigestUpdate(md, chunk + carry, (size_t)n - carry);
        if (text) {
            size_t cut = (size_t)n;
            while (cut > 0 && (size_t)n - cut < 3 && ((unsigned char)chunk[cut - 1] & 0xC0) == 0x80)
                cut--;
            if (cut > 0 && (unsigned char)chunk[cut - 1] >= 0xC0)
                cut--;
            else
                cut = (size_t)n; /* ended on a whole code point */
            if (!files__text_chunk_ok(str_make(chunk, cut))) {
                f->t = FT_NONE;
                f->why = "the text is not valid UTF-8 or has control characters";
                f->rc = 415;
                goto out;
            }
            carry = (size_t)n - cut;
            memmove(chunk, chunk + cut, carry);
        }
        n = read(fd, chunk + carry, SCAN_CHUNK);
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        n += (ssize_t)carry;
    }
    if (carry) {
        f->t = FT_NONE;
        f->why = "the text ends inside a UTF-8 sequence";
        f->rc = 415;
        goto out;
    }
    unsigned char d[32];
    unsigned int dl = 32;
    EVP_DigestFinal_ex(md, d, &dl);
    for (int i = 0; i < 32; i++) {
        static const char hx[] = "0123456789abcdef";
        f->sha[2 * i] = hx[d[i] >> 4];
        f->sha[2 * i + 1] = hx[d[i] & 15];
    }
    f->sha[64] = 0;
    files__key(&f->key, str_c(f->id), NULL);
    f->rc = storage_put_file(files__cfg.st, buf_cstr(&f->key), f->path, true, files__mime(f->t), &f->err) ? 500 : 0;
out:
    if (fd >= 0)
        close(fd);
    free(chunk);
    EVP_MD_CTX_free(md);
}

static void unlink_on_pool(void *arg)
{
    struct io_work *w = arg;
    unlink(w->path);
    unlink(w->meta_path);
}

/* "bytes a-b/total" */
static bool parse_content_range(str_t v, int64_t *a, int64_t *b, int64_t *total)
{
    if (!str_has_prefix(v, STRLIT("bytes ")))
        return false;
    const char *p = v.p + 6, *e = v.p + v.len;
    const char *dash = memchr(p, '-', (size_t)(e - p));
    const char *slash = dash ? memchr(dash, '/', (size_t)(e - dash)) : NULL;
    return slash && !parse_i64(str_make(p, (size_t)(dash - p)), 0, UPLOAD_MAX, a) &&
           !parse_i64(str_make(dash + 1, (size_t)(slash - dash - 1)), 0, UPLOAD_MAX, b) &&
           !parse_i64(str_make(slash + 1, (size_t)(e - slash - 1)), 1, UPLOAD_MAX, total) && *a <= *b && *b < *total;
}

static int h_part(struct req *r)
{
    str_t id = req_param(r, "id");
    if (!uuid_valid(id))
        return http_fail(r, 404, "NOT_FOUND", "no such upload");
    int64_t a, b, total;
    if (!parse_content_range(req_header_get(r, "content-range"), &a, &b, &total))
        return http_fail(r, 400, "BAD_REQUEST", "Content-Range: bytes <first>-<last>/<size> is required");
    if (b - a + 1 != (int64_t)r->entity.len)
        return http_fail(r, 400, "BAD_REQUEST", "the body has %zu bytes, Content-Range says %lld", r->entity.len,
                         (long long)(b - a + 1));
    struct buf path = BUF_INIT(4096), meta_path = BUF_INIT(4096), meta = BUF_INIT(8192);
    upload_path(r, id, "part", &path);
    upload_path(r, id, "json", &meta_path);
    struct io_work iw = {.path = buf_cstr(&path), .meta_path = buf_cstr(&meta_path), .meta = &meta};
    work_run(read_meta_on_pool, &iw);
    json_t *m = iw.rc ? NULL : json_loadb(meta.ptr, meta.len, 0, NULL);
    int rc = 0;
    const char *user = json_string_value(json_object_get(m, "user"));
    int64_t size = json_integer_value(json_object_get(m, "size"));
    if (!m || !user || !str_eq(str_c(user), r->user_id)) {
        rc = http_fail(r, 404, "NOT_FOUND", "no such upload");
        goto done;
    }
    if (total != size) {
        rc = http_fail(r, 400, "BAD_REQUEST", "the upload was started with size %lld", (long long)size);
        goto done;
    }
    iw.data = r->entity;
    iw.at = a;
    work_run(append_on_pool, &iw);
    if (iw.rc == 409) {
        rc = http_fail(r, 409, "CONFLICT", "expected the part starting at byte %lld", (long long)iw.size_now);
        goto done;
    }
    if (iw.rc) {
        rc = http_internal_error(r, "files: cannot store a part", buf_cstr(&path));
        goto done;
    }
    if (iw.size_now < size) {
        r->status = 202;
        jw_obj_begin(&r->w);
        jw_key(&r->w, "received");
        jw_int(&r->w, iw.size_now);
        jw_key(&r->w, "size");
        jw_int(&r->w, size);
        jw_obj_end(&r->w);
        goto done;
    }
    /* the last part: check, store, insert (the quota is checked in the insert) */
    char fid[UUID_STR_LEN + 1];
    memcpy(fid, id.p, UUID_STR_LEN);
    fid[UUID_STR_LEN] = 0;
    struct finish_work f = {.path = buf_cstr(&path), .id = fid, .key = BUF_INIT(512), .err = BUF_INIT(1024)};
    work_run(finish_on_pool, &f);
    const char *purpose = json_string_value(json_object_get(m, "purpose"));
    struct buf name = BUF_INIT(512);
    files__sanitize_name(str_c(json_string_value(json_object_get(m, "filename"))), &name);
    if (f.rc == 415)
        rc = http_fail(r, 415, "UNSUPPORTED_MEDIA_TYPE", "%s", f.why);
    else if (f.rc)
        rc = http_internal_error(r, "files: store failed", f.err.len ? buf_cstr(&f.err) : buf_cstr(&path));
    else
        rc = files__insert(r, fid, r->user_id, purpose ? purpose : "attachment", buf_str(&name), size, f.t, f.sha,
                           buf_cstr(&f.key));
    work_run(unlink_on_pool, &iw); /* the upload is over either way */
    buf_free(&name);
    buf_free(&f.key);
    buf_free(&f.err);
done:
    json_decref(m);
    buf_free(&path);
    buf_free(&meta_path);
    buf_free(&meta);
    return rc;
}

static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/files/uploads", .handler = h_start, .auth = AUTH_USER, .rl = RL_WRITE,
     .input = &start_s,
     .summary = "Start an upload in parts (files above the 16 MiB request cap): {filename, size, purpose}",
     .tag = "files",
     .output = OPENAPI_JSON({"type" : "object", "required" : [ "upload_id", "part_size", "received", "url" ], "properties" : {
         "upload_id" : {"type" : "string", "format" : "uuid", "description" : "also the file's id once complete"},
         "part_size" : {"type" : "integer", "description" : "the largest part PUT takes, bytes"},
         "received" : {"type" : "integer", "minimum" : 0},
         "url" : {"type" : "string", "description" : "where to PUT the parts"}}})},
    {.method = "PUT", .pattern = "/api/v1/files/uploads/{id}", .handler = h_part, .auth = AUTH_USER, .rl = RL_WRITE,
     .flags = ROUTE_RAW_BODY, .body_max = STORAGE_PART_SIZE,
     .summary = "One part (Content-Range: bytes a-b/size, at most 8 MiB, in order); the last part answers 201 with "
                "the file",
     .tag = "files",
     .params = OPENAPI_JSON([ {"name" : "Content-Range", "in" : "header", "required" : true, "description" : "bytes a-b/size", "schema" : {"type" : "string"}} ]),
     .output = OPENAPI_JSON({"oneOf" : [ {"type" : "object", "description" : "202: more parts to come", "required" : [ "received", "size" ], "additionalProperties" : false,
                                          "properties" : {"received" : {"type" : "integer"}, "size" : {"type" : "integer"}}},
                                         {"$ref" : "#/components/schemas/File"} ]})},
};

void files__upload_routes(void) { router_add(routes, ARRAY_LEN(routes)); }

/* Hourly (jobs.maintenance): uploads untouched for UPLOAD_ABANDON_S are removed. */
#define UPLOAD_ABANDON_S (24 * 3600)
static int purge_uploads(struct db *db, int64_t now_ms, int64_t *removed)
{
    (void)db;
    struct buf dir = BUF_INIT(4096), path = BUF_INIT(4096);
    (void)buf_printf(&dir, "%s/uploads", files__cfg.data_dir);
    DIR *d = opendir(buf_cstr(&dir));
    struct dirent *e;
    while (d && (e = readdir(d))) {
        struct stat st;
        buf_reset(&path);
        (void)buf_printf(&path, "%s/%s", buf_cstr(&dir), e->d_name);
        if (e->d_name[0] != '.' && stat(buf_cstr(&path), &st) == 0 && S_ISREG(st.st_mode) &&
            (int64_t)st.st_mtime * 1000 + UPLOAD_ABANDON_S * 1000LL < now_ms && unlink(buf_cstr(&path)) == 0)
            (*removed)++;
    }
    if (d)
        closedir(d);
    buf_free(&dir);
    buf_free(&path);
    return 0;
}

void files__upload_jobs(void) { jobs_maintenance_register("files.uploads", purge_uploads); }
