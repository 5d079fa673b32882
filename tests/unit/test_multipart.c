/* Unit tests for src/http/multipart.c: boundary parameter, parsing, limits,
 * and every refusal the header promises. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/buf.h"
#include "http/multipart.h"

#define S(lit) STRLIT(lit)

static int parse(const char *body, size_t len, const char *boundary, struct mp_form *f)
{
    return mp_parse(str_make(body, len), str_c(boundary), f);
}
#define PARSE(lit, b, f) parse((lit), sizeof(lit) - 1, (b), (f))

static void assert_view(str_t v, const char *want)
{
    assert_non_null(v.p);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.p, want, v.len);
}

static void t_boundary(void **state)
{
    (void)state;
    str_t b;
    assert_int_equal(mp_boundary(S("multipart/form-data; boundary=abc123"), &b), MP_OK);
    assert_view(b, "abc123");
    assert_int_equal(mp_boundary(S("Multipart/Form-Data;boundary=\"a b:c\""), &b), MP_OK);
    assert_view(b, "a b:c");
    assert_int_equal(mp_boundary(S("multipart/form-data; charset=utf-8; boundary=----x_y.z"), &b), MP_OK);
    assert_view(b, "----x_y.z");
    assert_int_equal(mp_boundary(S("multipart/form-data; boundary=q;"), &b), MP_OK);
    assert_view(b, "q");
    /* 70 is the maximum */
    char ct[160];
    int n = snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%070d", 7);
    assert_int_equal(mp_boundary(str_make(ct, (size_t)n), &b), MP_OK);
    assert_int_equal(b.len, 70);
    n = snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%071d", 7);
    assert_int_equal(mp_boundary(str_make(ct, (size_t)n), &b), MP_EBOUNDARY);

    assert_int_equal(mp_boundary(STR_NULL, &b), MP_ENOTFORM);
    assert_int_equal(mp_boundary(S("application/json"), &b), MP_ENOTFORM);
    assert_int_equal(mp_boundary(S("multipart/mixed; boundary=a"), &b), MP_ENOTFORM);
    assert_int_equal(mp_boundary(S("multipart/form-data"), &b), MP_EBOUNDARY);
    assert_int_equal(mp_boundary(S("multipart/form-data; boundary="), &b), MP_EBOUNDARY);
    assert_int_equal(mp_boundary(S("multipart/form-data; boundary=\"\""), &b), MP_EBOUNDARY);
    assert_int_equal(mp_boundary(S("multipart/form-data; boundary=\"ab \""), &b), MP_EBOUNDARY); /* trailing space */
    assert_int_equal(mp_boundary(S("multipart/form-data; boundary=\"a\\\"b\""), &b), MP_EBOUNDARY);
    assert_int_equal(mp_boundary(S("multipart/form-data; boundary=a; boundary=b"), &b), MP_EBOUNDARY);
    assert_int_equal(mp_boundary(S("multipart/form-data; boundary=\"abc"), &b), MP_EBOUNDARY);
    assert_int_equal(mp_boundary(S("multipart/form-data; boundary=a*b"), &b), MP_EBOUNDARY);
    assert_int_equal(mp_boundary(S("multipart/form-data boundary=a"), &b), MP_EBOUNDARY);
}

static void t_parse_ok(void **state)
{
    (void)state;
    struct mp_form f;
    static const char body[] = "--XyZ\r\n"
                               "Content-Disposition: form-data; name=\"title\"\r\n"
                               "\r\n"
                               "hello\r\n"
                               "--XyZ  \r\n" /* transport padding */
                               "content-disposition: form-data; name=photo; filename=\"../../etc/a.jpg\"\r\n"
                               "Content-Type: image/jpeg\r\n"
                               "X-Other: ignored\r\n"
                               "\r\n"
                               "\xff\xd8\xff\r\nbinary--XyZ\r\n"
                               "--XyZ\r\n"
                               "Content-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n"
                               "\r\n"
                               "\r\n"
                               "--XyZ--\r\nepilogue is ignored";
    assert_int_equal(PARSE(body, "XyZ", &f), MP_OK);
    assert_int_equal(f.n, 3);
    assert_view(f.parts[0].name, "title");
    assert_null(f.parts[0].filename.p);
    assert_null(f.parts[0].content_type.p);
    assert_view(f.parts[0].data, "hello");
    assert_view(f.parts[1].name, "photo");
    assert_view(f.parts[1].filename, "../../etc/a.jpg");
    assert_view(f.parts[1].content_type, "image/jpeg");
    static const char photo[] = "\xff\xd8\xff\r\nbinary--XyZ";
    assert_int_equal(f.parts[1].data.len, sizeof(photo) - 1);
    assert_memory_equal(f.parts[1].data.p, photo, sizeof(photo) - 1);
    assert_view(f.parts[2].filename, "");
    assert_int_equal(f.parts[2].data.len, 0);
    assert_ptr_equal(mp_find(&f, "photo"), &f.parts[1]);
    assert_null(mp_find(&f, "file"));

    /* views point into the body: nothing copied */
    assert_true(f.parts[0].data.p > body && f.parts[0].data.p < body + sizeof(body));

    /* no parts at all is well-formed */
    assert_int_equal(PARSE("--b--", "b", &f), MP_OK);
    assert_int_equal(f.n, 0);
    /* escaped quote inside a quoted name is skipped over, not undone */
    assert_int_equal(PARSE("--b\r\nContent-Disposition: form-data; name=\"a\\\"b\"\r\n\r\nv\r\n--b--", "b", &f), MP_OK);
    assert_view(f.parts[0].name, "a\\\"b");
}

