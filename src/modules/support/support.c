/*
 * support.c — support tickets (API.md §10, issue 12 item 2).
 *
 *   /api/v1/tickets                     resource engine: create (signed-in users;
 *                                       category, priority), list (own; staff all;
 *                                       filters status, priority, category,
 *                                       assignee_id, sla_breached; default sort
 *                                       priority then age: urgent first, oldest
 *                                       first), get, PATCH (subject and
 *                                       description by the owner or staff;
 *                                       priority and category by staff)
 *   GET  /api/v1/tickets/{id}/messages  the thread, oldest first; internal notes
 *                                       only for staff; reading clears the
 *                                       reader's side's unread count
 *   POST /api/v1/tickets/{id}/messages  {body, internal?}: internal notes are
 *                                       staff-only; the first public staff reply
 *                                       sets first_response_at, any public staff
 *                                       reply moves the ticket to pending and
 *                                       mails the owner (job); an owner's reply
 *                                       moves it back to open
 *   POST /api/v1/tickets/{id}/assign    {user_id|null} (staff): a staff member
 *   POST /api/v1/tickets/{id}/close     owner or staff: closed, resolved_at
 *   POST /api/v1/tickets/{id}/reopen    owner or staff: open again
 *
 * SLA: each priority has a first-response target (TEMEL_SUPPORT_SLA_<P>_MIN);
 * sla_due_at = created_at + target, recomputed when staff change the priority.
 * sla_breached is set once: by a late first staff reply, or when a ticket is
 * read or swept (cron, every minute) after its due time with no reply yet.
 * Staff actions (assign, close/reopen by staff, priority changes) are audited.
 * Attachments: a message may name up to SUPPORT_ATTACH_MAX files its author
 * owns (uploaded with POST /files); ticket_attachments links them and the
 * message's "attachments" lists {id, filename, size, mime_type, url}. The
 * url, GET /tickets/{id}/attachments/{file_id}, serves the bytes through the
 * files module to the ticket's owner and staff only (anyone else: 404), and
 * an internal note's attachments to staff only. The files stay the
 * author's: deleting one (DELETE /files/{id}, or the account) removes it from
 * the message's downloads.
 */
#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "modules/audit/audit.h"
#include "modules/files/files.h"
#include "modules/support/support.h"
#include "modules/users/identity.h"
#include "transport/mail.h"

#include "core/banned.h"

#define MIN_MS ((int64_t)60 * 1000)

/* ---- SLA targets ---- */

struct prio {
    const char *name, *env;
    int64_t rank, target_min;
};
static struct prio prios[] = {
    {"low", "TEMEL_SUPPORT_SLA_LOW_MIN", 1, 3 * 24 * 60},
    {"normal", "TEMEL_SUPPORT_SLA_NORMAL_MIN", 2, 24 * 60},
    {"high", "TEMEL_SUPPORT_SLA_HIGH_MIN", 3, 4 * 60},
    {"urgent", "TEMEL_SUPPORT_SLA_URGENT_MIN", 4, 60},
};

static int config(const struct config *cfg, struct buf *err)
{
    (void)cfg;
    for (size_t i = 0; i < ARRAY_LEN(prios); i++)
        if (config_env_int(prios[i].env, prios[i].target_min, 1, 365 * 24 * 60, &prios[i].target_min, err))
            return -1;
    return 0;
}

/* ---- the notifier ---- */

static support_notify_fn g_notify;
static void *g_notify_ud;

void support_set_notifier(support_notify_fn fn, void *ud)
{
    g_notify = fn;
    g_notify_ud = ud;
}

static void notify(enum support_event_kind kind, str_t ticket, str_t owner, str_t assignee, str_t actor,
                   str_t message, bool staff_only)
{
    static const char *const names[] = {[SUPPORT_TICKET_CREATED] = "ticket.created",
                                        [SUPPORT_TICKET_MESSAGE] = "ticket.message",
                                        [SUPPORT_TICKET_ASSIGNED] = "ticket.assigned",
                                        [SUPPORT_TICKET_CLOSED] = "ticket.closed",
                                        [SUPPORT_TICKET_REOPENED] = "ticket.reopened"};
    if (!g_notify)
        return;
    struct support_event ev = {kind, names[kind], ticket, owner, assignee, actor, message, staff_only};
    g_notify(&ev, g_notify_ud);
}

