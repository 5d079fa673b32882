/*
 * ws.c — GET /api/v1/realtime: the WebSocket transport (h2o's websocket on
 * wslay).
 *
 * Protocol (API.md §11), JSON text frames:
 *   → {"type":"auth","token":"<access token or API key>"}   first, within
 *     TEMEL_REALTIME_AUTH_TIMEOUT_MS; ← {"type":"ready","user_id","role"}
 *   → {"type":"subscribe","channel":"tickets:<id>"}   ← {"type":"subscribed","channel"}
 *   → {"type":"unsubscribe","channel":...}            ← {"type":"unsubscribed","channel"}
 *   → {"type":"ping"}                                 ← {"type":"pong"}
 *   ← {"type":"event","channel","event","data"}
 *   ← {"type":"error","code","message"[,"channel"]}   a refused request
 * A failed authentication answers an error frame and closes with 4401
 * (4403 for a banned account); no auth message in time closes with 4408.
 * Inbound messages are capped at TEMEL_REALTIME_MAX_MESSAGE bytes (wslay
 * closes with 1009 past it). The server pings every TEMEL_REALTIME_PING_MS;
 * a peer that sent nothing at all (not even the pong) since the previous
 * ping is dropped. A client whose unsent backlog passes RT_MAX_BACKLOG is
 * dropped too.
 *
 * Authentication and permission checks need the database, so they run as
 * http_task()s (a coroutine each); the connection handles its messages one
 * at a time in arrival order, keeping up to RT_MAX_INFLIGHT waiting behind a
 * check. The h2o connection is only ever driven (h2o_websocket_proceed) by
 * the hub's end-of-iteration flush or by h2o itself.
 */
#include <stdlib.h>

#include "modules/realtime/realtime_internal.h" /* http.h picks h2o's epoll loop before websocket.h */

#include <h2o/websocket.h>

#include "core/banned.h"

#define RT_MAX_TOKEN 4096

struct pending {
    struct pending *next;
    size_t len;
    char text[];
};

struct ws_conn {
    struct rt_client c; /* first: the hub sees this */
    h2o_websocket_conn_t *ws;
    h2o_timeout_entry_t auth_timer, close_timer;
    uint16_t close_code; /* a close waiting for the frames queued before it */
    const char *close_reason;
    int close_tries;
    struct pending *head, *tail;
    int npending;
    bool authed, busy, pumping, closing, kill, gone;
    bool ping_out, alive; /* a ping is unanswered / something arrived since */
    bool closing_seen;    /* a ping tick found it closing: the next one drops it */
    uint8_t *wbuf;        /* the frame being written (ws_send_cb); freed by a ping tick between writes */
    size_t wlen, wcap;
};

struct check {
    struct ws_conn *w;
    size_t len;
    char channel[RT_MAX_CHANNEL + 1];
};

static void ws_free(struct ws_conn *w)
{
    while (w->head) {
        struct pending *p = w->head;
        w->head = p->next;
        free(p);
    }
    free(w->wbuf);
    free(w);
}

/* The connection has ended (h2o told us, or we drop it). */
static void ws_gone(struct ws_conn *w)
{
    if (w->gone)
        return;
    w->gone = true;
    if (h2o_timeout_is_linked(&w->auth_timer))
        h2o_timeout_unlink(&w->auth_timer);
    if (h2o_timeout_is_linked(&w->close_timer))
        h2o_timeout_unlink(&w->close_timer);
    rt_hub_remove(&w->c);
    if (w->ws)
        h2o_websocket_close(w->ws);
    w->ws = NULL;
    if (!w->busy) /* else the running task's done frees it */
        ws_free(w);
}

static void send_text(struct ws_conn *w, str_t text)
{
    if (w->gone || w->closing || !w->ws)
        return;
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text.p, text.len};
    if (wslay_event_queue_msg(w->ws->ws_ctx, &m) != 0)
        return;
    if (wslay_event_get_queued_msg_length(w->ws->ws_ctx) > RT_MAX_BACKLOG && !w->kill) {
        w->kill = true; /* a slow consumer: drop it rather than buffer without end */
        rt_stat_add(&rt_stats.dropped_slow, 1);
    }
    rt_hub_want_flush(&w->c);
}

