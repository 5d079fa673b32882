/* Unit tests for src/transport/mail (+ sms, delivery): template rendering and
 * escaping, RFC 2047, header-injection refusal, the .eml structure, the file
 * transports, SMTP outcomes against a scripted server, and the handlers
 * called directly with a constructed struct job. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/json.h"
#include "core/timeutil.h"
#include "transport/delivery.h"
#include "transport/mail.h"
#include "transport/sms.h"

/* ---- a stand-in for the queue: captures what would be enqueued ---- */
static char g_kind[64];
static struct buf g_payload = BUF_INIT(1u << 20);
static int g_enqueued;
__attribute__((weak)) int jobs_enqueue(struct db *db, const char *kind, str_t payload, const struct job_opts *opts,
                                       char *id_out)
{
    (void)db, (void)opts;
    snprintf(g_kind, sizeof(g_kind), "%s", kind);
    buf_reset(&g_payload);
    (void)buf_put(&g_payload, payload);
    g_enqueued++;
    if (id_out)
        memcpy(id_out, "0190a000-0000-7000-8000-0000000000aa", 37);
    return 0;
}
__attribute__((weak)) void jobs_register(const struct job_kind *k) { (void)k; }

static char g_tmp[512];

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("TEMEL_TEST_TMPDIR");
    snprintf(g_tmp, sizeof(g_tmp), "%s/mailtest-%d", base ? base : "/tmp", (int)getpid());
    mail_template_register("t_welcome", "Welcome, {{name}}!", "Hello {{name}},\nyour code is {{ code }}.\n",
                           "<p>Hello {{name}}, code <b>{{code}}</b> {{{link}}}</p>");
    mail_template_register("t_text", "Plain {{n}}", "Only text {{n}}\n", NULL);
    return 0;
}

/* ------------------------------------------------------------ rendering */

static void t_render(void **state)
{
    (void)state;
    struct buf out = BUF_INIT(4096), err = BUF_INIT(256);
    json_t *v = json_pack("{s:s,s:i,s:b,s:f,s:s}", "name", "<Ada & \"Bob\" 'x'>", "n", 42, "yes", 1, "pi", 2.5,
                          "link", "<a href=\"x\">y</a>");
    assert_int_equal(mail_render("Hi {{name}}! {{ n }} {{yes}} {{pi}}", v, false, &out, &err), 0);
    assert_string_equal(buf_cstr(&out), "Hi <Ada & \"Bob\" 'x'>! 42 true 2.5");
    buf_reset(&out);
    assert_int_equal(mail_render("<p>{{name}}</p>{{{link}}}{{link}}", v, true, &out, &err), 0);
    assert_string_equal(buf_cstr(&out), "<p>&lt;Ada &amp; &quot;Bob&quot; &#39;x&#39;&gt;</p><a href=\"x\">y</a>"
                                         "&lt;a href=&quot;x&quot;&gt;y&lt;/a&gt;");
    buf_reset(&out);
    assert_int_equal(mail_render("no placeholders }} {", v, true, &out, &err), 0);
    assert_string_equal(buf_cstr(&out), "no placeholders }} {");
    buf_reset(&out);
    assert_int_equal(mail_render("{{missing}}", v, false, &out, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "missing"));
    buf_reset(&err);
    json_object_set_new(v, "obj", json_object());
    assert_int_equal(mail_render("{{obj}}", v, false, &out, &err), -1);
    buf_reset(&err);
    assert_int_equal(mail_render("{{bad name}}", v, false, &out, &err), -1);
    assert_int_equal(mail_render("{{name", v, false, &out, &err), -1);
    assert_int_equal(mail_render("{{{name}}", v, false, &out, &err), -1);
    /* a value that looks like a placeholder is not expanded again */
    json_object_set_new(v, "x", json_string("{{name}}"));
    buf_reset(&out);
    assert_int_equal(mail_render("{{x}}", v, false, &out, &err), 0);
    assert_string_equal(buf_cstr(&out), "{{name}}");
    json_decref(v);
    buf_free(&out);
    buf_free(&err);
}

/* ------------------------------------------------------------ RFC 2047 */

