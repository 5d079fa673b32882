/*
 * sniff.c — a file's type from its bytes only (API.md §7): the name and the
 * client's Content-Type are never consulted. Office documents are zips with
 * the right parts; a zip whose central directory promises too much (a zip
 * bomb) is refused without inflating anything. Images carrying a second
 * format (a zip directory, a PDF header, HTML) are refused as polyglots.
 */
#include <string.h>
#include <zip.h>

#include "core/json.h"
#include "modules/files/files_internal.h"

#include "core/banned.h"

static const char *const mimes[] = {
    [FT_NONE] = "application/octet-stream",
    [FT_JPEG] = "image/jpeg",
    [FT_PNG] = "image/png",
    [FT_WEBP] = "image/webp",
    [FT_GIF] = "image/gif",
    [FT_PDF] = "application/pdf",
    [FT_DOCX] = "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    [FT_XLSX] = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    [FT_TEXT] = "text/plain; charset=utf-8",
    [FT_CSV] = "text/csv; charset=utf-8",
};

const char *files__mime(enum ftype t) { return mimes[t]; }
bool files__is_image(enum ftype t) { return t == FT_JPEG || t == FT_PNG || t == FT_WEBP || t == FT_GIF; }

static bool starts(str_t d, const char *sig, size_t n) { return d.len >= n && memcmp(d.p, sig, n) == 0; }

/* "<script", "<html" or "<svg" in any case: one pass from '<' to '<'. */
static bool has_markup(str_t d)
{
    static const char *const tags[] = {"script", "html", "svg"};
    const char *p = d.p, *e = d.p + d.len;
    while (p < e && (p = memchr(p, '<', (size_t)(e - p))) != NULL) {
        p++;
        for (size_t i = 0; i < ARRAY_LEN(tags); i++) {
            size_t n = strlen(tags[i]);
            if ((size_t)(e - p) >= n && strncasecmp(p, tags[i], n) == 0)
                return true;
        }
    }
    return false;
}

static bool contains(str_t d, const char *needle, size_t n)
{
    return n <= d.len && memmem(d.p, d.len, needle, n) != NULL;
}

/* An image with another format inside: a zip's end-of-directory record near
 * the end, a PDF header, or markup a browser would run. */
static bool polyglot_image(str_t d)
{
    size_t tail = d.len > (64u << 10) + 22 ? (64u << 10) + 22 : d.len;
    str_t end = str_make(d.p + d.len - tail, tail);
    return contains(end, "PK\x05\x06", 4) || contains(d, "%PDF-", 5) || has_markup(d);
}

static enum ftype zip_kind(zip_t *z, const char **why);

static enum ftype sniff_zip(str_t d, const char **why)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(d.p, d.len, 0, &ze);
    zip_t *z = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    *why = "the zip archive is damaged";
    if (!z && src)
        zip_source_free(src);
    enum ftype t = z ? zip_kind(z, why) : FT_NONE;
    zip_error_fini(&ze);
    return t;
}

enum ftype files__sniff_zip_file(const char *path, const char **why)
{
    int err = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    *why = "the zip archive is damaged";
    return z ? zip_kind(z, why) : FT_NONE;
}

/* DOCX, XLSX or FT_NONE (a bomb, or another zip); closes z. */
static enum ftype zip_kind(zip_t *z, const char **why)
{
    enum ftype t = FT_NONE;
    zip_int64_t n = zip_get_num_entries(z, 0);
    uint64_t total = 0;
    bool bomb = n < 0 || n > FILES_ZIP_MAX_ENTRIES;
    for (zip_int64_t i = 0; i < n && !bomb; i++) {
        zip_stat_t s;
        if (zip_stat_index(z, (zip_uint64_t)i, 0, &s) != 0 || !(s.valid & ZIP_STAT_SIZE) ||
            !(s.valid & ZIP_STAT_COMP_SIZE)) {
            bomb = true;
            break;
        }
        total += s.size;
        if (total > FILES_ZIP_MAX_TOTAL ||
            (s.size > (1u << 20) && s.size / (s.comp_size ? s.comp_size : 1) > FILES_ZIP_MAX_RATIO))
            bomb = true;
    }
    if (bomb)
        *why = "the zip archive expands too much (zip bomb)";
    else if (zip_name_locate(z, "[Content_Types].xml", 0) < 0)
        *why = "zip archives are accepted only as DOCX or XLSX documents";
    else if (zip_name_locate(z, "word/document.xml", 0) >= 0)
        t = FT_DOCX;
    else if (zip_name_locate(z, "xl/workbook.xml", 0) >= 0)
        t = FT_XLSX;
    else
        *why = "an Office archive that is neither DOCX nor XLSX";
    zip_discard(z); /* frees the source too */
    return t;
}

