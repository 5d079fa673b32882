DROP TABLE ai_flags;
DROP TABLE ai_suspicion;
DROP TABLE ai_cache;
DROP TABLE ai_requests;
DROP TABLE ai_provider_keys;
DROP TABLE ai_models;
DROP TABLE ai_providers;
