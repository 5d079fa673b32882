/* delivery.h — the delivery module entry (src/modules.c). */
#ifndef TEMEL_MODULE_DELIVERY_H
#define TEMEL_MODULE_DELIVERY_H

#include "core/module.h"

extern const struct module delivery_module;

#endif
