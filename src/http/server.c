/*
 * server.c — threads, listeners, TLS and shutdown (the request path itself
 * is request.c).
 *
 * Threads: N loop threads, each with an h2o_context, a SO_REUSEPORT
 * listener, a coroutine scheduler (core/coro.h), a database pool
 * (db_pool_open: SQLite's connection, or non-blocking PostgreSQL
 * connections) and a metrics shard. CPU-heavy work goes to the worker pool
 * (core/workpool.h). The main thread only waits for signals.
 *
 * Connections: at most TEMEL_MAX_CONNECTIONS per loop; at the cap the loop
 * stops accepting (the kernel's backlog holds the rest) until one closes.
 *
 * Shutdown: each loop stops its listener without resetting anyone (below),
 * asks h2o to stop keep-alive (GOAWAY on HTTP/2), and exits once no request
 * coroutine is alive and either its connections are gone or it has been
 * quiet for 500 ms after a 1 s grace and no connection it accepted is still
 * owed its first request (up to 3 s from the signal) — or at the deadline,
 * whichever comes first.
 *
 * Stopping a listener: close() on a listening socket resets every
 * connection the kernel has completed into its accept queue, and a client
 * that saw its connect() succeed has already sent its request on it: that
 * request is lost with a reset, not refused (a client retries a refusal
 * elsewhere, not a reset). Accepting until EAGAIN and then closing leaves a
 * window in which the next handshake completes into the queue. So first a
 * socket filter that drops every packet is attached to the listener: the
 * kernel runs it on each SYN and handshake ACK before the listener sees
 * them, so the queue cannot grow any more (a dropped SYN is sent again by
 * its client about a second later and then refused, the listener being
 * closed); then the queue is accepted to its end, and the listener closed
 * with nothing in it. The connections taken this way (and any other one
 * accepted just before the signal) have not necessarily sent their request
 * yet — a client descheduled between connect() and send() — so the loop
 * waits for the first request of each (`unasked`) before it may exit.
 */
#include "http/server.h"

#include <errno.h>
#include <linux/filter.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/coro.h"
#include "core/log.h"
#include "core/workpool.h"
#include "core/module.h"
#include "core/timeutil.h"
#include "db/db.h"
#include "db/migrate.h"
#include "http/http.h"
#include "http/metrics.h"
#include "http/server_internal.h"
#include "http/ratelimit.h"
#include "redis/redis.h"

#include "core/banned.h"

#define SHUTDOWN_DEADLINE_MS 10000
#define SHUTDOWN_FIRST_REQUEST_MS 3000 /* how long an accepted, silent connection holds the loop */

const struct config *g_srv_cfg;
struct rl_store *g_srv_rl;
http_authenticator g_srv_auth;
static h2o_globalconf_t g_conf;
static SSL_CTX *g_ssl;
static int64_t g_started_ms;
static struct thread_ctx *g_threads;
static _Thread_local struct thread_ctx *tls_thr;
static pthread_barrier_t g_ready; /* loop threads + main: receivers registered */
static sem_t g_done;              /* posted by each loop thread when drained */
static int g_startup_failed;      /* a loop thread could not open its database pool */

const struct config *server_config(void) { return g_srv_cfg; }
int64_t server_uptime_s(void) { return (time_now_ms() - g_started_ms) / 1000; }
void http_set_authenticator(http_authenticator fn) { g_srv_auth = fn; }
int http_authenticate(struct req *r, enum route_auth need)
{
    if (g_srv_auth)
        return g_srv_auth(r, need);
    return http_fail(r, 401, "UNAUTHORIZED", "authentication required");
}
struct thread_ctx *server_thread(void) { return tls_thr; }

static void log_kick(void *arg);

/* ---- per-thread loop ---- */

static void on_accept(h2o_socket_t *listener, const char *err);
static void on_conn_close(void *data);
static void on_unasked_close(void *data);

/* Hand an accepted connection to h2o (TLS handshake, HTTP/1 or 2). Until
 * its first request it closes through on_unasked_close: the callback
 * installed is the connection's whole state (data is the loop). */
