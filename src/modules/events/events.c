/*
 * events.c — events (API.md §10, issue 12 item 1) on the resource engine,
 * their analytics, the staff audit trail and the module entry.
 *
 *   /api/v1/events                 the public reads published and cancelled
 *                                  events (filters: starts_at range, city,
 *                                  online, category, status, price; q = full
 *                                  text over title and description); staff
 *                                  write and see drafts
 *   GET /api/v1/events/{id}/analytics   (staff) registrations, confirmed,
 *                                  waitlisted, cancelled, checked in,
 *                                  revenue, occupancy, daily trend
 *   registration.c: register, cancel, staff status, check-in, QR image
 *   reminders.c: the 24 h / 1 h reminder jobs
 *   ics.c: GET /api/v1/events/{id}/calendar.ics
 *
 * confirmed_count is written only by registration.c (and read-only to
 * clients); it is the seat counter taken atomically.
 */
#include "core/timeutil.h"
#include "modules/audit/audit.h"
#include "modules/events/events_internal.h"
#include "modules/orders/orders.h"
#include "modules/users/identity.h"

#include "core/banned.h"

/* ---- descriptors ---- */

static int event_check(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id);
static int event_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id);

static const char *const event_status[] = {"draft", "published", "cancelled", NULL};
static const struct rfield event_fields[] = {
    {.name = "title", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT | RF_SEARCH, .min = 1, .max = 200},
    {.name = "description", .type = RF_TEXT, .flags = RF_SEARCH, .max = 20000, .def = "\"\""},
    {.name = "category", .type = RF_TEXT, .flags = RF_FILTER | RF_SORT, .max = 100, .def = "\"\""},
    {.name = "city", .type = RF_TEXT, .flags = RF_FILTER | RF_SORT | RF_NULLABLE, .max = 100,
     .description = "null for online-only events"},
    {.name = "venue", .type = RF_TEXT, .max = 300, .def = "\"\""},
    {.name = "online", .type = RF_BOOL, .flags = RF_FILTER, .def = "false"},
    {.name = "online_url", .type = RF_TEXT, .flags = RF_NULLABLE, .max = 2000, .check = RC_URL},
    {.name = "starts_at", .type = RF_TIME, .flags = RF_REQUIRED | RF_FILTER | RF_SORT},
    {.name = "ends_at", .type = RF_TIME, .flags = RF_NULLABLE | RF_FILTER | RF_SORT},
    {.name = "capacity", .type = RF_INT, .flags = RF_NULLABLE | RF_FILTER | RF_SORT, .min = 1, .max = 1000000,
     .description = "seats; null = unlimited"},
    {.name = "waitlist", .type = RF_BOOL, .def = "false",
     .description = "when full, registrations join a waitlist promoted in order as seats free up"},
    {.name = "price", .type = RF_MONEY, .flags = RF_FILTER | RF_SORT, .def = "0"},
    {.name = "currency", .type = RF_TEXT, .check = RC_CURRENCY, .def = "\"TRY\""},
    {.name = "status", .type = RF_ENUM, .values = event_status, .flags = RF_FILTER | RF_SORT, .def = "\"draft\""},
    {.name = "confirmed_count", .type = RF_INT, .flags = RF_READONLY | RF_FILTER | RF_SORT,
     .description = "seats taken"},
    {.name = "created_by", .type = RF_TEXT, .flags = RF_READONLY | RF_NULLABLE, .description = "the staff member"},
    {0}};
const struct resource events_events = {
    .name = "events", .singular = "event", .path = "/api/v1/events", .table = "events", .tag = "events",
    .fields = event_fields, .owner = "created_by",
    .read = RP_PUBLIC, .public_where = "status != 'draft'",
    .create = RP_STAFF, .update = RP_STAFF, .del = RP_STAFF,
    .soft_delete = true, .title_field = "title", .check = event_check, .after_write = event_after_write};

