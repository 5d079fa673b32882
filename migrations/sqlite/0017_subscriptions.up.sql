-- 0017 paid plans as subscriptions (issue 11): an order of kind 'plan' pays one
-- period of a plan (orders.plan; orders.renewal for the ones the renewal job
-- charges off-session). SQLite cannot change a CHECK in place, so orders is
-- rebuilt (its lines are kept aside first: dropping orders would cascade to them).
CREATE TABLE order_lines_keep AS SELECT * FROM order_lines;
DROP TABLE order_lines;
CREATE TABLE orders_new (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL DEFAULT 'goods' CHECK (kind IN ('goods', 'credits', 'plan')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded')),
    cancel_reason TEXT,
    currency TEXT NOT NULL,
    total INTEGER NOT NULL CHECK (total >= 0),
    address TEXT,
    locale TEXT NOT NULL DEFAULT 'en',
    stock_released INTEGER NOT NULL DEFAULT 0,
    payment_intent TEXT UNIQUE,
    client_secret TEXT,
    payment_status TEXT,
    expires_at INTEGER,
    paid_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    credits INTEGER,
    plan TEXT,
    renewal INTEGER NOT NULL DEFAULT 0,
    CHECK ((kind = 'plan') = (plan IS NOT NULL))
);
INSERT INTO orders_new (id, version, user_id, kind, status, cancel_reason, currency, total, address, locale,
    stock_released, payment_intent, client_secret, payment_status, expires_at, paid_at, created_at, updated_at, credits)
SELECT id, version, user_id, kind, status, cancel_reason, currency, total, address, locale,
    stock_released, payment_intent, client_secret, payment_status, expires_at, paid_at, created_at, updated_at, credits
FROM orders;
DROP TABLE orders;
ALTER TABLE orders_new RENAME TO orders;
CREATE INDEX orders_user ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_status ON orders (status, created_at DESC, id DESC);
CREATE INDEX orders_expiry ON orders (expires_at) WHERE status = 'pending';
CREATE TABLE order_lines (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    product_id TEXT NOT NULL,
    name TEXT NOT NULL,
    unit_price INTEGER NOT NULL CHECK (unit_price >= 0),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    currency TEXT NOT NULL,
    line_total INTEGER NOT NULL CHECK (line_total >= 0),
    UNIQUE (order_id, position)
);
INSERT INTO order_lines SELECT * FROM order_lines_keep;
DROP TABLE order_lines_keep;

-- the subscription of a user (one row; plan 'free' when none is paid for)
ALTER TABLE credit_subscriptions ADD COLUMN period_start INTEGER;
ALTER TABLE credit_subscriptions ADD COLUMN period_end INTEGER;
ALTER TABLE credit_subscriptions ADD COLUMN cancel_at_period_end INTEGER NOT NULL DEFAULT 0;
ALTER TABLE credit_subscriptions ADD COLUMN renewal_status TEXT;
ALTER TABLE credit_subscriptions ADD COLUMN ended_reason TEXT;
ALTER TABLE credit_subscriptions ADD COLUMN stripe_customer TEXT;
ALTER TABLE credit_subscriptions ADD COLUMN payment_method TEXT;
-- a paid period's grant is made once (reference 'plan:<order id>')
CREATE UNIQUE INDEX credit_tx_plan ON credit_transactions (reference) WHERE type = 'grant' AND reference LIKE 'plan:%';
