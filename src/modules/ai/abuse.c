/*
 * abuse.c — anti-abuse for the AI routes (API.md §12).
 *
 * Three signals, measured in the submit transaction (the new request's row
 * is already inserted, so it counts itself):
 *   rapid    this user's AI requests in the last 60 s      >= 10: 20, >= 20: 40
 *   repeat   the same input hash in the last hour          >=  3: 20, >=  5: 40
 *   farm     accounts created from the user's sign-up IP   >=  3: 20, >=  5: 40
 *            in the last 24 h (users.created_ip)
 * score = the sum (0..120). A positive score is kept per user (ai_suspicion);
 * at TEMEL_AI_ABUSE_THRESHOLD (default 70) the user gets one open flag
 * (GET /admin/flags) and every active admin a mail, once per open flag.
 * Flagging never blocks a request: staff decide.
 */
#include "core/log.h"
#include "core/uuid.h"
#include "transport/mail.h"
#include "modules/ai/ai_internal.h"

#include "core/banned.h"

int ai__abuse_score(const struct ai_signals *s, int *rapid, int *repeat, int *farm)
{
    *rapid = s->per_minute >= 20 ? 40 : s->per_minute >= 10 ? 20 : 0;
    *repeat = s->same_prompt >= 5 ? 40 : s->same_prompt >= 3 ? 20 : 0;
    *farm = s->ip_accounts >= 5 ? 40 : s->ip_accounts >= 3 ? 20 : 0;
    return *rapid + *repeat + *farm;
}

static int count(struct db *db, const char *sql, const db_arg *args, size_t n, int64_t *out)
{
    bool found;
    *out = 0;
    return db_query_int(db, sql, args, n, out, &found);
}

static int mail_admins(struct db *db, str_t user_id, int score, const struct ai_signals *s)
{
    struct db_res *res;
    char **to = NULL;
    size_t n = 0;
    int rc = db_query(db, "SELECT email FROM users WHERE role = 'admin' AND status = 'active' AND email IS NOT NULL "
                          "ORDER BY id LIMIT 100",
                      DB_NOARGS, &res);
    if (rc != DB_OK)
        return rc;
    while ((rc = db_next(res)) == 1) {
        to = xrealloc(to, st_mult(n + 1, sizeof(*to)));
        to[n++] = xstrdup(db_text(res, 0).p);
    }
    db_res_free(res);
    json_t *vars = json_pack("{s:s%,s:i,s:I,s:I,s:I}", "user_id", user_id.p, user_id.len, "score", score,
                             "per_minute", (json_int_t)s->per_minute, "same_prompt", (json_int_t)s->same_prompt,
                             "ip_accounts", (json_int_t)s->ip_accounts);
    for (size_t i = 0; i < n; i++) {
        if (rc >= 0) {
            int mrc = mail_enqueue(db, to[i], "ai.abuse_flag", vars);
            if (mrc == MAIL_EINVAL)
                log_warn("ai: abuse flag mail to an admin address skipped (invalid address)");
            else if (mrc < 0)
                rc = mrc;
        }
        free(to[i]);
    }
    free(to);
    json_decref(vars);
    return rc < 0 ? rc : DB_OK;
}

int ai__abuse_check(struct db *db, str_t user_id, const char *input_hash, int64_t now_ms)
{
    struct ai_signals s;
    int rapid, repeat, farm, rc;
    rc = count(db, "SELECT count(*) FROM ai_requests WHERE user_id = ? AND created_at >= ms_ts(?)",
               DB_ARGS(DBA_TEXT(user_id), DBA_INT(now_ms - 60000)), &s.per_minute);
    if (rc == DB_OK)
        rc = count(db,
                   "SELECT count(*) FROM ai_requests WHERE user_id = ? AND input_hash = ? AND created_at >= ms_ts(?)",
                   DB_ARGS(DBA_TEXT(user_id), DBA_CSTR(input_hash), DBA_INT(now_ms - 3600000)), &s.same_prompt);
    if (rc == DB_OK)
        rc = count(db,
                   "SELECT count(*) FROM users WHERE created_ip = (SELECT created_ip FROM users WHERE id = ?) "
                   "AND created_at >= ms_ts(?)",
                   DB_ARGS(DBA_TEXT(user_id), DBA_INT(now_ms - 86400000)), &s.ip_accounts);
    if (rc != DB_OK)
        return rc;
    int score = ai__abuse_score(&s, &rapid, &repeat, &farm);
    if (score == 0)
        return DB_OK;
    struct buf sig = BUF_INIT(BUF_MAX_SMALL);
    (void)buf_printf(&sig,
                     "{\"per_minute\":%lld,\"same_prompt\":%lld,\"ip_accounts\":%lld,\"rapid\":%d,\"repeat\":%d,"
                     "\"farm\":%d}",
                     (long long)s.per_minute, (long long)s.same_prompt, (long long)s.ip_accounts, rapid, repeat, farm);
    rc = db_exec(db,
                 "INSERT INTO ai_suspicion (user_id, score, signals, updated_at) VALUES (?, ?, ?, ms_ts(?)) "
                 "ON CONFLICT (user_id) DO UPDATE SET score = excluded.score, signals = excluded.signals, "
                 "updated_at = excluded.updated_at",
                 DB_ARGS(DBA_TEXT(user_id), DBA_INT(score), DBA_TEXT(buf_str(&sig)), DBA_INT(now_ms)), NULL);
    if (rc == DB_OK && score >= ai__cfg()->ai_abuse_threshold) {
        char id[UUID_STR_LEN + 1];
        int64_t changes = 0;
        uuid7_str(id);
        rc = db_exec(db,
                     "INSERT INTO ai_flags (id, user_id, score, signals, status, created_at) "
                     "VALUES (?, ?, ?, ?, 'open', ms_ts(?)) ON CONFLICT (user_id) WHERE status = 'open' DO NOTHING",
                     DB_ARGS(DBA_CSTR(id), DBA_TEXT(user_id), DBA_INT(score), DBA_TEXT(buf_str(&sig)), DBA_INT(now_ms)),
                     &changes);
        if (rc == DB_OK && changes == 1) {
            log_warn("ai: user %.*s flagged (suspicion score %d)", STR_FMT(user_id), score);
            rc = mail_admins(db, user_id, score, &s);
        }
    }
    buf_free(&sig);
    return rc;
}

void ai__register_abuse_templates(void)
{
    mail_template_register(
        "ai.abuse_flag", "temel: user {{user_id}} flagged for AI abuse (score {{score}})",
        "A user was flagged by the AI anti-abuse check.\n\n"
        "User: {{user_id}}\nSuspicion score: {{score}}\n"
        "AI requests in the last minute: {{per_minute}}\n"
        "Identical prompts in the last hour: {{same_prompt}}\n"
        "Accounts from the same sign-up IP in the last 24 h: {{ip_accounts}}\n\n"
        "Review it in GET /api/v1/admin/flags.\n",
        "<p>A user was flagged by the AI anti-abuse check.</p>"
        "<ul><li>User: {{user_id}}</li><li>Suspicion score: {{score}}</li>"
        "<li>AI requests in the last minute: {{per_minute}}</li>"
        "<li>Identical prompts in the last hour: {{same_prompt}}</li>"
        "<li>Accounts from the same sign-up IP in the last 24 h: {{ip_accounts}}</li></ul>"
        "<p>Review it in <code>GET /api/v1/admin/flags</code>.</p>");
}
