-- 0036 runtime (issue 10 item 3): the number of live products per category, kept by
-- triggers in the transaction of every insert, delete, soft delete, restore or move
-- to another category (a category's renamed slug moves its products through ON UPDATE
-- CASCADE, which fires the same trigger). GET /products?category=X takes its total
-- from here instead of counting the category's rows (struct resource.kept_count_table).
CREATE TABLE catalog_product_counts (
    category TEXT PRIMARY KEY,
    n INTEGER NOT NULL
);
INSERT INTO catalog_product_counts (category, n)
    SELECT category, count(*) FROM catalog_products WHERE deleted_at IS NULL GROUP BY category;
CREATE TRIGGER catalog_product_counts_ins AFTER INSERT ON catalog_products WHEN NEW.deleted_at IS NULL
BEGIN
    INSERT INTO catalog_product_counts (category, n) SELECT NEW.category, 1 WHERE true
        ON CONFLICT (category) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER catalog_product_counts_del AFTER DELETE ON catalog_products WHEN OLD.deleted_at IS NULL
BEGIN
    UPDATE catalog_product_counts SET n = n - 1 WHERE category = OLD.category;
END;
CREATE TRIGGER catalog_product_counts_upd AFTER UPDATE OF category, deleted_at ON catalog_products
BEGIN
    UPDATE catalog_product_counts SET n = n - 1 WHERE category = OLD.category AND OLD.deleted_at IS NULL;
    INSERT INTO catalog_product_counts (category, n) SELECT NEW.category, 1 WHERE NEW.deleted_at IS NULL
        ON CONFLICT (category) DO UPDATE SET n = n + 1;
END;