/* TEMEL_ENV=test without realtime: events go to the log, where the API tests read them. */
static void log_notifier(const struct support_event *ev, void *ud)
{
    (void)ud;
    struct log_line l;
    if (!log_begin(&l, LOG_INFO, "support event"))
        return;
    log_cstr(&l, "event", ev->name);
    log_str(&l, "ticket_id", ev->ticket_id);
    log_str(&l, "owner_id", ev->owner_id);
    log_str(&l, "assignee_id", ev->assignee_id);
    log_str(&l, "message_id", ev->message_id);
    log_int(&l, "staff_only", ev->staff_only);
    log_end(&l);
}

/* ---- the descriptor ---- */

static int ticket_check(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id);
static int ticket_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id);

static const char *const categories[] = {"general", "account", "billing", "technical", "events", "other", NULL};
static const char *const priorities[] = {"low", "normal", "high", "urgent", NULL};
static const char *const statuses[] = {"open", "pending", "closed", NULL};
static const struct rfield ticket_fields[] = {
    {.name = "subject", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT, .min = 1, .max = 200},
    {.name = "description", .type = RF_TEXT, .max = 20000, .def = "\"\""},
    {.name = "category", .type = RF_ENUM, .values = categories, .flags = RF_FILTER | RF_SORT, .def = "\"general\""},
    {.name = "priority", .type = RF_ENUM, .values = priorities, .flags = RF_FILTER, .def = "\"normal\"",
     .description = "the owner picks it at creation; afterwards only staff change it"},
    {.name = "priority_rank", .type = RF_INT, .flags = RF_READONLY | RF_FILTER | RF_SORT,
     .description = "1 low .. 4 urgent (sort=priority_rank:desc)"},
    {.name = "status", .type = RF_ENUM, .values = statuses, .flags = RF_READONLY | RF_FILTER | RF_SORT,
     .description = "open (waiting for staff), pending (waiting for the owner), closed"},
    {.name = "assignee_id", .type = RF_TEXT, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER},
    {.name = "user_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER, .description = "the owner"},
    {.name = "first_response_at", .type = RF_TIME, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER | RF_SORT},
    {.name = "resolved_at", .type = RF_TIME, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER | RF_SORT},
    {.name = "sla_due_at", .type = RF_TIME, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER | RF_SORT,
     .description = "the first staff reply is due by then (the priority's target)"},
    {.name = "sla_breached", .type = RF_BOOL, .flags = RF_READONLY | RF_FILTER},
    {.name = "user_unread", .type = RF_INT, .flags = RF_READONLY, .description = "staff replies the owner has not read"},
    {.name = "staff_unread", .type = RF_INT, .flags = RF_READONLY, .description = "owner messages staff have not read"},
    {0}};
const struct resource support_tickets = {
    .name = "tickets", .singular = "ticket", .path = "/api/v1/tickets", .table = "tickets", .tag = "support",
    .fields = ticket_fields, .owner = "user_id",
    .read = RP_OWNER_OR_STAFF, .create = RP_AUTH, .update = RP_OWNER_OR_STAFF, .del = RP_DENY,
    .routes = RR_CREATE | RR_UPDATE, .default_sort = "priority_rank:desc,created_at:asc",
    .check = ticket_check, .after_write = ticket_after_write};

/* The owner may not change priority or category after creation (write_roles
 * would forbid them on create too), so PATCH checks it here. */
static int ticket_check(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id)
{
    (void)res;
    (void)id;
    if (act == RA_UPDATE && !identity_is_staff(r)) {
        if (json_object_get(body, "priority"))
            return http_fail(r, 403, "FORBIDDEN", "only staff change a ticket's priority");
        if (json_object_get(body, "category"))
            return http_fail(r, 403, "FORBIDDEN", "only staff change a ticket's category");
    }
    return 0;
}

/* priority_rank and sla_due_at follow the priority (kept from created_at). */
static int ticket_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id)
{
    (void)r;
    (void)res;
    if (act == RA_DELETE || (act == RA_UPDATE && !json_object_get(r->body, "priority")))
        return DB_OK;
    int rc = DB_OK;
    for (size_t i = 0; i < ARRAY_LEN(prios) && rc == DB_OK; i++)
        rc = db_exec(db,
                     db_pick(db,
                             "UPDATE tickets SET priority_rank = ?, sla_due_at = created_at + ? "
                             "WHERE id = ? AND priority = ?",
                             "UPDATE tickets SET priority_rank = ?, sla_due_at = created_at + ? * interval '1 ms' "
                             "WHERE id = ? AND priority = ?"),
                     DB_ARGS(DBA_INT(prios[i].rank), DBA_INT(prios[i].target_min * MIN_MS), DBA_TEXT(id),
                             DBA_CSTR(prios[i].name)),
                     NULL);
    return rc;
}

