/*
 * support.h — support tickets (API.md §10, issue 12 item 2): tickets with
 * category and priority, messages, internal staff notes, assignment,
 * close/reopen, first-response and resolution times, unread counts per
 * side, SLA targets per priority with a breach flag, and mail to the owner
 * on a staff reply.
 *
 * The hook point for realtime (§11): support_set_notifier() installs the one
 * function called after every ticket change below has committed, on the
 * request's thread (it must not block: hand the event to a queue). An event
 * with staff_only set (an internal note) must never reach the owner.
 */
#ifndef TEMEL_SUPPORT_H
#define TEMEL_SUPPORT_H

#include "core/module.h"
#include "resource/resource.h"

enum support_event_kind {
    SUPPORT_TICKET_CREATED = 1, /* channel "staff" */
    SUPPORT_TICKET_MESSAGE,     /* "tickets:<id>" (and the owner unless staff_only) */
    SUPPORT_TICKET_ASSIGNED,
    SUPPORT_TICKET_CLOSED,
    SUPPORT_TICKET_REOPENED,
};

struct support_event {
    enum support_event_kind kind;
    const char *name;  /* "ticket.created", "ticket.message", "ticket.assigned", "ticket.closed", "ticket.reopened" */
    str_t ticket_id;
    str_t owner_id;    /* the ticket's user */
    str_t assignee_id; /* empty when unassigned */
    str_t actor_id;    /* who did it */
    str_t message_id;  /* ticket.message only, else empty */
    bool staff_only;   /* an internal note */
};

typedef void (*support_notify_fn)(const struct support_event *ev, void *ud);
/* Install the notifier (one; a second call replaces it; NULL removes it).
 * Call before the server starts (a module's init). */
void support_set_notifier(support_notify_fn fn, void *ud);

extern const struct resource support_tickets;
extern const struct module support_module;

#endif
