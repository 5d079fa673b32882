/*
 * storage.h — where file bytes live, behind one interface (API.md §7):
 *   - a local directory (default: <data_dir>/files): every object is written
 *     to a temporary file, fsync'ed and renamed into place (atomic: a reader
 *     sees the old object or the whole new one, never a part);
 *   - any S3-compatible service: TEMEL_STORAGE_URL=s3://bucket?endpoint=
 *     http://host:port&region=us-east-1 with AWS_ACCESS_KEY_ID and
 *     AWS_SECRET_ACCESS_KEY from the environment. Requests are path-style
 *     (&style=virtual: https://bucket.host/key, as AWS prefers) and signed
 *     with SigV4 by libcurl (CURLOPT_AWS_SIGV4); downloads are
 *     presigned GET URLs (SigV4 query signing, computed here).
 *
 * Keys are chosen by the server (e.g. "f/<uuid>/original"), never by a
 * client: [A-Za-z0-9._/-], no "..", no leading '/', at most 200 bytes;
 * anything else is refused (STORAGE_EINVAL).
 *
 * Every call may block (disk, network): call them from the worker pool
 * (work_run) or a job, never directly on an event-loop thread. A struct
 * storage is shared by all threads (it holds only settings).
 *
 * Memory: no call holds more than one part (STORAGE_PART_SIZE) of an object
 * in memory besides what the caller passes in; storage_put_file streams a
 * file of any size (S3: multipart upload above STORAGE_PART_SIZE).
 */
#ifndef TEMEL_STORAGE_H
#define TEMEL_STORAGE_H

#include "core/buf.h"

#define STORAGE_PART_SIZE (8u << 20) /* S3 multipart above this; also the part size */
#define STORAGE_KEY_MAX 200
#define STORAGE_MAX_PARTS 1000       /* parts of one multipart upload (8 GB at 8 MiB) */

enum storage_kind { STORAGE_LOCAL = 1, STORAGE_S3 = 2 };

enum storage_rc {
    STORAGE_OK = 0,
    STORAGE_ERR = -1,      /* I/O or the service failed (detail in err) */
    STORAGE_ENOTFOUND = -2,
    STORAGE_EINVAL = -3,   /* bad key or argument */
    STORAGE_ETOOBIG = -4,  /* the object does not fit the caller's buffer */
};

struct storage;

/* url NULL or "" → local directory <data_dir>/files (created 0700).
 * "file:///abs/dir" → that local directory. "s3://bucket?endpoint=…&region=…"
 * → S3 (keys from the environment; both required). 0, or -1 with a
 * reason in err that names the setting. */
int storage_open(const char *url, const char *data_dir, struct storage **out, struct buf *err) WARN_UNUSED;
void storage_close(struct storage *st);
enum storage_kind storage_kind(const struct storage *st);
bool storage_key_valid(str_t key);

/* Store data under key (replaces); S3: multipart above STORAGE_PART_SIZE. */
int storage_put(struct storage *st, const char *key, str_t data, const char *content_type, struct buf *err) WARN_UNUSED;
/* Store the contents of the local file at path under key, streaming:
 * local → copied through a small buffer (or renamed when move is true and
 * the file is on the same file system); S3 → one PUT up to
 * STORAGE_PART_SIZE, a multipart upload above (aborted on failure). */
int storage_put_file(struct storage *st, const char *key, const char *path, bool move, const char *content_type,
                     struct buf *err) WARN_UNUSED;
/* The whole object into out (appended); STORAGE_ETOOBIG past out's cap. */
int storage_get(struct storage *st, const char *key, struct buf *out, struct buf *err) WARN_UNUSED;
/* Delete (a missing object is not an error). */
int storage_delete(struct storage *st, const char *key, struct buf *err) WARN_UNUSED;

/* Local only: the object's file path (for the server to send with Range
 * support). STORAGE_EINVAL on S3. */
int storage_local_path(const struct storage *st, const char *key, struct buf *path) WARN_UNUSED;
/* S3 only: a presigned GET URL valid for expires_s seconds (1..604800);
 * response_type / response_disposition (may be NULL) become the
 * response-content-type / response-content-disposition the service answers
 * with. Pure computation (no network). */
int storage_presign_get(const struct storage *st, const char *key, int64_t expires_s, int64_t now_s,
                        const char *response_type, const char *response_disposition, struct buf *url) WARN_UNUSED;

#endif
