-- 0026 support tickets and certificates (API.md §10, issue 12 items 2 and 4).
-- tickets is a resource-engine table; status, assignee, the SLA and unread
-- fields are the workflow's (read-only to clients). priority_rank orders by
-- priority (urgent 4 .. low 1). sla_due_at = created_at + the priority's
-- first-response target; sla_breached is set once when the first staff
-- reply comes late or the due time passes without one.
CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT 'general'
        CHECK (category IN ('general', 'account', 'billing', 'technical', 'events', 'other')),
    priority TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    priority_rank INTEGER NOT NULL DEFAULT 2,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'closed')),
    assignee_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    first_response_at INTEGER,
    resolved_at INTEGER,
    sla_due_at INTEGER,
    sla_breached INTEGER NOT NULL DEFAULT 0,
    user_unread INTEGER NOT NULL DEFAULT 0,
    staff_unread INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX tickets_user ON tickets (user_id, created_at);
CREATE INDEX tickets_queue ON tickets (status, priority_rank, created_at);
CREATE INDEX tickets_assignee ON tickets (assignee_id);
CREATE INDEX tickets_sla ON tickets (sla_due_at) WHERE sla_breached = 0 AND first_response_at IS NULL;

CREATE TABLE ticket_messages (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    ticket_id TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    author_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    body TEXT NOT NULL,
    internal INTEGER NOT NULL DEFAULT 0,
    from_staff INTEGER NOT NULL DEFAULT 0,
    attachments TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX ticket_messages_ticket ON ticket_messages (ticket_id, created_at);

-- certificates: staff templates; one certificate per attendee and event,
-- with a unique public number, a snapshot of what it certifies (name, event,
-- date) for verification, and the rendered PDF (base64) once its job ran.
CREATE TABLE certificate_templates (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    primary_color TEXT NOT NULL DEFAULT '#1F3A93',
    text_color TEXT NOT NULL DEFAULT '#222222',
    logo_url TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE certificates (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    number TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    template_id TEXT REFERENCES certificate_templates (id) ON DELETE SET NULL,
    attendee_name TEXT NOT NULL,
    event_title TEXT NOT NULL,
    event_date INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'valid', 'revoked')),
    pdf TEXT,
    pdf_size INTEGER,
    revoked_at INTEGER,
    revoke_reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (event_id, user_id)
);
CREATE INDEX certificates_user ON certificates (user_id, created_at);
