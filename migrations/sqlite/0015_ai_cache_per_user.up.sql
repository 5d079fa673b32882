-- 0015 AI response cache per user (issue 15 item 4). Keys are now
-- SHA-256(user id, input hash) (src/modules/ai/provider.c ai__cache_key):
-- the old entries, keyed by the input alone and shared by every user, can
-- never be hit again and are removed. cache_enabled: an admin turns a
-- provider's cache off (PATCH /api/v1/admin/ai/providers/{id} {"cache"}).
DELETE FROM ai_cache;
ALTER TABLE ai_providers ADD COLUMN cache_enabled INTEGER NOT NULL DEFAULT 1;
