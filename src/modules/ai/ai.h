/*
 * ai.h — the AI proxy (API.md §5, issue 6): submit/wait routes, the "ai.run"
 * job, providers with server-side keys, response cache, usage, anti-abuse.
 *
 * Money path: every request that reaches a provider was paid for with a
 * credits_reserve() in the transaction that enqueued its job, and is settled
 * exactly once — credits_confirm() in the transaction that stores the result,
 * or credits_refund() on failure, on cancel, and in the job's on_dead hook.
 * The ai_requests row's status changes in the same transaction as the ledger
 * (guarded: only from 'queued'), so the two can never disagree.
 *
 * Cache: a hit at submit costs nothing and reserves nothing (no job either);
 * a hit found later by the job (an identical request finished meanwhile)
 * refunds the reservation. Both are recorded with cached = true.
 */
#ifndef TEMEL_AI_H
#define TEMEL_AI_H

#include "core/module.h"

/* Realtime hook point (API.md §5 "ai:generating|progress|complete|error"):
 * called on a runner thread AFTER the change committed, never inside a
 * transaction. progress is 0..100. NULL (the default) = nobody listens. */
typedef void (*ai_event_fn)(const char *event, str_t user_id, str_t job_id, int progress);
void ai_set_event_hook(ai_event_fn fn);

extern const struct module ai_module;

#endif
