/* Unit tests for src/transport/http_client: address classification, the
 * allow-list, and the real libcurl path (refusal without a connection,
 * body cap, retries, timeouts) against tiny servers on 127.0.0.1; plus the
 * SMS HTTP provider transport through it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/timeutil.h"
#include "transport/delivery.h"
#include "transport/http_client.h"
#include "jobs/jobs.h"
#include "transport/sms.h"

/* Weak stand-ins for the queue (src/jobs/queue.c): these tests call the
 * client and the handlers directly. The real ones win when linked in. */
__attribute__((weak)) int jobs_enqueue(struct db *db, const char *kind, str_t payload, const struct job_opts *opts,
                                       char *id_out)
{
    (void)db, (void)kind, (void)payload, (void)opts, (void)id_out;
    return 0;
}
__attribute__((weak)) void jobs_register(const struct job_kind *k) { (void)k; }

static struct sockaddr_storage ss_of(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    else
        fail_msg("bad test address %s", ip);
    return ss;
}

static bool blocked(const char *ip)
{
    struct sockaddr_storage ss = ss_of(ip);
    return httpc_addr_blocked((struct sockaddr *)&ss) != NULL;
}

static void t_classify(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.254", "127.0.0.1",
        "127.1.2.3", "169.254.169.254", "169.254.0.1", "172.16.0.1", "172.31.255.255", "192.168.0.1",
        "192.168.255.255", "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1", "192.0.0.8",
        "198.18.0.1",
        /* IPv6 */
        "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "ff02::1", "fec0::1",
        /* IPv4-mapped / -compatible / NAT64 / 6to4 forms of blocked IPv4 */
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:192.168.1.1", "::ffff:0.0.0.0",
        "::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b::10.1.1.1", "2002:7f00:1::", "2002:a9fe:a9fe::1",
    };
    static const char *const good[] = {
        "1.1.1.1", "8.8.8.8", "93.184.216.34", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1",
        "169.253.255.255", "192.169.0.1", "11.0.0.1", "223.255.255.255",
        "2606:4700:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
        "fbff::1", "fe7f::1",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (!blocked(bad[i]))
            fail_msg("%s should be blocked", bad[i]);
    for (size_t i = 0; i < ARRAY_LEN(good); i++)
        if (blocked(good[i]))
            fail_msg("%s should be allowed", good[i]);
    struct sockaddr_storage ss = ss_of("::1");
    assert_string_equal(httpc_addr_blocked((struct sockaddr *)&ss), "loopback");
    ss = ss_of("169.254.169.254");
    assert_string_equal(httpc_addr_blocked((struct sockaddr *)&ss), "link-local");
    ss = ss_of("::ffff:10.0.0.1");
    assert_string_equal(httpc_addr_blocked((struct sockaddr *)&ss), "private");
    struct sockaddr unix_sa = {.sa_family = AF_UNIX};
    assert_non_null(httpc_addr_blocked(&unix_sa));
}

static void t_allow_list(void **state)
{
    (void)state;
    struct httpc_allow a;
    struct buf err = BUF_INIT(256);
    assert_int_equal(httpc_allow_parse(" 10.1.2.3, 192.168.0.0/16,fd00::/8 ,Hooks.Internal,*.corp.example,::1,"
                                       "::ffff:172.16.0.0/108",
                                       &a, &err),
                     0);
    assert_int_equal(a.n, 7);
    struct sockaddr_storage ss;
#define ALLOWED(ip) (ss = ss_of(ip), httpc_allow_addr(&a, (struct sockaddr *)&ss))
    assert_true(ALLOWED("10.1.2.3"));
    assert_false(ALLOWED("10.1.2.4"));
    assert_true(ALLOWED("192.168.7.7"));
    assert_true(ALLOWED("::ffff:192.168.7.7")); /* mapped matches the IPv4 entry */
    assert_false(ALLOWED("192.169.0.1"));
    assert_true(ALLOWED("fd00::1"));
    assert_true(ALLOWED("fdff:1::1"));
    assert_false(ALLOWED("fc00::1"));
    assert_true(ALLOWED("::1"));
    assert_false(ALLOWED("127.0.0.1"));
    assert_true(ALLOWED("172.16.5.5")); /* ::ffff:172.16.0.0/108 == 172.16.0.0/12 */
    assert_true(ALLOWED("172.31.0.1"));
    assert_false(ALLOWED("172.32.0.1"));
#undef ALLOWED
    assert_true(httpc_allow_host(&a, "hooks.internal"));
    assert_true(httpc_allow_host(&a, "HOOKS.internal."));
    assert_false(httpc_allow_host(&a, "x.hooks.internal"));
    assert_false(httpc_allow_host(&a, "hooks.internal.evil.com"));
    assert_true(httpc_allow_host(&a, "a.corp.example"));
    assert_true(httpc_allow_host(&a, "a.b.corp.example"));
    assert_false(httpc_allow_host(&a, "corp.example"));
    assert_false(httpc_allow_host(&a, "evilcorp.example"));
    httpc_allow_free(&a);

    static const char *const bad[] = {"10.0.0.0/33", "fd00::/129", "1.2.3.4/x", "exa mple.com", "http://x",
                                      "*.", "a/8", "-1", ".example.com", "x..y/3", "1.2.3.4/-1"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        buf_reset(&err);
        if (httpc_allow_parse(bad[i], &a, &err) == 0)
            fail_msg("'%s' should not parse", bad[i]);
        assert_non_null(strstr(buf_cstr(&err), "invalid entry"));
    }
    assert_int_equal(httpc_allow_parse("", &a, &err), 0);
    assert_int_equal(a.n, 0);
    assert_int_equal(httpc_allow_parse(NULL, &a, &err), 0);
    httpc_allow_free(&a);
    buf_free(&err);
}

