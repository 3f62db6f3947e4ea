-- Settings every server of a deployment must agree on, recorded by the first
-- to start (e.g. the fingerprint of the key that encrypts stored secrets, so a
-- node started with another key refuses to run instead of failing deliveries).
CREATE TABLE service_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL
);
