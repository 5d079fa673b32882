DROP TABLE credit_transactions;
DROP FUNCTION credit_tx_append_only();
DROP TABLE credit_subscriptions;
DROP TABLE credit_accounts;
