/*
 * coro.c — see coro.h.
 *
 * Design: the context switch is 10 instructions of x86-64 assembly (save
 * the six callee-saved registers on the old stack, swap stack pointers,
 * restore, ret) — glibc's swapcontext() makes a sigprocmask system call
 * per switch, which costs more than the work between most switches. Other
 * architectures fall back to ucontext. A new stack is laid out so that the
 * first switch "returns" into coro_entry with the ABI's call alignment.
 *
 * Scheduler, per loop thread: a run queue (coroutines woken and not yet
 * resumed) drained from a zero-millisecond h2o timeout, a list of timed
 * waiters checked by a 1 ms timeout linked only while someone waits with a
 * deadline, and an h2o multithread receiver for wakes from other threads.
 * A coroutine is in at most one wait queue (coro_wq) at a time.
 */
#include "core/coro.h"

#define H2O_USE_EPOLL 1
#include <h2o.h>

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "core/timeutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif
#ifdef CORO_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include "core/banned.h"

enum coro_state { CORO_RUNNING, CORO_WAITING, CORO_RUNNABLE, CORO_DONE };

struct coro {
#if defined(__x86_64__)
    void *sp; /* saved stack pointer while switched out */
#else
    ucontext_t uc;
#endif
    void *map;      /* mmap'd region: guard page + stack */
    size_t map_len;
    char *stack_lo; /* usable stack: [stack_lo, stack_lo + stack_len) */
    size_t stack_len;
    coro_fn fn, on_done;
    void *arg, *done_arg;
    enum coro_state state;
    bool woken;      /* the last wait ended by a wake (not the deadline) */
    bool remote_arrived; /* the remote wake's message was delivered (owner thread) */
    bool timed;      /* in the timed-waiter list */
    int64_t deadline_ms;  /* of the current timed wait */
    int64_t work_deadline_ms; /* coro_set_deadline */
    struct coro *run_next;          /* run queue link */
    struct coro *tw_prev, *tw_next; /* timed waiters */
    struct coro_wq *wq;             /* queue this coroutine waits in, or NULL */
    struct coro *wq_prev, *wq_next;
    struct coro *pool_next;         /* free list */
    h2o_multithread_message_t msg;  /* remote wake */
    h2o_multithread_receiver_t *owner_rx;
#ifdef CORO_ASAN
    void *fake_stack;
#endif
};

struct sched {
    h2o_evloop_t *loop;
#if defined(__x86_64__)
    void *main_sp;
#else
    ucontext_t main_uc;
#endif
    struct coro *current;
    struct coro *run_head, *run_tail;
    struct coro *timed_head;
    struct coro *pool;
    h2o_timeout_t zero, one_ms;
    h2o_timeout_entry_t run_entry, timer_entry;
    h2o_multithread_queue_t *mq;
    h2o_multithread_receiver_t rx;
    struct coro_stats stats;
    size_t page;
#ifdef CORO_ASAN
    const void *main_bottom;
    size_t main_size;
    void *main_fake;
#endif
};

static _Thread_local struct sched *tls_sched;

/* ---- the switch ----------------------------------------------------------- */

#if defined(__x86_64__)
void coro__switch(void **save_sp, void *load_sp);
__asm__(".text\n"
        ".globl coro__switch\n"
        ".type coro__switch,@function\n"
        "coro__switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size coro__switch,.-coro__switch\n"
        ".section .note.GNU-stack,\"\",@progbits\n"
        ".text\n");
#endif

static void coro_entry(void);

/* Switch from the loop's stack into c. */
static void switch_in(struct sched *s, struct coro *c)
{
    s->current = c;
    c->state = CORO_RUNNING;
    s->stats.switches++;
#ifdef CORO_ASAN
    __sanitizer_start_switch_fiber(&s->main_fake, c->stack_lo, c->stack_len);
#endif
#if defined(__x86_64__)
    coro__switch(&s->main_sp, c->sp);
#else
    swapcontext(&s->main_uc, &c->uc);
#endif
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(s->main_fake, NULL, NULL);
#endif
    s->current = NULL;
}

