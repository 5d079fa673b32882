/*
 * sqlite_gate.c — see sqlite_gate.h.
 *
 * State of a gate (under its mutex): the holder (a coroutine, or a plain
 * thread's marker) with its recursion depth, and a FIFO of waiters. Each
 * waiter is a node on the waiting caller's own stack. Leaving with waiters
 * queued makes the head the holder before it runs (direct hand-off: no one
 * can overtake it), then wakes it — a coroutine through coro_wake_remote,
 * which it waits for in coro_wait_remote whatever thread the leaver is on;
 * a thread by signalling its condition variable under the mutex (its node
 * must not be touched after the mutex is released, the waiter may be gone).
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/coro.h"
#include "db/sqlite_gate.h"

#include "core/banned.h"

struct waiter {
    struct waiter *next;
    const void *who;
    struct coro *co;    /* a coroutine waits for its remote wake ... */
    pthread_cond_t cv;  /* ... a thread on this */
    bool granted;
};

struct sq_gate {
    struct sq_gate *next; /* registry */
    char *path;           /* NULL: private (in-memory database) */
    int refs;
    pthread_mutex_t mu;
    const void *holder;
    int depth;
    struct waiter *head, *tail;
    struct sq_gate_stats stats;
    /* checkpointer */
    pthread_t ckpt;
    bool ckpt_started, ckpt_pending, ckpt_stop;
    pthread_cond_t ckpt_cv;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sq_gate *registry;
static _Thread_local char thread_marker;

static const void *me(void)
{
    struct coro *c = coro_self();
    return c ? (const void *)c : (const void *)&thread_marker;
}

static bool is_memory(const char *path)
{
    return !*path || !strcmp(path, ":memory:") || !strncmp(path, "file::memory:", 13) || strstr(path, "mode=memory");
}

struct sq_gate *sq_gate_get(const char *path)
{
    char *key = NULL;
    struct sq_gate *g;
    if (!is_memory(path)) {
        key = realpath(path, NULL); /* the file exists once sqlite3_open_v2 created it */
        if (!key)
            key = xstrdup(path);
    }
    pthread_mutex_lock(&registry_mu);
    for (g = registry; key && g; g = g->next)
        if (!strcmp(g->path, key)) {
            g->refs++;
            pthread_mutex_unlock(&registry_mu);
            free(key);
            return g;
        }
    g = xcalloc(1, sizeof(*g));
    g->path = key;
    g->refs = 1;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->ckpt_cv, NULL);
    if (key) {
        g->next = registry;
        registry = g;
    }
    pthread_mutex_unlock(&registry_mu);
    return g;
}

void sq_gate_put(struct sq_gate *g)
{
    bool last;
    pthread_mutex_lock(&registry_mu);
    last = --g->refs == 0;
    if (last && g->path)
        for (struct sq_gate **pp = &registry; *pp; pp = &(*pp)->next)
            if (*pp == g) {
                *pp = g->next;
                break;
            }
    pthread_mutex_unlock(&registry_mu);
    if (!last)
        return;
    pthread_mutex_lock(&g->mu);
    g->ckpt_stop = true;
    pthread_cond_signal(&g->ckpt_cv);
    pthread_mutex_unlock(&g->mu);
    if (g->ckpt_started)
        pthread_join(g->ckpt, NULL);
    if (g->head || g->holder)
        BUG("sqlite gate released while in use");
    pthread_cond_destroy(&g->ckpt_cv);
    pthread_mutex_destroy(&g->mu);
    free(g->path);
    free(g);
}

bool sq_gate_enter(struct sq_gate *g)
{
    const void *who = me();
    struct waiter w;
    if (!coro_self() && coro_loop())
        return false;
    pthread_mutex_lock(&g->mu);
    g->stats.entered++;
    if (!g->holder || g->holder == who) {
        g->holder = who;
        g->depth++;
        pthread_mutex_unlock(&g->mu);
        return true;
    }
    memset(&w, 0, sizeof(w));
    w.who = who;
    w.co = coro_self();
    if (g->tail)
        g->tail->next = &w;
    else
        g->head = &w;
    g->tail = &w;
    g->stats.waited++;
    if (w.co) {
        pthread_mutex_unlock(&g->mu);
        coro_wait_remote(); /* the leaver made us the holder before waking us */
        return true;
    }
    pthread_cond_init(&w.cv, NULL);
    while (!w.granted)
        pthread_cond_wait(&w.cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    pthread_cond_destroy(&w.cv);
    return true;
}

void sq_gate_leave(struct sq_gate *g)
{
    struct waiter *w;
    struct coro *co = NULL;
    pthread_mutex_lock(&g->mu);
    if (g->holder != me() || g->depth <= 0)
        BUG("sqlite gate left by a caller that does not hold it");
    if (--g->depth > 0) {
        pthread_mutex_unlock(&g->mu);
        return;
    }
    w = g->head;
    if (!w) {
        g->holder = NULL;
        pthread_mutex_unlock(&g->mu);
        return;
    }
    g->head = w->next;
    if (!g->head)
        g->tail = NULL;
    g->holder = w->who;
    g->depth = 1;
    if (w->co) {
        co = w->co; /* w stays valid: its coroutine waits for this wake */
    } else {
        w->granted = true;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&g->mu);
    if (co)
        coro_wake_remote(co);
}

/* ---- checkpointer ---------------------------------------------------------------- */

static void *ckpt_main(void *arg)
{
    struct sq_gate *g = arg;
    sqlite3 *h = NULL;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (!g->ckpt_pending && !g->ckpt_stop)
            pthread_cond_wait(&g->ckpt_cv, &g->mu);
        if (g->ckpt_stop)
            break;
        g->ckpt_pending = false;
        pthread_mutex_unlock(&g->mu);
        if (!h && sqlite3_open_v2(g->path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
            sqlite3_close_v2(h);
            h = NULL;
        }
        if (h) {
            sqlite3_busy_timeout(h, 1000);
            /* PASSIVE: copies what no reader still needs; never takes the write lock */
            (void)sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        }
        pthread_mutex_lock(&g->mu);
        g->stats.checkpoints++;
    }
    pthread_mutex_unlock(&g->mu);
    sqlite3_close_v2(h);
    return NULL;
}

bool sq_gate_wal(struct sq_gate *g, int pages)
{
    bool ok;
    if (pages < SQ_CHECKPOINT_PAGES)
        return true;
    if (!g->path)
        return false;
    pthread_mutex_lock(&g->mu);
    if (!g->ckpt_started && !g->ckpt_stop)
        g->ckpt_started = pthread_create(&g->ckpt, NULL, ckpt_main, g) == 0;
    ok = g->ckpt_started;
    g->ckpt_pending = true;
    pthread_cond_signal(&g->ckpt_cv);
    pthread_mutex_unlock(&g->mu);
    return ok;
}

struct sq_gate_stats sq_gate_stats(struct sq_gate *g)
{
    struct sq_gate_stats s;
    pthread_mutex_lock(&g->mu);
    s = g->stats;
    pthread_mutex_unlock(&g->mu);
    return s;
}
