/*
 * modules.c — the one list of modules. Adding a module is one line here;
 * nothing else in core names it.
 */
#include <stddef.h>

#include "core/module.h"
#include "jobs/jobs.h"
#include "modules/ai/ai.h"
#include "modules/audit/audit.h"
#include "modules/blog/blog.h"
#include "modules/career/career.h"
#include "modules/catalog/catalog.h"
#include "modules/credits/credits.h"
#include "modules/users/identity.h"

#include "core/banned.h"

const struct module *const temel_modules[] = {
    &users_module,
    &audit_module,
    &credits_module,
    &jobs_module,
    &career_module,
    &blog_module,
    &catalog_module,
    &ai_module,
    NULL,
};
