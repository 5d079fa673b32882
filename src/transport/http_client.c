/*
 * http_client.c — outbound HTTP for jobs (see http_client.h for the rules).
 *
 * Design: one fresh easy handle per attempt (no connection reuse between
 * attempts or requests, so no pooled connection can bypass the address
 * check). The SSRF check lives in on_opensocket(): libcurl calls it with the
 * resolved address for every socket it wants, including each happy-eyeballs
 * candidate; a refused address gets CURL_SOCKET_BAD (curl then tries the
 * next candidate or fails with CURLE_COULDNT_CONNECT) and we remember why,
 * so the caller sees HTTPC_EREFUSED rather than a connect error.
 */
#include "transport/http_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "transport/delivery.h"

#include "core/banned.h"

/* ------------------------------------------------------------------ init */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void do_global_init(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        FATAL("curl_global_init failed");
}
void httpc_global_init(void) { pthread_once(&g_once, do_global_init); }

const char *httpc_strerror(int rc)
{
    switch (rc) {
    case HTTPC_OK: return "ok";
    case HTTPC_EREFUSED: return "destination refused";
    case HTTPC_EBADURL: return "bad request";
    case HTTPC_ECONNECT: return "could not connect";
    case HTTPC_ETIMEOUT: return "timed out";
    case HTTPC_ETOOBIG: return "response too large";
    case HTTPC_EIO: return "transfer failed";
    }
    return "unknown error";
}

/* ------------------------------------------------------- classification */

static bool in4(uint32_t a, uint32_t net, int bits)
{
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    return (a & mask) == (net & mask);
}

static const char *v4_blocked(uint32_t a /* host order */)
{
    static const struct {
        uint32_t net;
        int bits;
        const char *why;
    } t[] = {
        {0x00000000u, 8, "unspecified"},   /* 0.0.0.0/8 "this network" */
        {0x0a000000u, 8, "private"},       /* 10/8 */
        {0x64400000u, 10, "shared (CGNAT)"}, /* 100.64/10 */
        {0x7f000000u, 8, "loopback"},      /* 127/8 */
        {0xa9fe0000u, 16, "link-local"},   /* 169.254/16 incl. metadata 169.254.169.254 */
        {0xac100000u, 12, "private"},      /* 172.16/12 */
        {0xc0000000u, 24, "reserved"},     /* 192.0.0/24 IETF protocol assignments */
        {0xc0a80000u, 16, "private"},      /* 192.168/16 */
        {0xc6120000u, 15, "reserved"},     /* 198.18/15 benchmarking */
        {0xe0000000u, 4, "multicast"},     /* 224/4 */
        {0xffffffffu, 32, "broadcast"},    /* 255.255.255.255 (before 240/4) */
        {0xf0000000u, 4, "reserved"},      /* 240/4 */
    };
    for (size_t i = 0; i < ARRAY_LEN(t); i++)
        if (in4(a, t[i].net, t[i].bits))
            return t[i].why;
    return NULL;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool in6(const uint8_t *a, const uint8_t *net, int bits)
{
    int full = bits / 8, rem = bits % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return false;
    if (rem == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rem));
    return (a[full] & mask) == (net[full] & mask);
}

static const char *v6_blocked(const uint8_t *a)
{
    static const uint8_t zero[16] = {0};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1))
        return a[15] == 0 ? "unspecified" : "loopback";
    /* forms that carry an IPv4 address: classify that address */
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0 || memcmp(a, zero, 12) == 0)
        return v4_blocked(be32(a + 12)); /* ::ffff:a.b.c.d, 64:ff9b::a.b.c.d, ::a.b.c.d */
    if (a[0] == 0x20 && a[1] == 0x02)
        return v4_blocked(be32(a + 2)); /* 6to4 2002:AABB:CCDD::/48 */
    if ((a[0] & 0xfe) == 0xfc)
        return "private"; /* fc00::/7 unique local */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return "link-local"; /* fe80::/10 */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
        return "site-local"; /* fec0::/10 (deprecated) */
    if (a[0] == 0xff)
        return "multicast"; /* ff00::/8 */
    static const uint8_t discard[8] = {0x01, 0x00};
    if (memcmp(a, discard, 8) == 0)
        return "reserved"; /* 100::/64 discard */
    return NULL;
}

