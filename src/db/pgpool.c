/*
 * pgpool.c — the PostgreSQL pool of a loop thread (db.h db_pool_*).
 *
 * Design (ARCHITECTURE §1, STYLE §11-12):
 *   - A pool owns `size` libpq connections, each non-blocking and in
 *     pipeline mode, its socket watched by the thread's h2o loop (an evloop
 *     socket on a dup() of PQsocket with H2O_SOCKET_FLAG_DONT_READ: h2o only
 *     reports readiness, libpq reads; h2o closes the dup it owns). Read
 *     readiness: PQconsumeInput, then every complete result is handed over.
 *     Write readiness is asked for only while PQflush returns 1.
 *   - A request takes a handle (a struct db from a free list). Outside a
 *     transaction a statement goes to the least-loaded connection that is up
 *     and not pinned, as one pipeline segment: [Parse if this connection has
 *     not prepared that SQL yet] Bind/Execute Sync. One Sync per statement,
 *     so a failing statement aborts nothing of another request's. The
 *     statement's slot joins the connection's FIFO and the coroutine waits;
 *     results arrive in FIFO order and the fully materialised PGresult goes
 *     to the waiter at its Sync, then through the same accessors as
 *     postgres.c.
 *   - db_tx: begin pins a connection to the handle (no other request's
 *     statement goes there) until COMMIT/ROLLBACK. BEGIN travels in the same
 *     segment as the transaction's first statement (no extra round trip; if
 *     BEGIN fails that statement is aborted with it). COMMIT is awaited;
 *     ROLLBACK is sent and not awaited, and the pin is released at once
 *     (later statements on that connection queue behind the ROLLBACK).
 *   - Waiting for a connection (all pinned, all at PGP_DEPTH_MAX in flight,
 *     or coming back from a reconnect) is a bounded FIFO (PGP_WAIT_PER_CONN
 *     per connection): full → DB_EUNAVAIL at once (→ 503). No connection up
 *     or connecting → DB_EUNAVAIL at once.
 *   - Deadline: the handle's (the coroutine's) deadline bounds every wait;
 *     past it the call returns DB_ETIMEOUT and its slot is abandoned: the
 *     result is discarded when it arrives. The server keeps running the
 *     statement until it ends or statement_timeout (set at connect to the
 *     request timeout) stops it. A statement pipelined behind a slow one on
 *     the same connection waits for it (the server runs a connection's
 *     statements in order): it gets its own result if the slow one ends
 *     before its deadline, DB_ETIMEOUT otherwise — never longer than
 *     statement_timeout. New statements avoid such a connection: one whose
 *     oldest statement was abandoned or has been running PGP_STALL_MS
 *     counts as full (unless every connection is in that state).
 *   - Lost connection (read/flush error, EOF, protocol out of step): every
 *     slot on it fails with DB_EUNAVAIL, a transaction pinned to it is lost
 *     (its next statement and COMMIT fail with DB_EUNAVAIL; db_tx rolls
 *     back), the prepared names are forgotten and a reconnect starts at once
 *     with PQconnectStartParams/PQconnectPoll driven by socket events; a
 *     failed attempt retries after 50 ms doubling to 2 s (a 50 ms tick).
 *     Meanwhile statements go to the other connections. Note: libpq resolves
 *     a host name inside PQconnectStart (getaddrinfo blocks); use an address.
 *   - Outside a coroutine on the loop thread (start-up code) a handle still
 *     works: the wait polls the connection's socket, blocking the loop.
 *   - Statistics: db.c counts per handle; a handle's counters are folded
 *     into the pool's when it is returned (db_pool_stats: those totals).
 */
#define H2O_USE_EPOLL 1
#include <h2o.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "db/pg_internal.h"

#include "core/banned.h"

#define PGP_DEPTH_MAX 32     /* statements in flight per connection */
#define PGP_WAIT_PER_CONN 64 /* waiters in the pool's FIFO, per connection */
#define PGP_STALL_MS 20      /* a connection whose oldest statement is older is busy with it */
#define PGP_TICK_MS 50
#define PGP_BACKOFF_MIN_MS 50
#define PGP_BACKOFF_MAX_MS 2000
#define PGP_CONNECT_TIMEOUT_MS 10000
#define PGP_MAX_PARAMS 65535

enum pgc_state { PGC_DOWN, PGC_CONNECTING, PGC_UP };

struct pgpool;
struct pgh;