/* Switch from the running coroutine back to the loop's stack. */
static void switch_out(struct sched *s, struct coro *c)
{
#ifdef CORO_ASAN
    __sanitizer_start_switch_fiber(c->state == CORO_DONE ? NULL : &c->fake_stack, s->main_bottom, s->main_size);
#endif
#if defined(__x86_64__)
    coro__switch(&c->sp, s->main_sp);
#else
    swapcontext(&c->uc, &s->main_uc);
#endif
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(c->fake_stack, NULL, NULL);
#endif
}

static void coro_entry(void)
{
    struct sched *s = tls_sched;
    struct coro *c = s->current;
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(NULL, &s->main_bottom, &s->main_size);
#endif
    c->fn(c->arg);
    c->state = CORO_DONE;
    switch_out(s, c);
    BUG("a finished coroutine was resumed");
}

/* ---- stacks --------------------------------------------------------------- */

static struct coro *coro_alloc(struct sched *s)
{
    struct coro *c = s->pool;
    if (c) {
        s->pool = c->pool_next;
        s->stats.pooled--;
    } else {
        c = xcalloc(1, sizeof(*c));
        c->map_len = CORO_STACK_SIZE + s->page;
        c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (c->map == MAP_FAILED)
            FATAL("coroutine stack: mmap failed: %s", strerror(errno));
        if (mprotect(c->map, s->page, PROT_NONE) != 0)
            FATAL("coroutine stack: guard page: %s", strerror(errno));
        c->stack_lo = (char *)c->map + s->page;
        c->stack_len = CORO_STACK_SIZE;
        s->stats.stacks_mapped++;
    }
    c->pool_next = NULL;
    c->run_next = c->tw_prev = c->tw_next = c->wq_prev = c->wq_next = NULL;
    c->wq = NULL;
    c->owner_rx = &s->rx;
    c->timed = c->woken = c->remote_arrived = false;
    c->deadline_ms = c->work_deadline_ms = 0;
#ifdef CORO_ASAN
    c->fake_stack = NULL;
#endif
#if defined(__x86_64__)
    {
        /* top: 16-aligned; [top-8] a zero "return address" for coro_entry,
         * [top-16] coro_entry (popped by ret), then six saved registers. */
        uintptr_t top = ((uintptr_t)c->stack_lo + c->stack_len) & ~(uintptr_t)15;
        void **sp = (void **)top;
        *--sp = NULL;
        *--sp = (void *)(uintptr_t)coro_entry;
        for (int i = 0; i < 6; i++)
            *--sp = NULL;
        c->sp = sp;
    }
#else
    if (getcontext(&c->uc) != 0)
        FATAL("getcontext failed");
    c->uc.uc_stack.ss_sp = c->stack_lo;
    c->uc.uc_stack.ss_size = c->stack_len;
    c->uc.uc_link = NULL;
    makecontext(&c->uc, coro_entry, 0);
#endif
    return c;
}

static void coro_free_stack(struct coro *c)
{
    munmap(c->map, c->map_len);
    free(c);
}

static void coro_recycle(struct sched *s, struct coro *c)
{
    if (s->stats.pooled >= CORO_POOL_MAX) {
        coro_free_stack(c);
        return;
    }
    c->pool_next = s->pool;
    s->pool = c;
    s->stats.pooled++;
}

/* ---- scheduling ----------------------------------------------------------- */

static void timed_remove(struct sched *s, struct coro *c)
{
    if (!c->timed)
        return;
    if (c->tw_prev)
        c->tw_prev->tw_next = c->tw_next;
    else
        s->timed_head = c->tw_next;
    if (c->tw_next)
        c->tw_next->tw_prev = c->tw_prev;
    c->tw_prev = c->tw_next = NULL;
    c->timed = false;
}

static void wq_remove(struct coro *c)
{
    struct coro_wq *q = c->wq;
    if (!q)
        return;
    if (c->wq_prev)
        c->wq_prev->wq_next = c->wq_next;
    else
        q->head = c->wq_next;
    if (c->wq_next)
        c->wq_next->wq_prev = c->wq_prev;
    else
        q->tail = c->wq_prev;
    q->n--;
    c->wq = NULL;
    c->wq_prev = c->wq_next = NULL;
}

