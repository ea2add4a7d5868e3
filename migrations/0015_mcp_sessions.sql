-- MCP sessions (issue 15): the Mcp-Session-Id issued at `initialize`, bound to the principal
-- that initialized it and to the protocol version negotiated. It grants nothing: every request
-- still carries its bearer token. It lets DELETE /mcp end a session at once (a later request
-- with that id is a 404, as the transport spec says) and tells the version when a client sends
-- no MCP-Protocol-Version header. Rows expire after a day; `initialize` sweeps the tenant's
-- expired ones.
CREATE TABLE mcp_sessions (
    tenant_id         TEXT NOT NULL,
    id                TEXT NOT NULL,
    principal_id      TEXT NOT NULL,
    protocol_version  TEXT NOT NULL,
    created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    expires_at        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX mcp_sessions_by_expiry ON mcp_sessions(tenant_id, expires_at);
