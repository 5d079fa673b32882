/*
 * career.c — the browser-extension backend (API.md §8): resumes, jobs and
 * applications as resource-engine descriptors, plus the behaviour that is
 * more than data: the application status workflow with history, the ATS
 * scorer endpoints, share links, and the caller's overview.
 *
 * Every row belongs to one user (owner column user_id, policy RP_OWNER):
 * another user's row is 404 everywhere, and never listed or found.
 */
#include <sodium.h>

#include "auth/crypto.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "modules/career/career.h"
#include "modules/career/ats.h"
#include "modules/users/identity.h"

#include "db/dbjson.h"

#include "core/banned.h"

/* ---- descriptors ---- */

static const char *const resume_status[] = {"draft", "active", "archived", NULL};
static const struct rfield resume_fields[] = {
    {.name = "title", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT | RF_SEARCH, .min = 1, .max = 200},
    {.name = "summary", .type = RF_TEXT, .flags = RF_FILTER | RF_SEARCH, .max = 5000, .def = "\"\""},
    {.name = "content", .type = RF_TEXT, .flags = RF_SEARCH, .max = 100000, .def = "\"\"",
     .description = "the resume body (plain text or Markdown)"},
    {.name = "skills", .type = RF_STRLIST, .flags = RF_FILTER | RF_SEARCH, .max = 100, .def = "[]"},
    {.name = "status", .type = RF_ENUM, .values = resume_status, .flags = RF_FILTER | RF_SORT, .def = "\"draft\""},
    {.name = "ats_score", .type = RF_INT, .flags = RF_READONLY | RF_NULLABLE | RF_FILTER | RF_SORT,
     .description = "the last score from POST /jobs/{id}/match"},
    {0}};
static int profile_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act,
                               str_t id);

const struct resource career_resumes = {
    .name = "resumes", .singular = "resume", .path = "/api/v1/resumes", .table = "career_resumes",
    .tag = "career", .fields = resume_fields, .owner = "user_id",
    .read = RP_OWNER, .create = RP_AUTH, .update = RP_OWNER, .del = RP_OWNER,
    .soft_delete = true, .title_field = "title", .after_write = profile_after_write};

static const char *const job_status[] = {"open", "closed", NULL};
static const struct rfield job_fields[] = {
    {.name = "title", .type = RF_TEXT, .flags = RF_REQUIRED | RF_FILTER | RF_SORT | RF_SEARCH, .min = 1, .max = 200},
    {.name = "company", .type = RF_TEXT, .flags = RF_FILTER | RF_SORT | RF_SEARCH, .max = 200, .def = "\"\""},
    {.name = "location", .type = RF_TEXT, .flags = RF_FILTER | RF_SORT | RF_SEARCH, .max = 200, .def = "\"\""},
    {.name = "description", .type = RF_TEXT, .flags = RF_SEARCH, .max = 50000, .def = "\"\""},
    {.name = "url", .type = RF_TEXT, .flags = RF_NULLABLE | RF_FILTER, .max = 2000, .check = RC_URL},
    {.name = "status", .type = RF_ENUM, .values = job_status, .flags = RF_FILTER | RF_SORT, .def = "\"open\""},
    {0}};
const struct resource career_jobs = {
    .name = "jobs", .singular = "job", .path = "/api/v1/jobs", .table = "career_jobs", .tag = "career",
    .fields = job_fields, .owner = "user_id",
    .read = RP_OWNER, .create = RP_AUTH, .update = RP_OWNER, .del = RP_OWNER, .title_field = "title",
    .after_write = profile_after_write};

static const char *const app_status[] = {"saved", "applied", "interview", "offer", "rejected", "withdrawn", NULL};
static const struct rfield app_fields[] = {
    {.name = "job_id", .type = RF_REF, .ref = &career_jobs, .flags = RF_REQUIRED | RF_FILTER},
    {.name = "resume_id", .type = RF_REF, .ref = &career_resumes, .flags = RF_NULLABLE | RF_FILTER},
    {.name = "status", .type = RF_ENUM, .values = app_status, .flags = RF_READONLY | RF_FILTER | RF_SORT,
     .def = "\"saved\"", .description = "changed only by PATCH /applications/{id}/status"},
    {.name = "notes", .type = RF_TEXT, .flags = RF_SEARCH | RF_FILTER, .max = 10000, .def = "\"\""},
    {.name = "history", .type = RF_JSON, .flags = RF_READONLY, .def = "[]",
     .description = "[{status, at}] oldest first",
     .schema = OPENAPI_JSON({
         "type" : "array",
         "description" : "every status the application had, oldest first",
         "items" : {
             "type" : "object",
             "required" : [ "status", "at" ],
             "properties" : {
                 "status" : {"type" : "string", "enum" : [ "saved", "applied", "interview", "offer", "rejected", "withdrawn" ]},
                 "at" : {"type" : "string", "format" : "date-time"}
             }
         }
     })},
    {0}};

static int app_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id);

const struct resource career_applications = {
    .name = "applications", .singular = "application", .path = "/api/v1/applications",
    .table = "career_applications", .tag = "career", .fields = app_fields, .owner = "user_id",
    .read = RP_OWNER, .create = RP_AUTH, .update = RP_OWNER, .del = RP_OWNER, .title_field = "notes",
    .after_write = app_after_write};

/* ---- application status workflow ---- */

