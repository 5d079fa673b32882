-- 0005 career (API.md §8): resumes, jobs, applications, share links (tables career_*).
-- Resource-engine tables (src/resource/resource.h); full text through a
-- generated tsvector column "search_tsv" ('simple' configuration: Turkish
-- and English alike) with a GIN index.
CREATE TABLE career_resumes (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '',
    skills TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'archived')),
    ats_score INTEGER,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ,
    search_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple',
        title || ' ' || summary || ' ' || content || ' ' || skills)) STORED
);
CREATE INDEX career_resumes_user ON career_resumes (user_id, created_at);
CREATE INDEX career_resumes_search ON career_resumes USING GIN (search_tsv);

CREATE TABLE career_jobs (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    company TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    url TEXT,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    search_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple',
        title || ' ' || company || ' ' || location || ' ' || description)) STORED
);
CREATE INDEX career_jobs_user ON career_jobs (user_id, created_at);
CREATE INDEX career_jobs_search ON career_jobs USING GIN (search_tsv);

CREATE TABLE career_applications (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    job_id TEXT NOT NULL REFERENCES career_jobs (id) ON DELETE CASCADE,
    resume_id TEXT REFERENCES career_resumes (id) ON DELETE SET NULL,
    status TEXT NOT NULL DEFAULT 'saved'
        CHECK (status IN ('saved', 'applied', 'interview', 'offer', 'rejected', 'withdrawn')),
    notes TEXT NOT NULL DEFAULT '',
    history TEXT NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    search_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', notes)) STORED
);
CREATE INDEX career_applications_user ON career_applications (user_id, created_at);
CREATE INDEX career_applications_job ON career_applications (job_id);
CREATE INDEX career_applications_resume ON career_applications (resume_id);
CREATE INDEX career_applications_search ON career_applications USING GIN (search_tsv);

-- Public share links: only the SHA-256 of the token is stored.
CREATE TABLE career_resume_shares (
    id TEXT PRIMARY KEY,
    resume_id TEXT NOT NULL REFERENCES career_resumes (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX career_resume_shares_resume ON career_resume_shares (resume_id);
