/*
 * pdf.c — see pdf.h. libharu 2.3 with UTF-8 encodings and embedded
 * TrueType fonts; layout is a cursor moving down an A4 page.
 */
#include "docs/pdf.h"

#include <hpdf.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

#include "core/banned.h"

#define PAGE_MARGIN 56.0f /* ≈ 2 cm */
#define LINE_FACTOR 1.35f
#define LINE_MAX 4096 /* bytes of one laid-out line (a longer word is split) */

struct pdf {
    HPDF_Doc doc;
    HPDF_Page page;
    HPDF_Font font[2];
    float y;   /* baseline cursor: top of the free space */
    float w, h;
    int pages;
    HPDF_Font cur_font; /* set again on every new page */
    float cur_size;
    float rgb[3];       /* text and line colour (pdf_color), set again on every new page */
    HPDF_STATUS hpdf_err; /* first libharu error, 0 when none */
    struct buf err;       /* first error as text (sticky) */
};

static void on_error(HPDF_STATUS error_no, HPDF_STATUS detail_no, void *user_data)
{
    struct pdf *p = user_data;
    if (p->hpdf_err == 0) {
        p->hpdf_err = error_no ? error_no : 1;
        if (p->err.len == 0)
            (void)buf_printf(&p->err, "libharu error 0x%04X (detail %u)", (unsigned)error_no, (unsigned)detail_no);
    }
}

static bool failed(const struct pdf *p) { return p->hpdf_err != 0 || p->err.len != 0; }

static void fail(struct pdf *p, const char *what)
{
    if (p->err.len == 0)
        (void)buf_puts(&p->err, what);
}

static void new_page(struct pdf *p)
{
    if (failed(p))
        return;
    if (p->pages >= PDF_MAX_PAGES) {
        fail(p, "the document has too many pages");
        return;
    }
    p->page = HPDF_AddPage(p->doc);
    if (!p->page) {
        fail(p, "cannot add a page");
        return;
    }
    HPDF_Page_SetSize(p->page, HPDF_PAGE_SIZE_A4, HPDF_PAGE_PORTRAIT);
    p->w = HPDF_Page_GetWidth(p->page);
    p->h = HPDF_Page_GetHeight(p->page);
    p->y = p->h - PAGE_MARGIN;
    p->pages++;
    if (p->cur_font)
        HPDF_Page_SetFontAndSize(p->page, p->cur_font, p->cur_size);
    HPDF_Page_SetRGBFill(p->page, p->rgb[0], p->rgb[1], p->rgb[2]);
    HPDF_Page_SetRGBStroke(p->page, p->rgb[0], p->rgb[1], p->rgb[2]);
}

struct pdf *pdf_new(const char *title, struct buf *err)
{
    struct pdf *p = calloc(1, sizeof *p);
    if (!p) {
        (void)buf_puts(err, "out of memory");
        return NULL;
    }
    p->err = BUF_INIT(512);
    p->doc = HPDF_New(on_error, p);
    if (!p->doc) {
        (void)buf_puts(err, "libharu: cannot create a document");
        free(p);
        return NULL;
    }
    HPDF_SetCompressionMode(p->doc, HPDF_COMP_ALL);
    HPDF_UseUTFEncodings(p->doc);
    HPDF_SetCurrentEncoder(p->doc, "UTF-8");
    static const char *const files[2] = {PDF_FONT_DIR_DEFAULT "/" PDF_FONT_REGULAR,
                                         PDF_FONT_DIR_DEFAULT "/" PDF_FONT_BOLD};
    for (int i = 0; i < 2 && !failed(p); i++) {
        const char *name = HPDF_LoadTTFontFromFile(p->doc, files[i], HPDF_TRUE);
        p->font[i] = name ? HPDF_GetFont(p->doc, name, "UTF-8") : NULL;
        if (!p->font[i]) {
            (void)buf_printf(&p->err, "cannot load the font %s", files[i]);
            p->hpdf_err = p->hpdf_err ? p->hpdf_err : 1;
        }
    }
    if (title && !failed(p) && utf8_valid(str_c(title)))
        HPDF_SetInfoAttr(p->doc, HPDF_INFO_TITLE, title);
    HPDF_SetInfoAttr(p->doc, HPDF_INFO_CREATOR, "temel");
    new_page(p);
    if (failed(p)) {
        (void)buf_put(err, buf_str(&p->err));
        pdf_free(p);
        return NULL;
    }
    return p;
}

