/*
 * hub.c — per-loop hubs: clients, channel table, timers, cross-thread
 * delivery; the shared presence table.
 *
 * realtime_publish() builds the event frame once and sends a reference to
 * every hub's receiver (h2o's multithread queue: a short mutex and an
 * eventfd write, never a wait). Each hub looks the channel up in its own
 * table and queues the frame on every subscriber; the subscribers flush at
 * the end of the loop iteration (realtime_internal.h).
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "modules/realtime/realtime_internal.h"

#include "core/banned.h"

struct rt_settings rt_cfg = {.ping_ms = 30000, .auth_timeout_ms = 10000, .max_message = 4096};
struct rt_stats rt_stats;

void rt_stat_add(int64_t *counter, int64_t n) { __atomic_add_fetch(counter, n, __ATOMIC_RELAXED); }

struct rt_stats rt_stats_get(void)
{
    struct rt_stats s;
    s.ws = __atomic_load_n(&rt_stats.ws, __ATOMIC_RELAXED);
    s.sse = __atomic_load_n(&rt_stats.sse, __ATOMIC_RELAXED);
    s.published = __atomic_load_n(&rt_stats.published, __ATOMIC_RELAXED);
    s.delivered = __atomic_load_n(&rt_stats.delivered, __ATOMIC_RELAXED);
    s.dropped_slow = __atomic_load_n(&rt_stats.dropped_slow, __ATOMIC_RELAXED);
    return s;
}

/* ---- a small chained hash of names (channels here, users in presence) ---- */

struct hnode {
    struct hnode *next;
    uint64_t hash;
    char *key;
    size_t klen;
};
struct htab {
    struct hnode **b;
    size_t nb, n;
};

static uint64_t hash_of(str_t k)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < k.len; i++)
        h = (h ^ (unsigned char)k.p[i]) * 1099511628211ull;
    return h;
}

static struct hnode *htab_find(const struct htab *t, str_t k)
{
    if (!t->nb)
        return NULL;
    uint64_t h = hash_of(k);
    for (struct hnode *n = t->b[h & (t->nb - 1)]; n; n = n->next)
        if (n->hash == h && memeq(n->key, n->klen, k.p, k.len))
            return n;
    return NULL;
}

/* node->key must be set (the node's own copy) */
static void htab_insert(struct htab *t, struct hnode *node)
{
    if (t->n + 1 > t->nb) { /* grow: keep chains about one long */
        size_t nb = t->nb ? t->nb * 2 : 64;
        struct hnode **b = xcalloc(nb, sizeof(*b));
        for (size_t i = 0; i < t->nb; i++)
            for (struct hnode *n = t->b[i], *next; n; n = next) {
                next = n->next;
                n->next = b[n->hash & (nb - 1)];
                b[n->hash & (nb - 1)] = n;
            }
        free(t->b);
        t->b = b;
        t->nb = nb;
    }
    node->hash = hash_of(str_make(node->key, node->klen));
    struct hnode **slot = &t->b[node->hash & (t->nb - 1)];
    node->next = *slot;
    *slot = node;
    t->n++;
}

static void htab_remove(struct htab *t, struct hnode *node)
{
    for (struct hnode **p = &t->b[node->hash & (t->nb - 1)]; *p; p = &(*p)->next)
        if (*p == node) {
            *p = node->next;
            t->n--;
            return;
        }
}

/* ---- messages ---- */

void rt_event_fields(struct jw *w, str_t channel, str_t event, str_t data_json)
{
    jw_key(w, "channel");
    jw_str(w, channel);
    jw_key(w, "event");
    jw_str(w, event);
    jw_key(w, "data");
    if (data_json.len)
        jw_raw(w, data_json);
    else
        jw_null(w);
}

void rt_client_ready(struct rt_client *c, char *const *channels, int n, struct buf *out)
{
    (void)rt_subscribe(c, STRLIT("broadcast"));
    rt_presence_join(c);
    struct jw j;
    jw_init(&j, out);
    jw_obj_begin(&j);
    jw_key(&j, "type");
    jw_cstr(&j, "ready");
    jw_key(&j, "user_id");
    jw_cstr(&j, c->user_id);
    jw_key(&j, "role");
    jw_cstr(&j, c->role);
    if (channels) {
        jw_key(&j, "channels");
        jw_arr_begin(&j);
        for (int i = 0; i < n; i++)
            jw_cstr(&j, channels[i]);
        jw_arr_end(&j);
    }
    jw_obj_end(&j);
}

