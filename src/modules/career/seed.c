/*
 * seed.c — `temel seed` for career: the demo user demo@temel.dev (password
 * CAREER_DEMO_PASSWORD, printed by the command) with a few resumes, jobs
 * and applications. Idempotent: the user is created once, and the demo
 * rows only when the user has no resumes yet.
 */
#include "core/timeutil.h"
#include "core/uuid.h"
#include "db/db.h"
#include "modules/career/career.h"
#include "modules/users/identity.h"

#include "core/banned.h"

static const struct {
    const char *title, *summary, *content, *skills, *status;
} demo_resumes[] = {
    {"Backend Developer", "Backend developer with 5 years of Python and PostgreSQL.",
     "Built REST APIs with Django and FastAPI; PostgreSQL, Redis, Docker, Kubernetes on AWS. "
     "Led a team of three; CI/CD with Jenkins and Git.",
     "[\"Python\",\"PostgreSQL\",\"Docker\",\"AWS\",\"Django\"]", "active"},
    {"Veri Analisti", "İstanbul'da veri analizi ve raporlama deneyimi.",
     "SQL, Excel ve Power BI ile satış raporları; Python ve Pandas ile veri temizleme. İngilizce iyi.",
     "[\"SQL\",\"Excel\",\"Power BI\",\"Python\"]", "draft"},
};

static const struct {
    const char *title, *company, *location, *description, *url;
} demo_jobs[] = {
    {"Senior Python Developer", "Acme", "Remote",
     "We are looking for a senior Python developer: Django or FastAPI, PostgreSQL, Docker, Kubernetes, AWS. "
     "5+ years of experience with REST APIs and microservices.",
     "https://jobs.example.com/acme/senior-python"},
    {"Veri Analisti", "Örnek A.Ş.", "İstanbul",
     "SQL, Excel ve Power BI bilen, Python tercihen, veri analizi deneyimli takım arkadaşı arıyoruz.",
     "https://jobs.example.com/ornek/veri-analisti"},
    {"Frontend Engineer", "Globex", "Berlin",
     "React and TypeScript frontend engineer; HTML, CSS, GraphQL; junior candidates welcome.", NULL},
};

static int insert_demo(struct db *db, str_t uid, struct buf *out)
{
    int64_t now = time_now_ms();
    char rids[ARRAY_LEN(demo_resumes)][UUID_STR_LEN + 1], jids[ARRAY_LEN(demo_jobs)][UUID_STR_LEN + 1];
    int rc = DB_OK;
    for (size_t i = 0; i < ARRAY_LEN(demo_resumes) && rc == DB_OK; i++) {
        uuid7_str(rids[i]);
        rc = db_exec(db,
                     "INSERT INTO career_resumes (id, version, user_id, title, summary, content, skills, status, "
                     "created_at, updated_at) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(rids[i]), DBA_TEXT(uid), DBA_CSTR(demo_resumes[i].title),
                             DBA_CSTR(demo_resumes[i].summary), DBA_CSTR(demo_resumes[i].content),
                             DBA_CSTR(demo_resumes[i].skills), DBA_CSTR(demo_resumes[i].status), DBA_INT(now),
                             DBA_INT(now)),
                     NULL);
    }
    for (size_t i = 0; i < ARRAY_LEN(demo_jobs) && rc == DB_OK; i++) {
        uuid7_str(jids[i]);
        rc = db_exec(db,
                     "INSERT INTO career_jobs (id, version, user_id, title, company, location, description, url, "
                     "status, created_at, updated_at) VALUES (?, 1, ?, ?, ?, ?, ?, ?, 'open', ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(jids[i]), DBA_TEXT(uid), DBA_CSTR(demo_jobs[i].title),
                             DBA_CSTR(demo_jobs[i].company), DBA_CSTR(demo_jobs[i].location),
                             DBA_CSTR(demo_jobs[i].description),
                             demo_jobs[i].url ? DBA_CSTR(demo_jobs[i].url) : DBA_NULL, DBA_INT(now), DBA_INT(now)),
                     NULL);
    }
    /* one application further along its workflow, one just saved */
    if (rc == DB_OK) {
        char aid[UUID_STR_LEN + 1], t0[TIME_RFC3339_LEN + 1], t1[TIME_RFC3339_LEN + 1];
        struct buf h = BUF_INIT(512);
        time_format_rfc3339(now, t0);
        time_format_rfc3339(now + 1, t1);
        (void)buf_printf(&h, "[{\"status\":\"saved\",\"at\":\"%s\"},{\"status\":\"applied\",\"at\":\"%s\"}]", t0, t1);
        uuid7_str(aid);
        rc = db_exec(db,
                     "INSERT INTO career_applications (id, version, user_id, job_id, resume_id, status, notes, history, "
                     "created_at, updated_at) VALUES (?, 1, ?, ?, ?, 'applied', ?, ?, ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(aid), DBA_TEXT(uid), DBA_CSTR(jids[0]), DBA_CSTR(rids[0]),
                             DBA_CSTR("Applied through the company site; recruiter call next week."),
                             DBA_TEXT(buf_str(&h)), DBA_INT(now), DBA_INT(now + 1)),
                     NULL);
        buf_reset(&h);
        (void)buf_printf(&h, "[{\"status\":\"saved\",\"at\":\"%s\"}]", t0);
        uuid7_str(aid);
        if (rc == DB_OK)
            rc = db_exec(db,
                         "INSERT INTO career_applications (id, version, user_id, job_id, resume_id, status, notes, "
                         "history, created_at, updated_at) VALUES (?, 1, ?, ?, ?, 'saved', ?, ?, ms_ts(?), ms_ts(?))",
                         DB_ARGS(DBA_CSTR(aid), DBA_TEXT(uid), DBA_CSTR(jids[1]), DBA_CSTR(rids[1]),
                                 DBA_CSTR("Maaş beklentisini sor."), DBA_TEXT(buf_str(&h)), DBA_INT(now),
                                 DBA_INT(now)),
                         NULL);
        buf_free(&h);
    }
    if (rc == DB_OK)
        (void)buf_printf(out, "career: %zu resumes, %zu jobs, 2 applications for %s\n", ARRAY_LEN(demo_resumes),
                         ARRAY_LEN(demo_jobs), CAREER_DEMO_EMAIL);
    return rc;
}

