/* Unit tests for src/modules/ai: input normalisation and the canonical
 * hash, the three wire formats (requests built, answers parsed, malformed
 * answers refused), key sealing (round trip, tamper, wrong key, secret file),
 * URL and model-name checks, the anti-abuse score. The money path (settle,
 * cancel, on_dead) runs against both engines in tests/api/test_ai*.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/json.h"
#include "modules/ai/ai_internal.h"

static json_t *parse(const char *s)
{
    json_t *v = NULL;
    assert_int_equal(json_parse_strict(str_c(s), &v, NULL), JSON_IN_OK);
    return v;
}

static json_t *norm_of(const char *in_json, const char **field)
{
    const char *message = NULL;
    json_t *in = parse(in_json);
    json_t *out = ai__normalize_input(in, field, &message);
    json_decref(in);
    if (!out)
        assert_non_null(message);
    return out;
}

static void canonical(const json_t *norm, struct buf *b)
{
    buf_reset(b);
    ai__input_text(norm, b);
    assert_true(buf_ok(b));
}

static void t_normalize(void **state)
{
    (void)state;
    const char *field;
    struct buf a = BUF_INIT(1u << 20), b = BUF_INIT(1u << 20);
    /* a string and {prompt} are the same request */
    json_t *n1 = norm_of("\"hello\"", &field), *n2 = norm_of("{\"prompt\":\"hello\"}", &field);
    json_t *n3 = norm_of("{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}", &field);
    canonical(n1, &a);
    canonical(n2, &b);
    assert_string_equal(buf_cstr(&a), "{\"messages\":[{\"content\":\"hello\",\"role\":\"user\"}]}");
    assert_string_equal(buf_cstr(&a), buf_cstr(&b));
    canonical(n3, &b);
    assert_string_equal(buf_cstr(&a), buf_cstr(&b));
    json_decref(n1), json_decref(n2), json_decref(n3);
    /* key order and integer vs real temperature do not matter */
    n1 = norm_of("{\"temperature\":1,\"prompt\":\"x\",\"max_tokens\":5,\"system\":\"s\"}", &field);
    n2 = norm_of("{\"system\":\"s\",\"max_tokens\":5,\"prompt\":\"x\",\"temperature\":1.0}", &field);
    canonical(n1, &a);
    canonical(n2, &b);
    assert_string_equal(buf_cstr(&a), buf_cstr(&b));
    json_decref(n1), json_decref(n2);
    /* an empty system prompt is dropped */
    n1 = norm_of("{\"prompt\":\"x\",\"system\":\"\"}", &field);
    assert_null(json_object_get(n1, "system"));
    json_decref(n1);

    static const struct {
        const char *in, *field;
    } bad[] = {
        {"\"\"", "input"},
        {"5", "input"},
        {"[]", "input"},
        {"{}", "input"},
        {"{\"prompt\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"b\"}]}", "input"},
        {"{\"prompt\":\"a\",\"x\":1}", "input"},
        {"{\"prompt\":\"\"}", "input.prompt"},
        {"{\"messages\":[]}", "input.messages"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":\"b\"}]}", "input.messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"b\",\"name\":\"x\"}]}", "input.messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"b\"},{\"role\":\"assistant\",\"content\":\"c\"}]}",
         "input.messages"},
        {"{\"prompt\":\"a\",\"max_tokens\":0}", "input.max_tokens"},
        {"{\"prompt\":\"a\",\"max_tokens\":32769}", "input.max_tokens"},
        {"{\"prompt\":\"a\",\"max_tokens\":1.5}", "input.max_tokens"},
        {"{\"prompt\":\"a\",\"temperature\":-0.1}", "input.temperature"},
        {"{\"prompt\":\"a\",\"system\":5}", "input.system"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        field = NULL;
        json_t *n = norm_of(bad[i].in, &field);
        if (n)
            fail_msg("accepted: %s", bad[i].in);
        assert_string_equal(field, bad[i].field);
    }
    /* size caps: one long message, and the total over several */
    struct buf big = BUF_INIT(1u << 20);
    (void)buf_putc(&big, '"');
    for (int i = 0; i < AI_MAX_CONTENT + 1; i++)
        (void)buf_putc(&big, 'x');
    (void)buf_putc(&big, '"');
    assert_null(norm_of(buf_cstr(&big), &field));
    buf_reset(&big);
    (void)buf_puts(&big, "{\"messages\":[");
    for (int m = 0; m < 3; m++) {
        (void)buf_puts(&big, m ? ",{\"role\":\"user\",\"content\":\"" : "{\"role\":\"user\",\"content\":\"");
        for (int i = 0; i < 40000; i++)
            (void)buf_putc(&big, 'y');
        (void)buf_puts(&big, "\"}");
    }
    (void)buf_puts(&big, "]}");
    assert_null(norm_of(buf_cstr(&big), &field));
    assert_string_equal(field, "input");
    buf_free(&big);
    buf_free(&a);
    buf_free(&b);
}

