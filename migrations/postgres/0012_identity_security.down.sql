DROP TABLE otp_failures;
ALTER TABLE otp_codes DROP COLUMN user_id;
ALTER TABLE users DROP COLUMN phone_verified;
DROP INDEX users_email_lower;