/* Staff writes (a priority change) are audited; a new ticket is announced after commit. */
static int on_tx(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id,
                 const json_t *before, const json_t *after, void *ud)
{
    (void)db;
    (void)ud;
    if (res != &support_tickets || !r || act != RA_UPDATE || !identity_is_staff(r))
        return DB_OK;
    struct audit_entry e = {.action = "ticket.update", .category = "support", .target_type = "ticket",
                            .target_id = id, .before = before, .after = after, .success = true};
    return audit_record_req(r, &e);
}

static int on_commit(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id,
                     const json_t *before, const json_t *after, void *ud)
{
    (void)db;
    (void)before;
    (void)ud;
    if (res == &support_tickets && act == RA_CREATE && r)
        notify(SUPPORT_TICKET_CREATED, id, str_c(json_string_value(json_object_get(after, "user_id"))), STR_NULL,
               r->user_id, STR_NULL, false);
    return DB_OK;
}

/* ---- SLA breach ---- */

/* Open tickets past their first-response due time without a reply, written
 * as the partial index tickets_sla's condition with literals (a bound
 * "sla_breached = ?" kept both planners off the index: every sweep and
 * every GET /tickets scanned the table). One ? (now), then id = ? or not. */
#define PAST_DUE(not_breached)                                                                                        \
    " WHERE " not_breached " AND first_response_at IS NULL AND status != 'closed' AND sla_due_at < ms_ts(?)"
#define PAST_DUE_SQLITE PAST_DUE("sla_breached = 0")
#define PAST_DUE_PG PAST_DUE("NOT sla_breached")

static int mark_breaches(struct db *db, str_t ticket_id, int64_t now, int64_t *changed)
{
    const db_arg args[] = {DBA_INT(now), DBA_TEXT(ticket_id)};
    const char *sql = ticket_id.len ? db_pick(db, "UPDATE tickets SET sla_breached = 1" PAST_DUE_SQLITE " AND id = ?",
                                              "UPDATE tickets SET sla_breached = TRUE" PAST_DUE_PG " AND id = ?")
                                    : db_pick(db, "UPDATE tickets SET sla_breached = 1" PAST_DUE_SQLITE,
                                              "UPDATE tickets SET sla_breached = TRUE" PAST_DUE_PG);
    return db_exec(db, sql, args, ticket_id.len ? 2 : 1, changed);
}

static enum job_result job_sla(struct job *j, struct buf *result, struct buf *error)
{
    int64_t n = 0;
    if (mark_breaches(j->db, STR_NULL, time_now_ms(), &n) != DB_OK) {
        (void)buf_printf(error, "sla sweep: %s", db_errmsg(j->db));
        return JOB_RETRY;
    }
    (void)buf_printf(result, "{\"breached\":%lld}", (long long)n);
    return JOB_OK;
}

/* Reads see the flag as of now: a ticket past due is marked the first time
 * someone looks (one conditional write per ticket, ever). */
static int sweep_for_read(struct req *r, str_t ticket_id)
{
    int64_t one = 0, now = time_now_ms();
    bool found = false;
    const db_arg args[] = {DBA_INT(now), DBA_TEXT(ticket_id)};
    const char *sql = ticket_id.len ? db_pick(r->db, "SELECT 1 FROM tickets" PAST_DUE_SQLITE " AND id = ?",
                                              "SELECT 1 FROM tickets" PAST_DUE_PG " AND id = ?")
                                    : db_pick(r->db, "SELECT 1 FROM tickets" PAST_DUE_SQLITE " LIMIT 1",
                                              "SELECT 1 FROM tickets" PAST_DUE_PG " LIMIT 1");
    int rc = db_query_int(r->db, sql, args, ticket_id.len ? 2 : 1, &one, &found);
    if (rc == DB_OK && found)
        rc = mark_breaches(r->db, ticket_id, now, NULL);
    return rc == DB_OK ? 0 : http_db_fail(r, rc);
}

/* ---- reading a ticket ---- */

struct ticket {
    char owner[UUID_STR_LEN + 1], assignee[UUID_STR_LEN + 1], status[16];
    char subject[1024];
};

/* The ticket id as the caller may see it (404 otherwise), its row in t. */
static int ticket_load(struct req *r, str_t id, struct ticket *t)
{
    struct db_res *q = NULL;
    if (resource_require_row(r, &support_tickets, id, "t.user_id, t.assignee_id, t.status, t.subject", &q))
        return HTTP_EFAIL;
    (void)str_copy(t->owner, db_text(q, 0).p, sizeof(t->owner));
    (void)str_copy(t->assignee, db_isnull(q, 1) ? "" : db_text(q, 1).p, sizeof(t->assignee));
    (void)str_copy(t->status, db_text(q, 2).p, sizeof(t->status));
    (void)str_copy(t->subject, db_text(q, 3).p, sizeof(t->subject));
    db_res_free(q);
    return 0;
}

