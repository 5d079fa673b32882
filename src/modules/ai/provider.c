/*
 * provider.c — the three upstream wire formats, and the client's input.
 *
 *   openai     POST {base}/chat/completions            Authorization: Bearer KEY
 *              {model, messages[{role,content}], max_tokens?, temperature?}
 *              → choices[0].message.content, usage.prompt_tokens/completion_tokens
 *   anthropic  POST {base}/messages                    x-api-key: KEY, anthropic-version
 *              {model, max_tokens, system?, messages, temperature?}
 *              → content[type=text].text, usage.input_tokens/output_tokens
 *   gemini     POST {base}/models/{model}:generateContent   x-goog-api-key: KEY
 *              {contents[{role:user|model, parts[{text}]}], systemInstruction?, generationConfig?}
 *              → candidates[0].content.parts[].text, usageMetadata.promptTokenCount/candidatesTokenCount
 *
 * The key travels in a header only (never in the URL: URLs end up in logs
 * and error messages more easily than headers).
 *
 * Canonical input: {"messages":[{"role","content"}...], "system"?, "max_tokens"?,
 * "temperature"?}, dumped with sorted keys — identical requests hash alike.
 */
#include <sodium.h>

#include "modules/ai/ai_internal.h"

#include "core/banned.h"

const char *const ai__kind_names[3] = {"openai", "anthropic", "gemini"};

int ai__kind_from(str_t s)
{
    for (int i = 0; i < 3; i++)
        if (str_eq(s, str_c(ai__kind_names[i])))
            return i;
    return -1;
}

const char *ai__operation_system(const char *op)
{
    if (!strcmp(op, "resume"))
        return "You are an expert resume writer. Improve, rewrite or tailor the resume the user gives you: "
               "concrete achievements, active verbs, no invented facts.";
    if (!strcmp(op, "cover-letter"))
        return "You write concise, specific cover letters from the resume and job description the user gives "
               "you. No invented facts.";
    return "";
}

/* ---- input ---- */

static bool text_ok(const json_t *v, size_t max, size_t *total)
{
    if (!json_is_string(v))
        return false;
    size_t n = utf8_len(json_string_value(v), json_string_length(v));
    *total += n;
    return n <= max && memchr(json_string_value(v), '\0', json_string_length(v)) == NULL;
}

