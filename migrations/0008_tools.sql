-- Tools (issue 12): the audit log of every tool call, each user's learning context, and the
-- tenant's own entity types and intent labels.

ALTER TABLE tenant_settings ADD COLUMN entity_types TEXT;   -- JSON [{name, description}]
ALTER TABLE tenant_settings ADD COLUMN intent_labels TEXT;  -- JSON [{name, description}]

-- One row per tool call, direct or requested by a model. The arguments are never stored: only
-- the SHA-256 of their canonical JSON (sorted keys, no spaces), so a call can be matched to
-- known arguments without the log holding what a user asked.
CREATE TABLE tool_audit (
    tenant_id        TEXT NOT NULL,
    id               TEXT NOT NULL,
    at               TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    user_id          TEXT NOT NULL,
    role             TEXT NOT NULL,
    tool             TEXT NOT NULL,
    args_sha256      TEXT NOT NULL,
    outcome          TEXT NOT NULL,            -- ok | error
    error_code       TEXT,
    latency_ms       REAL NOT NULL,
    request_id       TEXT NOT NULL,
    model_requested  INTEGER NOT NULL DEFAULT 0,
    session_id       TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX tool_audit_by_time ON tool_audit(tenant_id, at, id);

CREATE TABLE user_context (
    tenant_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    body        TEXT NOT NULL,                 -- JSON of UserContextBody
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, user_id)
);
