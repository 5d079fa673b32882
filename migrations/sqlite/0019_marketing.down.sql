DROP TABLE campaign_recipients;
DROP TABLE campaigns;
DROP TABLE email_suppressions;
DROP TABLE email_subscribers;
DROP TABLE email_lists;
