-- 0005 career (API.md §8): resumes, jobs, applications, share links (tables career_*).
-- Resource-engine tables (src/resource/resource.h): id, version, timestamps
-- as integer UTC ms, the owner column user_id. Searchable tables carry an
-- INTEGER PRIMARY KEY (seq) so the FTS5 rowid never changes (VACUUM keeps
-- it), and an external-content FTS5 table kept in sync by triggers.
CREATE TABLE career_resumes (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '',
    skills TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'archived')),
    ats_score INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX career_resumes_user ON career_resumes (user_id, created_at);

CREATE VIRTUAL TABLE career_resumes_fts USING fts5 (title, summary, content, skills, content = 'career_resumes',
    content_rowid = 'seq', tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER career_resumes_fts_ai AFTER INSERT ON career_resumes BEGIN
    INSERT INTO career_resumes_fts (rowid, title, summary, content, skills)
    VALUES (new.seq, new.title, new.summary, new.content, new.skills);
END;
CREATE TRIGGER career_resumes_fts_ad AFTER DELETE ON career_resumes BEGIN
    INSERT INTO career_resumes_fts (career_resumes_fts, rowid, title, summary, content, skills)
    VALUES ('delete', old.seq, old.title, old.summary, old.content, old.skills);
END;
CREATE TRIGGER career_resumes_fts_au AFTER UPDATE OF title, summary, content, skills ON career_resumes BEGIN
    INSERT INTO career_resumes_fts (career_resumes_fts, rowid, title, summary, content, skills)
    VALUES ('delete', old.seq, old.title, old.summary, old.content, old.skills);
    INSERT INTO career_resumes_fts (rowid, title, summary, content, skills)
    VALUES (new.seq, new.title, new.summary, new.content, new.skills);
END;

CREATE TABLE career_jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    company TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    url TEXT,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX career_jobs_user ON career_jobs (user_id, created_at);

CREATE VIRTUAL TABLE career_jobs_fts USING fts5 (title, company, location, description, content = 'career_jobs',
    content_rowid = 'seq', tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER career_jobs_fts_ai AFTER INSERT ON career_jobs BEGIN
    INSERT INTO career_jobs_fts (rowid, title, company, location, description)
    VALUES (new.seq, new.title, new.company, new.location, new.description);
END;
CREATE TRIGGER career_jobs_fts_ad AFTER DELETE ON career_jobs BEGIN
    INSERT INTO career_jobs_fts (career_jobs_fts, rowid, title, company, location, description)
    VALUES ('delete', old.seq, old.title, old.company, old.location, old.description);
END;
CREATE TRIGGER career_jobs_fts_au AFTER UPDATE OF title, company, location, description ON career_jobs BEGIN
    INSERT INTO career_jobs_fts (career_jobs_fts, rowid, title, company, location, description)
    VALUES ('delete', old.seq, old.title, old.company, old.location, old.description);
    INSERT INTO career_jobs_fts (rowid, title, company, location, description)
    VALUES (new.seq, new.title, new.company, new.location, new.description);
END;

CREATE TABLE career_applications (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    job_id TEXT NOT NULL REFERENCES career_jobs (id) ON DELETE CASCADE,
    resume_id TEXT REFERENCES career_resumes (id) ON DELETE SET NULL,
    status TEXT NOT NULL DEFAULT 'saved'
        CHECK (status IN ('saved', 'applied', 'interview', 'offer', 'rejected', 'withdrawn')),
    notes TEXT NOT NULL DEFAULT '',
    history TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX career_applications_user ON career_applications (user_id, created_at);
CREATE INDEX career_applications_job ON career_applications (job_id);
CREATE INDEX career_applications_resume ON career_applications (resume_id);

CREATE VIRTUAL TABLE career_applications_fts USING fts5 (notes, content = 'career_applications', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER career_applications_fts_ai AFTER INSERT ON career_applications BEGIN
    INSERT INTO career_applications_fts (rowid, notes) VALUES (new.seq, new.notes);
END;
CREATE TRIGGER career_applications_fts_ad AFTER DELETE ON career_applications BEGIN
    INSERT INTO career_applications_fts (career_applications_fts, rowid, notes) VALUES ('delete', old.seq, old.notes);
END;
CREATE TRIGGER career_applications_fts_au AFTER UPDATE OF notes ON career_applications BEGIN
    INSERT INTO career_applications_fts (career_applications_fts, rowid, notes) VALUES ('delete', old.seq, old.notes);
    INSERT INTO career_applications_fts (rowid, notes) VALUES (new.seq, new.notes);
END;

-- Public share links: only the SHA-256 of the token is stored.
CREATE TABLE career_resume_shares (
    id TEXT PRIMARY KEY,
    resume_id TEXT NOT NULL REFERENCES career_resumes (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX career_resume_shares_resume ON career_resume_shares (resume_id);
