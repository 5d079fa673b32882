/* libFuzzer target: multipart/form-data bodies. Input: a Content-Type value,
 * '\n', then the body. Whatever the input, mp_boundary/mp_parse must not
 * crash, every view they return must lie inside its input, parts must come
 * in order without overlapping, and the limits must hold. */
#include <stdlib.h>

#include "http/multipart.h"

static void check_view(str_t v, const char *lo, const char *hi)
{
    if (v.p && (v.p < lo || v.p + v.len > hi))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *end = in + size;
    const char *nl = memchr(in, '\n', size);
    str_t ct = nl ? str_make(in, (size_t)(nl - in)) : STR_NULL;
    str_t body = nl ? str_make(nl + 1, (size_t)(end - nl - 1)) : str_make(in, size);
    str_t boundary;
    struct mp_form f;

    if (mp_boundary(ct, &boundary) == MP_OK) {
        if (boundary.len < 1 || boundary.len > MP_BOUNDARY_MAX)
            abort();
        check_view(boundary, ct.p, ct.p + ct.len);
    } else {
        boundary = STRLIT("B");
    }
    int rc = mp_parse(body, boundary, &f);
    if (rc != MP_OK) {
        if (f.n != 0)
            abort();
        return 0;
    }
    if (f.n < 0 || f.n > MP_MAX_PARTS)
        abort();
    const char *prev = body.p;
    for (int i = 0; i < f.n; i++) {
        const struct mp_part *p = &f.parts[i];
        if (!p->name.p || !p->name.len || !p->data.p)
            abort();
        check_view(p->name, body.p, body.p + body.len);
        check_view(p->filename, body.p, body.p + body.len);
        check_view(p->content_type, body.p, body.p + body.len);
        check_view(p->data, body.p, body.p + body.len);
        if (p->data.p < prev) /* parts in order, data after its headers */
            abort();
        prev = p->data.p + p->data.len;
    }
    return 0;
}