static void send_json(struct ws_conn *w, struct buf *b)
{
    if (buf_ok(b))
        send_text(w, buf_str(b));
    buf_free(b);
}

static void send_reply(struct ws_conn *w, const char *type, str_t channel)
{
    struct buf b = BUF_INIT(512);
    struct jw j;
    jw_init(&j, &b);
    jw_obj_begin(&j);
    jw_key(&j, "type");
    jw_cstr(&j, type);
    if (channel.p) {
        jw_key(&j, "channel");
        jw_str(&j, channel);
    }
    jw_obj_end(&j);
    send_json(w, &b);
}

static void send_error(struct ws_conn *w, const char *code, str_t message, str_t channel)
{
    struct buf b = BUF_INIT(2048);
    struct jw j;
    jw_init(&j, &b);
    jw_obj_begin(&j);
    jw_key(&j, "type");
    jw_cstr(&j, "error");
    jw_key(&j, "code");
    jw_cstr(&j, code);
    jw_key(&j, "message");
    jw_str(&j, message);
    if (channel.p) {
        jw_key(&j, "channel");
        jw_str(&j, channel);
    }
    jw_obj_end(&j);
    send_json(w, &b);
}

/* wslay sends control frames before data frames, and nothing after a
 * close: the close frame is queued only once every frame queued before it
 * (an error frame saying why) has gone to the socket. Checked every
 * RT_CLOSE_POLL_MS, for at most a second; then the connection is dropped. */
static void on_close_timer(h2o_timeout_entry_t *e)
{
    struct ws_conn *w = H2O_STRUCT_FROM_MEMBER(struct ws_conn, close_timer, e);
    if (w->gone || !w->ws)
        return;
    if (w->ws->sock && wslay_event_get_queued_msg_count(w->ws->ws_ctx) == 0) {
        (void)wslay_event_queue_close(w->ws->ws_ctx, w->close_code, (const uint8_t *)w->close_reason,
                                      strlen(w->close_reason));
        (void)wslay_event_shutdown_read(w->ws->ws_ctx); /* ends once the close frame is written */
    } else if (++w->close_tries < 1000 / RT_CLOSE_POLL_MS) {
        rt_hub_link_close_timer(w->c.hub, &w->close_timer);
        return;
    } else {
        w->kill = true;
    }
    rt_hub_want_flush(&w->c);
}

/* Close with code after what is queued; stop handling input at once. */
static void ws_close(struct ws_conn *w, uint16_t code, const char *reason)
{
    if (w->gone || w->closing || !w->ws)
        return;
    w->closing = true;
    w->close_code = code;
    w->close_reason = reason;
    w->close_timer.cb = on_close_timer;
    rt_hub_link_close_timer(w->c.hub, &w->close_timer);
    rt_hub_want_flush(&w->c);
}

/* ---- the client's side of the hub ---- */

static void op_send(struct rt_client *c, str_t frame) { send_text((struct ws_conn *)c, frame); }

static void op_heartbeat(struct rt_client *c)
{
    struct ws_conn *w = (struct ws_conn *)c;
    if (w->gone || !w->ws || !w->ws->sock)
        return;
    if (w->closing && !w->closing_seen) { /* closing: give it until the next tick */
        w->closing_seen = true;
        return;
    }
    if (w->closing || (w->ping_out && !w->alive)) { /* still not closed / nothing since the last ping: dead */
        w->kill = true;
        rt_hub_want_flush(c);
        return;
    }
    if (!h2o_socket_is_writing(w->ws->sock)) { /* idle since the last write: its frame buffer goes */
        free(w->wbuf);
        w->wbuf = NULL;
        w->wcap = 0;
    }
    struct wslay_event_msg m = {WSLAY_PING, (const uint8_t *)"", 0};
    (void)wslay_event_queue_msg(w->ws->ws_ctx, &m);
    w->ping_out = true;
    w->alive = false;
    rt_hub_want_flush(c);
}

