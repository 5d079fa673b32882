/*
 * pdf.h — the one PDF writer (libharu): A4 pages, DejaVu Sans (regular and
 * bold, embedded, UTF-8) so Turkish, Polish and other Latin/Cyrillic/Greek
 * letters render; a simple flowing layout that wraps words to the page width
 * and starts new pages as needed. Used by resume export and certificates.
 *
 * The writer is CPU work (font loading and embedding take milliseconds):
 * call it from the worker pool (work_run) or a job, never on a loop thread.
 * One struct pdf is used by one thread at a time; separate documents are
 * independent (libharu keeps no global state).
 *
 * Errors are sticky: the first failure (libharu's error code, a bad UTF-8
 * string, a font that will not load) is kept and every later call is a
 * no-op; pdf_finish() reports it. Text must be valid UTF-8 without control
 * characters other than '\n' (a line break inside a paragraph); anything
 * else fails the document rather than producing a broken one.
 */
#ifndef TEMEL_PDF_H
#define TEMEL_PDF_H

#include "core/buf.h"

/* Fonts: Debian's fonts-dejavu-core. TEMEL_PDF_FONT_DIR overrides the folder
 * (for other systems); the files keep these names. */
#define PDF_FONT_DIR_DEFAULT "/usr/share/fonts/truetype/dejavu"
#define PDF_FONT_REGULAR "DejaVuSans.ttf"
#define PDF_FONT_BOLD "DejaVuSans-Bold.ttf"

#define PDF_MAX_BYTES (32u << 20) /* a finished document larger than this fails */
#define PDF_MAX_PAGES 500

enum pdf_style { PDF_REGULAR = 0, PDF_BOLD = 1 };
enum pdf_align { PDF_LEFT = 0, PDF_CENTER = 1 };

struct pdf;

/* A new document with its first page; NULL with the reason in err. */
struct pdf *pdf_new(const char *title, struct buf *err);
void pdf_free(struct pdf *p);

/* A paragraph: words wrapped to the text width, a new page when the next
 * line does not fit. size in points (6..72). */
void pdf_text(struct pdf *p, str_t utf8, enum pdf_style style, float size, enum pdf_align align);
/* Vertical space in points (a new page if it passes the bottom margin). */
void pdf_space(struct pdf *p, float points);
/* A thin horizontal line across the text width. */
void pdf_rule(struct pdf *p);
/* A PNG image (for example a QR code), width points wide, centred. */
void pdf_png(struct pdf *p, str_t png, float width);
/* Colour of the text and rules drawn from now on (also on later pages),
 * each component 0..1 (default black); out of range fails the document. */
void pdf_color(struct pdf *p, float r, float g, float b);
/* Start a new page now. */
void pdf_page_break(struct pdf *p);
int pdf_pages(const struct pdf *p);

/* Serialise the document into out (appended). 0, or -1 with the first
 * error in err. The document may be freed afterwards either way. */
int pdf_finish(struct pdf *p, struct buf *out, struct buf *err) WARN_UNUSED;

#endif
