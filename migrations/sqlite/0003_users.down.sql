DROP TABLE api_keys;
DROP TABLE otp_codes;
DROP TABLE user_tokens;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