void pdf_free(struct pdf *p)
{
    if (!p)
        return;
    if (p->doc)
        HPDF_Free(p->doc);
    buf_free(&p->err);
    free(p);
}

int pdf_pages(const struct pdf *p) { return p->pages; }

/* Room for `need` points below the cursor, or a new page. */
static void ensure(struct pdf *p, float need)
{
    if (p->y - need < PAGE_MARGIN)
        new_page(p);
}

static void put_line(struct pdf *p, const char *line, float size, enum pdf_align align, float lh)
{
    ensure(p, lh);
    if (failed(p))
        return;
    float x = PAGE_MARGIN;
    if (align == PDF_CENTER) {
        float tw = HPDF_Page_TextWidth(p->page, line);
        float span = p->w - 2 * PAGE_MARGIN;
        if (tw < span)
            x += (span - tw) / 2;
    }
    p->y -= lh;
    HPDF_Page_BeginText(p->page);
    HPDF_Page_TextOut(p->page, x, p->y + (lh - size), line);
    HPDF_Page_EndText(p->page);
}

/* Length of the UTF-8 sequence starting with byte c (input already valid). */
static size_t cp_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

static float width_of(struct pdf *p, const char *s) { return HPDF_Page_TextWidth(p->page, s); }

/* Lay out one line of input (no '\n'): greedy word wrap; a word wider than
 * the line is split between code points. */
static void layout_line(struct pdf *p, str_t s, float size, enum pdf_align align, float lh)
{
    float span = p->w - 2 * PAGE_MARGIN;
    char line[LINE_MAX + 1];
    size_t n = 0, i = 0;
    line[0] = 0;
    if (s.len == 0) {
        ensure(p, lh);
        p->y -= lh;
        return;
    }
    while (i < s.len && !failed(p)) {
        while (i < s.len && s.p[i] == ' ')
            i++;
        if (i >= s.len)
            break;
        size_t e = i;
        while (e < s.len && s.p[e] != ' ')
            e++;
        /* try line + ' ' + word */
        size_t save = n;
        bool fits = n + 1 + (e - i) <= LINE_MAX;
        if (fits) {
            if (n)
                line[n++] = ' ';
            memcpy(line + n, s.p + i, e - i);
            n += e - i;
            line[n] = 0;
            fits = width_of(p, line) <= span;
        }
        if (fits) {
            i = e;
            continue;
        }
        n = save;
        line[n] = 0;
        if (n) { /* flush what we have; the word starts the next line */
            put_line(p, line, size, align, lh);
            n = 0;
            line[0] = 0;
            continue;
        }
        /* the word alone is too wide: take code points while they fit */
        size_t k = i;
        while (k < e) {
            size_t c = cp_len((unsigned char)s.p[k]);
            if (n + c > LINE_MAX)
                break;
            memcpy(line + n, s.p + k, c);
            line[n + c] = 0;
            if (n && width_of(p, line) > span) {
                line[n] = 0;
                break;
            }
            n += c;
            k += c;
        }
        put_line(p, line, size, align, lh);
        n = 0;
        line[0] = 0;
        i = k;
    }
    if (n && !failed(p))
        put_line(p, line, size, align, lh);
}