static void history_entry(struct jw *w, str_t status, int64_t at)
{
    jw_obj_begin(w);
    jw_key(w, "status");
    jw_str(w, status);
    jw_key(w, "at");
    jw_time(w, at);
    jw_obj_end(w);
}

/* A new application starts its history with its first status. */
static int app_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id)
{
    (void)r;
    (void)res;
    if (act != RA_CREATE)
        return DB_OK;
    struct buf h = BUF_INIT(256);
    struct jw w;
    jw_init(&w, &h);
    jw_arr_begin(&w);
    history_entry(&w, STRLIT("saved"), time_now_ms());
    jw_arr_end(&w);
    int rc = db_exec(db, "UPDATE career_applications SET history = ? WHERE id = ?",
                     DB_ARGS(DBA_TEXT(buf_str(&h)), DBA_TEXT(id)), NULL);
    buf_free(&h);
    return rc;
}

struct status_ctx {
    str_t id, to;
};

static int precondition_failed(struct req *r)
{
    return http_fail(r, 412, "PRECONDITION_FAILED", "the application changed since it was read (If-Match)");
}

static int tx_status(struct req *r, void *arg)
{
    struct status_ctx *c = arg;
    struct db *db = r->db;
    struct db_res *res;
    int rc = db_query(db, "SELECT status, history, version FROM career_applications WHERE id = ? AND user_id = ?",
                      DB_ARGS(DBA_TEXT(c->id), DBA_TEXT(r->user_id)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? rc : http_fail(r, 404, "NOT_FOUND", "no such application");
    }
    str_t from = db_text(res, 0);
    int64_t version = db_int(res, 2);
    if (!resource_if_match(r, &career_applications, version)) {
        db_res_free(res);
        return precondition_failed(r);
    }
    if (!career_transition_ok(from, c->to)) {
        http_field_error(r, "status", "is not a valid next status");
        rc = http_fail(r, 422, "VALIDATION_ERROR", "an application cannot go from %.*s to %.*s", STR_FMT(from),
                       STR_FMT(c->to));
        db_res_free(res);
        return rc;
    }
    /* history: the stored array plus one entry */
    struct buf h = BUF_INIT(1u << 20);
    struct jw w;
    json_t *old = json_loadb(db_text(res, 1).p, db_text(res, 1).len, 0, NULL);
    int64_t now = time_now_ms();
    db_res_free(res);
    jw_init(&w, &h);
    jw_arr_begin(&w);
    if (json_is_array(old)) {
        size_t i;
        json_t *e;
        json_array_foreach(old, i, e) jw_json(&w, e);
    }
    json_decref(old);
    history_entry(&w, c->to, now);
    jw_arr_end(&w);
    int64_t changed = 0;
    rc = buf_ok(&h) ? db_exec(db,
                              "UPDATE career_applications SET status = ?, history = ?, version = version + 1, "
                              "updated_at = ms_ts(?) WHERE id = ? AND version = ?",
                              DB_ARGS(DBA_TEXT(c->to), DBA_TEXT(buf_str(&h)), DBA_INT(now), DBA_TEXT(c->id),
                                      DBA_INT(version)),
                              &changed)
                    : DB_ERR;
    buf_free(&h);
    if (rc == DB_OK && changed != 1)
        return precondition_failed(r);
    return rc;
}

static int h_app_status(struct req *r)
{
    const json_t *st = json_object_get(r->body, "status");
    struct status_ctx c = {.id = req_param(r, "id"), .to = str_make(json_string_value(st), json_string_length(st))};
    if (!uuid_valid(c.id))
        return http_fail(r, 404, "NOT_FOUND", "no such application");
    if (req_tx(r, DB_TX_WRITE, tx_status, &c))
        return HTTP_EFAIL;
    return resource_respond(r, &career_applications, c.id, 200);
}

/* ---- ATS endpoints ---- */

/* The scoring text of resume or job id (no visibility check). */
static int row_text(struct db *db, const struct resource *res, str_t id, struct buf *out)
{
    const char *sql = res == &career_resumes
                          ? "SELECT title, summary, content, skills FROM career_resumes WHERE id = ?"
                          : "SELECT title, description, '', '' FROM career_jobs WHERE id = ?";
    struct db_res *dr;
    int rc;
    if ((rc = db_query(db, sql, DB_ARGS(DBA_TEXT(id)), &dr)) != DB_OK)
        return rc;
    if ((rc = db_next(dr)) == 1)
        for (int i = 0; i < 4; i++) {
            (void)buf_put(out, db_text(dr, i));
            (void)buf_putc(out, '\n');
        }
    db_res_free(dr);
    return rc < 0 ? rc : DB_OK;
}

/* The scoring text of a visible resume or job; *found false when not visible. */
static int load_text(struct req *r, const struct resource *res, str_t id, struct buf *out, bool *found)
{
    struct caller who = resource_caller(r);
    bool vis = false;
    int rc = resource_visible(&who, r->db, res, id, &vis);
    *found = vis;
    if (rc != DB_OK || !vis)
        return rc;
    return row_text(r->db, res, id, out);
}

/* ---- ATS profiles (ats.h): the tokenised view of a resume or job, stored
 * in its ats_profile column when the row is written, so recommendations
 * never tokenise; a row without a current profile gets one on first use. ---- */

#define ATS_PROFILE_MAX (ATS_MAX_TEXT * 2 + 64)

static enum ats_kind kind_of(const struct resource *res)
{
    return res == &career_resumes ? ATS_RESUME : ATS_JOB;
}

/* Build id's profile from its text into out and store it. */
static int profile_build(struct db *db, const struct resource *res, str_t id, struct buf *out)
{
    struct buf text = BUF_INIT(ATS_MAX_TEXT);
    int rc = row_text(db, res, id, &text);
    if (rc == DB_OK) {
        ats_profile(buf_str(&text), kind_of(res), out);
        rc = buf_ok(out) ? db_exec(db,
                                   res == &career_resumes ? "UPDATE career_resumes SET ats_profile = ? WHERE id = ?"
                                                          : "UPDATE career_jobs SET ats_profile = ? WHERE id = ?",
                                   DB_ARGS(DBA_TEXT(buf_str(out)), DBA_TEXT(id)), NULL)
                         : DB_ERR;
    }
    buf_free(&text);
    return rc;
}

static int profile_after_write(struct req *r, struct db *db, const struct resource *res, enum raction act, str_t id)
{
    (void)r;
    if (act != RA_CREATE && act != RA_UPDATE)
        return DB_OK;
    struct buf p = BUF_INIT(ATS_PROFILE_MAX);
    int rc = profile_build(db, res, id, &p);
    buf_free(&p);
    return rc;
}

/* d = the profile of id (stored: its ats_profile column), rebuilt when missing or stale. */
static int doc_get(struct req *r, const struct resource *res, str_t id, str_t stored, struct ats_doc *d)
{
    if (ats_doc_load(stored, kind_of(res), d) == 0)
        return DB_OK;
    struct buf p = BUF_INIT(ATS_PROFILE_MAX);
    int rc = profile_build(r->db, res, id, &p);
    if (rc == DB_OK && ats_doc_load(buf_str(&p), kind_of(res), d))
        rc = DB_ERR;
    buf_free(&p);
    return rc;
}

static void write_list(struct jw *w, const char *key, const struct ats_list *l)
{
    jw_key(w, key);
    jw_arr_begin(w);
    for (size_t i = 0; i < l->n; i++)
        jw_cstr(w, l->v[i]);
    jw_arr_end(w);
}

static void write_result(struct jw *w, const struct ats_result *s)
{
    jw_key(w, "score");
    jw_int(w, s->score);
    write_list(w, "matched_keywords", &s->matched_keywords);
    write_list(w, "missing_keywords", &s->missing_keywords);
    write_list(w, "matched_skills", &s->matched_skills);
    write_list(w, "missing_skills", &s->missing_skills);
}

/* Score resume_id against job_id for the caller; optionally store it on the resume. */
static int score_pair(struct req *r, str_t resume_id, str_t job_id, bool store)
{
    struct buf rt = BUF_INIT(ATS_MAX_TEXT), jt = BUF_INIT(ATS_MAX_TEXT);
    bool found;
    int rc = load_text(r, &career_resumes, resume_id, &rt, &found);
    if (rc == DB_OK && !found) {
        buf_free(&rt);
        buf_free(&jt);
        return http_fail(r, 404, "NOT_FOUND", "no such resume");
    }
    if (rc == DB_OK)
        rc = load_text(r, &career_jobs, job_id, &jt, &found);
    if (rc == DB_OK && !found) {
        buf_free(&rt);
        buf_free(&jt);
        return http_fail(r, 404, "NOT_FOUND", "no such job");
    }
    if (rc != DB_OK) {
        buf_free(&rt);
        buf_free(&jt);
        return http_db_fail(r, rc);
    }
    struct ats_result s;
    ats_score(buf_str(&rt), buf_str(&jt), &s);
    buf_free(&rt);
    buf_free(&jt);
    if (store)
        rc = db_exec(r->db,
                     "UPDATE career_resumes SET ats_score = ?, version = version + 1, updated_at = ms_ts(?) "
                     "WHERE id = ? AND user_id = ?",
                     DB_ARGS(DBA_INT(s.score), DBA_INT(time_now_ms()), DBA_TEXT(resume_id), DBA_TEXT(r->user_id)),
                     NULL);
    if (rc != DB_OK) {
        ats_result_free(&s);
        return http_db_fail(r, rc);
    }
    jw_obj_begin(&r->w);
    jw_key(&r->w, "resume_id");
    jw_str(&r->w, resume_id);
    jw_key(&r->w, "job_id");
    jw_str(&r->w, job_id);
    write_result(&r->w, &s);
    jw_obj_end(&r->w);
    ats_result_free(&s);
    return 0;
}

static int h_resume_score(struct req *r)
{
    const str_t *job = req_query(r, "job_id");
    if (!job || !job->len)
        return http_invalid(r, "job_id", "is required");
    for (int i = 0; i < r->q.n; i++)
        if (!str_is(r->q.p[i].key, "job_id"))
            return http_invalid(r, "query", "only job_id is accepted");
    return score_pair(r, req_param(r, "id"), *job, false);
}

static int h_job_match(struct req *r)
{
    const json_t *rid = json_object_get(r->body, "resume_id");
    return score_pair(r, str_make(json_string_value(rid), json_string_length(rid)), req_param(r, "id"), true);
}

static int h_job_analyze(struct req *r)
{
    const json_t *text = json_object_get(r->body, "text");
    struct ats_analysis a;
    ats_analyze(str_make(json_string_value(text), json_string_length(text)), &a);
    jw_obj_begin(&r->w);
    write_list(&r->w, "skills", &a.skills);
    write_list(&r->w, "required_skills", &a.required);
    write_list(&r->w, "preferred_skills", &a.preferred);
    write_list(&r->w, "keywords", &a.keywords);
    jw_key(&r->w, "seniority");
    jw_cstr(&r->w, a.seniority);
    jw_obj_end(&r->w);
    ats_analysis_free(&a);
    return 0;
}

/* GET /jobs/recommendations: the caller's open jobs ranked by the best score
 * any of their resumes reaches. The work is bounded: the newest RECO_MAX_JOBS
 * open jobs and the newest RECO_MAX_RESUMES resumes (500 pairs), each read as
 * its stored profile (no tokenising), each pair a few look-ups. */
#define RECO_MAX_RESUMES 10
#define RECO_MAX_JOBS 50

struct reco {
    char *job_id, *title, *company, *location, *resume_id, *profile;
    struct ats_doc doc;
    int score;
    struct ats_result res;
};

struct reco_resume {
    char *id, *profile;
    struct ats_doc doc;
};

static int reco_cmp(const void *a, const void *b)
{
    const struct reco *x = a, *y = b;
    if (x->score != y->score)
        return y->score - x->score;
    return strcmp(y->job_id, x->job_id); /* newer first */
}

static char *dup_col(struct db_res *dr, int i)
{
    return xstrndup(db_text(dr, i).p, db_text(dr, i).len);
}

static int h_recommendations(struct req *r)
{
    struct db_res *dr;
    struct reco_resume res[RECO_MAX_RESUMES];
    size_t nres = 0, nj = 0;
    struct reco *recs = xcalloc(RECO_MAX_JOBS, sizeof(*recs));
    int rc = db_query(r->db,
                      "SELECT id, coalesce(ats_profile, '') FROM career_resumes "
                      "WHERE user_id = ? AND deleted_at IS NULL AND status <> 'archived' ORDER BY id DESC LIMIT ?",
                      DB_ARGS(DBA_TEXT(r->user_id), DBA_INT(RECO_MAX_RESUMES)), &dr);
    if (rc == DB_OK) {
        while ((rc = db_next(dr)) == 1 && nres < RECO_MAX_RESUMES) /* bounded: nres < RECO_MAX_RESUMES */
            res[nres++] = (struct reco_resume){dup_col(dr, 0), dup_col(dr, 1), {0}};
        db_res_free(dr);
    }
    if (rc >= 0)
        rc = db_query(r->db,
                      "SELECT id, title, company, location, coalesce(ats_profile, '') FROM career_jobs "
                      "WHERE user_id = ? AND status = 'open' ORDER BY id DESC LIMIT ?",
                      DB_ARGS(DBA_TEXT(r->user_id), DBA_INT(RECO_MAX_JOBS)), &dr);
    if (rc >= 0) {
        while ((rc = db_next(dr)) == 1 && nj < RECO_MAX_JOBS) /* bounded: nj < RECO_MAX_JOBS */
            recs[nj++] = (struct reco){.job_id = dup_col(dr, 0), .title = dup_col(dr, 1), .company = dup_col(dr, 2),
                                       .location = dup_col(dr, 3), .profile = dup_col(dr, 4), .score = -1};
        db_res_free(dr);
    }
    /* the profiles: loaded, or built once for rows written before they existed */
    for (size_t k = 0; k < nres && rc >= 0; k++)
        rc = doc_get(r, &career_resumes, str_c(res[k].id), str_c(res[k].profile), &res[k].doc);
    for (size_t i = 0; i < nj && rc >= 0; i++)
        rc = doc_get(r, &career_jobs, str_c(recs[i].job_id), str_c(recs[i].profile), &recs[i].doc);
    for (size_t i = 0; i < nj && rc >= 0; i++) {
        struct reco *e = &recs[i];
        for (size_t k = 0; k < nres; k++) {
            struct ats_result sc;
            ats_match(&res[k].doc, &e->doc, &sc);
            if (sc.score > e->score) {
                if (e->score >= 0)
                    ats_result_free(&e->res);
                e->score = sc.score;
                e->res = sc;
                e->resume_id = res[k].id;
            } else {
                ats_result_free(&sc);
            }
        }
    }
    if (rc >= 0) {
        qsort(recs, nj, sizeof(*recs), reco_cmp);
        size_t from = (size_t)((r->page - 1) * r->limit);
        jw_obj_begin(&r->w);
        jw_key(&r->w, "data");
        jw_arr_begin(&r->w);
        for (size_t i = from; i < nj && i < from + (size_t)r->limit; i++) {
            jw_obj_begin(&r->w);
            jw_key(&r->w, "job");
            jw_obj_begin(&r->w);
            jw_key(&r->w, "id");
            jw_cstr(&r->w, recs[i].job_id);
            jw_key(&r->w, "title");
            jw_cstr(&r->w, recs[i].title);
            jw_key(&r->w, "company");
            jw_cstr(&r->w, recs[i].company);
            jw_key(&r->w, "location");
            jw_cstr(&r->w, recs[i].location);
            jw_obj_end(&r->w);
            jw_key(&r->w, "resume_id");
            jw_cstr(&r->w, recs[i].resume_id);
            if (recs[i].score >= 0) {
                write_result(&r->w, &recs[i].res);
            } else {
                jw_key(&r->w, "score");
                jw_null(&r->w);
            }
            jw_obj_end(&r->w);
        }
        jw_arr_end(&r->w);
        http_write_page_meta(r, (int64_t)nj);
        jw_obj_end(&r->w);
    }
    for (size_t i = 0; i < nj; i++) {
        free(recs[i].job_id);
        free(recs[i].title);
        free(recs[i].company);
        free(recs[i].location);
        free(recs[i].profile);
        ats_doc_free(&recs[i].doc);
        if (recs[i].score >= 0)
            ats_result_free(&recs[i].res);
    }
    for (size_t k = 0; k < nres; k++) {
        free(res[k].id);
        free(res[k].profile);
        ats_doc_free(&res[k].doc);
    }
    free(recs);
    if (rc < 0)
        return http_db_fail(r, rc);
    return 0;
}

/* ---- share links ---- */

static int h_share(struct req *r)
{
    str_t id = req_param(r, "id");
    if (resource_require(r, &career_resumes, id))
        return HTTP_EFAIL;
    int rc;
    struct buf tok = BUF_INIT(128), url = BUF_INIT(256);
    char hash[65], sid[UUID_STR_LEN + 1];
    int64_t now = time_now_ms();
    token_random(&tok, "", 24);
    sha256_hex(buf_str(&tok), hash);
    uuid7_str(sid);
    rc = db_exec(r->db,
                 "INSERT INTO career_resume_shares (id, resume_id, user_id, token_hash, created_at) "
                 "VALUES (?, ?, ?, ?, ms_ts(?))",
                 DB_ARGS(DBA_CSTR(sid), DBA_TEXT(id), DBA_TEXT(r->user_id), DBA_CSTR(hash), DBA_INT(now)), NULL);
    if (rc != DB_OK) {
        sodium_memzero(tok.ptr, tok.len);
        buf_free(&tok);
        buf_free(&url);
        return http_db_fail(r, rc);
    }
    (void)buf_printf(&url, "/api/v1/shared/resumes/%s", buf_cstr(&tok));
    r->status = 201;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "id");
    jw_cstr(&r->w, sid);
    jw_key(&r->w, "resume_id");
    jw_str(&r->w, id);
    jw_key(&r->w, "token"); /* shown once; only its hash is stored */
    jw_str(&r->w, buf_str(&tok));
    jw_key(&r->w, "url");
    jw_str(&r->w, buf_str(&url));
    jw_key(&r->w, "created_at");
    jw_time(&r->w, now);
    jw_obj_end(&r->w);
    sodium_memzero(tok.ptr, tok.len);
    buf_free(&tok);
    buf_free(&url);
    return 0;
}

