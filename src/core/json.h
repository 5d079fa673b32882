/*
 * json.h — JSON out (a streaming writer into a struct buf) and JSON in
 * (strict parsing on jansson plus validation against a small schema).
 *
 * Writer: commas and nesting are tracked for you; strings are escaped
 * (", \, control characters as \uXXXX, U+2028/2029) and invalid UTF-8 is
 * replaced by U+FFFD, so output is always valid JSON. Errors are sticky in
 * the buffer (buf_ok()); nesting deeper than JW_MAX_DEPTH is a BUG().
 */
#ifndef TEMEL_JSON_H
#define TEMEL_JSON_H

#include <jansson.h>

#include "core/buf.h"

#define JW_MAX_DEPTH 64

struct jw {
    struct buf *b;
    int depth;
    bool need_comma[JW_MAX_DEPTH + 1];
    bool after_key;
};

void jw_init(struct jw *w, struct buf *b);
void jw_obj_begin(struct jw *w);
void jw_obj_end(struct jw *w);
void jw_arr_begin(struct jw *w);
void jw_arr_end(struct jw *w);
void jw_key(struct jw *w, const char *key); /* key is trusted ASCII (a literal) */
void jw_key_str(struct jw *w, str_t key);   /* escaped */
void jw_str(struct jw *w, str_t s);
void jw_cstr(struct jw *w, const char *s);  /* NULL writes null */
void jw_int(struct jw *w, int64_t v);
void jw_double(struct jw *w, double v);     /* non-finite writes null */
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
void jw_time(struct jw *w, int64_t epoch_ms); /* RFC 3339 string */
void jw_raw(struct jw *w, str_t json);      /* caller guarantees valid JSON */
void jw_json(struct jw *w, const json_t *v); /* a jansson value, through this writer's escaping */
/* Append s to b as the inside of a JSON string (no quotes). */
void json_escape(struct buf *b, str_t s);

/* ---- input ---- */

#define JSON_MAX_DEPTH 32

enum json_in_rc {
    JSON_IN_OK = 0,
    JSON_IN_SYNTAX = -1,     /* malformed, duplicate key, invalid UTF-8, NUL */
    JSON_IN_TOO_DEEP = -2,
    JSON_IN_EMPTY = -3,
};
/* Parse a complete JSON text strictly. On error, detail (may be NULL) gets a
 * short human message (no echo of the input). Caller json_decref()s *out. */
int json_parse_strict(str_t text, json_t **out, struct buf *detail) WARN_UNUSED;

/* Schema for request bodies: a NULL-name-terminated array of fields. */
enum jf_type { JF_STRING = 1, JF_INT, JF_NUMBER, JF_BOOL, JF_OBJECT, JF_ARRAY_STR, JF_ARRAY, JF_ANY };
enum jf_flags { JF_REQUIRED = 1 << 0, JF_NULLABLE = 1 << 1 };
struct json_field {
    const char *name;
    enum jf_type type;
    unsigned flags;
    int64_t min, max; /* string: length in code points; int: value; arrays: item count; 0,0 = unchecked */
    const char *const *enum_values; /* NULL-terminated, strings only */
    const char *description;        /* for OpenAPI */
    const char *format;             /* OpenAPI only: "uuid", "email", "uri", "date-time", ... */
    const char *schema;             /* OpenAPI only: the whole JSON Schema of the field, replacing
                                     * the derived one (OPENAPI_JSON in http/http.h): for objects
                                     * with properties, arrays of objects, unions */
};
struct json_schema {
    const struct json_field *fields;
    bool allow_unknown; /* false: unknown fields are 422 */
};

/* One validation error. */
struct json_verr {
    const char *field; /* points into schema or into the input object (valid while it lives) */
    const char *message;
};
#define JSON_VERR_MAX 16
/* Validate an object body. Returns the number of errors written to errs
 * (0 = valid). A non-object body is one error on field "" . */
int json_validate(const json_t *body, const struct json_schema *schema, struct json_verr *errs, int max_errs);
/* Length of a UTF-8 string in code points (input is known valid). */
size_t utf8_len(const char *s, size_t n);
/* true if s is valid UTF-8 without NUL bytes */
bool utf8_valid(str_t s);

#endif