static void t_hash(void **state)
{
    (void)state;
    char h1[65], h2[65], h3[65], h4[65];
    ai__input_hash("chat", STRLIT("m"), STRLIT("{\"a\":1}"), h1);
    ai__input_hash("chat", STRLIT("m"), STRLIT("{\"a\":1}"), h2);
    ai__input_hash("generate", STRLIT("m"), STRLIT("{\"a\":1}"), h3);
    ai__input_hash("chat", STRLIT("m2"), STRLIT("{\"a\":1}"), h4);
    assert_string_equal(h1, h2);
    assert_int_equal(strlen(h1), 64);
    assert_string_not_equal(h1, h3);
    assert_string_not_equal(h1, h4);
    /* the separators keep ("ab","c") and ("a","bc") apart */
    ai__input_hash("ab", STRLIT("c"), STRLIT("x"), h1);
    ai__input_hash("a", STRLIT("bc"), STRLIT("x"), h2);
    assert_string_not_equal(h1, h2);
}

static json_t *build(enum ai_kind kind, const char *base, const char *sys_op, const char *in, struct buf *url)
{
    const char *field;
    struct buf body = BUF_INIT(1u << 20);
    json_t *n = norm_of(in, &field);
    buf_reset(url);
    assert_int_equal(ai__build_request(kind, base, "up-1", n, sys_op, url, &body), 0);
    json_decref(n);
    json_t *out = parse(buf_cstr(&body));
    buf_free(&body);
    return out;
}

