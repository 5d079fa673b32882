DROP TABLE stripe_events;
DROP TABLE order_lines;
DROP TABLE orders;
