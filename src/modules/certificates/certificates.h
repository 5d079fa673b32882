/*
 * certificates.h — certificates of attendance (API.md §10, issue 12 item 4):
 * staff templates, a job that renders a PDF per checked-in attendee of an
 * event (unique number, QR code of the public verification link), the
 * owner's download, public verification and revocation.
 */
#ifndef TEMEL_CERTIFICATES_H
#define TEMEL_CERTIFICATES_H

#include "core/module.h"
#include "resource/resource.h"

extern const struct resource certificate_templates, certificates;
extern const struct module certificates_module;

#endif
