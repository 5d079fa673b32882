ALTER TABLE orders DROP COLUMN credits;
DROP TABLE credit_packs;
