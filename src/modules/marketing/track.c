/*
 * track.c — what a mailed link reaches (root paths, no authentication: the
 * signed token is the credential):
 *
 *   GET  /t/o/{token}.gif        open pixel: 1×1 GIF; first open time and count
 *   GET  /t/c/{token}            click: 302 to the campaign's own link number n,
 *                                anything else 404 (never an open redirect)
 *   GET  /unsubscribe/{token}    unsubscribe (page), POST: RFC 8058 one-click
 *   GET  /subscribe/confirm/{token}  double opt-in confirmation
 *
 * Tokens (marketing_internal.h) are MACed with a key derived from the
 * process secret; a forged or altered token is a 404 like a missing row.
 * Unsubscribing puts the address on email_suppressions: no campaign of any
 * list mails it again (send.c checks at materialisation and at the commit
 * point).
 */
#include <sodium.h>

#include "auth/crypto.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "http/http.h"
#include "modules/marketing/marketing_internal.h"

#include "core/banned.h"

#define MK_MAC_LEN 12

static unsigned char g_key[crypto_auth_hmacsha256_KEYBYTES];

int mk__tokens_init(const struct config *cfg, struct buf *err)
{
    if (sodium_init() < 0) {
        (void)buf_puts(err, "libsodium: initialisation failed");
        return -1;
    }
    return secret_derive(cfg, "temel.marketing.tracking-tokens.v1", g_key, err);
}

