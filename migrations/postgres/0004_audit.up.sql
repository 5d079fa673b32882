-- 0004 audit: the append-only, hash-chained audit log (API.md §12).
-- created_at is TIMESTAMPTZ (written with ms_ts(epoch ms), read with
-- ts_ms(); both from 0003, exact to the millisecond).
-- before_json/after_json are TEXT, not jsonb: they hold the exact canonical
-- JSON text that was hashed, and jsonb would re-normalise it.
-- actor_id has no foreign key on purpose: entries outlive the users they name.
CREATE TABLE audit_logs (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE CHECK (seq > 0),
    actor_id TEXT,
    action TEXT NOT NULL,
    category TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    before_json TEXT,
    after_json TEXT,
    ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    endpoint TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT '',
    success BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_logs_actor ON audit_logs (actor_id, seq);
CREATE INDEX audit_logs_target ON audit_logs (target_type, target_id, seq);
CREATE INDEX audit_logs_action ON audit_logs (action, seq);
CREATE INDEX audit_logs_category ON audit_logs (category, seq);
CREATE INDEX audit_logs_created ON audit_logs (created_at);

-- The head of the chain: one row, the last seq and hash. Appends lock it
-- (SELECT ... FOR UPDATE) and move it in the same transaction, which
-- serialises them and lets verify notice entries removed from the end.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only: no UPDATE, DELETE or TRUNCATE, and the head only moves
-- forward by one.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

CREATE FUNCTION audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.id <> OLD.id OR NEW.seq <> OLD.seq + 1 THEN
        RAISE EXCEPTION 'audit_head only moves forward by one' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_head_forward BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
