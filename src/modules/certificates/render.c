/*
 * render.c — the "certificates.generate" job: one PDF per checked-in,
 * confirmed attendee of the event who has no certificate yet.
 *
 * Runs on a job runner thread (PDF work never touches an event loop). Each
 * certificate is rendered outside any transaction and inserted in its own
 * short one; UNIQUE (event_id, user_id) makes a rerun (or a second job)
 * skip whoever already has one, and a number collision (UNIQUE number) is
 * simply drawn again. The number is "CERT-<year>-" + 10 random base32
 * characters (50 bits). The QR code encodes
 * TEMEL_PUBLIC_URL/api/v1/certificates/verify/<number>. The template's logo
 * is fetched once per job through the SSRF-safe client; a logo that cannot
 * be fetched or is not a PNG is left out (noted in the job result).
 * The PDF is stored as a file (files_put_generated: purpose certificate,
 * owned by the attendee); certificate_files links the two.
 */
#include <sodium.h>

#include "core/timeutil.h"
#include "core/uuid.h"
#include "docs/pdf.h"
#include "docs/qr.h"
#include "modules/certificates/certificates_internal.h"
#include "modules/files/files.h"
#include "transport/http_client.h"
#include "transport/mail.h"

#include "core/banned.h"

#define NEXT_ATTENDEE                                                                                                 \
    "SELECT g.user_id, u.name, u.email, e.title, ts_ms(e.starts_at), e.city FROM event_registrations g "             \
    "JOIN users u ON u.id = g.user_id JOIN events e ON e.id = g.event_id "                                           \
    "WHERE g.event_id = ? AND g.status = 'confirmed' AND g.checked_in_at IS NOT NULL AND NOT EXISTS "                \
    "(SELECT 1 FROM certificates c WHERE c.event_id = g.event_id AND c.user_id = g.user_id) ORDER BY g.id LIMIT 1"

struct tmpl {
    struct buf title, body, primary, text, logo_url, logo;
};

struct attendee {
    char user_id[UUID_STR_LEN + 1];
    struct buf name, title, city;
    int64_t starts;
};

