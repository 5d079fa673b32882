/*
 * image.c — image checks and WebP variants with libvips. Runs on the worker
 * pool (upload checks) or a job runner thread (variants), never on a loop.
 * libvips is started once (VIPS_INIT), with its operation cache off (every
 * image is different; the cache would only hold memory) and one thread per
 * operation (the pool and the runners are the parallelism).
 */
#include <pthread.h>
#include <string.h>
#include <vips/vips.h>

#include "modules/files/files_internal.h"

#include "core/banned.h"

static pthread_once_t vips_once = PTHREAD_ONCE_INIT;

static void vips_start(void)
{
    if (VIPS_INIT("temel"))
        FATAL("libvips failed to start");
    vips_cache_set_max(0);
    vips_concurrency_set(1);
}

void files__vips_init(void) { pthread_once(&vips_once, vips_start); }

static void vips_why(struct buf *why, const char *what)
{
    const char *e = vips_error_buffer();
    (void)buf_printf(why, "%s%s%.*s", what, e && *e ? ": " : "", e ? 200 : 0, e ? e : "");
    /* one line */
    for (size_t i = 0; i < why->len; i++)
        if (why->ptr[i] == '\n')
            why->ptr[i] = ' ';
    vips_error_clear();
}

int files__image_check(str_t data, int64_t max_pixels, int *w, int *h, struct buf *why)
{
    files__vips_init();
    /* the header only: the size is known before anything is decoded */
    VipsImage *im = vips_image_new_from_buffer(data.p, data.len, "", "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    if (!im) {
        vips_why(why, "not a readable image");
        return -1;
    }
    *w = vips_image_get_width(im);
    *h = vips_image_get_height(im);
    int rc = 0;
    if (*w <= 0 || *h <= 0 || (int64_t)*w * (int64_t)*h > max_pixels) {
        (void)buf_printf(why, "the image has too many pixels (%dx%d, limit %lld)", *w, *h, (long long)max_pixels);
        rc = -1;
    } else {
        /* decode every pixel: a truncated or corrupt image fails here */
        double avg;
        if (vips_avg(im, &avg, NULL)) {
            vips_why(why, "the image cannot be decoded");
            rc = -1;
        }
    }
    g_object_unref(im);
    return rc;
}

static uint32_t le32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Copy a WebP without its EXIF and XMP chunks (libvips 8.14 writes a
 * generated EXIF block even with strip), clearing their VP8X flags. */
static int webp_strip(str_t in, struct buf *out)
{
    const unsigned char *p = (const unsigned char *)in.p;
    if (in.len < 12 || memcmp(p, "RIFF", 4) || memcmp(p + 8, "WEBP", 4))
        return -1;
    size_t start = out->len;
    if (buf_append(out, p, 12))
        return -1;
    size_t off = 12;
    while (off + 8 <= in.len) {
        uint32_t n = le32(p + off + 4);
        size_t total = 8 + (size_t)n + (n & 1);
        if (total > in.len - off)
            return -1;
        bool drop = memcmp(p + off, "EXIF", 4) == 0 || memcmp(p + off, "XMP ", 4) == 0;
        if (!drop) {
            size_t at = out->len;
            if (buf_append(out, p + off, total))
                return -1;
            if (memcmp(p + off, "VP8X", 4) == 0 && n >= 1)
                out->ptr[at + 8] = (char)((unsigned char)out->ptr[at + 8] & ~0x0C); /* EXIF 0x08, XMP 0x04 */
        }
        off += total;
    }
    put_le32((unsigned char *)out->ptr + start + 4, (uint32_t)(out->len - start - 8));
    return 0;
}

int files__image_webp(str_t data, int px, struct buf *out, struct buf *why)
{
    files__vips_init();
    VipsImage *thumb = NULL;
    /* thumbnail_buffer shrinks on load where the format allows (JPEG) */
    if (vips_thumbnail_buffer((void *)data.p, data.len, &thumb, px, "height", px, "size", VIPS_SIZE_DOWN, "fail_on",
                              VIPS_FAIL_ON_ERROR, NULL)) {
        vips_why(why, "thumbnail failed");
        return -1;
    }
    /* metadata goes: EXIF (GPS position, camera serials), XMP, IPTC. The
     * copy shares pixels; only its header fields are removed. */
    VipsImage *clean = NULL;
    if (vips_copy(thumb, &clean, NULL)) {
        g_object_unref(thumb);
        vips_why(why, "copy failed");
        return -1;
    }
    g_object_unref(thumb);
    gchar **fields = vips_image_get_fields(clean);
    for (int i = 0; fields && fields[i]; i++)
        if (strncmp(fields[i], "exif-", 5) == 0 || strcmp(fields[i], "xmp-data") == 0 ||
            strcmp(fields[i], "iptc-data") == 0 || strncmp(fields[i], "png-comment-", 12) == 0 ||
            strcmp(fields[i], "orientation") == 0)
            (void)vips_image_remove(clean, fields[i]);
    g_strfreev(fields);
    void *mem = NULL;
    size_t len = 0;
    int rc = vips_webpsave_buffer(clean, &mem, &len, "strip", TRUE, "Q", 80, NULL);
    g_object_unref(clean);
    if (rc) {
        vips_why(why, "WebP encoding failed");
        return -1;
    }
    rc = webp_strip(str_make(mem, len), out) ? -1 : 0;
    if (rc)
        (void)buf_puts(why, "variant too large");
    g_free(mem);
    return rc;
}