static void decode_words(const char *enc, struct buf *out)
{
    const char *p = enc;
    while ((p = strstr(p, "=?UTF-8?B?"))) {
        p += 10;
        const char *e = strstr(p, "?=");
        assert_non_null(e);
        unsigned char bin[256];
        size_t bl;
        assert_int_equal(sodium_base642bin(bin, sizeof(bin), p, (size_t)(e - p), NULL, &bl, NULL,
                                           sodium_base64_VARIANT_ORIGINAL),
                         0);
        (void)buf_append(out, bin, bl);
        assert_true(utf8_valid(str_make((const char *)bin, bl))); /* no character split across words */
        p = e + 2;
    }
}

static void check_lines(const char *s, size_t first_prefix, size_t max)
{
    size_t col = first_prefix;
    for (const char *p = s; *p; p++) {
        if (*p == '\r') {
            assert_int_equal(p[1], '\n');
            assert_int_equal(p[2], ' '); /* folded */
            p++;
            col = 0;
            continue;
        }
        assert_int_not_equal(*p, '\n');
        col++;
        assert_true(col <= max);
    }
}

static void t_rfc2047(void **state)
{
    (void)state;
    struct buf out = BUF_INIT(8192), dec = BUF_INIT(8192);
    assert_int_equal(mail_header_encode(&out, "Plain subject", 7), 0);
    assert_string_equal(buf_cstr(&out), "Plain subject");
    buf_reset(&out);
    const char *s = "Şifre sıfırlama — ğüşiöç 你好 🙂";
    assert_int_equal(mail_header_encode(&out, s, 7), 0);
    assert_true(strncmp(buf_cstr(&out), "=?UTF-8?B?", 10) == 0);
    check_lines(buf_cstr(&out), 9, 78);
    decode_words(buf_cstr(&out), &dec);
    assert_string_equal(buf_cstr(&dec), s);
    /* long: many words, each <= 75 chars, lines <= 78 */
    buf_reset(&out);
    buf_reset(&dec);
    struct buf longs = BUF_INIT(4096);
    for (int i = 0; i < 40; i++)
        (void)buf_puts(&longs, "ağaç ");
    assert_int_equal(mail_header_encode(&out, buf_cstr(&longs), 7), 0);
    check_lines(buf_cstr(&out), 9, 78);
    for (const char *w = buf_cstr(&out); (w = strstr(w, "=?UTF-8?B?"));) {
        const char *e = strstr(w, "?=");
        assert_true(e + 2 - w <= 75);
        w = e + 2;
    }
    decode_words(buf_cstr(&out), &dec);
    assert_string_equal(buf_cstr(&dec), buf_cstr(&longs));
    /* ASCII but long, or containing "=?": encoded too */
    buf_reset(&out);
    assert_int_equal(mail_header_encode(&out, "looks =?like?= a word", 7), 0);
    assert_true(strncmp(buf_cstr(&out), "=?UTF-8?B?", 10) == 0);
    /* injection: refused */
    buf_reset(&out);
    assert_int_equal(mail_header_encode(&out, "Hi\r\nBcc: victim@example.com", 7), -1);
    assert_int_equal(mail_header_encode(&out, "Hi\nBcc: x", 7), -1);
    assert_int_equal(mail_header_encode(&out, "tab\there", 7), -1);
    assert_int_equal(mail_header_encode(&out, "bad \xff utf8", 7), -1);
    buf_free(&out);
    buf_free(&dec);
    buf_free(&longs);
}

/* ------------------------------------------------------------ addresses */

