-- Webhook delivery: the endpoint a job delivers to is fixed when the job is
-- created (the nearest level's, unless analytics_only), and each run's
-- delivery is written in the same transaction as the run (the outbox).
ALTER TABLE jobs ADD COLUMN webhook_entity_type TEXT;
ALTER TABLE jobs ADD COLUMN webhook_entity_id INTEGER;
-- The analysis outcome while the job is `publishing` (its deliveries pending).
ALTER TABLE jobs ADD COLUMN analysis_outcome TEXT;

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Stable across retries and replays: the receiver's idempotency key.
    delivery_id TEXT NOT NULL UNIQUE,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    algorithm_run_id INTEGER NOT NULL REFERENCES algorithm_runs(id),
    entity_type TEXT NOT NULL,
    entity_id INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'disabled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_status_code INTEGER,
    last_error TEXT,
    lease_owner TEXT,
    lease_expires_at TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
CREATE INDEX deliveries_job ON deliveries(job_id);

CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES deliveries(id),
    at TEXT NOT NULL,
    status_code INTEGER,
    latency_ms REAL,
    error TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts(delivery_id, id);
