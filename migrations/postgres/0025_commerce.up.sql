-- 0025 commerce (issue 11): product rating average and count, kept by a trigger in
-- the transaction of the review's insert, rating change or delete (rating_sum is
-- the exact running sum; rating = round(sum / count, 2), NULL without reviews;
-- the product row's lock orders concurrent reviews of one product).
ALTER TABLE catalog_products ADD COLUMN rating DOUBLE PRECISION;
ALTER TABLE catalog_products ADD COLUMN rating_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE catalog_products ADD COLUMN rating_sum BIGINT NOT NULL DEFAULT 0;
UPDATE catalog_products p SET rating_count = s.n, rating_sum = s.total,
    rating = round(s.total::numeric / s.n, 2)::double precision
FROM (SELECT product_id, count(*) AS n, sum(rating) AS total FROM catalog_reviews GROUP BY product_id) s
WHERE s.product_id = p.id;
CREATE INDEX catalog_products_rating ON catalog_products (rating, id);
CREATE FUNCTION catalog_reviews_rating() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE catalog_products SET rating_count = rating_count + 1, rating_sum = rating_sum + NEW.rating,
            rating = round((rating_sum + NEW.rating)::numeric / (rating_count + 1), 2)::double precision
        WHERE id = NEW.product_id;
    ELSIF TG_OP = 'UPDATE' THEN
        IF OLD.rating <> NEW.rating THEN
            UPDATE catalog_products SET rating_sum = rating_sum - OLD.rating + NEW.rating,
                rating = round((rating_sum - OLD.rating + NEW.rating)::numeric / rating_count, 2)::double precision
            WHERE id = NEW.product_id;
        END IF;
    ELSE
        UPDATE catalog_products SET rating_count = rating_count - 1, rating_sum = rating_sum - OLD.rating,
            rating = CASE WHEN rating_count > 1
                THEN round((rating_sum - OLD.rating)::numeric / (rating_count - 1), 2)::double precision END
        WHERE id = OLD.product_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER catalog_reviews_rating AFTER INSERT OR DELETE OR UPDATE OF rating ON catalog_reviews
    FOR EACH ROW EXECUTE FUNCTION catalog_reviews_rating();

-- companies (corporate accounts): members with roles, invitations by mail (the token
-- is stored hashed), a company address book and a company cart; a company order is
-- an order with company_id (placed by a member from the company cart).
CREATE TABLE companies (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    name TEXT NOT NULL,
    tax_id TEXT NOT NULL DEFAULT '',
    created_by TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE company_members (
    company_id TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (company_id, user_id)
);
CREATE INDEX company_members_user ON company_members (user_id);
-- one owner per company
CREATE UNIQUE INDEX company_members_owner ON company_members (company_id) WHERE role = 'owner';
CREATE TABLE company_invitations (
    id TEXT PRIMARY KEY,
    company_id TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    token_hash TEXT NOT NULL UNIQUE,
    invited_by TEXT,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'revoked')),
    accepted_by TEXT,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX company_invitations_company ON company_invitations (company_id, created_at);
CREATE TABLE company_addresses (
    id TEXT PRIMARY KEY,
    company_id TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    title TEXT NOT NULL DEFAULT '',
    full_name TEXT NOT NULL,
    phone TEXT NOT NULL DEFAULT '',
    line1 TEXT NOT NULL,
    line2 TEXT NOT NULL DEFAULT '',
    district TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL,
    postal_code TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT 'TR',
    created_by TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX company_addresses_company ON company_addresses (company_id, created_at);
CREATE TABLE company_cart_items (
    id TEXT PRIMARY KEY,
    company_id TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    product_id TEXT NOT NULL REFERENCES catalog_products (id) ON DELETE CASCADE,
    quantity INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    added_by TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (company_id, product_id)
);
-- no foreign key: an order is a financial record and outlives its company
ALTER TABLE orders ADD COLUMN company_id TEXT;
CREATE INDEX orders_company ON orders (company_id, created_at) WHERE company_id IS NOT NULL;
