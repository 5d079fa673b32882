-- 0031 down: event orders and pending registrations cannot be expressed
-- before 0031; they are removed, then the columns go.
DELETE FROM event_registrations WHERE status = 'pending';
DROP INDEX event_registrations_order;
ALTER TABLE event_registrations DROP COLUMN order_id;
DELETE FROM orders WHERE kind = 'event';
DROP INDEX orders_event;
