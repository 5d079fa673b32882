ALTER TABLE ai_providers DROP COLUMN cache_enabled;
