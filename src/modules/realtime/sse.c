/*
 * sse.c — GET /api/v1/realtime/sse?channels=a,b: the same stream as the
 * WebSocket for clients without one (Server-Sent Events).
 *
 * Authentication is the ordinary Authorization header (the route is
 * AUTH_USER); every channel is checked before the stream starts (422 for a
 * malformed name or more than RT_MAX_SUBS, 403 for one the caller may not
 * read). Each event is one "data: <frame>\n\n" with the frame the WebSocket
 * sends; the first is {"type":"ready",...}; a comment line ": ping" every
 * TEMEL_REALTIME_PING_MS keeps proxies from closing the stream and finds
 * dead peers (the write fails). A client whose unsent backlog passes
 * RT_MAX_BACKLOG is dropped.
 *
 * h2o keeps a pointer to the bytes being sent until it calls proceed, so
 * there are two buffers: `out` (handed to h2o) and `pending` (filling).
 */
#include <stdlib.h>

#include "modules/realtime/realtime_internal.h"

#include "core/banned.h"

struct sse_conn {
    struct rt_client c; /* first */
    h2o_generator_t gen;
    h2o_req_t *h;
    struct buf out, pending;
    bool sending, kill, ended;
    int nchannels;
    char *channels[RT_MAX_SUBS - 1]; /* filled by add_channel only; broadcast is the last subscription */
};

static void sse_free(struct sse_conn *s)
{
    for (int i = 0; i < s->nchannels; i++)
        free(s->channels[i]);
    buf_free(&s->out);
    buf_free(&s->pending);
    free(s);
}

/* The bounded adder of the requested channels (RT_MAX_SUBS). */
static int add_channel(struct sse_conn *s, str_t ch)
{
    for (int i = 0; i < s->nchannels; i++)
        if (str_eq(str_c(s->channels[i]), ch))
            return 0;
    if (s->nchannels >= (int)ARRAY_LEN(s->channels))
        return -1;
    s->channels[s->nchannels++] = xstrndup(ch.p, ch.len);
    return 0;
}

static void send_now(struct sse_conn *s)
{
    struct buf t = s->out;
    s->out = s->pending;
    s->pending = t;
    buf_reset(&s->pending);
    h2o_iovec_t iov = h2o_iovec_init(s->out.ptr, s->out.len);
    s->sending = true;
    h2o_send(s->h, &iov, 1, H2O_SEND_STATE_IN_PROGRESS);
}

/* Drop the client: end the response with an error (h2o closes the
 * connection and calls no generator callback after this). */
static void end_stream(struct sse_conn *s)
{
    h2o_req_t *h = s->h;
    s->ended = true;
    rt_hub_remove(&s->c);
    h2o_send(h, NULL, 0, H2O_SEND_STATE_ERROR);
    sse_free(s);
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *h)
{
    struct sse_conn *s = H2O_STRUCT_FROM_MEMBER(struct sse_conn, gen, g);
    (void)h;
    s->sending = false;
    if (s->kill)
        end_stream(s);
    else if (s->pending.len)
        send_now(s);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *h)
{
    struct sse_conn *s = H2O_STRUCT_FROM_MEMBER(struct sse_conn, gen, g);
    (void)h;
    rt_hub_remove(&s->c);
    sse_free(s);
}

static void queue_text(struct sse_conn *s, str_t prefix, str_t text, str_t suffix)
{
    if (s->kill)
        return;
    if (buf_put(&s->pending, prefix) || buf_put(&s->pending, text) || buf_put(&s->pending, suffix) ||
        s->pending.len > RT_MAX_BACKLOG) {
        s->kill = true;
        rt_stat_add(&rt_stats.dropped_slow, 1);
    }
    rt_hub_want_flush(&s->c);
}

static void op_send(struct rt_client *c, str_t frame)
{
    queue_text((struct sse_conn *)c, STRLIT("data: "), frame, STRLIT("\n\n"));
}

static void op_heartbeat(struct rt_client *c)
{
    queue_text((struct sse_conn *)c, STRLIT(": ping\n\n"), STRLIT(""), STRLIT(""));
}

static void op_flush(struct rt_client *c)
{
    struct sse_conn *s = (struct sse_conn *)c;
    if (s->sending)
        return; /* on_proceed sends the rest */
    if (s->kill)
        end_stream(s);
    else if (s->pending.len)
        send_now(s);
}

static const struct rt_client_ops sse_ops = {"sse", op_send, op_heartbeat, op_flush};

static void on_takeover(h2o_req_t *h, void *arg)
{
    struct sse_conn *s = arg;
    if (!h) {
        sse_free(s);
        return;
    }
    char user_id[sizeof(s->c.user_id)], role[sizeof(s->c.role)];
    memcpy(user_id, s->c.user_id, sizeof(user_id));
    memcpy(role, s->c.role, sizeof(role));
    rt_hub_add(rt_hub_get(), &s->c, &sse_ops);
    memcpy(s->c.user_id, user_id, sizeof(user_id));
    memcpy(s->c.role, role, sizeof(role));
    s->h = h;
    s->gen.proceed = on_proceed;
    s->gen.stop = on_stop;
    for (int i = 0; i < s->nchannels; i++)
        (void)rt_subscribe(&s->c, str_c(s->channels[i])); /* at most RT_MAX_SUBS - 1 + broadcast, deduplicated */
    struct buf b = BUF_INIT(8192);
    rt_client_ready(&s->c, s->channels, s->nchannels, &b);
    (void)buf_printf(&s->pending, "retry: 3000\n");
    queue_text(s, STRLIT("data: "), buf_str(&b), STRLIT("\n\n"));
    buf_free(&b);
    h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("x-accel-buffering"), 0, NULL, H2O_STRLIT("no"));
    h2o_start_response(h, &s->gen);
    op_flush(&s->c);
}

int rt_h_sse(struct req *r)
{
    const str_t *q = req_query(r, "channels");
    struct buf *why = req_buf(r, 512); /* a field error keeps a pointer to its message */
    if (!q || !q->len)
        return http_invalid(r, "channels", "a comma-separated list of channels, e.g. user:<id>,staff");
    struct sse_conn *s = xcalloc(1, sizeof(*s));
    buf_init(&s->out, RT_MAX_BACKLOG + 65536);
    buf_init(&s->pending, RT_MAX_BACKLOG + 65536);
    int rc = 0;
    size_t i = 0;
    while (i <= q->len && rc == 0) {
        size_t e = i;
        while (e < q->len && q->p[e] != ',')
            e++;
        str_t ch = str_make(q->p + i, e - i);
        i = e + 1;
        if (ch.len > RT_MAX_CHANNEL || rt_channel_syntax(ch, why))
            rc = http_invalid(r, "channels", why->len ? buf_cstr(why) : "a channel name is too long");
        else if (!str_is(ch, "broadcast") && add_channel(s, ch))
            rc = http_invalid(r, "channels", "at most 63 channels besides broadcast");
    }
    for (int k = 0; k < s->nchannels && rc == 0; k++)
        rc = rt_channel_allowed(r, str_c(s->channels[k]));
    if (rc) {
        sse_free(s);
        return rc;
    }
    (void)str_copy(s->c.user_id, r->user_id.p, sizeof(s->c.user_id));
    (void)str_copy(s->c.role, r->role.p ? r->role.p : "user", sizeof(s->c.role));
    r->content_type = "text/event-stream";
    http_takeover(r, on_takeover, s);
    return 0;
}