static void t_addresses(void **state)
{
    (void)state;
    static const char *const ok[] = {"a@b.co", "first.last+tag@example.com", "x_y-z@sub.domain.org",
                                     "noreply@localhost", "o'brien@example.ie"};
    static const char *const bad[] = {"", "a", "@b.com", "a@", "a@b@c.com", "a b@c.com", "<a@b.com>",
                                      "a@b.com\r\nBcc: v@x.com", "a@b.com\n", "a@b.com,c@d.com", "\"a\"@b.com",
                                      ".a@b.com", "a.@b.com", "a..b@c.com", "a@-b.com", "a@b..com", "a@b.com.",
                                      "a@b_c.com", "ü@b.com", "a@b.com>", "a@[127.0.0.1]"};
    for (size_t i = 0; i < ARRAY_LEN(ok); i++)
        if (!mail_addr_ok(ok[i]))
            fail_msg("'%s' should be accepted", ok[i]);
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (mail_addr_ok(bad[i]))
            fail_msg("'%s' should be refused", bad[i]);
    char *n, *a;
    assert_int_equal(mail_parse_from("temel <noreply@localhost>", &n, &a), 0);
    assert_string_equal(n, "temel");
    assert_string_equal(a, "noreply@localhost");
    free(n), free(a);
    assert_int_equal(mail_parse_from("\"Şirket Ltd\" <info@example.com>", &n, &a), 0);
    assert_string_equal(n, "Şirket Ltd");
    free(n), free(a);
    assert_int_equal(mail_parse_from("bare@example.com", &n, &a), 0);
    assert_null(n);
    assert_string_equal(a, "bare@example.com");
    free(a);
    assert_int_equal(mail_parse_from("x <a@b.com>\r\nBcc: v@x.com", &n, &a), -1);
    assert_int_equal(mail_parse_from("x\r\n <a@b.com>", &n, &a), -1);
    assert_int_equal(mail_parse_from("x <not an address>", &n, &a), -1);
    assert_int_equal(mail_parse_from("a\"b <a@b.com>", &n, &a), -1);
}

static void t_enqueue_refuses_injection(void **state)
{
    (void)state;
    int before = g_enqueued;
    json_t *v = json_pack("{s:s,s:s,s:s}", "name", "x\r\nBcc: victim@example.com", "code", "1", "link", "");
    /* the subject would carry CR/LF: refused, nothing enqueued */
    assert_int_equal(mail_enqueue(NULL, "a@example.com", "t_welcome", v), MAIL_EINVAL);
    json_object_set_new(v, "name", json_string("Ada"));
    assert_int_equal(mail_enqueue(NULL, "a@example.com\r\nBcc: v@x.com", "t_welcome", v), MAIL_EINVAL);
    assert_int_equal(mail_enqueue(NULL, "a@example.com", "no_such_template", v), MAIL_EINVAL);
    json_object_del(v, "code");
    assert_int_equal(mail_enqueue(NULL, "a@example.com", "t_welcome", v), MAIL_EINVAL); /* missing var */
    assert_int_equal(g_enqueued, before);
    json_object_set_new(v, "code", json_string("123456"));
    char id[37];
    assert_int_equal(mail_enqueue_ex(NULL, "a@example.com", "t_welcome", v, NULL, id), 0);
    assert_int_equal(g_enqueued, before + 1);
    assert_string_equal(g_kind, "mail.send");
    json_t *p = NULL;
    assert_int_equal(json_parse_strict(buf_str(&g_payload), &p, NULL), JSON_IN_OK);
    assert_string_equal(json_string_value(json_object_get(p, "to")), "a@example.com");
    assert_string_equal(json_string_value(json_object_get(p, "template")), "t_welcome");
    assert_string_equal(json_string_value(json_object_get(json_object_get(p, "vars"), "code")), "123456");
    json_decref(p);
    json_decref(v);

    assert_int_equal(sms_enqueue(NULL, "+905551234567", "hello"), 0);
    assert_string_equal(g_kind, "sms.send");
    assert_int_equal(sms_enqueue(NULL, "905551234567", "hello"), SMS_EINVAL);
    assert_int_equal(sms_enqueue(NULL, "+905551234567", ""), SMS_EINVAL);
    assert_int_equal(sms_enqueue(NULL, "+905551234567", "bad \xff"), SMS_EINVAL);
}

static void t_sms_numbers(void **state)
{
    (void)state;
    static const char *const ok[] = {"+905551234567", "+14155552671", "+4930123456", "+123456789012345"};
    static const char *const bad[] = {"", "+", "905551234567", "+0123456789", "+1234567", "+1234567890123456",
                                      "+90 555 123 4567", "+90-555", "+90555\n1234567", "++905551234567"};
    for (size_t i = 0; i < ARRAY_LEN(ok); i++)
        if (!sms_number_ok(ok[i]))
            fail_msg("'%s' should be accepted", ok[i]);
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (sms_number_ok(bad[i]))
            fail_msg("'%s' should be refused", bad[i]);
}

