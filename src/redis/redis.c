/*
 * redis.c — the Redis client: hiredis async on each loop, hiredis sync on
 * other threads (redis.h has the contract).
 *
 * The hiredis adapter (the ev hooks of redisAsyncContext) maps
 * addRead/delRead to h2o_socket_read_start/stop on an evloop socket made
 * from a dup of the context's fd (H2O_SOCKET_FLAG_DONT_READ: h2o only
 * reports readiness), and addWrite/delWrite to a "wanted" flag plus h2o's
 * one-shot h2o_socket_notify_write, re-armed after each write event while
 * the flag stays set (hiredis expects level-triggered hooks). cleanup closes
 * the h2o socket (h2o closes the dup; hiredis closes its own fd).
 *
 * Every async command is a struct rcall on its connection's FIFO (replies
 * come in order): a coroutine waits on it, or nobody does (fire and
 * forget, or the waiter gave up at its deadline: `abandoned`, freed when its
 * reply or the connection's end arrives). hiredis frees a reply when the
 * callback returns, so a kept reply is deep-copied with malloc (the layout
 * freeReplyObject frees).
 *
 * A connection's life: DOWN → (tick, backoff over) connect → CONNECTING:
 * [AUTH] [SELECT] PING (or SUBSCRIBEs) queued at once, behind them any
 * command issued meanwhile → the first good setup reply: UP (outage over).
 * A setup error, a lost connection, or a stalled oldest command frees the
 * context: hiredis calls every pending callback with NULL (→ RDS_EDOWN), then
 * the cleanup hook: DOWN with the next backoff.
 */
#define H2O_USE_EPOLL 1
#include <h2o.h>

#include "redis/redis.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/async.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/common.h"
#include "core/config.h"
#include "core/coro.h"
#include "core/log.h"
#include "core/timeutil.h"

#include "core/banned.h"

#define TICK_MS 50
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define CONNECT_TIMEOUT_MS 2000
#define STALL_FACTOR 4

/* ---- settings and process-wide state ----------------------------------------------- */

static struct redis_url g_url;
static bool g_on;
static int64_t g_timeout_ms = 250;

static _Atomic int64_t g_outage_since; /* CLOCK_MONOTONIC ms; 0 = no outage */
static _Atomic uint64_t g_calls, g_errors, g_timeouts, g_reconnects, g_outages, g_messages, g_cache_skips;

struct listen_ent {
    char *channel;
    redis_msg_cb cb;
    void *arg;
};
static struct listen_ent g_listen[REDIS_LISTEN_MAX];
static size_t g_nlisten;

bool redis_configured(void) { return g_on; }
bool redis_available(void) { return g_on && atomic_load(&g_outage_since) == 0; }

static void mark_down(const char *why)
{
    int64_t zero = 0, now = time_mono_ms();
    if (atomic_compare_exchange_strong(&g_outage_since, &zero, now ? now : 1)) {
        atomic_fetch_add(&g_outages, 1);
        log_warn("redis: unavailable (%s); rate limits use the local store, caches are skipped", why);
    }
}

static void mark_up(void)
{
    int64_t since = atomic_exchange(&g_outage_since, 0);
    if (since)
        log_info("redis: available again after %lld ms", (long long)(time_mono_ms() - since));
}

void redis_url_free(struct redis_url *u)
{
    free(u->host);
    free(u->user);
    free(u->pass);
    memset(u, 0, sizeof(*u));
}

