/*
 * events.h — events with registration, waitlist, check-in, reminders,
 * analytics and a calendar file (API.md §10, issue 12 item 1). The
 * descriptors are public so other modules (certificates) can name them.
 */
#ifndef TEMEL_EVENTS_H
#define TEMEL_EVENTS_H

#include "core/module.h"
#include "resource/resource.h"

extern const struct resource events_events, events_registrations;
extern const struct module events_module;

#endif
