DROP TRIGGER catalog_product_counts_upd;
DROP TRIGGER catalog_product_counts_del;
DROP TRIGGER catalog_product_counts_ins;
DROP TABLE catalog_product_counts;
