-- 0032 files referenced by other modules (issue 13 item 2, issue 11/12 left-overs):
-- the profile photo, product images, ticket attachments and certificate PDFs
-- are rows of files (bytes in storage); these tables say who uses which file.
-- A reference goes with its file (ON DELETE CASCADE from files) and with its
-- owner row; the module that deletes an owner row forgets its files in the
-- same transaction (files_forget: the row, and a files.purge job for the bytes).

-- /me/photo: one file (purpose avatar, owned by the user) per user.
CREATE TABLE user_photos (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    file_id TEXT NOT NULL UNIQUE REFERENCES files (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL
);

-- product images, ordered, with alt text; the file (purpose product) is
-- handed to the catalog when attached (files.owner_id = 'catalog').
CREATE TABLE product_images (
    id TEXT PRIMARY KEY,
    product_id TEXT NOT NULL REFERENCES catalog_products (id) ON DELETE CASCADE,
    file_id TEXT NOT NULL UNIQUE REFERENCES files (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    alt TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX product_images_product ON product_images (product_id, position, id);
-- the product document's "images" (kept by the catalog in the same transaction
-- as product_images): [{"id","file_id","position","alt","url","variants"}].
ALTER TABLE catalog_products ADD COLUMN images TEXT NOT NULL DEFAULT '[]';

-- ticket message attachments: files the author owned when posting.
CREATE TABLE ticket_attachments (
    message_id TEXT NOT NULL REFERENCES ticket_messages (id) ON DELETE CASCADE,
    file_id TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (message_id, file_id)
);
CREATE INDEX ticket_attachments_file ON ticket_attachments (file_id);

-- a certificate's PDF as a file (purpose certificate, owned by the attendee);
-- certificates rendered before this keep theirs base64 in certificates.pdf.
CREATE TABLE certificate_files (
    certificate_id TEXT PRIMARY KEY REFERENCES certificates (id) ON DELETE CASCADE,
    file_id TEXT NOT NULL UNIQUE REFERENCES files (id) ON DELETE CASCADE
);
