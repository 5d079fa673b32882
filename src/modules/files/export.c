/*
 * export.c — generated documents (API.md §8 → §7): POST /resumes/{id}/export
 * {format: pdf|docx} answers 202 with the job and the id the file will have;
 * the job renders the resume (PDF through src/docs/pdf.h; DOCX as
 * WordprocessingML in a zip written with libzip), stores it and inserts the
 * file row (purpose "export"), so GET /files/{file_id} answers once it is done.
 */
#include <jansson.h>
#include <string.h>
#include <zip.h>

#include "auth/crypto.h"
#include "core/uuid.h"
#include "docs/pdf.h"
#include "jobs/jobs.h"
#include "modules/career/career.h"
#include "modules/files/files.h"
#include "modules/files/files_internal.h"

#include "core/banned.h"

#define DOC_MAX (32u << 20)

struct resume {
    struct buf title, summary, content, skills; /* skills: "a, b, c" */
};

/* ---- DOCX ---- */
static void xml_text(struct buf *b, str_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        switch (c) {
        case '&': (void)buf_puts(b, "&amp;"); break;
        case '<': (void)buf_puts(b, "&lt;"); break;
        case '>': (void)buf_puts(b, "&gt;"); break;
        case '"': (void)buf_puts(b, "&quot;"); break;
        default:
            if (c >= 0x20 || c == '\t')
                (void)buf_putc(b, (char)c); /* other control characters are not XML */
        }
    }
}

/* One paragraph per line of s. size in half-points. */
static void docx_para(struct buf *b, str_t s, bool bold, int size)
{
    size_t start = 0;
    for (size_t i = 0; i <= s.len; i++) {
        if (i < s.len && s.p[i] != '\n')
            continue;
        (void)buf_printf(b, "<w:p><w:r><w:rPr>%s<w:sz w:val=\"%d\"/></w:rPr><w:t xml:space=\"preserve\">",
                         bold ? "<w:b/>" : "", size);
        xml_text(b, str_make(s.p + start, i - start));
        (void)buf_puts(b, "</w:t></w:r></w:p>");
        start = i + 1;
    }
}