json_t *ai__normalize_input(const json_t *in, const char **field, const char **message)
{
    size_t total = 0;
    json_t *out = json_object(), *msgs = json_array();
    json_object_set_new(out, "messages", msgs);
    *field = "input";
    if (json_is_string(in)) {
        if (!text_ok(in, AI_MAX_CONTENT, &total) || json_string_length(in) == 0) {
            *message = "must be a non-empty string of at most 50000 characters";
            goto bad;
        }
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", in));
        return out;
    }
    if (!json_is_object(in)) {
        *message = "must be a string or an object {prompt | messages, system?, max_tokens?, temperature?}";
        goto bad;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v) {
        if (strcmp(k, "prompt") && strcmp(k, "messages") && strcmp(k, "system") && strcmp(k, "max_tokens") &&
            strcmp(k, "temperature")) {
            *field = "input";
            *message = "unknown field (allowed: prompt, messages, system, max_tokens, temperature)";
            goto bad;
        }
    }
    const json_t *prompt = json_object_get(in, "prompt"), *m = json_object_get(in, "messages");
    if (!!prompt == !!m) {
        *field = "input";
        *message = "needs exactly one of prompt or messages";
        goto bad;
    }
    if (prompt) {
        if (!text_ok(prompt, AI_MAX_CONTENT, &total) || json_string_length(prompt) == 0) {
            *field = "input.prompt";
            *message = "must be a non-empty string of at most 50000 characters";
            goto bad;
        }
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", prompt));
    } else {
        if (!json_is_array(m) || json_array_size(m) == 0 || json_array_size(m) > AI_MAX_MESSAGES) {
            *field = "input.messages";
            *message = "must be an array of 1 to 100 messages";
            goto bad;
        }
        size_t i;
        json_t *e;
        json_array_foreach(m, i, e) {
            const json_t *role = json_object_get(e, "role"), *content = json_object_get(e, "content");
            if (!json_is_object(e) || json_object_size(e) != 2 || !json_is_string(role) ||
                (strcmp(json_string_value(role), "user") && strcmp(json_string_value(role), "assistant")) ||
                !text_ok(content, AI_MAX_CONTENT, &total) || json_string_length(content) == 0) {
                *field = "input.messages";
                *message = "each message is {role: user|assistant, content: non-empty string <= 50000 characters}";
                goto bad;
            }
            json_array_append_new(msgs, json_pack("{s:O,s:O}", "role", role, "content", content));
        }
        if (strcmp(json_string_value(json_object_get(json_array_get(m, json_array_size(m) - 1), "role")), "user")) {
            *field = "input.messages";
            *message = "the last message must be from the user";
            goto bad;
        }
    }
    const json_t *sys = json_object_get(in, "system");
    if (sys) {
        if (!text_ok(sys, AI_MAX_CONTENT, &total)) {
            *field = "input.system";
            *message = "must be a string of at most 50000 characters";
            goto bad;
        }
        if (json_string_length(sys))
            json_object_set(out, "system", (json_t *)sys);
    }
    const json_t *mt = json_object_get(in, "max_tokens");
    if (mt) {
        if (!json_is_integer(mt) || json_integer_value(mt) < 1 || json_integer_value(mt) > AI_MAX_TOKENS_CAP) {
            *field = "input.max_tokens";
            *message = "must be an integer in 1..32768";
            goto bad;
        }
        json_object_set(out, "max_tokens", (json_t *)mt);
    }
    const json_t *t = json_object_get(in, "temperature");
    if (t) {
        if (!json_is_number(t) || json_number_value(t) < 0 || json_number_value(t) > 2) {
            *field = "input.temperature";
            *message = "must be a number in 0..2";
            goto bad;
        }
        json_object_set_new(out, "temperature", json_real(json_number_value(t)));
    }
    if (total > AI_MAX_TOTAL) {
        *field = "input";
        *message = "is longer than 100000 characters in total";
        goto bad;
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}

void ai__input_text(const json_t *norm, struct buf *out)
{
    char *s = json_dumps(norm, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    if (!s)
        FATAL("json_dumps failed");
    (void)buf_puts(out, s);
    free(s);
}

void ai__input_hash(const char *operation, str_t model, str_t canonical, char out[65])
{
    crypto_hash_sha256_state st;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    /* NUL separators: operation and model never contain NUL (validated) */
    crypto_hash_sha256_update(&st, (const unsigned char *)operation, strlen(operation) + 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)model.p, model.len);
    crypto_hash_sha256_update(&st, (const unsigned char *)"", 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)canonical.p, canonical.len);
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

void ai__cache_key(str_t user_id, const char *input_hash, char out[65])
{
    static const char tag[] = "temel.ai.cache.v2"; /* v1 keys were the bare input hash, shared by all users */
    crypto_hash_sha256_state st;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)tag, sizeof(tag)); /* with its NUL: a separator */
    crypto_hash_sha256_update(&st, (const unsigned char *)user_id.p, user_id.len);
    crypto_hash_sha256_update(&st, (const unsigned char *)"", 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)input_hash, strlen(input_hash));
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

bool ai__upstream_ok(str_t s)
{
    if (s.len < 1 || s.len > 100)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == ':'))
            return false;
    }
    return !(s.len == 1 && s.p[0] == '.') && !(s.len == 2 && s.p[0] == '.' && s.p[1] == '.');
}

