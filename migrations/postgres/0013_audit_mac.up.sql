-- 0013 audit MAC (issue 9 item 13): a keyed HMAC-SHA256 beside each entry's
-- SHA-256 hash, and one over the head (src/modules/audit/audit.h). Entries
-- written before this migration keep mac NULL: link version 1 (hash only),
-- a prefix of the chain covered by the first keyed entry's MAC over its
-- prev_hash. The append-only triggers stay as they are (an INSERT sets mac).
ALTER TABLE audit_logs ADD COLUMN mac TEXT;
ALTER TABLE audit_head ADD COLUMN mac TEXT;
