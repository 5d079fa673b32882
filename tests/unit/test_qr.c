/* Unit tests for src/docs/qr: the PNG that qr_png() writes is read back with
 * libpng and compared pixel by pixel with libqrencode's own module matrix
 * for the same text (quiet zone white, every module scale x scale pixels);
 * the text bound is driven to QR_MAX_TEXT and one past; bad scales and a
 * too-small output cap fail cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <png.h>
#include <qrencode.h>

#include "docs/qr.h"

struct reader {
    const unsigned char *p;
    size_t n, off;
};

static void on_read(png_structp png, png_bytep out, png_size_t n)
{
    struct reader *r = png_get_io_ptr(png);
    if (r->off + n > r->n)
        png_error(png, "short");
    memcpy(out, r->p + r->off, n);
    r->off += n;
}

/* Decode a 1-bit greyscale PNG into one byte per pixel (0 black, 1 white). */
static unsigned char *decode(str_t png_bytes, unsigned *side)
{
    struct reader rd = {(const unsigned char *)png_bytes.p, png_bytes.len, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng could not read the image");
    png_set_read_fn(png, &rd, on_read);
    png_read_info(png, info);
    assert_int_equal(png_get_bit_depth(png, info), 1);
    assert_int_equal(png_get_color_type(png, info), PNG_COLOR_TYPE_GRAY);
    unsigned w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    assert_int_equal(w, h);
    size_t rowbytes = png_get_rowbytes(png, info);
    unsigned char *row = malloc(rowbytes), *px = malloc((size_t)w * h);
    for (unsigned y = 0; y < h; y++) {
        png_read_row(png, row, NULL);
        for (unsigned x = 0; x < w; x++)
            px[(size_t)y * w + x] = (row[x / 8] >> (7 - x % 8)) & 1;
    }
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(row);
    *side = w;
    return px;
}

static void check_matches_encoder(const char *text, int scale)
{
    struct buf out = BUF_INIT(QR_PNG_MAX), err = BUF_INIT(1024);
    assert_int_equal(qr_png(str_c(text), scale, &out, &err), 0);
    assert_memory_equal(out.ptr, "\x89PNG\r\n\x1a\n", 8);
    unsigned side;
    unsigned char *px = decode(buf_str(&out), &side);
    QRcode *qr = QRcode_encodeData((int)strlen(text), (const unsigned char *)text, 0, QR_ECLEVEL_M);
    assert_non_null(qr);
    assert_int_equal(side, (unsigned)(qr->width + 2 * QR_QUIET_MODULES) * (unsigned)scale);
    for (unsigned y = 0; y < side; y++)
        for (unsigned x = 0; x < side; x++) {
            int my = (int)(y / (unsigned)scale) - QR_QUIET_MODULES, mx = (int)(x / (unsigned)scale) - QR_QUIET_MODULES;
            int dark = my >= 0 && mx >= 0 && my < qr->width && mx < qr->width && (qr->data[my * qr->width + mx] & 1);
            if (px[(size_t)y * side + x] != !dark)
                fail_msg("pixel %u,%u differs from the encoder's module", x, y);
        }
    QRcode_free(qr);
    free(px);
    buf_free(&out);
    buf_free(&err);
}

static void t_matches_encoder(void **s)
{
    (void)s;
    check_matches_encoder("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.0123456789abcdef0123456789abcdef", 8);
    check_matches_encoder("https://example.com/api/v1/certificates/verify/CERT-2026-000001", 3);
    check_matches_encoder("x", 1);
}

static void t_text_bound(void **s)
{
    (void)s;
    char *t = malloc(QR_MAX_TEXT + 2);
    memset(t, 'a', QR_MAX_TEXT + 1);
    t[QR_MAX_TEXT + 1] = '\0';
    struct buf out = BUF_INIT(QR_PNG_MAX), err = BUF_INIT(1024);
    assert_int_equal(qr_png(str_make(t, QR_MAX_TEXT), 1, &out, &err), 0); /* at the bound */
    buf_reset(&out);
    assert_int_equal(qr_png(str_make(t, QR_MAX_TEXT + 1), 1, &out, &err), -1); /* one past */
    assert_non_null(strstr(buf_cstr(&err), "1..1024"));
    buf_reset(&err);
    assert_int_equal(qr_png(str_make(t, 0), 1, &out, &err), -1);
    free(t);
    buf_free(&out);
    buf_free(&err);
}

static void t_bad_scale_and_cap(void **s)
{
    (void)s;
    struct buf out = BUF_INIT(QR_PNG_MAX), err = BUF_INIT(1024);
    assert_int_equal(qr_png(STRLIT("abc"), 0, &out, &err), -1);
    assert_int_equal(qr_png(STRLIT("abc"), QR_MAX_SCALE + 1, &out, &err), -1);
    assert_int_equal(qr_png(STRLIT("abc"), QR_MAX_SCALE, &out, &err), 0);
    buf_free(&out);
    struct buf tiny = BUF_INIT(64);
    buf_reset(&err);
    assert_int_equal(qr_png(STRLIT("abc"), 8, &tiny, &err), -1); /* libpng's error path, no leak */
    assert_true(err.len > 0);
    buf_free(&tiny);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_matches_encoder),
        cmocka_unit_test(t_text_bound),
        cmocka_unit_test(t_bad_scale_and_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
