/* features.h — feature flags (features.c has the design). */
#ifndef TEMEL_FEATURES_H
#define TEMEL_FEATURES_H

#include "core/module.h"
#include "resource/resource.h"

extern const struct resource features_flags, features_overrides;
extern const struct module features_module;

#endif