struct rt_msg *rt_msg_new(str_t channel, str_t event, str_t data_json)
{
    struct rt_msg *m = xcalloc(1, sizeof(*m));
    struct buf b = BUF_INIT(BUF_MAX_JSON_RESPONSE);
    struct jw w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_key(&w, "type");
    jw_cstr(&w, "event");
    rt_event_fields(&w, channel, event, data_json);
    jw_obj_end(&w);
    m->refs = 1;
    m->channel = xstrndup(channel.p, channel.len);
    m->channel_len = channel.len;
    m->frame = buf_detach(&b, &m->frame_len);
    return m;
}

struct rt_msg *rt_msg_wrap(str_t channel, str_t frame)
{
    struct rt_msg *m = xcalloc(1, sizeof(*m));
    m->refs = 1;
    m->channel = xstrndup(channel.p, channel.len);
    m->channel_len = channel.len;
    m->frame = xstrndup(frame.p, frame.len);
    m->frame_len = frame.len;
    return m;
}

void rt_msg_unref(struct rt_msg *m)
{
    if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL))
        return;
    free(m->channel);
    free(m->frame);
    free(m);
}

/* ---- hubs ---- */

struct rt_chan {
    struct hnode node;
    h2o_linklist_t subs; /* struct rt_sub.chan_link */
};

struct rt_sub {
    struct rt_chan *chan;
    struct rt_client *client;
    h2o_linklist_t chan_link;
    struct rt_sub *next; /* the client's list */
};

struct rt_hub {
    struct rt_hub *next; /* g_hubs */
    h2o_context_t *ctx;
    h2o_multithread_receiver_t rx;
    struct htab chans;
    h2o_linklist_t clients, flush;
    h2o_timeout_t ping_to, auth_to, close_to;
    h2o_timeout_entry_t ping_tick, flush_tick;
};

