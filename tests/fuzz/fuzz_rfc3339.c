/* libFuzzer target: RFC 3339 time parsing (time_parse_rfc3339: query filters,
 * JSON dates). Checks invariants, not just crashes: an accepted time that
 * formats inside years 0001..9998 parses back from its own formatting to
 * the same millisecond, and the formatting is always 24 bytes. */
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"

#define YEAR_1_MS (-62135596800000ll)   /* 0001-01-01T00:00:00Z */
#define YEAR_9999_MS (253370764800000ll) /* 9999-01-01T00:00:00Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t ms, back;
    char out[TIME_RFC3339_LEN + 1];
    if (time_parse_rfc3339(str_make((const char *)data, size), &ms) != 0)
        return 0;
    time_format_rfc3339(ms, out);
    if (strlen(out) != TIME_RFC3339_LEN)
        abort();
    if (ms >= YEAR_1_MS && ms < YEAR_9999_MS) {
        if (time_parse_rfc3339(str_make(out, TIME_RFC3339_LEN), &back) != 0 || back != ms)
            abort();
    }
    return 0;
}
