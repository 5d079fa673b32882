/* json.c — streaming JSON writer and strict JSON input. See json.h. */
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/timeutil.h"

#include "core/banned.h"

void jw_init(struct jw *w, struct buf *b)
{
    w->b = b;
    w->depth = 0;
    w->need_comma[0] = false;
    w->after_key = false;
}

/* Called before any value or key is written. */
static void pre_value(struct jw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->need_comma[w->depth])
        (void)buf_putc(w->b, ',');
    w->need_comma[w->depth] = true;
}

static void open_(struct jw *w, char c)
{
    pre_value(w);
    if (w->depth >= JW_MAX_DEPTH)
        BUG("jw nesting too deep");
    (void)buf_putc(w->b, c);
    w->need_comma[++w->depth] = false;
}

static void close_(struct jw *w, char c)
{
    ASSERT(w->depth > 0 && !w->after_key);
    w->depth--;
    (void)buf_putc(w->b, c);
}

void jw_obj_begin(struct jw *w) { open_(w, '{'); }
void jw_obj_end(struct jw *w) { close_(w, '}'); }
void jw_arr_begin(struct jw *w) { open_(w, '['); }
void jw_arr_end(struct jw *w) { close_(w, ']'); }

void jw_key(struct jw *w, const char *key)
{
    pre_value(w);
    (void)buf_putc(w->b, '"');
    (void)buf_puts(w->b, key);
    (void)buf_append(w->b, "\":", 2);
    w->after_key = true;
}

void jw_key_str(struct jw *w, str_t key)
{
    pre_value(w);
    (void)buf_putc(w->b, '"');
    json_escape(w->b, key);
    (void)buf_append(w->b, "\":", 2);
    w->after_key = true;
}

/* Decode one UTF-8 sequence at s[0..n). Returns its length and the code
 * point in *cp, or 0 when the sequence is invalid (overlong, surrogate,
 * out of range, truncated). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c = s[0];
    size_t len, i;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2;
        c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000) || c > 0x10FFFF ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

bool utf8_valid(str_t s)
{
    const unsigned char *p = (const unsigned char *)s.p;
    size_t i = 0;
    uint32_t cp;
    while (i < s.len) {
        if (p[i] == 0)
            return false;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = utf8_decode(p + i, s.len - i, &cp);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

size_t utf8_len(const char *s, size_t n)
{
    size_t cps = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            cps++;
    return cps;
}

void json_escape(struct buf *b, str_t s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s.p;
    size_t i = 0, run = 0;
    while (i < s.len) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            run++;
            continue;
        }
        if (run)
            (void)buf_append(b, p + i - run, run);
        run = 0;
        if (c < 0x80) {
            char esc[6] = {'\\', 0, 0, 0, 0, 0};
            switch (c) {
            case '"': esc[1] = '"'; (void)buf_append(b, esc, 2); break;
            case '\\': esc[1] = '\\'; (void)buf_append(b, esc, 2); break;
            case '\n': esc[1] = 'n'; (void)buf_append(b, esc, 2); break;
            case '\r': esc[1] = 'r'; (void)buf_append(b, esc, 2); break;
            case '\t': esc[1] = 't'; (void)buf_append(b, esc, 2); break;
            case '\b': esc[1] = 'b'; (void)buf_append(b, esc, 2); break;
            case '\f': esc[1] = 'f'; (void)buf_append(b, esc, 2); break;
            default:
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                (void)buf_append(b, esc, 6);
            }
            i++;
            continue;
        }
        uint32_t cp;
        size_t l = utf8_decode(p + i, s.len - i, &cp);
        if (!l) {
            (void)buf_append(b, "\xEF\xBF\xBD", 3); /* U+FFFD for each bad byte */
            i++;
        } else if (cp == 0x2028 || cp == 0x2029) {
            (void)buf_append(b, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
            i += l;
        } else {
            (void)buf_append(b, p + i, l);
            i += l;
        }
    }
    if (run)
        (void)buf_append(b, p + i - run, run);
}