struct envelope {
    h2o_multithread_message_t super;
    struct rt_msg *msg;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rt_hub *g_hubs; /* every hub of this process (never freed) */
static _Thread_local struct rt_hub *tls_hub;


static void deliver(struct rt_hub *h, struct rt_msg *m)
{
    struct hnode *n = htab_find(&h->chans, str_make(m->channel, m->channel_len));
    if (!n)
        return;
    struct rt_chan *ch = (struct rt_chan *)n;
    int64_t count = 0;
    for (h2o_linklist_t *l = ch->subs.next; l != &ch->subs; l = l->next) {
        struct rt_sub *s = H2O_STRUCT_FROM_MEMBER(struct rt_sub, chan_link, l);
        s->client->ops->send(s->client, str_make(m->frame, m->frame_len));
        count++;
    }
    rt_stat_add(&rt_stats.delivered, count);
}

static void on_rx(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    struct rt_hub *h = H2O_STRUCT_FROM_MEMBER(struct rt_hub, rx, rx);
    while (!h2o_linklist_is_empty(messages)) {
        struct envelope *e = H2O_STRUCT_FROM_MEMBER(struct envelope, super.link, messages->next);
        h2o_linklist_unlink(&e->super.link);
        deliver(h, e->msg);
        rt_msg_unref(e->msg);
        free(e);
    }
}

void rt_deliver_local(struct rt_msg *m)
{
    pthread_mutex_lock(&g_mu);
    for (struct rt_hub *h = g_hubs; h; h = h->next) {
        struct envelope *e = xcalloc(1, sizeof(*e));
        __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
        e->msg = m;
        h2o_multithread_send_message(&h->rx, &e->super);
    }
    pthread_mutex_unlock(&g_mu);
}

void realtime_publish(const char *channel, const char *event, str_t data_json)
{
    struct rt_msg *m = rt_msg_new(str_c(channel), str_c(event), data_json);
    rt_stat_add(&rt_stats.published, 1);
    rt_deliver_local(m);
    rt_bridge_publish(m);
    rt_msg_unref(m);
}

static void on_flush_tick(h2o_timeout_entry_t *e)
{
    struct rt_hub *h = H2O_STRUCT_FROM_MEMBER(struct rt_hub, flush_tick, e);
    while (!h2o_linklist_is_empty(&h->flush)) {
        struct rt_client *c = H2O_STRUCT_FROM_MEMBER(struct rt_client, flush_link, h->flush.next);
        h2o_linklist_unlink(&c->flush_link);
        c->flush_queued = false;
        c->ops->flush(c); /* may free c */
    }
}

void rt_hub_want_flush(struct rt_client *c)
{
    struct rt_hub *h = c->hub;
    if (c->flush_queued)
        return;
    c->flush_queued = true;
    h2o_linklist_insert(&h->flush, &c->flush_link);
    if (!h2o_timeout_is_linked(&h->flush_tick))
        h2o_timeout_link(h->ctx->loop, &h->ctx->zero_timeout, &h->flush_tick);
}

static void on_ping_tick(h2o_timeout_entry_t *e)
{
    struct rt_hub *h = H2O_STRUCT_FROM_MEMBER(struct rt_hub, ping_tick, e);
    for (h2o_linklist_t *l = h->clients.next; l != &h->clients; l = l->next) {
        struct rt_client *c = H2O_STRUCT_FROM_MEMBER(struct rt_client, link, l);
        c->ops->heartbeat(c); /* queues a ping or marks a dead peer; the flush acts */
    }
    h2o_timeout_link(h->ctx->loop, &h->ping_to, &h->ping_tick);
}

struct rt_hub *rt_hub_get(void)
{
    if (tls_hub)
        return tls_hub;
    h2o_context_t *ctx = http_loop_context();
    if (!ctx)
        BUG("realtime hub off a loop thread");
    struct rt_hub *h = xcalloc(1, sizeof(*h));
    h->ctx = ctx;
    h2o_linklist_init_anchor(&h->clients);
    h2o_linklist_init_anchor(&h->flush);
    h2o_timeout_init(ctx->loop, &h->ping_to, (uint64_t)rt_cfg.ping_ms);
    h2o_timeout_init(ctx->loop, &h->auth_to, (uint64_t)rt_cfg.auth_timeout_ms);
    h2o_timeout_init(ctx->loop, &h->close_to, RT_CLOSE_POLL_MS);
    h->ping_tick.cb = on_ping_tick;
    h->flush_tick.cb = on_flush_tick;
    h2o_timeout_link(ctx->loop, &h->ping_to, &h->ping_tick);
    h2o_multithread_register_receiver(ctx->queue, &h->rx, on_rx);
    pthread_mutex_lock(&g_mu);
    h->next = g_hubs;
    g_hubs = h;
    pthread_mutex_unlock(&g_mu);
    tls_hub = h;
    rt_bridge_start();
    return h;
}

void rt_hub_link_auth_timer(struct rt_hub *h, h2o_timeout_entry_t *e) { h2o_timeout_link(h->ctx->loop, &h->auth_to, e); }
void rt_hub_link_close_timer(struct rt_hub *h, h2o_timeout_entry_t *e) { h2o_timeout_link(h->ctx->loop, &h->close_to, e); }

void rt_hub_add(struct rt_hub *h, struct rt_client *c, const struct rt_client_ops *ops)
{
    memset(c, 0, sizeof(*c));
    c->ops = ops;
    c->hub = h;
    h2o_linklist_insert(&h->clients, &c->link);
    rt_stat_add(ops->transport[0] == 'w' ? &rt_stats.ws : &rt_stats.sse, 1);
}

int rt_subscribe(struct rt_client *c, str_t channel)
{
    struct rt_hub *h = c->hub;
    for (struct rt_sub *s = c->subs; s; s = s->next)
        if (memeq(s->chan->node.key, s->chan->node.klen, channel.p, channel.len))
            return RT_SUB_ALREADY;
    if (c->nsubs >= RT_MAX_SUBS)
        return RT_SUB_EFULL;
    struct rt_chan *ch = (struct rt_chan *)htab_find(&h->chans, channel);
    if (!ch) {
        ch = xcalloc(1, sizeof(*ch));
        ch->node.key = xstrndup(channel.p, channel.len);
        ch->node.klen = channel.len;
        h2o_linklist_init_anchor(&ch->subs);
        htab_insert(&h->chans, &ch->node);
    }
    struct rt_sub *s = xcalloc(1, sizeof(*s));
    s->chan = ch;
    s->client = c;
    h2o_linklist_insert(&ch->subs, &s->chan_link);
    s->next = c->subs;
    c->subs = s;
    c->nsubs++;
    return RT_SUB_OK;
}

static void sub_free(struct rt_hub *h, struct rt_sub *s)
{
    struct rt_chan *ch = s->chan;
    h2o_linklist_unlink(&s->chan_link);
    if (h2o_linklist_is_empty(&ch->subs)) {
        htab_remove(&h->chans, &ch->node);
        free(ch->node.key);
        free(ch);
    }
    free(s);
}

bool rt_unsubscribe(struct rt_client *c, str_t channel)
{
    for (struct rt_sub **p = &c->subs; *p; p = &(*p)->next) {
        struct rt_sub *s = *p;
        if (memeq(s->chan->node.key, s->chan->node.klen, channel.p, channel.len)) {
            *p = s->next;
            c->nsubs--;
            sub_free(c->hub, s);
            return true;
        }
    }
    return false;
}

void rt_hub_remove(struct rt_client *c)
{
    while (c->subs) {
        struct rt_sub *s = c->subs;
        c->subs = s->next;
        sub_free(c->hub, s);
    }
    c->nsubs = 0;
    if (c->flush_queued) {
        h2o_linklist_unlink(&c->flush_link);
        c->flush_queued = false;
    }
    if (h2o_linklist_is_linked(&c->link)) {
        h2o_linklist_unlink(&c->link);
        rt_stat_add(c->ops->transport[0] == 'w' ? &rt_stats.ws : &rt_stats.sse, -1);
    }
    rt_presence_leave(c);
}

/* ---- presence ---- */

struct presence {
    struct hnode node;
    int64_t connections, since_ms;
};
struct remote_instance {
    struct remote_instance *next;
    char id[UUID_STR_LEN + 1];
    int64_t seen_ms;
    struct rt_presence_row *rows;
    size_t n;
};
static struct htab g_presence; /* under g_mu */
static struct remote_instance *g_remote;
#define REMOTE_STALE_MS (3 * RT_PRESENCE_EVERY_MS)

static void presence_event(const char *event, const char *user_id)
{
    struct buf d = BUF_INIT(256);
    struct jw w;
    jw_init(&w, &d);
    jw_obj_begin(&w);
    jw_key(&w, "user_id");
    jw_cstr(&w, user_id);
    jw_obj_end(&w);
    realtime_publish("staff", event, buf_str(&d));
    buf_free(&d);
}

void rt_presence_join(struct rt_client *c)
{
    bool first = false;
    if (c->in_presence || !c->user_id[0])
        return;
    c->in_presence = true;
    str_t k = str_c(c->user_id);
    pthread_mutex_lock(&g_mu);
    struct presence *p = (struct presence *)htab_find(&g_presence, k);
    if (!p) {
        p = xcalloc(1, sizeof(*p));
        p->node.key = xstrndup(k.p, k.len);
        p->node.klen = k.len;
        p->since_ms = time_now_ms();
        htab_insert(&g_presence, &p->node);
        first = true;
    }
    p->connections++;
    pthread_mutex_unlock(&g_mu);
    if (first) {
        presence_event("presence.join", c->user_id);
        rt_bridge_presence_changed();
    }
}

void rt_presence_leave(struct rt_client *c)
{
    bool last = false;
    if (!c->in_presence)
        return;
    c->in_presence = false;
    pthread_mutex_lock(&g_mu);
    struct presence *p = (struct presence *)htab_find(&g_presence, str_c(c->user_id));
    if (p && --p->connections == 0) {
        htab_remove(&g_presence, &p->node);
        free(p->node.key);
        free(p);
        last = true;
    }
    pthread_mutex_unlock(&g_mu);
    if (last) {
        presence_event("presence.leave", c->user_id);
        rt_bridge_presence_changed();
    }
}

static void add_row(struct rt_presence_row **rows, size_t *n, size_t *cap, const char *id, int64_t conns,
                    int64_t since)
{
    for (size_t i = 0; i < *n; i++) /* the same user on several instances: one row */
        if (!strcmp((*rows)[i].user_id, id)) {
            (*rows)[i].connections += conns;
            if (since < (*rows)[i].since_ms)
                (*rows)[i].since_ms = since;
            return;
        }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        struct rt_presence_row *r = xmalloc(*cap * sizeof(*r));
        if (*n)
            memcpy(r, *rows, *n * sizeof(*r));
        free(*rows);
        *rows = r;
    }
    struct rt_presence_row *r = &(*rows)[(*n)++];
    (void)str_copy(r->user_id, id, sizeof(r->user_id));
    r->connections = conns;
    r->since_ms = since;
}

