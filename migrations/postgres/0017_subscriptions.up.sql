-- 0017 paid plans as subscriptions (issue 11): an order of kind 'plan' pays one
-- period of a plan (orders.plan; orders.renewal for the ones the renewal job
-- charges off-session).
ALTER TABLE orders DROP CONSTRAINT orders_kind_check;
ALTER TABLE orders ADD CONSTRAINT orders_kind_check CHECK (kind IN ('goods', 'credits', 'plan'));
ALTER TABLE orders ADD COLUMN plan TEXT;
ALTER TABLE orders ADD COLUMN renewal BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE orders ADD CONSTRAINT orders_plan_check CHECK ((kind = 'plan') = (plan IS NOT NULL));

-- the subscription of a user (one row; plan 'free' when none is paid for)
ALTER TABLE credit_subscriptions ADD COLUMN period_start TIMESTAMPTZ;
ALTER TABLE credit_subscriptions ADD COLUMN period_end TIMESTAMPTZ;
ALTER TABLE credit_subscriptions ADD COLUMN cancel_at_period_end BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE credit_subscriptions ADD COLUMN renewal_status TEXT;
ALTER TABLE credit_subscriptions ADD COLUMN ended_reason TEXT;
ALTER TABLE credit_subscriptions ADD COLUMN stripe_customer TEXT;
ALTER TABLE credit_subscriptions ADD COLUMN payment_method TEXT;
-- a paid period's grant is made once (reference 'plan:<order id>')
CREATE UNIQUE INDEX credit_tx_plan ON credit_transactions (reference) WHERE type = 'grant' AND reference LIKE 'plan:%';