static void write_share(struct jw *w, const struct db_res *res)
{
    static const struct http_col cols[] = {{"id", COL_TEXT}, {"created_at", COL_TIME}, {"revoked_at", COL_TIME}, {NULL, 0}};
    http_write_row(w, res, cols);
}

static int h_list_shares(struct req *r)
{
    static const char *const allowed[] = {NULL};
    str_t id = req_param(r, "id");
    db_arg args[4] = {DBA_TEXT(id), DBA_TEXT(r->user_id)};
    if (http_query_allow(r, allowed) || resource_require(r, &career_resumes, id))
        return HTTP_EFAIL;
    const struct http_list_query q = {"id, ts_ms(created_at), ts_ms(revoked_at)", "FROM career_resume_shares",
                                      " WHERE resume_id = ? AND user_id = ?", "id DESC", write_share};
    return http_list(r, &q, args, 2, ARRAY_LEN(args));
}

static int h_revoke_share(struct req *r)
{
    int64_t changed = 0;
    int rc = db_exec(r->db,
                     "UPDATE career_resume_shares SET revoked_at = ms_ts(?) WHERE id = ? AND resume_id = ? AND "
                     "user_id = ? AND revoked_at IS NULL",
                     DB_ARGS(DBA_INT(time_now_ms()), DBA_TEXT(req_param(r, "share_id")), DBA_TEXT(req_param(r, "id")),
                             DBA_TEXT(r->user_id)),
                     &changed);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if (changed != 1)
        return http_fail(r, 404, "NOT_FOUND", "no such share link");
    r->status = 204;
    return 0;
}

