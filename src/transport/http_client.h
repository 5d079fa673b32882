/*
 * http_client.h — outbound HTTP for jobs, on libcurl (ARCHITECTURE §1, §6).
 *
 * Only job handlers call this (never an event-loop thread): it blocks.
 *
 *   struct httpc_request rq = HTTPC_REQUEST_INIT;
 *   rq.method = "POST"; rq.url = url; rq.body = STRLIT("a=1");
 *   rq.deadline_mono_ms = j->deadline_mono_ms;
 *   rq.allow = httpc_allow_outbound();
 *   struct httpc_response rs;
 *   int rc = httpc_perform(&rq, &rs, &err);   // err: short message, never a secret
 *   ... rs.status, rs.body ...
 *   httpc_response_free(&rs);
 *
 * Rules enforced here, whatever the caller asks:
 *  - Schemes: http and https only (CURLOPT_PROTOCOLS_STR), checked before
 *    anything is resolved.
 *  - SSRF: every address libcurl is about to connect to — after DNS
 *    resolution, for each candidate of happy eyeballs — is classified in
 *    CURLOPT_OPENSOCKETFUNCTION; private, loopback, link-local (incl.
 *    169.254.169.254), CGNAT, unspecified, multicast, broadcast, reserved and
 *    the IPv4-mapped / NAT64 / 6to4 forms of them are refused without a
 *    socket being opened, unless the allow-list (TEMEL_OUTBOUND_ALLOW) lists
 *    the request's host, the address, or a CIDR holding it.
 *  - Redirects are not followed: a 3xx is returned to the caller as is
 *    (Location in rs.headers). A redirect can therefore never reach a host
 *    the check did not see.
 *  - Proxies from the environment (http_proxy …) are ignored.
 *  - TLS peer and host verification are always on.
 *  - The body is capped (body_max); past it the transfer is aborted.
 *  - Timeouts: connect_timeout_ms and timeout_ms per attempt, and never past
 *    deadline_mono_ms (the job's deadline) in total, retries included.
 *  - Retries (max_retries) with exponential backoff + jitter on connect /
 *    resolve errors (nothing was sent) and on 5xx answers when retry_5xx.
 *  - Nothing secret is logged: the log line has method, scheme://host[:port],
 *    status and time — never userinfo, path, query, headers or bodies.
 *
 * Return convention: HTTPC_OK when an HTTP answer arrived (any status; look
 * at rs.status), a negative enum httpc_rc otherwise. rs is always
 * initialised and must be freed with httpc_response_free().
 */
#ifndef TEMEL_HTTP_CLIENT_H
#define TEMEL_HTTP_CLIENT_H

#include <sys/socket.h>

#include "core/buf.h"
#include "core/config.h"
#include "jobs/jobs.h"

#define HTTPC_BODY_MAX_DEFAULT (1u << 20)  /* 1 MiB */
#define HTTPC_HEADERS_MAX (32u << 10)      /* response header block */
#define HTTPC_MAX_REQ_HEADERS 16

enum httpc_rc {
    HTTPC_OK = 0,
    HTTPC_EREFUSED = -1, /* destination refused by the SSRF rules: nothing was connected */
    HTTPC_EBADURL = -2,  /* unparsable URL, not http/https, or bad request fields */
    HTTPC_ECONNECT = -3, /* resolve/connect failed (after retries) */
    HTTPC_ETIMEOUT = -4, /* timeout_ms or the deadline passed */
    HTTPC_ETOOBIG = -5,  /* response body larger than body_max */
    HTTPC_EIO = -6,      /* anything else: TLS failure, reset, protocol error */
};
const char *httpc_strerror(int rc);

/* ---- allow-list (TEMEL_OUTBOUND_ALLOW) ----
 * Comma-separated entries, spaces ignored:
 *   10.1.2.3          one address (IPv4 or IPv6, e.g. ::1)
 *   10.0.0.0/8        a CIDR (IPv4 or IPv6, e.g. fd00::/8)
 *   hooks.internal    a host name: requests to exactly this host (as written in
 *                     the URL, case-insensitive) may connect to any address it resolves to
 *   *.corp.example    any host name ending in .corp.example (not corp.example itself)
 * An IPv4-mapped IPv6 address is matched as its IPv4 address. */