const char *httpc_addr_blocked(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        return v4_blocked(ntohl(s4->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        return v6_blocked(s6->sin6_addr.s6_addr);
    }
    return "unsupported family";
}

/* ------------------------------------------------------------ allow-list */

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static bool hostname_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    /* labels of [A-Za-z0-9_-], 1..63 long, not starting or ending with '-' */
    size_t label = 0;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63 || p[-1] == '-' || p[-(ptrdiff_t)label] == '-')
                return false;
            if (*p == '\0')
                return true;
            label = 0;
        } else if (isalnum((unsigned char)*p) || *p == '-' || *p == '_') {
            label++;
        } else {
            return false;
        }
    }
}

static int parse_entry(const char *tok, struct httpc_allow_entry *e)
{
    char *s = xstrdup(tok), *slash = strchr(s, '/');
    int rc = -1;
    int64_t bits = -1;
    memset(e, 0, sizeof(*e));
    if (slash) {
        *slash = '\0';
        if (parse_i64(str_c(slash + 1), 0, 128, &bits))
            goto out;
    }
    if (inet_pton(AF_INET, s, e->addr) == 1) {
        if (bits > 32)
            goto out;
        e->type = ALLOW_NET4;
        e->prefix = bits < 0 ? 32 : (int)bits;
        rc = 0;
    } else if (inet_pton(AF_INET6, s, e->addr) == 1) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        e->type = ALLOW_NET6;
        e->prefix = bits < 0 ? 128 : (int)bits;
        if (memcmp(e->addr, mapped, 12) == 0 && e->prefix >= 96) { /* store mapped as IPv4 */
            memmove(e->addr, e->addr + 12, 4);
            e->type = ALLOW_NET4;
            e->prefix -= 96;
        }
        rc = 0;
    } else if (!slash) {
        lower(s);
        if (s[0] == '*' && s[1] == '.' && hostname_ok(s + 2)) {
            e->type = ALLOW_SUFFIX;
            e->name = xstrdup(s + 1); /* ".corp.example" */
            rc = 0;
        } else if (hostname_ok(s)) {
            e->type = ALLOW_HOST;
            e->name = xstrdup(s);
            rc = 0;
        }
    }
out:
    free(s);
    return rc;
}

int httpc_allow_parse(const char *spec, struct httpc_allow *out, struct buf *err)
{
    memset(out, 0, sizeof(*out));
    if (!spec)
        return 0;
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t'))
            p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n) {
            char *tok = xstrndup(p, n);
            struct httpc_allow_entry e;
            if (n > 300 || parse_entry(tok, &e)) {
                (void)buf_printf(err, "invalid entry '%.*s' (want a host, *.domain, an IP or a CIDR)",
                                 (int)(n > 64 ? 64 : n), tok);
                free(tok);
                httpc_allow_free(out);
                return -1;
            }
            free(tok);
            out->e = xrealloc(out->e, st_mult(out->n + 1, sizeof(*out->e)));
            out->e[out->n++] = e;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

void httpc_allow_free(struct httpc_allow *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->e[i].name);
    free(a->e);
    memset(a, 0, sizeof(*a));
}

bool httpc_allow_host(const struct httpc_allow *a, const char *host)
{
    if (!a || !host)
        return false;
    size_t hl = strlen(host);
    if (hl && host[hl - 1] == '.') /* "example.com." is example.com */
        hl--;
    for (size_t i = 0; i < a->n; i++) {
        const struct httpc_allow_entry *e = &a->e[i];
        if (e->type == ALLOW_HOST) {
            if (strlen(e->name) == hl && strncasecmp(e->name, host, hl) == 0)
                return true;
        } else if (e->type == ALLOW_SUFFIX) {
            size_t sl = strlen(e->name);
            if (hl > sl && strncasecmp(host + hl - sl, e->name, sl) == 0)
                return true;
        }
    }
    return false;
}

