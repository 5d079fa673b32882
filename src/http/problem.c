/* problem.c — the single error path (API.md §1). */
#include "http/problem.h"

#include <stdarg.h>

#include "core/log.h"
#include "db/db.h"

#include "core/banned.h"

struct status_info {
    int status;
    const char *code;
    const char *title[3]; /* en, tr, pl */
};

static const struct status_info infos[] = {
    {400, "BAD_REQUEST", {"Bad request", "Geçersiz istek", "Nieprawidłowe żądanie"}},
    {401, "UNAUTHORIZED", {"Unauthorized", "Yetkisiz", "Brak autoryzacji"}},
    {402, "INSUFFICIENT_CREDITS", {"Insufficient credits", "Yetersiz kredi", "Niewystarczające środki"}},
    {403, "FORBIDDEN", {"Forbidden", "Yasak", "Zabronione"}},
    {404, "NOT_FOUND", {"Not found", "Bulunamadı", "Nie znaleziono"}},
    {405, "METHOD_NOT_ALLOWED", {"Method not allowed", "İzin verilmeyen yöntem", "Niedozwolona metoda"}},
    {409, "CONFLICT", {"Conflict", "Çakışma", "Konflikt"}},
    {410, "GONE", {"Gone", "Kaldırıldı", "Usunięto"}},
    {412, "PRECONDITION_FAILED", {"Precondition failed", "Ön koşul sağlanmadı", "Warunek wstępny niespełniony"}},
    {413, "PAYLOAD_TOO_LARGE", {"Payload too large", "İstek gövdesi çok büyük", "Zbyt duże żądanie"}},
    {415, "UNSUPPORTED_MEDIA_TYPE",
     {"Unsupported media type", "Desteklenmeyen içerik türü", "Nieobsługiwany typ zawartości"}},
    {422, "VALIDATION_ERROR", {"Validation failed", "Doğrulama başarısız", "Błąd walidacji"}},
    {429, "RATE_LIMIT_EXCEEDED", {"Too many requests", "Çok fazla istek", "Zbyt wiele żądań"}},
    {431, "BAD_REQUEST", {"Request headers too large", "İstek başlıkları çok büyük", "Zbyt duże nagłówki"}},
    {500, "INTERNAL_ERROR", {"Internal server error", "Sunucu hatası", "Błąd serwera"}},
    {503, "SERVICE_UNAVAILABLE", {"Service unavailable", "Hizmet kullanılamıyor", "Usługa niedostępna"}},
};

static const struct status_info *info_for(int status)
{
    for (size_t i = 0; i < ARRAY_LEN(infos); i++)
        if (infos[i].status == status)
            return &infos[i];
    return NULL;
}

const char *problem_code(int status)
{
    const struct status_info *i = info_for(status);
    return i ? i->code : (status >= 500 ? "INTERNAL_ERROR" : "BAD_REQUEST");
}

const char *problem_title(int status, enum lang lang)
{
    const struct status_info *i = info_for(status);
    return i ? i->title[lang] : (status >= 500 ? infos[ARRAY_LEN(infos) - 2].title[lang] : infos[0].title[lang]);
}

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

enum lang lang_from_header(str_t al)
{
    /* "tr-TR,tr;q=0.9,en;q=0.8": pick the supported tag with the highest q */
    enum lang best = LANG_EN;
    int best_q = -1;
    size_t i = 0;
    while (i < al.len) {
        while (i < al.len && (al.p[i] == ' ' || al.p[i] == ','))
            i++;
        size_t s = i;
        while (i < al.len && al.p[i] != ',' && al.p[i] != ';' && al.p[i] != ' ')
            i++;
        str_t tag = str_make(al.p + s, i - s);
        int q = 1000;
        while (i < al.len && al.p[i] != ',') {
            if (al.p[i] == 'q' && i + 1 < al.len && al.p[i + 1] == '=') {
                size_t j = i + 2;
                int v = 0, scale = 1000, seen_dot = 0;
                for (; j < al.len && al.p[j] != ',' && al.p[j] != ';' && al.p[j] != ' '; j++) {
                    if (al.p[j] == '.') {
                        seen_dot = 1;
                        continue;
                    }
                    if (al.p[j] < '0' || al.p[j] > '9')
                        break;
                    if (!seen_dot)
                        v = (al.p[j] - '0') * 1000;
                    else if (scale > 1)
                        v += (al.p[j] - '0') * (scale /= 10);
                }
                q = v > 1000 ? 1000 : v;
                i = j;
                continue;
            }
            i++;
        }
        if (tag.len >= 2) {
            str_t primary = str_make(tag.p, tag.len >= 3 && tag.p[2] == '-' ? 2 : tag.len);
            int l = -1;
            if (str_ieq(primary, STRLIT("en")))
                l = LANG_EN;
            else if (str_ieq(primary, STRLIT("tr")))
                l = LANG_TR;
            else if (str_ieq(primary, STRLIT("pl")))
                l = LANG_PL;
            if (l >= 0 && q > best_q && q > 0) {
                best = (enum lang)l;
                best_q = q;
            }
        }
    }
    return best;
}