/* ------------------------------------------------------------ servers */

static int listen_local(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* true if a connection is waiting to be accepted (someone connected) */
static bool has_pending(int lfd)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    return poll(&p, 1, 50) > 0;
}

/* A scripted HTTP server: answers connection i with replies[i] (the whole
 * raw response); NULL = accept and say nothing. Records each request. */
struct srv {
    int lfd, port;
    const char *replies[8];
    int nreplies;
    int served;
    char req[8][4096];
    pthread_t th;
};

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    for (int i = 0; i < s->nreplies; i++) {
        int c = accept(s->lfd, NULL, NULL);
        if (c < 0)
            break;
        size_t n = 0;
        /* read until the end of headers + Content-Length body */
        for (;;) {
            ssize_t r = recv(c, s->req[i] + n, sizeof(s->req[i]) - 1 - n, 0);
            if (r <= 0)
                break;
            n += (size_t)r;
            s->req[i][n] = '\0';
            char *he = strstr(s->req[i], "\r\n\r\n");
            if (he) {
                const char *cl = strcasestr(s->req[i], "content-length:");
                long want = cl ? strtol(cl + 15, NULL, 10) : 0;
                if ((long)(n - (size_t)(he + 4 - s->req[i])) >= want)
                    break;
            }
        }
        s->served++;
        if (s->replies[i]) {
            size_t len = strlen(s->replies[i]);
            ssize_t w = send(c, s->replies[i], len, MSG_NOSIGNAL);
            (void)w;
        } else {
            usleep(1500 * 1000); /* silent: let the client time out */
        }
        close(c);
    }
    return NULL;
}

static void srv_start(struct srv *s)
{
    s->lfd = listen_local(&s->port);
    pthread_create(&s->th, NULL, srv_main, s);
}

static void srv_stop(struct srv *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->th, NULL);
    close(s->lfd);
}

/* ------------------------------------------------------------ refusal */

static void t_refuses_without_connecting(void **state)
{
    (void)state;
    int port, lfd = listen_local(&port);
    char url[128];
    static const char *const hosts[] = {"127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "127.1", "0x7f000001",
                                        "LocalHost"};
    for (size_t i = 0; i < ARRAY_LEN(hosts); i++) {
        struct httpc_request rq = HTTPC_REQUEST_INIT;
        struct httpc_response rs;
        struct buf err = BUF_INIT(512);
        snprintf(url, sizeof(url), "http://%s:%d/x", hosts[i], port);
        rq.url = url;
        int rc = httpc_perform(&rq, &rs, &err);
        if (rc != HTTPC_EREFUSED)
            fail_msg("%s: rc %d (%s)", url, rc, buf_cstr(&err));
        assert_non_null(strstr(buf_cstr(&err), "refused"));
        assert_int_equal(rs.status, 0);
        assert_int_equal(rs.attempts, 1); /* a refusal is never retried */
        if (has_pending(lfd))
            fail_msg("%s: the listener saw a connection", url);
        httpc_response_free(&rs);
        buf_free(&err);
    }
    close(lfd);

    /* unroutable private and metadata addresses: refused at once, no connect timeout */
    static const char *const others[] = {"http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/",
                                         "https://192.168.1.1/", "http://[::1]:9/", "http://[fe80::1]/",
                                         "http://0.0.0.0/", "http://[::ffff:a9fe:a9fe]/"};
    for (size_t i = 0; i < ARRAY_LEN(others); i++) {
        struct httpc_request rq = HTTPC_REQUEST_INIT;
        struct httpc_response rs;
        struct buf err = BUF_INIT(512);
        rq.url = others[i];
        rq.connect_timeout_ms = 3000;
        int64_t t0 = time_mono_ms();
        int rc = httpc_perform(&rq, &rs, &err);
        if (rc != HTTPC_EREFUSED)
            fail_msg("%s: rc %d (%s)", others[i], rc, buf_cstr(&err));
        assert_true(time_mono_ms() - t0 < 1000);
        assert_int_equal(httpc_job_result(rc, rs.status), JOB_FAIL);
        httpc_response_free(&rs);
        buf_free(&err);
    }
}

