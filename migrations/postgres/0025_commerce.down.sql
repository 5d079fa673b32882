DROP TRIGGER catalog_reviews_rating ON catalog_reviews;
DROP FUNCTION catalog_reviews_rating();
DROP INDEX catalog_products_rating;
ALTER TABLE catalog_products DROP COLUMN rating_sum;
ALTER TABLE catalog_products DROP COLUMN rating_count;
ALTER TABLE catalog_products DROP COLUMN rating;