int redis_url_parse(const char *url, struct redis_url *out, struct buf *err)
{
    static const char scheme[] = "redis://";
    const char *p, *at, *hs, *he, *end;
    int64_t v;
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (strncmp(url, scheme, sizeof(scheme) - 1)) {
        (void)buf_puts(err, "must start with redis://");
        return -1;
    }
    p = url + sizeof(scheme) - 1;
    end = p + strcspn(p, "/?#");
    at = memchr(p, '@', (size_t)(end - p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon) { /* redis://pass@host is not a form anyone uses: refuse it */
            (void)buf_puts(err, "user info must be [user]:password");
            return -1;
        }
        if (colon > p)
            out->user = xstrndup(p, (size_t)(colon - p));
        out->pass = xstrndup(colon + 1, (size_t)(at - colon - 1));
        p = at + 1;
    }
    hs = p;
    he = hs;
    if (*hs == '[') { /* [v6]:port */
        he = memchr(hs, ']', (size_t)(end - hs));
        if (!he) {
            (void)buf_puts(err, "unterminated [address]");
            goto fail;
        }
        out->host = xstrndup(hs + 1, (size_t)(he - hs - 1));
        he++;
    } else {
        while (he < end && *he != ':')
            he++;
        out->host = xstrndup(hs, (size_t)(he - hs));
    }
    if (!out->host[0]) {
        (void)buf_puts(err, "no host");
        goto fail;
    }
    if (he < end) {
        if (*he != ':' || parse_i64(str_make(he + 1, (size_t)(end - he - 1)), 1, 65535, &v)) {
            (void)buf_puts(err, "bad port");
            goto fail;
        }
        out->port = (int)v;
    }
    if (*end == '/' && end[1]) {
        const char *ds = end + 1;
        size_t dl = strcspn(ds, "?#");
        if (parse_i64(str_make(ds, dl), 0, 1000000, &v)) {
            (void)buf_puts(err, "bad database number");
            goto fail;
        }
        out->db = (int)v;
    }
    return 0;
fail:
    redis_url_free(out);
    return -1;
}

int redis_config(struct buf *err)
{
    char *url = config_env_dup("REDIS_URL");
    struct buf why = BUF_INIT(256);
    int rc = 0;
    if (config_env_int("TEMEL_REDIS_TIMEOUT_MS", 250, 10, 60000, &g_timeout_ms, err))
        rc = -1;
    else if (url && redis_url_parse(url, &g_url, &why)) {
        (void)buf_printf(err, "REDIS_URL: %s", buf_cstr(&why));
        rc = -1;
    } else if (url) {
        g_on = true;
    }
    buf_free(&why);
    free(url);
    return rc;
}

/* ---- replies ------------------------------------------------------------------------ */

static redisReply *reply_dup(const redisReply *r)
{
    redisReply *c = xcalloc(1, sizeof(*c));
    c->type = r->type;
    c->integer = r->integer;
    if (r->str) {
        c->str = xstrndup(r->str, r->len);
        c->len = r->len;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        c->elements = r->elements;
        c->element = xcalloc(r->elements, sizeof(*c->element));
        for (size_t i = 0; i < r->elements; i++)
            c->element[i] = reply_dup(r->element[i]);
    }
    return c;
}

void redis_reply_free(redisReply *r)
{
    if (r)
        freeReplyObject(r);
}

/* ---- the loop side: connections ----------------------------------------------------- */

enum rstate { RC_DOWN, RC_CONNECTING, RC_UP };

struct rthread;

struct rcall {
    struct rcall *next;
    struct coro *waiter;
    redisReply *reply;
    int64_t sent_ms;
    bool done, failed, keep, abandoned;
};

struct rconn {
    struct rthread *t;
    redisAsyncContext *ac;
    h2o_socket_t *sock;
    enum rstate state;
    bool sub, reading, write_armed, write_wanted;
    struct rcall *head, *tail; /* in flight, in reply order (command connection) */
    int64_t retry_at_ms, started_ms;
    int backoff_ms;
};

struct rsub {
    char *channel;
    bool pattern;
    redis_msg_cb cb;
    void *arg;
};

struct rthread {
    h2o_evloop_t *loop;
    struct rconn cmd, subc;
    struct rsub subs[REDIS_SUBS_MAX];
    size_t nsubs;
    h2o_timeout_t tick;
    h2o_timeout_entry_t tick_entry;
    bool closing;
};

static _Thread_local struct rthread *tls_rt;

static void conn_start(struct rconn *c);

static void on_sock_read(h2o_socket_t *sock, const char *err)
{
    struct rconn *c = sock->data;
    UNUSED(err); /* hiredis finds out when it reads */
    if (c && c->ac)
        redisAsyncHandleRead(c->ac);
}

