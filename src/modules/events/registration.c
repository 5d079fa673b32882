/*
 * registration.c — registering for an event, the waitlist, cancelling,
 * check-in and the ticket's QR image (API.md §10, issue 12 item 1).
 *
 *   POST  /api/v1/events/{id}/register        (Idempotency-Key) 201 confirmed or
 *                                             waitlisted; 409 full, duplicate,
 *                                             cancelled, started or paid
 *   GET   /api/v1/events/{id}/registrations   (staff) with the list conventions
 *   GET   /api/v1/me/registrations            the caller's own
 *   POST  /api/v1/registrations/{id}/cancel   owner or staff; frees the seat,
 *                                             which goes to the waitlist's first
 *   PATCH /api/v1/registrations/{id}/status   (staff) {status: confirmed|cancelled}
 *   POST  /api/v1/events/{id}/checkin {code}  (staff) exactly once; a second scan
 *                                             is 409 naming the time of the first
 *   GET   /api/v1/registrations/{id}/qr.png   owner or staff: the code as a QR image
 *
 * Seats. One conditional statement takes a seat inside the registration's
 * write transaction:
 *   UPDATE events SET confirmed_count = confirmed_count + 1
 *    WHERE id = ? AND (capacity IS NULL OR confirmed_count < capacity)
 * PostgreSQL locks the row and re-checks the condition on the committed row
 * after waiting for another writer (READ COMMITTED); SQLite has one writer at
 * a time (BEGIN IMMEDIATE). However transactions interleave, in one process
 * or several on one database, confirmed registrations never pass capacity
 * (the table's CHECK is the last line of defence). One registration per user
 * and event is the UNIQUE (event_id, user_id) index: two racing requests of
 * one user cannot both insert; the loser's transaction (seat included) rolls
 * back as 409. A full event with a waitlist hands out waitlist_seq + 1 from
 * the same row, so positions follow commit order without gaps.
 *
 * Lock order (PostgreSQL): registration and seat take the event row first;
 * cancel takes the registration row, then the event row; promotion takes the
 * event row, then waitlisted rows. No path holds the event row and waits for
 * a confirmed registration's row, so there is no cycle.
 *
 * Paid events (price > 0). The seat is taken by the same statement, and
 * the registration is 'pending' with an order of kind "event" (its
 * order_id) made in the same transaction; the client pays it with
 * POST /orders/{id}/pay. The orders module tells events__order_changed of
 * every status change of that order inside its own transaction: paid →
 * confirmed (amount_paid); cancelled (by the buyer, or expired after
 * TEMEL_ORDER_TTL_S) or refunded → the registration is cancelled, its seat
 * freed once and the waitlist promoted (a promoted attendee of a paid event
 * gets a pending registration and an order of their own). Cancelling a
 * pending registration cancels its unpaid order. Seats taken
 * (confirmed_count) are pending + confirmed, never more than capacity.
 *
 * The code is "<registration id>.<hex HMAC-SHA256(event id | registration
 * id)[:32]>" under a key derived from TEMEL_SECRET_KEY: a scanner verifies it
 * before touching the database, and a code cannot be made from an id.
 */
#include <sodium.h>

#include "auth/crypto.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "core/workpool.h"
#include "docs/qr.h"
#include "modules/audit/audit.h"
#include "modules/events/events_internal.h"
#include "modules/orders/orders.h"
#include "modules/users/identity.h"
#include "transport/mail.h"

#include "core/banned.h"

#define CODE_LEN (UUID_STR_LEN + 1 + EVENTS_CODE_SIG_HEX)
#define REG_EVENT_STATUS "SELECT event_id, status FROM event_registrations WHERE id = ?"

static unsigned char code_key[SECRET_KEY_BYTES];

int events__code_config(const struct config *cfg, struct buf *err)
{
    return secret_derive(cfg, "temel.events.checkin-code.v1", code_key, err);
}

