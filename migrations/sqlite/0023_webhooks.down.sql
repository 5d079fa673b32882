-- 0023 outbound webhooks
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
