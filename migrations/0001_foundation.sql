-- Foundation schema. Applied by `wrangler d1 migrations apply` in production and by the
-- emulator locally (same file, same d1_migrations bookkeeping).
-- Every tenant-owned row carries tenant_id; the data-access layer binds it as ?1.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
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

CREATE TABLE documents (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    title         TEXT NOT NULL,
    source        TEXT NOT NULL,           -- text | upload | url
    version       INTEGER NOT NULL,        -- the version readers see
    status        TEXT NOT NULL,           -- queued | processing | ready | failed
    content_hash  TEXT NOT NULL,           -- sha256 of the original bytes
    r2_key        TEXT NOT NULL,
    text_length   INTEGER NOT NULL DEFAULT 0,
    chunk_count   INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    deleted_at    TEXT,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE chunks (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,            -- content hash + position, salted by tenant
    document_id  TEXT NOT NULL,
    version      INTEGER NOT NULL,
    position     INTEGER NOT NULL,
    char_start   INTEGER NOT NULL,         -- offsets into the stored extracted text
    char_end     INTEGER NOT NULL,
    page         INTEGER,
    text         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX chunks_by_document ON chunks(tenant_id, document_id, version);

-- BM25 keyword index. tenant_id/chunk_id are stored, not tokenised; queries filter tenant_id = ?1.
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text,
    tenant_id UNINDEXED,
    chunk_id UNINDEXED,
    tokenize = 'porter unicode61'
);
