/*
 * problem.h — RFC 9457 problem+json, built in exactly one place.
 */
#ifndef TEMEL_PROBLEM_H
#define TEMEL_PROBLEM_H

#include "http/http.h"

enum lang { LANG_EN = 0, LANG_TR, LANG_PL };

/* Pick tr/en/pl from an Accept-Language value (q-values honoured; default en). */
enum lang lang_from_header(str_t accept_language);
/* Title of a status in a language ("Validation failed"); never NULL. */
const char *problem_title(int status, enum lang lang);
/* Default code for a status ("VALIDATION_ERROR"). */
const char *problem_code(int status);

/* HTTP reason phrase for a status ("OK", "Not Found"); never NULL. */
const char *http_reason(int status);

/* Render the problem object. errs may be NULL. */
void problem_write(struct buf *out, int status, const char *code, const char *title, str_t detail,
                   const struct json_verr *errs, int nerrs, str_t request_id);

#endif
