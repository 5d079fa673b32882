/*
 * mail.c — templates, MIME building and the mail transports (see mail.h).
 *
 * The job payload is {"to", "template", "vars"}: the message is rendered on
 * the runner thread at send time, with a Message-ID derived from the job id
 * so a retried job sends the same message (and the file transport rewrites
 * the same <job-id>.eml instead of adding a second one).
 */
#include "transport/mail.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sodium.h>

#include "core/json.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "transport/delivery.h"
#include "transport/http_client.h"

#include "core/banned.h"

/* ------------------------------------------------------------ templates */

struct tmpl {
    const char *name, *subject, *text, *html;
};
static pthread_mutex_t g_tmpl_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tmpl *g_tmpl;
static size_t g_ntmpl;

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
}

/* Parse a placeholder at p (pointing at "{{"). Sets name span, whether it is
 * raw ({{{ }}}), and returns the pointer after it, or NULL if malformed. */
static const char *parse_placeholder(const char *p, str_t *name, bool *raw)
{
    *raw = p[2] == '{';
    p += *raw ? 3 : 2;
    while (*p == ' ')
        p++;
    const char *s = p;
    while (name_char(*p))
        p++;
    if (p == s)
        return NULL;
    *name = str_make(s, (size_t)(p - s));
    while (*p == ' ')
        p++;
    if (*raw)
        return strncmp(p, "}}}", 3) == 0 ? p + 3 : NULL;
    return strncmp(p, "}}", 2) == 0 ? p + 2 : NULL;
}

static bool template_valid(const char *t)
{
    for (const char *p = t; (p = strstr(p, "{{"));) {
        str_t n;
        bool raw;
        if (!(p = parse_placeholder(p, &n, &raw)))
            return false;
    }
    return true;
}

void mail_template_register(const char *name, const char *subject, const char *text, const char *html)
{
    if (!name || !*name || !subject || !text)
        BUG("mail_template_register: name, subject and text are required");
    if (!template_valid(subject) || !template_valid(text) || (html && !template_valid(html)))
        FATAL("mail template '%s': malformed {{placeholder}}", name);
    pthread_mutex_lock(&g_tmpl_mu);
    size_t i;
    for (i = 0; i < g_ntmpl; i++)
        if (!strcmp(g_tmpl[i].name, name))
            break;
    if (i == g_ntmpl)
        g_tmpl = xrealloc(g_tmpl, st_mult(++g_ntmpl, sizeof(*g_tmpl)));
    g_tmpl[i] = (struct tmpl){name, subject, text, html};
    pthread_mutex_unlock(&g_tmpl_mu);
}

static bool template_get(const char *name, struct tmpl *out)
{
    bool found = false;
    pthread_mutex_lock(&g_tmpl_mu);
    for (size_t i = 0; i < g_ntmpl; i++)
        if (!strcmp(g_tmpl[i].name, name)) {
            *out = g_tmpl[i];
            found = true;
            break;
        }
    pthread_mutex_unlock(&g_tmpl_mu);
    return found;
}

static void html_escape(struct buf *out, str_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        switch (s.p[i]) {
        case '&': (void)buf_puts(out, "&amp;"); break;
        case '<': (void)buf_puts(out, "&lt;"); break;
        case '>': (void)buf_puts(out, "&gt;"); break;
        case '"': (void)buf_puts(out, "&quot;"); break;
        case '\'': (void)buf_puts(out, "&#39;"); break;
        default: (void)buf_putc(out, s.p[i]);
        }
    }
}