/* A staff member acting on someone else's ticket (an admin's own ticket is a user's). */
static bool acts_as_staff(struct req *r, const struct ticket *t)
{
    return identity_is_staff(r) && !str_eq(r->user_id, str_c(t->owner));
}

static int h_get(struct req *r)
{
    str_t id = req_param(r, "id");
    if (!uuid_valid(id))
        return http_fail(r, 404, "NOT_FOUND", "no such ticket");
    if (sweep_for_read(r, id))
        return HTTP_EFAIL;
    return resource_respond(r, &support_tickets, id, 200);
}

static int h_list(struct req *r)
{
    if (sweep_for_read(r, STR_NULL))
        return HTTP_EFAIL;
    return resource_list(r, &support_tickets, NULL, NULL, 0);
}

/* ---- messages ---- */

static const struct http_col message_cols[] = {
    {"id", COL_TEXT},         {"ticket_id", COL_TEXT}, {"author_id", COL_TEXT},  {"body", COL_TEXT},
    {"internal", COL_BOOL},   {"from_staff", COL_BOOL}, {"attachments", COL_JSON}, {"created_at", COL_TIME},
    {NULL, 0}};
#define MESSAGE_COLS "id, ticket_id, author_id, body, internal, from_staff, attachments, ts_ms(created_at)"

static void write_message(struct jw *w, const struct db_res *res) { http_write_row(w, res, message_cols); }

static int h_messages(struct req *r)
{
    str_t id = req_param(r, "id");
    struct ticket t;
    if (ticket_load(r, id, &t))
        return HTTP_EFAIL;
    static const char *const allowed[] = {NULL};
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    bool staff = acts_as_staff(r, &t);
    /* reading clears this side's unread count */
    int rc = db_exec(r->db,
                     staff ? "UPDATE tickets SET staff_unread = 0 WHERE id = ? AND staff_unread > 0"
                           : "UPDATE tickets SET user_unread = 0 WHERE id = ? AND user_unread > 0",
                     DB_ARGS(DBA_TEXT(id)), NULL);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    db_arg args[4] = {DBA_TEXT(id)};
    size_t n = 1;
    const char *where = " WHERE ticket_id = ?";
    if (!identity_is_staff(r)) {
        where = " WHERE ticket_id = ? AND internal = ?";
        args[n++] = DBA_BOOL(false);
    }
    const struct http_list_query q = {MESSAGE_COLS, "FROM ticket_messages", where, "created_at ASC, id ASC",
                                      write_message};
    return http_list(r, &q, args, n, ARRAY_LEN(args));
}

#define SUPPORT_ATTACH_MAX 10

struct post_ctx {
    str_t ticket_id;
    struct ticket t;
    bool staff, internal;
    str_t body;
    const json_t *attachments; /* array of file ids (validated: strings, at most SUPPORT_ATTACH_MAX) */
    char id[UUID_STR_LEN + 1];
};

/* Link the message's attachments (files the author owns) and write its
 * "attachments" list; 422 naming the first file that is not the author's. */
static int attach(struct req *r, struct post_ctx *c)
{
    size_t i, n = 0;
    const json_t *v;
    struct buf *list = req_buf(r, 64u << 10), *url = req_buf(r, 256);
    struct jw w;
    jw_init(&w, list);
    jw_arr_begin(&w);
    json_array_foreach(c->attachments, i, v)
    {
        str_t fid = str_make(json_string_value(v), json_string_length(v));
        struct db_res *f = NULL;
        int rc = files_lookup(r->db, fid, &f);
        if (rc != DB_OK)
            return rc;
        if (!f || !str_eq(db_text(f, 1), r->user_id)) {
            db_res_free(f);
            return http_invalid(r, "attachments", "must be ids of files you uploaded (POST /files)");
        }
        int64_t added = 0; /* 0: the same file named twice */
        rc = db_exec(r->db,
                     "INSERT INTO ticket_attachments (message_id, file_id, position) VALUES (?, ?, ?) "
                     "ON CONFLICT (message_id, file_id) DO NOTHING",
                     DB_ARGS(DBA_CSTR(c->id), DBA_TEXT(fid), DBA_INT((int64_t)n)), &added);
        if (rc == DB_OK && added) {
            n++;
            buf_reset(url);
            (void)buf_printf(url, "/api/v1/tickets/%.*s/attachments/%.*s", STR_FMT(c->ticket_id), STR_FMT(fid));
            jw_obj_begin(&w);
            jw_key(&w, "id");
            jw_str(&w, fid);
            jw_key(&w, "filename");
            jw_str(&w, db_text(f, 3));
            jw_key(&w, "size");
            jw_int(&w, db_int(f, 4));
            jw_key(&w, "mime_type");
            jw_str(&w, db_text(f, 5));
            jw_key(&w, "url");
            jw_str(&w, buf_str(url));
            jw_obj_end(&w);
        }
        db_res_free(f);
        if (rc != DB_OK)
            return rc;
    }
    jw_arr_end(&w);
    if (!buf_ok(list))
        return DB_ERR;
    return db_exec(r->db, "UPDATE ticket_messages SET attachments = ? WHERE id = ?",
                   DB_ARGS(DBA_TEXT(buf_str(list)), DBA_CSTR(c->id)), NULL);
}

