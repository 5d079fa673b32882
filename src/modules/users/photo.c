/*
 * photo.c — the caller's profile photo (API.md §3, ARCHITECTURE.md §6).
 *
 * POST /me/photo takes multipart/form-data with the image in field `photo`
 * (or `file`). The type is decided by magic bytes only: the part's
 * Content-Type and filename are ignored, and nothing the client sends ever
 * becomes part of a path. The file is <data_dir>/photos/<user_id>.<ext>,
 * written atomically (temp file in the same directory, fsync, rename); a
 * photo of another type is removed afterwards. The file system is the
 * only record — no table, so both engines behave the same and deleting a
 * user needs just users__photo_remove() after the transaction commits.
 *
 * Store/remove sequences are serialised by one process-wide mutex so two
 * concurrent uploads of different types cannot leave two files or none.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/crypto.h"
#include "core/fsutil.h"
#include "http/multipart.h"
#include "modules/users/users_internal.h"

#include "core/banned.h"

struct photo_type {
    const char *ext, *mime;
};
static const struct photo_type types[] = {
    {"jpg", "image/jpeg"},
    {"png", "image/png"},
    {"webp", "image/webp"},
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

/* The type by magic bytes, or NULL. */
static const struct photo_type *sniff(str_t d)
{
    const unsigned char *u = (const unsigned char *)d.p;
    if (d.len >= 3 && u[0] == 0xFF && u[1] == 0xD8 && u[2] == 0xFF)
        return &types[0];
    if (d.len >= 8 && memcmp(u, "\x89PNG\r\n\x1a\n", 8) == 0)
        return &types[1];
    if (d.len >= 12 && memcmp(u, "RIFF", 4) == 0 && memcmp(u + 8, "WEBP", 4) == 0)
        return &types[2];
    return NULL;
}

/* User ids are UUIDs from our own database; check anyway before one goes
 * into a path. */
static bool id_is_safe(str_t id)
{
    if (id.len < 1 || id.len > 64)
        return false;
    for (size_t i = 0; i < id.len; i++) {
        char c = id.p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-'))
            return false;
    }
    return true;
}

static int photo_dir(const struct config *cfg, struct buf *b)
{
    (void)buf_printf(b, "%s/photos", cfg->data_dir);
    return buf_ok(b) ? 0 : -1;
}

static int photo_path(const struct config *cfg, str_t user_id, const struct photo_type *t, struct buf *b)
{
    (void)buf_printf(b, "%s/photos/%.*s.%s", cfg->data_dir, STR_FMT(user_id), t->ext);
    return buf_ok(b) ? 0 : -1;
}

/* Open the user's photo: fd (regular file, size in *st) and its type, or -1. */
static int photo_open(const struct config *cfg, str_t user_id, const struct photo_type **type, struct stat *st)
{
    if (!id_is_safe(user_id))
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(types); i++) {
        struct buf path = BUF_INIT(4096);
        int fd = photo_path(cfg, user_id, &types[i], &path) ? -1
                                                             : open(buf_cstr(&path), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        buf_free(&path);
        if (fd < 0)
            continue;
        if (fstat(fd, st) == 0 && S_ISREG(st->st_mode)) {
            *type = &types[i];
            return fd;
        }
        close(fd);
    }
    return -1;
}

/* Unlink every photo of the user except `keep` (NULL: all). Caller holds g_lock. */
static void remove_locked(const struct config *cfg, str_t user_id, const struct photo_type *keep)
{
    for (size_t i = 0; i < ARRAY_LEN(types); i++) {
        struct buf path = BUF_INIT(4096);
        if (&types[i] != keep && photo_path(cfg, user_id, &types[i], &path) == 0)
            (void)unlink(buf_cstr(&path));
        buf_free(&path);
    }
}

void users__photo_remove(const struct config *cfg, str_t user_id)
{
    if (!id_is_safe(user_id))
        return;
    pthread_mutex_lock(&g_lock);
    remove_locked(cfg, user_id, NULL);
    pthread_mutex_unlock(&g_lock);
}

void users__photo_write_meta(const struct config *cfg, str_t user_id, struct jw *w)
{
    const struct photo_type *t;
    struct stat st;
    int fd = photo_open(cfg, user_id, &t, &st);
    if (fd < 0) {
        jw_null(w);
        return;
    }
    close(fd);
    jw_obj_begin(w);
    jw_key(w, "mime_type");
    jw_cstr(w, t->mime);
    jw_key(w, "size");
    jw_int(w, (int64_t)st.st_size);
    jw_obj_end(w);
}

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
    const struct photo_type *t = sniff(part->data);
    if (!t)
        return http_fail(r, 415, "UNSUPPORTED_MEDIA_TYPE", "the photo must be a JPEG, PNG or WebP image");
    if (!id_is_safe(r->user_id))
        return http_internal_error(r, "photo: unexpected user id", "user id not usable in a path");

    struct buf dir = BUF_INIT(4096), name = BUF_INIT(128), err = BUF_INIT(512);
    (void)buf_printf(&name, "%.*s.%s", STR_FMT(r->user_id), t->ext);
    pthread_mutex_lock(&g_lock);
    int rc = -1;
    if (photo_dir(r->cfg, &dir) || !buf_ok(&name))
        (void)buf_puts(&err, "path too long");
    else if (fs_mkdir_p(buf_cstr(&dir), 0700))
        (void)buf_printf(&err, "cannot create %s: %s", buf_cstr(&dir), strerror(errno));
    else if ((rc = fs_write_atomic(buf_cstr(&dir), buf_cstr(&name), part->data, 0600, &err)) == 0)
        remove_locked(r->cfg, r->user_id, t);
    pthread_mutex_unlock(&g_lock);
    buf_free(&dir);
    buf_free(&name);
    if (rc != 0) {
        rc = http_internal_error(r, "photo: store failed", buf_cstr(&err));
        buf_free(&err);
        return rc;
    }
    buf_free(&err);

    char hash[65];
    sha256_hex(part->data, hash);
    r->status = 201;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "photo_url");
    jw_cstr(&r->w, "/api/v1/me/photo");
    jw_key(&r->w, "mime_type");
    jw_cstr(&r->w, t->mime);
    jw_key(&r->w, "size");
    jw_int(&r->w, (int64_t)part->data.len);
    jw_key(&r->w, "sha256");
    jw_cstr(&r->w, hash);
    jw_obj_end(&r->w);
    return 0;
}

int users__h_photo_get(struct req *r)
{
    const struct photo_type *t;
    struct stat st;
    int fd = photo_open(r->cfg, r->user_id, &t, &st);
    if (fd < 0)
        return http_fail(r, 404, "NOT_FOUND", "no photo");
    if (st.st_size < 0 || (uint64_t)st.st_size > USERS_PHOTO_MAX) {
        close(fd);
        return http_internal_error(r, "photo: stored file has an unexpected size", "size out of range");
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *w = buf_reserve(&r->out, size);
    while (w && got < size) {
        ssize_t n = read(fd, w + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!w || got != size)
        return http_internal_error(r, "photo: read failed", w ? "short read" : "buffer");
    buf_commit(&r->out, size);
    r->content_type = t->mime;
    return 0;
}

int users__h_photo_delete(struct req *r)
{
    users__photo_remove(r->cfg, r->user_id);
    r->status = 204;
    return 0;
}
