/*
 * files_internal.h — shared by the files module's sources only.
 */
#ifndef TEMEL_FILES_INTERNAL_H
#define TEMEL_FILES_INTERNAL_H

#include "core/buf.h"
#include "http/http.h"
#include "storage/storage.h"

/* Types decided from the bytes (sniff.c). */
enum ftype {
    FT_NONE = 0,
    FT_JPEG,
    FT_PNG,
    FT_WEBP,
    FT_GIF,
    FT_PDF,
    FT_DOCX,
    FT_XLSX,
    FT_TEXT,
    FT_CSV,
};
const char *files__mime(enum ftype t);
bool files__is_image(enum ftype t);
/* The type of data, or FT_NONE with a reason (English, for a 415) in why.
 * Pure CPU (zip inspection included): run on the worker pool for big data. */
enum ftype files__sniff(str_t data, const char **why);
/* The same for a zip on disk (read through its central directory). */
enum ftype files__sniff_zip_file(const char *path, const char **why);
/* Valid UTF-8 without control bytes other than TAB CR LF FF. */
bool files__text_chunk_ok(str_t d);
/* Zip limits against bombs (the central directory is read, nothing inflated). */
#define FILES_ZIP_MAX_ENTRIES 5000
#define FILES_ZIP_MAX_TOTAL (200u << 20) /* declared uncompressed bytes */
#define FILES_ZIP_MAX_RATIO 100          /* per entry, above 1 MiB */

/* image.c (libvips): called on the worker pool or in a job, never on a loop. */
#define FILES_IMAGE_MAX_PIXELS_DEFAULT 40000000 /* 40 megapixels */
void files__vips_init(void);
/* Decode the whole image (fail on any error); 0 with *w, *h, or -1 with a
 * reason (decompression bomb: more than max_pixels). */
int files__image_check(str_t data, int64_t max_pixels, int *w, int *h, struct buf *why);
/* A WebP no wider/taller than px (never enlarged), metadata stripped. */
int files__image_webp(str_t data, int px, struct buf *out, struct buf *why);

/* Sanitise a client's file name into out: the last path segment, control
 * and path characters replaced, no leading dots, at most 200 bytes of valid
 * UTF-8; "file" when nothing is left. */
void files__sanitize_name(str_t in, struct buf *out);

/* The module's settings and storage (files.c). */
struct files_cfg {
    int64_t quota_bytes;   /* TEMEL_FILES_QUOTA_MB */
    int64_t max_pixels;    /* TEMEL_IMAGE_MAX_PIXELS */
    struct storage *st;
    const char *data_dir;
    unsigned char link_key[32]; /* presigned links */
};
extern struct files_cfg files__cfg;

/* Write a file row as its API object; cols: FILES_COLS. */
#define FILES_COLS "id, filename, size, mime_type, sha256, variants, purpose, ts_ms(created_at), variants_state"
void files__write(struct jw *w, const struct db_res *res);

/* upload.c: uploads in parts (above the 16 MiB body cap) */
void files__upload_routes(void);
void files__upload_jobs(void);
/* files.c, shared with upload.c and export.c */
/* The storage key of a file's original (variant NULL) or of a WebP variant. */
void files__key(struct buf *b, str_t id, const char *variant);
/* A new row of files; variants_state is "pending" for images, else "none". */
struct files_new {
    const char *id, *purpose, *sha, *key;
    str_t user, filename;
    int64_t size;
    enum ftype t;
};
int files__insert_row(struct db *db, const struct files_new *f);
/* 0 when add more bytes fit the user's quota; HTTP_EFAIL after a 413
 * QUOTA_EXCEEDED; or a db_rc (inside req_tx: return it; outside: http_rc). */
int files__quota_check(struct req *r, str_t user, int64_t add);
int files__insert(struct req *r, const char *id, str_t user, const char *purpose, str_t filename, int64_t size,
                  enum ftype t, const char *sha, const char *key);
/* export.c */
void files__export_routes(void);
void files__export_jobs(void);
/* variants (files.c) */
extern const struct job_kind files__variants_kind;

#endif