bool ai__base_url_ok(str_t s)
{
    str_t rest;
    if (s.len > 500)
        return false;
    if (str_has_prefix(s, STRLIT("https://")))
        rest = str_make(s.p + 8, s.len - 8);
    else if (str_has_prefix(s, STRLIT("http://")))
        rest = str_make(s.p + 7, s.len - 7);
    else
        return false;
    if (rest.len == 0 || rest.p[0] == '/')
        return false;
    size_t host_end = rest.len;
    for (size_t i = 0; i < rest.len; i++) {
        unsigned char c = (unsigned char)rest.p[i];
        if (c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '\\' || c == '"')
            return false;
        if (c == '/' && host_end == rest.len)
            host_end = i;
        if (c == '@' && i < host_end)
            return false; /* userinfo: keys belong in the key store, not in URLs */
    }
    return true;
}

/* ---- requests ---- */

static void put_base(struct buf *url, const char *base)
{
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    (void)buf_append(url, base, n);
}

int ai__build_request(enum ai_kind kind, const char *base_url, const char *upstream, const json_t *norm,
                      const char *op_system, struct buf *url, struct buf *body)
{
    const json_t *msgs = json_object_get(norm, "messages"), *sys = json_object_get(norm, "system"),
                 *mt = json_object_get(norm, "max_tokens"), *t = json_object_get(norm, "temperature");
    struct buf system = BUF_INIT(4u * AI_MAX_TOTAL + 1024);
    struct jw w;
    size_t i;
    json_t *m;
    (void)buf_puts(&system, op_system);
    if (sys) {
        if (system.len)
            (void)buf_puts(&system, "\n\n");
        (void)buf_append(&system, json_string_value(sys), json_string_length(sys));
    }
    jw_init(&w, body);
    jw_obj_begin(&w);
    switch (kind) {
    case AI_OPENAI:
        put_base(url, base_url);
        (void)buf_puts(url, "/chat/completions");
        jw_key(&w, "model");
        jw_cstr(&w, upstream);
        jw_key(&w, "messages");
        jw_arr_begin(&w);
        if (system.len) {
            jw_obj_begin(&w);
            jw_key(&w, "role");
            jw_cstr(&w, "system");
            jw_key(&w, "content");
            jw_str(&w, buf_str(&system));
            jw_obj_end(&w);
        }
        json_array_foreach(msgs, i, m) jw_json(&w, m);
        jw_arr_end(&w);
        if (mt) {
            jw_key(&w, "max_tokens");
            jw_int(&w, json_integer_value(mt));
        }
        break;
    case AI_ANTHROPIC:
        put_base(url, base_url);
        (void)buf_puts(url, "/messages");
        jw_key(&w, "model");
        jw_cstr(&w, upstream);
        jw_key(&w, "max_tokens"); /* required by the API */
        jw_int(&w, mt ? json_integer_value(mt) : AI_DEFAULT_MAX_TOKENS);
        if (system.len) {
            jw_key(&w, "system");
            jw_str(&w, buf_str(&system));
        }
        jw_key(&w, "messages");
        jw_arr_begin(&w);
        json_array_foreach(msgs, i, m) jw_json(&w, m);
        jw_arr_end(&w);
        break;
    case AI_GEMINI:
        put_base(url, base_url);
        (void)buf_printf(url, "/models/%s:generateContent", upstream);
        jw_key(&w, "contents");
        jw_arr_begin(&w);
        json_array_foreach(msgs, i, m) {
            const json_t *content = json_object_get(m, "content");
            jw_obj_begin(&w);
            jw_key(&w, "role");
            jw_cstr(&w, strcmp(json_string_value(json_object_get(m, "role")), "assistant") ? "user" : "model");
            jw_key(&w, "parts");
            jw_arr_begin(&w);
            jw_obj_begin(&w);
            jw_key(&w, "text");
            jw_str(&w, str_make(json_string_value(content), json_string_length(content)));
            jw_obj_end(&w);
            jw_arr_end(&w);
            jw_obj_end(&w);
        }
        jw_arr_end(&w);
        if (system.len) {
            jw_key(&w, "systemInstruction");
            jw_obj_begin(&w);
            jw_key(&w, "parts");
            jw_arr_begin(&w);
            jw_obj_begin(&w);
            jw_key(&w, "text");
            jw_str(&w, buf_str(&system));
            jw_obj_end(&w);
            jw_arr_end(&w);
            jw_obj_end(&w);
        }
        if (mt || t) {
            jw_key(&w, "generationConfig");
            jw_obj_begin(&w);
            if (mt) {
                jw_key(&w, "maxOutputTokens");
                jw_int(&w, json_integer_value(mt));
            }
            if (t) {
                jw_key(&w, "temperature");
                jw_double(&w, json_number_value(t));
            }
            jw_obj_end(&w);
        }
        break;
    }
    if (t && kind != AI_GEMINI) {
        jw_key(&w, "temperature");
        jw_double(&w, json_number_value(t));
    }
    jw_obj_end(&w);
    bool ok = buf_ok(&system) && buf_ok(url) && buf_ok(body);
    buf_free(&system);
    return ok ? 0 : -1;
}

