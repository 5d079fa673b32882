/* buf.c — growable, capped, NUL-terminated buffer. See buf.h for invariants. */
#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>

#define H2O_USE_EPOLL 1
#include <h2o/memory.h>

#include "core/banned.h"

void buf_init(struct buf *b, size_t max) { *b = BUF_INIT(max); }

void buf_free(struct buf *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    b->err = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

char *buf_reserve(struct buf *b, size_t n)
{
    size_t need;
    if (b->err)
        return NULL;
    if (__builtin_add_overflow(b->len, n, &need) || need > b->max) {
        b->err = BUF_ETOOBIG;
        return NULL;
    }
    need += 1; /* NUL */
    if (need > b->cap) {
        size_t ncap = b->cap ? b->cap : 64;
        while (ncap < need)
            ncap = st_mult(ncap, 2);
        if (ncap > b->max + 1)
            ncap = b->max + 1;
        b->ptr = xrealloc(b->ptr, ncap);
        b->cap = ncap;
    }
    return b->ptr + b->len;
}

void buf_commit(struct buf *b, size_t n)
{
    ASSERT(b->len + n < b->cap);
    b->len += n;
    b->ptr[b->len] = '\0';
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    char *w = buf_reserve(b, n);
    if (!w)
        return BUF_ETOOBIG;
    if (n)
        memcpy(w, p, n);
    buf_commit(b, n);
    return BUF_OK;
}

int buf_putc(struct buf *b, char c) { return buf_append(b, &c, 1); }

int buf_puts(struct buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    char *w;
    if (b->err)
        return BUF_ETOOBIG;
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        BUG("bad format");
    if (!(w = buf_reserve(b, (size_t)n)))
        return BUF_ETOOBIG;
    vsnprintf(w, (size_t)n + 1, fmt, ap);
    buf_commit(b, (size_t)n);
    return BUF_OK;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

int buf_put_i64(struct buf *b, int64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    return buf_append(b, tmp + i, sizeof(tmp) - i);
}

char *buf_detach(struct buf *b, size_t *len)
{
    char *p = b->ptr ? b->ptr : xstrdup("");
    if (len)
        *len = b->len;
    b->ptr = NULL;
    b->len = b->cap = 0;
    b->err = 0;
    return p;
}

static void on_pool_dispose(void *p) { free(*(char **)p); }

str_t buf_move_to_pool(struct buf *b, struct st_h2o_mem_pool_t *pool)
{
    size_t len;
    char **slot = h2o_mem_alloc_shared(pool, sizeof(*slot), on_pool_dispose);
    *slot = buf_detach(b, &len);
    return (str_t){*slot, len};
}