static void t_build_requests(void **state)
{
    (void)state;
    struct buf url = BUF_INIT(4096);
    const char *in = "{\"messages\":[{\"role\":\"user\",\"content\":\"q1\"},{\"role\":\"assistant\",\"content\":\"a1\"},"
                     "{\"role\":\"user\",\"content\":\"q2\"}],\"system\":\"be kind\",\"max_tokens\":77,\"temperature\":0.5}";
    /* OpenAI: system first in messages */
    json_t *o = build(AI_OPENAI, "https://api.example.com/v1/", "OP", in, &url);
    assert_string_equal(buf_cstr(&url), "https://api.example.com/v1/chat/completions");
    assert_string_equal(json_string_value(json_object_get(o, "model")), "up-1");
    json_t *msgs = json_object_get(o, "messages");
    assert_int_equal(json_array_size(msgs), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "system");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "content")), "OP\n\nbe kind");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 3), "content")), "q2");
    assert_int_equal(json_integer_value(json_object_get(o, "max_tokens")), 77);
    assert_true(json_number_value(json_object_get(o, "temperature")) == 0.5);
    json_decref(o);
    /* Anthropic: system separate, max_tokens always present */
    o = build(AI_ANTHROPIC, "https://api.anthropic.com/v1", "", "\"hi\"", &url);
    assert_string_equal(buf_cstr(&url), "https://api.anthropic.com/v1/messages");
    assert_int_equal(json_integer_value(json_object_get(o, "max_tokens")), AI_DEFAULT_MAX_TOKENS);
    assert_null(json_object_get(o, "system"));
    assert_int_equal(json_array_size(json_object_get(o, "messages")), 1);
    json_decref(o);
    o = build(AI_ANTHROPIC, "https://api.anthropic.com/v1", "", in, &url);
    assert_string_equal(json_string_value(json_object_get(o, "system")), "be kind");
    json_decref(o);
    /* Gemini: model in the path, roles user/model, systemInstruction, generationConfig */
    o = build(AI_GEMINI, "https://g.example.com/v1beta", "", in, &url);
    assert_string_equal(buf_cstr(&url), "https://g.example.com/v1beta/models/up-1:generateContent");
    json_t *c = json_object_get(o, "contents");
    assert_int_equal(json_array_size(c), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 1), "role")), "model");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(c, 2), "parts"), 0), "text")),
        "q2");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(json_object_get(o, "systemInstruction"), "parts"), 0), "text")),
                        "be kind");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "generationConfig"), "maxOutputTokens")), 77);
    json_decref(o);
    /* the key travels in a header only */
    struct buf v = BUF_INIT(1024);
    assert_string_equal(ai__auth_header(AI_OPENAI, STRLIT("sk-1"), &v), "Authorization");
    assert_string_equal(buf_cstr(&v), "Bearer sk-1");
    buf_reset(&v);
    assert_string_equal(ai__auth_header(AI_ANTHROPIC, STRLIT("sk-2"), &v), "x-api-key");
    assert_string_equal(buf_cstr(&v), "sk-2");
    buf_reset(&v);
    assert_string_equal(ai__auth_header(AI_GEMINI, STRLIT("k3"), &v), "x-goog-api-key");
    assert_null(strstr(buf_cstr(&url), "k3"));
    buf_free(&v);
    buf_free(&url);
}

static int parse_resp(enum ai_kind k, const char *body, struct buf *text, int64_t *tin, int64_t *tout)
{
    struct buf fin = BUF_INIT(128);
    buf_reset(text);
    int rc = ai__parse_response(k, str_c(body), text, &fin, tin, tout);
    buf_free(&fin);
    return rc;
}

