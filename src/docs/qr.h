/*
 * qr.h — text to a QR code as a PNG image (libqrencode + libpng), for
 * registration tickets and certificate verification links.
 *
 * CPU work (a few hundred microseconds for short texts, more for long
 * ones): call it from the worker pool (work_run) or a job, never on a loop
 * thread. Thread-safe: no global state (libqrencode is built with pthread).
 */
#ifndef TEMEL_QR_H
#define TEMEL_QR_H

#include "core/buf.h"

#define QR_MAX_TEXT 1024            /* longer input is refused (-1) */
#define QR_MIN_SCALE 1
#define QR_MAX_SCALE 32             /* pixels per module */
#define QR_QUIET_MODULES 4          /* the quiet zone the standard asks for */
#define QR_PNG_MAX (4u << 20)       /* cap of the PNG buffer a caller should give */

/* Encode the bytes of text (8-bit mode, error correction level M) and
 * append a 1-bit greyscale PNG to out: black modules on white, `scale`
 * pixels per module, QR_QUIET_MODULES of white around it. Returns 0, or -1
 * with the reason in err (empty or too long text, bad scale, encoder or
 * PNG failure, out's cap reached); out may then hold a partial image. */
int qr_png(str_t text, int scale, struct buf *out, struct buf *err) WARN_UNUSED;

#endif
