-- Workspaces, part 3 (issue 14): page annotations, recordings, their analyses and feedback.

-- A project's PDF indexed for search (confirm with index=true): the document it became.
ALTER TABLE projects ADD COLUMN document_id TEXT;

-- A highlight, note or drawing on one page of a project, in its author's copy.
CREATE TABLE annotations (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    project_id   TEXT NOT NULL,
    page         INTEGER NOT NULL,
    author_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,                 -- highlight | note | drawing
    body         TEXT NOT NULL,                 -- JSON: the kind's validated fields
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX annotations_by_project ON annotations(tenant_id, project_id, page, id);

-- An audio file uploaded straight to R2; confirm reads its container headers.
CREATE TABLE recordings (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    owner_id      TEXT NOT NULL,
    title         TEXT NOT NULL DEFAULT '',
    upload_id     TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending',   -- pending | ready | rejected
    error         TEXT,                              -- why it was rejected
    content_type  TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL,
    format        TEXT,                              -- wav | flac | mp3 | ogg | m4a
    codec         TEXT,
    duration_s    REAL,
    sample_rate   INTEGER,
    channels      INTEGER,
    bitrate       INTEGER,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX recordings_by_owner ON recordings(tenant_id, owner_id, id);

-- One run of the analyzer: running, then done (with its results) or failed (with why).
CREATE TABLE recording_analyses (
    tenant_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    recording_id   TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'running',  -- running | done | failed
    requested_by   TEXT NOT NULL,
    analyzer       TEXT,          -- JSON {name, version, kind}
    dimensions     TEXT,          -- JSON [{name, label, group, score, uncertainty, value, unit}]
    segments       TEXT,          -- JSON [{start_s, end_s, dimensions, note}]
    unmeasured     TEXT,          -- JSON [name]: asked for, not measured
    ignored        TEXT,          -- JSON [name]: sent by the analyzer, not asked for
    error_code     TEXT,
    error_message  TEXT,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at    TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX recording_analyses_by_recording ON recording_analyses(tenant_id, recording_id, id);

-- Feedback the model layer wrote from an analysis and the knowledge base (the rag Worker's).
-- cache_key = (analysis, model, prompt version): the same three never pay twice.
CREATE TABLE recording_feedback (
    tenant_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    recording_id   TEXT NOT NULL,
    analysis_id    TEXT NOT NULL,
    cache_key      TEXT NOT NULL,
    model          TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    requested_by   TEXT NOT NULL,
    body           TEXT NOT NULL,  -- JSON: the Feedback as served
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX recording_feedback_by_key ON recording_feedback(tenant_id, cache_key);
CREATE INDEX recording_feedback_by_recording ON recording_feedback(tenant_id, recording_id, id);

-- The tenant's analyzer (an https URL serving the analyzer contract; NULL = the deployment's)
-- and the dimensions its recordings are judged on (JSON [{name, label, group, description}]).
ALTER TABLE tenant_settings ADD COLUMN analyzer_url TEXT;
ALTER TABLE tenant_settings ADD COLUMN recording_dimensions TEXT;
