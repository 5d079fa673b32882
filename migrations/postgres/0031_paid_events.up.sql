-- 0031 paid events (issue 12 item 1): registering for an event with a price
-- makes an order of kind 'event' (orders.event_id) and a 'pending' registration
-- (event_registrations.order_id) that holds its seat until the order is paid
-- (confirmed), cancelled or expired (the seat goes back).
ALTER TABLE orders DROP CONSTRAINT orders_kind_check;
ALTER TABLE orders ADD CONSTRAINT orders_kind_check CHECK (kind IN ('goods', 'credits', 'plan', 'event'));
ALTER TABLE orders ADD COLUMN event_id TEXT;
ALTER TABLE orders ADD CONSTRAINT orders_event_check CHECK ((kind = 'event') = (event_id IS NOT NULL));
CREATE INDEX orders_event ON orders (event_id, status) WHERE event_id IS NOT NULL;
ALTER TABLE event_registrations DROP CONSTRAINT event_registrations_status_check;
ALTER TABLE event_registrations ADD CONSTRAINT event_registrations_status_check
    CHECK (status IN ('pending', 'confirmed', 'waitlisted', 'cancelled'));
ALTER TABLE event_registrations ADD COLUMN order_id TEXT;
CREATE INDEX event_registrations_order ON event_registrations (order_id) WHERE order_id IS NOT NULL;
