/*
 * log.h — one line per event on stderr, JSON (default) or text, written with
 * a single write(2) so lines from threads never interleave.
 *
 *   struct log_line l;
 *   if (log_begin(&l, LOG_INFO, "request")) {
 *       log_str(&l, "method", m); log_int(&l, "status", 200);
 *       log_end(&l);
 *   }
 *
 * Never pass secrets (tokens, passwords, keys, Authorization values) here.
 */
#ifndef TEMEL_LOG_H
#define TEMEL_LOG_H

#include "core/config.h"
#include "core/json.h"

struct log_line {
    struct buf b;
    struct jw w;
    enum log_level level;
};

void log_init(enum log_level min, enum log_format fmt);
bool log_enabled(enum log_level lvl);
bool log_begin(struct log_line *l, enum log_level lvl, const char *msg) WARN_UNUSED;
void log_str(struct log_line *l, const char *key, str_t v);
void log_cstr(struct log_line *l, const char *key, const char *v); /* NULL -> null */
void log_int(struct log_line *l, const char *key, int64_t v);
void log_double(struct log_line *l, const char *key, double v);
/* A duration given in µs, written in ms with three decimals (no floating point). */
void log_ms(struct log_line *l, const char *key, int64_t us);
void log_end(struct log_line *l);

/* Per-thread batching (event-loop threads): lines are appended to buf and
 * kick(arg) is called when it goes from empty to non-empty, so the owner can
 * schedule log_flush_thread() at the end of the loop iteration — one write(2)
 * per iteration instead of one per request. A full buffer flushes at once. */
void log_thread_buffer(struct buf *buf, void (*kick)(void *), void *arg);
void log_flush_thread(void);

/* The per-request access line, formatted straight into the thread's batch
 * (the hot path: one reserve, constant parts copied, only variable fields
 * escaped). Same keys as a log_begin line: ts, level, msg ("request"),
 * request_id, method, route, status, dur_ms, bytes, user_id (null if empty). */
void log_access(str_t request_id, str_t method, const char *route, int status, int64_t dur_us, int64_t bytes,
                str_t user_id);

/* Shorthand for a line with a formatted "msg" and no other fields. */
void log_msg(enum log_level lvl, const char *fmt, ...) PRINTF_LIKE(2, 3);
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
