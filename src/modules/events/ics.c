/*
 * ics.c — GET /api/v1/events/{id}/calendar.ics: the event as an RFC 5545
 * calendar (one VEVENT), for anyone who may see the event.
 *
 * Content lines end in CRLF and are folded at 75 octets (CRLF + one space),
 * never inside a UTF-8 sequence. TEXT values escape backslash, semicolon,
 * comma and newline (\\ \; \, \n); other control characters are dropped
 * (RFC 5545 §3.3.11 does not allow them). Times are UTC ("...Z").
 */
#include "core/timeutil.h"
#include "modules/events/events_internal.h"

#include "core/banned.h"

#define ICS_FOLD 75

void events__ics_line(struct buf *out, const char *name, str_t value, bool text)
{
    size_t col = 0;
    /* the name counts towards the first line */
    (void)buf_puts(out, name);
    (void)buf_putc(out, ':');
    col = strlen(name) + 1;
    for (size_t i = 0; i < value.len;) {
        unsigned char c = (unsigned char)value.p[i];
        char esc[2];
        size_t n;
        const char *piece;
        if (text && (c == '\\' || c == ';' || c == ',')) {
            esc[0] = '\\';
            esc[1] = (char)c;
            piece = esc;
            n = 2;
            i++;
        } else if (text && c == '\n') {
            piece = "\\n";
            n = 2;
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            i++; /* CR, NUL and the like: not allowed in a value */
            continue;
        } else {
            /* one whole UTF-8 sequence (the input is valid UTF-8: JSON) */
            n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
            if (i + n > value.len)
                n = value.len - i;
            piece = value.p + i;
            i += n;
        }
        if (col + n > ICS_FOLD) {
            (void)buf_puts(out, "\r\n ");
            col = 1;
        }
        (void)buf_append(out, piece, n);
        col += n;
    }
    (void)buf_puts(out, "\r\n");
}

/* 20261122T100000Z */
static void ics_time(struct buf *out, const char *name, int64_t ms)
{
    char t[TIME_RFC3339_LEN + 1], v[17];
    time_format_rfc3339(ms, t); /* 2026-11-22T10:00:00.000Z */
    const char *src = t;
    size_t n = 0;
    for (; *src && *src != '.' && n < 15; src++)
        if (*src != '-' && *src != ':')
            v[n++] = *src;
    v[n++] = 'Z';
    v[n] = '\0';
    events__ics_line(out, name, str_make(v, n), false);
}

static int h_ics(struct req *r)
{
    str_t id = req_param(r, "id");
    struct db_res *q = NULL;
    if (resource_require_row(r, &events_events, id,
                             "t.title, t.description, t.venue, t.city, t.online_url, ts_ms(t.starts_at), "
                             "ts_ms(t.ends_at), ts_ms(t.updated_at), t.status, t.category",
                             &q))
        return HTTP_EFAIL;
    struct buf *b = &r->out, *v = req_buf(r, 16u << 10);
    (void)buf_puts(b, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//temel//events//EN\r\nCALSCALE:GREGORIAN\r\n"
                      "METHOD:PUBLISH\r\nBEGIN:VEVENT\r\n");
    (void)buf_put(v, id);
    (void)buf_puts(v, "@temel");
    events__ics_line(b, "UID", buf_str(v), false);
    ics_time(b, "DTSTAMP", db_int(q, 7));
    ics_time(b, "DTSTART", db_int(q, 5));
    if (!db_isnull(q, 6))
        ics_time(b, "DTEND", db_int(q, 6));
    events__ics_line(b, "SUMMARY", db_text(q, 0), true);
    if (db_text(q, 1).len)
        events__ics_line(b, "DESCRIPTION", db_text(q, 1), true);
    buf_reset(v);
    (void)buf_put(v, db_text(q, 2));
    if (!db_isnull(q, 3) && db_text(q, 3).len) {
        if (v->len)
            (void)buf_puts(v, ", ");
        (void)buf_put(v, db_text(q, 3));
    }
    if (!v->len && !db_isnull(q, 4))
        (void)buf_put(v, db_text(q, 4));
    if (v->len)
        events__ics_line(b, "LOCATION", buf_str(v), true);
    if (!db_isnull(q, 4))
        events__ics_line(b, "URL", db_text(q, 4), false);
    if (db_text(q, 9).len)
        events__ics_line(b, "CATEGORIES", db_text(q, 9), true);
    events__ics_line(b, "STATUS", str_is(db_text(q, 8), "cancelled") ? STRLIT("CANCELLED") : STRLIT("CONFIRMED"),
                     false);
    (void)buf_puts(b, "END:VEVENT\r\nEND:VCALENDAR\r\n");
    db_res_free(q);
    if (!buf_ok(b) || !buf_ok(v))
        return http_fail(r, 500, "INTERNAL_ERROR", "the calendar file could not be made");
    r->content_type = "text/calendar; charset=utf-8";
    struct buf *cd = req_buf(r, 256);
    (void)buf_printf(cd, "attachment; filename=\"event-%.*s.ics\"", (int)id.len, id.p);
    req_header(r, "content-disposition", buf_str(cd));
    return 0;
}

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/events/{id}/calendar.ics", .handler = h_ics, .auth = AUTH_OPTIONAL,
     .rl = RL_READ, .summary = "The event as an iCalendar file (RFC 5545)", .tag = "events",
     .output_type = "text/calendar", .output = OPENAPI_JSON({"type" : "string", "description" : "one VEVENT (RFC 5545)"})},
};

void events__ics_routes(void) { router_add(routes, ARRAY_LEN(routes)); }
