/*
 * send.c — the campaign sender ("marketing.send") and the opt-in mailer
 * ("marketing.confirm").
 *
 * DESIGN. `send`/`schedule` enqueue marketing.send {campaign_id} (run_at =
 * the schedule). Its first run materialises the recipients in one
 * statement: every active subscriber of the list whose address is not on
 * email_suppressions becomes a campaign_recipients row in state 'queued'
 * (unique per campaign and address). Then, for one time slice (the job's
 * timeout, TEMEL_MARKETING_SLICE_MS), it reads due 'queued' rows in batches
 * and mails each one through ONE SMTP session (the transport keeps the
 * connection: MAIL/RCPT/DATA per recipient), pacing every recipient domain
 * to TEMEL_MARKETING_DOMAIN_RATE messages per second. A slice that ends
 * with work left enqueues its successor and succeeds.
 *
 * Exactly once across crashes: a row becomes 'sent' at the transport's
 * commit point (transport/mail.h) — after the whole message went to the
 * server and before the end-of-data mark — with
 * `UPDATE ... SET state = 'sent' WHERE id = ? AND state = 'queued' AND
 * the address is not suppressed`. A process killed before that update
 * leaves the row 'queued' and the server discards the unfinished message;
 * the job (its lease expired) or a successor sends it again. Killed after
 * it, the row is 'sent' and is never mailed again; two workers racing on a
 * row cannot both pass the update, and the loser abandons its message.
 *
 * Outcomes per row: 'sent'; 5xx → 'bounced' (and the address suppressed:
 * a hard bounce); 4xx → retried with backoff up to
 * TEMEL_MARKETING_MAX_ATTEMPTS, then 'failed'; unsubscribed meanwhile →
 * 'skipped'. A transport that cannot be reached at all fails the job
 * attempt (the queue's backoff), not the rows.
 */
#include <stdlib.h>
#include <time.h>

#include "core/json.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "db/db.h"
#include "modules/marketing/marketing_internal.h"
#include "transport/delivery.h"
#include "transport/mail.h"

#include "core/banned.h"

/* ---------------------------------------------------------------- pacing */

struct pace {
    char *domain;
    int64_t next_ms; /* monotonic: the domain's next free slot */
};
struct pacer {
    struct pace *v;
    size_t n, cap;
    int64_t interval_ms; /* 0 = unpaced */
};

/* Wait for domain's slot (never past deadline): false when the deadline
 * comes first. The table grows with the domains of one slice. */
static bool pace_wait(struct pacer *p, const char *domain, int64_t deadline)
{
    if (p->interval_ms <= 0)
        return true;
    struct pace *e = NULL;
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->v[i].domain, domain)) {
            e = &p->v[i];
            break;
        }
    if (!e) {
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 16;
            p->v = xrealloc(p->v, st_mult(p->cap, sizeof(*p->v)));
        }
        e = &p->v[p->n++];
        e->domain = xstrdup(domain);
        e->next_ms = 0;
    }
    int64_t now = time_mono_ms();
    if (e->next_ms > now) {
        if (e->next_ms >= deadline)
            return false;
        struct timespec ts = {(time_t)((e->next_ms - now) / 1000), (long)((e->next_ms - now) % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* a job thread, never a loop */
        now = e->next_ms;
    }
    e->next_ms = now + p->interval_ms;
    return true;
}

static void pacer_free(struct pacer *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].domain);
    free(p->v);
}

/* ------------------------------------------------------------- enqueue */

int mk__enqueue_send(struct db *db, str_t campaign_id, int64_t run_at_ms)
{
    struct buf p = BUF_INIT(256);
    struct jw w;
    jw_init(&w, &p);
    jw_obj_begin(&w);
    jw_key(&w, "campaign_id");
    jw_str(&w, campaign_id);
    jw_obj_end(&w);
    /* no unique key: a slice enqueues its successor while it still runs;
     * two jobs of one campaign are harmless (see the commit point) */
    struct job_opts o = JOB_OPTS_DEFAULT;
    o.run_at_ms = run_at_ms;
    o.max_attempts = 20; /* crashes and unreachable transports cost attempts; rows are never resent */
    int rc = jobs_enqueue(db, "marketing.send", buf_str(&p), &o, NULL);
    buf_free(&p);
    return rc;
}