static void t_bad_requests(void **state)
{
    (void)state;
    static const char *const urls[] = {"ftp://example.com/", "file:///etc/passwd", "gopher://example.com/",
                                       "http://user:pw@example.com/", "not a url", "http://", "dict://x/",
                                       "http://example.com/\r\nX: y"};
    for (size_t i = 0; i < ARRAY_LEN(urls); i++) {
        struct httpc_request rq = HTTPC_REQUEST_INIT;
        struct httpc_response rs;
        struct buf err = BUF_INIT(512);
        rq.url = urls[i];
        int rc = httpc_perform(&rq, &rs, &err);
        if (rc != HTTPC_EBADURL)
            fail_msg("%s: rc %d (%s)", urls[i], rc, buf_cstr(&err));
        httpc_response_free(&rs);
        buf_free(&err);
    }
    struct httpc_request rq = HTTPC_REQUEST_INIT;
    struct httpc_response rs;
    struct buf err = BUF_INIT(512);
    rq.url = "https://example.com/";
    rq.headers[rq.nheaders++] = (struct httpc_header){"X-Test", "a\r\nInjected: 1"};
    assert_int_equal(httpc_perform(&rq, &rs, &err), HTTPC_EBADURL);
    httpc_response_free(&rs);
    rq.nheaders = 0;
    rq.method = "CONNECT";
    assert_int_equal(httpc_perform(&rq, &rs, &err), HTTPC_EBADURL);
    httpc_response_free(&rs);
    buf_free(&err);
}

/* ------------------------------------------------------------ transfers */

static const struct httpc_allow *allow_local(void)
{
    static struct httpc_allow a;
    static bool done;
    if (!done) {
        struct buf err = BUF_INIT(64);
        assert_int_equal(httpc_allow_parse("127.0.0.0/8", &a, &err), 0);
        buf_free(&err);
        done = true;
    }
    return &a;
}

static void t_allowed_transfer(void **state)
{
    (void)state;
    struct srv s = {.nreplies = 1,
                    .replies = {"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Id: abc\r\n"
                                "Content-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}"}};
    srv_start(&s);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/path?q=1", s.port);
    struct httpc_request rq = HTTPC_REQUEST_INIT;
    struct httpc_response rs;
    struct buf err = BUF_INIT(512);
    rq.method = "POST";
    rq.url = url;
    rq.body = STRLIT("a=1&b=2");
    rq.user = "sid";
    rq.password = "secret";
    rq.headers[rq.nheaders++] = (struct httpc_header){"Content-Type", "application/x-www-form-urlencoded"};
    rq.allow = allow_local();
    assert_int_equal(httpc_perform(&rq, &rs, &err), HTTPC_OK);
    srv_stop(&s);
    assert_int_equal(rs.status, 201);
    assert_string_equal(buf_cstr(&rs.body), "{\"ok\":true}");
    str_t h = httpc_response_header(&rs, "x-id");
    assert_true(str_is(h, "abc"));
    h = httpc_response_header(&rs, "CONTENT-TYPE");
    assert_true(str_is(h, "application/json"));
    assert_null(httpc_response_header(&rs, "missing").p);
    assert_non_null(strstr(s.req[0], "POST /path?q=1 HTTP/1.1\r\n"));
    assert_non_null(strstr(s.req[0], "Authorization: Basic c2lkOnNlY3JldA==\r\n"));
    assert_non_null(strstr(s.req[0], "\r\n\r\na=1&b=2"));
    assert_int_equal(httpc_job_result(HTTPC_OK, rs.status), JOB_OK);
    httpc_response_free(&rs);

    /* allow by host name: "localhost" */
    struct srv s2 = {.nreplies = 1, .replies = {"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"}};
    srv_start(&s2);
    struct httpc_allow byname;
    assert_int_equal(httpc_allow_parse("localhost", &byname, &err), 0);
    snprintf(url, sizeof(url), "http://localhost:%d/", s2.port);
    rq = HTTPC_REQUEST_INIT;
    rq.url = url;
    rq.allow = &byname;
    int rc = httpc_perform(&rq, &rs, &err);
    srv_stop(&s2);
    assert_int_equal(rc, HTTPC_OK);
    assert_int_equal(rs.status, 204);
    httpc_response_free(&rs);
    httpc_allow_free(&byname);
    buf_free(&err);
}

