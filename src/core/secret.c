/*
 * secret.c — keys derived from the process secret (secret.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/secret.h"

#include "core/banned.h"

int secret_derive(const struct config *cfg, const char *context, unsigned char key[SECRET_KEY_BYTES], struct buf *err)
{
    size_t cl = strlen(context);
    if (cl < crypto_generichash_KEYBYTES_MIN || cl > crypto_generichash_KEYBYTES_MAX)
        BUG("secret_derive: context must be 16..64 bytes");
    if (cfg->secret_key) {
        crypto_generichash(key, SECRET_KEY_BYTES, (const unsigned char *)cfg->secret_key, strlen(cfg->secret_key),
                           (const unsigned char *)context, cl);
        return 0;
    }
    struct buf path = BUF_INIT(4096), tmp = BUF_INIT(4096);
    unsigned char secret[64];
    int rc = -1;
    (void)buf_printf(&path, "%s/secret.key", cfg->data_dir);
    if (!buf_ok(&path) || fs_mkdir_p(cfg->data_dir, 0700)) {
        (void)buf_printf(err, "TEMEL_SECRET_KEY: not set and %s cannot be created", cfg->data_dir);
        goto out;
    }
    int fd = open(buf_cstr(&path), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        /* write a fresh one atomically; link() fails if another process won the race */
        (void)buf_printf(&tmp, "%s.%d.tmp", buf_cstr(&path), (int)getpid());
        randombytes_buf(secret, sizeof(secret));
        int wfd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        bool ok = wfd >= 0 && write(wfd, secret, sizeof(secret)) == (ssize_t)sizeof(secret) && fsync(wfd) == 0;
        if (wfd >= 0)
            close(wfd);
        ok = ok && link(buf_cstr(&tmp), buf_cstr(&path)) == 0;
        unlink(buf_cstr(&tmp));
        if (ok) {
            crypto_generichash(key, SECRET_KEY_BYTES, secret, sizeof(secret), (const unsigned char *)context, cl);
            rc = 0;
            goto out;
        }
        fd = open(buf_cstr(&path), O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        (void)buf_printf(err, "TEMEL_SECRET_KEY: not set and %s is unreadable: %s", buf_cstr(&path), strerror(errno));
        goto out;
    }
    ssize_t n = read(fd, secret, sizeof(secret));
    close(fd);
    if (n < 32) {
        (void)buf_printf(err, "TEMEL_SECRET_KEY: %s is too short", buf_cstr(&path));
        goto out;
    }
    crypto_generichash(key, SECRET_KEY_BYTES, secret, (size_t)n, (const unsigned char *)context, cl);
    rc = 0;
out:
    sodium_memzero(secret, sizeof(secret));
    buf_free(&path);
    buf_free(&tmp);
    return rc;
}

void secret_seal(const unsigned char key[SECRET_KEY_BYTES], str_t plain, struct buf *hex_out)
{
    size_t n = st_add(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES, plain.len);
    unsigned char *box = xmalloc(n);
    randombytes_buf(box, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, (const unsigned char *)plain.p, plain.len, box, key);
    char *w = buf_reserve(hex_out, st_add(st_mult(n, 2), 1));
    if (w) {
        sodium_bin2hex(w, n * 2 + 1, box, n);
        buf_commit(hex_out, n * 2);
    }
    free(box);
}

int secret_open(const unsigned char key[SECRET_KEY_BYTES], str_t hex, size_t max_plain, struct buf *plain)
{
    size_t n = hex.len / 2, len;
    if (hex.len % 2 || n < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES ||
        n - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES > max_plain)
        return -1;
    unsigned char *box = xmalloc(n);
    int rc = -1;
    if (sodium_hex2bin(box, n, hex.p, hex.len, NULL, &len, NULL) || len != n)
        goto out;
    size_t m = n - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    char *w = buf_reserve(plain, m + 1);
    if (!w)
        goto out;
    if (crypto_secretbox_open_easy((unsigned char *)w, box + crypto_secretbox_NONCEBYTES,
                                   n - crypto_secretbox_NONCEBYTES, box, key))
        goto out;
    buf_commit(plain, m);
    rc = 0;
out:
    sodium_memzero(box, n);
    free(box);
    return rc;
}