int mk__enqueue_confirm(struct db *db, str_t list_id)
{
    struct buf p = BUF_INIT(256), key = BUF_INIT(128);
    struct jw w;
    jw_init(&w, &p);
    jw_obj_begin(&w);
    jw_key(&w, "list_id");
    jw_str(&w, list_id);
    jw_obj_end(&w);
    (void)buf_printf(&key, "marketing.confirm:%.*s", STR_FMT(list_id));
    struct job_opts o = JOB_OPTS_DEFAULT;
    o.unique_key = buf_cstr(&key);
    int rc = jobs_enqueue(db, "marketing.confirm", buf_str(&p), &o, NULL);
    buf_free(&p);
    buf_free(&key);
    return rc == JOBS_EDUPLICATE ? 0 : rc;
}

/* ------------------------------------------------------- the campaign */

struct campaign {
    char id[64];
    struct buf status, subject, html, text;
    json_t *links;
    bool materialised;
    int64_t scheduled_at;
};

static void campaign_free(struct campaign *c)
{
    buf_free(&c->status);
    buf_free(&c->subject);
    buf_free(&c->html);
    buf_free(&c->text);
    json_decref(c->links);
}

static int campaign_load(struct db *db, struct campaign *c, bool *found)
{
    struct db_res *res = NULL;
    int rc = db_query(db, "SELECT status, subject, html, text, links, started_at IS NOT NULL, "
                      "coalesce(ts_ms(scheduled_at), 0) FROM campaigns WHERE id = ?",
                      DB_ARGS(DBA_CSTR(c->id)), &res);
    if (rc)
        return rc;
    *found = false;
    if ((rc = db_next(res)) == 1) {
        *found = true;
        (void)buf_put(&c->status, db_text(res, 0));
        (void)buf_put(&c->subject, db_text(res, 1));
        (void)buf_put(&c->html, db_text(res, 2));
        (void)buf_put(&c->text, db_text(res, 3));
        c->links = json_loads(db_text(res, 4).p, 0, NULL);
        c->materialised = db_int(res, 5) != 0;
        c->scheduled_at = db_int(res, 6);
        rc = 0;
    }
    db_res_free(res);
    if (!c->links)
        c->links = json_array();
    return rc;
}

static int tx_materialise(struct db *db, void *arg)
{
    struct campaign *c = arg;
    int64_t now = time_now_ms(), n = 0;
    int rc = db_exec(db,
                     "UPDATE campaigns SET status = 'sending', started_at = ms_ts(?), updated_at = ms_ts(?), "
                     "version = version + 1 WHERE id = ? AND status IN ('scheduled', 'sending') AND started_at IS NULL",
                     DB_ARGS(DBA_INT(now), DBA_INT(now), DBA_CSTR(c->id)), &n);
    if (rc || n == 0)
        return rc; /* another worker did it, or it was cancelled */
    return db_exec(db,
                   "INSERT INTO campaign_recipients (campaign_id, subscriber_id, email, name, state, created_at) "
                   "SELECT c.id, s.id, s.email, s.name, 'queued', ms_ts(?) FROM campaigns c "
                   "JOIN email_subscribers s ON s.list_id = c.list_id AND s.status = 'active' "
                   "WHERE c.id = ? AND NOT EXISTS (SELECT 1 FROM email_suppressions x WHERE x.email = s.email) "
                   "ORDER BY s.created_at, s.id ON CONFLICT (campaign_id, email) DO NOTHING",
                   DB_ARGS(DBA_INT(now), DBA_CSTR(c->id)), NULL);
}

/* ------------------------------------------------------- one recipient */

struct commit_ctx {
    struct db *db;
    int64_t rcpt;
    int rc; /* database error at the commit point */
};

/* The commit point (transport/mail.h): the row becomes 'sent' iff it is
 * still queued and its address has not been suppressed meanwhile. */
static int on_commit(void *ud)
{
    struct commit_ctx *c = ud;
    int64_t n = 0, now = time_now_ms();
    c->rc = db_exec(c->db,
                    "UPDATE campaign_recipients SET state = 'sent', sent_at = ms_ts(?), attempts = attempts + 1, "
                    "error = NULL WHERE id = ? AND state = 'queued' AND NOT EXISTS "
                    "(SELECT 1 FROM email_suppressions x WHERE x.email = campaign_recipients.email)",
                    DB_ARGS(DBA_INT(now), DBA_INT(c->rcpt)), &n);
    return c->rc || n != 1;
}

