DROP INDEX credit_tx_plan;
ALTER TABLE credit_subscriptions DROP COLUMN payment_method;
ALTER TABLE credit_subscriptions DROP COLUMN stripe_customer;
ALTER TABLE credit_subscriptions DROP COLUMN ended_reason;
ALTER TABLE credit_subscriptions DROP COLUMN renewal_status;
ALTER TABLE credit_subscriptions DROP COLUMN cancel_at_period_end;
ALTER TABLE credit_subscriptions DROP COLUMN period_end;
ALTER TABLE credit_subscriptions DROP COLUMN period_start;
CREATE TABLE order_lines_keep AS SELECT * FROM order_lines;
DROP TABLE order_lines;
DELETE FROM orders WHERE kind = 'plan';
CREATE TABLE orders_old (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL DEFAULT 'goods' CHECK (kind IN ('goods', 'credits')),
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
    credits INTEGER
);
INSERT INTO orders_old SELECT id, version, user_id, kind, status, cancel_reason, currency, total, address, locale,
    stock_released, payment_intent, client_secret, payment_status, expires_at, paid_at, created_at, updated_at, credits
FROM orders;
DROP TABLE orders;
ALTER TABLE orders_old RENAME TO orders;
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
INSERT INTO order_lines SELECT * FROM order_lines_keep WHERE order_id IN (SELECT id FROM orders);
DROP TABLE order_lines_keep;