/* Resume c now, from the loop's stack; finish it if it returns. */
static void resume(struct sched *s, struct coro *c)
{
    switch_in(s, c);
    if (c->state == CORO_DONE) {
        s->stats.live--;
        coro_fn done = c->on_done;
        void *darg = c->done_arg;
        coro_recycle(s, c);
        if (done)
            done(darg);
    }
}

static void on_run(h2o_timeout_entry_t *e)
{
    struct sched *s = H2O_STRUCT_FROM_MEMBER(struct sched, run_entry, e);
    /* Drain what is runnable now; coroutines woken meanwhile go next round
     * of the same loop (the entry is relinked by coro_wake). */
    struct coro *c = s->run_head;
    s->run_head = s->run_tail = NULL;
    while (c) {
        struct coro *next = c->run_next;
        c->run_next = NULL;
        resume(s, c);
        c = next;
    }
}

static void make_runnable(struct sched *s, struct coro *c, bool woken)
{
    if (c->state != CORO_WAITING)
        return;
    timed_remove(s, c);
    wq_remove(c);
    c->woken = woken;
    c->state = CORO_RUNNABLE;
    if (s->run_tail)
        s->run_tail->run_next = c;
    else
        s->run_head = c;
    s->run_tail = c;
    if (!h2o_timeout_is_linked(&s->run_entry))
        h2o_timeout_link(s->loop, &s->zero, &s->run_entry);
}

static void on_timer(h2o_timeout_entry_t *e)
{
    struct sched *s = H2O_STRUCT_FROM_MEMBER(struct sched, timer_entry, e);
    int64_t now = time_mono_ms();
    struct coro *c = s->timed_head;
    while (c) {
        struct coro *next = c->tw_next;
        if (c->deadline_ms <= now)
            make_runnable(s, c, false);
        c = next;
    }
    if (s->timed_head)
        h2o_timeout_link(s->loop, &s->one_ms, &s->timer_entry);
}

static void on_remote(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    struct sched *s = H2O_STRUCT_FROM_MEMBER(struct sched, rx, rx);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        struct coro *c = H2O_STRUCT_FROM_MEMBER(struct coro, msg, m);
        h2o_linklist_unlink(&m->link);
        c->remote_arrived = true;
        make_runnable(s, c, true);
    }
}

void coro_thread_init(struct st_h2o_evloop_t *loop)
{
    struct sched *s = xcalloc(1, sizeof(*s));
    long pg = sysconf(_SC_PAGESIZE);
    s->page = pg > 0 ? (size_t)pg : 4096;
    s->loop = loop;
    h2o_timeout_init(loop, &s->zero, 0);
    h2o_timeout_init(loop, &s->one_ms, 1);
    s->run_entry.cb = on_run;
    s->timer_entry.cb = on_timer;
    s->mq = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(s->mq, &s->rx, on_remote);
    tls_sched = s;
}

void coro_thread_release(void)
{
    struct sched *s = tls_sched;
    if (!s)
        return;
    if (s->stats.live)
        BUG("coroutines still alive at thread release");
    if (h2o_timeout_is_linked(&s->run_entry))
        h2o_timeout_unlink(&s->run_entry);
    if (h2o_timeout_is_linked(&s->timer_entry))
        h2o_timeout_unlink(&s->timer_entry);
    h2o_multithread_unregister_receiver(s->mq, &s->rx);
    h2o_multithread_destroy_queue(s->mq);
    h2o_timeout_dispose(s->loop, &s->zero);
    h2o_timeout_dispose(s->loop, &s->one_ms);
    while (s->pool) {
        struct coro *c = s->pool;
        s->pool = c->pool_next;
        coro_free_stack(c);
    }
    free(s);
    tls_sched = NULL;
}

struct st_h2o_evloop_t *coro_loop(void) { return tls_sched ? tls_sched->loop : NULL; }

struct coro *coro_self(void) { return tls_sched ? tls_sched->current : NULL; }

void coro_set_deadline(int64_t deadline_mono_ms)
{
    struct coro *c = coro_self();
    if (c)
        c->work_deadline_ms = deadline_mono_ms > 0 ? deadline_mono_ms : 0;
}

int64_t coro_get_deadline(void)
{
    struct coro *c = coro_self();
    return c ? c->work_deadline_ms : 0;
}

