/*
 * qr.c — QR code → PNG in memory. libpng reports errors by longjmp: every
 * object that must be freed after such a jump is declared volatile or
 * allocated before setjmp, and the row buffer is freed on both paths.
 */
#include <png.h>
#include <qrencode.h>
#include <stdlib.h>
#include <string.h>

#include "docs/qr.h"

#include "core/banned.h"

static void on_write(png_structp png, png_bytep data, png_size_t n)
{
    struct buf *out = png_get_io_ptr(png);
    if (buf_append(out, data, n))
        png_error(png, "output cap reached");
}

static void on_flush(png_structp png) { (void)png; }

static void on_error(png_structp png, png_const_charp msg)
{
    struct buf *err = png_get_error_ptr(png);
    if (err)
        (void)buf_printf(err, "png: %s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

int qr_png(str_t text, int scale, struct buf *out, struct buf *err)
{
    if (!text.len || text.len > QR_MAX_TEXT) {
        (void)buf_printf(err, "qr: text must be 1..%d bytes", QR_MAX_TEXT);
        return -1;
    }
    if (scale < QR_MIN_SCALE || scale > QR_MAX_SCALE) {
        (void)buf_printf(err, "qr: scale must be %d..%d", QR_MIN_SCALE, QR_MAX_SCALE);
        return -1;
    }
    QRcode *qr = QRcode_encodeData((int)text.len, (const unsigned char *)text.p, 0, QR_ECLEVEL_M);
    if (!qr) {
        (void)buf_puts(err, "qr: the encoder refused the text");
        return -1;
    }
    const size_t side = ((size_t)qr->width + 2 * QR_QUIET_MODULES) * (size_t)scale; /* <= (177+8)*32 */
    const size_t rowbytes = (side + 7) / 8;
    unsigned char *row = calloc(1, rowbytes);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, err, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    volatile int rc = -1;
    if (!row || !png || !info) {
        (void)buf_puts(err, "qr: out of memory");
        goto out;
    }
    if (setjmp(png_jmpbuf(png)))
        goto out; /* rc is still -1; err has libpng's message */
    png_set_write_fn(png, out, on_write, on_flush);
    png_set_IHDR(png, info, (png_uint_32)side, (png_uint_32)side, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (size_t y = 0; y < side; y++) {
        /* bit 1 = white; a module is dark when bit 0 of its byte is set */
        memset(row, 0xff, rowbytes);
        long my = (long)(y / (size_t)scale) - QR_QUIET_MODULES;
        for (size_t x = 0; x < side; x++) {
            long mx = (long)(x / (size_t)scale) - QR_QUIET_MODULES;
            if (my >= 0 && mx >= 0 && my < qr->width && mx < qr->width &&
                (qr->data[my * qr->width + mx] & 1))
                row[x / 8] &= (unsigned char)~(0x80u >> (x % 8));
        }
        png_write_row(png, row);
    }
    png_write_end(png, info);
    if (!buf_ok(out)) {
        (void)buf_puts(err, "qr: output cap reached");
        goto out;
    }
    rc = 0;
out:
    if (png)
        png_destroy_write_struct(&png, info ? &info : NULL);
    free(row);
    QRcode_free(qr);
    return rc;
}