void pdf_text(struct pdf *p, str_t utf8, enum pdf_style style, float size, enum pdf_align align)
{
    if (failed(p))
        return;
    if (size < 6 || size > 72) {
        fail(p, "font size out of range");
        return;
    }
    if (!utf8_valid(utf8)) {
        fail(p, "text is not valid UTF-8");
        return;
    }
    for (size_t i = 0; i < utf8.len; i++) {
        unsigned char c = (unsigned char)utf8.p[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F) {
            fail(p, "text has control characters");
            return;
        }
    }
    p->cur_font = p->font[style == PDF_BOLD];
    p->cur_size = size;
    HPDF_Page_SetFontAndSize(p->page, p->cur_font, size);
    float lh = size * LINE_FACTOR;
    size_t start = 0;
    for (size_t i = 0; i <= utf8.len && !failed(p); i++) {
        if (i == utf8.len || utf8.p[i] == '\n') {
            /* tabs become spaces */
            char tmp[LINE_MAX + 1];
            size_t len = i - start;
            str_t seg = str_make(utf8.p + start, len);
            if (len <= LINE_MAX && memchr(seg.p, '\t', len)) {
                memcpy(tmp, seg.p, len);
                for (size_t k = 0; k < len; k++)
                    if (tmp[k] == '\t')
                        tmp[k] = ' ';
                seg = str_make(tmp, len);
            }
            layout_line(p, seg, size, align, lh);
            start = i + 1;
        }
    }
}

void pdf_space(struct pdf *p, float points)
{
    if (failed(p) || points <= 0)
        return;
    if (p->y - points < PAGE_MARGIN)
        new_page(p);
    else
        p->y -= points;
}

void pdf_rule(struct pdf *p)
{
    if (failed(p))
        return;
    ensure(p, 8);
    if (failed(p))
        return;
    p->y -= 4;
    HPDF_Page_SetLineWidth(p->page, 0.6f);
    HPDF_Page_MoveTo(p->page, PAGE_MARGIN, p->y);
    HPDF_Page_LineTo(p->page, p->w - PAGE_MARGIN, p->y);
    HPDF_Page_Stroke(p->page);
    p->y -= 4;
}

void pdf_png(struct pdf *p, str_t png, float width)
{
    if (failed(p))
        return;
    if (png.len == 0 || png.len > (16u << 20) || width <= 0 || width > p->w - 2 * PAGE_MARGIN) {
        fail(p, "image size out of range");
        return;
    }
    HPDF_Image img = HPDF_LoadPngImageFromMem(p->doc, (const HPDF_BYTE *)png.p, (HPDF_UINT)png.len);
    if (!img) {
        fail(p, "the image is not a PNG libharu can read");
        return;
    }
    float iw = (float)HPDF_Image_GetWidth(img), ih = (float)HPDF_Image_GetHeight(img);
    if (iw <= 0 || ih <= 0) {
        fail(p, "the image has no size");
        return;
    }
    float h = width * ih / iw;
    ensure(p, h);
    if (failed(p))
        return;
    p->y -= h;
    HPDF_Page_DrawImage(p->page, img, (p->w - width) / 2, p->y, width, h);
}

void pdf_page_break(struct pdf *p) { new_page(p); }

void pdf_color(struct pdf *p, float r, float g, float b)
{
    if (failed(p))
        return;
    const float c[3] = {r, g, b};
    for (int i = 0; i < 3; i++) {
        if (!(c[i] >= 0.0f && c[i] <= 1.0f)) {
            fail(p, "colour component out of range");
            return;
        }
        p->rgb[i] = c[i];
    }
    HPDF_Page_SetRGBFill(p->page, r, g, b);
    HPDF_Page_SetRGBStroke(p->page, r, g, b);
}

int pdf_finish(struct pdf *p, struct buf *out, struct buf *err)
{
    if (!failed(p) && HPDF_SaveToStream(p->doc) != HPDF_OK)
        fail(p, "cannot serialise the document");
    if (!failed(p)) {
        HPDF_UINT32 total = HPDF_GetStreamSize(p->doc);
        if (total == 0 || total > PDF_MAX_BYTES)
            fail(p, "the document is empty or too large");
        else {
            char *w = buf_reserve(out, total);
            HPDF_UINT32 got = 0;
            while (w && got < total) {
                HPDF_UINT32 n = total - got;
                HPDF_STATUS st = HPDF_ReadFromStream(p->doc, (HPDF_BYTE *)w + got, &n);
                got += n;
                if (st != HPDF_OK || n == 0)
                    break;
            }
            if (!w || got != total)
                fail(p, "cannot read the serialised document");
            else
                buf_commit(out, total);
        }
    }
    if (failed(p)) {
        (void)buf_put(err, buf_str(&p->err));
        if (p->err.len == 0)
            (void)buf_puts(err, "pdf: unknown error");
        return -1;
    }
    return 0;
}