void jw_str(struct jw *w, str_t s)
{
    pre_value(w);
    (void)buf_putc(w->b, '"');
    json_escape(w->b, s);
    (void)buf_putc(w->b, '"');
}

void jw_cstr(struct jw *w, const char *s)
{
    if (!s)
        jw_null(w);
    else
        jw_str(w, str_c(s));
}

void jw_int(struct jw *w, int64_t v)
{
    pre_value(w);
    (void)buf_put_i64(w->b, v);
}

void jw_double(struct jw *w, double v)
{
    pre_value(w);
    if (!isfinite(v))
        (void)buf_append(w->b, "null", 4);
    else {
        /* shortest form that reads back exactly: 0.076, not 0.075999999999999998 */
        char tmp[32];
        snprintf(tmp, sizeof(tmp), "%.15g", v);
        if (strtod(tmp, NULL) != v)
            snprintf(tmp, sizeof(tmp), "%.17g", v);
        (void)buf_puts(w->b, tmp);
        if (!strpbrk(tmp, ".e")) /* keep a real a real: 3e10 -> 30000000000.0 */
            (void)buf_append(w->b, ".0", 2);
    }
}

void jw_bool(struct jw *w, bool v)
{
    pre_value(w);
    (void)buf_puts(w->b, v ? "true" : "false");
}

void jw_null(struct jw *w)
{
    pre_value(w);
    (void)buf_append(w->b, "null", 4);
}

void jw_time(struct jw *w, int64_t epoch_ms)
{
    char t[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(epoch_ms, t);
    pre_value(w);
    (void)buf_putc(w->b, '"');
    (void)buf_append(w->b, t, TIME_RFC3339_LEN);
    (void)buf_putc(w->b, '"');
}

void jw_raw(struct jw *w, str_t json)
{
    pre_value(w);
    (void)buf_put(w->b, json);
}

void jw_json(struct jw *w, const json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        jw_obj_begin(w);
        json_object_foreach((json_t *)v, k, x)
        {
            jw_key_str(w, str_c(k));
            jw_json(w, x);
        }
        jw_obj_end(w);
        break;
    case JSON_ARRAY:
        jw_arr_begin(w);
        json_array_foreach(v, i, x) jw_json(w, x);
        jw_arr_end(w);
        break;
    case JSON_STRING: jw_str(w, str_make(json_string_value(v), json_string_length(v))); break;
    case JSON_INTEGER: jw_int(w, (int64_t)json_integer_value(v)); break;
    case JSON_REAL: jw_double(w, json_real_value(v)); break;
    case JSON_TRUE: jw_bool(w, true); break;
    case JSON_FALSE: jw_bool(w, false); break;
    case JSON_NULL: jw_null(w); break;
    }
}

/* ---- input ---- */

/* Nesting depth of a JSON text, ignoring brackets inside strings. Cheap
 * pre-check so jansson never recurses past JSON_MAX_DEPTH. */
