/* log.c — structured log lines, see log.h. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "core/timeutil.h"

#include "core/banned.h"

static enum log_level g_min = LOG_INFO;
static _Thread_local struct buf *tls_buf;
static _Thread_local struct buf tls_spare;      /* a line buffer kept between lines: no malloc per line */
static _Thread_local int64_t tls_ts_sec = -1;   /* the second tls_ts was formatted for */
static _Thread_local char tls_ts[TIME_RFC3339_LEN + 1];
static _Thread_local void (*tls_kick)(void *);
static _Thread_local void *tls_kick_arg;
#define LOG_BATCH_MAX (64u << 10)
static enum log_format g_fmt = LOG_JSON;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(enum log_level min, enum log_format fmt)
{
    g_min = min;
    g_fmt = fmt;
}

bool log_enabled(enum log_level lvl) { return lvl >= g_min; }

/* RFC 3339 now, reformatting the date part only when the second changes. */
static const char *now_ts(void)
{
    int64_t ms = time_now_ms();
    if (ms / 1000 != tls_ts_sec) {
        time_format_rfc3339(ms, tls_ts);
        tls_ts_sec = ms / 1000;
    }
    int frac = (int)(ms % 1000);
    tls_ts[20] = (char)('0' + frac / 100);
    tls_ts[21] = (char)('0' + frac / 10 % 10);
    tls_ts[22] = (char)('0' + frac % 10);
    return tls_ts;
}

bool log_begin(struct log_line *l, enum log_level lvl, const char *msg)
{
    const char *ts;
    if (lvl < g_min)
        return false;
    l->level = lvl;
    if (tls_spare.ptr) { /* borrow the thread's spare buffer */
        l->b = tls_spare;
        tls_spare = BUF_INIT(0);
        buf_reset(&l->b);
    } else {
        buf_init(&l->b, BUF_MAX_LOG_LINE);
        (void)buf_reserve(&l->b, 512);
    }
    ts = now_ts();
    if (g_fmt == LOG_JSON) {
        jw_init(&l->w, &l->b);
        jw_obj_begin(&l->w);
        jw_key(&l->w, "ts");
        jw_cstr(&l->w, ts);
        jw_key(&l->w, "level");
        jw_cstr(&l->w, level_names[lvl]);
        jw_key(&l->w, "msg");
        jw_cstr(&l->w, msg);
    } else {
        (void)buf_printf(&l->b, "%s %-5s %s", ts, level_names[lvl], msg);
    }
    return true;
}

static void text_key(struct log_line *l, const char *key)
{
    (void)buf_putc(&l->b, ' ');
    (void)buf_puts(&l->b, key);
    (void)buf_putc(&l->b, '=');
}

void log_str(struct log_line *l, const char *key, str_t v)
{
    if (g_fmt == LOG_JSON) {
        jw_key(&l->w, key);
        jw_str(&l->w, v);
    } else {
        text_key(l, key);
        (void)buf_putc(&l->b, '"');
        json_escape(&l->b, v);
        (void)buf_putc(&l->b, '"');
    }
}

void log_cstr(struct log_line *l, const char *key, const char *v)
{
    if (v) {
        log_str(l, key, str_c(v));
    } else if (g_fmt == LOG_JSON) {
        jw_key(&l->w, key);
        jw_null(&l->w);
    } else {
        text_key(l, key);
        (void)buf_puts(&l->b, "null");
    }
}

void log_int(struct log_line *l, const char *key, int64_t v)
{
    if (g_fmt == LOG_JSON) {
        jw_key(&l->w, key);
        jw_int(&l->w, v);
    } else {
        text_key(l, key);
        (void)buf_put_i64(&l->b, v);
    }
}

void log_ms(struct log_line *l, const char *key, int64_t us)
{
    char tmp[32];
    int n;
    if (us < 0)
        us = 0;
    n = snprintf(tmp, sizeof(tmp), "%lld.%03d", (long long)(us / 1000), (int)(us % 1000));
    if (g_fmt == LOG_JSON) {
        jw_key(&l->w, key);
        jw_raw(&l->w, str_make(tmp, (size_t)n));
    } else {
        text_key(l, key);
        (void)buf_append(&l->b, tmp, (size_t)n);
    }
}

void log_double(struct log_line *l, const char *key, double v)
{
    if (g_fmt == LOG_JSON) {
        jw_key(&l->w, key);
        jw_double(&l->w, v);
    } else {
        text_key(l, key);
        (void)buf_printf(&l->b, "%.3f", v);
    }
}

static void write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w <= 0)
            break;
        p += w;
        n -= (size_t)w;
    }
}

