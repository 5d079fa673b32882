/*
 * delivery.c — registration of the delivery jobs, their settings, and the
 * file helpers the mail and SMS transports share (see delivery.h).
 */
#include "transport/delivery.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/fsutil.h"
#include "core/uuid.h"
#include "transport/http_client.h"
#include "jobs/jobs.h"
#include "transport/mail.h"
#include "transport/sms.h"

#include "core/banned.h"

void delivery_register_jobs(void)
{
    static const struct job_kind kinds[] = {
        {.kind = "mail.send", .handler = mail_job_send, .queue = "delivery", .timeout_ms = 90000, .sensitive = true},
        {.kind = "sms.send", .handler = sms_job_send, .queue = "delivery", .timeout_ms = 60000, .sensitive = true},
    };
    httpc_global_init();
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
        jobs_register(&kinds[i]);
}

/* ------------------------------------------------------------ URL bits */

int delivery_split_userinfo(const char *url, char **user, char **pass, char **bare)
{
    *user = *pass = *bare = NULL;
    const char *sep = strstr(url, "://");
    if (!sep)
        return -1;
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p; /* the last '@' of the authority */
    if (!at) {
        *bare = xstrdup(url);
        return 0;
    }
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    str_t u = str_make(auth, (size_t)((colon ? colon : at) - auth));
    str_t pw = colon ? str_make(colon + 1, (size_t)(at - colon - 1)) : STR_NULL;
    char *ud = xmalloc(u.len + 1), *pd = xmalloc(pw.len + 1);
    long ul = url_decode(u, ud, false), pl = colon ? url_decode(pw, pd, false) : 0;
    if (ul < 0 || pl < 0 || ul == 0 || memchr(ud, '\0', (size_t)ul) || (colon && memchr(pd, '\0', (size_t)pl))) {
        sodium_memzero(pd, pw.len + 1);
        free(ud);
        free(pd);
        return -1;
    }
    ud[ul] = '\0';
    pd[pl] = '\0';
    *user = ud;
    if (colon)
        *pass = pd;
    else
        free(pd);
    struct buf b = BUF_INIT(8192);
    (void)buf_append(&b, url, (size_t)(auth - url));
    (void)buf_puts(&b, at + 1);
    *bare = buf_detach(&b, NULL);
    return 0;
}

char *delivery_file_dir(const char *url)
{
    if (!url || strncmp(url, "file://", 7) != 0 || !url[7])
        return NULL;
    return xstrdup(url + 7); /* "file:///abs" → "/abs", "file://data/mail" → "data/mail" */
}

/* ---------------------------------------------------------------- files */

int delivery_write_atomic(const char *dir, const char *name, str_t data, struct buf *err)
{
    if (fs_mkdir_p(dir, 0750)) {
        (void)buf_printf(err, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    return fs_write_atomic(dir, name, data, 0640, err);
}

/* --------------------------------------------------------------- config */

static struct delivery_config g_dc;

const struct delivery_config *delivery_config(void) { return &g_dc; }
void delivery_configure(const struct delivery_config *c) { g_dc = *c; }

static void wipe_free(char *s)
{
    if (s)
        sodium_memzero(s, strlen(s)); /* may hold SMTP or provider credentials */
    free(s);
}

void delivery_config_free(struct delivery_config *c)
{
    wipe_free(c->mail_url);
    free(c->mail_from);
    wipe_free(c->sms_url);
    free(c->sms_from);
    free(c->outbound_allow);
    memset(c, 0, sizeof(*c));
}

static int check_transport(const char *var, const char *url, bool mail, struct buf *err)
{
    char *user = NULL, *pass = NULL, *bare = NULL;
    int rc = -1;
    if (strchr(url, '\r') || strchr(url, '\n') || strchr(url, ' ')) {
        (void)buf_printf(err, "%s: must not contain spaces or line breaks", var);
        return -1;
    }
    if (!strncmp(url, "file://", 7)) {
        if (!url[7] || strchr(url + 7, '?') || strchr(url + 7, '#')) {
            (void)buf_printf(err, "%s: file:// needs a directory (file:///abs/dir or file://rel/dir)", var);
            return -1;
        }
        return 0;
    }
    if (delivery_split_userinfo(url, &user, &pass, &bare)) {
        (void)buf_printf(err, "%s: malformed credentials in the URL", var);
        goto out;
    }
    const char *hostp = strstr(bare, "://") + 3;
    if (mail) {
        if (strncmp(url, "smtp://", 7) && strncmp(url, "smtps://", 8)) {
            (void)buf_printf(err, "%s: must be smtp://host[:port], smtps://host[:port] or file:///dir", var);
            goto out;
        }
    } else if (strncmp(url, "https://", 8) && strncmp(url, "http://", 7)) {
        (void)buf_printf(err, "%s: must be file:///dir or an http(s):// provider URL", var);
        goto out;
    }
    if (!*hostp || *hostp == '/' || *hostp == ':') {
        (void)buf_printf(err, "%s: needs a host", var);
        goto out;
    }
    rc = 0;
out:
    if (pass)
        sodium_memzero(pass, strlen(pass));
    free(user);
    free(pass);
    free(bare);
    return rc;
}

int delivery_config_from_env(struct delivery_config *c, const char *data_dir, struct buf *err)
{
    const char *data = data_dir ? data_dir : "data";
    struct buf def = BUF_INIT(4096);

    c->mail_url = config_env_dup("TEMEL_MAIL_URL");
    if (!c->mail_url) {
        (void)buf_printf(&def, "file://%s/mail", data);
        c->mail_url = buf_detach(&def, NULL);
    }
    if (check_transport("TEMEL_MAIL_URL", c->mail_url, true, err)) {
        buf_free(&def);
        return -1;
    }

    c->mail_from = config_env_dup("TEMEL_MAIL_FROM");
    if (!c->mail_from)
        c->mail_from = xstrdup("temel <noreply@localhost>");
    char *n = NULL, *a = NULL;
    int bad = mail_parse_from(c->mail_from, &n, &a);
    free(n);
    free(a);
    if (bad) {
        (void)buf_puts(err, "TEMEL_MAIL_FROM: must be an address or \"Name <address>\"");
        buf_free(&def);
        return -1;
    }

    c->sms_url = config_env_dup("TEMEL_SMS_URL");
    if (!c->sms_url) {
        buf_reset(&def);
        (void)buf_printf(&def, "file://%s/sms", data);
        c->sms_url = buf_detach(&def, NULL);
    }
    buf_free(&def);
    if (check_transport("TEMEL_SMS_URL", c->sms_url, false, err))
        return -1;
    c->sms_from = config_env_dup("TEMEL_SMS_FROM");
    if (c->sms_from) {
        for (const char *p = c->sms_from; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                (void)buf_puts(err, "TEMEL_SMS_FROM: must not contain control characters");
                return -1;
            }
    } else if (strncmp(c->sms_url, "file://", 7) != 0) {
        (void)buf_puts(err, "TEMEL_SMS_FROM: required when TEMEL_SMS_URL is an HTTP provider");
        return -1;
    } else {
        c->sms_from = xstrdup("temel");
    }

    c->outbound_allow = config_env_dup("TEMEL_OUTBOUND_ALLOW");
    struct httpc_allow al;
    struct buf aerr = BUF_INIT(256);
    if (httpc_allow_parse(c->outbound_allow, &al, &aerr)) {
        (void)buf_printf(err, "TEMEL_OUTBOUND_ALLOW: %s", buf_cstr(&aerr));
        buf_free(&aerr);
        return -1;
    }
    httpc_allow_free(&al);
    buf_free(&aerr);
    return 0;
}
