/*
 * server_internal.h — what server.c (threads, listeners, TLS, shutdown) and
 * request.c (the request path) share. Nothing outside src/http includes it.
 */
#ifndef TEMEL_SERVER_INTERNAL_H
#define TEMEL_SERVER_INTERNAL_H

#include <pthread.h>

#include "http/http.h"

struct db_pool;
struct rl_store;

/* One event-loop thread: its h2o context, listener, database pool and
 * metrics shard. Owned by its thread; only `shutdown_rx` is touched from
 * the main thread. */
struct thread_ctx {
    int idx;
    pthread_t tid;
    int listen_fd;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    h2o_socket_t *listener;
    bool listening;         /* accepting (false while at TEMEL_MAX_CONNECTIONS) */
    struct db_pool *dbp;
    struct metrics_shard *metrics;
    h2o_multithread_receiver_t shutdown_rx;
    h2o_timeout_entry_t tick;       /* 1 s: metrics snapshots */
    h2o_timeout_entry_t drain_tick; /* 100 ms while shutting down */
    h2o_timeout_entry_t log_flush;  /* end of loop iteration */
    struct buf logbuf;
    int64_t conns;     /* open client connections (owner thread only) */
    int64_t unasked;   /* of those, the ones that have not yet brought a request */
    int64_t live_reqs; /* requests whose coroutine has not finished */
    void *free_boxes;  /* request.c: finished request boxes kept for reuse (a stack) */
    int nfree_boxes;
    bool shutting_down, exit;
    int64_t shutdown_at_ms, last_req_ms;
};

/* server.c */
extern const struct config *g_srv_cfg;
extern struct rl_store *g_srv_rl;
extern http_authenticator g_srv_auth;
struct thread_ctx *server_thread(void);
/* A request arrived on h's connection: it is no longer one the shutdown must
 * wait for (server.c's drain rule). request_on_h2o calls it first. */
void server_conn_asked(h2o_req_t *h);

/* request.c: the handler h2o calls for every request. */
int request_on_h2o(h2o_handler_t *self, h2o_req_t *h);
/* request.c: turn the errors h2o answers before any handler (413 over
 * HTTP_BODY_MAX, 400 broken framing, 417) into problem+json. */
void request_install_error_filter(h2o_pathconf_t *fallback);

#endif
