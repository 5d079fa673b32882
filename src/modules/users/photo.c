/*
 * photo.c — the caller's profile photo (API.md §3), kept by the files
 * module (API.md §7, issue 13 item 2).
 *
 * POST /me/photo takes multipart/form-data with the image in field `photo`
 * (or `file`), at most USERS_PHOTO_MAX bytes, JPEG/PNG/WebP by magic bytes
 * (anything else 415; the part's Content-Type and filename are ignored).
 * It becomes a file of the user with purpose "avatar" (files_create: the
 * whole image decoded within the pixel limit — an undecodable one is 422
 * INVALID_IMAGE —, stored in the configured storage, thumbnail/medium/large
 * WebP variants made by the files job, the user's quota). user_photos
 * points at it; the previous photo file is forgotten in the same
 * transaction (its bytes purged by a job once it commits).
 * GET /me/photo answers the bytes (200 on local and S3 storage alike;
 * ?variant=thumbnail|medium|large once the job made them).
 * DELETE /me/photo forgets the file. Deleting the account deletes every
 * file of the user (the files module's user-data hook), the photo too;
 * deleting the file through DELETE /files/{id} removes the photo (the
 * reference cascades).
 *
 * Photos stored before (<data_dir>/photos/<user_id>.<jpg|png|webp>) are
 * moved into files when the server starts (users__photo_migrate), then
 * removed from that directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "http/multipart.h"
#include "modules/files/files.h"
#include "modules/users/users_internal.h"

#include "core/banned.h"

static const char *const photo_mimes[] = {"image/jpeg", "image/png", "image/webp"};
static const char *const photo_exts[] = {"jpg", "png", "webp"};

/* The photo's type by its magic bytes (the head is enough), or NULL. */
static const char *photo_mime(str_t d)
{
    const char *m = files_sniff_mime(str_make(d.p, d.len < 64 ? d.len : 64));
    for (size_t i = 0; m && i < ARRAY_LEN(photo_mimes); i++)
        if (!strcmp(m, photo_mimes[i]))
            return m;
    return NULL;
}

/* Forget user_id's photo file, if any (the user_photos row goes with it). */
static int forget_photo(struct db *db, str_t user_id)
{
    struct db_res *res;
    int rc = db_query(db, "SELECT file_id FROM user_photos WHERE user_id = ?", DB_ARGS(DBA_TEXT(user_id)), &res);
    if (rc)
        return rc;
    if ((rc = db_next(res)) == 1)
        rc = files_forget(db, db_text(res, 0));
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

/* Point user_photos at file_id, forgetting the previous photo's file. */
static int set_photo(struct db *db, str_t user_id, str_t file_id)
{
    struct db_res *res;
    int rc;
    if (db_kind(db) == DB_POSTGRES) { /* one photo change per user at a time */
        if ((rc = db_query(db, "SELECT id FROM users WHERE id = ? FOR UPDATE", DB_ARGS(DBA_TEXT(user_id)), &res)))
            return rc;
        db_res_free(res);
    }
    if ((rc = forget_photo(db, user_id)))
        return rc;
    return db_exec(db, "INSERT INTO user_photos (user_id, file_id, created_at) VALUES (?, ?, ms_ts(?))",
                   DB_ARGS(DBA_TEXT(user_id), DBA_TEXT(file_id), DBA_INT(time_now_ms())), NULL);
}

static int tx_set(struct req *r, void *arg) { return set_photo(r->db, r->user_id, *(str_t *)arg); }

static int tx_forget(struct req *r, void *arg) { return files_forget(r->db, *(str_t *)arg); }

int users__h_photo_upload(struct req *r)
{
    struct mp_form form;
    if (mp_parse_request(r, &form))
        return HTTP_EFAIL;
    const struct mp_part *part = mp_find(&form, "photo");
    if (!part)
        part = mp_find(&form, "file");
    if (!part)
        return http_invalid(r, "photo", "is required (a multipart field named photo or file)");
    if (part->data.len > USERS_PHOTO_MAX)
        return http_fail(r, 413, "PAYLOAD_TOO_LARGE", "the photo is larger than %u bytes", USERS_PHOTO_MAX);
    const char *mime = photo_mime(part->data);
    if (!mime)
        return http_fail(r, 415, "UNSUPPORTED_MEDIA_TYPE", "the photo must be a JPEG, PNG or WebP image");
    struct files_info f;
    if (files_create(r, r->user_id, "avatar", part->filename.p ? part->filename : STRLIT("photo"), part->data, &f))
        return HTTP_EFAIL;
    str_t fid = str_c(f.id);
    if (req_tx(r, DB_TX_WRITE, tx_set, &fid)) {
        if (req_tx(r, DB_TX_WRITE, tx_forget, &fid)) /* not the photo: not kept either */
            log_warn("users: a photo file that is not the photo was kept (the cleanup failed too)");
        return HTTP_EFAIL;
    }
    r->status = 201;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "photo_url");
    jw_cstr(&r->w, "/api/v1/me/photo");
    jw_key(&r->w, "mime_type");
    jw_cstr(&r->w, f.mime);
    jw_key(&r->w, "size");
    jw_int(&r->w, f.size);
    jw_key(&r->w, "sha256");
    jw_cstr(&r->w, f.sha256);
    jw_key(&r->w, "file_id");
    jw_cstr(&r->w, f.id);
    jw_obj_end(&r->w);
    return 0;
}

