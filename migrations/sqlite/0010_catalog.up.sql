-- 0010 catalog (API.md §9, seeds 001/004): categories (seeded with the seven
-- categories of seed 004, names in tr/en/pl), products (public read, admin
-- write), reviews (one per user per product) with reactions, cart lines,
-- favorites and addresses (tables catalog_*).
-- Timestamps are integer UTC ms. Products carry seq (a stable FTS5 rowid) and
-- a contentless FTS5 table fed by triggers with the tr/en/pl values of the
-- JSON name and description (not the JSON keys).
CREATE TABLE catalog_categories (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    position INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO catalog_categories (id, version, slug, name, position, created_at, updated_at) VALUES
    ('0194209a-0000-7000-8000-000000000001', 1, 'sut-urunleri', '{"tr": "SÜT ÜRÜNLERİ", "en": "Dairy Products", "pl": "Produkty mleczne"}', 1, 1735689600001, 1735689600001),
    ('0194209a-0000-7000-8000-000000000002', 1, 'bakliyat', '{"tr": "BAKLİYAT", "en": "Legumes", "pl": "Rośliny strączkowe"}', 2, 1735689600002, 1735689600002),
    ('0194209a-0000-7000-8000-000000000003', 1, 'et-urunleri', '{"tr": "ET ÜRÜNLERİ", "en": "Meat Products", "pl": "Produkty mięsne"}', 3, 1735689600003, 1735689600003),
    ('0194209a-0000-7000-8000-000000000004', 1, 'salca-ve-ezmeler', '{"tr": "SALÇA VE EZMELER", "en": "Pastes and Spreads", "pl": "Pasty i smarowidła"}', 4, 1735689600004, 1735689600004),
    ('0194209a-0000-7000-8000-000000000005', 1, 'unlu-mamuller', '{"tr": "UNLU MAMÜLLER", "en": "Bakery Products", "pl": "Wyroby piekarnicze"}', 5, 1735689600005, 1735689600005),
    ('0194209a-0000-7000-8000-000000000006', 1, 'zeytinler', '{"tr": "ZEYTİNLER", "en": "Olives", "pl": "Oliwki"}', 6, 1735689600006, 1735689600006),
    ('0194209a-0000-7000-8000-000000000007', 1, 'diger-urunler', '{"tr": "DİĞER ÜRÜNLER", "en": "Other Products", "pl": "Inne produkty"}', 7, 1735689600007, 1735689600007);

CREATE TABLE catalog_products (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL DEFAULT 1,
    category TEXT NOT NULL REFERENCES catalog_categories (slug) ON UPDATE CASCADE,
    sku TEXT UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    price INTEGER NOT NULL CHECK (price >= 0),
    currency TEXT NOT NULL DEFAULT 'TRY',
    stock INTEGER NOT NULL DEFAULT 0 CHECK (stock >= 0),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
-- the public list: by category, newest first (the engine's default order). deleted_at is a
-- column, not a partial-index condition: SQLite reads the table for a condition it cannot
-- see in the index, and with the column the list's count(*) is a covering index scan.
CREATE INDEX catalog_products_category ON catalog_products (category, deleted_at, created_at DESC, id DESC);
CREATE INDEX catalog_products_created ON catalog_products (deleted_at, created_at DESC, id DESC);
CREATE INDEX catalog_products_price ON catalog_products (price);

CREATE VIRTUAL TABLE catalog_products_fts USING fts5 (name, description, content = '',
    tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER catalog_products_fts_ai AFTER INSERT ON catalog_products BEGIN
    INSERT INTO catalog_products_fts (rowid, name, description) VALUES (new.seq,
        coalesce(json_extract(new.name, '$.tr'), '') || ' ' || coalesce(json_extract(new.name, '$.en'), '') || ' ' || coalesce(json_extract(new.name, '$.pl'), ''),
        coalesce(json_extract(new.description, '$.tr'), '') || ' ' || coalesce(json_extract(new.description, '$.en'), '') || ' ' || coalesce(json_extract(new.description, '$.pl'), ''));
END;
CREATE TRIGGER catalog_products_fts_ad AFTER DELETE ON catalog_products BEGIN
    INSERT INTO catalog_products_fts (catalog_products_fts, rowid, name, description) VALUES ('delete', old.seq,
        coalesce(json_extract(old.name, '$.tr'), '') || ' ' || coalesce(json_extract(old.name, '$.en'), '') || ' ' || coalesce(json_extract(old.name, '$.pl'), ''),
        coalesce(json_extract(old.description, '$.tr'), '') || ' ' || coalesce(json_extract(old.description, '$.en'), '') || ' ' || coalesce(json_extract(old.description, '$.pl'), ''));
END;
CREATE TRIGGER catalog_products_fts_au AFTER UPDATE OF name, description ON catalog_products BEGIN
    INSERT INTO catalog_products_fts (catalog_products_fts, rowid, name, description) VALUES ('delete', old.seq,
        coalesce(json_extract(old.name, '$.tr'), '') || ' ' || coalesce(json_extract(old.name, '$.en'), '') || ' ' || coalesce(json_extract(old.name, '$.pl'), ''),
        coalesce(json_extract(old.description, '$.tr'), '') || ' ' || coalesce(json_extract(old.description, '$.en'), '') || ' ' || coalesce(json_extract(old.description, '$.pl'), ''));
    INSERT INTO catalog_products_fts (rowid, name, description) VALUES (new.seq,
        coalesce(json_extract(new.name, '$.tr'), '') || ' ' || coalesce(json_extract(new.name, '$.en'), '') || ' ' || coalesce(json_extract(new.name, '$.pl'), ''),
        coalesce(json_extract(new.description, '$.tr'), '') || ' ' || coalesce(json_extract(new.description, '$.en'), '') || ' ' || coalesce(json_extract(new.description, '$.pl'), ''));
END;

CREATE TABLE catalog_reviews (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    product_id TEXT NOT NULL REFERENCES catalog_products (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL DEFAULT '',
    likes INTEGER NOT NULL DEFAULT 0,
    dislikes INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (product_id, user_id) -- one review per user per product
);
CREATE INDEX catalog_reviews_user ON catalog_reviews (user_id);
CREATE INDEX catalog_reviews_product ON catalog_reviews (product_id, created_at);

CREATE TABLE catalog_review_reactions (
    review_id TEXT NOT NULL REFERENCES catalog_reviews (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type TEXT NOT NULL CHECK (type IN ('like', 'dislike')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (review_id, user_id)
);
CREATE INDEX catalog_review_reactions_user ON catalog_review_reactions (user_id);

CREATE TABLE catalog_cart_items (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    product_id TEXT NOT NULL REFERENCES catalog_products (id) ON DELETE CASCADE,
    quantity INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (user_id, product_id) -- one line per product: adding again increases it
);
CREATE INDEX catalog_cart_items_product ON catalog_cart_items (product_id);

CREATE TABLE catalog_favorites (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    product_id TEXT NOT NULL REFERENCES catalog_products (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (user_id, product_id)
);
CREATE INDEX catalog_favorites_product ON catalog_favorites (product_id);

CREATE TABLE catalog_addresses (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title TEXT NOT NULL DEFAULT '',
    full_name TEXT NOT NULL,
    phone TEXT NOT NULL DEFAULT '',
    line1 TEXT NOT NULL,
    line2 TEXT NOT NULL DEFAULT '',
    district TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL,
    postal_code TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT 'TR',
    is_default INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX catalog_addresses_user ON catalog_addresses (user_id, created_at);