static int h_shared(struct req *r)
{
    str_t tok = req_param(r, "token");
    char hash[65];
    struct db_res *dr;
    if (tok.len < 16 || tok.len > 128)
        return http_fail(r, 404, "NOT_FOUND", "no such shared resume");
    sha256_hex(tok, hash);
    int rc = db_query(r->db,
                      "SELECT c.title, c.summary, c.content, c.skills, ts_ms(c.updated_at) FROM career_resume_shares s "
                      "JOIN career_resumes c ON c.id = s.resume_id WHERE s.token_hash = ? AND s.revoked_at IS NULL "
                      "AND c.deleted_at IS NULL",
                      DB_ARGS(DBA_CSTR(hash)), &dr);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    if ((rc = db_next(dr)) != 1) {
        db_res_free(dr);
        return rc < 0 ? http_db_fail(r, rc) : http_fail(r, 404, "NOT_FOUND", "no such shared resume");
    }
    static const char *const shared_fields[] = {"title", "summary", "content", "skills", "updated_at", NULL};
    jw_obj_begin(&r->w);
    (void)resource_write_fields(&r->w, &career_resumes, shared_fields, dr, 0, LANG_EN);
    jw_obj_end(&r->w);
    db_res_free(dr);
    return 0;
}

/* ---- overview ---- */