static const char *const reg_status[] = {"pending", "confirmed", "waitlisted", "cancelled", NULL};
static const struct rfield reg_fields[] = {
    {.name = "event_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER},
    {.name = "user_id", .type = RF_TEXT, .flags = RF_READONLY | RF_FILTER},
    {.name = "status", .type = RF_ENUM, .values = reg_status, .flags = RF_READONLY | RF_FILTER | RF_SORT},
    {.name = "waitlist_position", .type = RF_INT, .flags = RF_READONLY | RF_NULLABLE | RF_SORT,
     .description = "place in the waitlist (1 = next), null unless waitlisted"},
    {.name = "code", .type = RF_TEXT, .flags = RF_READONLY,
     .description = "signed check-in code (also in GET /registrations/{id}/qr.png)"},
    {.name = "amount_paid", .type = RF_MONEY, .flags = RF_READONLY},
    {.name = "order_id", .type = RF_TEXT, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER,
     .description = "a paid event: the order that pays the seat (POST /orders/{id}/pay); the registration is "
                    "pending until it is paid"},
    {.name = "checked_in_at", .type = RF_TIME, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER | RF_SORT},
    {.name = "cancelled_at", .type = RF_TIME, .flags = RF_READONLY | RF_NULLABLE | RF_SORT},
    {0}};
const struct resource events_registrations = {
    .name = "registrations", .singular = "registration", .path = "/api/v1/registrations",
    .table = "event_registrations", .tag = "events", .fields = reg_fields, .owner = "user_id",
    .read = RP_OWNER_OR_STAFF, .routes = RR_LIST | RR_GET};

/* ---- behaviour ---- */

static int event_check(struct req *r, const struct resource *res, enum raction act, const json_t *body, str_t id)
{
    (void)res;
    (void)act;
    (void)id;
    const json_t *s = json_object_get(body, "starts_at"), *e = json_object_get(body, "ends_at");
    int64_t sm, em;
    if (json_is_string(s) && json_is_string(e) &&
        !time_parse_rfc3339(str_c(json_string_value(s)), &sm) &&
        !time_parse_rfc3339(str_c(json_string_value(e)), &em) && em < sm)
        return http_invalid(r, "ends_at", "must not be before starts_at");
    return 0;
}

/* After a write: reminders for a published event, seats for the waitlist
 * when the capacity grew (or became unlimited). */
static int event_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id)
{
    (void)r;
    (void)res;
    if (act == RA_DELETE)
        return DB_OK;
    int rc = events__schedule_reminders(db, id);
    if (rc == DB_OK && act == RA_UPDATE)
        rc = events__promote(db, id, NULL);
    return rc;
}

/* Staff writes to this module's resources are audited (in the write's transaction). */
static int audit_change(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id,
                        const json_t *before, const json_t *after, void *ud)
{
    (void)db;
    (void)ud;
    if (res != &events_events || !r || !identity_is_staff(r))
        return DB_OK;
    static const char *const verbs[] = {[RA_CREATE] = "event.create", [RA_UPDATE] = "event.update",
                                        [RA_DELETE] = "event.delete"};
    struct audit_entry e = {.action = verbs[act], .category = "events", .target_type = "event",
                            .target_id = id, .before = before, .after = after, .success = true};
    return audit_record_req(r, &e);
}

/* ---- analytics ---- */

static int h_analytics(struct req *r)
{
    str_t id = req_param(r, "id");
    struct db_res *q = NULL;
    if (resource_require_row(r, &events_events, id,
                             "t.capacity, t.currency, t.confirmed_count, "
                             "(SELECT count(*) FROM event_registrations g WHERE g.event_id = t.id), "
                             "(SELECT count(*) FROM event_registrations g WHERE g.event_id = t.id "
                             "AND g.status = 'waitlisted'), "
                             "(SELECT count(*) FROM event_registrations g WHERE g.event_id = t.id "
                             "AND g.status = 'cancelled'), "
                             "(SELECT count(*) FROM event_registrations g WHERE g.event_id = t.id "
                             "AND g.checked_in_at IS NOT NULL), "
                             "(SELECT coalesce(sum(o.total), 0) FROM orders o WHERE o.event_id = t.id "
                             "AND o.status IN ('paid', 'shipped', 'delivered')), "
                             "(SELECT count(*) FROM event_registrations g WHERE g.event_id = t.id "
                             "AND g.status = 'confirmed'), "
                             "(SELECT count(*) FROM event_registrations g WHERE g.event_id = t.id "
                             "AND g.status = 'pending')",
                             &q))
        return HTTP_EFAIL;
    bool unlimited = db_isnull(q, 0);
    int64_t capacity = db_int(q, 0), taken = db_int(q, 2), checked_in = db_int(q, 6), confirmed = db_int(q, 8);
    struct jw *w = &r->w;
    jw_obj_begin(w);
    jw_key(w, "event_id");
    jw_str(w, id);
    jw_key(w, "registrations");
    jw_int(w, db_int(q, 3));
    jw_key(w, "confirmed");
    jw_int(w, confirmed);
    jw_key(w, "pending");
    jw_int(w, db_int(q, 9));
    jw_key(w, "seats_taken");
    jw_int(w, taken);
    jw_key(w, "waitlisted");
    jw_int(w, db_int(q, 4));
    jw_key(w, "cancelled");
    jw_int(w, db_int(q, 5));
    jw_key(w, "checked_in");
    jw_int(w, checked_in);
    jw_key(w, "capacity");
    if (unlimited)
        jw_null(w);
    else
        jw_int(w, capacity);
    jw_key(w, "occupancy");
    if (unlimited)
        jw_null(w);
    else
        jw_double(w, (double)taken / (double)capacity);
    jw_key(w, "check_in_rate");
    if (confirmed)
        jw_double(w, (double)checked_in / (double)confirmed);
    else
        jw_null(w);
    jw_key(w, "revenue");
    jw_int(w, db_int(q, 7));
    jw_key(w, "currency");
    jw_str(w, db_text(q, 1));
    db_res_free(q);

    /* registrations per UTC day of sign-up */
    jw_key(w, "daily");
    jw_arr_begin(w);
    int rc = db_query(r->db,
                  db_pick(r->db,
                          "SELECT strftime('%Y-%m-%d', created_at / 1000, 'unixepoch') d, count(*), "
                          "sum(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END) "
                          "FROM event_registrations WHERE event_id = ? GROUP BY d ORDER BY d",
                          "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') d, count(*), "
                          "sum(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END) "
                          "FROM event_registrations WHERE event_id = ? GROUP BY d ORDER BY d"),
                  DB_ARGS(DBA_TEXT(id)), &q);
    while (rc == DB_OK && (rc = db_next(q)) == 1) {
        jw_obj_begin(w);
        jw_key(w, "date");
        jw_str(w, db_text(q, 0));
        jw_key(w, "registrations");
        jw_int(w, db_int(q, 1));
        jw_key(w, "cancelled");
        jw_int(w, db_int(q, 2));
        jw_obj_end(w);
        rc = DB_OK;
    }
    db_res_free(q);
    if (rc < 0)
        return http_db_fail(r, rc);
    jw_arr_end(w);
    jw_obj_end(w);
    return 0;
}