static void op_flush(struct rt_client *c)
{
    struct ws_conn *w = (struct ws_conn *)c;
    if (w->kill) {
        ws_gone(w);
        return;
    }
    if (w->ws && w->ws->sock) /* not before the upgrade has been written */
        h2o_websocket_proceed(w->ws); /* may end in ws_gone (on_ws_msg(NULL)) */
}

static const struct rt_client_ops ws_ops = {"ws", op_send, op_heartbeat, op_flush};

/* ---- requests ---- */

static void pump(struct ws_conn *w);

static int t_auth(struct req *r, void *arg)
{
    (void)arg;
    return http_authenticate(r, AUTH_USER);
}

static void d_auth(struct req *r, int rc, void *arg)
{
    struct ws_conn *w = arg;
    w->busy = false;
    if (w->gone) {
        ws_free(w);
        return;
    }
    if (w->closing)
        return;
    if (rc) {
        send_error(w, r->err.code ? r->err.code : "UNAUTHORIZED", buf_str(&r->err.detail), STR_NULL);
        ws_close(w, r->err.status == 403 ? 4403 : 4401, r->err.status == 403 ? "forbidden" : "unauthorized");
        return;
    }
    (void)str_copy(w->c.user_id, r->user_id.p, sizeof(w->c.user_id));
    (void)str_copy(w->c.role, r->role.p ? r->role.p : "user", sizeof(w->c.role));
    w->authed = true;
    if (h2o_timeout_is_linked(&w->auth_timer))
        h2o_timeout_unlink(&w->auth_timer);
    struct buf b = BUF_INIT(512);
    rt_client_ready(&w->c, NULL, 0, &b);
    send_json(w, &b);
    pump(w);
}

static int t_check(struct req *r, void *arg)
{
    struct check *k = arg;
    r->user_id = str_c(k->w->c.user_id);
    r->role = str_c(k->w->c.role);
    return rt_channel_allowed(r, str_make(k->channel, k->len));
}

static void d_check(struct req *r, int rc, void *arg)
{
    struct check *k = arg;
    struct ws_conn *w = k->w;
    str_t ch = str_make(k->channel, k->len);
    w->busy = false;
    if (w->gone) {
        free(k);
        ws_free(w);
        return;
    }
    if (rc) {
        send_error(w, r->err.code ? r->err.code : "FORBIDDEN", buf_str(&r->err.detail), ch);
    } else {
        int s = rt_subscribe(&w->c, ch);
        if (s == RT_SUB_EFULL)
            send_error(w, "VALIDATION_ERROR", STRLIT("too many channels on this connection (max 64, broadcast included)"), ch);
        else
            send_reply(w, "subscribed", ch);
    }
    free(k);
    pump(w);
}

static str_t jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? str_make(json_string_value(v), json_string_length(v)) : STR_NULL;
}

