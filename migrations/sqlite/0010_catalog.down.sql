DROP TABLE catalog_addresses;
DROP TABLE catalog_favorites;
DROP TABLE catalog_cart_items;
DROP TABLE catalog_review_reactions;
DROP TABLE catalog_reviews;
DROP TABLE catalog_products_fts;
DROP TABLE catalog_products;
DROP TABLE catalog_categories;