static void t_body_cap(void **state)
{
    (void)state;
    static char big[4096];
    int n = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n");
    memset(big + n, 'x', 2000);
    /* second: no Content-Length, so the cap is hit while streaming */
    static char big2[4096];
    int n2 = snprintf(big2, sizeof(big2), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    memset(big2 + n2, 'y', 2000);
    struct srv s = {.nreplies = 2, .replies = {big, big2}};
    srv_start(&s);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    for (int i = 0; i < 2; i++) {
        struct httpc_request rq = HTTPC_REQUEST_INIT;
        struct httpc_response rs;
        struct buf err = BUF_INIT(512);
        rq.url = url;
        rq.body_max = 100;
        rq.allow = allow_local();
        assert_int_equal(httpc_perform(&rq, &rs, &err), HTTPC_ETOOBIG);
        assert_true(rs.body.len <= 100);
        assert_int_equal(httpc_job_result(HTTPC_ETOOBIG, rs.status), JOB_FAIL);
        httpc_response_free(&rs);
        buf_free(&err);
    }
    srv_stop(&s);
}

static void t_retry_5xx_then_ok(void **state)
{
    (void)state;
    struct srv s = {.nreplies = 2,
                    .replies = {"HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"}};
    srv_start(&s);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    struct httpc_request rq = HTTPC_REQUEST_INIT;
    struct httpc_response rs;
    struct buf err = BUF_INIT(512);
    rq.url = url;
    rq.allow = allow_local();
    assert_int_equal(httpc_perform(&rq, &rs, &err), HTTPC_OK);
    srv_stop(&s);
    assert_int_equal(rs.status, 200);
    assert_int_equal(rs.attempts, 2);
    assert_string_equal(buf_cstr(&rs.body), "ok");
    httpc_response_free(&rs);

    /* without retry_5xx the 503 is the answer, and the job outcome is a retry */
    struct srv s2 = {.nreplies = 1, .replies = {"HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n"}};
    srv_start(&s2);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s2.port);
    rq.url = url;
    rq.retry_5xx = false;
    assert_int_equal(httpc_perform(&rq, &rs, &err), HTTPC_OK);
    srv_stop(&s2);
    assert_int_equal(rs.status, 503);
    assert_int_equal(rs.attempts, 1);
    assert_int_equal(httpc_job_result(HTTPC_OK, rs.status), JOB_RETRY);
    assert_int_equal(httpc_job_result(HTTPC_OK, 404), JOB_FAIL);
    assert_int_equal(httpc_job_result(HTTPC_OK, 429), JOB_RETRY);
    assert_int_equal(httpc_job_result(HTTPC_ECONNECT, 0), JOB_RETRY);
    httpc_response_free(&rs);
    buf_free(&err);
}

static void t_connect_error_retries_within_deadline(void **state)
{
    (void)state;
    int port, lfd = listen_local(&port);
    close(lfd); /* nothing listens there now: connection refused */
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    struct httpc_request rq = HTTPC_REQUEST_INIT;
    struct httpc_response rs;
    struct buf err = BUF_INIT(512);
    rq.url = url;
    rq.allow = allow_local();
    rq.max_retries = 5;
    rq.deadline_mono_ms = time_mono_ms() + 1200;
    int64_t t0 = time_mono_ms();
    assert_int_equal(httpc_perform(&rq, &rs, &err), HTTPC_ECONNECT);
    assert_true(rs.attempts >= 2);
    assert_true(time_mono_ms() - t0 <= 1300); /* bounded by the deadline */
    httpc_response_free(&rs);
    buf_free(&err);
}

