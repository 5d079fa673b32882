/* ai_internal.h — shared by the files of the ai module and tests/unit/test_ai.c only. */
#ifndef TEMEL_AI_INTERNAL_H
#define TEMEL_AI_INTERNAL_H

#include <jansson.h>

#include "core/buf.h"
#include "core/config.h"
#include "db/db.h"
#include "http/http.h"
#include "modules/ai/ai.h"

/* ---- limits ---- */
#define AI_MAX_MESSAGES 100
#define AI_MAX_CONTENT 50000     /* code points per message / prompt / system */
#define AI_MAX_TOTAL 100000      /* code points over the whole input */
#define AI_MAX_TOKENS_CAP 32768  /* max_tokens accepted from a client */
#define AI_DEFAULT_MAX_TOKENS 1024
#define AI_BODY_MAX (512u << 10) /* request body of the submit routes */
#define AI_KEYS_MAX 64           /* keys tried per provider call */
#define AI_KEY_MAX 512           /* bytes of one provider key */
#define AI_RESULT_MAX (2u << 20) /* a stored result (JSON) */
#define AI_WAIT_DEFAULT_S 20
#define AI_WAIT_MAX_S 60
/* OpenAPI: the from/to query parameters of the usage reports. */
#define AI_RANGE_PARAMS                                                                                                \
    OPENAPI_JSON([                                                                                                     \
        {"name" : "from", "in" : "query", "schema" : {"type" : "string", "format" : "date-time"}},                     \
        {"name" : "to", "in" : "query", "schema" : {"type" : "string", "format" : "date-time"}}                        \
    ])

/* ---- settings (config.c; a bad value exits 2 naming the variable) ---- */
struct ai_config {
    int64_t ai_cache_ttl_s;     /* TEMEL_AI_CACHE_TTL_S: response cache lifetime (86400; 0 = no cache) */
    int64_t ai_timeout_ms;      /* TEMEL_AI_TIMEOUT_MS: one "ai.run" attempt, provider call included (60000) */
    int64_t ai_max_attempts;    /* TEMEL_AI_MAX_ATTEMPTS: tries per AI job before it is refunded (3) */
    int64_t ai_abuse_threshold; /* TEMEL_AI_ABUSE_THRESHOLD: suspicion score that flags a user (70) */
};
const struct ai_config *ai__cfg(void);
int ai__config(const struct config *cfg, struct buf *err); /* the module's config hook */

/* ---- provider wire formats (provider.c) ---- */
enum ai_kind { AI_OPENAI, AI_ANTHROPIC, AI_GEMINI };
int ai__kind_from(str_t s); /* -1 if unknown */
extern const char *const ai__kind_names[3];

/* Validate and normalise a client's "input" (a prompt string, or an object
 * {prompt | messages, system?, max_tokens?, temperature?}) into the canonical
 * object {"messages":[{role,content}...], "system"?, "max_tokens"?, "temperature"?}.
 * NULL with (field, message) set on invalid input. */
json_t *ai__normalize_input(const json_t *in, const char **field, const char **message);
/* Canonical JSON text of a normalised input (sorted keys, compact). */
void ai__input_text(const json_t *norm, struct buf *out);
/* Hex SHA-256 over operation, model and canonical input: the cache key and
 * the "same prompt" key of anti-abuse. */
void ai__input_hash(const char *operation, str_t model, str_t canonical, char out[65]);
/* The response-cache key of a request: SHA-256 over the user id and its input
 * hash, so one user's cached answer is never another's (issue 15 item 4). */
void ai__cache_key(str_t user_id, const char *input_hash, char out[65]);
/* The built-in system prompt of an operation ("" for chat/generate). */
const char *ai__operation_system(const char *operation);

/* Build the upstream request: URL and JSON body (no key: see ai__auth_header). */
int ai__build_request(enum ai_kind kind, const char *base_url, const char *upstream, const json_t *norm,
                      const char *op_system, struct buf *url, struct buf *body) WARN_UNUSED;