static int set_state(struct db *db, int64_t id, const char *state, const char *from_state, const char *err)
{
    return db_exec(db,
                   db_pick(db,
                           "UPDATE campaign_recipients SET state = ?, error = ?, attempts = attempts + 1 "
                           "WHERE id = ? AND (? IS NULL OR state = ?)",
                           "UPDATE campaign_recipients SET state = ?, error = ?, attempts = attempts + 1 "
                           "WHERE id = ? AND (?::text IS NULL OR state = ?)"),
                   DB_ARGS(DBA_CSTR(state), err ? DBA_CSTR(err) : DBA_NULL, DBA_INT(id),
                           from_state ? DBA_CSTR(from_state) : DBA_NULL, from_state ? DBA_CSTR(from_state) : DBA_NULL),
                   NULL);
}

/* A hard bounce: the row, the subscriber and the address. */
static int bounce(struct db *db, int64_t id, const char *email, const char *campaign, const char *err)
{
    int64_t now = time_now_ms();
    int rc = set_state(db, id, "bounced", NULL, err);
    if (rc == DB_OK)
        rc = db_exec(db,
                     "UPDATE email_subscribers SET status = 'bounced', updated_at = ms_ts(?), version = version + 1 "
                     "WHERE email = ? AND status = 'active'",
                     DB_ARGS(DBA_INT(now), DBA_CSTR(email)), NULL);
    if (rc == DB_OK)
        rc = db_exec(db,
                     "INSERT INTO email_suppressions (email, reason, campaign_id, created_at) "
                     "VALUES (?, 'bounced', ?, ms_ts(?)) ON CONFLICT (email) DO NOTHING",
                     DB_ARGS(DBA_CSTR(email), DBA_CSTR(campaign), DBA_INT(now)), NULL);
    return rc;
}

struct sender {
    struct job *j;
    struct campaign *c;
    struct mail_session *ms;
    const char *from, *env_from;
    struct pacer pacer;
    int64_t deadline;
    int64_t sent, bounced, failed, deferred;
};

enum { ONE_OK = 0, ONE_STOP = 1 /* transport unreachable: end the slice, retry the job */ };