/* ---- personal data ---- */

static int export_data(struct db *db, str_t user_id, struct jw *w)
{
    int rc;
    jw_obj_begin(w);
    jw_key(w, "registrations");
    if ((rc = resource_export_rows(db, user_id, &events_registrations, w)) != DB_OK)
        return rc;
    jw_obj_end(w);
    return DB_OK;
}

static const struct user_data_hooks events_user_data = {
    .name = "events", .export_data = export_data, .delete_data = events__delete_user,
    .migrate_guest = events__migrate_guest};

/* ---- module ---- */

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/events/{id}/analytics", .handler = h_analytics, .auth = AUTH_STAFF,
     .rl = RL_READ, .summary = "Registrations, confirmed, waitlisted, checked in, revenue, occupancy and the daily "
                               "trend of an event (staff)", .tag = "events",
     .output = OPENAPI_JSON({"type": "object",
         "required": ["event_id", "registrations", "confirmed", "waitlisted", "cancelled", "checked_in", "capacity",
                      "occupancy", "check_in_rate", "revenue", "currency", "daily"],
         "properties": {
         "event_id": {"type": "string", "format": "uuid"}, "registrations": {"type": "integer"},
         "confirmed": {"type": "integer"}, "waitlisted": {"type": "integer"}, "cancelled": {"type": "integer"},
         "checked_in": {"type": "integer"}, "capacity": {"type": ["integer", "null"]},
         "pending": {"type": "integer", "description": "paid events: seats held by an unpaid order"},
         "seats_taken": {"type": "integer", "description": "confirmed + pending"},
         "occupancy": {"type": ["number", "null"], "description": "seats_taken / capacity"},
         "check_in_rate": {"type": ["number", "null"], "description": "checked_in / confirmed"},
         "revenue": {"type": "integer", "description": "minor units: the totals of the event's paid orders (refunded ones excluded)"}, "currency": {"type": "string"},
         "daily": {"type": "array", "items": {"type": "object", "required": ["date", "registrations", "cancelled"],
                                              "properties": {
             "date": {"type": "string", "format": "date"}, "registrations": {"type": "integer"},
             "cancelled": {"type": "integer"}}}}}})},
};

static void register_routes(void)
{
    resource_register(&events_events);
    resource_register(&events_registrations);
    router_add(routes, ARRAY_LEN(routes));
    events__registration_routes();
    events__ics_routes();
    resource_on_change(RES_HOOK_TX, audit_change, NULL);
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    (void)cfg;
    (void)db;
    (void)err;
    identity_register_user_data(&events_user_data);
    orders_set_event_hook(events__order_changed);
    return 0;
}

const struct module events_module = {
    .name = "events",
    .config = events__code_config,
    .register_routes = register_routes,
    .register_jobs = events__reminders_register_jobs,
    .init = init,
};
