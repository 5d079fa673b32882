DROP TABLE blog_comments;
DROP TRIGGER blog_posts_fts_au;
DROP TRIGGER blog_posts_fts_ad;
DROP TRIGGER blog_posts_fts_ai;
DROP TABLE blog_posts_fts;
DROP TABLE blog_posts;
DROP TABLE blog_categories;