static int build(struct sender *s, int64_t id, const char *email, const char *name, struct buf *msg,
                 struct buf *error)
{
    struct buf unsub = BUF_INIT(1024), subj = BUF_INIT(2048), text = BUF_INIT(MAIL_MAX_MESSAGE / 4),
               html = BUF_INIT(MAIL_MAX_MESSAGE / 4), tracked = BUF_INIT(MAIL_MAX_MESSAGE / 4),
               hdrs = BUF_INIT(2048);
    int rc = -1;
    mk__url(&unsub, "/unsubscribe/", MK_TOK_UNSUB, id, 0);
    json_t *vars = json_pack("{s:s, s:s, s:s}", "name", name, "email", email, "unsubscribe_url", buf_cstr(&unsub));
    if (!vars) {
        (void)buf_puts(error, "variables: invalid UTF-8");
        goto out;
    }
    if (mail_render(buf_cstr(&s->c->subject), vars, false, &subj, error) ||
        mail_render(buf_cstr(&s->c->text), vars, false, &text, error))
        goto out;
    bool has_html = s->c->html.len > 0;
    if (has_html) {
        mk__links_rewrite(buf_cstr(&s->c->html), s->c->links, id, &tracked);
        if (mail_render(buf_cstr(&tracked), vars, true, &html, error))
            goto out;
        /* the open pixel, at the end of the body */
        struct buf px = BUF_INIT(1024);
        mk__url(&px, "/t/o/", MK_TOK_OPEN, id, 0);
        (void)buf_printf(&html, "<img src=\"%s\" width=\"1\" height=\"1\" alt=\"\">", buf_cstr(&px));
        buf_free(&px);
    }
    (void)buf_printf(&hdrs, "List-Unsubscribe: <%s>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                     buf_cstr(&unsub));
    struct mail_message m = {.from = s->from, .to = email, .subject = buf_cstr(&subj), .text = buf_cstr(&text),
                             .html = has_html ? buf_cstr(&html) : NULL, .extra_headers = buf_cstr(&hdrs)};
    rc = mail_build(&m, msg, error);
out:
    json_decref(vars);
    buf_free(&unsub);
    buf_free(&subj);
    buf_free(&text);
    buf_free(&html);
    buf_free(&tracked);
    buf_free(&hdrs);
    return rc;
}

static int send_one(struct sender *s, int64_t id, const char *email, const char *name, int64_t attempts, int *dbrc)
{
    struct buf msg = BUF_INIT(MAIL_MAX_MESSAGE), error = BUF_INIT(512);
    struct commit_ctx cc = {s->j->db, id, 0};
    long code = 0;
    int out = ONE_OK;
    *dbrc = 0;
    if (build(s, id, email, name, &msg, &error)) {
        *dbrc = set_state(s->j->db, id, "failed", "queued", buf_cstr(&error));
        s->failed++;
        goto out;
    }
    enum job_result jr = mail_session_send(s->ms, s->env_from, email, buf_str(&msg), NULL, s->deadline, on_commit,
                                           &cc, &code, &error);
    if (cc.rc) {
        *dbrc = cc.rc;
    } else if (jr == JOB_OK) {
        s->sent++;
    } else if (code == MAIL_SEND_ABANDONED) {
        /* sent by someone else, or suppressed since materialisation */
        *dbrc = set_state(s->j->db, id, "skipped", "queued", "address suppressed before sending");
    } else if (jr == JOB_FAIL && code >= 500) {
        *dbrc = bounce(s->j->db, id, email, s->c->id, buf_cstr(&error));
        s->bounced++;
    } else if (jr == JOB_FAIL) {
        *dbrc = set_state(s->j->db, id, "failed", NULL, buf_cstr(&error));
        s->failed++;
    } else if (code == 0) {
        out = ONE_STOP; /* nothing answered: the transport is down */
        log_warn("marketing.send: campaign %s: %s", s->c->id, buf_cstr(&error));
    } else if (attempts + 1 >= mk__cfg()->max_attempts) {
        *dbrc = set_state(s->j->db, id, "failed", NULL, buf_cstr(&error));
        s->failed++;
    } else {
        int64_t at = time_now_ms() + jobs_backoff_ms((int)attempts + 1);
        *dbrc = db_exec(s->j->db,
                        "UPDATE campaign_recipients SET attempts = attempts + 1, next_at_ms = ?, error = ? "
                        "WHERE id = ? AND state = 'queued'",
                        DB_ARGS(DBA_INT(at), DBA_CSTR(buf_cstr(&error)), DBA_INT(id)), NULL);
        s->deferred++;
    }
out:
    buf_free(&msg);
    buf_free(&error);
    return out;
}

/* ------------------------------------------------------------- the job */

static enum job_result finish_or_continue(struct sender *s, struct buf *error)
{
    struct db *db = s->j->db;
    int64_t left = 0, next = 0, now = time_now_ms();
    struct db_res *q = NULL;
    int rc = db_query(db,
                      "SELECT count(*), min(next_at_ms) FROM campaign_recipients " /* NULL min: db_int 0 */
                      "WHERE campaign_id = ? AND state = 'queued'",
                      DB_ARGS(DBA_CSTR(s->c->id)), &q);
    if (rc == DB_OK && (rc = db_next(q)) == 1) {
        left = db_int(q, 0);
        next = db_int(q, 1);
        rc = DB_OK;
    }
    db_res_free(q);
    if (rc == DB_OK && left > 0) {
        rc = mk__enqueue_send(db, str_c(s->c->id), next > now ? next : 0);
    } else if (rc == DB_OK) {
        rc = db_exec(db,
                     "UPDATE campaigns SET status = 'sent', finished_at = ms_ts(?), updated_at = ms_ts(?), "
                     "version = version + 1 WHERE id = ? AND status = 'sending'",
                     DB_ARGS(DBA_INT(now), DBA_INT(now), DBA_CSTR(s->c->id)), NULL);
    }
    if (rc) {
        (void)buf_printf(error, "database: %s", db_errmsg(db));
        return JOB_RETRY;
    }
    return JOB_OK;
}

static enum job_result job_send(struct job *j, struct buf *result, struct buf *error)
{
    const char *cid = json_string_value(json_object_get(j->payload, "campaign_id"));
    struct campaign c = {.status = BUF_INIT(32), .subject = BUF_INIT(4096), .html = BUF_INIT(MAIL_MAX_MESSAGE / 4),
                         .text = BUF_INIT(MAIL_MAX_MESSAGE / 4)};
    const struct delivery_config *dc = delivery_config();
    char *fname = NULL, *faddr = NULL;
    struct sender s = {.j = j, .c = &c};
    enum job_result res = JOB_FAIL;
    bool found = false;
    int rc;