static void number_make(int64_t now_ms, char out[32])
{
    static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; /* 32, no I O 0 1 */
    char t[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(now_ms, t);
    unsigned char rnd[CERT_NUMBER_RANDOM];
    randombytes_buf(rnd, sizeof(rnd));
    memcpy(out, "CERT-", 5);
    memcpy(out + 5, t, 4);
    out[9] = '-';
    for (int i = 0; i < CERT_NUMBER_RANDOM; i++)
        out[10 + i] = alphabet[rnd[i] & 31];
    out[10 + CERT_NUMBER_RANDOM] = '\0';
}

static void color_of(const char *hex, float rgb[3])
{
    for (int i = 0; i < 3; i++) {
        unsigned v = 0;
        for (int k = 1 + 2 * i; k < 3 + 2 * i; k++) {
            char c = hex[k];
            v = v * 16 + (unsigned)(c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0');
        }
        rgb[i] = (float)v / 255.0f;
    }
}

/* The certificate as a PDF appended to out: 0, or -1 with err. */
static int render(const struct tmpl *t, const struct attendee *a, const char *number, struct buf *out,
                  struct buf *err)
{
    char date[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(a->starts, date);
    date[10] = '\0';
    json_t *vars = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", buf_cstr(&a->name), "event", buf_cstr(&a->title),
                             "date", date, "city", buf_cstr(&a->city), "number", number);
    struct buf body = BUF_INIT(1u << 20), url = BUF_INIT(4096), qr = BUF_INIT(QR_PNG_MAX), line = BUF_INIT(4096);
    int rc = vars ? mail_render(buf_cstr(&t->body), vars, false, &body, err) : -1;
    json_decref(vars);
    (void)buf_printf(&url, "%s/api/v1/certificates/verify/%s", certificates__public_url(), number);
    if (rc == 0)
        rc = qr_png(buf_str(&url), 4, &qr, err);
    struct pdf *p = rc == 0 ? pdf_new(buf_cstr(&t->title), err) : NULL;
    if (!p)
        rc = -1;
    if (rc == 0) {
        float primary[3], text[3];
        color_of(buf_cstr(&t->primary), primary);
        color_of(buf_cstr(&t->text), text);
        if (t->logo.len)
            pdf_png(p, buf_str(&t->logo), 96);
        pdf_space(p, 40);
        pdf_color(p, primary[0], primary[1], primary[2]);
        pdf_text(p, buf_str(&t->title), PDF_BOLD, 30, PDF_CENTER);
        pdf_space(p, 10);
        pdf_rule(p);
        pdf_space(p, 30);
        pdf_color(p, text[0], text[1], text[2]);
        pdf_text(p, buf_str(&a->name), PDF_BOLD, 24, PDF_CENTER);
        pdf_space(p, 20);
        pdf_text(p, buf_str(&body), PDF_REGULAR, 14, PDF_CENTER);
        pdf_space(p, 40);
        pdf_png(p, buf_str(&qr), 110);
        pdf_space(p, 6);
        (void)buf_printf(&line, "No. %s", number);
        pdf_text(p, buf_str(&line), PDF_BOLD, 10, PDF_CENTER);
        pdf_text(p, buf_str(&url), PDF_REGULAR, 8, PDF_CENTER);
        rc = pdf_finish(p, out, err);
    }
    pdf_free(p);
    buf_free(&body);
    buf_free(&url);
    buf_free(&qr);
    buf_free(&line);
    return rc;
}

static int load_template(struct db *db, const char *id, struct tmpl *t, bool *found)
{
    struct db_res *q = NULL;
    int rc = db_query(db, "SELECT title, body, primary_color, text_color, logo_url FROM certificate_templates "
                          "WHERE id = ?",
                      DB_ARGS(DBA_CSTR(id)), &q);
    *found = false;
    if (rc == DB_OK && (rc = db_next(q)) == 1) {
        *found = true;
        (void)buf_put(&t->title, db_text(q, 0));
        (void)buf_put(&t->body, db_text(q, 1));
        (void)buf_put(&t->primary, db_text(q, 2));
        (void)buf_put(&t->text, db_text(q, 3));
        if (!db_isnull(q, 4))
            (void)buf_put(&t->logo_url, db_text(q, 4));
    }
    db_res_free(q);
    return rc < 0 ? rc : DB_OK;
}

/* The logo as PNG bytes into t->logo, or a reason in note. */
static void fetch_logo(struct job *j, struct tmpl *t, struct buf *note)
{
    if (!t->logo_url.len)
        return;
    struct httpc_request rq = HTTPC_REQUEST_INIT;
    rq.url = buf_cstr(&t->logo_url);
    rq.deadline_mono_ms = j->deadline_mono_ms;
    rq.allow = httpc_allow_outbound();
    rq.body_max = CERT_LOGO_MAX;
    struct httpc_response rs;
    struct buf err = BUF_INIT(512);
    int rc = httpc_perform(&rq, &rs, &err);
    if (rc != HTTPC_OK)
        (void)buf_printf(note, "logo left out: %s", buf_cstr(&err));
    else if (rs.status != 200)
        (void)buf_printf(note, "logo left out: HTTP %ld", rs.status);
    else if (rs.body.len < 8 || memcmp(rs.body.ptr, "\x89PNG\r\n\x1a\n", 8))
        (void)buf_puts(note, "logo left out: not a PNG");
    else
        (void)buf_put(&t->logo, buf_str(&rs.body));
    httpc_response_free(&rs);
    buf_free(&err);
}

/* The next attendee without a certificate: 1, 0 when none, or a db_rc. */
static int next_attendee(struct db *db, const char *event_id, struct attendee *a)
{
    struct db_res *q = NULL;
    int rc = db_query(db, NEXT_ATTENDEE, DB_ARGS(DBA_CSTR(event_id)), &q);
    if (rc == DB_OK && (rc = db_next(q)) == 1) {
        (void)str_copy(a->user_id, db_text(q, 0).p, sizeof(a->user_id));
        buf_reset(&a->name);
        buf_reset(&a->title);
        buf_reset(&a->city);
        /* an account without a name (OTP or guest) is named by its address */
        (void)buf_put(&a->name, db_text(q, 1).len ? db_text(q, 1) : db_isnull(q, 2) ? STRLIT("—") : db_text(q, 2));
        (void)buf_put(&a->title, db_text(q, 3));
        a->starts = db_int(q, 4);
        if (!db_isnull(q, 5))
            (void)buf_put(&a->city, db_text(q, 5));
    }
    db_res_free(q);
    return rc;
}

struct cert_row {
    const char *event_id, *template_id, *number, *file_id;
    const struct attendee *a;
    int64_t pdf_size;
};

static int tx_insert_cert(struct db *db, void *arg)
{
    const struct cert_row *c = arg;
    char id[UUID_STR_LEN + 1];
    uuid7_str(id);
    int64_t now = time_now_ms();
    int rc = db_exec(db,
                     "INSERT INTO certificates (id, number, event_id, user_id, template_id, attendee_name, event_title, "
                     "event_date, status, pdf_size, created_at, updated_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ms_ts(?), 'valid', ?, ms_ts(?), ms_ts(?))",
                     DB_ARGS(DBA_CSTR(id), DBA_CSTR(c->number), DBA_CSTR(c->event_id), DBA_CSTR(c->a->user_id),
                             DBA_CSTR(c->template_id), DBA_TEXT(buf_str(&c->a->name)),
                             DBA_TEXT(buf_str(&c->a->title)), DBA_INT(c->a->starts), DBA_INT(c->pdf_size),
                             DBA_INT(now), DBA_INT(now)),
                     NULL);
    if (rc != DB_OK)
        return rc;
    return db_exec(db, "INSERT INTO certificate_files (certificate_id, file_id) VALUES (?, ?)",
                   DB_ARGS(DBA_CSTR(id), DBA_CSTR(c->file_id)), NULL);
}

static int tx_forget(struct db *db, void *arg) { return files_forget(db, str_c(arg)); }

/* The PDF becomes a file of the attendee (purpose certificate: it is in
 * their GET /files, not deletable there) through the files module's
 * internal API; then the certificate and its link in one transaction. A
 * certificate that cannot be inserted forgets its file. */
static int insert_cert(struct db *db, struct cert_row *c, str_t pdf, struct buf *err)
{
    struct files_info f = {0};
    struct buf name = BUF_INIT(64);
    (void)buf_printf(&name, "%s.pdf", c->number);
    int rc = files_put_generated(db, str_c(c->a->user_id), "certificate", buf_str(&name), pdf, &f, err);
    buf_free(&name);
    if (rc == FILES_ESTORE)
        return DB_ERR;
    if (rc != DB_OK)
        return rc;
    c->file_id = f.id;
    c->pdf_size = (int64_t)pdf.len;
    rc = db_tx(db, DB_TX_WRITE, tx_insert_cert, c);
    if (rc != DB_OK && db_tx(db, DB_TX_WRITE, tx_forget, f.id) != DB_OK)
        (void)buf_printf(err, "the file %s of a certificate not inserted was kept", f.id);
    return rc;
}

static enum job_result job_generate(struct job *j, struct buf *result, struct buf *error)
{
    const char *event_id = json_string_value(json_object_get(j->payload, "event_id"));
    const char *template_id = json_string_value(json_object_get(j->payload, "template_id"));
    if (!event_id || !template_id) {
        (void)buf_puts(error, "bad payload");
        return JOB_FAIL;
    }
    struct tmpl t = {BUF_INIT(4096), BUF_INIT(CERT_BODY_MAX * 4 + 16), BUF_INIT(16), BUF_INIT(16), BUF_INIT(8192),
                     BUF_INIT(CERT_LOGO_MAX)};
    struct attendee a = {.name = BUF_INIT(4096), .title = BUF_INIT(4096), .city = BUF_INIT(1024)};
    struct buf note = BUF_INIT(1024), pdf = BUF_INIT(PDF_MAX_BYTES), err = BUF_INIT(1024);
    enum job_result out = JOB_OK;
    int64_t done = 0, total = 0;
    bool found = false;
    int rc = load_template(j->db, template_id, &t, &found);
    if (rc == DB_OK && !found) {
        (void)buf_puts(error, "the template is gone");
        out = JOB_FAIL;
        goto end;
    }
    if (rc == DB_OK)
        rc = db_query_int(j->db,
                          "SELECT count(*) FROM event_registrations g WHERE g.event_id = ? AND g.status = 'confirmed' "
                          "AND g.checked_in_at IS NOT NULL",
                          DB_ARGS(DBA_CSTR(event_id)), &total, &found);
    if (rc != DB_OK)
        goto db_error;
    fetch_logo(j, &t, &note);
    for (int64_t guard = 0; guard < total + 16; guard++) {
        if ((rc = next_attendee(j->db, event_id, &a)) < 0)
            goto db_error;
        if (rc == 0)
            break;
        char number[32];
        number_make(time_now_ms(), number);
        buf_reset(&pdf);
        buf_reset(&err);
        if (render(&t, &a, number, &pdf, &err)) {
            (void)buf_printf(error, "render: %s", buf_cstr(&err));
            out = JOB_FAIL; /* the same input would fail again */
            goto end;
        }
        struct cert_row c = {.event_id = event_id, .template_id = template_id, .number = number, .a = &a};
        buf_reset(&err);
        rc = insert_cert(j->db, &c, buf_str(&pdf), &err);
        if (rc == DB_ECONSTRAINT)
            continue; /* another job made it, or the number was taken: look again */
        if (rc != DB_OK) {
            if (err.len)
                (void)buf_printf(error, "%s; ", buf_cstr(&err));
            goto db_error;
        }
        done++;
        (void)job_progress(j, total ? (int)(done * 100 / total) : 100);
    }
    (void)buf_printf(result, "{\"generated\":%lld", (long long)done);
    if (note.len) {
        (void)buf_puts(result, ",\"note\":");
        json_escape(result, buf_str(&note));
    }
    (void)buf_putc(result, '}');
    goto end;
db_error:
    (void)buf_printf(error, "certificates: %s", db_errmsg(j->db));
    out = JOB_RETRY;
end:
    buf_free(&t.title);
    buf_free(&t.body);
    buf_free(&t.primary);
    buf_free(&t.text);
    buf_free(&t.logo_url);
    buf_free(&t.logo);
    buf_free(&a.name);
    buf_free(&a.title);
    buf_free(&a.city);
    buf_free(&note);
    buf_free(&pdf);
    buf_free(&err);
    return out;
}

void certificates__register_jobs(void)
{
    static const struct job_kind kind = {.kind = "certificates.generate", .handler = job_generate,
                                         .queue = "default", .timeout_ms = 600000};
    jobs_register(&kind);
}
