-- 0012 identity security (issue 9, docs/SECURITY.md).
-- 1. Emails are case-insensitive: stored trimmed and lower-cased. Accounts
--    whose addresses differ only in letter case must be resolved by an admin
--    first (merge or rename them); this migration refuses to run over them.
SELECT raise_error('migration 0012 refused: ' || n || ' accounts have an email address that another account also '
                   || 'has in different letter case; an admin must merge or rename them first (list them with: '
                   || 'SELECT lower(trim(email)), count(*) FROM users WHERE email IS NOT NULL GROUP BY 1 '
                   || 'HAVING count(*) > 1), then run the migration again')
FROM (SELECT count(*) AS n FROM users WHERE email IS NOT NULL AND lower(trim(email)) IN
          (SELECT lower(trim(email)) FROM users WHERE email IS NOT NULL GROUP BY 1 HAVING count(*) > 1))
WHERE n > 0;
UPDATE users SET email = lower(trim(email)) WHERE email IS NOT NULL AND email <> lower(trim(email));
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));
-- 2. A phone is stored only once a code sent to it was entered; older rows
--    were never proven (the first OTP login to one treats the account as unclaimed).
ALTER TABLE users ADD COLUMN phone_verified INTEGER NOT NULL DEFAULT 0;
-- 3. A code bound to an account (PATCH /me phone change); NULL = a login code.
ALTER TABLE otp_codes ADD COLUMN user_id TEXT;
-- 4. Wrong codes per destination, across codes (10 an hour / 20 a day lock it).
CREATE TABLE otp_failures (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    destination TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX otp_failures_dest ON otp_failures (channel, destination, created_at);
