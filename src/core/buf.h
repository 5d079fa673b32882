/*
 * buf.h — the one growable byte buffer (STYLE §3; curl dynbuf, sqlite3_str).
 *
 * Invariants: ptr is NUL-terminated whenever ptr != NULL; len < cap;
 * len never exceeds max (the mandatory cap given at init). An append that
 * would pass max sets the sticky `err` and changes nothing; every later
 * append is a no-op. Check once with buf_ok() before using the contents.
 *
 * Memory comes from the heap; buf_free() releases it. buf_move_to_pool()
 * hands it to an h2o request pool instead.
 */
#ifndef TEMEL_BUF_H
#define TEMEL_BUF_H

#include <stdarg.h>

#include "core/common.h"

/* Named caps per use. */
#define BUF_MAX_JSON_RESPONSE (16u << 20) /* 16 MiB */
#define BUF_MAX_SQL (64u << 10)
#define BUF_MAX_LOG_LINE (16u << 10)
#define BUF_MAX_SMALL (4u << 10)
#define BUF_MAX_METRICS (4u << 20)

struct buf {
    char *ptr;
    size_t len, cap, max;
    int err; /* sticky: 0 or BUF_ETOOBIG */
};

enum { BUF_OK = 0, BUF_ETOOBIG = -1 };

#define BUF_INIT(maxsize) ((struct buf){NULL, 0, 0, (maxsize), 0})

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, err cleared, memory kept */
static inline bool buf_ok(const struct buf *b) { return b->err == 0; }
static inline str_t buf_str(const struct buf *b) { return (str_t){b->ptr ? b->ptr : "", b->len}; }
static inline const char *buf_cstr(const struct buf *b) { return b->ptr ? b->ptr : ""; }

int buf_append(struct buf *b, const void *p, size_t n);
int buf_putc(struct buf *b, char c);
int buf_puts(struct buf *b, const char *s);
static inline int buf_put(struct buf *b, str_t s) { return buf_append(b, s.p, s.len); }
int buf_printf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
int buf_put_i64(struct buf *b, int64_t v);
/* Ensure room for n more bytes; returns a pointer to write them, or NULL
 * (sticky error set). Call buf_commit(b, n_written) afterwards. */
char *buf_reserve(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t n);
/* Hand the buffer's memory to the caller (must free()); b is reset empty. */
char *buf_detach(struct buf *b, size_t *len);

struct st_h2o_mem_pool_t;
/* Move the finished contents into the pool's lifetime (freed when the
 * request ends); b is reset empty. Returns a view of the contents. */
str_t buf_move_to_pool(struct buf *b, struct st_h2o_mem_pool_t *pool);

#endif
