/*
 * queue_internal.h — what the files of the jobs module share. The module is
 * the queue's face: its settings (TEMEL_JOB_*), its part of /health and
 * /metrics, the admin API and the test-only kinds and routes. The queue
 * itself (enqueue, claim, runner, cron) is src/jobs and knows no HTTP.
 */
#ifndef TEMEL_QUEUE_INTERNAL_H
#define TEMEL_QUEUE_INTERNAL_H

void queue__register_admin_routes(void); /* admin.c */
void queue__register_test_kinds(void);   /* testkinds.c, TEMEL_ENV=test only */
void queue__register_test_routes(void);  /* testkinds.c, ROUTE_TEST_ONLY */

#endif