    if (!cid || strlen(cid) >= sizeof(c.id)) {
        (void)buf_puts(error, "payload: campaign_id missing");
        goto out;
    }
    memcpy(c.id, cid, strlen(cid) + 1);
    if ((rc = campaign_load(j->db, &c, &found)) != DB_OK) {
        (void)buf_printf(error, "database: %s", db_errmsg(j->db));
        res = JOB_RETRY;
        goto out;
    }
    if (!found || !strcmp(buf_cstr(&c.status), "cancelled") || !strcmp(buf_cstr(&c.status), "draft") ||
        !strcmp(buf_cstr(&c.status), "sent")) {
        res = JOB_OK; /* deleted, cancelled or finished meanwhile: nothing to do */
        goto out;
    }
    if (!strcmp(buf_cstr(&c.status), "scheduled") && c.scheduled_at > time_now_ms() + 1000) {
        res = JOB_OK; /* the job of an earlier schedule: the current one comes later */
        goto out;
    }
    if (!c.materialised && (rc = db_tx(j->db, DB_TX_WRITE, tx_materialise, &c)) != DB_OK) {
        (void)buf_printf(error, "materialise: %s", db_errmsg(j->db));
        res = JOB_RETRY;
        goto out;
    }
    s.from = dc->mail_from ? dc->mail_from : "temel <noreply@localhost>";
    if (mail_parse_from(s.from, &fname, &faddr)) {
        (void)buf_puts(error, "TEMEL_MAIL_FROM: invalid");
        goto out;
    }
    s.env_from = faddr;
    s.ms = mail_session_open(dc->mail_url);
    s.pacer.interval_ms = mk__cfg()->domain_rate > 0 ? 1000 / mk__cfg()->domain_rate : 0;
    if (mk__cfg()->domain_rate > 1000)
        s.pacer.interval_ms = 0;
    int64_t slice = mk__cfg()->slice_ms;
    s.deadline = j->deadline_mono_ms - (slice / 10 > 500 ? slice / 10 : 500);
    bool stop = false;
    while (!stop && time_mono_ms() < s.deadline) {
        struct db_res *res_rows = NULL;
        rc = db_query(j->db,
                      "SELECT id, email, name, attempts FROM campaign_recipients WHERE campaign_id = ? "
                      "AND state = 'queued' AND next_at_ms <= ? ORDER BY id LIMIT ?",
                      DB_ARGS(DBA_CSTR(c.id), DBA_INT(time_now_ms()), DBA_INT(mk__cfg()->batch)), &res_rows);
        if (rc) {
            (void)buf_printf(error, "database: %s", db_errmsg(j->db));
            res = JOB_RETRY;
            goto out;
        }
        /* copy the batch out: the statement must be finished before the
         * commit points write on this connection */
        struct rowv {
            int64_t id, attempts;
            char *email, *name;
        } *rows = NULL;
        size_t n = 0, cap = 0;
        while ((rc = db_next(res_rows)) == 1) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                rows = xrealloc(rows, st_mult(cap, sizeof(*rows)));
            }
            rows[n].id = db_int(res_rows, 0);
            rows[n].email = xstrdup(db_text(res_rows, 1).p);
            rows[n].name = xstrdup(db_text(res_rows, 2).p);
            rows[n].attempts = db_int(res_rows, 3);
            n++;
        }
        db_res_free(res_rows);
        int dbrc = rc < 0 ? rc : 0;
        for (size_t i = 0; i < n && !stop && !dbrc; i++) {
            const char *at = strrchr(rows[i].email, '@');
            if (!pace_wait(&s.pacer, at ? at + 1 : "", s.deadline) || time_mono_ms() >= s.deadline) {
                stop = true;
                break;
            }
            if (send_one(&s, rows[i].id, rows[i].email, rows[i].name, rows[i].attempts, &dbrc) == ONE_STOP) {
                stop = true;
                res = JOB_RETRY;
                (void)buf_puts(error, "mail transport unreachable");
            }
        }
        for (size_t i = 0; i < n; i++) {
            free(rows[i].email);
            free(rows[i].name);
        }
        free(rows);
        if (dbrc) {
            (void)buf_printf(error, "database: %s", db_errmsg(j->db));
            res = JOB_RETRY;
            goto out;
        }
        if (res == JOB_RETRY)
            goto out;
        if (n == 0)
            break; /* nothing due now */
    }
    res = finish_or_continue(&s, error);
    if (res == JOB_OK) {
        struct jw w;
        jw_init(&w, result);
        jw_obj_begin(&w);
        jw_key(&w, "sent");
        jw_int(&w, s.sent);
        jw_key(&w, "bounced");
        jw_int(&w, s.bounced);
        jw_key(&w, "failed");
        jw_int(&w, s.failed);
        jw_key(&w, "deferred");
        jw_int(&w, s.deferred);
        jw_obj_end(&w);
    }