struct coro_stats coro_thread_stats(void)
{
    struct coro_stats z = {0};
    return tls_sched ? tls_sched->stats : z;
}

void coro_spawn(coro_fn fn, void *arg, coro_fn on_done, void *done_arg)
{
    struct sched *s = tls_sched;
    struct coro *c;
    if (!s)
        BUG("coro_spawn on a thread without a scheduler");
    if (s->current)
        BUG("coro_spawn from inside a coroutine");
    c = coro_alloc(s);
    c->fn = fn;
    c->arg = arg;
    c->on_done = on_done;
    c->done_arg = done_arg;
    s->stats.spawned++;
    s->stats.live++;
    resume(s, c);
}

static bool wait_common(struct sched *s, struct coro *c, int64_t deadline_ms)
{
    c->state = CORO_WAITING;
    c->woken = false;
    if (deadline_ms > 0) {
        c->deadline_ms = deadline_ms;
        c->timed = true;
        c->tw_prev = NULL;
        c->tw_next = s->timed_head;
        if (s->timed_head)
            s->timed_head->tw_prev = c;
        s->timed_head = c;
        if (!h2o_timeout_is_linked(&s->timer_entry))
            h2o_timeout_link(s->loop, &s->one_ms, &s->timer_entry);
    }
    switch_out(s, c);
    /* resumed by make_runnable → on_run → resume */
    return c->woken;
}

static struct coro *current_or_bug(struct sched **sp)
{
    struct sched *s = tls_sched;
    if (!s || !s->current)
        BUG("waiting outside a coroutine");
    *sp = s;
    return s->current;
}

void coro_wait(void)
{
    struct sched *s;
    struct coro *c = current_or_bug(&s);
    (void)wait_common(s, c, 0);
}

bool coro_wait_until(int64_t deadline_mono_ms)
{
    struct sched *s;
    struct coro *c = current_or_bug(&s);
    if (deadline_mono_ms > 0 && deadline_mono_ms <= time_mono_ms())
        return false;
    return wait_common(s, c, deadline_mono_ms);
}

void coro_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    if (!coro_self()) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        return;
    }
    int64_t until = time_mono_ms() + ms;
    while (coro_wait_until(until)) {
        /* a stray wake: keep sleeping */
    }
}

void coro_wake(struct coro *c)
{
    struct sched *s = tls_sched;
    if (!s)
        BUG("coro_wake on a thread without a scheduler");
    make_runnable(s, c, true);
}

/* The message goes to the receiver of the thread that owns c. */
void coro_wake_remote(struct coro *c)
{
    struct sched *s = tls_sched;
    if (s && c->owner_rx == &s->rx) { /* the owner itself: no message needed */
        c->remote_arrived = true;
        make_runnable(s, c, true);
        return;
    }
    c->msg.link.next = c->msg.link.prev = NULL;
    h2o_multithread_send_message(c->owner_rx, &c->msg);
}

void coro_wait_remote(void)
{
    struct sched *s;
    struct coro *c = current_or_bug(&s);
    while (!c->remote_arrived)
        (void)wait_common(s, c, 0);
    c->remote_arrived = false;
}

/* ---- wait queues ------------------------------------------------------------ */

bool coro_wq_wait(struct coro_wq *q, int64_t deadline_mono_ms)
{
    struct sched *s;
    struct coro *c = current_or_bug(&s);
    c->wq = q;
    c->wq_next = NULL;
    c->wq_prev = q->tail;
    if (q->tail)
        q->tail->wq_next = c;
    else
        q->head = c;
    q->tail = c;
    q->n++;
    if (deadline_mono_ms > 0 && deadline_mono_ms <= time_mono_ms()) {
        wq_remove(c);
        return false;
    }
    bool woken = wait_common(s, c, deadline_mono_ms);
    wq_remove(c); /* no-op when woken (make_runnable removed it) */
    return woken;
}

bool coro_wq_wake_one(struct coro_wq *q)
{
    struct coro *c = q->head;
    if (!c)
        return false;
    coro_wake(c); /* removes it from q */
    return true;
}

void coro_wq_wake_all(struct coro_wq *q)
{
    while (coro_wq_wake_one(q)) {
    }
}
