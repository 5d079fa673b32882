-- 0036 runtime (issue 10 item 3): the number of live products per category, kept by a
-- trigger in the transaction of every insert, delete, soft delete, restore or move to
-- another category (a category's renamed slug moves its products through ON UPDATE
-- CASCADE, which fires the same trigger). GET /products?category=X takes its total from
-- here instead of counting the category's rows (struct resource.kept_count_table).
-- Writers that change a category's membership queue on its counter row until they commit
-- (product writes are staff operations); stock, price and rating updates do not touch it.
CREATE TABLE catalog_product_counts (
    category TEXT PRIMARY KEY,
    n BIGINT NOT NULL
);
INSERT INTO catalog_product_counts (category, n)
    SELECT category, count(*) FROM catalog_products WHERE deleted_at IS NULL GROUP BY category;
CREATE FUNCTION catalog_product_counts_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.deleted_at IS NULL THEN
        UPDATE catalog_product_counts SET n = n - 1 WHERE category = OLD.category;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.deleted_at IS NULL THEN
        INSERT INTO catalog_product_counts (category, n) VALUES (NEW.category, 1)
            ON CONFLICT (category) DO UPDATE SET n = catalog_product_counts.n + 1;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER catalog_product_counts_keep AFTER INSERT OR DELETE OR UPDATE OF category, deleted_at
    ON catalog_products FOR EACH ROW EXECUTE FUNCTION catalog_product_counts_keep();