static void code_sig(str_t event_id, str_t reg_id, char out[65])
{
    struct buf m = BUF_INIT(BUF_MAX_SMALL);
    (void)buf_puts(&m, "temel.events.code.v1|");
    (void)buf_put(&m, event_id);
    (void)buf_putc(&m, '|');
    (void)buf_put(&m, reg_id);
    hmac_sha256_hex(code_key, buf_str(&m), out);
    buf_free(&m);
}

static void code_make(str_t event_id, const char *reg_id, char out[CODE_LEN + 1])
{
    char sig[65];
    code_sig(event_id, str_c(reg_id), sig);
    memcpy(out, reg_id, UUID_STR_LEN);
    out[UUID_STR_LEN] = '.';
    memcpy(out + UUID_STR_LEN + 1, sig, EVENTS_CODE_SIG_HEX);
    out[CODE_LEN] = '\0';
}

/* A well-formed code whose signature holds for event_id: its registration id. */
static bool code_check(str_t code, str_t event_id, str_t *reg_id)
{
    if (code.len != CODE_LEN || code.p[UUID_STR_LEN] != '.')
        return false;
    *reg_id = str_make(code.p, UUID_STR_LEN);
    if (!uuid_valid(*reg_id))
        return false;
    char sig[65];
    code_sig(event_id, *reg_id, sig);
    return ct_equal(str_make(code.p + UUID_STR_LEN + 1, EVENTS_CODE_SIG_HEX), str_make(sig, EVENTS_CODE_SIG_HEX));
}

/* ---- mail ---- */

static int mail_user(struct db *db, str_t user_id, str_t event_id, const char *tmpl)
{
    struct db_res *q = NULL;
    int rc = db_query(db,
                      "SELECT u.email, u.name, e.title, ts_ms(e.starts_at) FROM users u, events e "
                      "WHERE u.id = ? AND e.id = ? AND u.email IS NOT NULL",
                      DB_ARGS(DBA_TEXT(user_id), DBA_TEXT(event_id)), &q);
    if (rc == DB_OK && (rc = db_next(q)) == 1) {
        char when[TIME_RFC3339_LEN + 1];
        time_format_rfc3339(db_int(q, 3), when);
        json_t *vars = json_pack("{s:s, s:s, s:s}", "name", db_text(q, 1).p, "title", db_text(q, 2).p,
                                 "starts_at", when);
        rc = vars ? mail_enqueue(db, db_text(q, 0).p, tmpl, vars) : DB_ERR;
        json_decref(vars);
        if (rc == MAIL_EINVAL)
            rc = DB_OK; /* an address we will not mail: the seat matters more than the note */
    }
    db_res_free(q);
    return rc < 0 ? rc : DB_OK;
}

/* The first row's first one or two text columns into a and b (b may be
 * NULL): 1 found, 0 no row, or a db_rc. */
static int row_texts(struct db *db, const char *sql, const db_arg *args, size_t nargs, char *a, size_t an, char *b,
                     size_t bn)
{
    struct db_res *q = NULL;
    int rc = db_query(db, sql, args, nargs, &q);
    if (rc == DB_OK && (rc = db_next(q)) == 1) {
        (void)str_copy(a, db_text(q, 0).p, an);
        if (b)
            (void)str_copy(b, db_text(q, 1).p, bn);
    }
    db_res_free(q);
    return rc;
}

/* ---- seats and the waitlist ---- */

static int take_seat(struct db *db, str_t event_id, bool *taken)
{
    int64_t n = 0;
    int rc = db_exec(db,
                     "UPDATE events SET confirmed_count = confirmed_count + 1 "
                     "WHERE id = ? AND (capacity IS NULL OR confirmed_count < capacity)",
                     DB_ARGS(DBA_TEXT(event_id)), &n);
    *taken = n == 1;
    return rc;
}

static int free_seat(struct db *db, str_t event_id)
{
    return db_exec(db, "UPDATE events SET confirmed_count = confirmed_count - 1 WHERE id = ? AND confirmed_count > 0",
                   DB_ARGS(DBA_TEXT(event_id)), NULL);
}

