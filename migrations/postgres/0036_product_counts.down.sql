DROP TRIGGER catalog_product_counts_keep ON catalog_products;
DROP FUNCTION catalog_product_counts_keep();
DROP TABLE catalog_product_counts;
