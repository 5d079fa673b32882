/*
 * multipart.h — a strict, bounded multipart/form-data parser (RFC 7578 over
 * RFC 2046) for a complete request body (h2o buffers bodies in full).
 *
 * Everything returned is a view into the body or the Content-Type value:
 * nothing is copied or allocated, so the views live as long as those do.
 *
 * Accepted shape (anything else is refused, never guessed at):
 *   --B [LWSP] CRLF  headers CRLF  data  CRLF --B [LWSP] CRLF  ...  CRLF --B--  [epilogue]
 *   - the body starts with the first delimiter (no preamble);
 *   - every header line ends in CRLF (a bare LF or CR is malformed), has a
 *     token name and a ':'; folded lines are refused;
 *   - each part has exactly one Content-Disposition: form-data with a
 *     non-empty name= and optionally filename= (token or quoted-string;
 *     backslash escapes are skipped over but not undone in the view);
 *   - a delimiter line that is neither "--B--" nor "--B" + LWSP + CRLF is
 *     malformed (the boundary must not occur inside data);
 *   - at most MP_MAX_PARTS parts and MP_MAX_HEADER_BYTES of part headers in
 *     total; the final delimiter must be present.
 */
#ifndef TEMEL_MULTIPART_H
#define TEMEL_MULTIPART_H

#include "core/common.h"

#define MP_MAX_PARTS 16
#define MP_MAX_HEADER_BYTES (8u << 10) /* all part headers together */
#define MP_BOUNDARY_MAX 70             /* RFC 2046 §5.1.1 */

struct mp_part {
    str_t name;         /* form field name (never empty) */
    str_t filename;     /* STR_NULL when absent; never use it as a path */
    str_t content_type; /* the part's Content-Type, STR_NULL when absent */
    str_t data;         /* the part's bytes */
};

struct mp_form {
    struct mp_part parts[MP_MAX_PARTS];
    int n;
};

enum mp_rc {
    MP_OK = 0,
    MP_ENOTFORM = -1,   /* Content-Type is not multipart/form-data */
    MP_EBOUNDARY = -2,  /* boundary parameter missing, empty, > 70 chars or bad characters */
    MP_EMALFORMED = -3, /* body does not follow the grammar above */
    MP_ETOOMANY = -4,   /* more than MP_MAX_PARTS parts */
    MP_EHEADERS = -5,   /* more than MP_MAX_HEADER_BYTES of part headers */
};

/* The boundary from a Content-Type value such as
 * `multipart/form-data; boundary="abc"`. Returns MP_OK with *boundary a view
 * into content_type (without quotes), MP_ENOTFORM or MP_EBOUNDARY. */
int mp_boundary(str_t content_type, str_t *boundary) WARN_UNUSED;

/* Parse a complete body. On MP_OK form->parts[0..n) are filled in order;
 * on error form->n is 0. */
int mp_parse(str_t body, str_t boundary, struct mp_form *form) WARN_UNUSED;

/* The first part named `name`, or NULL. */
const struct mp_part *mp_find(const struct mp_form *form, const char *name);

/* A short English description of an mp_rc, for problem details. */
const char *mp_strerror(int rc);

/* A ROUTE_RAW_BODY handler's body as a form: 0 with form filled, or
 * HTTP_EFAIL after 415 (Content-Type is not multipart/form-data) or 400
 * (bad boundary or body), the message from mp_strerror. */
struct req;
int mp_parse_request(struct req *r, struct mp_form *form) WARN_UNUSED;

#endif
