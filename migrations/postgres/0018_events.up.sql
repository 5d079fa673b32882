-- 0018 events (API.md §10, issue 12 item 1): events written by staff and read by
-- the public once published; registrations with capacity, one per user, an
-- ordered waitlist, a signed check-in code and reminder marks.
-- events is a resource-engine table; full text through the generated
-- search_tsv column. confirmed_count is the seat counter that registration
-- takes with one conditional UPDATE (row lock; READ COMMITTED re-checks the
-- condition on the committed row); waitlist_seq hands out waitlist positions
-- in commit order.
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT '',
    city TEXT,
    venue TEXT NOT NULL DEFAULT '',
    online BOOLEAN NOT NULL DEFAULT FALSE,
    online_url TEXT,
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ,
    capacity INTEGER CHECK (capacity IS NULL OR capacity > 0),
    waitlist BOOLEAN NOT NULL DEFAULT FALSE,
    price BIGINT NOT NULL DEFAULT 0 CHECK (price >= 0),
    currency TEXT NOT NULL DEFAULT 'TRY',
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'cancelled')),
    confirmed_count INTEGER NOT NULL DEFAULT 0 CHECK (confirmed_count >= 0),
    waitlist_seq INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ,
    search_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', title || ' ' || description)) STORED,
    CHECK (capacity IS NULL OR confirmed_count <= capacity),
    CHECK (ends_at IS NULL OR ends_at >= starts_at)
);
CREATE INDEX events_status_start ON events (status, starts_at);
CREATE INDEX events_city ON events (city);
CREATE INDEX events_category ON events (category);
CREATE INDEX events_search ON events USING GIN (search_tsv);

CREATE TABLE event_registrations (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('confirmed', 'waitlisted', 'cancelled')),
    waitlist_position INTEGER,
    code TEXT NOT NULL UNIQUE,
    amount_paid BIGINT NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
    checked_in_at TIMESTAMPTZ,
    cancelled_at TIMESTAMPTZ,
    reminded_24h_at TIMESTAMPTZ,
    reminded_1h_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (event_id, user_id)
);
CREATE INDEX event_registrations_user ON event_registrations (user_id, created_at);
CREATE INDEX event_registrations_wait ON event_registrations (event_id, status, waitlist_position);
