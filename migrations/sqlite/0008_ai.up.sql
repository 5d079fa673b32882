-- 0008 ai: the AI proxy (API.md §5, §12 anti-abuse, src/modules/ai).
-- Timestamps are UTC epoch ms here and timestamptz on PostgreSQL (ARCHITECTURE §2).

-- upstream providers; kind names the wire format
CREATE TABLE ai_providers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('openai', 'anthropic', 'gemini')),
    base_url TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- public model name -> provider + upstream model; prices in micro-USD per 1000 tokens
CREATE TABLE ai_models (
    name TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES ai_providers (id) ON DELETE CASCADE,
    upstream TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    price_in INTEGER NOT NULL DEFAULT 0 CHECK (price_in >= 0),
    price_out INTEGER NOT NULL DEFAULT 0 CHECK (price_out >= 0)
);
CREATE INDEX ai_models_provider ON ai_models (provider_id);

-- provider API keys, encrypted (hex of secretbox nonce || box); never returned
CREATE TABLE ai_provider_keys (
    id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES ai_providers (id) ON DELETE CASCADE,
    label TEXT NOT NULL DEFAULT '',
    secret TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    retired_reason TEXT,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);
CREATE INDEX ai_provider_keys_provider ON ai_provider_keys (provider_id, status, id);

-- one row per AI request; id = the "ai.run" job id (or a fresh id for a cache hit at submit)
CREATE TABLE ai_requests (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    operation TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'succeeded', 'failed', 'cancelled')),
    priority INTEGER NOT NULL DEFAULT 1,
    input TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    reservation_id TEXT,
    cost INTEGER NOT NULL DEFAULT 0,          -- credits reserved (charged only when succeeded and not cached)
    cached INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    usd_micros INTEGER NOT NULL DEFAULT 0,
    latency_ms INTEGER,
    created_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX ai_requests_user ON ai_requests (user_id, created_at);
CREATE INDEX ai_requests_user_hash ON ai_requests (user_id, input_hash, created_at);
CREATE INDEX ai_requests_created ON ai_requests (created_at);
CREATE INDEX ai_requests_latency ON ai_requests (model, latency_ms) WHERE latency_ms IS NOT NULL;

-- response cache: key = SHA-256 of operation, model and canonical input
CREATE TABLE ai_cache (
    key TEXT PRIMARY KEY,
    result TEXT NOT NULL,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX ai_cache_expires ON ai_cache (expires_at);

-- anti-abuse: the latest suspicion score per user, and flags past the threshold
CREATE TABLE ai_suspicion (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    score INTEGER NOT NULL,
    signals TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE ai_flags (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    score INTEGER NOT NULL,
    signals TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX ai_flags_open ON ai_flags (user_id) WHERE status = 'open';
CREATE INDEX ai_flags_created ON ai_flags (created_at);