/* ------------------------------------------------------------ .eml */

static void qp_decode(const char *s, size_t n, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
            i += 2;
        } else if (s[i] == '=' && i + 2 < n) {
            unsigned v;
            char hx[3] = {s[i + 1], s[i + 2], 0};
            assert_int_equal(sscanf(hx, "%2X", &v), 1);
            (void)buf_putc(out, (char)v);
            i += 2;
        } else {
            (void)buf_putc(out, s[i]);
        }
    }
}

/* The body of the part with the given Content-Type, QP-decoded. */
static void part_body(const char *msg, const char *ctype, struct buf *out)
{
    const char *p = strstr(msg, ctype);
    assert_non_null(p);
    p = strstr(p, "\r\n\r\n");
    assert_non_null(p);
    p += 4;
    const char *e = strstr(p, "\r\n--=_temel_");
    if (!e)
        e = p + strlen(p);
    qp_decode(p, (size_t)(e - p), out);
}

static void check_eml(const char *m)
{
    /* CRLF only, lines <= 78 */
    size_t col = 0;
    for (const char *p = m; *p; p++) {
        if (*p == '\n') {
            assert_true(p > m && p[-1] == '\r');
            col = 0;
            continue;
        }
        if (*p != '\r')
            col++;
        assert_true(col <= 78);
    }
    static const char *const hdrs[] = {"\r\nTo: ", "\r\nSubject: ", "\r\nDate: ", "\r\nMessage-ID: <",
                                       "\r\nMIME-Version: 1.0\r\n"};
    assert_true(strncmp(m, "From: ", 6) == 0);
    for (size_t i = 0; i < ARRAY_LEN(hdrs); i++)
        if (!strstr(m, hdrs[i]))
            fail_msg("missing header %s", hdrs[i] + 2);
    /* header block ends before the body; no header is duplicated */
    const char *he = strstr(m, "\r\n\r\n");
    assert_non_null(he);
    const char *second = strstr(m + 1, "\r\nFrom: ");
    assert_true(!second || second > he);
}

