/*
 * common.h — the few things every temel file needs.
 *
 * OOM policy (set once, STYLE §8): x*alloc abort the process on allocation
 * failure, so no call site checks for NULL. Programmer errors use BUG()/
 * ASSERT(); bad input is an error code, never an abort.
 *
 * Strings from the wire are str_t views {p, len}: never strlen() them.
 */
#ifndef TEMEL_COMMON_H
#define TEMEL_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WARN_UNUSED __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))
#define UNUSED(x) ((void)(x))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    const char *p;
    size_t len;
} str_t;

#define STRLIT(s) ((str_t){(s), sizeof(s) - 1})
#define STR_NULL ((str_t){NULL, 0})
#define STR_FMT(s) (int)(s).len, (s).p /* use with "%.*s" */

static inline str_t str_make(const char *p, size_t len) { return (str_t){p, len}; }
static inline str_t str_c(const char *s) { return (str_t){s, s ? strlen(s) : 0}; }
static inline bool memeq(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}
static inline bool str_eq(str_t a, str_t b) { return memeq(a.p, a.len, b.p, b.len); }
static inline bool str_eq_lit_(str_t a, const char *lit, size_t n) { return memeq(a.p, a.len, lit, n); }
/* lit must be a string literal ("" lit "" does not compile otherwise): sizeof a pointer is not its length */
#define str_is(s, lit) str_eq_lit_((s), "" lit "", sizeof(lit) - 1)
bool str_ieq(str_t a, str_t b); /* ASCII case-insensitive */
bool str_has_prefix(str_t s, str_t prefix);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* n * size, aborting on overflow (STYLE §6). */
size_t st_mult(size_t n, size_t size);
size_t st_add(size_t a, size_t b);

/* Bounded copy: copies at most dstsize-1 bytes and NUL-terminates. Returns
 * the length copied, or -1 when src did not fit (dst holds a truncated copy). */
long str_copy(char *dst, const char *src, size_t dstsize);

/* Bounded number parsing over a view: the whole view must be a number in
 * [min, max]. Returns 0 or -1. No sign/space/overflow surprises (atoi banned). */
int parse_i64(str_t s, int64_t min, int64_t max, int64_t *out) WARN_UNUSED;

/* Percent-decode one URL component into out (room for in.len+1 bytes):
 * %XX, and '+' as a space when plus_is_space. Bad escapes, NUL and invalid
 * UTF-8 → -1; else the decoded length (out is NUL-terminated). */
long url_decode(str_t in, char *out, bool plus_is_space);

NORETURN void temel_fatal(const char *file, int line, const char *fmt, ...) PRINTF_LIKE(3, 4);
#define FATAL(...) temel_fatal(__FILE__, __LINE__, __VA_ARGS__)
#define BUG(msg) temel_fatal(__FILE__, __LINE__, "BUG: %s", (msg))
#define ASSERT(c)                                                                                                      \
    do {                                                                                                               \
        if (!(c))                                                                                                      \
            temel_fatal(__FILE__, __LINE__, "assertion failed: %s", #c);                                               \
    } while (0)

#endif
