/*
 * career.h — the career module (API.md §8): resumes, jobs, applications.
 * The descriptors are public so other modules (search, admin) can name them.
 */
#ifndef TEMEL_CAREER_H
#define TEMEL_CAREER_H

#include "core/module.h"
#include "resource/resource.h"

extern const struct resource career_resumes, career_jobs, career_applications;
extern const struct module career_module;

/* May an application move from status `from` to `to`? */
bool career_transition_ok(str_t from, str_t to);

/* `temel seed`: the demo user and its resumes, jobs and applications (seed.c). */
int career__seed(struct db *db, struct buf *out);

#define CAREER_DEMO_EMAIL "demo@temel.dev"
#define CAREER_DEMO_PASSWORD "temel demo password"

#endif
