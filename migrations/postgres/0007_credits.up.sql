-- 0007 credits: the ledger (API.md §4). Append-only log + per-user account.
-- No foreign key to users: financial records outlive a deleted account.
CREATE TABLE credit_accounts (
    user_id TEXT PRIMARY KEY,
    balance BIGINT NOT NULL DEFAULT 0,
    reserved BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL,
    CHECK (reserved >= 0),
    CHECK (balance - reserved >= 0)
);

-- the plan a user is on (not part of the ledger: choosing a plan moves no credit)
CREATE TABLE credit_subscriptions (
    user_id TEXT PRIMARY KEY,
    plan TEXT NOT NULL CHECK (plan IN ('free', 'pro', 'business')),
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE credit_transactions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('reserve', 'confirm', 'refund', 'grant', 'purchase', 'adjust')),
    amount BIGINT NOT NULL,
    reservation_id TEXT,
    reference TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    CHECK ((type IN ('confirm', 'refund')) = (reservation_id IS NOT NULL)),
    CHECK (type = 'adjust' OR amount > 0)
);
CREATE INDEX credit_tx_user ON credit_transactions (user_id, created_at);
CREATE UNIQUE INDEX credit_tx_settlement ON credit_transactions (reservation_id) WHERE reservation_id IS NOT NULL;
CREATE UNIQUE INDEX credit_tx_monthly ON credit_transactions (user_id, reference) WHERE type = 'grant' AND reference LIKE 'monthly:%';

CREATE FUNCTION credit_tx_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credit_transactions is append-only';
END $$;
CREATE TRIGGER credit_tx_no_change BEFORE UPDATE OR DELETE ON credit_transactions
    FOR EACH ROW EXECUTE FUNCTION credit_tx_append_only();
CREATE TRIGGER credit_tx_no_truncate BEFORE TRUNCATE ON credit_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION credit_tx_append_only();
