-- 0006 idempotency: stored responses of POSTs sent with an Idempotency-Key (API.md §1).
CREATE TABLE idempotency_keys (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    content_type TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