static int tx_post(struct req *r, void *arg)
{
    struct post_ctx *c = arg;
    struct db *db = r->db;
    int64_t now = time_now_ms();
    int rc = db_exec(db,
                     "INSERT INTO ticket_messages (id, ticket_id, author_id, body, internal, from_staff, created_at, "
                     "updated_at) VALUES (?, ?, ?, ?, ?, ?, ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(c->id), DBA_TEXT(c->ticket_id), DBA_TEXT(r->user_id), DBA_TEXT(c->body),
                             DBA_BOOL(c->internal), DBA_BOOL(c->staff), DBA_INT(now), DBA_INT(now)),
                     NULL);
    if (rc == DB_OK && json_array_size(c->attachments))
        rc = attach(r, c);
    if (rc != DB_OK || c->internal)
        return rc;
    if (!c->staff)
        return db_exec(db,
                       "UPDATE tickets SET status = 'open', staff_unread = staff_unread + 1, version = version + 1, "
                       "updated_at = ms_ts(?) WHERE id = ?",
                       DB_ARGS(DBA_INT(now), DBA_TEXT(c->ticket_id)), NULL);
    rc = db_exec(db,
                 "UPDATE tickets SET sla_breached = CASE WHEN first_response_at IS NULL AND sla_due_at < ms_ts(?) "
                 "THEN ? ELSE sla_breached END, first_response_at = coalesce(first_response_at, ms_ts(?)), "
                 "status = 'pending', user_unread = user_unread + 1, version = version + 1, updated_at = ms_ts(?) "
                 "WHERE id = ?",
                 DB_ARGS(DBA_INT(now), DBA_BOOL(true), DBA_INT(now), DBA_INT(now), DBA_TEXT(c->ticket_id)), NULL);
    if (rc != DB_OK)
        return rc;
    /* mail the owner (a job; an account without an address gets none) */
    struct db_res *q = NULL;
    rc = db_query(db, "SELECT email, name FROM users WHERE id = ? AND email IS NOT NULL",
                  DB_ARGS(DBA_CSTR(c->t.owner)), &q);
    if (rc == DB_OK && (rc = db_next(q)) == 1) {
        json_t *vars = json_pack("{s:s, s:s, s:s%, s:s%}", "name", db_text(q, 1).p, "subject", c->t.subject,
                                 "body", c->body.p, c->body.len, "ticket_id", c->ticket_id.p, c->ticket_id.len);
        rc = vars ? mail_enqueue(db, db_text(q, 0).p, "support_reply", vars) : DB_ERR;
        json_decref(vars);
        if (rc == MAIL_EINVAL)
            rc = DB_OK;
    }
    db_res_free(q);
    return rc < 0 ? rc : DB_OK;
}

