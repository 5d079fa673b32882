/*
 * mail.h — templated mail, sent as a job ("mail.send").
 *
 * Modules register templates at start and enqueue mail inside their own
 * transaction; the job renders and delivers it later on a runner thread:
 *
 *   mail_template_register("welcome", "Welcome, {{name}}",
 *                          "Hello {{name}}!\n", "<p>Hello <b>{{name}}</b>!</p>");
 *   json_t *vars = json_pack("{s:s}", "name", name);
 *   rc = mail_enqueue(db, "ada@example.com", "welcome", vars);  // vars is borrowed
 *   json_decref(vars);
 *
 * Template rule: {{name}} is replaced by the variable's value; in the HTML
 * part it is HTML-escaped (& < > " '), in the subject and text part it is
 * inserted as is. {{{name}}} inserts the raw value in the HTML part too (only
 * for HTML the module built itself). Names are [A-Za-z0-9_.-], spaces inside
 * the braces are allowed ({{ name }}). Values may be JSON strings, integers,
 * reals or booleans; a missing variable or another type is a render error.
 * The subject after substitution must not contain CR, LF or other control
 * characters (header injection is impossible: it is refused, never cleaned).
 * A malformed template (unclosed "{{") is a BUG() at registration.
 *
 * Transport (TEMEL_MAIL_URL, see delivery.h):
 *   smtp://[user:pass@]host[:port]   STARTTLS when the server offers it
 *                                    (CURLUSESSL_TRY), AUTH when user:pass given
 *   smtps://[user:pass@]host[:port]  implicit TLS
 *   file:///abs/dir or file://rel/dir  one RFC 5322 .eml per message, written
 *                                    atomically (temp file, fsync, rename)
 * The message: From (TEMEL_MAIL_FROM), To, Subject (RFC 2047 encoded-words
 * when non-ASCII), Date, Message-ID (<job-id@from-domain>, stable across
 * retries), MIME-Version, multipart/alternative of text/plain and text/html
 * (charset=utf-8, quoted-printable); text/plain alone when the template has
 * no HTML part.
 *
 * SMTP outcome: connect/resolve/timeout and 4xx replies → JOB_RETRY;
 * permanent 5xx replies → JOB_FAIL.
 */
#ifndef TEMEL_MAIL_H
#define TEMEL_MAIL_H

#include <jansson.h>

#include "core/buf.h"
#include "jobs/jobs.h"

struct db;

#define MAIL_MAX_ADDR 254
#define MAIL_MAX_MESSAGE (4u << 20) /* the rendered .eml */

enum mail_rc {
    MAIL_OK = 0,
    /* negative db_rc values (DB_ERR, DB_EBUSY, ...) pass through from jobs_enqueue */
    MAIL_EINVAL = -20,     /* bad address, unknown template or a render error */
};

/* Register a template (at start, before the runner; the strings must live for
 * the whole process — literals). html may be NULL (text-only mail).
 * Registering the same name twice replaces it. */
void mail_template_register(const char *name, const char *subject, const char *text, const char *html);

/* Enqueue "mail.send" for `to` with `template_name` rendered against `vars`
 * (a JSON object, borrowed; NULL = no variables). The template is rendered
 * once here so that a bad address, template or variable fails the caller
 * (MAIL_EINVAL) instead of a job. Joins the caller's transaction when db is in
 * db_tx(). Returns 0, MAIL_EINVAL, or a negative db_rc. Note the payload
 * (vars) is stored in the jobs table until the job is purged. */
int mail_enqueue(struct db *db, const char *to, const char *template_name, json_t *vars) WARN_UNUSED;
/* Same, with job options and the job id (37 bytes, may be NULL). */
int mail_enqueue_ex(struct db *db, const char *to, const char *template_name, json_t *vars,
                    const struct job_opts *opts, char *id_out) WARN_UNUSED;

/* The "mail.send" handler (registered by delivery_register_jobs()). */
enum job_result mail_job_send(struct job *j, struct buf *result, struct buf *error);

