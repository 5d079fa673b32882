/* certificates_internal.h — between the files of the certificates module. */
#ifndef TEMEL_CERTIFICATES_INTERNAL_H
#define TEMEL_CERTIFICATES_INTERNAL_H

#include "jobs/jobs.h"
#include "modules/certificates/certificates.h"

#define CERT_NUMBER_RANDOM 10          /* base32 characters after "CERT-<year>-" */
#define CERT_LOGO_MAX (2u << 20)       /* a logo larger than this is left out */
#define CERT_BODY_MAX 5000

/* TEMEL_PUBLIC_URL: where verification links point ("<url>/api/v1/certificates/verify/<number>"). */
const char *certificates__public_url(void);

/* The body variables a template may use, with sample values (for the check). */
json_t *certificates__sample_vars(void);

/* render.c: the "certificates.generate" job. */
void certificates__register_jobs(void);

#endif
