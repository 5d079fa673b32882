/* Unit tests for src/storage: key rules (bound and one past), the local
 * store (atomic put, get into a bounded buffer, put_file by copy and by
 * move, delete), configuration refusals, and SigV4 query signing checked
 * against the example in AWS's documentation (sigv4-query-string-auth). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "storage/storage.h"

static void t_keys(void **state)
{
    (void)state;
    char k[STORAGE_KEY_MAX + 2];
    memset(k, 'a', sizeof k);
    assert_true(storage_key_valid(str_make(k, STORAGE_KEY_MAX)));
    assert_false(storage_key_valid(str_make(k, STORAGE_KEY_MAX + 1)));
    assert_true(storage_key_valid(STRLIT("f/0191-ab/original")));
    assert_true(storage_key_valid(STRLIT("f/x/thumbnail.webp")));
    static const char *const bad[] = {"", "/abs", "a/", "a//b", "../x", "a/../b", "a/./b", ".hidden", "a b",
                                      "a\\b", "a%2e", "ü"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(storage_key_valid(str_c(bad[i])));
}

static char *tmpdir(const char *name)
{
    const char *base = getenv("TEMEL_TEST_TMPDIR");
    struct buf b = BUF_INIT(4096);
    assert_int_equal(buf_printf(&b, "%s/%s-%d", base ? base : "/tmp", name, (int)getpid()), 0);
    return buf_detach(&b, NULL);
}

static void t_local(void **state)
{
    (void)state;
    char *dir = tmpdir("test_storage");
    struct buf url = BUF_INIT(4096), err = BUF_INIT(1024), out = BUF_INIT(1 << 20), path = BUF_INIT(4096);
    (void)buf_printf(&url, "file://%s", dir);
    struct storage *st;
    assert_int_equal(storage_open(buf_cstr(&url), "unused", &st, &err), 0);
    assert_int_equal(storage_kind(st), STORAGE_LOCAL);
    assert_int_equal(storage_put(st, "f/1/original", STRLIT("hello"), "text/plain", &err), 0);
    assert_int_equal(storage_get(st, "f/1/original", &out, &err), 0);
    assert_string_equal(buf_cstr(&out), "hello");
    /* replace is atomic: no temp files are left beside it */
    assert_int_equal(storage_put(st, "f/1/original", STRLIT("world!"), "text/plain", &err), 0);
    buf_reset(&out);
    assert_int_equal(storage_get(st, "f/1/original", &out, &err), 0);
    assert_string_equal(buf_cstr(&out), "world!");
    /* a buffer too small for the object */
    struct buf small = BUF_INIT(4);
    assert_int_equal(storage_get(st, "f/1/original", &small, &err), STORAGE_ETOOBIG);
    buf_free(&small);
    assert_int_equal(storage_get(st, "f/2/none", &out, &err), STORAGE_ENOTFOUND);
    assert_int_equal(storage_put(st, "../escape", STRLIT("x"), NULL, &err), STORAGE_EINVAL);
    /* put_file: copy keeps the source, move takes it */
    (void)buf_printf(&path, "%s/src.bin", dir);
    FILE *f = fopen(buf_cstr(&path), "wb");
    assert_non_null(f);
    for (int i = 0; i < 3000; i++)
        fputs("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", f);
    fclose(f);
    assert_int_equal(storage_put_file(st, "f/3/original", buf_cstr(&path), false, NULL, &err), 0);
    assert_int_equal(access(buf_cstr(&path), F_OK), 0);
    assert_int_equal(storage_put_file(st, "f/4/original", buf_cstr(&path), true, NULL, &err), 0);
    assert_int_not_equal(access(buf_cstr(&path), F_OK), 0);
    buf_reset(&out);
    assert_int_equal(storage_get(st, "f/4/original", &out, &err), 0);
    assert_int_equal(out.len, 3000 * 65);
    buf_reset(&path);
    assert_int_equal(storage_local_path(st, "f/4/original", &path), 0);
    struct stat sb;
    assert_int_equal(stat(buf_cstr(&path), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(storage_delete(st, "f/4/original", &err), 0);
    assert_int_equal(storage_delete(st, "f/4/original", &err), 0); /* missing is fine */
    assert_int_equal(storage_get(st, "f/4/original", &out, &err), STORAGE_ENOTFOUND);
    struct buf u2 = BUF_INIT(64);
    assert_int_equal(storage_presign_get(st, "f/1/original", 60, 0, NULL, NULL, &u2), STORAGE_EINVAL);
    buf_free(&u2);
    storage_close(st);
    buf_reset(&url);
    (void)buf_printf(&url, "rm -rf '%s'", dir);
    assert_int_equal(system(buf_cstr(&url)), 0);
    free(dir);
    buf_free(&url);
    buf_free(&err);
    buf_free(&out);
    buf_free(&path);
}

static void t_config_refusals(void **state)
{
    (void)state;
    struct storage *st;
    struct buf err = BUF_INIT(1024);
    setenv("AWS_ACCESS_KEY_ID", "k", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
    static const char *const bad[] = {
        "ftp://x", "file://relative", "s3://", "s3://ab?endpoint=http://h&region=r", "s3://bucket?region=r",
        "s3://bucket?endpoint=ftp://h&region=r", "s3://bucket?endpoint=http://h", "s3://bu/ck?endpoint=http://h&region=r",
        "s3://bucket?endpoint=http://h&region=r&style=odd"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_reset(&err);
        assert_int_equal(storage_open(bad[i], "/tmp", &st, &err), -1);
        assert_non_null(strstr(buf_cstr(&err), "TEMEL_STORAGE_URL"));
        assert_null(st);
    }
    unsetenv("AWS_SECRET_ACCESS_KEY");
    buf_reset(&err);
    assert_int_equal(storage_open("s3://bucket?endpoint=http://h&region=r", "/tmp", &st, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "AWS_SECRET_ACCESS_KEY"));
    buf_free(&err);
}

/* docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html, "An Example". */
static void t_presign_aws_example(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 1);
    struct storage *st;
    struct buf err = BUF_INIT(1024), url = BUF_INIT(4096);
    assert_int_equal(
        storage_open("s3://examplebucket?endpoint=https://s3.amazonaws.com&region=us-east-1&style=virtual", "/tmp", &st,
                     &err),
        0);
    int64_t t = 1369353600; /* 2013-05-24T00:00:00Z */
    assert_int_equal(storage_presign_get(st, "test.txt", 86400, t, NULL, NULL, &url), 0);
    assert_string_equal(buf_cstr(&url),
                        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    /* bounds of expires: 1..604800 */
    buf_reset(&url);
    assert_int_equal(storage_presign_get(st, "test.txt", 604800, t, NULL, NULL, &url), 0);
    assert_int_equal(storage_presign_get(st, "test.txt", 604801, t, NULL, NULL, &url), STORAGE_EINVAL);
    assert_int_equal(storage_presign_get(st, "test.txt", 0, t, NULL, NULL, &url), STORAGE_EINVAL);
    storage_close(st);
    buf_free(&err);
    buf_free(&url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_keys),
        cmocka_unit_test(t_local),
        cmocka_unit_test(t_config_refusals),
        cmocka_unit_test(t_presign_aws_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