static int h_post_message(struct req *r)
{
    struct post_ctx c = {.ticket_id = req_param(r, "id")};
    if (ticket_load(r, c.ticket_id, &c.t))
        return HTTP_EFAIL;
    c.staff = acts_as_staff(r, &c.t);
    c.internal = json_is_true(json_object_get(r->body, "internal"));
    const json_t *b = json_object_get(r->body, "body");
    c.body = str_make(json_string_value(b), json_string_length(b));
    c.attachments = json_object_get(r->body, "attachments");
    if (c.internal && !identity_is_staff(r))
        return http_fail(r, 403, "FORBIDDEN", "internal notes are for staff");
    if (!strcmp(c.t.status, "closed") && !c.internal)
        return http_fail(r, 409, "CONFLICT", "the ticket is closed: reopen it first");
    uuid7_str(c.id);
    if (req_tx(r, DB_TX_WRITE, tx_post, &c))
        return HTTP_EFAIL;
    struct db_res *q = NULL;
    int rc = db_query(r->db, "SELECT " MESSAGE_COLS " FROM ticket_messages WHERE id = ?", DB_ARGS(DBA_CSTR(c.id)), &q);
    if (rc == DB_OK && (rc = db_next(q)) == 1)
        write_message(&r->w, q);
    db_res_free(q);
    if (rc <= 0)
        return http_db_fail(r, rc < 0 ? rc : DB_ERR);
    r->status = 201;
    notify(SUPPORT_TICKET_MESSAGE, c.ticket_id, str_c(c.t.owner), str_c(c.t.assignee), r->user_id, str_c(c.id),
           c.internal);
    return 0;
}

/* GET /tickets/{id}/attachments/{file_id}: the ticket's owner and staff; an
 * internal note's attachment staff only; anyone else 404. */
static int h_attachment(struct req *r)
{
    str_t id = req_param(r, "id"), fid = req_param(r, "file_id");
    static const char *const allowed[] = {"variant", NULL};
    if (http_query_allow(r, allowed))
        return HTTP_EFAIL;
    struct ticket t;
    if (ticket_load(r, id, &t))
        return HTTP_EFAIL;
    int64_t one = 0;
    bool found = false;
    int rc = DB_OK;
    if (uuid_valid(fid) && identity_is_staff(r))
        rc = db_query_int(r->db,
                          "SELECT 1 FROM ticket_attachments a JOIN ticket_messages m ON m.id = a.message_id "
                          "WHERE m.ticket_id = ? AND a.file_id = ?",
                          DB_ARGS(DBA_TEXT(id), DBA_TEXT(fid)), &one, &found);
    else if (uuid_valid(fid))
        rc = db_query_int(r->db,
                          "SELECT 1 FROM ticket_attachments a JOIN ticket_messages m ON m.id = a.message_id "
                          "WHERE m.ticket_id = ? AND a.file_id = ? AND m.internal = ?",
                          DB_ARGS(DBA_TEXT(id), DBA_TEXT(fid), DBA_BOOL(false)), &one, &found);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (!found)
        return http_fail(r, 404, "NOT_FOUND", "no such attachment");
    return files_send(r, fid, req_query(r, "variant"), 0);
}

/* ---- assign, close, reopen ---- */

struct change_ctx {
    str_t id;
    const char *action;   /* audit action */
    const char *sql;      /* the conditional UPDATE: args now, x, id (x: the assignee or now again) */
    str_t assignee;       /* assign: empty = unassign */
    bool assign;
    const char *conflict; /* message when the condition fails */
};

static int tx_change(struct req *r, void *arg)
{
    struct change_ctx *c = arg;
    int64_t n = 0, now = time_now_ms();
    db_arg x = !c->assign ? DBA_INT(now) : c->assignee.len ? DBA_TEXT(c->assignee) : DBA_NULL;
    int rc = db_exec(r->db, c->sql, DB_ARGS(DBA_INT(now), x, DBA_TEXT(c->id)), &n);
    if (rc != DB_OK)
        return rc;
    if (n == 0)
        return http_fail(r, 409, "CONFLICT", "%s", c->conflict);
    if (!identity_is_staff(r))
        return DB_OK;
    json_t *after = c->assign ? json_pack("{s:s?}", "assignee_id", c->assignee.len ? c->assignee.p : NULL) : NULL;
    struct audit_entry e = {.action = c->action, .category = "support", .target_type = "ticket", .target_id = c->id,
                            .after = after, .success = true};
    rc = audit_record_req(r, &e);
    json_decref(after);
    return rc;
}

static int run_change(struct req *r, struct change_ctx *c, enum support_event_kind kind)
{
    struct ticket t;
    c->id = req_param(r, "id");
    if (ticket_load(r, c->id, &t))
        return HTTP_EFAIL;
    if (req_tx(r, DB_TX_WRITE, tx_change, c))
        return HTTP_EFAIL;
    if (c->assign)
        (void)str_copy(t.assignee, c->assignee.len ? c->assignee.p : "", sizeof(t.assignee));
    notify(kind, c->id, str_c(t.owner), str_c(t.assignee), r->user_id, STR_NULL, false);
    return resource_respond(r, &support_tickets, c->id, 200);
}