/* A paid event's seat for user: a pending order of kind "event" (id into
 * order); a free event: nothing (order stays empty). r: the user's own
 * registering request, or NULL (a promotion: mailed in the user's locale).
 * Inside the caller's transaction. 0 or a db_rc. */
static int seat_order(struct db *db, struct req *r, str_t event_id, str_t user_id, char order[UUID_STR_LEN + 1])
{
    struct db_res *q = NULL;
    order[0] = '\0';
    int rc = db_query(db,
                      "SELECT e.price, e.currency, e.title, u.locale FROM events e JOIN users u ON u.id = ? "
                      "WHERE e.id = ? AND e.price > 0",
                      DB_ARGS(DBA_TEXT(user_id), DBA_TEXT(event_id)), &q);
    if (rc == DB_OK && (rc = db_next(q)) == 1) {
        char cur[8], loc[8] = "en";
        (void)str_copy(cur, db_text(q, 1).p, sizeof(cur));
        if (!db_isnull(q, 3))
            (void)str_copy(loc, db_text(q, 3).p, sizeof(loc));
        struct orders_event_seat seat = {.event_id = event_id, .title = db_text(q, 2), .price = db_int(q, 0),
                                         .currency = cur};
        rc = orders_create_event(db, r, user_id, loc, &seat, order);
    }
    db_res_free(q);
    return rc < 0 ? rc : DB_OK;
}

int events__promote(struct db *db, str_t event_id, int64_t *promoted)
{
    int64_t done = 0;
    int rc = DB_OK;
    for (int i = 0; i < EVENTS_PROMOTE_MAX && rc == DB_OK; i++) {
        char reg[UUID_STR_LEN + 1] = "", user[UUID_STR_LEN + 1] = "";
        rc = row_texts(db,
                       "SELECT id, user_id FROM event_registrations WHERE event_id = ? AND status = 'waitlisted' "
                       "ORDER BY waitlist_position LIMIT 1",
                       DB_ARGS(DBA_TEXT(event_id)), reg, sizeof(reg), user, sizeof(user));
        if (rc <= 0)
            break; /* no one waits, or an error */
        bool taken;
        if ((rc = take_seat(db, event_id, &taken)) != DB_OK || !taken)
            break;
        int64_t n = 0;
        char order[UUID_STR_LEN + 1] = "";
        if ((rc = seat_order(db, NULL, event_id, str_c(user), order)) != DB_OK)
            break;
        rc = db_exec(db,
                     "UPDATE event_registrations SET status = ?, order_id = ?, waitlist_position = NULL, "
                     "version = version + 1, updated_at = ms_ts(?) WHERE id = ? AND status = 'waitlisted'",
                     DB_ARGS(DBA_CSTR(order[0] ? "pending" : "confirmed"), order[0] ? DBA_CSTR(order) : DBA_NULL,
                             DBA_INT(time_now_ms()), DBA_CSTR(reg)),
                     &n);
        if (rc == DB_OK && n == 0) {
            rc = DB_EBUSY; /* cancelled meanwhile (its order is made): run the transaction again */
            break;
        }
        if (rc == DB_OK)
            rc = mail_user(db, str_c(user), event_id, "event_promoted");
        done++;
    }
    if (promoted)
        *promoted = done;
    return rc < 0 ? rc : DB_OK;
}

/* Cancel a registration inside the caller's transaction; a confirmed one's
 * seat goes to the waitlist. 0, 1 when it was already cancelled, or a db_rc. */