static int count_by(struct req *r, const char *sql, const char *const *keys, struct jw *w, int64_t *counts)
{
    struct db_res *dr;
    int rc = db_query(r->db, sql, DB_ARGS(DBA_TEXT(r->user_id)), &dr);
    if (rc != DB_OK)
        return rc;
    int n = 0;
    while (keys[n])
        counts[n++] = 0;
    while ((rc = db_next(dr)) == 1)
        for (int i = 0; keys[i]; i++)
            if (str_eq(db_text(dr, 0), str_c(keys[i])))
                counts[i] = db_int(dr, 1);
    db_res_free(dr);
    if (rc < 0)
        return rc;
    int64_t total = 0;
    jw_key(w, "total");
    for (int i = 0; keys[i]; i++)
        total += counts[i];
    jw_int(w, total);
    jw_key(w, "by_status");
    jw_obj_begin(w);
    for (int i = 0; keys[i]; i++) {
        jw_key(w, keys[i]);
        jw_int(w, counts[i]);
    }
    jw_obj_end(w);
    return DB_OK;
}

static int h_overview(struct req *r)
{
    struct jw *w = &r->w;
    int64_t rc_counts[3], jc[2], ac[6], avg = 0;
    bool found;
    int rc;
    jw_obj_begin(w);
    jw_key(w, "resumes");
    jw_obj_begin(w);
    rc = count_by(r, "SELECT status, count(*) FROM career_resumes WHERE user_id = ? AND deleted_at IS NULL GROUP BY status",
                  resume_status, w, rc_counts);
    if (rc == DB_OK)
        rc = db_query_int(r->db,
                          "SELECT coalesce(round(avg(ats_score)), -1) FROM career_resumes WHERE user_id = ? AND "
                          "deleted_at IS NULL AND ats_score IS NOT NULL",
                          DB_ARGS(DBA_TEXT(r->user_id)), &avg, &found);
    jw_key(w, "average_ats_score");
    if (avg >= 0)
        jw_int(w, avg);
    else
        jw_null(w);
    jw_obj_end(w);
    jw_key(w, "jobs");
    jw_obj_begin(w);
    if (rc == DB_OK)
        rc = count_by(r, "SELECT status, count(*) FROM career_jobs WHERE user_id = ? GROUP BY status", job_status, w, jc);
    jw_obj_end(w);
    jw_key(w, "applications");
    jw_obj_begin(w);
    if (rc == DB_OK)
        rc = count_by(r, "SELECT status, count(*) FROM career_applications WHERE user_id = ? GROUP BY status",
                      app_status, w, ac);
    jw_obj_end(w);
    if (rc != DB_OK)
        return http_db_fail(r, rc);
    /* of the applications that were sent (not just saved), the share with an offer */
    int64_t sent = ac[1] + ac[2] + ac[3] + ac[4] + ac[5];
    jw_key(w, "success_rate");
    jw_double(w, sent ? (double)(ac[3] * 10000 / sent) / 10000.0 : 0.0);
    jw_key(w, "interview_rate");
    jw_double(w, sent ? (double)((ac[2] + ac[3]) * 10000 / sent) / 10000.0 : 0.0);
    jw_obj_end(w);
    return 0;
}

