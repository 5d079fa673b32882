-- 0020 files (issue 13 item 1, API.md §7): uploaded and generated files. The bytes live in
-- storage (local directory or S3) under storage_key; variants is a JSON object
-- {"thumbnail": {"key","size","width","height"}, ...} filled by the variants job.
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    filename TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size > 0),
    mime_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    storage_key TEXT NOT NULL,
    variants TEXT NOT NULL DEFAULT '{}',
    variants_state TEXT NOT NULL DEFAULT 'none' CHECK (variants_state IN ('none', 'pending', 'ready', 'failed')),
    created_at INTEGER NOT NULL
);
CREATE INDEX files_owner ON files (owner_id, created_at DESC, id DESC);
