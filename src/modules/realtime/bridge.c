/*
 * bridge.c — the seam for events and presence across instances (Redis
 * pub/sub, issue 13 item 4). Not built yet: every instance delivers to its
 * own connections only, and presence is this instance's.
 */
#include "modules/realtime/realtime_internal.h"

#include "core/banned.h"

char rt_instance_id[UUID_STR_LEN + 1];

void rt_bridge_start(void) {}
void rt_bridge_publish(struct rt_msg *m) { (void)m; }
void rt_bridge_presence_changed(void) {}
bool rt_bridge_up(void) { return false; }
