/* events_internal.h — between the files of the events module. */
#ifndef TEMEL_EVENTS_INTERNAL_H
#define TEMEL_EVENTS_INTERNAL_H

#include "http/http.h"
#include "jobs/jobs.h"
#include "modules/events/events.h"

#define EVENTS_PROMOTE_MAX 1000 /* waitlist promotions in one transaction (a capacity raise) */
#define EVENTS_REMIND_BATCH 200 /* reminder mails enqueued per transaction */
#define EVENTS_CODE_SIG_HEX 32  /* hex characters of the code's HMAC kept (128 bits) */

/* registration.c */
void events__registration_routes(void);
/* The check-in code key (from TEMEL_SECRET_KEY). */
int events__code_config(const struct config *cfg, struct buf *err);
/* Fill free seats of event_id from its waitlist, in waitlist order, inside
 * the caller's transaction (the event row is taken first). *promoted (may
 * be NULL) gets the count. Each promoted attendee gets a mail. 0 or a db_rc. */
int events__promote(struct db *db, str_t event_id, int64_t *promoted) WARN_UNUSED;
/* The orders module's word on a paid event's order (orders_set_event_hook):
 * paid confirms the registration; cancelled/refunded cancels it (seat back,
 * waitlist promoted). Inside the order's transaction. 0 or a db_rc. */
int events__order_changed(struct db *db, str_t order_id, const char *to) WARN_UNUSED;
/* Cancel every live registration of user_id (account deletion). 0 or a db_rc. */
int events__delete_user(struct db *db, str_t user_id) WARN_UNUSED;
/* Guest sign-up: move the guest's registrations to the account. 0 or a db_rc. */
int events__migrate_guest(struct db *db, str_t guest_id, str_t user_id) WARN_UNUSED;

/* reminders.c */
void events__reminders_register_jobs(void);
/* Enqueue the 24 h and 1 h reminders of a published event that starts in
 * the future (inside the caller's transaction; duplicates are absorbed by
 * unique keys that include the start time). 0 or a db_rc. */
int events__schedule_reminders(struct db *db, str_t event_id) WARN_UNUSED;

/* ics.c: one content line "NAME:value" of RFC 5545 into out: value
 * escaped as TEXT (\\ \; \, \n; other control characters dropped) when
 * text is true, and folded at 75 octets without splitting a UTF-8 sequence. */
void events__ics_line(struct buf *out, const char *name, str_t value, bool text);
void events__ics_routes(void);

#endif
