/* common.c — allocation, bounded copies and number parsing (see common.h). */
#include "core/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/json.h" /* utf8_valid */

#include "core/banned.h"

void temel_fatal(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fatal: %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        FATAL("out of memory (%zu bytes)", n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        FATAL("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        FATAL("out of memory (%zu bytes)", n);
    return q;
}

char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(st_add(n, 1));
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

size_t st_mult(size_t n, size_t size)
{
    size_t r;
    if (__builtin_mul_overflow(n, size, &r))
        FATAL("size overflow: %zu * %zu", n, size);
    return r;
}

size_t st_add(size_t a, size_t b)
{
    size_t r;
    if (__builtin_add_overflow(a, b, &r))
        FATAL("size overflow: %zu + %zu", a, b);
    return r;
}

long str_copy(char *dst, const char *src, size_t dstsize)
{
    size_t n = strlen(src);
    if (dstsize == 0)
        return -1;
    if (n >= dstsize) {
        memcpy(dst, src, dstsize - 1);
        dst[dstsize - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, n + 1);
    return (long)n;
}

bool str_ieq(str_t a, str_t b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++) {
        unsigned char x = (unsigned char)a.p[i], y = (unsigned char)b.p[i];
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return false;
    }
    return true;
}

bool str_has_prefix(str_t s, str_t prefix)
{
    return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.p, prefix.p, prefix.len) == 0);
}

int parse_i64(str_t s, int64_t min, int64_t max, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    uint64_t v = 0, lim;
    if (s.len == 0 || s.len > 20)
        return -1;
    if (s.p[0] == '-') {
        neg = true;
        i = 1;
        if (s.len == 1)
            return -1;
    }
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < s.len; i++) {
        unsigned d = (unsigned char)s.p[i] - '0';
        if (d > 9)
            return -1;
        if (v > (lim - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    int64_t r = neg ? (int64_t)(0 - v) : (int64_t)v;
    if (r < min || r > max)
        return -1;
    *out = r;
    return 0;
}

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

long url_decode(str_t in, char *out, bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.p[i];
        if (c == '%') {
            int hi, lo;
            if (in.len - i < 3)
                return -1;
            hi = hexv((unsigned char)in.p[i + 1]);
            lo = hexv((unsigned char)in.p[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
            if (c == 0)
                return -1;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == 0) {
            return -1;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (!utf8_valid(str_make(out, o)))
        return -1;
    return (long)o;
}
