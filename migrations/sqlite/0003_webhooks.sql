-- Webhook endpoints and outbound credentials, per partner, organization or
-- workspace (the nearest level to a job's workspace wins). Secrets are
-- stored encrypted (they must be used, so they cannot be hashed).
CREATE TABLE webhook_endpoints (
    entity_type TEXT NOT NULL CHECK (entity_type IN ('partner', 'organization', 'workspace')),
    entity_id INTEGER NOT NULL,
    url TEXT NOT NULL,
    signing_secret_enc TEXT NOT NULL,
    signing_secret_hint TEXT NOT NULL,
    disabled_at TEXT,
    disabled_reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (entity_type, entity_id)
);

CREATE TABLE webhook_credentials (
    entity_type TEXT NOT NULL CHECK (entity_type IN ('partner', 'organization', 'workspace')),
    entity_id INTEGER NOT NULL,
    auth_type TEXT NOT NULL CHECK (auth_type IN ('none', 'bearer', 'hmac', 'basic')),
    secret_enc TEXT,
    secret_hint TEXT,
    key_id TEXT,
    username TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (entity_type, entity_id)
);
