-- Learning features (issue 13): reading progress per section, questions asked, and the cache of
-- personalized and translated sections (a chapter is never paid for twice).

CREATE TABLE reading_progress (
    tenant_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    document_id    TEXT NOT NULL,
    section        TEXT NOT NULL,              -- heading path "A > B", or "" for the whole document
    completed      INTEGER NOT NULL DEFAULT 0,
    first_read_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_read_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, user_id, document_id, section)
);

CREATE TABLE learner_stats (
    tenant_id        TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    questions        INTEGER NOT NULL DEFAULT 0,  -- answers and chat messages, counted by rag
    last_question_at TEXT,
    PRIMARY KEY (tenant_id, user_id)
);

-- kind: personalize | translate. key: sha256 of (content hash, section, variant, model,
-- prompt version); content_hash lets a new document version find nothing (and purge the rest).
CREATE TABLE learning_cache (
    tenant_id     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    key           TEXT NOT NULL,
    document_id   TEXT,
    content_hash  TEXT NOT NULL,
    model         TEXT NOT NULL,
    body          TEXT NOT NULL,                -- the reply, JSON
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, kind, key)
);
CREATE INDEX learning_cache_by_document ON learning_cache(tenant_id, document_id);

-- Who translates for the tenant: workers-ai (m2m100) | llm; NULL = the deployment's choice.
ALTER TABLE tenant_settings ADD COLUMN translation_provider TEXT;