void log_thread_buffer(struct buf *buf, void (*kick)(void *), void *arg)
{
    tls_buf = buf;
    tls_kick = kick;
    tls_kick_arg = arg;
}

void log_flush_thread(void)
{
    if (tls_buf && tls_buf->len) {
        write_all(tls_buf->ptr, tls_buf->len);
        buf_reset(tls_buf);
    }
}

void log_end(struct log_line *l)
{
    if (g_fmt == LOG_JSON)
        jw_obj_end(&l->w);
    (void)buf_putc(&l->b, '\n');
    if (buf_ok(&l->b) && tls_buf) {
        bool was_empty = tls_buf->len == 0;
        if (tls_buf->len + l->b.len > LOG_BATCH_MAX)
            log_flush_thread();
        if (buf_append(tls_buf, l->b.ptr, l->b.len) != BUF_OK) {
            buf_reset(tls_buf);
            write_all(l->b.ptr, l->b.len);
        } else if (was_empty && tls_kick) {
            tls_kick(tls_kick_arg);
        }
    } else if (buf_ok(&l->b)) {
        write_all(l->b.ptr, l->b.len);
    } else {
        static const char msg[] = "{\"level\":\"error\",\"msg\":\"log line too long, dropped\"}\n";
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
    }
    /* keep a small buffer for the next line — only on threads that batch
     * (event loops, which live as long as the process): other threads may
     * exit, and a thread-local would leak */
    if (tls_buf && !tls_spare.ptr && l->b.cap <= 4096) {
        tls_spare = l->b;
        l->b = BUF_INIT(0);
    }
    buf_free(&l->b);
}

void log_access(str_t request_id, str_t method, const char *route, int status, int64_t dur_us, int64_t bytes,
                str_t user_id)
{
    struct log_line l;
    if (LOG_INFO < g_min)
        return;
    if (g_fmt != LOG_JSON || !tls_buf) { /* the general path */
        if (!log_begin(&l, LOG_INFO, "request"))
            return;
        log_str(&l, "request_id", request_id);
        log_str(&l, "method", method);
        log_cstr(&l, "route", route);
        log_int(&l, "status", status);
        log_ms(&l, "dur_ms", dur_us);
        log_int(&l, "bytes", bytes);
        if (user_id.len)
            log_str(&l, "user_id", user_id);
        else
            log_cstr(&l, "user_id", NULL);
        log_end(&l);
        return;
    }
    struct buf *b = tls_buf;
    bool was_empty = b->len == 0;
    size_t start = b->len;
    if (b->len > LOG_BATCH_MAX - 2048)
        log_flush_thread(), was_empty = true, start = 0;
#define LIT(s) (void)buf_append(b, s, sizeof(s) - 1)
    LIT("{\"ts\":\"");
    (void)buf_append(b, now_ts(), TIME_RFC3339_LEN);
    LIT("\",\"level\":\"info\",\"msg\":\"request\",\"request_id\":\"");
    json_escape(b, request_id);
    LIT("\",\"method\":\"");
    json_escape(b, method);
    LIT("\",\"route\":\"");
    json_escape(b, str_c(route));
    LIT("\",\"status\":");
    (void)buf_put_i64(b, status);
    LIT(",\"dur_ms\":");
    if (dur_us < 0)
        dur_us = 0;
    (void)buf_put_i64(b, dur_us / 1000);
    char frac[4] = {'.', (char)('0' + dur_us % 1000 / 100), (char)('0' + dur_us % 100 / 10), (char)('0' + dur_us % 10)};
    (void)buf_append(b, frac, 4);
    LIT(",\"bytes\":");
    (void)buf_put_i64(b, bytes);
    if (user_id.len) {
        LIT(",\"user_id\":\"");
        json_escape(b, user_id);
        LIT("\"}\n");
    } else {
        LIT(",\"user_id\":null}\n");
    }
#undef LIT
    if (!buf_ok(b)) { /* drop the partial line, keep what was batched */
        b->err = 0;
        b->len = start;
        if (b->ptr)
            b->ptr[start] = '\0';
        return;
    }
    if (was_empty && tls_kick)
        tls_kick(tls_kick_arg);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    struct log_line l;
    struct buf m = BUF_INIT(BUF_MAX_LOG_LINE / 2);
    va_list ap;
    if (lvl < g_min)
        return;
    va_start(ap, fmt);
    (void)buf_vprintf(&m, fmt, ap);
    va_end(ap);
    if (log_begin(&l, lvl, buf_cstr(&m)))
        log_end(&l);
    buf_free(&m);
}
