/*
 * sms.h — text messages, sent as a job ("sms.send").
 *
 *   rc = sms_enqueue(db, "+905551234567", "Your code is 123456");
 *
 * Transport (TEMEL_SMS_URL, see delivery.h):
 *   file:///dir  one JSON file per message {to, from, text, created_at}, atomic
 *   https://SID:TOKEN@api.twilio.com/2010-04-01/Accounts/SID/Messages.json
 *                a form POST To, From (TEMEL_SMS_FROM), Body with HTTP basic auth
 *                from the URL's userinfo, through the outbound client (SSRF rules,
 *                TEMEL_OUTBOUND_ALLOW). 2xx → done; 408/429/5xx/connect errors →
 *                retry; other 4xx → failed.
 */
#ifndef TEMEL_SMS_H
#define TEMEL_SMS_H

#include "core/buf.h"
#include "jobs/jobs.h"

struct db;

#define SMS_MAX_TEXT 1600 /* code points (10 concatenated segments) */

enum sms_rc {
    SMS_OK = 0,
    /* negative db_rc values pass through from jobs_enqueue */
    SMS_EINVAL = -21, /* bad number or text */
};

/* E.164: '+', a non-zero digit, 7..14 more digits (8..15 digits in all). */
bool sms_number_ok(const char *to);

/* Enqueue "sms.send". text: valid UTF-8, 1..SMS_MAX_TEXT code points, no NUL.
 * Joins the caller's transaction when db is in db_tx(). 0, SMS_EINVAL or a
 * negative db_rc. The text is stored in the jobs table until purged. */
int sms_enqueue(struct db *db, const char *to, const char *text) WARN_UNUSED;
int sms_enqueue_ex(struct db *db, const char *to, const char *text, const struct job_opts *opts,
                   char *id_out) WARN_UNUSED;

/* The "sms.send" handler (registered by delivery_register_jobs()). */
enum job_result sms_job_send(struct job *j, struct buf *result, struct buf *error);

#endif
