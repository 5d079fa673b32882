/* libFuzzer target: strict JSON bodies and schema validation, plus the
 * writer: whatever parses must re-serialise through jw_json into JSON that
 * parses again to an equal value. */
#include <stdlib.h>

#include "core/json.h"

static const char *const kinds[] = {"a", "b", NULL};
static const struct json_field fields[] = {
    {.name = "name", .type = JF_STRING, .flags = JF_REQUIRED, .min = 1, .max = 100},
    {.name = "count", .type = JF_INT, .min = 0, .max = 1000},
    {.name = "tags", .type = JF_ARRAY_STR, .min = 0, .max = 20},
    {.name = "meta", .type = JF_OBJECT},
    {.name = "kind", .type = JF_STRING, .enum_values = kinds, .flags = JF_NULLABLE},
    {0},
};
static const struct json_schema schema = {.fields = fields};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v, *back;
    struct buf detail = BUF_INIT(256), out = BUF_INIT(1u << 22);
    struct json_verr errs[JSON_VERR_MAX];
    if (json_parse_strict(str_make((const char *)data, size), &v, &detail) == JSON_IN_OK) {
        int n = json_validate(v, &schema, errs, JSON_VERR_MAX);
        if (n < 0 || n > JSON_VERR_MAX)
            abort();
        struct jw w;
        jw_init(&w, &out);
        jw_json(&w, v);
        if (buf_ok(&out)) {
            if (json_parse_strict(buf_str(&out), &back, NULL) != JSON_IN_OK)
                abort();
            if (!json_equal(v, back))
                abort();
            json_decref(back);
        }
        json_decref(v);
    }
    buf_free(&detail);
    buf_free(&out);
    return 0;
}
