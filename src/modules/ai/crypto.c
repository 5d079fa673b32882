/*
 * crypto.c — provider keys at rest: libsodium crypto_secretbox (XSalsa20-
 * Poly1305) under a 32-byte key derived from TEMEL_SECRET_KEY (BLAKE2b,
 * personalised, so the same secret used elsewhere yields a different key).
 * Without TEMEL_SECRET_KEY (development and test only; config refuses that
 * in production) the secret is generated once into <data_dir>/secret.key.
 *
 * Stored form: lower-case hex of nonce (24 bytes) || MAC (16) || ciphertext.
 * A plaintext key lives only in a buffer that the caller wipes after the
 * request that needed it.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "modules/ai/ai_internal.h"

#include "core/banned.h"

static unsigned char g_key[crypto_secretbox_KEYBYTES];

void ai__crypto_set_key(const unsigned char key[32]) { memcpy(g_key, key, sizeof(g_key)); }

static void derive(const unsigned char *secret, size_t n)
{
    static const unsigned char ctx[] = "temel.ai.provider-keys.v1";
    crypto_generichash(g_key, sizeof(g_key), secret, n, ctx, sizeof(ctx) - 1);
}

int ai__crypto_init(const struct config *cfg, struct buf *err)
{
    if (sodium_init() < 0) {
        (void)buf_puts(err, "libsodium: initialisation failed");
        return -1;
    }
    if (cfg->secret_key) {
        derive((const unsigned char *)cfg->secret_key, strlen(cfg->secret_key));
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
            derive(secret, sizeof(secret));
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
    derive(secret, (size_t)n);
    rc = 0;
out:
    sodium_memzero(secret, sizeof(secret));
    buf_free(&path);
    buf_free(&tmp);
    return rc;
}

void ai__seal(str_t plain, struct buf *hex_out)
{
    size_t n = st_add(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES, plain.len);
    unsigned char *box = xmalloc(n);
    randombytes_buf(box, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, (const unsigned char *)plain.p, plain.len, box, g_key);
    char *w = buf_reserve(hex_out, st_add(st_mult(n, 2), 1));
    if (w) {
        sodium_bin2hex(w, n * 2 + 1, box, n);
        buf_commit(hex_out, n * 2);
    }
    free(box);
}

int ai__open(str_t hex, struct buf *plain)
{
    size_t n = hex.len / 2, len;
    if (hex.len % 2 || n < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES || n > 4 * AI_KEY_MAX)
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
                                   n - crypto_secretbox_NONCEBYTES, box, g_key))
        goto out;
    buf_commit(plain, m);
    rc = 0;
out:
    sodium_memzero(box, n);
    free(box);
    return rc;
}
