/* queue.h — the jobs module entry (src/modules.c). */
#ifndef TEMEL_MODULE_QUEUE_H
#define TEMEL_MODULE_QUEUE_H

#include "core/module.h"

extern const struct module jobs_module;

#endif