/* The user's photo file id into id (request pool), or 404 recorded. */
static int photo_file(struct req *r, str_t *id)
{
    struct db_res *res;
    int rc = db_query(r->db, "SELECT file_id FROM user_photos WHERE user_id = ?", DB_ARGS(DBA_TEXT(r->user_id)), &res);
    if (rc)
        return http_rc(r, rc);
    if ((rc = db_next(res)) == 1) {
        struct buf *b = req_buf(r, 64);
        (void)buf_put(b, db_text(res, 0));
        *id = buf_str(b);
    }
    db_res_free(res);
    if (rc < 0)
        return http_rc(r, rc);
    return rc == 1 ? 0 : http_fail(r, 404, "NOT_FOUND", "no photo");
}

int users__h_photo_get(struct req *r)
{
    static const char *const allowed[] = {"variant", NULL};
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    str_t id;
    if (photo_file(r, &id))
        return HTTP_EFAIL;
    return files_send(r, id, req_query(r, "variant"), FILES_SEND_PROXY);
}

static int tx_delete(struct req *r, void *arg)
{
    (void)arg;
    return forget_photo(r->db, r->user_id);
}

int users__h_photo_delete(struct req *r)
{
    if (req_tx(r, DB_TX_WRITE, tx_delete, NULL))
        return HTTP_EFAIL;
    r->status = 204;
    return 0;
}

int users__photo_write_meta(struct db *db, str_t user_id, struct jw *w)
{
    struct db_res *res;
    int rc = db_query(db, "SELECT f.mime_type, f.size FROM user_photos p JOIN files f ON f.id = p.file_id "
                          "WHERE p.user_id = ?",
                      DB_ARGS(DBA_TEXT(user_id)), &res);
    if (rc)
        return rc;
    if ((rc = db_next(res)) == 1) {
        jw_obj_begin(w);
        jw_key(w, "mime_type");
        jw_str(w, db_text(res, 0));
        jw_key(w, "size");
        jw_int(w, db_int(res, 1));
        jw_obj_end(w);
    } else if (rc == 0) {
        jw_null(w);
    }
    db_res_free(res);
    return rc < 0 ? rc : DB_OK;
}

int users__photo_migrate_guest(struct db *db, str_t guest_id, str_t user_id)
{
    /* the account's own photo wins; the guest's moves only when it has none */
    int rc = db_exec(db,
                     "UPDATE user_photos SET user_id = ? WHERE user_id = ? AND NOT EXISTS "
                     "(SELECT 1 FROM user_photos WHERE user_id = ?)",
                     DB_ARGS(DBA_TEXT(user_id), DBA_TEXT(guest_id), DBA_TEXT(user_id)), NULL);
    /* a guest photo not moved is not kept: no file of the account that nothing shows */
    return rc ? rc : forget_photo(db, guest_id);
}

/* ---- photos stored before the files module kept them ---- */