static void arm_write(struct rconn *c);

static void on_sock_write(h2o_socket_t *sock, const char *err)
{
    struct rconn *c = sock->data;
    UNUSED(err);
    if (!c)
        return;
    c->write_armed = false;
    if (c->ac && c->write_wanted) {
        redisAsyncHandleWrite(c->ac);
        if (c->ac && c->write_wanted) /* level-triggered for hiredis: still wanted → again */
            arm_write(c);
    }
}

static void arm_write(struct rconn *c)
{
    if (c->sock && !c->write_armed) {
        c->write_armed = true;
        h2o_socket_notify_write(c->sock, on_sock_write);
    }
}

static void ev_add_read(void *p)
{
    struct rconn *c = p;
    if (c->sock && !c->reading) {
        c->reading = true;
        h2o_socket_read_start(c->sock, on_sock_read);
    }
}

static void ev_del_read(void *p)
{
    struct rconn *c = p;
    if (c->sock && c->reading) {
        c->reading = false;
        h2o_socket_read_stop(c->sock);
    }
}

static void ev_add_write(void *p)
{
    struct rconn *c = p;
    c->write_wanted = true;
    arm_write(c);
}

static void ev_del_write(void *p)
{
    struct rconn *c = p;
    c->write_wanted = false;
}

static void tick_link(struct rthread *t)
{
    if (!t->closing && !h2o_timeout_is_linked(&t->tick_entry))
        h2o_timeout_link(t->loop, &t->tick, &t->tick_entry);
}

/* The context is being freed (hiredis has run every pending callback). */
static void ev_cleanup(void *p)
{
    struct rconn *c = p;
    if (c->sock) {
        c->sock->data = NULL;
        h2o_socket_close(c->sock);
        c->sock = NULL;
    }
    c->reading = c->write_armed = c->write_wanted = false;
    c->ac = NULL;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    c->retry_at_ms = time_mono_ms() + c->backoff_ms;
    if (c->t->closing)
        ;
    else if (c->state == RC_UP)
        mark_down("connection lost");
    else if (c->state == RC_CONNECTING)
        mark_down("cannot connect");
    c->state = RC_DOWN;
    tick_link(c->t);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    UNUSED(ac);
    UNUSED(status); /* the setup replies (or their NULL) decide */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    UNUSED(ac);
    UNUSED(status); /* ev_cleanup has done the work */
}

static void call_unlink(struct rconn *c, struct rcall *k)
{
    struct rcall **pp = &c->head, *prev = NULL;
    while (*pp && *pp != k) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = k->next;
    if (c->tail == k)
        c->tail = prev;
    k->next = NULL;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = ac->data;
    struct rcall *k = priv;
    redisReply *r = reply;
    call_unlink(c, k);
    if (!r) {
        k->failed = true;
    } else {
        if (c->state != RC_UP) { /* the first reply on a new connection */
            c->state = RC_UP;
            c->backoff_ms = 0;
        }
        mark_up();
        if (k->keep && !k->abandoned)
            k->reply = reply_dup(r);
    }
    k->done = true;
    if (k->abandoned || !k->keep) {
        free(k);
        return;
    }
    if (k->waiter)
        coro_wake(k->waiter);
}

/* AUTH / SELECT / PING on a new connection; an error reply drops it. */
static void on_setup(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = ac->data;
    redisReply *r = reply;
    UNUSED(priv);
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        static _Atomic int64_t logged;
        int64_t now = time_mono_ms(), last = atomic_load(&logged);
        if (now - last >= 10000 && atomic_compare_exchange_strong(&logged, &last, now))
            log_error("redis: connection setup refused: %.*s", (int)(r->len > 200 ? 200 : r->len), r->str);
        redisAsyncDisconnect(ac); /* hiredis frees it after this callback */
        return;
    }
    if (!c->sub && c->state == RC_CONNECTING) {
        c->state = RC_UP;
        c->backoff_ms = 0;
        mark_up();
    }
}