bool httpc_allow_addr(const struct httpc_allow *a, const struct sockaddr *sa)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t v4[4], v6[16];
    bool is4 = false, is6 = false;
    if (!a)
        return false;
    if (sa->sa_family == AF_INET) {
        memcpy(v4, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        is4 = true;
    } else if (sa->sa_family == AF_INET6) {
        memcpy(v6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        is6 = true;
        if (memcmp(v6, mapped, 12) == 0) {
            memcpy(v4, v6 + 12, 4);
            is4 = true;
            is6 = false;
        }
    }
    for (size_t i = 0; i < a->n; i++) {
        const struct httpc_allow_entry *e = &a->e[i];
        if (e->type == ALLOW_NET4 && is4 && in4(be32(v4), be32(e->addr), e->prefix))
            return true;
        if (e->type == ALLOW_NET6 && is6 && in6(v6, e->addr, e->prefix))
            return true;
    }
    return false;
}

/* Parsed lists by spec text. A process has one spec (its configuration);
 * tests may use several. Entries are never freed: a request on another
 * thread may still be reading one. */
struct allow_cache {
    char *spec;
    struct httpc_allow allow;
    struct allow_cache *next;
};
static pthread_mutex_t g_allow_mu = PTHREAD_MUTEX_INITIALIZER;
static struct allow_cache *g_allow;

const struct httpc_allow *httpc_allow_outbound(void)
{
    const char *spec = delivery_config()->outbound_allow ? delivery_config()->outbound_allow : "";
    struct allow_cache *c;
    pthread_mutex_lock(&g_allow_mu);
    for (c = g_allow; c && strcmp(c->spec, spec) != 0; c = c->next) {
    }
    if (!c) {
        struct buf err = BUF_INIT(BUF_MAX_SMALL);
        c = xcalloc(1, sizeof(*c));
        if (httpc_allow_parse(spec, &c->allow, &err) != 0) /* validated at start: cannot happen */
            FATAL("TEMEL_OUTBOUND_ALLOW: %s", buf_cstr(&err));
        buf_free(&err);
        c->spec = xstrdup(spec);
        c->next = g_allow;
        g_allow = c;
    }
    pthread_mutex_unlock(&g_allow_mu);
    return &c->allow;
}

/* ------------------------------------------------------------- transfer */

struct xfer {
    const struct httpc_request *rq;
    struct httpc_response *rs;
    bool host_allowed; /* the URL's host is allow-listed by name */
    bool refused;      /* on_opensocket refused an address */
    bool too_big;
};

static curl_socket_t on_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct xfer *x = clientp;
    const char *why = NULL;
    if (purpose != CURLSOCKTYPE_IPCXN)
        why = "unsupported socket";
    else if (a->family != AF_INET && a->family != AF_INET6)
        why = "unsupported family";
    else if (!x->host_allowed && !httpc_allow_addr(x->rq->allow, &a->addr))
        why = httpc_addr_blocked(&a->addr);
    if (why) {
        char ip[INET6_ADDRSTRLEN] = "?";
        if (a->family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&a->addr)->sin_addr, ip, sizeof(ip));
        else if (a->family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)&a->addr)->sin6_addr, ip, sizeof(ip));
        x->refused = true;
        (void)snprintf(x->rs->refused_reason, sizeof(x->rs->refused_reason), "%s %s", why, ip);
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    if (x->rs->body.len + len > x->rq->body_max) {
        x->too_big = true;
        return 0; /* abort: CURLE_WRITE_ERROR */
    }
    if (buf_append(&x->rs->body, p, len) != BUF_OK) {
        x->too_big = true;
        return 0;
    }
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) /* a new status line: keep only the last answer's headers */
        buf_reset(&x->rs->headers);
    (void)buf_append(&x->rs->headers, p, len); /* past the cap: sticky error, lookups see what fit */
    return len;
}

static bool has_crlf(const char *s) { return s && (strchr(s, '\r') || strchr(s, '\n')); }

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Log target: scheme://host[:port] only (never userinfo, path or query). */
static void log_result(const struct httpc_request *rq, const char *host, int rc, long status, int attempts,
                       int64_t ms)
{
    struct log_line l;
    if (!log_begin(&l, rc == HTTPC_OK && status < 500 ? LOG_INFO : LOG_WARN, "outbound http"))
        return;
    log_cstr(&l, "method", rq->method);
    log_cstr(&l, "host", host);
    if (rc == HTTPC_OK)
        log_int(&l, "status", status);
    else
        log_cstr(&l, "error", httpc_strerror(rc));
    log_int(&l, "attempts", attempts);
    log_int(&l, "ms", ms);
    log_end(&l);
}

void httpc_response_free(struct httpc_response *rs)
{
    buf_free(&rs->body);
    buf_free(&rs->headers);
}

str_t httpc_response_header(const struct httpc_response *rs, const char *name)
{
    str_t h = buf_str(&rs->headers);
    size_t nl = strlen(name);
    const char *p = h.p, *end = h.p + h.len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        if ((size_t)(le - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            return str_make(v, (size_t)(ve - v));
        }
        p = eol ? eol + 1 : end;
    }
    return STR_NULL;
}

