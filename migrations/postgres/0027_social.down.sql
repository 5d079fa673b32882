DROP TABLE social_posts;
DROP TABLE social_accounts;