static void dispatch(struct rthread *t, bool pattern, const char *name, const char *channel, const char *msg,
                     size_t len)
{
    /* a callback may unsubscribe itself: walk by index, re-checking */
    for (size_t i = 0; i < t->nsubs; i++) {
        struct rsub *s = &t->subs[i];
        if (s->pattern == pattern && !strcmp(s->channel, name))
            s->cb(s->arg, channel, msg, len);
    }
}

static void on_sub_msg(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = ac->data;
    struct rthread *t = priv;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3)
        return;
    const char *kind = r->element[0]->str;
    if (!kind)
        return;
    if (!strcmp(kind, "message") && r->element[1]->str && r->element[2]->str) {
        atomic_fetch_add(&g_messages, 1);
        dispatch(t, false, r->element[1]->str, r->element[1]->str, r->element[2]->str, r->element[2]->len);
    } else if (!strcmp(kind, "pmessage") && r->elements >= 4 && r->element[1]->str && r->element[2]->str &&
               r->element[3]->str) {
        atomic_fetch_add(&g_messages, 1);
        dispatch(t, true, r->element[1]->str, r->element[2]->str, r->element[3]->str, r->element[3]->len);
    } else if ((!strcmp(kind, "subscribe") || !strcmp(kind, "psubscribe")) && r->element[1]->str) {
        if (c->state != RC_UP) {
            c->state = RC_UP;
            c->backoff_ms = 0;
        }
        mark_up();
        /* (re)subscribed: whatever was published meanwhile is lost */
        dispatch(t, kind[0] == 'p', r->element[1]->str, r->element[1]->str, NULL, 0);
    }
}

static int sub_send(struct rconn *c, const char *channel, bool pattern, bool on)
{
    const char *verb = pattern ? (on ? "PSUBSCRIBE" : "PUNSUBSCRIBE") : (on ? "SUBSCRIBE" : "UNSUBSCRIBE");
    if (!c->ac)
        return -1;
    return redisAsyncCommand(c->ac, on ? on_sub_msg : NULL, c->t, "%s %s", verb, channel) == REDIS_OK ? 0 : -1;
}