static int cancel_reg(struct db *db, str_t reg_id)
{
    char event[UUID_STR_LEN + 1] = "", status[16] = "";
    int rc = row_texts(db, REG_EVENT_STATUS, DB_ARGS(DBA_TEXT(reg_id)), event, sizeof(event), status, sizeof(status));
    if (rc < 0)
        return rc;
    if (rc == 0 || !strcmp(status, "cancelled"))
        return 1;
    int64_t n = 0, now = time_now_ms();
    rc = db_exec(db,
                 "UPDATE event_registrations SET status = 'cancelled', cancelled_at = ms_ts(?), "
                 "waitlist_position = NULL, version = version + 1, updated_at = ms_ts(?) WHERE id = ? AND status = ?",
                 DB_ARGS(DBA_INT(now), DBA_INT(now), DBA_TEXT(reg_id), DBA_CSTR(status)), &n);
    if (rc == DB_OK && n == 0)
        return DB_EBUSY; /* changed since we read it: run the transaction again */
    if (rc == DB_OK && (!strcmp(status, "confirmed") || !strcmp(status, "pending"))) {
        rc = free_seat(db, str_c(event));
        if (rc == DB_OK)
            rc = events__promote(db, str_c(event), NULL);
    }
    if (rc == DB_OK && !strcmp(status, "pending")) {
        /* the seat's unpaid order goes too (it tells us back: nothing left to do) */
        char order[UUID_STR_LEN + 1] = "";
        rc = row_texts(db, "SELECT order_id FROM event_registrations WHERE id = ? AND order_id IS NOT NULL",
                       DB_ARGS(DBA_TEXT(reg_id)), order, sizeof(order), NULL, 0);
        if (rc == 1)
            rc = orders_cancel_pending(db, str_c(order), "registration_cancelled");
    }
    return rc < 0 ? rc : DB_OK;
}

int events__order_changed(struct db *db, str_t order_id, const char *to)
{
    char reg[UUID_STR_LEN + 1] = "";
    int rc;
    if (!strcmp(to, "paid")) {
        int64_t n = 0;
        rc = db_exec(db,
                     "UPDATE event_registrations SET status = 'confirmed', amount_paid = (SELECT total FROM orders "
                     "WHERE id = ?), version = version + 1, updated_at = ms_ts(?) WHERE order_id = ? AND status = "
                     "'pending'",
                     DB_ARGS(DBA_TEXT(order_id), DBA_INT(time_now_ms()), DBA_TEXT(order_id)), &n);
        if (rc == DB_OK && n == 1) {
            char user[UUID_STR_LEN + 1] = "", event[UUID_STR_LEN + 1] = "";
            rc = row_texts(db, "SELECT user_id, event_id FROM event_registrations WHERE order_id = ?",
                           DB_ARGS(DBA_TEXT(order_id)), user, sizeof(user), event, sizeof(event));
            if (rc == 1)
                rc = mail_user(db, str_c(user), str_c(event), "event_paid");
        }
        return rc < 0 ? rc : DB_OK;
    }
    if (strcmp(to, "cancelled") && strcmp(to, "refunded"))
        return DB_OK;
    /* unpaid and given up (or expired), or paid and refunded: the seat goes back once */
    rc = row_texts(db,
                   "SELECT id FROM event_registrations WHERE order_id = ? AND status IN ('pending', 'confirmed')",
                   DB_ARGS(DBA_TEXT(order_id)), reg, sizeof(reg), NULL, 0);
    if (rc <= 0)
        return rc;
    rc = cancel_reg(db, str_c(reg));
    return rc < 0 ? rc : DB_OK;
}

/* ---- register ---- */

struct reg_ctx {
    str_t event_id;
    char id[UUID_STR_LEN + 1];
};

