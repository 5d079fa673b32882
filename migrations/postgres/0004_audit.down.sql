DROP TABLE IF EXISTS audit_head;
DROP TABLE IF EXISTS audit_logs;
DROP FUNCTION IF EXISTS audit_head_forward();
DROP FUNCTION IF EXISTS audit_append_only();