/* One statement segment in flight on a connection. */
struct slot {
    struct slot *next;
    struct coro *waiter;       /* coroutine to wake at completion (NULL outside one) */
    struct db_cache_ent *prep; /* the name prepared in this segment, stale if that fails */
    PGresult *res, *err;       /* the statement's result; the segment's first error */
    uint64_t sent_ms;          /* h2o_now() when queued */
    int nres, nexpect, prep_at;
    bool wanted; /* false: nobody will read it (abandoned, or a ROLLBACK); freed at completion */
    bool done;
    bool lost; /* the connection died before its Sync */
};

struct pgc {
    struct pgpool *pool;
    PGconn *c;
    h2o_socket_t *sock;
    enum pgc_state state;
    PostgresPollingStatusType poll; /* while connecting */
    bool want_write;
    struct slot *head, *tail;
    int inflight;
    struct pgh *pinned;
    struct db_cache stmts; /* SQL -> prepared name on this session */
    unsigned next_stmt;
    int64_t retry_at_ms, connect_started_ms;
    int backoff_ms;
};

struct pgh {
    struct db base;
    struct pgpool *pool;
    struct pgc *pin;
    bool begin_pending, serializable, tx_lost;
    struct pgh *next_free, *next_all;
};

struct pgpool {
    struct db_pool base;
    h2o_evloop_t *loop;
    struct pgc *conns;
    int n;
    unsigned rr;
    char *url;
    struct pg_conninfo ci;
    struct db_options opt;
    struct coro_wq wq;
    size_t wait_max;
    struct pgh *free_h, *all_h;
    struct slot *free_slots;
    struct pg_params params;
    struct buf sqlbuf;
    struct db_stats folded; /* counters of the handles returned so far */
    int64_t logged_ms;      /* last "reconnect failed" line */
    h2o_timeout_t tick;
    h2o_timeout_entry_t tick_entry;
};

static void conn_lost(struct pgc *c, const char *why);
static void conn_start(struct pgc *c);
static void on_read(h2o_socket_t *sock, const char *err);
static void on_write(h2o_socket_t *sock, const char *err);
static void on_connect_io(h2o_socket_t *sock, const char *err);

/* ---- slots ------------------------------------------------------------------ */

static struct slot *slot_new(struct pgpool *p)
{
    struct slot *s = p->free_slots;
    if (s)
        p->free_slots = s->next;
    else
        s = xmalloc(sizeof(*s));
    memset(s, 0, sizeof(*s));
    s->wanted = true;
    return s;
}

static void slot_free(struct pgpool *p, struct slot *s)
{
    PQclear(s->res);
    PQclear(s->err);
    s->res = s->err = NULL;
    s->next = p->free_slots;
    p->free_slots = s;
}

/* Nobody will read s: free it now if complete, else at completion. */
static void slot_release(struct pgpool *p, struct slot *s)
{
    if (s->done) {
        slot_free(p, s);
        return;
    }
    s->wanted = false;
    s->waiter = NULL;
}

/* Pop the head of c's FIFO and hand it over. */
static void slot_complete(struct pgc *c, bool lost)
{
    struct pgpool *p = c->pool;
    struct slot *s = c->head;
    bool was_full = c->inflight >= PGP_DEPTH_MAX;
    c->head = s->next;
    if (!c->head)
        c->tail = NULL;
    c->inflight--;
    s->next = NULL;
    s->lost = lost;
    if (!s->wanted) {
        slot_free(p, s);
    } else {
        s->done = true;
        if (s->waiter)
            coro_wake(s->waiter);
    }
    if (was_full && p->wq.n)
        coro_wq_wake_all(&p->wq);
}

/* ---- the connection's socket ----------------------------------------------------- */

static void unwatch(struct pgc *c)
{
    if (c->sock) {
        c->sock->data = NULL;
        h2o_socket_close(c->sock);
        c->sock = NULL;
    }
    c->want_write = false;
}

