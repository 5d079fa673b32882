DROP TRIGGER catalog_reviews_rating_del;
DROP TRIGGER catalog_reviews_rating_upd;
DROP TRIGGER catalog_reviews_rating_ins;
DROP INDEX catalog_products_rating;
ALTER TABLE catalog_products DROP COLUMN rating_sum;
ALTER TABLE catalog_products DROP COLUMN rating_count;
ALTER TABLE catalog_products DROP COLUMN rating;