static int h_assign(struct req *r)
{
    const json_t *u = json_object_get(r->body, "user_id");
    struct change_ctx c = {.action = "ticket.assign", .assign = true,
                           .sql = "UPDATE tickets SET updated_at = ms_ts(?), assignee_id = ?, version = version + 1 "
                                  "WHERE id = ?",
                           .conflict = "the ticket changed"};
    if (json_is_string(u)) {
        c.assignee = str_make(json_string_value(u), json_string_length(u));
        int64_t one = 0;
        bool found = false;
        int rc = uuid_valid(c.assignee)
                     ? db_query_int(r->db, "SELECT 1 FROM users WHERE id = ? AND role IN ('admin', 'moderator')",
                                    DB_ARGS(DBA_TEXT(c.assignee)), &one, &found)
                     : DB_OK;
        if (rc != DB_OK)
            return http_db_fail(r, rc);
        if (!found)
            return http_invalid(r, "user_id", "must be a staff member (admin or moderator)");
    }
    return run_change(r, &c, SUPPORT_TICKET_ASSIGNED);
}

static int h_close(struct req *r)
{
    struct change_ctx c = {.action = "ticket.close",
                           .sql = "UPDATE tickets SET resolved_at = ms_ts(?), updated_at = ms_ts(?), status = 'closed', "
                                  "version = version + 1 WHERE id = ? AND status != 'closed'",
                           .conflict = "the ticket is already closed"};
    return run_change(r, &c, SUPPORT_TICKET_CLOSED);
}

static int h_reopen(struct req *r)
{
    struct change_ctx c = {.action = "ticket.reopen",
                           .sql = "UPDATE tickets SET updated_at = ms_ts(?), status = 'open', resolved_at = NULL, "
                                  "version = version + 1 WHERE ms_ts(?) IS NOT NULL AND id = ? AND status = 'closed'",
                           .conflict = "only a closed ticket can be reopened"};
    return run_change(r, &c, SUPPORT_TICKET_REOPENED);
}

/* ---- personal data ---- */

static int export_data(struct db *db, str_t user_id, struct jw *w)
{
    int rc;
    jw_obj_begin(w);
    jw_key(w, "tickets");
    if ((rc = resource_export_rows(db, user_id, &support_tickets, w)) != DB_OK)
        return rc;
    jw_obj_end(w);
    return DB_OK;
}

static const struct user_data_hooks support_user_data = {.name = "support", .export_data = export_data};

/* ---- module ---- */

static const struct json_field message_f[] = {
    {.name = "body", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 20000},
    {.name = "internal", .type = JF_BOOL, .description = "a staff note the owner never sees (staff only)"},
    {.name = "attachments", .type = JF_ARRAY_STR, .max = SUPPORT_ATTACH_MAX,
     .description = "ids of files the author uploaded (POST /files), at most 10"},
    {0}};
static const struct json_schema message_s = {message_f, false};
static const struct json_field assign_f[] = {
    {.name = "user_id", .type = JF_STRING, .flags = JF_REQUIRED | JF_NULLABLE, .max = 64,
     .description = "a staff member's id, or null to unassign"},
    {0}};
static const struct json_schema assign_s = {assign_f, false};
static const struct json_field empty_f[] = {{0}};
static const struct json_schema empty_s = {empty_f, false};

#define TICKET_OUT .output = OPENAPI_JSON({"$ref": "#/components/schemas/Ticket"})
#define MSG_OUT .output = OPENAPI_JSON({"$ref": "#/components/schemas/TicketMessage"})