/* "<uuid>.<ext>" with a photo extension: the user id into id (37 bytes). */
static bool legacy_name(const char *name, char id[UUID_STR_LEN + 1], size_t *ext)
{
    const char *dot = strrchr(name, '.');
    if (!dot || (size_t)(dot - name) != UUID_STR_LEN)
        return false;
    for (size_t i = 0; i < ARRAY_LEN(photo_exts); i++) {
        if (!strcmp(dot + 1, photo_exts[i])) {
            memcpy(id, name, UUID_STR_LEN);
            id[UUID_STR_LEN] = '\0';
            *ext = i;
            return uuid_valid(str_c(id));
        }
    }
    return false;
}

static int read_small(const char *path, struct buf *out)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size <= USERS_PHOTO_MAX) {
        char *w = buf_reserve(out, (size_t)st.st_size);
        size_t got = 0;
        while (w && got < (size_t)st.st_size) {
            ssize_t n = read(fd, w + got, (size_t)st.st_size - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (w && got == (size_t)st.st_size) {
            buf_commit(out, got);
            rc = 0;
        }
    }
    close(fd);
    return rc;
}

struct legacy {
    const char *user_id, *ext;
    str_t data;
    struct buf err;
};

static int tx_legacy(struct db *db, void *arg)
{
    struct legacy *l = arg;
    bool found;
    int64_t one;
    int rc = db_query_int(db, "SELECT 1 FROM users WHERE id = ?", DB_ARGS(DBA_CSTR(l->user_id)), &one, &found);
    if (rc || !found) /* an account deleted since: nothing to keep */
        return rc;
    if ((rc = db_query_int(db, "SELECT 1 FROM user_photos WHERE user_id = ?", DB_ARGS(DBA_CSTR(l->user_id)), &one,
                           &found)) || found) /* a newer photo won */
        return rc;
    struct buf name = BUF_INIT(64);
    (void)buf_printf(&name, "photo.%s", l->ext);
    struct files_info f = {0};
    rc = files_put_generated(db, str_c(l->user_id), "avatar", buf_str(&name), l->data, &f, &l->err);
    buf_free(&name);
    if (rc)
        return rc == FILES_ESTORE ? DB_ERR : rc;
    return set_photo(db, str_c(l->user_id), str_c(f.id));
}

void users__photo_migrate(const struct config *cfg, struct db *db)
{
    struct buf dir = BUF_INIT(4096);
    (void)buf_printf(&dir, "%s/photos", cfg->data_dir);
    DIR *d = buf_ok(&dir) ? opendir(buf_cstr(&dir)) : NULL;
    int moved = 0, failed = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char id[UUID_STR_LEN + 1];
        size_t ext;
        if (!legacy_name(e->d_name, id, &ext))
            continue;
        struct buf path = BUF_INIT(4096), data = BUF_INIT(USERS_PHOTO_MAX);
        (void)buf_printf(&path, "%s/%s", buf_cstr(&dir), e->d_name);
        struct legacy l = {.user_id = id, .ext = photo_exts[ext], .err = BUF_INIT(1024)};
        int rc = buf_ok(&path) ? read_small(buf_cstr(&path), &data) : -1;
        if (rc == 0) {
            l.data = buf_str(&data);
            rc = db_tx(db, DB_TX_WRITE, tx_legacy, &l);
        }
        if (rc == 0 && unlink(buf_cstr(&path)) == 0) {
            moved++;
        } else {
            failed++;
            struct log_line ll;
            if (log_begin(&ll, LOG_WARN, "users: an old photo could not be moved into files (kept on disk)")) {
                log_str(&ll, "file", buf_str(&path));
                log_str(&ll, "error", l.err.len ? buf_str(&l.err) : STRLIT("read or database"));
                log_end(&ll);
            }
        }
        buf_free(&l.err);
        buf_free(&path);
        buf_free(&data);
    }
    if (d) {
        closedir(d);
        (void)rmdir(buf_cstr(&dir)); /* only when empty */
    }
    if (moved || failed)
        log_info("users: %d old photo(s) moved into files, %d left", moved, failed);
    buf_free(&dir);
}
