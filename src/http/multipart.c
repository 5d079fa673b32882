/*
 * multipart.c — strict multipart/form-data parsing over a complete body.
 * The grammar accepted and the limits are documented in multipart.h.
 *
 * Cost is linear in the body: the delimiter "\r\nB" is looked for with
 * memmem (two-way, no quadratic blow-up on adversarial data), and header
 * bytes are bounded by MP_MAX_HEADER_BYTES in total.
 */
#include "http/multipart.h"

#include "http/http.h"

#include "core/banned.h"

static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* bchars of RFC 2046 §5.1.1 ("bcharsnospace", plus space when quoted). */
static bool is_bchar(unsigned char c, bool allow_space)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    if (c == ' ')
        return allow_space;
    return c && strchr("'()+_,-./:=?", c) != NULL;
}

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

static void skip_ows(const char **p, const char *end)
{
    while (*p < end && is_ows(**p))
        (*p)++;
}

/* A token (1+ tchars). */
static int take_token(const char **p, const char *end, str_t *out)
{
    const char *s = *p;
    while (*p < end && is_tchar((unsigned char)**p))
        (*p)++;
    if (*p == s)
        return -1;
    *out = str_make(s, (size_t)(*p - s));
    return 0;
}

/* A token or a quoted-string; the view excludes the quotes. In a quoted
 * string a backslash skips the next byte (the escape is not undone); CTLs
 * other than HTAB are refused. */
static int take_value(const char **p, const char *end, str_t *out)
{
    if (*p < end && **p == '"') {
        const char *s = ++*p;
        while (*p < end && **p != '"') {
            unsigned char c = (unsigned char)**p;
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return -1;
            if (c == '\\' && ++*p == end)
                return -1;
            (*p)++;
        }
        if (*p == end)
            return -1;
        *out = str_make(s, (size_t)(*p - s));
        (*p)++;
        return 0;
    }
    return take_token(p, end, out);
}

int mp_boundary(str_t ct, str_t *boundary)
{
    const char *p = ct.p, *end = ct.p ? ct.p + ct.len : NULL;
    str_t b = STR_NULL;
    *boundary = STR_NULL;
    if (!p)
        return MP_ENOTFORM;
    skip_ows(&p, end);
    const char *t = p;
    while (p < end && *p != ';' && !is_ows(*p))
        p++;
    if (!str_ieq(str_make(t, (size_t)(p - t)), STRLIT("multipart/form-data")))
        return MP_ENOTFORM;
    for (;;) {
        skip_ows(&p, end);
        if (p == end)
            break;
        if (*p++ != ';')
            return MP_EBOUNDARY;
        skip_ows(&p, end);
        if (p == end)
            break; /* a trailing ';' */
        str_t name, value;
        if (take_token(&p, end, &name) || p == end || *p++ != '=')
            return MP_EBOUNDARY;
        bool quoted = p < end && *p == '"';
        if (take_value(&p, end, &value))
            return MP_EBOUNDARY;
        if (!str_ieq(name, STRLIT("boundary")))
            continue;
        if (b.p)
            return MP_EBOUNDARY; /* two boundaries: which one? */
        if (value.len < 1 || value.len > MP_BOUNDARY_MAX || value.p[value.len - 1] == ' ')
            return MP_EBOUNDARY;
        for (size_t i = 0; i < value.len; i++)
            if (!is_bchar((unsigned char)value.p[i], quoted))
                return MP_EBOUNDARY;
        b = value;
    }
    if (!b.p)
        return MP_EBOUNDARY;
    *boundary = b;
    return MP_OK;
}

/* Content-Disposition: form-data; name="x"; filename="y" */
static int parse_disposition(str_t v, struct mp_part *part)
{
    const char *p = v.p, *end = v.p + v.len;
    str_t type;
    if (take_token(&p, end, &type) || !str_ieq(type, STRLIT("form-data")))
        return -1;
    bool have_name = false, have_filename = false;
    for (;;) {
        skip_ows(&p, end);
        if (p == end)
            break;
        if (*p++ != ';')
            return -1;
        skip_ows(&p, end);
        if (p == end)
            break;
        str_t name, value;
        if (take_token(&p, end, &name) || p == end || *p++ != '=' || take_value(&p, end, &value))
            return -1;
        if (str_ieq(name, STRLIT("name"))) {
            if (have_name)
                return -1;
            have_name = true;
            part->name = value;
        } else if (str_ieq(name, STRLIT("filename"))) {
            if (have_filename)
                return -1;
            have_filename = true;
            part->filename = value; /* p != NULL even when empty: "" stays distinct from absent */
        }
        /* other parameters (filename*, ...) are ignored */
    }
    return have_name && part->name.len ? 0 : -1;
}

/* Header lines of one part, up to and including the empty line. *budget is
 * what is left of MP_MAX_HEADER_BYTES. */