enum job_result httpc_job_result(int rc, long status)
{
    switch (rc) {
    case HTTPC_OK: break;
    case HTTPC_EREFUSED:
    case HTTPC_EBADURL: return JOB_FAIL;
    case HTTPC_ETOOBIG: return JOB_FAIL;
    default: return JOB_RETRY;
    }
    if (status >= 200 && status < 300)
        return JOB_OK;
    if (status == 408 || status == 425 || status == 429 || status >= 500)
        return JOB_RETRY;
    return JOB_FAIL;
}

/* Check the URL before anything is resolved: scheme, no userinfo; fills the
 * host (lower-case, brackets removed) and "scheme://host[:port]" for logs. */
static int check_url(const char *url, char **host_out, struct buf *target, struct buf *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *port = NULL;
    int rc = HTTPC_EBADURL;
    if (!url || has_crlf(url) || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        (void)buf_puts(err, "malformed URL");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        (void)buf_puts(err, "only http and https URLs are allowed");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        (void)buf_puts(err, "credentials in the URL are not allowed (use user/password)");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
        (void)buf_puts(err, "URL without a host");
        goto out;
    }
    (void)curl_url_get(u, CURLUPART_PORT, &port, 0);
    (void)buf_printf(target, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
    {
        char *h = host;
        size_t n = strlen(h);
        if (n >= 2 && h[0] == '[' && h[n - 1] == ']')
            *host_out = xstrndup(h + 1, n - 2);
        else
            *host_out = xstrdup(h);
        lower(*host_out);
    }
    rc = HTTPC_OK;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

static int64_t ms_left(int64_t deadline)
{
    return deadline ? deadline - time_mono_ms() : INT64_MAX;
}

/* One attempt. Returns HTTPC_* and sets *retryable. */
static int attempt(struct xfer *x, const char *host, struct curl_slist *hdrs, int64_t deadline, bool *retryable,
                   struct buf *err)
{
    const struct httpc_request *rq = x->rq;
    struct httpc_response *rs = x->rs;
    CURL *c = curl_easy_init();
    char ebuf[CURL_ERROR_SIZE] = "";
    int rc;
    int64_t left = ms_left(deadline);
    long total = rq->timeout_ms > 0 ? rq->timeout_ms : 15000;
    long conn = rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : 5000;
    *retryable = false;
    if (!c) {
        (void)buf_puts(err, "curl_easy_init failed");
        return HTTPC_EIO;
    }
    if (left < total)
        total = left < 1 ? 1 : (long)left;
    if (conn > total)
        conn = total;
    buf_reset(&rs->body);
    buf_reset(&rs->headers);
    rs->status = 0;
    x->too_big = false;
    x->host_allowed = httpc_allow_host(rq->allow, host);

    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* ignore http_proxy & co. */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, conn);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)rq->body_max);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "temel/" TEMEL_VERSION);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* the cap applies to the decoded body */
    if (hdrs)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (rq->user) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, rq->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, rq->password ? rq->password : "");
    }
    if (!strcmp(rq->method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(rq->method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
    if (rq->body.p) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body.len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body.p);
    }

    CURLcode cc = curl_easy_perform(c);
    rs->attempts++;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
    if (cc == CURLE_OK) {
        rc = HTTPC_OK;
        *retryable = rq->retry_5xx && rs->status >= 500;
    } else if (x->refused && (cc == CURLE_COULDNT_CONNECT || cc == CURLE_OPERATION_TIMEDOUT)) {
        rc = HTTPC_EREFUSED;
        (void)buf_printf(err, "refused: %s", rs->refused_reason);
    } else if (x->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        rc = HTTPC_ETOOBIG;
        (void)buf_printf(err, "response body over %zu bytes", rq->body_max);
    } else if (cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_CONNECT) {
        rc = HTTPC_ECONNECT;
        *retryable = true;
        (void)buf_printf(err, "%s", curl_easy_strerror(cc));
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        rc = HTTPC_ETIMEOUT;
        /* a connect-phase timeout sent nothing: safe to try again */
        curl_off_t connect_us = 0;
        curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connect_us);
        *retryable = connect_us == 0;
        (void)buf_puts(err, "timed out");
    } else if (cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT) {
        rc = HTTPC_EBADURL;
        (void)buf_printf(err, "%s", curl_easy_strerror(cc));
    } else {
        rc = HTTPC_EIO;
        (void)buf_printf(err, "%s", curl_easy_strerror(cc));
    }
    curl_easy_cleanup(c);
    return rc;
}

