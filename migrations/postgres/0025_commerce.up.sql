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