/* ---- building blocks (exposed for tests and other modules) ---- */

/* Render a template string. html: escape values. 0, or -1 with err set. */
int mail_render(const char *tmpl, const json_t *vars, bool html, struct buf *out, struct buf *err) WARN_UNUSED;
/* An addr-spec we are willing to put in a header and an SMTP envelope:
 * ASCII local@domain, no spaces, quotes, angle brackets, commas, controls. */
bool mail_addr_ok(const char *addr);
/* Parse "Name <addr>" or "addr" (TEMEL_MAIL_FROM). Caller frees both.
 * name may come back NULL. 0 or -1. */
int mail_parse_from(const char *from, char **name, char **addr) WARN_UNUSED;
/* Append s as a header value: as is when printable ASCII and short, else RFC
 * 2047 encoded-words (=?UTF-8?B?...?=, each <= 75 chars, folded with CRLF SP).
 * -1 if s has CR/LF/controls or is not valid UTF-8. */
int mail_header_encode(struct buf *out, const char *s, size_t header_name_len) WARN_UNUSED;
/* Quoted-printable body (RFC 2045): LF or CRLF become CRLF hard breaks. */
void mail_qp_encode(struct buf *out, str_t s);

struct mail_message {
    const char *from;    /* TEMEL_MAIL_FROM as configured */
    const char *to;      /* addr-spec */
    const char *subject; /* rendered */
    const char *text;    /* rendered */
    const char *html;    /* rendered, or NULL */
    const char *message_id_local; /* left part of Message-ID (job id); NULL = random */
    int64_t date_ms;     /* 0 = now */
    /* Further header lines, each "Name: value\r\n" in printable ASCII (e.g.
     * List-Unsubscribe, RFC 8058); NULL = none. Anything else is refused. */
    const char *extra_headers;
};
/* Build the RFC 5322 message (CRLF line ends). 0, or -1 with err set. */
int mail_build(const struct mail_message *m, struct buf *out, struct buf *err) WARN_UNUSED;

/* Deliver a built message according to url (TEMEL_MAIL_URL). envelope_from
 * and to are addr-specs. Returns a job result; error gets a short message. */
enum job_result mail_deliver(const char *url, const char *envelope_from, const char *to, str_t message,
                             const char *job_id, int64_t deadline_mono_ms, struct buf *error);

/* ---- sessions: many messages over one connection (bulk mail) ----
 *
 * A session keeps its SMTP connection open between messages (libcurl's
 * connection cache on one easy handle: one MAIL FROM/RCPT/DATA per message,
 * QUIT at close); with a file:// URL every message is one .eml as above.
 * mail_deliver() is a session of one message.
 *
 * The commit point: `commit(ud)` (may be NULL) is called once the whole
 * message has been handed to the transport and before the end-of-data mark
 * ("." — the point where an SMTP server takes responsibility) is sent; for
 * the file transport, before the file is written. If it returns non-zero
 * the message is abandoned (the server discards it) and the result is
 * JOB_FAIL with MAIL_SEND_ABANDONED in *code. A caller that records "sent"
 * in commit therefore never delivers a message twice across a crash: a
 * crash before the commit leaves it unsent and undelivered; after it, the
 * only loss window is the write of the final dot.
 *
 * *code (may be NULL) gets the last SMTP reply code (0 when none arrived,
 * 250 for the file transport): a 5xx → JOB_FAIL (bounce), 4xx and transport
 * errors → JOB_RETRY (the session reconnects on the next message). */
#define MAIL_SEND_ABANDONED (-1)
struct mail_session;
struct mail_session *mail_session_open(const char *url);
enum job_result mail_session_send(struct mail_session *s, const char *envelope_from, const char *to, str_t message,
                                  const char *file_id, int64_t deadline_mono_ms, int (*commit)(void *ud), void *ud,
                                  long *code, struct buf *error);
void mail_session_close(struct mail_session *s);

#endif