static int tx_register(struct req *r, void *arg)
{
    struct reg_ctx *c = arg;
    struct db *db = r->db;
    struct db_res *q = NULL;
    char status[16] = "";
    int64_t price = 0, starts = 0;
    bool waitlist = false;
    int rc = db_query(db,
                      "SELECT status, price, ts_ms(starts_at), waitlist FROM events WHERE id = ? AND deleted_at IS NULL",
                      DB_ARGS(DBA_TEXT(c->event_id)), &q);
    if (rc == DB_OK && (rc = db_next(q)) == 1) {
        (void)str_copy(status, db_text(q, 0).p, sizeof(status));
        price = db_int(q, 1);
        starts = db_int(q, 2);
        waitlist = db_int(q, 3) != 0;
    }
    db_res_free(q);
    if (rc < 0)
        return rc;
    if (rc == 0 || !strcmp(status, "draft"))
        return http_fail(r, 404, "NOT_FOUND", "no such event");
    if (!strcmp(status, "cancelled"))
        return http_fail(r, 409, "CONFLICT", "the event is cancelled");
    if (starts <= time_now_ms())
        return http_fail(r, 409, "CONFLICT", "registration is closed: the event has started");
    if (price > 0 && identity_is_guest(r))
        return http_fail(r, 403, "FORBIDDEN", "guests cannot buy tickets: register or sign in first");

    /* one per user: an earlier cancelled registration is reused */
    char old[UUID_STR_LEN + 1] = "", old_status[16] = "";
    rc = row_texts(db, "SELECT id, status FROM event_registrations WHERE event_id = ? AND user_id = ?",
                   DB_ARGS(DBA_TEXT(c->event_id), DBA_TEXT(r->user_id)), old, sizeof(old), old_status,
                   sizeof(old_status));
    if (rc < 0)
        return rc;
    if (rc == 1 && strcmp(old_status, "cancelled"))
        return http_fail(r, 409, "CONFLICT", "already registered for this event (%s)", old_status);

    bool taken;
    if ((rc = take_seat(db, c->event_id, &taken)) != DB_OK)
        return rc;
    int64_t pos = 0;
    if (!taken) {
        if (!waitlist)
            return http_fail(r, 409, "CONFLICT", "the event is full");
        bool found = false;
        rc = db_query_int(db, "UPDATE events SET waitlist_seq = waitlist_seq + 1 WHERE id = ? RETURNING waitlist_seq",
                          DB_ARGS(DBA_TEXT(c->event_id)), &pos, &found);
        if (rc != DB_OK)
            return rc;
        if (!found)
            return DB_ERR;
    }
    /* a paid event's seat is held by a pending order until it is paid */
    char order[UUID_STR_LEN + 1] = "";
    if (taken && price > 0) {
        rc = seat_order(db, r, c->event_id, r->user_id, order);
        if (rc != DB_OK)
            return rc;
    }
    const char *st = !taken ? "waitlisted" : order[0] ? "pending" : "confirmed";
    db_arg posarg = taken ? DBA_NULL : DBA_INT(pos), orderarg = order[0] ? DBA_CSTR(order) : DBA_NULL;
    int64_t now = time_now_ms();
    if (old[0]) {
        memcpy(c->id, old, sizeof(c->id));
        return db_exec(db,
                       "UPDATE event_registrations SET status = ?, waitlist_position = ?, order_id = ?, "
                       "amount_paid = 0, cancelled_at = NULL, version = version + 1, updated_at = ms_ts(?) "
                       "WHERE id = ? AND status = 'cancelled'",
                       DB_ARGS(DBA_CSTR(st), posarg, orderarg, DBA_INT(now), DBA_CSTR(old)), NULL);
    }
    char code[CODE_LEN + 1];
    uuid7_str(c->id);
    code_make(c->event_id, c->id, code);
    return db_exec(db,
                   "INSERT INTO event_registrations (id, event_id, user_id, status, waitlist_position, code, "
                   "order_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ms_ts(?), ms_ts(?))",
                   DB_ARGS(DBA_CSTR(c->id), DBA_TEXT(c->event_id), DBA_TEXT(r->user_id), DBA_CSTR(st), posarg,
                           DBA_CSTR(code), orderarg, DBA_INT(now), DBA_INT(now)),
                   NULL);
}

static int h_register(struct req *r)
{
    struct reg_ctx c = {.event_id = req_param(r, "id")};
    if (!uuid_valid(c.event_id))
        return http_fail(r, 404, "NOT_FOUND", "no such event");
    if (req_tx(r, DB_TX_WRITE, tx_register, &c))
        return HTTP_EFAIL;
    return resource_respond(r, &events_registrations, str_c(c.id), 201);
}