static struct openapi_schema message_schema = {
    .name = "TicketMessage",
    .json = OPENAPI_JSON({"type": "object",
        "required": ["id", "ticket_id", "author_id", "body", "internal", "from_staff", "attachments", "created_at"],
        "properties": {
        "id": {"type": "string", "format": "uuid"}, "ticket_id": {"type": "string", "format": "uuid"},
        "author_id": {"type": ["string", "null"], "format": "uuid"}, "body": {"type": "string"},
        "internal": {"type": "boolean", "description": "a staff note; never shown to the owner"},
        "from_staff": {"type": "boolean"},
        "attachments": {"type": "array", "description": "files the author attached; url serves the bytes to the ticket's owner and staff (an internal note's: staff only)",
            "items": {"type": "object", "required": ["id", "filename", "size", "mime_type", "url"], "properties": {
                "id": {"type": "string", "format": "uuid", "description": "the file's id"},
                "filename": {"type": "string"}, "size": {"type": "integer"}, "mime_type": {"type": "string"},
                "url": {"type": "string", "description": "GET /api/v1/tickets/{id}/attachments/{file_id}"}}}},
        "created_at": {"type": "string", "format": "date-time"}}}),
};

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/tickets/{id}/messages", .handler = h_messages, .auth = AUTH_USER,
     .rl = RL_READ, .flags = ROUTE_PAGINATED,
     .summary = "A ticket's messages, oldest first (internal notes for staff only); clears the reader's unread count",
     .tag = "support", MSG_OUT},
    {.method = "POST", .pattern = "/api/v1/tickets/{id}/messages", .handler = h_post_message, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &message_s,
     .summary = "Add a message (owner or staff); staff may add internal notes; a staff reply mails the owner",
     .tag = "support", .errors = "409", MSG_OUT},
    {.method = "GET", .pattern = "/api/v1/tickets/{id}/attachments/{file_id}", .handler = h_attachment,
     .auth = AUTH_USER, .rl = RL_READ,
     .summary = "An attachment's bytes (?variant= for images): the ticket's owner and staff; an internal note's "
                "attachment staff only; local storage answers the bytes, S3 a redirect to a presigned GET",
     .tag = "support", .output_type = "*/*",
     .params = OPENAPI_JSON([{"name": "variant", "in": "query", "required": false,
                              "schema": {"type": "string", "enum": ["thumbnail", "medium", "large"]}}]),
     .output = OPENAPI_JSON({"type": "string", "format": "binary", "description": "the bytes, as the file's mime_type"}),
     .status = 302},
    {.method = "POST", .pattern = "/api/v1/tickets/{id}/assign", .handler = h_assign, .auth = AUTH_STAFF,
     .rl = RL_WRITE, .input = &assign_s, .summary = "Assign a ticket to a staff member (or null: unassign)",
     .tag = "support", TICKET_OUT},
    {.method = "POST", .pattern = "/api/v1/tickets/{id}/close", .handler = h_close, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &empty_s, .flags = ROUTE_BODY_OPTIONAL,
     .summary = "Close a ticket (owner or staff): resolved_at is set", .tag = "support", .errors = "409",
     TICKET_OUT},
    {.method = "POST", .pattern = "/api/v1/tickets/{id}/reopen", .handler = h_reopen, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &empty_s, .flags = ROUTE_BODY_OPTIONAL,
     .summary = "Reopen a closed ticket (owner or staff)", .tag = "support", .errors = "409", TICKET_OUT},
};

/* GET list and GET one go through sweep_for_read first, so the engine registers
 * only create and update; these two wrap it. */
static struct route read_routes[] = {
    {.method = "GET", .pattern = "/api/v1/tickets", .handler = h_list, .auth = AUTH_USER, .rl = RL_READ,
     .flags = ROUTE_PAGINATED,
     .summary = "Tickets: the caller's own (staff: all); filters status, priority, category, assignee_id, "
                "sla_breached; default order priority, then oldest first",
     .tag = "support", TICKET_OUT},
    {.method = "GET", .pattern = "/api/v1/tickets/{id}", .handler = h_get, .auth = AUTH_USER, .rl = RL_READ,
     .summary = "One ticket (owner or staff)", .tag = "support", TICKET_OUT},
};

static void register_routes(void)
{
    resource_register(&support_tickets);
    router_add(routes, ARRAY_LEN(routes));
    resource_on_change(RES_HOOK_TX, on_tx, NULL);
    resource_on_change(RES_HOOK_COMMIT, on_commit, NULL);
    router_add(read_routes, ARRAY_LEN(read_routes));
    openapi_schema_add(&message_schema);
}

static void register_jobs(void)
{
    static const struct job_kind kind = {.kind = "support.sla_sweep", .handler = job_sla, .queue = "default"};
    jobs_register(&kind);
    cron_register("support.sla_sweep", "* * * * *", "support.sla_sweep", "{}");
    mail_template_register("support_reply", "New reply to your ticket: {{subject}}",
                           "Hello {{name}},\n\nsupport answered your ticket \"{{subject}}\":\n\n{{body}}\n\n"
                           "Ticket: {{ticket_id}}\n",
                           "<p>Hello {{name}},</p><p>support answered your ticket <b>{{subject}}</b>:</p>"
                           "<blockquote>{{body}}</blockquote><p>Ticket: {{ticket_id}}</p>");
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    (void)db;
    (void)err;
    if (cfg->env == ENV_TEST && !g_notify)
        support_set_notifier(log_notifier, NULL);
    identity_register_user_data(&support_user_data);
    return 0;
}

const struct module support_module = {
    .name = "support",
    .config = config,
    .register_routes = register_routes,
    .register_jobs = register_jobs,
    .init = init,
};