out:
    mail_session_close(s.ms);
    pacer_free(&s.pacer);
    campaign_free(&c);
    free(fname);
    free(faddr);
    return res;
}

/* --------------------------------------------------- opt-in mails */

struct confirm_batch {
    const char *list_id;
    int64_t done;
};

static int tx_confirm_batch(struct db *db, void *arg)
{
    struct confirm_batch *b = arg;
    struct db_res *res = NULL;
    b->done = 0;
    int rc = db_query(db,
                      "SELECT s.id, s.email, s.name, l.name FROM email_subscribers s JOIN email_lists l ON l.id = s.list_id "
                      "WHERE s.list_id = ? AND s.status = 'pending' AND s.confirm_sent_at IS NULL ORDER BY s.id LIMIT 200",
                      DB_ARGS(DBA_CSTR(b->list_id)), &res);
    if (rc)
        return rc;
    struct { char *id, *email, *name, *list; } *v = NULL;
    size_t n = 0, cap = 0;
    while ((rc = db_next(res)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = xrealloc(v, st_mult(cap, sizeof(*v)));
        }
        v[n].id = xstrdup(db_text(res, 0).p);
        v[n].email = xstrdup(db_text(res, 1).p);
        v[n].name = xstrdup(db_text(res, 2).p);
        v[n].list = xstrdup(db_text(res, 3).p);
        n++;
    }
    db_res_free(res);
    int64_t now = time_now_ms();
    for (size_t i = 0; i < n && rc >= 0; i++) {
        struct buf url = BUF_INIT(1024);
        (void)buf_puts(&url, mk__cfg()->base_url);
        (void)buf_puts(&url, "/subscribe/confirm/");
        mk__token_sub(&url, str_c(v[i].id));
        json_t *vars = json_pack("{s:s, s:s, s:s}", "name", v[i].name, "list", v[i].list, "url", buf_cstr(&url));
        int mrc = mail_enqueue(db, v[i].email, "marketing.confirm", vars);
        json_decref(vars);
        buf_free(&url);
        if (mrc < 0 && mrc != MAIL_EINVAL)
            rc = mrc;
        else
            rc = db_exec(db, "UPDATE email_subscribers SET confirm_sent_at = ms_ts(?) WHERE id = ?",
                         DB_ARGS(DBA_INT(now), DBA_CSTR(v[i].id)), NULL);
        b->done++;
    }
    for (size_t i = 0; i < n; i++) {
        free(v[i].id);
        free(v[i].email);
        free(v[i].name);
        free(v[i].list);
    }
    free(v);
    return rc < 0 ? rc : 0;
}

static enum job_result job_confirm(struct job *j, struct buf *result, struct buf *error)
{
    (void)result;
    struct confirm_batch b = {json_string_value(json_object_get(j->payload, "list_id")), 0};
    if (!b.list_id) {
        (void)buf_puts(error, "payload: list_id missing");
        return JOB_FAIL;
    }
    do {
        int rc = db_tx(j->db, DB_TX_WRITE, tx_confirm_batch, &b);
        if (rc) {
            (void)buf_printf(error, "database: %s", db_errmsg(j->db));
            return JOB_RETRY;
        }
    } while (b.done > 0 && time_mono_ms() < j->deadline_mono_ms - 1000);
    return JOB_OK;
}

/* ------------------------------------------------------------ register */

static struct job_kind k_send = {.kind = "marketing.send", .handler = job_send, .queue = "marketing"};
static const struct job_kind k_confirm = {.kind = "marketing.confirm", .handler = job_confirm, .queue = "marketing",
                                          .timeout_ms = 60000};

void mk__register_jobs(void)
{
    k_send.timeout_ms = (int)mk__cfg()->slice_ms;
    jobs_register(&k_send);
    jobs_register(&k_confirm);
    mail_template_register("marketing.confirm", "Confirm your subscription to {{list}}",
                           "Hello {{name}},\n\nplease confirm that you want to receive \"{{list}}\":\n\n{{url}}\n\n"
                           "If you did not ask for it, ignore this mail.\n",
                           "<p>Hello {{name}},</p><p>please confirm that you want to receive "
                           "&laquo;{{list}}&raquo;:</p><p><a href=\"{{url}}\">Confirm my subscription</a></p>"
                           "<p>If you did not ask for it, ignore this mail.</p>");
}
