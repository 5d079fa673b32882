/*
 * delivery.h — the delivery jobs (mail.send, sms.send) and their settings.
 *
 * Settings (read and validated at start by the delivery module's config hook,
 * src/modules/delivery, through delivery_config_from_env; a bad value exits 2
 * naming the variable):
 *   TEMEL_MAIL_URL        smtp://[user:pass@]host[:port] | smtps://... | file:///dir | file://rel/dir
 *                         default file://<TEMEL_DATA_DIR>/mail (i.e. file://data/mail) in every
 *                         environment — set it in production
 *   TEMEL_MAIL_FROM       "Name <addr>" or addr; default "temel <noreply@localhost>"
 *   TEMEL_SMS_URL         file:///dir | file://rel/dir | https://[SID:TOKEN@]provider/...
 *                         (Twilio-style form POST To/From/Body); default file://<data_dir>/sms
 *   TEMEL_SMS_FROM        sender; required with an HTTP provider, default "temel" for files
 *   TEMEL_OUTBOUND_ALLOW  comma-separated hosts, *.domains, IPs or CIDRs the outbound HTTP
 *                         client may reach although private/loopback/link-local (http_client.h)
 */
#ifndef TEMEL_DELIVERY_H
#define TEMEL_DELIVERY_H

#include "core/buf.h"
#include "core/config.h"

/* jobs_register() "mail.send" and "sms.send" (queue "delivery"); also
 * initialises libcurl. Call once at start, before the runner starts. */
void delivery_register_jobs(void);

struct delivery_config {
    char *mail_url;       /* smtp[s]://[user:pass@]host[:port] or file:///dir */
    char *mail_from;      /* "Name <addr>" or addr */
    char *sms_url;        /* file:///dir or https://[user:pass@]provider/... */
    char *sms_from;       /* sender number/name */
    char *outbound_allow; /* hosts, IPs, CIDRs the outbound client may reach although
                             private/loopback/link-local; NULL = none */
};
/* Read and validate the delivery variables into c (defaults under data_dir).
 * 0, or -1 with "VAR: reason" in err; c may be partly filled either way
 * (delivery_config_free releases it, wiping credentials). */
int delivery_config_from_env(struct delivery_config *c, const char *data_dir, struct buf *err) WARN_UNUSED;
void delivery_config_free(struct delivery_config *c);
/* The settings the transports use (struct copied; the strings must live as
 * long as jobs run). Until installed every field is NULL: the transports'
 * defaults apply (file://data/mail, file://data/sms, no outbound allowance). */
void delivery_configure(const struct delivery_config *c);
const struct delivery_config *delivery_config(void);

/* Split a transport URL of the form scheme://[user[:pass]@]rest into its
 * credentials (percent-decoded; NULL when absent) and the URL without them.
 * Caller frees all three. 0 or -1 (malformed). */
int delivery_split_userinfo(const char *url, char **user, char **pass, char **bare) WARN_UNUSED;

/* Directory of a file:// URL ("file:///abs" → "/abs", "file://rel" → "rel"); NULL if not file://. */
char *delivery_file_dir(const char *url);

/* Write data to dir/name atomically: a dot-temp file in dir, fsync, rename,
 * fsync of dir. Creates dir (and parents) if missing. 0 or -1 with err. */
int delivery_write_atomic(const char *dir, const char *name, str_t data, struct buf *err) WARN_UNUSED;

#endif
