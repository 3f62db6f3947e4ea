-- Tenancy: partner -> organization -> workspace.
CREATE TABLE partners (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE organizations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    partner_id INTEGER NOT NULL REFERENCES partners(id),
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX organizations_partner ON organizations(partner_id);

CREATE TABLE workspaces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    -- Ingestion filter: calls shorter than this are `skipped` (processing.filters.min_duration_seconds).
    min_duration_seconds INTEGER NOT NULL DEFAULT 30,
    created_at TEXT NOT NULL
);
CREATE INDEX workspaces_organization ON workspaces(organization_id);

-- API keys: only the sha256 of the token is stored; the token is shown once.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_sha256 TEXT NOT NULL UNIQUE,
    token_hint TEXT NOT NULL,
    scope_type TEXT NOT NULL CHECK (scope_type IN ('platform', 'partner', 'organization', 'workspace')),
    scope_id INTEGER,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- Algorithms known to the service and who may run them. scope_type 'global'
-- (partner_id = NULL, organization_id = NULL in the spec's words), 'partner'
-- or 'organization'; a workspace assignment (below) adds availability.
CREATE TABLE algorithms (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    component_sha256 TEXT NOT NULL,
    description TEXT NOT NULL,
    scope_type TEXT NOT NULL CHECK (scope_type IN ('global', 'partner', 'organization', 'workspace')),
    scope_id INTEGER,
    default_config TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE workspace_algorithms (
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    algorithm_id TEXT NOT NULL REFERENCES algorithms(id),
    config TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (workspace_id, algorithm_id)
);

-- Transcripts are immutable and content-addressed: a child job shares its
-- parent's row instead of copying the text.
CREATE TABLE transcripts (
    sha256 TEXT PRIMARY KEY,
    content TEXT NOT NULL,
    segment_count INTEGER NOT NULL,
    word_count INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    speech_segment_count INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    parent_job_id INTEGER REFERENCES jobs(id),
    kind TEXT NOT NULL CHECK (kind IN ('ingest', 'on_demand', 'retry')),
    status TEXT NOT NULL CHECK (status IN ('queued', 'transcribing', 'analyzing', 'publishing', 'completed', 'partial', 'failed', 'skipped')),
    requested_algorithm_ids TEXT NOT NULL,
    analytics_only INTEGER NOT NULL,
    transcript_sha256 TEXT REFERENCES transcripts(sha256),
    source_call_id TEXT,
    source_company_id TEXT,
    recording_url TEXT,
    contacted_at TEXT,
    duration_seconds REAL,
    error TEXT,
    lease_owner TEXT,
    lease_expires_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    completed_at TEXT
);
CREATE INDEX jobs_workspace_created ON jobs(workspace_id, id);
CREATE INDEX jobs_parent ON jobs(parent_job_id);
CREATE INDEX jobs_status ON jobs(status);
CREATE INDEX jobs_source_call ON jobs(source_call_id);

CREATE TABLE algorithm_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    algorithm_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    config TEXT NOT NULL,
    config_sha256 TEXT NOT NULL,
    algorithm_version TEXT,
    component_sha256 TEXT,
    result TEXT,
    error TEXT,
    fuel_consumed INTEGER,
    duration_ms REAL,
    peak_memory_bytes INTEGER,
    logs TEXT,
    logs_truncated INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    -- One run per algorithm per job: a resumed job never completes a run twice.
    UNIQUE (job_id, algorithm_id)
);
CREATE INDEX algorithm_runs_algorithm ON algorithm_runs(algorithm_id, status);

-- What happened to a job, for GET /jobs/{id}/logs.
CREATE TABLE job_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    at TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX job_events_job ON job_events(job_id, id);
