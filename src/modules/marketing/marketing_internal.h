/*
 * marketing_internal.h — the email marketing module's private pieces
 * (only src/modules/marketing includes it).
 *
 * Files:
 *   marketing.c  descriptors (lists, subscribers, campaigns), the bulk
 *                import, send/schedule/cancel, stats, recipients, the module
 *   send.c       the "marketing.send" job (batches through one SMTP session,
 *                per-domain pacing, the commit point) and "marketing.confirm"
 *   track.c      signed tokens, the open pixel, click redirects,
 *                unsubscribe (RFC 8058 one-click) and opt-in confirmation
 *   links.c      href scanning: the links of a campaign, their rewriting
 */
#ifndef TEMEL_MARKETING_INTERNAL_H
#define TEMEL_MARKETING_INTERNAL_H

#include <jansson.h>

#include "core/buf.h"
#include "core/config.h"
#include "jobs/jobs.h"

struct req;

struct mk_config {
    char *base_url;      /* TEMEL_MARKETING_BASE_URL: origin of tracking/unsubscribe links, no trailing '/' */
    int64_t domain_rate; /* TEMEL_MARKETING_DOMAIN_RATE: messages per second per recipient domain (0 = unpaced) */
    int64_t batch;       /* TEMEL_MARKETING_BATCH: recipients read per batch */
    int64_t slice_ms;    /* TEMEL_MARKETING_SLICE_MS: one send job's time slice (its timeout) */
    int64_t max_attempts;/* TEMEL_MARKETING_MAX_ATTEMPTS: temporary failures per recipient before 'failed' */
};
const struct mk_config *mk__cfg(void);
int mk__config(const struct config *cfg, struct buf *err);

/* ---- tokens (track.c) ----
 * A token is base64url(id bytes [|| link index u16] || MAC[:12]) where the
 * MAC is HMAC-SHA256 under a key derived from the process secret over the
 * kind byte and the id bytes: tokens of one kind never pass as another. */
enum mk_tok { MK_TOK_OPEN = 'o', MK_TOK_CLICK = 'c', MK_TOK_UNSUB = 'u', MK_TOK_CONFIRM = 's' };
int mk__tokens_init(const struct config *cfg, struct buf *err);
/* Recipient tokens (open, click with link, unsubscribe): id is the recipient's integer id. */
void mk__token_rcpt(struct buf *out, enum mk_tok kind, int64_t rcpt_id, int link);
/* The confirmation token of a subscriber (UUID text id). */
void mk__token_sub(struct buf *out, str_t sub_id);
/* A URL under base_url: base + path + token. */
void mk__url(struct buf *out, const char *path, enum mk_tok kind, int64_t rcpt_id, int link);

/* ---- links (links.c) ----
 * fn is called for every href="..." / href='...' attribute value of html
 * (start/end offsets of the value in html). */
typedef void (*mk_href_fn)(void *ud, size_t start, size_t end);
void mk__href_scan(const char *html, mk_href_fn fn, void *ud);
/* The tracked links of html: unique http(s) href values (&amp; decoded,
 * values with "{{" left out), in order of appearance, as a JSON array text. */
void mk__links_json(const char *html, struct buf *out);
/* html with every href whose decoded value is links[i] replaced by the
 * click URL of rcpt_id and i. */
void mk__links_rewrite(const char *html, const json_t *links, int64_t rcpt_id, struct buf *out);

/* ---- jobs (send.c) ---- */
void mk__register_jobs(void);
/* Enqueue the send job of campaign id at run_at_ms (0 = now). 0 or a db_rc. */
int mk__enqueue_send(struct db *db, str_t campaign_id, int64_t run_at_ms) WARN_UNUSED;
/* Enqueue the confirmation mails of list id's pending subscribers. 0 or a db_rc. */
int mk__enqueue_confirm(struct db *db, str_t list_id) WARN_UNUSED;

/* ---- tracking routes (track.c) ---- */
void mk__register_track_routes(void);

#endif
