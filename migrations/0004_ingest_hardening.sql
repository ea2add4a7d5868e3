-- Issue 9, ingest hardening.

-- What one document may become, per tenant (NULL = the deployment default, which is also the
-- ceiling a tenant may not exceed): bytes any compressed part may inflate to (DOCX XML, PDF
-- streams), characters of extracted text, and chunks.
ALTER TABLE tenant_settings ADD COLUMN max_inflated_bytes INTEGER;
ALTER TABLE tenant_settings ADD COLUMN max_text_chars INTEGER;
ALTER TABLE tenant_settings ADD COLUMN max_chunks INTEGER;

-- An Idempotency-Key belongs to the caller (user or API key) that sent it, not to the whole
-- tenant: another member replaying it must not receive the first caller's document. SQLite
-- cannot change a primary key in place, so the table is rebuilt; keys stored before this
-- migration keep principal_id '' and so can no longer be replayed (they were retry tokens).
CREATE TABLE idempotency_keys_by_caller (
    tenant_id     TEXT NOT NULL,
    principal_id  TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    document_id   TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, principal_id, key)
);
INSERT INTO idempotency_keys_by_caller
    (tenant_id, principal_id, key, request_hash, document_id, version, created_at)
    SELECT tenant_id, '', key, request_hash, document_id, version, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_by_caller RENAME TO idempotency_keys;