static void conn_start(struct rconn *c)
{
    struct rthread *t = c->t;
    redisAsyncContext *ac = redisAsyncConnect(g_url.host, g_url.port);
    int fd;
    if (!ac)
        FATAL("out of memory");
    c->started_ms = time_mono_ms();
    c->state = RC_CONNECTING;
    if (ac->err || (fd = fcntl(ac->c.fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        redisAsyncFree(ac); /* no hooks yet: nothing calls back */
        ev_cleanup(c);
        return;
    }
    atomic_fetch_add(&g_reconnects, 1);
    c->ac = ac;
    ac->data = c;
    c->sock = h2o_evloop_socket_create(t->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    c->sock->data = c;
    ac->ev.data = c;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect); /* arms the first write event */
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (g_url.pass) {
        if (g_url.user)
            redisAsyncCommand(ac, on_setup, NULL, "AUTH %s %s", g_url.user, g_url.pass);
        else
            redisAsyncCommand(ac, on_setup, NULL, "AUTH %s", g_url.pass);
    }
    if (c->sub) {
        for (size_t i = 0; i < t->nsubs; i++) {
            bool seen = false; /* one SUBSCRIBE per distinct channel */
            for (size_t j = 0; j < i && !seen; j++)
                seen = t->subs[j].pattern == t->subs[i].pattern && !strcmp(t->subs[j].channel, t->subs[i].channel);
            if (!seen)
                (void)sub_send(c, t->subs[i].channel, t->subs[i].pattern, true);
        }
    } else {
        if (g_url.db)
            redisAsyncCommand(ac, on_setup, NULL, "SELECT %d", g_url.db);
        redisAsyncCommand(ac, on_setup, NULL, "PING");
    }
    tick_link(t);
}

static void conn_check(struct rconn *c, int64_t now)
{
    if (c->state == RC_DOWN && !c->ac) {
        if (c->sub && c->t->nsubs == 0)
            return;
        if (now >= c->retry_at_ms)
            conn_start(c);
        return;
    }
    if (!c->ac)
        return;
    if (c->state == RC_CONNECTING && now - c->started_ms > CONNECT_TIMEOUT_MS) {
        redisAsyncFree(c->ac); /* → callbacks with NULL, ev_cleanup */
        return;
    }
    if (c->head && now - c->head->sent_ms > g_timeout_ms * STALL_FACTOR) {
        atomic_fetch_add(&g_errors, 1);
        redisAsyncFree(c->ac);
    }
}

static void on_tick(h2o_timeout_entry_t *e)
{
    struct rthread *t = H2O_STRUCT_FROM_MEMBER(struct rthread, tick_entry, e);
    int64_t now = time_mono_ms();
    conn_check(&t->cmd, now);
    conn_check(&t->subc, now);
    bool again = t->cmd.state != RC_UP || t->cmd.head || (t->nsubs && t->subc.state != RC_UP);
    if (again)
        tick_link(t);
}

static int sub_add(struct rthread *t, const char *channel, bool pattern, redis_msg_cb cb, void *arg)
{
    bool seen = false;
    if (t->nsubs >= REDIS_SUBS_MAX)
        return -1;
    for (size_t i = 0; i < t->nsubs && !seen; i++)
        seen = t->subs[i].pattern == pattern && !strcmp(t->subs[i].channel, channel);
    t->subs[t->nsubs++] = (struct rsub){xstrdup(channel), pattern, cb, arg};
    if (t->subc.ac && !seen)
        (void)sub_send(&t->subc, channel, pattern, true);
    if (!t->subc.ac && t->subc.state == RC_DOWN)
        t->subc.retry_at_ms = 0;
    tick_link(t);
    return 0;
}

void redis_thread_init(struct st_h2o_evloop_t *loop, int idx)
{
    struct rthread *t;
    if (!g_on)
        return;
    t = xcalloc(1, sizeof(*t));
    t->loop = loop;
    t->cmd.t = t->subc.t = t;
    t->subc.sub = true;
    t->tick_entry.cb = on_tick;
    h2o_timeout_init(loop, &t->tick, TICK_MS);
    tls_rt = t;
    if (idx == 0)
        for (size_t i = 0; i < g_nlisten; i++)
            (void)sub_add(t, g_listen[i].channel, false, g_listen[i].cb, g_listen[i].arg);
    conn_start(&t->cmd);
    if (t->nsubs)
        conn_start(&t->subc);
}

void redis_thread_release(void)
{
    struct rthread *t = tls_rt;
    if (!t)
        return;
    t->closing = true;
    if (t->cmd.ac)
        redisAsyncFree(t->cmd.ac);
    if (t->subc.ac)
        redisAsyncFree(t->subc.ac);
    if (h2o_timeout_is_linked(&t->tick_entry))
        h2o_timeout_unlink(&t->tick_entry);
    h2o_timeout_dispose(t->loop, &t->tick);
    for (size_t i = 0; i < t->nsubs; i++)
        free(t->subs[i].channel);
    free(t);
    tls_rt = NULL;
}

int redis_subscribe(const char *channel, bool pattern, redis_msg_cb cb, void *arg)
{
    struct rthread *t = tls_rt;
    if (!t)
        return -1;
    return sub_add(t, channel, pattern, cb, arg);
}

void redis_unsubscribe(const char *channel, bool pattern, redis_msg_cb cb, void *arg)
{
    struct rthread *t = tls_rt;
    bool left = false;
    if (!t)
        return;
    for (size_t i = 0; i < t->nsubs; i++) {
        struct rsub *s = &t->subs[i];
        if (s->pattern == pattern && s->cb == cb && s->arg == arg && !strcmp(s->channel, channel)) {
            free(s->channel);
            t->subs[i] = t->subs[--t->nsubs];
            break;
        }
    }
    for (size_t i = 0; i < t->nsubs && !left; i++)
        left = t->subs[i].pattern == pattern && !strcmp(t->subs[i].channel, channel);
    if (!left && t->subc.ac && (t->subc.ac->c.flags & REDIS_SUBSCRIBED))
        (void)sub_send(&t->subc, channel, pattern, false);
}

int redis_listen(const char *channel, redis_msg_cb cb, void *arg)
{
    if (g_nlisten >= REDIS_LISTEN_MAX)
        return -1;
    g_listen[g_nlisten++] = (struct listen_ent){xstrdup(channel), cb, arg};
    return 0;
}

/* Queue one formatted command on this loop's command connection. */
static struct rcall *loop_send(struct rthread *t, const char *cmd, size_t len, bool keep)
{
    struct rconn *c = &t->cmd;
    struct rcall *k;
    if (!c->ac)
        return NULL;
    k = xcalloc(1, sizeof(*k));
    k->keep = keep;
    k->sent_ms = time_mono_ms();
    if (redisAsyncFormattedCommand(c->ac, on_reply, k, cmd, len) != REDIS_OK) {
        free(k);
        return NULL;
    }
    if (c->tail)
        c->tail->next = k;
    else
        c->head = k;
    c->tail = k;
    tick_link(t); /* the stall check */
    return k;
}

static int loop_call(struct rthread *t, const char *cmd, size_t len, redisReply **out)
{
    struct rcall *k;
    int64_t deadline = time_mono_ms() + g_timeout_ms, cd = coro_get_deadline();
    if (cd && cd < deadline)
        deadline = cd;
    if (!(k = loop_send(t, cmd, len, true)))
        return RDS_EDOWN;
    k->waiter = coro_self();
    while (!k->done) {
        if (!coro_wait_until(deadline) && !k->done) {
            k->abandoned = true; /* freed by on_reply when the reply or the end comes */
            k->waiter = NULL;
            atomic_fetch_add(&g_timeouts, 1);
            mark_down("timeout");
            return RDS_ETIMEOUT;
        }
    }
    if (k->failed) {
        free(k);
        return RDS_EDOWN;
    }
    *out = k->reply;
    free(k);
    return 0;
}

/* ---- other threads: one synchronous connection each --------------------------------- */

struct sync_conn {
    redisContext *c;
    int64_t retry_at_ms;
    int backoff_ms;
};
static _Thread_local struct sync_conn tls_sync;

/* A thread that ends (a job runner at shutdown) closes its connection: a
 * key's destructor, registered when the thread first connects. */
static pthread_key_t g_sync_key;
static pthread_once_t g_sync_once = PTHREAD_ONCE_INIT;

static void sync_at_exit(void *p)
{
    struct sync_conn *s = p;
    if (s->c)
        redisFree(s->c);
    s->c = NULL;
}

static void sync_key_init(void)
{
    if (pthread_key_create(&g_sync_key, sync_at_exit))
        log_warn("redis: no thread-exit hook: a job thread's connection stays open until the process ends");
}

static void sync_drop(struct sync_conn *s, const char *why)
{
    if (s->c)
        redisFree(s->c);
    s->c = NULL;
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (s->backoff_ms > BACKOFF_MAX_MS)
        s->backoff_ms = BACKOFF_MAX_MS;
    s->retry_at_ms = time_mono_ms() + s->backoff_ms;
    mark_down(why);
}

static bool sync_setup_ok(redisContext *c, redisReply *r)
{
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    UNUSED(c);
    if (r && r->type == REDIS_REPLY_ERROR)
        log_error("redis: connection setup refused: %.*s", (int)(r->len > 200 ? 200 : r->len), r->str);
    freeReplyObject(r);
    return ok;
}

static redisContext *sync_get(void)
{
    struct sync_conn *s = &tls_sync;
    struct timeval tv = {.tv_sec = g_timeout_ms / 1000, .tv_usec = (g_timeout_ms % 1000) * 1000};
    struct timeval ctv = {.tv_sec = CONNECT_TIMEOUT_MS / 1000, .tv_usec = 0};
    if (s->c)
        return s->c;
    if (time_mono_ms() < s->retry_at_ms)
        return NULL;
    s->c = redisConnectWithTimeout(g_url.host, g_url.port, ctv);
    if (!s->c || s->c->err) {
        sync_drop(s, "cannot connect");
        return NULL;
    }
    atomic_fetch_add(&g_reconnects, 1);
    pthread_once(&g_sync_once, sync_key_init);
    (void)pthread_setspecific(g_sync_key, s);
    redisSetTimeout(s->c, tv);
    if (g_url.pass &&
        !sync_setup_ok(s->c, g_url.user ? redisCommand(s->c, "AUTH %s %s", g_url.user, g_url.pass)
                                        : redisCommand(s->c, "AUTH %s", g_url.pass))) {
        sync_drop(s, "setup refused");
        return NULL;
    }
    if (g_url.db && !sync_setup_ok(s->c, redisCommand(s->c, "SELECT %d", g_url.db))) {
        sync_drop(s, "setup refused");
        return NULL;
    }
    s->backoff_ms = 0;
    mark_up();
    return s->c;
}

static int sync_call(const char *cmd, size_t len, redisReply **out)
{
    redisContext *c = sync_get();
    void *r = NULL;
    if (!c)
        return RDS_EDOWN;
    if (redisAppendFormattedCommand(c, cmd, len) != REDIS_OK || redisGetReply(c, &r) != REDIS_OK || !r) {
        bool to = c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
        if (to)
            atomic_fetch_add(&g_timeouts, 1);
        sync_drop(&tls_sync, to ? "timeout" : "connection lost");
        return to ? RDS_ETIMEOUT : RDS_EDOWN;
    }
    mark_up();
    if (out)
        *out = r;
    else
        freeReplyObject(r);
    return 0;
}

/* ---- calls -------------------------------------------------------------------------- */

static int call_formatted(char *cmd, int len, redisReply **out)
{
    struct rthread *t = tls_rt;
    int rc;
    if (out)
        *out = NULL;
    if (len < 0) /* a format error is the caller's bug */
        BUG("redis: bad command format");
    if (!g_on) {
        redisFreeCommand(cmd);
        return RDS_EDOWN;
    }
    atomic_fetch_add(&g_calls, 1);
    if (t) {
        if (!out) /* fire and forget */
            rc = loop_send(t, cmd, (size_t)len, false) ? 0 : RDS_EDOWN;
        else if (!coro_self())
            rc = RDS_EDOWN; /* a loop never blocks */
        else
            rc = loop_call(t, cmd, (size_t)len, out);
    } else {
        rc = sync_call(cmd, (size_t)len, out);
    }
    redisFreeCommand(cmd);
    if (rc)
        atomic_fetch_add(&g_errors, 1);
    return rc;
}

static int call_v(redisReply **reply, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    return call_formatted(cmd, len, reply);
}

int redis_cmd(redisReply **reply, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = call_v(reply, fmt, ap);
    va_end(ap);
    return rc;
}

int redis_cmdv(redisReply **reply, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    return call_formatted(cmd, len, reply);
}

int redis_send(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = call_v(NULL, fmt, ap); /* no reply wanted: fire and forget */
    va_end(ap);
    return rc;
}

int redis_publish(const char *channel, const void *msg, size_t len)
{
    return redis_send("PUBLISH %s %b", channel, msg, len);
}

#define EVAL_ARGS_MAX 16

int redis_eval(struct redis_script *s, redisReply **reply, int nkeys, int argc, const char **argv, const size_t *lens)
{
    const char *av[EVAL_ARGS_MAX + 3];
    size_t al[EVAL_ARGS_MAX + 3];
    char nk[16];
    int rc;
    *reply = NULL;
    if (argc < 0 || argc > EVAL_ARGS_MAX || nkeys > argc)
        BUG("redis_eval: too many arguments");
    if (!atomic_load_explicit(&s->ready, memory_order_acquire)) {
        /* the SHA-1 Redis names the script by: computed here, no round trip; once, as
         * a script is shared by every loop thread */
        static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
        pthread_mutex_lock(&once);
        if (!atomic_load_explicit(&s->ready, memory_order_relaxed)) {
            unsigned char d[SHA_DIGEST_LENGTH];
            SHA1((const unsigned char *)s->src, strlen(s->src), d);
            sodium_bin2hex(s->sha, sizeof(s->sha), d, sizeof(d));
            atomic_store_explicit(&s->ready, true, memory_order_release);
        }
        pthread_mutex_unlock(&once);
    }
    (void)snprintf(nk, sizeof(nk), "%d", nkeys);
    av[0] = "EVALSHA";
    al[0] = 7;
    av[1] = s->sha;
    al[1] = 40;
    av[2] = nk;
    al[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        av[3 + i] = argv[i];
        al[3 + i] = lens[i];
    }
    rc = redis_cmdv(reply, argc + 3, av, al);
    if (rc || (*reply)->type != REDIS_REPLY_ERROR || strncmp((*reply)->str, "NOSCRIPT", 8))
        return rc;
    /* the server does not know it (restarted, flushed): load it, once more */
    redis_reply_free(*reply);
    *reply = NULL;
    redisReply *ld = NULL;
    if ((rc = redis_cmd(&ld, "SCRIPT LOAD %s", s->src)))
        return rc;
    redis_reply_free(ld);
    return redis_cmdv(reply, argc + 3, av, al);
}

/* ---- caches ------------------------------------------------------------------------- */

void redis_cache_skip(void) { atomic_fetch_add(&g_cache_skips, 1); }

int redis_cache_get(const char *key, struct buf *out)
{
    redisReply *r = NULL;
    int rc = g_on ? redis_cmd(&r, "GET %s", key) : RDS_EDOWN;
    if (rc || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        redis_reply_free(r);
        redis_cache_skip();
        return RDS_EDOWN;
    }
    bool hit = r->type == REDIS_REPLY_STRING;
    size_t before = out->len;
    if (hit && buf_put(out, str_make(r->str, r->len)) != BUF_OK) {
        out->len = before; /* too large for the caller: a miss */
        out->err = BUF_OK;
        hit = false;
    }
    redis_reply_free(r);
    return hit ? 1 : 0;
}

int redis_cache_put(const char *key, str_t head, str_t body, int64_t ttl_ms)
{
    if (!g_on || redis_send("SET %s %b\n%b PX %lld", key, head.p ? head.p : "", head.len, body.p ? body.p : "",
                            body.len, (long long)ttl_ms)) {
        redis_cache_skip();
        return RDS_EDOWN;
    }
    return 0;
}

/* ---- statistics --------------------------------------------------------------------- */

struct redis_stats redis_stats(void)
{
    return (struct redis_stats){
        .calls = atomic_load(&g_calls),
        .errors = atomic_load(&g_errors),
        .timeouts = atomic_load(&g_timeouts),
        .reconnects = atomic_load(&g_reconnects),
        .outages = atomic_load(&g_outages),
        .messages = atomic_load(&g_messages),
        .cache_skips = atomic_load(&g_cache_skips),
        .up = redis_available(),
    };
}

void redis_metrics(struct buf *out)
{
    struct redis_stats s = redis_stats();
    if (!g_on)
        return;
    (void)buf_printf(out,
                     "# TYPE temel_redis_up gauge\ntemel_redis_up %d\n"
                     "# TYPE temel_redis_calls_total counter\ntemel_redis_calls_total %llu\n"
                     "# TYPE temel_redis_errors_total counter\ntemel_redis_errors_total %llu\n"
                     "# TYPE temel_redis_timeouts_total counter\ntemel_redis_timeouts_total %llu\n"
                     "# TYPE temel_redis_connects_total counter\ntemel_redis_connects_total %llu\n"
                     "# TYPE temel_redis_outages_total counter\ntemel_redis_outages_total %llu\n"
                     "# TYPE temel_redis_messages_total counter\ntemel_redis_messages_total %llu\n"
                     "# TYPE temel_redis_cache_skipped_total counter\ntemel_redis_cache_skipped_total %llu\n",
                     s.up ? 1 : 0, (unsigned long long)s.calls, (unsigned long long)s.errors,
                     (unsigned long long)s.timeouts, (unsigned long long)s.reconnects, (unsigned long long)s.outages,
                     (unsigned long long)s.messages, (unsigned long long)s.cache_skips);
}