/* ---- lists ---- */

static int h_event_regs(struct req *r)
{
    str_t id = req_param(r, "id");
    if (resource_require(r, &events_events, id))
        return HTTP_EFAIL;
    return resource_list(r, &events_registrations, "t.event_id = ?", DB_ARGS(DBA_TEXT(id)));
}

static int h_my_regs(struct req *r)
{
    return resource_list(r, &events_registrations, "t.user_id = ?", DB_ARGS(DBA_TEXT(r->user_id)));
}

/* ---- cancel and staff status ---- */

struct status_ctx {
    str_t id;
    const char *to; /* "cancelled" | "confirmed" */
};

static int audit_reg(struct req *r, const char *action, str_t id, const char *to)
{
    if (!identity_is_staff(r))
        return DB_OK;
    json_t *after = json_pack("{s:s}", "status", to);
    struct audit_entry e = {.action = action, .category = "events", .target_type = "registration",
                            .target_id = id, .after = after, .success = true};
    int rc = after ? audit_record_req(r, &e) : DB_ERR;
    json_decref(after);
    return rc;
}

static int tx_status(struct req *r, void *arg)
{
    struct status_ctx *c = arg;
    int rc;
    if (!strcmp(c->to, "cancelled")) {
        rc = cancel_reg(r->db, c->id);
        if (rc == 1)
            return http_fail(r, 409, "CONFLICT", "the registration is already cancelled");
    } else {
        char event[UUID_STR_LEN + 1] = "", status[16] = "";
        rc = row_texts(r->db, REG_EVENT_STATUS, DB_ARGS(DBA_TEXT(c->id)), event, sizeof(event), status,
                       sizeof(status));
        if (rc < 0)
            return rc;
        if (strcmp(status, "waitlisted"))
            return http_fail(r, 409, "CONFLICT", "only a waitlisted registration can be confirmed (it is %s)",
                             status);
        bool taken;
        if ((rc = take_seat(r->db, str_c(event), &taken)) != DB_OK)
            return rc;
        if (!taken)
            return http_fail(r, 409, "CONFLICT", "the event is full");
        int64_t n = 0;
        rc = db_exec(r->db,
                     "UPDATE event_registrations SET status = 'confirmed', waitlist_position = NULL, "
                     "version = version + 1, updated_at = ms_ts(?) WHERE id = ? AND status = 'waitlisted'",
                     DB_ARGS(DBA_INT(time_now_ms()), DBA_TEXT(c->id)), &n);
        if (rc == DB_OK && n == 0)
            rc = DB_EBUSY;
    }
    if (rc == DB_OK)
        rc = audit_reg(r, "registration.status", c->id, c->to);
    return rc;
}

static int run_status(struct req *r, const char *to)
{
    struct status_ctx c = {.id = req_param(r, "id"), .to = to};
    if (resource_require(r, &events_registrations, c.id))
        return HTTP_EFAIL;
    if (req_tx(r, DB_TX_WRITE, tx_status, &c))
        return HTTP_EFAIL;
    return resource_respond(r, &events_registrations, c.id, 200);
}

static int h_cancel(struct req *r) { return run_status(r, "cancelled"); }

static int h_status(struct req *r)
{
    const char *to = json_string_value(json_object_get(r->body, "status"));
    return run_status(r, to);
}

/* ---- check-in ---- */

struct checkin_ctx {
    str_t event_id, reg_id;
};

