/*
 * links.c — the links of a campaign's HTML. A campaign's tracked links are
 * the http(s) values of its href attributes, fixed when the campaign is
 * written (campaigns.links); a click token carries an index into that list,
 * so /t/c/ can only ever redirect to a link the campaign's author wrote.
 */
#include <strings.h>

#include "core/json.h"
#include "modules/marketing/marketing_internal.h"

#include "core/banned.h"

#define MK_LINKS_MAX 200 /* tracked links per campaign; further ones stay untracked */

void mk__href_scan(const char *html, mk_href_fn fn, void *ud)
{
    const char *p = html;
    while ((p = strchr(p, '=')) != NULL) {
        /* the attribute name before '=' (spaces allowed around it) */
        const char *n = p;
        while (n > html && (n[-1] == ' ' || n[-1] == '\t' || n[-1] == '\n' || n[-1] == '\r'))
            n--;
        bool is_href = n - html >= 5 && strncasecmp(n - 4, "href", 4) == 0 &&
                       (n[-5] == ' ' || n[-5] == '\t' || n[-5] == '\n' || n[-5] == '\r');
        p++;
        if (!is_href)
            continue;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (*p != '"' && *p != '\'')
            continue;
        char q = *p++;
        const char *e = strchr(p, q);
        if (!e)
            return;
        fn(ud, (size_t)(p - html), (size_t)(e - html));
        p = e + 1;
    }
}

/* The link an attribute value stands for: &amp; decoded. NULL when it is
 * not a trackable http(s) URL. */
static void decode_value(str_t v, struct buf *out)
{
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] == '&' && v.len - i >= 5 && !memcmp(v.p + i, "&amp;", 5)) {
            (void)buf_putc(out, '&');
            i += 4;
        } else {
            (void)buf_putc(out, v.p[i]);
        }
    }
}

static bool trackable(str_t v)
{
    if (v.len > 2000 || memmem(v.p, v.len, "{{", 2))
        return false;
    if (!(v.len > 8 && !strncasecmp(v.p, "https://", 8)) && !(v.len > 7 && !strncasecmp(v.p, "http://", 7)))
        return false;
    for (size_t i = 0; i < v.len; i++)
        if ((unsigned char)v.p[i] <= ' ' || v.p[i] == '<' || v.p[i] == '>')
            return false;
    return true;
}

struct collect {
    const char *html;
    json_t *arr;
};

static void on_collect(void *ud, size_t s, size_t e)
{
    struct collect *c = ud;
    str_t v = str_make(c->html + s, e - s);
    if (!trackable(v) || json_array_size(c->arr) >= MK_LINKS_MAX)
        return;
    struct buf d = BUF_INIT(4096);
    decode_value(v, &d);
    for (size_t i = 0; i < json_array_size(c->arr); i++)
        if (!strcmp(json_string_value(json_array_get(c->arr, i)), buf_cstr(&d))) {
            buf_free(&d);
            return;
        }
    json_array_append_new(c->arr, json_stringn(buf_cstr(&d), d.len));
    buf_free(&d);
}

void mk__links_json(const char *html, struct buf *out)
{
    struct collect c = {html, json_array()};
    struct jw w;
    mk__href_scan(html, on_collect, &c);
    jw_init(&w, out);
    jw_json(&w, c.arr);
    json_decref(c.arr);
}

struct rewrite {
    const char *html;
    const json_t *links;
    int64_t rcpt;
    size_t done; /* html copied up to here */
    struct buf *out;
};

static void on_rewrite(void *ud, size_t s, size_t e)
{
    struct rewrite *rw = ud;
    str_t v = str_make(rw->html + s, e - s);
    if (!trackable(v))
        return;
    struct buf d = BUF_INIT(4096);
    decode_value(v, &d);
    for (size_t i = 0; i < json_array_size(rw->links); i++) {
        if (strcmp(json_string_value(json_array_get(rw->links, i)), buf_cstr(&d)))
            continue;
        (void)buf_append(rw->out, rw->html + rw->done, s - rw->done);
        mk__url(rw->out, "/t/c/", MK_TOK_CLICK, rw->rcpt, (int)i);
        rw->done = e;
        break;
    }
    buf_free(&d);
}

void mk__links_rewrite(const char *html, const json_t *links, int64_t rcpt_id, struct buf *out)
{
    struct rewrite rw = {html, links, rcpt_id, 0, out};
    mk__href_scan(html, on_rewrite, &rw);
    (void)buf_puts(out, html + rw.done);
}
