DROP TABLE certificate_files;
DROP TABLE ticket_attachments;
DROP TABLE product_images;
ALTER TABLE catalog_products DROP COLUMN images;
DROP TABLE user_photos;
