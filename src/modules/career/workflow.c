/* workflow.c — the application status workflow (API.md §8). */
#include "modules/career/career.h"

#include "core/banned.h"

/* saved → applied → interview → offer; rejected or withdrawn from any state
 * that is not final (rejected, withdrawn). Staying put is not a move. */
bool career_transition_ok(str_t from, str_t to)
{
    if (str_is(from, "rejected") || str_is(from, "withdrawn") || str_eq(from, to))
        return false;
    if (str_is(to, "rejected") || str_is(to, "withdrawn"))
        return true;
    return (str_is(from, "saved") && str_is(to, "applied")) || (str_is(from, "applied") && str_is(to, "interview")) ||
           (str_is(from, "interview") && str_is(to, "offer"));
}