static void t_parse_refusals(void **state)
{
    (void)state;
    struct mp_form f;
    /* missing final boundary */
    assert_int_equal(PARSE("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue", "b", &f), MP_EMALFORMED);
    assert_int_equal(f.n, 0);
    assert_int_equal(PARSE("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue\r\n--b", "b", &f), MP_EMALFORMED);
    assert_int_equal(PARSE("", "b", &f), MP_EMALFORMED);
    /* preamble */
    assert_int_equal(PARSE("junk\r\n--b--", "b", &f), MP_EMALFORMED);
    /* header line with bare LF, bare CR, no CRLF at all */
    assert_int_equal(PARSE("--b\r\nContent-Disposition: form-data; name=a\n\r\nv\r\n--b--", "b", &f), MP_EMALFORMED);
    assert_int_equal(PARSE("--b\r\nContent-Disposition: form-data; name=a\r\r\nv\r\n--b--", "b", &f), MP_EMALFORMED);
    assert_int_equal(PARSE("--b\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--b--", "b", &f), MP_EMALFORMED);
    assert_int_equal(PARSE("--b\r\nContent-Disposition: form-data; name=a", "b", &f), MP_EMALFORMED);
    /* folded header, header without colon, missing / duplicate / wrong disposition */
    assert_int_equal(PARSE("--b\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nv\r\n--b--", "b", &f), MP_EMALFORMED);
    assert_int_equal(PARSE("--b\r\nContent-Disposition form-data; name=a\r\n\r\nv\r\n--b--", "b", &f), MP_EMALFORMED);
    assert_int_equal(PARSE("--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--", "b", &f), MP_EMALFORMED);
    assert_int_equal(PARSE("--b\r\nContent-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=c\r\n\r\nv\r\n--b--", "b", &f),
                     MP_EMALFORMED);
    assert_int_equal(PARSE("--b\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n--b--", "b", &f), MP_EMALFORMED);
    assert_int_equal(PARSE("--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--", "b", &f), MP_EMALFORMED);
    assert_int_equal(PARSE("--b\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nv\r\n--b--", "b", &f), MP_EMALFORMED);
    assert_int_equal(PARSE("--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--b--", "b", &f), MP_EMALFORMED);
    assert_int_equal(PARSE("--b\r\nContent-Disposition: form-data; name=a; name=c\r\n\r\nv\r\n--b--", "b", &f), MP_EMALFORMED);
    /* control byte in a header value */
    assert_int_equal(PARSE("--b\r\nContent-Disposition: form-data; name=a\r\nX: a\x01\r\n\r\nv\r\n--b--", "b", &f), MP_EMALFORMED);
    /* the boundary inside data (delimiter followed by other bytes) */
    assert_int_equal(PARSE("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--bogus\r\n--b--", "b", &f), MP_EMALFORMED);
    /* boundary argument out of range */
    assert_int_equal(PARSE("--b--", "", &f), MP_EBOUNDARY);
}

static void t_limits(void **state)
{
    (void)state;
    struct mp_form f;
    struct buf b = BUF_INIT(1u << 20);
    for (int i = 0; i < MP_MAX_PARTS; i++)
        (void)buf_printf(&b, "--B\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\n%d\r\n", i, i);
    (void)buf_puts(&b, "--B--\r\n");
    assert_true(buf_ok(&b));
    assert_int_equal(mp_parse(buf_str(&b), S("B"), &f), MP_OK);
    assert_int_equal(f.n, MP_MAX_PARTS);
    assert_view(f.parts[15].name, "f15");
    assert_view(f.parts[15].data, "15");

    buf_reset(&b);
    for (int i = 0; i < MP_MAX_PARTS + 1; i++)
        (void)buf_printf(&b, "--B\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\n%d\r\n", i, i);
    (void)buf_puts(&b, "--B--\r\n");
    assert_int_equal(mp_parse(buf_str(&b), S("B"), &f), MP_ETOOMANY);
    assert_int_equal(f.n, 0);

    /* 8 KiB of part headers: one long header line passes the budget */
    buf_reset(&b);
    (void)buf_puts(&b, "--B\r\nContent-Disposition: form-data; name=a\r\nX-Pad: ");
    for (int i = 0; i < 9000; i++)
        (void)buf_putc(&b, 'p');
    (void)buf_puts(&b, "\r\n\r\nv\r\n--B--");
    assert_int_equal(mp_parse(buf_str(&b), S("B"), &f), MP_EHEADERS);
    /* ... and so do many small parts together */
    buf_reset(&b);
    for (int i = 0; i < 12; i++) {
        (void)buf_printf(&b, "--B\r\nContent-Disposition: form-data; name=\"f%d\"\r\nX-Pad: ", i);
        for (int j = 0; j < 700; j++)
            (void)buf_putc(&b, 'p');
        (void)buf_puts(&b, "\r\n\r\nv\r\n");
    }
    (void)buf_puts(&b, "--B--");
    assert_int_equal(mp_parse(buf_str(&b), S("B"), &f), MP_EHEADERS);
    buf_free(&b);
}

static void t_strerror(void **state)
{
    (void)state;
    assert_non_null(strstr(mp_strerror(MP_ENOTFORM), "multipart/form-data"));
    assert_non_null(strstr(mp_strerror(MP_EMALFORMED), "malformed"));
    assert_non_null(strstr(mp_strerror(MP_ETOOMANY), "too many"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_boundary), cmocka_unit_test(t_parse_ok), cmocka_unit_test(t_parse_refusals),
        cmocka_unit_test(t_limits),   cmocka_unit_test(t_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