/* One message, in order. May start a task (w->busy). */
static void process(struct ws_conn *w, str_t text)
{
    json_t *msg = NULL;
    struct buf why = BUF_INIT(512);
    if (json_parse_strict(text, &msg, &why) != JSON_IN_OK || !json_is_object(msg)) {
        send_error(w, "BAD_REQUEST", why.len ? buf_str(&why) : STRLIT("expected a JSON object"), STR_NULL);
        goto out;
    }
    str_t type = jstr(msg, "type");
    if (!w->authed) {
        str_t tok = jstr(msg, "token");
        if (!str_is(type, "auth") || !tok.p || tok.len == 0 || tok.len > RT_MAX_TOKEN) {
            send_error(w, "UNAUTHORIZED", STRLIT("the first message must be {\"type\":\"auth\",\"token\":\"...\"}"),
                       STR_NULL);
            ws_close(w, 4401, "unauthorized");
            goto out;
        }
        w->busy = true;
        http_task(tok, t_auth, d_auth, w);
        goto out;
    }
    if (str_is(type, "ping")) {
        send_reply(w, "pong", STR_NULL);
        goto out;
    }
    bool sub = str_is(type, "subscribe");
    if (!sub && !str_is(type, "unsubscribe")) {
        send_error(w, "BAD_REQUEST",
                   str_is(type, "auth") ? STRLIT("already authenticated")
                                        : STRLIT("type must be subscribe, unsubscribe or ping"),
                   STR_NULL);
        goto out;
    }
    str_t ch = jstr(msg, "channel");
    if (!ch.p || ch.len > RT_MAX_CHANNEL || rt_channel_syntax(ch, &why)) {
        send_error(w, "VALIDATION_ERROR", why.len ? buf_str(&why) : STRLIT("channel must be a channel name"),
                   ch.p && ch.len <= RT_MAX_CHANNEL ? ch : STR_NULL);
        goto out;
    }
    if (!sub) {
        (void)rt_unsubscribe(&w->c, ch);
        send_reply(w, "unsubscribed", ch);
        goto out;
    }
    struct check *k = xcalloc(1, sizeof(*k));
    k->w = w;
    memcpy(k->channel, ch.p, ch.len);
    k->len = ch.len;
    w->busy = true;
    http_task(STR_NULL, t_check, d_check, k);
out:
    json_decref(msg);
    buf_free(&why);
}

/* Handle waiting messages while no task runs (re-entered from a task's done
 * that finished inside process(): the outer loop goes on). */
static void pump(struct ws_conn *w)
{
    if (w->pumping)
        return;
    w->pumping = true;
    while (!w->busy && !w->closing && !w->gone && w->head) {
        struct pending *p = w->head;
        w->head = p->next;
        if (!w->head)
            w->tail = NULL;
        w->npending--;
        process(w, str_make(p->text, p->len));
        free(p);
    }
    w->pumping = false;
}

/* The bounded adder of waiting messages (RT_MAX_INFLIGHT). */
static void enqueue(struct ws_conn *w, str_t text)
{
    if (w->npending >= RT_MAX_INFLIGHT) {
        send_error(w, "RATE_LIMIT_EXCEEDED", STRLIT("too many requests waiting on this connection (max 16)"),
                   STR_NULL);
        return;
    }
    struct pending *p = xmalloc(sizeof(*p) + text.len);
    p->next = NULL;
    p->len = text.len;
    memcpy(p->text, text.p, text.len);
    if (w->tail)
        w->tail->next = p;
    else
        w->head = p;
    w->tail = p;
    w->npending++;
}

static void on_ws_msg(h2o_websocket_conn_t *conn, const struct wslay_event_on_msg_recv_arg *arg)
{
    struct ws_conn *w = conn->data;
    if (!arg) {
        ws_gone(w);
        return;
    }
    w->alive = true;
    if (w->closing)
        return;
    if (arg->opcode == WSLAY_TEXT_FRAME) {
        enqueue(w, str_make((const char *)arg->msg, arg->msg_length));
        pump(w);
    } else if (arg->opcode == WSLAY_BINARY_FRAME) {
        send_error(w, "BAD_REQUEST", STRLIT("send JSON text frames"), STR_NULL);
    }
}

static void on_auth_timeout(h2o_timeout_entry_t *e)
{
    struct ws_conn *w = H2O_STRUCT_FROM_MEMBER(struct ws_conn, auth_timer, e);
    if (w->authed || w->gone)
        return;
    send_error(w, "UNAUTHORIZED", STRLIT("no auth message in time"), STR_NULL);
    ws_close(w, 4408, "authentication timeout");
}