static void t_parse_responses(void **state)
{
    (void)state;
    struct buf t = BUF_INIT(1u << 20);
    int64_t in, out;
    assert_int_equal(parse_resp(AI_OPENAI,
                                "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hi there\"},"
                                "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}",
                                &t, &in, &out),
                     0);
    assert_string_equal(buf_cstr(&t), "hi there");
    assert_int_equal(in, 3);
    assert_int_equal(out, 2);
    assert_int_equal(parse_resp(AI_ANTHROPIC,
                                "{\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"tool_use\",\"id\":\"x\"},"
                                "{\"type\":\"text\",\"text\":\"b\"}],\"usage\":{\"input_tokens\":5,\"output_tokens\":6}}",
                                &t, &in, &out),
                     0);
    assert_string_equal(buf_cstr(&t), "ab");
    assert_int_equal(in, 5);
    assert_int_equal(out, 6);
    assert_int_equal(parse_resp(AI_GEMINI,
                                "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"g1\"},{\"text\":\"g2\"}]},"
                                "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":7,"
                                "\"candidatesTokenCount\":8}}",
                                &t, &in, &out),
                     0);
    assert_string_equal(buf_cstr(&t), "g1g2");
    assert_int_equal(in, 7);
    /* missing usage is zero, not an error */
    assert_int_equal(parse_resp(AI_OPENAI, "{\"choices\":[{\"message\":{\"content\":\"x\"}}]}", &t, &in, &out), 0);
    assert_int_equal(in, 0);
    /* malformed or without text: refused */
    static const char *const bad[] = {
        "", "{", "[]", "{\"choices\":[]}", "{\"choices\":[{\"message\":{\"content\":null}}]}",
        "{\"choices\": [{\"message\": {\"content\": \"trunc", "{\"a\":1,\"a\":2}", "null",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        assert_int_equal(parse_resp(AI_OPENAI, bad[i], &t, &in, &out), -1);
    assert_int_equal(parse_resp(AI_ANTHROPIC, "{\"content\":\"x\"}", &t, &in, &out), -1);
    assert_int_equal(parse_resp(AI_ANTHROPIC, "{\"content\":[{\"type\":\"image\"}]}", &t, &in, &out), -1);
    assert_int_equal(parse_resp(AI_GEMINI, "{\"candidates\":[{\"finishReason\":\"SAFETY\"}]}", &t, &in, &out), -1);
    buf_free(&t);
}

static void t_names_and_urls(void **state)
{
    (void)state;
    assert_true(ai__upstream_ok(STRLIT("gpt-4o-mini")));
    assert_true(ai__upstream_ok(STRLIT("claude-3-5-sonnet-20241022")));
    assert_true(ai__upstream_ok(STRLIT("gemini-1.5-flash:latest")));
    assert_false(ai__upstream_ok(STRLIT("")));
    assert_false(ai__upstream_ok(STRLIT("..")));
    assert_false(ai__upstream_ok(STRLIT("a/b")));
    assert_false(ai__upstream_ok(STRLIT("a?b")));
    assert_false(ai__upstream_ok(STRLIT("a b")));
    assert_true(ai__base_url_ok(STRLIT("https://api.openai.com/v1")));
    assert_true(ai__base_url_ok(STRLIT("http://127.0.0.1:9999/v1")));
    assert_false(ai__base_url_ok(STRLIT("ftp://x/v1")));
    assert_false(ai__base_url_ok(STRLIT("https://")));
    assert_false(ai__base_url_ok(STRLIT("https:///path")));
    assert_false(ai__base_url_ok(STRLIT("https://user:pw@host/v1")));
    assert_false(ai__base_url_ok(STRLIT("https://host/v1?key=x")));
    assert_false(ai__base_url_ok(STRLIT("https://host/v1#f")));
    assert_false(ai__base_url_ok(STRLIT("https://ho st/v1")));
    assert_true(ai__base_url_ok(STRLIT("https://host/a@b"))); /* @ in the path is not userinfo */
    assert_int_equal(ai__kind_from(STRLIT("gemini")), AI_GEMINI);
    assert_int_equal(ai__kind_from(STRLIT("Gemini")), -1);
}

static void t_seal(void **state)
{
    (void)state;
    unsigned char k1[32], k2[32];
    struct buf sealed = BUF_INIT(4096), sealed2 = BUF_INIT(4096), plain = BUF_INIT(4096);
    randombytes_buf(k1, sizeof(k1));
    randombytes_buf(k2, sizeof(k2));
    ai__crypto_set_key(k1);
    ai__seal(STRLIT("sk-very-secret-123"), &sealed);
    ai__seal(STRLIT("sk-very-secret-123"), &sealed2);
    assert_true(buf_ok(&sealed));
    assert_null(strstr(buf_cstr(&sealed), "secret"));
    assert_string_not_equal(buf_cstr(&sealed), buf_cstr(&sealed2)); /* fresh nonce each time */
    assert_int_equal(ai__open(buf_str(&sealed), &plain), 0);
    assert_string_equal(buf_cstr(&plain), "sk-very-secret-123");
    /* every flipped hex digit is refused */
    for (size_t i = 0; i < sealed.len; i++) {
        char saved = sealed.ptr[i];
        sealed.ptr[i] = saved == '0' ? '1' : '0';
        buf_reset(&plain);
        assert_int_equal(ai__open(buf_str(&sealed), &plain), -1);
        sealed.ptr[i] = saved;
    }
    buf_reset(&plain);
    assert_int_equal(ai__open(str_make(sealed.ptr, sealed.len - 2), &plain), -1); /* truncated */
    assert_int_equal(ai__open(STRLIT("zz"), &plain), -1);
    assert_int_equal(ai__open(STRLIT(""), &plain), -1);
    ai__crypto_set_key(k2); /* wrong key */
    assert_int_equal(ai__open(buf_str(&sealed), &plain), -1);
    buf_free(&sealed);
    buf_free(&sealed2);
    buf_free(&plain);
}

static void t_secret_file(void **state)
{
    (void)state;
    const char *tmp = getenv("TEMEL_TEST_TMPDIR");
    struct buf dir = BUF_INIT(4096), path = BUF_INIT(4096), err = BUF_INIT(1024), sealed = BUF_INIT(4096),
               plain = BUF_INIT(4096);
    (void)buf_printf(&dir, "%s/test_ai_%d/data", tmp ? tmp : "/tmp", (int)getpid());
    (void)buf_printf(&path, "%s/secret.key", buf_cstr(&dir));
    struct config cfg = {0};
    cfg.data_dir = dir.ptr;
    assert_int_equal(ai__crypto_init(&cfg, &err), 0);
    struct stat st;
    assert_int_equal(stat(buf_cstr(&path), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    ai__seal(STRLIT("k"), &sealed);
    /* a second start reads the same secret */
    assert_int_equal(ai__crypto_init(&cfg, &err), 0);
    assert_int_equal(ai__open(buf_str(&sealed), &plain), 0);
    /* TEMEL_SECRET_KEY wins over the file, and is a different key */
    cfg.secret_key = (char *)"0123456789abcdef0123456789abcdef-env";
    assert_int_equal(ai__crypto_init(&cfg, &err), 0);
    buf_reset(&plain);
    assert_int_equal(ai__open(buf_str(&sealed), &plain), -1);
    unlink(buf_cstr(&path));
    buf_free(&dir);
    buf_free(&path);
    buf_free(&err);
    buf_free(&sealed);
    buf_free(&plain);
}

static void t_abuse_score(void **state)
{
    (void)state;
    int a, b, c;
    struct ai_signals s = {1, 1, 1};
    assert_int_equal(ai__abuse_score(&s, &a, &b, &c), 0);
    s = (struct ai_signals){10, 3, 3};
    assert_int_equal(ai__abuse_score(&s, &a, &b, &c), 60);
    assert_int_equal(a, 20);
    s = (struct ai_signals){20, 5, 5};
    assert_int_equal(ai__abuse_score(&s, &a, &b, &c), 120);
    s = (struct ai_signals){0, 5, 5}; /* repeated prompts from a farmed account: past the default 70 */
    assert_true(ai__abuse_score(&s, &a, &b, &c) >= 70);
    s = (struct ai_signals){19, 4, 4}; /* just under each upper step */
    assert_int_equal(ai__abuse_score(&s, &a, &b, &c), 60);
}

static void t_status(void **state)
{
    (void)state;
    assert_string_equal(ai__status(STRLIT("queued"), STR_NULL), "queued");
    assert_string_equal(ai__status(STRLIT("queued"), STRLIT("available")), "queued");
    assert_string_equal(ai__status(STRLIT("queued"), STRLIT("retryable")), "queued");
    assert_string_equal(ai__status(STRLIT("queued"), STRLIT("running")), "running");
    assert_string_equal(ai__status(STRLIT("succeeded"), STRLIT("running")), "succeeded");
    assert_string_equal(ai__status(STRLIT("failed"), STRLIT("dead")), "failed");
    assert_string_equal(ai__status(STRLIT("cancelled"), STRLIT("cancelled")), "cancelled");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_normalize),     cmocka_unit_test(t_hash),        cmocka_unit_test(t_build_requests),
        cmocka_unit_test(t_parse_responses), cmocka_unit_test(t_names_and_urls), cmocka_unit_test(t_seal),
        cmocka_unit_test(t_secret_file),   cmocka_unit_test(t_abuse_score), cmocka_unit_test(t_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