/* Watch a dup of the connection's socket (h2o closes the fd it owns). */
static bool watch(struct pgc *c)
{
    int fd = PQsocket(c->c);
    unwatch(c);
    if (fd < 0 || (fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return false;
    c->sock = h2o_evloop_socket_create(c->pool->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    c->sock->data = c;
    return true;
}

static void want_write(struct pgc *c, h2o_socket_cb cb)
{
    if (c->want_write)
        return;
    c->want_write = true;
    h2o_socket_notify_write(c->sock, cb);
}

static bool any_coming(struct pgpool *p)
{
    for (int i = 0; i < p->n; i++)
        if (p->conns[i].state != PGC_DOWN)
            return true;
    return false;
}

static void tick_link(struct pgpool *p)
{
    if (!h2o_timeout_is_linked(&p->tick_entry))
        h2o_timeout_link(p->loop, &p->tick, &p->tick_entry);
}

/* Hand every complete result to its slot. */
static void conn_drain(struct pgc *c)
{
    int nulls = 0;
    while (c->state == PGC_UP && c->head && !PQisBusy(c->c)) {
        struct slot *s = c->head;
        PGresult *r = PQgetResult(c->c);
        if (!r) {
            /* one NULL ends each statement's results; two in a row while a
             * Sync is due means libpq and the FIFO disagree */
            if (++nulls > 1) {
                conn_lost(c, "pipeline out of step");
                return;
            }
            continue;
        }
        nulls = 0;
        switch (PQresultStatus(r)) {
        case PGRES_PIPELINE_SYNC:
            PQclear(r);
            slot_complete(c, false);
            break;
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
        case PGRES_EMPTY_QUERY:
            if (s->nres == s->nexpect - 1 && !s->res)
                s->res = r;
            else
                PQclear(r);
            s->nres++;
            break;
        case PGRES_PIPELINE_ABORTED:
            PQclear(r);
            s->nres++;
            break;
        default: /* FATAL_ERROR, BAD_RESPONSE, COPY_*: the segment failed */
            if (s->prep && s->nres == s->prep_at)
                s->prep->stale = true;
            if (!s->err)
                s->err = r;
            else
                PQclear(r);
            s->nres++;
            break;
        }
    }
    if (c->state == PGC_UP && PQstatus(c->c) == CONNECTION_BAD)
        conn_lost(c, "connection closed");
}

static void conn_flush(struct pgc *c)
{
    int r = PQflush(c->c);
    if (r < 0) {
        conn_lost(c, "write failed");
        return;
    }
    if (r > 0) {
        want_write(c, on_write);
        conn_drain(c); /* a blocked libpq write reads what the server sent meanwhile */
    }
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    struct pgc *c = sock->data;
    if (!c || c->state != PGC_UP)
        return;
    if (err || !PQconsumeInput(c->c)) {
        conn_drain(c);
        conn_lost(c, "read failed");
        return;
    }
    conn_drain(c);
}

static void on_write(h2o_socket_t *sock, const char *err)
{
    struct pgc *c = sock->data;
    if (!c || c->state != PGC_UP)
        return;
    c->want_write = false;
    if (err) {
        conn_lost(c, "write failed");
        return;
    }
    conn_flush(c);
    if (c->state == PGC_UP)
        conn_drain(c);
}

/* ---- connection life -------------------------------------------------------------- */

static void log_conn(struct pgc *c, enum log_level lvl, const char *what, const char *why)
{
    struct log_line l;
    if (!log_begin(&l, lvl, what))
        return;
    log_int(&l, "conn", c - c->pool->conns);
    if (why) { /* the first line of libpq's message */
        const char *nl = strchr(why, '\n');
        log_str(&l, "error", str_make(why, nl ? (size_t)(nl - why) : strlen(why)));
    }
    log_end(&l);
}

static bool conn_setup(struct pgc *c)
{
    PQsetNoticeProcessor(c->c, pg__on_notice, NULL);
    return PQsetnonblocking(c->c, 1) == 0 && PQenterPipelineMode(c->c) == 1 && watch(c);
}

static void conn_up(struct pgc *c)
{
    struct pgpool *p = c->pool;
    if (!conn_setup(c)) {
        unwatch(c);
        PQfinish(c->c);
        c->c = NULL;
        c->state = PGC_DOWN;
        c->retry_at_ms = time_mono_ms() + PGP_BACKOFF_MIN_MS;
        tick_link(p);
        return;
    }
    c->state = PGC_UP;
    c->backoff_ms = 0;
    h2o_socket_read_start(c->sock, on_read);
    if (p->wq.n)
        coro_wq_wake_all(&p->wq);
}

static void connect_failed(struct pgc *c)
{
    struct pgpool *p = c->pool;
    int64_t now = time_mono_ms();
    if (now - p->logged_ms >= 1000) { /* an outage is one line a second, not one per attempt */
        p->logged_ms = now;
        log_conn(c, LOG_WARN, "postgres pool: reconnect failed", c->c ? PQerrorMessage(c->c) : "out of sockets");
    }
    unwatch(c);
    PQfinish(c->c);
    c->c = NULL;
    c->state = PGC_DOWN;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : PGP_BACKOFF_MIN_MS;
    if (c->backoff_ms > PGP_BACKOFF_MAX_MS)
        c->backoff_ms = PGP_BACKOFF_MAX_MS;
    c->retry_at_ms = now + c->backoff_ms;
    tick_link(p);
    /* waiters for a connection that is not coming fail now */
    if (p->wq.n && !any_coming(p))
        coro_wq_wake_all(&p->wq);
}

/* Arm the socket for what PQconnectPoll asked. */
static void connect_watch(struct pgc *c)
{
    if (!watch(c)) {
        connect_failed(c);
        return;
    }
    if (c->poll == PGRES_POLLING_READING)
        h2o_socket_read_start(c->sock, on_connect_io);
    else
        want_write(c, on_connect_io);
}

static void conn_start(struct pgc *c)
{
    c->c = PQconnectStartParams(c->pool->ci.kw, c->pool->ci.val, 1);
    if (!c->c)
        FATAL("out of memory");
    c->state = PGC_CONNECTING;
    c->connect_started_ms = time_mono_ms();
    tick_link(c->pool); /* the connect timeout */
    if (PQstatus(c->c) == CONNECTION_BAD) {
        connect_failed(c);
        return;
    }
    c->poll = PGRES_POLLING_WRITING; /* as the libpq manual says to start */
    connect_watch(c);
}

static void on_connect_io(h2o_socket_t *sock, const char *err)
{
    struct pgc *c = sock->data;
    UNUSED(err); /* PQconnectPoll finds out */
    if (!c || c->state != PGC_CONNECTING)
        return;
    c->want_write = false;
    c->poll = PQconnectPoll(c->c);
    switch (c->poll) {
    case PGRES_POLLING_OK:
        unwatch(c);
        log_conn(c, LOG_INFO, "postgres pool: reconnected", NULL);
        conn_up(c);
        break;
    case PGRES_POLLING_FAILED: connect_failed(c); break;
    default:
        /* libpq may have switched sockets (another address): watch afresh */
        connect_watch(c);
        break;
    }
}

static void conn_lost(struct pgc *c, const char *why)
{
    if (c->state != PGC_UP)
        return;
    log_conn(c, LOG_WARN, "postgres pool: connection lost", PQerrorMessage(c->c)[0] ? PQerrorMessage(c->c) : why);
    c->state = PGC_DOWN;
    unwatch(c);
    PQfinish(c->c);
    c->c = NULL;
    db__cache_clear(&c->stmts, free);
    if (c->pinned) {
        c->pinned->pin = NULL;
        c->pinned->tx_lost = true;
        c->pinned = NULL;
    }
    while (c->head)
        slot_complete(c, true);
    conn_start(c);
}

static void on_tick(h2o_timeout_entry_t *e)
{
    struct pgpool *p = H2O_STRUCT_FROM_MEMBER(struct pgpool, tick_entry, e);
    int64_t now = time_mono_ms();
    bool again = false;
    for (int i = 0; i < p->n; i++) {
        struct pgc *c = &p->conns[i];
        if (c->state == PGC_DOWN && c->retry_at_ms <= now)
            conn_start(c);
        else if (c->state == PGC_CONNECTING && now - c->connect_started_ms >= PGP_CONNECT_TIMEOUT_MS)
            connect_failed(c);
        if (c->state != PGC_UP)
            again = true;
    }
    if (again)
        tick_link(p);
}

/* ---- choosing a connection -------------------------------------------------------- */

/* 0 with *out; 1 = wait for one; DB_EUNAVAIL = none up or coming. */
static int pick(struct pgpool *p, bool for_tx, struct pgc **out)
{
    struct pgc *best = NULL;
    int best_load = INT_MAX;
    bool coming = false;
    uint64_t now = h2o_now(p->loop);
    for (int k = 0; k < p->n; k++) {
        struct pgc *c = &p->conns[(p->rr + (unsigned)k) % (unsigned)p->n];
        int load;
        if (c->state == PGC_CONNECTING)
            coming = true;
        if (c->state != PGC_UP)
            continue;
        coming = true;
        if (c->pinned || (!for_tx && c->inflight >= PGP_DEPTH_MAX))
            continue;
        /* a connection still busy with its oldest statement (running long,
         * or abandoned by its request) would make a new one wait behind it */
        load = c->inflight;
        if (c->head && (!c->head->wanted || now - c->head->sent_ms > PGP_STALL_MS))
            load += PGP_DEPTH_MAX;
        if (load < best_load) {
            best = c;
            best_load = load;
        }
    }
    p->rr++;
    if (best) {
        *out = best;
        return 0;
    }
    return coming ? 1 : DB_EUNAVAIL;
}

/* Every connection is down, waiting out its backoff: a statement starts a
 * reconnect at once (at most one attempt per connection per
 * PGP_BACKOFF_MIN_MS), so the pool is back as soon as the server is. */
static bool reconnect_now(struct pgpool *p)
{
    int64_t now = time_mono_ms();
    for (int i = 0; i < p->n; i++) {
        struct pgc *c = &p->conns[i];
        if (c->state == PGC_DOWN && now - c->connect_started_ms >= PGP_BACKOFF_MIN_MS) {
            conn_start(c);
            return c->state != PGC_DOWN;
        }
    }
    return false;
}

static int get_conn(struct pgh *h, bool for_tx, struct pgc **out)
{
    struct pgpool *p = h->pool;
    bool kicked = false; /* one reconnect attempt per call: then give up */
    for (;;) {
        int rc = pick(p, for_tx, out);
        if (rc == 0)
            return DB_OK;
        if (rc < 0 && (kicked || !coro_self() || !(kicked = reconnect_now(p))))
            return db__fail(&h->base, DB_EUNAVAIL, "postgres: no connection (all down, reconnecting)");
        if (!coro_self())
            return db__fail(&h->base, DB_EUNAVAIL, "postgres: pool busy (outside a coroutine)");
        if (p->wq.n >= p->wait_max)
            return db__fail(&h->base, DB_EUNAVAIL, "postgres: pool queue full");
        if (!coro_wq_wait(&p->wq, h->base.deadline_ms))
            return db__fail(&h->base, DB_ETIMEOUT, "postgres: deadline passed waiting for a connection");
    }
}

/* ---- one statement ------------------------------------------------------------------ */

/* Queue one segment on c: [BEGIN] [Parse] Bind/Execute Sync. prepared:
 * a parameterised statement under its cached name; else sql goes as it is
 * (one statement, no parameters: COMMIT, ROLLBACK, db_exec_script). */
static int conn_send(struct pgh *h, struct pgc *c, const char *sql, const db_arg *args, size_t nargs, bool prepared,
                     struct slot **out)
{
    struct pgpool *p = h->pool;
    struct pg_stmt st = {0};
    struct slot *s;
    bool begin = h->begin_pending && h->pin == c;
    int rc;

    *out = NULL;
    if (prepared) {
        if ((rc = pg__stmt(&h->base, &c->stmts, &c->next_stmt, &p->sqlbuf, sql, &st)) != DB_OK)
            return rc;
        if ((size_t)st.nparams != nargs)
            rc = db__fail(&h->base, DB_ERR, "postgres: statement wants %d parameters, got %zu: %.200s", st.nparams,
                          nargs, sql);
        else
            rc = pg__bind(&h->base, &p->params, args, nargs, sql);
        if (rc) {
            if (st.ent && st.text) /* named but never prepared */
                st.ent->stale = true;
            return rc;
        }
    }
    s = slot_new(p);
    s->waiter = coro_self();
    s->sent_ms = h2o_now(p->loop);
    if (begin) {
        if (!PQsendQueryParams(c->c, h->serializable ? "BEGIN ISOLATION LEVEL SERIALIZABLE" : "BEGIN", 0, NULL, NULL,
                               NULL, NULL, 0))
            goto lost;
        s->nexpect++;
    }
    if (prepared) {
        if (st.text) {
            if (!PQsendPrepare(c->c, st.name, st.text, st.nparams, NULL))
                goto lost;
            s->prep = st.ent;
            s->prep_at = s->nexpect++;
        }
        if (!PQsendQueryPrepared(c->c, st.name, st.nparams, p->params.values, p->params.lengths, p->params.formats, 0))
            goto lost;
    } else if (!PQsendQueryParams(c->c, sql, 0, NULL, NULL, NULL, NULL, 0)) {
        goto lost;
    }
    s->nexpect++;
    if (!PQpipelineSync(c->c))
        goto lost;
    if (begin)
        h->begin_pending = false;
    if (c->tail)
        c->tail->next = s;
    else
        c->head = s;
    c->tail = s;
    c->inflight++;
    *out = s;
    conn_flush(c); /* may find the connection dead: then s is already failed */
    return DB_OK;
lost:
    /* libpq refused part of a segment: its pipeline state is unknown */
    rc = db__fail(&h->base, DB_EUNAVAIL, "postgres: connection lost: %.*s: %.200s",
                  pg__trimmed_len(PQerrorMessage(c->c)), PQerrorMessage(c->c), sql);
    slot_free(p, s);
    conn_lost(c, "send failed");
    return rc;
}

/* Outside a coroutine: poll the socket until s completes (blocks the loop). */
static bool wait_blocking(struct pgc *c, struct slot *s, int64_t deadline_ms)
{
    while (!s->done) {
        int64_t left = deadline_ms ? deadline_ms - time_mono_ms() : 1000;
        struct pollfd pfd;
        if (left <= 0)
            return false;
        pfd.fd = PQsocket(c->c);
        pfd.events = (short)(POLLIN | (c->want_write ? POLLOUT : 0));
        pfd.revents = 0;
        if (poll(&pfd, 1, (int)(left < 1000 ? left : 1000)) < 0 && errno != EINTR) {
            conn_lost(c, "poll failed");
            continue;
        }
        if (pfd.revents & POLLOUT) {
            conn_flush(c);
            if (c->state != PGC_UP)
                continue;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (!PQconsumeInput(c->c)) {
                conn_drain(c);
                conn_lost(c, "read failed");
                continue;
            }
            conn_drain(c);
        }
    }
    return true;
}

/* Run one statement (retrying once on a stale prepared statement outside
 * a transaction); *out gets the result. */
static int h_run(struct pgh *h, const char *sql, const db_arg *args, size_t nargs, bool prepared, PGresult **out)
{
    struct pgpool *p = h->pool;
    *out = NULL;
    if (nargs > PGP_MAX_PARAMS)
        return db__fail(&h->base, DB_ERR, "postgres: too many parameters: %.200s", sql);
    for (int attempt = 0;; attempt++) {
        struct pgc *c;
        struct slot *s;
        int rc;
        bool ok;
        if (h->tx_lost)
            return db__fail(&h->base, DB_EUNAVAIL, "postgres: connection lost inside a transaction");
        if (db__deadline_passed(&h->base))
            return db__fail(&h->base, DB_ETIMEOUT, "postgres: deadline passed: %.200s", sql);
        if (h->pin)
            c = h->pin;
        else if ((rc = get_conn(h, false, &c)) != DB_OK)
            return rc;
        if ((rc = conn_send(h, c, sql, args, nargs, prepared, &s)) != DB_OK)
            return rc;
        if (s->waiter) {
            ok = true;
            while (!s->done && (ok = coro_wait_until(h->base.deadline_ms))) {
            }
            ok = s->done;
        } else {
            ok = wait_blocking(c, s, h->base.deadline_ms);
        }
        if (!ok) {
            slot_release(p, s);
            return db__fail(&h->base, DB_ETIMEOUT, "postgres: deadline passed waiting for the result: %.200s", sql);
        }
        if (s->lost) {
            slot_free(p, s);
            return db__fail(&h->base, DB_EUNAVAIL, "postgres: connection lost: %.200s", sql);
        }
        if (s->err) {
            rc = pg__fail(&h->base, NULL, s->err, sql);
            if (pg__stale_statement(s->err)) {
                /* c is still this session: a lost one fails its slots */
                pg__stmt_stale(&c->stmts, sql);
                if (attempt == 0 && !h->pin) {
                    slot_free(p, s);
                    continue;
                }
                if (h->pin) /* the transaction is lost; db_tx's retry prepares afresh */
                    rc = DB_EBUSY;
            }
            slot_free(p, s);
            return rc;
        }
        if (!s->res) {
            slot_free(p, s);
            return db__fail(&h->base, DB_ERR, "postgres: no result: %.200s", sql);
        }
        *out = s->res;
        s->res = NULL;
        slot_free(p, s);
        return DB_OK;
    }
}

/* ---- the handle's db_ops ---------------------------------------------------------------- */

static int h_query(struct db *db, const char *sql, const db_arg *args, size_t nargs, struct db_res **out)
{
    PGresult *res;
    int rc = h_run((struct pgh *)db, sql, args, nargs, true, &res);
    if (rc)
        return rc;
    *out = pg__res_new(db, res);
    return DB_OK;
}

static int h_exec(struct db *db, const char *sql, const db_arg *args, size_t nargs, int64_t *changes)
{
    PGresult *res;
    int rc = h_run((struct pgh *)db, sql, args, nargs, true, &res);
    if (rc)
        return rc;
    if (changes)
        *changes = pg__changes(res);
    PQclear(res);
    return DB_OK;
}

/* One statement only: pipeline mode has no simple-query protocol. */
static int h_exec_script(struct db *db, const char *sql)
{
    PGresult *res;
    int rc = h_run((struct pgh *)db, sql, NULL, 0, false, &res);
    PQclear(res);
    return rc;
}

static void unpin(struct pgh *h)
{
    struct pgpool *p = h->pool;
    if (h->pin) {
        h->pin->pinned = NULL;
        h->pin = NULL;
    }
    h->begin_pending = false;
    if (p->wq.n)
        coro_wq_wake_all(&p->wq);
}

static int h_begin(struct db *db, enum db_tx_mode mode)
{
    struct pgh *h = (struct pgh *)db;
    struct pgc *c;
    int rc;
    if (h->pin)
        BUG("postgres pool: begin inside a transaction");
    h->tx_lost = false;
    if ((rc = get_conn(h, true, &c)) != DB_OK)
        return rc;
    c->pinned = h;
    h->pin = c;
    h->begin_pending = true; /* sent with the first statement */
    h->serializable = mode == DB_TX_SERIALIZABLE;
    return DB_OK;
}

static int h_commit(struct db *db)
{
    struct pgh *h = (struct pgh *)db;
    PGresult *res;
    int rc;
    if (h->tx_lost || !h->pin)
        return db__fail(db, DB_EUNAVAIL, "postgres: connection lost inside a transaction");
    if (h->begin_pending) { /* nothing ran: nothing to commit */
        unpin(h);
        return DB_OK;
    }
    rc = h_run(h, "COMMIT", NULL, 0, false, &res);
    PQclear(res);
    if (rc == DB_OK)
        unpin(h);
    return rc; /* on failure db_tx calls rollback, which unpins */
}

static int h_rollback(struct db *db)
{
    struct pgh *h = (struct pgh *)db;
    struct pgc *c = h->pin;
    struct slot *s;
    h->tx_lost = false;
    if (!c) {
        h->begin_pending = false;
        return DB_OK;
    }
    if (!h->begin_pending && c->state == PGC_UP && conn_send(h, c, "ROLLBACK", NULL, 0, false, &s) == DB_OK)
        slot_release(h->pool, s); /* not awaited: what follows on c queues behind it */
    unpin(h);
    h->tx_lost = false; /* a failed send above lost the connection: the transaction is over anyway */
    return DB_OK;
}

static void h_deadline_changed(struct db *db) { UNUSED(db); /* read at each wait */ }

static void h_close(struct db *db)
{
    UNUSED(db);
    BUG("db_close on a pool handle (use db_pool_put)");
}

static const struct db_ops h_ops = {
    .query = h_query,
    .next = pg__res_next,
    .ncols = pg__res_ncols,
    .isnull = pg__res_isnull,
    .get_int = pg__res_int,
    .get_double = pg__res_double,
    .get_text = pg__res_text,
    .res_free = pg__res_free,
    .exec = h_exec,
    .exec_script = h_exec_script,
    .begin = h_begin,
    .commit = h_commit,
    .rollback = h_rollback,
    .deadline_changed = h_deadline_changed,
    .close = h_close,
};

/* ---- the pool ------------------------------------------------------------------------------ */

static void stats_add(struct db_stats *to, const struct db_stats *from)
{
    to->queries += from->queries;
    to->query_us_total += from->query_us_total;
    to->errors += from->errors;
    for (size_t i = 0; i < ARRAY_LEN(to->latency_buckets); i++)
        to->latency_buckets[i] += from->latency_buckets[i];
}

static struct db *pool_get(struct db_pool *bp)
{
    struct pgpool *p = (struct pgpool *)bp;
    struct pgh *h = p->free_h;
    if (h) {
        p->free_h = h->next_free;
    } else {
        h = xcalloc(1, sizeof(*h));
        db__base_init(&h->base, &h_ops, DB_POSTGRES, &p->opt);
        h->pool = p;
        h->next_all = p->all_h;
        p->all_h = h;
    }
    h->next_free = NULL;
    return &h->base;
}

static void pool_put(struct db_pool *bp, struct db *db)
{
    struct pgpool *p = (struct pgpool *)bp;
    struct pgh *h = (struct pgh *)db;
    if (h->pin) /* a transaction left open: never hand it to the next request */
        (void)h_rollback(db);
    h->tx_lost = false;
    h->base.in_tx = false;
    h->base.owner = NULL;
    h->base.deadline_ms = 0;
    db__clear_err(&h->base);
    stats_add(&p->folded, &h->base.stats);
    memset(&h->base.stats, 0, sizeof(h->base.stats));
    h->next_free = p->free_h;
    p->free_h = h;
}

/* O(1): the server reads it once per request. Statements of handles still
 * out are counted when they come back. */
static const struct db_stats *pool_stats(struct db_pool *bp) { return &((struct pgpool *)bp)->folded; }

static void pool_close(struct db_pool *bp)
{
    struct pgpool *p = (struct pgpool *)bp;
    if (h2o_timeout_is_linked(&p->tick_entry))
        h2o_timeout_unlink(&p->tick_entry);
    h2o_timeout_dispose(p->loop, &p->tick);
    for (int i = 0; i < p->n; i++) {
        struct pgc *c = &p->conns[i];
        unwatch(c);
        while (c->head) {
            struct slot *s = c->head;
            c->head = s->next;
            slot_free(p, s);
        }
        db__cache_clear(&c->stmts, free);
        PQfinish(c->c);
    }
    while (p->free_slots) {
        struct slot *s = p->free_slots;
        p->free_slots = s->next;
        free(s);
    }
    while (p->all_h) {
        struct pgh *h = p->all_h;
        p->all_h = h->next_all;
        db__base_release(&h->base);
        free(h);
    }
    pg__params_free(&p->params);
    buf_free(&p->sqlbuf);
    free(p->conns);
    free(p->url);
    free(p);
}

static const struct db_pool_ops pool_ops = {pool_get, pool_put, pool_close, pool_stats};

struct db_pool *db__pg_pool_open(const char *url, const struct db_options *opt, int size, struct buf *err)
{
    h2o_evloop_t *loop = coro_loop();
    struct pgpool *p;
    if (!loop) {
        if (err)
            (void)buf_puts(err, "postgres pool: open it on a loop thread (after coro_thread_init)");
        return NULL;
    }
    if (size < 1)
        size = 1;
    p = xcalloc(1, sizeof(*p));
    p->base.ops = &pool_ops;
    p->loop = loop;
    p->n = size;
    p->wait_max = (size_t)size * PGP_WAIT_PER_CONN;
    p->url = xstrdup(url);
    if (opt)
        p->opt = *opt;
    pg__conninfo(&p->ci, p->url, p->opt.statement_timeout_ms);
    pg__params_init(&p->params);
    buf_init(&p->sqlbuf, BUF_MAX_SQL);
    h2o_timeout_init(loop, &p->tick, PGP_TICK_MS);
    p->tick_entry.cb = on_tick;
    p->conns = xcalloc((size_t)size, sizeof(*p->conns));
    /* The first connections are made synchronously, so a bad URL or a
     * server that is down stops the start with a clear message. */
    for (int i = 0; i < size; i++) {
        struct pgc *c = &p->conns[i];
        c->pool = p;
        c->c = PQconnectdbParams(p->ci.kw, p->ci.val, 1);
        if (!c->c)
            FATAL("out of memory");
        if (PQstatus(c->c) != CONNECTION_OK || !conn_setup(c)) {
            const char *m = PQerrorMessage(c->c);
            if (err)
                (void)buf_printf(err, "postgres: cannot connect to %s:%s/%s: %.*s", PQhost(c->c) ? PQhost(c->c) : "?",
                                 PQport(c->c) ? PQport(c->c) : "?", PQdb(c->c) ? PQdb(c->c) : "?", pg__trimmed_len(m),
                                 m);
            pool_close(&p->base);
            return NULL;
        }
        c->state = PGC_UP;
        h2o_socket_read_start(c->sock, on_read);
    }
    return &p->base;
}