/* ---- personal data (export, delete, guest migration) ---- */

static int export_data(struct db *db, str_t user_id, struct jw *w)
{
    int rc;
    jw_obj_begin(w);
    jw_key(w, "resumes");
    if ((rc = resource_export_rows(db, user_id, &career_resumes, w)) != DB_OK)
        return rc;
    jw_key(w, "jobs");
    if ((rc = resource_export_rows(db, user_id, &career_jobs, w)) != DB_OK)
        return rc;
    jw_key(w, "applications");
    if ((rc = resource_export_rows(db, user_id, &career_applications, w)) != DB_OK)
        return rc;
    jw_obj_end(w);
    return DB_OK;
}

static int delete_data(struct db *db, str_t user_id)
{
    static const char *const sqls[] = {
        "DELETE FROM career_resume_shares WHERE user_id = ?", "DELETE FROM career_applications WHERE user_id = ?",
        "DELETE FROM career_resumes WHERE user_id = ?", "DELETE FROM career_jobs WHERE user_id = ?"};
    for (size_t i = 0; i < ARRAY_LEN(sqls); i++) {
        int rc = db_exec(db, sqls[i], DB_ARGS(DBA_TEXT(user_id)), NULL);
        if (rc != DB_OK)
            return rc;
    }
    return DB_OK;
}

static int migrate_guest(struct db *db, str_t guest_id, str_t user_id)
{
    static const char *const sqls[] = {
        "UPDATE career_resumes SET user_id = ? WHERE user_id = ?", "UPDATE career_jobs SET user_id = ? WHERE user_id = ?",
        "UPDATE career_applications SET user_id = ? WHERE user_id = ?",
        "UPDATE career_resume_shares SET user_id = ? WHERE user_id = ?"};
    for (size_t i = 0; i < ARRAY_LEN(sqls); i++) {
        int rc = db_exec(db, sqls[i], DB_ARGS(DBA_TEXT(user_id), DBA_TEXT(guest_id)), NULL);
        if (rc != DB_OK)
            return rc;
    }
    return DB_OK;
}

static const struct user_data_hooks career_user_data = {
    .name = "career", .export_data = export_data, .delete_data = delete_data, .migrate_guest = migrate_guest};

/* ---- routes ---- */

static const struct json_field analyze_f[] = {
    {.name = "text", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 100000,
     .description = "the job posting"},
    {0}};
static const struct json_schema analyze_s = {analyze_f, false};
static const struct json_field match_f[] = {
    {.name = "resume_id", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 64}, {0}};