static int tx_checkin(struct req *r, void *arg)
{
    struct checkin_ctx *c = arg;
    char status[16] = "";
    int rc = row_texts(r->db, "SELECT status FROM event_registrations WHERE id = ? AND event_id = ?",
                       DB_ARGS(DBA_TEXT(c->reg_id), DBA_TEXT(c->event_id)), status, sizeof(status), NULL, 0);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return http_fail(r, 404, "NOT_FOUND", "no registration with this code for this event");
    if (strcmp(status, "confirmed"))
        return http_fail(r, 409, "CONFLICT", "the registration is %s, not confirmed", status);
    int64_t n = 0, now = time_now_ms();
    rc = db_exec(r->db,
                 "UPDATE event_registrations SET checked_in_at = ms_ts(?), version = version + 1, "
                 "updated_at = ms_ts(?) WHERE id = ? AND checked_in_at IS NULL",
                 DB_ARGS(DBA_INT(now), DBA_INT(now), DBA_TEXT(c->reg_id)), &n);
    if (rc != DB_OK)
        return rc;
    if (n == 0) {
        int64_t first = 0;
        bool found = false;
        rc = db_query_int(r->db, "SELECT ts_ms(checked_in_at) FROM event_registrations WHERE id = ?",
                          DB_ARGS(DBA_TEXT(c->reg_id)), &first, &found);
        if (rc != DB_OK)
            return rc;
        char when[TIME_RFC3339_LEN + 1];
        time_format_rfc3339(first, when);
        return http_fail(r, 409, "CONFLICT", "already checked in at %s", when);
    }
    return audit_reg(r, "registration.checkin", c->reg_id, "checked_in");
}

static int h_checkin(struct req *r)
{
    struct checkin_ctx c = {.event_id = req_param(r, "id")};
    str_t code = str_c(json_string_value(json_object_get(r->body, "code")));
    if (resource_require(r, &events_events, c.event_id))
        return HTTP_EFAIL;
    if (!code_check(code, c.event_id, &c.reg_id))
        return http_invalid(r, "code", "not a valid check-in code for this event");
    if (req_tx(r, DB_TX_WRITE, tx_checkin, &c))
        return HTTP_EFAIL;
    return resource_respond(r, &events_registrations, c.reg_id, 200);
}

/* ---- the QR image ---- */

struct qr_work {
    str_t text;
    struct buf png, err;
    int rc;
};

static void do_qr(void *arg)
{
    struct qr_work *w = arg;
    w->rc = qr_png(w->text, 8, &w->png, &w->err);
}

static int h_qr(struct req *r)
{
    struct db_res *q = NULL;
    if (resource_require_row(r, &events_registrations, req_param(r, "id"), "t.code", &q))
        return HTTP_EFAIL;
    char code[CODE_LEN + 1];
    (void)str_copy(code, db_text(q, 0).p, sizeof(code));
    db_res_free(q);
    struct qr_work w = {.text = str_c(code), .png = BUF_INIT(QR_PNG_MAX), .err = BUF_INIT(BUF_MAX_SMALL)};
    work_run(do_qr, &w);
    if (w.rc == 0)
        (void)buf_put(&r->out, buf_str(&w.png));
    buf_free(&w.png);
    if (w.rc) {
        http_fail(r, 500, "INTERNAL_ERROR", "the QR image could not be made");
        buf_free(&w.err);
        return HTTP_EFAIL;
    }
    buf_free(&w.err);
    r->content_type = "image/png";
    return 0;
}

/* ---- routes ---- */

static const struct json_field empty_f[] = {{0}};
static const struct json_schema empty_s = {empty_f, false};
static const char *const settable_status[] = {"confirmed", "cancelled", NULL};
static const struct json_field status_f[] = {
    {.name = "status", .type = JF_STRING, .flags = JF_REQUIRED, .enum_values = settable_status,
     .description = "confirmed (a waitlisted registration takes a free seat) or cancelled"},
    {0}};
static const struct json_schema status_s = {status_f, false};
static const struct json_field checkin_f[] = {
    {.name = "code", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 200,
     .description = "the registration's code, as in its QR image"},
    {0}};
static const struct json_schema checkin_s = {checkin_f, false};

#define REG_OUT .output = OPENAPI_JSON({"$ref": "#/components/schemas/Registration"})