/* ---- writing frames ----
 *
 * libh2o 2.2.5's wslay send callback starts one socket write per call and
 * answers WOULDBLOCK while it is in flight, and wslay sends a frame's header
 * and its payload in two calls: every frame went out as a 4-byte write, then
 * its payload one loop iteration later, after the write completion. In a
 * fan-out the loop wrote all its subscribers' headers before any payload, so
 * every subscriber waited for the whole fan-out twice over (the p99 of about
 * 1 s in docs/PERFORMANCE.md). This callback replaces h2o's: it gathers a
 * frame's pieces (WSLAY_MSG_MORE) and writes the whole frame at once, so a
 * subscriber's frame leaves in the iteration that queued it. */

static void on_ws_write_done(h2o_socket_t *sock, const char *err)
{
    h2o_websocket_conn_t *conn = sock->data;
    if (err) {
        conn->cb(conn, NULL); /* what h2o does on a failed write: the connection ends (ws_gone) */
        return;
    }
    h2o_websocket_proceed(conn);
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
    h2o_websocket_conn_t *conn = user;
    struct ws_conn *w = conn->data;
    if (h2o_socket_is_writing(conn->sock)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (w->wlen + len > w->wcap) {
        size_t cap = w->wcap ? w->wcap : 256;
        while (cap < w->wlen + len)
            cap *= 2;
        w->wbuf = xrealloc(w->wbuf, cap);
        w->wcap = cap;
    }
    memcpy(w->wbuf + w->wlen, data, len);
    w->wlen += len;
    if (flags & WSLAY_MSG_MORE) /* a header: its payload comes in the next call, within this wslay_event_send */
        return (ssize_t)len;
    h2o_iovec_t iov = h2o_iovec_init(w->wbuf, w->wlen);
    w->wlen = 0; /* the bytes stay put until on_ws_write_done: nothing is added while the socket writes */
    h2o_socket_write(conn->sock, &iov, 1, on_ws_write_done);
    return (ssize_t)len;
}

/* ---- the upgrade ---- */

static void on_takeover(h2o_req_t *h, void *arg)
{
    struct ws_conn *w = arg;
    const char *key = NULL;
    if (!h) {
        ws_free(w);
        return;
    }
    if (h2o_is_websocket_handshake(h, &key) != 0 || !key) { /* the handler checked the same headers */
        h2o_send_error_400(h, "Bad Request", "not a WebSocket handshake", 0);
        ws_free(w);
        return;
    }
    rt_hub_add(rt_hub_get(), &w->c, &ws_ops);
    w->auth_timer.cb = on_auth_timeout;
    rt_hub_link_auth_timer(w->c.hub, &w->auth_timer);
    w->ws = h2o_upgrade_to_websocket(h, key, w, on_ws_msg);
    w->ws->ws_callbacks.send_callback = ws_send_cb; /* h2o's receive and message callbacks stay */
    wslay_event_config_set_callbacks(w->ws->ws_ctx, &w->ws->ws_callbacks);
    wslay_event_config_set_max_recv_msg_length(w->ws->ws_ctx, (uint64_t)rt_cfg.max_message);
}

int rt_h_websocket(struct req *r)
{
    str_t up = req_header_get(r, "upgrade"), key = req_header_get(r, "sec-websocket-key"),
          ver = req_header_get(r, "sec-websocket-version");
    if (r->http_version >= 0x200 || !up.p || !str_ieq(up, STRLIT("websocket")))
        return http_fail(r, 400, "BAD_REQUEST",
                         "this endpoint upgrades to WebSocket (HTTP/1.1, Upgrade: websocket); without WebSocket use "
                         "GET /api/v1/realtime/sse");
    if (!key.p || key.len != 24 || !ver.p || !str_is(ver, "13"))
        return http_fail(r, 400, "BAD_REQUEST", "a WebSocket handshake needs Sec-WebSocket-Key (24 characters) and "
                                                "Sec-WebSocket-Version: 13");
    struct ws_conn *w = xcalloc(1, sizeof(*w));
    r->status = 101;
    http_takeover(r, on_takeover, w);
    return 0;
}