static const struct json_schema match_s = {match_f, false};
static const struct json_field status_f[] = {
    {.name = "status", .type = JF_STRING, .flags = JF_REQUIRED, .enum_values = app_status}, {0}};
static const struct json_schema status_s = {status_f, false};

/* OpenAPI: the ATS result, shared by /score, /match and the recommendations. */
static struct openapi_schema ats_schema = {
    .name = "AtsScore",
    .json = OPENAPI_JSON({
        "type" : "object",
        "required" : [ "score", "matched_keywords", "missing_keywords", "matched_skills", "missing_skills" ],
        "properties" : {
            "score" : {"type" : "integer", "minimum" : 0, "maximum" : 100},
            "matched_keywords" : {"type" : "array", "items" : {"type" : "string"}},
            "missing_keywords" : {"type" : "array", "items" : {"type" : "string"}},
            "matched_skills" : {"type" : "array", "items" : {"type" : "string"}},
            "missing_skills" : {"type" : "array", "items" : {"type" : "string"}}
        }
    })};
#define PAIR_OUT                                                                                                       \
    OPENAPI_JSON({"allOf" : [                                                                                          \
        {"$ref" : "#/components/schemas/AtsScore"}, {                                                                  \
            "type" : "object",                                                                                         \
            "required" : [ "resume_id", "job_id" ],                                                                    \
            "properties" : {"resume_id" : {"type" : "string", "format" : "uuid"}, "job_id" : {"type" : "string", "format" : "uuid"}} \
        }                                                                                                              \
    ]})
#define SHARE_OUT                                                                                                      \
    OPENAPI_JSON({                                                                                                     \
        "type" : "object",                                                                                             \
        "required" : [ "id", "created_at", "revoked_at" ],                                                             \
        "properties" : {                                                                                               \
            "id" : {"type" : "string", "format" : "uuid"},                                                             \
            "created_at" : {"type" : "string", "format" : "date-time"},                                                \
            "revoked_at" : {"type" : [ "string", "null" ], "format" : "date-time"}                                     \
        }                                                                                                              \
    })
#define SHARE_CREATED_OUT                                                                                              \
    OPENAPI_JSON({                                                                                                     \
        "type" : "object",                                                                                             \
        "required" : [ "id", "resume_id", "token", "url", "created_at" ],                                              \
        "properties" : {                                                                                               \
            "id" : {"type" : "string", "format" : "uuid"},                                                             \
            "resume_id" : {"type" : "string", "format" : "uuid"},                                                      \
            "token" : {"type" : "string", "description" : "shown only here"},                                          \
            "url" : {"type" : "string", "description" : "the public link (GET /api/v1/shared/resumes/{token})"},       \
            "created_at" : {"type" : "string", "format" : "date-time"}                                                 \
        }                                                                                                              \
    })
#define SHARED_OUT                                                                                                     \
    OPENAPI_JSON({                                                                                                     \
        "type" : "object",                                                                                             \
        "required" : [ "title", "summary", "content", "skills", "updated_at" ],                                        \
        "properties" : {                                                                                               \
            "title" : {"type" : "string"},                                                                             \
            "summary" : {"type" : [ "string", "null" ]},                                                               \
            "content" : {"type" : [ "string", "null" ]},                                                               \
            "skills" : {"type" : "array", "items" : {"type" : "string"}},                                              \
            "updated_at" : {"type" : "string", "format" : "date-time"}                                                 \
        }                                                                                                              \
    })
#define ANALYZE_OUT                                                                                                    \
    OPENAPI_JSON({                                                                                                     \
        "type" : "object",                                                                                             \
        "required" : [ "skills", "required_skills", "preferred_skills", "keywords", "seniority" ],                     \
        "properties" : {                                                                                               \
            "skills" : {"type" : "array", "items" : {"type" : "string"}},                                              \
            "required_skills" : {"type" : "array", "items" : {"type" : "string"}},                                     \
            "preferred_skills" : {"type" : "array", "items" : {"type" : "string"}},                                    \
            "keywords" : {"type" : "array", "items" : {"type" : "string"}},                                            \
            "seniority" : {"type" : [ "string", "null" ]}                                                              \
        }                                                                                                              \
    })
#define RECO_OUT                                                                                                       \
    OPENAPI_JSON({                                                                                                     \
        "type" : "object",                                                                                             \
        "required" : [ "job", "resume_id", "score" ],                                                                  \
        "properties" : {                                                                                               \
            "job" : {                                                                                                  \
                "type" : "object",                                                                                     \
                "required" : [ "id", "title", "company", "location" ],                                                 \
                "properties" : {                                                                                       \
                    "id" : {"type" : "string", "format" : "uuid"},                                                     \
                    "title" : {"type" : [ "string", "null" ]},                                                         \
                    "company" : {"type" : [ "string", "null" ]},                                                       \
                    "location" : {"type" : [ "string", "null" ]}                                                       \
                }                                                                                                      \
            },                                                                                                         \
            "resume_id" : {"type" : [ "string", "null" ], "format" : "uuid"},                                          \
            "score" : {"type" : [ "integer", "null" ], "description" : "null: no resume to match"},                   \
            "matched_keywords" : {"type" : "array", "items" : {"type" : "string"}},                                    \
            "missing_keywords" : {"type" : "array", "items" : {"type" : "string"}},                                    \
            "matched_skills" : {"type" : "array", "items" : {"type" : "string"}},                                      \
            "missing_skills" : {"type" : "array", "items" : {"type" : "string"}}                                       \
        }                                                                                                              \
    })