void problem_write(struct buf *out, int status, const char *code, const char *title, str_t detail,
                   const struct json_verr *errs, int nerrs, str_t request_id)
{
    struct jw w;
    jw_init(&w, out);
    jw_obj_begin(&w);
    jw_key(&w, "type");
    jw_cstr(&w, "about:blank");
    jw_key(&w, "title");
    jw_cstr(&w, title);
    jw_key(&w, "status");
    jw_int(&w, status);
    jw_key(&w, "detail");
    jw_str(&w, detail);
    jw_key(&w, "code");
    jw_cstr(&w, code);
    if (nerrs > 0) {
        jw_key(&w, "errors");
        jw_arr_begin(&w);
        for (int i = 0; i < nerrs; i++) {
            jw_obj_begin(&w);
            jw_key(&w, "field");
            jw_cstr(&w, errs[i].field);
            jw_key(&w, "message");
            jw_cstr(&w, errs[i].message);
            jw_obj_end(&w);
        }
        jw_arr_end(&w);
    }
    jw_key(&w, "request_id");
    jw_str(&w, request_id);
    jw_obj_end(&w);
}

/* ---- recording errors from handlers ---- */

_Static_assert((int)HTTP_EFAIL < (int)DB_ETIMEOUT && (int)HTTP_EFAIL < (int)DB_ECONSTRAINT &&
                   (int)HTTP_EFAIL < (int)DB_EBUSY && (int)HTTP_EFAIL < (int)DB_ERR,
               "HTTP_EFAIL must be distinct from every enum db_rc");

int http_fail(struct req *r, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    r->err.status = status;
    r->err.code = code ? code : problem_code(status);
    buf_reset(&r->err.detail);
    va_start(ap, fmt);
    (void)buf_vprintf(&r->err.detail, fmt, ap);
    va_end(ap);
    return HTTP_EFAIL;
}

void http_field_error(struct req *r, const char *field, const char *message)
{
    if (r->err.nerrs < JSON_VERR_MAX) {
        r->err.errs[r->err.nerrs].field = field;
        r->err.errs[r->err.nerrs].message = message;
        r->err.nerrs++;
    }
}

int http_invalid(struct req *r, const char *field, const char *message)
{
    http_field_error(r, field, message);
    return http_fail(r, 422, "VALIDATION_ERROR", "%s %s", field, message);
}

static int internal_fail(struct req *r)
{
    return http_fail(r, 500, "INTERNAL_ERROR", "an internal error occurred (request_id %.*s)",
                     (int)r->request_id_len, r->request_id);
}

int http_db_fail(struct req *r, int rc)
{
    struct log_line l;
    if (rc == DB_ECONSTRAINT)
        return http_fail(r, 409, "CONFLICT", "the request conflicts with existing data");
    if (log_begin(&l, rc == DB_ETIMEOUT ? LOG_WARN : LOG_ERROR, "database error")) {
        log_str(&l, "request_id", str_make(r->request_id, r->request_id_len));
        log_int(&l, "rc", rc);
        log_cstr(&l, "error", r->db ? db_errmsg(r->db) : "no connection");
        log_end(&l);
    }
    if (rc == DB_ETIMEOUT) {
        r->err.retry_after_s = 1;
        return http_fail(r, 503, "SERVICE_UNAVAILABLE", "the request took longer than its deadline");
    }
    if (rc == DB_EBUSY) {
        r->err.retry_after_s = 1;
        return http_fail(r, 503, "SERVICE_UNAVAILABLE", "the database is busy; retry shortly");
    }
    if (rc == DB_EUNAVAIL) { /* pool queue full, connection lost (db.h) */
        r->err.retry_after_s = 1;
        return http_fail(r, 503, "SERVICE_UNAVAILABLE", "the database is unavailable; retry shortly");
    }
    return internal_fail(r);
}

int http_internal_error(struct req *r, const char *what, const char *detail)
{
    struct log_line l;
    if (log_begin(&l, LOG_ERROR, what)) {
        log_str(&l, "request_id", str_make(r->request_id, r->request_id_len));
        log_cstr(&l, "error", detail);
        log_end(&l);
    }
    return internal_fail(r);
}

int http_rc(struct req *r, int rc)
{
    if (rc == 0 || rc == HTTP_EFAIL)
        return rc;
    return http_db_fail(r, rc);
}

/* ---- transactions (req_tx) ---- */

struct req_tx_ctx {
    struct req *r;
    req_tx_fn fn;
    void *arg;
    int attempt;
    /* the request as it was before the first attempt */
    int status;
    size_t out_len;
    struct jw w;
};

static void clear_error(struct req *r)
{
    r->err.status = 0;
    r->err.code = NULL;
    buf_reset(&r->err.detail);
    r->err.nerrs = 0;
    r->err.retry_after_s = 0;
}

static int on_req_tx(struct db *db, void *arg)
{
    struct req_tx_ctx *c = arg;
    struct req *r = c->r;
    (void)db;
    if (c->attempt++ > 0) {
        /* a retry: nothing of the failed attempt may survive */
        clear_error(r);
        r->status = c->status;
        r->out.len = c->out_len;
        r->out.err = 0;
        if (r->out.ptr)
            r->out.ptr[c->out_len] = '\0';
        r->w = c->w;
    }
    return c->fn(r, c->arg);
}

int req_tx(struct req *r, enum db_tx_mode mode, req_tx_fn fn, void *arg)
{
    struct req_tx_ctx c = {.r = r, .fn = fn, .arg = arg, .status = r->status, .out_len = r->out.len, .w = r->w};
    int rc = db_tx(r->db, mode, on_req_tx, &c);
    if (rc == 0 && r->err.status) /* committed on purpose with an error recorded */
        return HTTP_EFAIL;
    return http_rc(r, rc);
}
