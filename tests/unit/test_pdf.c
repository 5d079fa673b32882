/* Unit tests for src/docs/pdf.c: a real PDF comes out, Turkish and Polish
 * letters survive a round trip through pdftotext, long text wraps onto new
 * pages, bad input fails the document instead of producing a broken one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "docs/pdf.h"

static const char LETTERS[] = "Şişli Gürsu İzmir ığdır — Łódź żółć źdźbło";

/* pdftotext of the bytes into out (NUL-terminated). */
static void to_text(str_t pdf, struct buf *out)
{
    const char *tmp = getenv("TEMEL_TEST_TMPDIR");
    struct buf path = BUF_INIT(4096), cmd = BUF_INIT(8192);
    assert_int_equal(buf_printf(&path, "%s/test_pdf_%d.pdf", tmp ? tmp : "/tmp", (int)getpid()), 0);
    FILE *f = fopen(buf_cstr(&path), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(pdf.p, 1, pdf.len, f), pdf.len);
    fclose(f);
    assert_int_equal(buf_printf(&cmd, "pdftotext -enc UTF-8 '%s' -", buf_cstr(&path)), 0);
    FILE *pp = popen(buf_cstr(&cmd), "r");
    assert_non_null(pp);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, pp)) > 0)
        assert_int_equal(buf_append(out, chunk, n), 0);
    assert_int_equal(pclose(pp), 0);
    unlink(buf_cstr(&path));
    buf_free(&path);
    buf_free(&cmd);
}

static void t_letters(void **state)
{
    (void)state;
    struct buf err = BUF_INIT(512), out = BUF_INIT(PDF_MAX_BYTES), text = BUF_INIT(1 << 20);
    struct pdf *p = pdf_new("Özgeçmiş", &err);
    assert_non_null(p);
    pdf_text(p, str_c("Ayşe Yılmaz"), PDF_BOLD, 20, PDF_CENTER);
    pdf_rule(p);
    pdf_text(p, str_c(LETTERS), PDF_REGULAR, 11, PDF_LEFT);
    assert_int_equal(pdf_finish(p, &out, &err), 0);
    pdf_free(p);
    assert_true(out.len > 1000);
    assert_memory_equal(out.ptr, "%PDF-", 5);
    to_text(buf_str(&out), &text);
    assert_non_null(strstr(buf_cstr(&text), "Ayşe Yılmaz"));
    assert_non_null(strstr(buf_cstr(&text), LETTERS));
    buf_free(&err);
    buf_free(&out);
    buf_free(&text);
}

static void t_wraps_and_pages(void **state)
{
    (void)state;
    struct buf err = BUF_INIT(512), out = BUF_INIT(PDF_MAX_BYTES), text = BUF_INIT(1 << 20), para = BUF_INIT(1 << 20);
    struct pdf *p = pdf_new(NULL, &err);
    assert_non_null(p);
    for (int i = 0; i < 400; i++)
        assert_int_equal(buf_printf(&para, "kelime%d ", i), 0);
    for (int i = 0; i < 6; i++)
        pdf_text(p, buf_str(&para), PDF_REGULAR, 11, PDF_LEFT);
    /* one word wider than the page is split, not lost */
    pdf_text(p, str_c("ŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁŁ"), PDF_BOLD, 14, PDF_LEFT);
    assert_true(pdf_pages(p) >= 2);
    int frc = pdf_finish(p, &out, &err);
    if (frc)
        fprintf(stderr, "%s\n", buf_cstr(&err));
    assert_int_equal(frc, 0);
    pdf_free(p);
    to_text(buf_str(&out), &text);
    assert_non_null(strstr(buf_cstr(&text), "kelime0 "));
    assert_non_null(strstr(buf_cstr(&text), "kelime399"));
    assert_non_null(strstr(buf_cstr(&text), "ŁŁŁŁ"));
    /* wrapped: no line holds the whole paragraph */
    assert_null(strstr(buf_cstr(&text), "kelime0 kelime1 kelime2 kelime3 kelime4 kelime5 kelime6 kelime7 kelime8 kelime9 "
                                        "kelime10 kelime11 kelime12"));
    buf_free(&err);
    buf_free(&out);
    buf_free(&text);
    buf_free(&para);
}

static void t_bad_input(void **state)
{
    (void)state;
    struct buf err = BUF_INIT(512), out = BUF_INIT(PDF_MAX_BYTES);
    struct pdf *p = pdf_new("x", &err);
    assert_non_null(p);
    pdf_text(p, str_make("ab\xC3", 3), PDF_REGULAR, 11, PDF_LEFT); /* truncated UTF-8 */
    pdf_text(p, str_c("after the error: ignored"), PDF_REGULAR, 11, PDF_LEFT);
    assert_int_equal(pdf_finish(p, &out, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "UTF-8"));
    assert_int_equal(out.len, 0);
    pdf_free(p);

    buf_reset(&err);
    p = pdf_new("x", &err);
    pdf_text(p, str_c("bell\a"), PDF_REGULAR, 11, PDF_LEFT);
    assert_int_equal(pdf_finish(p, &out, &err), -1);
    pdf_free(p);
    buf_reset(&err);
    p = pdf_new("x", &err);
    pdf_text(p, str_c("x"), PDF_REGULAR, 200, PDF_LEFT);
    assert_int_equal(pdf_finish(p, &out, &err), -1);
    pdf_free(p);
    buf_reset(&err);
    p = pdf_new("x", &err);
    pdf_png(p, str_c("not a png"), 100);
    assert_int_equal(pdf_finish(p, &out, &err), -1);
    pdf_free(p);
    buf_free(&err);
    buf_free(&out);
}

/* The page bound: PDF_MAX_PAGES pages are fine, one more fails. */
static void t_page_bound(void **state)
{
    (void)state;
    struct buf err = BUF_INIT(512), out = BUF_INIT(PDF_MAX_BYTES);
    struct pdf *p = pdf_new("x", &err);
    while (pdf_pages(p) < PDF_MAX_PAGES)
        pdf_page_break(p);
    assert_int_equal(pdf_pages(p), PDF_MAX_PAGES);
    pdf_page_break(p);
    assert_int_equal(pdf_pages(p), PDF_MAX_PAGES);
    assert_int_equal(pdf_finish(p, &out, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "too many pages"));
    pdf_free(p);
    buf_free(&err);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_letters),
        cmocka_unit_test(t_wraps_and_pages),
        cmocka_unit_test(t_bad_input),
        cmocka_unit_test(t_page_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
