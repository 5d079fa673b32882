-- 0027 social publishing (API.md §10, issue 12 item 5): accounts on a network
-- with their access token sealed at rest (core/secret.h), and posts published
-- by the job queue at their scheduled time. Times are timestamptz.
CREATE TABLE social_accounts (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    network TEXT NOT NULL CHECK (network IN ('mastodon', 'x')),
    name TEXT NOT NULL,
    instance_url TEXT,
    token_sealed TEXT NOT NULL,
    token_hint TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX social_accounts_owner ON social_accounts (owner_id, created_at);

CREATE TABLE social_posts (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES social_accounts (id) ON DELETE CASCADE,
    network TEXT NOT NULL,
    text TEXT NOT NULL,
    media TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'scheduled', 'published', 'failed')),
    scheduled_at TIMESTAMPTZ,
    published_at TIMESTAMPTZ,
    network_post_id TEXT,
    network_url TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX social_posts_owner ON social_posts (owner_id, created_at);
CREATE INDEX social_posts_account ON social_posts (account_id, status);
