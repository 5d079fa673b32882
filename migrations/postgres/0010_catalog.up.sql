-- 0010 catalog (API.md §9, seeds 001/004): categories (seeded with the seven
-- categories of seed 004, names in tr/en/pl), products (public read, admin
-- write), reviews (one per user per product) with reactions, cart lines,
-- favorites and addresses (tables catalog_*).
-- Full text through a generated tsvector column "search_tsv" ('simple') over
-- the tr/en/pl values of the JSON name and description, with a GIN index.
CREATE TABLE catalog_categories (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    position INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
INSERT INTO catalog_categories (id, version, slug, name, position, created_at, updated_at) VALUES
    ('0194209a-0000-7000-8000-000000000001', 1, 'sut-urunleri', '{"tr": "SÜT ÜRÜNLERİ", "en": "Dairy Products", "pl": "Produkty mleczne"}', 1, ms_ts(1735689600001), ms_ts(1735689600001)),
    ('0194209a-0000-7000-8000-000000000002', 1, 'bakliyat', '{"tr": "BAKLİYAT", "en": "Legumes", "pl": "Rośliny strączkowe"}', 2, ms_ts(1735689600002), ms_ts(1735689600002)),
    ('0194209a-0000-7000-8000-000000000003', 1, 'et-urunleri', '{"tr": "ET ÜRÜNLERİ", "en": "Meat Products", "pl": "Produkty mięsne"}', 3, ms_ts(1735689600003), ms_ts(1735689600003)),
    ('0194209a-0000-7000-8000-000000000004', 1, 'salca-ve-ezmeler', '{"tr": "SALÇA VE EZMELER", "en": "Pastes and Spreads", "pl": "Pasty i smarowidła"}', 4, ms_ts(1735689600004), ms_ts(1735689600004)),
    ('0194209a-0000-7000-8000-000000000005', 1, 'unlu-mamuller', '{"tr": "UNLU MAMÜLLER", "en": "Bakery Products", "pl": "Wyroby piekarnicze"}', 5, ms_ts(1735689600005), ms_ts(1735689600005)),
    ('0194209a-0000-7000-8000-000000000006', 1, 'zeytinler', '{"tr": "ZEYTİNLER", "en": "Olives", "pl": "Oliwki"}', 6, ms_ts(1735689600006), ms_ts(1735689600006)),
    ('0194209a-0000-7000-8000-000000000007', 1, 'diger-urunler', '{"tr": "DİĞER ÜRÜNLER", "en": "Other Products", "pl": "Inne produkty"}', 7, ms_ts(1735689600007), ms_ts(1735689600007));

CREATE TABLE catalog_products (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    category TEXT NOT NULL REFERENCES catalog_categories (slug) ON UPDATE CASCADE,
    sku TEXT UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    price BIGINT NOT NULL CHECK (price >= 0),
    currency TEXT NOT NULL DEFAULT 'TRY',
    stock INTEGER NOT NULL DEFAULT 0 CHECK (stock >= 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ,
    search_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple',
        coalesce(name::jsonb ->> 'tr', '') || ' ' || coalesce(name::jsonb ->> 'en', '') || ' ' ||
        coalesce(name::jsonb ->> 'pl', '') || ' ' || coalesce(description::jsonb ->> 'tr', '') || ' ' ||
        coalesce(description::jsonb ->> 'en', '') || ' ' || coalesce(description::jsonb ->> 'pl', ''))) STORED
);
CREATE INDEX catalog_products_category ON catalog_products (category, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX catalog_products_created ON catalog_products (created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX catalog_products_price ON catalog_products (price);
CREATE INDEX catalog_products_search ON catalog_products USING GIN (search_tsv);

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
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (product_id, user_id) -- one review per user per product
);
CREATE INDEX catalog_reviews_user ON catalog_reviews (user_id);
CREATE INDEX catalog_reviews_product ON catalog_reviews (product_id, created_at);

CREATE TABLE catalog_review_reactions (
    review_id TEXT NOT NULL REFERENCES catalog_reviews (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type TEXT NOT NULL CHECK (type IN ('like', 'dislike')),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (review_id, user_id)
);
CREATE INDEX catalog_review_reactions_user ON catalog_review_reactions (user_id);

CREATE TABLE catalog_cart_items (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    product_id TEXT NOT NULL REFERENCES catalog_products (id) ON DELETE CASCADE,
    quantity INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, product_id) -- one line per product: adding again increases it
);
CREATE INDEX catalog_cart_items_product ON catalog_cart_items (product_id);

CREATE TABLE catalog_favorites (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    product_id TEXT NOT NULL REFERENCES catalog_products (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
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
    is_default BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX catalog_addresses_user ON catalog_addresses (user_id, created_at);
