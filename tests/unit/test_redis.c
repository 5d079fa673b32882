/* Unit tests for src/redis: URL parsing, the bounded tables (listen,
 * subscribe: to the bound and one past), and the loop client against a real
 * redis-server (Debian package, free port): a coroutine's call, EVALSHA after
 * SCRIPT FLUSH, publish from another thread to a loop subscriber, and an
 * outage (calls fail at once, redis_available() false). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>

#define H2O_USE_EPOLL 1
#include <h2o.h>

#include "core/coro.h"
#include "core/timeutil.h"
#include "redis/redis.h"

static void t_url_parse(void **state)
{
    (void)state;
    struct redis_url u;
    struct buf err = BUF_INIT(256);
    assert_int_equal(redis_url_parse("redis://127.0.0.1:6380/3", &u, &err), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    assert_null(u.pass);
    redis_url_free(&u);
    assert_int_equal(redis_url_parse("redis://:pw@localhost", &u, &err), 0);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.pass, "pw");
    assert_null(u.user);
    redis_url_free(&u);
    assert_int_equal(redis_url_parse("redis://app:pw@[::1]:7000/", &u, &err), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.user, "app");
    assert_int_equal(u.port, 7000);
    redis_url_free(&u);
    const char *bad[] = {"http://h", "redis://", "redis://h:0", "redis://h:70000", "redis://h:1x",
                         "redis://h/db", "redis://pw@h", "redis://[::1", "redis://h/-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        buf_reset(&err);
        assert_int_equal(redis_url_parse(bad[i], &u, &err), -1);
        assert_true(err.len > 0);
    }
    buf_free(&err);
}

static void on_nothing(void *arg, const char *ch, const char *msg, size_t len)
{
    (void)arg, (void)ch, (void)msg, (void)len;
}

static void t_listen_bound(void **state)
{
    (void)state;
    for (int i = 0; i < REDIS_LISTEN_MAX; i++)
        assert_int_equal(redis_listen("temel:test:listen", on_nothing, NULL), 0);
    assert_int_equal(redis_listen("temel:test:listen", on_nothing, NULL), -1); /* one past */
}

/* ---- against a real server ---- */

static pid_t g_redis;
static int g_port;
static h2o_evloop_t *loop;

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void redis_start(void)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", g_port);
    g_redis = fork();
    if (g_redis == 0) {
        int null = open("/dev/null", O_WRONLY);
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlives a failed test */
        dup2(null, 1);
        dup2(null, 2);
        execl("/usr/bin/redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    /* ready when a connect succeeds (hang guard 10 s) */
    for (int64_t guard = time_mono_ms() + 10000; time_mono_ms() < guard; usleep(20000)) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_STREAM, 0), ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (ok)
            return;
    }
    fail_msg("redis-server did not start");
}

static void redis_stop(void)
{
    kill(g_redis, SIGTERM);
    waitpid(g_redis, NULL, 0);
}

static void run_until(const int *flag)
{
    int64_t guard = time_mono_ms() + 10000;
    while (!*flag && time_mono_ms() < guard)
        h2o_evloop_run(loop, 10);
    assert_true(*flag);
}

struct ctx {
    int done, subscribed, got;
    char msg[64];
    int rc_get, rc_eval, rc_down;
    char value[32];
    long long evalled;
};

static void body_calls(void *arg)
{
    struct ctx *c = arg;
    redisReply *r = NULL;
    static struct redis_script sc = {.src = "return tonumber(ARGV[1]) * 2"};
    assert_int_equal(redis_cmd(&r, "SET %s %s", "temel:test:k", "v1"), 0);
    redis_reply_free(r);
    c->rc_get = redis_cmd(&r, "GET %s", "temel:test:k");
    if (!c->rc_get && r->type == REDIS_REPLY_STRING)
        snprintf(c->value, sizeof(c->value), "%s", r->str);
    redis_reply_free(r);
    const char *av[] = {"21"};
    size_t al[] = {2};
    c->rc_eval = redis_eval(&sc, &r, 0, 1, av, al);
    if (!c->rc_eval && r->type == REDIS_REPLY_INTEGER)
        c->evalled = r->integer;
    redis_reply_free(r);
    /* the script is gone from the server: EVALSHA → NOSCRIPT → load → again */
    assert_int_equal(redis_cmd(&r, "SCRIPT FLUSH"), 0);
    redis_reply_free(r);
    assert_int_equal(redis_eval(&sc, &r, 0, 1, av, al), 0);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 42);
    redis_reply_free(r);
}

static void on_done(void *arg) { ((struct ctx *)arg)->done = 1; }

static void on_msg(void *arg, const char *ch, const char *msg, size_t len)
{
    struct ctx *c = arg;
    assert_string_equal(ch, "temel:test:chan");
    if (!msg) {
        c->subscribed++;
        return;
    }
    memcpy(c->msg, msg, len < sizeof(c->msg) ? len : sizeof(c->msg)); /* binary-safe: may hold NULs */
    c->got++;
}

static void *publisher(void *arg)
{
    (void)arg; /* not a loop thread: the synchronous connection */
    assert_int_equal(redis_publish("temel:test:chan", "hello\0x", 7), 0);
    return NULL;
}

static void body_down(void *arg)
{
    struct ctx *c = arg;
    redisReply *r = NULL;
    c->rc_down = redis_cmd(&r, "PING");
    assert_null(r);
}

static void t_loop_client(void **state)
{
    (void)state;
    struct ctx c = {0};
    char url[64];
    struct buf err = BUF_INIT(256);
    pthread_t th;
    g_port = free_port();
    redis_start();
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", g_port);
    setenv("REDIS_URL", url, 1);
    assert_int_equal(redis_config(&err), 0);
    assert_true(redis_configured());

    loop = h2o_evloop_create();
    coro_thread_init(loop);
    redis_thread_init(loop, 1); /* not loop 0: the listens above stay out */

    coro_spawn(body_calls, &c, on_done, &c);
    run_until(&c.done);
    assert_int_equal(c.rc_get, 0);
    assert_string_equal(c.value, "v1");
    assert_int_equal(c.rc_eval, 0);
    assert_int_equal(c.evalled, 42);
    assert_true(redis_available());

    assert_int_equal(redis_subscribe("temel:test:chan", false, on_msg, &c), 0);
    run_until(&c.subscribed);
    pthread_create(&th, NULL, publisher, NULL);
    pthread_join(th, NULL);
    run_until(&c.got);
    assert_memory_equal(c.msg, "hello\0x", 7);

    /* the subscription table: to its bound and one past */
    for (int i = 1; i < REDIS_SUBS_MAX; i++)
        assert_int_equal(redis_subscribe("temel:test:other", false, on_nothing, NULL), 0);
    assert_int_equal(redis_subscribe("temel:test:other", false, on_nothing, NULL), -1);
    for (int i = 1; i < REDIS_SUBS_MAX; i++)
        redis_unsubscribe("temel:test:other", false, on_nothing, NULL);

    /* outage: the server goes away; calls fail, nothing blocks */
    redis_stop();
    int64_t guard = time_mono_ms() + 10000;
    while (redis_available() && time_mono_ms() < guard)
        h2o_evloop_run(loop, 10);
    assert_false(redis_available());
    c.done = 0;
    coro_spawn(body_down, &c, on_done, &c);
    run_until(&c.done);
    assert_int_equal(c.rc_down, RDS_EDOWN);
    redis_unsubscribe("temel:test:chan", false, on_msg, &c);

    redis_thread_release();
    coro_thread_release();
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_url_parse),
        cmocka_unit_test(t_listen_bound),
        cmocka_unit_test(t_loop_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
