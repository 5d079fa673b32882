-- 0014 orders (API.md §9, issue 11): orders with line snapshots (name in the
-- request's language, unit price, quantity, currency at the time of the order),
-- totals in minor units, the Stripe PaymentIntent of an order, and the Stripe
-- events applied (each event id once). Timestamps are integer UTC ms.
-- stock_released is set by the one transaction that gives the order's stock
-- back (cancel or expiry): the status change is conditional, so it happens once.
CREATE TABLE orders (
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
    updated_at INTEGER NOT NULL
);
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

CREATE TABLE stripe_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    order_id TEXT,
    created_at INTEGER NOT NULL
);
