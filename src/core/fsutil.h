/*
 * fsutil.h — small file-system helpers shared by modules that keep files in
 * the data directory (secrets, mail/SMS drops, uploaded photos).
 */
#ifndef TEMEL_FSUTIL_H
#define TEMEL_FSUTIL_H

#include <sys/types.h>

#include "core/buf.h"

/* mkdir -p with `mode` for every directory created (existing ones are left
 * as they are). 0, or -1 with errno set. */
int fs_mkdir_p(const char *dir, mode_t mode) WARN_UNUSED;

/* Write data to dir/name atomically: a hidden temp file (".<uuid>.tmp") in
 * dir created with `mode`, fsync, rename over dir/name, fsync of dir. dir
 * must exist; name must not contain '/' or start with '.'. Readers see the
 * old file or the new one, never a part. 0, or -1 with a reason in err. */
int fs_write_atomic(const char *dir, const char *name, str_t data, mode_t mode, struct buf *err) WARN_UNUSED;

#endif