static void accept_one(struct thread_ctx *t, h2o_socket_t *sock)
{
    t->conns++;
    t->unasked++;
    metrics_set_conns(t->metrics, t->conns);
    sock->on_close.cb = on_unasked_close;
    sock->on_close.data = t;
    h2o_accept(&t->accept, sock);
}

void server_conn_asked(h2o_req_t *h)
{
    h2o_socket_t *sock = h->conn->callbacks->get_socket ? h->conn->callbacks->get_socket(h->conn) : NULL;
    if (!sock || sock->on_close.cb != on_unasked_close)
        return;
    sock->on_close.cb = on_conn_close;
    ((struct thread_ctx *)sock->on_close.data)->unasked--;
}

static void on_unasked_close(void *data)
{
    ((struct thread_ctx *)data)->unasked--;
    on_conn_close(data);
}

static void on_conn_close(void *data)
{
    struct thread_ctx *t = data;
    t->conns--;
    metrics_set_conns(t->metrics, t->conns);
    if (!t->listening && t->listener && t->conns < g_srv_cfg->max_connections) {
        h2o_socket_read_start(t->listener, on_accept);
        t->listening = true;
    }
}

static void on_log_flush(h2o_timeout_entry_t *e)
{
    (void)e;
    log_flush_thread();
}

static void log_kick(void *arg)
{
    struct thread_ctx *t = arg;
    if (!h2o_timeout_is_linked(&t->log_flush))
        h2o_timeout_link(t->ctx.loop, &t->ctx.zero_timeout, &t->log_flush);
}

static void on_tick(h2o_timeout_entry_t *e)
{
    struct thread_ctx *t = H2O_STRUCT_FROM_MEMBER(struct thread_ctx, tick, e);
    metrics_set_db(t->metrics, db_pool_stats(t->dbp));
    h2o_timeout_link(t->ctx.loop, &t->ctx.one_sec_timeout, &t->tick);
}

static void on_drain_tick(h2o_timeout_entry_t *e)
{
    struct thread_ctx *t = H2O_STRUCT_FROM_MEMBER(struct thread_ctx, drain_tick, e);
    int64_t now = time_mono_ms(), since = now - t->shutdown_at_ms;
    bool owed = t->unasked > 0 && since < SHUTDOWN_FIRST_REQUEST_MS; /* a client between connect() and send() */
    if (since >= SHUTDOWN_DEADLINE_MS ||
        (t->live_reqs == 0 && (t->conns == 0 || (since >= 1000 && now - t->last_req_ms >= 500 && !owed)))) {
        t->exit = true;
        return;
    }
    h2o_timeout_link(t->ctx.loop, &t->ctx.hundred_ms_timeout, &t->drain_tick);
}