static const char CONTENT_TYPES[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
    "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
    "<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>"
    "<Default Extension=\"xml\" ContentType=\"application/xml\"/>"
    "<Override PartName=\"/word/document.xml\" "
    "ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>"
    "</Types>";
static const char RELS[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
    "<Relationship Id=\"rId1\" "
    "Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" "
    "Target=\"word/document.xml\"/></Relationships>";

static int docx_add(zip_t *z, const char *name, str_t data)
{
    zip_source_t *s = zip_source_buffer(z, data.p, data.len, 0);
    if (!s)
        return -1;
    if (zip_file_add(z, name, s, ZIP_FL_ENC_UTF_8) < 0) {
        zip_source_free(s);
        return -1;
    }
    return 0;
}

static int render_docx(const struct resume *cv, struct buf *out, struct buf *err)
{
    struct buf doc = BUF_INIT(DOC_MAX);
    (void)buf_puts(&doc, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
                         "<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">"
                         "<w:body>");
    docx_para(&doc, buf_str(&cv->title), true, 36);
    if (cv->summary.len)
        docx_para(&doc, buf_str(&cv->summary), false, 22);
    if (cv->skills.len) {
        docx_para(&doc, STRLIT("Skills"), true, 26);
        docx_para(&doc, buf_str(&cv->skills), false, 22);
    }
    if (cv->content.len)
        docx_para(&doc, buf_str(&cv->content), false, 22);
    (void)buf_puts(&doc, "<w:sectPr/></w:body></w:document>");
    if (!buf_ok(&doc)) {
        buf_free(&doc);
        (void)buf_puts(err, "document too large");
        return -1;
    }
    zip_error_t ze;
    zip_error_init(&ze);
    int rc = -1;
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    zip_t *z = NULL;
    if (src) {
        zip_source_keep(src); /* read it back after zip_close */
        z = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    }
    if (z && docx_add(z, "[Content_Types].xml", STRLIT(CONTENT_TYPES)) == 0 && docx_add(z, "_rels/.rels", STRLIT(RELS)) == 0 &&
        docx_add(z, "word/document.xml", buf_str(&doc)) == 0 && zip_close(z) == 0) {
        z = NULL;
        zip_stat_t st;
        if (zip_source_open(src) == 0) {
            if (zip_source_stat(src, &st) == 0 && (st.valid & ZIP_STAT_SIZE) && st.size < DOC_MAX) {
                char *w = buf_reserve(out, (size_t)st.size);
                if (w && zip_source_read(src, w, st.size) == (zip_int64_t)st.size) {
                    buf_commit(out, (size_t)st.size);
                    rc = 0;
                }
            }
            zip_source_close(src);
        }
    }
    if (rc)
        (void)buf_puts(err, "docx: the zip could not be written");
    if (z)
        zip_discard(z);
    if (src)
        zip_source_free(src);
    zip_error_fini(&ze);
    buf_free(&doc);
    return rc;
}

/* ---- PDF ---- */
static int render_pdf(const struct resume *cv, struct buf *out, struct buf *err)
{
    struct pdf *p = pdf_new(buf_cstr(&cv->title), err);
    if (!p)
        return -1;
    pdf_text(p, buf_str(&cv->title), PDF_BOLD, 20, PDF_LEFT);
    pdf_rule(p);
    if (cv->summary.len) {
        pdf_space(p, 6);
        pdf_text(p, buf_str(&cv->summary), PDF_REGULAR, 11, PDF_LEFT);
    }
    if (cv->skills.len) {
        pdf_space(p, 10);
        pdf_text(p, STRLIT("Skills"), PDF_BOLD, 13, PDF_LEFT);
        pdf_text(p, buf_str(&cv->skills), PDF_REGULAR, 11, PDF_LEFT);
    }
    if (cv->content.len) {
        pdf_space(p, 10);
        pdf_text(p, buf_str(&cv->content), PDF_REGULAR, 11, PDF_LEFT);
    }
    int rc = pdf_finish(p, out, err);
    pdf_free(p);
    return rc;
}

/* ---- the job ---- */
static enum job_result job_export(struct job *j, struct buf *result, struct buf *error)
{
    const char *resume_id = json_string_value(json_object_get(j->payload, "resume_id"));
    const char *user_id = json_string_value(json_object_get(j->payload, "user_id"));
    const char *file_id = json_string_value(json_object_get(j->payload, "file_id"));
    const char *format = json_string_value(json_object_get(j->payload, "format"));
    if (!resume_id || !user_id || !file_id || !format || !uuid_valid(str_c(file_id))) {
        (void)buf_puts(error, "bad payload");
        return JOB_FAIL;
    }
    bool pdf = strcmp(format, "pdf") == 0;
    bool found;
    int64_t one;
    if (db_query_int(j->db, "SELECT 1 FROM files WHERE id = ?", DB_ARGS(DBA_CSTR(file_id)), &one, &found)) {
        (void)buf_puts(error, "database");
        return JOB_RETRY;
    }
    if (found) { /* a retried run after the insert: done already */
        (void)buf_printf(result, "{\"file_id\":\"%s\"}", file_id);
        return JOB_OK;
    }
    struct resume cv = {BUF_INIT(4096), BUF_INIT(1 << 20), BUF_INIT(4u << 20), BUF_INIT(64u << 10)};
    struct buf doc = BUF_INIT(DOC_MAX), err = BUF_INIT(1024), raw = BUF_INIT(4096);
    enum job_result out = JOB_RETRY;
    struct db_res *res;
    int rc = db_query(j->db,
                      "SELECT title, summary, content, skills FROM career_resumes "
                      "WHERE id = ? AND user_id = ? AND deleted_at IS NULL",
                      DB_ARGS(DBA_CSTR(resume_id), DBA_CSTR(user_id)), &res);
    if (rc) {
        (void)buf_puts(error, "database");
        goto done;
    }
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        (void)buf_puts(error, rc < 0 ? "database" : "the resume is gone");
        out = rc < 0 ? JOB_RETRY : JOB_FAIL;
        goto done;
    }
    (void)buf_put(&cv.title, db_text(res, 0));
    (void)buf_put(&cv.summary, db_text(res, 1));
    (void)buf_put(&cv.content, db_text(res, 2));
    json_t *skills = json_loadb(db_text(res, 3).p, db_text(res, 3).len, 0, NULL);
    db_res_free(res);
    size_t i;
    json_t *v;
    json_array_foreach(skills, i, v)
    {
        if (json_is_string(v))
            (void)buf_printf(&cv.skills, "%s%s", cv.skills.len ? ", " : "", json_string_value(v));
    }
    json_decref(skills);
    rc = pdf ? render_pdf(&cv, &doc, &err) : render_docx(&cv, &doc, &err);
    if (rc) {
        (void)buf_printf(error, "render: %s", buf_cstr(&err));
        out = JOB_FAIL;
        goto done;
    }
    (void)buf_printf(&raw, "%s.%s", buf_cstr(&cv.title), format);
    struct files_info fi = {0};
    memcpy(fi.id, file_id, sizeof fi.id);
    if ((rc = files_put_generated(j->db, str_c(user_id), "export", buf_str(&raw), buf_str(&doc), &fi, &err))) {
        (void)buf_printf(error, "%s", rc == FILES_ESTORE ? buf_cstr(&err) : "database");
        goto done;
    }
    (void)buf_printf(result, "{\"file_id\":\"%s\",\"size\":%zu}", file_id, doc.len);
    out = JOB_OK;
done:
    buf_free(&cv.title);
    buf_free(&cv.summary);
    buf_free(&cv.content);
    buf_free(&cv.skills);
    buf_free(&doc);
    buf_free(&err);
    buf_free(&raw);
    return out;
}

static const struct job_kind export_kind = {
    .kind = "files.export_resume", .handler = job_export, .queue = "files", .timeout_ms = 120000};

/* ---- the route ---- */
static const char *const formats[] = {"pdf", "docx", NULL};
static const struct json_field export_fields[] = {
    {.name = "format", .type = JF_STRING, .flags = JF_REQUIRED, .enum_values = formats,
     .description = "pdf or docx"},
    {0},
};
static const struct json_schema export_s = {.fields = export_fields};

struct export_tx {
    str_t resume_id;
    const char *format;
    char job_id[UUID_STR_LEN + 1], file_id[UUID_STR_LEN + 1];
};

static int export_tx(struct req *r, void *arg)
{
    struct export_tx *a = arg;
    struct buf payload = BUF_INIT(1024);
    struct jw w;
    jw_init(&w, &payload);
    jw_obj_begin(&w);
    jw_key(&w, "resume_id");
    jw_str(&w, a->resume_id);
    jw_key(&w, "user_id");
    jw_str(&w, r->user_id);
    jw_key(&w, "file_id");
    jw_cstr(&w, a->file_id);
    jw_key(&w, "format");
    jw_cstr(&w, a->format);
    jw_obj_end(&w);
    struct job_opts o = JOB_OPTS_DEFAULT;
    o.timeout_ms = 120000;
    int rc = jobs_enqueue(r->db, export_kind.kind, buf_str(&payload), &o, a->job_id);
    buf_free(&payload);
    return rc == JOBS_EINVAL ? DB_ERR : rc;
}

static int h_export(struct req *r)
{
    struct export_tx a = {.resume_id = req_param(r, "id"),
                          .format = json_string_value(json_object_get(r->body, "format"))};
    if (resource_require(r, &career_resumes, a.resume_id))
        return HTTP_EFAIL;
    uuid7_str(a.file_id);
    if (req_tx(r, DB_TX_WRITE, export_tx, &a))
        return HTTP_EFAIL;
    r->status = 202;
    jw_obj_begin(&r->w);
    jw_key(&r->w, "job_id");
    jw_cstr(&r->w, a.job_id);
    jw_key(&r->w, "status");
    jw_cstr(&r->w, "queued");
    jw_key(&r->w, "format");
    jw_cstr(&r->w, a.format);
    jw_key(&r->w, "file_id");
    jw_cstr(&r->w, a.file_id);
    jw_key(&r->w, "file_url");
    struct buf url = BUF_INIT(256);
    (void)buf_printf(&url, "/api/v1/files/%s", a.file_id);
    jw_str(&r->w, buf_str(&url));
    buf_free(&url);
    jw_obj_end(&r->w);
    return 0;
}

static struct route routes[] = {
    {.method = "POST", .pattern = "/api/v1/resumes/{id}/export", .handler = h_export, .auth = AUTH_USER,
     .rl = RL_WRITE, .input = &export_s,
     .summary = "Export a resume as PDF or DOCX: 202 with the job and the file id; GET /files/{file_id} answers "
                "once the job is done",
     .tag = "career",
     .output = OPENAPI_JSON({"type" : "object", "required" : [ "job_id", "status", "format", "file_id", "file_url" ], "properties" : {
         "job_id" : {"type" : "string", "format" : "uuid", "description" : "the background job (admins: GET /api/v1/admin/jobs/{id})"},
         "status" : {"type" : "string", "enum" : ["queued"]},
         "format" : {"type" : "string", "enum" : [ "pdf", "docx" ]},
         "file_id" : {"type" : "string", "format" : "uuid"},
         "file_url" : {"type" : "string", "description" : "GET it for the File once the job is done"}}})},
};

void files__export_routes(void) { router_add(routes, ARRAY_LEN(routes)); }
void files__export_jobs(void) { jobs_register(&export_kind); }