static void mac(char kind, const unsigned char *p, size_t n, unsigned char out[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    unsigned char k = (unsigned char)kind;
    crypto_auth_hmacsha256_init(&st, g_key, sizeof(g_key));
    crypto_auth_hmacsha256_update(&st, &k, 1);
    crypto_auth_hmacsha256_update(&st, p, n);
    crypto_auth_hmacsha256_final(&st, out);
}

static void token(struct buf *out, char kind, const unsigned char *p, size_t n)
{
    unsigned char raw[32 + MK_MAC_LEN], m[crypto_auth_hmacsha256_BYTES];
    memcpy(raw, p, n);
    mac(kind, p, n, m);
    memcpy(raw + n, m, MK_MAC_LEN);
    b64url_encode(out, raw, n + MK_MAC_LEN);
}

/* Decode and verify: the id bytes (n of them) into p. false when forged. */
static bool token_open(str_t t, char kind, unsigned char *p, size_t n)
{
    unsigned char raw[64], m[crypto_auth_hmacsha256_BYTES];
    if (t.len > 80 || b64url_decode(t, raw, sizeof(raw)) != (long)(n + MK_MAC_LEN))
        return false;
    mac(kind, raw, n, m);
    if (sodium_memcmp(m, raw + n, MK_MAC_LEN))
        return false;
    memcpy(p, raw, n);
    return true;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

void mk__token_rcpt(struct buf *out, enum mk_tok kind, int64_t rcpt_id, int link)
{
    unsigned char p[10];
    put_u64(p, (uint64_t)rcpt_id);
    p[8] = (unsigned char)(link >> 8);
    p[9] = (unsigned char)link;
    token(out, (char)kind, p, kind == MK_TOK_CLICK ? 10 : 8);
}

void mk__token_sub(struct buf *out, str_t sub_id)
{
    uint8_t u[16];
    if (uuid_parse(sub_id, u))
        BUG("subscriber id is not a UUID");
    token(out, MK_TOK_CONFIRM, u, sizeof(u));
}

void mk__url(struct buf *out, const char *path, enum mk_tok kind, int64_t rcpt_id, int link)
{
    (void)buf_puts(out, mk__cfg()->base_url);
    (void)buf_puts(out, path);
    mk__token_rcpt(out, kind, rcpt_id, link);
    if (kind == MK_TOK_OPEN)
        (void)buf_puts(out, ".gif");
}

/* The recipient id of a token of kind, or -1 (and *link for clicks). */
static int64_t rcpt_of(str_t t, enum mk_tok kind, int *link)
{
    unsigned char p[10];
    if (!token_open(t, (char)kind, p, kind == MK_TOK_CLICK ? 10 : 8))
        return -1;
    if (link)
        *link = p[8] << 8 | p[9];
    uint64_t id = get_u64(p);
    return id > INT64_MAX ? -1 : (int64_t)id;
}

static int not_found(struct req *r) { return http_fail(r, 404, "NOT_FOUND", "no such link"); }

/* ---- open pixel ---- */

static const unsigned char gif1x1[] = {0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00,
                                       0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00,
                                       0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
                                       0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b};

static int h_open(struct req *r)
{
    str_t f = req_param(r, "file");
    if (f.len < 5 || memcmp(f.p + f.len - 4, ".gif", 4))
        return not_found(r);
    int64_t id = rcpt_of(str_make(f.p, f.len - 4), MK_TOK_OPEN, NULL), n = 0;
    if (id < 0)
        return not_found(r);
    int rc = db_exec(r->db,
                     "UPDATE campaign_recipients SET open_count = open_count + 1, "
                     "opened_at = coalesce(opened_at, ms_ts(?)) WHERE id = ?",
                     DB_ARGS(DBA_INT(time_now_ms()), DBA_INT(id)), &n);
    if (rc)
        return http_db_fail(r, rc);
    if (n == 0)
        return not_found(r);
    (void)buf_append(&r->out, gif1x1, sizeof(gif1x1));
    r->content_type = "image/gif";
    req_header(r, "cache-control", STRLIT("no-store, no-cache, must-revalidate, private"));
    return 0;
}

/* ---- click ---- */

static int h_click(struct req *r)
{
    int link = 0;
    int64_t id = rcpt_of(req_param(r, "token"), MK_TOK_CLICK, &link);
    if (id < 0)
        return not_found(r);
    struct db_res *res = NULL;
    int rc = db_query(r->db,
                      "SELECT c.links FROM campaign_recipients cr JOIN campaigns c ON c.id = cr.campaign_id "
                      "WHERE cr.id = ?",
                      DB_ARGS(DBA_INT(id)), &res);
    if (rc)
        return http_db_fail(r, rc);
    json_t *links = NULL;
    if ((rc = db_next(res)) == 1)
        links = json_loads(db_text(res, 0).p, 0, NULL);
    db_res_free(res);
    if (rc < 0) {
        json_decref(links);
        return http_db_fail(r, rc);
    }
    const char *to = json_string_value(json_array_get(links, (size_t)link));
    if (!to) {
        json_decref(links);
        return not_found(r);
    }
    str_t loc = str_make(to, strlen(to));
    req_header(r, "location", loc); /* copied into the pool */
    json_decref(links);
    rc = db_exec(r->db,
                 "UPDATE campaign_recipients SET click_count = click_count + 1, "
                 "clicked_at = coalesce(clicked_at, ms_ts(?)) WHERE id = ?",
                 DB_ARGS(DBA_INT(time_now_ms()), DBA_INT(id)), NULL);
    if (rc)
        return http_db_fail(r, rc);
    r->status = 302;
    r->content_type = "text/plain; charset=utf-8";
    return 0;
}

/* ---- unsubscribe ---- */

static void page(struct req *r, const char *title, const char *text)
{
    (void)buf_printf(&r->out,
                     "<!doctype html><html><head><meta charset=\"utf-8\"><title>%s</title></head>"
                     "<body><h1>%s</h1><p>%s</p></body></html>\n",
                     title, title, text);
    r->content_type = "text/html; charset=utf-8";
}

struct unsub {
    int64_t id;
    bool found;
};

static int tx_unsub(struct req *r, void *arg)
{
    struct unsub *u = arg;
    int64_t now = time_now_ms();
    struct db_res *res = NULL;
    int rc = db_query(r->db, "SELECT email, campaign_id FROM campaign_recipients WHERE id = ?",
                      DB_ARGS(DBA_INT(u->id)), &res);
    if (rc)
        return rc;
    if ((rc = db_next(res)) != 1) {
        db_res_free(res);
        return rc;
    }
    u->found = true;
    struct buf email = BUF_INIT(512), camp = BUF_INIT(64);
    (void)buf_put(&email, db_text(res, 0));
    (void)buf_put(&camp, db_text(res, 1));
    db_res_free(res);
    rc = db_exec(r->db, "UPDATE campaign_recipients SET unsubscribed_at = coalesce(unsubscribed_at, ms_ts(?)) WHERE id = ?",
                 DB_ARGS(DBA_INT(now), DBA_INT(u->id)), NULL);
    if (rc == DB_OK)
        rc = db_exec(r->db,
                     "UPDATE email_subscribers SET status = 'unsubscribed', unsubscribed_at = ms_ts(?), "
                     "updated_at = ms_ts(?), version = version + 1 WHERE email = ? AND status <> 'unsubscribed'",
                     DB_ARGS(DBA_INT(now), DBA_INT(now), DBA_TEXT(buf_str(&email))), NULL);
    if (rc == DB_OK)
        rc = db_exec(r->db,
                     "INSERT INTO email_suppressions (email, reason, campaign_id, created_at) "
                     "VALUES (?, 'unsubscribed', ?, ms_ts(?)) ON CONFLICT (email) DO NOTHING",
                     DB_ARGS(DBA_TEXT(buf_str(&email)), DBA_TEXT(buf_str(&camp)), DBA_INT(now)), NULL);
    buf_free(&email);
    buf_free(&camp);
    return rc;
}

static int unsubscribe(struct req *r)
{
    struct unsub u = {rcpt_of(req_param(r, "token"), MK_TOK_UNSUB, NULL), false};
    if (u.id < 0)
        return not_found(r);
    if (req_tx(r, DB_TX_WRITE, tx_unsub, &u))
        return HTTP_EFAIL;
    if (!u.found)
        return not_found(r);
    return 0;
}

static int h_unsub_get(struct req *r)
{
    if (unsubscribe(r))
        return HTTP_EFAIL;
    page(r, "Unsubscribed", "You will not receive these emails any more.");
    return 0;
}

/* RFC 8058: the body is "List-Unsubscribe=One-Click" (form-encoded); the
 * token in the URL is what identifies the recipient, so the body is only
 * checked for being that form when one is sent. */
static int h_unsub_post(struct req *r)
{
    str_t b = r->entity;
    if (b.len && !str_is(b, "List-Unsubscribe=One-Click"))
        return http_fail(r, 400, "BAD_REQUEST", "the body must be List-Unsubscribe=One-Click (RFC 8058)");
    if (unsubscribe(r))
        return HTTP_EFAIL;
    page(r, "Unsubscribed", "You will not receive these emails any more.");
    return 0;
}

/* ---- double opt-in ---- */

static int h_confirm(struct req *r)
{
    uint8_t u[16];
    char id[UUID_STR_LEN + 1];
    if (!token_open(req_param(r, "token"), MK_TOK_CONFIRM, u, sizeof(u)))
        return not_found(r);
    uuid_format(u, id);
    int64_t now = time_now_ms(), n = 0;
    int rc = db_exec(r->db,
                     "UPDATE email_subscribers SET status = 'active', confirmed_at = ms_ts(?), updated_at = ms_ts(?), "
                     "version = version + 1 WHERE id = ? AND status = 'pending'",
                     DB_ARGS(DBA_INT(now), DBA_INT(now), DBA_CSTR(id)), &n);
    if (rc)
        return http_db_fail(r, rc);
    if (n == 0) {
        bool found = false;
        int64_t one;
        if ((rc = db_query_int(r->db, "SELECT 1 FROM email_subscribers WHERE id = ?", DB_ARGS(DBA_CSTR(id)), &one,
                               &found)))
            return http_db_fail(r, rc);
        if (!found)
            return not_found(r);
    }
    page(r, "Subscription confirmed", "Thank you: your address is confirmed.");
    return 0;
}

static struct route routes[] = {
    {.method = "GET", .pattern = "/t/o/{file}", .handler = h_open, .auth = AUTH_NONE, .rl = RL_READ,
     .summary = "Open pixel of a campaign mail ({token}.gif): a 1x1 GIF; records the open", .tag = "marketing",
     .output_type = "image/gif", .output = OPENAPI_JSON({"type" : "string", "format" : "binary", "description" : "a 1x1 transparent GIF"})},
    {.method = "GET", .pattern = "/t/c/{token}", .handler = h_click, .auth = AUTH_NONE, .rl = RL_READ,
     .summary = "Click on a campaign link: 302 to that link of the campaign (signed; else 404)", .tag = "marketing",
     .status = 302},
    {.method = "GET", .pattern = "/unsubscribe/{token}", .handler = h_unsub_get, .auth = AUTH_NONE, .rl = RL_WRITE,
     .summary = "Unsubscribe the recipient of a campaign mail from every campaign", .tag = "marketing",
     .output_type = "text/html", .output = OPENAPI_JSON({"type" : "string", "description" : "a short HTML page saying what happened"})},
    {.method = "POST", .pattern = "/unsubscribe/{token}", .handler = h_unsub_post, .auth = AUTH_NONE,
     .rl = RL_WRITE, .flags = ROUTE_RAW_BODY, .body_max = 256,
     .summary = "RFC 8058 one-click unsubscribe (body List-Unsubscribe=One-Click)", .tag = "marketing",
     .raw_body = OPENAPI_JSON({"application/x-www-form-urlencoded" : {"schema" : {"type" : "object", "properties" : {"List-Unsubscribe" : {"type" : "string", "enum" : ["One-Click"]}}}}}),
     .output_type = "text/html", .output = OPENAPI_JSON({"type" : "string", "description" : "a short HTML page saying what happened"})},
    {.method = "GET", .pattern = "/subscribe/confirm/{token}", .handler = h_confirm, .auth = AUTH_NONE,
     .rl = RL_WRITE, .summary = "Confirm a subscription (double opt-in link)", .tag = "marketing",
     .output_type = "text/html", .output = OPENAPI_JSON({"type" : "string", "description" : "a short HTML page saying what happened"})},
};

void mk__register_track_routes(void) { router_add(routes, ARRAY_LEN(routes)); }