static int parse_headers(const char **pp, const char *end, size_t *budget, struct mp_part *part)
{
    const char *p = *pp;
    bool have_cd = false, have_ct = false;
    for (;;) {
        const char *line = p, *limit = end;
        if ((size_t)(end - p) > *budget)
            limit = p + *budget;
        while (p < limit && *p != '\r' && *p != '\n')
            p++;
        if (p == limit)
            return limit == end ? MP_EMALFORMED : MP_EHEADERS;
        if (*p != '\r' || p + 1 == end || p[1] != '\n')
            return MP_EMALFORMED; /* bare LF or bare CR */
        size_t used = (size_t)(p - line) + 2;
        if (used > *budget)
            return MP_EHEADERS;
        *budget -= used;
        const char *eol = p;
        p += 2;
        if (eol == line)
            break; /* the empty line: data follows */
        /* name ':' OWS value OWS — a leading space (folding) fails take_token */
        const char *q = line;
        str_t name;
        if (take_token(&q, eol, &name) || q == eol || *q++ != ':')
            return MP_EMALFORMED;
        skip_ows(&q, eol);
        const char *ve = eol;
        while (ve > q && is_ows(ve[-1]))
            ve--;
        for (const char *c = q; c < ve; c++)
            if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
                return MP_EMALFORMED;
        str_t value = str_make(q, (size_t)(ve - q));
        if (str_ieq(name, STRLIT("content-disposition"))) {
            if (have_cd || parse_disposition(value, part))
                return MP_EMALFORMED;
            have_cd = true;
        } else if (str_ieq(name, STRLIT("content-type"))) {
            if (have_ct || !value.len)
                return MP_EMALFORMED;
            have_ct = true;
            part->content_type = value;
        }
    }
    if (!have_cd)
        return MP_EMALFORMED;
    *pp = p;
    return MP_OK;
}

int mp_parse(str_t body, str_t boundary, struct mp_form *form)
{
    /* "\r\n--" + boundary: the delimiter between parts (RFC 2046 §5.1.1);
     * the bounded copy is checked against the array before it is made */
    char delim[4 + MP_BOUNDARY_MAX];
    size_t dlen = 4 + boundary.len, budget = MP_MAX_HEADER_BYTES;
    int rc = MP_EMALFORMED;
    form->n = 0;
    if (boundary.len < 1 || boundary.len > MP_BOUNDARY_MAX || !body.p)
        return boundary.len < 1 || boundary.len > MP_BOUNDARY_MAX ? MP_EBOUNDARY : MP_EMALFORMED;
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary.p, boundary.len);

    const char *p = body.p, *end = body.p + body.len;
    /* no preamble: the body opens with the first dash-boundary */
    if (body.len < dlen - 2 || memcmp(p, delim + 2, dlen - 2) != 0)
        goto fail;
    p += dlen - 2;
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return MP_OK; /* close delimiter; any epilogue is ignored */
        skip_ows(&p, end); /* transport padding */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            rc = MP_EMALFORMED; /* "--B" followed by neither "--" nor CRLF */
            goto fail;
        }
        p += 2;
        if (form->n == MP_MAX_PARTS) {
            rc = MP_ETOOMANY;
            goto fail;
        }
        struct mp_part *part = &form->parts[form->n];
        *part = (struct mp_part){STR_NULL, STR_NULL, STR_NULL, STR_NULL};
        if ((rc = parse_headers(&p, end, &budget, part)) != MP_OK)
            goto fail;
        const char *d = memmem(p, (size_t)(end - p), delim, dlen);
        if (!d) {
            rc = MP_EMALFORMED; /* no closing delimiter */
            goto fail;
        }
        part->data = str_make(p, (size_t)(d - p));
        form->n++;
        p = d + dlen;
    }
fail:
    form->n = 0;
    return rc;
}

const struct mp_part *mp_find(const struct mp_form *form, const char *name)
{
    str_t want = str_c(name);
    for (int i = 0; i < form->n; i++)
        if (str_eq(form->parts[i].name, want))
            return &form->parts[i];
    return NULL;
}

const char *mp_strerror(int rc)
{
    switch (rc) {
    case MP_OK: return "ok";
    case MP_ENOTFORM: return "the request body must be multipart/form-data";
    case MP_EBOUNDARY: return "the multipart boundary parameter is missing or invalid";
    case MP_ETOOMANY: return "too many multipart parts";
    case MP_EHEADERS: return "the multipart part headers are too large";
    default: return "the multipart body is malformed";
    }
}

int mp_parse_request(struct req *r, struct mp_form *form)
{
    str_t boundary;
    int rc = mp_boundary(req_header_get(r, "content-type"), &boundary);
    if (rc == MP_ENOTFORM)
        return http_fail(r, 415, "UNSUPPORTED_MEDIA_TYPE", "%s", mp_strerror(rc));
    if (rc == MP_OK)
        rc = mp_parse(r->entity, boundary, form);
    if (rc != MP_OK)
        return http_fail(r, 400, "BAD_REQUEST", "%s", mp_strerror(rc));
    return 0;
}
