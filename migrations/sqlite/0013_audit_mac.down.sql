ALTER TABLE audit_head DROP COLUMN mac;
ALTER TABLE audit_logs DROP COLUMN mac;
