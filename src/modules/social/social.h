/* social.h — the social publishing module entry (src/modules.c). */
#ifndef TEMEL_MODULE_SOCIAL_H
#define TEMEL_MODULE_SOCIAL_H

#include "core/module.h"
#include "resource/resource.h"

extern const struct resource social_accounts, social_posts;
extern const struct module social_module;

#endif
