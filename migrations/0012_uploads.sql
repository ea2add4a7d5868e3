-- Direct uploads (issue 14): a presigned R2 PUT, then a confirm that checks what arrived.
CREATE TABLE uploads (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    owner_id      TEXT NOT NULL,
    purpose       TEXT NOT NULL,              -- document | project | recording
    filename      TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL,
    sha256        TEXT NOT NULL,              -- hex, declared by the client, signed into the URL
    object_key    TEXT NOT NULL,              -- t/<tenant>/uploads/<id>
    status        TEXT NOT NULL DEFAULT 'pending',   -- pending | confirmed
    expires_at    TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    confirmed_at  TEXT,
    PRIMARY KEY (tenant_id, id)
);
