-- 0009 blog (API.md §9, seed 001): categories, posts (staff write, the public
-- reads what is published), comments (users write; hidden until staff approve).
-- Resource-engine tables (src/resource/resource.h); full text through a
-- generated tsvector column "search_tsv" ('simple') with a GIN index.
CREATE TABLE blog_categories (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE blog_posts (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    author_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    category_id TEXT REFERENCES blog_categories (id) ON DELETE SET NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published')),
    published_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ,
    search_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', title || ' ' || body)) STORED
);
CREATE INDEX blog_posts_status ON blog_posts (status, created_at);
CREATE INDEX blog_posts_category ON blog_posts (category_id);
CREATE INDEX blog_posts_author ON blog_posts (author_id);
CREATE INDEX blog_posts_search ON blog_posts USING GIN (search_tsv);

CREATE TABLE blog_comments (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    post_id TEXT NOT NULL REFERENCES blog_posts (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX blog_comments_post ON blog_comments (post_id, status, created_at);
CREATE INDEX blog_comments_user ON blog_comments (user_id);
CREATE INDEX blog_comments_status ON blog_comments (status, created_at);
