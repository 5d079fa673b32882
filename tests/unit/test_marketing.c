/*
 * test_marketing.c — the marketing module's internal pieces: href scanning,
 * the tracked links of a campaign (dedupe, &amp;, what is never tracked, the
 * bound of 200 and one past), link rewriting into signed click URLs; and the
 * transport's extra header lines (List-Unsubscribe) refusing injection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/config.h"
#include "modules/marketing/marketing_internal.h"
#include "transport/mail.h"

#include "core/banned.h"

static int setup(void **state)
{
    (void)state;
    struct config cfg = {0};
    struct buf err = BUF_INIT(256);
    cfg.port = 8080;
    cfg.secret_key = (char *)"unit-test-secret-0123456789abcdef0123";
    cfg.data_dir = (char *)"data";
    setenv("TEMEL_MARKETING_BASE_URL", "https://m.example/", 1);
    assert_int_equal(mk__config(&cfg, &err), 0);
    assert_int_equal(mk__tokens_init(&cfg, &err), 0);
    buf_free(&err);
    return 0;
}

struct seen {
    const char *html;
    struct buf out;
};

static void on_href(void *ud, size_t s, size_t e)
{
    struct seen *v = ud;
    (void)buf_append(&v->out, v->html + s, e - s);
    (void)buf_putc(&v->out, '|');
}

static void t_href_scan(void **state)
{
    (void)state;
    struct seen v = {"<a href=\"a\">x</a><A HREF = 'b'>y</A><div data-href=\"c\"></div><a href=d>z</a>"
                     "<a\nhref=\"e\"></a><a href=\"unclosed",
                     BUF_INIT(256)};
    mk__href_scan(v.html, on_href, &v);
    assert_string_equal(buf_cstr(&v.out), "a|b|e|");
    buf_free(&v.out);
}

static void t_links(void **state)
{
    (void)state;
    struct buf out = BUF_INIT(1u << 20);
    mk__links_json("<a href=\"https://s.example/a?x=1&amp;y=2\">1</a><a href=\"mailto:x@example.com\">m</a>"
                   "<a href=\"https://s.example/a?x=1&y=2\">same</a><a href=\"http://s.example/b\">2</a>"
                   "<a href=\"https://s.example/{{name}}\">var</a><a href=\"javascript:alert(1)\">j</a>"
                   "<a href=\"/relative\">r</a>",
                   &out);
    assert_string_equal(buf_cstr(&out), "[\"https://s.example/a?x=1&y=2\",\"http://s.example/b\"]");
    buf_free(&out);
}

/* The bound: 200 tracked links; the 201st stays untracked. */
static void t_links_bound(void **state)
{
    (void)state;
    struct buf html = BUF_INIT(1u << 20), out = BUF_INIT(1u << 20);
    for (int i = 0; i < 201; i++)
        (void)buf_printf(&html, "<a href=\"https://s.example/%d\">%d</a>", i, i);
    mk__links_json(buf_cstr(&html), &out);
    json_t *a = json_loads(buf_cstr(&out), 0, NULL);
    assert_non_null(a);
    assert_int_equal(json_array_size(a), 200);
    assert_string_equal(json_string_value(json_array_get(a, 199)), "https://s.example/199");
    json_decref(a);
    buf_free(&html);
    buf_free(&out);
}

static void t_rewrite(void **state)
{
    (void)state;
    json_t *links = json_pack("[s, s]", "https://s.example/a?x=1&y=2", "http://s.example/b");
    struct buf out = BUF_INIT(1u << 20), want = BUF_INIT(4096);
    mk__links_rewrite("<p><a href=\"https://s.example/a?x=1&amp;y=2\">1</a> <a href='http://s.example/b'>2</a>"
                      " <a href=\"https://other.example/\">3</a></p>",
                      links, 42, &out);
    (void)buf_puts(&want, "<p><a href=\"");
    mk__url(&want, "/t/c/", MK_TOK_CLICK, 42, 0);
    (void)buf_puts(&want, "\">1</a> <a href='");
    mk__url(&want, "/t/c/", MK_TOK_CLICK, 42, 1);
    (void)buf_puts(&want, "'>2</a> <a href=\"https://other.example/\">3</a></p>");
    assert_string_equal(buf_cstr(&out), buf_cstr(&want));
    assert_non_null(strstr(buf_cstr(&out), "https://m.example/t/c/")); /* the trailing '/' of the base is dropped */
    /* tokens differ by recipient and by link */
    struct buf a = BUF_INIT(256), b = BUF_INIT(256), c = BUF_INIT(256);
    mk__token_rcpt(&a, MK_TOK_CLICK, 42, 0);
    mk__token_rcpt(&b, MK_TOK_CLICK, 43, 0);
    mk__token_rcpt(&c, MK_TOK_CLICK, 42, 1);
    assert_string_not_equal(buf_cstr(&a), buf_cstr(&b));
    assert_string_not_equal(buf_cstr(&a), buf_cstr(&c));
    json_decref(links);
    buf_free(&out);
    buf_free(&want);
    buf_free(&a);
    buf_free(&b);
    buf_free(&c);
}

static void t_extra_headers(void **state)
{
    (void)state;
    static const char *const bad[] = {"List-Unsubscribe: <x>",            /* no CRLF */
                                      "List-Unsubscribe: <x>\nBcc: a@b.c\r\n", /* bare LF */
                                      "List Unsubscribe: <x>\r\n",        /* space in the name */
                                      ": x\r\n",                           /* no name */
                                      "X-A:x\r\n",                         /* no space after ':' */
                                      "X-A: caf\xc3\xa9\r\n",              /* not ASCII */
                                      NULL};
    struct mail_message m = {.from = "News <news@example.com>", .to = "a@example.org", .subject = "s",
                             .text = "t"};
    for (const char *const *h = bad; *h; h++) {
        struct buf out = BUF_INIT(1u << 20), err = BUF_INIT(256);
        m.extra_headers = *h;
        assert_int_equal(mail_build(&m, &out, &err), -1);
        buf_free(&out);
        buf_free(&err);
    }
    struct buf out = BUF_INIT(1u << 20), err = BUF_INIT(256);
    m.extra_headers = "List-Unsubscribe: <https://m.example/unsubscribe/x>\r\n"
                      "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";
    assert_int_equal(mail_build(&m, &out, &err), 0);
    assert_non_null(strstr(buf_cstr(&out), "\r\nList-Unsubscribe: <https://m.example/unsubscribe/x>\r\n"
                                           "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
    buf_free(&out);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_href_scan),   cmocka_unit_test(t_links),         cmocka_unit_test(t_links_bound),
        cmocka_unit_test(t_rewrite),     cmocka_unit_test(t_extra_headers),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