/* The header that carries the key: name, and value written into val. */
const char *ai__auth_header(enum ai_kind kind, str_t key, struct buf *val);
/* Parse a 2xx answer. 0, or -1 (malformed / no text). */
int ai__parse_response(enum ai_kind kind, str_t body, struct buf *text, struct buf *finish, int64_t *tokens_in,
                       int64_t *tokens_out) WARN_UNUSED;
/* Upstream model names: [A-Za-z0-9._:-], 1..100. Base URLs: http(s)://, no userinfo. */
bool ai__upstream_ok(str_t s);
bool ai__base_url_ok(str_t s);

/* ---- keys at rest (crypto.c) ---- */
/* TEMEL_SECRET_KEY, else <data_dir>/secret.key (created once, 0600). */
int ai__crypto_init(const struct config *cfg, struct buf *err);
void ai__crypto_set_key(const unsigned char key[32]); /* tests */
/* hex(nonce || secretbox(plain)) */
void ai__seal(str_t plain, struct buf *hex_out);
/* 0, or -1 (bad hex, wrong key, tampered). plain is wiped by the caller (sodium_memzero). */
int ai__open(str_t hex, struct buf *plain) WARN_UNUSED;

/* ---- requests (ai.c, job.c) ---- */
/* Columns for ai__write_request(), from ai_requests a LEFT JOIN jobs j ON j.id = a.id. */
#define AI_REQ_COLS                                                                                                    \
    "a.id, a.operation, a.model, a.status, a.priority, a.cost, a.cached, a.reservation_id, a.result, a.error, "      \
    "ts_ms(a.created_at), ts_ms(a.finished_at), j.state, j.progress"
#define AI_REQ_FROM " FROM ai_requests a LEFT JOIN jobs j ON j.id = a.id"
void ai__write_request(struct jw *w, const struct db_res *res);
/* The status a client sees: final ai status, else running/queued from the job. */
const char *ai__status(str_t ai_status, str_t job_state);

/* Job side (job.c). */
void ai__register_jobs(void);
void ai__emit(const char *event, str_t user_id, str_t job_id, int progress);
/* Settle a queued request inside the caller's transaction: success confirms
 * (or refunds when cached), failure refunds. Only the call that moves the row
 * out of 'queued' touches the ledger; *applied tells whether it was this one. */
struct ai_outcome {
    bool ok;
    bool cached;
    const char *status; /* failure: "failed" or "cancelled" */
    str_t result;       /* JSON (ok) */
    str_t error;        /* text (failure) */
    str_t provider;
    int64_t tokens_in, tokens_out, usd_micros, latency_ms;
};
int ai__settle(struct db *db, str_t id, const struct ai_outcome *o, bool *applied) WARN_UNUSED;

/* Cache (ai.c). found: *result (caller frees) and tokens. */
int ai__cache_get(struct db *db, const char *key, int64_t now_ms, struct buf *result, int64_t *tin, int64_t *tout,
                  bool *found) WARN_UNUSED;
int ai__cache_put(struct db *db, const char *key, str_t result, int64_t tin, int64_t tout, int64_t now_ms) WARN_UNUSED;

/* ---- anti-abuse (abuse.c) ---- */
struct ai_signals {
    int64_t per_minute;  /* this user's AI requests in the last 60 s (incl. this one) */
    int64_t same_prompt; /* same input hash by this user in the last hour (incl. this one) */
    int64_t ip_accounts; /* accounts created from this user's sign-up IP in the last 24 h */
};
/* Points per signal (0, 20 or 40 each) and their sum. */
int ai__abuse_score(const struct ai_signals *s, int *rapid, int *repeat, int *farm);
/* Measure, store the score, flag past the threshold and mail every admin
 * (once per open flag). Inside the caller's transaction. */
int ai__abuse_check(struct db *db, str_t user_id, const char *input_hash, int64_t now_ms) WARN_UNUSED;
void ai__register_abuse_templates(void);

/* ---- routes ---- */
/* from/to query parameters (dates or RFC 3339), default the last 30 days; HTTP_EFAIL when bad. */
int ai__usage_range(struct req *r, int64_t *from, int64_t *to);
void ai__register_user_routes(void);
void ai__register_admin_routes(void);

#endif
