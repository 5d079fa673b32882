/* fsutil.c — see fsutil.h. */
#include "core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/uuid.h"

#include "core/banned.h"

int fs_mkdir_p(const char *dir, mode_t mode)
{
    struct buf p = BUF_INIT(4096);
    (void)buf_puts(&p, dir);
    if (!buf_ok(&p) || !p.len) {
        buf_free(&p);
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = p.ptr + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p.ptr, mode) && errno != EEXIST) {
            buf_free(&p);
            return -1;
        }
        *s = '/';
    }
    int rc = (mkdir(p.ptr, mode) && errno != EEXIST) ? -1 : 0;
    buf_free(&p);
    return rc;
}

int fs_write_atomic(const char *dir, const char *name, str_t data, mode_t mode, struct buf *err)
{
    struct buf tmp = BUF_INIT(4096), dst = BUF_INIT(4096);
    char rnd[UUID_STR_LEN + 1];
    int fd = -1, rc = -1;
    if (!name[0] || strchr(name, '/') || name[0] == '.') {
        (void)buf_puts(err, "bad file name");
        goto out;
    }
    uuid7_str(rnd);
    (void)buf_printf(&tmp, "%s/.%s.tmp", dir, rnd); /* hidden: readers globbing *.eml / * never see it */
    (void)buf_printf(&dst, "%s/%s", dir, name);
    if (!buf_ok(&tmp) || !buf_ok(&dst)) {
        (void)buf_puts(err, "path too long");
        goto out;
    }
    fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        (void)buf_printf(err, "cannot create a file in %s: %s", dir, strerror(errno));
        buf_reset(&tmp); /* not ours: never unlink it */
        goto out;
    }
    for (size_t off = 0; off < data.len;) {
        ssize_t n = write(fd, data.p + off, data.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            (void)buf_printf(err, "write failed: %s", strerror(errno));
            goto out;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0) {
        (void)buf_printf(err, "fsync failed: %s", strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(buf_cstr(&tmp), buf_cstr(&dst)) != 0) {
        (void)buf_printf(err, "rename failed: %s", strerror(errno));
        goto out;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* the rename itself is durable */
        close(dfd);
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp.len)
        (void)unlink(buf_cstr(&tmp));
    buf_free(&tmp);
    buf_free(&dst);
    return rc;
}
