DROP TABLE credit_transactions;
DROP TABLE credit_subscriptions;
DROP TABLE credit_accounts;
