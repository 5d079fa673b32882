/*
 * reminders.c — reminder mails 24 h and 1 h before an event starts
 * (issue 12 item 1), as scheduled jobs of kind "events.remind".
 *
 * Publishing an event (or changing a published one) enqueues one job per
 * reminder at starts_at - offset, with a unique key that includes the start
 * time: re-saving does not duplicate it, and a job whose payload no longer
 * matches the event (moved, cancelled, unpublished, deleted) does nothing.
 * The 24 h reminder is skipped for an event that starts within the hour (the
 * 1 h one covers it); a reminder whose time has passed but whose event has
 * not started runs at once. Each confirmed attendee is mailed once per
 * reminder: the mail is enqueued in the transaction that sets the
 * registration's reminded_<offset>_at, so a retried or repeated job skips
 * whoever was done. Someone who registers after a reminder ran does not get
 * that reminder.
 */
#include "core/timeutil.h"
#include "jobs/jobs.h"
#include "modules/events/events_internal.h"
#include "transport/mail.h"

#include "core/banned.h"

#define HOUR_MS (3600 * (int64_t)1000)

/* A batch of the confirmed attendees not reminded yet (event id, batch
 * size), and marking one of them reminded (time, registration id). */
#define REMIND_SELECT(col)                                                                                             \
    "SELECT g.id, u.email, u.name FROM event_registrations g JOIN users u ON u.id = g.user_id "                      \
    "WHERE g.event_id = ? AND g.status = 'confirmed' AND g." col " IS NULL ORDER BY g.id LIMIT ?"
#define REMIND_MARK(col) "UPDATE event_registrations SET " col " = ms_ts(?) WHERE id = ?"
struct offset {
    const char *name, *when, *select, *mark;
    int64_t before_ms;
};
static const struct offset offsets[] = {
    {"24h", "in 24 hours", REMIND_SELECT("reminded_24h_at"), REMIND_MARK("reminded_24h_at"), 24 * HOUR_MS},
    {"1h", "in 1 hour", REMIND_SELECT("reminded_1h_at"), REMIND_MARK("reminded_1h_at"), HOUR_MS},
};

static const struct offset *offset_named(const char *name)
{
    for (size_t i = 0; name && i < ARRAY_LEN(offsets); i++)
        if (!strcmp(offsets[i].name, name))
            return &offsets[i];
    return NULL;
}

int events__schedule_reminders(struct db *db, str_t event_id)
{
    int64_t starts = 0, now = time_now_ms();
    bool found = false;
    int rc = db_query_int(db,
                          "SELECT ts_ms(starts_at) FROM events WHERE id = ? AND status = 'published' "
                          "AND deleted_at IS NULL",
                          DB_ARGS(DBA_TEXT(event_id)), &starts, &found);
    if (rc != DB_OK || !found || starts <= now)
        return rc;
    for (size_t i = 0; i < ARRAY_LEN(offsets) && rc >= 0; i++) {
        const struct offset *o = &offsets[i];
        if (o->before_ms > HOUR_MS && starts - now <= HOUR_MS)
            continue;
        struct buf key = BUF_INIT(BUF_MAX_SMALL), payload = BUF_INIT(BUF_MAX_SMALL);
        (void)buf_printf(&key, "events.remind:%.*s:%s:%lld", (int)event_id.len, event_id.p, o->name,
                         (long long)starts);
        (void)buf_printf(&payload, "{\"event_id\":\"%.*s\",\"offset\":\"%s\",\"starts_at_ms\":%lld}",
                         (int)event_id.len, event_id.p, o->name, (long long)starts);
        struct job_opts opts = JOB_OPTS_DEFAULT;
        opts.run_at_ms = starts - o->before_ms > now ? starts - o->before_ms : 0;
        opts.unique_key = buf_cstr(&key);
        rc = buf_ok(&key) && buf_ok(&payload) ? jobs_enqueue(db, "events.remind", buf_str(&payload), &opts, NULL)
                                               : DB_ERR;
        buf_free(&key);
        buf_free(&payload);
    }
    return rc < 0 ? rc : DB_OK; /* JOBS_EDUPLICATE: already scheduled */
}

struct batch {
    const char *event_id;
    const struct offset *o;
    /* the mail's event part, read once per job */
    struct buf title, place;
    char starts_at[TIME_RFC3339_LEN + 1];
    int64_t sent;
    bool more;
};

#define REMIND_ROW_MAX 2048 /* id, email, name (<= 100 characters) of one attendee, with their NULs */

/* Up to EVENTS_REMIND_BATCH attendees per transaction: one SELECT reads the
 * batch (copied out, one statement at a time), then each attendee is mailed
 * and marked. */
