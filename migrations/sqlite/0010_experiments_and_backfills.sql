-- Experiments compare two algorithm versions over stored calls; backfills
-- run algorithms over stored calls as child jobs. Both are batches: one row,
-- one item per selected call, items claimed by workers under a lease.

CREATE TABLE experiments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'cancelled', 'failed')),
    -- Each side as JSON: algorithm_id, version, component_sha256, config, config_sha256.
    baseline TEXT NOT NULL,
    candidate TEXT NOT NULL,
    -- JSON pointers compared; an empty list compares the whole output.
    compare TEXT NOT NULL,
    -- The selection as asked, JSON.
    selection TEXT NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    memoized INTEGER NOT NULL DEFAULT 0,
    -- The summary, written once the last call is done.
    summary TEXT,
    error TEXT,
    created_by_key_id INTEGER,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX experiments_workspace ON experiments(workspace_id, id);
CREATE INDEX experiments_status ON experiments(status, id);

-- One per selected call. `baseline` and `candidate` hold each side's outcome
-- (JSON: where the run is stored, status, output or error, fuel, time,
-- memoized) once the item is done.
CREATE TABLE experiment_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    transcript_sha256 TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at TEXT,
    baseline TEXT,
    candidate TEXT,
    -- JSON list of differing pointers; null unless both sides completed.
    differing_paths TEXT,
    UNIQUE (experiment_id, job_id)
);
CREATE INDEX experiment_items_work ON experiment_items(experiment_id, done, id);

-- Runs an experiment made: never a job's run, never "already ran", never
-- delivered. Full provenance, so any of them can be reused (memoized).
CREATE TABLE experiment_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    algorithm_id TEXT NOT NULL,
    algorithm_version TEXT NOT NULL,
    component_sha256 TEXT NOT NULL,
    config TEXT NOT NULL,
    config_sha256 TEXT NOT NULL,
    transcript_sha256 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('completed', 'failed')),
    result TEXT,
    error TEXT,
    fuel_consumed INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    peak_memory_bytes INTEGER NOT NULL,
    logs TEXT NOT NULL,
    logs_truncated INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX experiment_runs_memo ON experiment_runs(component_sha256, config_sha256, transcript_sha256);
-- A call's jobs by transcript: where a production run of the same transcript is found.
CREATE INDEX jobs_transcript ON jobs(transcript_sha256);

CREATE TABLE backfills (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'cancelled', 'failed')),
    algorithm_ids TEXT NOT NULL,
    analytics_only INTEGER NOT NULL,
    force_rerun INTEGER NOT NULL,
    selection TEXT NOT NULL,
    total INTEGER NOT NULL,
    created_by_key_id INTEGER,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX backfills_workspace ON backfills(workspace_id, id);
CREATE INDEX backfills_status ON backfills(status, id);

-- One per selected call; `outcome` is set once the call is handled.
CREATE TABLE backfill_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    backfill_id INTEGER NOT NULL REFERENCES backfills(id),
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    outcome TEXT CHECK (outcome IN ('created', 'skipped_existing', 'skipped_invalid')),
    child_job_id INTEGER REFERENCES jobs(id),
    reason TEXT,
    lease_owner TEXT,
    lease_expires_at TEXT,
    UNIQUE (backfill_id, job_id)
);
CREATE INDEX backfill_items_work ON backfill_items(backfill_id, outcome, id);

-- A backfill's child jobs are batch work: claimed only when no interactive
-- job waits.
ALTER TABLE jobs ADD COLUMN backfill_id INTEGER REFERENCES backfills(id);