static int cmp_rows(const void *a, const void *b)
{
    const struct rt_presence_row *x = a, *y = b;
    if (x->since_ms != y->since_ms)
        return x->since_ms > y->since_ms ? -1 : 1;
    return strcmp(x->user_id, y->user_id);
}

size_t rt_presence_list(struct rt_presence_row **rows)
{
    size_t n = 0, cap = 0;
    int64_t now = time_now_ms();
    *rows = NULL;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_presence.nb; i++)
        for (struct hnode *hn = g_presence.b[i]; hn; hn = hn->next) {
            struct presence *p = (struct presence *)hn;
            add_row(rows, &n, &cap, hn->key, p->connections, p->since_ms);
        }
    for (struct remote_instance *ri = g_remote; ri; ri = ri->next)
        if (now - ri->seen_ms <= REMOTE_STALE_MS)
            for (size_t i = 0; i < ri->n; i++)
                add_row(rows, &n, &cap, ri->rows[i].user_id, ri->rows[i].connections, ri->rows[i].since_ms);
    pthread_mutex_unlock(&g_mu);
    if (n > 1)
        qsort(*rows, n, sizeof(**rows), cmp_rows);
    return n;
}

void rt_presence_snapshot(struct buf *out)
{
    struct jw w;
    jw_init(&w, out);
    jw_obj_begin(&w);
    jw_key(&w, "users");
    jw_arr_begin(&w);
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_presence.nb; i++)
        for (struct hnode *hn = g_presence.b[i]; hn; hn = hn->next) {
            struct presence *p = (struct presence *)hn;
            jw_arr_begin(&w);
            jw_str(&w, str_make(hn->key, hn->klen));
            jw_int(&w, p->connections);
            jw_int(&w, p->since_ms);
            jw_arr_end(&w);
        }
    pthread_mutex_unlock(&g_mu);
    jw_arr_end(&w);
    jw_obj_end(&w);
}