static int tx_batch(struct db *db, void *arg)
{
    struct batch *b = arg;
    struct buf rows = BUF_INIT(EVENTS_REMIND_BATCH * REMIND_ROW_MAX);
    struct db_res *q = NULL;
    int rc = db_query(db, b->o->select, DB_ARGS(DBA_CSTR(b->event_id), DBA_INT(EVENTS_REMIND_BATCH)), &q);
    int n = 0;
    while (rc == DB_OK && (rc = db_next(q)) == 1) {
        /* "id\0email\0name\0"; no address: an empty one */
        (void)buf_put(&rows, db_text(q, 0));
        (void)buf_putc(&rows, '\0');
        if (!db_isnull(q, 1))
            (void)buf_put(&rows, db_text(q, 1));
        (void)buf_putc(&rows, '\0');
        (void)buf_put(&rows, db_text(q, 2));
        (void)buf_putc(&rows, '\0');
        n++;
        rc = DB_OK;
    }
    db_res_free(q);
    if (rc == DB_OK && !buf_ok(&rows))
        rc = DB_ERR;
    b->sent = 0;
    b->more = n == EVENTS_REMIND_BATCH;
    for (const char *p = rows.ptr, *end = rows.ptr + rows.len; rc == DB_OK && p < end;) {
        const char *reg = p, *email = reg + strlen(reg) + 1, *name = email + strlen(email) + 1;
        p = name + strlen(name) + 1;
        if (*email) {
            json_t *vars = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", name, "title", buf_cstr(&b->title),
                                     "starts_at", b->starts_at, "when", b->o->when, "place", buf_cstr(&b->place));
            int mrc = vars ? mail_enqueue(db, email, "event_reminder", vars) : DB_ERR;
            json_decref(vars);
            if (mrc == MAIL_OK)
                b->sent++;
            else if (mrc != MAIL_EINVAL)
                rc = mrc;
        }
        if (rc == DB_OK)
            rc = db_exec(db, b->o->mark, DB_ARGS(DBA_INT(time_now_ms()), DBA_CSTR(reg)), NULL);
    }
    buf_free(&rows);
    return rc < 0 ? rc : DB_OK;
}

static enum job_result job_remind(struct job *j, struct buf *result, struct buf *error)
{
    const char *event_id = json_string_value(json_object_get(j->payload, "event_id"));
    const struct offset *o = offset_named(json_string_value(json_object_get(j->payload, "offset")));
    const json_t *at = json_object_get(j->payload, "starts_at_ms");
    if (!event_id || !o || !json_is_integer(at)) {
        (void)buf_puts(error, "bad payload");
        return JOB_FAIL;
    }
    struct batch b = {.event_id = event_id, .o = o, .title = BUF_INIT(BUF_MAX_SMALL), .place = BUF_INIT(BUF_MAX_SMALL)};
    enum job_result out = JOB_OK;
    int64_t starts = 0, sent = 0;
    struct db_res *q = NULL;
    int rc = db_query(j->db,
                      "SELECT ts_ms(starts_at), title, online_url, venue, city FROM events WHERE id = ? "
                      "AND status = 'published' AND deleted_at IS NULL",
                      DB_ARGS(DBA_CSTR(event_id)), &q);
    if (rc == DB_OK && (rc = db_next(q)) == 1) {
        starts = db_int(q, 0);
        (void)buf_put(&b.title, db_text(q, 1));
        /* where: the online link, else the venue, else the city */
        int col = !db_isnull(q, 2) ? 2 : db_text(q, 3).len ? 3 : 4;
        if (!db_isnull(q, col))
            (void)buf_put(&b.place, db_text(q, col));
    }
    db_res_free(q);
    if (rc < 0)
        goto db_error;
    if (rc == 0 || starts != json_integer_value(at) || starts <= time_now_ms()) {
        (void)buf_puts(result, "{\"sent\":0,\"skipped\":\"the event changed, is not published or has started\"}");
        goto end;
    }
    time_format_rfc3339(starts, b.starts_at);
    do {
        if (db_tx(j->db, DB_TX_WRITE, tx_batch, &b) != DB_OK)
            goto db_error;
        sent += b.sent;
    } while (b.more);
    (void)buf_printf(result, "{\"sent\":%lld}", (long long)sent);
    goto end;
db_error:
    (void)buf_printf(error, "remind: %s", db_errmsg(j->db));
    out = JOB_RETRY;
end:
    buf_free(&b.title);
    buf_free(&b.place);
    return out;
}

void events__reminders_register_jobs(void)
{
    static const struct job_kind kind = {.kind = "events.remind", .handler = job_remind, .queue = "default",
                                         .timeout_ms = 120000};
    jobs_register(&kind);
    mail_template_register("event_reminder", "Reminder: {{title}} starts {{when}}",
                           "Hello {{name}},\n\n{{title}} starts {{when}} ({{starts_at}}).\n{{place}}\n",
                           "<p>Hello {{name}},</p><p><b>{{title}}</b> starts {{when}} ({{starts_at}}).</p>"
                           "<p>{{place}}</p>");
    mail_template_register("event_promoted", "A seat is yours: {{title}}",
                           "Hello {{name}},\n\na seat has become free and it is yours: {{title}} "
                           "starts at {{starts_at}}.\n",
                           "<p>Hello {{name}},</p><p>a seat has become free and it is yours: <b>{{title}}</b> "
                           "starts at {{starts_at}}.</p>");
    mail_template_register("event_paid", "Your ticket: {{title}}",
                           "Hello {{name}},\n\nyour payment arrived and your seat is confirmed: {{title}} "
                           "starts at {{starts_at}}.\n",
                           "<p>Hello {{name}},</p><p>your payment arrived and your seat is confirmed: <b>{{title}}</b> "
                           "starts at {{starts_at}}.</p>");
}
