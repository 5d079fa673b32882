-- 0018 events (API.md §10, issue 12 item 1): events written by staff and read by
-- the public once published; registrations with capacity, one per user, an
-- ordered waitlist, a signed check-in code and reminder marks.
-- events is a resource-engine table (src/resource/resource.h); seq is the
-- stable FTS5 rowid. confirmed_count is the seat counter that registration
-- takes with one conditional UPDATE (the CHECK is the last line of defence);
-- waitlist_seq hands out waitlist positions in commit order.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL DEFAULT 1,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT '',
    city TEXT,
    venue TEXT NOT NULL DEFAULT '',
    online INTEGER NOT NULL DEFAULT 0,
    online_url TEXT,
    starts_at INTEGER NOT NULL,
    ends_at INTEGER,
    capacity INTEGER CHECK (capacity IS NULL OR capacity > 0),
    waitlist INTEGER NOT NULL DEFAULT 0,
    price INTEGER NOT NULL DEFAULT 0 CHECK (price >= 0),
    currency TEXT NOT NULL DEFAULT 'TRY',
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'cancelled')),
    confirmed_count INTEGER NOT NULL DEFAULT 0 CHECK (confirmed_count >= 0),
    waitlist_seq INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER,
    CHECK (capacity IS NULL OR confirmed_count <= capacity),
    CHECK (ends_at IS NULL OR ends_at >= starts_at)
);
CREATE INDEX events_status_start ON events (status, starts_at);
CREATE INDEX events_city ON events (city);
CREATE INDEX events_category ON events (category);

CREATE VIRTUAL TABLE events_fts USING fts5 (title, description, content = 'events', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER events_fts_ai AFTER INSERT ON events BEGIN
    INSERT INTO events_fts (rowid, title, description) VALUES (new.seq, new.title, new.description);
END;
CREATE TRIGGER events_fts_ad AFTER DELETE ON events BEGIN
    INSERT INTO events_fts (events_fts, rowid, title, description) VALUES ('delete', old.seq, old.title, old.description);
END;
CREATE TRIGGER events_fts_au AFTER UPDATE OF title, description ON events BEGIN
    INSERT INTO events_fts (events_fts, rowid, title, description) VALUES ('delete', old.seq, old.title, old.description);
    INSERT INTO events_fts (rowid, title, description) VALUES (new.seq, new.title, new.description);
END;

CREATE TABLE event_registrations (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('confirmed', 'waitlisted', 'cancelled')),
    waitlist_position INTEGER,
    code TEXT NOT NULL UNIQUE,
    amount_paid INTEGER NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
    checked_in_at INTEGER,
    cancelled_at INTEGER,
    reminded_24h_at INTEGER,
    reminded_1h_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (event_id, user_id)
);
CREATE INDEX event_registrations_user ON event_registrations (user_id, created_at);
CREATE INDEX event_registrations_wait ON event_registrations (event_id, status, waitlist_position);
