DROP TABLE blog_comments;
DROP TABLE blog_posts;
DROP TABLE blog_categories;
