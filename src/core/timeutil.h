/* timeutil.h — clocks and RFC 3339 formatting (UTC, milliseconds). */
#ifndef TEMEL_TIMEUTIL_H
#define TEMEL_TIMEUTIL_H

#include "core/common.h"

int64_t time_now_ms(void);   /* CLOCK_REALTIME, ms since the epoch */
int64_t time_mono_ms(void);  /* CLOCK_MONOTONIC, ms */
int64_t time_mono_us(void);  /* CLOCK_MONOTONIC, µs */

#define TIME_RFC3339_LEN 24 /* "2026-11-22T10:00:00.000Z" without NUL */
/* Writes exactly TIME_RFC3339_LEN bytes plus a NUL into out[25]. */
void time_format_rfc3339(int64_t epoch_ms, char out[TIME_RFC3339_LEN + 1]);
/* Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)". 0 or -1. */
int time_parse_rfc3339(str_t s, int64_t *epoch_ms) WARN_UNUSED;

#endif
