/*
 * files.h — the files module (API.md §7): uploads, downloads, presigned
 * links, image variants, generated documents. Storage is src/storage.
 *
 * The internal API below is how other modules keep their bytes as files
 * (the profile photo, product images, ticket attachments, certificates,
 * resume exports): the module stores a file, keeps its id in its own table
 * (a foreign key to files.id, ON DELETE CASCADE), serves it through
 * files_send after its own authorisation, and forgets it in the
 * transaction that deletes what used it.
 *
 * Owners: a file belongs to a user id (its quota, GET /files, DELETE
 * /files/{id}) or to a module (a name that is no UUID, e.g. "catalog"):
 * such a file is in nobody's list or quota and only its module deletes it.
 */
#ifndef TEMEL_FILES_H
#define TEMEL_FILES_H

#include "core/module.h"
#include "core/uuid.h"
#include "db/db.h"
#include "http/http.h"

extern const struct module files_module;

/* What a stored file is. */
struct files_info {
    char id[UUID_STR_LEN + 1];
    const char *mime; /* static string */
    char sha256[65];
    int64_t size;
};

/* The MIME type of data decided from its bytes (as POST /files does), or
 * NULL when it is none of the accepted types. Pure CPU. */
const char *files_sniff_mime(str_t data);

/* In a request: store data as a new file of owner (a user id) exactly as
 * POST /files does for purpose ("attachment", "avatar", "product",
 * "document"): the purpose's size limit and types, the type from the bytes,
 * images decoded within the pixel limit (then variants by the job), the
 * owner's quota; bytes stored from the worker pool, the row in its own
 * transaction. 0 with *out filled; or HTTP_EFAIL after the problem was
 * recorded (413, 415, 422, 500), with nothing left behind. */
int files_create(struct req *r, str_t owner, const char *purpose, str_t filename, str_t data,
                 struct files_info *out) WARN_UNUSED;

/* In a job (or any thread that may block; not an event loop): store a
 * generated document as a new file of owner with id (filled with a new
 * UUIDv7 when id[0] is 0): type from the bytes (must be an accepted one),
 * bytes to storage, then the row through db (the caller's transaction or a
 * statement of its own). No quota (the server made it). 0; DB_* from the
 * insert; FILES_ESTORE with err for storage or a type that is not accepted. */
enum { FILES_ESTORE = -64 };
int files_put_generated(struct db *db, str_t owner, const char *purpose, str_t filename, str_t data,
                        struct files_info *out, struct buf *err) WARN_UNUSED;

/* In the caller's transaction: delete file id's row (whatever its owner) and
 * enqueue files.purge for its bytes and variants, which runs iff the
 * transaction commits. A missing row is not an error. DB_* rc. */
int files_forget(struct db *db, str_t id) WARN_UNUSED;

/* The row of file id: *row on it (columns FILES_REF_COLS; the caller frees
 * it) or NULL when there is none. DB_* rc. */
#define FILES_REF_COLS "id, owner_id, purpose, filename, size, mime_type"
int files_lookup(struct db *db, str_t id, struct db_res **row) WARN_UNUSED;

/* Hand file id, when owner has it with purpose, to new_owner (a module
 * name), e.g. when staff attach an uploaded image to a product: it leaves
 * owner's list and quota. DB_OK with *moved telling whether it moved. */
int files_adopt(struct db *db, str_t id, str_t owner, const char *purpose, const char *new_owner, bool *moved)
    WARN_UNUSED;

/* Answer the request with file id's bytes (variant NULL: the original; or
 * the ?variant= value as given, "thumbnail" | "medium" | "large", anything
 * else 422): correct Content-Type, nosniff,
 * Content-Disposition (inline for images), Range on local storage. The
 * caller has authorised the reader. S3: a 302 to a presigned GET, unless
 * FILES_SEND_PROXY: then the bytes themselves (up to 16 MiB, read on the
 * worker pool) so the route answers 200 on both backends. 0 or HTTP_EFAIL
 * (404 when the file or the variant does not exist). */
enum { FILES_SEND_PROXY = 1 };
int files_send(struct req *r, str_t id, const str_t *variant, unsigned flags);

#endif
