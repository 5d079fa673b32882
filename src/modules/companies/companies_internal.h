/* companies_internal.h — between the files of the companies module. */
#ifndef TEMEL_COMPANIES_INTERNAL_H
#define TEMEL_COMPANIES_INTERNAL_H

#include "modules/companies/companies.h"
#include "modules/users/identity.h"

/* personal.c: the "companies" part of GET /me/export and DELETE /me. */
void companies__register_user_data(void);

#endif