#define OVERVIEW_OUT                                                                                                   \
    OPENAPI_JSON({                                                                                                     \
        "type" : "object",                                                                                             \
        "required" : [ "resumes", "jobs", "applications", "success_rate", "interview_rate" ],                          \
        "properties" : {                                                                                               \
            "resumes" : {                                                                                              \
                "type" : "object",                                                                                     \
                "required" : [ "total", "by_status", "average_ats_score" ],                                            \
                "properties" : {                                                                                       \
                    "total" : {"type" : "integer"},                                                                    \
                    "by_status" : {"type" : "object", "additionalProperties" : {"type" : "integer"}},                  \
                    "average_ats_score" : {"type" : [ "integer", "null" ]}                                             \
                }                                                                                                      \
            },                                                                                                         \
            "jobs" : {"$ref" : "#/components/schemas/StatusCounts"},                                                   \
            "applications" : {"$ref" : "#/components/schemas/StatusCounts"},                                           \
            "success_rate" : {"type" : "number", "minimum" : 0, "maximum" : 1},                                        \
            "interview_rate" : {"type" : "number", "minimum" : 0, "maximum" : 1}                                       \
        }                                                                                                              \
    })
static struct openapi_schema counts_schema = {
    .name = "StatusCounts",
    .json = OPENAPI_JSON({
        "type" : "object",
        "required" : [ "total", "by_status" ],
        "properties" : {
            "total" : {"type" : "integer", "minimum" : 0},
            "by_status" : {"type" : "object", "additionalProperties" : {"type" : "integer"}, "description" : "count per status"}
        }
    })};

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/resumes/{id}/score", .handler = h_resume_score, .auth = AUTH_USER, .rl = RL_READ, .summary = "ATS score of a resume against a job (?job_id=): 0-100, matched and missing keywords", .tag = "career", .errors = "422", .output = PAIR_OUT,
     .params = OPENAPI_JSON([ {"name" : "job_id", "in" : "query", "required" : true, "schema" : {"type" : "string", "format" : "uuid"}} ])},
    {.method = "POST", .pattern = "/api/v1/resumes/{id}/share", .handler = h_share, .auth = AUTH_USER, .rl = RL_WRITE, .summary = "Create a public, revocable share link (the token is shown once)", .tag = "career", .output = SHARE_CREATED_OUT},
    {.method = "GET", .pattern = "/api/v1/resumes/{id}/shares", .handler = h_list_shares, .auth = AUTH_USER, .rl = RL_READ, .flags = ROUTE_PAGINATED, .summary = "Share links of a resume (without tokens)", .tag = "career", .output = SHARE_OUT},
    {.method = "DELETE", .pattern = "/api/v1/resumes/{id}/shares/{share_id}", .handler = h_revoke_share, .auth = AUTH_USER, .rl = RL_WRITE, .summary = "Revoke a share link", .tag = "career", .status = 204},
    {.method = "GET", .pattern = "/api/v1/shared/resumes/{token}", .handler = h_shared, .auth = AUTH_NONE, .rl = RL_READ, .summary = "A shared resume, without authentication", .tag = "career", .output = SHARED_OUT},
    {.method = "POST", .pattern = "/api/v1/jobs/analyze", .handler = h_job_analyze, .auth = AUTH_USER, .rl = RL_WRITE, .input = &analyze_s, .body_max = 256u << 10, .summary = "Skills, keywords and seniority of a job posting", .tag = "career", .output = ANALYZE_OUT},
    {.method = "POST", .pattern = "/api/v1/jobs/{id}/match", .handler = h_job_match, .auth = AUTH_USER, .rl = RL_WRITE, .input = &match_s, .summary = "Score a resume against this job (stored as the resume's ats_score)", .tag = "career", .output = PAIR_OUT},
    {.method = "GET", .pattern = "/api/v1/jobs/recommendations", .handler = h_recommendations, .auth = AUTH_USER, .rl = RL_READ, .flags = ROUTE_PAGINATED, .summary = "The caller's open jobs ranked by match with their resumes", .tag = "career", .output = RECO_OUT},
    {.method = "PATCH", .pattern = "/api/v1/applications/{id}/status", .handler = h_app_status, .auth = AUTH_USER, .rl = RL_WRITE, .input = &status_s, .summary = "Move an application: saved → applied → interview → offer | rejected | withdrawn (If-Match)", .tag = "career", .errors = "412", .output = OPENAPI_JSON({"$ref" : "#/components/schemas/Application"})},
    {.method = "GET", .pattern = "/api/v1/analytics/overview", .handler = h_overview, .auth = AUTH_USER, .rl = RL_READ, .summary = "The caller's resumes, jobs, applications by status, success rate", .tag = "career", .output = OVERVIEW_OUT},
};

static void register_routes(void)
{
    resource_register(&career_resumes);
    resource_register(&career_jobs);
    resource_register(&career_applications);
    openapi_schema_add(&ats_schema);
    openapi_schema_add(&counts_schema);
    router_add(routes, ARRAY_LEN(routes));
}

static int init(const struct config *cfg, struct db *db, struct buf *err)
{
    (void)cfg;
    (void)db;
    (void)err;
    identity_register_user_data(&career_user_data);
    return 0;
}

const struct module career_module = {
    .name = "career",
    .register_routes = register_routes,
    .init = init,
    .seed = career__seed,
};
