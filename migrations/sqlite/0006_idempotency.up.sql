-- 0006 idempotency: stored responses of POSTs sent with an Idempotency-Key (API.md §1).
CREATE TABLE idempotency_keys (
    owner TEXT NOT NULL,            -- user id, or "ip:<address>" for anonymous callers
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,     -- SHA-256 of method, route and body
    response_status INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    content_type TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