const char *ai__auth_header(enum ai_kind kind, str_t key, struct buf *val)
{
    switch (kind) {
    case AI_OPENAI:
        (void)buf_puts(val, "Bearer ");
        (void)buf_put(val, key);
        return "Authorization";
    case AI_ANTHROPIC:
        (void)buf_put(val, key);
        return "x-api-key";
    case AI_GEMINI:
        (void)buf_put(val, key);
        return "x-goog-api-key";
    }
    BUG("unknown provider kind");
}

/* ---- responses ---- */

static int64_t int_at(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : 0;
}

static void put_text(struct buf *text, const json_t *v, bool *any)
{
    if (json_is_string(v)) {
        (void)buf_append(text, json_string_value(v), json_string_length(v));
        *any = true;
    }
}

int ai__parse_response(enum ai_kind kind, str_t body, struct buf *text, struct buf *finish, int64_t *tokens_in,
                       int64_t *tokens_out)
{
    json_t *root = NULL;
    bool any = false;
    *tokens_in = *tokens_out = 0;
    if (json_parse_strict(body, &root, NULL) != JSON_IN_OK)
        return -1;
    if (!json_is_object(root))
        goto bad;
    const json_t *usage, *fin = NULL;
    switch (kind) {
    case AI_OPENAI: {
        const json_t *c0 = json_array_get(json_object_get(root, "choices"), 0);
        put_text(text, json_object_get(json_object_get(c0, "message"), "content"), &any);
        fin = json_object_get(c0, "finish_reason");
        usage = json_object_get(root, "usage");
        *tokens_in = int_at(usage, "prompt_tokens");
        *tokens_out = int_at(usage, "completion_tokens");
        break;
    }
    case AI_ANTHROPIC: {
        size_t i;
        json_t *blk;
        const json_t *content = json_object_get(root, "content");
        if (!json_is_array(content))
            goto bad;
        json_array_foreach(content, i, blk) {
            const json_t *type = json_object_get(blk, "type");
            if (json_is_string(type) && !strcmp(json_string_value(type), "text"))
                put_text(text, json_object_get(blk, "text"), &any);
        }
        fin = json_object_get(root, "stop_reason");
        usage = json_object_get(root, "usage");
        *tokens_in = int_at(usage, "input_tokens");
        *tokens_out = int_at(usage, "output_tokens");
        break;
    }
    case AI_GEMINI: {
        size_t i;
        json_t *part;
        const json_t *c0 = json_array_get(json_object_get(root, "candidates"), 0);
        const json_t *parts = json_object_get(json_object_get(c0, "content"), "parts");
        if (!json_is_array(parts))
            goto bad;
        json_array_foreach(parts, i, part) put_text(text, json_object_get(part, "text"), &any);
        fin = json_object_get(c0, "finishReason");
        usage = json_object_get(root, "usageMetadata");
        *tokens_in = int_at(usage, "promptTokenCount");
        *tokens_out = int_at(usage, "candidatesTokenCount");
        break;
    }
    }
    if (!any || !buf_ok(text))
        goto bad;
    if (json_is_string(fin))
        (void)buf_append(finish, json_string_value(fin), json_string_length(fin));
    json_decref(root);
    return 0;
bad:
    json_decref(root);
    return -1;
}
