DELETE FROM event_registrations WHERE status = 'pending';
DROP INDEX event_registrations_order;
ALTER TABLE event_registrations DROP COLUMN order_id;
ALTER TABLE event_registrations DROP CONSTRAINT event_registrations_status_check;
ALTER TABLE event_registrations ADD CONSTRAINT event_registrations_status_check
    CHECK (status IN ('confirmed', 'waitlisted', 'cancelled'));
DELETE FROM orders WHERE kind = 'event';
DROP INDEX orders_event;
ALTER TABLE orders DROP CONSTRAINT orders_event_check;
ALTER TABLE orders DROP COLUMN event_id;
ALTER TABLE orders DROP CONSTRAINT orders_kind_check;
ALTER TABLE orders ADD CONSTRAINT orders_kind_check CHECK (kind IN ('goods', 'credits', 'plan'));
