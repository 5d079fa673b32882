-- 0023 outbound webhooks (issue 14 item 5, API.md §12): endpoints an admin registers for
-- platform events, and one delivery row per (event, endpoint) that the webhook.deliver job
-- updates after every attempt. The secret is sealed (crypto_secretbox, hex) — it must be
-- readable to sign, so it is encrypted, not hashed.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    url TEXT NOT NULL,
    events TEXT NOT NULL,            -- JSON array of event names
    secret_sealed TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    active INTEGER NOT NULL DEFAULT 1,
    created_by TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX webhooks_created ON webhooks (created_at DESC, id DESC);
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,          -- the same for every endpoint and every redelivery of one event
    event TEXT NOT NULL,
    payload TEXT NOT NULL,           -- the exact bytes that are signed and sent
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'retrying', 'succeeded', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    response_status INTEGER,
    error TEXT,
    duration_ms INTEGER,
    job_id TEXT,
    redelivery_of TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
