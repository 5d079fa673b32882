-- 0009 blog (API.md §9, seed 001): categories, posts (staff write, the public
-- reads what is published), comments (users write; hidden until staff approve).
-- Resource-engine tables (src/resource/resource.h): id, version, timestamps as
-- integer UTC ms. blog_posts carries seq (a stable FTS5 rowid) and an
-- external-content FTS5 table kept in sync by triggers.
CREATE TABLE blog_categories (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE blog_posts (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL DEFAULT 1,
    author_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    category_id TEXT REFERENCES blog_categories (id) ON DELETE SET NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published')),
    published_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX blog_posts_status ON blog_posts (status, created_at);
CREATE INDEX blog_posts_category ON blog_posts (category_id);
CREATE INDEX blog_posts_author ON blog_posts (author_id);

CREATE VIRTUAL TABLE blog_posts_fts USING fts5 (title, body, content = 'blog_posts', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER blog_posts_fts_ai AFTER INSERT ON blog_posts BEGIN
    INSERT INTO blog_posts_fts (rowid, title, body) VALUES (new.seq, new.title, new.body);
END;
CREATE TRIGGER blog_posts_fts_ad AFTER DELETE ON blog_posts BEGIN
    INSERT INTO blog_posts_fts (blog_posts_fts, rowid, title, body) VALUES ('delete', old.seq, old.title, old.body);
END;
CREATE TRIGGER blog_posts_fts_au AFTER UPDATE OF title, body ON blog_posts BEGIN
    INSERT INTO blog_posts_fts (blog_posts_fts, rowid, title, body) VALUES ('delete', old.seq, old.title, old.body);
    INSERT INTO blog_posts_fts (rowid, title, body) VALUES (new.seq, new.title, new.body);
END;

CREATE TABLE blog_comments (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    post_id TEXT NOT NULL REFERENCES blog_posts (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX blog_comments_post ON blog_comments (post_id, status, created_at);
CREATE INDEX blog_comments_user ON blog_comments (user_id);
CREATE INDEX blog_comments_status ON blog_comments (status, created_at);
