-- 0016 credit packs (issue 11 item 3): packs of AI credits sold for money (admin CRUD,
-- public read); an order of kind 'credits' remembers how many credits it buys (orders.credits),
-- added to the ledger as a 'purchase' when the order is paid.
CREATE TABLE credit_packs (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    name TEXT NOT NULL,
    credits INTEGER NOT NULL CHECK (credits > 0),
    price INTEGER NOT NULL CHECK (price > 0),
    currency TEXT NOT NULL DEFAULT 'TRY',
    active INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX credit_packs_created ON credit_packs (created_at DESC, id DESC);
ALTER TABLE orders ADD COLUMN credits INTEGER;