static void t_timeout(void **state)
{
    (void)state;
    struct srv s = {.nreplies = 1, .replies = {NULL}};
    srv_start(&s);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    struct httpc_request rq = HTTPC_REQUEST_INIT;
    struct httpc_response rs;
    struct buf err = BUF_INIT(512);
    rq.url = url;
    rq.allow = allow_local();
    rq.deadline_mono_ms = time_mono_ms() + 300;
    int64_t t0 = time_mono_ms();
    assert_int_equal(httpc_perform(&rq, &rs, &err), HTTPC_ETIMEOUT);
    assert_true(time_mono_ms() - t0 < 1000);
    assert_int_equal(rs.attempts, 1); /* the request was sent: not retried */
    srv_stop(&s);
    httpc_response_free(&rs);
    buf_free(&err);
}

/* ------------------------------------------------------------ SMS over HTTP */

static void t_sms_http_provider(void **state)
{
    (void)state;
    struct srv s = {.nreplies = 3,
                    .replies = {"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 17\r\n"
                                "Connection: close\r\n\r\n{\"sid\":\"SM123\"}  ",
                                "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                                "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"}};
    srv_start(&s);
    char url[256];
    snprintf(url, sizeof(url), "http://AC123:tok%%40en@127.0.0.1:%d/2010-04-01/Accounts/AC123/Messages.json",
             s.port);
    struct delivery_config dc = {.sms_url = url, .sms_from = "+15550001111", .outbound_allow = "127.0.0.1"};
    delivery_configure(&dc);
    json_t *payload = json_pack("{s:s,s:s}", "to", "+905551234567", "text", "Kod: 123456 & ğ");
    struct job j = {.id = "0190a000-0000-7000-8000-000000000001", .kind = "sms.send", .payload = payload,
                    .attempt = 1, .max_attempts = 3, .deadline_mono_ms = time_mono_ms() + 10000};
    struct buf result = BUF_INIT(4096), error = BUF_INIT(1024);
    assert_int_equal(sms_job_send(&j, &result, &error), JOB_OK);
    assert_non_null(strstr(buf_cstr(&result), "\"provider_id\":\"SM123\""));
    assert_non_null(strstr(s.req[0], "POST /2010-04-01/Accounts/AC123/Messages.json HTTP/1.1\r\n"));
    /* base64("AC123:tok@en") */
    assert_non_null(strstr(s.req[0], "Authorization: Basic QUMxMjM6dG9rQGVu\r\n"));
    assert_non_null(strstr(s.req[0], "To=%2B905551234567&From=%2B15550001111&Body=Kod%3A+123456+%26+%C4%9F"));
    buf_reset(&error);
    assert_int_equal(sms_job_send(&j, &result, &error), JOB_FAIL); /* 400: permanent */
    assert_non_null(strstr(buf_cstr(&error), "400"));
    assert_null(strstr(buf_cstr(&error), "tok"));
    buf_reset(&error);
    assert_int_equal(sms_job_send(&j, &result, &error), JOB_RETRY); /* 503 */
    srv_stop(&s);

    /* without the allow-list, the provider on 127.0.0.1 is refused: failed for good */
    dc.outbound_allow = NULL;
    delivery_configure(&dc);
    buf_reset(&error);
    assert_int_equal(sms_job_send(&j, &result, &error), JOB_FAIL);
    assert_non_null(strstr(buf_cstr(&error), "refused"));
    json_decref(payload);
    buf_free(&result);
    buf_free(&error);
}

/* The request header array is filled through its one adder: to the bound, and one past. */
static void t_header_adder_bound(void **state)
{
    UNUSED(state);
    struct httpc_request rq = HTTPC_REQUEST_INIT;
    for (int i = 0; i < HTTPC_MAX_REQ_HEADERS; i++)
        assert_int_equal(httpc_add_header(&rq, "X-N", "v"), 0);
    assert_int_equal(rq.nheaders, HTTPC_MAX_REQ_HEADERS);
    assert_int_equal(httpc_add_header(&rq, "X-Over", "v"), -1);
    assert_int_equal(rq.nheaders, HTTPC_MAX_REQ_HEADERS);
    assert_string_equal(rq.headers[HTTPC_MAX_REQ_HEADERS - 1].name, "X-N");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_classify),
        cmocka_unit_test(t_allow_list),
        cmocka_unit_test(t_header_adder_bound),
        cmocka_unit_test(t_refuses_without_connecting),
        cmocka_unit_test(t_bad_requests),
        cmocka_unit_test(t_allowed_transfer),
        cmocka_unit_test(t_body_cap),
        cmocka_unit_test(t_retry_5xx_then_ok),
        cmocka_unit_test(t_connect_error_retries_within_deadline),
        cmocka_unit_test(t_timeout),
        cmocka_unit_test(t_sms_http_provider),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