int mail_render(const char *t, const json_t *vars, bool html, struct buf *out, struct buf *err)
{
    const char *p = t;
    for (;;) {
        const char *o = strstr(p, "{{");
        if (!o) {
            (void)buf_puts(out, p);
            break;
        }
        (void)buf_append(out, p, (size_t)(o - p));
        str_t name;
        bool raw;
        const char *after = parse_placeholder(o, &name, &raw);
        if (!after) {
            (void)buf_puts(err, "malformed placeholder");
            return -1;
        }
        char key[128];
        if (name.len >= sizeof(key)) {
            (void)buf_puts(err, "placeholder name too long");
            return -1;
        }
        memcpy(key, name.p, name.len);
        key[name.len] = '\0';
        const json_t *v = vars && json_is_object(vars) ? json_object_get(vars, key) : NULL;
        char num[64];
        str_t val;
        if (json_is_string(v)) {
            val = str_make(json_string_value(v), json_string_length(v));
            if (memchr(val.p, '\0', val.len)) {
                (void)buf_printf(err, "variable '%s' contains NUL", key);
                return -1;
            }
        } else if (json_is_integer(v)) {
            val = str_make(num, (size_t)snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v)));
        } else if (json_is_real(v)) {
            val = str_make(num, (size_t)snprintf(num, sizeof(num), "%.15g", json_real_value(v)));
        } else if (json_is_boolean(v)) {
            val = json_is_true(v) ? STRLIT("true") : STRLIT("false");
        } else {
            (void)buf_printf(err, "variable '%s' %s", key, v ? "must be a string, number or boolean" : "is missing");
            return -1;
        }
        if (html && !raw)
            html_escape(out, val);
        else
            (void)buf_put(out, val);
        p = after;
    }
    if (!buf_ok(out)) {
        (void)buf_puts(err, "rendered template too large");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ addresses */

static bool atext(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

bool mail_addr_ok(const char *a)
{
    if (!a)
        return false;
    size_t n = strlen(a);
    const char *at = strchr(a, '@');
    if (n < 3 || n > MAIL_MAX_ADDR || !at || strchr(at + 1, '@'))
        return false;
    size_t ll = (size_t)(at - a);
    if (ll == 0 || ll > 64 || a[0] == '.' || at[-1] == '.')
        return false;
    for (const char *p = a; p < at; p++)
        if (!(atext(*p) || (*p == '.' && p[1] != '.')))
            return false;
    const char *d = at + 1;
    size_t dl = strlen(d), label = 0;
    if (dl == 0 || d[0] == '.' || d[0] == '-' || d[dl - 1] == '.' || d[dl - 1] == '-')
        return false;
    for (const char *p = d; *p; p++) {
        if (*p == '.') {
            if (label == 0 || p[-1] == '-' || p[1] == '-')
                return false;
            label = 0;
        } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

int mail_parse_from(const char *from, char **name, char **addr)
{
    *name = *addr = NULL;
    if (!from || strchr(from, '\r') || strchr(from, '\n') || !utf8_valid(str_c(from)))
        return -1;
    const char *lt = strrchr(from, '<');
    if (!lt) {
        if (!mail_addr_ok(from))
            return -1;
        *addr = xstrdup(from);
        return 0;
    }
    size_t al = strlen(lt + 1);
    if (al < 2 || lt[al] != '>')
        return -1;
    char *a = xstrndup(lt + 1, al - 1);
    if (!mail_addr_ok(a)) {
        free(a);
        return -1;
    }
    const char *ns = from, *ne = lt;
    while (ns < ne && *ns == ' ')
        ns++;
    while (ne > ns && ne[-1] == ' ')
        ne--;
    if (ne - ns >= 2 && *ns == '"' && ne[-1] == '"')
        ns++, ne--;
    for (const char *p = ns; p < ne; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\') {
            free(a);
            return -1;
        }
    *name = ne > ns ? xstrndup(ns, (size_t)(ne - ns)) : NULL;
    *addr = a;
    return 0;
}

/* ------------------------------------------------------------- encoding */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64(struct buf *out, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        (void)buf_putc(out, b64chars[(v >> 18) & 63]);
        (void)buf_putc(out, b64chars[(v >> 12) & 63]);
        (void)buf_putc(out, i + 1 < n ? b64chars[(v >> 6) & 63] : '=');
        (void)buf_putc(out, i + 2 < n ? b64chars[v & 63] : '=');
    }
}

int mail_header_encode(struct buf *out, const char *s, size_t name_len)
{
    size_t n = strlen(s);
    bool plain = true;
    if (!utf8_valid(str_make(s, n)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return -1; /* CR, LF, TAB and other controls: refused, never cleaned */
        if (c >= 0x80)
            plain = false;
    }
    if (plain && name_len + 2 + n <= 78 && !strstr(s, "=?"))
        return buf_append(out, s, n);
    /* encoded-words of at most 75 chars: "=?UTF-8?B?" + base64 + "?=" (12 + 4k) */
    size_t room = name_len + 2 + 12 < 78 ? (78 - name_len - 2 - 12) / 4 * 3 : 3;
    size_t i = 0;
    bool first = true;
    while (i < n) {
        size_t take = n - i < room ? n - i : room;
        /* never split a UTF-8 sequence between two words */
        while (take < n - i && take > 0 && ((unsigned char)s[i + take] & 0xc0) == 0x80)
            take--;
        if (take == 0)
            take = 1; /* cannot happen with room >= 3 */
        if (!first)
            (void)buf_puts(out, "\r\n ");
        (void)buf_puts(out, "=?UTF-8?B?");
        b64(out, (const unsigned char *)s + i, take);
        (void)buf_puts(out, "?=");
        i += take;
        first = false;
        room = 45; /* continuation lines: " " + 72 chars */
    }
    return buf_ok(out) ? 0 : -1;
}

void mail_qp_encode(struct buf *out, str_t s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        char tok[4];
        size_t tl;
        if (c == '\n' || (c == '\r' && i + 1 < s.len && s.p[i + 1] == '\n')) {
            if (c == '\r')
                i++;
            (void)buf_puts(out, "\r\n");
            col = 0;
            continue;
        }
        bool at_eol = i + 1 == s.len || s.p[i + 1] == '\n' ||
                      (s.p[i + 1] == '\r' && i + 2 < s.len && s.p[i + 2] == '\n');
        if ((c >= 33 && c <= 126 && c != '=' && !(c == '.' && col == 0)) || ((c == ' ' || c == '\t') && !at_eol)) {
            tok[0] = (char)c;
            tl = 1;
        } else {
            tok[0] = '=';
            tok[1] = hex[c >> 4];
            tok[2] = hex[c & 15];
            tl = 3;
        }
        if (col + tl > 75) { /* soft line break keeps lines <= 76 */
            (void)buf_puts(out, "=\r\n");
            col = 0;
            if (tl == 1 && c == '.') { /* a dot now starts a line */
                tok[0] = '=';
                tok[1] = hex[c >> 4];
                tok[2] = hex[c & 15];
                tl = 3;
            }
        }
        (void)buf_append(out, tok, tl);
        col += tl;
    }
}

/* ---------------------------------------------------------------- build */

static void put_date(struct buf *out, int64_t ms)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    (void)buf_printf(out, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                     tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static bool printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* "Name: value\r\n" lines: a name of visible ASCII without ':', then ": ",
 * then printable ASCII; every line ends in CRLF and nothing else breaks one. */
static bool extra_headers_ok(const char *h)
{
    while (*h) {
        const char *eol = strstr(h, "\r\n"), *colon = strchr(h, ':');
        if (!eol || !colon || colon == h || colon > eol || colon[1] != ' ')
            return false;
        for (const char *p = h; p < eol; p++) {
            unsigned char c = (unsigned char)*p;
            if (c < 0x20 || c >= 0x7f || (p < colon && c == ' '))
                return false;
        }
        h = eol + 2;
    }
    return true;
}

static void put_part(struct buf *out, const char *subtype, const char *body)
{
    (void)buf_printf(out, "Content-Type: text/%s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
                     subtype);
    mail_qp_encode(out, str_c(body));
    (void)buf_puts(out, "\r\n");
}

int mail_build(const struct mail_message *m, struct buf *out, struct buf *err)
{
    char *fname = NULL, *faddr = NULL;
    char mid[UUID_STR_LEN + 1];
    int rc = -1;
    if (mail_parse_from(m->from, &fname, &faddr)) {
        (void)buf_puts(err, "invalid From address");
        goto out;
    }
    if (!mail_addr_ok(m->to)) {
        (void)buf_puts(err, "invalid To address");
        goto out;
    }
    if (!utf8_valid(str_c(m->text)) || (m->html && !utf8_valid(str_c(m->html)))) {
        (void)buf_puts(err, "body is not valid UTF-8");
        goto out;
    }
    /* From */
    (void)buf_puts(out, "From: ");
    if (fname) {
        if (printable_ascii(fname)) {
            (void)buf_printf(out, "\"%s\"", fname); /* parse_from refused '"' and '\\' */
            (void)buf_printf(out, " <%s>\r\n", faddr);
        } else if (mail_header_encode(out, fname, 4)) {
            (void)buf_puts(err, "invalid From name");
            goto out;
        } else {
            (void)buf_printf(out, "\r\n <%s>\r\n", faddr); /* folded: the words may fill the line */
        }
    } else {
        (void)buf_printf(out, "%s\r\n", faddr);
    }
    (void)buf_printf(out, "To: %s\r\nSubject: ", m->to);
    if (mail_header_encode(out, m->subject, 7)) {
        (void)buf_puts(err, "subject contains control characters or invalid UTF-8");
        goto out;
    }
    (void)buf_puts(out, "\r\nDate: ");
    put_date(out, m->date_ms ? m->date_ms : time_now_ms());
    if (m->message_id_local && uuid_valid(str_c(m->message_id_local))) {
        memcpy(mid, m->message_id_local, UUID_STR_LEN + 1);
    } else {
        uuid7_str(mid);
    }
    (void)buf_printf(out, "\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n", mid, strchr(faddr, '@') + 1);
    if (m->extra_headers) {
        if (!extra_headers_ok(m->extra_headers)) {
            (void)buf_puts(err, "extra headers must be 'Name: value' lines in printable ASCII");
            goto out;
        }
        (void)buf_puts(out, m->extra_headers);
    }
    if (m->html) {
        /* "=_" can never occur in quoted-printable text ('=' is always =3D or
         * a soft break "=\r\n"), so the boundary cannot collide with a body */
        unsigned char rnd[12];
        char bnd[64];
        randombytes_buf(rnd, sizeof(rnd));
        int bl = snprintf(bnd, sizeof(bnd), "=_temel_");
        for (size_t i = 0; i < sizeof(rnd); i++)
            bl += snprintf(bnd + bl, sizeof(bnd) - (size_t)bl, "%02x", rnd[i]);
        (void)buf_printf(out, "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n\r\n", bnd);
        (void)buf_puts(out, "This is a multi-part message in MIME format.\r\n");
        (void)buf_printf(out, "--%s\r\n", bnd);
        put_part(out, "plain", m->text);
        (void)buf_printf(out, "--%s\r\n", bnd);
        put_part(out, "html", m->html);
        (void)buf_printf(out, "--%s--\r\n", bnd);
    } else {
        put_part(out, "plain", m->text);
    }
    if (!buf_ok(out)) {
        (void)buf_puts(err, "message too large");
        goto out;
    }
    rc = 0;
out:
    free(fname);
    free(faddr);
    return rc;
}

/* ------------------------------------------------------------ transport */

struct mail_session {
    char *url;                 /* as configured */
    char *user, *pass, *bare;  /* smtp: credentials split off the URL */
    char *dir;                 /* file transport: the directory, else NULL */
    CURL *c;                   /* smtp: one handle, its connection reused */
    bool bad_url;
};

struct reader {
    str_t s;
    size_t off;
    int (*commit)(void *ud);
    void *ud;
    bool abandoned;
};

/* The commit point: called by libcurl for more DATA; once everything has been
 * handed over, the next call is the one after which libcurl sends the
 * end-of-data mark — commit first. */
static size_t on_read(char *dst, size_t size, size_t n, void *ud)
{
    struct reader *r = ud;
    size_t want = size * n, left = r->s.len - r->off;
    if (left == 0 && r->commit) {
        int (*commit)(void *) = r->commit;
        r->commit = NULL;
        if (commit(r->ud)) {
            r->abandoned = true;
            return CURL_READFUNC_ABORT;
        }
    }
    if (want > left)
        want = left;
    memcpy(dst, r->s.p + r->off, want);
    r->off += want;
    return want;
}

struct mail_session *mail_session_open(const char *url)
{
    struct mail_session *s = xcalloc(1, sizeof(*s));
    if (!url)
        url = "file://data/mail";
    s->url = xstrdup(url);
    s->dir = delivery_file_dir(url);
    if (!s->dir && (!strncmp(url, "smtp://", 7) || !strncmp(url, "smtps://", 8))) {
        httpc_global_init();
        if (delivery_split_userinfo(url, &s->user, &s->pass, &s->bare))
            s->bad_url = true;
    } else if (!s->dir) {
        s->bad_url = true;
    }
    return s;
}

void mail_session_close(struct mail_session *s)
{
    if (!s)
        return;
    if (s->c)
        curl_easy_cleanup(s->c); /* QUIT on a kept connection */
    if (s->pass)
        sodium_memzero(s->pass, strlen(s->pass));
    free(s->user);
    free(s->pass);
    free(s->bare);
    free(s->dir);
    free(s->url);
    free(s);
}

static enum job_result file_send(struct mail_session *s, str_t msg, const char *file_id, struct reader *rd,
                                 long *code, struct buf *error)
{
    struct buf name = BUF_INIT(128);
    char id[UUID_STR_LEN + 1];
    if (file_id && uuid_valid(str_c(file_id)))
        memcpy(id, file_id, sizeof(id));
    else
        uuid7_str(id);
    if (rd->commit && rd->commit(rd->ud)) {
        *code = MAIL_SEND_ABANDONED;
        (void)buf_puts(error, "mail: abandoned at the commit point");
        return JOB_FAIL;
    }
    (void)buf_printf(&name, "%s.eml", id);
    int rc = delivery_write_atomic(s->dir, buf_cstr(&name), msg, error);
    buf_free(&name);
    *code = rc ? 0 : 250;
    return rc ? JOB_RETRY : JOB_OK;
}

static enum job_result smtp_send(struct mail_session *s, const char *from, const char *to, struct reader *rd,
                                 int64_t deadline_mono_ms, long *code_out, struct buf *error)
{
    struct curl_slist *rcpt = NULL;
    struct buf envf = BUF_INIT(MAIL_MAX_ADDR + 3), envt = BUF_INIT(MAIL_MAX_ADDR + 3);
    enum job_result res = JOB_RETRY;
    long code = 0;

    (void)buf_printf(&envf, "<%s>", from);
    (void)buf_printf(&envt, "<%s>", to);
    rcpt = curl_slist_append(NULL, buf_cstr(&envt));
    if (!s->c)
        s->c = curl_easy_init();
    CURL *c = s->c;
    if (!c || !rcpt) {
        (void)buf_puts(error, "smtp: out of memory");
        goto out;
    }
    long total = 60000, left = deadline_mono_ms ? (long)(deadline_mono_ms - time_mono_ms()) : total;
    if (left < total)
        total = left;
    if (total <= 0) {
        (void)buf_puts(error, "smtp: deadline passed");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, s->bare);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, total < 10000 ? total : 10000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    /* STARTTLS when offered; with credentials TLS is required so that they
     * never cross the network in clear */
    curl_easy_setopt(c, CURLOPT_USE_SSL, s->user ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
    if (s->user) {
        curl_easy_setopt(c, CURLOPT_USERNAME, s->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, s->pass ? s->pass : "");
    }
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, buf_cstr(&envf));
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    /* no CURLOPT_INFILESIZE: libcurl would stop reading at that size and the
     * read callback would never see the end — the commit point below */
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, rd);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, NULL); /* rcpt is freed below */
    if (cc == CURLE_OK && rd->commit) {
        /* never reached the commit point (cannot happen without a size
         * hint; kept so that a delivered message is always recorded) */
        int (*commit)(void *) = rd->commit;
        rd->commit = NULL;
        (void)commit(rd->ud);
    }
    if (rd->abandoned) {
        res = JOB_FAIL;
        code = MAIL_SEND_ABANDONED;
        (void)buf_puts(error, "smtp: abandoned at the commit point");
    } else if (cc == CURLE_OK) {
        res = JOB_OK;
    } else if (code >= 500 && code <= 599) {
        res = JOB_FAIL; /* permanent: 550 no such user, 552, 554, 535 auth ... */
        (void)buf_printf(error, "smtp: permanent failure %ld (%s)", code, curl_easy_strerror(cc));
    } else if (code >= 400 && code <= 499) {
        res = JOB_RETRY;
        (void)buf_printf(error, "smtp: temporary failure %ld (%s)", code, curl_easy_strerror(cc));
    } else if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_LOGIN_DENIED) {
        res = JOB_FAIL;
        (void)buf_printf(error, "smtp: %s", curl_easy_strerror(cc));
    } else {
        res = JOB_RETRY; /* connect, resolve, timeout, TLS, reset */
        (void)buf_printf(error, "smtp: %s", curl_easy_strerror(cc));
    }
    if (res != JOB_OK) {
        /* the connection's state is unknown after a failure: start afresh */
        curl_easy_cleanup(c);
        s->c = NULL;
    }
out:
    curl_slist_free_all(rcpt);
    buf_free(&envf);
    buf_free(&envt);
    *code_out = code;
    return res;
}

enum job_result mail_session_send(struct mail_session *s, const char *envelope_from, const char *to, str_t message,
                                  const char *file_id, int64_t deadline_mono_ms, int (*commit)(void *ud), void *ud,
                                  long *code, struct buf *error)
{
    long dummy;
    struct reader rd = {message, 0, commit, ud, false};
    if (!code)
        code = &dummy;
    *code = 0;
    if (s->bad_url) {
        (void)buf_puts(error, "TEMEL_MAIL_URL: unsupported scheme or malformed");
        return JOB_FAIL;
    }
    if (s->dir)
        return file_send(s, message, file_id, &rd, code, error);
    return smtp_send(s, envelope_from, to, &rd, deadline_mono_ms, code, error);
}

enum job_result mail_deliver(const char *url, const char *envelope_from, const char *to, str_t message,
                             const char *job_id, int64_t deadline_mono_ms, struct buf *error)
{
    struct mail_session *s = mail_session_open(url);
    enum job_result res = mail_session_send(s, envelope_from, to, message, job_id, deadline_mono_ms, NULL, NULL,
                                            NULL, error);
    mail_session_close(s);
    return res;
}

/* --------------------------------------------------------------- render */

struct rendered {
    struct buf subject, text, html;
    bool has_html;
};

static void rendered_free(struct rendered *r)
{
    buf_free(&r->subject);
    buf_free(&r->text);
    buf_free(&r->html);
}

static int render_all(const char *tname, const json_t *vars, struct rendered *r, struct buf *err)
{
    struct tmpl t;
    r->subject = BUF_INIT(2048);
    r->text = BUF_INIT(MAIL_MAX_MESSAGE / 4);
    r->html = BUF_INIT(MAIL_MAX_MESSAGE / 4);
    r->has_html = false;
    if (vars && !json_is_object(vars)) {
        (void)buf_puts(err, "vars must be an object");
        return -1;
    }
    if (!tname || !template_get(tname, &t)) {
        (void)buf_printf(err, "unknown mail template '%.64s'", tname ? tname : "");
        return -1;
    }
    if (mail_render(t.subject, vars, false, &r->subject, err) || mail_render(t.text, vars, false, &r->text, err) ||
        (t.html && mail_render(t.html, vars, true, &r->html, err)))
        return -1;
    r->has_html = t.html != NULL;
    for (size_t i = 0; i < r->subject.len; i++) {
        unsigned char c = (unsigned char)r->subject.ptr[i];
        if (c < 0x20 || c == 0x7f) {
            (void)buf_puts(err, "subject contains control characters");
            return -1;
        }
    }
    if (!utf8_valid(buf_str(&r->subject))) {
        (void)buf_puts(err, "subject is not valid UTF-8");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- enqueue */

int mail_enqueue_ex(struct db *db, const char *to, const char *template_name, json_t *vars,
                    const struct job_opts *opts, char *id_out)
{
    struct rendered r;
    struct buf err = BUF_INIT(256), payload = BUF_INIT(1u << 20);
    struct jw w;
    int rc;
    if (!mail_addr_ok(to)) {
        (void)buf_puts(&err, "invalid recipient address");
        rc = MAIL_EINVAL;
    } else if (render_all(template_name, vars, &r, &err)) {
        rendered_free(&r);
        rc = MAIL_EINVAL;
    } else {
        rendered_free(&r);
        rc = 0;
    }
    if (rc) {
        log_warn("mail_enqueue: %s (template %.64s)", buf_cstr(&err), template_name ? template_name : "");
        buf_free(&err);
        return rc;
    }
    jw_init(&w, &payload);
    jw_obj_begin(&w);
    jw_key(&w, "to");
    jw_cstr(&w, to);
    jw_key(&w, "template");
    jw_cstr(&w, template_name);
    jw_key(&w, "vars");
    if (vars)
        jw_json(&w, vars);
    else {
        jw_obj_begin(&w);
        jw_obj_end(&w);
    }
    jw_obj_end(&w);
    if (!buf_ok(&payload)) {
        log_warn("mail_enqueue: variables too large (template %.64s)", template_name);
        rc = MAIL_EINVAL;
    } else {
        struct job_opts o = opts ? *opts : JOB_OPTS_DEFAULT;
        rc = jobs_enqueue(db, "mail.send", buf_str(&payload), &o, id_out);
    }
    sodium_memzero(payload.ptr, payload.len); /* vars often hold a token */
    buf_free(&payload);
    buf_free(&err);
    return rc;
}

int mail_enqueue(struct db *db, const char *to, const char *template_name, json_t *vars)
{
    return mail_enqueue_ex(db, to, template_name, vars, NULL, NULL);
}

/* ----------------------------------------------------------------- job */

enum job_result mail_job_send(struct job *j, struct buf *result, struct buf *error)
{
    const json_t *p = j->payload;
    const char *to = json_string_value(json_object_get(p, "to"));
    const char *tname = json_string_value(json_object_get(p, "template"));
    json_t *vars = json_object_get(p, "vars");
    const struct delivery_config *dc = delivery_config();
    const char *from = dc->mail_from ? dc->mail_from : "temel <noreply@localhost>";
    const char *url = dc->mail_url ? dc->mail_url : "file://data/mail";
    struct rendered r = {0};
    struct buf msg = BUF_INIT(MAIL_MAX_MESSAGE);
    char *fname = NULL, *faddr = NULL;
    enum job_result res = JOB_FAIL;

    if (!to || !mail_addr_ok(to)) {
        (void)buf_puts(error, "payload: invalid 'to'");
        goto out;
    }
    if (render_all(tname, vars, &r, error))
        goto out;
    if (mail_parse_from(from, &fname, &faddr)) {
        (void)buf_puts(error, "TEMEL_MAIL_FROM: invalid");
        goto out;
    }
    struct mail_message m = {.from = from, .to = to, .subject = buf_cstr(&r.subject), .text = buf_cstr(&r.text),
                             .html = r.has_html ? buf_cstr(&r.html) : NULL, .message_id_local = j->id};
    if (mail_build(&m, &msg, error))
        goto out;
    res = mail_deliver(url, faddr, to, buf_str(&msg), j->id, j->deadline_mono_ms, error);
    if (res == JOB_OK) {
        struct jw w;
        jw_init(&w, result);
        jw_obj_begin(&w);
        jw_key(&w, "transport");
        jw_cstr(&w, !strncmp(url, "file:", 5) ? "file" : "smtp");
        jw_key(&w, "bytes");
        jw_int(&w, (int64_t)msg.len);
        jw_obj_end(&w);
    }
out:
    rendered_free(&r);
    if (msg.ptr)
        sodium_memzero(msg.ptr, msg.len);
    buf_free(&msg);
    free(fname);
    free(faddr);
    return res;
}