static void on_shutdown_msg(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    struct thread_ctx *t = H2O_STRUCT_FROM_MEMBER(struct thread_ctx, shutdown_rx, rx);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        free(m);
    }
    if (t->shutting_down)
        return;
    t->shutting_down = true;
    t->shutdown_at_ms = time_mono_ms();
    if (t->listener) {
        /* No handshake completes into the queue from here on (see the top of
         * this file); then take what it holds, past the connection cap (they
         * are served like the others), and close it empty. */
        static struct sock_filter drop_all[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
        struct sock_fprog prog = {.len = 1, .filter = drop_all};
        h2o_socket_t *sock;
        if (setsockopt(t->listen_fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
            log_warn("loop %d: cannot stop the listener's handshakes (%s): a connection may be reset", t->idx,
                     strerror(errno));
        while ((sock = h2o_evloop_socket_accept(t->listener)) != NULL)
            accept_one(t, sock);
        if (t->listening)
            h2o_socket_read_stop(t->listener);
        t->listening = false;
        h2o_socket_close(t->listener);
        t->listener = NULL;
    }
    h2o_context_request_shutdown(&t->ctx);
    h2o_timeout_link(t->ctx.loop, &t->ctx.hundred_ms_timeout, &t->drain_tick);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct thread_ctx *t = listener->data;
    h2o_socket_t *sock;
    if (err)
        return;
    /* accept a batch; each accepted socket goes to h2o (TLS handshake, HTTP/1 or 2) */
    for (int i = 0; i < 64; i++) {
        if (t->conns >= g_srv_cfg->max_connections) { /* at the cap: stop accepting until one closes */
            h2o_socket_read_stop(listener);
            t->listening = false;
            break;
        }
        if (!(sock = h2o_evloop_socket_accept(listener)))
            break;
        accept_one(t, sock);
    }
}

static void *thread_main(void *arg)
{
    struct thread_ctx *t = arg;
    tls_thr = t;
    h2o_context_init(&t->ctx, h2o_evloop_create(), &g_conf);
    t->accept.ctx = &t->ctx;
    t->accept.hosts = g_conf.hosts;
    t->accept.ssl_ctx = g_ssl;
    h2o_multithread_register_receiver(t->ctx.queue, &t->shutdown_rx, on_shutdown_msg);
    t->tick.cb = on_tick;
    t->drain_tick.cb = on_drain_tick;
    t->log_flush.cb = on_log_flush;
    buf_init(&t->logbuf, 1u << 20);
    log_thread_buffer(&t->logbuf, log_kick, t);
    h2o_timeout_link(t->ctx.loop, &t->ctx.one_sec_timeout, &t->tick);
    coro_thread_init(t->ctx.loop);
    redis_thread_init(t->ctx.loop, t->idx);
    {
        struct buf err = BUF_INIT(1024);
        struct db_options dbo = {.busy_timeout_ms = 5000,
                                 .statement_timeout_ms = (int)g_srv_cfg->request_timeout_ms};
        if (!(t->dbp = db_pool_open(g_srv_cfg->database_url, &dbo, g_srv_cfg->db_pool, &err))) {
            log_error("%s", buf_cstr(&err));
            fprintf(stderr, "temel: %s\n", buf_cstr(&err));
            __atomic_store_n(&g_startup_failed, 1, __ATOMIC_SEQ_CST);
        }
        buf_free(&err);
    }

    t->listener = h2o_evloop_socket_create(t->ctx.loop, t->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    t->listener->data = t;
    if (t->dbp) {
        h2o_socket_read_start(t->listener, on_accept);
        t->listening = true;
    }
    pthread_barrier_wait(&g_ready);

    while (!t->exit)
        h2o_evloop_run(t->ctx.loop, INT32_MAX);

    log_flush_thread();
    log_thread_buffer(NULL, NULL, NULL);
    buf_free(&t->logbuf);
    /* At the shutdown deadline a coroutine may still wait on the pool: then
     * leave it open (the process is about to exit) rather than free it under
     * that coroutine. */
    if (t->live_reqs == 0) {
        db_pool_close(t->dbp);
        t->dbp = NULL;
        redis_thread_release();
    } else {
        log_warn("loop %d stopped with %lld requests unfinished at the shutdown deadline", t->idx,
                 (long long)t->live_reqs);
    }
    /* Report done and park: the process exits with this thread alive, so
     * h2o's thread-local recycle caches stay reachable (not leaks) and no
     * connection memory is torn down under a socket h2o still owns. */
    sem_post(&g_done);
    for (;;)
        pause();
    return NULL;
}

static int open_listener(const char *host, int port, struct buf *err)
{
    struct addrinfo hints = {0}, *res = NULL;
    char portstr[8];
    int fd = -1, one = 1;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai) {
        (void)buf_printf(err, "HOST: cannot resolve %s: %s", host, gai_strerror(gai));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) || bind(fd, res->ai_addr, res->ai_addrlen) ||
        listen(fd, SOMAXCONN)) {
        (void)buf_printf(err, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int setup_tls(const struct config *cfg, struct buf *err)
{
    g_ssl = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(g_ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(g_ssl, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(g_ssl, cfg->tls_cert) != 1) {
        (void)buf_printf(err, "TEMEL_TLS_CERT: cannot load %s", cfg->tls_cert);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(g_ssl, cfg->tls_key, SSL_FILETYPE_PEM) != 1 || !SSL_CTX_check_private_key(g_ssl)) {
        (void)buf_puts(err, "TEMEL_TLS_KEY: cannot load the key or it does not match the certificate");
        return -1;
    }
    static const h2o_iovec_t alpn[] = {{H2O_STRLIT("h2")}, {H2O_STRLIT("http/1.1")}, {NULL, 0}};
    h2o_ssl_register_alpn_protocols(g_ssl, alpn);
    return 0;
}

void server_init(const struct config *cfg)
{
    g_srv_cfg = cfg;
    g_started_ms = time_now_ms();
    ops_register();
    for (const struct module *const *m = temel_modules; *m; m++)
        if ((*m)->register_routes)
            (*m)->register_routes();
    if (cfg->env == ENV_TEST)
        testroutes_register();
    router_freeze(cfg->env == ENV_TEST);
    (void)ops_openapi_json(); /* built now: a route's bad OpenAPI JSON stops startup, not a later request */
}

int server_run(void)
{
    const struct config *cfg = g_srv_cfg;
    struct buf err = BUF_INIT(1024);
    sigset_t sigs;
    int sig = 0, rc = 1;
    signal(SIGPIPE, SIG_IGN);
    g_srv_rl = rl_store_memory(1u << 16);
    if (redis_configured())
        g_srv_rl = rl_store_redis(g_srv_rl);
    work_init(cfg->cpu_threads, cfg->cpu_queue);

    h2o_config_init(&g_conf);
    g_conf.server_name = h2o_iovec_init(H2O_STRLIT("temel"));
    g_conf.max_request_entity_size = HTTP_BODY_MAX;
    g_conf.http1.req_timeout = (uint64_t)(cfg->request_timeout_ms > 10000 ? cfg->request_timeout_ms : 10000);
    g_conf.http2.idle_timeout = 30000;
    g_conf.http2.graceful_shutdown_timeout = SHUTDOWN_DEADLINE_MS;
    h2o_hostconf_t *host = h2o_config_register_host(&g_conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = request_on_h2o;
    request_install_error_filter(&host->fallback_path);

    if (cfg->tls_cert && setup_tls(cfg, &err))
        goto fail;

    g_threads = xcalloc((size_t)cfg->threads, sizeof(*g_threads));
    for (int i = 0; i < cfg->threads; i++) {
        struct thread_ctx *t = &g_threads[i];
        t->idx = i;
        if ((t->listen_fd = open_listener(cfg->host, cfg->port, &err)) < 0)
            goto fail;
        t->metrics = metrics_shard_new();
    }

    /* signals go to the main thread only */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    pthread_barrier_init(&g_ready, NULL, (unsigned)cfg->threads + 1);
    sem_init(&g_done, 0, 0);
    for (int i = 0; i < cfg->threads; i++)
        pthread_create(&g_threads[i].tid, NULL, thread_main, &g_threads[i]);
    pthread_barrier_wait(&g_ready);
    if (__atomic_load_n(&g_startup_failed, __ATOMIC_SEQ_CST)) {
        (void)buf_puts(&err, "cannot open the database from the event loops");
        goto fail;
    }

    log_info("listening on %s://%s:%d with %d threads", g_ssl ? "https" : "http", cfg->host, cfg->port,
             cfg->threads);
    sigwait(&sigs, &sig);
    log_info("signal %d: shutting down", sig);
    for (int i = 0; i < cfg->threads; i++) {
        h2o_multithread_message_t *m = xcalloc(1, sizeof(*m));
        h2o_multithread_send_message(&g_threads[i].shutdown_rx, m);
    }
    for (int i = 0; i < cfg->threads; i++)
        while (sem_wait(&g_done) != 0)
            ;
    log_info("stopped");
    rc = 0;
    goto out;
fail:
    log_error("%s", buf_cstr(&err));
    fprintf(stderr, "temel: %s\n", buf_cstr(&err));
out:
    buf_free(&err);
    return rc;
}
