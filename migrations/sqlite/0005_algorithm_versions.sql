-- Algorithm lifecycle: every published version of an algorithm, the
-- component bytes (so every server of a deployment can load them, and a
-- restart keeps them), which version is active, and its activation history.

-- Component bytes, content-addressed: versions that share bytes share a row.
CREATE TABLE components (
    sha256 TEXT PRIMARY KEY,
    bytes BLOB NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

-- Every version ever published of an algorithm ID. A version is immutable:
-- the same (ID, version) with other bytes is refused.
CREATE TABLE algorithm_versions (
    algorithm_id TEXT NOT NULL REFERENCES algorithms(id),
    version TEXT NOT NULL,
    component_sha256 TEXT NOT NULL REFERENCES components(sha256),
    description TEXT NOT NULL,
    wit_version TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    -- Limit overrides from the manifest (JSON object; {} = engine defaults).
    limits TEXT NOT NULL DEFAULT '{}',
    -- Where it came from: bundled (in the binary), api, directory (--plugins-dir).
    source TEXT NOT NULL CHECK (source IN ('bundled', 'api', 'directory')),
    published_by_key_id INTEGER,
    created_at TEXT NOT NULL,
    PRIMARY KEY (algorithm_id, version)
);

-- `algorithms.version` / `component_sha256` name the active version.
-- status: active (runnable), disabled (kept, not runnable), inactive
-- (published with "activate": false and never activated yet).
ALTER TABLE algorithms ADD COLUMN status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'inactive'));

-- Each activation, newest last: "rollback" goes to the version active before.
CREATE TABLE algorithm_activations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    algorithm_id TEXT NOT NULL REFERENCES algorithms(id),
    version TEXT NOT NULL,
    -- publish, rollback, activate, enable, disable
    action TEXT NOT NULL,
    key_id INTEGER,
    created_at TEXT NOT NULL
);
CREATE INDEX algorithm_activations_algorithm ON algorithm_activations(algorithm_id, id);

-- Golden jobs of an algorithm: a new version runs on their transcripts beside
-- the active version before it is activated.
CREATE TABLE algorithm_goldens (
    algorithm_id TEXT NOT NULL REFERENCES algorithms(id),
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (algorithm_id, job_id)
);
