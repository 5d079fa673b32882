-- 0031 paid events (issue 12 item 1): registering for an event with a price
-- makes an order of kind 'event' (orders.event_id) and a 'pending' registration
-- (event_registrations.order_id) that holds its seat until the order is paid
-- (confirmed), cancelled or expired (the seat goes back).
-- SQLite cannot change a CHECK in place: orders and event_registrations are
-- rebuilt (order lines are kept aside first: dropping orders would cascade).
CREATE TABLE order_lines_keep AS SELECT * FROM order_lines;
DROP TABLE order_lines;
CREATE TABLE orders_new (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL DEFAULT 'goods' CHECK (kind IN ('goods', 'credits', 'plan', 'event')),
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
    company_id TEXT,
    event_id TEXT,
    CHECK ((kind = 'plan') = (plan IS NOT NULL)),
    CHECK ((kind = 'event') = (event_id IS NOT NULL))
);
INSERT INTO orders_new (id, version, user_id, kind, status, cancel_reason, currency, total, address, locale,
    stock_released, payment_intent, client_secret, payment_status, expires_at, paid_at, created_at, updated_at,
    credits, plan, renewal, company_id)
SELECT id, version, user_id, kind, status, cancel_reason, currency, total, address, locale,
    stock_released, payment_intent, client_secret, payment_status, expires_at, paid_at, created_at, updated_at,
    credits, plan, renewal, company_id
FROM orders;
DROP TABLE orders;
ALTER TABLE orders_new RENAME TO orders;
CREATE INDEX orders_user ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_status ON orders (status, created_at DESC, id DESC);
CREATE INDEX orders_expiry ON orders (expires_at) WHERE status = 'pending';
CREATE INDEX orders_company ON orders (company_id, created_at) WHERE company_id IS NOT NULL;
CREATE INDEX orders_event ON orders (event_id, status) WHERE event_id IS NOT NULL;
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

CREATE TABLE event_registrations_new (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'waitlisted', 'cancelled')),
    waitlist_position INTEGER,
    code TEXT NOT NULL UNIQUE,
    amount_paid INTEGER NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
    checked_in_at INTEGER,
    cancelled_at INTEGER,
    reminded_24h_at INTEGER,
    reminded_1h_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    order_id TEXT,
    UNIQUE (event_id, user_id)
);
INSERT INTO event_registrations_new (id, version, event_id, user_id, status, waitlist_position, code, amount_paid,
    checked_in_at, cancelled_at, reminded_24h_at, reminded_1h_at, created_at, updated_at)
SELECT id, version, event_id, user_id, status, waitlist_position, code, amount_paid,
    checked_in_at, cancelled_at, reminded_24h_at, reminded_1h_at, created_at, updated_at
FROM event_registrations;
DROP TABLE event_registrations;
ALTER TABLE event_registrations_new RENAME TO event_registrations;
CREATE INDEX event_registrations_user ON event_registrations (user_id, created_at);
CREATE INDEX event_registrations_wait ON event_registrations (event_id, status, waitlist_position);
CREATE INDEX event_registrations_order ON event_registrations (order_id) WHERE order_id IS NOT NULL;
