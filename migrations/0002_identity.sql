-- Identity, roles and sharing, rate limits and budgets (gateway).
-- Every tenant-owned row carries tenant_id; the gateway reaches these tables through
-- kernel/tenancy.TenantDB (tenant bound as ?1), except the two lookups by secret hash
-- (api_keys.key_hash, refresh_tokens.token_hash), which are unique and find the tenant.

-- Users per tenant. Passwords: `pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>`
-- (gateway/passwords.py); email is stored lower-cased and is unique within the tenant.
CREATE TABLE users (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    id             TEXT NOT NULL,                 -- u_<24 hex>
    email          TEXT NOT NULL,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'teacher', 'student')),
    password_hash  TEXT NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    disabled_at    TEXT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, email)
);

-- Refresh tokens: opaque, stored as sha256, rotated on every use. All tokens descending from
-- one login share a family; presenting a rotated token again revokes the whole family.
CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    user_id     TEXT NOT NULL,
    family_id   TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    expires_at  REAL NOT NULL,             -- unix seconds
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    rotated_at  TEXT,                      -- set when exchanged for a successor
    revoked_at  TEXT                       -- set for the whole family on reuse
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens(tenant_id, family_id);

-- API keys get a label and their creator; listing and revocation are admin routes.
ALTER TABLE api_keys ADD COLUMN name TEXT;
ALTER TABLE api_keys ADD COLUMN created_by TEXT;

-- Teacher → student. Students see `students`-visibility documents of their teachers.
CREATE TABLE relationships (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,                 -- rel_<24 hex>
    teacher_id  TEXT NOT NULL,
    student_id  TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, teacher_id, student_id)
);
CREATE INDEX relationships_by_student ON relationships(tenant_id, student_id);

-- Visibility checks on documents by owner (search SQL, document routes).
CREATE INDEX documents_by_owner ON documents(tenant_id, owner_id);

-- Fixed-window rate-limit counters. One atomic `INSERT … ON CONFLICT DO UPDATE … RETURNING`
-- per window and request (gateway/ratelimit.py); old windows of a bucket are deleted when its
-- next window opens. bucket = '<route class>:<scope>:<subject>'.
CREATE TABLE rate_counters (
    tenant_id     TEXT NOT NULL,
    bucket        TEXT NOT NULL,
    window_start  INTEGER NOT NULL,           -- unix seconds, a multiple of the window length
    hits          INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, bucket, window_start)
);

-- LLM tokens used per tenant and UTC day (usage.total_tokens of answers and chat messages).
CREATE TABLE token_usage (
    tenant_id  TEXT NOT NULL,
    day        TEXT NOT NULL,                 -- YYYY-MM-DD (UTC)
    tokens     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

-- Per-tenant overrides set by the operator (NULL = deployment default) and the CORS allowlist
-- tenant admins manage (exact origins, never a wildcard).
CREATE TABLE tenant_quotas (
    tenant_id           TEXT PRIMARY KEY REFERENCES tenants(id),
    daily_token_budget  INTEGER,
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE cors_origins (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    origin      TEXT NOT NULL,                 -- scheme://host[:port], lower-cased
    PRIMARY KEY (tenant_id, origin)
);
CREATE INDEX cors_origins_by_origin ON cors_origins(origin);