int httpc_add_header(struct httpc_request *rq, const char *name, const char *value)
{
    if (rq->nheaders < 0 || rq->nheaders >= HTTPC_MAX_REQ_HEADERS)
        return -1;
    rq->headers[rq->nheaders++] = (struct httpc_header){name, value};
    return 0;
}

int httpc_perform(const struct httpc_request *rq_in, struct httpc_response *rs, struct buf *err)
{
    struct httpc_request rq = *rq_in;
    struct curl_slist *hdrs = NULL;
    struct buf target = BUF_INIT(600), aerr = BUF_INIT(512);
    char *host = NULL;
    int rc;
    int64_t t0 = time_mono_ms();

    memset(rs, 0, sizeof(*rs));
    rs->body = BUF_INIT(rq.body_max ? rq.body_max + 1 : HTTPC_BODY_MAX_DEFAULT + 1);
    rs->headers = BUF_INIT(HTTPC_HEADERS_MAX);
    httpc_global_init();
    if (!rq.method)
        rq.method = "GET";
    if (!rq.body_max)
        rq.body_max = HTTPC_BODY_MAX_DEFAULT;
    if (rq.max_retries < 0)
        rq.max_retries = 0;

    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
    bool mok = false;
    for (size_t i = 0; i < ARRAY_LEN(methods); i++)
        mok |= !strcmp(rq.method, methods[i]);
    if (!mok || rq.nheaders < 0 || rq.nheaders > HTTPC_MAX_REQ_HEADERS || has_crlf(rq.user) ||
        has_crlf(rq.password)) {
        (void)buf_puts(err, "bad method, header count or credentials");
        rc = HTTPC_EBADURL;
        goto out;
    }
    if ((rc = check_url(rq.url, &host, &target, err)) != HTTPC_OK)
        goto out;
    for (int i = 0; i < rq.nheaders; i++) {
        const struct httpc_header *h = &rq.headers[i];
        struct buf line = BUF_INIT(8192);
        if (!h->name || !h->value || !*h->name || has_crlf(h->name) || has_crlf(h->value) ||
            strchr(h->name, ':')) {
            (void)buf_puts(err, "bad request header");
            rc = HTTPC_EBADURL;
            goto out;
        }
        (void)buf_printf(&line, "%s: %s", h->name, h->value);
        if (!buf_ok(&line)) {
            buf_free(&line);
            (void)buf_puts(err, "request header too long");
            rc = HTTPC_EBADURL;
            goto out;
        }
        hdrs = curl_slist_append(hdrs, buf_cstr(&line));
        sodium_memzero(line.ptr, line.len); /* may be an Authorization value */
        buf_free(&line);
        if (!hdrs)
            FATAL("out of memory");
    }
    if (rq.body.p) /* no Expect: 100-continue round trip */
        hdrs = curl_slist_append(hdrs, "Expect:");

    struct xfer x = {.rq = &rq, .rs = rs};
    for (int i = 0;; i++) {
        bool retryable;
        if (rq.deadline_mono_ms && ms_left(rq.deadline_mono_ms) <= 0) {
            if (i == 0) {
                (void)buf_puts(err, "deadline passed before the request");
                rc = HTTPC_ETIMEOUT;
            }
            break;
        }
        buf_reset(&aerr);
        x.refused = false;
        rc = attempt(&x, host, hdrs, rq.deadline_mono_ms, &retryable, &aerr);
        if (!retryable || i >= rq.max_retries)
            break;
        /* backoff 250 ms · 2^i, ±50 % jitter, never past the deadline */
        int64_t base = 250LL << (i < 6 ? i : 6);
        int64_t wait = base / 2 + (int64_t)randombytes_uniform((uint32_t)base);
        int64_t left = ms_left(rq.deadline_mono_ms);
        if (left != INT64_MAX && wait + 100 >= left)
            break; /* no time for another useful try */
        sleep_ms(wait);
    }
    if (rc != HTTPC_OK && !err->len)
        (void)buf_put(err, buf_str(&aerr));
out:
    if (host)
        log_result(&rq, buf_cstr(&target), rc, rs->status, rs->attempts, time_mono_ms() - t0);
    curl_slist_free_all(hdrs);
    free(host);
    buf_free(&target);
    buf_free(&aerr);
    return rc;
}
