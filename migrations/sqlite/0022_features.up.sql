-- 0022 feature flags (API.md §12, issue 14 item 5): flags written by admins on
-- the resource engine; GET /features evaluates them for the caller. A flag is
-- on for a user when an override says so, else when it is enabled, the
-- user's role is listed (or no roles are), and the user's stable bucket
-- (a hash of key and user id, 0..99) is below rollout_percent.
-- Timestamps are integer UTC ms.
CREATE TABLE feature_flags (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    key TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 0,
    rollout_percent INTEGER NOT NULL DEFAULT 100 CHECK (rollout_percent BETWEEN 0 AND 100),
    roles TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE feature_overrides (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    flag_id TEXT NOT NULL REFERENCES feature_flags (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    enabled INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (flag_id, user_id)
);
CREATE INDEX feature_overrides_user ON feature_overrides (user_id);