static void t_build(void **state)
{
    (void)state;
    struct buf out = BUF_INIT(MAIL_MAX_MESSAGE), err = BUF_INIT(256), b = BUF_INIT(8192);
    struct buf longtext = BUF_INIT(8192);
    for (int i = 0; i < 30; i++)
        (void)buf_puts(&longtext, "çok uzun satır = ");
    (void)buf_puts(&longtext, "\n.leading dot\ntrailing space \nFrom start\n");
    struct mail_message m = {.from = "\"Şirket\" <info@example.com>", .to = "ada@example.com",
                             .subject = "Şifre sıfırlama", .text = buf_cstr(&longtext),
                             .html = "<p>Merhaba &amp; hoş geldin</p>",
                             .message_id_local = "0190a000-0000-7000-8000-000000000001",
                             .date_ms = 1700000000000};
    assert_int_equal(mail_build(&m, &out, &err), 0);
    const char *s = buf_cstr(&out);
    check_eml(s);
    assert_non_null(strstr(s, "From: =?UTF-8?B?"));
    assert_non_null(strstr(s, "?=\r\n <info@example.com>\r\n"));
    assert_non_null(strstr(s, "\r\nTo: ada@example.com\r\n"));
    assert_non_null(strstr(s, "\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
    assert_non_null(strstr(s, "\r\nMessage-ID: <0190a000-0000-7000-8000-000000000001@example.com>\r\n"));
    assert_non_null(strstr(s, "Content-Type: multipart/alternative;\r\n boundary=\"=_temel_"));
    assert_non_null(strstr(s, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
                              "quoted-printable\r\n"));
    assert_non_null(strstr(s, "Content-Type: text/html; charset=utf-8\r\n"));
    assert_non_null(strstr(s, "\r\n=2Eleading dot")); /* no line starts with a bare '.' */
    assert_null(strstr(s, "\r\n.\r\n"));
    assert_non_null(strstr(s, "trailing space=20\r\n"));
    /* both parts decode back to the input (LF → CRLF) */
    part_body(s, "text/plain", &b);
    struct buf want = BUF_INIT(8192);
    for (const char *p = buf_cstr(&longtext); *p; p++) {
        if (*p == '\n')
            (void)buf_putc(&want, '\r');
        (void)buf_putc(&want, *p);
    }
    assert_string_equal(buf_cstr(&b), buf_cstr(&want));
    buf_reset(&b);
    part_body(s, "text/html", &b);
    assert_string_equal(buf_cstr(&b), "<p>Merhaba &amp; hoş geldin</p>");
    /* closing boundary */
    const char *bs = strstr(s, "boundary=\"") + 10;
    char bnd[64];
    size_t bl = (size_t)(strchr(bs, '"') - bs);
    assert_true(bl < 40);
    memcpy(bnd, bs, bl);
    bnd[bl] = '\0';
    char close[80];
    snprintf(close, sizeof(close), "\r\n--%s--\r\n", bnd);
    assert_non_null(strstr(s, close));

    /* text only */
    buf_reset(&out);
    m.html = NULL;
    m.subject = "ascii";
    assert_int_equal(mail_build(&m, &out, &err), 0);
    assert_null(strstr(buf_cstr(&out), "multipart"));
    assert_non_null(strstr(buf_cstr(&out), "\r\nSubject: ascii\r\n"));
    /* injection through any header input is refused */
    m.subject = "x\r\nBcc: v@x.com";
    buf_reset(&out);
    assert_int_equal(mail_build(&m, &out, &err), -1);
    m.subject = "ok";
    m.to = "a@b.com\r\nBcc: v@x.com";
    assert_int_equal(mail_build(&m, &out, &err), -1);
    m.to = "a@b.com";
    m.from = "x <a@b.com>\nBcc: v@x.com";
    assert_int_equal(mail_build(&m, &out, &err), -1);
    buf_free(&out);
    buf_free(&err);
    buf_free(&b);
    buf_free(&want);
    buf_free(&longtext);
}

/* ------------------------------------------------------------ handlers */

static int count_files(const char *dir, const char *suffix, char *first, size_t fl)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name), sl = strlen(suffix);
        if (e->d_name[0] == '.')
            continue;
        if (l > sl && !strcmp(e->d_name + l - sl, suffix)) {
            if (!n && first)
                snprintf(first, fl, "%s/%s", dir, e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct buf b = BUF_INIT(MAIL_MAX_MESSAGE);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        (void)buf_append(&b, chunk, n);
    fclose(f);
    return buf_detach(&b, NULL);
}

static void t_mail_job_file(void **state)
{
    (void)state;
    char url[600], dir[560], path[700];
    snprintf(dir, sizeof(dir), "%s/mail", g_tmp);
    snprintf(url, sizeof(url), "file://%s", dir);
    delivery_configure(&(struct delivery_config){.mail_url = url, .mail_from = "temel <noreply@example.com>"});
    json_t *payload = json_pack("{s:s,s:s,s:{s:s,s:s,s:s}}", "to", "ada@example.com", "template", "t_welcome",
                                "vars", "name", "Ada <3", "code", "987654", "link", "<a href=\"https://x\">go</a>");
    struct job j = {.id = "0190a000-0000-7000-8000-000000000002", .kind = "mail.send", .payload = payload,
                    .attempt = 1, .max_attempts = 3, .deadline_mono_ms = time_mono_ms() + 10000};
    struct buf result = BUF_INIT(4096), error = BUF_INIT(1024);
    assert_int_equal(mail_job_send(&j, &result, &error), JOB_OK);
    assert_non_null(strstr(buf_cstr(&result), "\"transport\":\"file\""));
    assert_int_equal(count_files(dir, ".eml", path, sizeof(path)), 1);
    assert_non_null(strstr(path, "0190a000-0000-7000-8000-000000000002.eml"));
    /* a retry of the same job rewrites the same file */
    assert_int_equal(mail_job_send(&j, &result, &error), JOB_OK);
    assert_int_equal(count_files(dir, ".eml", NULL, 0), 1);
    assert_int_equal(count_files(dir, ".tmp", NULL, 0), 0);
    char *m = slurp(path);
    check_eml(m);
    assert_non_null(strstr(m, "\r\nSubject: Welcome, Ada <3!\r\n"));
    struct buf b = BUF_INIT(8192);
    part_body(m, "text/html", &b);
    assert_string_equal(buf_cstr(&b), "<p>Hello Ada &lt;3, code <b>987654</b> <a href=\"https://x\">go</a></p>");
    buf_reset(&b);
    part_body(m, "text/plain", &b);
    assert_string_equal(buf_cstr(&b), "Hello Ada <3,\r\nyour code is 987654.\r\n");
    free(m);
    buf_free(&b);

    /* bad payloads fail for good */
    json_t *bad = json_pack("{s:s,s:s}", "to", "x\r\n@y", "template", "t_welcome");
    j.payload = bad;
    buf_reset(&error);
    assert_int_equal(mail_job_send(&j, &result, &error), JOB_FAIL);
    json_decref(bad);
    bad = json_pack("{s:s,s:s}", "to", "a@b.com", "template", "nope");
    j.payload = bad;
    assert_int_equal(mail_job_send(&j, &result, &error), JOB_FAIL);
    json_decref(bad);
    json_decref(payload);
    buf_free(&result);
    buf_free(&error);
}

static void t_sms_job_file(void **state)
{
    (void)state;
    char url[600], dir[560], path[700];
    snprintf(dir, sizeof(dir), "%s/sms", g_tmp);
    snprintf(url, sizeof(url), "file://%s", dir);
    delivery_configure(&(struct delivery_config){.sms_url = url, .sms_from = "temel"});
    json_t *payload = json_pack("{s:s,s:s}", "to", "+905551234567", "text", "Kodunuz: 123456 \"ğ\"");
    struct job j = {.id = "0190a000-0000-7000-8000-000000000003", .kind = "sms.send", .payload = payload,
                    .attempt = 1, .max_attempts = 3, .deadline_mono_ms = time_mono_ms() + 10000};
    struct buf result = BUF_INIT(4096), error = BUF_INIT(1024);
    assert_int_equal(sms_job_send(&j, &result, &error), JOB_OK);
    assert_int_equal(count_files(dir, ".json", path, sizeof(path)), 1);
    char *doc = slurp(path);
    json_t *o = NULL;
    size_t dl = strlen(doc);
    assert_int_equal(json_parse_strict(str_make(doc, dl - 1), &o, NULL), JSON_IN_OK);
    assert_string_equal(json_string_value(json_object_get(o, "to")), "+905551234567");
    assert_string_equal(json_string_value(json_object_get(o, "from")), "temel");
    assert_string_equal(json_string_value(json_object_get(o, "text")), "Kodunuz: 123456 \"ğ\"");
    int64_t ts;
    const char *ca = json_string_value(json_object_get(o, "created_at"));
    assert_non_null(ca);
    assert_int_equal(time_parse_rfc3339(str_c(ca), &ts), 0);
    json_decref(o);
    free(doc);
    json_decref(payload);
    payload = json_pack("{s:s,s:s}", "to", "12345", "text", "x");
    j.payload = payload;
    assert_int_equal(sms_job_send(&j, &result, &error), JOB_FAIL);
    json_decref(payload);
    buf_free(&result);
    buf_free(&error);
}

/* ---- a scripted SMTP server: replies to RCPT with `rcpt_reply` ---- */
struct smtp_srv {
    int lfd, port;
    const char *rcpt_reply;
    char data[16384];
    size_t dlen;
    pthread_t th;
};

static bool read_line(int c, char *line, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        char ch;
        if (recv(c, &ch, 1, 0) != 1)
            return false;
        line[n++] = ch;
        if (ch == '\n')
            break;
    }
    line[n] = '\0';
    return true;
}

static void say(int c, const char *s) { (void)!send(c, s, strlen(s), MSG_NOSIGNAL); }

static void *smtp_main(void *arg)
{
    struct smtp_srv *s = arg;
    int c = accept(s->lfd, NULL, NULL);
    char line[1024];
    bool in_data = false;
    if (c < 0)
        return NULL;
    say(c, "220 test ESMTP\r\n");
    while (read_line(c, line, sizeof(line))) {
        if (in_data) {
            if (!strcmp(line, ".\r\n")) {
                in_data = false;
                say(c, "250 queued\r\n");
                continue;
            }
            size_t l = strlen(line);
            if (s->dlen + l < sizeof(s->data)) {
                memcpy(s->data + s->dlen, line, l);
                s->dlen += l;
                s->data[s->dlen] = '\0';
            }
            continue;
        }
        if (!strncasecmp(line, "EHLO", 4))
            say(c, "250-test\r\n250 8BITMIME\r\n");
        else if (!strncasecmp(line, "MAIL FROM", 9))
            say(c, "250 ok\r\n");
        else if (!strncasecmp(line, "RCPT TO", 7))
            say(c, s->rcpt_reply);
        else if (!strncasecmp(line, "DATA", 4)) {
            in_data = true;
            say(c, "354 go\r\n");
        } else if (!strncasecmp(line, "QUIT", 4)) {
            say(c, "221 bye\r\n");
            break;
        } else
            say(c, "250 ok\r\n");
    }
    close(c);
    return NULL;
}

static void smtp_start(struct smtp_srv *s)
{
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    getsockname(s->lfd, (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.sin_port);
    pthread_create(&s->th, NULL, smtp_main, s);
}

static void smtp_stop(struct smtp_srv *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->th, NULL);
    close(s->lfd);
}

static enum job_result send_via(const char *url, const char *rcpt_reply, struct smtp_srv *s, struct buf *error)
{
    char u[256];
    json_t *payload = json_pack("{s:s,s:s,s:{s:i}}", "to", "ada@example.com", "template", "t_text", "vars", "n", 7);
    struct job j = {.id = "0190a000-0000-7000-8000-000000000004", .kind = "mail.send", .payload = payload,
                    .attempt = 1, .max_attempts = 3, .deadline_mono_ms = time_mono_ms() + 10000};
    struct buf result = BUF_INIT(4096);
    if (s) {
        s->rcpt_reply = rcpt_reply;
        smtp_start(s);
        snprintf(u, sizeof(u), url, s->port);
    } else {
        snprintf(u, sizeof(u), "%s", url);
    }
    delivery_configure(&(struct delivery_config){.mail_url = u, .mail_from = "noreply@example.com"});
    enum job_result r = mail_job_send(&j, &result, error);
    if (s)
        smtp_stop(s);
    json_decref(payload);
    buf_free(&result);
    return r;
}

static void t_smtp_outcomes(void **state)
{
    (void)state;
    struct buf error = BUF_INIT(1024);
    struct smtp_srv s = {0};
    assert_int_equal(send_via("smtp://127.0.0.1:%d", "250 ok\r\n", &s, &error), JOB_OK);
    assert_non_null(strstr(s.data, "Subject: Plain 7\r\n"));
    assert_non_null(strstr(s.data, "Only text 7"));
    memset(&s, 0, sizeof(s));
    buf_reset(&error);
    assert_int_equal(send_via("smtp://127.0.0.1:%d", "550 no such user\r\n", &s, &error), JOB_FAIL);
    assert_non_null(strstr(buf_cstr(&error), "550"));
    memset(&s, 0, sizeof(s));
    buf_reset(&error);
    assert_int_equal(send_via("smtp://127.0.0.1:%d", "451 try later\r\n", &s, &error), JOB_RETRY);
    assert_non_null(strstr(buf_cstr(&error), "451"));
    /* nothing listening: retry */
    int port;
    {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof(sa);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        getsockname(fd, (struct sockaddr *)&sa, &sl);
        port = ntohs(sa.sin_port);
        close(fd);
    }
    char u[128];
    snprintf(u, sizeof(u), "smtp://127.0.0.1:%d", port);
    buf_reset(&error);
    assert_int_equal(send_via(u, NULL, NULL, &error), JOB_RETRY);
    /* credentials require TLS: this server offers no STARTTLS, so nothing is sent in clear */
    memset(&s, 0, sizeof(s));
    buf_reset(&error);
    assert_int_equal(send_via("smtp://user:secret@127.0.0.1:%d", "250 ok\r\n", &s, &error), JOB_RETRY);
    assert_null(strstr(buf_cstr(&error), "secret"));
    assert_null(strstr(s.data, "Subject"));
    buf_free(&error);
}

static void t_split_userinfo(void **state)
{
    (void)state;
    char *u, *p, *b;
    assert_int_equal(delivery_split_userinfo("https://AC1:to%40k@api.twilio.com/x/y.json", &u, &p, &b), 0);
    assert_string_equal(u, "AC1");
    assert_string_equal(p, "to@k");
    assert_string_equal(b, "https://api.twilio.com/x/y.json");
    free(u), free(p), free(b);
    assert_int_equal(delivery_split_userinfo("smtp://mail.example.com:587", &u, &p, &b), 0);
    assert_null(u);
    assert_null(p);
    assert_string_equal(b, "smtp://mail.example.com:587");
    free(b);
    assert_int_equal(delivery_split_userinfo("smtp://a%00b:x@h", &u, &p, &b), -1);
    char *d = delivery_file_dir("file:///var/mail");
    assert_string_equal(d, "/var/mail");
    free(d);
    d = delivery_file_dir("file://data/mail");
    assert_string_equal(d, "data/mail");
    free(d);
    assert_null(delivery_file_dir("smtp://x"));
}

static void t_config(void **state)
{
    (void)state;
    struct delivery_config c = {0};
    struct buf err = BUF_INIT(512);
    static const char *const vars[] = {"TEMEL_MAIL_URL", "TEMEL_MAIL_FROM", "TEMEL_SMS_URL", "TEMEL_SMS_FROM",
                                       "TEMEL_OUTBOUND_ALLOW"};
    for (size_t i = 0; i < ARRAY_LEN(vars); i++)
        unsetenv(vars[i]);
    assert_int_equal(delivery_config_from_env(&c, "data", &err), 0);
    assert_string_equal(c.mail_url, "file://data/mail");
    assert_string_equal(c.sms_url, "file://data/sms");
    assert_string_equal(c.mail_from, "temel <noreply@localhost>");
    delivery_config_free(&c);
    static const struct {
        const char *var, *val;
    } bad[] = {
        {"TEMEL_MAIL_URL", "http://x"},        {"TEMEL_MAIL_URL", "file://"},
        {"TEMEL_MAIL_URL", "smtp://"},         {"TEMEL_MAIL_FROM", "not an address"},
        {"TEMEL_MAIL_FROM", "a@b.com\r\nX: y"}, {"TEMEL_SMS_URL", "ftp://x"},
        {"TEMEL_SMS_URL", "https://x/y"}, /* needs TEMEL_SMS_FROM: checked below */
        {"TEMEL_OUTBOUND_ALLOW", "10.0.0.0/99"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        setenv(bad[i].var, bad[i].val, 1);
        buf_reset(&err);
        if (delivery_config_from_env(&c, "data", &err) == 0)
            fail_msg("%s=%s accepted", bad[i].var, bad[i].val);
        const char *want = strstr(bad[i].val, "https://") ? "TEMEL_SMS_FROM" : bad[i].var;
        if (strncmp(buf_cstr(&err), want, strlen(want)) != 0)
            fail_msg("error '%s' does not name %s", buf_cstr(&err), bad[i].var);
        delivery_config_free(&c);
        unsetenv(bad[i].var);
    }
    setenv("TEMEL_SMS_URL", "https://SID:TOKEN@api.twilio.com/2010-04-01/Accounts/SID/Messages.json", 1);
    setenv("TEMEL_SMS_FROM", "+15550001111", 1);
    setenv("TEMEL_MAIL_URL", "smtps://u:p@smtp.example.com:465", 1);
    setenv("TEMEL_OUTBOUND_ALLOW", "10.0.0.0/8, hooks.internal", 1);
    assert_int_equal(delivery_config_from_env(&c, "data", &err), 0);
    delivery_config_free(&c);
    for (size_t i = 0; i < ARRAY_LEN(vars); i++)
        unsetenv(vars[i]);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_render),           cmocka_unit_test(t_rfc2047),
        cmocka_unit_test(t_addresses),        cmocka_unit_test(t_enqueue_refuses_injection),
        cmocka_unit_test(t_sms_numbers),      cmocka_unit_test(t_build),
        cmocka_unit_test(t_mail_job_file),    cmocka_unit_test(t_sms_job_file),
        cmocka_unit_test(t_smtp_outcomes),    cmocka_unit_test(t_split_userinfo),
        cmocka_unit_test(t_config),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