struct seed_ctx {
    struct buf *out;
};

static int tx_seed(struct db *db, void *arg)
{
    struct seed_ctx *c = arg;
    struct db_res *res;
    int64_t n = 0;
    bool found;
    int rc = db_query(db, "SELECT id FROM users WHERE email = ?", DB_ARGS(DBA_CSTR(CAREER_DEMO_EMAIL)), &res);
    if (rc != DB_OK)
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc < 0 ? rc : DB_ERR;
    }
    char uid[UUID_STR_LEN + 1];
    (void)str_copy(uid, db_text(res, 0).p, sizeof(uid));
    db_res_free(res);
    rc = db_query_int(db, "SELECT count(*) FROM career_resumes WHERE user_id = ?", DB_ARGS(DBA_CSTR(uid)), &n, &found);
    if (rc != DB_OK)
        return rc;
    if (n > 0) {
        (void)buf_printf(c->out, "career: demo data already present for %s\n", CAREER_DEMO_EMAIL);
        return DB_OK;
    }
    return insert_demo(db, str_c(uid), c->out);
}

int career__seed(struct db *db, struct buf *out)
{
    struct buf err = BUF_INIT(512);
    int rc = identity_create_user(db, CAREER_DEMO_EMAIL, CAREER_DEMO_PASSWORD, "Demo User", "user", &err);
    if (rc != 0 && rc != DB_ECONSTRAINT) {
        (void)buf_printf(out, "career: demo user: %s", err.len ? buf_cstr(&err) : db_errmsg(db));
        buf_free(&err);
        return -1;
    }
    buf_free(&err);
    if (rc == 0)
        (void)buf_printf(out, "career: demo user %s created (password: %s)\n", CAREER_DEMO_EMAIL,
                         CAREER_DEMO_PASSWORD);
    else
        (void)buf_printf(out, "career: demo user %s exists (password, unless changed: %s)\n", CAREER_DEMO_EMAIL,
                         CAREER_DEMO_PASSWORD);
    struct seed_ctx c = {out};
    if ((rc = db_tx(db, DB_TX_WRITE, tx_seed, &c)) != DB_OK) {
        (void)buf_printf(out, "career: %s", db_errmsg(db));
        return -1;
    }
    return 0;
}