static int json_depth_exceeds(str_t t, int max)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < t.len; i++) {
        char c = t.p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                return 1;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

int json_parse_strict(str_t text, json_t **out, struct buf *detail)
{
    json_error_t err;
    size_t i = 0;
    *out = NULL;
    while (i < text.len && (text.p[i] == ' ' || text.p[i] == '\n' || text.p[i] == '\r' || text.p[i] == '\t'))
        i++;
    if (i == text.len) {
        if (detail)
            (void)buf_puts(detail, "request body is empty");
        return JSON_IN_EMPTY;
    }
    if (json_depth_exceeds(text, JSON_MAX_DEPTH)) {
        if (detail)
            (void)buf_printf(detail, "JSON nesting deeper than %d", JSON_MAX_DEPTH);
        return JSON_IN_TOO_DEEP;
    }
    /* jansson rejects invalid UTF-8 and \u0000 by default; ask it to reject
     * duplicate keys and to accept any top-level value (we check types). */
    *out = json_loadb(text.p, text.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!*out) {
        if (detail)
            (void)buf_printf(detail, "malformed JSON at line %d column %d: %.80s", err.line, err.column, err.text);
        return JSON_IN_SYNTAX;
    }
    return JSON_IN_OK;
}

static const char *type_name(enum jf_type t)
{
    switch (t) {
    case JF_STRING: return "must be a string";
    case JF_INT: return "must be an integer";
    case JF_NUMBER: return "must be a number";
    case JF_BOOL: return "must be a boolean";
    case JF_OBJECT: return "must be an object";
    case JF_ARRAY_STR: return "must be an array of strings";
    case JF_ARRAY: return "must be an array";
    case JF_ANY: return "is invalid";
    }
    return "is invalid";
}

static const char *check_field(const struct json_field *f, const json_t *v)
{
    bool ranged = f->min != 0 || f->max != 0;
    if (json_is_null(v))
        return (f->flags & JF_NULLABLE) ? NULL : "must not be null";
    switch (f->type) {
    case JF_STRING: {
        if (!json_is_string(v))
            return type_name(f->type);
        size_t n = utf8_len(json_string_value(v), json_string_length(v));
        if (ranged && (int64_t)n < f->min)
            return f->min == 1 ? "must not be empty" : "is too short";
        if (ranged && (int64_t)n > f->max)
            return "is too long";
        if (f->enum_values) {
            for (const char *const *e = f->enum_values; *e; e++)
                if (strcmp(*e, json_string_value(v)) == 0)
                    return NULL;
            return "is not one of the allowed values";
        }
        return NULL;
    }
    case JF_INT:
        if (!json_is_integer(v))
            return type_name(f->type);
        if (ranged && (json_integer_value(v) < f->min || json_integer_value(v) > f->max))
            return "is out of range";
        return NULL;
    case JF_NUMBER:
        if (!json_is_number(v))
            return type_name(f->type);
        if (ranged && (json_number_value(v) < (double)f->min || json_number_value(v) > (double)f->max))
            return "is out of range";
        return NULL;
    case JF_BOOL: return json_is_boolean(v) ? NULL : type_name(f->type);
    case JF_OBJECT: return json_is_object(v) ? NULL : type_name(f->type);
    case JF_ARRAY_STR:
    case JF_ARRAY: {
        size_t i;
        json_t *x;
        if (!json_is_array(v))
            return type_name(f->type);
        if (ranged && ((int64_t)json_array_size(v) < f->min || (int64_t)json_array_size(v) > f->max))
            return "has the wrong number of items";
        if (f->type == JF_ARRAY_STR)
            json_array_foreach(v, i, x) if (!json_is_string(x)) return type_name(f->type);
        return NULL;
    }
    case JF_ANY: return NULL;
    }
    return "is invalid";
}

int json_validate(const json_t *body, const struct json_schema *schema, struct json_verr *errs, int max_errs)
{
    int n = 0;
    const char *key;
    json_t *v;
#define ADD_ERR(f, m)                                                                                                  \
    do {                                                                                                               \
        if (n < max_errs) {                                                                                            \
            errs[n].field = (f);                                                                                       \
            errs[n].message = (m);                                                                                     \
        }                                                                                                              \
        n++;                                                                                                           \
    } while (0)
    if (!json_is_object(body)) {
        ADD_ERR("", "request body must be a JSON object");
        return n < max_errs ? n : max_errs;
    }
    if (!schema->allow_unknown) {
        json_object_foreach((json_t *)body, key, v)
        {
            const struct json_field *f = schema->fields;
            while (f && f->name && strcmp(f->name, key) != 0)
                f++;
            if (!f || !f->name)
                ADD_ERR(key, "is not an allowed field");
        }
    }
    for (const struct json_field *f = schema->fields; f && f->name; f++) {
        const json_t *x = json_object_get(body, f->name);
        const char *msg;
        if (!x) {
            if (f->flags & JF_REQUIRED)
                ADD_ERR(f->name, "is required");
            continue;
        }
        if ((msg = check_field(f, x)))
            ADD_ERR(f->name, msg);
    }
#undef ADD_ERR
    return n < max_errs ? n : max_errs;
}
