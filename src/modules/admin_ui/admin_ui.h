/*
 * admin_ui.h — the admin dashboard served at /admin (admin_ui.c).
 */
#ifndef TEMEL_ADMIN_UI_H
#define TEMEL_ADMIN_UI_H

#include "core/module.h"

extern const struct module admin_ui_module;

#endif
