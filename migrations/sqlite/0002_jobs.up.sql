-- 0002 jobs: the durable job queue and the scheduler's memory (src/jobs/jobs.h).
-- Timestamps are UTC epoch ms here and timestamptz on PostgreSQL (ARCHITECTURE §2).
-- priority: 0 high, 1 normal, 2 low (claims order by priority, then run_at).
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,                        -- UUIDv7
    kind TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 1 CHECK (priority BETWEEN 0 AND 2),
    payload TEXT NOT NULL DEFAULT '{}',         -- JSON object
    state TEXT NOT NULL CHECK (state IN ('available', 'scheduled', 'running', 'retryable',
                                         'succeeded', 'failed', 'dead', 'cancelled')),
    attempt INTEGER NOT NULL DEFAULT 0,         -- tries started so far
    max_attempts INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    timeout_ms INTEGER NOT NULL CHECK (timeout_ms > 0),
    run_at INTEGER NOT NULL,                    -- not claimed before this
    locked_by TEXT,                             -- lease owner "host:pid:thread" while running
    locked_until INTEGER,                       -- lease end: claim + timeout + margin
    last_error TEXT,
    progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    result TEXT,                                -- JSON or NULL
    unique_key TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    started_at INTEGER,                         -- last claim
    finished_at INTEGER
);
-- the claim path: ready states in priority, run_at order
CREATE INDEX jobs_claim ON jobs (priority, run_at, id) WHERE state IN ('available', 'scheduled', 'retryable');
-- the reaper: expired leases
CREATE INDEX jobs_lease ON jobs (locked_until) WHERE state = 'running';
-- dedupe while unfinished
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('available', 'scheduled', 'running', 'retryable');
-- admin listing and counts by state/queue
CREATE INDEX jobs_state_queue ON jobs (state, queue, id);
-- retention purge
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('succeeded', 'cancelled');

-- last tick each cron entry fired for (one row per entry name)
CREATE TABLE job_cron (
    name TEXT PRIMARY KEY,
    last_tick INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