void rt_presence_remote(str_t instance, str_t snapshot_json, int64_t now_ms)
{
    json_t *doc = NULL, *users;
    struct rt_presence_row *rows = NULL;
    size_t n = 0, cap = 0, i;
    json_t *u;
    if (instance.len == 0 || instance.len > UUID_STR_LEN)
        return;
    if (snapshot_json.len) {
        doc = json_loadb(snapshot_json.p, snapshot_json.len, 0, NULL);
        if (!doc || !json_is_array(users = json_object_get(doc, "users"))) {
            json_decref(doc);
            return;
        }
        json_array_foreach(users, i, u)
        {
            const char *id = json_string_value(json_array_get(u, 0));
            if (id && strlen(id) <= UUID_STR_LEN)
                add_row(&rows, &n, &cap, id, json_integer_value(json_array_get(u, 1)),
                        json_integer_value(json_array_get(u, 2)));
        }
        json_decref(doc);
    }
    pthread_mutex_lock(&g_mu);
    struct remote_instance **p = &g_remote, *ri;
    while ((ri = *p)) { /* forget instances gone silent (stopped or crashed) */
        if (now_ms - ri->seen_ms > REMOTE_STALE_MS && !memeq(ri->id, strlen(ri->id), instance.p, instance.len)) {
            *p = ri->next;
            free(ri->rows);
            free(ri);
        } else {
            p = &ri->next;
        }
    }
    p = &g_remote;
    while ((ri = *p) && !memeq(ri->id, strlen(ri->id), instance.p, instance.len))
        p = &ri->next;
    if (!ri && snapshot_json.len) {
        ri = xcalloc(1, sizeof(*ri));
        memcpy(ri->id, instance.p, instance.len);
        ri->next = g_remote;
        g_remote = ri;
    }
    if (ri && !snapshot_json.len) { /* it left */
        *p = ri->next;
        free(ri->rows);
        free(ri);
    } else if (ri) {
        free(ri->rows);
        ri->rows = rows;
        ri->n = n;
        ri->seen_ms = now_ms;
        rows = NULL;
    }
    pthread_mutex_unlock(&g_mu);
    free(rows);
}
