/*
 * sms.c — SMS enqueue and the "sms.send" job (see sms.h).
 *
 * Payload: {"to", "text"}. The file transport names the file after the job
 * id, so a retried job rewrites the same file instead of adding another.
 */
#include "transport/sms.h"

#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

#include "core/json.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "transport/delivery.h"
#include "transport/http_client.h"

#include "core/banned.h"

bool sms_number_ok(const char *to)
{
    if (!to || to[0] != '+' || to[1] < '1' || to[1] > '9')
        return false;
    size_t n = 0;
    for (const char *p = to + 1; *p; p++, n++)
        if (*p < '0' || *p > '9')
            return false;
    return n >= 8 && n <= 15;
}

static bool text_ok(const char *text)
{
    if (!text || !*text)
        return false;
    size_t n = strlen(text);
    return utf8_valid(str_make(text, n)) && utf8_len(text, n) <= SMS_MAX_TEXT;
}

int sms_enqueue_ex(struct db *db, const char *to, const char *text, const struct job_opts *opts, char *id_out)
{
    if (!sms_number_ok(to) || !text_ok(text)) {
        log_warn("sms_enqueue: %s", sms_number_ok(to) ? "invalid text" : "invalid number");
        return SMS_EINVAL;
    }
    struct buf payload = BUF_INIT(64u << 10);
    struct jw w;
    jw_init(&w, &payload);
    jw_obj_begin(&w);
    jw_key(&w, "to");
    jw_cstr(&w, to);
    jw_key(&w, "text");
    jw_cstr(&w, text);
    jw_obj_end(&w);
    struct job_opts o = opts ? *opts : JOB_OPTS_DEFAULT;
    int rc = buf_ok(&payload) ? jobs_enqueue(db, "sms.send", buf_str(&payload), &o, id_out) : SMS_EINVAL;
    sodium_memzero(payload.ptr, payload.len); /* the text is often a code */
    buf_free(&payload);
    return rc;
}

int sms_enqueue(struct db *db, const char *to, const char *text) { return sms_enqueue_ex(db, to, text, NULL, NULL); }

static void form_escape(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~')
            (void)buf_putc(b, (char)c);
        else if (c == ' ')
            (void)buf_putc(b, '+');
        else {
            (void)buf_putc(b, '%');
            (void)buf_putc(b, hex[c >> 4]);
            (void)buf_putc(b, hex[c & 15]);
        }
    }
}

static enum job_result send_file(const char *dir, const struct job *j, const char *from, const char *to,
                                 const char *text, struct buf *error)
{
    struct buf doc = BUF_INIT(64u << 10), name = BUF_INIT(128);
    struct jw w;
    char id[UUID_STR_LEN + 1];
    jw_init(&w, &doc);
    jw_obj_begin(&w);
    jw_key(&w, "to");
    jw_cstr(&w, to);
    jw_key(&w, "from");
    jw_cstr(&w, from);
    jw_key(&w, "text");
    jw_cstr(&w, text);
    jw_key(&w, "created_at");
    jw_time(&w, time_now_ms());
    jw_obj_end(&w);
    (void)buf_putc(&doc, '\n');
    if (uuid_valid(str_c(j->id)))
        memcpy(id, j->id, sizeof(id));
    else
        uuid7_str(id);
    (void)buf_printf(&name, "%s.json", id);
    int rc = buf_ok(&doc) ? delivery_write_atomic(dir, buf_cstr(&name), buf_str(&doc), error) : -1;
    if (!buf_ok(&doc))
        (void)buf_puts(error, "message too large");
    sodium_memzero(doc.ptr, doc.len);
    buf_free(&doc);
    buf_free(&name);
    return rc ? JOB_RETRY : JOB_OK;
}

static enum job_result send_http(const char *url, const struct job *j, const char *from, const char *to,
                                 const char *text, struct buf *result, struct buf *error)
{
    char *user = NULL, *pass = NULL, *bare = NULL;
    struct buf form = BUF_INIT(16u << 10), err = BUF_INIT(512);
    struct httpc_response rs;
    enum job_result res;
    if (delivery_split_userinfo(url, &user, &pass, &bare)) {
        (void)buf_puts(error, "TEMEL_SMS_URL: malformed");
        return JOB_FAIL;
    }
    (void)buf_puts(&form, "To=");
    form_escape(&form, to);
    (void)buf_puts(&form, "&From=");
    form_escape(&form, from);
    (void)buf_puts(&form, "&Body=");
    form_escape(&form, text);

    struct httpc_request rq = HTTPC_REQUEST_INIT;
    rq.method = "POST";
    rq.url = bare;
    if (httpc_add_header(&rq, "Content-Type", "application/x-www-form-urlencoded") ||
        httpc_add_header(&rq, "Accept", "application/json"))
        BUG("sms: request headers"); /* two of HTTPC_MAX_REQ_HEADERS */
    rq.body = buf_str(&form);
    rq.user = user;
    rq.password = pass;
    rq.deadline_mono_ms = j->deadline_mono_ms;
    rq.body_max = 64u << 10;
    rq.retry_5xx = false; /* a 5xx may come after the provider queued the message: let the job retry decide */
    rq.max_retries = 2;   /* connect errors only (nothing was sent) */
    rq.allow = httpc_allow_outbound();
    int rc = httpc_perform(&rq, &rs, &err);
    res = httpc_job_result(rc, rs.status);
    if (rc != HTTPC_OK) {
        (void)buf_printf(error, "sms provider: %s", buf_cstr(&err));
    } else if (res != JOB_OK) {
        (void)buf_printf(error, "sms provider answered %ld", rs.status);
    } else {
        struct jw w;
        json_t *body = NULL;
        jw_init(&w, result);
        jw_obj_begin(&w);
        jw_key(&w, "status");
        jw_int(&w, rs.status);
        /* keep the provider's message id (Twilio "sid") when it has one */
        if (json_parse_strict(buf_str(&rs.body), &body, NULL) == JSON_IN_OK &&
            json_is_string(json_object_get(body, "sid"))) {
            jw_key(&w, "provider_id");
            jw_cstr(&w, json_string_value(json_object_get(body, "sid")));
        }
        json_decref(body);
        jw_obj_end(&w);
    }
    httpc_response_free(&rs);
    sodium_memzero(form.ptr, form.len);
    buf_free(&form);
    buf_free(&err);
    if (pass)
        sodium_memzero(pass, strlen(pass));
    free(user);
    free(pass);
    free(bare);
    return res;
}

enum job_result sms_job_send(struct job *j, struct buf *result, struct buf *error)
{
    const char *to = json_string_value(json_object_get(j->payload, "to"));
    const char *text = json_string_value(json_object_get(j->payload, "text"));
    const struct delivery_config *dc = delivery_config();
    const char *url = dc->sms_url ? dc->sms_url : "file://data/sms";
    const char *from = dc->sms_from ? dc->sms_from : "temel";
    if (!sms_number_ok(to) || !text_ok(text)) {
        (void)buf_puts(error, "payload: invalid 'to' or 'text'");
        return JOB_FAIL;
    }
    char *dir = delivery_file_dir(url);
    if (dir) {
        enum job_result r = send_file(dir, j, from, to, text, error);
        free(dir);
        if (r == JOB_OK)
            (void)buf_puts(result, "{\"transport\":\"file\"}");
        return r;
    }
    if (!strncmp(url, "https://", 8) || !strncmp(url, "http://", 7))
        return send_http(url, j, from, to, text, result, error);
    (void)buf_puts(error, "TEMEL_SMS_URL: unsupported scheme");
    return JOB_FAIL;
}