static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/events/{id}/register", .handler = h_register, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &empty_s, .flags = ROUTE_IDEMPOTENT | ROUTE_BODY_OPTIONAL,
     .summary = "Register for a published event: confirmed while seats last (a paid event: pending, the seat "
                "held by an order of kind event in order_id, confirmed when Stripe reports it paid, released when "
                "it expires or is cancelled), then waitlisted (when the event has a waitlist) or 409; one "
                "registration per user",
     .tag = "events", .errors = "409", REG_OUT},
    {.method = "GET", .pattern = "/api/v1/events/{id}/registrations", .handler = h_event_regs, .auth = AUTH_STAFF,
     .rl = RL_READ, .flags = ROUTE_PAGINATED, .summary = "Registrations of an event (staff)", .tag = "events",
     REG_OUT},
    {.method = "GET", .pattern = "/api/v1/me/registrations", .handler = h_my_regs, .auth = AUTH_USER,
     .rl = RL_READ, .flags = ROUTE_PAGINATED, .summary = "The caller's registrations", .tag = "events", REG_OUT},
    {.method = "POST", .pattern = "/api/v1/registrations/{id}/cancel", .handler = h_cancel, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &empty_s, .flags = ROUTE_BODY_OPTIONAL,
     .summary = "Cancel a registration (owner or staff); its seat goes to the first on the waitlist; a pending "
                "one's unpaid order is cancelled (a paid one is refunded by staff: POST /admin/orders/{id}/refund)",
     .tag = "events", .errors = "409", REG_OUT},
    {.method = "PATCH", .pattern = "/api/v1/registrations/{id}/status", .handler = h_status, .auth = AUTH_STAFF,
     .rl = RL_WRITE, .input = &status_s, .summary = "Confirm a waitlisted registration or cancel one (staff)",
     .tag = "events", .errors = "409", REG_OUT},
    {.method = "POST", .pattern = "/api/v1/events/{id}/checkin", .handler = h_checkin, .auth = AUTH_STAFF,
     .rl = RL_WRITE, .input = &checkin_s,
     .summary = "Check a confirmed registration in by its code, exactly once (a second scan is 409 with the "
                "time of the first)",
     .tag = "events", .errors = "409", REG_OUT},
    {.method = "GET", .pattern = "/api/v1/registrations/{id}/qr.png", .handler = h_qr, .auth = AUTH_USER,
     .rl = RL_READ, .summary = "The registration's check-in code as a QR image (PNG; owner or staff)",
     .tag = "events", .output_type = "image/png", .output = OPENAPI_JSON({"type" : "string", "format" : "binary"})},
};

void events__registration_routes(void) { router_add(routes, ARRAY_LEN(routes)); }

/* Account deletion: the user's live registrations are cancelled first, so
 * their seats go back to the event (and its waitlist) before the rows go. */
int events__delete_user(struct db *db, str_t user_id)
{
    int rc = DB_OK;
    for (;;) {
        char reg[UUID_STR_LEN + 1] = "";
        rc = row_texts(db, "SELECT id FROM event_registrations WHERE user_id = ? AND status != 'cancelled' LIMIT 1",
                       DB_ARGS(DBA_TEXT(user_id)), reg, sizeof(reg), NULL, 0);
        if (rc <= 0)
            break;
        if ((rc = cancel_reg(db, str_c(reg))) < 0)
            break;
    }
    return rc < 0 ? rc : DB_OK;
}

/* A guest who signs up keeps its registrations (where the account has none
 * for the same event); the rest are cancelled so their seats come back. */
int events__migrate_guest(struct db *db, str_t guest_id, str_t user_id)
{
    int rc = db_exec(db,
                     "UPDATE event_registrations SET user_id = ?, version = version + 1 WHERE user_id = ? AND "
                     "event_id NOT IN (SELECT event_id FROM event_registrations WHERE user_id = ?)",
                     DB_ARGS(DBA_TEXT(user_id), DBA_TEXT(guest_id), DBA_TEXT(user_id)), NULL);
    return rc == DB_OK ? events__delete_user(db, guest_id) : rc;
}