struct httpc_allow_entry {
    enum { ALLOW_NET4, ALLOW_NET6, ALLOW_HOST, ALLOW_SUFFIX } type;
    uint8_t addr[16];
    int prefix;  /* bits */
    char *name;  /* HOST: lower-case host; SUFFIX: ".corp.example" */
};
struct httpc_allow {
    struct httpc_allow_entry *e;
    size_t n;
};
/* Parse spec (NULL or "" = empty list). 0, or -1 with the offending entry in err. */
int httpc_allow_parse(const char *spec, struct httpc_allow *out, struct buf *err) WARN_UNUSED;
void httpc_allow_free(struct httpc_allow *a);
bool httpc_allow_host(const struct httpc_allow *a, const char *host);
bool httpc_allow_addr(const struct httpc_allow *a, const struct sockaddr *sa);
/* The process-wide list parsed from TEMEL_OUTBOUND_ALLOW (delivery_config();
 * parsed once per value, validated at start). Never NULL. */
const struct httpc_allow *httpc_allow_outbound(void);

/* ---- address classification ----
 * NULL when the address is public, else a short reason ("loopback",
 * "private", "link-local", ...). Handles AF_INET and AF_INET6 (mapped,
 * IPv4-compatible, NAT64 64:ff9b::/96 and 6to4 2002::/16 are classified by
 * the IPv4 address they carry). Other families are "unsupported family". */
const char *httpc_addr_blocked(const struct sockaddr *sa);

/* ---- requests ---- */
struct httpc_header {
    const char *name, *value; /* no CR/LF (refused with HTTPC_EBADURL) */
};

struct httpc_request {
    const char *method; /* "GET" (default), "POST", "PUT", "PATCH", "DELETE", "HEAD" */
    const char *url;    /* http:// or https://; userinfo is refused — use user/password */
    struct httpc_header headers[HTTPC_MAX_REQ_HEADERS];
    int nheaders;
    str_t body;               /* sent when body.p != NULL */
    const char *user, *password; /* HTTP basic auth when user != NULL (never logged) */
    int connect_timeout_ms;   /* per attempt; default 5000 */
    int timeout_ms;           /* per attempt, whole transfer; default 15000 */
    int64_t deadline_mono_ms; /* hard end for everything incl. retries; 0 = none */
    size_t body_max;          /* default HTTPC_BODY_MAX_DEFAULT */
    int max_retries;          /* extra attempts; default 2 (HTTPC_REQUEST_INIT), 0 = once */
    bool retry_5xx;           /* default true */
    const struct httpc_allow *allow; /* NULL = nothing allowed beyond public addresses */
};
#define HTTPC_REQUEST_INIT                                                                                             \
    ((struct httpc_request){.method = "GET", .connect_timeout_ms = 5000, .timeout_ms = 15000,                        \
                            .body_max = HTTPC_BODY_MAX_DEFAULT, .max_retries = 2, .retry_5xx = true})

struct httpc_response {
    long status;        /* 0 when no answer */
    struct buf body;    /* capped at body_max */
    struct buf headers; /* raw header lines of the final answer ("Name: value\r\n"...) */
    int attempts;       /* how many tries were made */
    char refused_reason[48]; /* HTTPC_EREFUSED: e.g. "loopback 127.0.0.1" (no secret) */
};
/* The one adder for rq->headers (name and value must outlive the call to
 * httpc_perform): 0, or -1 with nothing added when all
 * HTTPC_MAX_REQ_HEADERS slots are in use. */
int httpc_add_header(struct httpc_request *rq, const char *name, const char *value) WARN_UNUSED;

void httpc_response_free(struct httpc_response *rs);
/* A response header's value (first match, case-insensitive name), or STR_NULL. */
str_t httpc_response_header(const struct httpc_response *rs, const char *name);

int httpc_perform(const struct httpc_request *rq, struct httpc_response *rs, struct buf *err) WARN_UNUSED;

/* The usual job outcome for a client result: refused/bad URL → JOB_FAIL;
 * connect/timeout/IO → JOB_RETRY; 2xx → JOB_OK; 408, 425, 429 and 5xx →
 * JOB_RETRY; other 4xx (and 1xx/3xx) → JOB_FAIL. */
enum job_result httpc_job_result(int rc, long status);

/* curl_global_init once (thread-safe); every entry point calls it. */
void httpc_global_init(void);

#endif
