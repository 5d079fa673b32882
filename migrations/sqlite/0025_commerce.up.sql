-- 0025 commerce (issue 11): product rating average and count, kept by triggers in
-- the transaction of the review's insert, rating change or delete (rating_sum is
-- the exact running sum; rating = round(sum / count, 2), NULL without reviews).
ALTER TABLE catalog_products ADD COLUMN rating REAL;
ALTER TABLE catalog_products ADD COLUMN rating_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE catalog_products ADD COLUMN rating_sum INTEGER NOT NULL DEFAULT 0;
UPDATE catalog_products SET
    rating_count = (SELECT count(*) FROM catalog_reviews r WHERE r.product_id = catalog_products.id),
    rating_sum = (SELECT coalesce(sum(rating), 0) FROM catalog_reviews r WHERE r.product_id = catalog_products.id);
UPDATE catalog_products SET rating = round(CAST(rating_sum AS REAL) / rating_count, 2) WHERE rating_count > 0;
CREATE INDEX catalog_products_rating ON catalog_products (rating, id);
CREATE TRIGGER catalog_reviews_rating_ins AFTER INSERT ON catalog_reviews
BEGIN
    UPDATE catalog_products SET rating_count = rating_count + 1, rating_sum = rating_sum + NEW.rating,
        rating = round(CAST(rating_sum + NEW.rating AS REAL) / (rating_count + 1), 2)
    WHERE id = NEW.product_id;
END;
CREATE TRIGGER catalog_reviews_rating_upd AFTER UPDATE OF rating ON catalog_reviews WHEN OLD.rating <> NEW.rating
BEGIN
    UPDATE catalog_products SET rating_sum = rating_sum - OLD.rating + NEW.rating,
        rating = round(CAST(rating_sum - OLD.rating + NEW.rating AS REAL) / rating_count, 2)
    WHERE id = NEW.product_id;
END;
CREATE TRIGGER catalog_reviews_rating_del AFTER DELETE ON catalog_reviews
BEGIN
    UPDATE catalog_products SET rating_count = rating_count - 1, rating_sum = rating_sum - OLD.rating,
        rating = CASE WHEN rating_count > 1 THEN round(CAST(rating_sum - OLD.rating AS REAL) / (rating_count - 1), 2) END
    WHERE id = OLD.product_id;
END;
