-- 0019 email marketing (API.md §10, issue 12 item 3): lists, subscribers,
-- campaigns, per-recipient delivery and tracking, the global suppression list.
-- Resource-engine tables (email_lists, email_subscribers, campaigns) follow
-- src/resource/resource.h; times are integer UTC ms.
CREATE TABLE email_lists (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    double_opt_in INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX email_lists_owner ON email_lists (owner_id, created_at);

CREATE TABLE email_subscribers (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    list_id TEXT NOT NULL REFERENCES email_lists (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced')),
    confirm_sent_at INTEGER,
    confirmed_at INTEGER,
    unsubscribed_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (list_id, email)
);
CREATE INDEX email_subscribers_list ON email_subscribers (list_id, status, created_at);
CREATE INDEX email_subscribers_confirm ON email_subscribers (list_id, confirm_sent_at) WHERE status = 'pending';

-- An address here is never mailed by any campaign again.
CREATE TABLE email_suppressions (
    email TEXT PRIMARY KEY,
    reason TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'bounced')),
    campaign_id TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    list_id TEXT NOT NULL REFERENCES email_lists (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    subject TEXT NOT NULL,
    html TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'scheduled', 'sending', 'sent', 'cancelled')),
    links TEXT NOT NULL DEFAULT '[]',
    scheduled_at INTEGER,
    started_at INTEGER,
    finished_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX campaigns_owner ON campaigns (owner_id, created_at);
CREATE INDEX campaigns_list ON campaigns (list_id);

CREATE TABLE campaign_recipients (
    id INTEGER PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    subscriber_id TEXT REFERENCES email_subscribers (id) ON DELETE SET NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed', 'bounced', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at_ms INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    sent_at INTEGER,
    opened_at INTEGER,
    open_count INTEGER NOT NULL DEFAULT 0,
    clicked_at INTEGER,
    click_count INTEGER NOT NULL DEFAULT 0,
    unsubscribed_at INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (campaign_id, email)
);
CREATE INDEX campaign_recipients_work ON campaign_recipients (campaign_id, state, next_at_ms);
