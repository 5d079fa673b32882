-- 0007 credits: the ledger (API.md §4). Append-only log + per-user account.
-- No foreign key to users: financial records outlive a deleted account.
CREATE TABLE credit_accounts (
    user_id TEXT PRIMARY KEY,
    balance INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    CHECK (reserved >= 0),
    CHECK (balance - reserved >= 0)
);

-- the plan a user is on (not part of the ledger: choosing a plan moves no credit)
CREATE TABLE credit_subscriptions (
    user_id TEXT PRIMARY KEY,
    plan TEXT NOT NULL CHECK (plan IN ('free', 'pro', 'business')),
    updated_at INTEGER NOT NULL
);

CREATE TABLE credit_transactions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('reserve', 'confirm', 'refund', 'grant', 'purchase', 'adjust')),
    amount INTEGER NOT NULL,
    reservation_id TEXT,          -- confirm/refund: the reserve row they settle
    reference TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    CHECK ((type IN ('confirm', 'refund')) = (reservation_id IS NOT NULL)),
    CHECK (type = 'adjust' OR amount > 0)
);
CREATE INDEX credit_tx_user ON credit_transactions (user_id, created_at);
-- exactly once: a reservation is settled by at most one confirm or refund
CREATE UNIQUE INDEX credit_tx_settlement ON credit_transactions (reservation_id) WHERE reservation_id IS NOT NULL;
-- a monthly plan grant happens once per user and month
CREATE UNIQUE INDEX credit_tx_monthly ON credit_transactions (user_id, reference) WHERE type = 'grant' AND reference LIKE 'monthly:%';

CREATE TRIGGER credit_tx_no_update BEFORE UPDATE ON credit_transactions
BEGIN SELECT RAISE(ABORT, 'credit_transactions is append-only'); END;
CREATE TRIGGER credit_tx_no_delete BEFORE DELETE ON credit_transactions
BEGIN SELECT RAISE(ABORT, 'credit_transactions is append-only'); END;
