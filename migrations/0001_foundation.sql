-- edgerag schema. Applied by `wrangler d1 migrations apply` in production and by the emulator
-- locally (same files, same d1_migrations bookkeeping). Every tenant-owned row carries
-- tenant_id; the data-access layer (kernel/tenancy.TenantDB) always binds it as ?1.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE tenant_settings (
    tenant_id         TEXT PRIMARY KEY REFERENCES tenants(id),
    chunk_tokens      INTEGER,   -- NULL = default (200)
    chunk_overlap     INTEGER,   -- NULL = default (40)
    max_upload_bytes  INTEGER,   -- NULL = deployment default (10 MiB)
    updated_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Bumped in the same D1 batch as any change readers can see (a version going live, delete,
-- restore, purge): cache keys embed it, so a change invalidates every cached search/answer.
CREATE TABLE tenant_state (
    tenant_id       TEXT PRIMARY KEY,
    corpus_version  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    key_hash    TEXT NOT NULL UNIQUE,      -- sha256 of the key; the key itself is never stored
    key_prefix  TEXT NOT NULL,             -- first characters, to recognise a key in listings
    role        TEXT NOT NULL DEFAULT 'admin',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    revoked_at  TEXT
);
CREATE INDEX api_keys_by_tenant ON api_keys(tenant_id);

-- A document is a stable id with versions; readers only ever see `live_version`.
CREATE TABLE documents (
    tenant_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    title           TEXT NOT NULL,
    visibility      TEXT NOT NULL DEFAULT 'tenant',   -- tenant | private | students
    owner_id        TEXT,
    tags            TEXT NOT NULL DEFAULT '[]',       -- JSON array of strings
    metadata        TEXT NOT NULL DEFAULT '{}',       -- JSON object
    live_version    INTEGER,                          -- NULL until a first version is ready
    latest_version  INTEGER NOT NULL,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    deleted_at      TEXT,                             -- soft delete: unsearchable, restorable
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE document_versions (
    tenant_id       TEXT NOT NULL,
    document_id     TEXT NOT NULL,
    version         INTEGER NOT NULL,
    status          TEXT NOT NULL,        -- queued | processing | ready | failed | superseded
    kind            TEXT NOT NULL,        -- text | markdown | html | pdf | docx
    content_type    TEXT,
    filename        TEXT,
    source_url      TEXT,
    content_hash    TEXT NOT NULL,        -- sha256 of the original bytes
    original_key    TEXT NOT NULL,        -- R2: t/<tenant>/originals/<sha256>
    text_key        TEXT NOT NULL,        -- R2: extracted text + pages + headings (JSON)
    size_bytes      INTEGER NOT NULL,
    text_length     INTEGER NOT NULL,
    page_count      INTEGER,
    chunk_count     INTEGER NOT NULL,
    error           TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_until     REAL,                 -- unix seconds; a crashed job is resumed after this
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, document_id, version)
);
CREATE INDEX document_versions_pending ON document_versions(status, lease_until);

-- One row per distinct chunk; unchanged chunks are shared by versions and embedded once.
-- `seq` (an INTEGER PRIMARY KEY, so stable across VACUUM) places the chunk's FTS row inside its
-- tenant's rowid range: fts rowid = (tenant key << 36) + seq (see kernel/fts.py).
CREATE TABLE chunks (
    seq          INTEGER PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,           -- hash(tenant, document, text, occurrence)
    document_id  TEXT NOT NULL,
    text         TEXT NOT NULL,
    token_count  INTEGER NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX chunks_by_document ON chunks(tenant_id, document_id);

-- Where each chunk sits in a version's extracted text.
CREATE TABLE version_chunks (
    tenant_id     TEXT NOT NULL,
    document_id   TEXT NOT NULL,
    version       INTEGER NOT NULL,
    position      INTEGER NOT NULL,
    chunk_id      TEXT NOT NULL,
    char_start    INTEGER NOT NULL,       -- text[char_start:char_end] == chunk text, exactly
    char_end      INTEGER NOT NULL,
    page          INTEGER,
    heading_path  TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (tenant_id, document_id, version, position)
);
CREATE INDEX version_chunks_by_chunk ON version_chunks(tenant_id, chunk_id);

-- BM25 keyword index over chunks. tenant_id/chunk_id are stored, not tokenised. Rowids are
-- partitioned by tenant so FTS5 reads only the tenant's range of its index.
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text,
    tenant_id UNINDEXED,
    chunk_id UNINDEXED,
    tokenize = 'porter unicode61'
);

-- Idempotency-Key: the same key and body never create a second document.
CREATE TABLE idempotency_keys (
    tenant_id     TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    document_id   TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, key)
);

-- Chat: sessions belong to the principal (API key or user) that created them.
CREATE TABLE chat_sessions (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    owner_id    TEXT NOT NULL,
    title       TEXT,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX chat_sessions_by_owner ON chat_sessions(tenant_id, owner_id, updated_at);

CREATE TABLE chat_messages (
    tenant_id   TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    seq         INTEGER NOT NULL,           -- order within the session
    role        TEXT NOT NULL,              -- user | assistant
    content     TEXT NOT NULL,
    status      TEXT NOT NULL,              -- complete | streaming | partial | error
    citations   TEXT NOT NULL DEFAULT '[]', -- JSON, as returned to the client
    meta        TEXT NOT NULL DEFAULT '{}', -- JSON: confidence, abstained, usage, rewritten query
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, session_id, seq)
);