/* Text: valid UTF-8 (a BOM allowed), no NUL or control bytes but TAB, CR,
 * LF, FF. CSV: at least two non-empty lines, each with the same number
 * (> 0) of commas or of semicolons. */
bool files__text_chunk_ok(str_t d)
{
    if (!utf8_valid(d))
        return false;
    for (size_t i = 0; i < d.len; i++) {
        unsigned char c = (unsigned char)d.p[i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') || c == 0x7F)
            return false;
    }
    return true;
}

static enum ftype sniff_text(str_t d, const char **why)
{
    *why = "unsupported file type";
    if (starts(d, "\xEF\xBB\xBF", 3))
        d = str_make(d.p + 3, d.len - 3);
    if (d.len == 0 || !files__text_chunk_ok(d))
        return FT_NONE;
    for (int sep = 0; sep < 2; sep++) {
        char ch = sep ? ';' : ',';
        long want = -1, lines = 0;
        bool ok = true;
        size_t i = 0;
        while (i < d.len && ok) {
            size_t e = i;
            long k = 0;
            while (e < d.len && d.p[e] != '\n') {
                if (d.p[e] == ch)
                    k++;
                e++;
            }
            bool blank = e == i || (e == i + 1 && d.p[i] == '\r');
            if (!blank) {
                if (want < 0)
                    want = k;
                ok = k > 0 && k == want;
                lines++;
            }
            i = e + 1;
        }
        if (ok && lines >= 2)
            return FT_CSV;
    }
    return FT_TEXT;
}

enum ftype files__sniff(str_t d, const char **why)
{
    *why = "unsupported file type";
    enum ftype t = FT_NONE;
    if (d.len == 0) {
        *why = "the file is empty";
        return FT_NONE;
    }
    if (starts(d, "\xFF\xD8\xFF", 3))
        t = FT_JPEG;
    else if (starts(d, "\x89PNG\r\n\x1A\n", 8))
        t = FT_PNG;
    else if (d.len >= 12 && starts(d, "RIFF", 4) && memcmp(d.p + 8, "WEBP", 4) == 0)
        t = FT_WEBP;
    else if (starts(d, "GIF87a", 6) || starts(d, "GIF89a", 6))
        t = FT_GIF;
    else if (starts(d, "%PDF-", 5))
        return FT_PDF;
    else if (starts(d, "PK\x03\x04", 4))
        return sniff_zip(d, why);
    else
        return sniff_text(d, why);
    if (polyglot_image(d)) {
        *why = "the image carries another format inside (polyglot)";
        return FT_NONE;
    }
    return t;
}

void files__sanitize_name(str_t in, struct buf *out)
{
    /* the last segment after '/' or '\\' */
    size_t start = 0;
    for (size_t i = 0; i < in.len; i++)
        if (in.p[i] == '/' || in.p[i] == '\\')
            start = i + 1;
    str_t s = str_make(in.p + start, in.len - start);
    size_t before = out->len;
    if (utf8_valid(s)) {
        for (size_t i = 0; i < s.len && out->len - before < 200; i++) {
            unsigned char c = (unsigned char)s.p[i];
            if (c >= 0x80) { /* copy the whole code point if it fits */
                size_t n = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
                if (out->len - before + n > 200)
                    break;
                (void)buf_append(out, s.p + i, n);
                i += n - 1;
                continue;
            }
            bool bad = c < 0x20 || c == 0x7F || strchr("\"<>:|?*;%`$", (int)c) != NULL;
            if (c == '.' && out->len == before)
                continue; /* no leading dots: no hidden files, no ".." */
            (void)buf_putc(out, bad ? '_' : (char)c);
        }
    }
    /* trailing spaces and dots go too */
    while (out->len > before && (out->ptr[out->len - 1] == ' ' || out->ptr[out->len - 1] == '.'))
        out->ptr[--out->len] = 0;
    if (out->len == before)
        (void)buf_puts(out, "file");
}
