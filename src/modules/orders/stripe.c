/* stripe.c — payments through Stripe (issue 11 item 2). */
#include "modules/orders/orders_internal.h"

#include "core/banned.h"

int orders__stripe_config(const struct config *cfg, struct buf *err)
{
    (void)cfg;
    (void)err;
    return 0;
}

void orders__stripe_register_routes(void) {}
void orders__stripe_register_jobs(void) {}
