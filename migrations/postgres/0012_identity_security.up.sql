-- 0012 identity security (issue 9, docs/SECURITY.md).
-- 1. Emails are case-insensitive: stored trimmed and lower-cased. Accounts
--    whose addresses differ only in letter case must be resolved by an admin
--    first (merge or rename them); this migration refuses to run over them.
DO $$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM users WHERE email IS NOT NULL AND lower(btrim(email)) IN
        (SELECT lower(btrim(email)) FROM users WHERE email IS NOT NULL GROUP BY 1 HAVING count(*) > 1);
    IF n > 0 THEN
        RAISE EXCEPTION 'migration 0012 refused: % accounts have an email address that another account also has in '
                        'different letter case; an admin must merge or rename them first (list them with: '
                        'SELECT lower(btrim(email)), count(*) FROM users WHERE email IS NOT NULL GROUP BY 1 '
                        'HAVING count(*) > 1), then run the migration again', n;
    END IF;
END $$;
UPDATE users SET email = lower(btrim(email)) WHERE email IS NOT NULL AND email <> lower(btrim(email));
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));
-- 2. A phone is stored only once a code sent to it was entered; older rows
--    were never proven (the first OTP login to one treats the account as unclaimed).
ALTER TABLE users ADD COLUMN phone_verified BOOLEAN NOT NULL DEFAULT false;
-- 3. A code bound to an account (PATCH /me phone change); NULL = a login code.
ALTER TABLE otp_codes ADD COLUMN user_id TEXT;
-- 4. Wrong codes per destination, across codes (10 an hour / 20 a day lock it).
CREATE TABLE otp_failures (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    destination TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX otp_failures_dest ON otp_failures (channel, destination, created_at);
