/* marketing.h — the email marketing module entry (src/modules.c). */
#ifndef TEMEL_MODULE_MARKETING_H
#define TEMEL_MODULE_MARKETING_H

#include "core/module.h"
#include "resource/resource.h"

extern const struct resource email_lists, email_subscribers, campaigns;
extern const struct module marketing_module;

#endif
