/*
 * modules.c — the one list of modules. Adding a module is one line here;
 * nothing below src/modules/ names it.
 */
#include <stddef.h>

#include "core/module.h"
#include "modules/admin_ui/admin_ui.h"
#include "modules/ai/ai.h"
#include "modules/audit/audit.h"
#include "modules/backup/backup.h"
#include "modules/blog/blog.h"
#include "modules/career/career.h"
#include "modules/features/features.h"
#include "modules/catalog/catalog.h"
#include "modules/certificates/certificates.h"
#include "modules/credits/credits.h"
#include "modules/delivery/delivery.h"
#include "modules/companies/companies.h"
#include "modules/events/events.h"
#include "modules/marketing/marketing.h"
#include "modules/files/files.h"
#include "modules/orders/orders.h"
#include "modules/queue/queue.h"
#include "modules/realtime/realtime.h"
#include "modules/social/social.h"
#include "modules/support/support.h"
#include "modules/users/identity.h"
#include "modules/webhooks/webhooks.h"

#include "core/banned.h"

const struct module *const temel_modules[] = {
    &users_module,
    &audit_module,
    &credits_module,
    &jobs_module,
    &delivery_module,
    &career_module,
    &blog_module,
    &catalog_module,
    &orders_module,
    &companies_module,
    &ai_module,
    &events_module,
    &realtime_module,
    &marketing_module,
    &social_module,
    &webhooks_module,
    &backup_module,
    &admin_ui_module,
    &support_module,
    &certificates_module,
    &features_module,
    &files_module,
    NULL,
};

int modules_config(const struct config *cfg, struct buf *err)
{
    for (const struct module *const *m = temel_modules; *m; m++)
        if ((*m)->config && (*m)->config(cfg, err))
            return -1;
    return 0;
}
