-- Projects (issue 14): a PDF uploaded straight to R2, shared with view/edit grants.
CREATE TABLE projects (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    owner_id     TEXT NOT NULL,
    title        TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT 'pending',   -- pending | ready
    upload_id    TEXT NOT NULL,
    page_count   INTEGER,
    pdf_title    TEXT,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX projects_by_owner ON projects(tenant_id, owner_id);

CREATE TABLE project_access (
    tenant_id   TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    permission  TEXT NOT NULL,                      -- view | edit
    granted_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, project_id, user_id)
);
CREATE INDEX project_access_by_user ON project_access(tenant_id, user_id);
